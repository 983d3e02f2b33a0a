"""small-text 1.4.1 baseline on exactly the inputs our simulation used (run inside bench/.cache/smalltext-venv).

Reads a splits ``.npz`` written by ``bench/smalltext_compare.py`` (embeddings, labels, and per seed the pool/test
indices and the initial labeled positions), runs small-text's ``PoolBasedActiveLearner`` with
``SklearnClassifierFactory(LogisticRegression(max_iter=2000, C=10.0, random_state=seed))`` (the same
head config as our frozen-encoder mode), and writes one row per round as JSON lines, in the same
columns as ``rounds.csv``. A seed whose initial labels hold a single class is skipped (small-text cannot
train on it) and says so.

    bench/.cache/smalltext-venv/bin/python bench/smalltext_run.py SPLITS.npz OUT.jsonl
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from small_text import (
    BreakingTies,
    PoolBasedActiveLearner,
    RandomSampling,
    SklearnClassifierFactory,
)
from small_text.data import SklearnDataset

STRATEGIES = {"small-text BreakingTies": BreakingTies, "small-text RandomSampling": RandomSampling}


def metrics(y_true, y_pred):
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    # The same columns as the backend's classification_metrics, which the rounds CSV holds.
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "precision_macro": float(precision),
            "recall_macro": float(recall), "f1_macro": float(f1),
            "f1_micro": float(f1_score(y_true, y_pred, average="micro", zero_division=0))}


def run(path: str, out_path: str) -> None:
    data = np.load(path)
    X, y = data["embeddings"].astype(np.float64), data["y"].astype(np.int64)
    n_classes = int(data["n_classes"])
    batch, rounds = int(data["batch_size"]), int(data["rounds"])
    rows = []
    for seed in data["seeds"].tolist():
        pool, test, initial = data[f"pool_{seed}"], data[f"test_{seed}"], data[f"initial_{seed}"]
        if len(set(y[pool][initial].tolist())) < 2:
            # small-text cannot train on one class; our simulation ranks with cold_start until it can.
            print(f"small-text seed {seed}: skipped, its initial labels hold a single class", flush=True)
            continue
        train = SklearnDataset(X[pool], y[pool], target_labels=np.arange(n_classes))
        test_set = SklearnDataset(X[test], y[test], target_labels=np.arange(n_classes))
        for name, strategy_cls in STRATEGIES.items():
            np.random.seed(seed)  # small-text's RandomSampling draws from numpy's global RNG
            factory = SklearnClassifierFactory(LogisticRegression(max_iter=2000, C=10.0, random_state=seed), n_classes)
            learner = PoolBasedActiveLearner(factory, strategy_cls(), train)
            started = time.perf_counter()
            learner.initialize_data(np.asarray(initial, dtype=int), y[pool][initial])
            train_seconds = time.perf_counter() - started
            for round_index in range(rounds + 1):
                row = {"strategy": name, "seed": seed, "round": round_index, "labels_used": len(learner.indices_labeled),
                       **metrics(y[test], learner.classifier.predict(test_set)), "train_seconds": train_seconds,
                       "query_seconds": 0.0}
                if round_index < rounds:
                    started = time.perf_counter()
                    queried = learner.query(num_samples=batch)
                    row["query_seconds"] = time.perf_counter() - started
                    started = time.perf_counter()
                    learner.update(y[pool][queried])
                    train_seconds = time.perf_counter() - started
                rows.append(row)
            print(f"small-text {name} seed {seed}: final accuracy {rows[-1]['accuracy']:.3f}", flush=True)
    with open(out_path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
