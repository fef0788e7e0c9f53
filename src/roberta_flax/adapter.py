"""The conformance adapter of the Flax (NNX) backend: how `roberta parity` and the conformance
suite (`roberta_core.parity`) build, load, run and differentiate a Flax model. It implements
`roberta_core.backends.ConformanceAdapter`; the adapters of the three backends are parallel texts.

A model is built the way a user builds one from canonical weights: the head's class from this
package, `Cls(config)`, then `convert.from_canonical(model, state)`; it runs in evaluation mode
and its outputs come back as float64 NumPy. Gradients come back in canonical form through the
same converter: the gradient values are put where the parameters were and `convert.to_canonical`
reads them, so the names and layouts are this backend's own mapping, not one written here.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from roberta_core.backends import map_arrays, model_class

from . import convert


class Adapter:
    """JAX on the CPU or the first GPU, fp32 or bf16."""

    name = "flax"

    def __init__(self, device: str = "cpu"):
        platform = "gpu" if device == "gpu" else "cpu"
        try:
            self.device = jax.devices(platform)[0]
        except RuntimeError:
            raise RuntimeError(f"JAX sees no {platform.upper()} device") from None
        if device == "gpu":
            # fp32 comparisons need true fp32 products (no TF32 / bf16 passes in matmuls).
            jax.config.update("jax_default_matmul_precision", "highest")
        # Eager JAX compiles every primitive for every new shape: cheap on CPU, slow on a GPU,
        # where each case runs as one jitted call instead (the way JAX is used there anyway).
        self.jit = device == "gpu"

    @staticmethod
    def sees_gpu() -> bool:
        """Whether the framework sees a GPU here."""
        try:
            return bool(jax.devices("gpu"))
        except RuntimeError:
            return False

    def _dtype(self, dtype: str):
        return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype]

    def _native(self, value: Any, dtype: str):
        """A NumPy input as this framework's array on the adapter's device (floats in `dtype`,
        integers as the model's index type); flags and a cache the model returned pass through."""
        if not isinstance(value, np.ndarray):
            return value
        array = value.astype(self._dtype(dtype)) if value.dtype.kind == "f" else value.astype(np.int32)
        return jax.device_put(array, self.device)

    def _apply(self, fn: Callable, model, inputs: Mapping[str, Any], dtype: str, past: Any = None):
        """fn(model, arrays, flags), jitted over the model and the arrays when `self.jit`."""
        arrays = {k: self._native(v, dtype) for k, v in inputs.items() if isinstance(v, np.ndarray)}
        if past is not None:
            arrays["past_key_values"] = past
        flags = {k: v for k, v in inputs.items() if not isinstance(v, np.ndarray)}
        run = lambda m, a: fn(m, a, flags)  # noqa: E731
        with jax.default_device(self.device):
            return (nnx.jit(run) if self.jit else run)(model, arrays)

    def build(self, config, head: str, dtype: str = "float32"):
        """The head's model for `config`, in evaluation mode, on the adapter's device."""
        with jax.default_device(self.device):
            model = model_class("flax", head)(config, dtype=self._dtype(dtype))
        model.eval()
        return model

    def load(self, model, state: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights (every key the model owns) into `model`."""
        with jax.default_device(self.device):
            convert.from_canonical(model, state)

    def call(self, model, inputs: Mapping[str, Any], past: Any = None, dtype: str = "float32"):
        """The model's output mapping for NumPy `inputs` (and a cache it returned before)."""
        return self._apply(lambda m, a, flags: m(**a, **flags), model, inputs, dtype, past)

    def to_numpy(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """Every output field as float64 NumPy (per-layer fields as tuples)."""
        leaf = lambda a: np.asarray(jax.device_get(a)).astype(np.float64)  # noqa: E731
        return {k: map_arrays(v, leaf) for k, v in outputs.items()}

    def grads(self, model, inputs: Mapping[str, Any], objective: Callable) -> dict[str, np.ndarray]:
        """d objective(model(**inputs)) / d every parameter, as canonical float32 arrays."""
        grad = lambda m, a, flags: nnx.grad(lambda m: objective(m(**a, **flags)))(m)  # noqa: E731
        nnx.update(model, self._apply(grad, model, inputs, "float32"))  # the gradients where the parameters were
        return {k: np.array(v, dtype=np.float32) for k, v in convert.to_canonical(model).items()}

    def weighted_sum(self, tensor, weights: np.ndarray):
        """sum(tensor * weights) as a scalar of this framework (the objective of a head without a loss)."""
        return (tensor * jnp.asarray(weights, dtype=tensor.dtype)).sum()
