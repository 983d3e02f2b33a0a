"""Which label configs the backend serves, and how it reads and writes their results.

Supported: exactly one control reading from one ``Text`` object, any tag names and any ``$field``: a
``Choices`` control, single-choice (one class per task) or ``choice="multiple"`` (a set of labels per task,
possibly empty), or a ``Labels`` control (named-entity spans, ``SpanLabelingSpec``). Parsing goes through
label-studio-sdk's ``LabelInterface``.

The one rule for "which label does a task have": ``annotation_label``, the label of its newest submitted
annotation, each annotation read by the control's ``label_of``. A single-choice label is the class
name; a multi-label one is the JSON list of the chosen names in config order (``'["a", "c"]'``, ``'[]'``
for "none apply"), so both keep one text column in the task mirror. ``targets`` turns labels into what a
model trains on: class indices, or a 0/1 indicator matrix.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np
from label_studio_sdk.label_interface import LabelInterface

from backend.core.exceptions import UnsupportedLabelConfig
from backend.core.spans import Span, span_region, spans_of_result
from strategies import MULTI_LABEL, NER, SINGLE_LABEL

#: A lone UTF-16 surrogate: legal in JSON as an escape (``"\ud800"``), but no text a tokenizer can encode.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")



@dataclass(frozen=True)
class _TextControlSpec:
    """One control (``from_name``) labeling one ``<Text>`` object (``to_name``) that shows ``$value_field``."""

    from_name: str
    to_name: str
    value_field: str
    classes: tuple[str, ...]

    def text_of(self, task_data: Any) -> str | None:
        """The text the config's ``<Text>`` shows for a task's data, or None when the data has no such field."""
        if not isinstance(task_data, Mapping) or self.value_field not in task_data:
            return None
        value = task_data[self.value_field]
        text = value if isinstance(value, str) else json.dumps(value)
        return _LONE_SURROGATE.sub("\ufffd", text)  # shown as the replacement character, as a browser would

    @property
    def missing_field_reason(self) -> str:
        return f"no field {self.value_field!r} in the task data (the Text tag reads ${self.value_field})"


@dataclass(frozen=True)
class TextClassificationSpec(_TextControlSpec):
    #: ``choice="multiple"``: each task takes a set of the classes (multi-label).
    multiple: bool = False

    @property
    def task_type(self) -> str:
        return MULTI_LABEL if self.multiple else SINGLE_LABEL

    def label_of(self, result: list[dict[str, Any]]) -> str | None:
        """The label an annotation's result gives, or None when this control was left empty (single-choice).

        Single-choice: the chosen class. Multi-label: the chosen set as JSON, in config order (names the
        config lacks last), ``'[]'`` when the annotation chose none: a submitted "none of these". Whether
        the label fits the config is ``is_known``'s call.
        """
        chosen = [
            choice
            for region in result
            if region.get("from_name") == self.from_name and region.get("type", "choices") == "choices"
            for choice in region.get("value", {}).get("choices") or []
        ]
        if self.multiple:
            return json.dumps([n for n in self.classes if n in chosen] + [n for n in chosen if n not in self.classes])
        return chosen[0] if chosen else None

    def is_known(self, label: str) -> bool:
        """Every class the label names is one of the config's."""
        names = json.loads(label) if self.multiple else [label]
        return all(name in self.classes for name in names)

    def targets(self, labels: Sequence[str]) -> np.ndarray:
        """What a model trains on: class indices (n,), or for multi-label a 0/1 indicator matrix (n, n_classes)."""
        if not self.multiple:
            return np.array([self.classes.index(label) for label in labels], dtype=np.int64)
        indicator = np.zeros((len(labels), len(self.classes)), dtype=np.int64)
        for row, label in enumerate(labels):
            indicator[row, [self.classes.index(name) for name in json.loads(label)]] = 1
        return indicator

    def prediction(
        self, model_version: str, score: float, suggestion: int | tuple[int, ...] | None, probability: float
    ) -> dict[str, Any]:
        """One Label Studio prediction; ``suggestion`` is a class index, a tuple of them (multi-label), or
        -1 / None for "no suggestion, only a rank"."""
        suggested = suggestion is not None and suggestion != -1
        result = self.result_for(suggestion, probability) if suggested else []
        return {"result": result, "score": float(score), "model_version": model_version}

    def result_for(self, suggestion: int | tuple[int, ...], probability: float) -> list[dict[str, Any]]:
        """The result region choosing ``suggestion``; an empty multi-label suggestion chooses nothing."""
        chosen = list(suggestion) if isinstance(suggestion, tuple) else [suggestion]
        if not chosen:
            return []
        return [
            {
                "from_name": self.from_name,
                "to_name": self.to_name,
                "type": "choices",
                "value": {"choices": [self.classes[index] for index in chosen]},
                "score": float(probability),
            }
        ]


@dataclass(frozen=True)
class SpanLabelingSpec(_TextControlSpec):
    """A ``<Labels>`` control over a ``<Text>``: named-entity recognition; ``classes`` are the entity types.

    A task's label is the JSON list of the annotation's region values for this control (``start``, ``end``,
    ``labels``, ``text``), in order; ``'[]'`` for a submitted annotation with no span (a text with no
    entity is an answer). Regions are checked against the text only where it is known (``spans_of``), so
    every span that cannot be used is counted there, by reason, not silently lost here.
    """

    multiple = False

    @property
    def task_type(self) -> str:
        return NER

    def label_of(self, result: list[dict[str, Any]]) -> str:
        values = [region.get("value") for region in result if region.get("from_name") == self.from_name]
        values = [v for v in values if isinstance(v, Mapping)]
        return json.dumps(sorted(values, key=lambda v: (str(v.get("start")), str(v.get("end")))))

    def is_known(self, label: str) -> bool:
        """Always: a span of an unknown type is dropped alone, and counted, by ``spans_of``."""
        return True

    def spans_of(self, label: str, text: str) -> tuple[list[Span], Counter]:
        """The label's spans over ``text`` (``backend.core.spans``), and the regions dropped, by reason."""
        regions = [{"from_name": self.from_name, "value": value} for value in json.loads(label)]
        return spans_of_result(text, regions, self.from_name, self.classes)

    def prediction(self, model_version: str, score: float, suggestion: tuple | int | None, probability: float) -> dict[str, Any]:
        """One Label Studio prediction; ``suggestion`` is a tuple of ``(start, end, label index, score, text)``
        spans (``model_store.PoolRanking``), or -1 / None for "no suggestion, only a rank"."""
        spans = suggestion if isinstance(suggestion, tuple) else ()
        result = [
            span_region(self.from_name, self.to_name, Span(start, end, self.classes[label], span_score), text)
            for start, end, label, span_score, text in spans
        ]
        return {"result": result, "score": float(score), "model_version": model_version}


#: Every config the backend serves.
LabelSpec = TextClassificationSpec | SpanLabelingSpec


@lru_cache(maxsize=256)
def parse_label_config(label_config: str) -> LabelSpec:
    """Parse once per distinct config; ``/setup`` and ``/predict`` see the same few configs over and over."""
    if not label_config or not label_config.strip():
        raise UnsupportedLabelConfig("the label config is empty")
    try:
        interface = LabelInterface(label_config)
    except Exception as exc:  # the SDK raises several unrelated types for malformed XML
        raise UnsupportedLabelConfig(f"the label config is not valid XML: {exc}") from None
    supported = [c for c in interface.controls if c.tag in ("Choices", "Labels")]
    if len(supported) != 1 or len(interface.controls) != 1:
        found = ", ".join(f"{c.tag} {c.name!r}" for c in interface.controls) or "no control tags"
        raise UnsupportedLabelConfig(
            f"this backend supports exactly one <Choices> or <Labels> control over one <Text>; the config has {found}"
        )
    control = supported[0]
    choice = control.attr.get("choice", "single")
    if control.tag == "Choices" and choice not in ("single", "single-radio", "multiple"):
        raise UnsupportedLabelConfig(
            f"<Choices name={control.name!r}> has choice={choice!r}; supported: single, single-radio, multiple"
        )
    if len(control.to_name) != 1:
        raise UnsupportedLabelConfig(f"<{control.tag} name={control.name!r}> must point at exactly one object tag")
    objects = {obj.name: obj for obj in interface.objects}
    if control.to_name[0] not in objects:
        raise UnsupportedLabelConfig(
            f"<{control.tag} name={control.name!r}> points at {control.to_name[0]!r}, which names no object tag in the config"
        )
    target = objects[control.to_name[0]]
    if target.tag != "Text":
        raise UnsupportedLabelConfig(
            f"<{control.tag} name={control.name!r}> labels a <{target.tag}>; only <Text> objects are supported"
        )
    value = target.value or ""
    if not value.startswith("$") or len(value) < 2:
        raise UnsupportedLabelConfig(f"<Text name={target.name!r}> must read a task field like value=\"$text\"")
    if target.attr.get("valueType", "text") != "text":
        raise UnsupportedLabelConfig(f"<Text name={target.name!r}> must hold the text itself, not a URL (valueType)")
    classes = tuple(control.labels)
    if len(set(classes)) != len(classes):
        raise UnsupportedLabelConfig(f"<{control.tag} name={control.name!r}> has duplicate values")
    if control.tag == "Labels":
        if not classes:
            raise UnsupportedLabelConfig(f"<Labels name={control.name!r}> needs at least 1 <Label> value")
        return SpanLabelingSpec(control.name, target.name, value[1:], classes)
    if len(classes) < 2:
        raise UnsupportedLabelConfig(f"<Choices name={control.name!r}> needs at least 2 <Choice> values")
    return TextClassificationSpec(control.name, target.name, value[1:], classes, multiple=choice == "multiple")


def training_targets(spec: LabelSpec, labeled: Sequence) -> tuple[Any, np.ndarray, Counter]:
    """What the model trains on, what the phase rule counts (``backend.learning.phases``) and the annotated spans that
    could not be read (NER), for ``labeled`` tasks (with ``label`` and ``text``). Classification: class indices
    or label-set indicators, both. NER: each task's spans, and each task's span count."""
    if spec.task_type != NER:
        y = spec.targets([task.label for task in labeled])
        return y, y, Counter()
    spans, dropped = [], Counter()
    for task in labeled:
        task_spans, task_dropped = spec.spans_of(task.label, task.text)
        spans.append(task_spans)
        dropped.update(task_dropped)
    return spans, np.array([len(s) for s in spans], dtype=np.int64), dropped


def label_counts(spec: LabelSpec, targets: Any) -> dict[str, int]:
    """Labeled tasks per class of the config, from ``training_targets``' first value, unlabeled classes included
    (the dashboard's advice looks for rare ones); a multi-label task counts for each of its labels, an NER task
    for each of its spans."""
    if spec.task_type == NER:
        spans = Counter(span.label for task_spans in targets for span in task_spans)
        return {name: spans[name] for name in spec.classes}
    counts = targets.sum(0) if spec.multiple else np.bincount(targets, minlength=len(spec.classes))
    return {name: int(count) for name, count in zip(spec.classes, counts)}


def label_sets(proba: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The suggestion: every label at or over its threshold, as a (n, n_labels) bool matrix, and the
    probability of exactly that set under the head's independent labels, ``prod_l p_l^s_l (1 - p_l)^(1 - s_l)``."""
    chosen = proba >= thresholds
    return chosen, np.prod(np.where(chosen, proba, 1.0 - proba), axis=1)


def annotation_label(annotations: list[dict[str, Any]], spec: LabelSpec) -> str | None:
    """The one rule for "which label does a task have": the label of its newest submitted (not cancelled)
    annotation that gives one (``label_of``), or None."""
    submitted = [a for a in annotations if not a.get("was_cancelled")]
    for annotation in sorted(submitted, key=lambda a: (a.get("updated_at") or "", a.get("id") or 0), reverse=True):
        label = spec.label_of(annotation.get("result") or [])
        if label is not None:
            return label
    return None


def distinct_labels(labels: np.ndarray) -> int:
    """Distinct classes (class indices) or distinct label sets (rows of a multi-label indicator matrix)."""
    if labels.ndim == 2:
        return len(np.unique(labels, axis=0)) if len(labels) else 0
    return len(set(labels.tolist()))
