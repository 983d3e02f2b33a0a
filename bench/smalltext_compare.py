"""small-text on exactly the inputs our simulation used: the same embeddings, splits and initial labels.

Both protocols write ``bench/.cache/<name>.splits.npz`` with ``write_splits`` and run
``bench/smalltext_run.py`` in small-text's own venv with ``run_smalltext``; its rows join ours in the rounds CSV.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

BENCH = Path(__file__).resolve().parent
SMALLTEXT_PYTHON = BENCH / ".cache" / "smalltext-venv" / "bin" / "python"


def write_splits(path: Path, embeddings: np.ndarray, y: np.ndarray, n_classes: int, config,
                 initial_of: Callable[[np.ndarray, int], np.ndarray]) -> Path:
    """Per seed, the pool and test indices of ``make_split`` and ``initial_of(pool, seed)``'s positions in the pool."""
    from backend.simulation.protocol import make_split

    splits = {"embeddings": embeddings, "y": y, "n_classes": n_classes, "seeds": np.array(config.seeds),
              "batch_size": config.batch_size, "rounds": config.rounds}
    for seed in config.seeds:
        pool, test = make_split(y, config.test_fraction, seed)
        splits[f"pool_{seed}"], splits[f"test_{seed}"] = pool, test
        splits[f"initial_{seed}"] = initial_of(pool, seed)
    np.savez(path, **splits)
    return path


def run_smalltext(splits_path: Path, out: Path) -> tuple[list[dict], str | None, float]:
    """small-text's rows, an error message (or None) and the seconds it ran."""
    if not SMALLTEXT_PYTHON.exists():
        return [], f"small-text venv missing ({SMALLTEXT_PYTHON}); run bench/setup.sh", 0.0
    started = time.perf_counter()
    proc = subprocess.run([str(SMALLTEXT_PYTHON), str(BENCH / "smalltext_run.py"), str(splits_path), str(out)],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return [], f"small-text run failed (exit {proc.returncode}): {last}", seconds
    print(proc.stdout.strip(), file=sys.stderr)
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()], None, seconds
