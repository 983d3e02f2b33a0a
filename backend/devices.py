"""Where models run: CUDA with bf16 autocast when a GPU is visible, else the CPU in float32."""
from __future__ import annotations

from contextlib import nullcontext

import torch

from backend.settings import SettingsError


def select_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device 'cuda' was requested but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA; on the CPU float32 is both faster and exact."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()
