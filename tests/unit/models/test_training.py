"""The CPU path of both model modes, with the bundled model (tiny settings keep it fast)."""
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from backend.core.exceptions import SettingsError, StrategyUnavailable
from backend.core.settings import ProjectSettings
from backend.learning.evaluation import (
    cross_validated_head,
    holdout_evaluation,
    holdout_split,
    out_of_fold_losses,
)
from backend.learning.scoring import collect_outputs
from backend.models.devices import (
    autocast_for,
    cpu_has_native_bf16,
    inference_autocast,
    inference_precision,
    select_device,
)
from backend.models.families import build_classifier, load_classifier, save_classifier
from backend.models.logistic_head import head_estimator
from strategies import make_strategy

TEXTS = ["great movie", "awful film", "loved it", "hated it", "wonderful acting", "terrible plot", "a joy", "a bore"]
Y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
CLASSES = ["pos", "neg", "meh"]  # a class nobody labeled yet still gets a column


def tiny(mode, **overrides):
    return ProjectSettings(model_mode=mode, epochs=1, batch_size=4, max_length=16, **overrides)


@pytest.mark.parametrize("mode", ["finetune", "head"])
def test_fit_predict_save_load_round_trip(mode, tmp_path):
    classifier = build_classifier(CLASSES, tiny(mode)).fit(TEXTS, Y)
    proba = classifier.predict_proba(["superb", "dreadful"])
    assert proba.shape == (2, 3) and np.allclose(proba.sum(1), 1.0)
    assert classifier.embed(TEXTS[:3]).shape == (3, 384)
    committee = classifier.committee_proba(TEXTS[:3], 4)
    assert committee.shape == (4, 3, 3) and np.allclose(committee.sum(-1), 1.0)
    save_classifier(classifier, tmp_path)
    reloaded = load_classifier(tmp_path, tiny(mode))
    assert reloaded.classes == CLASSES
    np.testing.assert_allclose(reloaded.predict_proba(["superb", "dreadful"]), proba, atol=1e-5)


def test_mc_dropout_members_differ_but_eval_is_deterministic():
    classifier = build_classifier(CLASSES, tiny("finetune")).fit(TEXTS, Y)
    committee = classifier.committee_proba(TEXTS, 3)
    assert not np.allclose(committee[0], committee[1])  # dropout on: members disagree
    np.testing.assert_array_equal(classifier.predict_proba(TEXTS), classifier.predict_proba(TEXTS))


def test_progress_is_reported_during_training():
    seen = []
    build_classifier(CLASSES, tiny("finetune")).fit(TEXTS, Y, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen[-1] == ("train", 2, 2)


def test_cpu_runs_in_float32_and_cuda_is_refused_without_a_gpu():
    assert select_device("cpu") == torch.device("cpu")
    assert isinstance(autocast_for(torch.device("cpu")), nullcontext)
    if torch.cuda.is_available():
        assert select_device("auto").type == "cuda"
        assert isinstance(autocast_for(torch.device("cuda")), torch.autocast)
    else:
        assert select_device("auto") == torch.device("cpu")
        with pytest.raises(SettingsError, match="no CUDA GPU is visible"):
            select_device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_cpu_inference_runs_in_bf16_only_where_the_hardware_multiplies_it(native, monkeypatch):
    # The hardware cannot be swapped in a test: its two capability probes are.
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: native, raising=False)
    cpu = torch.device("cpu")
    assert cpu_has_native_bf16() is native
    if native:
        assert inference_precision(cpu) == "bfloat16"
        context = inference_autocast(cpu)
        assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
    else:
        assert inference_precision(cpu) == "float32" and isinstance(inference_autocast(cpu), nullcontext)


def test_bf16_embeddings_match_float32_ones_and_are_cached_apart(monkeypatch):
    classifier = build_classifier(CLASSES, tiny("head"))
    vectors, prints = {}, {}
    for native in (True, False):
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            monkeypatch.setattr(torch.cpu, probe, lambda native=native: native, raising=False)
        vectors[native], prints[native] = classifier.encode(TEXTS), classifier.fingerprint
    cosine = (vectors[True] * vectors[False]).sum(1) / np.linalg.norm(vectors[True], axis=1) / np.linalg.norm(vectors[False], axis=1)
    assert cosine.min() > 0.999 and not np.array_equal(vectors[True], vectors[False])
    assert prints[True] != prints[False]


def test_holdout_is_stratified_and_refuses_too_few_labels():
    train, held = holdout_split(Y, 0.25, seed=0)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(len(Y)))
    assert sorted(Y[held].tolist()) == [0, 1]
    assert holdout_split(np.array([0, 1]), 0.2, seed=0) is None  # nothing left to hold out


def test_the_cross_validated_head_is_sklearns_cross_val_predict_of_the_same_head():
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 2] * 6)
    X = rng.normal(size=(18, 5)) + y[:, None]
    evaluation = cross_validated_head(X, y, seed=3)
    expected = cross_val_predict(head_estimator(3), X, y, cv=StratifiedKFold(5, shuffle=True, random_state=3))
    assert evaluation.accuracy == pytest.approx(accuracy_score(y, expected))
    assert evaluation.f1_macro == pytest.approx(f1_score(y, expected, average="macro"))
    assert evaluation.n_eval == 18 and "5-fold" in evaluation.note
    too_few = cross_validated_head(X[:3], np.array([0, 1, 1]), seed=0)
    assert too_few.accuracy is None and "too few" in too_few.note
    # A class with one label is scored too, as the error it is for a head that never saw the class.
    lone = cross_validated_head(X[:7], np.array([0, 1, 2, 0, 1, 0, 1]), seed=0)
    assert lone.n_eval == 7 and lone.accuracy is not None and "3-fold" in lone.note
    # 6 labels over 5 classes (the first labels of a BBC project): as many folds as the commonest class has labels.
    spread = cross_validated_head(X[:6], np.array([0, 1, 2, 3, 4, 0]), seed=0)
    assert spread.n_eval == 6 and "2-fold" in spread.note


def test_holdout_evaluation_scores_the_argmax_a_single_label_classifier_decides():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    predicted = build_classifier(CLASSES, tiny("head")).decide(proba)
    assert predicted.tolist() == [0, 1, 0]
    evaluation = holdout_evaluation(np.array([0, 1, 1]), predicted, n_train=7)
    assert (evaluation.n_train, evaluation.n_eval, evaluation.accuracy) == (7, 3, pytest.approx(2 / 3))


def test_out_of_fold_losses_are_per_label_and_positive():
    X = np.random.default_rng(0).normal(size=(10, 4))
    y = np.array([0, 1] * 5)
    losses = out_of_fold_losses(X, y, seed=0)
    assert losses.shape == (10,) and (losses > 0).all()
    with pytest.raises(ValueError, match="at least 2 labels in each"):
        out_of_fold_losses(X[:3], np.array([0, 1, 1]), seed=0)


def test_strategy_outputs_are_collected_or_refused_with_the_reason():
    classifier = build_classifier(CLASSES, tiny("head")).fit(TEXTS, Y)
    pool = ["fine", "bad", "ok"]
    outputs = collect_outputs(classifier, make_strategy("difficulty"), pool, TEXTS, Y, committee_size=3, seed=0)
    assert outputs.embeddings.shape == (3, 384) and outputs.labeled_losses.shape == (8,)
    assert outputs.proba is None  # computed only when needed
    with pytest.raises(StrategyUnavailable, match="difficulty"):
        collect_outputs(classifier, make_strategy("difficulty"), pool, TEXTS[:3], Y[:3], committee_size=3, seed=0)
    committee = collect_outputs(classifier, make_strategy("bald"), pool, TEXTS, Y, committee_size=3, seed=0)
    assert committee.committee_proba.shape == (3, 3, 3)


def test_the_head_is_warm_started_by_a_linear_probe():
    """LP-FT: before any gradient step the head already separates the labeled examples."""
    classifier = build_classifier(CLASSES, tiny("finetune"))
    classifier._warm_start_head(TEXTS, Y)
    proba = classifier.predict_proba(TEXTS)
    assert (proba.argmax(1) == Y).all()
    assert proba[:, 2].max() < 0.05  # the class nobody labeled starts improbable
