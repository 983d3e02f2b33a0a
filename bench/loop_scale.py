"""Issue 8's benchmark: how fast the label-to-re-ranked-queue loop is on 1k-100k-task projects, on a real stack.

    export HF_HUB_OFFLINE=1 LABEL_STUDIO_BIN=$PWD/.venv-ls/bin/label-studio
    .venv/bin/python bench/loop_scale.py --sizes 1000,10000,100000 [--rounds 3] [--full-path] [--out bench/loop_scale.md]

A real Label Studio (PostgreSQL), Redis (127.0.0.1:6379, db 11), the backend under gunicorn and one RQ worker
serving all of this run's queues (retrain, score, finetune; names unique to the run), as ``bench/warm_path.py``. Per pool size, a project is connected with ``model_mode: head``,
``max_length: 64``, ``top_k: 500``. Pools up to the 12,808 Rotten Tomatoes snippets (``bench/corpora.py``) are
real snippets; larger pools are synthetic: the first half of one snippet joined to the second half of another
(seeded numpy RNG), labeled like the first. Columns of the table written to ``--out``:

- *cold ranking s*: from POST /api/ml until LS's ``project.model_version`` is a backend version (the
  connect-time cold-start ranking, which embeds the whole pool).
- *warm fast path s*: label the task LS serves at ``/next`` with its true label; seconds from the annotation
  POST until ``project.model_version`` is a new version whose /status shows every label given (median).
- *today's retrain s*: the same, but the project's ``embeddings`` and ``task-mirror`` folders are deleted
  just before the label, so the retrain re-reads every task from LS and re-embeds the pool (median;
  alternates with the warm rounds, same project; measured once above 20,000 tasks, where it takes minutes;
  ``--no-today`` skips it). *speed-up* = today's / warm. Both write ``top_k`` predictions.
- *LS predictions stored (max)*: the largest sum of ``/api/projects/<id>/model-versions`` counts seen after
  any round; *bound pool+2K* = pool size + 2 x top_k.
- *worker peak RSS MB (outcome)*: the largest ``peak_rss_mb`` in the retrain outcomes /status showed (n/a
  when the backend does not report it). *worker+horse peak PSS MB (sampled)*: the largest sum of the
  proportional set sizes of the worker and all its children (RQ forks a work horse per job), sampled from
  outside every 0.2 s; a page they share since the fork counts once in the sum.

``--full-path`` also connects a second project per size (up to 20,000 tasks) with ``model_mode: finetune``,
``finetune_every`` at the most the backend accepts and ``eval_fraction`` 0.5, gives it 10 labels and times a POST
to the backend's ``/train``: until LS's next version (the fast retrain /train queues first), until the fine-tune's
decision (it re-embeds the pool when adopted), and until all settled.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import threading
import time
from contextlib import ExitStack, suppress
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from backend.core.settings import PROJECT_RANGES  # noqa: E402
from bench.bench_stack import start_bench_stack  # noqa: E402
from bench.corpora import load  # noqa: E402
from bench.warm_path import Project  # noqa: E402

TOP_K = 500
HEAD = {"model_mode": "head", "strategy": "margin", "max_length": 64, "top_k": TOP_K}
SEED = 0
FIRST_LABELS = 6  # enough labels in both classes for the first model
#: Above this pool size today's retrain (a full re-read and re-embed: about 10 min at 100k) is measured once.
LONG_BASELINE_SIZE = 20_000
FULL_PATH_LABELS = 10
#: Fine-tune only when asked (/train): 1,000,000 labels, or the most the backend accepts.
FINETUNE_EVERY = min(1_000_000, int(PROJECT_RANGES.get("finetune_every", (1, 1_000_000))[1]))


def rotten_pool(size: int) -> tuple[list[str], list[str], bool]:
    """``size`` (text, label) pairs, unique texts; the bool says whether they are synthetic."""
    texts, labels = load("rotten")
    if size <= len(texts):
        return texts[:size], labels[:size], False
    words = [text.split() for text in texts]
    rng, seen, out_texts, out_labels = np.random.default_rng(SEED), set(), [], []
    while len(out_texts) < size:
        for first, second in rng.integers(len(texts), size=(size, 2)):
            a, b = words[first], words[second]
            text = " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])
            if text not in seen and len(out_texts) < size:
                seen.add(text)
                out_texts.append(text)
                out_labels.append(labels[first])
    return out_texts, out_labels, True


class LoopProject(Project):
    """``bench.warm_path.Project`` (version, status, label_next, settled, stored_predictions) under its own title."""

    def __init__(self, stack: dict, texts: list[str], labels: list[str], title: str):
        self.ls, self.backend_url, self.worker = stack["ls"], stack["backend_url"], stack["worker"]
        self.id = self.ls.create_project(f"{title} {len(texts)}", sorted(set(labels)))
        for start in range(0, len(texts), 5000):
            self.ls.import_tasks(self.id, texts[start : start + 5000])
            print(f"  imported {min(start + 5000, len(texts)):,}/{len(texts):,} tasks into project {self.id}", flush=True)
        self.truth = dict(zip(texts, labels))
        self.folder = stack["model_dir"] / f"project-{self.id}"
        self.embeddings = self.folder / "embeddings"

    def wait(self, check, what: str, timeout_s: float) -> None:
        """Poll ``check`` every 0.5 s; a progress line every 30 s; TimeoutError after ``timeout_s``."""
        started = last = time.monotonic()
        while True:
            if self.worker.process.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.worker.process.returncode}) while waiting for {what}; "
                                   f"its log ends:\n{self.worker.log_tail(20)}")
            try:
                if check():
                    return
            except (requests.RequestException, RuntimeError, KeyError, ValueError, TypeError):
                pass  # a busy LS or backend: ask again
            now = time.monotonic()
            if now - started > timeout_s:
                raise TimeoutError(f"project {self.id}: no {what} after {timeout_s:.0f} s")
            if now - last >= 30:
                last = now
                queue = {}
                with suppress(requests.RequestException, RuntimeError, KeyError, ValueError):
                    queue = self.status()["queue"]
                print(f"  ...{now - started:.0f} s waiting for {what}; running "
                      f"{[job.get('progress') for job in queue.get('running', [])]}, pending {queue.get('pending_job')}"
                      + (" (queued, no retrain running: the worker is busy, or serves no such queue)" if queue.get("pending_job") and
                         not queue.get("running") else ""), flush=True)
            time.sleep(0.5)

    def settle(self, n_labeled: int, what: str, timeout_s: float) -> dict:
        """Wait until no retrain is queued or running and LS uses the version that saw ``n_labeled`` labels."""
        status: dict = {}
        self.wait(lambda: status.update(self.settled(n_labeled) or {}) or bool(status), what, timeout_s)
        return status

    def predictions_stored(self) -> int:
        return sum(self.stored_predictions().values())


class RssSampler(threading.Thread):
    """Every 0.2 s, the memory (MB) of a process and all its descendants: the peak of their summed proportional
    set size (PSS: a page shared by the worker and the work horse it forked counts half in each, so the sum is
    what they hold together) and the peak RSS of the largest one. ``take()`` returns both peaks and resets them."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peaks, self.halt = pid, (0.0, 0.0), threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            with suppress(OSError, ValueError):
                sizes = tree_memory_mb(self.pid)
                self.peaks = (max(self.peaks[0], sum(pss for pss, _ in sizes)),
                              max(self.peaks[1], max((rss for _, rss in sizes), default=0.0)))

    def take(self) -> tuple[float, float]:
        peaks, self.peaks = self.peaks, (0.0, 0.0)
        return peaks


def tree_memory_mb(pid: int) -> list[tuple[float, float]]:
    """(PSS, RSS) in MB of ``pid`` and each of its descendants, from /proc (``smaps_rollup``, ``status``)."""
    sizes, todo = [], [pid]  # children of the main thread, which is where RQ forks its work horses
    while todo:
        member = todo.pop()
        with suppress(OSError, AttributeError, ValueError):
            todo += [int(child) for child in Path(f"/proc/{member}/task/{member}/children").read_text().split()]
            pss = int(re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{member}/smaps_rollup").read_text(), re.M).group(1))
            rss = int(re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{member}/status").read_text(), re.M).group(1))
            sizes.append((pss / 1024, rss / 1024))
    return sizes


def metrics_embed_seconds(backend_url: str) -> float | None:
    """The sum of the ``embed`` stage's seconds over every retrain so far, from the backend's /metrics."""
    try:
        text = requests.get(f"{backend_url}/metrics", timeout=30).text
    except requests.RequestException:
        return None
    found = re.search(r'^al_retrain_duration_seconds_sum\{stage="embed"\}\s+(\S+)', text, re.M)
    return float(found.group(1)) if found else 0.0 if "al_retrain_duration_seconds" in text else None


def timeout_for(size: int) -> float:
    return max(900.0, 2400.0 * size / 100_000)  # 40 min at 100k


def timed_label(project: LoopProject, n_labeled: int, baseline: bool, timeout_s: float) -> tuple[float, dict]:
    """Label the task /next serves; seconds until LS uses a new version that saw it; then the settled /status."""
    if baseline:
        shutil.rmtree(project.embeddings, ignore_errors=True)
        shutil.rmtree(project.folder / "task-mirror", ignore_errors=True)
    before = project.version()
    started = time.monotonic()
    project.label_next()
    project.wait(lambda: project.version() != before and project.status()["n_labeled"] == n_labeled + 1,
                 "a re-ranked queue", timeout_s)
    took = time.monotonic() - started
    return took, project.settle(n_labeled + 1, "the retrain to settle", timeout_s)


def run_size(stack: dict, size: int, rounds: int, full_path: bool, today_rounds: int | None = None) -> dict:
    """``today_rounds``: rounds of today's retrain (default: every round up to LONG_BASELINE_SIZE tasks, else one)."""
    timeout_s = timeout_for(size)
    texts, labels, synthetic = rotten_pool(size)
    print(f"\n== {size:,} tasks ({'synthetic' if synthetic else 'real'} Rotten Tomatoes texts)", flush=True)
    project = LoopProject(stack, texts, labels, "loop scale")
    sampler, outcome_rss, stored = stack["sampler"], [], []

    def note(status: dict) -> None:
        outcome = status.get("last_retrain") or {}
        if isinstance(outcome.get("peak_rss_mb"), (int, float)):
            outcome_rss.append(float(outcome["peak_rss_mb"]))
        stored.append(project.predictions_stored())

    sampler.take()
    embed_before = metrics_embed_seconds(stack["backend_url"])
    started = time.monotonic()
    project.ls.connect_backend(project.id, stack["backend_url"], HEAD)
    project.wait(lambda: project.version().startswith("al-p"), "the connect-time ranking", timeout_s)
    cold_s = time.monotonic() - started
    status = project.settle(0, "the cold ranking to settle", timeout_s)
    note(status)
    cold = status.get("last_retrain") or {}
    print(f"  cold path {cold_s:.1f} s; /status last_retrain: {json.dumps(cold, sort_keys=True)}", flush=True)
    embedded, stages = (cold.get("embedding_cache") or {}).get("misses"), next(
        (cold[key] for key in ("stages", "stage_seconds", "stage_times", "timings") if isinstance(cold.get(key), dict)), None)
    embed_s, source = (stages or {}).get("embed"), "outcome stage times"
    if not embed_s:  # no stage times in /status: the embed histogram's sum in /metrics, before and after
        print(f"  no stage times in the outcome (keys: {sorted(cold)}); using /metrics", flush=True)
        after = metrics_embed_seconds(stack["backend_url"])
        embed_s = after - embed_before if None not in (after, embed_before) else None
        source = "/metrics embed-stage sum, before and after"
    texts_per_s = embedded / embed_s if embedded and embed_s else None
    print(f"  cold embedding: {embedded} texts in {fmt(embed_s)} s ({source})", flush=True)
    peaks = {"cold": sampler.take()}
    print(f"  sampled peaks during the cold path: worker+horse PSS {peaks['cold'][0]:.0f} MB, largest process RSS {peaks['cold'][1]:.0f} MB", flush=True)

    for _ in range(FIRST_LABELS):
        project.label_next()
    project.settle(FIRST_LABELS, "the first model", timeout_s)
    n, warm, today = FIRST_LABELS, [], []
    if today_rounds is None:
        today_rounds = rounds if size <= LONG_BASELINE_SIZE else 1
    for round_no in range(rounds):
        for baseline, times in ((False, warm), (True, today))[: 2 if round_no < today_rounds else 1]:
            took, status = timed_label(project, n, baseline, timeout_s)
            n += 1
            times.append(took)
            note(status)
            outcome = status.get("last_retrain") or {}
            print(f"  round {round_no + 1} {'today' if baseline else 'warm '}: {took:.1f} s (retrain {outcome.get('seconds')} s, "
                  f"cache {outcome.get('embedding_cache')}, read {outcome.get('read', 'n/a')}, peak_rss_mb {outcome.get('peak_rss_mb', 'n/a')}); "
                  f"LS predictions {stored[-1]:,}", flush=True)
    peaks["rounds"] = sampler.take()
    row = {
        "size": size, "synthetic": synthetic, "cold_s": cold_s, "texts_per_s": texts_per_s, "texts_per_s_source": source,
        "warm_s": statistics.median(warm), "today_s": statistics.median(today) if today else None, "stored_max": max(stored),
        "bound": size + 2 * TOP_K, "rss_outcome": max(outcome_rss) if outcome_rss else None,
        "rss_sampled": max(p[0] for p in peaks.values()), "peaks": peaks, "full_path": None,
    }
    if full_path and size <= LONG_BASELINE_SIZE:
        row["full_path"] = measure_full_path(stack, texts, labels, timeout_s) + f"; sampled worker+horse PSS peak {sampler.take()[0]:.0f} MB"
        print(f"  full path: {row['full_path']}", flush=True)
    return row


def measure_full_path(stack: dict, texts: list[str], labels: list[str], timeout_s: float) -> str:
    """POST /train on a finetune project with a first model; seconds until LS switched version, until the fine-tune
    recorded its decision (``/status`` ``full_path.decisions``, when the backend has it), and until all settled."""
    project = LoopProject(stack, texts, labels, "loop scale full path")
    try:
        params = {**HEAD, "model_mode": "finetune", "finetune_every": FINETUNE_EVERY, "eval_fraction": 0.5}
        project.ls.connect_backend(project.id, stack["backend_url"], params)
    except RuntimeError as error:
        return f"skipped: connecting with finetune_every={FINETUNE_EVERY} was refused ({str(error)[:240]}...)"
    if not project.status().get("connected"):
        return f"skipped: LS kept the connection, but the backend recorded no /setup (finetune_every={FINETUNE_EVERY} refused?)"
    project.wait(lambda: project.version().startswith("al-p"), "the connect-time ranking", timeout_s)
    # 10 labels, half held out: a fine-tune is judged on at least 5 (backend.jobs.full_path.MIN_JUDGED).
    for _ in range(FULL_PATH_LABELS):
        project.label_next()
    status = project.settle(FULL_PATH_LABELS, "the first model", timeout_s)
    decisions = (status.get("full_path") or {}).get("decisions")
    before, started = project.version(), time.monotonic()
    response = requests.post(f"{stack['backend_url']}/train", json={"project": project.id}, timeout=30)
    if response.status_code >= 400:
        return f"skipped: /train answered {response.status_code}: {response.text[:300]}"
    project.wait(lambda: project.version() != before, "a version after /train", timeout_s)
    times = [f"{time.monotonic() - started:.1f} s to LS's next version"]

    def fine_tuned() -> bool:
        full = project.status().get("full_path") or {}
        return full.get("decisions") != decisions and not full.get("running") and full.get("pending_job") is None

    if decisions is not None:
        project.wait(fine_tuned, "the fine-tune's decision", timeout_s)
        times.append(f"{time.monotonic() - started:.1f} s to the fine-tune's decision")
    status = project.settle(FULL_PATH_LABELS, "the /train retrains to settle", timeout_s)
    times.append(f"{time.monotonic() - started:.1f} s until settled")
    full = status.get("full_path") or {}
    return (f"finetune_every={FINETUNE_EVERY}, POST /train: " + ", ".join(times) + f" (decision "
            f"{json.dumps((full.get('decisions') or ['n/a'])[0])}, encoder {json.dumps(status.get('encoder'))}; "
            f"last retrain {json.dumps(status.get('last_retrain'), sort_keys=True)})")


def fmt(value, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def write_table(out: str, command: str, ls_version: str, rounds: int, rows: list[dict], minutes: float) -> str:
    lines = [
        "# Issue 8: the label-to-re-ranked-queue loop at 1k-100k tasks",
        "",
        f"`{command}`",
        "",
        f"Machine: {os.cpu_count()} CPU cores (nproc), no GPU; Label Studio {ls_version} on PostgreSQL; Redis; gunicorn and "
        f"one RQ worker; torch {package_version('torch')}. `model_mode: head`, `max_length` 64, `top_k` {TOP_K}, strategy "
        f"margin. Rounds per condition: {rounds} (medians). Whole run: {minutes:.1f} min. LS runs with its "
        "memory-efficient prediction import, as `./dev up` starts it ([ls_import.md](ls_import.md)).",
        "",
        "| tasks | cold ranking s | warm fast path s (median) | today's retrain s (median) | speed-up | "
        "LS predictions stored (max) | bound pool+2K | worker peak RSS MB (outcome) | worker+horse peak PSS MB (sampled) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['size']:,}{' (synthetic)' if row['synthetic'] else ''} | {row['cold_s']:.1f} | {row['warm_s']:.1f} | "
            f"{fmt(row['today_s'])} | {fmt(row['today_s'] and row['today_s'] / row['warm_s'])}{'x' if row['today_s'] else ''} | {row['stored_max']:,} | {row['bound']:,} | "
            f"{fmt(row['rss_outcome'], '.0f')} | {row['rss_sampled']:.0f} |"
        )
    lines += ["", "Notes:"]
    for row in rows:
        lines.append(
            f"- {row['size']:,} tasks: cold-path embedding {fmt(row['texts_per_s'], '.0f')} texts/s ({row['texts_per_s_source']}); "
            "sampled peaks MB, worker+horse PSS / largest process RSS: "
            + ", ".join(f"{phase} {total:.0f} / {largest:.0f}" for phase, (total, largest) in row["peaks"].items())
            + (f"; full path: {row['full_path']}" if row["full_path"] else "")
        )
    if any(row["synthetic"] for row in rows):
        lines.append("- Pools marked *synthetic* are not real reviews: each text is the first half of one Rotten Tomatoes "
                     "snippet joined to the second half of another (seeded), labeled like the first half.")
    Path(out).write_text("\n".join(lines) + "\n")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=3, help="labels measured per condition and size")
    parser.add_argument("--full-path", action="store_true", help="also time /train on a finetune project per size")
    parser.add_argument("--no-today", action="store_true", help="skip today's retrain (a quicker run for memory and warm latency)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "loop_scale.md"))
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    command = shlex.join([os.path.relpath(sys.executable, Path.cwd()), *sys.argv])
    begun = time.monotonic()

    rows = []
    with ExitStack() as cleanup:
        bench = start_bench_stack(cleanup, "loop-scale")
        sampler = RssSampler(bench.worker.process.pid)
        sampler.start()
        cleanup.callback(sampler.halt.set)
        try:
            ls_version = bench.ls.call("GET", "/api/version").get("release", "?")
        except (RuntimeError, requests.RequestException, AttributeError):
            ls_version = "(unknown)"
        stack = {"ls": bench.ls, "backend_url": bench.backend_url, "model_dir": bench.model_dir,
                 "worker": bench.worker, "sampler": sampler}
        print(f"stack up: LS {ls_version} at {bench.ls_url}, worker pid {bench.worker.process.pid}", flush=True)
        for size in sizes:
            rows.append(run_size(stack, size, args.rounds, args.full_path, 0 if args.no_today else None))
            table = write_table(args.out, command, ls_version, args.rounds, rows, (time.monotonic() - begun) / 60)
            print(f"  table so far written to {args.out}", flush=True)
    print("\n" + table, flush=True)


if __name__ == "__main__":
    main()
