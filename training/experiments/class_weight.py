"""Section 5.1 of the first report: LeNet-5 on byclass without and with class weights.

The weights are scikit-learn's 'balanced' n / (classes * count), applied per sample as Keras'
class_weight does (training/losses.py). Numbers are from the report's code (REPRODUCTION.md); the
unweighted row is the same run as Table 2's LeNet-5.
"""

from training.experiments.spec import Claim, Row, Spec

SPEC = Spec(
    name="class_weight",
    title="Class weights (LeNet-5, byclass, Adam 1e-3)",
    base={"model": "lenet5", "split": "byclass", "optimizer": "adam", "lr": 1e-3},
    rows=(
        Row("unweighted", "cross-entropy", {"loss": "cross_entropy"},
            report={"test_loss": 0.3687, "test_accuracy": 86.55, "train_seconds": 280}),
        Row("weighted", "class-weighted cross-entropy", {"loss": "weighted_cross_entropy"},
            report={"test_loss": 0.4787, "test_accuracy": 81.04, "train_seconds": 261}),
    ),
    claims=(
        Claim("class weights hurt (the unweighted model is better)", expect="unweighted", metrics=("val_accuracy",)),
    ),
    notes="Validation losses of the two losses are not comparable, so only validation accuracy decides.",
)  # fmt: skip
