"""A small JSON document on disk that one process writes and many read, shared through ``MODEL_DIR``.

Writes replace the file atomically (write a temporary file, fsync, rename), so a reader sees the old or the
new document, never half of one. Reads are cached until the file changes: ``/setup`` and ``/predict`` read
these files on every call, and a ``stat`` is far cheaper than parsing.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class JsonFile:
    def __init__(self, path: Path, mode: int = 0o644):
        self.path = Path(path)
        self.mode = mode
        self._cache: tuple[tuple[int, int], Any] | None = None

    def read(self) -> Any | None:
        """The document, or None when the file does not exist."""
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        # Every write replaces the file, so a new inode marks a change even within one mtime tick.
        stamp = (status.st_ino, status.st_mtime_ns)
        if self._cache is None or self._cache[0] != stamp:
            self._cache = (stamp, json.loads(self.path.read_text()))
        return self._cache[1]

    def write(self, document: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=f".{self.path.name}-", dir=self.path.parent)
        try:
            os.fchmod(fd, self.mode)
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(staging, self.path)
        finally:
            if os.path.exists(staging):
                os.unlink(staging)
