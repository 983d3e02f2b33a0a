"""The per-project dashboard: one HTML page a project owner keeps open while people label.

It answers the questions of the first hour: is the model getting better with each label (cross-validated
accuracy and macro-F1, and how often annotators accept its suggestions, one point per model version against the
number of labels); has it stopped changing (the stopping signal over versions); what is it doing now (phase,
strategy, warnings, the running retrain's progress); and did the last retrains work (status, reason,
duration). It is server-rendered HTML with inline SVG and no script: nothing to build, nothing fetched from
elsewhere, so it works offline and behind any proxy. A meta refresh keeps it current.

``render_dashboard`` is a pure function of the data the worker records (see its docstring), so the route
only gathers that data and tests need no Redis, no Label Studio and no model.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from backend.core.settings import ProjectSettings
from backend.web.advice import strategy_advice
from backend.web.charts import (
    escape_html,
    finite,
    fmt,
    fmt_time,
    line_chart,
    series_from,
)

REFRESH_SECONDS = 10
#: The header the route should send: the page needs its inline style and its data: icon, nothing else.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def accuracy_name(record: dict) -> str:
    """Multi-label projects score whole label sets: their accuracy is subset accuracy. (NER projects have none:
    their headline is entity-level micro-F1.)"""
    return "subset accuracy" if record.get("task_type") == "multi_label" else "accuracy"


def learning_chart(history: Sequence[dict]) -> str:
    multi_label = [series_from(history, "micro-F1", lambda h: (h.get("evaluation") or {}).get("f1_micro"))]
    return line_chart(
        [
            series_from(history, accuracy_name(history[-1]), lambda h: (h.get("evaluation") or {}).get("accuracy")),
            series_from(history, "macro-F1", lambda h: (h.get("evaluation") or {}).get("f1_macro")),
            *(multi_label if history[-1].get("task_type") in ("multi_label", "ner") else []),
            series_from(history, "acceptance", lambda h: (h.get("acceptance") or {}).get("rate")),
        ],
        "labels", "cross-validated score / acceptance rate", "Learning curve",
    )


def stopping_chart(history: Sequence[dict]) -> str:
    return line_chart(
        [
            series_from(history, "mean normalized entropy", lambda h: (h.get("stopping") or {}).get("mean_normalized_entropy")),
            series_from(history, "kappa vs previous", lambda h: (h.get("stopping") or {}).get("kappa")),
            series_from(history, "fraction changed", lambda h: (h.get("stopping") or {}).get("fraction_changed")),
        ],
        "labels", "stopping statistic", "Stopping signal",
    )


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    head = "".join(f"<th>{escape_html(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _queue_html(queue: dict) -> str:
    out = []
    for job in queue.get("running") or []:
        progress = job.get("progress") or {}
        done, total = finite(progress.get("done")), finite(progress.get("total"))
        # Without a known total the bar is indeterminate rather than a misleading 0 %.
        bar = f'<progress value="{done:g}" max="{total:g}"></progress>' if done is not None and total else "<progress></progress>"
        count = f" {fmt(progress.get('done'))} / {fmt(progress.get('total'))}" if total else ""
        out.append(f'<p class="running">Retraining (job <code>{escape_html(job.get("job_id"))}</code>): '
                   f'<strong>{escape_html(progress.get("stage") or "starting")}</strong>{count} {bar}</p>')
    if not out:
        out.append('<p class="idle">No retrain is running.</p>')
    pending = queue.get("pending_job")
    out.append(f"<p>Queued for this project: {'job <code>' + escape_html(pending) + '</code>' if pending else 'nothing'}"
               f" · jobs queued in total: {fmt(queue.get('queued_total'))}</p>")
    return "\n".join(out)


def _retrains_html(retrains: Sequence[dict]) -> str:
    if not retrains:
        return "<p>No retrain has finished yet.</p>"
    rows = [
        [f'<span class="status {escape_html(r.get("status"))}">{escape_html(r.get("status"))}</span>', escape_html(r.get("reason")),
         fmt(r.get("seconds"), 1), escape_html(r.get("model_version")), fmt(r.get("n_labeled")), fmt_time(r.get("finished_at")),
         f"<code>{escape_html(r.get('job_id'))}</code>"]
        for r in retrains
    ]
    return _table(["status", "reason", "duration (s)", "version", "labels", "finished", "job"], rows, "retrains")


def render_dashboard(project_id: int, status: dict, history: list[dict], retrains: list[dict]) -> str:
    """The complete HTML5 page for one project.

    ``status`` is what ``/status`` returns plus ``phase`` and ``phase_reason``; ``history`` holds one entry
    per model version, oldest first; ``retrains`` the last retrain outcomes, newest first.
    """
    status, history, retrains = status or {}, history or [], retrains or []
    latest = history[-1] if history else {}
    settings = status.get("settings") or {}
    strategy = str(settings.get("strategy") or latest.get("strategy") or "unknown")
    title = f"Project {project_id} · active learning"
    body = [_header_html(title, status, latest, strategy), _warnings_html(status.get("warnings") or [])]
    if not history:
        body.append('<section><p class="empty">No model version yet: the first one is trained once the project has '
                    "enough labels. Curves appear here from then on.</p></section>")
    else:
        body += [_learning_html(history), _stopping_html(history)]
    body.append(_advice_html(strategy, settings, latest))
    body.append(f"<section><h2>Retraining</h2>{_queue_html(status.get('queue') or {})}"
                f"<h3>Last retrains</h3>{_retrains_html(retrains)}</section>")
    body.append(f"<footer>This page refreshes every {REFRESH_SECONDS} s.</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # An empty data: icon, or the browser asks for /favicon.ico and logs the 404 as an error.
        f'<link rel="icon" href="data:,"><title>{escape_html(title)}</title><style>{CSS}</style></head>\n<body>\n'
        + "\n".join(part for part in body if part) + "\n</body></html>\n"
    )


def _header_html(title: str, status: dict, latest: dict, strategy: str) -> str:
    phase = str(status.get("phase") or latest.get("phase") or "unknown")
    label_studio = status.get("label_studio") or {}
    return "\n".join([
        f"<header><h1>{escape_html(title)}</h1>",
        f'<p class="phase">Phase: <strong class="phase-{escape_html(phase)}">{escape_html(phase.replace("_", " "))}</strong>'
        f" · strategy: <strong>{escape_html(strategy)}</strong>"
        + (f' <span class="why">({escape_html(status.get("phase_reason"))})</span>' if status.get("phase_reason") else "") + "</p>",
        f"<p>Version in Label Studio: <code>{escape_html(label_studio.get('model_version') or status.get('model_version') or 'none')}</code>"
        f" · labels: {fmt(latest.get('n_labeled'))} · unlabeled pool: {fmt(latest.get('n_pool'))}</p></header>",
    ])


def _warnings_html(warnings: list[str]) -> str:
    if not warnings:
        return ""
    return ('<section class="warnings" role="alert"><h2>Warnings</h2><ul>'
            + "".join(f"<li>{escape_html(w)}</li>" for w in warnings) + "</ul></section>")


def _learning_html(history: list[dict]) -> str:
    latest = history[-1]
    evaluation, acceptance = latest.get("evaluation") or {}, latest.get("acceptance") or {}
    return (
        "<section><h2>Learning curve</h2>"
        f"<p>Latest version <code>{escape_html(latest.get('version'))}</code>: {accuracy_name(latest)} {fmt(evaluation.get('accuracy'))},"
        f" macro-F1 {fmt(evaluation.get('f1_macro'))}, micro-F1 {fmt(evaluation.get('f1_micro'))} over {fmt(evaluation.get('n_eval'))} labels;"
        f" acceptance {fmt(acceptance.get('rate'))} of {fmt(acceptance.get('n'))} labels."
        + (f' <span class="why">{escape_html(evaluation.get("note"))}</span>' if evaluation.get("note") else "")
        + f"</p>{learning_chart(history)}</section>"
    )


def _stopping_html(history: list[dict]) -> str:
    stopping = history[-1].get("stopping") or {}
    verdict = "stop: more labels are unlikely to help" if stopping.get("stop") else "keep labeling"
    return (
        "<section><h2>Stopping signal</h2>"
        + (f'<p class="stop-{"yes" if stopping.get("stop") else "no"}"><strong>{escape_html(verdict)}</strong>'
           f" — {escape_html(stopping.get('reason'))}</p>" if stopping else "<p>No stopping signal for this version.</p>")
        + f"{stopping_chart(history)}</section>"
    )


def _advice_html(strategy: str, settings: dict, latest: dict) -> str:
    advice = strategy_advice(
        strategy, latest.get("label_counts"),
        settings.get("cold_start_phase", ProjectSettings.cold_start_phase) is not False,
        latest.get("task_type", "single_label"), settings.get("model_mode", ProjectSettings.model_mode),
        settings.get("finetune_method", ProjectSettings.finetune_method),
    )
    return ('<section class="advice"><h2>Which strategy</h2><ul>'
            + "".join(f"<li>{escape_html(line)}</li>" for line in advice) + "</ul></section>")


CSS = """
body{font:15px/1.45 system-ui,sans-serif;color:#1a1a1a;max-width:980px;margin:1.5em auto;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}h3{font-size:1em}
code{font-size:.9em;background:#f2f2f2;padding:0 .25em;border-radius:3px}
.why{color:#555}.phase-cold_start{color:#8a4b00}.phase-strategy{color:#00603f}
.warnings{background:#fff4e5;border:2px solid #d97a00;border-radius:6px;padding:.2em 1em;margin:1em 0}
.warnings h2{margin:.4em 0;color:#8a4b00}.empty{font-size:1.1em;padding:1em;background:#f2f6fa;border-radius:6px}
.stop-yes{color:#00603f}.stop-no{color:#333}
svg.chart{width:100%;max-width:760px;height:auto;display:block}
svg .axis{stroke:#333}svg .grid{stroke:#e3e3e3}svg text{font-size:12px;fill:#333}svg .label{font-size:13px}
progress{width:14em;vertical-align:middle}
table{border-collapse:collapse;width:100%}.retrains td:nth-child(6){white-space:nowrap}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd}
.status.failed,.status.refused{color:#b00020;font-weight:bold}.status.trained{color:#00603f}
footer{margin-top:2em;color:#666;font-size:.85em}
"""
