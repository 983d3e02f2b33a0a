"""Which phase ranks a project's pool: the cold start until a model can train, then the owner's strategy.

One rule for the worker and for ``al-simulate``, so a simulation replays what a project would get.
"""
from __future__ import annotations

import numpy as np

from backend.settings import ProjectSettings


def can_train(settings: ProjectSettings, labels: np.ndarray) -> bool:
    """A classifier needs ``min_labels`` labels in at least 2 classes."""
    return len(labels) >= settings.min_labels and len(set(labels.tolist())) >= 2


def choose_phase(settings: ProjectSettings, labels: np.ndarray) -> tuple[str, str]:
    """``("cold_start" | "strategy", why)``: cold start ranks the pool until the first model can train."""
    name = settings.strategy
    if can_train(settings, labels):
        return "strategy", f"strategy {name!r}"
    if name == "cold_start":
        return "strategy", "strategy 'cold_start' needs no labels"
    if not settings.cold_start_phase:
        return "strategy", f"strategy {name!r}; cold_start_phase is off, so nothing is ranked before the first model"
    return "cold_start", (
        f"{len(labels)} labels in {len(set(labels.tolist()))} classes; cold_start ranks representative tasks until "
        f"min_labels={settings.min_labels} labels in at least 2 classes exist, then {name!r} takes over"
    )
