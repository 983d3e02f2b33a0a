"""A retrain while Label Studio is down: a real RQ worker, a real Redis, a port where nothing listens."""
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry

from backend.app import create_app
from backend.jobs.outcomes import load_retrain_outcomes
from backend.jobs.queueing import enqueue_retrain, pending_key
from backend.labelstudio.url_secret import resolve_url_secret
from backend.ops.processes import free_port


def test_an_ls_outage_is_retried_and_reported(redis, service_settings, monkeypatch):
    monkeypatch.setenv("REDIS_URL", service_settings.redis_url)
    monkeypatch.setenv("MODEL_DIR", str(service_settings.model_dir))
    monkeypatch.setenv("LABEL_STUDIO_URL", f"http://127.0.0.1:{free_port()}")  # Label Studio is down
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "token")
    enqueued = enqueue_retrain(redis, service_settings, 21, "ANNOTATION_CREATED")

    queue = Queue(service_settings.queue_name, connection=redis)
    SimpleWorker([queue], connection=redis).work(burst=True)

    job = queue.fetch_job(enqueued.job_id)
    assert job.get_status() == JobStatus.SCHEDULED  # RQ's Retry will run it again after the back-off
    assert job.retries_left == 2
    assert enqueued.job_id in ScheduledJobRegistry(queue=queue).get_job_ids()
    (outcome,) = load_retrain_outcomes(redis, 21)
    assert outcome["status"] == "failed" and "ConnectError" in outcome["reason"]
    assert redis.get(pending_key(21)) is None  # a new label meanwhile enqueues a fresh retrain
    secret = resolve_url_secret(service_settings)
    status = create_app(service_settings, redis).test_client().get(f"/{secret}/status?project=21").json
    assert status["last_retrain"]["status"] == "failed"
