"""A project's tasks as this backend last read them from Label Studio, refreshed by reading only what changed.

Re-reading every task on every label cost 16-18 s at 10k tasks (bench/warm_path.md), most of a retrain.
The mirror keeps, per task, the text under the config's field, the label of its newest submitted
annotation and whether LS counts it completed, in SQLite under ``MODEL_DIR/project-<id>/task-mirror/``.

A refresh is one of:

- **full**: every task, as before. Inline only when the mirror cannot serve without it: the first read, a
  changed label config, or a drift found by the count check.
- **incremental**: tasks whose ``updated_at`` is at or past the watermark minus ``OVERLAP_S``, plus the task
  ids webhooks named since the last read. LS bumps a task's ``updated_at`` when the task is created or
  edited and when one of its annotations is saved or deleted (``Annotation.update_task`` in LS 1.23).
  The watermark is LS's own clock (its ``Date`` header) when the read began, so this machine's clock never
  matters, and a task changed while a long read was paging is read again next time; the overlap covers
  transactions that commit after a later one.

The periodic full resync (every ``AL_RESYNC_S``) and one an owner asks for (``/train``, START_TRAINING) never
run inline: at 100k tasks a full read takes minutes, and the project lock would stop every label's retrain
for that long. ``RefreshReport.resync_due`` says one is due; ``backend.jobs.resync`` reads everything into a
staging mirror without the lock, swaps it in under the lock, and the next incremental read catches up on
what changed meanwhile.

Webhooks are hints, never data: a named task is re-read, and one LS no longer returns is dropped. Then the
mirror's task count must equal LS's ``task_number``; if it does not (a deletion with no webhook, a long import
transaction), the refresh falls back to a full read, so the mirror never serves a set of tasks LS lacks.

One writer at a time: the caller holds the project lock.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable, Iterator

from backend.core.labels import LabelSpec
from backend.core.progress import Progress
from backend.labelstudio.client import LabelStudioClient
from backend.labelstudio.rows import (
    LabeledTask,
    PoolTask,
    SkippedTasks,
    TaskRecord,
    ls_timestamp,
)

#: Seconds re-read before the watermark on each incremental refresh.
OVERLAP_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    text TEXT,
    label TEXT,
    completed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh read: ``mode`` is "full" or "incremental"; ``why`` says why a full read happened."""

    mode: str
    why: str
    read: int
    dropped: int
    n_tasks: int
    #: Why a full resync is due (it runs in ``backend.jobs.resync``), or None.
    resync_due: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def mirror_folder(project_dir: Path) -> Path:
    return Path(project_dir) / "task-mirror"


MIRROR_FILE = "tasks.sqlite3"


class TaskMirror:
    def __init__(self, folder: Path, resync_after_s: float, overlap_s: float = OVERLAP_S):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / MIRROR_FILE
        self.resync_after_s = resync_after_s
        self.overlap_s = overlap_s

    def refresh(
        self,
        ls: LabelStudioClient,
        project_id: int,
        spec: LabelSpec,
        *,
        hinted_ids: Iterable[int] = (),
        force_full: str | None = None,
        progress: Progress | None = None,
    ) -> RefreshReport:
        """Bring the mirror up to date with LS; ``force_full`` names a reason to read everything now."""
        with closing(self._connect()) as db, db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            why = force_full or self._full_read_reason(meta, spec)
            if why is None:
                report = self._incremental(db, ls, project_id, spec, meta["watermark"], set(hinted_ids))
                if report is not None:
                    return replace(report, resync_due=self._resync_reason(meta))
                why = "the task count differs from Label Studio's (a deletion without a webhook, or a late import)"
            return self._full(db, ls, project_id, spec, why, progress)

    @staticmethod
    def exists(folder: Path) -> bool:
        """Whether a mirror was ever written in ``folder`` (opening one creates it)."""
        return (Path(folder) / MIRROR_FILE).is_file()

    def replace_with(self, staging: "TaskMirror") -> None:
        """Swap in a mirror a resync built elsewhere; the caller holds the project lock."""
        os.replace(staging.path, self.path)

    def last_full_read(self) -> dict[str, str | float | None]:
        with closing(self._connect()) as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        at = meta.get("full_read_at")
        return {"at": float(at) if at else None, "why": meta.get("full_read_why")}

    def labeled(self) -> list[LabeledTask]:
        """Completed tasks with a text and a label, in id order."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, text, label FROM tasks WHERE completed AND text IS NOT NULL AND label IS NOT NULL ORDER BY id")
            return [LabeledTask(*row) for row in rows]

    def pool(self) -> list[PoolTask]:
        """Tasks LS does not count completed, with a text, in id order."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, text FROM tasks WHERE NOT completed AND text IS NOT NULL ORDER BY id")
            return [PoolTask(*row) for row in rows]

    def skipped(self, reason: str) -> SkippedTasks:
        """Tasks without a readable text under the config: counted and named, as a full read reports them."""
        skipped = SkippedTasks()
        with closing(self._connect()) as db:
            for (task_id,) in db.execute("SELECT id FROM tasks WHERE text IS NULL ORDER BY id"):
                skipped.add(task_id, reason)
        return skipped

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.executescript(_SCHEMA)
        return db

    def _full_read_reason(self, meta: dict[str, str], spec: LabelSpec) -> str | None:
        if "watermark" not in meta:
            return "first read"
        if meta.get("config") != config_key(spec):
            return "the label config changed"
        return None

    def _resync_reason(self, meta: dict[str, str]) -> str | None:
        age = time.time() - float(meta.get("full_read_at", 0))
        if age >= self.resync_after_s:
            return f"periodic resync (last full read {age:.0f} s ago; AL_RESYNC_S={self.resync_after_s:g})"
        return None

    def _full(
        self, db, ls: LabelStudioClient, project_id: int, spec: LabelSpec, why: str, progress: Progress | None
    ) -> RefreshReport:
        started = ls.server_time()
        total = ls.task_count(project_id)
        db.execute("DELETE FROM tasks")
        read = 0
        for batch in _batches(ls.all_tasks(project_id, spec), READ_BATCH):
            _upsert(db, batch)
            read += len(batch)
            if progress:
                progress("read tasks", read, max(read, total))
        _set_meta(db, watermark=started, config=config_key(spec), full_read_at=str(time.time()), full_read_why=why)
        return RefreshReport("full", why, read, 0, read)

    def _incremental(
        self, db, ls: LabelStudioClient, project_id: int, spec: LabelSpec, watermark: str, hinted: set[int]
    ) -> RefreshReport | None:
        """The changes since ``watermark`` and the hinted tasks; None when the counts then disagree with LS."""
        started = ls.server_time()
        since = ls_timestamp(datetime.fromisoformat(watermark) - timedelta(seconds=self.overlap_s))
        changed = {record.id: record for record in ls.tasks_updated_since(project_id, spec, since)}
        recheck = sorted(hinted - changed.keys())
        found = {record.id: record for record in ls.tasks_by_id(project_id, spec, recheck)} if recheck else {}
        gone = [task_id for task_id in recheck if task_id not in found]
        records = [*changed.values(), *found.values()]
        _upsert(db, records)
        db.executemany("DELETE FROM tasks WHERE id = ?", [(task_id,) for task_id in gone])
        n_tasks = db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        if n_tasks != ls.task_count(project_id):
            return None
        _set_meta(db, watermark=max(started, watermark))
        return RefreshReport("incremental", "", len(records), len(gone), n_tasks)


#: Tasks written to SQLite per batch during a full read (and per progress report).
READ_BATCH = 2000


def _batches(records: Iterable[TaskRecord], size: int) -> Iterator[list[TaskRecord]]:
    batch: list[TaskRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def config_key(spec: LabelSpec) -> str:
    """What a stored row depends on: the text field, the control's name and the class names."""
    return hashlib.blake2b(repr(spec).encode(), digest_size=8).hexdigest()


def _upsert(db: sqlite3.Connection, records: Iterable[TaskRecord]) -> None:
    db.executemany(
        "INSERT INTO tasks (id, text, label, completed) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET text = excluded.text, label = excluded.label, completed = excluded.completed",
        ((r.id, r.text, r.label, int(r.completed)) for r in records),
    )


def _set_meta(db: sqlite3.Connection, **values: str) -> None:
    db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())
