"""The calibrated head measured as a label-efficiency lever (issue 11): ``head_regularization: cv``."""
import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_score

from backend.core.exceptions import SettingsError
from backend.core.settings import ProjectSettings
from backend.models.families import build_classifier, load_classifier, save_classifier
from backend.models.logistic_head import (
    C_GRID,
    DEFAULT_C,
    choose_c,
    fit_head,
    head_estimator,
)
from backend.simulation.cli import build_parser, config_from_args
from backend.simulation.protocol import SimulationConfig


def blobs(seed: int, n_per_class: int = 12, spread: float = 2.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 8))
    X = np.vstack([centre + spread * rng.normal(size=(n_per_class, 8)) for centre in centres])
    return X, np.repeat(np.arange(3), n_per_class)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_chosen_c_has_the_best_cross_validated_log_loss_of_the_grid(seed):
    X, y = blobs(seed)
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    loss = {C: -cross_val_score(head_estimator(seed, C), X, y, cv=cv, scoring="neg_log_loss").mean() for C in C_GRID}
    chosen = choose_c(X, y, seed)
    assert chosen in C_GRID
    # LogisticRegressionCV warm-starts along the grid: the same optima up to the solver's tolerance.
    assert loss[chosen] <= min(loss.values()) + 1e-3


def test_noisy_labels_get_stronger_regularisation_than_separable_ones():
    X, y = blobs(0, n_per_class=20, spread=0.05)
    noisy = np.random.default_rng(0).permutation(y)
    assert choose_c(X, noisy, 0) < choose_c(X, y, 0)


def test_a_class_with_one_label_keeps_the_default_c():
    X, y = blobs(0)
    y = y.copy()
    y[0] = 3  # a fourth class seen once: no stratified fold can hold it out
    assert choose_c(X, y, 0) == DEFAULT_C


def test_the_cv_head_is_deterministic_under_a_seed_and_fixed_is_the_default_c():
    X, y = blobs(1)
    first, again = fit_head(X, y, 7, "cv"), fit_head(X, y, 7, "cv")
    np.testing.assert_array_equal(first.coef_, again.coef_)
    assert first.C == choose_c(X, y, 7)
    assert fit_head(X, y, 7).C == DEFAULT_C
    with pytest.raises(ValueError, match="regularization"):
        fit_head(X, y, 7, "auto")


def test_the_setting_is_validated_with_its_valid_values():
    assert ProjectSettings.parse({"head_regularization": "cv"}).head_regularization == "cv"
    with pytest.raises(SettingsError, match="head_regularization.*fixed.*cv"):
        ProjectSettings.parse({"head_regularization": "auto"})


TEXTS = ["great movie", "awful film", "loved it", "hated it", "wonderful acting", "terrible plot", "a joy", "a bore"]
Y = np.array([0, 1, 0, 1, 0, 1, 0, 1])


def test_the_worker_classifier_and_al_simulate_fit_the_same_cv_head(tmp_path):
    """The worker builds its classifier from ProjectSettings; al-simulate builds the same settings from its flag."""
    args = build_parser().parse_args(["data.csv", "--head-regularization", "cv"])
    settings = config_from_args(args).project_settings("margin", seed=3)
    assert settings.head_regularization == "cv"
    assert SimulationConfig().project_settings("margin", seed=3).head_regularization == "fixed"

    classifier = build_classifier(["pos", "neg"], ProjectSettings(model_mode="head", max_length=16, seed=3,
                                                                  head_regularization="cv")).fit(TEXTS, Y)
    assert classifier.head.C == choose_c(classifier.train_X, Y, 3)
    save_classifier(classifier, tmp_path)
    reloaded = load_classifier(tmp_path, classifier.settings)
    assert reloaded.head.C == classifier.head.C  # the committee refits members with the head's C
    np.testing.assert_allclose(reloaded.predict_proba(TEXTS), classifier.predict_proba(TEXTS), atol=1e-6)
