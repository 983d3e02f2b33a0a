"""A deliberately tiny full fine-tune run on the CPU (a smoke test of "finetune" mode, not a benchmark).

Writes a 250-doc stratified BBC subsample to bench/.cache, runs the simulation CLI in finetune mode
(a fresh MiniLM fine-tuned end to end every round) and appends its table to bench/RESULTS.extra.md,
which label_efficiency.py includes at the end of RESULTS.md. The real fine-tune comparison needs a GPU:
same command with a bigger --pool-limit, --max-length 256, more rounds and seeds.

    HF_HUB_OFFLINE=1 python bench/finetune_cpu.py
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import corpora  # noqa: E402

ARGS = [
    "--mode", "finetune", "--pool-limit", "250", "--max-length", "64", "--epochs", "3", "--learning-rate", "1e-4",
    "--train-batch-size", "8", "--initial", "10", "--batch-size", "10", "--rounds", "3",
    "--strategies", "margin,random", "--seeds", "0", "--device", "cpu",
]


def main() -> int:
    texts, labels = corpora.load_bbc()
    data = corpora.CACHE / "bbc_full.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels))
    out = corpora.CACHE / "finetune_cpu"
    command = [sys.executable, "-m", "backend.simulation", str(data), *ARGS, "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=BENCH.parent, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        return proc.returncode
    table = (out / "summary.md").read_text().split("\n", 2)[2]  # drop the title line
    shown = " ".join(["python -m backend.simulation bench/.cache/bbc_full.csv", *ARGS, "--out bench/.cache/finetune_cpu"])
    (BENCH / "RESULTS.extra.md").write_text(
        "## Full fine-tune: tiny CPU smoke run (not a benchmark)\n\n"
        "Clearly too small to compare strategies: 250 BBC docs (200 pool / 50 test), max_length 64, 1 seed, "
        "3 rounds of 10, a fresh MiniLM fine-tuned end to end every round (3 epochs, lr 1e-4, batch 8) on 2 shared CPU "
        f"cores; {seconds / 60:.1f} min in all. It shows the finetune path of the simulation works end to end. "
        "The real fine-tune comparison needs a GPU (same CLI with `--mode finetune --device cuda`, the full pool, "
        "max_length 256, 5 seeds, 20 rounds).\n\n"
        f"```\n{shown}\n```\n\n{table}"
    )
    print(f"finetune smoke run took {seconds:.0f}s; wrote {BENCH / 'RESULTS.extra.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
