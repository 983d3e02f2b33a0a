"""The HTTP protocol as Label Studio 1.23 calls it, against a real Redis and a real model on disk."""
import base64
import json
import os
import time
from dataclasses import replace

import pytest
from published_model import CONFIG, POOL, activate, publish_and_activate
from rq import Queue

from backend.app import create_app
from backend.core.settings import ServiceSettings
from backend.jobs.publish import publish_version
from backend.jobs.task_hints import (
    MAX_HINTS_PER_WEBHOOK,
    hinted_task_ids,
    pending_hints,
    pending_resync,
)
from backend.labelstudio.url_secret import resolve_url_secret
from backend.store.ledger import Ledger
from backend.store.model_store import ModelStore


class SecretClient:
    """A test client that reaches the routes the way Label Studio does: under the backend's secret URL."""

    def __init__(self, app, prefix: str):
        self.raw = app.test_client()
        self.prefix = prefix

    def get(self, path, **kwargs):
        return self.raw.get(self.prefix + path, **kwargs)

    def post(self, path, **kwargs):
        return self.raw.post(self.prefix + path, **kwargs)


@pytest.fixture
def client(redis, service_settings):
    return SecretClient(create_app(service_settings, redis), "/" + resolve_url_secret(service_settings))


def setup_body(extra_params=None, schema=CONFIG):
    return {"project": "3.1700000000", "schema": schema, "hostname": "http://ls", "access_token": "tok", "extra_params": extra_params}


def predict_body(tasks):
    return {"project": "3.1700000000", "label_config": CONFIG, "tasks": tasks, "params": {"context": None}}


@pytest.fixture
def published(service_settings):
    """A head-mode model and pool ranking published and activated the way the worker does it."""
    return publish_and_activate(ModelStore(service_settings.model_dir))


def connected(client, redis):
    """Project 3 sent its first /setup; the ranking that queued is dropped, so a test starts from an empty queue."""
    assert client.post("/setup", json=setup_body()).status_code == 200
    redis.flushdb()


def test_the_first_setup_of_a_project_queues_its_first_ranking_and_later_ones_do_not(client, redis, service_settings):
    queue = Queue(service_settings.queue_name, connection=redis)
    assert client.post("/setup", json=setup_body()).status_code == 200
    (job,) = queue.jobs
    assert job.args == (3,) and "connected" in job.description
    for _ in range(3):  # LS calls /setup on nearly every page touch
        assert client.post("/setup", json=setup_body()).status_code == 200
    assert queue.count == 1


def test_health_is_cheap_and_open(client):
    for response in (client.raw.get("/health"), client.get("/health"), client.get("/")):
        assert response.status_code == 200 and response.json["status"] == "UP"


def test_without_the_secret_path_nothing_is_read_stored_or_enqueued(client, redis, service_settings):
    raw = client.raw
    assert raw.post("/setup", json=setup_body()).status_code == 404
    assert raw.post("/webhook", json={"action": "START_TRAINING", "project": 3}).status_code == 404
    assert raw.post("/wrong-secret-0123456789/webhook", json={"action": "START_TRAINING", "project": 3}).status_code == 404
    assert raw.get("/status?project=3").status_code == 404
    assert not (service_settings.model_dir / "project-3").exists()
    assert Queue(service_settings.queue_name, connection=redis).count == 0


def test_setup_validates_and_records_project_settings_on_disk(client, service_settings):
    response = client.post("/setup", json=setup_body({"strategy": "entropy", "epochs": 2}))
    assert response.status_code == 200 and response.json == {"model_version": "untrained"}
    record = ModelStore(service_settings.model_dir).setup_record(3).read()
    assert (record.settings.strategy, record.settings.epochs, record.hostname, record.access_token) == ("entropy", 2, "http://ls", "tok")
    path = service_settings.model_dir / "project-3" / "setup.json"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"  # it holds a Label Studio token


@pytest.mark.parametrize(
    "body, fragment",
    [
        (setup_body({"strategy": "nope"}), "choose one of"),
        (setup_body({"max_length": 10**9}), "max_length must be between 8 and 512"),
        (setup_body({"epochs": 10**9}), "epochs must be between 1 and 50"),
        (setup_body({"committee_size": 10**6}), "committee_size must be between 2 and 20"),
        (setup_body(schema="<View><Image name='i' value='$i'/></View>"), "exactly one <Choices>"),
        ({"schema": CONFIG}, "missing field 'project'"),
        ({**setup_body(), "project": "abc"}, "project must be an id"),
        ({**setup_body(), "project": "²"}, "project must be an id"),
        ({**setup_body(), "schema": 5}, "'schema' must be a str"),
        ({**setup_body(), "hostname": 5}, "'hostname' must be a string"),
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


def test_one_unreadable_task_does_not_fail_the_batch(client, published):
    version, ranking = published
    tasks = [
        {"id": 555, "data": {"text": "the config reads $review"}},  # a config changed after import
        {"id": 102, "data": {"review": POOL[102]}},
        {"id": "abc", "data": {"review": "an id LS never sends"}},
        "not a task",
    ]
    response = client.post("/predict", json=predict_body(tasks))
    assert response.status_code == 200
    missing_field, ranked, odd_id, not_a_task = response.json["results"]
    assert ranked[0]["model_version"] == version and ranked[0]["score"] == pytest.approx(ranking.scores[1])
    assert missing_field == [] and not_a_task == []
    assert odd_id[0]["model_version"] == version  # scored like any task the worker never ranked


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


def test_a_version_is_served_only_once_label_studio_has_it(client, published, service_settings):
    version, ranking = published
    task = [{"id": 101, "data": {"review": POOL[101]}}]
    time.sleep(1.1)  # version names carry a seconds timestamp
    store = ModelStore(service_settings.model_dir)
    newer = publish_version(store, 3, None, ranking, replace(store.get(3, version).meta(), trained=False))
    # Published on disk, but its write-back has not finished: LS still uses the older version.
    assert client.post("/predict", json=predict_body(task)).json["results"][0][0]["model_version"] == version
    assert client.post("/setup", json=setup_body()).json["model_version"] == version
    status = client.get("/status?project=3").json
    assert (status["model_version"], status["newest_local_version"]) == (version, newer)
    assert any("not active in Label Studio" in warning for warning in status["warnings"])
    activate(store, 3, newer)  # picked up without a restart
    assert client.post("/predict", json=predict_body(task)).json["results"][0][0]["model_version"] == newer


def test_predict_batches_over_the_limit_get_a_413(redis, service_settings, tmp_path):
    service = ServiceSettings.from_env({"REDIS_URL": service_settings.redis_url, "MODEL_DIR": str(tmp_path), "AL_MAX_PREDICT_TASKS": "2"})
    client = SecretClient(create_app(service, redis), "/" + resolve_url_secret(service))
    response = client.post("/predict", json=predict_body([{"id": i, "data": {"review": "x"}} for i in range(3)]))
    assert response.status_code == 413 and "AL_MAX_PREDICT_TASKS" in response.json["error"]


def test_bodies_over_the_limits_get_a_413_without_being_read(redis, service_settings, tmp_path):
    service = ServiceSettings.from_env(
        {"REDIS_URL": service_settings.redis_url, "MODEL_DIR": str(tmp_path), "AL_MAX_BODY_MB": "1", "AL_MAX_WEBHOOK_KB": "16"}
    )
    client = SecretClient(create_app(service, redis), "/" + resolve_url_secret(service))
    connected(client, redis)
    big_webhook = json.dumps({"action": "ANNOTATION_CREATED", "project": 3, "padding": "x" * 20_000})
    response = client.post("/webhook", data=big_webhook, content_type="application/json")
    assert response.status_code == 413 and "16384 bytes" in response.json["error"]
    assert Queue(service.queue_name, connection=redis).count == 0
    huge = json.dumps(predict_body([{"id": 1, "data": {"review": "x" * (2 * 1024 * 1024)}}]))
    response = client.post("/predict", data=huge, content_type="application/json")
    assert response.status_code == 413 and "limit" in response.json["error"]


def test_webhook_enqueues_retrains_and_ignores_other_actions(client, redis, service_settings):
    connected(client, redis)
    queue = Queue(service_settings.queue_name, connection=redis)
    ignored = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 3}})
    assert ignored.status_code == 200 and ignored.json["status"] == "ignored" and queue.count == 0
    actions = (
        "ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "ANNOTATIONS_DELETED", "START_TRAINING",
        "TASKS_CREATED", "TASKS_DELETED",
    )
    for action in actions:
        redis.flushdb()
        response = client.post("/webhook", json={"action": action, "project": {"id": 3, "title": "p"}})
        assert response.status_code == 201 and response.json["status"] == "queued", action
        assert queue.job_ids == [response.json["job_id"]]


def test_webhooks_leave_the_task_ids_they_name_as_hints_for_the_next_read(client, redis):
    connected(client, redis)
    client.post("/webhook", json={"action": "TASKS_DELETED", "project": {"id": 3}, "tasks": [{"id": 7}, {"id": 8}]})
    client.post("/webhook", json={"action": "ANNOTATION_UPDATED", "project": {"id": 3}, "task": {"id": 9}, "annotation": {"id": 1, "task": 9}})
    # Junk in a body is no hint: only positive integers are kept.
    client.post("/webhook", json={"action": "ANNOTATIONS_DELETED", "project": {"id": 3}, "annotations": [{"task": "10"}, {"task": True}, {"task": -1}, 5]})
    assert pending_hints(redis, 3) == [7, 8, 9]
    assert pending_resync(redis, 3) is None
    # A bulk delete names at most MAX_HINTS_PER_WEBHOOK ids; the task-count check covers the rest.
    bulk = {"action": "TASKS_DELETED", "project": {"id": 3}, "tasks": [{"id": i} for i in range(100, 100 + MAX_HINTS_PER_WEBHOOK + 5)]}
    assert hinted_task_ids(bulk) == list(range(100, 100 + MAX_HINTS_PER_WEBHOOK))


def test_start_training_asks_for_a_full_resync_and_in_finetune_mode_a_fine_tune(client, redis, service_settings):
    assert client.post("/setup", json=setup_body({"model_mode": "finetune"})).status_code == 200
    redis.flushdb()
    assert client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 3}}).status_code == 201
    assert pending_resync(redis, 3) == "START_TRAINING"
    (job,) = Queue(service_settings.finetune_queue, connection=redis).jobs
    assert job.func_name == "backend.jobs.full_path.finetune" and job.args == (3,)
    # In head mode, a resync and a retrain only.
    assert client.post("/setup", json=setup_body({"model_mode": "head"})).status_code == 200
    redis.flushdb()
    assert client.post("/train", json={"project": 3}).status_code == 201
    assert pending_resync(redis, 3) == "train" and Queue(service_settings.finetune_queue, connection=redis).count == 0


def test_a_webhook_for_a_project_that_never_connected_enqueues_nothing(client, redis, service_settings):
    response = client.post("/webhook", json={"action": "START_TRAINING", "project": 42})
    assert response.status_code == 404 and "never connected" in response.json["error"]
    assert client.post("/train", json={"project": 42}).status_code == 404
    assert Queue(service_settings.queue_name, connection=redis).count == 0


def test_a_webhook_storm_coalesces_into_one_job(client, redis, service_settings):
    connected(client, redis)
    statuses = [client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3}}).json["status"] for _ in range(50)]
    assert statuses.count("queued") == 1 and statuses.count("coalesced") == 49
    assert Queue(service_settings.queue_name, connection=redis).count == 1


def test_webhook_without_action_is_a_400(client):
    response = client.post("/webhook", json={"project": {"id": 3}})
    assert response.status_code == 400 and "'action'" in response.json["error"]


def test_versions_and_status(client, published, redis):
    version, _ = published
    connected(client, redis)
    assert client.get("/versions", json={"project": "3.17"}).json == {"versions": [version]}
    status = client.get("/status?project=3").json
    assert status["model_version"] == version and status["queue"]["pending_job"] is None
    assert status["connected"] and status["settings"]["strategy"] == "margin" and status["warnings"] == []


def test_status_warns_when_the_owner_chose_another_order(client, published, service_settings):
    version, _ = published
    ledger = ModelStore(service_settings.model_dir).ledger(3)
    ledger.write(Ledger(written=(version,), active=version, sampling_set=True, ls_model_version=version, ls_sampling="Sequential sampling"))
    status = client.get("/status?project=3").json
    assert status["label_studio"]["sampling"] == "Sequential sampling"
    assert any("'Sequential sampling' order" in warning for warning in status["warnings"])


def test_status_reports_the_annotated_spans_an_ner_version_could_not_use(client, service_settings):
    from published_model import activate, fitted_model

    from backend.jobs.publish import publish_version

    classifier, ranking, meta = fitted_model()
    store = ModelStore(service_settings.model_dir)
    version = publish_version(store, 3, classifier, ranking,
                              replace(meta, task_type="ner", dropped_spans={"overlap": 2, "text_mismatch": 1}))
    activate(store, 3, version)
    status = client.get("/status?project=3").json
    assert status["task_type"] == "ner" and status["dropped_spans"] == {"overlap": 2, "text_mismatch": 1}
    assert "3 annotated spans could not be used (2 overlap, 1 text_mismatch)" in " ".join(status["warnings"])


def test_redis_outage_is_a_clear_503(service_settings):
    from redis import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    app = create_app(service_settings, dead)
    client = SecretClient(app, "/" + resolve_url_secret(service_settings))
    # /setup still answers (LS would show the connection as broken otherwise); only the head start is lost.
    assert client.post("/setup", json=setup_body()).status_code == 200
    response = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3}})
    assert response.status_code == 503 and "Redis" in response.json["error"]


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_guards_everything_but_health_and_webhook(redis, redis_url, tmp_path):
    service = ServiceSettings.from_env(
        {"REDIS_URL": redis_url, "MODEL_DIR": str(tmp_path), "BASIC_AUTH_USER": "ls", "BASIC_AUTH_PASS": "s3cret"}
    )
    client = SecretClient(create_app(service, redis), "/" + resolve_url_secret(service))
    assert client.post("/setup", json=setup_body()).status_code == 401
    assert client.post("/setup", json=setup_body(), headers=basic("ls", "wrong")).status_code == 401
    assert client.post("/setup", json=setup_body(), headers=basic("ls", "s3cret")).status_code == 200
    assert client.get("/status?project=3").status_code == 401
    assert client.get("/health").status_code == 200
    assert client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 3}}).status_code == 200


def test_non_ascii_credentials_are_refused_not_crashed_on(redis, redis_url, tmp_path):
    service = ServiceSettings.from_env(
        {"REDIS_URL": redis_url, "MODEL_DIR": str(tmp_path), "BASIC_AUTH_USER": "lś", "BASIC_AUTH_PASS": "pässwörd"}
    )
    client = SecretClient(create_app(service, redis), "/" + resolve_url_secret(service))
    assert client.post("/setup", json=setup_body(), headers=basic("ünïcode", "ß")).status_code == 401
    assert client.post("/setup", json=setup_body(), headers=basic("lś", "pässwörd")).status_code == 200


def test_metrics_are_scraped_under_the_secret_and_count_webhooks(client, redis, service_settings):
    from prometheus_client.parser import text_string_to_metric_families

    connected(client, redis)
    client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3}})
    client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 3}})
    client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 3}})
    assert client.raw.get("/metrics").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    webhook = "al_webhooks_total"
    assert samples[(webhook, (("action", "ANNOTATION_CREATED"), ("result", "queued")))] == 1
    assert samples[(webhook, (("action", "ANNOTATION_CREATED"), ("result", "coalesced")))] == 1
    assert samples[(webhook, (("action", "PROJECT_UPDATED"), ("result", "ignored")))] == 1
    assert samples[("al_queue_depth", (("queue", service_settings.queue_name),))] == 1


def test_the_dashboard_is_html_under_the_secret_and_linked_from_status(client, published, redis):
    connected(client, redis)
    status = client.get("/status?project=3").json
    assert status["dashboard"].endswith("/dashboard?project=3")
    page = client.raw.get(status["dashboard"])
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert client.raw.get("/dashboard?project=3").status_code == 404
