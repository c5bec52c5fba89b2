"""Table 6 of the first report: the coarse learning-rate sweep (3 blocks, Nadam, swish, byclass).

The 1e-3 row is Table 5's 3-block run; 1e-4 is shared with Table 7 (the same row key, ``lr_key``).
"""

from training.experiments.spec import Claim, Row, Spec, lr_key

_REPORT = {  # lr: (test loss, test accuracy %, train seconds)
    1e-2: (0.3223, 88.02, 652.85), 1e-3: (0.3120, 88.33, 758.32), 1e-4: (0.3071, 88.32, 1382.78),
    1e-5: (0.3328, 87.38, 1618.95), 1e-6: (0.4499, 84.48, 1634.89),
}  # fmt: skip

SPEC = Spec(
    name="table6",
    title="Table 6: learning rate, coarse (residual CNN, 3 blocks, Nadam, swish, byclass)",
    base={"model": "residual_cnn", "split": "byclass", "optimizer": "nadam",
          "model_args": {"blocks": 3, "activation_name": "swish"}},
    rows=tuple(
        Row(lr_key(lr), f"{lr:.0e}".replace("e-0", "e-"), {"lr": lr},
            report={"test_loss": loss, "test_accuracy": acc, "train_seconds": secs})
        for lr, (loss, acc, secs) in _REPORT.items()
    ),
    claims=(Claim("1e-3 is the best of the coarse grid", expect=lr_key(1e-3)),),
)  # fmt: skip
