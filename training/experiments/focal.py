"""Section 5.2 of the first report: cross-entropy vs a focal-loss grid on the residual CNN (byclass).

The report's code builds the residual CNN with ReLU and compiles it with Adam (its focal notebook),
so this table uses Table 2's residual settings and its cross-entropy row is that same run. The
report used Keras' sigmoid focal loss; here focal loss is the softmax form alpha * (1 - p_t)^gamma * CE
(training/losses.py), the one the second report uses too.
"""

from training.experiments.spec import Claim, Row, Spec

_GRID = [  # (gamma, alpha, report accuracy %)
    (1.0, 1.0, 87.88), (2.0, 1.0, 86.97), (3.0, 1.0, 86.80),
    (0.5, 0.15, 87.82), (0.75, 0.15, 86.43), (1.0, 0.15, 86.38),
    (0.5, 0.25, 86.44), (0.75, 0.25, 86.38), (1.0, 0.25, 86.39),
    (0.5, 0.35, 86.35), (0.75, 0.35, 86.43), (1.0, 0.35, 86.38),
]  # fmt: skip

SPEC = Spec(
    name="focal",
    title="Focal loss (residual CNN, byclass, ReLU, Adam 1e-3)",
    base={"model": "residual_cnn", "split": "byclass", "optimizer": "adam", "lr": 1e-3,
          "model_args": {"blocks": 3, "activation_name": "relu"}},
    rows=(
        Row("cross_entropy", "cross-entropy", {"loss": "cross_entropy"}, report={"test_accuracy": 88.34}),
        *(Row(f"focal_g{g:g}_a{a:g}", f"focal gamma {g:g}, alpha {a:g}",
              {"loss": "focal", "focal_gamma": g, "focal_alpha": a}, report={"test_accuracy": acc})
          for g, a, acc in _GRID),
    ),
    claims=(
        Claim("focal loss does not beat cross-entropy", expect="cross_entropy", metrics=("val_accuracy",)),
    ),
    notes="Validation losses of different losses are not comparable, so only validation accuracy decides.",
)  # fmt: skip
