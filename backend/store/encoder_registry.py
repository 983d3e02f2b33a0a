"""Which encoder a project's fast path embeds with: the base model, then each fine-tune the full path adopted.

``MODEL_DIR/project-<id>/encoders.json`` lists every full-path decision, newest last: ``adopted`` ones name a
folder under ``encoders/`` holding the fine-tuned weights and tokenizer; ``rejected`` and ``stale`` ones say
why they were not used. The fast path always refits its head on the newest adopted encoder's embeddings.

Two rules keep a fast retrain from ever replacing a better model with a worse one:
- a fine-tune is adopted only if, on the labels it held out, it scores at least as well as the head over
  the encoder in use, trained on the same labels (``backend.jobs.full_path``);
- a fine-tune trained on fewer labels than the adopted one is ``stale`` (a slower job that finished
  later), and never replaces it.

Only full-path jobs write the registry, one at a time (they hold the project's "finetune" lock). An adoption
also holds the project lock, so the fast path sees the new encoder and its embeddings together.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backend.core.json_file import JsonFile

REGISTRY_FILE = "encoders.json"
ENCODERS_DIR = "encoders"
#: Adopted encoders kept on disk: the newest, and the one before it while versions built on it may still serve.
KEEP_ENCODERS = 2
#: Decisions kept in the registry for /status and the dashboard.
KEEP_DECISIONS = 50


@dataclass(frozen=True)
class Decision:
    """One finished full path: ``adopted``, ``rejected`` or ``stale``, with both sides of the comparison."""

    outcome: str
    n_labels: int
    finetuned: dict[str, Any]
    baseline: dict[str, Any]
    reason: str
    decided_at: float
    folder: str | None = None
    job_id: str | None = None
    #: How the encoder was tuned (``finetune_method``); decisions recorded before the setting existed were ``classifier``.
    method: str = "classifier"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EncoderRegistry:
    def __init__(self, project_dir: Path):
        self.project_dir = Path(project_dir)
        self.file = JsonFile(self.project_dir / REGISTRY_FILE)
        self.folder = self.project_dir / ENCODERS_DIR

    def decisions(self) -> list[Decision]:
        return [Decision(**row) for row in (self.file.read() or [])]

    def newest(self) -> Decision | None:
        """The adopted encoder the fast path uses; None means the base model."""
        adopted = [d for d in self.decisions() if d.outcome == "adopted" and (self.folder / d.folder).is_dir()]
        return adopted[-1] if adopted else None

    def path_of(self, encoder: Decision | None) -> str | None:
        """An adopted encoder's folder; None (the base model) for None."""
        return str(self.folder / encoder.folder) if encoder else None

    def staging_folder(self) -> Path:
        """An empty folder to save a fine-tune into before it is judged; ``record`` moves or removes it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.folder))

    def record(self, decision: Decision, staged: Path | None) -> Decision:
        """Adopt the staged encoder (when ``decision`` says so) or discard it; either way log the decision."""
        if decision.outcome == "adopted":
            name = f"encoder-{int(decision.decided_at)}-{decision.n_labels}"
            staged.rename(self.folder / name)
            decision = Decision(**{**decision.to_dict(), "folder": name})
        elif staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        self.file.write([row.to_dict() for row in _trimmed([*self.decisions(), decision])])
        self._remove_old()
        return decision

    def _remove_old(self) -> None:
        """Delete all but the newest adopted encoders, and staging left by killed jobs (the caller holds the lock)."""
        # Decisions are in the order they were made: the last adoptions are the newest encoders.
        keep = {d.folder for d in [d for d in self.decisions() if d.outcome == "adopted"][-KEEP_ENCODERS:]}
        for entry in self.folder.iterdir() if self.folder.is_dir() else []:
            if entry.is_dir() and entry.name not in keep and not _recent_staging(entry):
                shutil.rmtree(entry, ignore_errors=True)


def _trimmed(decisions: list[Decision]) -> list[Decision]:
    """The newest ``KEEP_DECISIONS`` decisions, plus the newest ``KEEP_ENCODERS`` adoptions however old, in order:
    a long run of rejections must never push the encoder in use out of the registry."""
    adopted = [i for i, d in enumerate(decisions) if d.outcome == "adopted"][-KEEP_ENCODERS:]
    return [decisions[i] for i in sorted({*adopted, *range(max(0, len(decisions) - KEEP_DECISIONS), len(decisions))})]


def _recent_staging(entry: Path) -> bool:
    """A staging folder a running fine-tune may still be writing (an hour covers the slowest CPU save)."""
    return entry.name.startswith(".staging-") and time.time() - entry.stat().st_mtime < 3600
