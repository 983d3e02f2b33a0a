"""The one interface every query strategy honours.

A strategy reads what the model says about the unlabeled pool (``ModelOutputs``) and returns an
*informativeness* for every pool item: higher means "ask a human sooner". Strategies never see Label
Studio, tasks or torch; the backend turns informativeness into Label Studio's lowest-first score.

Batch-aware strategies (coreset, cluster-margin, cold start) pick a batch in order; they still return
one informativeness per item, derived from the selection order (see ``ranks_to_informativeness``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

#: One label per task from a set of mutually exclusive classes (softmax over ``proba``).
SINGLE_LABEL = "single_label"
#: Any subset of the labels per task (one independent yes/no per label: ``label_proba``).
MULTI_LABEL = "multi_label"
#: Named-entity recognition: one BIO tag per token (``token_proba``, ``token_mask``).
NER = "ner"
TASK_TYPES: tuple[str, ...] = (SINGLE_LABEL, MULTI_LABEL, NER)


@dataclass(frozen=True)
class ModelOutputs:
    """What a trained model (or a bare encoder) can tell about the pool.

    Every field is optional; a strategy lists the ones it reads in ``requires``.

    proba:              (n_pool, n_classes) class probabilities of the pool (single-label).
    embeddings:         (n_pool, dim) pool embeddings.
    committee_proba:    (n_members, n_pool, n_classes) probabilities from each committee member
                        (MC-dropout passes or bootstrap-trained heads).
    labeled_embeddings: (n_labeled, dim) embeddings of the labeled tasks.
    labeled_losses:     (n_labeled,) out-of-fold losses of the labeled tasks.
    label_proba:        (n_pool, n_labels) independent per-label probabilities P(label applies | x) of a
                        multi-label (one-vs-rest / sigmoid) model; rows need not sum to 1.
    labeled_targets:    (n_labeled, n_labels) 0/1 label sets of the labeled tasks (multi-label).
    token_proba:        (n_pool, max_tokens, n_tags) per-token tag distributions of a token tagger
                        (BIO tags), zero-padded past each task's last token.
    token_mask:         (n_pool, max_tokens) bool, True on real tokens. A task may have no real token
                        (empty text); sequence strategies give it informativeness 0. Values of
                        ``token_proba`` where the mask is False are never read.
    """

    proba: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    committee_proba: np.ndarray | None = None
    labeled_embeddings: np.ndarray | None = None
    labeled_losses: np.ndarray | None = None
    label_proba: np.ndarray | None = None
    labeled_targets: np.ndarray | None = None
    token_proba: np.ndarray | None = None
    token_mask: np.ndarray | None = None

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    def missing(self, required: frozenset[str]) -> list[str]:
        return sorted(name for name in required if getattr(self, name) is None)


class MissingOutputsError(ValueError):
    """A strategy was asked to score without the model outputs it needs."""


class QueryStrategy(ABC):
    """Base class: explicit constructor parameters, one ``query`` method, no hidden state."""

    #: Registry key, as project owners type it in the ML backend's extra params.
    name: ClassVar[str]
    #: ``ModelOutputs`` fields this strategy reads.
    requires: ClassVar[frozenset[str]]
    #: Fields it uses when present and works without (the backend provides them when it can).
    optional: ClassVar[frozenset[str]] = frozenset()
    #: True when the strategy picks a batch jointly rather than scoring each item alone.
    batch_aware: ClassVar[bool] = False
    #: The task types (``TASK_TYPES``) whose model outputs this strategy can rank.
    task_types: ClassVar[frozenset[str]] = frozenset({SINGLE_LABEL})

    def __init__(self, *, batch_size: int = 10, random_state: int | None = None) -> None:
        # Every strategy accepts both so the backend can build any of them the same way.
        self.batch_size = batch_size
        self.random_state = random_state

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({params})"

    def query(self, outputs: ModelOutputs) -> np.ndarray:
        """Return informativeness of shape (n_pool,): higher = ask sooner."""
        missing = outputs.missing(self.requires)
        if missing:
            raise MissingOutputsError(
                f"strategy {self.name!r} needs {', '.join(missing)}, which the model did not provide"
            )
        return self._informativeness(outputs)

    @abstractmethod
    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        """Compute informativeness; ``outputs`` holds every field in ``requires``."""


def as_array(value: np.ndarray, ndim: int, name: str) -> np.ndarray:
    """``value`` as float64 with the expected number of axes; float64 keeps scores comparable across dtypes."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


def as_features(value: np.ndarray, ndim: int, name: str) -> np.ndarray:
    """Feature vectors (embeddings) as floats with the expected number of axes, float32 kept as float32.

    Unlike scores, features are never compared across arrays, and a float64 copy of a 100k-task pool's
    384-wide embeddings is 300 MB more per copy for strategies that cluster the whole pool.
    """
    array = np.asarray(value)
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


def ranks_to_informativeness(selected: np.ndarray | list[int], base: np.ndarray) -> np.ndarray:
    """Turn a batch picked in order plus a pointwise score for everything else into informativeness.

    The ``selected`` items come first, in selection order; every other item keeps its ``base`` score,
    which only has to order the rest (higher = sooner). Selected items are lifted strictly above every
    base score, so "the top ``len(selected)`` items" is exactly the batch.
    """
    selected = np.asarray(selected, dtype=np.intp)
    if len(np.unique(selected)) != len(selected):
        raise ValueError("a batch must not repeat an item")
    informativeness = np.asarray(base, dtype=np.float64).copy()
    rest = np.ones(len(informativeness), dtype=bool)
    rest[selected] = False
    if not np.isfinite(informativeness[rest]).all():
        raise ValueError("base scores must be finite to rank the items after the batch")
    ceiling = informativeness[rest].max() if rest.any() else 0.0
    # Steps scale with the ceiling so that adding them to a huge base score cannot round into a tie.
    step = max(1.0, abs(ceiling))
    informativeness[selected] = ceiling + step * np.arange(len(selected), 0, -1, dtype=np.float64)
    return informativeness
