import numpy as np
import pytest

from backend.core.exceptions import UnsupportedLabelConfig
from backend.core.labels import parse_label_config

CUSTOM = """<View>
  <Header value="Is this review positive?"/>
  <Text name="review_body" value="$review"/>
  <Choices name="verdict" toName="review_body" choice="single-radio">
    <Choice value="Positive"/><Choice value="Negative" alias="neg"/>
  </Choices>
</View>"""


def test_any_tag_names_and_field_are_read_from_the_config():
    spec = parse_label_config(CUSTOM)
    assert (spec.from_name, spec.to_name, spec.value_field) == ("verdict", "review_body", "review")
    assert spec.classes == ("Positive", "neg")  # LS stores the alias in results
    assert spec.text_of({"review": "fine"}) == "fine"


def test_results_round_trip_through_the_spec():
    spec = parse_label_config(CUSTOM)
    result = spec.result_for(1, 0.75)
    assert result == [
        {"from_name": "verdict", "to_name": "review_body", "type": "choices", "value": {"choices": ["neg"]}, "score": 0.75}
    ]
    assert spec.label_of(result) == "neg"
    assert spec.label_of([{"from_name": "other", "type": "choices", "value": {"choices": ["x"]}}]) is None


@pytest.mark.parametrize(
    "config, fragment",
    [
        ("", "empty"),
        ("<View><Text name='t' value='$t'>", "not valid XML"),
        (
            "<View><Text name='t' value='$t'/><Choices name='c' toName='t' choice='several'><Choice value='a'/><Choice value='b'/></Choices></View>",
            "choice='several'",
        ),
        (
            "<View><Image name='i' value='$img'/><Choices name='c' toName='i'><Choice value='a'/><Choice value='b'/></Choices></View>",
            "only <Text> objects",
        ),
        (
            "<View><Text name='t' value='$t'/><Labels name='l' toName='t'><Label value='PER'/></Labels>"
            "<Choices name='c' toName='t'><Choice value='a'/><Choice value='b'/></Choices></View>",
            "exactly one <Choices> or <Labels>",
        ),
        ("<View><Text name='t' value='$t'/><Labels name='l' toName='t'></Labels></View>", "at least 1 <Label>"),
        ("<View><Text name='t' value='$t'/><Choices name='c' toName='t'><Choice value='a'/></Choices></View>", "at least 2"),
        (
            "<View><Text name='t' value='$t' valueType='url'/><Choices name='c' toName='t'><Choice value='a'/><Choice value='b'/></Choices></View>",
            "not a URL",
        ),
    ],
)
def test_unsupported_configs_are_refused_with_the_reason(config, fragment):
    with pytest.raises(UnsupportedLabelConfig) as error:
        parse_label_config(config)
    assert fragment in str(error.value)


def test_a_task_without_the_text_field_has_no_text_and_the_reason_names_the_field():
    spec = parse_label_config(CUSTOM)
    assert spec.text_of({"text": "x"}) is None and spec.text_of(None) is None and spec.text_of("x") is None
    assert "'review'" in spec.missing_field_reason
    assert spec.text_of({"review": 5}) == "5" and spec.text_of({"review": {"a": 1}}) == '{"a": 1}'


def test_a_control_pointing_at_a_missing_object_is_refused_with_a_message():
    config = '<View><Choices name="c" toName="body"><Choice value="a"/><Choice value="b"/></Choices></View>'
    with pytest.raises(UnsupportedLabelConfig, match="'body', which names no object tag"):
        parse_label_config(config)


MULTI = """<View>
  <Text name="body" value="$text"/>
  <Choices name="topics" toName="body" choice="multiple">
    <Choice value="sport"/><Choice value="politics"/><Choice value="tech"/>
  </Choices>
</View>"""


def test_a_multiple_choice_config_is_a_multi_label_spec():
    spec = parse_label_config(MULTI)
    assert spec.multiple and spec.task_type == "multi_label" and spec.classes == ("sport", "politics", "tech")
    assert not parse_label_config(CUSTOM).multiple and parse_label_config(CUSTOM).task_type == "single_label"


def test_multi_label_results_become_label_sets_in_config_order_and_round_trip():
    spec = parse_label_config(MULTI)
    result = spec.result_for((0, 2), 0.4)
    assert result == [
        {"from_name": "topics", "to_name": "body", "type": "choices", "value": {"choices": ["sport", "tech"]}, "score": 0.4}
    ]
    assert spec.label_of(result) == '["sport", "tech"]'
    assert spec.label_of([{"from_name": "topics", "type": "choices", "value": {"choices": ["tech", "sport"]}}]) == '["sport", "tech"]'
    # A submitted annotation that chose nothing says "none of these"; an unknown class makes it unusable.
    assert spec.label_of([]) == "[]" and spec.is_known("[]")
    unknown = spec.label_of([{"from_name": "topics", "type": "choices", "value": {"choices": ["tech", "cooking"]}}])
    assert not spec.is_known(unknown)
    assert spec.targets(['["sport", "tech"]', "[]", '["politics"]']).tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert spec.prediction("v1", 0.25, (), 0.9) == {"result": [], "score": 0.25, "model_version": "v1"}


def test_single_label_targets_are_class_indices_and_unknown_classes_are_not_known():
    spec = parse_label_config(CUSTOM)
    assert spec.targets(["neg", "Positive"]).tolist() == [1, 0] and spec.targets([]).dtype == np.int64
    assert spec.is_known("neg") and not spec.is_known("Negative")
