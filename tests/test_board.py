"""A resumed run's TensorBoard curve holds one point per epoch, its own, whatever the order of the event files."""

from __future__ import annotations

from pathlib import Path

from board_support import scalars

from training.board import Board


def rows(values: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": v, "seconds": 1.0} for i, v in enumerate(values)]


def test_a_resumed_run_replaces_what_the_killed_process_wrote(tmp_path: Path) -> None:
    """The killed process wrote epochs 1-3 (its epoch 3 after the last checkpoint); the resumed one has epochs 1-2
    from its history and trains epoch 3 again. The killed file is named to sort after the new one (same second,
    higher process id), the order in which TensorBoard's purge alone let the stale points through."""
    killed = Board(tmp_path, n_train=10, history=[])
    for row in rows([3.0, 2.0, 1.5]):
        killed.epoch(row)
    killed.close()
    (old,) = tmp_path.glob("events.out.tfevents.*")
    old.rename(tmp_path / "events.out.tfevents.9999999999.host.99999.0")
    resumed = Board(tmp_path, n_train=10, history=rows([3.0, 2.0]))
    resumed.epoch(rows([3.0, 2.0, 1.25])[2])
    resumed.close()
    assert scalars(tmp_path)["loss/train"] == [(1, 3.0), (2, 2.0), (3, 1.25)]
