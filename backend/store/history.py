"""One record per activated model version, for the dashboard's learning curve.

Local model folders are pruned to a few, but the curve needs every version, so each activation appends a
small record to ``MODEL_DIR/project-<id>/history.json``: labels, held-out metrics, the stopping signal, the
phase and strategy. A version's suggestion acceptance (of the labels given while it was active, the share
that agreed with its suggestion) is only known once the next version reads those labels, so it is filled
in then. Only jobs holding the project lock write the file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.core.json_file import JsonFile
from backend.store.version_meta import VersionMeta

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


def history_record(meta: VersionMeta, label_counts: dict[str, int]) -> dict[str, Any]:
    """A published version's point on the dashboard's curves; its acceptance is filled in by the next version."""
    stopping = meta.stopping
    last_round = stopping["history"][-1] if stopping["history"] and meta.trained else None
    return {
        "version": meta.version, "created_at": meta.created_at, "n_labeled": meta.n_labeled, "n_pool": meta.n_pool,
        "strategy": meta.strategy, "phase": meta.phase, "evaluation": meta.evaluation, "acceptance": None,
        "task_type": meta.task_type, "label_counts": label_counts,
        "stopping": {**last_round, **stopping["recommendation"]} if last_round else None,
    }
