"""The dashboard's strategy advice: which lines a project gets, from its strategy, settings and labels."""
import html

import pytest

from backend.web.advice import (
    CHECK,
    CHECK_BY_TASK_TYPE,
    COLD_START_OFF,
    FULL_PATH_NOTES,
    HONEST_BY_TASK_TYPE,
    NOTES_BY_TASK_TYPE,
    STRATEGY_NOTES,
    rare_classes,
    strategy_advice,
)
from backend.web.dashboard import render_dashboard
from strategies import DEFAULT_STRATEGIES, STRATEGY_NAMES, strategies_for


def test_notes_name_only_registered_strategies_of_their_task_type():
    assert set(STRATEGY_NOTES) <= set(STRATEGY_NAMES)
    for task_type, notes in NOTES_BY_TASK_TYPE.items():
        assert set(notes) <= set(strategies_for(task_type))


@pytest.mark.parametrize("task_type", ["multi_label", "ner"])
def test_multi_label_and_ner_projects_get_their_own_benchmark_lines_and_no_single_label_advice(task_type):
    default = DEFAULT_STRATEGIES[task_type]
    lines = strategy_advice(default, {"a": 50, "b": 1}, task_type=task_type)
    assert lines == [HONEST_BY_TASK_TYPE[task_type], NOTES_BY_TASK_TYPE[task_type][default], CHECK_BY_TASK_TYPE[task_type]]
    assert "not benchmarked" in strategy_advice("coreset", None, task_type=task_type)[1]
    assert COLD_START_OFF in strategy_advice(default, None, cold_start_phase=False, task_type=task_type)


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_gets_the_honest_line_its_own_line_and_the_way_to_check(strategy):
    lines = strategy_advice(strategy, {"a": 30, "b": 30})
    assert lines[0].startswith("What to expect") and lines[-1] == CHECK
    assert lines[1] == STRATEGY_NOTES[strategy] if strategy in STRATEGY_NOTES else "not benchmarked" in lines[1]
    assert strategy in lines[1]


def test_a_rare_class_suggests_balanced_margin_and_an_unlabeled_class_counts_as_rare():
    lines = strategy_advice("margin", {"fresh": 50, "rotten": 45, "plot": 3, "other": 0})
    rare = [line for line in lines if "keep being asked about" in line]
    assert len(rare) == 1 and rare[0].startswith("plot, other each hold under 10%")
    assert rare_classes({"a": 9, "b": 1}) == []  # too few labels to tell
    assert not any("keep being asked about" in line for line in strategy_advice("balanced_margin", {"a": 50, "b": 2}))


def test_the_cold_start_phase_switched_off_is_pointed_out():
    assert COLD_START_OFF in strategy_advice("margin", None, cold_start_phase=False)
    assert COLD_START_OFF not in strategy_advice("margin", None)


def test_the_dashboard_shows_the_advice_for_the_project_escaped():
    status = {"settings": {"strategy": "coreset", "cold_start_phase": False}}
    history = [{"version": "v1", "n_labeled": 40, "label_counts": {"<b>x</b>": 1, "y": 39}}]
    page = render_dashboard(3, status, history, [])
    assert STRATEGY_NOTES["coreset"] in page and COLD_START_OFF in page
    assert "&lt;b&gt;x&lt;/b&gt; holds under 10%" in page and "<b>x</b>" not in page


@pytest.mark.parametrize(("model_mode", "method", "note"), [
    ("head", "classifier", "head"), ("head", "setfit", "head"),
    ("finetune", "classifier", "classifier"), ("finetune", "setfit", "setfit"),
])
def test_single_label_projects_hear_what_their_full_path_measured(model_mode, method, note):
    lines = strategy_advice("margin", None, model_mode=model_mode, finetune_method=method)
    assert lines[2] == FULL_PATH_NOTES[note]
    assert not any(FULL_PATH_NOTES[other] in lines for other in FULL_PATH_NOTES if other != note)
    assert not set(FULL_PATH_NOTES.values()) & set(strategy_advice("mnlp", None, task_type="ner", model_mode=model_mode))


def test_the_dashboard_shows_the_full_path_note_of_the_projects_settings():
    status = {"settings": {"strategy": "margin", "model_mode": "finetune", "finetune_method": "setfit"}}
    page = render_dashboard(3, status, [{"version": "v1", "n_labeled": 40, "label_counts": {"a": 20, "b": 20}}], [])
    assert html.escape(FULL_PATH_NOTES["setfit"]) in page and html.escape(FULL_PATH_NOTES["classifier"]) not in page
