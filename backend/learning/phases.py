"""Which phase ranks a project's pool: the cold start until a model can train, then the owner's strategy; and
when the full path is due.

One rule for the worker and for ``al-simulate``, so a simulation replays what a project would get.
"""
from __future__ import annotations

import numpy as np

from backend.core.labels import distinct_labels
from backend.core.settings import ProjectSettings
from strategies import DEFAULT_STRATEGIES, NER, SINGLE_LABEL, STRATEGIES


def can_train(settings: ProjectSettings, labels: np.ndarray, task_type: str = SINGLE_LABEL) -> bool:
    """A classifier needs ``min_labels`` labels in at least 2 classes (multi-label: 2 distinct label sets).
    A tagger (NER: ``labels`` holds each labeled task's span count) needs ``min_labels`` labels and one span,
    so that its tokens hold an entity tag beside ``O``."""
    if task_type == NER:
        return len(labels) >= settings.min_labels and int(np.sum(labels)) >= 1
    return len(labels) >= settings.min_labels and distinct_labels(labels) >= 2


def _what_is_labeled(labels: np.ndarray, task_type: str) -> str:
    if task_type == NER:
        return f"{len(labels)} labels holding {int(np.sum(labels))} spans"
    return f"{len(labels)} labels in {distinct_labels(labels)} classes"


def project_strategy(settings: ProjectSettings, task_type: str = SINGLE_LABEL) -> tuple[str, str]:
    """The strategy that ranks this task type, and why: the owner's, or the type's default
    (``strategies.DEFAULT_STRATEGIES``) when the owner's cannot rank it; ``margin``, the default setting,
    reads single-label probabilities."""
    name = settings.strategy
    if task_type in STRATEGIES[name].task_types:
        return name, f"strategy {name!r}"
    fallback = DEFAULT_STRATEGIES[task_type]
    ranks = ", ".join(sorted(STRATEGIES[name].task_types))
    return fallback, f"strategy {fallback!r}, the {task_type} default: the setting {name!r} ranks only {ranks} tasks"


def choose_phase(settings: ProjectSettings, labels: np.ndarray, task_type: str = SINGLE_LABEL) -> tuple[str, str, str]:
    """``(phase, strategy name, why)``: the ``cold_start`` phase ranks the pool until the first model can
    train, then the ``strategy`` phase ranks it with ``project_strategy``."""
    name, why = project_strategy(settings, task_type)
    if can_train(settings, labels, task_type):
        return "strategy", name, why
    if name == "cold_start":
        return "strategy", name, "strategy 'cold_start' needs no labels"
    if not settings.cold_start_phase:
        return "strategy", name, f"{why}; cold_start_phase is off, so nothing is ranked before the first model"
    needed = "with a span" if task_type == NER else "in at least 2 classes"
    return "cold_start", "cold_start", (
        f"{_what_is_labeled(labels, task_type)}; cold_start ranks representative tasks until "
        f"min_labels={settings.min_labels} labels {needed} exist, then {name!r} takes over"
    )


def finetune_due(n_labels: int, requested_at: int, every: int) -> bool:
    """The full path's schedule, for the worker and the simulation alike: due once ``every`` labels arrived
    since the last request (``requested_at`` labels; 0 before the first, so first at ``every`` labels)."""
    return n_labels >= requested_at + every
