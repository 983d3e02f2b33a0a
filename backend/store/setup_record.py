"""``SetupRecord``: what a project's last ``/setup`` said (settings, and Label Studio's host and token).

It is kept on disk, ``MODEL_DIR/project-<id>/setup.json`` (mode 0600, it holds a token), not in Redis: it is
also the record that the project connected this backend, which a webhook needs before anything is
enqueued, and it must survive Redis losing its data. ``/setup`` runs on nearly every Label Studio page
touch, so the file is rewritten only when something changed.

The settings a retrain runs with are not taken from here: the worker reads them from Label Studio's own
record of the connection (``backend.jobs.connection``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.core.json_file import JsonFile
from backend.core.settings import ProjectSettings

SETUP_FILE = "setup.json"


@dataclass(frozen=True)
class SetupRecord:
    settings: ProjectSettings
    #: Where Label Studio said it lives, and the project owner's token. The worker uses both together,
    #: and only when LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY are not set.
    hostname: str | None = None
    access_token: str | None = None

    def to_dict(self) -> dict:
        return {"settings": self.settings.to_dict(), "hostname": self.hostname, "access_token": self.access_token}


class SetupFile:
    def __init__(self, project_dir: Path):
        self.file = JsonFile(Path(project_dir) / SETUP_FILE, mode=0o600)

    def read(self) -> SetupRecord | None:
        """The last ``/setup``'s record, or None when this project never connected."""
        payload = self.file.read()
        if payload is None:
            return None
        return SetupRecord(ProjectSettings.parse(payload["settings"], env={}), payload.get("hostname"), payload.get("access_token"))

    def save(self, record: SetupRecord) -> None:
        if self.file.read() != record.to_dict():
            self.file.write(record.to_dict())
