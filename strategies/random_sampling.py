"""Random sampling: the baseline every other strategy has to beat, and a safe cold-start choice."""

from __future__ import annotations

import numpy as np

from .base import MissingOutputsError, ModelOutputs, QueryStrategy

# Random sampling only needs the pool size, so any one of these is enough.
_POOL_SIZED_FIELDS = ("proba", "embeddings")


class RandomSampling(QueryStrategy):
    """Uniform random informativeness ``u_i ~ U[0, 1)`` from ``numpy.random.default_rng(random_state)``.

    Lewis & Gale (1994), "A Sequential Algorithm for Training Text Classifiers", use random sampling
    as the passive-learning baseline.
    """

    name = "random"
    # Nothing in particular: ``query`` accepts whichever of ``proba`` / ``embeddings`` is present.
    requires = frozenset()

    def query(self, outputs: ModelOutputs) -> np.ndarray:
        if all(getattr(outputs, field) is None for field in _POOL_SIZED_FIELDS):
            raise MissingOutputsError(
                f"strategy {self.name!r} needs proba or embeddings to know the pool size, "
                "and the model provided neither"
            )
        return self._informativeness(outputs)

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        present = next(getattr(outputs, f) for f in _POOL_SIZED_FIELDS if getattr(outputs, f) is not None)
        return np.random.default_rng(self.random_state).random(len(present))
