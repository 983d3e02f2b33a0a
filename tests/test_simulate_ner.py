"""al-simulate on NER data (backend/simulation/ner.py, ner_dataset.py): CoNLL files and Label Studio exports
with a <Labels> config, played with the real token head on tiny synthetic sentences (max_length 16)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from backend.core.spans import Span
from backend.simulation.cli import main as simulate_main
from backend.simulation.cli import prepare
from backend.simulation.inputs import read_dataset
from backend.simulation.ner import NER_ROUND_COLUMNS
from backend.simulation.ner_dataset import SpanDataset, read_conll, sentence_spans

FIRST = ["Anna", "Omar", "Lena", "Paul", "Mei", "Ivan", "Sara", "Tom"]
LAST = ["Smith", "Khan", "Berg", "Costa"]
CITIES = ["Berlin", "Lagos", "Lima", "Oslo", "Hanoi", "Quito"]
LABELS_CONFIG = """<View>
  <Text name="text" value="$sentence"/>
  <Labels name="ner" toName="text">
    <Label value="PER"/><Label value="LOC"/>
  </Labels>
</View>"""


def synthetic_sentences(n: int = 40, seed: int = 0) -> list[list[tuple[str, str]]]:
    """(token, tag) sentences: a person (one or two tokens) travels to a city; every fifth has no entity."""
    rng = np.random.default_rng(seed)
    sentences = []
    for i in range(n):
        if i % 5 == 4:
            sentences.append([(w, "O") for w in ["the", "weather", "was", "calm", "today", "."]])
            continue
        person = [(str(rng.choice(FIRST)), "B-PER")]
        if i % 2:
            person.append((str(rng.choice(LAST)), "I-PER"))
        verb = str(rng.choice(["flew", "moved", "drove"]))
        sentences.append([("yesterday", "O"), *person, (verb, "O"), ("to", "O"), (str(rng.choice(CITIES)), "B-LOC"), (".", "O")])
    return sentences


def write_conll(path: Path, sentences, separator: str = "\t", blank: str = "") -> Path:
    path.write_text("\n".join(
        "\n".join(f"{token}{separator}{tag}" for token, tag in sentence) + "\n" + blank for sentence in sentences
    ))
    return path


def ls_tasks(sentences) -> list[dict]:
    """A Label Studio export of the sentences: one span region per entity."""
    tasks = []
    for i, pairs in enumerate(sentences):
        text, spans = sentence_spans(pairs)
        result = [
            {"id": f"r{i}-{k}", "from_name": "ner", "to_name": "text", "type": "labels",
             "value": {"start": s.start, "end": s.end, "text": text[s.start:s.end], "labels": [s.label]}}
            for k, s in enumerate(spans)
        ]
        tasks.append({"id": i + 1, "data": {"sentence": text}, "annotations": [{"id": 100 + i, "was_cancelled": False, "result": result}]})
    return tasks


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def error_of(capsys, *argv) -> str:
    assert simulate_main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


# ------------------------------------------------------------------------------ end to end, real token head


@pytest.fixture(scope="module")
def conll_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ner")
    data = write_conll(tmp / "tiny.conll", synthetic_sentences())
    out = tmp / "out"
    code = simulate_main([
        str(data), "--strategies", "mnlp,random", "--seeds", "0", "--rounds", "2", "--initial", "6", "--batch-size", "4",
        "--max-length", "16", "--out", str(out), "--quiet",
    ])
    return code, out


def test_conll_runs_end_to_end_with_entity_f1(conll_run):
    code, out = conll_run
    assert code == 0
    for name in ("rounds.csv", "summary.csv", "summary.md", "learning_curve.png"):
        assert (out / name).stat().st_size > 0
    rows = read_rows(out / "rounds.csv")
    assert list(rows[0]) == list(NER_ROUND_COLUMNS)
    assert [(r["strategy"], int(r["round"]), int(r["labels_used"])) for r in rows] == [
        (s, k, 6 + 4 * k) for s in ("mnlp", "random") for k in range(3)
    ]
    for row in rows:
        for column in ("entity_precision", "entity_recall", "entity_f1"):
            assert 0.0 <= float(row[column]) <= 1.0
        assert int(row["entities_labeled"]) >= 0
    summary = {r["strategy"]: r for r in read_rows(out / "summary.csv")}
    assert set(summary) == {"mnlp", "random"}
    full_pool = float(summary["random"]["full_pool_entity_f1_mean"])
    assert 0.0 < full_pool <= 1.0  # 24 labeled sentences of a trivial pattern: the head finds entities
    assert summary["mnlp"]["full_pool_entity_f1_mean"] == summary["random"]["full_pool_entity_f1_mean"]
    assert 0.0 <= float(summary["mnlp"]["final_entity_f1_mean"]) <= 1.0
    md = (out / "summary.md").read_text()
    assert "final entity F1" in md and "full-pool entity F1" in md and "entities of 2 types" in md


def test_label_studio_export_with_a_labels_config(tmp_path, capsys):
    sentences = synthetic_sentences(36, seed=1)
    tasks = ls_tasks(sentences)
    tasks[0]["annotations"][0]["result"][0]["value"]["labels"] = ["ORG"]  # not in the config: dropped and counted
    tasks[1]["annotations"].insert(0, {"id": 999, "was_cancelled": True, "result": []})  # the next one counts
    tasks.append({"id": 500, "data": {"sentence": "never labeled"}, "annotations": []})
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    config = tmp_path / "config.xml"
    config.write_text(LABELS_CONFIG)

    data = read_dataset(export, label_config=str(config))
    assert isinstance(data, SpanDataset) and data.labels == ("PER", "LOC") and data.skipped == 1
    assert data.dropped == {"unknown_label": 1}
    assert data.spans[1] == sentence_spans(sentences[1])[1]

    out = tmp_path / "out"
    code = simulate_main([
        str(export), "--label-config", str(config), "--strategies", "random,coreset", "--initial-strategy", "cold_start",
        "--seeds", "0", "--rounds", "1", "--initial", "6", "--batch-size", "4", "--max-length", "16", "--out", str(out),
        "--quiet",
    ])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "36 labeled texts" in err and "skipped 1 tasks" in err
    assert "dropped 1 annotated spans that cannot be used (1 unknown_label)" in err
    rows = read_rows(out / "rounds.csv")
    assert [(r["strategy"], int(r["labels_used"])) for r in rows] == [("random", 6), ("random", 10), ("coreset", 6), ("coreset", 10)]
    assert rows[0]["entities_labeled"] == rows[2]["entities_labeled"]  # one cold-start initial set for both


# ------------------------------------------------------------------------------ reading


def test_conll_reader_handles_spaces_whitespace_separators_docstart_and_iob(tmp_path):
    text = "-DOCSTART- O\n\nAnna I-PER\nSmith I-PER\nmet B-PER\nBo I-PER\n \t\nin O\nOslo I-LOC\n"
    sentences = read_conll(text.splitlines(keepends=True))
    assert len(sentences) == 2
    joined, spans = sentence_spans(sentences[0])
    # IOB1: I- starts an entity; B- splits two adjacent entities of one type (seqeval's reading).
    assert joined == "Anna Smith met Bo"
    assert spans == [Span(0, 10, "PER"), Span(11, 17, "PER")]
    assert sentence_spans(sentences[1]) == ("in Oslo", [Span(3, 7, "LOC")])
    path = write_conll(tmp_path / "data.txt", synthetic_sentences(8), separator=" ", blank="   ")
    data = read_dataset(path, format="conll")
    assert isinstance(data, SpanDataset) and len(data.texts) == 8 and data.labels == ("LOC", "PER")
    assert data.texts[0].startswith("yesterday ") and data.has_entity.tolist() == [1, 1, 1, 1, 0, 1, 1, 1]


def test_ner_defaults_to_mnlp_and_random(tmp_path):
    path = write_conll(tmp_path / "d.conll", synthetic_sentences())
    _, data, config = prepare([str(path), "--rounds", "2", "--initial", "4", "--batch-size", "4"])
    assert isinstance(data, SpanDataset) and config.strategies == ("mnlp", "random")


# ------------------------------------------------------------------------------ errors


@pytest.fixture
def conll_file(tmp_path) -> Path:
    return write_conll(tmp_path / "d.conll", synthetic_sentences())


def test_error_no_entities(tmp_path, capsys):
    path = write_conll(tmp_path / "plain.conll", [[("a", "O"), ("b", "O")]] * 10)
    assert "no entity to learn from" in error_of(capsys, path)


def test_error_unknown_tags_name_their_lines(tmp_path, capsys):
    path = tmp_path / "bad.conll"
    path.write_text("Anna PER\nwent O\n\nOslo E-LOC\n")
    err = error_of(capsys, path)
    assert "'PER' (line 1)" in err and "'E-LOC' (line 4)" in err
    path.write_text("Anna B-PER extra\n")
    assert "line 1: expected 'token<TAB>tag' or 'token tag'" in error_of(capsys, path)


def test_error_conll_needs_the_format_option_for_other_endings(tmp_path, capsys):
    path = write_conll(tmp_path / "d.txt", synthetic_sentences(8))
    assert "--format conll" in error_of(capsys, path)


def test_error_a_single_label_strategy_lists_the_ner_strategies(conll_file, capsys):
    from strategies import strategies_for

    err = error_of(capsys, conll_file, "--strategies", "margin,random")
    assert "'margin' cannot rank ner data" in err and ", ".join(strategies_for("ner")) in err


def test_error_stratified_initial_set(conll_file, capsys):
    err = error_of(capsys, conll_file, "--initial-strategy", "stratified", "--strategies", "mnlp")
    assert "--initial-strategy stratified" in err and "random or cold_start" in err


def test_error_finetune_mode(conll_file, capsys):
    err = error_of(capsys, conll_file, "--mode", "finetune", "--strategies", "mnlp")
    assert "--mode finetune is not available for NER" in err and "--mode head" in err


def test_error_budget_larger_than_the_pool(conll_file, capsys):
    assert "but the pool has only 32 rows" in error_of(capsys, conll_file, "--rounds", "10", "--batch-size", "10")


def test_error_span_export_without_a_labels_config(tmp_path, capsys):
    export = tmp_path / "export.json"
    export.write_text(json.dumps(ls_tasks(synthetic_sentences(10))))
    assert "pass the project's <Labels> config as --label-config" in error_of(capsys, export)
