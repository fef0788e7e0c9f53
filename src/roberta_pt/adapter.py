"""The conformance adapter of the PyTorch backend: how `roberta parity` and the conformance
suite (`roberta_core.parity`) build, load, run and differentiate a PyTorch model. It implements
`roberta_core.backends.ConformanceAdapter`; the adapters of the three backends are parallel texts.

A model is built the way a user builds one from canonical weights: the head's class from this
package, `Cls(config)`, then `convert.from_canonical(model, state)`; it runs in evaluation mode
and its outputs come back as float64 NumPy. Gradients come back in canonical form through the
same converter: the gradient values are put where the parameters were and `convert.to_canonical`
reads them, so the names and layouts are this backend's own mapping, not one written here.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from roberta_core.backends import map_arrays, model_class

from . import convert


class Adapter:
    """PyTorch on the CPU or the first CUDA device, fp32 or bf16."""

    name = "pt"

    def __init__(self, device: str = "cpu"):
        if device == "gpu":
            if not self.sees_gpu():
                raise RuntimeError("PyTorch sees no CUDA device")
            # fp32 comparisons need true fp32 products: no TF32 in matmuls or convolutions.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.set_float32_matmul_precision("highest")
        self.device = torch.device("cuda" if device == "gpu" else "cpu")

    @staticmethod
    def sees_gpu() -> bool:
        """Whether the framework sees a GPU here."""
        return torch.cuda.is_available()

    def _dtype(self, dtype: str):
        return {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]

    def _native(self, value: Any, dtype: str):
        """A NumPy input as this framework's array on the adapter's device (floats in `dtype`,
        integers as the model's index type); flags and a cache the model returned pass through."""
        if not isinstance(value, np.ndarray):
            return value
        t = torch.as_tensor(value)
        t = t.to(self._dtype(dtype)) if value.dtype.kind == "f" else t.long()
        return t.to(self.device)

    def build(self, config, head: str, dtype: str = "float32"):
        """The head's model for `config`, in evaluation mode, on the adapter's device."""
        return model_class("pt", head)(config).to(device=self.device, dtype=self._dtype(dtype)).eval()

    def load(self, model, state: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights (every key the model owns) into `model`."""
        convert.from_canonical(model, {k: np.array(v, dtype=np.float32) for k, v in state.items()})

    def call(self, model, inputs: Mapping[str, Any], past: Any = None, dtype: str = "float32"):
        """The model's output mapping for NumPy `inputs` (and a cache it returned before)."""
        kwargs = {k: self._native(v, dtype) for k, v in inputs.items()}
        if past is not None:
            kwargs["past_key_values"] = past
        with torch.no_grad():
            return model(**kwargs)

    def to_numpy(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """Every output field as float64 NumPy (per-layer fields as tuples)."""
        leaf = lambda t: t.detach().to(torch.float64).cpu().numpy()  # noqa: E731
        return {k: map_arrays(convert._cache_tuples(v), leaf) for k, v in outputs.items()}

    def grads(self, model, inputs: Mapping[str, Any], objective: Callable) -> dict[str, np.ndarray]:
        """d objective(model(**inputs)) / d every parameter, as canonical float32 arrays."""
        kwargs = {k: self._native(v, "float32") for k, v in inputs.items()}
        model.zero_grad(set_to_none=True)
        objective(model(**kwargs)).backward()
        with torch.no_grad():  # the gradients where the parameters were
            for p in model.parameters():
                p.data = p.grad if p.grad is not None else torch.zeros_like(p)
        return {k: np.array(v, dtype=np.float32) for k, v in convert.to_canonical(model).items()}

    def weighted_sum(self, tensor, weights: np.ndarray):
        """sum(tensor * weights) as a scalar of this framework (the objective of a head without a loss)."""
        return (tensor * torch.as_tensor(weights, device=tensor.device, dtype=tensor.dtype)).sum()
