"""What every route of the HTTP process reads: the settings, Redis, the model store and the predictor."""
from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from backend.core.settings import ServiceSettings
from backend.store.model_store import ModelStore
from backend.web.predictor import Predictor


@dataclass(frozen=True)
class WebContext:
    service: ServiceSettings
    redis: Redis
    store: ModelStore
    predictor: Predictor

    def connected(self, project_id: int) -> bool:
        """A project connected this backend once a /setup carrying the secret (and basic auth) recorded it."""
        return self.store.setup_record(project_id).read() is not None
