"""What this backend wrote to a Label Studio project: the proof of ownership that pruning relies on.

One small JSON file per project, ``MODEL_DIR/project-<id>/ledger.json``, beside the model versions:
- ``written``: prediction versions this backend wrote to the project and has not deleted yet. A version is
  recorded *before* its first prediction is sent, so a write killed halfway is still known and pruned.
  Pruning deletes nothing else, whatever its name: an owner's own versions are never in the ledger.
- ``active``: the version this backend switched the project to, once Label Studio held all of its
  predictions. ``/predict`` and ``/setup`` serve this version, never a newer one that is only on disk.
- ``sampling_set``: whether the backend already set *Uncertainty sampling* once; it never sets it again,
  so an owner who picks another order keeps it.
- ``ls_model_version`` / ``ls_sampling`` / ``checked_at``: what Label Studio reported at the last check.

It lives on disk, not in Redis, so losing Redis loses no proof of ownership. Only jobs holding the
project's lock write it; each write replaces the file atomically, so readers never see half of one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from backend.core.json_file import JsonFile

LEDGER_FILE = "ledger.json"


@dataclass(frozen=True)
class Ledger:
    written: tuple[str, ...] = ()
    active: str | None = None
    sampling_set: bool = False
    ls_model_version: str | None = None
    ls_sampling: str | None = None
    checked_at: float | None = None

    def with_written(self, version: str) -> "Ledger":
        return replace(self, written=self.written if version in self.written else (*self.written, version))

    def without(self, versions: set[str]) -> "Ledger":
        return replace(self, written=tuple(v for v in self.written if v not in versions))

    def prunable(self, ls_versions: set[str], ls_active: str | None) -> list[str]:
        """Versions to delete from Label Studio: written by this backend, and neither active here nor in LS."""
        keep = {self.active, ls_active}
        return [version for version in self.written if version in ls_versions and version not in keep]

    def to_dict(self) -> dict:
        return {**asdict(self), "written": list(self.written)}


class LedgerFile:
    def __init__(self, project_dir: Path):
        self.file = JsonFile(Path(project_dir) / LEDGER_FILE)

    def read(self) -> Ledger:
        payload = self.file.read()
        return Ledger(**{**payload, "written": tuple(payload["written"])}) if payload else Ledger()

    def write(self, ledger: Ledger) -> None:
        self.file.write(ledger.to_dict())
