"""Reduced-scale probe of the fine-tuned path (issue 11): the simulation CLI in finetune and in head mode on the
same 400 BBC texts, one run per seed (a run writes its tables only at its end, so a per-seed run keeps what
finished), then both modes' rounds merged and summarised with the simulation's own ``summarize``.

    # bench/.cache/bbc_full.csv as bench/finetune_cpu.py writes it (text,label of corpora.load_bbc())
    ARGS="--pool-limit 400 --max-length 128 --epochs 3 --learning-rate 1e-4 --train-batch-size 8 --initial 10
          --initial-strategy random --batch-size 10 --rounds 8 --strategies margin,random --device cpu"
    for s in 0 1; do
      HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python -m backend.simulation bench/.cache/bbc_full.csv \
          --mode finetune $ARGS --seeds $s --out bench/.cache/finetune_realistic_s$s
      HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python -m backend.simulation bench/.cache/bbc_full.csv \
          --mode head $ARGS --seeds $s --out bench/.cache/finetune_realistic_head_s$s
    done
    .venv/bin/python bench/finetune_probe.py      # prints the merged table per mode
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from backend.simulation.report import read_rounds  # noqa: E402
from backend.simulation.summary import summarize, summary_markdown  # noqa: E402

CACHE = BENCH / ".cache"
MODES = {"finetune": "finetune_realistic_s{seed}", "head": "finetune_realistic_head_s{seed}"}


def merged(pattern: str, seeds=(0, 1)) -> tuple[list[dict], dict[int, float], list[int]]:
    rows, reference, found = [], {}, []
    for seed in seeds:
        folder = CACHE / pattern.format(seed=seed)
        if not (folder / "rounds.csv").exists():
            continue
        found.append(seed)
        rows += read_rounds(folder / "rounds.csv")
        with (folder / "summary.csv").open(newline="") as handle:
            reference[seed] = float(next(csv.DictReader(handle))["full_pool_accuracy_mean"])
    return rows, reference, found


def main() -> int:
    for mode, pattern in MODES.items():
        rows, reference, seeds = merged(pattern)
        if not rows:
            print(f"## {mode}: no finished run\n")
            continue
        title = f"{mode} mode, BBC, 400-text pool (320 pool / 80 test), seeds {','.join(map(str, seeds))}"
        print(summary_markdown(summarize(rows, reference), title))
        per_seed = {}
        for r in rows:
            per_seed.setdefault((r["strategy"], r["seed"]), []).append(r)
        print("| strategy | seed | accuracy by labels (10 → 90) | full-pool reference |")
        print("|---|---|---|---|")
        for (strategy, seed), run in sorted(per_seed.items()):
            run.sort(key=lambda r: r["round"])
            curve = " ".join(f"{r['accuracy']:.3f}" for r in run)
            print(f"| {strategy} | {seed} | {curve} | {reference[seed]:.3f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
