"""The full path's SetFit method: a real contrastive update of the bundled encoder on a few easy labels."""
from __future__ import annotations

import numpy as np
import pytest

from backend.core.exceptions import SettingsError, Skip
from backend.core.settings import ProjectSettings
from backend.learning.contest import SETFIT_SINGLE_LABEL, tuned_classifier
from backend.models.finetuned_classifier import FineTunedClassifier
from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.models.setfit_classifier import NUM_ITERATIONS, SetFitClassifier

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning")

WORDS = {
    "food": ["pizza", "pasta", "salad", "bread", "cheese", "soup"],
    "sport": ["goal", "match", "team", "score", "league", "coach"],
    "tech": ["laptop", "chip", "software", "server", "code", "robot"],
}
CLASSES = sorted(WORDS)


def texts_of(per_class: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, y = [], []
    for i in range(per_class):
        for label, name in enumerate(CLASSES):
            texts.append(" ".join(rng.choice(WORDS[name], size=4)) + f" item {i}")
            y.append(label)
    return texts, np.array(y)


def settings(**changes) -> ProjectSettings:
    return ProjectSettings(**{"max_length": 16, "device": "cpu", "finetune_method": "setfit", **changes})


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    texts, y = texts_of(2, seed=0)
    return SetFitClassifier(CLASSES, settings()).fit(texts, y), texts


def test_setfit_moves_the_encoder_and_fits_the_fast_paths_head_over_it(tuned):
    classifier, texts = tuned
    base = FrozenEncoderClassifier(CLASSES, settings())
    assert not np.allclose(classifier.embed(texts), base.embed(texts), atol=1e-3)
    held_texts, held_y = texts_of(4, seed=1)
    assert (classifier.decide(classifier.predict_proba(held_texts)) == held_y).mean() >= 0.9
    # Contrastive training pulls a class together: same-class texts sit closer than other-class texts.
    vectors = classifier.embed(held_texts)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit.T
    same = held_y[:, None] == held_y[None, :]
    np.fill_diagonal(same, False)
    assert cosine[same].mean() > cosine[~same & ~np.eye(len(held_y), dtype=bool)].mean()


def test_the_saved_encoder_embeds_as_the_tuned_one_when_the_fast_path_loads_it(tuned, tmp_path):
    classifier, texts = tuned
    classifier.save_encoder(tmp_path)
    adopted = FrozenEncoderClassifier(CLASSES, settings(), model_path=str(tmp_path))
    np.testing.assert_allclose(adopted.embed(texts), classifier.embed(texts), atol=1e-5)


def test_setfit_training_is_deterministic_under_the_seed(tuned):
    classifier, texts = tuned
    again = SetFitClassifier(CLASSES, settings()).fit(texts, texts_of(2, seed=0)[1])
    np.testing.assert_allclose(again.embed(texts), classifier.embed(texts), atol=1e-5)
    assert NUM_ITERATIONS == 20  # the paper's recipe: 20 positive and 20 negative pairs per label


def test_the_method_setting_picks_the_trainer_and_refuses_what_it_cannot_tune():
    assert isinstance(tuned_classifier(CLASSES, False, settings()), SetFitClassifier)
    assert isinstance(tuned_classifier(CLASSES, False, settings(finetune_method="classifier")), FineTunedClassifier)
    with pytest.raises(Skip, match="single-label projects only"):
        tuned_classifier(CLASSES, True, settings())
    assert "finetune_method: classifier" in SETFIT_SINGLE_LABEL
    with pytest.raises(SettingsError, match="finetune_method"):
        ProjectSettings(finetune_method="prompt")
    assert ProjectSettings.parse({"finetune_method": "setfit"}).finetune_method == "setfit"
