"""What the HTTP process shows people and monitors: ``/versions``, ``/status``, ``/dashboard`` and ``/metrics``."""
from __future__ import annotations

from flask import Response, jsonify, request

from backend.core.metrics import metrics_response
from backend.jobs.outcomes import load_retrain_outcomes
from backend.web import requests
from backend.web.context import WebContext
from backend.web.dashboard import CONTENT_SECURITY_POLICY, render_dashboard
from backend.web.status import status_payload

DASHBOARD_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class ProjectViews:
    def __init__(self, context: WebContext, url_prefix: str):
        self.context = context
        self.url_prefix = url_prefix

    def versions(self):
        project_id = requests.project_id(requests.json_body(optional=True) | request.args.to_dict())
        return jsonify(versions=[v.name for v in reversed(self.context.store.versions(project_id))])

    def status(self):
        """What a project owner wants to see: the version LS uses, its metrics, the stopping signal, the queue."""
        return jsonify(self._status(requests.project_id(request.args.to_dict())))

    def dashboard(self):
        """The same as /status for people: learning curve, stopping signal, phase, queue, last retrains."""
        project_id = requests.project_id(request.args.to_dict())
        page = render_dashboard(
            project_id, self._status(project_id), self.context.store.history(project_id).read(),
            load_retrain_outcomes(self.context.redis, project_id),
        )
        return Response(page, mimetype="text/html", headers=DASHBOARD_HEADERS)

    def metrics(self):
        """Prometheus scrape: the counts every process left in Redis (``backend.core.metrics``)."""
        body, content_type = metrics_response(self.context.redis, [self.context.service.queue_name])
        return body, 200, {"Content-Type": content_type}

    def _status(self, project_id: int) -> dict:
        dashboard = f"{request.script_root}{self.url_prefix}/dashboard?project={project_id}"
        return status_payload(self.context, project_id, dashboard)
