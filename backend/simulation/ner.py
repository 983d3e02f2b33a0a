"""Playing NER rounds: hide the spans, reveal them batch by batch, refit the token tagger, rank the rest.

The NER counterpart of ``runner``, shared by ``al-simulate`` and ``bench/ner_efficiency.py``. Per seed a fixed
split holds out the test texts (stratified on "has an entity" where both groups have two texts), round 0's
labels are drawn as ``protocol`` says (uniformly at random, or by the ``cold_start`` ranking of sentence
embeddings), then every round takes the worker's step (``backend.learning.step``) over the worker's NER
classifier (``backend.models.span_tagger.SpanTagger``): the phase rule, a refit of the token tagger on the texts
labeled so far, a score on the test set with entity-level micro precision / recall / F1
(``backend.learning.entity_metrics``, seqeval: exact boundaries and type), and the ranking of the unlabeled pool
by the round's strategy. The full-pool reference is the same tagger fit on the whole pool.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.core.exceptions import InputError
from backend.models.token_head import DEFAULT_TOKEN_C, TokenHead
from backend.simulation.ner_dataset import SpanDataset
from backend.simulation.protocol import (
    SimulationConfig,
    make_split,
    play_rounds,
    round_seed,
    select_batch,
    uniform_initial_indices,
)
from backend.simulation.runner import SimulationResult
from backend.simulation.summary import Metric

if TYPE_CHECKING:
    from backend.models.span_tagger import SpanTagger

ENTITY_F1 = Metric("entity_f1", "entity F1", (("entity_precision", "entity precision"), ("entity_recall", "entity recall")))
#: What ``rounds.csv`` holds for NER. A row has more: ``entity_f1_per_type`` and the parts of the two times
#: (``fit_seconds`` + ``eval_seconds`` = ``train_seconds``, ``predict_pool_seconds`` + ``rank_seconds`` =
#: ``query_seconds``), and a ``note`` when no model could train yet.
NER_ROUND_COLUMNS = (
    "strategy", "seed", "round", "labels_used", "entities_labeled", "entity_precision", "entity_recall", "entity_f1",
    "train_seconds", "query_seconds",
)
NO_ENTITY_YET = "no model yet (min_labels labels holding a span): the cold-start phase ranked this round"


def can_stratify(groups: np.ndarray, smaller_side: int) -> bool:
    """Whether a split of ``groups`` (0/1) can keep both in proportion: each has 2 members and so has the smaller side."""
    return bool(np.bincount(groups, minlength=2).min() >= 2 and smaller_side >= 2)


def refusal(config: SimulationConfig) -> str | None:
    """Why these settings cannot run NER rounds, in one line; None when they can."""
    if config.mode != "head":
        return (f"--mode {config.mode} is not available for NER simulations yet: they train the token head over the "
                "frozen encoder only; use --mode head")
    if config.initial_strategy == "stratified":
        return "--initial-strategy stratified needs classes; for NER use random or cold_start"
    if config.head_regularization != "fixed":
        return f"--head-regularization {config.head_regularization} is for classification heads; the token head's C is fixed"
    return None


class NerSimulator:
    """Runs the NER rounds through the worker's step (``backend.learning.step``) over the worker's NER classifier
    (``backend.models.span_tagger.SpanTagger``). One classifier serves every run: its token vectors and sentence
    embeddings are computed once (``warm_up``), so a refit costs the tagger's fit alone."""

    def __init__(self, data: SpanDataset, config: SimulationConfig, *, C: float = DEFAULT_TOKEN_C):
        reason = refusal(config)
        if reason:
            raise InputError(reason)
        self.data, self.config, self.C = data, config, C
        self._classifier = None

    def classifier(self, strategy: str, seed: int) -> "SpanTagger":
        """The shared classifier, set to the settings of ``strategy`` and ``seed`` (the tagger's and the strategies')."""
        from backend.models.span_tagger import SpanTagger

        settings = self.config.project_settings(strategy, seed)
        if self._classifier is None:
            self._classifier = SpanTagger(self.data.labels, settings, model_path=self.config.model or None, C=self.C)
        self._classifier.settings = settings
        return self._classifier

    @property
    def token_vectors(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every text's token vectors, as ``warm_up`` computed them (text -> (offsets, vectors))."""
        return self.classifier("random", self.config.seeds[0]).token_vectors

    def embeddings(self, indices: np.ndarray) -> np.ndarray:
        """Sentence embeddings (mean-pooled, the same encoder) of the texts at ``indices``, for ``cold_start``,
        ``coreset`` and the like."""
        return self.classifier("random", self.config.seeds[0]).embed([self.data.texts[i] for i in indices])

    def warm_up(self) -> float:
        """Encode every text once up front (token vectors, and sentence embeddings when a strategy needs them), so
        train and query times measure the active-learning loop only; the seconds it took. (The cold-start phase
        embeds what it ranks when it first runs.)"""
        from strategies import STRATEGIES

        started = time.perf_counter()
        classifier = self.classifier("random", self.config.seeds[0])
        classifier.tagger.token_embeddings(self.data.texts)
        if self.config.initial_strategy == "cold_start" or any(
            "embeddings" in STRATEGIES[name].requires | STRATEGIES[name].optional for name in self.config.strategies
        ):
            classifier.embed(self.data.texts)
        return time.perf_counter() - started

    def split(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(pool, test) indices, fixed per seed, sorted; stratified on "has an entity" when both groups allow it."""
        groups, n = self.data.has_entity, len(self.data.texts)
        n_test = math.ceil(n * self.config.test_fraction)
        return make_split(groups, self.config.test_fraction, seed, stratify=can_stratify(groups, min(n_test, n - n_test)))

    def initial_positions(self, pool: np.ndarray, seed: int) -> np.ndarray:
        """Positions in ``pool`` of round 0's labels: uniformly at random, or the ``cold_start`` ranking's top."""
        from strategies import ModelOutputs, make_strategy

        cfg = self.config
        if cfg.initial_strategy == "random":
            return uniform_initial_indices(len(pool), cfg.initial, seed)
        strategy = make_strategy("cold_start", batch_size=cfg.initial, random_state=seed)
        return select_batch(strategy.query(ModelOutputs(embeddings=self.embeddings(pool))), cfg.initial)

    def evaluate(self, tagger: TokenHead | None, test: np.ndarray) -> dict[str, Any]:
        """Entity-level scores on the test texts; before any tagger trains, nothing is found."""
        from backend.learning.entity_metrics import entity_scores

        texts = [self.data.texts[i] for i in test]
        found = tagger.predict_spans(texts) if tagger is not None else [[] for _ in texts]
        return entity_scores([self.data.spans[i] for i in test], found, self.data.labels)

    def fit(self, indices: np.ndarray, seed: int) -> TokenHead:
        texts, spans = [self.data.texts[i] for i in indices], [self.data.spans[i] for i in indices]
        return self.classifier("random", seed).fit(texts, spans).tagger

    def reference(self, seed: int, split: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
        """The tagger fit on the whole pool, scored on the test set: the ceiling the learning curves approach."""
        pool, test = split or self.split(seed)
        started = time.perf_counter()
        tagger = self.fit(pool, seed)
        fit_seconds = time.perf_counter() - started
        scores = self.evaluate(tagger, test)
        return {
            "entity_f1": scores["f1"], "entity_precision": scores["precision"], "entity_recall": scores["recall"],
            "fit_seconds": fit_seconds,
        }

    def run(
        self, strategy_name: str, seed: int, tick: Callable[[], None] = lambda: None,
        split: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        """One strategy's rounds for one seed: the worker's step (plan, fit, score the test set, rank), a batch labeled."""
        from backend.learning.step import ActiveLearningStep
        from strategies import NER

        cfg, spans, texts = self.config, self.data.spans, self.data.texts
        pool, test = split or self.split(seed)

        def play(round_index: int, labeled: np.ndarray, unlabeled: np.ndarray):
            classifier = self.classifier(strategy_name, seed)
            step = ActiveLearningStep(classifier, classifier.settings, NER, round_seed(seed, round_index))
            labeled_texts, labeled_spans = [texts[i] for i in labeled], [spans[i] for i in labeled]
            plan = step.plan(np.array([len(s) for s in labeled_spans], dtype=np.int64))
            started = time.perf_counter()
            trained = step.fit(plan, labeled_texts, labeled_spans)
            fitted = time.perf_counter()
            scores = self.evaluate(classifier.tagger if trained else None, test)
            row = {
                "strategy": strategy_name, "seed": seed, "round": round_index, "labels_used": len(labeled),
                "entities_labeled": sum(len(s) for s in labeled_spans),
                "entity_precision": scores["precision"], "entity_recall": scores["recall"], "entity_f1": scores["f1"],
                "entity_f1_per_type": {label: s["f1"] for label, s in scores["per_type"].items()},
                "fit_seconds": fitted - started, "eval_seconds": time.perf_counter() - fitted,
                "predict_pool_seconds": 0.0, "rank_seconds": 0.0, "note": "" if trained else NO_ENTITY_YET,
            }
            picked = None
            if round_index < cfg.rounds:
                pool_texts = [texts[i] for i in unlabeled]
                started = time.perf_counter()
                proba = step.predict(plan, pool_texts)
                predicted = time.perf_counter()
                informativeness = step.query(plan, pool_texts, labeled_texts, labeled_spans, proba)
                picked = unlabeled[select_batch(informativeness, cfg.batch_size)]
                row["predict_pool_seconds"], row["rank_seconds"] = predicted - started, time.perf_counter() - predicted
            row["train_seconds"] = row["fit_seconds"] + row["eval_seconds"]
            row["query_seconds"] = row["predict_pool_seconds"] + row["rank_seconds"]
            tick()
            return row, picked

        return play_rounds(pool, pool[self.initial_positions(pool, seed)], cfg.rounds, play)


def simulate_ner(
    data: SpanDataset, config: SimulationConfig, *, progress: bool = True, C: float = DEFAULT_TOKEN_C
) -> SimulationResult:
    """Every strategy × seed, plus one full-pool reference fit per seed (its entity F1)."""
    from tqdm.auto import tqdm

    simulator = NerSimulator(data, config, C=C)
    total = len(config.strategies) * len(config.seeds) * (config.rounds + 1) + len(config.seeds)
    result = SimulationResult()
    with tqdm(total=total, desc="simulate", unit="fit", disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
        bar.set_postfix_str("encoding texts")
        simulator.warm_up()
        for seed in config.seeds:
            bar.set_postfix_str(f"seed {seed} full-pool reference")
            result.reference[seed] = simulator.reference(seed)["entity_f1"]
            bar.update()
            for strategy in config.strategies:
                bar.set_postfix_str(f"seed {seed} {strategy}")
                result.rows.extend(simulator.run(strategy, seed, tick=bar.update))
    result.notes = [f"{r['strategy']} seed {r['seed']} round {r['round']}: {r['note']}" for r in result.rows if r["note"]]
    return result
