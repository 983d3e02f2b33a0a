"""Child processes that a supervisor starts, watches and stops: the local stack's plumbing.

A ``Service`` is a child in its own process group (so stopping it stops its children too) with its output in
a log file. ``supervise`` runs a set of them in the foreground until Ctrl-C or SIGTERM, and writes its process
id to a pidfile so that ``down``, from another terminal, can stop it cleanly.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from redis.exceptions import RedisError

ROOT = Path(__file__).resolve().parent.parent
#: Where ``up`` writes its process id while it runs; ``down`` reads it.
PIDFILE = ROOT / ".run" / "stack.pid"
#: How long ``down`` waits for ``up`` to stop Label Studio, the backend, the worker and a private Redis.
DOWN_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        try:
            if check():
                return
        except (requests.RequestException, RedisError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} was not ready after {timeout_s:.0f} s")


def http_ok(url: str) -> bool:
    return requests.get(url, timeout=2).status_code == 200


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def spawn(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "ab")
    process = subprocess.Popen(
        argv, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=ROOT, start_new_session=True
    )
    return Service(name, process, log_path)


def wait_ready(service: Service, check, what: str, timeout_s: float) -> None:
    """``wait_until`` for a service just spawned; stops it when it never gets ready, or the wait is interrupted
    (Ctrl-C, SIGTERM), since the caller has not taken charge of it yet."""
    try:
        wait_until(check, what, timeout_s, service.process)
    except BaseException:
        service.stop()
        raise


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# -- The pidfile: which process ``down`` stops --------------------------------------------------------------------


@dataclass(frozen=True)
class PidRecord:
    """What a pidfile holds: the process id (first line, so ``kill $(head -1 .run/stack.pid)`` works) and, where
    ``/proc`` exists, the process's start time, so a pid the system has since reused for another process never
    passes for the stack."""

    pid: int
    started: str | None = None

    def text(self) -> str:
        return f"{self.pid}\n" + (f"{self.started}\n" if self.started else "")


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from ``/proc/<pid>/stat``; None when no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields_after_name = text.rsplit(")", 1)[-1].split()  # the name, in parentheses, may hold spaces
    return fields_after_name[0], fields_after_name[19]


def process_start_time(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def process_running(record: PidRecord) -> bool:
    """Whether the process the record names still runs (a zombie has exited; a reused pid is another process)."""
    if record.pid <= 0:
        return False
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(record.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return record.started is None or stat[1] == record.started
    try:  # no /proc (macOS): the pid alone
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pidfile(path: Path) -> PidRecord | None:
    """The record in ``path``; None when there is no file or it names no process id."""
    try:
        lines = path.read_text().split()
        return PidRecord(int(lines[0]), lines[1] if len(lines) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def pidfile(path: Path = PIDFILE) -> Iterator[PidRecord]:
    """Write this process's record to ``path`` while the block runs; remove it at the end, whatever ends it.

    Refuses (SystemExit) while another running process holds the file; a stale file (its process has exited,
    e.g. after ``kill -9``) is replaced.
    """
    record = PidRecord(os.getpid(), process_start_time(os.getpid()))
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = read_pidfile(path)
            if holder is not None and process_running(holder):
                raise SystemExit(
                    f"the stack already runs (pid {holder.pid}, {_shown(path)}); stop it with ./dev down "
                    "(python -m backend.ops.stack down)"
                ) from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(record.text())
        break
    else:
        raise SystemExit(f"could not create {_shown(path)}: another process keeps creating it")
    try:
        yield record
    finally:
        if read_pidfile(path) == record:
            path.unlink(missing_ok=True)


# -- Signals: Ctrl-C and SIGTERM stop the same way ------------------------------------------------------------------


@dataclass
class StopSignals:
    """Turns the first SIGINT or SIGTERM into KeyboardInterrupt, so both run the same clean shutdown (the
    ExitStack's callbacks). Once stopping has begun, further signals are reported and ignored: a second Ctrl-C
    must not cut the shutdown short and leave Label Studio or a worker running."""

    stopping: bool = False

    def handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.stopping:
            # os.write, not print: the main thread may be inside a print of its own.
            os.write(2, f"{name}: already stopping, waiting for the services to exit\n".encode())
            return
        self.stopping = True
        raise KeyboardInterrupt(name)


@contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """Install ``StopSignals`` for SIGINT and SIGTERM while the block runs (main thread only)."""
    state = StopSignals()
    previous = {signum: signal.signal(signum, state.handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def supervise(start: Callable[[ExitStack], list[Service]], pid_path: Path = PIDFILE, poll_s: float = 1.0) -> None:
    """Run ``start`` (which starts services and registers their stop on the ExitStack it gets), then watch the
    services it returns until one exits (SystemExit 1, with its log tail), Ctrl-C or SIGTERM. Every way out runs
    the ExitStack's callbacks, and the pidfile is there from before the first service starts until after the last
    one stopped."""
    with stop_signals() as signals, pidfile(pid_path):
        with ExitStack() as stack:
            try:
                services = start(stack)
                while all(s.process.poll() is None for s in services):
                    time.sleep(poll_s)
                dead = next(s for s in services if s.process.poll() is not None)
                print(f"{dead.name} exited; last log lines:\n{dead.log_tail()}", file=sys.stderr)
                raise SystemExit(1)
            except KeyboardInterrupt as interrupt:
                print(f"\n{interrupt.args[0] if interrupt.args else 'SIGINT'}: stopping...", flush=True)
            finally:
                signals.stopping = True  # from here on, signals wait for the ExitStack's callbacks
        print("stopped.", flush=True)


def down(pid_path: Path = PIDFILE, timeout_s: float = DOWN_TIMEOUT_S) -> int:
    """Stop the stack that ``up`` runs: SIGTERM to the process in the pidfile, then wait for it to exit.

    Exit code 0 when it stopped or nothing ran (a missing or stale pidfile, which is removed); 1 when it still
    runs after ``timeout_s`` or cannot be signalled.
    """
    shown = _shown(pid_path)
    record = read_pidfile(pid_path)
    if record is None:
        if not pid_path.exists():
            print(f"the stack is not running (no {shown}): nothing to stop")
            return 0
        pid_path.unlink(missing_ok=True)
        print(f"the stack is not running: {shown} held no process id; removed it")
        return 0
    if not process_running(record):
        pid_path.unlink(missing_ok=True)
        print(
            f"the stack is not running: {shown} named pid {record.pid}, which has exited (a stale pidfile, left by a "
            f"stack that was killed); removed it. A stack killed with SIGKILL cannot stop its services: if Label "
            f"Studio or the backend still answer, stop them by hand (their logs are in {_shown(ROOT / '.run' / 'logs')})"
        )
        return 0
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_path.unlink(missing_ok=True)
        print(f"the stack (pid {record.pid}) exited just now; nothing to stop")
        return 0
    except PermissionError:
        print(f"not allowed to signal the stack's process {record.pid} (another user's?); nothing was stopped", file=sys.stderr)
        return 1
    print(
        f"sent SIGTERM to the stack (pid {record.pid}); waiting up to {timeout_s:.0f} s while it stops Label Studio, "
        "the backend, the worker and its private Redis...",
        flush=True,
    )
    began = time.monotonic()
    while process_running(record):
        if time.monotonic() - began >= timeout_s:
            print(
                f"the stack (pid {record.pid}) still runs after {timeout_s:.0f} s; it may still be stopping its "
                f"services. Run ./dev down again, or kill -KILL {record.pid} (which leaves its services running)",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    if read_pidfile(pid_path) == record:  # it exited without removing its pidfile
        pid_path.unlink(missing_ok=True)
    print(f"stopped (pid {record.pid}) in {time.monotonic() - began:.1f} s")
    return 0
