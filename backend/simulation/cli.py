"""``al-simulate``: parse and check the options, read the data, run, write the outputs.

Classification data plays its rounds in ``runner``, NER data (CoNLL files, exports with a ``<Labels>`` config) in
``ner``; both write the same four files, NER with entity F1 where classification has accuracy.

Bad input ends with a one-line ``error: ...`` on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from backend.core.exceptions import InputError
from backend.core.settings import DEVICES, FINETUNE_METHODS, HEAD_REGULARIZATIONS
from backend.simulation.dataset import Dataset, checked
from backend.simulation.inputs import read_dataset
from backend.simulation.ner_dataset import SpanDataset
from backend.simulation.protocol import (
    INITIAL_STRATEGIES,
    MODES,
    SimulationConfig,
    subsample,
)
from backend.simulation.report import write_outputs
from backend.simulation.runner import ROUND_COLUMNS, simulate
from backend.simulation.summary import ACCURACY, fmt_mean_std

EXIT_USAGE = 2
#: The options' defaults: the simulation's, which are the worker's where both have one.
DEFAULTS = SimulationConfig()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse already exits 2, but prints usage)
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="al-simulate",
        description="Simulate active learning on a labeled dataset and compare query strategies.",
    )
    p.add_argument("input", help="CSV/TSV/JSONL with text and label columns, a two-column CoNLL file (NER), "
                   "or a Label Studio JSON export")
    p.add_argument("--format", default="auto", choices=("auto", "conll"),
                   help="auto: by the file's ending (.csv, .tsv, .jsonl, .json, .conll); conll: read any file as "
                        "two-column CoNLL, token<TAB or space>tag per line, BIO or IOB tags (default: auto)")
    p.add_argument("--text-column", default="text", help="table column holding the text (default: text)")
    p.add_argument("--label-column", default="label", help="table column holding the label (default: label)")
    p.add_argument("--label-config", help="Label Studio label config XML file (for JSON exports; a <Labels> "
                   "config reads the export as NER spans)")
    p.add_argument("--text-field", help="task data field holding the text (Label Studio exports)")
    p.add_argument("--label-separator", help="multi-label tables: the separator between a row's labels, e.g. '|' "
                   "(an empty cell: none apply); multi-label exports need a choice=\"multiple\" --label-config")
    p.add_argument("--strategies", help="comma-separated strategy names (default: the task type's default strategy "
                   "and random: margin,random; multi-label mean_binary_entropy,random; NER mnlp,random)")
    p.add_argument("--seeds", help="comma-separated seeds (default: 0..n-seeds-1)")
    p.add_argument("--n-seeds", type=int, default=len(DEFAULTS.seeds),
                   help=f"number of seeds when --seeds is not given (default: {len(DEFAULTS.seeds)})")
    p.add_argument("--initial", type=int, default=DEFAULTS.initial, help=f"initial labeled set size (default: {DEFAULTS.initial})")
    p.add_argument("--initial-strategy", default=DEFAULTS.initial_strategy, choices=INITIAL_STRATEGIES,
                   help="how round 0's labels are drawn: uniformly at random, as an LS project gets them (default); "
                        "by the cold_start ranking, as the backend serves a new project; or stratified, every class "
                        "at least once (flatters: no project starts that way; not for NER)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help=f"labels queried per round (default: {DEFAULTS.batch_size}, the worker's query_batch_size)")
    p.add_argument("--rounds", type=int, default=DEFAULTS.rounds, help=f"query rounds after the initial one (default: {DEFAULTS.rounds})")
    p.add_argument("--test-fraction", type=float, default=DEFAULTS.test_fraction,
                   help=f"held-out test share, stratified (default: {DEFAULTS.test_fraction})")
    p.add_argument("--mode", default=DEFAULTS.mode, choices=MODES,
                   help="head: a head over the frozen encoder (default); two_speed: that head every round plus the "
                        "full path every --finetune-every labels, adopted only when it wins on held-out labels, as the "
                        "worker's model_mode finetune does; finetune: the encoder fine-tuned every round (slow). "
                        "NER: head only, a token head over the frozen encoder")
    p.add_argument("--finetune-every", type=int, default=DEFAULTS.finetune_every,
                   help=f"two_speed mode: labels between full-path fine-tunes (default: {DEFAULTS.finetune_every}, as the worker)")
    p.add_argument("--finetune-method", default=DEFAULTS.finetune_method, choices=FINETUNE_METHODS,
                   help="two_speed mode: how the full path tunes the encoder: end to end with a classification head "
                        "(default), or SetFit's contrastive pairs (needs the setfit extra)")
    p.add_argument("--head-regularization", default=DEFAULTS.head_regularization, choices=HEAD_REGULARIZATIONS,
                   help="the head's C: fixed at 10, or chosen by cross-validation each round (default: fixed)")
    p.add_argument("--model", default="", help="Hugging Face model path (default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--max-length", type=int, default=DEFAULTS.max_length, help=f"max tokens per text (default: {DEFAULTS.max_length})")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help=f"fine-tuning epochs (finetune mode; default: {DEFAULTS.epochs})")
    p.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate,
                   help=f"fine-tuning learning rate (default: {DEFAULTS.learning_rate:g})")
    p.add_argument("--train-batch-size", type=int, default=DEFAULTS.train_batch_size,
                   help=f"training/inference batch size (default: {DEFAULTS.train_batch_size})")
    p.add_argument("--committee-size", type=int, default=DEFAULTS.committee_size,
                   help=f"committee members for bald/qbc (default: {DEFAULTS.committee_size})")
    p.add_argument("--pool-limit", type=int, help="use at most N rows in all (stratified subsample, before the test split)")
    p.add_argument("--device", default=DEFAULTS.device, choices=DEVICES)
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


def config_from_args(args: argparse.Namespace, task_type: str = "single_label") -> SimulationConfig:
    from strategies import DEFAULT_STRATEGIES, STRATEGY_NAMES

    names = args.strategies if args.strategies is not None else f"{DEFAULT_STRATEGIES[task_type]},random"
    strategies = tuple(dict.fromkeys(s.strip() for s in names.split(",") if s.strip()))
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
        ("--committee-size", args.committee_size, 1), ("--finetune-every", args.finetune_every, 1),
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
        device=args.device, head_regularization=args.head_regularization, finetune_every=args.finetune_every,
        finetune_method=args.finetune_method,
    )


def task_type_of(data: Dataset | SpanDataset) -> str:
    from strategies import MULTI_LABEL, NER, SINGLE_LABEL

    if isinstance(data, SpanDataset):
        return NER
    return MULTI_LABEL if data.multi_label else SINGLE_LABEL


def check_fits(data: Dataset | SpanDataset, config: SimulationConfig) -> None:
    """Strategies and sizes that cannot work on this dataset: say which option to change."""
    from strategies import STRATEGIES, strategies_for

    task_type = task_type_of(data)
    if isinstance(data, SpanDataset):
        from backend.simulation.ner import refusal

        reason = refusal(config)
        if reason:
            raise InputError(reason)
    wrong = [name for name in config.strategies if task_type not in STRATEGIES[name].task_types]
    if wrong:
        raise InputError(
            f"{', '.join(map(repr, wrong))} cannot rank {task_type} data; strategies for it: {', '.join(strategies_for(task_type))}"
        )
    n = len(data.texts)
    # NER: no class has to reach both sides of the split.
    n_classes = 1 if isinstance(data, SpanDataset) else len(data.classes)
    n_test = math.ceil(n * config.test_fraction)
    if n_test < n_classes:
        raise InputError(
            f"--test-fraction {config.test_fraction} leaves {n_test} test rows for {n_classes} classes "
            f"({n} rows in all); raise --test-fraction or add data"
        )
    n_pool = n - n_test
    if n_pool < n_classes:
        raise InputError(f"--test-fraction {config.test_fraction} leaves only {n_pool} pool rows for {n_classes} classes")
    if config.initial_strategy == "stratified" and config.initial < n_classes:
        raise InputError(
            f"--initial {config.initial} is smaller than the number of classes ({n_classes}); "
            "a stratified initial set needs one label per class"
        )
    needed = config.initial + config.batch_size * config.rounds
    if needed > n_pool:
        raise InputError(
            f"--initial {config.initial} + --batch-size {config.batch_size} × --rounds {config.rounds} = {needed} labels, "
            f"but the pool has only {n_pool} rows ({n} rows minus {n_test} test); lower --initial/--batch-size/--rounds "
            "or --test-fraction"
        )
    from backend.core.exceptions import SettingsError

    try:
        config.project_settings(config.strategies[0], config.seeds[0])
    except SettingsError as exc:
        raise InputError(str(exc)) from None


def prepare(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Dataset | SpanDataset, SimulationConfig]:
    """Parse and validate everything that can be checked before loading a model."""
    args = build_parser().parse_args(argv)
    # The file first: it is the most common mistake and needs no heavy imports to report.
    data = read_dataset(
        args.input, text_column=args.text_column, label_column=args.label_column,
        label_config=args.label_config, text_field=args.text_field, label_separator=args.label_separator,
        format=args.format,
    )
    config = config_from_args(args, task_type_of(data))
    if isinstance(data, SpanDataset):
        if config.pool_limit is not None and config.pool_limit < len(data.texts):
            from backend.simulation.ner import can_stratify

            limit, groups = config.pool_limit, data.has_entity
            keep = subsample(groups, limit, seed=0, stratify=can_stratify(groups, min(limit, len(groups) - limit)))
            data = data.subset(keep)
            if data.n_entities == 0:
                raise InputError(f"--pool-limit {limit} keeps no text with an entity; raise it")
    elif config.pool_limit is not None and config.pool_limit < len(data.texts):
        keep = subsample(data.y, config.pool_limit, seed=0)
        labels = [data.labels[i] for i in keep]
        data = checked(replace(
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
    ner = isinstance(data, SpanDataset)
    print(_describe(data), file=sys.stderr)
    if ner and data.dropped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in data.dropped.most_common())
        print(f"dropped {sum(data.dropped.values())} annotated spans that cannot be used ({reasons})", file=sys.stderr)
    metric, columns = ACCURACY, ROUND_COLUMNS
    try:
        if ner:
            from backend.simulation.ner import (
                ENTITY_F1,
                NER_ROUND_COLUMNS,
                simulate_ner,
            )

            metric, columns = ENTITY_F1, NER_ROUND_COLUMNS
            result = simulate_ner(data, config, progress=not args.quiet)
        else:
            result = simulate(data, config, progress=not args.quiet)
    except (OSError, ValueError) as exc:
        # Model folders that do not load, settings the classifier refuses: one line, not a traceback.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    summary = write_outputs(
        out, result, title=f"Simulation: {Path(args.input).name}", header=_header(data, config), metric=metric, columns=columns,
    )
    final = f"final_{metric.column}"
    for entry in summary:
        print(
            f"{entry['strategy']:>18}: AUC {fmt_mean_std(entry['auc_mean'], entry['auc_std'])}, "
            f"final {metric.name} {fmt_mean_std(entry[f'{final}_mean'], entry[f'{final}_std'])}",
            file=sys.stderr,
        )
    print(f"wrote {out / 'rounds.csv'}, {out / 'summary.csv'}, {out / 'summary.md'}, {out / 'learning_curve.png'}", file=sys.stderr)
    return 0


def _describe(data: Dataset | SpanDataset) -> str:
    if isinstance(data, SpanDataset):
        return (
            f"{len(data.texts)} labeled texts, {data.n_entities} entities of {len(data.labels)} types ({', '.join(data.labels)})"
            + (f"; skipped {data.skipped} tasks without a submitted annotation" if data.skipped else "")
        )
    return (
        f"{len(data.texts)} labeled texts, {len(data.classes)} classes ({', '.join(data.classes)})"
        + (f"; skipped {data.skipped} tasks without a choices annotation" if data.skipped else "")
    )


def _header(data: Dataset | SpanDataset, config: SimulationConfig) -> str:
    if isinstance(data, SpanDataset):
        kind = (f"{len(data.texts)} texts, {data.n_entities} entities of {len(data.labels)} types; "
                f"NER token head (frozen encoder), max_length {config.max_length}")
    else:
        kind = f"{len(data.texts)} texts, {len(data.classes)} classes; mode {config.mode}, max_length {config.max_length}"
    return (
        f"{kind}; "
        f"initial {config.initial} ({config.initial_strategy}), batch {config.batch_size}, rounds {config.rounds}, "
        f"test fraction {config.test_fraction}; seeds {', '.join(map(str, config.seeds))}."
    )

