"""Table 5 of the first report: 1 to 4 residual blocks (byclass, Nadam 1e-3, swish).

The report ties 2 and 3 blocks at 88.37% and keeps 3. The 3-block row is Table 4's swish run.
"""

from training.experiments.spec import Claim, Row, Spec

_REPORT = {  # blocks: (test loss, test accuracy %, train seconds)
    1: (0.3190, 88.24, 1108.55), 2: (0.3136, 88.37, 1413.16), 3: (0.3264, 88.37, 1672.99), 4: (0.3303, 88.30, 1863.36),
}  # fmt: skip

SPEC = Spec(
    name="table5",
    title="Table 5: residual blocks (byclass, Nadam 1e-3, swish)",
    base={"model": "residual_cnn", "split": "byclass", "optimizer": "nadam", "lr": 1e-3,
          "model_args": {"activation_name": "swish"}},
    rows=tuple(
        Row(f"blocks_{n}", f"{n} block{'s' if n > 1 else ''}", {"model_args": {"blocks": n}},
            report={"test_loss": loss, "test_accuracy": acc, "train_seconds": secs})
        for n, (loss, acc, secs) in _REPORT.items()
    ),
    claims=(Claim("3 residual blocks is the best depth (the report ties 2 and 3 and keeps 3)", expect="blocks_3"),),
)  # fmt: skip
