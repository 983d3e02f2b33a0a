"""The last retrains' outcomes, in Redis, for ``/status`` and the dashboard: what each retrain did (trained,
ranked, skipped, refused or failed, and why). Losing them loses only that report."""
from __future__ import annotations

import json

from redis import Redis

from backend.core.keys import outcomes_key

#: Retrain outcomes kept per project, for the dashboard's table.
KEPT_OUTCOMES = 20


def save_retrain_outcome(redis: Redis, project_id: int, outcome: dict) -> None:
    """What a retrain did (trained, ranked, skipped, refused or failed, and why), for /status and the dashboard."""
    with redis.pipeline() as pipe:
        pipe.lpush(outcomes_key(project_id), json.dumps(outcome, default=str))
        pipe.ltrim(outcomes_key(project_id), 0, KEPT_OUTCOMES - 1)
        pipe.execute()


def load_retrain_outcomes(redis: Redis, project_id: int) -> list[dict]:
    """The last retrains' outcomes, newest first."""
    return [json.loads(raw) for raw in redis.lrange(outcomes_key(project_id), 0, KEPT_OUTCOMES - 1)]
