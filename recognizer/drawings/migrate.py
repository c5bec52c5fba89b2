"""Opening an older store with today's code: one step per schema version, each inside the caller's transaction, so
a migration is whole or not at all and loses no drawing.

Version 1 -> 2 adds the strokes (NULL: a version-1 drawing has none), the source ('': not recorded), the suspect
mark (worked out from the answers each drawing already holds, as ``Drawing.make`` marks a new one) and the review.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from .record import is_suspect

V2_COLUMNS = (
    "ALTER TABLE drawings ADD COLUMN strokes TEXT",  # JSON list of strokes; NULL when there are none
    "ALTER TABLE drawings ADD COLUMN source TEXT NOT NULL DEFAULT ''",  # canvas | upload | api; '' before v2
    "ALTER TABLE drawings ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0",  # 1: in no answering model's top 5
    "ALTER TABLE drawings ADD COLUMN review TEXT NOT NULL DEFAULT ''",  # '' or 'accepted'
    "CREATE INDEX IF NOT EXISTS drawings_suspect ON drawings (suspect)",
)


def v1_to_v2(conn: sqlite3.Connection) -> None:
    for statement in V2_COLUMNS:
        conn.execute(statement)
    rows = conn.execute("SELECT seq, character, answers FROM drawings").fetchall()
    marked = [(seq,) for seq, character, answers in rows if is_suspect(character, json.loads(answers))]
    conn.executemany("UPDATE drawings SET suspect = 1 WHERE seq = ?", marked)


STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {1: v1_to_v2}  # from version -> the step to the next


def migrate(conn: sqlite3.Connection, version: int, target: int) -> list[int]:
    """Run the steps from ``version`` up to ``target`` on ``conn`` (in an open transaction); the versions passed."""
    passed = []
    while version < target:
        if version not in STEPS:
            raise ValueError(f"no migration from schema version {version}")
        STEPS[version](conn)
        version += 1
        passed.append(version)
    return passed
