"""Embed each benchmark dataset once with the backend's frozen encoder and cache it in bench/.cache.

The embeddings come from ``FrozenEncoderClassifier.embed`` (the worker's "head" mode code), so the
simulation that later reuses them sees exactly what the worker would compute. The cache file holds the
(subsampled) texts, labels and embeddings, and is what both our strategies and small-text read.

    python bench/embed_cache.py [bbc rotten spam]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpora  # noqa: E402  (bench/corpora.py)

#: Pool subsample size (None = all) and encoder max_length per dataset.
CONFIG = {
    "bbc": {"limit": None, "max_length": 256},
    "rotten": {"limit": 3000, "max_length": 128},
    "spam": {"limit": 2000, "max_length": 128},
    "rotten3": {"limit": 3000, "max_length": 128},
}
SUBSAMPLE_SEED = 0


def cache_path(name: str) -> Path:
    cfg = CONFIG[name]
    return corpora.CACHE / f"emb-{name}-n{cfg['limit'] or 'all'}-L{cfg['max_length']}.npz"


def stratified_subsample(labels: list[str], limit: int | None, seed: int) -> np.ndarray:
    """Indices of a class-stratified random subsample, returned in original order."""
    n = len(labels)
    if limit is None or limit >= n:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(n), train_size=limit, stratify=np.asarray(labels), random_state=seed)
    return np.sort(keep)


def build(name: str) -> Path:
    path = cache_path(name)
    if path.exists():
        print(f"[{name}] cached: {path}", flush=True)
        return path
    from backend.core.settings import ProjectSettings
    from backend.models.frozen_classifier import FrozenEncoderClassifier

    texts, labels = corpora.load(name)
    keep = stratified_subsample(labels, CONFIG[name]["limit"], SUBSAMPLE_SEED)
    texts = [texts[i] for i in keep]
    labels = [labels[i] for i in keep]
    classes = sorted(set(labels))
    settings = ProjectSettings(model_mode="head", max_length=CONFIG[name]["max_length"], batch_size=32, device="cpu")
    encoder = FrozenEncoderClassifier(classes, settings)
    # Embed longest-first so each batch pads to similar lengths (same vectors, less padding work).
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    started = time.perf_counter()
    done = [0]

    def progress(stage, current, total):
        if current - done[0] >= 320 or current == total:
            done[0] = current
            print(f"[{name}] {stage} {current}/{total} {time.perf_counter() - started:.0f}s", flush=True)

    encoder.embed([texts[i] for i in order], progress)
    embeddings = encoder.embed(texts)
    np.savez_compressed(
        path,
        texts=np.array(texts, dtype=object),
        labels=np.array(labels),
        embeddings=embeddings.astype(np.float32),
        max_length=CONFIG[name]["max_length"],
        embed_seconds=time.perf_counter() - started,
    )
    print(f"[{name}] wrote {path} ({len(texts)} docs, {time.perf_counter() - started:.0f}s)", flush=True)
    return path


def load_cache(name: str) -> dict:
    with np.load(cache_path(name), allow_pickle=True) as data:
        return {key: data[key] for key in data.files}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(2)
    for dataset in sys.argv[1:] or list(CONFIG):
        build(dataset)
