"""Table 3 of the first report: seven optimizers on the residual CNN (byclass, ReLU, lr 1e-3).

Optimizer settings are in training/optim.py (SGD momentum 0.9, RMSprop rho 0.9, Keras' epsilon).
The Adam row is the same run as Table 2's residual CNN.
"""

from training.experiments.spec import Claim, Row, Spec

SPEC = Spec(
    name="table3",
    title="Table 3: optimizers (residual CNN, byclass, ReLU, lr 1e-3)",
    base={"model": "residual_cnn", "split": "byclass", "lr": 1e-3,
          "model_args": {"blocks": 3, "activation_name": "relu"}},
    rows=(
        Row("sgd", "SGD", {"optimizer": "sgd"},
            report={"test_loss": 0.3396, "test_accuracy": 87.17, "train_seconds": 1277.04}),
        Row("sgd_nesterov", "SGD (Nesterov)", {"optimizer": "sgd_nesterov"},
            report={"test_loss": 0.3338, "test_accuracy": 87.38, "train_seconds": 1286.94}),
        Row("adagrad", "Adagrad", {"optimizer": "adagrad"},
            report={"test_loss": 0.3779, "test_accuracy": 86.21, "train_seconds": 1289.94}),
        Row("rmsprop", "RMSprop", {"optimizer": "rmsprop"},
            report={"test_loss": 0.3140, "test_accuracy": 88.26, "train_seconds": 503.07}),
        Row("adam", "Adam", {"optimizer": "adam"},
            report={"test_loss": 0.3086, "test_accuracy": 88.35, "train_seconds": 605.06}),
        Row("adamax", "Adamax", {"optimizer": "adamax"},
            report={"test_loss": 0.3062, "test_accuracy": 88.43, "train_seconds": 775.57}),
        Row("nadam", "Nadam", {"optimizer": "nadam"},
            report={"test_loss": 0.3082, "test_accuracy": 88.44, "train_seconds": 784.48}),
    ),
    claims=(Claim("Nadam is the best optimizer", expect="nadam"),),
)  # fmt: skip
