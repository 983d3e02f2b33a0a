"""The HTTP process: Label Studio's ML-backend protocol, served by gunicorn (``backend.app:create_app()``).

It never trains. ``/webhook`` and ``/train`` only enqueue; ``/predict`` serves the newest published
version; ``/setup`` validates and stores the project's settings in one Redis write.
"""
from __future__ import annotations

import hmac
import logging
from functools import wraps
from typing import Any

from flask import Flask, jsonify, request
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from werkzeug.exceptions import HTTPException

from backend.labels import UnsupportedLabelConfig, parse_label_config
from backend.model_store import ModelStore
from backend.predictor import Predictor
from backend.project_state import (
    ProjectState,
    load_project_state,
    load_retrain_outcome,
    parse_project_id,
    save_project_state,
)
from backend.queueing import enqueue_retrain, pending_key
from backend.settings import ProjectSettings, ServiceSettings, SettingsError
from strategies import STRATEGY_NAMES

log = logging.getLogger(__name__)

RETRAIN_ACTIONS = frozenset(
    {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "ANNOTATIONS_DELETED", "ANNOTATIONS_CREATED", "START_TRAINING"}
)


class BadRequest(Exception):
    """The request is malformed or asks for something unsupported; answered with 400 and the message."""


def create_app(service: ServiceSettings | None = None, redis: Redis | None = None) -> Flask:
    service = service or ServiceSettings.from_env()
    # LS gives webhooks 1 s: a Redis that does not answer in 0.5 s is reported, not waited for.
    redis = redis or Redis.from_url(service.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    store = ModelStore(service.model_dir)
    predictor = Predictor(store)
    app = Flask(__name__)

    def protected(view):
        """Basic auth on routes LS calls with credentials (webhooks carry none, so /webhook is open)."""
        @wraps(view)
        def check(*args, **kwargs):
            if service.basic_auth_user:
                auth = request.authorization
                ok = (
                    auth is not None
                    and hmac.compare_digest(auth.username or "", service.basic_auth_user)
                    and hmac.compare_digest(auth.password or "", service.basic_auth_pass or "")
                )
                if not ok:
                    return jsonify(error="basic auth required"), 401, {"WWW-Authenticate": 'Basic realm="ml-backend"'}
            return view(*args, **kwargs)

        return check

    @app.errorhandler(BadRequest)
    @app.errorhandler(SettingsError)
    @app.errorhandler(UnsupportedLabelConfig)
    def bad_request(error):
        return jsonify(error=str(error)), 400

    @app.errorhandler(RedisError)
    def redis_down(error):
        log.error("redis unavailable: %s", error)
        return jsonify(error=f"the job queue (Redis) is unavailable: {error}"), 503

    @app.errorhandler(HTTPException)
    def http_error(error):
        return jsonify(error=error.description), error.code

    @app.get("/health")
    @app.get("/")
    def health():
        return jsonify(status="UP", model_class="TextClassifier", strategies=list(STRATEGY_NAMES))

    @app.post("/setup")
    @protected
    def setup():
        body = _json_body()
        project_id = _project_id(body)
        parse_label_config(_required(body, "schema", str))
        settings = ProjectSettings.parse(body.get("extra_params"))
        save_project_state(redis, project_id, ProjectState(settings, body.get("hostname"), body.get("access_token")))
        latest = store.latest(project_id)
        return jsonify(model_version=latest.name if latest else "untrained")

    @app.post("/predict")
    @protected
    def predict():
        body = _json_body()
        project_id = _project_id(body)
        spec = parse_label_config(_required(body, "label_config", str))
        tasks = _required(body, "tasks", list)
        for task in tasks:
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise BadRequest("every task must be an object with a 'data' object")
            if spec.value_field not in task["data"]:
                raise BadRequest(f"task {task.get('id')} has no field {spec.value_field!r} (the Text tag reads ${spec.value_field})")
        return jsonify(results=predictor.predict(project_id, spec, tasks))

    @app.post("/webhook")
    def webhook():
        body = _json_body()
        action = _required(body, "action", str)
        if action not in RETRAIN_ACTIONS:
            return jsonify(status="ignored", action=action)
        project_id = _project_id(body)
        enqueued = enqueue_retrain(redis, service, project_id, reason=action)
        return jsonify(status="coalesced" if enqueued.coalesced else "queued", job_id=enqueued.job_id), 201

    @app.post("/train")
    @protected
    def train():
        """Older LS versions POST /train with all annotations; like the webhook, it is only a trigger."""
        body = _json_body()
        enqueued = enqueue_retrain(redis, service, _project_id(body), reason="train")
        return jsonify(status="coalesced" if enqueued.coalesced else "queued", job={"id": enqueued.job_id}), 201

    @app.get("/versions")
    @protected
    def versions():
        project_id = _project_id(_json_body(optional=True) | request.args.to_dict())
        return jsonify(versions=[v.name for v in reversed(store.versions(project_id))])

    @app.get("/status")
    @protected
    def status():
        """What a project owner wants to see: current version, its metrics, the stopping signal, the queue."""
        project_id = _project_id(request.args.to_dict())
        latest = store.latest(project_id)
        meta = latest.meta() if latest else {}
        return jsonify(
            project=project_id,
            model_version=latest.name if latest else None,
            settings=load_project_state(redis, project_id).settings.to_dict(),
            evaluation=meta.get("evaluation"),
            stopping=meta.get("stopping"),
            n_labeled=meta.get("n_labeled"),
            n_pool=meta.get("n_pool"),
            versions=[v.name for v in reversed(store.versions(project_id))],
            last_retrain=load_retrain_outcome(redis, project_id),
            queue=_queue_status(redis, service, project_id),
        )

    return app


def _json_body(optional: bool = False) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        if optional:
            return {}
        raise BadRequest("the request body must be JSON")
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _required(body: dict[str, Any], key: str, kind: type):
    if key not in body:
        raise BadRequest(f"missing field {key!r}")
    if not isinstance(body[key], kind):
        raise BadRequest(f"field {key!r} must be a {kind.__name__}, got {type(body[key]).__name__}")
    return body[key]


def _project_id(body: dict[str, Any]) -> int:
    if "project" not in body:
        raise BadRequest("missing field 'project'")
    try:
        return parse_project_id(body["project"])
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _queue_status(redis: Redis, service: ServiceSettings, project_id: int) -> dict[str, Any]:
    queue = Queue(service.queue_name, connection=redis)
    pending = redis.get(pending_key(project_id))
    running = []
    for job_id in queue.started_job_registry.get_job_ids():
        job = Job.fetch(job_id, connection=redis)
        if job.args and job.args[0] == project_id:
            running.append({"job_id": job_id, "progress": job.get_meta(refresh=False).get("progress")})
    return {"pending_job": pending.decode() if pending else None, "running": running, "queued_total": queue.count}
