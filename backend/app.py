"""The HTTP process: Label Studio's ML-backend protocol, served by gunicorn (``backend.app:create_app()``).

It never trains and never calls Label Studio. ``/webhook`` and ``/train`` only enqueue; ``/predict`` serves
the version Label Studio was switched to; ``/setup`` validates the project's settings and records them
(``backend.web.protocol``); ``/status``, ``/dashboard``, ``/versions`` and ``/metrics`` show what the worker
recorded (``backend.web.views``).

Every route but ``/health`` lives under the secret path segment (``backend.labelstudio.url_secret``): Label
Studio is connected to ``http://host:9090/<secret>`` and appends ``/setup``, ``/predict`` and ``/webhook`` to
it. A request without the secret gets 404 before its body is read. Basic auth, when configured, guards every
route but ``/health`` and ``/webhook`` (Label Studio sends webhooks without credentials).
"""
from __future__ import annotations

from flask import Blueprint, Flask
from redis import Redis

from backend.core.settings import ServiceSettings
from backend.labelstudio.url_secret import resolve_url_secret
from backend.store.model_store import ModelStore
from backend.web.auth import BasicAuth
from backend.web.context import WebContext
from backend.web.errors import register_error_handlers
from backend.web.predictor import Predictor
from backend.web.protocol import ProtocolRoutes, health
from backend.web.views import ProjectViews


def create_app(service: ServiceSettings | None = None, redis: Redis | None = None) -> Flask:
    service = service or ServiceSettings.from_env()
    # LS gives webhooks 1 s: a Redis that does not answer in 0.5 s is reported, not waited for.
    redis = redis or Redis.from_url(service.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    store = ModelStore(service.model_dir)
    context = WebContext(service, redis, store, Predictor(store))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = service.max_body_bytes
    register_error_handlers(app)
    routes = Blueprint("ml_backend", __name__, url_prefix="/" + resolve_url_secret(service))
    protect = BasicAuth(service).protect
    protocol, views = ProtocolRoutes(context), ProjectViews(context, routes.url_prefix)

    app.add_url_rule("/health", "health", health)
    routes.add_url_rule("/health", "health", health)
    routes.add_url_rule("/", "root", health)
    routes.add_url_rule("/setup", "setup", protect(protocol.setup), methods=["POST"])
    routes.add_url_rule("/predict", "predict", protect(protocol.predict), methods=["POST"])
    # Label Studio sends webhooks without credentials: the secret path alone guards them.
    routes.add_url_rule("/webhook", "webhook", protocol.webhook, methods=["POST"])
    routes.add_url_rule("/train", "train", protect(protocol.train), methods=["POST"])
    routes.add_url_rule("/versions", "versions", protect(views.versions))
    routes.add_url_rule("/status", "status", protect(views.status))
    routes.add_url_rule("/dashboard", "dashboard", protect(views.dashboard))
    routes.add_url_rule("/metrics", "metrics", protect(views.metrics))
    app.register_blueprint(routes)
    return app
