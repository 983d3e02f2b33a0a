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

import math
from datetime import datetime, timezone
from html import escape
from typing import Any, Iterable, Sequence

from backend.web.advice import strategy_advice
from backend.core.settings import ProjectSettings

REFRESH_SECONDS = 10
#: The header the route should send: the page needs its inline style and its data: icon, nothing else.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 14, 78
# Okabe-Ito colours plus dash patterns: the series stay apart for colour-blind readers and in grey print.
STYLES = (("#0072B2", ""), ("#D55E00", "6 3"), ("#009E73", "2 3"))

Point = tuple[float, float, str]  # (labels, value, version)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _number(value: Any) -> float | None:
    """A finite float, or None: a missing or NaN metric is skipped, never drawn as 0 or as cx="nan"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: Any, digits: int = 3) -> str:
    number = _number(value)
    if number is None:
        return "—" if value is None else _e(value)
    return str(int(number)) if isinstance(value, int) else f"{number:.{digits}f}"


def fmt_time(timestamp: Any) -> str:
    number = _number(timestamp)
    if number is None:
        return "—"
    return datetime.fromtimestamp(number, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    raw = (high - low) / count or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def series_from(history: Sequence[dict], name: str, pick) -> dict:
    """One named series: a point per version whose x (labels) and y are both known."""
    points = []
    for entry in history:
        x, y = _number(entry.get("n_labeled")), _number(pick(entry))
        if x is not None and y is not None:
            points.append((x, y, str(entry.get("version", ""))))
    return {"name": name, "points": points}


def line_chart(series: Sequence[dict], x_label: str, y_label: str, title: str = "") -> str:
    """One ``<svg>``: axes with ticks, a legend, and per series a line and a ``circle.point`` per version."""
    points = [p for s in series for p in s["points"]]
    xs, ys = [p[0] for p in points] or [0.0], [p[1] for p in points] or [0.0]
    # Labels start at 0, so the curve shows how far the first labels got, and no point sits on the y axis.
    x_low, x_high = min(0.0, min(xs)), max(xs)
    if x_high == x_low:  # no labels anywhere: avoid dividing by zero
        x_high = x_low + 1
    # Every metric here lives in [0, 1] (kappa can dip below 0), so the frame is fixed and curves compare.
    y_low, y_high = min(0.0, min(ys)), max(1.0, max(ys))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return TOP + (y_high - y) / (y_high - y_low) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_e(title or y_label)}">',
        f"<title>{_e(title or y_label)}</title>",
        _axes(sx, sy, (x_low, x_high), (y_low, y_high), x_label, y_label),
    ]
    for index, one in enumerate(series):
        parts.append(_series_svg(one, STYLES[index % len(STYLES)], sx, sy))
    parts.append(_legend(series))
    parts.append("</svg>")
    return "\n".join(parts)


def _axes(sx, sy, x_range, y_range, x_label: str, y_label: str) -> str:
    bottom, right = sy(y_range[0]), sx(x_range[1])
    out = [
        f'<line class="axis" x1="{LEFT}" y1="{bottom:.1f}" x2="{right:.1f}" y2="{bottom:.1f}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom:.1f}"/>',
    ]
    for y in ticks(*y_range):
        out.append(f'<line class="grid" x1="{LEFT}" y1="{sy(y):.1f}" x2="{right:.1f}" y2="{sy(y):.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in ticks(*x_range, integer=True):
        out.append(f'<line class="axis" x1="{sx(x):.1f}" y1="{bottom:.1f}" x2="{sx(x):.1f}" y2="{bottom + 5:.1f}"/>')
        out.append(f'<text class="tick" x="{sx(x):.1f}" y="{bottom + 18:.1f}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text class="label" x="{LEFT + (right - LEFT) / 2:.1f}" y="{bottom + 36:.1f}" text-anchor="middle">{_e(x_label)}</text>')
    middle = TOP + (bottom - TOP) / 2
    out.append(f'<text class="label" x="14" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 14 {middle:.1f})">{_e(y_label)}</text>')
    return "\n".join(out)


def _series_svg(one: dict, style: tuple[str, str], sx, sy) -> str:
    colour, dash = style
    points: list[Point] = one["points"]
    out = [f'<g class="series" data-series="{_e(one["name"])}">']
    if len(points) > 1:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
    for x, y, version in points:
        out.append(
            f'<circle class="point" data-version="{_e(version)}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{colour}">'
            f"<title>{_e(one['name'])} {y:.3f} at {x:g} labels ({_e(version)})</title></circle>"
        )
    out.append("</g>")
    return "\n".join(out)


def _legend(series: Sequence[dict]) -> str:
    out, x, y = [], LEFT, HEIGHT - 14
    for index, one in enumerate(series):
        colour, dash = STYLES[index % len(STYLES)]
        out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 24}" y2="{y - 4}" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        out.append(f'<circle cx="{x + 12}" cy="{y - 4}" r="3.5" fill="{colour}"/>')
        label = f"{one['name']} ({len(one['points'])})"
        out.append(f'<text class="legend" x="{x + 30}" y="{y}">{_e(label)}</text>')
        x += 44 + 7 * len(label)
    return '<g class="legend">' + "\n".join(out) + "</g>"


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
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _queue_html(queue: dict) -> str:
    out = []
    for job in queue.get("running") or []:
        progress = job.get("progress") or {}
        done, total = _number(progress.get("done")), _number(progress.get("total"))
        # Without a known total the bar is indeterminate rather than a misleading 0 %.
        bar = f'<progress value="{done:g}" max="{total:g}"></progress>' if done is not None and total else "<progress></progress>"
        count = f" {fmt(progress.get('done'))} / {fmt(progress.get('total'))}" if total else ""
        out.append(f'<p class="running">Retraining (job <code>{_e(job.get("job_id"))}</code>): '
                   f'<strong>{_e(progress.get("stage") or "starting")}</strong>{count} {bar}</p>')
    if not out:
        out.append('<p class="idle">No retrain is running.</p>')
    pending = queue.get("pending_job")
    out.append(f"<p>Queued for this project: {'job <code>' + _e(pending) + '</code>' if pending else 'nothing'}"
               f" · jobs queued in total: {fmt(queue.get('queued_total'))}</p>")
    return "\n".join(out)


def _retrains_html(retrains: Sequence[dict]) -> str:
    if not retrains:
        return "<p>No retrain has finished yet.</p>"
    rows = [
        [f'<span class="status {_e(r.get("status"))}">{_e(r.get("status"))}</span>', _e(r.get("reason")),
         fmt(r.get("seconds"), 1), _e(r.get("model_version")), fmt(r.get("n_labeled")), fmt_time(r.get("finished_at")),
         f"<code>{_e(r.get('job_id'))}</code>"]
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
    phase = str(status.get("phase") or latest.get("phase") or "unknown")
    strategy = str(settings.get("strategy") or latest.get("strategy") or "unknown")
    label_studio = status.get("label_studio") or {}
    title = f"Project {project_id} · active learning"
    body = [
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="phase">Phase: <strong class="phase-{_e(phase)}">{_e(phase.replace("_", " "))}</strong>'
        f" · strategy: <strong>{_e(strategy)}</strong>"
        + (f' <span class="why">({_e(status.get("phase_reason"))})</span>' if status.get("phase_reason") else "") + "</p>",
        f"<p>Version in Label Studio: <code>{_e(label_studio.get('model_version') or status.get('model_version') or 'none')}</code>"
        f" · labels: {fmt(latest.get('n_labeled'))} · unlabeled pool: {fmt(latest.get('n_pool'))}</p></header>",
    ]
    warnings = status.get("warnings") or []
    if warnings:
        body.append('<section class="warnings" role="alert"><h2>Warnings</h2><ul>'
                    + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></section>")
    if not history:
        body.append('<section><p class="empty">No model version yet: the first one is trained once the project has '
                    "enough labels. Curves appear here from then on.</p></section>")
    else:
        evaluation, acceptance = latest.get("evaluation") or {}, latest.get("acceptance") or {}
        stopping = latest.get("stopping") or {}
        body.append(
            "<section><h2>Learning curve</h2>"
            f"<p>Latest version <code>{_e(latest.get('version'))}</code>: {accuracy_name(latest)} {fmt(evaluation.get('accuracy'))},"
            f" macro-F1 {fmt(evaluation.get('f1_macro'))}, micro-F1 {fmt(evaluation.get('f1_micro'))} over {fmt(evaluation.get('n_eval'))} labels;"
            f" acceptance {fmt(acceptance.get('rate'))} of {fmt(acceptance.get('n'))} labels."
            + (f' <span class="why">{_e(evaluation.get("note"))}</span>' if evaluation.get("note") else "")
            + f"</p>{learning_chart(history)}</section>"
        )
        verdict = "stop: more labels are unlikely to help" if stopping.get("stop") else "keep labeling"
        body.append(
            "<section><h2>Stopping signal</h2>"
            + (f'<p class="stop-{"yes" if stopping.get("stop") else "no"}"><strong>{_e(verdict)}</strong>'
               f" — {_e(stopping.get('reason'))}</p>" if stopping else "<p>No stopping signal for this version.</p>")
            + f"{stopping_chart(history)}</section>"
        )
    advice = strategy_advice(
        strategy, latest.get("label_counts"),
        settings.get("cold_start_phase", ProjectSettings.cold_start_phase) is not False,
        latest.get("task_type", "single_label"), settings.get("model_mode", ProjectSettings.model_mode),
        settings.get("finetune_method", ProjectSettings.finetune_method),
    )
    body.append('<section class="advice"><h2>Which strategy</h2><ul>'
                + "".join(f"<li>{_e(line)}</li>" for line in advice) + "</ul></section>")
    body.append(f"<section><h2>Retraining</h2>{_queue_html(status.get('queue') or {})}"
                f"<h3>Last retrains</h3>{_retrains_html(retrains)}</section>")
    body.append(f"<footer>This page refreshes every {REFRESH_SECONDS} s.</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # An empty data: icon, or the browser asks for /favicon.ico and logs the 404 as an error.
        f'<link rel="icon" href="data:,"><title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n'
        + "\n".join(body) + "\n</body></html>\n"
    )


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
