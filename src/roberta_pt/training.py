"""The training step in PyTorch: the paper's AdamW (`torch.optim.AdamW`), gradient accumulation,
bf16 autocast where the device has it, and data parallelism under `torchrun`
(DistributedDataParallel; gloo on CPU, NCCL on GPU).

The schedule, the loop, the data and the checkpoints are framework-neutral
(`roberta_core.recipe`); this file is the PyTorch half, and the master text of
`roberta_tf/training.py` and `roberta_flax/training.py`. Batches arrive as NumPy arrays (B, T).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from roberta_core.config import RobertaConfig
from roberta_core.optim import AdamW, decays, loss_items
from roberta_core.weights import HEADS

from . import heads
from ._framework import as_array, as_tensor
from .convert import from_canonical, to_canonical

__all__ = ["Trainer"]

# Batch keys that are targets: the model gets them for the loss, `predict` leaves them out.
TARGETS = ("labels", "start_positions", "end_positions")


def _precision(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype: bf16 for 'bf16', and for 'auto' on a GPU that has it; else none."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return None


def _leave_process_group() -> None:
    """Leave the process group in order while the interpreter still runs (registered with atexit
    by the trainer that joined it). Left to itself, the group stays in torch's C++ registry and is
    torn down by the static destructors of `exit()`, after Python has finalised, in no set order:
    a gloo worker thread still joinable there ends the process in std::terminate ("terminate
    called without an active exception", SIGABRT) — a race, so it shows under CPU load. The
    barrier first lets every rank finish (process 0 may still be writing) before any leaves; a rank
    ending on an uncaught exception leaves at once (its peers may be blocked in a collective it
    never reaches, and waiting for them would hang it until the group's timeout)."""
    if not dist.is_initialized():
        return
    if getattr(sys, "last_value", None) is None:  # set by the interpreter for an uncaught exception
        with contextlib.suppress(RuntimeError):  # a rank that died already: leave without it
            dist.barrier()
    dist.destroy_process_group()


class Trainer:
    """A model of `head` and its AdamW, updated one global batch per `train_step`.

    The model is initialised as v4 does from `seed`, then given the canonical arrays of `state`
    where it has them (a MaskedLM checkpoint's encoder under a fresh classifier). Under
    `torchrun` (WORLD_SIZE > 1) the trainer joins the process group and wraps the model in
    DistributedDataParallel; each process then gets its own rows of every batch.
    """

    def __init__(
        self,
        head: str,
        config: RobertaConfig,
        settings: AdamW,
        *,
        state: Optional[Mapping[str, np.ndarray]] = None,
        seed: int = 0,
        precision: str = "auto",
    ):
        self.settings = settings
        self.process_count = int(os.environ.get("WORLD_SIZE", "1"))
        if self.process_count > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            atexit.register(_leave_process_group)  # the group this trainer joined is left before exit
        self.process_index = dist.get_rank() if self.process_count > 1 else 0
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        self.autocast = _precision(precision, self.device)

        torch.manual_seed(seed)
        self.model = model = getattr(heads, HEADS[head])(config)
        if state is not None:
            from_canonical(model, dict(state), allow_missing=True)
        model.to(self.device).train()
        self.module = model
        if self.process_count > 1:
            self.module = DistributedDataParallel(model, device_ids=[local] if self.device.type == "cuda" else None)

        # Tied parameters appear once, under their owner's canonical name.
        self.names = dict(model.named_parameters())
        groups = [
            {"params": [p for n, p in self.names.items() if decays(n)], "weight_decay": settings.weight_decay},
            {"params": [p for n, p in self.names.items() if not decays(n)], "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW(groups, lr=settings.peak_lr, betas=settings.betas, eps=settings.eps)
        # The MLM loss needs the vocabulary logits at the masked positions only (15% of them):
        # the same loss and gradients for a fraction of the output layer's work.
        self.fast = {"masked_positions_only": True} if head == "masked_lm" else {}

    def _inputs(self, batch: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(np.asarray(v, dtype=np.int64)).to(self.device) for k, v in batch.items()}

    def _autocast(self):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def train_step(self, micro_batches: Sequence[Mapping[str, np.ndarray]], lr: float, total_items: int) -> float:
        """One AdamW update from this process's micro-batches. Each micro-batch's mean loss is
        weighted by its share of the `total_items` loss terms of the global batch, so the
        gradient is the global batch's whatever the accumulation and worker count. Returns the
        global batch's mean loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        reported = torch.zeros((), device=self.device)
        for i, micro in enumerate(micro_batches):
            share = loss_items(self.model.head, micro) / total_items if total_items else 0.0
            # DistributedDataParallel averages gradients over processes, so each process scales
            # its sum up by their number; it synchronises on the last micro-batch only.
            last = i == len(micro_batches) - 1
            sync = self.module.no_sync() if self.process_count > 1 and not last else contextlib.nullcontext()
            with sync:
                with self._autocast():
                    loss = self.module(**self._inputs(micro), **self.fast).loss
                (loss.float() * share * self.process_count).backward()
            reported += loss.detach().float() * share
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.process_count > 1:
            dist.all_reduce(reported)
        return float(reported)

    @torch.no_grad()
    def predict(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The head's output arrays (logits, or start/end logits) for `batch`, dropout off."""
        self.model.eval()
        try:
            with self._autocast():
                out = self.model(**self._inputs({k: v for k, v in batch.items() if k not in TARGETS}))
        finally:
            self.model.train()
        return {k: as_array(v.float()) for k, v in out.items() if isinstance(v, torch.Tensor)}

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """AdamW's moments as `exp_avg.<canonical name>` / `exp_avg_sq.<canonical name>` arrays in
        the canonical (PyTorch) layout: a checkpoint any backend resumes from."""
        state = {}
        for name, p in self.names.items():
            moments = self.optimizer.state.get(p)
            if moments:
                state[f"exp_avg.{name}"] = as_array(moments["exp_avg"]).copy()
                state[f"exp_avg_sq.{name}"] = as_array(moments["exp_avg_sq"]).copy()
        return state

    def load_optimizer_state(self, state: Mapping[str, np.ndarray], step: int) -> None:
        """Restore the moments `optimizer_state` gave, after `step` updates."""
        for name, p in self.names.items():
            if f"exp_avg.{name}" in state:
                self.optimizer.state[p] = {
                    "step": torch.tensor(float(step)),
                    "exp_avg": as_tensor(state[f"exp_avg.{name}"]).to(self.device, p.dtype).clone(),
                    "exp_avg_sq": as_tensor(state[f"exp_avg_sq.{name}"]).to(self.device, p.dtype).clone(),
                }

    def weights(self) -> dict[str, np.ndarray]:
        """The canonical weights now: copies, not views of the training parameters."""
        return {k: v.copy() for k, v in to_canonical(self.model).items()}

    def save_pretrained(self, directory) -> None:
        # The recipe's checkpoints are the canonical form (safetensors) whatever the backend.
        self.model.save_pretrained(directory, format="safetensors")
