"""What both label-efficiency protocols simulate on: a dataset's cached embeddings, the simulation settings of
a loop, and a classifier that is the worker's own, pre-filled with those embeddings."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import embed_cache  # noqa: E402

from backend.simulation.cli import check_fits  # noqa: E402
from backend.simulation.dataset import Dataset, checked  # noqa: E402
from backend.simulation.protocol import SimulationConfig  # noqa: E402

TEST_FRACTION = 0.2


def dataset_and_config(name: str, seeds: tuple[int, ...], strategies: tuple[str, ...], loop: dict):
    """``loop``: ``initial``, ``batch_size``, ``rounds`` and optionally ``initial_strategy`` (default stratified)."""
    embed_cache.build(name)
    cache = embed_cache.load_cache(name)
    texts, labels = [str(t) for t in cache["texts"]], [str(label) for label in cache["labels"]]
    data = checked(Dataset(texts, labels, sorted(set(labels)), source=name))
    config = SimulationConfig(
        strategies=strategies, seeds=seeds, initial=loop["initial"], batch_size=loop["batch_size"],
        rounds=loop["rounds"], test_fraction=TEST_FRACTION, mode="head", max_length=int(cache["max_length"]),
        device="cpu", initial_strategy=loop.get("initial_strategy", "stratified"),
    )
    check_fits(data, config)
    return cache, data, config


def classifier_factory(data, cache, encoder_holder: dict):
    from backend.models.frozen_classifier import FrozenEncoderClassifier

    def make_classifier(settings):
        # One encoder load for the whole benchmark; the embedding cache is pre-filled with the cached vectors,
        # so fit/predict/embed below are the worker's FrozenEncoderClassifier methods on identical inputs.
        if "model" not in encoder_holder:
            encoder_holder["model"] = FrozenEncoderClassifier(data.classes, settings)
        classifier = encoder_holder["model"]
        classifier.classes = list(data.classes)
        classifier.settings = settings
        classifier.head = None
        classifier._cache = dict(zip(data.texts, cache["embeddings"]))
        return classifier

    return make_classifier
