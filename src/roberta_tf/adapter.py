"""The conformance adapter of the TensorFlow backend: how `roberta parity` and the conformance
suite (`roberta_core.parity`) build, load, run and differentiate a TensorFlow model. It implements
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
import tensorflow as tf

from roberta_core.backends import map_arrays, model_class

from . import convert


class Adapter:
    """TensorFlow on the CPU or the first GPU, fp32 or bf16."""

    name = "tf"

    def __init__(self, device: str = "cpu"):
        if device == "gpu":
            if not self.sees_gpu():
                raise RuntimeError("TensorFlow sees no GPU")
            # fp32 comparisons need true fp32 products: no TF32 in matmuls or convolutions.
            tf.config.experimental.enable_tensor_float_32_execution(False)
        self.device = "/GPU:0" if device == "gpu" else "/CPU:0"

    @staticmethod
    def sees_gpu() -> bool:
        """Whether the framework sees a GPU here."""
        return bool(tf.config.list_physical_devices("GPU"))

    def _dtype(self, dtype: str):
        return {"float32": tf.float32, "bfloat16": tf.bfloat16}[dtype]

    def _native(self, value: Any, dtype: str):
        """A NumPy input as this framework's array on the adapter's device (floats in `dtype`,
        integers as the model's index type); flags and a cache the model returned pass through."""
        if not isinstance(value, np.ndarray):
            return value
        return tf.constant(value, dtype=self._dtype(dtype) if value.dtype.kind == "f" else tf.int32)

    def build(self, config, head: str, dtype: str = "float32"):
        """The head's model for `config`, in evaluation mode, on the adapter's device."""
        with tf.device(self.device):
            return model_class("tf", head)(config, dtype=dtype)

    def load(self, model, state: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights (every key the model owns) into `model`."""
        with tf.device(self.device):
            convert.from_canonical(model, state)

    def call(self, model, inputs: Mapping[str, Any], past: Any = None, dtype: str = "float32"):
        """The model's output mapping for NumPy `inputs` (and a cache it returned before)."""
        with tf.device(self.device):
            kwargs = {k: self._native(v, dtype) for k, v in inputs.items()}
            if past is not None:
                kwargs["past_key_values"] = past
            return _mean_loss(model(**kwargs, training=False))

    def to_numpy(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """Every output field as float64 NumPy (per-layer fields as tuples)."""
        leaf = lambda t: np.asarray(tf.cast(t, tf.float64))  # noqa: E731
        return {k: map_arrays(v, leaf) for k, v in outputs.items()}

    def grads(self, model, inputs: Mapping[str, Any], objective: Callable) -> dict[str, np.ndarray]:
        """d objective(model(**inputs)) / d every parameter, as canonical float32 arrays."""
        with tf.device(self.device):
            kwargs = {k: self._native(v, "float32") for k, v in inputs.items()}
            with tf.GradientTape() as tape:
                value = objective(_mean_loss(model(**kwargs, training=False)))
            variables = model.trainable_variables
            grads = tape.gradient(value, variables)
            for var, grad in zip(variables, grads):  # the gradients where the parameters were
                var.assign(tf.zeros(var.shape, var.dtype) if grad is None else tf.convert_to_tensor(grad))
        return {k: np.array(v, dtype=np.float32) for k, v in convert.to_canonical(model).items()}

    def weighted_sum(self, tensor, weights: np.ndarray):
        """sum(tensor * weights) as a scalar of this framework (the objective of a head without a loss)."""
        return tf.reduce_sum(tensor * tf.constant(weights, dtype=tensor.dtype))


def _mean_loss(outputs):
    """The heads return v4 TF's loss shapes ((1,) or per example (B,)); the contract compares the
    mean, the scalar the other backends return."""
    if "loss" in outputs:
        outputs["loss"] = tf.reduce_mean(outputs["loss"])
    return outputs
