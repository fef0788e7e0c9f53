"""The training step in TensorFlow: the paper's AdamW as a hand-written TF step, gradient
accumulation, bf16 where the device has it, and data parallelism under `tf.distribute`
(MirroredStrategy over the local GPUs or logical CPU devices; MultiWorkerMirroredStrategy when
TF_CONFIG names a cluster).

The AdamW is written out because Keras' Adam adds ε to sqrt(v) before the bias correction
(ε̂ = ε·sqrt(1-β2^t)), where torch and optax add it after: with RoBERTa's β2 = 0.98 and
ε = 1e-6 the first updates would differ. Here the update is torch's, term for term.

The schedule, the loop, the data and the checkpoints are framework-neutral
(`roberta_core.recipe`); this file is the TensorFlow half, a parallel text of
`roberta_pt/training.py`. Batches arrive as NumPy arrays (B, T).
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from roberta_core.config import RobertaConfig
from roberta_core.optim import AdamW, decays, loss_items
from roberta_core.weights import HEADS, is_transposed

from . import heads
from .convert import from_canonical, to_canonical, variables

__all__ = ["TFTrainer"]

# Batch keys that are targets: the model gets them for the loss, `predict` leaves them out.
TARGETS = ("labels", "start_positions", "end_positions")


def _precision(precision: str) -> str:
    """The Keras dtype policy: bf16 for 'bf16', and for 'auto' on a GPU; else float32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    if precision == "bf16" or (precision == "auto" and tf.config.list_logical_devices("GPU")):
        return "mixed_bfloat16"
    return "float32"


def _strategy() -> tf.distribute.Strategy:
    """Many workers when TF_CONFIG names a cluster, the local GPUs or (several logical) CPU
    devices otherwise; the default strategy for one device."""
    if json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


class TFTrainer:
    """A model of `head` and its AdamW, updated one global batch per `train_step`.

    The model is initialised as v4 does from `seed`, then given the canonical arrays of `state`
    where it has them (a MaskedLM checkpoint's encoder under a fresh classifier). Its variables
    live under a `tf.distribute` strategy; each replica gets its own rows of every batch.
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
        self.strategy = _strategy()
        resolver = getattr(self.strategy, "cluster_resolver", None)
        self.process_index = resolver.task_id if resolver is not None else 0
        self.process_count = resolver.cluster_spec().num_tasks("worker") if resolver is not None else 1

        keras.utils.set_random_seed(seed)
        with self.strategy.scope():
            self.model = model = getattr(heads, "TF" + HEADS[head])(config, dtype=_precision(precision))
            if state is not None:
                from_canonical(model, dict(state), allow_missing=True)
            # Tied parameters appear once, under their owner's canonical name.
            self.names = variables(model)
            self.exp_avg = {n: tf.Variable(tf.zeros_like(v), trainable=False) for n, v in self.names.items()}
            self.exp_avg_sq = {n: tf.Variable(tf.zeros_like(v), trainable=False) for n, v in self.names.items()}
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.head = head
        # The MLM loss needs the vocabulary logits at the masked positions only (15% of them):
        # the same loss and gradients for a fraction of the output layer's work.
        self.fast = {"masked_positions_only": True} if head == "masked_lm" else {}
        self._grads = tf.function(self._replica_grads, reduce_retracing=True)
        self._update = tf.function(self._apply, reduce_retracing=True)
        self._forward = tf.function(lambda inputs: model(**inputs, training=False), reduce_retracing=True)

    def _inputs(self, batch: Mapping[str, np.ndarray]):
        """This process's rows, split over the replicas (a per-replica value)."""
        replicas = self.strategy.num_replicas_in_sync // self.process_count
        rows = len(next(iter(batch.values())))
        if rows % replicas:
            raise ValueError(f"a micro-batch of {rows} rows cannot be split over {replicas} replicas; use a multiple of {replicas}")
        size = rows // replicas

        def part(context):
            r = context.replica_id_in_sync_group % replicas
            return {k: tf.constant(np.asarray(v[r * size : (r + 1) * size], dtype=np.int32)) for k, v in batch.items()}

        return self.strategy.experimental_distribute_values_from_function(part), size

    def _replica_grads(self, inputs, share):
        """Each replica's weighted loss gradient, summed over the replicas."""

        def replica(inputs, share):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.cast(self.model(**inputs, **self.fast, training=True).loss, tf.float32))
                weighted = loss * share
            grads = tape.gradient(weighted, list(self.names.values()))
            grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(grads, self.names.values())]
            return weighted, grads

        weighted, grads = self.strategy.run(replica, args=(inputs, share))
        total = lambda x: self.strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None)
        return total(weighted), [total(g) for g in grads]

    def _apply(self, grads, lr):
        """torch.optim.AdamW's update, term for term (decoupled decay first)."""
        b1, b2 = self.settings.betas
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float32)
        step_size = lr / (1.0 - b1**t)
        root_correction = tf.sqrt(1.0 - b2**t)
        for (name, var), g in zip(self.names.items(), grads):
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            g = tf.cast(g, var.dtype)
            if decays(name):
                var.assign(var * (1.0 - lr * self.settings.weight_decay))
            m.assign(m + (g - m) * (1.0 - b1))
            v.assign(v * b2 + g * g * (1.0 - b2))
            var.assign_sub(step_size * m / (tf.sqrt(v) / root_correction + self.settings.eps))

    def train_step(self, micro_batches: Sequence[Mapping[str, np.ndarray]], lr: float, total_items: int) -> float:
        """One AdamW update from this process's micro-batches. Each replica's mean loss is
        weighted by its share of the `total_items` loss terms of the global batch, so the
        gradient is the global batch's whatever the accumulation and replica count. Returns the
        global batch's mean loss."""
        summed, reported = None, 0.0
        for micro in micro_batches:
            inputs, size = self._inputs(micro)
            replicas = self.strategy.num_replicas_in_sync // self.process_count

            def share(context, micro=micro):
                r = context.replica_id_in_sync_group % replicas
                items = loss_items(self.head, {k: v[r * size : (r + 1) * size] for k, v in micro.items()})
                return tf.constant(items / total_items if total_items else 0.0, dtype=tf.float32)

            loss, grads = self._grads(inputs, self.strategy.experimental_distribute_values_from_function(share))
            summed = grads if summed is None else [a + b for a, b in zip(summed, grads)]
            reported += float(loss)
        self._update(summed, tf.constant(lr, dtype=tf.float32))
        return reported

    def predict(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The head's output arrays (logits, or start/end logits) for `batch`, dropout off."""
        out = self._forward({k: tf.constant(np.asarray(v, dtype=np.int32)) for k, v in batch.items() if k not in TARGETS})
        return {k: np.asarray(tf.cast(v, tf.float32)) for k, v in out.items() if isinstance(v, tf.Tensor)}

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """AdamW's moments as `exp_avg.<canonical name>` / `exp_avg_sq.<canonical name>` arrays in
        the canonical (PyTorch) layout: a checkpoint any backend resumes from."""
        state = {}
        for prefix, moments in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
            for name, var in moments.items():
                array = np.asarray(var.numpy())
                state[f"{prefix}.{name}"] = np.ascontiguousarray(array.T) if is_transposed(name) else array
        return state

    def load_optimizer_state(self, state: Mapping[str, np.ndarray], step: int) -> None:
        """Restore the moments `optimizer_state` gave, after `step` updates."""
        for prefix, moments in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
            for name, var in moments.items():
                if f"{prefix}.{name}" in state:
                    array = np.asarray(state[f"{prefix}.{name}"])
                    var.assign(np.asarray(array.T if is_transposed(name) else array, dtype=var.dtype.as_numpy_dtype))
        self.step.assign(step)

    def weights(self) -> dict[str, np.ndarray]:
        """The canonical weights now: copies, not views of the training parameters."""
        return to_canonical(self.model)

    def save_pretrained(self, directory) -> None:
        # The recipe's checkpoints are the canonical form (safetensors) whatever the backend.
        self.model.save_pretrained(directory, format="safetensors")
