"""Predicted difficulty: ask about the items the model is expected to get most wrong."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

from .base import ModelOutputs, QueryStrategy, as_array


class PredictedLoss(QueryStrategy):
    """Predicted loss: ``l_hat(x) = sum_j w_j l_j / sum_j w_j`` over the ``n_neighbors`` labeled items
    nearest to ``x`` in embedding space, ``w_j = 1 / ||x - x_j||``, ``l_j`` their out-of-fold losses.

    Yoo & Kweon (2019), "Learning Loss for Active Learning". The paper trains a loss-prediction head
    jointly with the model; here the backend supplies out-of-fold losses of the labeled tasks and a
    k-nearest-neighbour regressor stands in for that head. k-NN rather than a linear regressor because
    the labeled set is small next to the embedding width (tens of items, hundreds of dimensions): a
    linear fit would extrapolate noise, whereas a neighbour average stays within the observed losses,
    needs no scaling and is already meaningful with two labeled items.
    """

    name = "difficulty"
    requires = frozenset({"embeddings", "labeled_embeddings", "labeled_losses"})

    def __init__(
        self, *, n_neighbors: int = 5, batch_size: int = 10, random_state: int | None = None
    ) -> None:
        super().__init__(batch_size=batch_size, random_state=random_state)
        self.n_neighbors = n_neighbors

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        labeled = as_array(outputs.labeled_embeddings, 2, "labeled_embeddings")
        losses = as_array(outputs.labeled_losses, 1, "labeled_losses")
        pool = as_array(outputs.embeddings, 2, "embeddings")
        if len(labeled) != len(losses):
            raise ValueError(
                f"labeled_embeddings has {len(labeled)} rows but labeled_losses has {len(losses)} values"
            )
        if len(labeled) < 2:
            raise ValueError(
                f"strategy {self.name!r} needs at least 2 labeled tasks with out-of-fold losses to "
                f"predict difficulty, got {len(labeled)}; use another strategy until more are labeled"
            )
        if len(pool) == 0:  # scikit-learn refuses to predict for no rows
            return np.empty(0)
        regressor = KNeighborsRegressor(n_neighbors=min(self.n_neighbors, len(labeled)), weights="distance")
        return regressor.fit(labeled, losses).predict(pool)
