"""Label Studio's ML-backend protocol: ``/health``, ``/setup``, ``/predict``, ``/webhook`` and ``/train``.

None of them trains or calls Label Studio. ``/webhook`` and ``/train`` only enqueue (webhook bodies are
triggers: the task ids they name are hints for the next read); ``/predict`` serves the version Label Studio
was switched to; ``/setup`` validates the project's settings and records them.
"""
from __future__ import annotations

import logging

from flask import jsonify, request
from redis.exceptions import RedisError

from backend.core.exceptions import NotConnectedHere, TooLarge
from backend.core.labels import parse_label_config
from backend.core.metrics import record_webhook
from backend.core.settings import ProjectSettings
from backend.jobs.queueing import FINETUNE, enqueue, enqueue_retrain
from backend.jobs.task_hints import add_hints, hinted_task_ids, request_resync
from backend.store.setup_record import SetupRecord
from backend.web import requests
from backend.web.context import WebContext
from strategies import STRATEGY_NAMES

log = logging.getLogger(__name__)

#: Actions that change what the ranking should be: labels, and new tasks (ranked by cold start at once).
RETRAIN_ACTIONS = frozenset(
    {
        "ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "ANNOTATIONS_DELETED", "ANNOTATIONS_CREATED",
        "START_TRAINING", "TASKS_CREATED", "TASKS_DELETED",
    }
)


def health():
    return jsonify(status="UP", model_class="TextClassifier", strategies=list(STRATEGY_NAMES))


class ProtocolRoutes:
    def __init__(self, context: WebContext):
        self.context = context

    def setup(self):
        body = requests.json_body()
        project_id = requests.project_id(body)
        parse_label_config(requests.required(body, "schema", str))
        settings = ProjectSettings.parse(body.get("extra_params"))
        hostname, token = requests.optional_str(body, "hostname"), requests.optional_str(body, "access_token")
        store = self.context.store
        connecting = not self.context.connected(project_id)
        store.setup_record(project_id).save(SetupRecord(settings, hostname, token))
        if connecting:
            # The first /setup of a project: rank its pool now (cold start), so LS's first task is a good one.
            # LS shows a failed /setup as a broken connection, so a Redis outage here only costs this
            # head start: the first label's webhook ranks the pool all the same.
            try:
                enqueue_retrain(self.context.redis, self.context.service, project_id, reason="connected")
            except RedisError as error:
                log.warning("project %s connected, but its first ranking was not queued: %s", project_id, error)
        active = store.active(project_id)
        return jsonify(model_version=active.name if active else "untrained")

    def predict(self):
        body = requests.json_body()
        project_id = requests.project_id(body)
        spec = parse_label_config(requests.required(body, "label_config", str))
        tasks = requests.required(body, "tasks", list)
        limit = self.context.service.max_predict_tasks
        if len(tasks) > limit:
            raise TooLarge(f"{len(tasks)} tasks in one /predict; the limit is {limit} (AL_MAX_PREDICT_TASKS)")
        return jsonify(results=self.context.predictor.predict(project_id, spec, tasks))

    def webhook(self):
        redis, service = self.context.redis, self.context.service
        request.max_content_length = service.max_webhook_bytes
        body = requests.json_body()
        action = requests.required(body, "action", str)
        if action not in RETRAIN_ACTIONS:
            record_webhook(redis, action, "ignored")
            return jsonify(status="ignored", action=action[:64])
        project_id = requests.project_id(body)
        if not self.context.connected(project_id):
            record_webhook(redis, action, "refused")
            raise NotConnectedHere(f"webhook {action} for project {project_id}, which never connected this backend (no /setup from it)")
        add_hints(redis, project_id, hinted_task_ids(body))
        if action == "START_TRAINING":
            request_resync(redis, project_id, action)
        # The fast retrain first: a lone worker takes queued jobs in order, and the ranking should not wait
        # for a fine-tune.
        enqueued = enqueue_retrain(redis, service, project_id, reason=action)
        if action == "START_TRAINING":
            self._enqueue_full_path(project_id, action)
        result = "coalesced" if enqueued.coalesced else "queued"
        record_webhook(redis, action, result)
        return jsonify(status=result, job_id=enqueued.job_id), 201

    def train(self):
        """Older LS versions POST /train with all annotations; like the webhook, it is only a trigger.

        It is also how an owner asks for a full re-read of the project's tasks (``backend.labelstudio.task_mirror``)."""
        project_id = requests.project_id(requests.json_body())
        if not self.context.connected(project_id):
            raise NotConnectedHere(f"/train for project {project_id}, which never connected this backend (no /setup from it)")
        request_resync(self.context.redis, project_id, "train")
        enqueued = enqueue_retrain(self.context.redis, self.context.service, project_id, reason="train")
        self._enqueue_full_path(project_id, "train")
        return jsonify(status="coalesced" if enqueued.coalesced else "queued", job={"id": enqueued.job_id}), 201

    def _enqueue_full_path(self, project_id: int, reason: str) -> None:
        """An owner's explicit "train now" fine-tunes the encoder at once in ``model_mode: finetune``."""
        record = self.context.store.setup_record(project_id).read()
        if record is not None and record.settings.model_mode == "finetune":
            enqueue(self.context.redis, self.context.service, project_id, reason, FINETUNE)
