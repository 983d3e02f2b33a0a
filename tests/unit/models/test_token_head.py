"""The NER fast path's token head (backend.models.token_head) and entity-level scores (backend.learning.entity_metrics)."""
from __future__ import annotations

import os
from itertools import pairwise

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from backend.core.spans import Span, bio_tags  # noqa: E402
from backend.learning.entity_metrics import (  # noqa: E402
    entity_scores,
    entity_scores_from_tags,
    spans_to_bio,
)
from backend.models.token_head import TokenHead  # noqa: E402

LABELS = ("person", "geo-loc", "company")


def spans_of(text: str, *entities: tuple[str, str]) -> list[Span]:
    out = []
    for piece, label in entities:
        start = text.index(piece)
        out.append(Span(start, start + len(piece), label))
    return out


TWEETS = [
    ("Obama visited Paris today 😀", [("Obama", "person"), ("Paris", "geo-loc")]),
    ("Apple opens a store in London", [("Apple", "company"), ("London", "geo-loc")]),
    ("lol   nothing to see here", []),
    ("Merkel and Macron met in Berlin", [("Merkel", "person"), ("Macron", "person"), ("Berlin", "geo-loc")]),
    ("Google hires in Zürich", [("Google", "company"), ("Zürich", "geo-loc")]),
]
TEXTS = [t for t, _ in TWEETS]
SPANS = [spans_of(t, *e) for t, e in TWEETS]


@pytest.fixture(scope="module")
def head():
    return TokenHead(LABELS, max_length=32, batch_size=4, seed=0, C=10.0).fit(TEXTS, SPANS)


def test_token_probabilities_have_the_sequence_strategies_layout(head):
    queries = TEXTS + ["a much longer text that the tokenizer will cut off at thirty two tokens " * 3, ""]
    proba, mask = head.predict_token_proba(queries)
    assert proba.shape == (len(queries), 32, len(bio_tags(LABELS))) and mask.shape == (len(queries), 32)
    lengths = [len(head.tokenizer(t, truncation=True, max_length=32)["input_ids"]) for t in queries]
    assert mask.sum(axis=1).tolist() == [n - 2 for n in lengths]  # every token but [CLS] and [SEP]
    assert not mask[:, 0].any() and mask[-1].sum() == 0  # [CLS] never; the empty text has no token
    np.testing.assert_allclose(proba[mask].sum(-1), 1.0, rtol=1e-5)
    assert (proba[~mask] == 0).all()
    from strategies import ModelOutputs, make_strategy

    for name in ("mnlp", "mean_token_entropy", "max_token_entropy"):
        scores = make_strategy(name).query(ModelOutputs(token_proba=proba, token_mask=mask))
        assert scores.shape == (len(queries),) and np.isfinite(scores).all()


def test_predicted_spans_are_valid_and_fit_the_training_tweets(head):
    queries = TEXTS + ["Obama flew to London", "   ", "Zürich 😀😀 Apple"]
    predicted = head.predict_spans(queries)
    assert len(predicted) == len(queries)
    for text, spans in zip(queries, predicted):
        for a, b in pairwise(spans):
            assert a.end <= b.start  # sorted, non-overlapping
        for span in spans:
            assert 0 <= span.start < span.end <= len(text) and span.label in LABELS
            assert text[span.start : span.end] == text[span.start : span.end].strip()
            assert 0 < span.score <= 1
    # A C of 10 on five tweets fits them: the training tweets come back as labeled.
    assert entity_scores(SPANS, predicted[: len(TEXTS)], LABELS)["f1"] == 1.0
    assert predicted[len(TEXTS) + 1] == []


def test_embeddings_are_cached_per_text(head):
    head.token_embeddings(TEXTS)
    before = dict(head.cache)
    head.token_embeddings(TEXTS + TEXTS)
    assert all(head.cache[t] is before[t] for t in TEXTS)


def test_one_tag_only_predicts_it_everywhere():
    lone = TokenHead(LABELS, max_length=16).fit(["nothing here", "nor here"], [[], []])
    assert lone.predict_spans(["Obama in Paris"]) == [[]]
    with pytest.raises(RuntimeError):
        TokenHead(LABELS).predict_token_proba(["x"])


def test_dropped_spans_are_counted():
    head = TokenHead(LABELS, max_length=8).fit(
        ["Obama visited Paris with Merkel and Macron today", "Apple"],
        [spans_of("Obama visited Paris with Merkel and Macron today", ("Obama", "person"), ("today", "time")),
         [Span(0, 5, "company"), Span(0, 3, "person")]],
    )
    assert head.dropped == {"unknown_label": 1, "overlap": 1}


# ---- entity scores ----

def test_entity_scores_against_hand_counts():
    true = [[Span(0, 5, "person"), Span(10, 15, "geo-loc")], [Span(0, 3, "company")], []]
    pred = [[Span(0, 5, "person"), Span(10, 14, "geo-loc")], [Span(0, 3, "company"), Span(5, 8, "person")], []]
    scores = entity_scores(true, pred, LABELS)
    # 2 correct (person 0-5, company 0-3) of 4 predicted and 3 true.
    assert (scores["support"], scores["predicted"]) == (3, 4)
    assert scores["precision"] == pytest.approx(2 / 4) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    per = scores["per_type"]
    assert per["person"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1, "predicted": 2}
    assert per["geo-loc"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 1}
    assert per["company"]["f1"] == 1.0


def test_perfect_and_empty_predictions():
    true = [[Span(0, 5, "person"), Span(5, 9, "person")], [Span(2, 4, "geo-loc")]]
    assert entity_scores(true, true, LABELS)["f1"] == 1.0
    none = entity_scores(true, [[], []], LABELS)
    assert (none["precision"], none["recall"], none["f1"], none["predicted"]) == (0.0, 0.0, 0.0, 0)
    assert entity_scores([[], []], [[], []], LABELS)["f1"] == 0.0
    # Adjacent entities of one type stay two: merging them is wrong twice over.
    merged = entity_scores(true, [[Span(0, 9, "person")], [Span(2, 4, "geo-loc")]], LABELS)
    assert (merged["precision"], merged["recall"]) == (0.5, pytest.approx(1 / 3))


def test_spans_become_bio_over_shared_pieces():
    assert spans_to_bio([Span(0, 5, "a"), Span(5, 9, "a")], [Span(0, 9, "a")]) == (["B-a", "B-a"], ["B-a", "I-a"])
    scores = entity_scores_from_tags([["B-a", "I-a", "O", "I-b"]], [["B-a", "I-a", "O", "B-b"]])
    assert scores["f1"] == 1.0  # an I- after O starts an entity (seqeval's default mode)
