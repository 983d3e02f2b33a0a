"""Offline active-learning simulation: replay labeling on an already labeled dataset.

    python -m backend.simulate data.csv --strategies margin,random --seeds 0,1,2 --out runs/demo

For each (strategy, seed) the labels are hidden and revealed batch by batch, exactly as the worker would
ask for them: every round trains with ``backend.classifiers.build_classifier`` and ranks the pool with
``backend.scoring.collect_outputs`` plus the registered strategy (the worker's code; no second
implementation). Per round it records held-out test metrics, so strategies can be compared by how many
labels they need.

Inputs: a CSV / TSV / JSONL / JSON table with a text and a label column, or a Label Studio JSON export
(tasks with ``data`` and ``annotations[].result``).

Outputs in ``--out``: ``rounds.csv``, ``summary.csv``, ``summary.md`` and ``learning_curve.png``.

Bad input ends with a one-line ``error: ...`` on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

EXIT_USAGE = 2

ROUND_COLUMNS = (
    "strategy", "seed", "round", "labels_used", "accuracy", "precision_macro", "recall_macro", "f1_macro",
    "train_seconds", "query_seconds",
)
REACH_LEVELS = (0.95, 0.98)
INITIAL_STRATEGIES = ("random", "cold_start")


class InputError(ValueError):
    """The input or the options cannot be simulated; the message says why, in one line."""


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    classes: list[str]
    source: str = ""
    skipped: int = 0  # tasks without a usable annotation (Label Studio exports)

    @property
    def y(self) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.classes)}
        return np.array([index[label] for label in self.labels], dtype=np.int64)


def read_dataset(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_config: str | None = None,
    text_field: str | None = None,
) -> Dataset:
    """Read a table (csv/tsv/jsonl/json records) or a Label Studio JSON export; validate it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir():
        raise InputError(f"input {path} is a folder; pass a CSV, TSV, JSONL or Label Studio JSON export file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        records, columns = _read_delimited(path, "\t" if suffix == ".tsv" else ",")
        return _table_dataset(records, columns, text_column, label_column, str(path))
    if suffix in (".jsonl", ".ndjson"):
        records = _read_jsonl(path)
        return _table_dataset(records, _columns_of(records), text_column, label_column, str(path))
    if suffix == ".json":
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(payload, dict) and "data" in payload:
            payload = [payload]  # a single-task export
        if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
            raise InputError(f"{path} must hold a JSON list of objects (a Label Studio export or table records)")
        if payload and all("data" in item and isinstance(item["data"], dict) for item in payload):
            return _label_studio_dataset(payload, label_config, text_field, str(path))
        return _table_dataset(payload, _columns_of(payload), text_column, label_column, str(path))
    raise InputError(f"cannot read {path.name}: use a .csv, .tsv, .jsonl or .json (Label Studio export) file")


def _read_delimited(path: Path, delimiter: str) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            records = list(reader)
            return records, list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot parse {path} as {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} line {number} is not valid JSON: {exc}") from None
            if not isinstance(record, dict):
                raise InputError(f"{path} line {number} is not a JSON object")
            records.append(record)
    return records


def _columns_of(records: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for record in records for key in record))


def _rows_list(rows: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")


def _table_dataset(records, columns, text_column, label_column, source) -> Dataset:
    if not records:
        raise InputError(f"{source} has no rows")
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in columns:
            option = "--text-column" if role == "text" else "--label-column"
            raise InputError(
                f"{role} column {column!r} not found in {source}; available columns: {', '.join(map(str, columns))} "
                f"(choose one with {option})"
            )
    texts = [_cell(record.get(text_column)) for record in records]
    labels = [_cell(record.get(label_column)) for record in records]
    # Row numbers as a user sees them: 1 = first data row.
    empty_text = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if empty_text:
        raise InputError(
            f"{len(empty_text)} of {len(texts)} rows have an empty text in column {text_column!r} "
            f"(rows {_rows_list(empty_text)}); fill them in or remove them"
        )
    empty_label = [i + 1 for i, label in enumerate(labels) if not label.strip()]
    if empty_label:
        raise InputError(
            f"{len(empty_label)} of {len(labels)} rows have an empty label in column {label_column!r} "
            f"(rows {_rows_list(empty_label)}); the simulation needs every row labeled"
        )
    labels = [label.strip() for label in labels]
    return _checked(Dataset(texts, labels, sorted(set(labels)), source))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value if isinstance(value, str) else str(value)


def _label_studio_dataset(tasks, label_config_path, text_field, source) -> Dataset:
    spec = None
    if label_config_path:
        from backend.labels import UnsupportedLabelConfig, parse_label_config

        config_file = Path(label_config_path)
        if not config_file.is_file():
            raise InputError(f"label config file not found: {config_file}")
        try:
            spec = parse_label_config(config_file.read_text(encoding="utf-8"))
        except UnsupportedLabelConfig as exc:
            raise InputError(f"label config {config_file}: {exc}") from None
    field_name = text_field or (spec.value_field if spec else None) or _infer_text_field(tasks)
    from_name = spec.from_name if spec else _infer_from_name(tasks)

    texts, labels, unlabeled, missing_field = [], [], 0, []
    for number, task in enumerate(tasks, 1):
        label = _task_label(task, from_name)
        if label is None:
            unlabeled += 1
            continue
        if field_name not in task["data"]:
            missing_field.append(number)
            continue
        texts.append(_cell(task["data"][field_name]))
        labels.append(label)
    if missing_field:
        raise InputError(
            f"{len(missing_field)} labeled tasks have no data field {field_name!r} (tasks {_rows_list(missing_field)}); "
            "pass --text-field or --label-config"
        )
    if not texts:
        raise InputError(f"{source} has {len(tasks)} tasks but none with a choices annotation to learn from")
    empty = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise InputError(f"{len(empty)} of {len(texts)} labeled tasks have an empty text in data field {field_name!r}")
    if spec:
        unknown = sorted(set(labels) - set(spec.classes))
        if unknown:
            raise InputError(
                f"annotations use choices not in the label config: {', '.join(unknown)} "
                f"(config choices: {', '.join(spec.classes)})"
            )
        classes = [c for c in spec.classes if c in set(labels)]
    else:
        classes = sorted(set(labels))
    return _checked(Dataset(texts, labels, classes, source, skipped=unlabeled))


def _infer_text_field(tasks) -> str:
    fields = list(dict.fromkeys(k for task in tasks for k, v in task["data"].items() if isinstance(v, str)))
    if len(fields) == 1:
        return fields[0]
    if not fields:
        raise InputError("the tasks' data holds no text field; pass --text-field or --label-config")
    raise InputError(
        f"cannot tell which task data field holds the text (found: {', '.join(fields)}); "
        "pass --text-field or --label-config"
    )


def _infer_from_name(tasks) -> str | None:
    names = {
        region.get("from_name")
        for task in tasks
        for annotation in task.get("annotations") or []
        for region in annotation.get("result") or []
        if region.get("type", "choices") == "choices" and (region.get("value") or {}).get("choices")
    }
    if len(names) > 1:
        raise InputError(
            f"the annotations hold several choices controls ({', '.join(sorted(map(str, names)))}); "
            "pass --label-config to pick the one to learn"
        )
    return next(iter(names), None)


def _task_label(task, from_name: str | None) -> str | None:
    """The first non-cancelled annotation's choice for ``from_name``."""
    for annotation in task.get("annotations") or []:
        if annotation.get("was_cancelled"):
            continue
        for region in annotation.get("result") or []:
            if region.get("from_name") == from_name and region.get("type", "choices") == "choices":
                choices = (region.get("value") or {}).get("choices") or []
                if choices:
                    return str(choices[0])
    return None


def _checked(data: Dataset) -> Dataset:
    if len(data.classes) < 2:
        found = data.classes[0] if data.classes else "none"
        raise InputError(f"need at least 2 classes to classify; {data.source} has 1 ({found!r})" if data.classes else
                         f"need at least 2 classes to classify; {data.source} has none")
    counts = {c: 0 for c in data.classes}
    for label in data.labels:
        counts[label] += 1
    rare = sorted(c for c, n in counts.items() if n < 2)
    if rare:
        raise InputError(
            f"classes with fewer than 2 examples cannot be split into pool and test: {', '.join(rare)}; "
            "add examples or remove those rows"
        )
    return data


# ------------------------------------------------------------------------------------------ simulation


@dataclass(frozen=True)
class SimulationConfig:
    strategies: tuple[str, ...] = ("margin", "random")
    seeds: tuple[int, ...] = (0, 1, 2)
    initial: int = 10
    batch_size: int = 10
    rounds: int = 10
    test_fraction: float = 0.2
    mode: str = "head"
    model: str = ""  # "" = the bundled default
    max_length: int = 128
    epochs: int = 3
    learning_rate: float = 5e-5
    train_batch_size: int = 16
    committee_size: int = 5
    pool_limit: int | None = None
    initial_strategy: str = "random"
    device: str = "auto"

    def project_settings(self, strategy: str, seed: int):
        from backend.settings import DEFAULT_MODEL, ProjectSettings

        return ProjectSettings(
            strategy=strategy,
            model_name=self.model or DEFAULT_MODEL,
            model_mode=self.mode,
            epochs=self.epochs,
            batch_size=self.train_batch_size,
            learning_rate=self.learning_rate,
            max_length=self.max_length,
            query_batch_size=self.batch_size,
            committee_size=self.committee_size,
            seed=seed,
            device=self.device,
        )


def subsample(y: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a class-stratified random subsample of at most ``limit`` rows."""
    if limit is None or limit >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(y)), train_size=limit, stratify=y, random_state=seed)
    return np.sort(keep)


def make_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (pool, test) indices, fixed per seed, both sorted."""
    from sklearn.model_selection import train_test_split

    pool, test = train_test_split(np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=seed)
    return np.sort(pool), np.sort(test)


def initial_indices(y_pool: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Positions in the pool of a stratified random initial set: every class at least once, the rest
    in proportion to class frequency (seeded)."""
    rng = np.random.default_rng([seed, 7919])
    classes = np.unique(y_pool)
    if size < len(classes):
        raise InputError(f"--initial {size} is smaller than the number of classes ({len(classes)})")
    chosen = [int(rng.choice(np.flatnonzero(y_pool == c))) for c in classes]
    rest = np.setdiff1d(np.arange(len(y_pool)), chosen)
    if size > len(chosen):
        from sklearn.model_selection import train_test_split

        extra = size - len(chosen)
        counts = np.bincount(y_pool[rest], minlength=int(y_pool.max()) + 1)
        can_stratify = extra >= len(classes) and counts[counts > 0].min() >= 2 and extra < len(rest)
        if extra >= len(rest):
            picked = rest
        elif can_stratify:
            picked, _ = train_test_split(
                rest, train_size=extra, stratify=y_pool[rest], random_state=int(rng.integers(2**31))
            )
        else:
            picked = rng.choice(rest, size=extra, replace=False)
        chosen.extend(int(i) for i in picked)
    return np.array(chosen, dtype=np.int64)


def select_batch(informativeness: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` most informative positions, ties in pool order (a stable sort)."""
    return np.argsort(-np.asarray(informativeness, dtype=np.float64), kind="stable")[:size]


def round_seed(seed: int, round_index: int) -> int:
    """A distinct, reproducible random_state per (seed, round), so random draws differ between rounds."""
    return int(np.random.SeedSequence([seed, round_index]).generate_state(1)[0])


ClassifierFactory = Callable[[Any], Any]  # ProjectSettings -> TextClassifier


@dataclass
class SimulationResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    reference: dict[int, float] = field(default_factory=dict)  # seed -> full-pool accuracy
    notes: list[str] = field(default_factory=list)


class Simulator:
    """Runs the rounds; ``make_classifier(settings)`` builds the worker's classifier.

    In head mode one frozen-encoder classifier is shared by every run (its embedding cache makes each
    refit cost only the logistic head); in finetune mode every fit starts from a fresh model.
    """

    def __init__(self, data: Dataset, config: SimulationConfig, make_classifier: ClassifierFactory | None = None):
        from backend.classifiers import build_classifier

        self.data = data
        self.config = config
        self.y = data.y
        self._build = make_classifier or (lambda settings: build_classifier(data.classes, settings))
        self._shared = None
        self.notes: list[str] = []

    # One classifier per round in finetune mode, one for everything in head mode.
    def classifier(self, strategy: str, seed: int):
        settings = self.config.project_settings(strategy, seed)
        if self.config.mode != "head":
            return self._build(settings)
        if self._shared is None:
            self._shared = self._build(settings)
        self._shared.settings = settings  # seed for the head and the bootstrap committee
        return self._shared

    def warm_up(self, progress=None) -> float:
        """Head mode: encode every text once up front, so train/query times measure the AL loop only."""
        if self.config.mode != "head":
            return 0.0
        started = time.perf_counter()
        self.classifier(self.config.strategies[0], self.config.seeds[0]).embed(self.data.texts, progress)
        return time.perf_counter() - started

    def reference_accuracy(self, seed: int) -> float:
        """Accuracy of a model trained on the whole pool: the ceiling the learning curves approach."""
        pool, test = make_split(self.y, self.config.test_fraction, seed)
        classifier = self.classifier("random", seed).fit([self.data.texts[i] for i in pool], self.y[pool])
        predicted = classifier.predict_proba([self.data.texts[i] for i in test]).argmax(1)
        from backend.evaluation import classification_metrics

        return classification_metrics(self.y[test], predicted)["accuracy"]

    def run(self, strategy_name: str, seed: int, tick: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
        from backend.evaluation import classification_metrics
        from backend.scoring import StrategyUnavailable, collect_outputs
        from strategies import make_strategy

        cfg, texts, y = self.config, self.data.texts, self.y
        pool, test = make_split(y, cfg.test_fraction, seed)
        test_texts = [texts[i] for i in test]
        labeled = pool[self._initial(pool, seed)]
        unlabeled = np.setdiff1d(pool, labeled)  # sorted: the pool keeps dataset order
        rows = []
        for round_index in range(cfg.rounds + 1):
            started = time.perf_counter()
            classifier = self.classifier(strategy_name, seed)
            labeled_texts = [texts[i] for i in labeled]
            classifier.fit(labeled_texts, y[labeled])
            train_seconds = time.perf_counter() - started
            metrics = classification_metrics(y[test], classifier.predict_proba(test_texts).argmax(1))
            query_seconds = 0.0
            if round_index < cfg.rounds:
                started = time.perf_counter()
                strategy = make_strategy(strategy_name, batch_size=cfg.batch_size, random_state=round_seed(seed, round_index))
                pool_texts = [texts[i] for i in unlabeled]
                try:
                    # As in the worker: the trained model's pool probabilities are always computed
                    # (they are the pre-annotations), and passed in for the strategy to reuse.
                    proba = classifier.predict_proba(pool_texts)
                    outputs = collect_outputs(
                        classifier, strategy, pool_texts, labeled_texts, y[labeled],
                        committee_size=cfg.committee_size, seed=seed, proba=proba,
                    )
                    if outputs.proba is None and outputs.embeddings is None:
                        # "random" requires nothing but the pool size; collect_outputs drops an unrequired proba.
                        outputs = replace(outputs, proba=proba)
                    informativeness = strategy.query(outputs)
                except StrategyUnavailable as exc:
                    # e.g. "difficulty" before every class has 2 labels: fall back to random for this round.
                    informativeness = np.random.default_rng(round_seed(seed, round_index)).random(len(unlabeled))
                    self.notes.append(f"{strategy_name} seed {seed} round {round_index}: {exc}; used random")
                picked = unlabeled[select_batch(informativeness, cfg.batch_size)]
                query_seconds = time.perf_counter() - started
            rows.append({
                "strategy": strategy_name, "seed": seed, "round": round_index, "labels_used": len(labeled),
                **metrics, "train_seconds": train_seconds, "query_seconds": query_seconds,
            })
            tick()
            if round_index < cfg.rounds:
                labeled = np.concatenate([labeled, picked])
                unlabeled = np.setdiff1d(unlabeled, picked)
        return rows

    def _initial(self, pool: np.ndarray, seed: int) -> np.ndarray:
        cfg = self.config
        if cfg.initial_strategy == "cold_start":
            from backend.scoring import collect_outputs
            from strategies import make_strategy

            strategy = make_strategy("cold_start", batch_size=cfg.initial, random_state=seed)
            classifier = self.classifier("cold_start", seed)
            pool_texts = [self.data.texts[i] for i in pool]
            outputs = collect_outputs(classifier, strategy, pool_texts, [], np.zeros(0, np.int64),
                                      committee_size=cfg.committee_size, seed=seed)
            chosen = select_batch(strategy.query(outputs), cfg.initial)
            if len(set(self.y[pool][chosen].tolist())) >= 2:
                return chosen
            self.notes.append(f"seed {seed}: the cold-start set held one class only; used a random initial set")
        return initial_indices(self.y[pool], cfg.initial, seed)


def simulate(
    data: Dataset,
    config: SimulationConfig,
    *,
    make_classifier: ClassifierFactory | None = None,
    progress: bool = True,
) -> SimulationResult:
    """Every strategy × seed, plus one full-pool reference fit per seed."""
    from tqdm.auto import tqdm

    simulator = Simulator(data, config, make_classifier)
    total = len(config.strategies) * len(config.seeds) * (config.rounds + 1) + len(config.seeds)
    result = SimulationResult()
    with tqdm(total=total, desc="simulate", unit="fit", disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
        if config.mode == "head":
            bar.set_postfix_str("encoding texts")
            simulator.warm_up()
        for seed in config.seeds:
            bar.set_postfix_str(f"seed {seed} full-pool reference")
            result.reference[seed] = simulator.reference_accuracy(seed)
            bar.update()
            for strategy in config.strategies:
                bar.set_postfix_str(f"seed {seed} {strategy}")
                result.rows.extend(simulator.run(strategy, seed, tick=bar.update))
    result.notes = simulator.notes
    return result


# ------------------------------------------------------------------------------------------- summaries


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


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def per_run_stats(rows: list[dict[str, Any]], reference: dict[int, float]) -> dict[tuple[str, int], dict[str, Any]]:
    """(strategy, seed) -> auc, final accuracy/f1, labels to reach each level of the full-pool accuracy."""
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault((row["strategy"], int(row["seed"])), []).append(row)
    stats = {}
    for (strategy, seed), run in runs.items():
        run = sorted(run, key=lambda r: int(r["round"]))
        labels = [int(r["labels_used"]) for r in run]
        accuracy = [float(r["accuracy"]) for r in run]
        entry = {
            "auc": learning_curve_auc(labels, accuracy),
            "final_accuracy": accuracy[-1],
            "final_f1_macro": float(run[-1]["f1_macro"]),
            "train_seconds": float(np.mean([float(r["train_seconds"]) for r in run])),
            "query_seconds": float(np.mean([float(r["query_seconds"]) for r in run[:-1]])) if len(run) > 1 else 0.0,
        }
        for level in REACH_LEVELS:
            entry[f"labels_to_{round(level * 100)}"] = (
                labels_to_reach(labels, accuracy, level * reference[seed]) if seed in reference else None
            )
        stats[(strategy, seed)] = entry
    return stats


def summarize(rows: list[dict[str, Any]], reference: dict[int, float], baseline: str = "random") -> list[dict[str, Any]]:
    stats = per_run_stats(rows, reference)
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    summary = []
    for strategy in strategies:
        seeds = sorted(seed for (s, seed) in stats if s == strategy)
        runs = [stats[(strategy, seed)] for seed in seeds]
        entry: dict[str, Any] = {"strategy": strategy, "n_seeds": len(seeds)}
        for key in ("auc", "final_accuracy", "final_f1_macro"):
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
        entry["full_pool_accuracy_mean"], entry["full_pool_accuracy_std"] = _mean_std([reference[s] for s in seeds if s in reference])
        entry["train_seconds_mean"] = float(np.mean([run["train_seconds"] for run in runs]))
        entry["query_seconds_mean"] = float(np.mean([run["query_seconds"] for run in runs]))
        summary.append(entry)
    return summary


def fmt_mean_std(mean: float, std: float, digits: int = 3, scale: float = 1.0) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def fmt_reach(entry: dict[str, Any], level: int) -> str:
    reached = entry[f"labels_to_{level}_reached"]
    k, n = (int(part) for part in reached.split("/"))
    if k == 0:
        return "not reached"
    text = f"{entry[f'labels_to_{level}_mean']:.0f} ± {entry[f'labels_to_{level}_std']:.0f}"
    return text if k == n else f"{text} (reached in {reached} seeds)"


def summary_markdown(summary: list[dict[str, Any]], title: str = "", extra_header: str = "") -> str:
    lines = [f"## {title}", ""] if title else []
    if extra_header:
        lines += [extra_header, ""]
    lines += [
        "| strategy | seeds | AUC | Δ AUC vs random (pp) | final accuracy | final macro-F1 | labels to 95% | labels to 98% | full-pool accuracy | train s/round | query s/round |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        lines.append(
            "| {strategy} | {n_seeds} | {auc} | {delta} | {acc} | {f1} | {r95} | {r98} | {full} | {train:.3f} | {query:.3f} |".format(
                strategy=e["strategy"], n_seeds=e["n_seeds"],
                auc=fmt_mean_std(e["auc_mean"], e["auc_std"]),
                delta=fmt_mean_std(e["delta_auc_vs_random_mean"], e["delta_auc_vs_random_std"], 1, 100.0),
                acc=fmt_mean_std(e["final_accuracy_mean"], e["final_accuracy_std"]),
                f1=fmt_mean_std(e["final_f1_macro_mean"], e["final_f1_macro_std"]),
                r95=fmt_reach(e, 95), r98=fmt_reach(e, 98),
                full=fmt_mean_std(e["full_pool_accuracy_mean"], e["full_pool_accuracy_std"]),
                train=e["train_seconds_mean"], query=e["query_seconds_mean"],
            )
        )
    return "\n".join(lines) + "\n"


def plot_learning_curves(rows: list[dict[str, Any]], path: Path, title: str = "", reference: dict[int, float] | None = None) -> None:
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
        acc = [[float(r["accuracy"]) for r in by_round[k]] for k in rounds]
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
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "learning curves (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(out: Path, result: SimulationResult, title: str = "", header: str = "") -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "rounds.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROUND_COLUMNS)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({k: (f"{row[k]:.6f}" if isinstance(row[k], float) else row[k]) for k in ROUND_COLUMNS})
    summary = summarize(result.rows, result.reference)
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summary[0]))
        writer.writeheader()
        for entry in summary:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in entry.items()})
    notes = "".join(f"- {note}\n" for note in result.notes)
    (out / "summary.md").write_text(
        summary_markdown(summary, title or "Simulation summary", header)
        + "\nAUC: trapezoid area under test accuracy vs labels used, labels rescaled to [0, 1]. "
        "Labels to 95%/98%: the first labels_used whose accuracy reaches that share of the full-pool accuracy "
        "(a model trained on the whole pool, same seed and test split).\n"
        + (f"\nNotes:\n{notes}" if notes else "")
    )
    try:
        plot_learning_curves(result.rows, out / "learning_curve.png", title, result.reference)
    except ImportError:
        print("warning: matplotlib is not installed; skipped learning_curve.png (pip install matplotlib)", file=sys.stderr)
    return summary


# ------------------------------------------------------------------------------------------------ CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse already exits 2, but prints usage)
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="al-simulate",
        description="Simulate active learning on a labeled dataset and compare query strategies.",
    )
    p.add_argument("input", help="CSV/TSV/JSONL with text and label columns, or a Label Studio JSON export")
    p.add_argument("--text-column", default="text", help="table column holding the text (default: text)")
    p.add_argument("--label-column", default="label", help="table column holding the label (default: label)")
    p.add_argument("--label-config", help="Label Studio label config XML file (for JSON exports)")
    p.add_argument("--text-field", help="task data field holding the text (Label Studio exports)")
    p.add_argument("--strategies", default="margin,random", help="comma-separated strategy names (default: margin,random)")
    p.add_argument("--seeds", help="comma-separated seeds (default: 0..n-seeds-1)")
    p.add_argument("--n-seeds", type=int, default=3, help="number of seeds when --seeds is not given (default: 3)")
    p.add_argument("--initial", type=int, default=10, help="initial labeled set size (default: 10)")
    p.add_argument("--initial-strategy", default="random", choices=INITIAL_STRATEGIES,
                   help="how round 0's labels are drawn: stratified random, or the cold_start strategy")
    p.add_argument("--batch-size", type=int, default=10, help="labels queried per round (default: 10)")
    p.add_argument("--rounds", type=int, default=10, help="query rounds after the initial one (default: 10)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out test share, stratified (default: 0.2)")
    p.add_argument("--mode", default="head", choices=("head", "finetune"), help="model mode (default: head)")
    p.add_argument("--model", default="", help="Hugging Face model path (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--max-length", type=int, default=128, help="max tokens per text (default: 128)")
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (finetune mode; default: 3)")
    p.add_argument("--learning-rate", type=float, default=5e-5, help="fine-tuning learning rate (default: 5e-5)")
    p.add_argument("--train-batch-size", type=int, default=16, help="training/inference batch size (default: 16)")
    p.add_argument("--committee-size", type=int, default=5, help="committee members for bald/qbc (default: 5)")
    p.add_argument("--pool-limit", type=int, help="use at most N rows in all (stratified subsample, before the test split)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--out", default="simulation", help="output folder (default: ./simulation)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"{option} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise InputError(f"{option} is empty")
    if len(set(values)) != len(values):
        raise InputError(f"{option} repeats a value: {text!r}")
    return values


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    from strategies import STRATEGY_NAMES

    strategies = tuple(dict.fromkeys(s.strip() for s in args.strategies.split(",") if s.strip()))
    if not strategies:
        raise InputError(f"--strategies is empty; valid names are: {', '.join(STRATEGY_NAMES)}")
    unknown = [s for s in strategies if s not in STRATEGY_NAMES]
    if unknown:
        raise InputError(f"unknown strategy {', '.join(map(repr, unknown))}; valid names are: {', '.join(STRATEGY_NAMES)}")
    if args.seeds:
        seeds = _int_list(args.seeds, "--seeds")
    else:
        if args.n_seeds < 1:
            raise InputError(f"--n-seeds must be at least 1, got {args.n_seeds}")
        seeds = tuple(range(args.n_seeds))
    for option, value, least in (
        ("--initial", args.initial, 2), ("--batch-size", args.batch_size, 1), ("--rounds", args.rounds, 0),
        ("--max-length", args.max_length, 1), ("--epochs", args.epochs, 1), ("--train-batch-size", args.train_batch_size, 1),
        ("--committee-size", args.committee_size, 1),
    ):
        if value < least:
            raise InputError(f"{option} must be at least {least}, got {value}")
    if not 0.0 < args.test_fraction < 1.0:
        raise InputError(f"--test-fraction must be between 0 and 1 (exclusive), got {args.test_fraction}")
    if args.pool_limit is not None and args.pool_limit < 4:
        raise InputError(f"--pool-limit must be at least 4, got {args.pool_limit}")
    if args.model and not Path(args.model).exists():
        raise InputError(f"--model {args.model!r} is not a local model folder (models load offline)")
    return SimulationConfig(
        strategies=strategies, seeds=seeds, initial=args.initial, batch_size=args.batch_size, rounds=args.rounds,
        test_fraction=args.test_fraction, mode=args.mode, model=args.model, max_length=args.max_length,
        epochs=args.epochs, learning_rate=args.learning_rate, train_batch_size=args.train_batch_size,
        committee_size=args.committee_size, pool_limit=args.pool_limit, initial_strategy=args.initial_strategy,
        device=args.device,
    )


def check_fits(data: Dataset, config: SimulationConfig) -> None:
    """Sizes that cannot work on this dataset: say which option to change."""
    n = len(data.texts)
    n_classes = len(data.classes)
    n_test = math.ceil(n * config.test_fraction)
    if n_test < n_classes:
        raise InputError(
            f"--test-fraction {config.test_fraction} leaves {n_test} test rows for {n_classes} classes "
            f"({n} rows in all); raise --test-fraction or add data"
        )
    n_pool = n - n_test
    if n_pool < n_classes:
        raise InputError(f"--test-fraction {config.test_fraction} leaves only {n_pool} pool rows for {n_classes} classes")
    if config.initial < n_classes:
        raise InputError(
            f"--initial {config.initial} is smaller than the number of classes ({n_classes}); "
            "the initial set needs one label per class"
        )
    needed = config.initial + config.batch_size * config.rounds
    if needed > n_pool:
        raise InputError(
            f"--initial {config.initial} + --batch-size {config.batch_size} × --rounds {config.rounds} = {needed} labels, "
            f"but the pool has only {n_pool} rows ({n} rows minus {n_test} test); lower --initial/--batch-size/--rounds "
            "or --test-fraction"
        )
    from backend.settings import SettingsError

    try:
        config.project_settings(config.strategies[0], config.seeds[0])
    except SettingsError as exc:
        raise InputError(str(exc)) from None


def prepare(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Dataset, SimulationConfig]:
    """Parse and validate everything that can be checked before loading a model."""
    args = build_parser().parse_args(argv)
    # The file first: it is the most common mistake and needs no heavy imports to report.
    data = read_dataset(
        args.input, text_column=args.text_column, label_column=args.label_column,
        label_config=args.label_config, text_field=args.text_field,
    )
    config = config_from_args(args)
    if config.pool_limit is not None and config.pool_limit < len(data.texts):
        keep = subsample(data.y, config.pool_limit, seed=0)
        labels = [data.labels[i] for i in keep]
        data = _checked(replace(
            data, texts=[data.texts[i] for i in keep], labels=labels, classes=[c for c in data.classes if c in set(labels)],
        ))
    check_fits(data, config)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    return args, data, config


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        args, data, config = prepare(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"{len(data.texts)} labeled texts, {len(data.classes)} classes ({', '.join(data.classes)})"
        + (f"; skipped {data.skipped} tasks without a choices annotation" if data.skipped else ""),
        file=sys.stderr,
    )
    try:
        result = simulate(data, config, progress=not args.quiet)
    except (OSError, ValueError) as exc:
        # Model folders that do not load, settings the classifier refuses: one line, not a traceback.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    summary = write_outputs(out, result, title=f"Simulation: {Path(args.input).name}", header=_header(data, config))
    for entry in summary:
        print(
            f"{entry['strategy']:>18}: AUC {fmt_mean_std(entry['auc_mean'], entry['auc_std'])}, "
            f"final accuracy {fmt_mean_std(entry['final_accuracy_mean'], entry['final_accuracy_std'])}",
            file=sys.stderr,
        )
    print(f"wrote {out / 'rounds.csv'}, {out / 'summary.csv'}, {out / 'summary.md'}, {out / 'learning_curve.png'}", file=sys.stderr)
    return 0


def _header(data: Dataset, config: SimulationConfig) -> str:
    return (
        f"{len(data.texts)} texts, {len(data.classes)} classes; mode {config.mode}, max_length {config.max_length}; "
        f"initial {config.initial} ({config.initial_strategy}), batch {config.batch_size}, rounds {config.rounds}, "
        f"test fraction {config.test_fraction}; seeds {', '.join(map(str, config.seeds))}."
    )


if __name__ == "__main__":
    sys.exit(main())
