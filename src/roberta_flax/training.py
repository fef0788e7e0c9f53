"""The training step in Flax (NNX): the paper's AdamW (`optax.adamw`), gradient accumulation,
bf16 where the device has it, and data parallelism over a `jax.sharding.Mesh` (rows split over
the mesh axis 'data', parameters placed by the model's tensor-parallel annotations over 'model';
many hosts through `jax.distributed`).

The schedule, the loop, the data and the checkpoints are framework-neutral
(`roberta_core.recipe`); this file is the Flax half, a parallel text of
`roberta_pt/training.py`. Batches arrive as NumPy arrays (B, T). The step is the functional
path of NNX: `nnx.split` the model once, `jax.jit` pure functions of the parameter tree.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from roberta_core.config import RobertaConfig
from roberta_core.optim import AdamW, decays, loss_items
from roberta_core.weights import HEADS, from_flax_path, is_transposed

from . import heads
from .convert import from_canonical, to_canonical

__all__ = ["FlaxTrainer"]

# Batch keys that are targets: the model gets them for the loss, `predict` leaves them out.
TARGETS = ("labels", "start_positions", "end_positions")


def _precision(precision: str) -> jnp.dtype:
    """The compute dtype: bf16 for 'bf16', and for 'auto' on a GPU or TPU; else float32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    if precision == "bf16" or (precision == "auto" and jax.default_backend() in ("gpu", "tpu")):
        return jnp.bfloat16
    return jnp.float32


def _canonical(path) -> str:
    """The canonical name of a parameter at a jax tree path of the NNX state."""
    return from_flax_path(tuple(getattr(k, "key", getattr(k, "idx", k)) for k in path))


class FlaxTrainer:
    """A model of `head` and its AdamW, updated one global batch per `train_step`.

    The model is initialised as v4 does from `seed`, then given the canonical arrays of `state`
    where it has them (a MaskedLM checkpoint's encoder under a fresh classifier). Rows are
    split over the 'data' axis of `mesh` (default: every device, data parallel); under
    `jax.distributed` each process then gets its own rows of every batch.
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
        mesh: Optional[Mesh] = None,
    ):
        self.settings = settings
        self.process_count = jax.process_count()
        self.process_index = jax.process_index()
        self.mesh = mesh or Mesh(np.asarray(jax.devices()).reshape(-1, 1), ("data", "model"))
        self.rows = NamedSharding(self.mesh, PartitionSpec("data"))

        dtype = _precision(precision)
        self.model = model = getattr(heads, "Flax" + HEADS[head])(
            config, dtype=dtype, param_dtype=jnp.float32, rngs=nnx.Rngs(seed)
        )
        if state is not None:
            from_canonical(model, dict(state), allow_missing=True)
        model.shard(self.mesh)
        model.train()
        self.head = head
        # Trees of plain arrays: the parameters for optax and jax.grad, the rest (dropout's random
        # streams) rebuilt inside each traced call, so dropout advances its counter there.
        self.graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        self.params, self.rest = nnx.as_pure(params), nnx.as_pure(rest)

        # Weight decay skips biases and LayerNorm, by canonical name (`roberta_core.recipe.decays`).
        mask = jax.tree_util.tree_map_with_path(lambda path, _: decays(_canonical(path)), self.params)
        self.tx = optax.inject_hyperparams(optax.adamw)(
            learning_rate=settings.peak_lr, b1=settings.betas[0], b2=settings.betas[1], eps=settings.eps,
            weight_decay=settings.weight_decay, mask=mask,
        )
        self.opt_state = self.tx.init(self.params)
        graphdef, tx = self.graphdef, self.tx

        def grads(params, rest, batch, share, rows):
            def loss_fn(params):
                model = nnx.merge(graphdef, params, rest)
                loss = model(**batch, **({} if rows is None else {"masked_positions_only": rows})).loss
                return loss.astype(jnp.float32) * share, (loss, nnx.as_pure(nnx.state(model, nnx.Not(nnx.Param))))

            (_, (loss, rest)), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
            return loss.astype(jnp.float32), g, rest

        def update(params, opt_state, g, lr):
            opt_state.hyperparams["learning_rate"] = lr
            updates, opt_state = tx.update(g, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        def predict(params, rest, batch):
            out = nnx.merge(graphdef, params, rest)(**batch, deterministic=True)
            return {k: v.astype(jnp.float32) for k, v in out.items() if isinstance(v, jax.Array)}

        self._grads = jax.jit(grads, static_argnames="rows")
        self._update = jax.jit(update, donate_argnums=(0, 1))
        self._predict = jax.jit(predict)

    def _inputs(self, batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
        """This process's rows as global arrays split over the 'data' axis."""
        devices = self.mesh.shape["data"] // self.process_count
        rows = len(next(iter(batch.values())))
        if rows % devices:
            raise ValueError(
                f"a micro-batch of {rows} rows cannot be split over {devices} devices; use a multiple of {devices}"
            )
        return {
            k: jax.make_array_from_process_local_data(self.rows, np.asarray(v, dtype=np.int32))
            for k, v in batch.items()
        }

    def train_step(self, micro_batches: Sequence[Mapping[str, np.ndarray]], lr: float, total_items: int) -> float:
        """One AdamW update from this process's micro-batches. Each micro-batch's mean loss is
        weighted by its share of the `total_items` loss terms of the global batch, so the
        gradient is the global batch's whatever the accumulation and device count. Returns the
        global batch's mean loss."""
        summed, reported = None, 0.0
        for micro in micro_batches:
            items = loss_items(self.head, micro)
            if self.process_count > 1:  # the mean runs over every process's rows of this micro-batch
                items = int(multihost_utils.process_allgather(np.int64(items)).sum())
            share = items / total_items if total_items else 0.0
            rows = self._masked_rows(micro, items)
            loss, g, self.rest = self._grads(self.params, self.rest, self._inputs(micro), jnp.float32(share), rows)
            summed = g if summed is None else jax.tree.map(jnp.add, summed, g)
            reported += float(loss) * share
        self.params, self.opt_state = self._update(self.params, self.opt_state, summed, jnp.float32(lr))
        return reported

    def _masked_rows(self, micro: Mapping[str, np.ndarray], labelled: int) -> Optional[int]:
        """For the MLM loss, the vocabulary logits at the masked positions only (15% of them):
        the same loss and gradients for a fraction of the output layer's work. Under jit the row
        count is static: the micro-batch's `labelled` positions (over every process) rounded up
        to a multiple of 64, so a few programs are compiled in all, never more rows than
        positions. None for the other heads."""
        if self.head != "masked_lm":
            return None
        positions = int(np.asarray(micro["labels"]).size) * self.process_count
        return min(positions, -(-max(labelled, 1) // 64) * 64)

    def predict(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The head's output arrays (logits, or start/end logits) for `batch`, dropout off. Rows
        are padded to a multiple of the devices (copies of the first) and cut off again."""
        inputs = {k: v for k, v in batch.items() if k not in TARGETS}
        rows = len(next(iter(inputs.values())))
        extra = -rows % (self.mesh.shape["data"] // self.process_count)
        inputs = {k: np.concatenate([v, np.repeat(v[:1], extra, axis=0)]) for k, v in inputs.items()}
        out = self._predict(self.params, self.rest, self._inputs(inputs))
        if self.process_count > 1:
            out = {k: multihost_utils.process_allgather(v, tiled=True) for k, v in out.items()}
        return {k: np.asarray(v)[:rows] for k, v in out.items()}

    def _adam(self) -> optax.ScaleByAdamState:
        return next(s for s in self.opt_state.inner_state if isinstance(s, optax.ScaleByAdamState))

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """AdamW's moments as `exp_avg.<canonical name>` / `exp_avg_sq.<canonical name>` arrays in
        the canonical (PyTorch) layout: a checkpoint any backend resumes from."""
        adam, state = self._adam(), {}
        for prefix, tree in (("exp_avg", adam.mu), ("exp_avg_sq", adam.nu)):
            for path, value in jax.tree_util.tree_flatten_with_path(tree)[0]:
                name = _canonical(path)
                array = np.asarray(jax.device_get(value))
                state[f"{prefix}.{name}"] = np.ascontiguousarray(array.T) if is_transposed(name) else array
        return state

    def load_optimizer_state(self, state: Mapping[str, np.ndarray], step: int) -> None:
        """Restore the moments `optimizer_state` gave, after `step` updates."""

        def moment(prefix):
            def restore(path, old):
                name = _canonical(path)
                if f"{prefix}.{name}" not in state:
                    return old
                array = np.asarray(state[f"{prefix}.{name}"])
                array = array.T if is_transposed(name) else array
                return jax.device_put(np.asarray(array, dtype=old.dtype), old.sharding)

            return restore

        adam = self._adam()
        count = jnp.asarray(step, dtype=adam.count.dtype)
        restored = adam._replace(
            count=count,
            mu=jax.tree_util.tree_map_with_path(moment("exp_avg"), adam.mu),
            nu=jax.tree_util.tree_map_with_path(moment("exp_avg_sq"), adam.nu),
        )
        inner = tuple(restored if isinstance(s, optax.ScaleByAdamState) else s for s in self.opt_state.inner_state)
        self.opt_state = self.opt_state._replace(
            count=jnp.asarray(step, dtype=self.opt_state.count.dtype), inner_state=inner
        )

    def _sync(self) -> None:
        nnx.update(self.model, self.params, self.rest)

    def weights(self) -> dict[str, np.ndarray]:
        """The canonical weights now: copies, not views of the training parameters."""
        self._sync()
        return {k: np.array(v) for k, v in to_canonical(self.model).items()}

    def save_pretrained(self, directory) -> None:
        self._sync()
        # The recipe's checkpoints are the canonical form (safetensors) whatever the backend.
        self.model.save_pretrained(directory, format="safetensors")
