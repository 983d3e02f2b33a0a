"""Reading a request's JSON body: every field the routes use is checked here, and a bad one is a 400."""
from __future__ import annotations

from typing import Any

from flask import request

from backend.core.exceptions import BadRequest


def json_body(optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; ``{}`` for no body when ``optional``."""
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


def required(body: dict[str, Any], key: str, kind: type):
    if key not in body:
        raise BadRequest(f"missing field {key!r}")
    if not isinstance(body[key], kind):
        raise BadRequest(f"field {key!r} must be a {kind.__name__}, got {type(body[key]).__name__}")
    return body[key]


def optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"field {key!r} must be a string, got {type(value).__name__}")
    return value or None


def project_id(body: dict[str, Any]) -> int:
    """The project a body names. LS sends ``"<id>.<created-timestamp>"`` in ML calls and ``{"id": ...}`` in
    webhooks."""
    if "project" not in body:
        raise BadRequest("missing field 'project'")
    raw = body["project"]
    if isinstance(raw, dict):
        raw = raw.get("id")
    if isinstance(raw, bool):
        raise BadRequest(f"project must be an id, got {raw!r}")
    text = str(raw if raw is not None else "").split(".", 1)[0]
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise BadRequest(f"project must be an id like 12 or '12.1700000000', got {str(raw)[:40]!r}")
    return int(text)
