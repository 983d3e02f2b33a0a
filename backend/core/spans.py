"""Exact alignment between Label Studio text spans and BIO tags over a tokenizer's tokens.

One idea: turning labelled character spans into one tag per token and back, losslessly where the
tokenizer allows it. No Label Studio client, no torch; the backend tokenizes and calls these functions.

Label Studio offsets
--------------------
A ``<Labels>`` region over a ``<Text>`` object stores ``value.start`` / ``value.end`` as offsets in
**Unicode code points**, not in UTF-16 code units of the JavaScript string. So they are Python ``str``
indices as they are: an emoji (an astral character) counts 1, as in ``len("😀") == 1``, not 2 as in
JavaScript's ``"😀".length``. Read in Label Studio's source (github.com/HumanSignal/label-studio,
``web/libs/editor``):

- ``src/tags/object/RichText/view.jsx``: on mouse-up the browser's ``Range`` (UTF-16 offsets) goes through
  ``fixCodePointsInRange(range)`` before the region is made;
- ``src/utils/selection-tools.js``: ``fixCodePointsInRange`` / ``charsToCodePoints`` count ``[...text]``
  (code points; its comment: "In python and other modern tools complex unicode symbols handled as code
  points, not UTF chars. So for external usage js length should be converted to code points count"), and
  ``rangeToGlobalOffset`` / ``findGlobalOffset`` sum ``[...node.textContent].length`` per text node and 1
  per ``<br>``;
- ``src/tags/object/RichText/model.js``: ``addRegion`` stores those global offsets as the region's
  ``startOffset`` / ``endOffset`` for ``<Text>`` (``updateTextOffsets``), and
  ``src/regions/RichTextRegion.js`` ``serialize()`` writes them as ``value.start`` / ``value.end``;
- ``src/tags/object/RichText/domManager.ts`` (the newer code path behind ``FF_LSDV_4620_3``) counts the same
  way: ``content = [...text]``, ``endPos += content.length``; its ``domManager.md`` gives the example of
  ``🐱`` as one element of the offsets;
- ``<Text>`` renders each ``\\n`` and each ``\\r`` as one ``<br/>`` (``view.jsx``), counted 1 each: a CRLF
  is 2 offsets, as in Python.

This is the fix of Label Studio issue #1347 / #1008 (frontend PR heartexlabs/label-studio-frontend#308,
2021). Label Studio's own Python code agrees: ``label_studio_sdk/converter/utils.py``
(``create_tokens_and_tags``, the CoNLL export) compares ``value.start`` / ``value.end`` directly with
Python character indices of the task text. Offsets written by older Label Studio versions (before that fix)
or by tools that count UTF-16 units are off by one per preceding astral character; ``spans_of_result``
drops such regions as ``text_mismatch`` when the region carries its ``text``.

``value.text`` is what the browser showed, with every newline written as the two characters ``\\n``
(``captureSelection``: ``selection.toString().replace(/[\\n\\r]/g, "\\\\n")``). The text check compares
after the same replacement.

Tokens and spans
----------------
A span covers every token it intersects, so its ends snap outward to token boundaries, and whitespace at
its edges (inside no token) falls away: ``" Paris "`` comes back as ``"Paris"``. BERT-style tokenizers that
strip accents leave a combining mark at the end of a word out of every token (``"café"`` written ``e`` +
U+0301 gives the token ``cafe`` without the mark); ``tags_to_spans`` extends a span's end over such marks, so
a decoded span never cuts a character in two.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Tag id for special and padding tokens: ignored by ``torch.nn.CrossEntropyLoss`` and by the head's fit.
IGNORE = -100
OUTSIDE = "O"

#: Every reason ``spans_to_tags`` / ``spans_of_result`` drop a span (the keys their counters use).
DROP_REASONS = (
    "overlap",  # shares a token with an earlier span (in (start, longest first) order)
    "unknown_label",  # its label is not one of the labels
    "no_token",  # covers no token (whitespace only, or characters the tokenizer drops)
    "truncated",  # lies beyond the last token the tokenizer kept (max_length)
    "empty",  # start >= end
    "out_of_range",  # offsets outside the text
    "text_mismatch",  # the region's value.text is not the text at its offsets
    "malformed",  # a region without integer start / end or labels
)

Offsets = Sequence[Sequence[int]]


@dataclass(frozen=True)
class Span:
    """A labelled piece of a text, in Python string indices (code points), ``end`` exclusive."""

    start: int
    end: int
    label: str
    score: float | None = None


@dataclass
class Alignment:
    """One text's tags: ``tags[i]`` is token i's tag id in ``bio_tags(labels)``, ``IGNORE`` for special tokens.

    ``kept`` holds the spans the tags encode, snapped to their tokens (start of the first, end of the last,
    extended over trailing combining marks when the text is given: what ``tags_to_spans`` decodes);
    ``dropped`` counts the spans left out by reason (``DROP_REASONS``); ``clipped`` counts spans that were
    kept only in part (``"truncated"``: the tokenizer cut the text inside the span).
    """

    tags: list[int]
    kept: list[Span] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    clipped: Counter = field(default_factory=Counter)


def bio_tags(labels: Sequence[str]) -> tuple[str, ...]:
    """``("O", "B-<l1>", "I-<l1>", "B-<l2>", ...)`` in the given label order; a tag's id is its index."""
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct, got {labels}")
    if any(not isinstance(label, str) or not label for label in labels):
        raise ValueError(f"labels must be non-empty strings, got {labels}")
    return (OUTSIDE, *(f"{prefix}-{label}" for label in labels for prefix in ("B", "I")))


def begin_tag(label_index: int) -> int:
    return 2 * label_index + 1


def inside_tag(label_index: int) -> int:
    return 2 * label_index + 2


def _token_bounds(offsets: Offsets) -> list[tuple[int, int] | None]:
    """Each token's (start, end), None for special and padding tokens (offset (0, 0) or empty)."""
    bounds: list[tuple[int, int] | None] = []
    for pair in offsets:
        start, end = int(pair[0]), int(pair[1])
        bounds.append((start, end) if end > start else None)
    return bounds


def _order(spans: Iterable[Span]) -> list[Span]:
    """(start, longest first); ties keep the caller's order."""
    return sorted(spans, key=lambda s: (s.start, -(s.end - s.start)))


def spans_to_tags(offsets: Offsets, spans: Iterable[Span], labels: Sequence[str], text: str | None = None) -> Alignment:
    """One tag id per token (``offsets`` is the tokenizer's ``offset_mapping`` for one text).

    A span covers every token that intersects it and starts with ``B-``; the rest of its tokens are ``I-``.
    A token intersected by two spans goes to the first span in (start, longest first) order and the other
    span is dropped whole ("overlap"). Adjacent spans (one's end is the next one's start, in different
    tokens) stay two entities: ``B-`` then ``B-``. A span covering no token is dropped as "truncated" when it
    lies past the last token the tokenizer kept, else as "no_token". Given the ``text``, a span past the end
    holding only whitespace, combining marks or control characters counts "no_token" (nothing was cut off),
    and one the truncation cut inside is kept in part and counted in ``clipped``.
    """
    index = {label: i for i, label in enumerate(labels)}
    bounds = _token_bounds(offsets)
    tags = [IGNORE if b is None else 0 for b in bounds]
    real = [(i, b) for i, b in enumerate(bounds) if b is not None]
    last_end = max((b[1] for _, b in real), default=0)
    alignment = Alignment(tags)
    taken = [False] * len(bounds)
    following = _next_starts(bounds)

    def beyond_is_text(start: int, end: int) -> bool:
        return text is None or _has_content(text[max(start, last_end) : end])

    for span in _order(spans):
        if span.label not in index:
            alignment.dropped["unknown_label"] += 1
            continue
        if span.end <= span.start:
            alignment.dropped["empty"] += 1
            continue
        if span.start < 0 or (text is not None and span.end > len(text)):
            alignment.dropped["out_of_range"] += 1
            continue
        covered = [i for i, (start, end) in real if start < span.end and end > span.start]
        if not covered:
            beyond = span.start >= last_end
            alignment.dropped["truncated" if beyond and beyond_is_text(span.start, span.end) else "no_token"] += 1
            continue
        if any(taken[i] for i in covered):
            alignment.dropped["overlap"] += 1
            continue
        label_index = index[span.label]
        for n, i in enumerate(covered):
            taken[i] = True
            tags[i] = begin_tag(label_index) if n == 0 else inside_tag(label_index)
        if span.end > last_end and beyond_is_text(last_end, span.end):
            alignment.clipped["truncated"] += 1
        first, last = bounds[covered[0]], bounds[covered[-1]]
        end = last[1] if text is None else _extend_over_marks(text, last[1], following[covered[-1]])
        alignment.kept.append(Span(first[0], end, span.label, span.score))
    alignment.kept.sort(key=lambda s: s.start)
    return alignment


def _has_content(piece: str) -> bool:
    """Whether a piece of text holds a character a tokenizer keeps: anything but whitespace (categories Z*,
    and the Cc controls tab and newline), combining marks (M*) and other controls and format characters (C*)."""
    return any(unicodedata.category(c)[0] not in "ZMC" for c in piece)


def _extend_over_marks(text: str, end: int, limit: int) -> int:
    """Move ``end`` past the combining marks that follow it, up to ``limit`` (the next token's start): the
    tokenizer left those marks out of every token, and a span ending before them would cut a character."""
    limit = min(limit, len(text))
    while end < limit and unicodedata.category(text[end]).startswith("M"):
        end += 1
    return end


def _next_starts(bounds: Sequence[tuple[int, int] | None]) -> list[int]:
    """For each token, the start of the next real token (a very large number after the last one)."""
    following, nxt = [0] * len(bounds), 1 << 62
    for i in range(len(bounds) - 1, -1, -1):
        following[i] = nxt
        if bounds[i] is not None:
            nxt = bounds[i][0]
    return following


def tags_to_spans(
    text: str, offsets: Offsets, tag_ids: Sequence[int], labels: Sequence[str], token_scores: Sequence[float] | None = None
) -> list[Span]:
    """Decode one text's BIO tag ids into spans, following seqeval's conventions (its default, non-strict mode).

    An entity starts at a ``B-`` tag, or at an ``I-`` tag that does not continue an entity of the same type
    (after ``O``, after another type, or first). Special tokens (offset (0, 0)) and ``IGNORE`` tags end an
    entity like ``O``. A span runs from its first token's start to its last token's end, extended over
    combining marks that directly follow it; its score is the mean of its tokens' ``token_scores`` when
    given.
    """
    bounds = _token_bounds(offsets)
    following = _next_starts(bounds)
    if len(tag_ids) < len(bounds):
        raise ValueError(f"{len(tag_ids)} tags for {len(bounds)} tokens")
    n_tags = 1 + 2 * len(labels)
    spans: list[Span] = []
    current: tuple[int, list[int]] | None = None  # (label index, token indices)

    def close() -> None:
        nonlocal current
        if current is not None:
            label_index, tokens = current
            start, end = bounds[tokens[0]][0], _extend_over_marks(text, bounds[tokens[-1]][1], following[tokens[-1]])
            score = None if token_scores is None else float(sum(float(token_scores[i]) for i in tokens) / len(tokens))
            spans.append(Span(start, end, labels[label_index], score))
        current = None

    for i, bound in enumerate(bounds):
        tag = int(tag_ids[i])
        if bound is None or tag <= 0:
            close()
            continue
        if tag >= n_tags:
            raise ValueError(f"tag id {tag} is not one of the {n_tags} tags of {list(labels)}")
        label_index, is_begin = (tag - 1) // 2, tag % 2 == 1
        if is_begin or current is None or current[0] != label_index:
            close()
            current = (label_index, [i])
        else:
            current[1].append(i)
    close()
    return spans


# ---- Label Studio regions ----

def ls_offset(text: str, index: int) -> int:
    """A Python string index as a Label Studio ``value.start`` / ``value.end``: the same number (both count
    code points; see the module docstring), checked to lie within the text."""
    if not 0 <= index <= len(text):
        raise ValueError(f"index {index} is outside a text of {len(text)} characters")
    return int(index)


def python_index(text: str, offset: int) -> int:
    """A Label Studio ``value.start`` / ``value.end`` as a Python string index: the same number, checked."""
    return ls_offset(text, offset)


def ls_span_result(from_name: str, to_name: str, text: str, span: Span) -> dict[str, Any]:
    """One Label Studio result region for a ``<Labels>`` control over a ``<Text>`` object.

    ``score`` is present when the span has one.
    """
    start, end = ls_offset(text, span.start), ls_offset(text, span.end)
    return span_region(from_name, to_name, Span(start, end, span.label, span.score), text[span.start : span.end])


def span_region(from_name: str, to_name: str, span: Span, span_text: str) -> dict[str, Any]:
    """The result region of a span already in Label Studio offsets, whose text is ``span_text``."""
    region: dict[str, Any] = {
        "from_name": from_name,
        "to_name": to_name,
        "type": "labels",
        "value": {"start": span.start, "end": span.end, "text": span_text, "labels": [span.label]},
    }
    if span.score is not None:
        region["score"] = float(span.score)
    return region


_NEWLINE = re.compile(r"\r|\n")


def _shown(text: str) -> str:
    """Text as Label Studio writes it into ``value.text``: each newline as the two characters ``\\n``."""
    return _NEWLINE.sub(r"\\n", text)


def spans_of_result(
    text: str, result: Sequence[Mapping[str, Any]] | None, from_name: str, labels: Sequence[str]
) -> tuple[list[Span], Counter]:
    """The spans an annotation's (or prediction's) ``result`` holds for the ``<Labels>`` control ``from_name``.

    Regions of other controls are ignored. Dropped regions are counted by reason: "malformed" (no integer
    start / end), "empty", "out_of_range", "text_mismatch" (its ``value.text`` is not the text at its
    offsets), "unknown_label" (none of its labels is known). A region with several known labels gives
    one span per label (they overlap, so alignment keeps one). Spans come back in (start, longest first)
    order.
    """
    known = set(labels)
    spans: list[Span] = []
    dropped: Counter = Counter()
    for region in result or ():
        if not isinstance(region, Mapping) or region.get("from_name") != from_name:
            continue
        value = region.get("value")
        if not isinstance(value, Mapping):
            dropped["malformed"] += 1
            continue
        start, end, region_labels = value.get("start"), value.get("end"), value.get("labels")
        if type(start) is not int or type(end) is not int or not isinstance(region_labels, list):
            dropped["malformed"] += 1
            continue
        if end <= start:
            dropped["empty"] += 1
            continue
        if start < 0 or end > len(text):
            dropped["out_of_range"] += 1
            continue
        start, end = python_index(text, start), python_index(text, end)
        shown = value.get("text")
        if isinstance(shown, str) and _shown(shown) != _shown(text[start:end]):
            dropped["text_mismatch"] += 1
            continue
        chosen = [label for label in region_labels if label in known]
        if not chosen:
            dropped["unknown_label"] += 1
            continue
        score = region.get("score")
        score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
        spans.extend(Span(start, end, label, score) for label in chosen)
    return _order(spans), dropped
