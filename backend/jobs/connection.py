"""Which Label Studio a job talks to, and the proof that the project connected this backend.

A job acts on a project only after Label Studio itself confirms the connection: the project's ML-backend
record must point at this backend's secret URL (``backend.labelstudio.url_secret``). A forged webhook or ``/setup``
for any other project therefore changes nothing in Label Studio. The same record holds the project's
extra params, so the settings a retrain runs with are always the ones the owner entered in Label Studio,
whatever Redis or the local disk lost.

URL and key come from one source together: ``LABEL_STUDIO_URL`` + ``LABEL_STUDIO_API_KEY`` from the
environment, or else the host and token of the project's own ``/setup``. The environment's key never goes
to a host that arrived in a request.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis

from backend.core.exceptions import NotConnected
from backend.core.labels import LabelSpec, parse_label_config
from backend.core.settings import ProjectSettings, ServiceSettings
from backend.labelstudio.client import LabelStudioClient
from backend.labelstudio.url_secret import resolve_url_secret, url_carries_secret
from backend.labelstudio.write_gate import WriteGate
from backend.store.model_store import ModelStore

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Connection:
    """A project's connection to this backend, as Label Studio records it."""

    project_id: int
    ml_backend_id: int
    settings: ProjectSettings
    ls: LabelStudioClient

    def label_spec(self) -> LabelSpec:
        """The project's label config as Label Studio holds it now."""
        return parse_label_config(self.ls.project(self.project_id)["label_config"])


def label_studio_for(service: ServiceSettings, store: ModelStore, redis: Redis, project_id: int) -> LabelStudioClient:
    """The client for this project's Label Studio, with URL and key from one source."""
    if service.label_studio_url and service.label_studio_api_key:
        url, key = service.label_studio_url, service.label_studio_api_key
    else:
        record = store.setup_record(project_id).read()
        if record is None or not record.hostname or not record.access_token:
            raise NotConnected(
                f"project {project_id}: no LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY set, and no /setup from this project "
                "with a host and token yet (Label Studio sends one when a project page opens)"
            )
        url, key = record.hostname, record.access_token
    return LabelStudioClient(url, key, write_gate=WriteGate(redis, url))


def connect(service: ServiceSettings, store: ModelStore, redis: Redis, project_id: int) -> Connection:
    """Confirm the connection with Label Studio and read the owner's settings from it."""
    ls = label_studio_for(service, store, redis, project_id)
    secret = resolve_url_secret(service)
    ours = sorted(
        (record for record in ls.ml_backends(project_id) if url_carries_secret(record.get("url") or "", secret)),
        key=lambda record: record["id"],
    )
    if not ours:
        raise NotConnected(
            f"project {project_id} has no ML backend connected at this backend's secret URL; nothing was done to it"
        )
    if len(ours) > 1:
        log.warning("project %s: %d connections to this backend; using the oldest, id %s", project_id, len(ours), ours[0]["id"])
    record = ours[0]
    return Connection(project_id, record["id"], ProjectSettings.parse(record.get("extra_params"), env=None), ls)
