"""Table 6 of the first report: the coarse learning-rate sweep (3 blocks, Nadam, swish, byclass).

The 1e-3 row is Table 5's 3-block run; 1e-4 is shared with Table 7.
"""

TITLE = "Table 6: learning rate, coarse (residual CNN, 3 blocks, Nadam, swish, byclass)"

BASE = {"model": "residual_cnn", "split": "byclass", "optimizer": "nadam",
        "model_args": {"blocks": 3, "activation_name": "swish"}}  # fmt: skip

ROWS = [
    {"key": "lr_1e-2", "label": "1e-2", "settings": {"lr": 1e-2},
     "report": {"test_loss": 0.3223, "test_accuracy": 88.02, "train_seconds": 652.85}},
    {"key": "lr_1e-3", "label": "1e-3", "settings": {"lr": 1e-3},
     "report": {"test_loss": 0.3120, "test_accuracy": 88.33, "train_seconds": 758.32}},
    {"key": "lr_1e-4", "label": "1e-4", "settings": {"lr": 1e-4},
     "report": {"test_loss": 0.3071, "test_accuracy": 88.32, "train_seconds": 1382.78}},
    {"key": "lr_1e-5", "label": "1e-5", "settings": {"lr": 1e-5},
     "report": {"test_loss": 0.3328, "test_accuracy": 87.38, "train_seconds": 1618.95}},
    {"key": "lr_1e-6", "label": "1e-6", "settings": {"lr": 1e-6},
     "report": {"test_loss": 0.4499, "test_accuracy": 84.48, "train_seconds": 1634.89}},
]  # fmt: skip

CLAIMS = [{"text": "1e-3 is the best of the coarse grid", "expect": "lr_1e-3"}]
