"""Prometheus metrics kept in Redis: counts from many processes, read back at scrape time (backend.core.metrics)."""
import math
import multiprocessing
import socket
import time

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from redis.connection import Connection
from rq import Queue, Worker, get_current_job
from rq.job import JobStatus

from backend.core import keys, metrics
from backend.core.metrics import (
    DURATION_BUCKETS,
    RedisMetricsCollector,
    StageTimes,
    metrics_response,
    record_embedding_cache,
    record_predictions_written,
    record_retrain,
    record_webhook,
)
from backend.ops.processes import free_port

ALLOWED_LABELS = {"stage", "le", "outcome", "action", "result", "queue"}
HOSTILE_ACTIONS = [
    "annotation_created",  # case matters: not Label Studio's spelling
    "ANNOTATION_CREATED|queued",
    'ANNOTATION_CREATED",project="7',
    "ANNOTATION_CREATED\nal_retrains_total 1e9",
    "x" * 10_000,
    "",
    None,
    12,
]


def scrape(redis: Redis, queue_names=()) -> dict:
    """{sample name: {frozenset(labels): value}} from the exposition text, as Prometheus would parse it."""
    body, content_type = metrics_response(redis, list(queue_names))
    assert content_type == CONTENT_TYPE_LATEST
    samples: dict = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[name][frozenset(labels.items())]


def _record_like_one_process(redis_url: str, done) -> None:
    redis = Redis.from_url(redis_url)
    record_webhook(redis, "ANNOTATION_CREATED", "queued")
    record_webhook(redis, "ANNOTATION_CREATED", "coalesced")
    record_webhook(redis, "ANNOTATION_CREATED", "coalesced")
    record_webhook(redis, "PROJECT_UPDATED", "ignored")
    record_webhook(redis, "NOT_A_LABEL_STUDIO_ACTION_" + "9" * 40, "ignored")
    record_retrain(redis, "trained", {"read": 0.2, "train": 42.0, "total": 50.0})
    record_retrain(redis, "skipped", {"read": 0.03})
    record_predictions_written(redis, 500)
    record_embedding_cache(redis, hits=7, misses=3)
    done.put(True)


def test_counts_from_separate_processes_add_up(redis, redis_url):
    context = multiprocessing.get_context("spawn")
    done = context.Queue()
    processes = [context.Process(target=_record_like_one_process, args=(redis_url, done)) for _ in range(3)]
    for process in processes:
        process.start()
    assert [done.get(timeout=120) for _ in processes] == [True] * 3
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    samples = scrape(redis)
    assert value(samples, "al_metrics_redis_up") == 1
    assert value(samples, "al_webhooks_total", action="ANNOTATION_CREATED", result="queued") == 3
    assert value(samples, "al_webhooks_total", action="ANNOTATION_CREATED", result="coalesced") == 6
    assert value(samples, "al_webhooks_total", action="PROJECT_UPDATED", result="ignored") == 3
    assert value(samples, "al_webhooks_total", action="other", result="ignored") == 3
    assert len(samples["al_webhooks_total"]) == 4
    assert samples["al_retrains_total"] == {
        frozenset({("outcome", outcome)}): count
        for outcome, count in {"trained": 3, "ranked": 0, "skipped": 3, "refused": 0, "failed": 0}.items()
    }
    assert value(samples, "al_retrain_duration_seconds_count", stage="read") == 6
    assert value(samples, "al_retrain_duration_seconds_bucket", stage="read", le="0.05") == 3
    assert value(samples, "al_retrain_duration_seconds_bucket", stage="read", le="0.25") == 6
    assert math.isclose(value(samples, "al_retrain_duration_seconds_sum", stage="read"), 3 * 0.23)
    assert value(samples, "al_retrain_duration_seconds_bucket", stage="train", le="30.0") == 0
    assert value(samples, "al_retrain_duration_seconds_bucket", stage="train", le="60.0") == 3
    assert math.isclose(value(samples, "al_retrain_duration_seconds_sum", stage="total"), 150.0)
    assert value(samples, "al_predictions_written_total") == 1500
    assert value(samples, "al_embedding_cache_hits_total") == 21
    assert value(samples, "al_embedding_cache_misses_total") == 9


def _job_records_a_retrain() -> str:
    redis = get_current_job().connection
    times = StageTimes()
    with times.stage("read"):
        time.sleep(0.06)
    record_retrain(redis, "ranked", times.with_total())
    record_predictions_written(redis, 12)
    return "recorded"


def test_a_forked_work_horse_leaves_its_counts_behind(redis, service_settings):
    """RQ forks a work horse per job and it exits after it: what it counted must outlive it."""
    queue = Queue(service_settings.queue_name, connection=redis)
    jobs = [queue.enqueue(_job_records_a_retrain) for _ in range(2)]
    Worker([queue], connection=redis).work(burst=True)  # the forking worker, as backend.worker runs it

    for job in jobs:
        assert job.get_status(refresh=True) == JobStatus.FINISHED, job.latest_result()
    samples = scrape(redis, [service_settings.queue_name])
    assert value(samples, "al_retrains_total", outcome="ranked") == 2
    assert value(samples, "al_predictions_written_total") == 24
    assert value(samples, "al_retrain_duration_seconds_count", stage="read") == 2
    assert value(samples, "al_retrain_duration_seconds_bucket", stage="read", le="0.05") == 0  # slept 0.06 s
    assert value(samples, "al_retrain_duration_seconds_count", stage="total") == 2
    assert value(samples, "al_queue_depth", queue=service_settings.queue_name) == 0


def test_histogram_buckets_are_cumulative_and_inclusive(redis):
    record_retrain(redis, "trained", {"train": 0.05})  # on a bound: in that bucket (le is "less or equal")
    record_retrain(redis, "trained", {"train": 0.0501})
    record_retrain(redis, "trained", {"train": 3600.0})
    record_retrain(redis, "trained", {"train": 3600.5})
    record_retrain(redis, "trained", {"train": 0.0})
    # Not observations: they would corrupt the sum for good. The retrain is still counted.
    record_retrain(redis, "failed", {"train": -1.0, "read": float("nan"), "score": float("inf"), "write": "slow"})

    samples = scrape(redis)
    expected = {0.05: 2, 0.1: 3, 1800.0: 3, 3600.0: 4}
    buckets = {float(dict(labels)["le"]): count for labels, count in samples["al_retrain_duration_seconds_bucket"].items()}
    assert sorted(buckets) == sorted([*DURATION_BUCKETS, math.inf])
    for bound, count in expected.items():
        assert buckets[bound] == count, bound
    assert buckets[math.inf] == 5
    counts = [buckets[bound] for bound in sorted(buckets)]
    assert counts == sorted(counts)
    assert value(samples, "al_retrain_duration_seconds_count", stage="train") == 5
    assert math.isclose(value(samples, "al_retrain_duration_seconds_sum", stage="train"), 0.05 + 0.0501 + 3600.0 + 3600.5)
    assert value(samples, "al_retrains_total", outcome="failed") == 1
    assert {dict(labels)["stage"] for labels in samples["al_retrain_duration_seconds_count"]} == {"train"}


def test_label_values_are_bounded_and_no_metric_names_a_project_task_or_job(redis, service_settings):
    for action in HOSTILE_ACTIONS:
        record_webhook(redis, action, "ignored")
    record_webhook(redis, "ANNOTATION_CREATED", "queued for project 424242")
    record_retrain(redis, "trained for project 424242", {"train on task 987654321": 1.0, "project-424242": 2.0})
    # Fields no current code writes (an older version, a hand edit) are bounded on the way out too.
    redis.hset(keys.WEBHOOKS_KEY, "TASK_987654321|queued", 5)
    redis.hset(keys.RETRAIN_SECONDS_KEY, "task-987654321|+Inf", "not a number")
    Queue(service_settings.queue_name, connection=redis).enqueue("builtins.print", 7)

    samples = scrape(redis, [service_settings.queue_name])
    label_names = {name for series in samples.values() for labels in series for name, _ in labels}
    assert label_names <= ALLOWED_LABELS
    assert {dict(labels)["action"] for labels in samples["al_webhooks_total"]} <= metrics.WEBHOOK_ACTIONS | {"other"}
    assert value(samples, "al_webhooks_total", action="other", result="ignored") == len(HOSTILE_ACTIONS)
    assert value(samples, "al_webhooks_total", action="ANNOTATION_CREATED", result="other") == 1
    assert value(samples, "al_webhooks_total", action="other", result="queued") == 5
    assert value(samples, "al_retrains_total", outcome="other") == 1
    assert value(samples, "al_retrain_duration_seconds_count", stage="other") == 2
    body, _ = metrics_response(redis, [service_settings.queue_name])
    for leak in (b"987654321", b"424242", b"project", b"task", b"\nal_retrains_total 1e9", b"xxxxxxxx"):
        assert leak not in body, leak


def test_each_recording_is_one_round_trip(redis, monkeypatch):
    """The webhook route has 1 s in all: a recording must not add a Redis round trip per command."""
    sends = []
    original = Connection.send_packed_command

    def counting(self, command, check_health=True):
        sends.append(command)
        return original(self, command, check_health)

    redis.ping()  # the connection's handshake is not the recording's cost
    monkeypatch.setattr(Connection, "send_packed_command", counting)
    for record in (
        lambda: record_webhook(redis, "ANNOTATION_CREATED", "queued"),
        lambda: record_retrain(redis, "trained", dict.fromkeys(metrics.RETRAIN_STAGES, 1.0)),
        lambda: record_predictions_written(redis, 3),
        lambda: record_embedding_cache(redis, 1, 2),
    ):
        sends.clear()
        record()
        assert len(sends) == 1


def test_queue_depth_is_each_queues_waiting_jobs(redis, service_settings):
    busy, idle = service_settings.queue_name, service_settings.queue_name + "-idle"
    queue = Queue(busy, connection=redis)
    for project in (1, 2, 3):
        queue.enqueue("backend.jobs.retrain.retrain", project)
    assert queue.count == 3

    samples = scrape(redis, [busy, idle])
    assert samples["al_queue_depth"] == {frozenset({("queue", busy)}): 3, frozenset({("queue", idle)}): 0}
    queue.empty()
    assert value(scrape(redis, [busy, idle]), "al_queue_depth", queue=busy) == 0


def _assert_scrape_reports_redis_down(redis: Redis) -> None:
    assert [family.name for family in RedisMetricsCollector(redis, ["q"]).collect()] == ["al_metrics_redis_up"]
    samples = scrape(redis, ["q"])
    assert samples == {"al_metrics_redis_up": {frozenset(): 0.0}}


def test_redis_down_is_a_value_not_an_error(redis):
    # Built like the app's client: Redis.from_url makes one attempt, where redis-py 8's Redis(host=...) retries
    # with back-off by default (seconds per call when Redis is down).
    nowhere = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.3, socket_timeout=0.3)
    _assert_scrape_reports_redis_down(nowhere)
    # Recording is best effort: a lost count must not turn a webhook into a 503 or mask a retrain's error.
    record_webhook(nowhere, "ANNOTATION_CREATED", "queued")
    record_retrain(nowhere, "failed", {"read": 1.0})
    record_predictions_written(nowhere, 5)
    record_embedding_cache(nowhere, 1, 1)
    assert scrape(redis)["al_metrics_redis_up"] == {frozenset(): 1.0}


def test_a_redis_that_stops_answering_costs_one_timeout(redis):
    """A Redis that accepts connections but never answers (hung, paused): bounded by the client's timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # never accepted: connects succeed, replies never come
        port = listener.getsockname()[1]
        hung = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.3, socket_timeout=0.3)
        started = time.monotonic()
        record_webhook(hung, "ANNOTATION_CREATED", "queued")
        assert time.monotonic() - started < 1.0  # inside the webhook's 1 s (the app uses 0.5 s timeouts)
        _assert_scrape_reports_redis_down(hung)


def test_stage_times_leave_out_a_stage_that_raised():
    times = StageTimes()
    with times.stage("read"):
        pass
    try:
        with times.stage("train"):
            raise TimeoutError("Label Studio went away")
    except TimeoutError:
        pass
    assert set(times.seconds) == {"read"}  # a stage cut short is no sample of how long it takes
    assert set(times.with_total()) == {"read", "total"}
