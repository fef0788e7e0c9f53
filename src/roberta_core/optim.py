"""What every backend's trainer shares, framework-neutral: the paper's AdamW settings and
schedule, which parameters decay, how many terms a head's loss averages over, and
`load_backend(name)` for the trainer class. Imported by `roberta_*/training.py` and by the
application (`recipe`, `finetune`); it imports no framework.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from . import backends
from .validation import IGNORE_INDEX

__all__ = ["AdamW", "decays", "load_backend", "TOKEN_LEVEL_HEADS", "loss_items"]

# ---------------------------------------------------------------------------------------------
# 1. The optimiser: the paper's AdamW and learning-rate schedule (Table 9)


@dataclass(frozen=True)
class AdamW:
    """AdamW as RoBERTa pretrains: β = (0.9, 0.98), ε = 1e-6 (added to sqrt(v̂), as torch and optax
    do), decoupled weight decay 0.01, the rate rising linearly over `warmup` updates to `peak_lr`
    and falling linearly towards 0 at update `steps`."""

    peak_lr: float
    warmup: int
    steps: int
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or not 0 <= self.warmup <= self.steps:
            raise ValueError(f"warmup must be an integer in 0..steps={self.steps}, got {self.warmup!r}")
        if not (isinstance(self.peak_lr, (int, float)) and self.peak_lr > 0 and math.isfinite(self.peak_lr)):
            raise ValueError(f"the learning rate must be a positive number, got {self.peak_lr!r}")

    def lr(self, step: int) -> float:
        """The rate of update number `step` (0-based): (step+1)/warmup of the peak while warming
        up, then linear decay; the last update still moves (rate peak/(steps-warmup))."""
        if step < self.warmup:
            return self.peak_lr * (step + 1) / self.warmup
        return self.peak_lr * max(self.steps - step, 0) / max(self.steps - self.warmup, 1)


def decays(name: str) -> bool:
    """Whether weight decay applies to the parameter with this canonical name: not to biases
    and LayerNorm weights (the usual BERT/RoBERTa exclusion)."""
    return not (name.endswith(".bias") or name == "lm_head.bias" or "LayerNorm" in name or "layer_norm" in name)


# ---------------------------------------------------------------------------------------------
# 2. The trainer of a backend, imported on request


def load_backend(name: str) -> type:
    """The Trainer class of backend `name` ('pt', 'tf' or 'flax': Trainer, TFTrainer,
    FlaxTrainer), importing its training module and framework only now."""
    from . import runtime

    runtime.require(name)  # a clear error naming what to install
    spec = backends.get(name)
    return getattr(importlib.import_module(f"{spec.package}.training"), spec.trainer)


# ---------------------------------------------------------------------------------------------
# 3. How many terms a loss averages over

TOKEN_LEVEL_HEADS = ("masked_lm", "token_classification", "causal_lm")


def loss_items(head: str, batch: Mapping[str, np.ndarray]) -> int:
    """How many terms a head's mean loss averages over in `batch`: labelled tokens for token-level
    heads, rows otherwise. Micro-batches and workers weight their mean losses by these counts,
    so accumulated and data-parallel updates equal one update on the whole batch."""
    if head in TOKEN_LEVEL_HEADS:
        return int((batch["labels"] != IGNORE_INDEX).sum())
    return len(batch["input_ids"])
