"""Table 2 of the first report: two baselines and the report's two models on byclass, Adam 1e-3.

Architectures follow the report's public code (REPRODUCTION.md, "Models"). WaveMix-Lite-128/7 is a
figure the report quotes from the literature; it is shown beside the others, not trained.
"""

TITLE = "Table 2: baselines vs the report's models (byclass, Adam 1e-3)"

BASE = {"split": "byclass", "optimizer": "adam", "lr": 1e-3}

ROWS = [
    {"key": "lenet5", "label": "LeNet-5", "settings": {"model": "lenet5"},
     "report": {"test_loss": 0.3671, "test_accuracy": 86.85, "train_seconds": 272.90}},
    {"key": "resnet50", "label": "ResNet-50", "settings": {"model": "resnet50"},
     "report": {"test_loss": 0.7853, "test_accuracy": 85.91, "train_seconds": 3086.12}},
    {"key": "wavemix_lite", "label": "WaveMix-Lite-128/7 (literature, not trained)", "train": False,
     "report": {"test_accuracy": 88.43}},
    {"key": "plain_cnn", "label": "Plain CNN (report's 'Our Model (CNN)')", "settings": {"model": "plain_cnn"},
     "report": {"test_loss": 0.4085, "test_accuracy": 86.33, "train_seconds": 324.04}},
    {"key": "residual_cnn", "label": "Residual CNN (report's 'Our Model (Residual)')",
     "settings": {"model": "residual_cnn", "model_args": {"blocks": 3, "activation_name": "relu"}},
     "report": {"test_loss": 0.3125, "test_accuracy": 88.43, "train_seconds": 1580.30}},
]  # fmt: skip

CLAIMS = [
    {"text": "the residual CNN beats the baselines (LeNet-5, ResNet-50, plain CNN)", "expect": "residual_cnn"},
]
