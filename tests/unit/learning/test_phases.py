"""The documented phases: cold start until a model can train, then the owner's strategy; owners can turn it off."""
import numpy as np
import pytest

from backend.core.settings import ProjectSettings
from backend.learning.phases import choose_phase, project_strategy
from strategies import MULTI_LABEL, SINGLE_LABEL


@pytest.mark.parametrize(
    "labels, phase",
    [
        ([], "cold_start"),
        ([0, 0, 0, 0, 0], "cold_start"),  # enough labels, one class: no classifier yet
        ([0, 1, 1], "cold_start"),  # two classes, under min_labels
        ([0, 1, 1, 0], "strategy"),
    ],
)
def test_cold_start_lasts_until_min_labels_in_two_classes(labels, phase):
    chosen, strategy, why = choose_phase(ProjectSettings(min_labels=4), np.array(labels, dtype=np.int64))
    assert chosen == phase and strategy == ("cold_start" if phase == "cold_start" else "margin")
    if phase == "cold_start":
        assert f"{len(labels)} labels" in why and "min_labels=4" in why and "'margin' takes over" in why


def test_owners_can_turn_the_phase_off_and_cold_start_as_strategy_needs_no_phase():
    few = np.array([0], dtype=np.int64)
    off = ProjectSettings.parse({"cold_start_phase": False}, {})
    assert choose_phase(off, few) == (
        "strategy", "margin", "strategy 'margin'; cold_start_phase is off, so nothing is ranked before the first model"
    )
    assert choose_phase(ProjectSettings(strategy="cold_start"), few)[0] == "strategy"
    assert ProjectSettings.parse(None, {"AL_COLD_START_PHASE": "false"}).cold_start_phase is False


@pytest.mark.parametrize(
    "labels, phase",
    [
        ([[0, 1, 0]] * 5, "cold_start"),  # enough labels, one label set
        ([[0, 1, 0], [1, 1, 0], [0, 0, 0]], "cold_start"),  # under min_labels
        ([[0, 1, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], "strategy"),
    ],
)
def test_multi_label_projects_train_once_two_distinct_label_sets_exist(labels, phase):
    chosen, strategy, _ = choose_phase(ProjectSettings(min_labels=4), np.array(labels, dtype=np.int64), MULTI_LABEL)
    assert chosen == phase
    assert strategy == ("cold_start" if phase == "cold_start" else "mean_binary_entropy")


def test_a_strategy_that_cannot_rank_the_task_type_gives_way_to_the_types_default_and_says_so():
    assert project_strategy(ProjectSettings(strategy="margin"), MULTI_LABEL) == (
        "mean_binary_entropy",
        "strategy 'mean_binary_entropy', the multi_label default: the setting 'margin' ranks only single_label tasks",
    )
    assert project_strategy(ProjectSettings(strategy="coreset"), MULTI_LABEL) == ("coreset", "strategy 'coreset'")
    assert project_strategy(ProjectSettings(strategy="margin"), SINGLE_LABEL) == ("margin", "strategy 'margin'")
