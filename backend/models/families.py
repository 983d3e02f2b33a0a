"""Which classifier a ``model_mode`` builds (the simulation trains each mode as it is), and how versions save
and load one. The worker's versions are all heads over an encoder (``backend.jobs.retrain``); versions an older
release fine-tuned end to end still load."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from backend.models.finetuned_classifier import FineTunedClassifier
from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.models.frozen_multilabel import FrozenEncoderMultiLabelClassifier
from backend.core.labels import LabelSpec
from backend.core.settings import ProjectSettings
from backend.models.span_tagger import SpanTagger
from backend.models.base import TextClassifier
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


def load_classifier(folder: Path, settings: ProjectSettings) -> TextClassifier:
    if (folder / "multilabel_head.npz").is_file():
        return FrozenEncoderMultiLabelClassifier.load(folder, settings)
    if (folder / "token_head.npz").is_file():
        return SpanTagger.load(folder, settings)
    kind = FrozenEncoderClassifier if (folder / "head.npz").is_file() else FineTunedClassifier
    return kind.load(folder, settings)


