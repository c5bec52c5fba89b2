"""Table 2 of the first report: two baselines and the report's two models on byclass, Adam 1e-3.

Architectures follow the report's public code (REPRODUCTION.md, "Models"). WaveMix-Lite-128/7 is a
figure the report quotes from the literature; it is shown beside the others, not trained.
"""

from training.experiments.spec import Claim, Row, Spec

SPEC = Spec(
    name="table2",
    title="Table 2: baselines vs the report's models (byclass, Adam 1e-3)",
    base={"split": "byclass", "optimizer": "adam", "lr": 1e-3},
    rows=(
        Row("lenet5", "LeNet-5", {"model": "lenet5"},
            report={"test_loss": 0.3671, "test_accuracy": 86.85, "train_seconds": 272.90}),
        Row("resnet50", "ResNet-50", {"model": "resnet50"},
            report={"test_loss": 0.7853, "test_accuracy": 85.91, "train_seconds": 3086.12}),
        Row("wavemix_lite", "WaveMix-Lite-128/7 (literature, not trained)", train=False,
            report={"test_accuracy": 88.43}),
        Row("plain_cnn", "Plain CNN (report's 'Our Model (CNN)')", {"model": "plain_cnn"},
            report={"test_loss": 0.4085, "test_accuracy": 86.33, "train_seconds": 324.04}),
        Row("residual_cnn", "Residual CNN (report's 'Our Model (Residual)')",
            {"model": "residual_cnn", "model_args": {"blocks": 3, "activation_name": "relu"}},
            report={"test_loss": 0.3125, "test_accuracy": 88.43, "train_seconds": 1580.30}),
    ),
    claims=(
        Claim("the residual CNN beats the baselines (LeNet-5, ResNet-50, plain CNN)", expect="residual_cnn"),
    ),
)  # fmt: skip
