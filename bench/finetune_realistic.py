"""The fine-tuned path as a label-efficiency lever (issue 11), under the realistic protocol of ``realistic.py``.

Every round fine-tunes the encoder end to end on the labels so far (``model_mode: finetune``, the worker's
``backend.models.finetuned_classifier`` classifier with its default epochs, learning rate and batch size) instead of fitting a head
over frozen embeddings, then ranks with the same strategy code. Its rounds go to
``bench/results/<name>_realistic_<start>_finetune_rounds.csv``, which ``realistic_report.render`` sets against the
frozen head's runs of the same seeds. The full-pool reference of each seed is a model fine-tuned on the whole
pool: for BBC, without ``--pool-limit`` or ``--max-length``, it is the reference of the "98% of a fine-tuned
full-data model" target.

Meant for a GPU (minutes); on a CPU use ``--pool-limit`` and few seeds.

    HF_HUB_OFFLINE=1 python bench/finetune_realistic.py --dataset bbc --device cuda --seeds 0,1,2,3,4
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import embed_cache  # noqa: E402
import realistic  # noqa: E402
from simulation_inputs import TEST_FRACTION  # noqa: E402

from backend.simulation.dataset import Dataset, checked  # noqa: E402
from backend.simulation.protocol import SimulationConfig  # noqa: E402
from backend.simulation.runner import simulate  # noqa: E402
from backend.simulation.summary import summarize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="bbc", choices=sorted(embed_cache.CONFIG))
    parser.add_argument("--starts", default="cold_start,random", help="comma-separated starts (default: both)")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--strategies", default=f"{realistic.DEFAULT_STRATEGY},random")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--model", default="", help="local model folder (default: the bundled MiniLM)")
    parser.add_argument("--pool-limit", type=int, help="at most N texts in all (stratified), for a CPU")
    parser.add_argument("--max-length", type=int, help="tokens per text (default: the embedding cache's)")
    parser.add_argument("--results", default=str(BENCH / "results"), help="folder for the rounds CSVs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    cache = embed_cache.load_cache(args.dataset)
    texts, labels = [str(t) for t in cache["texts"]], [str(label) for label in cache["labels"]]
    if args.pool_limit:
        keep = embed_cache.stratified_subsample(labels, args.pool_limit, embed_cache.SUBSAMPLE_SEED)
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    data = checked(Dataset(texts, labels, sorted(set(labels)), source=args.dataset))
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    for start in args.starts.split(","):
        config = SimulationConfig(
            strategies=tuple(args.strategies.split(",")), seeds=tuple(int(s) for s in args.seeds.split(",")),
            mode="finetune", model=args.model, max_length=args.max_length or int(cache["max_length"]), device=args.device,
            initial_strategy=start, **realistic.BUDGET, test_fraction=TEST_FRACTION,
        )
        started = time.perf_counter()
        result = simulate(data, config, progress=not args.quiet)
        seconds = time.perf_counter() - started
        settings = config.project_settings(config.strategies[0], config.seeds[0])
        path = realistic.save_rounds(results, args.dataset, start, realistic.FINETUNE_LEVER, result.rows, result.reference, {
            "notes": result.notes, "seconds": seconds, "device": args.device, "pool_limit": args.pool_limit,
            "n_texts": len(texts),
            "training": {key: getattr(settings, key) for key in ("epochs", "learning_rate", "batch_size", "max_length")},
            "command": "python bench/finetune_realistic.py " + " ".join(sys.argv[1:] if argv is None else argv),
        })
        aucs = ", ".join(f"{e['strategy']} AUC {e['auc_mean']:.3f}" for e in summarize(result.rows, result.reference))
        print(f"[{args.dataset}] {start} start: {aucs}; {seconds:.0f} s; wrote {path}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
