"""Prometheus metrics, kept in Redis and exposed at scrape time.

Counts come from many processes: gunicorn workers answer webhooks, and RQ forks a work horse per retrain
that exits when the job ends. prometheus_client's in-process counters would be scattered over the gunicorn
workers and lost with every work horse, so each event is an increment of a Redis hash, and
``RedisMetricsCollector`` turns the hashes into metric families when Prometheus scrapes ``/metrics``.

Redis keys (all under ``al:metrics:``; none expires, so the counts live as long as Redis's data; a Redis
that restarts empty looks to Prometheus like a counter reset, which ``rate()`` handles):

- ``al:metrics:webhooks`` hash, field ``<action>|<result>``: webhooks received.
- ``al:metrics:retrains`` hash, field ``<outcome>``: retrains ended.
- ``al:metrics:retrain_seconds`` hash, fields ``<stage>|<le>``: observations in the bucket whose upper bound
  is ``le`` (not cumulative: each observation increments one field), and ``<stage>|sum``: seconds observed.
  The histogram's count is the sum of its buckets, so count and ``+Inf`` can never disagree.
- ``al:metrics:counters`` hash, fields ``predictions_written``, ``embedding_cache_hits``,
  ``embedding_cache_misses``.

Every label value is one of a fixed set below (anything else becomes ``other``), and no metric carries a
project, task or job: a metric's series count stays bounded whatever Label Studio sends.

Changing ``DURATION_BUCKETS`` orphans the stored bucket fields: rename ``RETRAIN_SECONDS_KEY`` with it.
"""
from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from backend.core.keys import (
    COUNTERS_KEY,
    RETRAIN_SECONDS_KEY,
    RETRAINS_KEY,
    WEBHOOKS_KEY,
)

log = logging.getLogger(__name__)


OTHER = "other"
#: Label Studio's webhook actions. The action is whatever the request body says, so only these reach a label.
WEBHOOK_ACTIONS = frozenset(
    {
        "ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "ANNOTATIONS_DELETED",
        "START_TRAINING", "PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED", "TASKS_CREATED", "TASKS_DELETED",
        "LABEL_LINK_CREATED", "LABEL_LINK_UPDATED", "LABEL_LINK_DELETED",
        "REVIEW_CREATED", "REVIEW_UPDATED", "REVIEWS_DELETED",
    }
)
WEBHOOK_RESULTS = frozenset({"queued", "coalesced", "ignored", "refused", "invalid", "too_large"})
RETRAIN_OUTCOMES = ("trained", "ranked", "skipped", "refused", "failed")
RETRAIN_STAGES = frozenset({"connect", "read", "embed", "train", "evaluate", "score", "publish", "write", "prune", "total"})
#: From a cached-model ``read`` (tens of ms) to a full fine-tune on the CPU (an hour); ``+Inf`` above that.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
_BUCKET_LABELS = tuple(floatToGoString(bound) for bound in DURATION_BUCKETS) + ("+Inf",)
_SEPARATOR = "|"  # in no label value allowed above, so a field splits back unambiguously

_COUNTER_FIELDS = {
    "predictions_written": ("al_predictions_written", "Predictions written to Label Studio by retrains."),
    "embedding_cache_hits": ("al_embedding_cache_hits", "Texts whose embedding came from the embedding cache."),
    "embedding_cache_misses": ("al_embedding_cache_misses", "Texts whose embedding had to be computed."),
}


def _bounded(value: object, allowed: Iterable[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


def _bucket_label(seconds: float) -> str:
    for bound, label in zip(DURATION_BUCKETS, _BUCKET_LABELS):
        if seconds <= bound:
            return label
    return "+Inf"


def _send(redis: Redis, what: str, commands) -> None:
    """One round trip (MULTI/EXEC, so a scrape sees a retrain's fields all or none); a lost count is
    better than a webhook answered 503 or a retrain's own error replaced by Redis's."""
    try:
        with redis.pipeline(transaction=True) as pipe:
            commands(pipe)
            pipe.execute()
    except RedisError as error:
        log.warning("metrics: %s not recorded: %s", what, error)


def record_webhook(redis: Redis, action: str, result: str) -> None:
    field = _bounded(action, WEBHOOK_ACTIONS) + _SEPARATOR + _bounded(result, WEBHOOK_RESULTS)
    _send(redis, "webhook", lambda pipe: pipe.hincrby(WEBHOOKS_KEY, field, 1))


def record_retrain(redis: Redis, outcome: str, stage_seconds: Mapping[str, float]) -> None:
    """One retrain's outcome, and the seconds each of its stages took (stages it did not reach are left out)."""
    observations = []
    for stage, seconds in stage_seconds.items():
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            continue
        # A negative or NaN observation would make the histogram's sum meaningless for good.
        if math.isfinite(seconds) and seconds >= 0:
            observations.append((_bounded(stage, RETRAIN_STAGES), seconds))

    def commands(pipe):
        pipe.hincrby(RETRAINS_KEY, _bounded(outcome, RETRAIN_OUTCOMES), 1)
        for stage, seconds in observations:
            pipe.hincrby(RETRAIN_SECONDS_KEY, stage + _SEPARATOR + _bucket_label(seconds), 1)
            pipe.hincrbyfloat(RETRAIN_SECONDS_KEY, stage + _SEPARATOR + "sum", seconds)

    _send(redis, "retrain", commands)


def record_predictions_written(redis: Redis, count: int) -> None:
    if count > 0:
        _send(redis, "predictions written", lambda pipe: pipe.hincrby(COUNTERS_KEY, "predictions_written", int(count)))


def record_embedding_cache(redis: Redis, hits: int, misses: int) -> None:
    def commands(pipe):
        pipe.hincrby(COUNTERS_KEY, "embedding_cache_hits", max(int(hits), 0))
        pipe.hincrby(COUNTERS_KEY, "embedding_cache_misses", max(int(misses), 0))

    if hits > 0 or misses > 0:
        _send(redis, "embedding cache", commands)


class StageTimes:
    """Seconds per stage of one retrain, for ``record_retrain``.

    A stage that raises is not recorded: a stage cut short by an outage is no sample of how long it takes.
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - began

    def with_total(self) -> dict[str, float]:
        return {**self.seconds, "total": time.monotonic() - self.started}


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in raw.items()}


def _number(text: str, kind=int):
    try:
        value = kind(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class RedisMetricsCollector:
    """Reads the counts every process left in Redis, at scrape time. Never raises: without Redis it yields
    only ``al_metrics_redis_up 0``, so the scrape still succeeds and the outage shows as a value."""

    def __init__(self, redis: Redis, queue_names: Iterable[str]):
        self.redis = redis
        self.queue_names = list(queue_names)

    def collect(self) -> Iterator[Metric]:
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for key in (WEBHOOKS_KEY, RETRAINS_KEY, RETRAIN_SECONDS_KEY, COUNTERS_KEY):
                    pipe.hgetall(key)
                webhooks, retrains, seconds, counters = (_decode(raw) for raw in pipe.execute())
            depths = {name: Queue(name, connection=self.redis).count for name in self.queue_names}
        except RedisError as error:
            log.warning("metrics: Redis unavailable at scrape time: %s", error)
            yield _redis_up(0)
            return
        yield _redis_up(1)
        yield _retrain_durations(seconds)
        yield _retrains(retrains)
        yield _webhooks(webhooks)
        depth = GaugeMetricFamily("al_queue_depth", "Retrain jobs waiting in the RQ queue.", labels=["queue"])
        for name, count in depths.items():
            depth.add_metric([name], count)
        yield depth
        for field, (name, documentation) in _COUNTER_FIELDS.items():
            yield CounterMetricFamily(name, documentation, value=_number(counters.get(field, "0")) or 0)


def _redis_up(value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily("al_metrics_redis_up", "1 if the metrics in Redis could be read at this scrape.", value=value)


def _retrain_durations(fields: dict[str, str]) -> HistogramMetricFamily:
    buckets: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_BUCKET_LABELS, 0))
    sums: dict[str, float] = defaultdict(float)
    for field, text in fields.items():
        stage, _, bucket = field.partition(_SEPARATOR)
        stage = _bounded(stage, RETRAIN_STAGES)
        if bucket == "sum":
            sums[stage] += _number(text, float) or 0.0
        elif bucket in _BUCKET_LABELS:
            buckets[stage][bucket] += _number(text) or 0
    family = HistogramMetricFamily(
        "al_retrain_duration_seconds", "Seconds each stage of a retrain took.", labels=["stage"]
    )
    for stage in sorted(buckets):
        cumulative, running = [], 0
        for label in _BUCKET_LABELS:
            running += buckets[stage][label]
            cumulative.append((label, running))
        family.add_metric([stage], cumulative, sum_value=sums[stage])
    return family


def _retrains(fields: dict[str, str]) -> CounterMetricFamily:
    # Every outcome is exposed from the start, so the first failure is an increase that rate() sees.
    counts = dict.fromkeys(RETRAIN_OUTCOMES, 0)
    for outcome, text in fields.items():
        outcome = _bounded(outcome, RETRAIN_OUTCOMES)
        counts[outcome] = counts.get(outcome, 0) + (_number(text) or 0)
    family = CounterMetricFamily("al_retrains", "Retrains ended, by outcome.", labels=["outcome"])
    for outcome, count in counts.items():
        family.add_metric([outcome], count)
    return family


def _webhooks(fields: dict[str, str]) -> CounterMetricFamily:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for field, text in fields.items():
        action, _, result = field.partition(_SEPARATOR)
        counts[_bounded(action, WEBHOOK_ACTIONS), _bounded(result, WEBHOOK_RESULTS)] += _number(text) or 0
    family = CounterMetricFamily("al_webhooks", "Webhooks received, by action and result.", labels=["action", "result"])
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
    return family


def metrics_response(redis: Redis, queue_names: Iterable[str]) -> tuple[bytes, str]:
    """The ``/metrics`` body and content type. A registry per scrape: nothing global, and nothing the
    default registry would add (its process metrics describe one gunicorn worker, picked at random)."""
    # auto_describe stays off so registering does not read Redis a second time.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisMetricsCollector(redis, queue_names))
    return generate_latest(registry), CONTENT_TYPE_LATEST
