"""Where models run, and in which precision.

- Training: CUDA with bf16 autocast when a GPU is visible, else the CPU in float32.
- Inference (embedding, scoring): bf16 autocast on CUDA, and on CPUs that multiply bf16 in hardware
  (AVX512-BF16 or AMX): there the bundled encoder embeds 2.45-2.59x faster than in float32, with a cosine of
  at least 0.99996 to the float32 vectors (``bench/embed_throughput.py``). Elsewhere a CPU emulates bf16, slower
  than float32, so it stays in float32.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

from backend.core.exceptions import SettingsError


def select_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device 'cuda' was requested but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def autocast_for(device: torch.device):
    """Training: bf16 autocast on CUDA; float32 on the CPU, whose bf16 gradients would need loss scaling care."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def cpu_has_native_bf16() -> bool:
    # torch exposes these probes only privately; a build without them is treated as a CPU without bf16.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def inference_precision(device: torch.device) -> str:
    """``"bfloat16"`` or ``"float32"``: what inference on ``device`` computes in (part of the embedding cache key)."""
    return "bfloat16" if device.type == "cuda" or cpu_has_native_bf16() else "float32"


def inference_autocast(device: torch.device):
    if inference_precision(device) == "float32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
