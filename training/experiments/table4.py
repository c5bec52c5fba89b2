"""Table 4 of the first report: ten activations in the residual CNN (byclass, Nadam 1e-3).

'softmax' is Keras' softmax over channels applied after a conv layer (training/models.py). The
ReLU row is the same run as Table 3's Nadam row.
"""

TITLE = "Table 4: activations (residual CNN, byclass, Nadam 1e-3)"

BASE = {"model": "residual_cnn", "split": "byclass", "optimizer": "nadam", "lr": 1e-3, "model_args": {"blocks": 3}}

ROWS = [
    {"key": "relu", "label": "ReLU", "settings": {"model_args": {"activation_name": "relu"}},
     "report": {"test_loss": 0.3328, "test_accuracy": 87.20, "train_seconds": 242.82}},
    {"key": "leaky_relu", "label": "LeakyReLU", "settings": {"model_args": {"activation_name": "leaky_relu"}},
     "report": {"test_loss": 0.3321, "test_accuracy": 87.40, "train_seconds": 244.90}},
    {"key": "elu", "label": "ELU", "settings": {"model_args": {"activation_name": "elu"}},
     "report": {"test_loss": 0.3289, "test_accuracy": 87.47, "train_seconds": 246.59}},
    {"key": "selu", "label": "SELU", "settings": {"model_args": {"activation_name": "selu"}},
     "report": {"test_loss": 0.3384, "test_accuracy": 87.24, "train_seconds": 245.21}},
    {"key": "sigmoid", "label": "Sigmoid", "settings": {"model_args": {"activation_name": "sigmoid"}},
     "report": {"test_loss": 0.4001, "test_accuracy": 85.20, "train_seconds": 242.76}},
    {"key": "tanh", "label": "tanh", "settings": {"model_args": {"activation_name": "tanh"}},
     "report": {"test_loss": 0.3395, "test_accuracy": 87.20, "train_seconds": 244.21}},
    {"key": "softmax", "label": "softmax (over channels)", "settings": {"model_args": {"activation_name": "softmax"}},
     "report": {"test_loss": 0.5600, "test_accuracy": 83.41, "train_seconds": 273.51}},
    {"key": "softsign", "label": "softsign", "settings": {"model_args": {"activation_name": "softsign"}},
     "report": {"test_loss": 0.3476, "test_accuracy": 87.02, "train_seconds": 243.27}},
    {"key": "swish", "label": "swish (SiLU)", "settings": {"model_args": {"activation_name": "swish"}},
     "report": {"test_loss": 0.3163, "test_accuracy": 87.91, "train_seconds": 286.79}},
    {"key": "gelu", "label": "GELU", "settings": {"model_args": {"activation_name": "gelu"}},
     "report": {"test_loss": 0.3163, "test_accuracy": 87.85, "train_seconds": 321.97}},
]  # fmt: skip

CLAIMS = [{"text": "swish is the best activation", "expect": "swish"}]
