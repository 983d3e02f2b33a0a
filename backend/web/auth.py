"""Basic auth, when configured, on the routes Label Studio calls with credentials (it sends webhooks
without any, so ``/webhook`` stays open: the secret path guards it)."""
from __future__ import annotations

import hmac
from functools import wraps

from flask import jsonify, request

from backend.core.settings import ServiceSettings


class BasicAuth:
    def __init__(self, service: ServiceSettings):
        self.expected = (
            (service.basic_auth_user.encode(), (service.basic_auth_pass or "").encode()) if service.basic_auth_user else None
        )

    def allows(self) -> bool:
        if self.expected is None:
            return True
        try:
            auth = request.authorization
        except ValueError:  # werkzeug raises on a Basic header with non-ASCII characters in it
            return False
        # Compared as UTF-8 bytes: compare_digest refuses non-ASCII str, and a 500 would leak that.
        return (
            auth is not None
            and hmac.compare_digest((auth.username or "").encode(), self.expected[0])
            and hmac.compare_digest((auth.password or "").encode(), self.expected[1])
        )

    def protect(self, view):
        @wraps(view)
        def check(*args, **kwargs):
            if not self.allows():
                return jsonify(error="basic auth required"), 401, {"WWW-Authenticate": 'Basic realm="ml-backend"'}
            return view(*args, **kwargs)

        return check
