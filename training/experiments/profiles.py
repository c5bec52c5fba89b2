"""Run budgets: the same specs at three sizes. Plain data, read by ``training.reproduce``.

- ``paper``: the report's protocol unchanged (every image of the split's training part, batch 500,
  up to 50 epochs with early stopping; Study B as printed, 5 seeds).
- ``quick``: the same settings on a fixed, class-stratified subset of each training and validation
  part, a capped number of epochs and batch 100, so that every table together finishes in about an
  hour on 2 CPU cores. See ``QUICK_BUDGET_NOTE`` (the results page repeats it).
- ``smoke``: seconds per run, for the tests; the numbers mean nothing.

``emnist`` applies to the EMNIST tables, ``per_model`` overrides it for one model, ``studyB`` applies
to the small-MNIST study, ``pretrain`` to a table's self-supervised pretrainings (PretrainConfig fields,
training/ssl.py, over the spec's). ``max_epochs`` caps a row's epochs (a row asking for fewer keeps its own);
``limit_train``/``limit_val`` become the RunConfig fields of the same names; ``batch_size`` replaces
the row's; ``seeds`` keeps the first n of a spec's SEEDS. The test part is always scored whole.
"""

from __future__ import annotations

PROFILES: dict[str, dict] = {
    "paper": {
        "description": "the report's protocol unchanged",
        "emnist": {},
        "per_model": {},
        "studyB": {},
        "pretrain": {},
    },
    "quick": {
        "description": "the report's settings on 3,000 training and 1,500 validation images per run (a fixed "
        "class-stratified subset), at most 3 epochs, batch 100 instead of 500 (ResNet-50: 3,000 and 500 images, "
        "2 epochs); every test part whole; Study B as printed but with 3 seeds instead of 5",
        "emnist": {"limit_train": 3000, "limit_val": 1500, "max_epochs": 3, "batch_size": 100},
        "per_model": {"resnet50": {"limit_train": 3000, "limit_val": 500, "max_epochs": 2}},
        "studyB": {"seeds": 3},
        "pretrain": {"epochs": 8, "images_per_epoch": 10_000},
    },
    "final": {
        "description": "the shipped models' budget on CPU: the report's settings on at most 100,000 training images "
        "(a class-stratified subset; byclass-pool has 101,319) and at most 5 epochs, full validation and test parts; "
        "meant for table8 (`reproduce table8 --profile final --out assets/results/final`)",
        "emnist": {"limit_train": 100_000, "max_epochs": 5},
        "per_model": {},
        "studyB": {},
    },
    "lab": {
        "description": "the lab recipe's own budget (training/experiments/lab.py): every training image, the rows' "
        "epochs and early stopping as they set them; meant for a GPU (`reproduce lab --profile lab`)",
        "emnist": {},
        "per_model": {},
        "studyB": {},
    },
    "smoke": {
        "description": "32 training images, 1 epoch (Study B: 40 images, at most 2 epochs, 2 seeds): checks the "
        "plumbing only, the numbers mean nothing",
        "emnist": {"limit_train": 32, "limit_val": 32, "max_epochs": 1},
        "per_model": {"resnet50": {"limit_train": 16, "limit_val": 16}},
        "studyB": {"limit_train": 40, "max_epochs": 2, "seeds": 2},
        "pretrain": {"epochs": 2, "limit_unlabelled": 256, "batch_size": 64},
    },
}

# How the quick budget was chosen (measured 2026-11-22 on the 2-core CPU machine, shared with other work,
# load 3-4; one run at a time with one torch thread, which is what each of `--workers 2` uses):
# - residual CNN, 3,000 images x 3 epochs at batch 100, 1,500 validation images per epoch, the whole
#   12,675-image byclass-pool test part: 103 s (61 s of it training); validation accuracy 64%.
# - ResNet-50, 1,500 images x 2 epochs: 177 s (85 s training); so 3,000 x 2 is about 260 s.
# - Study B's CNN, 10 epochs of 400 images plus the 10,000-image MNIST test set: 63 s (3.1 s per
#   epoch of compute plus ~1.4 s writing its 260 MB checkpoint).
# - Batch 100, not 500: at batch 500, 4,000 images x 3 epochs are 24 optimizer steps; training accuracy
#   reached 50% while validation accuracy stayed at the majority class (5.7%), because BatchNorm's running
#   statistics had not settled. At batch 100 (120 steps) validation reached 68%.
# - One thread per run: the same residual run with torch's 2 threads took 352 s while another process
#   was busy, 3.4x slower than with 1 thread (the two threads wait on each other).
# Total: 45 residual runs x ~100 s + ResNet-50 ~260 s + three LeNet-5/plain-CNN runs ~1 min + Study B
# 3 seeds x ~12 min (130 CNN epochs and 8 MNIST-test scorings per seed; the 1/10/20/50/100-epoch runs are
# one warm-started chain) + Table 8's six cross-split scorings ~2 min + figures ~1 min: about 120
# run-minutes, so about an hour with `--workers 2` on an otherwise idle 2-core machine. Expect 1.5-2x
# that while other work shares the CPU; an interrupted run resumes where it stopped.
QUICK_BUDGET_NOTE = (
    "How this budget was chosen: on this 2-core machine one residual-CNN run at this size takes about 100 s "
    "with one torch thread (60 s training, the rest scoring 1,500 validation images per epoch and the whole "
    "test part), ResNet-50 about 260 s, and one Study B seed about 12 minutes (100 + 30 CNN epochs, 8 scorings "
    "of the 10,000-image MNIST test set). All tables: about 120 run-minutes, about an hour with `--workers 2` "
    "(one thread per run). Batch 100 replaces 500 because 24 steps at batch 500 left BatchNorm's running "
    "statistics unsettled (validation accuracy 5.7% while training accuracy was 50%); 120 steps at batch 100 "
    "reached 68%. ResNet-50 gets 60 steps and is far from trained: its row shows the budget, not the model. "
    "Differences smaller than about two validation standard errors (about 2.5 points at 1,500 images) are noise."
)
