"""Offline simulation CLI (backend/simulation/).

One end-to-end subprocess run loads the real bundled encoder (head mode, tiny inputs); everything else
runs in-process, with a bag-of-words stand-in classifier where a model is needed, to stay fast.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

from backend.core.exceptions import InputError
from backend.core.settings import ProjectSettings
from backend.models.base import TextClassifier
from backend.simulation.cli import main as simulate_main
from backend.simulation.dataset import Dataset
from backend.simulation.inputs import read_dataset
from backend.simulation.protocol import (
    SimulationConfig,
    initial_indices,
    make_split,
    select_batch,
    uniform_initial_indices,
)
from backend.simulation.runner import ROUND_COLUMNS, simulate
from backend.simulation.summary import (
    fmt_interval,
    labels_to_reach,
    learning_curve_auc,
    paired_interval,
    summarize,
    summary_markdown,
)

REPO = Path(__file__).resolve().parents[1]
WORDS = {
    "sport": ["goal", "match", "team", "score", "league", "coach", "referee", "season"],
    "tech": ["chip", "software", "laptop", "code", "robot", "data", "server", "cloud"],
    "food": ["pizza", "pasta", "salad", "bread", "cheese", "soup", "butter", "spice"],
}
LABEL_CONFIG = """<View>
  <Text name="text" value="$review"/>
  <Choices name="topic" toName="text" choice="single">
    <Choice value="sport"/><Choice value="tech"/><Choice value="food"/>
  </Choices>
</View>"""


def tiny_rows(n: int = 60, seed: int = 0) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    classes = list(WORDS)
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        words = rng.choice(WORDS[label], size=5).tolist() + rng.choice(WORDS[classes[(i + 1) % 3]], size=1).tolist()
        rows.append({"text": " ".join(words) + f" note {i}", "label": label})
    return rows


def write_csv(path: Path, rows: list[dict], columns=("text", "label")) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def ls_export(rows: list[dict], *, unlabeled: int = 0) -> list[dict]:
    tasks = []
    for i, row in enumerate(rows):
        tasks.append({
            "id": i + 1,
            "data": {"review": row["text"], "meta_id": i},
            "annotations": [
                {"id": 100 + i, "was_cancelled": False, "result": [
                    {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [row["label"]]}}
                ]}
            ],
        })
    for j in range(unlabeled):
        tasks.append({"id": 1000 + j, "data": {"review": f"unlabeled {j}", "meta_id": -1}, "annotations": []})
    return tasks


class BagOfWords:
    """Stand-in for the worker's TextClassifier (same interface), so in-process tests need no model."""

    output_field, thresholds, decide, probability_outputs = "proba", None, TextClassifier.decide, TextClassifier.probability_outputs

    def __init__(self, classes, settings):
        self.classes, self.settings = list(classes), settings
        self.vectorizer = HashingVectorizer(n_features=64, alternate_sign=False, norm="l2")
        self.head = None

    def embed(self, texts, progress=None):
        return self.vectorizer.transform(list(texts)).toarray().astype(np.float32)

    def fit(self, texts, y, progress=None):
        self.head = LogisticRegression(max_iter=200, C=1.0).fit(self.embed(texts), y)
        return self

    def predict_proba(self, texts, progress=None):
        proba = np.zeros((len(texts), len(self.classes)))
        proba[:, self.head.classes_] = self.head.predict_proba(self.embed(texts))
        return proba

    def committee_proba(self, texts, members, progress=None):
        return np.stack([self.predict_proba(texts)] * members)


@pytest.fixture
def fake_model(monkeypatch):
    import backend.models.families

    monkeypatch.setattr(
        backend.models.families, "build_classifier", lambda classes, settings, multi_label=False, model_path=None: BagOfWords(classes, settings)
    )


def run_cli(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "backend.simulation", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------ end to end, real model


@pytest.fixture(scope="module")
def e2e_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    data = write_csv(tmp / "tiny.csv", tiny_rows(60))
    out = tmp / "out"
    proc = run_cli(
        str(data), "--strategies", "margin,random", "--seeds", "0,1", "--rounds", "2", "--initial", "6",
        "--batch-size", "5", "--mode", "head", "--max-length", "16", "--out", str(out),
    )
    return proc, out


def test_cli_end_to_end_writes_consistent_outputs(e2e_run):
    proc, out = e2e_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = read_csv(out / "rounds.csv")
    assert list(rows[0]) == list(ROUND_COLUMNS)
    assert len(rows) == 2 * 2 * 3  # strategies × seeds × (rounds + 1)
    for strategy in ("margin", "random"):
        for seed in ("0", "1"):
            run = [r for r in rows if r["strategy"] == strategy and r["seed"] == seed]
            assert [int(r["round"]) for r in run] == [0, 1, 2]
            assert [int(r["labels_used"]) for r in run] == [6, 11, 16]
            for r in run:
                for metric in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
                    assert 0.0 <= float(r[metric]) <= 1.0
                assert float(r["train_seconds"]) >= 0 and float(r["query_seconds"]) >= 0
            assert float(run[-1]["query_seconds"]) == 0.0  # no query after the last round
    summary = read_csv(out / "summary.csv")
    assert [s["strategy"] for s in summary] == ["margin", "random"]
    assert all(s["n_seeds"] == "2" for s in summary)
    assert float(next(s for s in summary if s["strategy"] == "random")["delta_auc_vs_random_mean"]) == 0.0
    md = (out / "summary.md").read_text()
    assert "| margin |" in md and "| random |" in md
    png = (out / "learning_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_cli_progress_and_summary_on_stderr(e2e_run):
    proc, _ = e2e_run
    assert "simulate" in proc.stderr  # the tqdm bar's description
    assert "margin: AUC" in proc.stderr


# --------------------------------------------------------------------------- in-process, stand-in model


def test_label_studio_export_runs_end_to_end(tmp_path, fake_model, capsys):
    export = tmp_path / "export.json"
    export.write_text(json.dumps(ls_export(tiny_rows(45), unlabeled=3)))
    config = tmp_path / "config.xml"
    config.write_text(LABEL_CONFIG)
    out = tmp_path / "out"
    code = simulate_main([
        str(export), "--label-config", str(config), "--strategies", "entropy,random,coreset", "--n-seeds", "2",
        "--rounds", "3", "--initial", "5", "--batch-size", "4", "--out", str(out), "--quiet",
    ])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "skipped 3 tasks" in err
    rows = read_csv(out / "rounds.csv")
    assert len(rows) == 3 * 2 * 4
    assert sorted({int(r["labels_used"]) for r in rows}) == [5, 9, 13, 17]
    assert {s["strategy"] for s in read_csv(out / "summary.csv")} == {"entropy", "random", "coreset"}


MULTI_LABEL_CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="tags" toName="text" choice="multiple"><Choice value="ball"/><Choice value="vote"/><Choice value="chip"/></Choices></View>"""


def multi_label_rows(n: int) -> list[tuple[str, list[str]]]:
    """Sentences about one or two of three subjects, or about none of them."""
    subjects = {"ball": "the striker scored a late goal", "vote": "parliament voted on the budget",
                "chip": "the new phone has a faster chip"}
    kinds = [["ball"], ["vote"], ["chip"], ["ball", "vote"], ["vote", "chip"], []]
    rows = []
    for i in range(n):
        labels = kinds[i % len(kinds)]
        rows.append((" and ".join(subjects[name] for name in labels) or f"the weather was mild on day {i}", labels))
    return rows


def test_multi_label_tables_and_exports_simulate_with_the_worker_model(tmp_path, capsys):
    """The real one-vs-rest head: label sets in, subset accuracy and micro-F1 out, for either input form."""
    table = tmp_path / "multi.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((f"{text} ({i})", "|".join(labels)) for i, (text, labels) in enumerate(multi_label_rows(48)))
    out = tmp_path / "out"
    common = ["--strategies", "mean_binary_entropy,label_cardinality_inconsistency,random", "--seeds", "0", "--rounds", "2",
              "--initial", "6", "--batch-size", "4", "--max-length", "16", "--quiet"]
    code = simulate_main([str(table), "--label-separator", "|", "--out", str(out), *common])
    assert code == 0, capsys.readouterr().err
    rows = read_csv(out / "rounds.csv")
    assert {r["strategy"] for r in rows} == {"mean_binary_entropy", "label_cardinality_inconsistency", "random"}
    final = [r for r in rows if int(r["labels_used"]) == 14]
    assert all(0.0 <= float(r[key]) <= 1.0 for r in final for key in ("accuracy", "f1_micro", "f1_macro"))
    assert max(float(r["accuracy"]) for r in final) >= 0.9  # whole label sets learned from 14 labels

    export = tmp_path / "export.json"
    tasks = [{"id": i, "data": {"text": f"{text} ({i})"},
              "annotations": [{"result": [{"from_name": "tags", "to_name": "text", "type": "choices", "value": {"choices": labels}}] if labels else []}]}
             for i, (text, labels) in enumerate(multi_label_rows(48))]
    export.write_text(json.dumps(tasks))
    config = tmp_path / "config.xml"
    config.write_text(MULTI_LABEL_CONFIG)
    code = simulate_main([str(export), "--label-config", str(config), "--out", str(tmp_path / "out2"), *common])
    assert code == 0, capsys.readouterr().err
    assert read_csv(tmp_path / "out2" / "rounds.csv")[0]["f1_micro"]


def test_a_single_label_strategy_is_refused_on_multi_label_data_with_the_alternatives(tmp_path, capsys):
    table = tmp_path / "multi.csv"
    table.write_text("text,label\n" + "".join(f"text {i},{'a|b' if i % 2 else 'a'}\n" for i in range(40)))
    code = simulate_main([str(table), "--label-separator", "|", "--strategies", "margin", "--quiet", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0 and "'margin' cannot rank multi_label data" in err and "mean_binary_entropy" in err


def test_label_studio_export_infers_fields_or_asks(tmp_path):
    tasks = ls_export(tiny_rows(12))
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    # Only one *string* data field ("review"; meta_id is a number): inferred.
    data = read_dataset(export)
    assert data.classes == ["food", "sport", "tech"] and len(data.texts) == 12
    assert data.texts[0] == tasks[0]["data"]["review"]
    # Two string fields: ambiguous, ask for --text-field.
    for task in tasks:
        task["data"]["title"] = "x"
    export.write_text(json.dumps(tasks))
    with pytest.raises(InputError, match="--text-field"):
        read_dataset(export)
    assert len(read_dataset(export, text_field="review").texts) == 12
    # Label config order wins for classes.
    config = tmp_path / "c.xml"
    config.write_text(LABEL_CONFIG)
    assert read_dataset(export, label_config=str(config)).classes == ["sport", "tech", "food"]


def test_cancelled_annotations_are_ignored(tmp_path):
    tasks = ls_export(tiny_rows(12))
    tasks[0]["annotations"][0]["was_cancelled"] = True
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    data = read_dataset(export)
    assert len(data.texts) == 11 and data.skipped == 1


def test_jsonl_and_custom_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"body": r["text"], "y": r["label"]}) for r in tiny_rows(9)) + "\n")
    data = read_dataset(path, text_column="body", label_column="y")
    assert len(data.texts) == 9 and len(data.classes) == 3


def test_cold_start_initial_set(tmp_path, fake_model, capsys):
    data = write_csv(tmp_path / "d.csv", tiny_rows(60))
    code = simulate_main([str(data), "--strategies", "margin", "--seeds", "3", "--rounds", "1", "--initial", "6",
                          "--batch-size", "3", "--initial-strategy", "cold_start", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert [r["labels_used"] for r in read_csv(tmp_path / "o" / "rounds.csv")] == ["6", "9"]


def test_a_one_class_start_is_ranked_by_the_cold_start_phase_until_a_model_can_train(fake_model, monkeypatch):
    fitted_on = []
    original_fit = BagOfWords.fit
    monkeypatch.setattr(BagOfWords, "fit", lambda self, texts, y, progress=None: (fitted_on.append(set(y.tolist())),
                                                                               original_fit(self, texts, y))[1])
    # 54 sport texts, 3 tech, 3 food: a uniform random start of 4 labels can see sport only (as real projects can).
    rows = [r for r in tiny_rows(162) if r["label"] == "sport"] + [r for r in tiny_rows(9) if r["label"] != "sport"]
    data = Dataset([r["text"] for r in rows], [r["label"] for r in rows], sorted(WORDS))
    seed = next(s for s in range(50) if len(set(data.y[make_split(data.y, 0.2, s)[0][uniform_initial_indices(48, 4, s)]])) == 1)
    config = SimulationConfig(strategies=("margin",), seeds=(seed,), initial=4, batch_size=4, rounds=10, initial_strategy="random")
    result = simulate(data, config, progress=False)
    _, test = make_split(data.y, 0.2, seed)
    first = result.rows[0]
    # No model yet: round 0 predicts the one class seen, and its accuracy is that class's share of the test set.
    assert first["accuracy"] == pytest.approx(np.mean(data.y[test] == data.classes.index("sport")))
    assert [r["labels_used"] for r in result.rows] == list(range(4, 48, 4))
    # Models were trained only once two classes were labeled (the first fits of the run), and then every round.
    assert fitted_on and all(len(classes) >= 2 for classes in fitted_on) and len(fitted_on) < len(result.rows)
    assert not result.notes  # no fallback: the cold-start phase ranked, then the strategy took over


def test_initial_strategies_draw_uniformly_by_ranking_or_stratified(fake_model):
    chosen = uniform_initial_indices(100, 10, seed=3)
    assert len(set(chosen.tolist())) == 10 and chosen.max() < 100
    assert np.array_equal(chosen, uniform_initial_indices(100, 10, seed=3))
    assert not np.array_equal(chosen, uniform_initial_indices(100, 10, seed=4))
    rows = tiny_rows(60)
    data = Dataset([r["text"] for r in rows], [r["label"] for r in rows], sorted(WORDS))
    firsts = {}
    for initial in ("random", "cold_start", "stratified"):
        config = SimulationConfig(strategies=("random",), seeds=(0,), initial=6, batch_size=3, rounds=1, initial_strategy=initial)
        firsts[initial] = simulate(data, config, progress=False).rows[0]["labels_used"]
    assert firsts == {"random": 6, "cold_start": 6, "stratified": 6}


def test_the_realistic_protocol_is_reproducible_under_a_seed(fake_model):
    rows = tiny_rows(60)
    data = Dataset([r["text"] for r in rows], [r["label"] for r in rows], sorted(WORDS))
    for start in ("random", "cold_start"):
        config = SimulationConfig(strategies=("margin", "random"), seeds=(2,), initial=5, batch_size=5, rounds=3,
                                  initial_strategy=start)
        runs = [[{k: v for k, v in r.items() if not k.endswith("seconds")} for r in simulate(data, config, progress=False).rows]
                for _ in range(2)]
        assert runs[0] == runs[1]


def import_bench(monkeypatch, name: str):
    """A module of bench/, imported the way the benchmark imports it."""
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    loaded = set(sys.modules)
    try:
        return __import__(name)
    finally:  # bench/ names its modules plainly (corpora, realistic): leave none behind for other tests
        for module in set(sys.modules) - loaded:
            if str(getattr(sys.modules[module], "__file__", "")).startswith(str(REPO / "bench")):
                del sys.modules[module]


@pytest.fixture
def realistic(monkeypatch):
    return import_bench(monkeypatch, "realistic")


@pytest.fixture
def realistic_report(monkeypatch):
    return import_bench(monkeypatch, "realistic_report")


def test_the_l2_lever_scales_each_embedding_to_unit_length_and_keeps_its_direction(realistic):
    l2_normalised = realistic.l2_normalised
    embeddings = np.array([[3.0, 4.0], [0.0, 2.0], [-1.0, 1.0]], dtype=np.float32)
    scaled = l2_normalised(embeddings)
    np.testing.assert_allclose(np.linalg.norm(scaled, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(scaled[0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(scaled * np.linalg.norm(embeddings, axis=1, keepdims=True), embeddings, rtol=1e-6)


def test_the_lever_strategies_run_in_the_simulation_from_the_worker_registry(fake_model):
    """al-simulate and the worker build strategies from one registry, so a lever measured here is the one a
    project owner selects in its settings."""
    rows = tiny_rows(60)
    data = Dataset([r["text"] for r in rows], [r["label"] for r in rows], sorted(WORDS))
    levers = ("information_density", "balanced_margin")
    assert all(ProjectSettings(strategy=name).strategy == name for name in levers)
    config = SimulationConfig(strategies=(*levers, "margin"), seeds=(1,), initial=6, batch_size=5, rounds=3)
    result = simulate(data, config, progress=False)
    runs = {name: [r["labels_used"] for r in result.rows if r["strategy"] == name] for name in config.strategies}
    assert all(labels == [6, 11, 16, 21] for labels in runs.values())
    assert result.notes == []  # no round fell back to random


def test_the_cv_lever_reaches_the_classifier_as_the_worker_setting(realistic):
    config = dataclasses.replace(SimulationConfig(), **realistic.LEVERS["cv_c"].settings)
    assert config.project_settings("margin", seed=0).head_regularization == "cv"


def test_a_saved_run_loads_back_with_its_reference(realistic, tmp_path):
    rows = [{column: 0 for column in ROUND_COLUMNS} | {"strategy": "margin", "seed": 3, "accuracy": 0.5}]
    path = realistic.save_rounds(tmp_path / "results", "bbc", "random", "finetune", rows, {3: 0.9}, {"device": "cuda"})
    loaded_rows, reference = realistic.load_rounds(tmp_path / "results", "bbc", "random", "finetune")
    assert reference == {3: 0.9} and [r["strategy"] for r in loaded_rows] == ["margin"]
    assert json.loads(path.with_suffix(".meta.json").read_text())["device"] == "cuda"
    assert realistic.load_rounds(tmp_path / "results", "bbc", "cold_start", "finetune") is None


def test_a_resumed_run_keeps_its_seeds_runs_only_the_missing_ones_and_refuses_other_embeddings(
        realistic, fake_model, monkeypatch, tmp_path):
    """A SetFit lever takes hours on a CPU: every seed is saved as it ends, and --resume adds only the seeds a
    run lacks, exactly as a run of all seeds would have produced them."""
    rows = tiny_rows(60)
    data = Dataset([r["text"] for r in rows], [r["label"] for r in rows], sorted(WORDS))
    embeddings = {"embeddings": np.arange(12, dtype=np.float32).reshape(4, 3)}

    def tiny_inputs(name, seeds, strategies, loop):
        config = SimulationConfig(strategies=strategies, seeds=seeds, initial=5, batch_size=5, rounds=2,
                                  initial_strategy=loop["initial_strategy"])
        return dict(embeddings), data, config

    monkeypatch.setattr(realistic, "dataset_and_config", tiny_inputs)
    monkeypatch.setattr(realistic, "classifier_factory", lambda data, cache, holder: None)

    def run(results, seeds, resume):
        realistic.run("tiny", seeds, ("margin", "random"), {}, results, ("cv_c",), resume=resume)
        saved, reference = realistic.load_rounds(results, "tiny", "random", "cv_c")
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in saved], reference

    partial, _ = run(tmp_path / "resumed", (0, 2), resume=False)
    resumed, reference = run(tmp_path / "resumed", (0, 1, 2), resume=True)
    complete, _ = run(tmp_path / "complete", (0, 1, 2), resume=False)
    assert sorted(reference) == [0, 1, 2]
    assert resumed[:len(partial)] == partial  # the seeds it held are kept as they were, not rerun
    assert {r["seed"] for r in resumed[len(partial):]} == {1}
    by_key = lambda table: sorted(table, key=lambda r: (r["seed"], r["strategy"], r["round"]))
    assert by_key(resumed) == by_key(complete)

    embeddings["embeddings"] = embeddings["embeddings"] + 1
    with pytest.raises(SystemExit, match="other embeddings"):
        run(tmp_path / "resumed", (0, 1, 2, 3), resume=True)


def test_paired_deltas_are_per_seed_differences_with_a_student_t_interval(realistic_report):
    first = {("margin", 0): {"auc": 0.80}, ("margin", 1): {"auc": 0.70}, ("margin", 2): {"auc": 0.75}}
    second = {("random", 0): {"auc": 0.78}, ("random", 1): {"auc": 0.66}, ("random", 3): {"auc": 0.10}}
    # seeds 0 and 1 only: differences 2 and 4 pp, mean 3, half-width t(0.975, 1) * sd / sqrt(2) = 12.706 * 1.414 / 1.414
    assert realistic_report.paired_delta(first, second, "margin", "random") == "+3.0 [-9.7, +15.7]"
    assert realistic_report.paired_delta(first, second, "margin", "entropy") == "not run"


def test_a_full_paths_cost_is_the_median_over_seeds_of_the_default_strategys_longest_round(realistic_report):
    rows = [{"strategy": strategy, "seed": seed, "train_seconds": seconds} for strategy, seed, seconds in (
        ("margin", 0, 0.1), ("margin", 0, 900.0), ("margin", 0, 0.2),  # seed 0 fine-tuned in its second round
        ("margin", 1, 300.0), ("margin", 1, 0.1),
        ("margin", 2, 0.3), ("margin", 2, 60.0),
        ("random", 0, 5000.0),  # another strategy's rounds do not count
    )]
    assert realistic_report.fine_tune_seconds(rows) == "the round that fine-tuned trained for 300 s (median over seeds)"


def test_simulation_is_reproducible_and_never_requeries(fake_model):
    rows = tiny_rows(60)
    data = Dataset([r["text"] for r in rows], [r["label"] for r in rows], sorted(WORDS))
    config = SimulationConfig(strategies=("margin", "random"), seeds=(0,), initial=6, batch_size=5, rounds=4)
    first = simulate(data, config, progress=False)
    second = simulate(data, config, progress=False)
    strip = lambda rs: [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rs]  # noqa: E731
    assert strip(first.rows) == strip(second.rows)
    assert [r["labels_used"] for r in first.rows if r["strategy"] == "margin"] == [6, 11, 16, 21, 26]


# ---------------------------------------------------------------------------------- pure helpers


def test_split_and_initial_set_are_stratified_and_fixed_per_seed():
    y = np.repeat([0, 1, 2], [30, 20, 10])
    pool, test = make_split(y, 0.2, seed=1)
    assert len(test) == 12 and not set(pool) & set(test)
    assert np.array_equal(test, make_split(y, 0.2, seed=1)[1])
    assert set(np.bincount(y[test])) == {6, 4, 2}
    chosen = initial_indices(y[pool], 6, seed=0)
    assert len(set(chosen)) == 6 and set(y[pool][chosen]) == {0, 1, 2}
    assert np.array_equal(chosen, initial_indices(y[pool], 6, seed=0))
    assert not np.array_equal(chosen, initial_indices(y[pool], 6, seed=5))


def test_select_batch_takes_highest_with_stable_ties():
    assert select_batch(np.array([0.1, 0.9, 0.5, 0.9, 0.2]), 3).tolist() == [1, 3, 2]


def test_auc_and_labels_to_reach():
    assert learning_curve_auc([10, 20, 30], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert learning_curve_auc([10, 20, 30], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert learning_curve_auc([10], [0.8]) == pytest.approx(0.8)
    assert labels_to_reach([10, 20, 30], [0.5, 0.9, 0.95], 0.9) == 20
    assert labels_to_reach([10, 20, 30], [0.5, 0.6, 0.7], 0.9) is None


def test_summary_reports_not_reached_and_delta_to_random():
    rows = []
    for strategy, curve in (("random", [0.5, 0.6, 0.7]), ("margin", [0.5, 0.8, 0.9])):
        for seed in (0, 1):
            for k, acc in enumerate(curve):
                rows.append({"strategy": strategy, "seed": seed, "round": k, "labels_used": 10 + 10 * k,
                             "accuracy": acc, "f1_macro": acc, "train_seconds": 0.1, "query_seconds": 0.01})
    summary = {e["strategy"]: e for e in summarize(rows, {0: 0.9, 1: 0.9})}
    assert summary["margin"]["delta_auc_vs_random_mean"] == pytest.approx(0.15)
    assert summary["margin"]["labels_to_98_mean"] == 30 and summary["margin"]["labels_to_98_reached"] == "2/2"
    assert summary["random"]["labels_to_95_reached"] == "0/2"
    assert "not reached" in summary_markdown(list(summary.values()))


def test_the_paired_difference_gets_a_student_t_interval():
    # Differences 1, 2, 3: mean 2, s = 1, t(0.975, 2) = 4.303, so 2 ± 4.303 / sqrt(3).
    low, high = paired_interval([1.0, 2.0, 3.0])
    assert (low, high) == pytest.approx((2 - 4.302653 / 3**0.5, 2 + 4.302653 / 3**0.5), rel=1e-6)
    assert np.isnan(paired_interval([0.4])).all()  # one seed: no interval
    assert fmt_interval(low, high, 100.0) == "[-48.4, +448.4]"


# ----------------------------------------------------------------------------------- bad input


def _error(argv, capsys) -> str:
    code = simulate_main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def good_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "good.csv", tiny_rows(60))


def test_error_missing_file(tmp_path, capsys):
    assert "input file not found" in _error([str(tmp_path / "nope.csv")], capsys)


def test_error_missing_column_lists_available(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", [{"body": r["text"], "label": r["label"]} for r in tiny_rows(9)], ("body", "label"))
    message = _error([str(path)], capsys)
    assert "text column 'text' not found" in message and "available columns: body, label" in message
    message = _error([str(path), "--text-column", "body", "--label-column", "topic"], capsys)
    assert "label column 'topic' not found" in message


def test_error_single_class(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", [{"text": f"t {i}", "label": "a"} for i in range(10)])
    assert "at least 2 classes" in _error([str(path)], capsys)


def test_error_empty_texts_counts_rows(tmp_path, capsys):
    rows = tiny_rows(30)
    for i in (3, 7):
        rows[i]["text"] = "  "
    message = _error([str(write_csv(tmp_path / "d.csv", rows))], capsys)
    assert "2 of 30 rows have an empty text" in message and "rows 4, 8" in message


def test_error_empty_labels(tmp_path, capsys):
    rows = tiny_rows(30)
    rows[0]["label"] = ""
    assert "1 of 30 rows have an empty label" in _error([str(write_csv(tmp_path / "d.csv", rows))], capsys)


def test_error_unknown_strategy_lists_valid(good_csv, capsys):
    message = _error([str(good_csv), "--strategies", "margin,bogus"], capsys)
    assert "'bogus'" in message and "margin" in message and "entropy" in message and "random" in message


def test_error_sizes_that_do_not_fit(good_csv, capsys):
    message = _error([str(good_csv), "--initial", "10", "--batch-size", "10", "--rounds", "10"], capsys)
    assert "110 labels" in message and "pool has only 48 rows" in message
    assert "smaller than the number of classes" in _error([str(good_csv), "--initial", "2", "--initial-strategy", "stratified"], capsys)
    assert "--batch-size must be at least 1" in _error([str(good_csv), "--batch-size", "0"], capsys)
    assert "--test-fraction" in _error([str(good_csv), "--test-fraction", "1.5"], capsys)
    assert "--test-fraction" in _error([str(good_csv), "--test-fraction", "0.01"], capsys)


def test_error_bad_seeds_and_options(good_csv, capsys):
    assert "--seeds must be comma-separated integers" in _error([str(good_csv), "--seeds", "0,x"], capsys)
    assert "invalid choice" in _error([str(good_csv), "--mode", "tiny"], capsys)
    assert "not a local model folder" in _error([str(good_csv), "--model", "/no/such/model"], capsys)


def test_error_rare_class_and_bad_files(tmp_path, capsys):
    rows = tiny_rows(30) + [{"text": "lonely", "label": "other"}]
    assert "fewer than 2 examples" in _error([str(write_csv(tmp_path / "d.csv", rows))], capsys)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not valid JSON" in _error([str(bad)], capsys)
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    assert "use a .csv" in _error([str(odd)], capsys)


def test_error_label_studio_choices_outside_config(tmp_path, capsys):
    tasks = ls_export(tiny_rows(12))
    tasks[0]["annotations"][0]["result"][0]["value"]["choices"] = ["weather"]
    export = tmp_path / "e.json"
    export.write_text(json.dumps(tasks))
    config = tmp_path / "c.xml"
    config.write_text(LABEL_CONFIG)
    assert "weather" in _error([str(export), "--label-config", str(config)], capsys)
    assert "label config file not found" in _error([str(export), "--label-config", str(tmp_path / "x.xml")], capsys)


def test_error_exit_code_in_subprocess(tmp_path):
    proc = run_cli(str(tmp_path / "missing.csv"), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: input file not found") and "Traceback" not in proc.stderr


def test_pool_limit_subsamples_before_the_split(good_csv, capsys):
    message = _error([str(good_csv), "--pool-limit", "20", "--initial", "6", "--batch-size", "5", "--rounds", "3"], capsys)
    assert "pool has only 16 rows (20 rows minus 4 test)" in message
