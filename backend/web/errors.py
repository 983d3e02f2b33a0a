"""How the HTTP process answers what went wrong: a JSON ``{"error": ...}`` with the status code that says who
must act (400 the caller's input, 404 an unknown project, 413 a limit, 503 Redis), never a 500 with a trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from backend.core.exceptions import (
    BadRequest,
    NotConnectedHere,
    SettingsError,
    TooLarge,
    UnsupportedLabelConfig,
)

log = logging.getLogger(__name__)


def register_error_handlers(app: Flask) -> None:
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
