"""Playing NER rounds: hide the spans, reveal them batch by batch, refit the token tagger, rank the rest.

The NER counterpart of ``runner``, shared by ``al-simulate`` and ``bench/ner_efficiency.py``. Per seed a fixed
split holds out the test texts (stratified on "has an entity" where both groups have two texts), round 0's
labels are drawn as ``protocol`` says (uniformly at random, or by the ``cold_start`` ranking of sentence
embeddings), then every round ``backend.models.token_head.TokenHead`` (the NER fast path: frozen encoder token vectors
and a logistic tagger) refits on the texts labeled so far, is scored on the test set with entity-level micro
precision / recall / F1 (``backend.learning.entity_metrics``, seqeval: exact boundaries and type), and the registered
strategy ranks the unlabeled pool (``strategies.make_strategy(name).query``). The full-pool reference is the
same head fit on the whole pool.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from backend.simulation.dataset import InputError
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
from backend.models.token_head import DEFAULT_TOKEN_C, TokenHead

ENTITY_F1 = Metric("entity_f1", "entity F1", (("entity_precision", "entity precision"), ("entity_recall", "entity recall")))
#: What ``rounds.csv`` holds for NER. A row has more: ``entity_f1_per_type`` and the parts of the two times
#: (``fit_seconds`` + ``eval_seconds`` = ``train_seconds``, ``predict_pool_seconds`` + ``rank_seconds`` =
#: ``query_seconds``), and a ``note`` when the round ranked at random.
NER_ROUND_COLUMNS = (
    "strategy", "seed", "round", "labels_used", "entities_labeled", "entity_precision", "entity_recall", "entity_f1",
    "train_seconds", "query_seconds",
)
NO_ENTITY_YET = "no entity labeled yet: random this round"


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
    """Runs the NER rounds. Every round's ``TokenHead`` shares one cache of token vectors (``warm_up`` fills it),
    so a refit costs the logistic fit alone."""

    def __init__(self, data: SpanDataset, config: SimulationConfig, *, C: float = DEFAULT_TOKEN_C):
        from strategies import STRATEGIES

        reason = refusal(config)
        if reason:
            raise InputError(reason)
        self.data, self.config, self.C = data, config, C
        self.cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._sentence_encoder = None
        self.needs_embeddings = config.initial_strategy == "cold_start" or any(
            "embeddings" in STRATEGIES[name].requires | STRATEGIES[name].optional for name in config.strategies
        )

    def head(self, seed: int) -> TokenHead:
        cfg = self.config
        return TokenHead(
            self.data.labels, model_path=cfg.model or None, max_length=cfg.max_length, batch_size=cfg.train_batch_size,
            seed=seed, device=cfg.device, C=self.C, cache=self.cache,
        )

    def embeddings(self, indices: np.ndarray) -> np.ndarray:
        """Sentence embeddings (mean-pooled, the same encoder) of the texts at ``indices``, for ``cold_start``,
        ``coreset`` and the like."""
        if self._sentence_encoder is None:
            from backend.models.frozen_classifier import FrozenEncoderClassifier

            # Only ``embed`` is used; the class names are placeholders (a classifier needs two).
            settings = self.config.project_settings("random", self.config.seeds[0])
            self._sentence_encoder = FrozenEncoderClassifier(("entity", "none"), settings, model_path=self.config.model or None)
        return self._sentence_encoder.embed([self.data.texts[i] for i in indices])

    def warm_up(self) -> float:
        """Encode every text once up front (token vectors, and sentence embeddings when a strategy needs them),
        so train and query times measure the active-learning loop only; the seconds it took."""
        started = time.perf_counter()
        self.head(self.config.seeds[0]).token_embeddings(self.data.texts)
        if self.needs_embeddings:
            self.embeddings(np.arange(len(self.data.texts)))
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

    def evaluate(self, head: TokenHead, test: np.ndarray) -> dict[str, Any]:
        from backend.learning.entity_metrics import entity_scores

        texts = [self.data.texts[i] for i in test]
        return entity_scores([self.data.spans[i] for i in test], head.predict_spans(texts), self.data.labels)

    def fit(self, indices: np.ndarray, seed: int) -> TokenHead:
        return self.head(seed).fit([self.data.texts[i] for i in indices], [self.data.spans[i] for i in indices])

    def reference(self, seed: int, split: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
        """The head fit on the whole pool, scored on the test set: the ceiling the learning curves approach."""
        pool, test = split or self.split(seed)
        started = time.perf_counter()
        head = self.fit(pool, seed)
        fit_seconds = time.perf_counter() - started
        scores = self.evaluate(head, test)
        return {
            "entity_f1": scores["f1"], "entity_precision": scores["precision"], "entity_recall": scores["recall"],
            "fit_seconds": fit_seconds,
        }

    def run(
        self, strategy_name: str, seed: int, tick: Callable[[], None] = lambda: None,
        split: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        """One strategy's rounds for one seed: fit, score the test set, rank the unlabeled pool, label a batch."""
        cfg, spans = self.config, self.data.spans
        pool, test = split or self.split(seed)

        def play(round_index: int, labeled: np.ndarray, unlabeled: np.ndarray):
            started = time.perf_counter()
            head = self.fit(labeled, seed)
            fitted = time.perf_counter()
            scores = self.evaluate(head, test)
            row = {
                "strategy": strategy_name, "seed": seed, "round": round_index, "labels_used": len(labeled),
                "entities_labeled": sum(len(spans[i]) for i in labeled),
                "entity_precision": scores["precision"], "entity_recall": scores["recall"], "entity_f1": scores["f1"],
                "entity_f1_per_type": {label: s["f1"] for label, s in scores["per_type"].items()},
                "fit_seconds": fitted - started, "eval_seconds": time.perf_counter() - fitted,
                "predict_pool_seconds": 0.0, "rank_seconds": 0.0, "note": "",
            }
            picked = None
            if round_index < cfg.rounds:
                picked = self._query(strategy_name, seed, round_index, head, labeled, unlabeled, row)
            row["train_seconds"] = row["fit_seconds"] + row["eval_seconds"]
            row["query_seconds"] = row["predict_pool_seconds"] + row["rank_seconds"]
            tick()
            return row, picked

        return play_rounds(pool, pool[self.initial_positions(pool, seed)], cfg.rounds, play)

    def _query(self, name: str, seed: int, round_index: int, head: TokenHead, labeled, unlabeled, row) -> np.ndarray:
        """The next batch (dataset indices); fills the row's ``predict_pool_seconds``, ``rank_seconds`` and ``note``."""
        from strategies import STRATEGIES, ModelOutputs, make_strategy

        started = time.perf_counter()
        needs = STRATEGIES[name].requires | STRATEGIES[name].optional
        if "token_proba" in needs and head.head is None:
            # Every labeled token is O: the tagger is constant and every score ties.
            name, row["note"] = "random", NO_ENTITY_YET
            needs = frozenset()
        fields: dict[str, np.ndarray] = {}
        if "token_proba" in needs:
            fields["token_proba"], fields["token_mask"] = head.predict_token_proba([self.data.texts[i] for i in unlabeled])
        if "embeddings" in needs:
            fields["embeddings"] = self.embeddings(unlabeled)
        if "labeled_embeddings" in needs:
            fields["labeled_embeddings"] = self.embeddings(labeled)
        if not fields:  # random: the pool size is all it reads, and predicting the pool would cost it time
            fields["token_mask"] = np.ones((len(unlabeled), 1), dtype=bool)
        row["predict_pool_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        ranker = make_strategy(name, batch_size=self.config.batch_size, random_state=round_seed(seed, round_index))
        picked = unlabeled[select_batch(ranker.query(ModelOutputs(**fields)), self.config.batch_size)]
        row["rank_seconds"] = time.perf_counter() - started
        return picked


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
