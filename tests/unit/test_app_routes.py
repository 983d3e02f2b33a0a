"""The HTTP protocol as Label Studio 1.23 calls it, against a real Redis and a real model on disk."""
import base64
import time

import numpy as np
import pytest
from rq import Queue

from backend.app import create_app
from backend.jobs import publish_version
from backend.model_store import ModelStore, PoolRanking
from backend.project_state import load_project_state
from backend.scoring import ls_scores
from backend.settings import ProjectSettings, ServiceSettings
from backend.training import build_classifier
from strategies.uncertainty import margin

CONFIG = """<View><Text name="body" value="$review"/>
<Choices name="mood" toName="body" choice="single"><Choice value="pos"/><Choice value="neg"/></Choices></View>"""
TRAIN = ["great movie", "awful film", "loved it", "hated it", "wonderful acting", "terrible plot"]
POOL = {101: "superb and moving", 102: "dreadful and dull", 103: "it was a film"}


@pytest.fixture
def client(redis, service_settings):
    return create_app(service_settings, redis).test_client()


def setup_body(extra_params=None, schema=CONFIG):
    return {"project": "3.1700000000", "schema": schema, "hostname": "http://ls", "access_token": "tok", "extra_params": extra_params}


def predict_body(tasks):
    return {"project": "3.1700000000", "label_config": CONFIG, "tasks": tasks, "params": {"context": None}}


@pytest.fixture
def published(service_settings):
    """A head-mode model and pool ranking published the way the worker publishes them."""
    settings = ProjectSettings(model_mode="head", max_length=16, strategy="margin")
    classifier = build_classifier(["pos", "neg"], settings).fit(TRAIN, np.array([0, 1, 0, 1, 0, 1]))
    proba = classifier.predict_proba(list(POOL.values()))
    informativeness = margin(proba)
    ranking = PoolRanking.build(list(POOL), ls_scores(informativeness), informativeness, proba)
    meta = {"trained": True, "strategy": "margin", "settings": settings.to_dict(), "classes": ["pos", "neg"]}
    version = publish_version(ModelStore(service_settings.model_dir), 3, classifier, ranking, meta)
    return version, ranking


def test_health_is_cheap_and_open(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json["status"] == "UP"


def test_setup_validates_and_stores_project_settings(client, redis):
    response = client.post("/setup", json=setup_body({"strategy": "entropy", "epochs": 2}))
    assert response.status_code == 200 and response.json == {"model_version": "untrained"}
    state = load_project_state(redis, 3)
    assert (state.settings.strategy, state.settings.epochs, state.hostname) == ("entropy", 2, "http://ls")


@pytest.mark.parametrize(
    "body, fragment",
    [
        (setup_body({"strategy": "nope"}), "choose one of"),
        (setup_body(schema="<View><Image name='i' value='$i'/></View>"), "exactly one <Choices>"),
        ({"schema": CONFIG}, "missing field 'project'"),
        ({**setup_body(), "project": "abc"}, "project must be an id"),
        ({**setup_body(), "schema": 5}, "'schema' must be a str"),
    ],
)
def test_setup_refuses_bad_input_with_a_message(client, body, fragment):
    response = client.post("/setup", json=body)
    assert response.status_code == 400 and fragment in response.json["error"]


def test_malformed_json_is_a_400(client):
    response = client.post("/predict", data="{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json["error"]


def test_predict_without_a_model_returns_no_predictions(client):
    response = client.post("/predict", json=predict_body([{"id": 1, "data": {"review": "x"}}]))
    assert response.status_code == 200 and response.json == {"results": [[]]}


def test_predict_names_a_missing_text_field(client):
    response = client.post("/predict", json=predict_body([{"id": 1, "data": {"text": "x"}}]))
    assert response.status_code == 400 and "'review'" in response.json["error"]


def test_predict_serves_the_published_ranking_and_suggestions(client, published):
    version, ranking = published
    tasks = [{"id": task_id, "data": {"review": text}} for task_id, text in POOL.items()]
    response = client.post("/predict", json=predict_body(tasks + [{"id": 999, "data": {"review": "a fine film"}}]))
    assert response.status_code == 200
    results = response.json["results"]
    assert len(results) == 4
    for (prediction,), score, label in zip(results, ranking.scores, ranking.predicted):
        assert prediction["model_version"] == version
        assert prediction["score"] == pytest.approx(score)
        (region,) = prediction["result"]
        assert region["from_name"] == "mood" and region["to_name"] == "body"
        assert region["value"]["choices"] == [["pos", "neg"][label]]
    # A task the worker never ranked is placed on the same scale.
    (fresh,) = results[3]
    assert 0.0 <= fresh["score"] <= 1.0 and fresh["result"][0]["value"]["choices"][0] in ("pos", "neg")


def test_predict_picks_up_a_newer_version_without_restart(client, published, service_settings):
    version, ranking = published
    task = [{"id": 101, "data": {"review": POOL[101]}}]
    assert client.post("/predict", json=predict_body(task)).json["results"][0][0]["model_version"] == version
    time.sleep(1.1)  # version names carry a seconds timestamp
    store = ModelStore(service_settings.model_dir)
    newer = publish_version(store, 3, None, ranking, {**store.latest(3).meta(), "trained": False})
    assert client.post("/predict", json=predict_body(task)).json["results"][0][0]["model_version"] == newer


def test_webhook_enqueues_retrains_and_ignores_other_actions(client, redis, service_settings):
    queue = Queue(service_settings.queue_name, connection=redis)
    ignored = client.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 3}})
    assert ignored.status_code == 200 and ignored.json["status"] == "ignored" and queue.count == 0
    for action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "ANNOTATIONS_DELETED", "START_TRAINING"):
        redis.flushdb()
        response = client.post("/webhook", json={"action": action, "project": {"id": 3, "title": "p"}})
        assert response.status_code == 201 and response.json["status"] == "queued", action
        assert queue.job_ids == [response.json["job_id"]]


def test_a_webhook_storm_coalesces_into_one_job(client, redis, service_settings):
    statuses = [client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3}}).json["status"] for _ in range(50)]
    assert statuses.count("queued") == 1 and statuses.count("coalesced") == 49
    assert Queue(service_settings.queue_name, connection=redis).count == 1


def test_webhook_without_action_is_a_400(client):
    response = client.post("/webhook", json={"project": {"id": 3}})
    assert response.status_code == 400 and "'action'" in response.json["error"]


def test_versions_and_status(client, published):
    version, _ = published
    assert client.get("/versions", json={"project": "3.17"}).json == {"versions": [version]}
    status = client.get("/status?project=3").json
    assert status["model_version"] == version and status["queue"]["pending_job"] is None


def test_redis_outage_is_a_clear_503(service_settings):
    from redis import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    client = create_app(service_settings, dead).test_client()
    response = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3}})
    assert response.status_code == 503 and "Redis" in response.json["error"]


def test_basic_auth_guards_everything_but_health_and_webhook(redis, redis_url, tmp_path):
    service = ServiceSettings.from_env(
        {"REDIS_URL": redis_url, "MODEL_DIR": str(tmp_path), "BASIC_AUTH_USER": "ls", "BASIC_AUTH_PASS": "s3cret"}
    )
    client = create_app(service, redis).test_client()
    assert client.post("/setup", json=setup_body()).status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ls:wrong").decode()}
    assert client.post("/setup", json=setup_body(), headers=wrong).status_code == 401
    right = {"Authorization": "Basic " + base64.b64encode(b"ls:s3cret").decode()}
    assert client.post("/setup", json=setup_body(), headers=right).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 3}}).status_code == 200
