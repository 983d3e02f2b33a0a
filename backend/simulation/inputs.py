"""Which reader reads an input file: a table, a CoNLL file or a Label Studio export, classification or NER."""
from __future__ import annotations

import json
from pathlib import Path

from backend.core.exceptions import InputError, UnsupportedLabelConfig
from backend.core.labels import LabelSpec, parse_label_config
from backend.simulation.dataset import (
    Dataset,
    columns_of,
    export_dataset,
    read_delimited,
    read_jsonl,
    table_dataset,
)
from backend.simulation.ner_dataset import SpanDataset, conll_dataset
from backend.simulation.ner_dataset import export_dataset as span_export_dataset


def read_dataset(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_config: str | None = None,
    text_field: str | None = None,
    label_separator: str | None = None,
    format: str = "auto",
) -> Dataset | SpanDataset:
    """Read a table (csv/tsv/jsonl/json records) or a Label Studio JSON export; validate it.

    Multi-label data: a table whose label cells list labels joined by ``label_separator`` (an empty cell:
    none apply), or an export read with a ``choice="multiple"`` ``label_config``. NER data, read into a
    ``backend.simulation.ner_dataset.SpanDataset``: a two-column CoNLL file (``.conll``, or any file with ``format="conll"``),
    or an export read with a ``<Labels>`` ``label_config``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir():
        raise InputError(f"input {path} is a folder; pass a CSV, TSV, JSONL, CoNLL or Label Studio JSON export file")
    suffix = path.suffix.lower()
    if format == "conll" or suffix == ".conll":
        return conll_dataset(path)
    if suffix in (".csv", ".tsv"):
        records, columns = read_delimited(path, "\t" if suffix == ".tsv" else ",")
        return table_dataset(records, columns, text_column, label_column, str(path), label_separator)
    if suffix in (".jsonl", ".ndjson"):
        records = read_jsonl(path)
        return table_dataset(records, columns_of(records), text_column, label_column, str(path), label_separator)
    if suffix == ".json":
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(payload, dict) and "data" in payload:
            payload = [payload]  # a single-task export
        if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
            raise InputError(f"{path} must hold a JSON list of objects (a Label Studio export or table records)")
        if payload and all("data" in item and isinstance(item["data"], dict) for item in payload):
            return _export(payload, label_config, text_field, str(path))
        return table_dataset(payload, columns_of(payload), text_column, label_column, str(path), label_separator)
    raise InputError(
        f"cannot read {path.name}: use a .csv, .tsv, .jsonl, .conll or .json (Label Studio export) file "
        "(a two-column CoNLL file with another ending: --format conll)"
    )


def _export(tasks: list[dict], label_config: str | None, text_field: str | None, source: str) -> Dataset | SpanDataset:
    """A Label Studio export, read under its project's label config when one is given: spans for a <Labels> config."""
    spec = read_label_config(label_config) if label_config else None
    if spec is not None and spec.task_type == "ner":
        return span_export_dataset(tasks, spec, text_field, source)
    return export_dataset(tasks, spec, text_field, source)


def read_label_config(path: str) -> LabelSpec:
    config_file = Path(path)
    if not config_file.is_file():
        raise InputError(f"label config file not found: {config_file}")
    try:
        return parse_label_config(config_file.read_text(encoding="utf-8"))
    except UnsupportedLabelConfig as exc:
        raise InputError(f"label config {config_file}: {exc}") from None
