"""Model versions on disk, published atomically.

Layout: ``MODEL_DIR/project-<id>/<version>/`` holds ``meta.json``, the model files and ``pool.npz`` (the
pool ranking this version wrote to Label Studio), and ``MODEL_DIR/project-<id>/ledger.json`` records which
versions went to Label Studio (``backend.store.ledger``). A version is written under a hidden staging folder and
renamed into place once complete, so a reader never sees a half-written version; a staging folder left by
a killed worker is removed by the next job that holds the project's lock. Versions are immutable after
that, which lets readers cache them by path.

Version names carry the project: ``al-p<project>-v<sequence>-<UTC time>``. The name tells a person whose
version it is; the ledger is what proves it.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from backend.store.history import VersionHistory
from backend.store.ledger import LedgerFile
from backend.store.pool_ranking import PoolRanking
from backend.store.setup_record import SetupFile
from backend.store.version_meta import VersionMeta

_VERSION_RE = re.compile(r"^al-p(\d+)-v(\d{4,})-(\d{8}T\d{6}Z)$")
_STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class ModelVersion:
    project_id: int
    name: str
    path: Path

    @property
    def sequence(self) -> int:
        return int(_VERSION_RE.match(self.name).group(2))

    def meta(self) -> VersionMeta:
        return VersionMeta.load(self.path)

    def pool(self) -> PoolRanking:
        return PoolRanking.load(self.path)


class ModelStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._files: dict[tuple[type, int], Any] = {}

    def _project_file(self, kind: type, project_id: int):
        """One reader per project file, so its parse cache lives as long as the store."""
        key = (kind, int(project_id))
        if key not in self._files:
            self._files[key] = kind(self.project_dir(project_id))
        return self._files[key]

    def ledger(self, project_id: int) -> LedgerFile:
        return self._project_file(LedgerFile, project_id)

    def setup_record(self, project_id: int) -> SetupFile:
        return self._project_file(SetupFile, project_id)

    def history(self, project_id: int) -> VersionHistory:
        return self._project_file(VersionHistory, project_id)

    def active(self, project_id: int) -> ModelVersion | None:
        """The version Label Studio was switched to (``Ledger.active``), if it is still on disk."""
        name = self.ledger(project_id).read().active
        return self.get(project_id, name) if name else None

    def project_dir(self, project_id: int) -> Path:
        return self.root / f"project-{int(project_id)}"

    def versions(self, project_id: int) -> list[ModelVersion]:
        """Complete versions, oldest first."""
        folder = self.project_dir(project_id)
        if not folder.is_dir():
            return []
        found = [
            ModelVersion(project_id, entry.name, Path(entry.path))
            for entry in os.scandir(folder)
            if entry.is_dir() and (match := _VERSION_RE.match(entry.name)) and int(match.group(1)) == int(project_id)
        ]
        return sorted(found, key=lambda version: version.sequence)

    def latest(self, project_id: int) -> ModelVersion | None:
        versions = self.versions(project_id)
        return versions[-1] if versions else None

    def get(self, project_id: int, name: str) -> ModelVersion | None:
        path = self.project_dir(project_id) / name
        match = _VERSION_RE.match(name)
        if match is None or int(match.group(1)) != int(project_id) or not path.is_dir():
            return None
        return ModelVersion(project_id, name, path)

    @contextmanager
    def publish(self, project_id: int) -> Iterator[tuple[str, Path]]:
        """Yield ``(version_name, staging_dir)``; on clean exit the folder becomes visible at once.

        The caller must hold the project's retrain lock, so sequence numbers cannot collide.
        """
        folder = self.project_dir(project_id)
        folder.mkdir(parents=True, exist_ok=True)
        latest = self.latest(project_id)
        sequence = latest.sequence + 1 if latest else 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"al-p{int(project_id)}-v{sequence:04d}-{stamp}"
        staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{name}-", dir=folder))
        try:
            yield name, staging
            _fsync_tree(staging)
            os.rename(staging, folder / name)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def remove_stale_staging(self, project_id: int) -> list[str]:
        """Staging folders of publishes that never finished (their worker was killed).

        The caller must hold the project's retrain lock: then no publish of this project is under way.
        """
        folder = self.project_dir(project_id)
        stale = [entry for entry in folder.glob(f"{_STAGING_PREFIX}*") if entry.is_dir()] if folder.is_dir() else []
        for entry in stale:
            shutil.rmtree(entry, ignore_errors=True)
        return [entry.name for entry in stale]

    def remove_older_than(self, project_id: int, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` versions, never the active one; returns the names removed."""
        active = self.ledger(project_id).read().active
        doomed = [v for v in self.versions(project_id)[:-keep] if v.name != active]
        for version in doomed:
            shutil.rmtree(version.path, ignore_errors=True)
        return [version.name for version in doomed]


def _fsync_tree(folder: Path) -> None:
    # A crash right after the rename must not leave a published version with empty files.
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
