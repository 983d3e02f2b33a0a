"""The HTTP process: Label Studio's ML-backend protocol, served by gunicorn (``backend.app:create_app()``).

It never trains and never calls Label Studio. ``/webhook`` and ``/train`` only enqueue; ``/predict`` serves
the version Label Studio was switched to; ``/setup`` validates the project's settings and records them.

Every route but ``/health`` lives under the secret path segment (``backend.labelstudio.url_secret``): Label Studio is
connected to ``http://host:9090/<secret>`` and appends ``/setup``, ``/predict`` and ``/webhook`` to it. A
request without the secret gets 404 before its body is read. Basic auth, when configured, guards every
route but ``/health`` and ``/webhook`` (Label Studio sends webhooks without credentials).
"""
from __future__ import annotations

import hmac
import logging
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from backend.web.dashboard import CONTENT_SECURITY_POLICY, render_dashboard
from backend.store.encoder_registry import EncoderRegistry
from backend.core.labels import UnsupportedLabelConfig, parse_label_config
from backend.labelstudio.client import UNCERTAINTY_SAMPLING
from backend.core.metrics import metrics_response, record_webhook
from backend.store.model_store import ModelStore
from backend.web.predictor import Predictor
from backend.store.setup_record import SetupRecord, load_retrain_outcomes, parse_project_id
from backend.jobs.queueing import FINETUNE, RESYNC, RETRAIN, JobKind, enqueue, enqueue_retrain, pending_key
from backend.core.settings import ProjectSettings, ServiceSettings, SettingsError
from backend.jobs.task_hints import add_hints, hinted_task_ids, request_resync
from backend.labelstudio.task_mirror import TaskMirror, mirror_folder
from backend.labelstudio.url_secret import resolve_url_secret
from strategies import STRATEGY_NAMES

log = logging.getLogger(__name__)

#: Actions that change what the ranking should be: labels, and new tasks (ranked by cold start at once).
RETRAIN_ACTIONS = frozenset(
    {
        "ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "ANNOTATIONS_DELETED", "ANNOTATIONS_CREATED",
        "START_TRAINING", "TASKS_CREATED", "TASKS_DELETED",
    }
)


class BadRequest(Exception):
    """The request is malformed or asks for something unsupported; answered with 400 and the message."""


class NotConnectedHere(Exception):
    """A webhook for a project that never connected this backend; answered with 404, nothing enqueued."""


class TooLarge(Exception):
    """A request over a documented limit; answered with 413 and the message."""


def create_app(service: ServiceSettings | None = None, redis: Redis | None = None) -> Flask:
    service = service or ServiceSettings.from_env()
    # LS gives webhooks 1 s: a Redis that does not answer in 0.5 s is reported, not waited for.
    redis = redis or Redis.from_url(service.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    store = ModelStore(service.model_dir)
    predictor = Predictor(store)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = service.max_body_bytes
    routes = Blueprint("ml_backend", __name__, url_prefix="/" + resolve_url_secret(service))
    expected_credentials = (
        (service.basic_auth_user.encode(), (service.basic_auth_pass or "").encode()) if service.basic_auth_user else None
    )

    def protected(view):
        """Basic auth on routes LS calls with credentials (webhooks carry none, so /webhook is open)."""
        @wraps(view)
        def check(*args, **kwargs):
            if expected_credentials is not None:
                try:
                    auth = request.authorization
                except ValueError:  # werkzeug raises on a Basic header with non-ASCII characters in it
                    auth = None
                # Compared as UTF-8 bytes: compare_digest refuses non-ASCII str, and a 500 would leak that.
                ok = (
                    auth is not None
                    and hmac.compare_digest((auth.username or "").encode(), expected_credentials[0])
                    and hmac.compare_digest((auth.password or "").encode(), expected_credentials[1])
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

    @app.errorhandler(NotConnectedHere)
    def not_connected(error):
        log.warning("refused: %s", error)
        return jsonify(error=str(error)), 404

    @app.errorhandler(TooLarge)
    def too_large(error):
        return jsonify(error=str(error)), 413

    @app.errorhandler(RequestEntityTooLarge)
    def body_too_large(error):
        limit = request.max_content_length
        return jsonify(error=f"the request body is over this route's limit of {limit} bytes"), 413

    @app.errorhandler(RedisError)
    def redis_down(error):
        log.error("redis unavailable: %s", error)
        return jsonify(error=f"the job queue (Redis) is unavailable: {error}"), 503

    @app.errorhandler(HTTPException)
    def http_error(error):
        return jsonify(error=error.description), error.code

    def connected(project_id: int) -> bool:
        """A project connected this backend once a /setup carrying the secret (and basic auth) recorded it."""
        return store.setup_record(project_id).read() is not None

    def enqueue_full_path(project_id: int, reason: str) -> None:
        """An owner's explicit "train now" fine-tunes the encoder at once in ``model_mode: finetune``."""
        record = store.setup_record(project_id).read()
        if record is not None and record.settings.model_mode == "finetune":
            enqueue(redis, service, project_id, reason, FINETUNE)

    def health():
        return jsonify(status="UP", model_class="TextClassifier", strategies=list(STRATEGY_NAMES))

    app.add_url_rule("/health", "health", health)
    routes.add_url_rule("/health", "health", health)
    routes.add_url_rule("/", "root", health)

    @routes.post("/setup")
    @protected
    def setup():
        body = _json_body()
        project_id = _project_id(body)
        parse_label_config(_required(body, "schema", str))
        settings = ProjectSettings.parse(body.get("extra_params"))
        hostname, token = _optional_str(body, "hostname"), _optional_str(body, "access_token")
        record = store.setup_record(project_id)
        connecting = not connected(project_id)
        record.save(SetupRecord(settings, hostname, token))
        if connecting:
            # The first /setup of a project: rank its pool now (cold start), so LS's first task is a good one.
            # LS shows a failed /setup as a broken connection, so a Redis outage here only costs this
            # head start: the first label's webhook ranks the pool all the same.
            try:
                enqueue_retrain(redis, service, project_id, reason="connected")
            except RedisError as error:
                log.warning("project %s connected, but its first ranking was not queued: %s", project_id, error)
        active = store.active(project_id)
        return jsonify(model_version=active.name if active else "untrained")

    @routes.post("/predict")
    @protected
    def predict():
        body = _json_body()
        project_id = _project_id(body)
        spec = parse_label_config(_required(body, "label_config", str))
        tasks = _required(body, "tasks", list)
        if len(tasks) > service.max_predict_tasks:
            raise TooLarge(
                f"{len(tasks)} tasks in one /predict; the limit is {service.max_predict_tasks} (AL_MAX_PREDICT_TASKS)"
            )
        return jsonify(results=predictor.predict(project_id, spec, tasks))

    @routes.post("/webhook")
    def webhook():
        request.max_content_length = service.max_webhook_bytes
        body = _json_body()
        action = _required(body, "action", str)
        if action not in RETRAIN_ACTIONS:
            record_webhook(redis, action, "ignored")
            return jsonify(status="ignored", action=action[:64])
        project_id = _project_id(body)
        if not connected(project_id):
            record_webhook(redis, action, "refused")
            raise NotConnectedHere(f"webhook {action} for project {project_id}, which never connected this backend (no /setup from it)")
        add_hints(redis, project_id, hinted_task_ids(body))
        if action == "START_TRAINING":
            request_resync(redis, project_id, action)
        # The fast retrain first: a lone worker takes queued jobs in order, and the ranking should not wait
        # for a fine-tune.
        enqueued = enqueue_retrain(redis, service, project_id, reason=action)
        if action == "START_TRAINING":
            enqueue_full_path(project_id, action)
        result = "coalesced" if enqueued.coalesced else "queued"
        record_webhook(redis, action, result)
        return jsonify(status=result, job_id=enqueued.job_id), 201

    @routes.post("/train")
    @protected
    def train():
        """Older LS versions POST /train with all annotations; like the webhook, it is only a trigger.

        It is also how an owner asks for a full re-read of the project's tasks (``backend.labelstudio.task_mirror``)."""
        project_id = _project_id(_json_body())
        if not connected(project_id):
            raise NotConnectedHere(f"/train for project {project_id}, which never connected this backend (no /setup from it)")
        request_resync(redis, project_id, "train")
        enqueued = enqueue_retrain(redis, service, project_id, reason="train")
        enqueue_full_path(project_id, "train")
        return jsonify(status="coalesced" if enqueued.coalesced else "queued", job={"id": enqueued.job_id}), 201

    @routes.get("/versions")
    @protected
    def versions():
        project_id = _project_id(_json_body(optional=True) | request.args.to_dict())
        return jsonify(versions=[v.name for v in reversed(store.versions(project_id))])

    def status_payload(project_id: int) -> dict[str, Any]:
        active, latest = store.active(project_id), store.latest(project_id)
        ledger = store.ledger(project_id).read()
        setup_record = store.setup_record(project_id).read()
        meta = active.meta() if active else {}
        warnings = []
        if ledger.sampling_set and ledger.ls_sampling not in (None, UNCERTAINTY_SAMPLING):
            warnings.append(
                f"Label Studio serves tasks in {ledger.ls_sampling!r} order, which ignores this backend's ranking; "
                f"choose {UNCERTAINTY_SAMPLING!r} in the project's settings to use it"
            )
        if latest is not None and (active is None or latest.name != active.name):
            warnings.append(f"the newest local version {latest.name} is not active in Label Studio (its write-back did not finish)")
        dropped = meta.get("dropped_spans") or {}
        if dropped:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(dropped.items()))
            warnings.append(f"{sum(dropped.values())} annotated spans could not be used ({reasons}); see README, NER projects")
        outcomes = load_retrain_outcomes(redis, project_id)
        return dict(
            project=project_id,
            model_version=active.name if active else None,
            label_studio={"model_version": ledger.ls_model_version, "sampling": ledger.ls_sampling, "checked_at": ledger.checked_at},
            newest_local_version=latest.name if latest else None,
            connected=setup_record is not None,
            settings=setup_record.settings.to_dict() if setup_record else None,
            phase=meta.get("phase"),
            phase_reason=meta.get("phase_reason"),
            strategy=meta.get("strategy"),
            task_type=meta.get("task_type"),
            evaluation=meta.get("evaluation"),
            dropped_spans=meta.get("dropped_spans"),
            stopping=meta.get("stopping"),
            n_labeled=meta.get("n_labeled"),
            n_pool=meta.get("n_pool"),
            skipped_tasks=meta.get("skipped_tasks"),
            versions=[v.name for v in reversed(store.versions(project_id))],
            last_retrain=outcomes[0] if outcomes else None,
            queue=_queue_status(redis, service, project_id),
            full_path=_full_path_status(redis, service, store, project_id, setup_record),
            task_mirror=_mirror_status(redis, service, store, project_id),
            encoder=meta.get("encoder"),
            read=meta.get("read"),
            warnings=warnings,
            dashboard=f"{request.script_root}{routes.url_prefix}/dashboard?project={project_id}",
        )

    @routes.get("/status")
    @protected
    def status():
        """What a project owner wants to see: the version LS uses, its metrics, the stopping signal, the queue."""
        return jsonify(status_payload(_project_id(request.args.to_dict())))

    @routes.get("/dashboard")
    @protected
    def dashboard():
        """The same as /status for people: learning curve, stopping signal, phase, queue, last retrains."""
        project_id = _project_id(request.args.to_dict())
        page = render_dashboard(
            project_id, status_payload(project_id), store.history(project_id).read(), load_retrain_outcomes(redis, project_id)
        )
        headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        return Response(page, mimetype="text/html", headers=headers)

    @routes.get("/metrics")
    @protected
    def metrics():
        """Prometheus scrape: the counts every process left in Redis (``backend.core.metrics``)."""
        body, content_type = metrics_response(redis, [service.queue_name])
        return body, 200, {"Content-Type": content_type}

    app.register_blueprint(routes)
    return app


def _json_body(optional: bool = False) -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the JSON parser goes; silent=True only covers ValueError
        body = None
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


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"field {key!r} must be a string, got {type(value).__name__}")
    return value or None


def _project_id(body: dict[str, Any]) -> int:
    if "project" not in body:
        raise BadRequest("missing field 'project'")
    try:
        return parse_project_id(body["project"])
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _mirror_status(redis: Redis, service: ServiceSettings, store: ModelStore, project_id: int) -> dict[str, Any]:
    """The last full read of the project's tasks, and the resync job's queue."""
    folder = mirror_folder(store.project_dir(project_id))
    last = TaskMirror(folder, service.resync_s).last_full_read() if (folder / "tasks.sqlite3").is_file() else None
    return {"last_full_read": last, "resync": _queue_status(redis, service, project_id, RESYNC)}


def _full_path_status(redis: Redis, service: ServiceSettings, store: ModelStore, project_id: int, setup_record) -> dict[str, Any] | None:
    """Fine-tunes of the encoder: queued or running, and the last decisions (adopted, rejected, stale, ...)."""
    if setup_record is None or setup_record.settings.model_mode != "finetune":
        return None
    registry = EncoderRegistry(store.project_dir(project_id))
    newest = registry.newest()
    return {
        **_queue_status(redis, service, project_id, FINETUNE),
        "encoder_in_use": newest.folder if newest else "base",
        "decisions": [d.to_dict() for d in registry.decisions()[-5:]][::-1],
    }


def _queue_status(redis: Redis, service: ServiceSettings, project_id: int, kind: JobKind = RETRAIN) -> dict[str, Any]:
    queue = Queue(kind.queue(service), connection=redis)
    pending = redis.get(pending_key(project_id, kind))
    running = []
    for job_id in queue.started_job_registry.get_job_ids():
        job = Job.fetch(job_id, connection=redis)
        if job.args and job.args[0] == project_id and job.func_name == kind.function:
            running.append({"job_id": job_id, "progress": job.get_meta(refresh=False).get("progress")})
    return {"pending_job": pending.decode() if pending else None, "running": running, "queued_total": queue.count}
