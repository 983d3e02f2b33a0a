"""What webhooks tell the next read, kept in Redis: task ids to re-read, and requests for a full resync.

Webhook bodies are triggers, not data (anyone who knows the URL can send one): a hinted task is only
re-read from Label Studio (``backend.labelstudio.task_mirror``), so a forged hint costs one lookup and changes nothing.
"""
from __future__ import annotations

from typing import Any

from redis import Redis

from backend.core.keys import resync_key, task_hints_key
from backend.jobs.project_lock import delete_if_equal

#: Task ids kept from one webhook; a bigger batch (a bulk delete) is caught by the task-count check instead.
MAX_HINTS_PER_WEBHOOK = 10_000
#: Hints outlive a worker outage, but not forever: the periodic full resync covers anything older.
HINT_TTL_S = 7 * 24 * 3600


def hinted_task_ids(body: dict[str, Any]) -> list[int]:
    """Task ids a webhook body names (``task``, ``tasks``, ``annotation.task``, ``annotations[].task``)."""
    named: list[Any] = []
    task = body.get("task")
    named.append(task.get("id") if isinstance(task, dict) else None)
    tasks, annotations = body.get("tasks"), body.get("annotations")
    for item in tasks if isinstance(tasks, list) else []:
        named.append(item.get("id") if isinstance(item, dict) else item)
    for annotation in [body.get("annotation"), *(annotations if isinstance(annotations, list) else [])]:
        if isinstance(annotation, dict):
            named.append(annotation.get("task"))
    ids = [value for value in named if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63]
    return list(dict.fromkeys(ids))[:MAX_HINTS_PER_WEBHOOK]


def add_hints(redis: Redis, project_id: int, task_ids: list[int]) -> None:
    if task_ids:
        key = task_hints_key(project_id)
        with redis.pipeline() as pipe:
            pipe.sadd(key, *task_ids).expire(key, HINT_TTL_S).execute()


def pending_hints(redis: Redis, project_id: int) -> list[int]:
    return sorted(int(value) for value in redis.smembers(task_hints_key(project_id)))


def clear_hints(redis: Redis, project_id: int, task_ids: list[int]) -> None:
    """Forget the hints a read used; hints that arrived during it stay for the next read."""
    if task_ids:
        redis.srem(task_hints_key(project_id), *task_ids)


def request_resync(redis: Redis, project_id: int, reason: str) -> None:
    redis.set(resync_key(project_id), reason[:200], ex=HINT_TTL_S)


def pending_resync(redis: Redis, project_id: int) -> str | None:
    reason = redis.get(resync_key(project_id))
    return reason.decode() if reason is not None else None


def clear_resync(redis: Redis, project_id: int, reason: str) -> None:
    """Forget the request a full read answered; one made during the read (another reason) stays."""
    delete_if_equal(redis, resync_key(project_id), reason.encode())
