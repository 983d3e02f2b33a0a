"""Cold-path embedding throughput: the backend's encoder against a plain transformers pipeline, same texts.

    .venv/bin/python bench/embed_throughput.py [--dataset rotten] [--n 1500] [--max-length 128]

Both embed the same texts with the bundled MiniLM and mean pooling, in this one process, on this machine:
- baseline: ``transformers.pipeline("feature-extraction")`` over the texts, one text per forward pass (its
  default; with ``batch_size`` > 1 it returns padded token rows, and their mean is no longer the text's
  embedding), then mean pooling of each text's token vectors;
- ours: ``backend.models.encoder.Encoder.map_batches`` (tokenize once, length-sorted buckets, dynamic padding,
  ``torch.inference_mode``).
It checks that both give the same vectors (cosine > 0.999), then prints texts/s and the ratio; the ratio is
what bench/RESULTS.md records, not the absolute seconds (machines are noisy). Where the backend infers in
bf16 (``backend.models.devices.inference_precision``), it also runs the same encoder in float32 and prints that ratio.

It also prints the encoder's achieved TFLOP/s (from the model's shape: 2 FLOPs per weight per token, plus
attention) and, on CUDA, that as a fraction of the bf16 matmul peak measured on the same GPU a moment
before (model FLOPs utilisation, MFU).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.corpora import load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="rotten", choices=["rotten", "bbc", "spam"])
    parser.add_argument("--n", type=int, default=1500, help="texts embedded by each side")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    import torch
    from transformers import AutoModel, AutoTokenizer, pipeline

    from backend.core.settings import DEFAULT_MODEL
    from backend.models.devices import inference_precision, select_device
    from backend.models.encoder import Encoder, mean_pool, resolve_model_path

    texts = load(args.dataset)[0][: args.n]
    path = resolve_model_path(DEFAULT_MODEL)
    device = select_device("auto")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    extractor = pipeline(
        "feature-extraction", model=model, tokenizer=tokenizer, device=device,
        tokenize_kwargs={"truncation": True, "max_length": args.max_length}, framework="pt",
    )
    started = time.perf_counter()
    baseline = np.stack([np.asarray(tokens[0]).mean(axis=0) for tokens in extractor(texts)])
    baseline_s = time.perf_counter() - started

    encoder = Encoder(model, tokenizer, device, args.max_length, batch_size=16)
    started = time.perf_counter()
    ours = encoder.map_batches(texts, lambda batch: mean_pool(model(**batch).last_hidden_state, batch["attention_mask"]), None, "embed")
    ours_s = time.perf_counter() - started

    tokens = sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"])
    achieved = tokens * forward_flops_per_token(model.config, tokens / len(texts)) / ours_s / 1e12
    print(f"backend encoder: {achieved:.3f} TFLOP/s achieved")
    if device.type == "cuda":
        peak = measured_bf16_peak_tflops(torch, device)
        print(f"bf16 matmul peak measured here: {peak:.0f} TFLOP/s; MFU {achieved / peak:.1%}")

    cosine = (baseline * ours).sum(1) / (np.linalg.norm(baseline, axis=1) * np.linalg.norm(ours, axis=1))
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    print(f"dataset {args.dataset}: {len(texts)} texts, tokens per text median {int(np.median(lengths))}, max {max(lengths)}; "
          f"device {device.type}, torch threads {torch.get_num_threads()}")
    print(f"min cosine(ours, pipeline) = {cosine.min():.5f}")
    print(f"pipeline:        {len(texts) / baseline_s:.1f} texts/s")
    print(f"backend encoder: {len(texts) / ours_s:.1f} texts/s")
    print(f"ratio: {baseline_s / ours_s:.2f}x")
    precision = inference_precision(device)
    if precision != "float32":  # what the lower precision buys: the same encoder with autocast switched off
        def float32_forward(batch):
            with torch.autocast(device.type, enabled=False):
                return mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])

        started = time.perf_counter()
        exact = encoder.map_batches(texts, float32_forward, None, "embed")
        exact_s = time.perf_counter() - started
        agreement = ((exact * ours).sum(1) / (np.linalg.norm(exact, axis=1) * np.linalg.norm(ours, axis=1))).min()
        print(f"backend encoder in float32: {len(texts) / exact_s:.1f} texts/s; {precision} is {exact_s / ours_s:.2f}x "
              f"faster, min cosine {agreement:.5f}")
    if cosine.min() < 0.999:
        raise SystemExit("the two embeddings disagree: the comparison is not like for like")


def forward_flops_per_token(config, mean_tokens: float) -> float:
    """2 FLOPs per weight of the transformer layers, plus QK^T and AV over a sequence of ``mean_tokens``."""
    hidden, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return layers * (2 * (4 * hidden * hidden + 2 * hidden * ffn) + 4 * mean_tokens * hidden)


def measured_bf16_peak_tflops(torch, device, size: int = 8192, repeats: int = 20) -> float:
    """The best bf16 matmul rate this GPU reaches right now: the denominator of MFU."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12


if __name__ == "__main__":
    main()
