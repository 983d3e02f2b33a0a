"""Random sampling: the baseline every other strategy has to beat, and a safe cold-start choice."""

from __future__ import annotations

import numpy as np

from .base import TASK_TYPES, MissingOutputsError, ModelOutputs, QueryStrategy

# Random sampling only needs the pool size, so any one of these (whatever the task type) is enough.
_POOL_SIZED_FIELDS = ("proba", "embeddings", "label_proba", "token_proba", "token_mask")


class RandomSampling(QueryStrategy):
    """Uniform random informativeness ``u_i ~ U[0, 1)`` from ``numpy.random.default_rng(random_state)``.

    Lewis & Gale (1994), "A Sequential Algorithm for Training Text Classifiers", use random sampling
    as the passive-learning baseline.
    """

    name = "random"
    # Nothing in particular: ``query`` accepts whichever pool-sized field is present.
    requires = frozenset()
    task_types = frozenset(TASK_TYPES)

    def query(self, outputs: ModelOutputs) -> np.ndarray:
        if all(getattr(outputs, field) is None for field in _POOL_SIZED_FIELDS):
            raise MissingOutputsError(
                f"strategy {self.name!r} needs {' or '.join(_POOL_SIZED_FIELDS)} to know the pool size, "
                "and the model provided none of them"
            )
        return self._informativeness(outputs)

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        present = next(getattr(outputs, f) for f in _POOL_SIZED_FIELDS if getattr(outputs, f) is not None)
        return np.random.default_rng(self.random_state).random(len(present))
