"""Reduced-scale probe: does a SetFit contrastive update of the encoder beat the frozen head at 20 and 90 labels?

    HF_HUB_OFFLINE=1 nice -n 15 .venv/bin/python bench/setfit_probe.py [--datasets bbc,rotten,spam,rotten3]
        [--seeds 0,1] [--budget-minutes 45]

Two interpreters, as bench/label_efficiency.py does for small-text:

1. ``prepare`` (the backend's .venv): per dataset and seed, the test split of ``make_split(y, 0.2, seed)`` (capped
   at 400 items by a fixed seeded subsample), the labeled sets = the first 20 / first 90 of
   ``uniform_initial_indices(len(pool), 90, seed)`` over the pool, and the frozen head (``backend.models.logistic_head.fit_head``
   on the cached embeddings of bench/embed_cache.py) scored on that capped test split. A second, cheap control
   ("setfit head, untuned body") fits SetFit's own default head (sklearn ``LogisticRegression()``, C=1) on the
   L2-normalised cached embeddings: the body SetFit starts from, without the contrastive update.
   Everything goes to bench/.cache/setfit_probe/<name>.npz.
2. ``worker`` (bench/.cache/setfit-venv, setfit 1.2.0): SetFit on the same labeled texts, scored on the same test
   texts. One JSON line per fit in bench/.cache/setfit_probe/results.jsonl; cells already there are skipped, so
   a rerun resumes. Fits run seed 0 for every dataset first, then seed 1; none starts after --budget-minutes.
3. ``report``: the markdown tables, printed and written to bench/.cache/setfit_probe/report.md.

The setfit venv (never the backend's .venv):

    python3 -m venv bench/.cache/setfit-venv
    bench/.cache/setfit-venv/bin/pip install "torch==2.13.0+cpu" "setfit==1.2.0"
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / ".cache" / "setfit_probe"
RESULTS = OUT / "results.jsonl"
SETFIT_PYTHON = BENCH / ".cache" / "setfit-venv" / "bin" / "python"
DATASETS = ("bbc", "rotten", "spam", "rotten3")
SIZES = (20, 90)
TEST_CAP = 400
TEST_FRACTION = 0.2
#: SetFit arguments (setfit.TrainingArguments); max_length comes from the embedding cache per dataset.
SETFIT_ARGS = {"batch_size": 16, "num_epochs": 1, "num_iterations": 20}


# --------------------------------------------------------------------------------------------- prepare (.venv)


def prepare(names: list[str], seeds: list[int]) -> None:
    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(REPO))
    import embed_cache
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    from backend.models.logistic_head import fit_head, head_proba
    from backend.simulation.protocol import make_split, uniform_initial_indices

    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        cache = embed_cache.load_cache(name)
        classes, y = np.unique(cache["labels"].astype(str), return_inverse=True)
        X = cache["embeddings"].astype(np.float32)
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        arrays = {"texts": cache["texts"], "y": y, "classes": classes, "max_length": int(cache["max_length"]),
                  "seeds": np.array(seeds)}
        frozen = []
        for seed in seeds:
            pool, test = make_split(y, TEST_FRACTION, seed)
            if len(test) > TEST_CAP:
                test = np.sort(np.random.default_rng([seed, TEST_CAP]).choice(test, size=TEST_CAP, replace=False))
            order = uniform_initial_indices(len(pool), max(SIZES), seed)
            arrays[f"test_{seed}"] = test
            for size in SIZES:
                labeled = pool[order[:size]]
                arrays[f"labeled_{seed}_{size}"] = labeled
                present = np.unique(y[labeled])
                row = {"dataset": name, "seed": seed, "size": size, "n_test": len(test),
                       "labeled_classes": int(len(present)), "n_classes": len(classes)}
                if len(present) < 2:
                    row["skipped"] = "single class in the labeled set"
                else:
                    started = time.perf_counter()
                    head = fit_head(X[labeled], y[labeled], seed)
                    pred = head_proba(head, X[test], len(classes)).argmax(1)
                    row["frozen_seconds"] = time.perf_counter() - started
                    row["frozen_acc"] = accuracy_score(y[test], pred)
                    row["frozen_f1"] = f1_score(y[test], pred, average="macro", labels=np.arange(len(classes)),
                                                zero_division=0)
                    control = LogisticRegression().fit(Xn[labeled], y[labeled])  # SetFit's default head
                    pred = control.predict(Xn[test])
                    row["sfhead_acc"] = accuracy_score(y[test], pred)
                    row["sfhead_f1"] = f1_score(y[test], pred, average="macro", labels=np.arange(len(classes)),
                                                zero_division=0)
                frozen.append(row)
                print(f"[prepare] {name} seed {seed} n={size}: "
                      + (row.get("skipped") or f"frozen acc {row['frozen_acc']:.3f} f1 {row['frozen_f1']:.3f}"),
                      flush=True)
        np.savez(OUT / f"{name}.npz", **arrays)
        (OUT / f"{name}.frozen.json").write_text(json.dumps(frozen, indent=1))


# --------------------------------------------------------------------------------------------- worker (setfit venv)


def worker(names: list[str], seeds: list[int], model_path: str, deadline: float, cells: str = "",
           threads: int = 2) -> None:
    # The script's folder (bench/) must not shadow installed packages with its own plainly named modules.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
    import numpy as np
    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from sklearn.metrics import accuracy_score, f1_score

    torch.set_num_threads(threads)
    done = set()
    if RESULTS.exists():
        for line in RESULTS.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["dataset"], r["seed"], r["size"]))
    data = {name: np.load(OUT / f"{name}.npz", allow_pickle=True) for name in names}
    if cells:  # an explicit order, e.g. "rotten:0:20,rotten:0:90"
        order = [(c.split(":")[0], int(c.split(":")[1]), int(c.split(":")[2])) for c in cells.split(",") if c]
    else:  # seed 0 everywhere first: if the budget runs out, seed 1 is what is missing
        order = [(name, seed, size) for seed in seeds for name in names for size in SIZES]
    for name, seed, size in order:
        d = data[name]
        texts, y, n_classes, max_length = d["texts"], d["y"], len(d["classes"]), int(d["max_length"])
        test = d[f"test_{seed}"]
        key = (name, seed, size)
        if key in done:
            continue
        labeled = d[f"labeled_{seed}_{size}"]
        row = {"dataset": name, "seed": seed, "size": size}
        if len(np.unique(y[labeled])) < 2:
            row["skipped"] = "single class in the labeled set"
        elif time.time() > deadline:
            print(f"[setfit] {name} seed {seed} n={size}: not started, time budget spent", flush=True)
            continue
        else:
            print(f"[setfit] {name} seed {seed} n={size}: fitting ...", flush=True)
            model = SetFitModel.from_pretrained(model_path)
            args = TrainingArguments(**SETFIT_ARGS, max_length=max_length, seed=seed, report_to="none",
                                     save_strategy="no", show_progress_bar=False)
            train = Dataset.from_dict({"text": [str(t) for t in texts[labeled]],
                                       "label": [int(v) for v in y[labeled]]})
            trainer = Trainer(model=model, args=args, train_dataset=train)
            started = time.perf_counter()
            trainer.train()
            row["fit_seconds"] = time.perf_counter() - started
            started = time.perf_counter()
            pred = np.asarray(model.predict([str(t) for t in texts[test]], batch_size=64,
                                            as_numpy=True)).astype(int)
            row["predict_seconds"] = time.perf_counter() - started
            row["setfit_acc"] = accuracy_score(y[test], pred)
            row["setfit_f1"] = f1_score(y[test], pred, average="macro", labels=np.arange(n_classes),
                                        zero_division=0)
            row["pairs"] = len(labeled) * 2 * SETFIT_ARGS["num_iterations"]
        with RESULTS.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"[setfit] {name} seed {seed} n={size}: " + (row.get("skipped") or
              f"acc {row['setfit_acc']:.3f} f1 {row['setfit_f1']:.3f} fit {row['fit_seconds']:.0f}s "
              f"predict {row['predict_seconds']:.0f}s"), flush=True)


# --------------------------------------------------------------------------------------------- report


def report(names: list[str]) -> str:
    setfit = {}
    if RESULTS.exists():
        for line in RESULTS.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                setfit[(r["dataset"], r["seed"], r["size"])] = r
    lines = []
    for name in names:
        frozen = json.loads((OUT / f"{name}.frozen.json").read_text())
        n_test = frozen[0]["n_test"]
        lines += [f"#### {name} (test split: {n_test} items)", "",
                  "| labels | frozen head acc | SetFit acc | diff pp (mean) | diff pp per seed | frozen head F1 | "
                  "SetFit F1 | SetFit head on untuned body acc | SetFit fit s (per seed) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for size in SIZES:
            rows = [r for r in frozen if r["size"] == size]
            pairs, skipped = [], []
            for r in rows:
                s = setfit.get((name, r["seed"], size))
                if r.get("skipped") or (s and s.get("skipped")):
                    skipped.append(f"seed {r['seed']}: single class")
                elif s is None:
                    skipped.append(f"seed {r['seed']}: not run")
                else:
                    pairs.append((r, s))
            if not pairs:
                lines.append(f"| {size} | – | – | – | {'; '.join(skipped)} | – | – | – | – |")
                continue

            def mean(values):
                return sum(values) / len(values)

            diffs = [100 * (s["setfit_acc"] - r["frozen_acc"]) for r, s in pairs]
            per_seed = ", ".join(f"s{r['seed']}: {d:+.1f}" for (r, _), d in zip(pairs, diffs))
            if skipped:
                per_seed += " (" + "; ".join(skipped) + ")"
            lines.append(
                f"| {size} | {mean([r['frozen_acc'] for r, _ in pairs]):.3f} | {mean([s['setfit_acc'] for _, s in pairs]):.3f} "
                f"| {mean(diffs):+.1f} | {per_seed} | {mean([r['frozen_f1'] for r, _ in pairs]):.3f} "
                f"| {mean([s['setfit_f1'] for _, s in pairs]):.3f} | {mean([r['sfhead_acc'] for r, _ in pairs]):.3f} "
                f"| {', '.join(str(round(s['fit_seconds'])) for _, s in pairs)} |"
            )
        lines.append("")
    text = "\n".join(lines)
    (OUT / "report.md").write_text(text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--budget-minutes", type=float, default=45.0, help="no SetFit fit starts after this")
    parser.add_argument("--stage", choices=("all", "prepare", "worker", "report"), default="all")
    parser.add_argument("--model-path", default="", help="(worker) the encoder folder; default: the bundled one")
    parser.add_argument("--deadline", type=float, default=0.0, help="(worker) epoch seconds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in the SetFit worker (1 is far faster "
                        "than 2 when another process already holds one of 2 cores: no OpenMP threads waiting on each other)")
    parser.add_argument("--cells", default="", help="SetFit fits in this order, name:seed:size comma-separated "
                        "(default: every dataset and size for seed 0, then seed 1); cells not named are not fitted")
    args = parser.parse_args()
    names = [n for n in args.datasets.split(",") if n]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.stage == "worker":
        worker(names, seeds, args.model_path, args.deadline or time.time() + 60 * args.budget_minutes, args.cells,
               args.threads)
        return 0
    if args.stage in ("all", "prepare"):
        prepare(names, seeds)
    if args.stage == "all":
        sys.path.insert(0, str(REPO))
        from backend.core.settings import DEFAULT_MODEL
        from backend.models.encoder import resolve_model_path

        model_path = resolve_model_path(DEFAULT_MODEL)
        if not SETFIT_PYTHON.exists():
            print(f"setfit venv missing ({SETFIT_PYTHON}); see this script's docstring", file=sys.stderr)
            return 1
        started = time.time()
        proc = subprocess.run([str(SETFIT_PYTHON), str(Path(__file__).resolve()), "--stage", "worker",
                               "--datasets", ",".join(names), "--seeds", ",".join(map(str, seeds)),
                               "--model-path", model_path, "--deadline", str(started + 60 * args.budget_minutes),
                               "--cells", args.cells, "--threads", str(args.threads)],
                              cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        print(f"[setfit] worker exit {proc.returncode}, {time.time() - started:.0f}s", flush=True)
    if args.stage in ("all", "report"):
        print(report(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
