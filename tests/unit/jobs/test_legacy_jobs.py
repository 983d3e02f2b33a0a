"""Jobs queued by a release before the package split still run after an upgrade, on a real RQ worker."""
from rq import Queue, Worker
from rq.job import Job, JobStatus

from backend.jobs import chunked_embedding, full_path, resync, retrain
from backend.jobs.legacy import LEGACY_FUNCTIONS, BackendJob
from backend.jobs.outcomes import load_retrain_outcomes


def test_every_old_function_path_names_todays_function(redis):
    queue = Queue("legacy-paths", connection=redis)
    today = {
        "backend.jobs.retrain": retrain.retrain, "backend.full_path.finetune": full_path.finetune,
        "backend.resync.resync": resync.resync, "backend.chunked_embedding.embed_chunk": chunked_embedding.embed_chunk,
    }
    assert set(LEGACY_FUNCTIONS) == set(today)
    for old, function in today.items():
        job = queue.enqueue(old, 1)
        assert BackendJob.fetch(job.id, connection=redis).func is function


def test_a_retrain_queued_under_its_old_path_runs_on_the_worker(redis, service_settings, monkeypatch):
    monkeypatch.setenv("MODEL_DIR", str(service_settings.model_dir))
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    queue = Queue(service_settings.queue_name, connection=redis)
    old = queue.enqueue("backend.jobs.retrain", 17)
    Worker([queue], connection=redis).work(burst=True)  # RQ's own job class cannot run it
    assert Job.fetch(old.id, connection=redis).get_status() == JobStatus.FAILED

    old = queue.enqueue("backend.jobs.retrain", 17)
    Worker([queue], connection=redis, job_class=BackendJob).work(burst=True)  # the forking worker, as backend.worker runs it
    assert Job.fetch(old.id, connection=redis).get_status() == JobStatus.FINISHED
    # Project 17 never connected: the retrain ran to its end and was refused, as a new one would be.
    (outcome,) = load_retrain_outcomes(redis, 17)
    assert outcome["status"] == "refused" and outcome["job_id"] == old.id
