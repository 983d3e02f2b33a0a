"""Label-efficiency benchmark: regenerates bench/RESULTS.md and the learning-curve PNGs.

    bash bench/setup.sh                                  # datasets + small-text venv (once)
    HF_HUB_OFFLINE=1 python bench/label_efficiency.py    # [--datasets bbc,rotten,spam] [--seeds 5]

The realistic protocol saves every run after each seed; ``--resume`` continues a stopped run on the seeds it
lacks (a long CPU run of the SetFit lever takes hours).

What it does, per dataset:
1. Embeds the texts once with the backend's frozen encoder (``bench/embed_cache.py``, cached in bench/.cache).
2. Runs ``backend.simulation`` (the worker's classifier and strategy code) in "head" mode for every strategy
   and seed, on a classifier whose embedding cache is pre-filled from step 1.
3. Saves the same embeddings, splits and initial sets to ``bench/.cache/<name>.splits.npz`` and runs
   small-text 1.4.1 (BreakingTies, RandomSampling; same LogisticRegression config) on them in its own venv.
4. Writes per-dataset rounds CSVs to bench/results/, PNGs to bench/, and bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import corpora  # noqa: E402
import realistic  # noqa: E402
import realistic_report  # noqa: E402
from simulation_inputs import TEST_FRACTION, classifier_factory, dataset_and_config  # noqa: E402
from smalltext_compare import run_smalltext, write_splits  # noqa: E402

from backend.simulation.protocol import make_split  # noqa: E402
from backend.simulation.report import plot_learning_curves, read_rounds, write_rounds  # noqa: E402
from backend.simulation.runner import Simulator, simulate  # noqa: E402
from backend.simulation.summary import summarize, summary_markdown  # noqa: E402

RESULTS_DIR = BENCH / "results"
OUR_STRATEGIES = ("margin", "entropy", "least_confidence", "cluster_margin", "coreset", "information_density",
                  "balanced_margin", "random")

#: Active-learning loop per dataset: initial labeled set, batch size, rounds.
LOOP = {
    "bbc": {"initial": 10, "batch_size": 10, "rounds": 20},
    "rotten": {"initial": 10, "batch_size": 20, "rounds": 20},
    "spam": {"initial": 10, "batch_size": 10, "rounds": 20},
}


def run_dataset(name: str, seeds: tuple[int, ...], strategies: tuple[str, ...], encoder_holder: dict) -> dict:
    cache, data, config = dataset_and_config(name, seeds, strategies, LOOP[name])
    started = time.perf_counter()
    result = simulate(data, config, make_classifier=classifier_factory(data, cache, encoder_holder), progress=True)
    ours_seconds = time.perf_counter() - started

    # Identical inputs for small-text: embeddings in dataset order, and per seed the split and initial set
    # computed by the very functions the simulation used.
    splits_path = write_splits(corpora.CACHE / f"{name}.splits.npz", cache["embeddings"], data.y, len(data.classes),
                               config, Simulator(data, config).initial_positions)
    smalltext_rows, smalltext_error, smalltext_seconds = run_smalltext(splits_path, corpora.CACHE / f"{name}.smalltext.jsonl")
    all_rows = result.rows + smalltext_rows

    RESULTS_DIR.mkdir(exist_ok=True)
    write_rounds(RESULTS_DIR / f"{name}_rounds.csv", all_rows)
    meta = {"reference": {str(k): v for k, v in result.reference.items()}, "notes": result.notes,
            "smalltext_error": smalltext_error, "ours_seconds": ours_seconds, "smalltext_seconds": smalltext_seconds}
    (RESULTS_DIR / f"{name}_meta.json").write_text(json.dumps(meta, indent=1))
    return render_dataset(name, strategies, encoder_holder)


def render_dataset(name: str, strategies: tuple[str, ...], encoder_holder: dict) -> dict:
    """Summary and PNG from bench/results/<name>_rounds.csv (+ _meta.json); --report-only uses this alone."""
    rows = read_rounds(RESULTS_DIR / f"{name}_rounds.csv")
    seeds = tuple(sorted({r["seed"] for r in rows}))
    cache, data, config = dataset_and_config(name, seeds, strategies, LOOP[name])
    meta_path = RESULTS_DIR / f"{name}_meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if "reference" in meta:
        reference = {int(k): v for k, v in meta["reference"].items()}
    else:  # cheap: one head fit on the whole pool per seed, with the simulation's own code
        simulator = Simulator(data, config, classifier_factory(data, cache, encoder_holder))
        reference = {seed: simulator.reference_accuracy(seed) for seed in seeds}
    png = BENCH / f"learning_curve_{name}.png"
    plot_learning_curves(rows, png, f"{corpora.NAMES[name]}: frozen MiniLM + logistic head", reference)
    pool, test = make_split(data.y, config.test_fraction, seeds[0])
    return {
        "name": name, "data": data, "config": config, "summary": summarize(rows, reference), "reference": reference,
        "notes": meta.get("notes", []), "smalltext_error": meta.get("smalltext_error"), "png": png.name,
        "ours_seconds": meta.get("ours_seconds"), "smalltext_seconds": meta.get("smalltext_seconds"),
        "embed_seconds": float(cache["embed_seconds"]), "n_pool": len(pool), "n_test": len(test),
        "has_smalltext": any(r["strategy"].startswith("small-text") for r in rows),
    }


# ---------------------------------------------------------------------------------------------- report


def _entry(summary, strategy):
    return next((e for e in summary if e["strategy"] == strategy), None)


def targets(results: list[dict]) -> list[str]:
    lines = ["| target | dataset | measured | status |", "|---|---|---|---|"]
    ours = set(OUR_STRATEGIES) - {"random"}
    for r in results:
        summary = r["summary"]
        best = max((e for e in summary if e["strategy"] in ours), key=lambda e: e["auc_mean"])
        random = _entry(summary, "random")
        delta = best["auc_mean"] - random["auc_mean"]
        headroom = best["full_pool_accuracy_mean"] - random["auc_mean"]
        lines.append(
            f"| best AUC ≥ random + 3 pp | {r['name']} | {best['strategy']} {best['auc_mean']:.3f} vs random "
            f"{random['auc_mean']:.3f} ({delta * 100:+.1f} pp); headroom: full-pool accuracy {best['full_pool_accuracy_mean']:.3f} "
            f"is only {headroom * 100:+.1f} pp above random's AUC | {'met' if delta >= 0.03 else 'missed'} |"
        )
    for r in results:
        bt = _entry(r["summary"], "small-text BreakingTies")
        best = max((e for e in r["summary"] if e["strategy"] in ours), key=lambda e: e["auc_mean"])
        if bt is None:
            lines.append(f"| best AUC ≥ small-text BreakingTies | {r['name']} | small-text did not run: {r['smalltext_error']} | not measured |")
        else:
            gap = best["auc_mean"] - bt["auc_mean"]
            status = "met" if gap >= -1e-9 else (
                f"missed by {-gap * 100:.2f} pp (a tie: margin is the same rule as BreakingTies; the heads differ only "
                "in float32 vs float64 inputs)" if gap > -0.001 else "missed")
            lines.append(
                f"| best AUC ≥ small-text BreakingTies | {r['name']} | {best['strategy']} {best['auc_mean']:.4f} vs "
                f"BreakingTies {bt['auc_mean']:.4f} | {status} |"
            )
    bbc = next((r for r in results if r["name"] == "bbc"), None)
    if bbc:
        budget = 0.10 * bbc["n_pool"]
        rows = []
        for e in bbc["summary"]:
            if e["strategy"] in ours and e["labels_to_98_reached"].split("/")[0] == e["labels_to_98_reached"].split("/")[1]:
                rows.append((e["labels_to_98_mean"], e["strategy"]))
        if rows:
            labels, strategy = min(rows)
            status = "met" if labels <= budget else "missed"
            measured = f"{strategy}: {labels:.0f} labels on average (every seed) = {labels / bbc['n_pool'] * 100:.1f}% of the {bbc['n_pool']}-item pool"
        else:
            status, measured = "missed", "no strategy reached 98% in every seed within the run"
        lines.append(f"| ≥ 98% of full-pool accuracy with ≤ 10% of the pool labeled | bbc | {measured} | {status} |")
    return lines


def write_results(results: list[dict], realistic_names: list[str], seeds, total_seconds: float, argv: list[str]) -> Path:
    import sklearn
    import torch

    lines = [
        "# Label-efficiency benchmark",
        "",
        "Regenerate (after `bash bench/setup.sh` once):",
        "",
        "```",
        "HF_HUB_OFFLINE=1 python bench/label_efficiency.py" + (" " + " ".join(argv) if argv else ""),
        "```",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs while this ran), no GPU; "
        f"Python {platform.python_version()}, torch {torch.__version__}, scikit-learn {sklearn.__version__}. "
        + (f"Total benchmark time {total_seconds / 60:.1f} min (embeddings cached in bench/.cache)." if total_seconds else
         "Embedding times below; per-dataset run times under each table."),
        "",
        "## Settings",
        "",
        "- Model: the bundled all-MiniLM-L6-v2 in **frozen-encoder (\"head\") mode**: mean-pooled embeddings + "
        "`LogisticRegression(max_iter=2000, C=10.0)`, i.e. `backend.models.frozen_classifier.FrozenEncoderClassifier`. "
        "Every round refits the head with the worker's code and ranks the pool with `backend.learning.scoring.collect_outputs` "
        "and the registered strategy (`backend/simulation/runner.py`).",
        f"- Seeds: {', '.join(map(str, seeds))}. Per seed: a stratified {TEST_FRACTION:.0%} test split and a stratified-random "
        "initial set (every class at least once), shared by every strategy and by small-text.",
        "- small-text 1.4.1 runs in its own venv (`bench/.cache/smalltext-venv`) with `SklearnClassifierFactory` and the same "
        "LogisticRegression config, on the *same* embeddings, splits and initial sets (`bench/.cache/<dataset>.splits.npz`).",
        "- AUC: trapezoid area under test accuracy vs labels used, labels rescaled to [0, 1] (so it reads as mean accuracy over the run). "
        "Δ AUC: paired per seed against our `random`. Labels to 95%/98%: first round whose accuracy reaches that share of the "
        "full-pool accuracy (the same head trained on the whole pool, same seed and split); \"not reached\" when no round does.",
        "",
        "| dataset | docs | classes | pool / test | encoder max_length | initial | batch | rounds | labels at the end | embed time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c, d = r["config"], r["data"]
        counts = {cl: d.labels.count(cl) for cl in d.classes}
        lines.append(
            f"| {corpora.NAMES[r['name']]} | {len(d.texts)} | {', '.join(f'{k} {v}' for k, v in counts.items())} | "
            f"{r['n_pool']} / {r['n_test']} | {c.max_length} | {c.initial} | {c.batch_size} | {c.rounds} | "
            f"{c.initial + c.batch_size * c.rounds} ({(c.initial + c.batch_size * c.rounds) / r['n_pool']:.1%} of pool) | "
            f"{r['embed_seconds']:.0f} s |"
        )
    lines += [
        "",
        "Subsampling: BBC uses all 2,225 docs; Rotten Tomatoes (fresh vs rotten, 'plot' dropped) and SpamAssassin are "
        "class-stratified random subsamples (seed 0) to keep CPU embedding time affordable on 2 shared cores. "
        "SpamAssassin text = Subject line + body (transport headers dropped: they would fill the 128-token budget).",
        "",
        "## Results",
        "",
    ]
    for r in results:
        lines.append(summary_markdown(r["summary"], corpora.NAMES[r["name"]]).replace("## ", "### ", 1))
        lines.append(f"![{r['name']} learning curves]({r['png']})")
        lines.append("")
        lines.append(
            f"Round data: [results/{r['name']}_rounds.csv](results/{r['name']}_rounds.csv). "
            + (f"Our strategies took {r['ours_seconds']:.0f} s, small-text {r['smalltext_seconds']:.0f} s."
             if r["ours_seconds"] is not None else "")
            + (f" **small-text: {r['smalltext_error']}**" if r["smalltext_error"] else "")
        )
        if r["notes"]:
            lines += ["", "Notes:"] + [f"- {n}" for n in r["notes"][:10]]
        lines.append("")
    lines += ["## Targets", ""] + targets(results) + [""]
    lines += realistic_report.render(realistic_names, RESULTS_DIR)
    path = BENCH / "RESULTS.md"
    extra = BENCH / "RESULTS.extra.md"
    if extra.exists():
        lines += [extra.read_text()]
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bbc,rotten,spam,rotten3",
                        help="the standard protocol runs those with a loop in LOOP; the realistic one runs all")
    parser.add_argument("--protocols", default="standard,realistic",
                        help="standard (stratified start, 210-220 labels, small-text alongside), realistic (90 labels)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--strategies", default=",".join(OUR_STRATEGIES))
    parser.add_argument("--realistic-runs", default=",".join((realistic.PLAIN, *realistic.LEVERS)),
                        help="the realistic protocol's runs: plain (no lever) and lever names (default: all)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                        help="torch threads (default: 2); fewer leaves cores to other work, as two busy processes "
                             "that each spin 2 threads on 2 cores slow each other several times over")
    parser.add_argument("--resume", action="store_true",
                        help="realistic protocol: keep the seeds a run's CSV already holds (refused if they were run on "
                             "other embeddings) and run only the missing ones")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render RESULTS.md and PNGs from bench/results/*.csv without rerunning")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    if "random" not in strategies:
        strategies += ("random",)
    seeds = tuple(range(args.seeds))
    started = time.perf_counter()
    encoder: dict = {}
    protocols = {p.strip() for p in args.protocols.split(",") if p.strip()}
    results = []
    try:
        for name in names:
            if name in LOOP:  # a protocol not run keeps its tables, rendered from its CSVs
                if "standard" in protocols and not args.report_only:
                    results.append(run_dataset(name, seeds, strategies, encoder))
                else:
                    results.append(render_dataset(name, strategies, encoder))
                print(summary_markdown(results[-1]["summary"], name), file=sys.stderr)
            if "realistic" in protocols and not args.report_only:
                realistic.run(name, seeds, strategies, encoder, RESULTS_DIR, tuple(args.realistic_runs.split(",")),
                              resume=args.resume)
    except corpora.DatasetUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = write_results(results, names, seeds, None if args.report_only else time.perf_counter() - started,
                         [a for a in argv if a != "--report-only"])
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
