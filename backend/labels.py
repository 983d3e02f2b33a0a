"""Which label configs the backend serves, and how it reads and writes their results.

Supported: exactly one single-choice ``Choices`` control reading from one ``Text`` object, any tag names
and any ``$field``. Parsing goes through label-studio-sdk's ``LabelInterface``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from label_studio_sdk.label_interface import LabelInterface

#: A lone UTF-16 surrogate: legal in JSON as an escape (``"\ud800"``), but no text a tokenizer can encode.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class UnsupportedLabelConfig(ValueError):
    """The label config is not one Text plus one single-choice Choices."""


@dataclass(frozen=True)
class TextClassificationSpec:
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

    def label_of(self, result: list[dict[str, Any]]) -> str | None:
        """The chosen class in an annotation's result, or None when this control was left empty."""
        for region in result:
            if region.get("from_name") == self.from_name and region.get("type", "choices") == "choices":
                choices = region.get("value", {}).get("choices") or []
                if choices:
                    return choices[0]
        return None

    def prediction(self, model_version: str, score: float, class_index: int, probability: float) -> dict[str, Any]:
        """One Label Studio prediction; ``class_index`` -1 means "no suggestion", only a rank."""
        result = self.result_for(class_index, probability) if class_index >= 0 else []
        return {"result": result, "score": float(score), "model_version": model_version}

    def result_for(self, class_index: int, probability: float) -> list[dict[str, Any]]:
        return [
            {
                "from_name": self.from_name,
                "to_name": self.to_name,
                "type": "choices",
                "value": {"choices": [self.classes[class_index]]},
                "score": float(probability),
            }
        ]


@lru_cache(maxsize=256)
def parse_label_config(label_config: str) -> TextClassificationSpec:
    """Parse once per distinct config; ``/setup`` and ``/predict`` see the same few configs over and over."""
    if not label_config or not label_config.strip():
        raise UnsupportedLabelConfig("the label config is empty")
    try:
        interface = LabelInterface(label_config)
    except Exception as exc:  # the SDK raises several unrelated types for malformed XML
        raise UnsupportedLabelConfig(f"the label config is not valid XML: {exc}") from None
    choices = [c for c in interface.controls if c.tag == "Choices"]
    others = sorted({c.tag for c in interface.controls if c.tag != "Choices"})
    if len(choices) != 1 or others:
        found = ", ".join(f"{c.tag} {c.name!r}" for c in interface.controls) or "no control tags"
        raise UnsupportedLabelConfig(
            f"this backend supports exactly one <Choices> control over one <Text>; the config has {found}"
        )
    control = choices[0]
    if control.attr.get("choice", "single") not in ("single", "single-radio"):
        raise UnsupportedLabelConfig(
            f"<Choices name={control.name!r}> is multiple-choice; only choice=\"single\" is supported for now"
        )
    if len(control.to_name) != 1:
        raise UnsupportedLabelConfig(f"<Choices name={control.name!r}> must point at exactly one object tag")
    objects = {obj.name: obj for obj in interface.objects}
    if control.to_name[0] not in objects:
        raise UnsupportedLabelConfig(
            f"<Choices name={control.name!r}> points at {control.to_name[0]!r}, which names no object tag in the config"
        )
    target = objects[control.to_name[0]]
    if target.tag != "Text":
        raise UnsupportedLabelConfig(
            f"<Choices name={control.name!r}> labels a <{target.tag}>; only <Text> objects are supported"
        )
    value = target.value or ""
    if not value.startswith("$") or len(value) < 2:
        raise UnsupportedLabelConfig(f"<Text name={target.name!r}> must read a task field like value=\"$text\"")
    if target.attr.get("valueType", "text") != "text":
        raise UnsupportedLabelConfig(f"<Text name={target.name!r}> must hold the text itself, not a URL (valueType)")
    classes = tuple(control.labels)
    if len(classes) < 2:
        raise UnsupportedLabelConfig(f"<Choices name={control.name!r}> needs at least 2 <Choice> values")
    if len(set(classes)) != len(classes):
        raise UnsupportedLabelConfig(f"<Choices name={control.name!r}> has duplicate choice values")
    return TextClassificationSpec(control.name, target.name, value[1:], classes)
