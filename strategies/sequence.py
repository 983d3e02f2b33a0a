"""Sequence-labelling (NER) uncertainty: how unsure is a token tagger about a whole task's tags?

A tagger gives each token a distribution over BIO tags; a task is a sequence of tokens. The measures
below take ``token_proba`` of shape (n_pool, max_tokens, n_tags), zero-padded, and ``token_mask`` of
shape (n_pool, max_tokens), True on real tokens, and return one informativeness per task (higher = more
uncertain). Values at padded positions are never read, whatever they hold (zeros, garbage, NaN), so
padding a pool to a longer ``max_tokens`` never changes a score. A task without a real token (empty
text) scores 0: there is nothing to be unsure about.

Settles & Craven (2008), "An Analysis of Active Learning Strategies for Sequence Labeling Tasks"
(EMNLP), compare token-level and sequence-level measures on CRF taggers; Shen, Yun, Lipton, Kronrod &
Anandkumar (2018), "Deep Active Learning for Named Entity Recognition" (ICLR), introduce MNLP.
``token_proba`` holds per-token distributions and the measures treat tokens as independent: exact for
a tagger with one softmax per token (a token-classification head); for a CRF, sequence-level scores
computed from its marginals would be an approximation.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

from .base import NER, ModelOutputs, QueryStrategy, as_array
from .uncertainty import entropy


def _real_tokens(token_proba: np.ndarray, token_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``token_proba`` as float64 with every padded position zeroed, and the mask as bool.

    Zeroing first keeps whatever padding holds (NaN, negatives) out of every later computation, so no
    warning is raised and nothing leaks into a score through ``0 * NaN``.
    """
    raw = np.asarray(token_proba)
    if raw.ndim != 3:
        raise ValueError(f"token_proba must have 3 dimensions, got shape {raw.shape}")
    mask = np.asarray(token_mask)
    if mask.shape != raw.shape[:2]:
        raise ValueError(
            f"token_mask must have shape (n_pool, max_tokens) = {raw.shape[:2]}, got {mask.shape}"
        )
    mask = mask.astype(bool, copy=False)
    return as_array(np.where(mask[..., None], raw, 0), 3, "token_proba"), mask


def _mean_over_tokens(per_token: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``per_token`` over each task's real tokens; 0 for a task without one.

    The sum runs token by token (``cumsum`` adds in order; ``sum`` adds pairwise, grouping terms by
    position), so zeros at padded positions leave it bit-for-bit unchanged: a task scores the same
    however far the pool around it was padded, e.g. when the backend scores the pool in chunks.
    """
    n_tokens = mask.sum(axis=1)
    masked = np.where(mask, per_token, 0.0)
    total = np.cumsum(masked, axis=1)[:, -1] if masked.shape[1] else np.zeros(len(masked))
    # ``+ 0.0`` turns the -0.0 of a fully confident task into a plain 0.0.
    return np.divide(total, n_tokens, out=np.zeros(len(total)), where=n_tokens > 0) + 0.0


def _entropies(proba: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # Zeroed padding has entropy 0 already (0 log 0 = 0); the mask makes that explicit.
    return np.where(mask, entropy(proba), 0.0)


def token_entropies(token_proba: np.ndarray, token_mask: np.ndarray) -> np.ndarray:
    """Per-token tag entropy ``-sum_m p_t(m) log p_t(m)`` in nats, shape (n_pool, max_tokens); 0 on padding."""
    return _entropies(*_real_tokens(token_proba, token_mask))


def max_token_entropy(token_proba: np.ndarray, token_mask: np.ndarray) -> np.ndarray:
    """``max_t H(y_t)`` over real tokens t; 0 for a task without tokens."""
    # Entropies are >= 0, so the zeros on padding never beat a real token; ``initial`` covers max_tokens == 0.
    return np.max(token_entropies(token_proba, token_mask), axis=1, initial=0.0)


def mean_token_entropy(token_proba: np.ndarray, token_mask: np.ndarray) -> np.ndarray:
    """``(1/T) sum_t H(y_t)`` over the T real tokens; 0 for a task without tokens."""
    proba, mask = _real_tokens(token_proba, token_mask)
    return _mean_over_tokens(_entropies(proba, mask), mask)


def mnlp(token_proba: np.ndarray, token_mask: np.ndarray) -> np.ndarray:
    """``-(1/T) sum_t log max_m p_t(m)``: the negated length-normalised log-probability of the best tag
    sequence; 0 for a task without tokens.

    With one independent softmax per token the most probable sequence takes the most probable tag at
    every token, so its log-probability is ``sum_t log max_m p_t(m)``. A real token whose row is all
    zeros (not a distribution) counts as probability ``np.finfo(float).tiny`` so the score stays finite.
    """
    proba, mask = _real_tokens(token_proba, token_mask)
    best = np.max(proba, axis=-1, initial=0.0)
    log_best = np.log(np.maximum(np.where(mask, best, 1.0), np.finfo(np.float64).tiny))
    return _mean_over_tokens(-log_best, mask)


class _TokenUncertainty(QueryStrategy):
    """Scores each pool task on its own from ``token_proba`` / ``token_mask`` with ``measure``."""

    requires = frozenset({"token_proba", "token_mask"})
    task_types = frozenset({NER})
    measure: ClassVar[Callable[[np.ndarray, np.ndarray], np.ndarray]]

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        return type(self).measure(outputs.token_proba, outputs.token_mask)


class MaxTokenEntropy(_TokenUncertainty):
    """Maximum token entropy: ``max_t -sum_m p(y_t = m | x) log p(y_t = m | x)`` over the real tokens t.

    Token entropy from Settles & Craven (2008), "An Analysis of Active Learning Strategies for Sequence
    Labeling Tasks"; aggregated by the maximum instead of their length-normalised sum, so one ambiguous
    token (one uncertain entity in a long text) is enough to ask, however many easy tokens surround it.
    """

    name = "max_token_entropy"
    measure = staticmethod(max_token_entropy)


class MeanTokenEntropy(_TokenUncertainty):
    """Mean token entropy: ``-(1/T) sum_t sum_m p(y_t = m | x) log p(y_t = m | x)`` over the T real tokens.

    This is the "token entropy" (TE) of Settles & Craven (2008), "An Analysis of Active Learning
    Strategies for Sequence Labeling Tasks", which carries the 1/T length normalisation; their "total
    token entropy" (TTE) is the same sum without it, T times this score, and favours long texts.
    """

    name = "mean_token_entropy"
    measure = staticmethod(mean_token_entropy)


class MNLP(_TokenUncertainty):
    """Maximum Normalized Log-Probability, least confident first: ``-(1/T) sum_t log max_m p(y_t = m | x)``.

    Shen, Yun, Lipton, Kronrod & Anandkumar (2018), "Deep Active Learning for Named Entity Recognition"
    (ICLR): rank by ``max_y (1/T) log P(y | x)``, lowest first. With one independent softmax per token
    the best sequence y takes each token's most probable tag, so ``log P(y | x) = sum_t log max_m p_t(m)``;
    dividing by the length T removes plain least confidence's preference for long texts.
    """

    name = "mnlp"
    measure = staticmethod(mnlp)
