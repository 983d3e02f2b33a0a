"""The documented phases: cold start until a model can train, then the owner's strategy; owners can turn it off."""
import numpy as np
import pytest

from backend.phases import choose_phase
from backend.settings import ProjectSettings


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
    chosen, why = choose_phase(ProjectSettings(min_labels=4), np.array(labels, dtype=np.int64))
    assert chosen == phase
    if phase == "cold_start":
        assert f"{len(labels)} labels" in why and "min_labels=4" in why and "'margin' takes over" in why


def test_owners_can_turn_the_phase_off_and_cold_start_as_strategy_needs_no_phase():
    few = np.array([0], dtype=np.int64)
    off = ProjectSettings.parse({"cold_start_phase": False}, {})
    assert choose_phase(off, few) == ("strategy", "strategy 'margin'; cold_start_phase is off, so nothing is ranked before the first model")
    assert choose_phase(ProjectSettings(strategy="cold_start"), few)[0] == "strategy"
    assert ProjectSettings.parse(None, {"AL_COLD_START_PHASE": "false"}).cold_start_phase is False
