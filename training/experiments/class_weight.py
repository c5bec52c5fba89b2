"""Section 5.1 of the first report: LeNet-5 on byclass without and with class weights.

The weights are scikit-learn's 'balanced' n / (classes * count), applied per sample as Keras'
class_weight does (training/losses.py). Numbers are from the report's code (REPRODUCTION.md); the
unweighted row is the same run as Table 2's LeNet-5.
"""

TITLE = "Class weights (LeNet-5, byclass, Adam 1e-3)"

BASE = {"model": "lenet5", "split": "byclass", "optimizer": "adam", "lr": 1e-3}

ROWS = [
    {"key": "unweighted", "label": "cross-entropy", "settings": {"loss": "cross_entropy"},
     "report": {"test_loss": 0.3687, "test_accuracy": 86.55, "train_seconds": 280}},
    {"key": "weighted", "label": "class-weighted cross-entropy", "settings": {"loss": "weighted_cross_entropy"},
     "report": {"test_loss": 0.4787, "test_accuracy": 81.04, "train_seconds": 261}},
]  # fmt: skip

CLAIMS = [
    {"text": "class weights hurt (the unweighted model is better)", "expect": "unweighted",
     "metrics": ["val_accuracy"]},
]  # fmt: skip

NOTES = "Validation losses of the two losses are not comparable, so only validation accuracy decides."
