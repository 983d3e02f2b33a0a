"""The realistic protocol (issue 11), next to the standard one in ``bench/label_efficiency.py``.

A Label Studio project starts from whatever its annotators label first, and its budget is decided in the
first hundred labels. So: a 90-label budget (10 initial labels, then 8 rounds of 10); initial labels drawn
as a project gets them, uniformly at random or by the ``cold_start`` ranking the backend serves a new
project, never stratified; 5 seeds. Until two classes are labeled no model trains, and the simulation
ranks with the cold-start phase, as the worker does (``backend.simulation.runner``).

Per dataset and start: paired Δ AUC against random with a 95% Student-t interval over seeds, labels to reach
95% / 98% of the full-pool accuracy, and the headroom: the full-pool ceiling against random's AUC.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import datasets  # noqa: E402
from simulation_inputs import classifier_factory, dataset_and_config  # noqa: E402

from backend.settings import ProjectSettings  # noqa: E402
from backend.simulation.report import read_rounds, write_rounds  # noqa: E402
from backend.simulation.runner import simulate  # noqa: E402
from backend.simulation.summary import fmt_interval, fmt_reach, summarize, summary_markdown  # noqa: E402

BUDGET = {"initial": 10, "batch_size": 10, "rounds": 8}
STARTS = ("random", "cold_start")
DEFAULT_STRATEGY = ProjectSettings().strategy


def l2_normalised(embeddings: np.ndarray) -> np.ndarray:
    """Each row divided by its Euclidean norm: cosine geometry for the head, k-means and distances."""
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


#: Levers measured on the embeddings every strategy and the head read, against the same runs without them;
#: each runs the default strategy and random. A lever becomes a worker setting only where the table says so.
LEVERS = {"l2": ("L2-normalised embeddings", l2_normalised)}
LEVER_STRATEGIES = (DEFAULT_STRATEGY, "random")


def rounds_path(results_dir: Path, name: str, start: str, lever: str = "") -> Path:
    return results_dir / f"{name}_realistic_{start}{'_' + lever if lever else ''}_rounds.csv"


def run(name: str, seeds: tuple[int, ...], strategies: tuple[str, ...], encoder_holder: dict, results_dir: Path) -> None:
    """Simulate every strategy from each start, then each lever; rounds and full-pool references go to ``results_dir``."""
    for start in STARTS:
        _run_one(name, seeds, strategies, start, "", encoder_holder, results_dir)
        for lever in LEVERS:
            _run_one(name, seeds, LEVER_STRATEGIES, start, lever, encoder_holder, results_dir)


def _run_one(name, seeds, strategies, start: str, lever: str, encoder_holder: dict, results_dir: Path) -> None:
    cache, data, config = dataset_and_config(name, seeds, strategies, {**BUDGET, "initial_strategy": start})
    if lever:
        cache = {**cache, "embeddings": LEVERS[lever][1](cache["embeddings"])}
    print(f"[{name}] realistic protocol, {start} start{', lever ' + lever if lever else ''}", file=sys.stderr, flush=True)
    result = simulate(data, config, make_classifier=classifier_factory(data, cache, encoder_holder), progress=True)
    results_dir.mkdir(exist_ok=True)
    write_rounds(rounds_path(results_dir, name, start, lever), result.rows)
    meta = {"reference": {str(seed): accuracy for seed, accuracy in result.reference.items()}, "notes": result.notes}
    rounds_path(results_dir, name, start, lever).with_suffix(".meta.json").write_text(json.dumps(meta, indent=1))


def _load(results_dir: Path, name: str, start: str, lever: str = "") -> tuple[list[dict], dict[int, float]] | None:
    path = rounds_path(results_dir, name, start, lever)
    if not path.exists():
        return None
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    return read_rounds(path), {int(seed): accuracy for seed, accuracy in meta["reference"].items()}


def render(names: list[str], results_dir: Path) -> list[str]:
    """The RESULTS.md section: a headline table, then each dataset's full table per start."""
    headline = [
        "| dataset | start | random AUC | full-pool accuracy (headroom over random's AUC) | "
        f"default ({DEFAULT_STRATEGY}) Δ AUC pp, 95% CI | best strategy: Δ AUC pp, 95% CI | "
        f"labels to 95% / 98%: {DEFAULT_STRATEGY} | random |",
        "|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for name in names:
        for start in STARTS:
            loaded = _load(results_dir, name, start)
            if loaded is None:
                continue
            rows, reference = loaded
            summary = {entry["strategy"]: entry for entry in summarize(rows, reference)}
            default, random = summary.get(DEFAULT_STRATEGY), summary["random"]
            best = max((e for s, e in summary.items() if s != "random"), key=lambda e: e["auc_mean"])
            ceiling = random["full_pool_accuracy_mean"]

            def delta(entry):
                return (f"{entry['delta_auc_vs_random_mean'] * 100:+.1f} "
                        f"{fmt_interval(entry['delta_auc_vs_random_ci95_low'], entry['delta_auc_vs_random_ci95_high'], 100.0)}")

            headline.append(
                f"| {datasets.NAMES[name]} | {start} | {random['auc_mean']:.3f} | {ceiling:.3f} "
                f"({(ceiling - random['auc_mean']) * 100:+.1f} pp) | {delta(default) if default else 'not run'} | "
                f"{best['strategy']} {delta(best)} | "
                f"{fmt_reach(default, 95) if default else 'n/a'} / {fmt_reach(default, 98) if default else 'n/a'} | "
                f"{fmt_reach(random, 95)} / {fmt_reach(random, 98)} |"
            )
            details.append(summary_markdown(list(summary.values()), f"{datasets.NAMES[name]}, {start} start").replace("## ", "#### ", 1))
    if len(headline) == 2:
        return []
    levers = _lever_table(names, results_dir)
    budget = BUDGET["initial"] + BUDGET["batch_size"] * BUDGET["rounds"]
    return [
        f"## Realistic protocol: {budget} labels, no stratified start",
        "",
        f"{BUDGET['initial']} initial labels drawn uniformly at random (*random* start) or by the `cold_start` ranking "
        f"(*cold_start* start), then {BUDGET['rounds']} rounds of {BUDGET['batch_size']}; until two classes are labeled "
        "no model trains and the cold-start phase ranks, as in the worker. Same embeddings, splits and head as the "
        "standard protocol. Δ AUC is paired per seed against random with the same start; the interval is a 95% "
        "Student-t interval over seeds. \"Labels to 95% / 98%\": labels until test accuracy reaches that share of the "
        "full-pool accuracy.",
        "",
        *headline,
        "",
        *levers,
        *details,
    ]


def _lever_table(names: list[str], results_dir: Path) -> list[str]:
    """Per lever, dataset and start: AUC of the default strategy and of random with and without the lever."""
    lines = []
    for lever, (title, _) in LEVERS.items():
        rows = []
        for name in names:
            for start in STARTS:
                plain, levered = _load(results_dir, name, start), _load(results_dir, name, start, lever)
                if plain is None or levered is None:
                    continue
                before = {e["strategy"]: e for e in summarize(*plain)}
                after = {e["strategy"]: e for e in summarize(*levered)}
                default = after[DEFAULT_STRATEGY]
                rows.append(
                    f"| {datasets.NAMES[name]} | {start} | {before[DEFAULT_STRATEGY]['auc_mean']:.3f} → {default['auc_mean']:.3f} | "
                    f"{before['random']['auc_mean']:.3f} → {after['random']['auc_mean']:.3f} | "
                    f"{default['delta_auc_vs_random_mean'] * 100:+.1f} "
                    f"{fmt_interval(default['delta_auc_vs_random_ci95_low'], default['delta_auc_vs_random_ci95_high'], 100.0)} |"
                )
        if rows:
            lines += [
                f"### Lever: {title}",
                "",
                f"The same runs with the lever applied to the embeddings that the head and every strategy read (the "
                f"head keeps C=10). AUC without → with the lever; the last column is {DEFAULT_STRATEGY} against random, "
                "both with the lever.",
                "",
                f"| dataset | start | {DEFAULT_STRATEGY} AUC | random AUC | {DEFAULT_STRATEGY} Δ AUC pp with the lever, 95% CI |",
                "|---|---|---|---|---|",
                *rows,
                "",
            ]
    return lines
