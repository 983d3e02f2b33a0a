"""What the token-vector cache saves an NER retrain: encoding WNUT-16's tweets cold, against reading them back.

Same process, same tweets, the worker's own ``SpanTagger.embed_through_cache`` (sentence embeddings, then token
vectors): the first call encodes everything and fills both caches; the second, a fresh tagger as a new job
would build, reads them. Writes ``bench/ner_token_cache.md``.

    HF_HUB_OFFLINE=1 python bench/ner_token_cache.py
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wnut16 import load_wnut16  # noqa: E402

from backend.core.labels import SpanLabelingSpec  # noqa: E402
from backend.core.settings import ProjectSettings  # noqa: E402
from backend.models.families import head_classifier  # noqa: E402

HERE = Path(__file__).resolve().parent


def timed_embed(spec, settings, project_dir, ids, texts) -> tuple[float, tuple[int, int]]:
    tagger = head_classifier(spec, settings)
    started = time.perf_counter()
    tagger.embed_through_cache(tagger.cache_for(project_dir), ids, texts)
    return time.perf_counter() - started, tagger.token_cache_counts


def main() -> None:
    data = load_wnut16()
    spec = SpanLabelingSpec("ner", "text", "text", tuple(data.labels))
    settings = ProjectSettings(model_mode="head")
    ids = list(range(len(data.texts)))
    with tempfile.TemporaryDirectory() as folder:
        cold, cold_counts = timed_embed(spec, settings, Path(folder), ids, data.texts)
        warm, warm_counts = timed_embed(spec, settings, Path(folder), ids, data.texts)
        size_mb = (Path(folder) / "token_vectors.sqlite").stat().st_size / 2**20
    lines = [
        "# NER token-vector cache: a retrain's encoding, cold against cached",
        "",
        f"`HF_HUB_OFFLINE=1 python bench/ner_token_cache.py` on {platform.machine()}, {os.cpu_count()} CPU threads. "
        f"WNUT-16's {len(data.texts)} tweets, the worker's `SpanTagger.embed_through_cache` (sentence embeddings and "
        "token vectors), max_length 128.",
        "",
        "| call | seconds | token vectors from the cache / encoded |",
        "|---|---|---|",
        f"| first retrain (empty caches) | {cold:.1f} | {cold_counts[0]} / {cold_counts[1]} |",
        f"| next retrain (a new job reads both caches) | {warm:.2f} | {warm_counts[0]} / {warm_counts[1]} |",
        "",
        f"Ratio: {cold / warm:.0f}x. The token cache file holds {size_mb:.0f} MB (float16 vectors).",
        "",
    ]
    (HERE / "ner_token_cache.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
