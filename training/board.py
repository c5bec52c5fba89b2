"""A run's TensorBoard curves, written into its folder beside history.json: ``tensorboard --logdir runs`` shows every
run of a sweep side by side (one TensorBoard run per run folder, named by its id).

Per epoch: loss and accuracy (train and validation), the learning rate and images per second; at the end the test
loss and accuracy and a grid of misclassified test images. Everything is derived from the history rows, so a resumed
or warm-started run simply writes its history again into a fresh event file, after removing the files an earlier
process left: nothing a killed process wrote after its last checkpoint doubles a point. (TensorBoard's purge_step
alone was not enough: it reads a folder's files in name order, time then process id, so a resumed run started in the
same second as the killed one, with a lower process id, had its file read first and the killed run's points after.)
SummaryWriter writes from a background thread and the trainer flushes once per epoch, which costs nothing measurable
next to an epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

MISCLASSIFIED = 16  # test images shown at the end; a few are enough to see what the model confuses
# history row key -> TensorBoard tag (grouped so train and validation share a chart section)
SCALARS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_accuracy": "accuracy/train",
           "val_accuracy": "accuracy/val", "lr": "lr"}  # fmt: skip


class Board:
    """The event files of one run; ``history`` is what the run already has (empty for a fresh run)."""

    def __init__(self, path: Path, n_train: int, history: list[dict]) -> None:
        # The history is written again in full (a warm-started run's curve starts at epoch 1, as its history does),
        # so an earlier writer's files in this run's folder hold nothing that is not in it.
        for old in Path(path).glob("events.out.tfevents.*"):
            old.unlink()
        self.writer = SummaryWriter(str(path), purge_step=1)
        self.n_train = n_train
        for row in history:
            self.epoch(row)

    def epoch(self, row: dict) -> None:
        step = row["epoch"]
        for key, tag in SCALARS.items():
            if key in row:
                self.writer.add_scalar(tag, row[key], step)
        if row.get("seconds"):
            self.writer.add_scalar("images_per_second", self.n_train / row["seconds"], step)
        self.writer.flush()  # a killed run keeps every finished epoch's points

    def finish(self, step: int, test_loss: float, test_accuracy: float, images: np.ndarray, preds: np.ndarray,
               labels: np.ndarray, chars: tuple[str, ...]) -> None:  # fmt: skip
        """The test scores and the first misclassified test images (grid in reading order, 'true→predicted' in
        the text of the same tag), then close the files."""
        self.writer.add_scalar("test/loss", test_loss, step)
        self.writer.add_scalar("test/accuracy", test_accuracy, step)
        wrong = np.flatnonzero(preds != labels)[:MISCLASSIFIED]
        if len(wrong):
            grid = torch.from_numpy(images[wrong]).unsqueeze(1)  # uint8 [N, 1, 28, 28]
            self.writer.add_images("test/misclassified", grid, step, dataformats="NCHW")
            pairs = ", ".join(f"{chars[labels[i]]}→{chars[preds[i]]}" for i in wrong)
            self.writer.add_text("test/misclassified", f"true→predicted, in the grid's order: {pairs}", step)
        self.close()

    def close(self) -> None:
        self.writer.close()
