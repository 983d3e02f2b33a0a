"""Labeled classification data for the simulation: tables (CSV, TSV, JSONL, JSON records) and Label Studio
exports with choices annotations (NER data: ``ner_dataset``; which file is which: ``inputs``)."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.core.exceptions import InputError
from backend.core.labels import TextClassificationSpec
from backend.simulation.records import first_result, rows_list

# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    classes: list[str]
    source: str = ""
    skipped: int = 0  # tasks without a usable annotation (Label Studio exports)
    #: Each label is a set, written as ``backend.core.labels`` writes it: a JSON list of class names.
    multi_label: bool = False

    @property
    def y(self) -> np.ndarray:
        """Class indices, or for multi-label data a 0/1 indicator matrix (n, n_classes)."""
        return TextClassificationSpec("", "", "", tuple(self.classes), multiple=self.multi_label).targets(self.labels)


def read_delimited(path: Path, delimiter: str) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            records = list(reader)
            return records, list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot parse {path} as {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} line {number} is not valid JSON: {exc}") from None
            if not isinstance(record, dict):
                raise InputError(f"{path} line {number} is not a JSON object")
            records.append(record)
    return records


def columns_of(records: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for record in records for key in record))


def table_dataset(records, columns, text_column, label_column, source, label_separator=None) -> Dataset:
    if not records:
        raise InputError(f"{source} has no rows")
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in columns:
            option = "--text-column" if role == "text" else "--label-column"
            raise InputError(
                f"{role} column {column!r} not found in {source}; available columns: {', '.join(map(str, columns))} "
                f"(choose one with {option})" + ("; a two-column CoNLL file needs --format conll" if source.endswith(".tsv") else "")
            )
    texts = [_cell(record.get(text_column)) for record in records]
    labels = [_cell(record.get(label_column)) for record in records]
    # Row numbers as a user sees them: 1 = first data row.
    empty_text = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if empty_text:
        raise InputError(
            f"{len(empty_text)} of {len(texts)} rows have an empty text in column {text_column!r} "
            f"(rows {rows_list(empty_text)}); fill them in or remove them"
        )
    if label_separator:
        sets = [sorted({name.strip() for name in label.split(label_separator) if name.strip()}) for label in labels]
        return checked(Dataset(texts, [json.dumps(names) for names in sets], sorted({n for names in sets for n in names}), source, multi_label=True))
    empty_label = [i + 1 for i, label in enumerate(labels) if not label.strip()]
    if empty_label:
        raise InputError(
            f"{len(empty_label)} of {len(labels)} rows have an empty label in column {label_column!r} "
            f"(rows {rows_list(empty_label)}); the simulation needs every row labeled"
        )
    labels = [label.strip() for label in labels]
    return checked(Dataset(texts, labels, sorted(set(labels)), source))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value if isinstance(value, str) else str(value)


def export_dataset(tasks, spec: TextClassificationSpec | None, text_field: str | None, source: str) -> Dataset:
    """A Label Studio export's choices annotations, read under ``spec`` (the project's config), or without one by
    inferring the text field and the choices control."""
    field_name = text_field or (spec.value_field if spec else None) or _infer_text_field(tasks)
    from_name = spec.from_name if spec else _infer_from_name(tasks)

    texts, labels, unlabeled, missing_field = [], [], 0, []
    for number, task in enumerate(tasks, 1):
        label = _multi_label_of(task, spec) if spec is not None and spec.multiple else _task_label(task, from_name)
        if label is None:
            unlabeled += 1
            continue
        if field_name not in task["data"]:
            missing_field.append(number)
            continue
        texts.append(_cell(task["data"][field_name]))
        labels.append(label)
    if missing_field:
        raise InputError(
            f"{len(missing_field)} labeled tasks have no data field {field_name!r} (tasks {rows_list(missing_field)}); "
            "pass --text-field or --label-config"
        )
    if not texts:
        spans = any(region.get("type") == "labels" for task in tasks for region in first_result(task) or [])
        raise InputError(
            f"{source} has {len(tasks)} tasks but none with a choices annotation to learn from"
            + ("; its annotations hold spans: pass the project's <Labels> config as --label-config" if spans else "")
        )
    empty = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise InputError(f"{len(empty)} of {len(texts)} labeled tasks have an empty text in data field {field_name!r}")
    if spec and spec.multiple:
        unknown = sorted({name for label in labels for name in json.loads(label)} - set(spec.classes))
        if unknown:
            raise InputError(f"annotations use choices not in the label config: {', '.join(unknown)}")
        return checked(Dataset(texts, labels, list(spec.classes), source, skipped=unlabeled, multi_label=True))
    if spec:
        unknown = sorted(set(labels) - set(spec.classes))
        if unknown:
            raise InputError(
                f"annotations use choices not in the label config: {', '.join(unknown)} "
                f"(config choices: {', '.join(spec.classes)})"
            )
        classes = [c for c in spec.classes if c in set(labels)]
    else:
        classes = sorted(set(labels))
    return checked(Dataset(texts, labels, classes, source, skipped=unlabeled))


def _infer_text_field(tasks) -> str:
    fields = list(dict.fromkeys(k for task in tasks for k, v in task["data"].items() if isinstance(v, str)))
    if len(fields) == 1:
        return fields[0]
    if not fields:
        raise InputError("the tasks' data holds no text field; pass --text-field or --label-config")
    raise InputError(
        f"cannot tell which task data field holds the text (found: {', '.join(fields)}); "
        "pass --text-field or --label-config"
    )


def _infer_from_name(tasks) -> str | None:
    names = {
        region.get("from_name")
        for task in tasks
        for annotation in task.get("annotations") or []
        for region in annotation.get("result") or []
        if region.get("type", "choices") == "choices" and (region.get("value") or {}).get("choices")
    }
    if len(names) > 1:
        raise InputError(
            f"the annotations hold several choices controls ({', '.join(sorted(map(str, names)))}); "
            "pass --label-config to pick the one to learn"
        )
    return next(iter(names), None)


def _task_label(task, from_name: str | None) -> str | None:
    """The first non-cancelled annotation's choice for ``from_name``."""
    for annotation in task.get("annotations") or []:
        if annotation.get("was_cancelled"):
            continue
        for region in annotation.get("result") or []:
            if region.get("from_name") == from_name and region.get("type", "choices") == "choices":
                choices = (region.get("value") or {}).get("choices") or []
                if choices:
                    return str(choices[0])
    return None


def _multi_label_of(task, spec) -> str | None:
    """The first non-cancelled annotation's label set (``backend.core.labels``' rule); an empty set is an answer."""
    result = first_result(task)
    return None if result is None else spec.label_of(result)


def checked(data: Dataset) -> Dataset:
    if data.multi_label:
        if len(data.classes) < 2:
            raise InputError(f"need at least 2 labels for multi-label classification; {data.source} has {len(data.classes)}")
        return data
    if len(data.classes) < 2:
        found = data.classes[0] if data.classes else "none"
        raise InputError(f"need at least 2 classes to classify; {data.source} has 1 ({found!r})" if data.classes else
                         f"need at least 2 classes to classify; {data.source} has none")
    counts = {c: 0 for c in data.classes}
    for label in data.labels:
        counts[label] += 1
    rare = sorted(c for c, n in counts.items() if n < 2)
    if rare:
        raise InputError(
            f"classes with fewer than 2 examples cannot be split into pool and test: {', '.join(rare)}; "
            "add examples or remove those rows"
        )
    return data
