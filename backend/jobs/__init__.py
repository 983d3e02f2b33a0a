"""RQ jobs and their coordination: the retrain, the full path, the resync and embedding chunks; queueing, the
project lock, webhook hints, the connection check and the job context every job runs in."""
