"""The dashboard page: rendering on synthetic data, and the page as a real headless Chromium shows it."""
from __future__ import annotations

import os
import re
import threading
import time
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from headless_browser import headless_chromium, needs_chromium, severe_console_entries

from backend.web.charts import line_chart, ticks
from backend.web.dashboard import CONTENT_SECURITY_POLICY, render_dashboard

HOSTILE = '<script>alert("x")</script>'


def version(n: int) -> str:
    return f"al-p7-v{n:04d}-20250101T0000{n:02d}Z"


def make_history() -> list[dict]:
    """Six versions: a cold-start one without metrics, one with too few labels to evaluate, then the strategy."""
    history = [
        {"version": version(1), "created_at": 1_735_689_600.0, "n_labeled": 4, "n_pool": 996, "strategy": "margin",
         "phase": "cold_start", "evaluation": None, "acceptance": None,
         "stopping": {"mean_normalized_entropy": 0.95, "kappa": None, "fraction_changed": None, "n_pool": 996,
                      "stop": False, "reason": "not enough history"}},
        {"version": version(2), "created_at": 1_735_689_700.0, "n_labeled": 10, "n_pool": 990, "strategy": "margin",
         "phase": "cold_start",
         "evaluation": {"n_train": 10, "n_eval": 0, "accuracy": None, "precision_macro": None, "recall_macro": None,
                        "f1_macro": None, "note": "too few labels to hold any out"},
         "acceptance": {"n": 6, "accepted": 2, "rate": 2 / 6},
         "stopping": {"mean_normalized_entropy": 0.81, "kappa": 0.2, "fraction_changed": 0.6, "n_pool": 990,
                      "stop": False, "reason": "keep labeling"}},
    ]
    for n, labels in enumerate((20, 40, 60, 80), start=3):
        history.append(
            {"version": version(n), "created_at": 1_735_689_600.0 + 100 * n, "n_labeled": labels,
             "n_pool": 1000 - labels, "strategy": "margin", "phase": "strategy",
             "evaluation": {"n_train": labels * 4 // 5, "n_eval": labels // 5, "accuracy": 0.5 + n / 20,
                            "precision_macro": 0.5, "recall_macro": 0.5, "f1_macro": 0.45 + n / 20, "note": ""},
             "acceptance": {"n": 10, "accepted": n, "rate": n / 10},
             "stopping": {"mean_normalized_entropy": 0.9 - n / 10, "kappa": 0.5 + n / 15,
                          "fraction_changed": 0.4 / n, "n_pool": 1000 - labels, "stop": n == 6,
                          "reason": "mean kappa 0.9 over the last 3 versions"}}
        )
    return history


# accuracy and F1: versions 3-6; acceptance: 2-6; entropy: 1-6; kappa and fraction changed: 2-6.
EXPECTED_POINTS = 4 + 4 + 5 + 6 + 5 + 5


def make_status(**extra) -> dict:
    status = {
        "project": 7, "model_version": version(6),
        "label_studio": {"model_version": version(6), "sampling": "Uncertainty sampling", "checked_at": 1.0},
        "settings": {"strategy": "margin", "top_k": 500},
        "queue": {"pending_job": "job-pending-1",
                  "running": [{"job_id": "job-running-1", "progress": {"stage": "training", "done": 3, "total": 8}}],
                  "queued_total": 1},
        "warnings": ["Label Studio serves tasks in 'Sequential sampling' order, which ignores this backend's ranking"],
        "phase": "strategy", "phase_reason": "80 labels in 4 classes",
    }
    return status | extra


def make_retrains() -> list[dict]:
    return [
        {"status": "trained", "seconds": 41.27, "model_version": version(6), "n_labeled": 80, "job_id": "j6",
         "finished_at": 1_735_690_200.0},
        {"status": "skipped", "reason": "no new labels since the last version", "job_id": "j5", "finished_at": 1_735_690_100.0},
        {"status": "failed", "reason": "Label Studio unreachable", "seconds": 2.0, "job_id": "j4", "finished_at": 1_735_690_000.0},
    ]


class _Checker(HTMLParser):
    """Collects tags and fails on unbalanced SVG/table/section tags, the ones a slip in an f-string breaks."""

    CHECKED = {"svg", "g", "table", "section", "header", "ul", "p", "text", "title"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in self.CHECKED:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.CHECKED:
            assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>, open: {self.stack[-3:]}"
            self.stack.pop()


def parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [], f"unclosed tags: {checker.stack}"
    return checker


def points(page: str) -> list[dict]:
    return [attrs for tag, attrs in parse(page).tags if tag == "circle" and attrs.get("class") == "point"]


def test_a_complete_page_with_refresh_and_nothing_external():
    page = render_dashboard(7, make_status(), make_history(), make_retrains())
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Project 7 · active learning</title>" in page
    assert '<meta http-equiv="refresh" content="10">' in page
    assert "<script" not in page
    assert not re.search(r'(?:src|href)="(?!data:)', page), "the page must load nothing from elsewhere"
    assert "@import" not in page and "url(" not in page
    parse(page)


def test_one_point_per_version_per_series_and_missing_values_skipped():
    history = make_history()
    found = points(render_dashboard(7, make_status(), history, []))
    assert len(found) == EXPECTED_POINTS
    by_version = {}
    for attrs in found:
        by_version.setdefault(attrs["data-version"], 0)
        by_version[attrs["data-version"]] += 1
    # v1 has only an entropy; v2 has acceptance and all three stopping statistics but no held-out score.
    assert by_version == {version(1): 1, version(2): 4, version(3): 6, version(4): 6, version(5): 6, version(6): 6}


def test_nan_and_missing_labels_are_skipped_not_drawn_at_zero():
    history = make_history()
    history[2]["evaluation"]["accuracy"] = float("nan")
    history[3]["n_labeled"] = None
    page = render_dashboard(7, make_status(), history, [])
    assert len(points(page)) == EXPECTED_POINTS - 1 - 6
    assert not re.search(r'(?:cx|cy|points)="[^"]*nan', page, re.IGNORECASE)


def test_chart_scales_to_its_data():
    series = [{"name": "acc", "points": [(10, 0.5, "a"), (20, 1.0, "b")]}, {"name": "kappa", "points": [(15, -0.5, "c")]}]
    svg = line_chart(series, "labels", "score")
    circles = re.findall(r'<circle class="point" data-version="(\w)" cx="([\d.]+)" cy="([\d.]+)"', svg)
    xs = {v: float(x) for v, x, _ in circles}
    ys = {v: float(y) for v, _, y in circles}
    assert xs["a"] < xs["c"] < xs["b"]
    assert ys["b"] < ys["a"] < ys["c"], "higher values sit higher (smaller y)"
    assert ">-0.5<" in svg, "a negative kappa extends the y axis below 0"
    assert "acc (2)" in svg and "kappa (1)" in svg
    # A single version has no width to scale by; it must still land inside the frame.
    one = line_chart([{"name": "acc", "points": [(4, 0.5, "v")]}], "labels", "score")
    assert 'cx="' in one and "nan" not in one and "inf" not in one


def test_ticks_are_round_numbers_covering_the_range():
    assert ticks(0, 1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert ticks(4, 80, integer=True) == [20, 40, 60, 80]
    assert ticks(3, 5, integer=True) == [3, 4, 5]


def test_hostile_strings_are_escaped_everywhere():
    history = make_history()
    history[-1]["version"] = HOSTILE
    history[-1]["stopping"]["reason"] = HOSTILE
    history[-1]["evaluation"]["note"] = HOSTILE
    retrains = [{"status": HOSTILE, "reason": HOSTILE, "seconds": HOSTILE, "model_version": HOSTILE,
                 "n_labeled": HOSTILE, "job_id": HOSTILE, "finished_at": HOSTILE}]
    status = make_status(phase=HOSTILE, phase_reason=HOSTILE, warnings=[HOSTILE],
                         settings={"strategy": HOSTILE},
                         queue={"pending_job": HOSTILE, "queued_total": HOSTILE,
                                "running": [{"job_id": HOSTILE, "progress": {"stage": HOSTILE, "done": HOSTILE, "total": 5}}]},
                         label_studio={"model_version": HOSTILE})
    page = render_dashboard(7, status, history, retrains)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    parse(page)


def test_empty_history_says_so_instead_of_empty_charts():
    status = make_status(queue={"pending_job": None, "running": [], "queued_total": 0}, warnings=[],
                         phase="cold_start", phase_reason="2 labels; the first model needs 4 in 2 classes")
    page = render_dashboard(3, status, [], [])
    assert "No model version yet" in page
    assert "<svg" not in page
    assert "No retrain is running." in page and "No retrain has finished yet." in page
    assert "cold start" in page and "Warnings" not in page
    parse(page)


def test_phase_strategy_warnings_queue_and_retrains():
    page = render_dashboard(7, make_status(), make_history(), make_retrains())
    assert 'class="phase-strategy">strategy</strong>' in page and "<strong>margin</strong>" in page
    assert "80 labels in 4 classes" in page
    assert 'role="alert"' in page and "Sequential sampling" in page
    assert '<progress value="3" max="8"></progress>' in page and "training" in page
    assert "job-pending-1" in page
    table = page[page.index('<table class="retrains">'):]
    assert table.count("<tr>") == 1 + 3
    assert "41.3" in table and "2025-01-01 00:10:00 UTC" in table
    assert "Label Studio unreachable" in table
    assert "stop: more labels are unlikely to help" in page


def test_missing_status_parts_do_not_break_the_page():
    page = render_dashboard(9, {}, make_history()[:1], [{"status": "refused", "job_id": "x"}])
    assert "No retrain is running." in page and "cold start" in page and "margin" in page
    assert len(points(page)) == 1
    running = render_dashboard(9, {"queue": {"running": [{"job_id": "j", "progress": None}]}}, [], [])
    assert "<progress></progress>" in running


# --- the page in a real browser -----------------------------------------------------------------------------

@pytest.fixture
def served_page():
    """The rendered page from a throwaway HTTP server on 127.0.0.1, with the route's headers; other paths 404."""
    page = render_dashboard(7, make_status(), make_history(), make_retrains()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            found = self.path.split("?")[0] == "/dashboard"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            # The route's policy: anything the page tried beyond it would be a console error here.
            self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            self.send_header("Content-Length", str(len(page) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dashboard"
    server.shutdown()
    server.server_close()


@needs_chromium
def test_the_page_in_headless_chromium(served_page, tmp_path):
    started = time.monotonic()
    with headless_chromium(tmp_path / "profile") as driver:
        driver.get(served_page)
        assert driver.title == "Project 7 · active learning"
        assert driver.execute_script("return document.querySelectorAll('svg circle.point').length") == EXPECTED_POINTS
        assert driver.execute_script("return document.querySelectorAll('svg.chart').length") == 2
        # Every point is laid out inside its chart (a NaN or off-frame coordinate would not be).
        inside = driver.execute_script(
            "return [...document.querySelectorAll('svg circle.point')].every(c => {"
            " const p = c.getBoundingClientRect(), s = c.ownerSVGElement.getBoundingClientRect();"
            " return p.width > 0 && p.left >= s.left && p.right <= s.right && p.top >= s.top && p.bottom <= s.bottom; })"
        )
        assert inside
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        path = os.environ.get("DASHBOARD_SCREENSHOT") or str(tmp_path / "dashboard.png")
        assert driver.save_screenshot(path)
        assert severe_console_entries(driver) == []
    print(f"browser check took {time.monotonic() - started:.1f} s")


def test_a_multi_label_project_shows_subset_accuracy_and_micro_f1():
    history = make_history()
    for record in history:
        record["task_type"] = "multi_label"
        if record["evaluation"] and record["evaluation"]["accuracy"] is not None:
            record["evaluation"]["f1_micro"] = 0.77
    page = render_dashboard(7, make_status(), history, [])
    assert "subset accuracy" in page and "micro-F1 0.770" in page
    assert "subset accuracy" not in render_dashboard(7, make_status(), make_history(), [])
