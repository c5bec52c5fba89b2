"""Table 4 of the first report: ten activations in the residual CNN (byclass, Nadam 1e-3).

'softmax' is Keras' softmax over channels applied after a conv layer (training/models.py). The
ReLU row is the same run as Table 3's Nadam row.
"""

from training.experiments.spec import Claim, Row, Spec

_REPORT = [  # (key, label, test loss, test accuracy %, train seconds)
    ("relu", "ReLU", 0.3328, 87.20, 242.82),
    ("leaky_relu", "LeakyReLU", 0.3321, 87.40, 244.90),
    ("elu", "ELU", 0.3289, 87.47, 246.59),
    ("selu", "SELU", 0.3384, 87.24, 245.21),
    ("sigmoid", "Sigmoid", 0.4001, 85.20, 242.76),
    ("tanh", "tanh", 0.3395, 87.20, 244.21),
    ("softmax", "softmax (over channels)", 0.5600, 83.41, 273.51),
    ("softsign", "softsign", 0.3476, 87.02, 243.27),
    ("swish", "swish (SiLU)", 0.3163, 87.91, 286.79),
    ("gelu", "GELU", 0.3163, 87.85, 321.97),
]  # fmt: skip

SPEC = Spec(
    name="table4",
    title="Table 4: activations (residual CNN, byclass, Nadam 1e-3)",
    base={"model": "residual_cnn", "split": "byclass", "optimizer": "nadam", "lr": 1e-3, "model_args": {"blocks": 3}},
    rows=tuple(
        Row(key, label, {"model_args": {"activation_name": key}},
            report={"test_loss": loss, "test_accuracy": acc, "train_seconds": secs})
        for key, label, loss, acc, secs in _REPORT
    ),
    claims=(Claim("swish is the best activation", expect="swish"),),
)  # fmt: skip
