"""Property-based fuzzing of every HTTP route against the real app, a real Redis and a real published model.

Bodies are the shapes Label Studio sends with fuzzed values (wrong types, huge and negative numbers, odd
unicode, nested junk, NaN/Infinity and other raw JSON tokens, missing and extra keys), raw non-JSON bodies
under every content type, fuzzed query strings and Authorization headers. The properties: no request ever
gets a 5xx, every error (>= 400) is JSON with an ``error`` string, and ``extra_params`` outside the
documented ranges are refused with a 400, never stored.

Each route test runs its own Hypothesis loop inside the test (so the per-test fixtures, and the model they
publish, are built once per route) and asserts how many requests it sent; a test after them checks the
total. The inputs that gave 500s before are pinned in ``test_regressions_found_by_this_fuzzing``.
"""
from __future__ import annotations

import base64
import json
import math
import uuid
from collections import Counter
from dataclasses import dataclass, fields
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from published_model import CONFIG, POOL, publish_and_activate
from rq import Queue

from backend.app import create_app
from backend.core.settings import PROJECT_RANGES, ProjectSettings, ServiceSettings
from backend.labelstudio.url_secret import resolve_url_secret
from backend.store.model_store import ModelStore
from backend.web.protocol import RETRAIN_ACTIONS
from strategies import STRATEGY_NAMES

PROJECT = "3.1700000000"
# Non-ASCII on purpose: basic auth must compare them as bytes, never crash on them.
AUTH_USER, AUTH_PASS = "lś", "pässwörd"

#: Generated requests per test (each test asserts it sent at least this many); their sum is >= 500.
PLAN = {
    "health": 40,
    "setup": 100,
    "extra_params": 110,
    "predict": 120,
    "webhook": 80,
    "train": 40,
    "versions": 40,
    "status": 40,
    "raw_bodies": 80,
    "basic_auth": 60,
}
MIN_TOTAL = 500
#: Requests sent, per test and per route.
SENT: Counter = Counter()
SENT_PER_ROUTE: Counter = Counter()
#: Response statuses, per test: shows how far the fuzzed requests got.
STATUSES: dict[str, Counter] = {}

FUZZ = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
    print_blob=False,
)


# --- the app under test ---------------------------------------------------------------------------------


def _publish_and_activate(service: ServiceSettings) -> str:
    return publish_and_activate(ModelStore(service.model_dir))[0]


@dataclass
class Env:
    client: object  # werkzeug test client, un-prefixed
    prefix: str
    service: ServiceSettings
    version: str

    def request(self, test: str, method: str, route: str, *, secret: bool = True, **kwargs):
        path = (self.prefix if secret else "") + route
        response = self.client.open(path, method=method, **kwargs)
        SENT[test] += 1
        SENT_PER_ROUTE[f"{method} {'/<secret>' if secret else ''}{route}"] += 1
        STATUSES.setdefault(test, Counter())[response.status_code] += 1
        assert response.status_code < 500, (method, path, repr(kwargs)[:500], response.status_code, response.get_data()[:500])
        if response.status_code >= 400:
            assert response.is_json, (method, path, response.status_code, response.get_data()[:200])
            assert isinstance(response.get_json().get("error"), str), response.get_data()[:200]
        return response


def _env(redis, service: ServiceSettings) -> Env:
    app = create_app(service, redis)
    env = Env(app.test_client(), "/" + resolve_url_secret(service), service, _publish_and_activate(service))
    setup = {"project": PROJECT, "schema": CONFIG, "hostname": "http://ls", "access_token": "tok"}
    assert env.client.post(env.prefix + "/setup", json=setup).status_code == 200  # project 3 is connected
    return env


@pytest.fixture
def env(redis, service_settings) -> Env:
    return _env(redis, service_settings)


@pytest.fixture
def auth_env(redis, redis_url, tmp_path) -> Env:
    service = ServiceSettings.from_env(
        {"REDIS_URL": redis_url, "MODEL_DIR": str(tmp_path / "auth-models"), "AL_QUEUE": f"fuzz-auth-{uuid.uuid4().hex[:8]}",
         "BASIC_AUTH_USER": AUTH_USER, "BASIC_AUTH_PASS": AUTH_PASS}
    )
    app = create_app(service, redis)
    env = Env(app.test_client(), "/" + resolve_url_secret(service), service, _publish_and_activate(service))
    setup = {"project": PROJECT, "schema": CONFIG}
    assert env.client.post(env.prefix + "/setup", json=setup, headers=_basic(AUTH_USER, AUTH_PASS)).status_code == 200
    return env


# --- JSON with raw tokens -------------------------------------------------------------------------------


class Raw:
    """A JSON fragment spliced into a body verbatim: what ``json.dumps`` of a Python value cannot produce."""

    def __init__(self, index: int):
        self.index = index

    def __repr__(self):
        return f"Raw({RAW_TOKENS[self.index][:40]!r})"


RAW_TOKENS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e999",
    "1e-400",
    "-0",
    "1E+2",
    "1" + "0" * 5000,  # over Python's int-parsing digit limit
    "-" + "9" * 4299,
    "[" * 30_000 + "]" * 30_000,  # nesting deeper than the JSON parser's recursion
    '{"a":' * 20_000 + "1" + "}" * 20_000,
    '"\\ud800"',  # a lone surrogate: legal JSON escape, not encodable as UTF-8
    '"\\udfff tail"',
    '"\\ud83d\\ude00"',  # a valid pair (an emoji)
    '"\\u0000"',
]
_MARK = "\x00raw{}\x00"


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, Raw):
            return _MARK.format(o.index)
        return super().default(o)


def dumps(value) -> str:
    """JSON text, with NaN/Infinity allowed and ``Raw`` markers replaced by their fragments."""
    text = json.dumps(value, cls=_Encoder, allow_nan=True)
    for index, token in enumerate(RAW_TOKENS):
        marker = json.dumps(_MARK.format(index))
        if marker in text:
            text = text.replace(marker, token)
    return text


# --- strategies -----------------------------------------------------------------------------------------

MISSING = object()
ODD_STRINGS = [
    "", " ", "\n\t", "\x00", "\x7f", "😀", "👩🏽‍🚀🇺🇳", "ﷺ", "\u202egnp.exe", "\u200b\u200d\ufeff", "Ω≈ç√∫", "𝕿𝖊𝖝𝖙",
    "ℵ₀", "٣", "３", "²", "Ⅻ", "NaN", "Infinity", "null", "true", "None", "-0", "1e400", "0x10", "' OR 1=1 --",
    "<script>alert(1)</script>", "../../etc/passwd", "%00", "%s%s%n", "{{7*7}}", "${jndi:x}", "\\", '"', "]]>",
    "<Choice value='x'/>", "3.1700000000", "3", "pos", "neg", "START_TRAINING",
]
SAFE_CHARS = st.characters(blacklist_categories=("Cs",))  # anything a client can encode as UTF-8
short_text = st.one_of(st.text(SAFE_CHARS, max_size=20), st.sampled_from(ODD_STRINGS))
odd_text = st.one_of(
    st.text(SAFE_CHARS, max_size=60),
    st.sampled_from(ODD_STRINGS),
    st.tuples(st.sampled_from(["x", "é", "😀", "ab "]), st.integers(500, 20_000)).map(lambda t: t[0] * t[1]),
)
raw_token = st.integers(0, len(RAW_TOKENS) - 1).map(Raw)
numbers = st.one_of(
    st.integers(),
    st.integers(-(10**40), 10**40),
    st.sampled_from([0, -1, 1, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**12, 10**13, 10**300, 10**4000]),
    st.floats(),  # NaN and +-Infinity included: sent as the raw tokens NaN/Infinity
    st.floats(-1e-300, 1e-300),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text, raw_token)
junk = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(short_text, inner, max_size=4)), max_leaves=10
)


def weighted(*choices):
    """``(weight, strategy)`` pairs: pick a strategy in proportion to its weight, then draw from it."""
    bag = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(bag) - 1).flatmap(lambda i: bag[i])


def field(valid, *, valid_weight=3):
    """A field that is usually well-formed, else any JSON junk, else absent."""
    return weighted((valid_weight, valid), (1, junk), (1, st.just(MISSING)))


@st.composite
def shaped(draw, fields_: dict):
    """A body of the given fields (each possibly junk or absent), sometimes with extra keys."""
    body = {}
    for key, strategy in fields_.items():
        value = draw(strategy)
        if value is not MISSING:
            body[key] = value
    if draw(st.integers(0, 3)) == 0:
        body.update(draw(st.dictionaries(short_text, junk, max_size=3)))
    return body


project_ids = weighted(
    (4, st.sampled_from([PROJECT, "42.1700000000", "3", 3, 42, "3.", "3.0", 3.0, 3.9, {"id": 3}, {"id": "3.1700000000"}])),  # 42: not connected
    (2, st.sampled_from(
        ["3.abc", "abc", "03", "-3", "+3", " 3", "3 ", "٣", "３", "²", "3" * 13, "9" * 12, "", "null", "3e2", "0x3",
         "3.17.5", "3\x00", "-0", "NaN", "1e400", True, False, None, [], [3], {}, {"id": None}, {"id": True}, {"id": [3]},
         {"ID": 3}, 10**12 - 1, 10**12, -3, 1e20, 2**63]
    )),
    (2, numbers),
    (1, odd_text),
    (1, st.builds(lambda v: {"id": v}, junk)),
    (1, raw_token),
    (1, junk),
)


def _insert(config: str, position: int, text: str) -> str:
    position %= len(config) + 1
    return config[:position] + text + config[position:]


label_configs = weighted(
    (6, st.just(CONFIG)),
    (2, st.sampled_from([
        CONFIG.replace('"neg"', '"meh"'),  # classes the active model was not trained on
        CONFIG.replace('"single"', '"multiple"'),
        CONFIG.replace("<Text", "<Image").replace("$review", "$img"),
        CONFIG.replace("$review", "review"),
        CONFIG.replace('value="neg"', 'value="pos"'),
        CONFIG.replace("<Choice value=\"neg\"/>", ""),
        CONFIG.replace('toName="body"', 'toName="nope"'),
        CONFIG.replace("$review", "$😀"),
        CONFIG.replace("<View>", "<View><Labels name='l' toName='body'><Label value='x'/></Labels>"),
        CONFIG + "<View>",
        "", " ", "<View/>", "<View>", "not xml", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><View>&a;</View>",
        '<View><Text name="t" value="$t" valueType="url"/><Choices name="c" toName="t"><Choice value="a"/><Choice value="b"/></Choices></View>',
    ])),
    (2, st.builds(_insert, st.just(CONFIG), st.integers(0, len(CONFIG)), st.one_of(short_text, st.sampled_from(["<", ">", "'", '"', "&", "</View>", "<Choice value='z'/>"])))),
    (1, odd_text),
)

task_ids = weighted(
    (3, st.sampled_from([101, 102, 103, 999])),
    (2, numbers),
    (1, st.one_of(st.booleans(), st.none(), odd_text, raw_token, junk)),
)
task_data = weighted(
    (4, st.builds(lambda text, extra: {"review": text, **extra}, st.one_of(odd_text, st.sampled_from(list(POOL.values())), st.sampled_from([Raw(12), Raw(13)])), st.dictionaries(short_text, junk, max_size=2))),
    (1, st.builds(lambda v: {"review": v}, junk)),
    (1, st.sampled_from([Raw(12), Raw(13), Raw(14), Raw(15)]).map(lambda raw: {"review": raw})),  # escaped surrogates
    (1, st.dictionaries(short_text, junk, max_size=3)),
    (1, junk),
)
tasks = weighted(
    (8, st.lists(weighted((5, shaped({"id": field(task_ids), "data": field(task_data)})), (1, junk)), max_size=5)),
    (1, st.integers(1001, 1003).map(lambda n: [{"id": 1, "data": {"review": "x"}}] * n)),  # over AL_MAX_PREDICT_TASKS
)

#: Extra params: fuzzed values for known keys, and unknown keys.
SETTING_NAMES = [f.name for f in fields(ProjectSettings)]
extra_param_values = {
    "strategy": st.one_of(st.sampled_from(list(STRATEGY_NAMES)), junk),
    "model_mode": st.one_of(st.sampled_from(["head", "finetune", "lora", "HEAD"]), junk),
    "device": st.one_of(st.sampled_from(["auto", "cpu", "cuda", "tpu"]), junk),
    "model_name": st.one_of(st.sampled_from(["bundled:all-MiniLM-L6-v2", "bert-base-uncased", "", "   ", "x" * 201]), odd_text, junk),
}


def _boundaries(name: str):
    low, high = PROJECT_RANGES[name]
    near = [low, high, low - 1, high + 1, low / 2, high * 2, -low, -high, low - 1e-9, high + 1e-9]
    return st.sampled_from(near + [int(low), int(high), float(low), float(high), str(low), str(int(high))])


def range_value(name: str):
    low, high = PROJECT_RANGES[name]
    in_range = st.floats(low, high) if ProjectSettings.__dataclass_fields__[name].type == "float" else st.integers(int(low), int(high))
    return weighted(
        (3, in_range),
        (3, _boundaries(name)),
        (3, numbers),
        (1, st.sampled_from([True, False, None, "", "12", " 3 ", "1_0", "3.0", "1e3", "nan", "inf", "-inf", [], {}, "three"])),
        (2, st.sampled_from([10**400, -(10**400), 10**4000])),  # past float's range
        (2, raw_token),
        (2, st.sampled_from([Raw(8), Raw(10), Raw(11)])),  # past the JSON parser's int-digit and nesting limits
    )


extra_params = weighted(
    (4, st.dictionaries(st.sampled_from(list(PROJECT_RANGES)), st.just(None), min_size=1, max_size=3).flatmap(
        lambda keys: st.fixed_dictionaries({name: range_value(name) for name in keys}))),
    (2, st.dictionaries(st.sampled_from(SETTING_NAMES), st.just(None), max_size=3).flatmap(
        lambda keys: st.fixed_dictionaries({name: extra_param_values.get(name, range_value(name) if name in PROJECT_RANGES else junk) for name in keys}))),
    (1, st.dictionaries(short_text, junk, max_size=3)),  # unknown keys
    (1, st.sampled_from([None, "", {}, "{}", "[]", "null", "{not json", "1" + "0" * 5000, "[" * 30_000, '{"epochs": ' + "1" + "0" * 5000 + "}"])),
    (1, junk),
)


hostnames = st.one_of(st.just("http://ls"), odd_text)
tokens = st.one_of(st.just("tok"), odd_text)
# Each body is either fuzzed throughout, or Label Studio's own envelope (project and config as LS sends them)
# around fuzzed fields, so that enough requests get past the first checks to the code behind them.
setup_bodies = weighted(
    (1, shaped({"project": field(project_ids), "schema": field(label_configs), "hostname": field(hostnames),
                "access_token": field(tokens), "extra_params": field(extra_params)})),
    (1, shaped({"project": st.just(PROJECT), "schema": st.just(CONFIG), "hostname": field(hostnames),
                "access_token": field(tokens), "extra_params": extra_params})),
)
predict_bodies = weighted(
    (1, shaped({"project": field(project_ids), "label_config": field(label_configs), "tasks": field(tasks),
                "params": field(st.just({"context": None}))})),
    (2, shaped({"project": st.sampled_from([PROJECT, "3"]), "label_config": weighted((4, st.just(CONFIG)), (1, label_configs)),
                "tasks": tasks, "params": st.just({"context": None})})),
)
webhook_actions = weighted(
    (3, st.sampled_from(sorted(RETRAIN_ACTIONS))),
    (1, st.sampled_from(["TASKS_CREATED", "PROJECT_UPDATED", "annotation_created", "START_TRAINING ", "", "x" * 10_000])),
    (1, odd_text),
)
webhook_projects = weighted((3, st.builds(lambda pid, title: {"id": pid, "title": title}, project_ids, odd_text)), (2, project_ids))
webhook_bodies = weighted(
    (1, shaped({"action": field(webhook_actions), "project": field(webhook_projects), "annotation": field(junk, valid_weight=1),
                "task": field(junk, valid_weight=1)})),
    (1, shaped({"action": st.sampled_from(sorted(RETRAIN_ACTIONS)), "project": webhook_projects})),
)
train_bodies = shaped({
    "project": field(project_ids),
    "annotations": field(st.lists(junk, max_size=3)),
    "label_config": field(label_configs, valid_weight=1),
})


def _query_value(value) -> str:
    return value if isinstance(value, str) else dumps(value)


#: Query strings: well-encoded text, raw odd bytes and broken percent escapes (bytes as a WSGI server hands
#: them to the app: decoded as latin-1).
query_strings = st.one_of(
    st.sampled_from([b"project=3", b"project=3.1700000000", b"project=42", b"project=3&extra=%F0%9F%98%80", b"project=%33"]),
    st.builds(lambda v: b"project=" + quote_from_bytes(_query_value(v).encode("utf-8", "surrogatepass")).encode(), project_ids),
    st.builds(lambda raw: b"project=" + raw, st.binary(max_size=30)),
    st.sampled_from([b"", b"project", b"project=", b"project=%", b"project=%zz", b"project=%ff%fe", b"project=3&project=4",
                     b"project[]=3", b"PROJECT=3", b"project=3;x=1", b"project=%E2%82%AC", b"=3", b"&&&", b"project=" + b"9" * 5000]),
    st.binary(max_size=40),
).map(lambda raw: raw.decode("latin-1"))


def _latin1_header(text: str) -> str:
    """What a real server hands the app: header bytes decoded as latin-1 (so at most U+00FF)."""
    return text.encode("utf-8").decode("latin-1")


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF).filter(lambda c: c != "\x7f"), max_size=30)
auth_headers = weighted(
    (3, st.builds(_basic, short_text, short_text)),
    (2, st.sampled_from([_basic(AUTH_USER, AUTH_PASS), _basic(AUTH_USER, "wrong"), _basic("ls", AUTH_PASS), _basic(AUTH_USER, AUTH_PASS + "x"),
                         _basic("", ""), _basic(AUTH_USER.encode().decode("latin-1"), AUTH_PASS)])),
    (2, st.builds(lambda scheme, rest: {"Authorization": f"{scheme} {rest}"},
                  st.sampled_from(["Basic", "basic", "BASIC", "Bearer", "Token", "Digest", ""]), header_text)),
    (1, st.builds(lambda raw: {"Authorization": "Basic " + base64.b64encode(raw).decode()}, st.binary(max_size=30))),
    (1, st.builds(lambda text: {"Authorization": _latin1_header("Basic " + text)}, short_text)),
    (1, st.just({})),
)


# --- the tests ------------------------------------------------------------------------------------------


def _post_json(env: Env, test: str, route: str, body, **kwargs):
    return env.request(test, "POST", route, data=dumps(body), content_type="application/json", **kwargs)


def _finish(test: str) -> None:
    assert SENT[test] >= PLAN[test], f"{test}: sent {SENT[test]} requests, planned {PLAN[test]}"


def test_health_routes_answer_anything(env):
    @settings(max_examples=PLAN["health"], **FUZZ)
    @given(
        route=st.sampled_from([("/health", False), ("/health", True), ("/", True)]),
        query=query_strings,
        headers=auth_headers,
        body=st.one_of(st.none(), st.binary(max_size=50)),
    )
    def run(route, query, headers, body):
        path, secret = route
        response = env.request("health", "GET", path, secret=secret, query_string=query, headers=headers, data=body)
        assert response.status_code == 200 and response.json["status"] == "UP"

    run()
    _finish("health")


def test_setup_never_fails_on_fuzzed_bodies(env):
    @settings(max_examples=PLAN["setup"], **FUZZ)
    @given(body=setup_bodies)
    def run(body):
        response = _post_json(env, "setup", "/setup", body)
        assert response.status_code in (200, 400, 413)
        if response.status_code == 200:
            assert isinstance(response.json["model_version"], str)

    run()
    _finish("setup")


def _decoded(value):
    """What the server parses a value to: a raw token is parsed the way the server would (or cannot be)."""
    if isinstance(value, Raw):
        try:
            return json.loads(RAW_TOKENS[value.index])
        except (ValueError, RecursionError):
            return Raw  # the whole body is not JSON the server can read
    return value


def _expected_valid(name: str, value) -> bool | None:
    """Whether a JSON value is a valid setting by the documented ranges; None when not a plain number."""
    value = _decoded(value)
    if value is Raw or isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return False
    if not isinstance(value, (int, float)):
        return None  # text: the backend parses numbers written as text; checked by what was stored
    low, high = PROJECT_RANGES[name]
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if ProjectSettings.__dataclass_fields__[name].type == "int" and isinstance(value, float) and not value.is_integer():
        return False
    return low <= value <= high


def _assert_stored_settings_in_range(env: Env) -> None:
    stored = ModelStore(env.service.model_dir).setup_record(3).read().settings
    for name, (low, high) in PROJECT_RANGES.items():
        value = getattr(stored, name)
        kind = int if ProjectSettings.__dataclass_fields__[name].type == "int" else float
        assert type(value) is kind and math.isfinite(value) and low <= value <= high, (name, value)


def test_extra_params_outside_the_documented_ranges_are_a_400(env):
    @settings(max_examples=PLAN["extra_params"], **FUZZ)
    @given(params=st.dictionaries(st.sampled_from(list(PROJECT_RANGES)), st.just(None), min_size=1, max_size=3).flatmap(
        lambda keys: st.fixed_dictionaries({name: range_value(name) for name in keys})), as_text=st.booleans())
    def run(params, as_text):
        body = {"project": PROJECT, "schema": CONFIG, "extra_params": dumps(params) if as_text else params}
        response = _post_json(env, "extra_params", "/setup", body)
        verdicts = [_expected_valid(name, value) for name, value in params.items()]
        if False in verdicts:
            assert response.status_code == 400, (params, response.json)
            if not any(_decoded(value) is Raw for value in params.values()):
                assert any(name in response.json["error"] for name in params), (params, response.json)
        elif all(verdicts):
            assert response.status_code == 200, (params, response.json)
        else:
            assert response.status_code in (200, 400), (params, response.json)
        if response.status_code == 200:
            _assert_stored_settings_in_range(env)

    run()
    _finish("extra_params")


def test_predict_never_fails_on_fuzzed_bodies(env):
    @settings(max_examples=PLAN["predict"], **FUZZ)
    @given(body=predict_bodies)
    def run(body):
        response = _post_json(env, "predict", "/predict", body)
        assert response.status_code in (200, 400, 413)
        if response.status_code == 200:
            results = response.json["results"]
            assert len(results) == len(body["tasks"])
            for predictions in results:
                for prediction in predictions:
                    assert math.isfinite(prediction["score"]) and prediction["model_version"] == env.version

    run()
    _finish("predict")


def test_predict_serves_the_model_for_well_formed_tasks(env):
    """A sanity check that the fuzzed /predict reaches the model: LS's own shape gets real predictions."""
    tasks_ = [{"id": task_id, "data": {"review": text}} for task_id, text in POOL.items()] + [{"id": 7, "data": {"review": "😀 ℵ₀"}}]
    response = _post_json(env, "predict_sanity", "/predict", {"project": PROJECT, "label_config": CONFIG, "tasks": tasks_})
    assert response.status_code == 200
    assert all(len(predictions) == 1 and predictions[0]["model_version"] == env.version for predictions in response.json["results"])


def test_webhook_never_fails_on_fuzzed_bodies(env, redis):
    queue = Queue(env.service.queue_name, connection=redis)

    @settings(max_examples=PLAN["webhook"], **FUZZ)
    @given(body=webhook_bodies)
    def run(body):
        response = _post_json(env, "webhook", "/webhook", body)
        assert response.status_code in (200, 201, 400, 404, 413)
        if response.status_code == 201:
            assert response.json["status"] in ("queued", "coalesced") and response.json["job_id"].startswith("retrain-3-")
        if response.status_code == 200:
            assert response.json["status"] == "ignored"

    run()
    _finish("webhook")
    assert queue.count <= 1  # every retrain of project 3 coalesced into one job


def test_train_never_fails_on_fuzzed_bodies(env):
    @settings(max_examples=PLAN["train"], **FUZZ)
    @given(body=train_bodies)
    def run(body):
        response = _post_json(env, "train", "/train", body)
        assert response.status_code in (201, 400, 404)

    run()
    _finish("train")


def test_versions_never_fails_on_fuzzed_queries_and_bodies(env):
    @settings(max_examples=PLAN["versions"], **FUZZ)
    @given(query=query_strings, body=st.one_of(st.none(), shaped({"project": field(project_ids)}), junk))
    def run(query, body):
        kwargs = {} if body is None else {"data": dumps(body), "content_type": "application/json"}
        response = env.request("versions", "GET", "/versions", query_string=query, **kwargs)
        assert response.status_code in (200, 400)
        if response.status_code == 200:
            assert all(isinstance(name, str) for name in response.json["versions"])

    run()
    _finish("versions")


def test_status_never_fails_on_fuzzed_queries(env):
    @settings(max_examples=PLAN["status"], **FUZZ)
    @given(query=query_strings)
    def run(query):
        response = env.request("status", "GET", "/status", query_string=query)
        assert response.status_code in (200, 400)

    run()
    _finish("status")
    assert env.request("status_sanity", "GET", "/status", query_string="project=3").json["model_version"] == env.version


JSON_TYPES = ("application/json", "application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON")
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(SAFE_CHARS, max_size=100).map(lambda t: t.encode()),
    st.sampled_from([b"", b"{", b"{not json", b"null", b"[]", b"[1,2]", b"1", b'"x"', b"true", b"NaN", b'{"project": 3',
                     b"\xff\xfe{\x00}\x00", b"\xef\xbb\xbf{}", b"project=3&schema=x", b'{"project": 3}\x00',
                     '{"project": 3, "action": "START_TRAINING"}'.encode("utf-16"), '{"project": "3"}'.encode("utf-32")]),
    st.sampled_from(RAW_TOKENS).map(str.encode),
    st.builds(lambda value: dumps(value).encode(), junk),
)
content_types = st.sampled_from(
    [None, *JSON_TYPES, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
     "multipart/form-data", "application/octet-stream", "application/xml", "json", "application/json; charset=utf-16",
     "application/json; charset=bogus", "ℵ/😀"]
)


def test_raw_and_wrongly_typed_bodies_on_every_route(env):
    @settings(max_examples=PLAN["raw_bodies"], **FUZZ)
    @given(
        route=st.sampled_from([("POST", "/setup"), ("POST", "/predict"), ("POST", "/webhook"), ("POST", "/train"),
                               ("GET", "/versions"), ("GET", "/status"), ("GET", "/health"), ("GET", "/")]),
        body=raw_bodies,
        content_type=content_types,
    )
    def run(route, body, content_type):
        method, path = route
        kwargs = {"data": body} | ({"content_type": _latin1_header(content_type)} if content_type else {})
        response = env.request("raw_bodies", method, path, **kwargs)
        if path in ("/health", "/"):
            assert response.status_code == 200
        elif path == "/status":
            assert response.status_code == 400  # no ?project=
        elif method == "POST" and (content_type is None or content_type.lower().split(";")[0] not in ("application/json", "application/vnd.api+json")):
            assert response.status_code == 400 and "JSON" in response.json["error"]  # only JSON is read

    run()
    _finish("raw_bodies")


def test_basic_auth_headers_are_refused_or_accepted_never_crashed_on(auth_env):
    correct = _basic(AUTH_USER, AUTH_PASS)

    @settings(max_examples=PLAN["basic_auth"], **FUZZ)
    @given(
        route=st.sampled_from(["/setup", "/predict", "/train", "/versions", "/status", "/webhook", "/health"]),
        headers=auth_headers,
    )
    def run(route, headers):
        body = {"project": PROJECT, "schema": CONFIG, "label_config": CONFIG, "tasks": [{"id": 101, "data": {"review": "x"}}],
                "action": "PROJECT_UPDATED"}
        method = "GET" if route in ("/versions", "/status", "/health") else "POST"
        kwargs = {"query_string": "project=3"} if method == "GET" else {"data": dumps(body), "content_type": "application/json"}
        response = auth_env.request("basic_auth", method, route, headers=headers, **kwargs)
        if route in ("/webhook", "/health"):
            assert response.status_code == 200  # open routes
        elif headers == correct:
            assert response.status_code in (200, 201)
        else:
            assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")

    run()
    _finish("basic_auth")


def test_at_least_500_fuzzed_requests_in_total():
    """Checked last: the sum over the route tests above (skipped when only some of them ran)."""
    assert sum(PLAN.values()) >= MIN_TOTAL
    if not set(PLAN) <= set(SENT):
        pytest.skip(f"only {sorted(SENT)} ran; run the whole file for the total")
    total = sum(SENT[test] for test in PLAN)
    print(f"\nfuzzed requests: {total}\nper test: {dict(SENT)}\nper route: {dict(SENT_PER_ROUTE)}")
    print("statuses per test:", {test: dict(sorted(counts.items())) for test, counts in STATUSES.items()})
    assert total >= MIN_TOTAL


def test_regressions_found_by_this_fuzzing(env, auth_env):
    """Each of these was a 500 before: the exact inputs, pinned."""
    deep = "[" * 30_000 + "]" * 30_000
    # A body nested past the JSON parser's recursion limit (RecursionError escaped get_json(silent=True)).
    for route in ("/setup", "/predict", "/webhook", "/train"):
        response = env.request("regressions", "POST", route, data=deep, content_type="application/json")
        assert response.status_code == 400 and "JSON" in response.json["error"], route
    # extra_params past float's range (OverflowError) or, as JSON text, past int-parsing and nesting limits.
    for extra in ({"learning_rate": 10**400}, {"eval_fraction": -(10**309)}, '{"epochs": 1' + "0" * 5000 + "}", deep):
        response = _post_json(env, "regressions", "/setup", {"project": PROJECT, "schema": CONFIG, "extra_params": extra})
        assert response.status_code == 400, str(extra)[:40]
    # A task text with a lone surrogate (a legal JSON escape) reached the tokenizer: now it is read as U+FFFD.
    body = '{"project": "3", "label_config": %s, "tasks": [{"id": 9, "data": {"review": "\\ud800 x"}}, {"id": 101, "data": {"review": "\\udfff"}}]}'
    response = env.request("regressions", "POST", "/predict", data=body % json.dumps(CONFIG), content_type="application/json")
    assert response.status_code == 200 and all(len(predictions) == 1 for predictions in response.json["results"])
    # A Basic header with non-ASCII bytes (werkzeug raises ValueError parsing it): refused like any bad credentials.
    for value in ("Basic Â\x80", "Basic " + _latin1_header("lś:pässwörd"), "Basic é"):
        response = auth_env.request("regressions", "POST", "/setup", headers={"Authorization": value}, json={"project": PROJECT, "schema": CONFIG})
        assert response.status_code == 401, value
