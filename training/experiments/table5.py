"""Table 5 of the first report: 1 to 4 residual blocks (byclass, Nadam 1e-3, swish).

The report ties 2 and 3 blocks at 88.37% and keeps 3. The 3-block row is Table 4's swish run.
"""

TITLE = "Table 5: residual blocks (byclass, Nadam 1e-3, swish)"

BASE = {"model": "residual_cnn", "split": "byclass", "optimizer": "nadam", "lr": 1e-3,
        "model_args": {"activation_name": "swish"}}  # fmt: skip

ROWS = [
    {"key": "blocks_1", "label": "1 block", "settings": {"model_args": {"blocks": 1}},
     "report": {"test_loss": 0.3190, "test_accuracy": 88.24, "train_seconds": 1108.55}},
    {"key": "blocks_2", "label": "2 blocks", "settings": {"model_args": {"blocks": 2}},
     "report": {"test_loss": 0.3136, "test_accuracy": 88.37, "train_seconds": 1413.16}},
    {"key": "blocks_3", "label": "3 blocks", "settings": {"model_args": {"blocks": 3}},
     "report": {"test_loss": 0.3264, "test_accuracy": 88.37, "train_seconds": 1672.99}},
    {"key": "blocks_4", "label": "4 blocks", "settings": {"model_args": {"blocks": 4}},
     "report": {"test_loss": 0.3303, "test_accuracy": 88.30, "train_seconds": 1863.36}},
]  # fmt: skip

CLAIMS = [{"text": "3 residual blocks is the best depth (the report ties 2 and 3 and keeps 3)", "expect": "blocks_3"}]
