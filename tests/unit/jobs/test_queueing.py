"""Coalescing and the project lock, against a real Redis and real RQ queues."""
import threading
import time
from dataclasses import replace

import pytest
from rq import Queue
from rq.job import JobStatus

from backend.core.exceptions import LockLost
from backend.jobs.project_lock import lock_for, project_lock
from backend.jobs.queueing import enqueue_retrain, is_dead, pending_key, release_pending


def held_lock(redis, project_id, job_id, **kwargs):
    return project_lock(redis, project_id, job_id, lambda holder: is_dead(redis, holder), poll_s=0.05, **kwargs)


def test_a_webhook_burst_enqueues_one_retrain(redis, service_settings):
    results = [enqueue_retrain(redis, service_settings, 5, "burst") for _ in range(25)]
    assert not results[0].coalesced and all(r.coalesced for r in results[1:])
    assert {r.job_id for r in results} == {results[0].job_id}
    queue = Queue(service_settings.queue_name, connection=redis)
    assert queue.job_ids == [results[0].job_id]
    assert queue.fetch_job(results[0].job_id).retries_left == 3  # LS or Redis outages get retried


def test_projects_do_not_coalesce_with_each_other(redis, service_settings):
    a = enqueue_retrain(redis, service_settings, 1, "x")
    b = enqueue_retrain(redis, service_settings, 2, "x")
    assert a.job_id != b.job_id and not b.coalesced


def test_while_one_runs_exactly_one_more_is_queued(redis, service_settings):
    first = enqueue_retrain(redis, service_settings, 9, "first")
    # The running job takes the project lock, then releases its pending slot (what jobs.retrain does).
    lock = lock_for(redis, 9)
    assert lock.acquire(blocking=False)
    release_pending(redis, 9, first.job_id)
    Queue(service_settings.queue_name, connection=redis).remove(first.job_id)  # it left the queue to run

    during = [enqueue_retrain(redis, service_settings, 9, "during") for _ in range(10)]
    assert not during[0].coalesced and all(r.coalesced for r in during[1:])
    assert Queue(service_settings.queue_name, connection=redis).job_ids == [during[0].job_id]
    lock.release()


def test_a_dead_pending_job_does_not_block_new_retrains(redis, service_settings):
    redis.set(pending_key(4), "retrain-4-vanished")  # e.g. Redis lost the job but kept the key
    fresh = enqueue_retrain(redis, service_settings, 4, "after loss")
    assert not fresh.coalesced and redis.get(pending_key(4)).decode() == fresh.job_id


def test_a_job_waiting_in_a_queue_no_worker_serves_any_more_is_replaced(redis, service_settings):
    old = enqueue_retrain(redis, service_settings, 4, "before the queue was renamed")
    renamed = replace(service_settings, queue_name=service_settings.queue_name + "-renamed")
    fresh = enqueue_retrain(redis, renamed, 4, "after")
    assert not fresh.coalesced and fresh.job_id != old.job_id
    assert Queue(renamed.queue_name, connection=redis).job_ids == [fresh.job_id]


def test_release_only_clears_its_own_slot(redis, service_settings):
    mine = enqueue_retrain(redis, service_settings, 6, "x")
    release_pending(redis, 6, "someone-else")
    assert redis.get(pending_key(6)).decode() == mine.job_id
    release_pending(redis, 6, mine.job_id)
    assert redis.get(pending_key(6)) is None


def test_the_lock_of_a_dead_job_is_taken_over(redis):
    lock = lock_for(redis, 8, ttl_s=3600)
    assert lock.acquire(blocking=False, token="retrain-8-killed")  # its job no longer exists anywhere
    with held_lock(redis, 8, "retrain-8-next"):
        assert redis.get(lock.name) == b"retrain-8-next"
    assert redis.get(lock.name) is None


def test_a_retry_takes_over_the_lock_its_killed_attempt_left(redis, service_settings):
    job = Queue(service_settings.queue_name, connection=redis).enqueue("builtins.print", job_id="retrain-8-retried")
    job.set_status(JobStatus.STARTED)  # the retry is running, under the same id as the killed attempt
    lock = lock_for(redis, 8, ttl_s=3600)
    assert lock.acquire(blocking=False, token="retrain-8-retried")
    with held_lock(redis, 8, "retrain-8-retried"):
        assert redis.get(lock.name) == b"retrain-8-retried"


def test_a_running_holder_is_waited_for(redis, service_settings):
    running = Queue(service_settings.queue_name, connection=redis).enqueue("builtins.print", job_id="retrain-8-running")
    running.set_status(JobStatus.STARTED)
    lock = lock_for(redis, 8, ttl_s=3600)
    assert lock.acquire(blocking=False, token="retrain-8-running")
    entered = threading.Event()

    def next_retrain():
        with held_lock(redis, 8, "retrain-8-waiting"):
            entered.set()

    waiter = threading.Thread(target=next_retrain)
    waiter.start()
    assert not entered.wait(timeout=1.0)  # still waiting while the holder runs
    lock.release()
    assert entered.wait(timeout=5.0)
    waiter.join()


def test_a_held_lock_is_renewed_past_its_ttl_and_a_dead_holders_lapses(redis, service_settings):
    running = Queue(service_settings.queue_name, connection=redis).enqueue("builtins.print", job_id="retrain-7-live")
    running.set_status(JobStatus.STARTED)
    with held_lock(redis, 7, "retrain-7-live", ttl_s=0.6) as held:
        time.sleep(1.5)  # over twice the TTL: the heartbeat kept it
        held.ensure_held()
        assert redis.get(lock_for(redis, 7).name) == b"retrain-7-live"
    # A holder that stops renewing (its worker was killed with kill -9) frees the project within the TTL.
    orphan = lock_for(redis, 7, ttl_s=0.6)
    assert orphan.acquire(blocking=False, token="retrain-7-live")
    time.sleep(0.8)
    assert redis.get(orphan.name) is None


def test_a_lost_lock_stops_the_holder_before_its_next_write(redis, service_settings):
    running = Queue(service_settings.queue_name, connection=redis).enqueue("builtins.print", job_id="retrain-6-live")
    running.set_status(JobStatus.STARTED)
    with held_lock(redis, 6, "retrain-6-live", ttl_s=0.6) as held:
        redis.delete(lock_for(redis, 6).name)  # Redis restarted empty, say
        with pytest.raises(LockLost):
            held.ensure_held()
