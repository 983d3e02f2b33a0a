"""One record per activated model version, for the dashboard's learning curve.

Local model folders are pruned to a few, but the curve needs every version, so each activation appends a
small record to ``MODEL_DIR/project-<id>/history.json``: labels, held-out metrics, the stopping signal, the
phase and strategy. A version's suggestion acceptance (of the labels given while it was active, the share
that agreed with its suggestion) is only known once the next version reads those labels, so it is filled
in then. Only jobs holding the project lock write the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from backend.evaluation import classification_metrics
from backend.json_file import JsonFile

if TYPE_CHECKING:
    from backend.model_store import PoolRanking

HISTORY_FILE = "history.json"


class VersionHistory:
    def __init__(self, project_dir: Path):
        self.file = JsonFile(Path(project_dir) / HISTORY_FILE)

    def read(self) -> list[dict[str, Any]]:
        """Records oldest first."""
        return list(self.file.read() or [])

    def append(self, record: dict[str, Any], previous_acceptance: dict[str, Any] | None) -> None:
        """Add the new active version, and the acceptance of the version it replaces."""
        records = self.read()
        if records and previous_acceptance is not None:
            records[-1] = {**records[-1], "acceptance": previous_acceptance}
        self.file.write([*records, record])


def suggestion_acceptance(
    ranking: "PoolRanking", labeled: Iterable[tuple[int, str]], classes: Sequence[str]
) -> dict[str, Any] | None:
    """How often annotators took a version's suggestion: over tasks it suggested a class for that are labeled now.

    ``ranking`` is what the version wrote; ``labeled`` pairs task ids with their label now. None when the
    version made no suggestions (a cold-start ranking).
    """
    suggested = {int(task): int(label) for task, label in zip(ranking.task_ids, ranking.predicted) if label >= 0}
    if not suggested:
        return None
    answers = np.array(
        [(suggested[task], classes.index(label)) for task, label in labeled if task in suggested], dtype=np.int64
    ).reshape(-1, 2)
    accepted = int((answers[:, 0] == answers[:, 1]).sum())
    # Prequential (Dawid 1984): each of these labels arrived after the version went live, so its suggestions
    # are predictions on data it never saw; macro P/R/F1 over them, next to the acceptance rate.
    prequential = classification_metrics(answers[:, 1], answers[:, 0]) if len(answers) else None
    return {"n": len(answers), "accepted": accepted, "rate": accepted / len(answers) if len(answers) else None,
            "prequential": prequential}

