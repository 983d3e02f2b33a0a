"""Playing the rounds: hide the labels, reveal them batch by batch as the worker would ask for them."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from backend.simulation.dataset import Dataset
from backend.simulation.protocol import (
    SimulationConfig,
    initial_indices,
    make_split,
    play_rounds,
    round_seed,
    select_batch,
    uniform_initial_indices,
)
from backend.simulation.two_speed import FullPathRun

ROUND_COLUMNS = (
    "strategy", "seed", "round", "labels_used", "accuracy", "precision_macro", "recall_macro", "f1_macro",
    "f1_micro", "train_seconds", "query_seconds",
)
ClassifierFactory = Callable[[Any], Any]  # ProjectSettings -> TextClassifier


def no_model_guess(y_labeled: np.ndarray, n: int) -> np.ndarray:
    """Before a model can train: the commonest class seen so far; multi-label, every label most tasks carry."""
    if y_labeled.ndim == 2:
        return np.tile((y_labeled.mean(0) > 0.5).astype(np.int64), (n, 1))
    return np.full(n, np.bincount(y_labeled).argmax())


@dataclass
class SimulationResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    reference: dict[int, float] = field(default_factory=dict)  # seed -> full-pool accuracy
    notes: list[str] = field(default_factory=list)


class Simulator:
    """Runs the rounds; ``make_classifier(settings)`` builds the worker's classifier.

    In head and two_speed modes one frozen-encoder classifier is shared by every run (its embedding cache makes
    each refit cost only the logistic head); in finetune mode every fit starts from a fresh model.
    """

    def __init__(self, data: Dataset, config: SimulationConfig, make_classifier: ClassifierFactory | None = None):
        from backend.models.families import build_classifier

        self.data = data
        self.config = config
        self.y = data.y
        self._build = make_classifier or (lambda settings: build_classifier(data.classes, settings, data.multi_label))
        self._shared = None
        self.notes: list[str] = []

    # One classifier per round in finetune mode, one for everything in head and two_speed modes.
    def classifier(self, strategy: str, seed: int):
        settings = self.config.project_settings(strategy, seed)
        if self.config.mode == "finetune":
            return self._build(settings)
        if self._shared is None:
            self._shared = self._build(settings)
        self._shared.settings = settings  # seed for the head and the bootstrap committee
        return self._shared

    def warm_up(self, progress=None) -> float:
        """Head modes: encode every text once up front, so train/query times measure the AL loop only."""
        if self.config.mode == "finetune":
            return 0.0
        started = time.perf_counter()
        self.classifier(self.config.strategies[0], self.config.seeds[0]).embed(self.data.texts, progress)
        return time.perf_counter() - started

    def reference_accuracy(self, seed: int) -> float:
        """Accuracy of a model trained on the whole pool: the ceiling the learning curves approach."""
        pool, test = make_split(self.y, self.config.test_fraction, seed)
        classifier = self.classifier("random", seed).fit([self.data.texts[i] for i in pool], self.y[pool])
        predicted = classifier.decide(classifier.predict_proba([self.data.texts[i] for i in test]))
        from backend.learning.evaluation import classification_metrics

        return classification_metrics(self.y[test], predicted)["accuracy"]

    def run(self, strategy_name: str, seed: int, tick: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
        from backend.core.exceptions import StrategyUnavailable
        from backend.learning.evaluation import classification_metrics
        from backend.learning.step import ActiveLearningStep
        from strategies import MULTI_LABEL, SINGLE_LABEL

        cfg, texts, y = self.config, self.data.texts, self.y
        task_type = MULTI_LABEL if self.data.multi_label else SINGLE_LABEL
        pool, test = make_split(y, cfg.test_fraction, seed)
        test_texts = [texts[i] for i in test]
        full_path = FullPathRun(list(self.data.classes), self.data.multi_label, cfg.finetune_every)

        def play(round_index: int, labeled: np.ndarray, unlabeled: np.ndarray):
            started = time.perf_counter()
            classifier = self.classifier(strategy_name, seed)
            labeled_texts = [texts[i] for i in labeled]
            # The worker's step: until a model can train (min_labels labels in two classes), the cold-start
            # phase ranks the pool (only a non-stratified initial set can start there).
            step = ActiveLearningStep(classifier, classifier.settings, task_type, round_seed(seed, round_index))
            plan = step.plan(y[labeled])
            if cfg.mode == "two_speed" and plan.trainable:
                decision = full_path.run_if_due(classifier, labeled_texts, y[labeled], texts)
                step.classifier = full_path.head(classifier)
                if decision:
                    self.notes.append(f"{strategy_name} seed {seed}, {len(labeled)} labels: full path {decision['outcome']}: "
                                      f"{decision['reason']}")
            if step.fit(plan, labeled_texts, y[labeled]):
                predicted = step.classifier.decide(step.classifier.predict_proba(test_texts))
            else:
                predicted = no_model_guess(y[labeled], len(test))
            train_seconds = time.perf_counter() - started
            metrics = classification_metrics(y[test], predicted)
            query_seconds, picked = 0.0, None
            if round_index < cfg.rounds:
                started = time.perf_counter()
                pool_texts = [texts[i] for i in unlabeled]
                try:
                    proba = step.predict(plan, pool_texts)
                    informativeness = step.query(plan, pool_texts, labeled_texts, y[labeled], proba)
                except StrategyUnavailable as exc:
                    # e.g. "difficulty" before every class has 2 labels: fall back to random for this round.
                    informativeness = np.random.default_rng(round_seed(seed, round_index)).random(len(unlabeled))
                    self.notes.append(f"{strategy_name} seed {seed} round {round_index}: {exc}; used random")
                picked = unlabeled[select_batch(informativeness, cfg.batch_size)]
                query_seconds = time.perf_counter() - started
            tick()
            return {
                "strategy": strategy_name, "seed": seed, "round": round_index, "labels_used": len(labeled),
                **metrics, "train_seconds": train_seconds, "query_seconds": query_seconds,
            }, picked

        return play_rounds(pool, pool[self.initial_positions(pool, seed)], cfg.rounds, play)

    def initial_positions(self, pool: np.ndarray, seed: int) -> np.ndarray:
        """Positions in ``pool`` of round 0's labels, drawn as ``config.initial_strategy`` says."""
        cfg = self.config
        if cfg.initial_strategy == "stratified":
            return initial_indices(self.y[pool], cfg.initial, seed)
        if cfg.initial_strategy == "random":
            return uniform_initial_indices(len(pool), cfg.initial, seed)
        from backend.learning.scoring import collect_outputs
        from strategies import make_strategy

        strategy = make_strategy("cold_start", batch_size=cfg.initial, random_state=seed)
        pool_texts = [self.data.texts[i] for i in pool]
        outputs = collect_outputs(self.classifier("cold_start", seed), strategy, pool_texts, [], np.zeros(0, np.int64),
                                  committee_size=cfg.committee_size, seed=seed)
        return select_batch(strategy.query(outputs), cfg.initial)


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
        if config.mode != "finetune":
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
