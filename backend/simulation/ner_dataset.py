"""Reading NER data for the simulation: two-column CoNLL files, and Label Studio exports with a ``<Labels>`` config.

Every sentence (CoNLL) or task (export) becomes one text and its entities, ``backend.core.spans.Span`` in
character offsets of that text. A CoNLL sentence's text is its tokens joined with single spaces.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from backend.core.exceptions import InputError
from backend.core.spans import Span
from backend.simulation.records import first_result, rows_list

CONLL_FORMAT = "two-column CoNLL: one 'token<TAB>tag' or 'token tag' per line, a blank line between sentences"


@dataclass(frozen=True)
class SpanDataset:
    texts: list[str]
    spans: list[list[Span]]
    labels: tuple[str, ...]  # the entity types
    source: str = ""
    skipped: int = 0  # tasks without a usable annotation (Label Studio exports)
    #: Annotated spans that cannot be used, by reason (``backend.core.spans.DROP_REASONS``).
    dropped: Counter = field(default_factory=Counter)

    @property
    def has_entity(self) -> np.ndarray:
        """1 for a text with at least one entity, else 0: what the test split is stratified on."""
        return np.array([1 if spans else 0 for spans in self.spans], dtype=np.int64)

    @property
    def n_entities(self) -> int:
        return sum(len(spans) for spans in self.spans)

    def subset(self, keep: np.ndarray) -> SpanDataset:
        return replace(self, texts=[self.texts[i] for i in keep], spans=[self.spans[i] for i in keep])


# --------------------------------------------------------------------------------------------- CoNLL


def _is_tag(tag: str) -> bool:
    return tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)


def read_conll(lines: Iterable[str], source: str = "the input") -> list[list[tuple[str, str]]]:
    """Sentences of (token, tag) pairs: ``token<TAB>tag`` (or ``token tag``) lines with BIO or IOB tags (``O``,
    ``B-<type>``, ``I-<type>``); a line that is empty or holds only whitespace ends a sentence, and so does a
    CoNLL-2003 ``-DOCSTART-`` line."""
    sentences: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    bad_tags: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip() or line.split()[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
            current = []
            continue
        parts = [part.strip() for part in line.split("\t")] if "\t" in line else line.split()
        if len(parts) != 2 or not all(parts):
            raise InputError(f"{source} line {number}: expected 'token<TAB>tag' or 'token tag' ({CONLL_FORMAT}), got {line!r}")
        if not _is_tag(parts[1]):
            bad_tags.setdefault(parts[1], number)
        current.append((parts[0], parts[1]))
    if current:
        sentences.append(current)
    if bad_tags:
        shown = ", ".join(f"{tag!r} (line {number})" for tag, number in list(bad_tags.items())[:5])
        raise InputError(
            f"{source} has tags that are not O, B-<type> or I-<type>: {shown}" + (", ..." if len(bad_tags) > 5 else "")
        )
    return sentences


def sentence_spans(pairs: list[tuple[str, str]]) -> tuple[str, list[Span]]:
    """The tokens joined with single spaces, and the tagged entities as character spans of that text.

    An ``I-`` tag continues an entity of the same type; one that continues none starts a new entity
    (seqeval's convention, which reads IOB1 files, where ``B-`` only separates adjacent entities, as meant).
    """
    text, spans, offset = [], [], 0
    current: list | None = None  # [start, end, type]
    for token, tag in pairs:
        begin = offset
        offset += len(token) + 1
        text.append(token)
        kind = tag[2:] if tag != "O" else None
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


def conll_dataset(path: Path) -> SpanDataset:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            sentences = read_conll(handle, str(path))
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read {path} as UTF-8 text: {exc}") from None
    if not sentences:
        raise InputError(f"{path} holds no sentence ({CONLL_FORMAT})")
    texts, spans = zip(*(sentence_spans(pairs) for pairs in sentences))
    labels = tuple(sorted({span.label for entities in spans for span in entities}))
    return checked(SpanDataset(list(texts), list(spans), labels, str(path)))


# --------------------------------------------------------------------------------------------- Label Studio


def export_dataset(tasks: list[dict[str, Any]], spec, text_field: str | None, source: str) -> SpanDataset:
    """A Label Studio export read with a ``SpanLabelingSpec``: each task's first non-cancelled annotation's spans
    (``spec.label_of``, then ``spec.spans_of`` over the task's text); spans that cannot be used are counted."""
    if text_field:
        spec = replace(spec, value_field=text_field)
    texts, spans, dropped, unlabeled, missing_field = [], [], Counter(), 0, []
    for number, task in enumerate(tasks, 1):
        result = first_result(task)
        if result is None:
            unlabeled += 1
            continue
        text = spec.text_of(task["data"])
        if text is None:
            missing_field.append(number)
            continue
        kept, lost = spec.spans_of(spec.label_of(result), text)
        texts.append(text)
        spans.append(kept)
        dropped.update(lost)
    if missing_field:
        raise InputError(
            f"{len(missing_field)} labeled tasks have no data field {spec.value_field!r} (tasks {rows_list(missing_field)}); "
            "pass --text-field"
        )
    if not texts:
        raise InputError(f"{source} has {len(tasks)} tasks but none with a submitted annotation to learn from")
    empty = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise InputError(f"{len(empty)} of {len(texts)} labeled tasks have an empty text in data field {spec.value_field!r}")
    return checked(SpanDataset(texts, spans, tuple(spec.classes), source, skipped=unlabeled, dropped=dropped))


def checked(data: SpanDataset) -> SpanDataset:
    if data.n_entities == 0:
        lost = f" ({sum(data.dropped.values())} annotated spans could not be used)" if data.dropped else ""
        raise InputError(f"{data.source} has no entity to learn from{lost}: every token is outside an entity")
    if len(data.texts) < 4:
        raise InputError(f"{data.source} has {len(data.texts)} texts; a simulation needs at least 4")
    return data
