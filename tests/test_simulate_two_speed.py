"""al-simulate's two_speed mode: the worker's ``model_mode: finetune`` schedule, judged by the worker's own rules.

These run the real bundled encoder and a real fine-tune on tiny, easy inputs (a few seconds each on a CPU).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backend.core.exceptions import InputError
from backend.core.settings import ProjectSettings
from backend.learning.contest import MIN_JUDGED, contest, judge
from backend.learning.phases import finetune_due
from backend.simulation.cli import build_parser, config_from_args
from backend.simulation.dataset import Dataset
from backend.simulation.protocol import SimulationConfig
from backend.simulation.runner import simulate
from backend.simulation.two_speed import FullPathRun
from tests.test_simulate import WORDS, import_bench, tiny_rows

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_the_full_path_is_due_every_n_labels_counted_from_the_last_request():
    every = 50
    assert not finetune_due(49, 0, every) and finetune_due(50, 0, every)
    assert not finetune_due(99, 50, every) and finetune_due(100, 50, every)
    assert finetune_due(73, 20, every)  # labels arrive in batches: due as soon as the count passes


@pytest.fixture(scope="module")
def data():
    rows = tiny_rows(90)
    return Dataset([r["text"] for r in rows], [r["label"] for r in rows], sorted(WORDS))


def config(mode: str, **changes) -> SimulationConfig:
    return SimulationConfig(strategies=("margin",), seeds=(0,), initial=10, batch_size=10, rounds=3, mode=mode,
                            max_length=16, device="cpu", finetune_every=30, **changes)


def test_two_speed_runs_the_head_until_the_full_path_is_due_then_judges_it_like_the_worker(data):
    head = simulate(data, config("head"), progress=False)
    two_speed = simulate(data, config("two_speed"), progress=False)

    def without_seconds(rows):
        return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in rows]

    # Until 30 labels the two modes are the same head over the same encoder: the same picks and scores.
    before = [r for r in without_seconds(head.rows) if r["labels_used"] < 30]
    assert before == [r for r in without_seconds(two_speed.rows) if r["labels_used"] < 30] and len(before) == 2
    assert head.notes == []
    [note] = two_speed.notes
    assert note.startswith("margin seed 0, 30 labels: full path ")
    assert f"on {max(MIN_JUDGED, round(0.2 * 30))} held-out labels" in note
    assert [r["labels_used"] for r in two_speed.rows] == [10, 20, 30, 40]


def test_an_adopted_fine_tune_becomes_the_encoder_the_head_embeds_with(data):
    settings = config("two_speed").project_settings("margin", seed=0)
    from backend.models.frozen_classifier import FrozenEncoderClassifier

    base = FrozenEncoderClassifier(data.classes, settings)
    run = FullPathRun(list(data.classes), False, every=30)
    texts, y = data.texts[:30], data.y[:30]
    assert run.run_if_due(base, texts[:29], y[:29], data.texts) is None  # 29 labels: not due yet
    decision = run.run_if_due(base, texts, y, data.texts)
    # The easy classes leave both sides perfect on the held-out labels, and ties go to the fine-tune.
    assert decision["outcome"] == "adopted", decision
    assert decision["finetuned_accuracy"] == decision["baseline_accuracy"] == 1.0
    # The worker's full path decides with the same two functions on the same labels: the same verdict.
    _, finetuned_eval, baseline_eval = contest(FrozenEncoderClassifier(data.classes, settings), list(data.classes), False,
                                               settings, texts, y)
    assert judge(finetuned_eval, baseline_eval, len(y), 0) == (decision["outcome"], decision["reason"])
    adopted = run.head(base)
    assert adopted is not base and adopted.model_path != base.model_path
    assert not np.allclose(adopted.embed(texts[:3]), base.embed(texts[:3]), atol=1e-3)
    assert run.run_if_due(base, texts, y, data.texts) is None  # requested at 30: next due at 60


def test_the_full_path_lever_is_the_two_speed_mode_with_the_workers_schedule(monkeypatch):
    realistic = import_bench(monkeypatch, "realistic")
    lever = realistic.LEVERS["full_path"]
    simulated = dataclasses.replace(SimulationConfig(), **lever.settings)
    settings = simulated.project_settings("margin", seed=0)
    assert simulated.mode == "two_speed" and settings.model_mode == "head"
    assert settings.finetune_every == ProjectSettings().finetune_every == simulated.finetune_every
    assert lever.starts == ("cold_start",)


def test_the_cli_takes_two_speed_and_refuses_a_schedule_below_one_label(tmp_path):
    parse = build_parser().parse_args
    args = parse(["in.csv", "--mode", "two_speed", "--finetune-every", "20"])
    assert config_from_args(args).finetune_every == 20 and config_from_args(args).mode == "two_speed"
    with pytest.raises(InputError, match="--finetune-every must be at least 1"):
        config_from_args(parse(["in.csv", "--mode", "two_speed", "--finetune-every", "0"]))
