"""The realistic protocol's section of ``bench/RESULTS.md``, rendered from the rounds ``realistic.run`` and
``finetune_realistic.py`` write: the headline per dataset and start, the default pipeline against labeling in
random order, the targets with their headroom, one table per lever, then each run's full table.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import corpora  # noqa: E402
import embed_cache  # noqa: E402
from realistic import (  # noqa: E402
    BUDGET,
    DEFAULT_STRATEGY,
    FINETUNE_LEVER,
    LEVERS,
    SMALLTEXT_BEST,
    STARTS,
    STRATEGY_LEVERS,
    load_rounds,
    rounds_path,
)
from simulation_inputs import TEST_FRACTION  # noqa: E402

from backend.simulation.protocol import make_split  # noqa: E402
from backend.simulation.summary import (  # noqa: E402
    fmt_interval,
    fmt_reach,
    paired_interval,
    per_run_stats,
    summarize,
    summary_markdown,
)


def _each_run(names: list[str], results_dir: Path):
    """``(name, start, summary, stats)`` for each dataset and start that ran: ``summarize`` by strategy and
    ``per_run_stats``."""
    for name in names:
        for start in STARTS:
            loaded = load_rounds(results_dir, name, start)
            if loaded is not None:
                yield name, start, {e["strategy"]: e for e in summarize(*loaded)}, per_run_stats(*loaded)


def _with_both_starts(names: list[str], results_dir: Path):
    """``(name, loaded, stats)`` for each dataset run from both starts: per start, the rounds and references
    as ``_load`` gives them, and their ``per_run_stats``."""
    for name in names:
        loaded = {start: load_rounds(results_dir, name, start) for start in STARTS}
        if all(value is not None for value in loaded.values()):
            yield name, loaded, {start: per_run_stats(*loaded[start]) for start in STARTS}


def paired_differences(first: dict, second: dict, strategy_first: str, strategy_second: str, key: str = "auc") -> list[float]:
    """``first``'s AUC (or another ``per_run_stats`` ``key``) minus ``second``'s per seed present in both."""
    seeds = sorted(s for (strategy, s) in first if strategy == strategy_first and (strategy_second, s) in second)
    return [first[(strategy_first, s)][key] - second[(strategy_second, s)][key] for s in seeds]


def paired_delta(first: dict, second: dict, strategy_first: str, strategy_second: str, key: str = "auc") -> str:
    """``paired_differences``' mean and 95% Student-t interval, in pp."""
    differences = paired_differences(first, second, strategy_first, strategy_second, key)
    if not differences:
        return "not run"
    low, high = paired_interval(differences)
    return f"{np.mean(differences) * 100:+.1f} {fmt_interval(low, high, 100.0)}"


def _delta(entry: dict) -> str:
    return (f"{entry['delta_auc_vs_random_mean'] * 100:+.1f} "
            f"{fmt_interval(entry['delta_auc_vs_random_ci95_low'], entry['delta_auc_vs_random_ci95_high'], 100.0)}")


def render(names: list[str], results_dir: Path) -> list[str]:
    """The RESULTS.md section: a headline table, the levers, then each dataset's full table per start."""
    headline = [
        "| dataset | start | random AUC | full-pool accuracy (headroom over random's AUC) | "
        f"default ({DEFAULT_STRATEGY}) Δ AUC pp, 95% CI | best strategy: Δ AUC pp, 95% CI | "
        f"{DEFAULT_STRATEGY} − {SMALLTEXT_BEST}, AUC pp | labels to 95% / 98%: {DEFAULT_STRATEGY} | random |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for name, start, summary, stats in _each_run(names, results_dir):
        default, random = summary.get(DEFAULT_STRATEGY), summary["random"]
        best = max((e for s, e in summary.items() if s != "random" and not s.startswith("small-text")),
                   key=lambda e: e["auc_mean"])
        ceiling = random["full_pool_accuracy_mean"]
        headline.append(
            f"| {corpora.NAMES[name]} | {start} | {random['auc_mean']:.3f} | {ceiling:.3f} "
            f"({(ceiling - random['auc_mean']) * 100:+.1f} pp) | {_delta(default) if default else 'not run'} | "
            f"{best['strategy']} {_delta(best)} | {paired_delta(stats, stats, DEFAULT_STRATEGY, SMALLTEXT_BEST)} | "
            f"{fmt_reach(default, 95) if default else 'n/a'} / {fmt_reach(default, 98) if default else 'n/a'} | "
            f"{fmt_reach(random, 95)} / {fmt_reach(random, 98)} |"
        )
        details.append(summary_markdown(list(summary.values()), f"{corpora.NAMES[name]}, {start} start").replace("## ", "#### ", 1))
    if len(headline) == 2:
        return []
    budget = BUDGET["initial"] + BUDGET["batch_size"] * BUDGET["rounds"]
    return [
        f"## Realistic protocol: {budget} labels, no stratified start",
        "",
        f"{BUDGET['initial']} initial labels drawn uniformly at random (*random* start) or by the `cold_start` ranking "
        f"(*cold_start* start), then {BUDGET['rounds']} rounds of {BUDGET['batch_size']}; until two classes are labeled "
        "no model trains and the cold-start phase ranks, as in the worker. Same embeddings, splits and head as the "
        "standard protocol; small-text 1.4.1 gets the same embeddings, splits and initial labels (a seed whose "
        "initial labels hold one class is skipped there: small-text cannot train on it; where they miss a class, "
        "small-text 1.4.1's `SklearnClassifier.predict` reads the argmax over the seen classes' probability columns "
        "as the class index, so its predictions can name the wrong class). Δ AUC is paired per seed "
        "against random with the same start; the interval is a 95% Student-t interval over seeds. \"Labels to 95% / "
        "98%\": labels until test accuracy reaches that share of the full-pool accuracy.",
        "",
        *headline,
        "",
        *_pipeline_table(names, results_dir),
        *_targets(names, results_dir),
        *_start_table(names, results_dir),
        *_lever_tables(names, results_dir),
        *_strategy_lever_table(names, results_dir),
        *_finetune_table(names, results_dir),
        *details,
    ]


def _pipeline_table(names: list[str], results_dir: Path) -> list[str]:
    """What a project gets with the defaults (the cold-start phase serves its first labels, then the default
    strategy) against labeling in random order (a random start, then random), paired per seed: both share the
    seed's split; also the best start-and-strategy pair measured."""
    rows = []
    for name, loaded, stats in _with_both_starts(names, results_dir):
        auc = {(start, e["strategy"]): e["auc_mean"] for start in STARTS for e in summarize(*loaded[start])
               if not e["strategy"].startswith("small-text")}
        best_start, best_strategy = max(auc, key=auc.get)
        rows.append(
            f"| {corpora.NAMES[name]} | {auc[('cold_start', DEFAULT_STRATEGY)]:.3f} | {auc[('random', 'random')]:.3f} | "
            f"{paired_delta(stats['cold_start'], stats['random'], DEFAULT_STRATEGY, 'random')} | "
            f"{best_strategy} from a {best_start} start, {auc[(best_start, best_strategy)]:.3f}: "
            f"{paired_delta(stats[best_start], stats['random'], best_strategy, 'random')} |"
        )
    if not rows:
        return []
    return [
        "### The default pipeline against labeling in random order",
        "",
        f"With the defaults, a new project is served the cold-start ranking until a model can train, then "
        f"`{DEFAULT_STRATEGY}`: the *cold_start* start with `{DEFAULT_STRATEGY}`. A team without the backend labels in "
        "random order: the *random* start with `random`. Δ AUC paired per seed (both share the seed's split), 95% "
        "interval; the last column is the best start-and-strategy pair measured. The simulation takes the first "
        "10 labels from the cold-start ranking, one batch; the worker serves it until its first model is trained "
        "(4 labels in 2 classes by default, plus those given while that retrain runs).",
        "",
        "| dataset | default pipeline AUC | random order AUC | default − random order, pp | best pair: AUC, − random order, pp |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]



#: Issue 11's bar for the default pipeline over labeling in random order, in AUC points.
TARGET_GAIN_PP = 4.0


def _targets(names: list[str], results_dir: Path) -> list[str]:
    """Issue 11's targets on the realistic protocol, each met or missed, with the headroom where missed."""
    rows = []
    for name, loaded, stats in _with_both_starts(names, results_dir):
        gain = float(np.mean(paired_differences(stats["cold_start"], stats["random"], DEFAULT_STRATEGY, "random"))) * 100
        random_order = {e["strategy"]: e for e in summarize(*loaded["random"])}["random"]
        headroom = (random_order["full_pool_accuracy_mean"] - random_order["auc_mean"]) * 100
        status = "met" if gain >= TARGET_GAIN_PP else ("missed, below random order" if gain < 0 else "missed")
        rows.append(f"| default pipeline AUC ≥ random order + {TARGET_GAIN_PP:.0f} pp, never below | "
                    f"{corpora.NAMES[name]} | {gain:+.1f} pp; headroom {headroom:.1f} pp | {status} |")
        for start in STARTS:
            versus = paired_delta(stats[start], stats[start], DEFAULT_STRATEGY, SMALLTEXT_BEST)
            if versus != "not run":
                mean = float(versus.split()[0])
                rows.append(f"| {DEFAULT_STRATEGY} AUC ≥ {SMALLTEXT_BEST}, same inputs | {corpora.NAMES[name]}, "
                            f"{start} start | {versus} pp | {'met' if mean >= 0 else 'missed'} |")
    rows += _finetune_target(results_dir)
    if not rows:
        return []
    return [
        "### Targets on the realistic protocol",
        "",
        "The headroom is the full-pool accuracy of the same head minus random order's AUC: no ordering of the "
        "labels can lift the AUC by more than that.",
        "",
        "| target | dataset | measured | status |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def _finetune_target(results_dir: Path) -> list[str]:
    """BBC: labels until the frozen head reaches 98% of a fine-tuned full-data model, the full-pool reference of
    ``finetune_realistic.py``'s runs on the whole pool at the benchmark's max_length."""
    references = {}
    for start in STARTS:
        path = rounds_path(results_dir, "bbc", start, FINETUNE_LEVER).with_suffix(".meta.json")
        meta = json.loads(path.read_text()) if path.exists() else None
        if meta and meta["pool_limit"] is None and meta["training"]["max_length"] == embed_cache.CONFIG["bbc"]["max_length"]:
            references.update(meta["reference"])
    if not references:
        return []
    accuracy = float(np.mean(list(references.values())))
    labels = embed_cache.load_cache("bbc")["labels"]
    n_pool = len(labels) - len(make_split(np.unique(labels, return_inverse=True)[1], TEST_FRACTION, 0)[1])
    budget = round(0.05 * n_pool)
    rows = []
    # The head alone (model_mode: head), with the full path (model_mode: finetune, the worker's default), and
    # with the full path tuned by SetFit (finetune_method: setfit).
    for lever, pipeline in (("", DEFAULT_STRATEGY), ("full_path", f"{DEFAULT_STRATEGY} with the full path"),
                            ("setfit_full_path", f"{DEFAULT_STRATEGY} with the SetFit full path")):
        loaded = load_rounds(results_dir, "bbc", "cold_start", lever)
        if loaded is None:
            continue
        rounds, frozen_reference = loaded
        default = {e["strategy"]: e for e in summarize(rounds, {seed: accuracy for seed in frozen_reference})}[DEFAULT_STRATEGY]
        reached, seeds = (int(part) for part in default["labels_to_98_reached"].split("/"))
        met = reached == seeds and default["labels_to_98_mean"] <= budget
        rows.append(
            f"| 98% of a fine-tuned full-data model's accuracy ({accuracy:.3f}, seeds {', '.join(sorted(references))}) "
            f"within 5% of the pool ({budget} of {n_pool}) | BBC News, cold_start start, {pipeline} | "
            f"{fmt_reach(default, 98)} within {BUDGET['initial'] + BUDGET['batch_size'] * BUDGET['rounds']} labels; "
            f"final accuracy {default['final_accuracy_mean']:.3f}; the frozen head's own full-pool accuracy is "
            f"{np.mean(list(frozen_reference.values())):.3f} | {'met' if met else 'missed'} |"
        )
    return rows


def _start_table(names: list[str], results_dir: Path) -> list[str]:
    """The cold-start start as a lever: each strategy's AUC from a cold_start start against a random one."""
    rows = []
    for name, loaded, stats in _with_both_starts(names, results_dir):
        auc = {start: {e["strategy"]: e["auc_mean"] for e in summarize(*loaded[start])} for start in STARTS}
        rows.append(
            f"| {corpora.NAMES[name]} | " + " | ".join(
                f"{auc['random'][s]:.3f} → {auc['cold_start'][s]:.3f}, "
                f"{paired_delta(stats['cold_start'], stats['random'], s, s)}"
                for s in (DEFAULT_STRATEGY, "random")
            ) + " |"
        )
    if not rows:
        return []
    return [
        "### Lever: cold-start initial labels",
        "",
        "The first 10 labels chosen by the `cold_start` ranking instead of uniformly at random (the backend serves "
        "a new project the cold-start ranking, so this is what a project gets when annotators follow `/next`). "
        "AUC from a random start → from a cold-start start, then the paired difference in pp with its 95% interval.",
        "",
        f"| dataset | {DEFAULT_STRATEGY} | random |",
        "|---|---|---|",
        *rows,
        "",
    ]


def full_path_outcomes(results_dir: Path, name: str, start: str, lever: str) -> str:
    """How the two-speed runs' full paths ended, from the notes ``backend.simulation.runner`` leaves: e.g.
    ``margin: adopted 4, rejected 1``."""
    notes = json.loads(rounds_path(results_dir, name, start, lever).with_suffix(".meta.json").read_text())["notes"]
    counts: dict[str, dict[str, int]] = {}
    for note in notes:
        head, _, rest = note.partition(": full path ")
        if rest:
            outcome = rest.split(":")[0]
            per_strategy = counts.setdefault(head.split(" seed ")[0], {})
            per_strategy[outcome] = per_strategy.get(outcome, 0) + 1
    return "; ".join(f"{strategy}: " + ", ".join(f"{outcome} {n}" for outcome, n in sorted(outcomes.items()))
                     for strategy, outcomes in counts.items())


def fine_tune_seconds(rows: list[dict]) -> str:
    """What a full path costs here: per seed, the default strategy's longest round is the one that fine-tuned
    (adopted or not, the fine-tune ran), and its training time includes the fine-tune."""
    longest: dict[int, float] = {}
    for row in rows:
        if row["strategy"] == DEFAULT_STRATEGY:
            longest[row["seed"]] = max(longest.get(row["seed"], 0.0), float(row["train_seconds"]))
    return f"the round that fine-tuned trained for {np.median(list(longest.values())):.0f} s (median over seeds)"


def _lever_tables(names: list[str], results_dir: Path) -> list[str]:
    """Per lever, dataset and start: AUC of the default strategy and of random with and without the lever."""
    lines = []
    for lever, spec in LEVERS.items():
        rows, outcomes = [], []
        for name in names:
            for start in STARTS:
                plain, levered = load_rounds(results_dir, name, start), load_rounds(results_dir, name, start, lever)
                if plain is None or levered is None:
                    continue
                # A costly lever may run fewer seeds: compare it with the same seeds without it.
                seeds = {int(row["seed"]) for row in levered[0]}
                fewer = len(seeds) < len(plain[1])
                plain = ([row for row in plain[0] if int(row["seed"]) in seeds],
                         {seed: accuracy for seed, accuracy in plain[1].items() if seed in seeds})
                if spec.settings.get("mode") == "two_speed":
                    outcomes.append(f"- {corpora.NAMES[name]}, {start} start: {full_path_outcomes(results_dir, name, start, lever)}; "
                                    f"{fine_tune_seconds(levered[0])}.")
                before = {e["strategy"]: e for e in summarize(*plain)}
                after = {e["strategy"]: e for e in summarize(*levered)}
                stats_before, stats_after = per_run_stats(*plain), per_run_stats(*levered)
                with_random = "random" in after  # a costly lever runs the default strategy alone
                seed_count = (f" ({len(seeds)} seeds)" if len(seeds) > 1 else " (1 seed)") if fewer else ""
                rows.append(
                    f"| {corpora.NAMES[name]} | {start}{seed_count} | "
                    f"{before[DEFAULT_STRATEGY]['auc_mean']:.3f} → {after[DEFAULT_STRATEGY]['auc_mean']:.3f} | "
                    f"{paired_delta(stats_after, stats_before, DEFAULT_STRATEGY, DEFAULT_STRATEGY)} | "
                    f"{before[DEFAULT_STRATEGY]['final_accuracy_mean']:.3f} → {after[DEFAULT_STRATEGY]['final_accuracy_mean']:.3f}, "
                    f"{paired_delta(stats_after, stats_before, DEFAULT_STRATEGY, DEFAULT_STRATEGY, 'final_accuracy')} | "
                    + (f"{before['random']['auc_mean']:.3f} → {after['random']['auc_mean']:.3f} | "
                       f"{_delta(after[DEFAULT_STRATEGY])} |" if with_random else "not run | not run |")
                )
        if rows:
            lines += [
                f"### Lever: {spec.title}",
                "",
                "The same runs (seeds, splits, initial labels) with the lever applied. AUC without → with the lever; "
                f"the lever's effect on {DEFAULT_STRATEGY}, paired per seed; the last column is {DEFAULT_STRATEGY} "
                "against random, both with the lever.",
                "",
                f"| dataset | start | {DEFAULT_STRATEGY} AUC | lever's effect on {DEFAULT_STRATEGY}, pp, 95% CI | "
                f"{DEFAULT_STRATEGY} accuracy at {BUDGET['initial'] + BUDGET['batch_size'] * BUDGET['rounds']} labels, "
                "the lever's effect in pp, 95% CI | "
                f"random AUC | {DEFAULT_STRATEGY} Δ AUC vs random pp with the lever, 95% CI |",
                "|---|---|---|---|---|---|---|",
                *rows,
                "",
                *(["Full-path decisions (each fine-tune judged on its held-out labels), per strategy over the seeds, and "
                    "the fine-tune's cost on this machine's CPU:", "", *outcomes, ""]
                  if outcomes else []),
            ]
    return lines


def _strategy_lever_table(names: list[str], results_dir: Path) -> list[str]:
    """Each strategy lever against the default strategy and against random, on the same runs."""
    rows = []
    for name, start, summary, stats in _each_run(names, results_dir):
        cells = [
            f"{summary[s]['auc_mean']:.3f}: {paired_delta(stats, stats, s, DEFAULT_STRATEGY)} / {_delta(summary[s])}"
            if s in summary else "not run"
            for s in STRATEGY_LEVERS
        ]
        rows.append(f"| {corpora.NAMES[name]} | {start} | {summary[DEFAULT_STRATEGY]['auc_mean']:.3f} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        "### Levers that are strategies",
        "",
        *[f"- `{s}`: {title}." for s, title in STRATEGY_LEVERS.items()],
        "",
        f"Each cell: the strategy's AUC, then its Δ AUC in pp against {DEFAULT_STRATEGY} / against random, paired per "
        "seed with 95% intervals.",
        "",
        f"| dataset | start | {DEFAULT_STRATEGY} AUC | " + " | ".join(f"`{s}`" for s in STRATEGY_LEVERS) + " |",
        "|---|---|---|" + "---|" * len(STRATEGY_LEVERS),
        *rows,
        "",
    ]


def _finetune_table(names: list[str], results_dir: Path) -> list[str]:
    """The fine-tuned path (``finetune_realistic.py``) against the frozen head on the same seeds and starts."""
    rows, notes = [], []
    for name in names:
        for start in STARTS:
            tuned, frozen = load_rounds(results_dir, name, start, FINETUNE_LEVER), load_rounds(results_dir, name, start)
            if tuned is None or frozen is None:
                continue
            meta = json.loads(rounds_path(results_dir, name, start, FINETUNE_LEVER).with_suffix(".meta.json").read_text())
            notes.append(f"{corpora.NAMES[name]}, {start} start: `{meta['command']}`. {meta.get('run_on', '')}")
            after, before = per_run_stats(*tuned), per_run_stats(*frozen)
            summary = {e["strategy"]: e for e in summarize(*tuned)}
            for strategy in summary:
                seeds = sorted(s for (st, s) in after if st == strategy)
                frozen_auc = np.mean([before[(strategy, s)]["auc"] for s in seeds if (strategy, s) in before])
                rows.append(
                    f"| {corpora.NAMES[name]} | {start} | {strategy} | {', '.join(map(str, seeds))} | {frozen_auc:.3f} → "
                    f"{summary[strategy]['auc_mean']:.3f} | {paired_delta(after, before, strategy, strategy)} | "
                    f"{summary[strategy]['final_accuracy_mean']:.3f} | {summary[strategy]['full_pool_accuracy_mean']:.3f} | "
                    f"{summary[strategy]['train_seconds_mean'] + summary[strategy]['query_seconds_mean']:.1f} s |"
                )
    if not rows:
        return []
    return [
        "### Lever: the fine-tuned path",
        "",
        "Every round fine-tunes the encoder end to end on the labels so far (`model_mode: finetune`'s classifier, "
        "default epochs, learning rate and batch size) instead of fitting the head over frozen embeddings; same "
        "splits, starts and strategy code (`bench/finetune_realistic.py`). AUC of the frozen head on the same seeds → "
        "fine-tuned; the full-pool reference is a model fine-tuned on the whole pool.",
        "",
        "| dataset | start | strategy | seeds | AUC frozen → fine-tuned | fine-tuned − frozen, pp | final accuracy "
        "(90 labels) | fine-tuned full-pool accuracy | seconds per round (train + rank) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *[f"- {note}" for note in notes],
        "",
        "Reduced CPU probes of SetFit (Tunstall et al. 2022) and of the fine-tuned path on a 400-text pool: "
        "[levers_costly.md](levers_costly.md).",
        "",
    ]
