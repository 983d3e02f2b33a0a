"""The multi-label model: one-vs-rest sigmoid heads, tuned thresholds, its evaluation and its strategy inputs."""
import numpy as np
import pytest

from backend.core.labels import label_sets
from backend.core.settings import ProjectSettings
from backend.learning.evaluation import cross_validated_multilabel_head
from backend.learning.scoring import collect_outputs
from backend.models.families import build_classifier, load_classifier, save_classifier
from backend.models.multilabel_head import (
    DEFAULT_THRESHOLD,
    fit_multilabel_head,
    tune_thresholds,
)
from strategies import make_strategy

LABELS = ["sport", "politics", "tech"]
TEXTS = ["the match ended in a draw", "parliament passed the bill", "the new phone has a fast chip",
         "the minister opened the stadium", "a startup sells football analytics", "votes were counted overnight"]
Y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 0]])


def separable(n=60, seed=0):
    """Label l is on exactly when feature l is positive."""
    X = np.random.default_rng(seed).normal(size=(n, 4))
    return X, (X[:, :3] > 0).astype(np.int64)


def test_each_label_is_its_own_sigmoid_and_a_constant_label_stays_constant():
    X, Y3 = separable()
    Y4 = np.hstack([Y3, np.zeros((len(Y3), 1), dtype=np.int64)])  # a label nobody gave
    head = fit_multilabel_head(X, Y4, seed=0)
    proba = head.predict_proba(X)
    assert proba.shape == (60, 4) and ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(1), 1.0)  # independent labels, not a distribution
    assert proba[:, 3].max() < 1e-6
    chosen, _ = label_sets(proba, head.thresholds)
    assert (chosen[:, :3] == Y3.astype(bool)).mean() > 0.95


def test_thresholds_maximise_out_of_fold_f1_and_fall_back_to_one_half_without_evidence():
    Y1 = np.array([[1], [1], [1], [0], [0], [0], [0], [0], [0], [0]])
    proba = np.array([[0.35], [0.3], [0.32], [0.2], [0.1], [0.05], [0.25], [0.15], [0.12], [0.01]])
    # Every positive lies above every negative only from 0.3 on: F1 = 1 there, and 0.3 is the closest such to 0.5.
    assert tune_thresholds(Y1, proba)[0] == pytest.approx(0.3)
    assert tune_thresholds(Y1[:9], proba[:9])[0] == DEFAULT_THRESHOLD  # under MIN_TUNING_LABELS
    one_positive = np.array([[1]] + [[0]] * 11)
    assert tune_thresholds(one_positive, np.linspace(0, 1, 12)[:, None])[0] == DEFAULT_THRESHOLD
    assert tune_thresholds(Y1, None)[0] == DEFAULT_THRESHOLD


def test_cross_validation_reports_subset_accuracy_and_micro_f1():
    X, Y3 = separable(80)
    evaluation = cross_validated_multilabel_head(X, Y3, seed=0)
    assert evaluation.n_eval == 80 and evaluation.note == "5-fold cross-validation"
    assert 0.7 < evaluation.accuracy <= evaluation.f1_micro <= 1.0
    assert cross_validated_multilabel_head(X[:3], Y3[:3], seed=0).accuracy is None


@pytest.mark.parametrize("mode", ["head", "finetune"])
def test_both_model_modes_train_on_label_sets_and_save_and_load(mode, tmp_path):
    settings = ProjectSettings(model_mode=mode, epochs=1, batch_size=4, max_length=16)
    classifier = build_classifier(LABELS, settings, multi_label=True).fit(TEXTS, Y)
    proba = classifier.predict_proba(TEXTS[:3])
    assert classifier.multi_label and classifier.output_field == "label_proba"
    assert proba.shape == (3, 3) and ((proba >= 0) & (proba <= 1)).all()
    assert classifier.decide(proba).shape == (3, 3)
    save_classifier(classifier, tmp_path)
    loaded = load_classifier(tmp_path, settings)
    assert loaded.multi_label and np.allclose(loaded.thresholds, classifier.thresholds)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS[:3]), proba, atol=1e-5)


def test_multi_label_strategies_get_the_label_probabilities_and_the_labeled_sets():
    classifier = build_classifier(LABELS, ProjectSettings(model_mode="head", max_length=16), multi_label=True).fit(TEXTS, Y)
    pool = ["a tennis final", "a budget vote", "a chip shortage"]
    outputs = collect_outputs(classifier, make_strategy("label_cardinality_inconsistency"), pool, TEXTS, Y, committee_size=2, seed=0)
    assert outputs.proba is None and outputs.label_proba.shape == (3, 3)
    np.testing.assert_array_equal(outputs.labeled_targets, Y)
    assert make_strategy("mean_binary_entropy").query(outputs).shape == (3,)


def test_the_full_path_holds_out_multi_label_tasks_without_stratifying():
    from backend.learning.contest import judging_split

    Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 5)
    train, held = judging_split(Y, ProjectSettings(eval_fraction=0.25, min_labels=4))
    assert len(held) == 5 and len(train) == 15 and not set(train) & set(held)


def test_cv_regularisation_picks_the_grid_c_with_the_lowest_out_of_fold_log_loss():
    from sklearn.metrics import log_loss

    from backend.models.logistic_head import C_GRID
    from backend.models.multilabel_head import choose_multilabel_c, out_of_fold_proba

    X, Y3 = separable(40, seed=1)
    X = X + np.random.default_rng(2).normal(scale=2.0, size=X.shape)  # noisy, so the grid values differ

    def loss(C):
        proba = np.clip(out_of_fold_proba(X, Y3, 0, C), 1e-12, 1 - 1e-12)
        return np.mean([log_loss(Y3[:, k], proba[:, k], labels=[0, 1]) for k in range(3)])

    chosen = choose_multilabel_c(X, Y3, seed=0)
    assert chosen in C_GRID and loss(chosen) == min(loss(C) for C in C_GRID)
    assert choose_multilabel_c(X[:9], Y3[:9], seed=0) == 10.0  # too few labels: the default
    settings = ProjectSettings(model_mode="head", max_length=16, head_regularization="cv")
    classifier = build_classifier(LABELS, settings, multi_label=True).fit(TEXTS * 2, np.vstack([Y, Y]))
    assert classifier.head.C in C_GRID
