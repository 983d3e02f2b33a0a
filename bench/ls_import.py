"""What one version's write-back costs Label Studio as projects grow, with and without LS's memory-efficient
prediction import (the feature flag ``backend.ops.stack.LABEL_STUDIO_FAST_PREDICTION_IMPORT`` turns on).

Two Label Studio servers share one fresh PostgreSQL database: one started with the flag, one without. Both
write into the same projects, alternately, so each ratio compares the two imports on the same tasks and
rows in the same run. Each round imports ``--top-k`` predictions of a new version on random tasks (the
backend's write), then switches ``project.model_version`` to it (its activation), then deletes the version
(untimed).

    .venv/bin/python bench/ls_import.py --sizes 1000,10000,100000 --out bench/ls_import.md
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.ops.demo import LabelStudioAPI  # noqa: E402
from backend.ops.ls_database import LabelStudioDatabase, drop_postgres_database  # noqa: E402
from backend.ops.processes import free_port  # noqa: E402
from backend.ops.stack import LabelStudioAccount, start_label_studio  # noqa: E402

CLASSES = ["negative", "positive"]
IMPORT_BATCH = 5000


def start_both(cleanup: ExitStack) -> dict[str, LabelStudioAPI]:
    """``{"legacy": ..., "memory-efficient": ...}``: two LS servers on one database, started one after the other
    (the second finds the migrations and the account done)."""
    run_dir = Path(tempfile.mkdtemp(prefix="ls-import-"))
    cleanup.callback(shutil.rmtree, run_dir, True)
    account = LabelStudioAccount()
    database = LabelStudioDatabase.postgres(f"ls_bench_{uuid.uuid4().hex[:10]}")
    servers = {}
    for name, fast in (("legacy", False), ("memory-efficient", True)):
        service, url = start_label_studio(free_port(), run_dir / name, run_dir / "logs" / name, account, database,
                                          fast_prediction_import=fast)
        cleanup.callback(service.stop)
        servers[name] = LabelStudioAPI(url, account.token)
    cleanup.callback(drop_postgres_database, database)  # runs after both servers stopped
    return servers


def create_project(ls: LabelStudioAPI, size: int) -> tuple[int, list[int]]:
    project_id = ls.create_project(f"import cost {size}", CLASSES)
    for start in range(0, size, IMPORT_BATCH):
        ls.import_tasks(project_id, [f"task {i}: a short text to rank" for i in range(start, min(start + IMPORT_BATCH, size))])
    print(f"  imported {size:,} tasks into project {project_id}", flush=True)
    ids: list[int] = []
    while len(ids) < size:  # LS answers 404 for a page past the end, so count instead of probing
        batch = ls.call("GET", "/api/tasks", params={"project": project_id, "page": len(ids) // IMPORT_BATCH + 1,
                                                      "page_size": IMPORT_BATCH, "fields": "id", "include": "id"})
        if not batch["tasks"]:
            raise RuntimeError(f"project {project_id} lists {len(ids):,} tasks, not the {size:,} imported")
        ids += [task["id"] for task in batch["tasks"]]
    return project_id, ids


def one_round(ls: LabelStudioAPI, project_id: int, task_ids: list[int], top_k: int, version: str, rng) -> tuple[float, float]:
    """(import seconds, switch seconds) for one version of ``top_k`` predictions."""
    chosen = rng.choice(task_ids, size=min(top_k, len(task_ids)), replace=False)
    predictions = [
        {"task": int(task_id), "model_version": version, "score": float(score),
         "result": [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["positive"]}}]}
        for task_id, score in zip(chosen, rng.random(len(chosen)))
    ]
    started = time.monotonic()
    ls.call("POST", f"/api/projects/{project_id}/import/predictions", json=predictions)
    imported = time.monotonic()
    ls.call("PATCH", f"/api/projects/{project_id}", json={"model_version": version})
    switched = time.monotonic()
    ls.call("DELETE", f"/api/projects/{project_id}/model-versions/", json={"model_version": version})
    return imported - started, switched - imported


def measure(servers: dict[str, LabelStudioAPI], size: int, rounds: int, top_k: int) -> dict:
    project_id, task_ids = create_project(servers["legacy"], size)
    rng = np.random.default_rng(size)
    times = {name: {"import": [], "switch": []} for name in servers}
    for round_no in range(rounds):
        for name, ls in servers.items():
            imported, switched = one_round(ls, project_id, task_ids, top_k, f"bench-{name}-{round_no}", rng)
            times[name]["import"].append(imported)
            times[name]["switch"].append(switched)
            print(f"  {size:,} tasks, round {round_no + 1}, {name}: import {imported:.2f} s, switch {switched:.2f} s", flush=True)
    return {"size": size, **{name: {k: statistics.median(v) for k, v in parts.items()} for name, parts in times.items()}}


def write_table(out: Path, command: str, rows: list[dict], rounds: int, top_k: int) -> str:
    lines = [
        "# What one version's write-back costs Label Studio, with and without its memory-efficient import",
        "",
        f"`{command}`",
        "",
        f"Label Studio 1.23.2 on PostgreSQL, 2 CPU cores. Two LS servers share one database, one started with "
        f"`fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short=true`. They write into the same "
        f"projects alternately: {top_k} predictions of a new version per round, then the switch of "
        f"`project.model_version`; medians of {rounds} rounds.",
        "",
        "| tasks | legacy import s | memory-efficient import s | speed-up | switch s (legacy / memory-efficient) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        legacy, fast = row["legacy"], row["memory-efficient"]
        lines.append(f"| {row['size']:,} | {legacy['import']:.2f} | {fast['import']:.2f} | "
                     f"{legacy['import'] / fast['import']:.1f}x | {legacy['switch']:.2f} / {fast['switch']:.2f} |")
    lines += [
        "",
        "The legacy import recounts the annotation and prediction counters of every task in the project after each "
        "import (`update_tasks_counters` over `Task.objects.filter(project=...)`); the memory-efficient one "
        "recounts only the tasks it wrote. `./dev up`, the tests and `docker-compose.yml` start LS with the flag; "
        "the README tells owners of their own LS to set it.",
        "",
    ]
    out.write_text("\n".join(lines))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("ls_import.md"))
    args = parser.parse_args()
    with ExitStack() as cleanup:
        servers = start_both(cleanup)
        rows = [measure(servers, int(size), args.rounds, args.top_k) for size in args.sizes.split(",")]
    command = ".venv/bin/python bench/ls_import.py " + " ".join(sys.argv[1:])
    print(write_table(args.out, command, rows, args.rounds, args.top_k))


if __name__ == "__main__":
    main()
