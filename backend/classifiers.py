"""Which classifier a ``model_mode`` builds (the simulation trains each mode as it is), and how versions save
and load one. The worker's versions are all heads over an encoder (``backend.jobs``); versions an older
release fine-tuned end to end still load."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from backend.finetune import FineTunedClassifier
from backend.frozen_head import FrozenEncoderClassifier
from backend.settings import ProjectSettings
from backend.training import TextClassifier

CLASSIFIERS: dict[str, type[TextClassifier]] = {
    "finetune": FineTunedClassifier,
    "head": FrozenEncoderClassifier,
}


def build_classifier(classes: Sequence[str], settings: ProjectSettings) -> TextClassifier:
    return CLASSIFIERS[settings.model_mode](classes, settings)


def save_classifier(classifier: TextClassifier, folder: Path) -> None:
    (folder / "classes.json").write_text(json.dumps(classifier.classes))
    classifier.save(folder)


def load_classifier(folder: Path, settings: ProjectSettings) -> TextClassifier:
    kind = FrozenEncoderClassifier if (folder / "head.npz").is_file() else FineTunedClassifier
    return kind.load(folder, settings)


