"""Table 7 of the first report: the fine learning-rate sweep, 1e-4 to 1e-3 in steps of 1e-4.

Learning rates are written as literals (not i * 1e-4) so that shared rows hash to the same run:
1e-4 and 1e-3 are Table 6's runs (and rows of the same key, ``lr_key``), 2e-4 is Table 8's byclass run.
"""

from training.experiments.spec import Claim, Row, Spec, lr_key

_REPORT = {  # lr: (test loss, test accuracy %, train seconds)
    1e-4: (0.3071, 88.32, 1382.78), 2e-4: (0.3067, 88.41, 1005.71), 3e-4: (0.3092, 88.37, 932.36),
    4e-4: (0.3090, 88.26, 803.46), 5e-4: (0.3091, 88.28, 709.32), 6e-4: (0.3109, 88.37, 808.81),
    7e-4: (0.3098, 88.24, 673.69), 8e-4: (0.3106, 88.26, 704.26), 9e-4: (0.3107, 88.22, 669.50),
    1e-3: (0.3100, 88.22, 671.94),
}  # fmt: skip

SPEC = Spec(
    name="table7",
    title="Table 7: learning rate, fine (residual CNN, 3 blocks, Nadam, swish, byclass)",
    base={"model": "residual_cnn", "split": "byclass", "optimizer": "nadam",
          "model_args": {"blocks": 3, "activation_name": "swish"}},
    rows=tuple(
        Row(lr_key(lr), f"{lr:.0e}", {"lr": lr},
            report={"test_loss": loss, "test_accuracy": acc, "train_seconds": secs})
        for lr, (loss, acc, secs) in _REPORT.items()
    ),
    claims=(Claim("2e-4 is the best learning rate", expect=lr_key(2e-4)),),
)  # fmt: skip
