"""From rounds to comparisons: learning-curve AUC, labels needed to reach a share of the full-pool score,
paired differences against random, and the markdown table.

The score is the ``Metric``'s rounds column: accuracy for classification (``ACCURACY``), entity F1 for NER.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

REACH_LEVELS = (0.95, 0.98)


@dataclass(frozen=True)
class Metric:
    """The rounds column the learning curves follow (AUC, labels to reach, full-pool reference), how tables
    and plots name it, and the further columns whose final values the summary reports, as (column, name)."""

    column: str
    name: str
    also: tuple[tuple[str, str], ...] = ()


ACCURACY = Metric("accuracy", "accuracy", (("f1_macro", "macro-F1"),))


def learning_curve_auc(labels_used: Sequence[float], accuracy: Sequence[float]) -> float:
    """Trapezoid area under accuracy vs labels_used, with labels_used rescaled to [0, 1]."""
    x = np.asarray(labels_used, dtype=np.float64)
    a = np.asarray(accuracy, dtype=np.float64)
    if len(x) == 1 or x[-1] == x[0]:
        return float(a.mean())
    x = (x - x[0]) / (x[-1] - x[0])
    return float(np.sum((x[1:] - x[:-1]) * (a[1:] + a[:-1]) / 2.0))


def labels_to_reach(labels_used: Sequence[int], accuracy: Sequence[float], target: float) -> int | None:
    for labels, acc in zip(labels_used, accuracy):
        if acc >= target - 1e-12:
            return int(labels)
    return None


def paired_interval(differences: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean of paired differences (one per seed): ``mean ± t * s / sqrt(n)``.

    Seeds share the split and the initial labels across strategies, so the per-seed difference removes
    their variance; with fewer than two seeds there is no interval (nan, nan).
    """
    values = np.asarray(differences, dtype=np.float64)
    if len(values) < 2:
        return float("nan"), float("nan")
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return float(values.mean() - half), float(values.mean() + half)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def per_run_stats(
    rows: list[dict[str, Any]], reference: dict[int, float], metric: Metric = ACCURACY
) -> dict[tuple[str, int], dict[str, Any]]:
    """(strategy, seed) -> auc, final score (and ``metric.also``), labels to reach each level of the full-pool score."""
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault((row["strategy"], int(row["seed"])), []).append(row)
    stats = {}
    for (strategy, seed), run in runs.items():
        run = sorted(run, key=lambda r: int(r["round"]))
        labels = [int(r["labels_used"]) for r in run]
        accuracy = [float(r[metric.column]) for r in run]
        entry = {
            "auc": learning_curve_auc(labels, accuracy),
            f"final_{metric.column}": accuracy[-1],
            **{f"final_{column}": float(run[-1][column]) for column, _ in metric.also},
            "train_seconds": float(np.mean([float(r["train_seconds"]) for r in run])),
            "query_seconds": float(np.mean([float(r["query_seconds"]) for r in run[:-1]])) if len(run) > 1 else 0.0,
        }
        for level in REACH_LEVELS:
            entry[f"labels_to_{round(level * 100)}"] = (
                labels_to_reach(labels, accuracy, level * reference[seed]) if seed in reference else None
            )
        stats[(strategy, seed)] = entry
    return stats


def summarize(
    rows: list[dict[str, Any]], reference: dict[int, float], baseline: str = "random", metric: Metric = ACCURACY
) -> list[dict[str, Any]]:
    stats = per_run_stats(rows, reference, metric)
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    summary = []
    for strategy in strategies:
        seeds = sorted(seed for (s, seed) in stats if s == strategy)
        runs = [stats[(strategy, seed)] for seed in seeds]
        entry: dict[str, Any] = {"strategy": strategy, "n_seeds": len(seeds)}
        for key in ("auc", f"final_{metric.column}", *(f"final_{column}" for column, _ in metric.also)):
            entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std([run[key] for run in runs])
        for level in REACH_LEVELS:
            key = f"labels_to_{round(level * 100)}"
            reached = [run[key] for run in runs if run[key] is not None]
            entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std(reached) if reached else (float("nan"), float("nan"))
            entry[f"{key}_reached"] = f"{len(reached)}/{len(runs)}"
        paired = [stats[(strategy, s)]["auc"] - stats[(baseline, s)]["auc"] for s in seeds if (baseline, s) in stats]
        entry["delta_auc_vs_random_mean"], entry["delta_auc_vs_random_std"] = (
            _mean_std(paired) if paired else (float("nan"), float("nan"))
        )
        entry["delta_auc_vs_random_ci95_low"], entry["delta_auc_vs_random_ci95_high"] = paired_interval(paired)
        entry[f"full_pool_{metric.column}_mean"], entry[f"full_pool_{metric.column}_std"] = _mean_std(
            [reference[s] for s in seeds if s in reference]
        )
        entry["train_seconds_mean"] = float(np.mean([run["train_seconds"] for run in runs]))
        entry["query_seconds_mean"] = float(np.mean([run["query_seconds"] for run in runs]))
        summary.append(entry)
    return summary


def fmt_mean_std(mean: float, std: float, digits: int = 3, scale: float = 1.0) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def fmt_interval(low: float, high: float, scale: float = 1.0) -> str:
    return "n/a" if math.isnan(low) else f"[{low * scale:+.1f}, {high * scale:+.1f}]"


def fmt_reach(entry: dict[str, Any], level: int) -> str:
    reached = entry[f"labels_to_{level}_reached"]
    k, n = (int(part) for part in reached.split("/"))
    if k == 0:
        return "not reached"
    text = f"{entry[f'labels_to_{level}_mean']:.0f} ± {entry[f'labels_to_{level}_std']:.0f}"
    return text if k == n else f"{text} (reached in {reached} seeds)"


def summary_markdown(summary: list[dict[str, Any]], title: str = "", extra_header: str = "", metric: Metric = ACCURACY) -> str:
    lines = [f"## {title}", ""] if title else []
    if extra_header:
        lines += [extra_header, ""]
    finals = [(metric.column, metric.name), *metric.also]
    lines += [
        "| strategy | seeds | AUC | Δ AUC vs random (pp) | Δ 95% CI (pp) | "
        + "".join(f"final {name} | " for _, name in finals)
        + f"labels to 95% | labels to 98% | full-pool {metric.name} | train s/round | query s/round |",
        "|---|---|---|---|---|" + "---|" * len(finals) + "---|---|---|---|---|",
    ]
    for e in summary:
        lines.append(
            "| {strategy} | {n_seeds} | {auc} | {delta} | {ci} | {finals}{r95} | {r98} | {full} | {train:.3f} | {query:.3f} |".format(
                strategy=e["strategy"], n_seeds=e["n_seeds"],
                auc=fmt_mean_std(e["auc_mean"], e["auc_std"]),
                delta=fmt_mean_std(e["delta_auc_vs_random_mean"], e["delta_auc_vs_random_std"], 1, 100.0),
                ci=fmt_interval(e["delta_auc_vs_random_ci95_low"], e["delta_auc_vs_random_ci95_high"], 100.0),
                finals="".join(f"{fmt_mean_std(e[f'final_{c}_mean'], e[f'final_{c}_std'])} | " for c, _ in finals),
                r95=fmt_reach(e, 95), r98=fmt_reach(e, 98),
                full=fmt_mean_std(e[f"full_pool_{metric.column}_mean"], e[f"full_pool_{metric.column}_std"]),
                train=e["train_seconds_mean"], query=e["query_seconds_mean"],
            )
        )
    return "\n".join(lines) + "\n"
