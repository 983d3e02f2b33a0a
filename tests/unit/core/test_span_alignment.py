"""Label Studio spans <-> BIO tags over the bundled tokenizer's tokens (backend.core.spans)."""
from __future__ import annotations

import os
import unicodedata
from collections import Counter
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ["HF_HUB_OFFLINE"] = "1"

from backend.core.spans import (  # noqa: E402
    IGNORE,
    Span,
    bio_tags,
    ls_span_result,
    spans_of_result,
    spans_to_tags,
    tags_to_spans,
)

LABELS = ("PER", "LOC", "ORG")


@lru_cache(maxsize=1)
def tokenizer():
    from transformers import AutoTokenizer

    from backend.core.settings import DEFAULT_MODEL
    from backend.models.encoder import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))


def offsets_of(text: str, max_length: int = 512) -> list[tuple[int, int]]:
    encoded = tokenizer()(text, return_offsets_mapping=True, truncation=True, max_length=max_length)
    return [tuple(pair) for pair in encoded["offset_mapping"]]


def round_trip(text, spans, labels=LABELS, **kwargs):
    offsets = offsets_of(text, **kwargs)
    alignment = spans_to_tags(offsets, spans, labels, text=text)
    return alignment, tags_to_spans(text, offsets, alignment.tags, labels)


def tag_names(alignment, labels=LABELS):
    names = bio_tags(labels)
    return [names[t] for t in alignment.tags if t != IGNORE]


# ---- properties ----

PIECES = [
    "Paris", "new", "York", "café", "naïve", "Zürich", "São", "Paulo", "don't", "U.S.", "e-mail", "42", "3.5",
    "@user", "#tag", "http://t.co/x", "中文", "日本", "Ελλάδα", "Москва", "مرحبا",
    "😀", "👍🏽", "👨\u200d🚒", "❤\ufe0f", "𝔘nicode", "🇫🇷",  # astral characters, ZWJ, variation selector
    "e\u0301", "cafe\u0301", "a\u0308b", "n\u0303o",  # combining characters (decomposed accents)
    " ", "  ", "   ", "\t", "\n", "\r\n", "\u00a0", " \n ",  # runs of whitespace
    ",", "!", "...", "(", ")", "-", "'",
]
texts = st.lists(st.sampled_from(PIECES), min_size=1, max_size=25).map("".join)


def atoms(offsets):
    """Tokens grouped where a span boundary may fall: tokens whose characters overlap stay together."""
    groups: list[list[tuple[int, int]]] = []
    for start, end in offsets:
        if end <= start:
            continue
        if groups and start < groups[-1][-1][1]:
            groups[-1].append((start, end))
        else:
            groups.append([(start, end)])
    return [(group[0][0], max(e for _, e in group)) for group in groups]


def extend_marks(text, end, limit):
    while end < min(limit, len(text)) and unicodedata.category(text[end]).startswith("M"):
        end += 1
    return end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, data=st.data())
def test_token_aligned_spans_survive_tags_and_back(text, data):
    offsets = offsets_of(text)
    units = atoms(offsets)
    moves = data.draw(st.lists(st.sampled_from(["O", "B", "I"]), min_size=len(units), max_size=len(units)))
    chosen = data.draw(st.lists(st.sampled_from(LABELS), min_size=len(units), max_size=len(units)))
    runs: list[list[int]] = []
    open_run = False
    for k, move in enumerate(moves):
        if move == "B" or (move == "I" and not open_run):
            runs.append([k])
            open_run = True
        elif move == "I":
            runs[-1].append(k)
        else:
            open_run = False
    spans = []
    for run in runs:
        limit = units[run[-1] + 1][0] if run[-1] + 1 < len(units) else len(text)
        spans.append(Span(units[run[0]][0], extend_marks(text, units[run[-1]][1], limit), chosen[run[0]]))

    alignment = spans_to_tags(offsets, spans, LABELS, text=text)
    assert alignment.dropped == Counter() and alignment.clipped == Counter()
    assert alignment.kept == spans
    assert tags_to_spans(text, offsets, alignment.tags, LABELS) == spans
    # Every decoded span is whole characters of the text and starts and ends on non-space.
    for span in spans:
        piece = text[span.start : span.end]
        assert piece and piece == piece.strip()


@settings(max_examples=300, deadline=None)
@given(text=texts, data=st.data())
def test_ls_offsets_round_trip(text, data):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    score = data.draw(st.none() | st.floats(0, 1))
    span = Span(start, end, data.draw(st.sampled_from(LABELS)), score)
    region = ls_span_result("label", "text", text, span)
    assert region["value"]["text"] == text[start:end]
    # Label Studio counts code points, as Python does: the offsets are the indices, emoji or not.
    assert (region["value"]["start"], region["value"]["end"]) == (start, end)
    spans, dropped = spans_of_result(text, [region], "label", LABELS)
    assert spans == [span] and dropped == Counter()


ALL_TAGS = bio_tags(LABELS)


@settings(max_examples=300, deadline=None)
@given(tags=st.lists(st.integers(0, len(ALL_TAGS) - 1), max_size=30))
def test_decoding_matches_seqeval(tags):
    seqeval = pytest.importorskip("seqeval.metrics.sequence_labeling")
    text = " ".join("w" for _ in tags)
    offsets = [(0, 0)] + [(2 * i, 2 * i + 1) for i in range(len(tags))] + [(0, 0)]
    spans = tags_to_spans(text, offsets, [0, *tags, 0], LABELS)
    expected = seqeval.get_entities([ALL_TAGS[t] for t in tags])
    assert [(s.label, s.start // 2, (s.end - 1) // 2) for s in spans] == expected


# ---- examples ----

def test_bio_tags_follow_the_label_order():
    assert bio_tags(["PER", "LOC"]) == ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    with pytest.raises(ValueError):
        bio_tags(["PER", "PER"])


def test_emoji_before_a_span_counts_one_offset():
    text = "😀👍🏽 Paris rocks"
    start = text.index("Paris")
    assert start == 4  # JavaScript's "😀👍🏽 Paris rocks".indexOf("Paris") is 7 (UTF-16 code units)
    span = Span(start, start + 5, "LOC")
    region = ls_span_result("label", "text", text, span)
    assert region["value"] == {"start": 4, "end": 9, "text": "Paris", "labels": ["LOC"]}
    alignment, back = round_trip(text, [span])
    assert tag_names(alignment) == ["O", "B-LOC", "O"]  # [UNK] for the emoji, paris, rocks
    assert back == [span]


def test_whitespace_at_a_spans_edges_is_trimmed_to_its_tokens():
    text = "I live in  Paris   now"
    span = Span(text.index("in") + 2, text.index("now"), "LOC")  # "  Paris   "
    alignment, back = round_trip(text, [span])
    assert alignment.kept == back == [Span(text.index("Paris"), text.index("Paris") + 5, "LOC")]
    assert alignment.dropped == Counter()


def test_a_span_inside_a_word_takes_the_tokens_it_touches():
    text = "visiting Parisians"  # visiting, parisian, ##s
    _, back = round_trip(text, [Span(text.index("Paris"), text.index("Paris") + 5, "LOC")])
    assert [text[s.start : s.end] for s in back] == ["Parisian"]


def test_overlapping_spans_keep_the_first_longest_and_count_the_other():
    text = "Bank of New York Mellon"
    whole = Span(0, len(text), "ORG")
    inner = Span(text.index("New"), text.index("York") + 4, "LOC")
    same_start_shorter = Span(0, 4, "PER")
    alignment, back = round_trip(text, [inner, same_start_shorter, whole])
    assert back == [whole]
    assert alignment.dropped == Counter({"overlap": 2})
    assert tag_names(alignment) == ["B-ORG"] + ["I-ORG"] * 4


def test_adjacent_spans_stay_two_entities():
    text = "Paris-London flights"
    paris, london = Span(0, 5, "LOC"), Span(5, 12, "LOC")  # "Paris" and "-London" touch at 5
    alignment, back = round_trip(text, [paris, london])
    assert tag_names(alignment) == ["B-LOC", "B-LOC", "I-LOC", "O"]
    assert back == [paris, london]


def test_spans_past_the_truncation_are_counted():
    text = "one two three four five six seven eight nine ten Paris"
    paris = Span(text.index("Paris"), len(text), "LOC")
    across = Span(text.index("three"), text.index("ten"), "PER")  # the cut falls inside it
    offsets = offsets_of(text, max_length=6)  # [CLS] one two three four [SEP]
    alignment = spans_to_tags(offsets, [paris, across], LABELS, text=text)
    assert alignment.dropped == Counter({"truncated": 1})
    assert alignment.clipped == Counter({"truncated": 1})
    assert alignment.kept == [Span(text.index("three"), text.index("four") + 4, "PER")]
    # Without the text, a span past the last token still counts as truncated.
    assert spans_to_tags(offsets, [paris], LABELS).dropped == Counter({"truncated": 1})


def test_unknown_labels_and_spans_over_no_token_are_counted():
    text = "Paris  is  nice"
    spans = [Span(0, 5, "CITY"), Span(5, 7, "LOC"), Span(3, 3, "LOC"), Span(0, 99, "LOC")]
    alignment, back = round_trip(text, spans)
    assert back == []
    assert alignment.dropped == Counter({"unknown_label": 1, "no_token": 1, "empty": 1, "out_of_range": 1})
    assert all(t in (0, IGNORE) for t in alignment.tags)


def test_trailing_combining_mark_stays_in_the_span():
    text = "visit cafe\u0301 now"  # "café" with a combining acute accent, which the tokenizer strips
    span = Span(6, 11, "LOC")
    offsets = offsets_of(text)
    assert (6, 10) in offsets  # the token ends before the mark
    _, back = round_trip(text, [span])
    assert back == [span] and text[back[0].start : back[0].end] == "cafe\u0301"


def test_decoding_follows_seqeval_conventions_and_averages_scores():
    text = "a b c d e"
    offsets = [(0, 0), (0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (0, 0)]
    tags = bio_tags(LABELS)
    ids = [IGNORE] + [tags.index(t) for t in ["I-PER", "I-PER", "I-LOC", "B-LOC", "O"]] + [IGNORE]
    scores = [0, 0.9, 0.7, 0.5, 0.3, 0.1, 0]
    spans = tags_to_spans(text, offsets, ids, LABELS, token_scores=scores)
    assert [(s.start, s.end, s.label) for s in spans] == [(0, 3, "PER"), (4, 5, "LOC"), (6, 7, "LOC")]
    assert [s.score for s in spans] == pytest.approx([0.8, 0.5, 0.3])


def test_regions_of_other_controls_are_ignored_and_mismatches_dropped():
    text = "😀 Paris\nLondon"
    good = ls_span_result("label", "text", text, Span(2, 14, "LOC"))
    assert good["value"]["text"] == "Paris\nLondon"
    shown_by_ls = {**good, "value": {**good["value"], "text": "Paris\\nLondon"}}  # LS writes newlines as \n
    utf16 = {"from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 3, "end": 8, "text": "Paris", "labels": ["LOC"]}}  # offsets in UTF-16 units
    other = {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}
    relation = {"type": "relation", "from_id": "a", "to_id": "b"}
    no_text = {"from_name": "label", "value": {"start": 2, "end": 7, "labels": ["LOC", "PER", "X"]}}
    spans, dropped = spans_of_result(text, [shown_by_ls, utf16, other, relation, no_text], "label", LABELS)
    assert spans == [Span(2, 14, "LOC"), Span(2, 7, "LOC"), Span(2, 7, "PER")]
    assert dropped == Counter({"text_mismatch": 1})
    broken = [{"from_name": "label", "value": {"start": "2", "end": 7, "labels": ["LOC"]}},
              {"from_name": "label", "value": {"start": 2, "end": 7, "labels": ["X"]}}]
    assert spans_of_result(text, broken, "label", LABELS) == ([], Counter({"malformed": 1, "unknown_label": 1}))


def test_predicted_scores_reach_the_region():
    region = ls_span_result("label", "text", "Paris", Span(0, 5, "LOC", 0.25))
    assert region == {"from_name": "label", "to_name": "text", "type": "labels", "score": 0.25,
                      "value": {"start": 0, "end": 5, "text": "Paris", "labels": ["LOC"]}}
