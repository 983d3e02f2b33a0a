"""The simulation's protocol: its settings, the test split, the initial labels and each round's batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from backend.core.exceptions import InputError
from backend.core.settings import DEFAULT_MODEL, ProjectSettings

#: How round 0's labels are drawn. ``random``: uniformly, as a Label Studio project gets its first labels;
#: ``cold_start``: the cold_start ranking, as the backend serves a new project; ``stratified``: every class at
#: least once (a protocol that flatters: no real project starts that way).
INITIAL_STRATEGIES = ("random", "cold_start", "stratified")

#: How the model trains each round. ``head``: a head over the frozen encoder (the worker's ``model_mode: head``);
#: ``two_speed``: the same head every round, plus the full path every ``finetune_every`` labels, adopted only
#: when it wins on held-out labels (the worker's ``model_mode: finetune``, ``backend.simulation.two_speed``);
#: ``finetune``: the encoder fine-tuned end to end every round (no worker does that: an upper bound, and slow).
MODES = ("head", "two_speed", "finetune")


#: The project settings whose defaults the simulation shares: one place states each default.
_PROJECT = ProjectSettings()


@dataclass(frozen=True)
class SimulationConfig:
    """A simulation's options. The training knobs default to the worker's (``ProjectSettings``), so a simulation
    with no options replays what a project with no extra params gets."""

    strategies: tuple[str, ...] = ("margin", "random")
    seeds: tuple[int, ...] = (0, 1, 2)
    initial: int = 10
    #: Labels revealed per round; the worker's ``query_batch_size``.
    batch_size: int = _PROJECT.query_batch_size
    rounds: int = 10
    test_fraction: float = 0.2
    mode: str = "head"
    model: str = ""  # "" = the bundled default
    max_length: int = _PROJECT.max_length
    epochs: int = _PROJECT.epochs
    learning_rate: float = _PROJECT.learning_rate
    #: The worker's ``batch_size`` (training and inference batches).
    train_batch_size: int = _PROJECT.batch_size
    committee_size: int = _PROJECT.committee_size
    pool_limit: int | None = None
    initial_strategy: str = "random"
    device: str = _PROJECT.device
    head_regularization: str = _PROJECT.head_regularization
    finetune_every: int = _PROJECT.finetune_every
    finetune_method: str = _PROJECT.finetune_method

    def project_settings(self, strategy: str, seed: int) -> ProjectSettings:
        return ProjectSettings(
            strategy=strategy,
            model_name=self.model or DEFAULT_MODEL,
            model_mode="finetune" if self.mode == "finetune" else "head",
            epochs=self.epochs,
            batch_size=self.train_batch_size,
            learning_rate=self.learning_rate,
            max_length=self.max_length,
            query_batch_size=self.batch_size,
            committee_size=self.committee_size,
            seed=seed,
            device=self.device,
            head_regularization=self.head_regularization,
            finetune_every=self.finetune_every,
            finetune_method=self.finetune_method,
        )


def subsample(y: np.ndarray, limit: int | None, seed: int = 0, stratify: bool = True) -> np.ndarray:
    """Sorted indices of a random subsample of at most ``limit`` rows, class-stratified unless ``stratify`` is False."""
    if limit is None or limit >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    groups = y if stratify and y.ndim == 1 else None
    keep, _ = train_test_split(np.arange(len(y)), train_size=limit, stratify=groups, random_state=seed)
    return np.sort(keep)


def make_split(y: np.ndarray, test_fraction: float, seed: int, stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) indices, fixed per seed, both sorted; stratified by class unless ``stratify`` is False
    (multi-label data: never stratified)."""
    from sklearn.model_selection import train_test_split

    groups = y if stratify and y.ndim == 1 else None
    pool, test = train_test_split(np.arange(len(y)), test_size=test_fraction, stratify=groups, random_state=seed)
    return np.sort(pool), np.sort(test)


def initial_indices(y_pool: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Positions in the pool of a stratified random initial set: every class at least once, the rest
    in proportion to class frequency (seeded)."""
    if y_pool.ndim == 2:
        raise InputError("stratified initial labels need single-label classes; use --initial-strategy random or cold_start")
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


def uniform_initial_indices(n_pool: int, size: int, seed: int) -> np.ndarray:
    """Positions in the pool of ``size`` tasks drawn uniformly at random (seeded): one class may be missing."""
    return np.random.default_rng([seed, 7919]).choice(n_pool, size=min(size, n_pool), replace=False).astype(np.int64)


def select_batch(informativeness: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` most informative positions, ties in pool order (a stable sort)."""
    return np.argsort(-np.asarray(informativeness, dtype=np.float64), kind="stable")[:size]


def round_seed(seed: int, round_index: int) -> int:
    """A distinct, reproducible random_state per (seed, round), so random draws differ between rounds."""
    return int(np.random.SeedSequence([seed, round_index]).generate_state(1)[0])


#: One round: ``(round_index, labeled, unlabeled)`` (dataset indices) -> (the round's row, the batch it picked:
#: dataset indices, or None in the last round).
Round = Callable[[int, np.ndarray, np.ndarray], tuple[dict[str, Any], np.ndarray | None]]


def play_rounds(pool: np.ndarray, initial: np.ndarray, rounds: int, play: Round) -> list[dict[str, Any]]:
    """Round 0 on the ``initial`` labels (dataset indices in ``pool``), then ``rounds`` more, each adding the
    batch the round before picked; the rows, in round order."""
    labeled = initial
    unlabeled = np.setdiff1d(pool, labeled)  # sorted: the pool keeps dataset order
    rows = []
    for round_index in range(rounds + 1):
        row, picked = play(round_index, labeled, unlabeled)
        rows.append(row)
        if round_index < rounds:
            labeled = np.concatenate([labeled, picked])
            unlabeled = np.setdiff1d(unlabeled, picked)
    return rows
