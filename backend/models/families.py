"""Which classifier a ``model_mode`` builds (the simulation trains each mode as it is), and how versions save
and load one. The worker's versions are all heads over an encoder (``backend.jobs.retrain``); versions an older
release fine-tuned end to end still load."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from backend.core.labels import LabelSpec
from backend.core.settings import ProjectSettings
from backend.models.base import TextClassifier
from backend.models.finetuned_classifier import FineTunedClassifier
from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.models.frozen_multilabel import FrozenEncoderMultiLabelClassifier
from backend.models.span_tagger import SpanTagger
from strategies import MULTI_LABEL, NER, SINGLE_LABEL


def build_classifier(
    classes: Sequence[str], settings: ProjectSettings, multi_label: bool = False, model_path: str | None = None
) -> TextClassifier:
    """``model_path``: the encoder to start from or to embed with (default: ``settings.model_name``)."""
    if settings.model_mode == "finetune":
        return FineTunedClassifier(classes, settings, model_path=model_path, multi_label=multi_label)
    return (FrozenEncoderMultiLabelClassifier if multi_label else FrozenEncoderClassifier)(classes, settings, model_path=model_path)


def head_classifier(spec: LabelSpec, settings: ProjectSettings, model_path: str | None = None) -> FrozenEncoderClassifier:
    """The fast path's classifier for the config's task type: a head over the encoder at ``model_path``."""
    kind = {SINGLE_LABEL: FrozenEncoderClassifier, MULTI_LABEL: FrozenEncoderMultiLabelClassifier, NER: SpanTagger}[spec.task_type]
    return kind(spec.classes, settings, model_path=model_path)


def save_classifier(classifier: TextClassifier, folder: Path) -> None:
    (folder / "classes.json").write_text(json.dumps(classifier.classes))
    classifier.save(folder)


#: Every family a version may hold, told apart by the file each one saves.
SAVED_FAMILIES = (FrozenEncoderMultiLabelClassifier, SpanTagger, FrozenEncoderClassifier, FineTunedClassifier)


def load_classifier(folder: Path, settings: ProjectSettings) -> TextClassifier:
    for family in SAVED_FAMILIES:
        if (folder / family.saved_file).exists():
            return family.load(folder, settings)
    raise FileNotFoundError(f"{folder} holds no saved classifier (none of {', '.join(f.saved_file for f in SAVED_FAMILIES)})")


