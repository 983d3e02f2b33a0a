"""The simulation's files: rounds.csv, summary.csv, summary.md and learning_curve.png."""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from backend.simulation.runner import ROUND_COLUMNS, SimulationResult
from backend.simulation.summary import ACCURACY, Metric, summarize, summary_markdown


def plot_learning_curves(
    rows: list[dict[str, Any]], path: Path, title: str = "", reference: dict[int, float] | None = None,
    metric: Metric = ACCURACY,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        by_round: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            if r["strategy"] == strategy:
                by_round.setdefault(int(r["round"]), []).append(r)
        rounds = sorted(by_round)
        x = np.array([np.mean([float(r["labels_used"]) for r in by_round[k]]) for k in rounds])
        acc = [[float(r[metric.column]) for r in by_round[k]] for k in rounds]
        mean = np.array([np.mean(a) for a in acc])
        std = np.array([np.std(a, ddof=1) if len(a) > 1 else 0.0 for a in acc])
        dashed = strategy.startswith("small-text") or strategy == "random"
        (line,) = ax.plot(x, mean, label=strategy, linestyle="--" if dashed else "-", linewidth=1.6)
        ax.fill_between(x, mean - std, mean + std, alpha=0.15, color=line.get_color())
    if reference:
        ref = float(np.mean(list(reference.values())))
        ax.axhline(ref, color="black", linewidth=0.8, linestyle=":", label=f"full pool ({ref:.3f})")
        ax.axhline(0.98 * ref, color="grey", linewidth=0.8, linestyle=":", label="98% of full pool")
    ax.set_xlabel("labels used")
    ax.set_ylabel(f"test {metric.name}")
    ax.set_title(title or "learning curves (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_rounds(path: Path, rows: list[dict[str, Any]], columns: Sequence[str] = ROUND_COLUMNS) -> None:
    """Rounds as CSV (``columns``; floats to 6 decimals), the form ``read_rounds`` reads back."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6f}" if isinstance(row[k], float) else row[k]) for k in columns})


def read_rounds(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        return [{k: (v if k == "strategy" else int(v) if k in ("seed", "round", "labels_used") else float(v))
                 for k, v in row.items()} for row in csv.DictReader(handle)]


def write_outputs(
    out: Path, result: SimulationResult, title: str = "", header: str = "", metric: Metric = ACCURACY,
    columns: Sequence[str] = ROUND_COLUMNS,
) -> list[dict[str, Any]]:
    """The four files; ``metric`` is the score the curves follow, ``columns`` the rounds' columns to write."""
    out.mkdir(parents=True, exist_ok=True)
    write_rounds(out / "rounds.csv", result.rows, columns)
    summary = summarize(result.rows, result.reference, metric=metric)
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summary[0]))
        writer.writeheader()
        for entry in summary:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in entry.items()})
    notes = "".join(f"- {note}\n" for note in result.notes)
    (out / "summary.md").write_text(
        summary_markdown(summary, title or "Simulation summary", header, metric)
        + f"\nAUC: trapezoid area under test {metric.name} vs labels used, labels rescaled to [0, 1]. "
        f"Labels to 95%/98%: the first labels_used whose {metric.name} reaches that share of the full-pool {metric.name} "
        "(a model trained on the whole pool, same seed and test split).\n"
        + (f"\nNotes:\n{notes}" if notes else "")
    )
    try:
        plot_learning_curves(result.rows, out / "learning_curve.png", title, result.reference, metric)
    except ImportError:
        print("warning: matplotlib is not installed; skipped learning_curve.png (pip install matplotlib)", file=sys.stderr)
    return summary
