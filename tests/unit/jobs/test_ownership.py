"""What proves a version, a request or a write is this backend's own: the ledger, the URL secret, the write gate."""
import multiprocessing
import threading
import time

import pytest

from backend.core.settings import ServiceSettings
from backend.labelstudio.url_secret import (
    connect_url,
    resolve_url_secret,
    url_carries_secret,
)
from backend.labelstudio.write_gate import WriteGate
from backend.store.ledger import Ledger, LedgerFile


def test_prune_candidates_are_only_this_backends_inactive_versions():
    ledger = Ledger(written=("al-p1-v0001-a", "al-p1-v0002-b", "al-p1-v0003-c"), active="al-p1-v0003-c")
    in_ls = {"gpt-labels", "al-p1-v0001-a", "al-p1-v0002-b", "al-p1-v0003-c", "al-p1-v0009-forged"}
    # The owner's versions (and a lookalike name the backend never wrote) are not in the ledger: never touched.
    assert ledger.prunable(in_ls, ls_active="al-p1-v0003-c") == ["al-p1-v0001-a", "al-p1-v0002-b"]
    # The owner switched LS back to an older version of ours: that one stays too.
    assert ledger.prunable(in_ls, ls_active="al-p1-v0001-a") == ["al-p1-v0002-b"]
    # Versions LS no longer holds are no candidates.
    assert ledger.prunable({"al-p1-v0003-c"}, ls_active="al-p1-v0003-c") == []


def test_the_ledger_round_trips_and_a_reader_sees_each_new_write(tmp_path):
    writer, reader = LedgerFile(tmp_path), LedgerFile(tmp_path)
    assert reader.read() == Ledger()
    for n in range(1, 30):  # faster than the file system's mtime tick: the inode tells writes apart
        writer.write(writer.read().with_written(f"v{n}"))
        assert reader.read().written[-1] == f"v{n}"
    assert writer.read().without({"v1", "v2"}).written[0] == "v3"
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"]  # no staging file left behind


def test_url_secret_is_the_last_path_segment_of_the_connected_url():
    secret = "s3cr3t-s3cr3t-s3cr3t"
    assert url_carries_secret(connect_url("http://backend:9090/", secret), secret)
    assert url_carries_secret(f"http://backend:9090/{secret}/", secret)
    for url in ("http://backend:9090", f"http://backend:9090/{secret}x", f"http://{secret}:9090/", f"http://b/?{secret}", ""):
        assert not url_carries_secret(url, secret), url


def _resolve(model_dir: str, queue) -> None:
    queue.put(resolve_url_secret(ServiceSettings.from_env({"MODEL_DIR": model_dir})))


def test_processes_starting_at_once_agree_on_one_generated_secret(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_resolve, args=(str(tmp_path), queue)) for _ in range(4)]
    for process in processes:
        process.start()
    secrets = {queue.get(timeout=60) for _ in processes}
    for process in processes:
        process.join()
    assert len(secrets) == 1 and len(secrets.pop()) >= 16
    assert oct((tmp_path / "url-secret").stat().st_mode & 0o777) == "0o600"


def test_the_environment_secret_wins_over_a_generated_one(tmp_path):
    service = ServiceSettings.from_env({"MODEL_DIR": str(tmp_path), "AL_URL_SECRET": "from-the-environment-0001"})
    assert resolve_url_secret(service) == "from-the-environment-0001"
    assert not (tmp_path / "url-secret").exists()


def test_one_writer_per_label_studio_at_a_time(redis):
    inside, overlaps = [], []

    def writer(gate: WriteGate) -> None:
        for _ in range(5):
            with gate():
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.01)
                inside.pop()

    # Two workers' clients for the same LS (trailing slash or not), and one for another LS.
    same = [WriteGate(redis, "http://ls:8080"), WriteGate(redis, "http://ls:8080/")]
    threads = [threading.Thread(target=writer, args=(gate,)) for gate in same]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    with same[0]():
        with WriteGate(redis, "http://other-ls:8080")():
            pass  # a different Label Studio is not held up


def test_a_writer_that_cannot_get_its_turn_fails_instead_of_waiting_forever(redis):
    holder = redis.lock(WriteGate(redis, "http://ls").key, timeout=5)
    assert holder.acquire(blocking=False)
    with pytest.raises(TimeoutError, match="another worker's write"):
        with WriteGate(redis, "http://ls", wait_timeout_s=0.2)():
            pass
    holder.release()
