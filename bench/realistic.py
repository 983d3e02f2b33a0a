"""The realistic protocol (issue 11), next to the standard one in ``bench/label_efficiency.py``.

A Label Studio project starts from whatever its annotators label first, and its budget is decided in the
first hundred labels. So: a 90-label budget (10 initial labels, then 8 rounds of 10); initial labels drawn
as a project gets them, uniformly at random or by the ``cold_start`` ranking the backend serves a new
project, never stratified; 5 seeds. Until two classes are labeled no model trains, and the simulation
ranks with the cold-start phase, as the worker does (``backend.simulation.runner``). small-text runs on the
same embeddings, splits and initial labels (``bench/smalltext_compare.py``).

Per dataset and start: paired Δ AUC against random with a 95% Student-t interval over seeds, labels to reach
95% / 98% of the full-pool accuracy, and the headroom: the full-pool ceiling against random's AUC. Then every
lever, each against the same runs without it. ``realistic_report`` renders the tables from the rounds written here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import corpora  # noqa: E402
from simulation_inputs import classifier_factory, dataset_and_config  # noqa: E402
from smalltext_compare import run_smalltext, write_splits  # noqa: E402

from backend.core.settings import ProjectSettings  # noqa: E402
from backend.simulation.report import read_rounds, write_rounds  # noqa: E402
from backend.simulation.runner import Simulator, simulate  # noqa: E402

BUDGET = {"initial": 10, "batch_size": 10, "rounds": 8}
STARTS = ("random", "cold_start")
DEFAULT_STRATEGY = ProjectSettings().strategy


def l2_normalised(embeddings: np.ndarray) -> np.ndarray:
    """Each row divided by its Euclidean norm: cosine geometry for the head, k-means and distances."""
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class Lever:
    """A change to the inputs every strategy and the head read: the embeddings, or worker settings that the
    simulation passes through ``ProjectSettings`` exactly as the worker reads them."""

    title: str
    embeddings: Callable[[np.ndarray], np.ndarray] | None = None
    settings: dict = dataclasses.field(default_factory=dict)
    #: The starts it runs from: a costly lever runs only from the default pipeline's.
    starts: tuple[str, ...] = STARTS
    #: The strategies it runs: the default and random, or for a costly lever the default alone.
    strategies: tuple[str, ...] = (DEFAULT_STRATEGY, "random")


#: Levers measured against the same runs without them; each runs the default strategy and random. A lever
#: becomes a worker default only where the table says so.
LEVERS = {
    "l2": Lever("L2-normalised embeddings", embeddings=l2_normalised),
    "cv_c": Lever("the head's C chosen by cross-validated log-loss (`head_regularization: cv`)",
                  settings={"head_regularization": "cv"}),
    "full_path": Lever("the full path (`model_mode: finetune`): the encoder fine-tuned every 50 labels and adopted "
                       "only when it wins on held-out labels, the head refit over it every round",
                       settings={"mode": "two_speed"}, starts=("cold_start",)),
    "setfit_full_path": Lever("the full path with SetFit (`finetune_method: setfit`, Tunstall et al. 2022): the encoder "
                              "tuned on contrastive pairs every 50 labels, adopted only when it wins on held-out labels",
                              settings={"mode": "two_speed", "finetune_method": "setfit"}, starts=("cold_start",),
                              strategies=(DEFAULT_STRATEGY,)),
}
#: Levers that are strategies of their own: each is compared with the default strategy on the same runs.
STRATEGY_LEVERS = {
    "information_density": "uncertainty weighted by density (Settles & Craven 2008)",
    "balanced_margin": "class-balanced selection: equal batch shares per predicted class",
}
SMALLTEXT_BEST = "small-text BreakingTies"
#: ``rounds_path``'s lever name for the fine-tuned path's runs (``bench/finetune_realistic.py``).
FINETUNE_LEVER = "finetune"


def rounds_path(results_dir: Path, name: str, start: str, lever: str = "") -> Path:
    return results_dir / f"{name}_realistic_{start}{'_' + lever if lever else ''}_rounds.csv"


#: ``run``'s name for the runs without a lever.
PLAIN = "plain"


def run(name: str, seeds: tuple[int, ...], strategies: tuple[str, ...], encoder_holder: dict, results_dir: Path,
        runs: tuple[str, ...] = (PLAIN, *LEVERS), resume: bool = False) -> None:
    """Simulate every strategy from each start (``PLAIN``), then each lever in ``runs``; rounds and full-pool
    references go to ``results_dir`` after every seed, so a stopped run loses at most the seed under way.
    With ``resume``, seeds a run already holds (on the same embeddings) are kept and only the others run."""
    for start in STARTS:
        if PLAIN in runs:
            _run_one(name, seeds, strategies, start, "", encoder_holder, results_dir, resume)
        for lever in LEVERS:
            if lever in runs and start in LEVERS[lever].starts:
                _run_one(name, seeds, LEVERS[lever].strategies, start, lever, encoder_holder, results_dir, resume)


def embeddings_fingerprint(embeddings: np.ndarray) -> str:
    """Which vectors a run saw: seeds run on other vectors do not pair, so ``--resume`` refuses to mix them."""
    return hashlib.sha1(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes()).hexdigest()[:16]


def _run_one(name, seeds, strategies, start: str, lever: str, encoder_holder: dict, results_dir: Path,
             resume: bool) -> None:
    cache, data, config = dataset_and_config(name, seeds, strategies, {**BUDGET, "initial_strategy": start})
    fingerprint = embeddings_fingerprint(cache["embeddings"])
    if lever and LEVERS[lever].embeddings:
        cache = {**cache, "embeddings": LEVERS[lever].embeddings(cache["embeddings"])}
    if lever:
        config = dataclasses.replace(config, **LEVERS[lever].settings)
    done = _resumable(results_dir, name, start, lever, fingerprint) if resume else None
    rows, reference, meta = done or ([], {}, {"notes": [], "smalltext_error": None})
    meta["embeddings"] = fingerprint
    make_classifier = classifier_factory(data, cache, encoder_holder)
    for seed in (seed for seed in seeds if seed not in reference):
        print(f"[{name}] realistic protocol, {start} start{', lever ' + lever if lever else ''}, seed {seed}",
              file=sys.stderr, flush=True)
        one_seed = dataclasses.replace(config, seeds=(seed,))
        result = simulate(data, one_seed, make_classifier=make_classifier, progress=True)
        rows = rows + result.rows
        reference.update(result.reference)
        if not lever:
            splits = write_splits(corpora.CACHE / f"{name}.realistic_{start}.seed{seed}.splits.npz",
                                  cache["embeddings"], data.y, len(data.classes), one_seed,
                                  Simulator(data, one_seed, make_classifier).initial_positions)
            smalltext_rows, smalltext_error, _ = run_smalltext(splits, splits.with_suffix(".smalltext.jsonl"))
            rows, meta["smalltext_error"] = rows + smalltext_rows, meta["smalltext_error"] or smalltext_error
        meta["notes"] = meta["notes"] + result.notes
        save_rounds(results_dir, name, start, lever, rows, reference, meta)


def _resumable(results_dir: Path, name: str, start: str, lever: str, fingerprint: str):
    """The rows, references and meta a run already holds, or None if it has not run; refuses other embeddings."""
    path = rounds_path(results_dir, name, start, lever)
    if not path.exists():
        return None
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    reference = {int(seed): accuracy for seed, accuracy in meta.pop("reference").items()}
    if meta.get("embeddings") != fingerprint:
        raise SystemExit(f"{path.name} was run on other embeddings ({meta.get('embeddings') or 'no fingerprint'}, "
                         f"these are {fingerprint}): its seeds would not pair with new ones; rerun without --resume")
    return read_rounds(path), reference, meta


def save_rounds(results_dir: Path, name: str, start: str, lever: str, rows: list[dict], reference: dict[int, float],
                meta: dict) -> Path:
    """A run's rounds CSV and, beside it, its full-pool reference per seed and ``meta`` (what ``load_rounds`` reads)."""
    path = rounds_path(results_dir, name, start, lever)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rounds(path, rows)
    meta = {"reference": {str(seed): accuracy for seed, accuracy in reference.items()}, **meta}
    path.with_suffix(".meta.json").write_text(json.dumps(meta, indent=1))
    return path


def load_rounds(results_dir: Path, name: str, start: str, lever: str = "") -> tuple[list[dict], dict[int, float]] | None:
    """A run's rounds and its full-pool reference accuracy per seed, or None if it has not run."""
    path = rounds_path(results_dir, name, start, lever)
    if not path.exists():
        return None
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    return read_rounds(path), {int(seed): accuracy for seed, accuracy in meta["reference"].items()}
