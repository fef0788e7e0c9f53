"""One small adapter per backend, so the runner (`conformance.suite`) speaks to PyTorch,
TensorFlow and Flax the same way. Each framework is imported only when its adapter is asked for.

Every adapter builds a model the way a user does from canonical weights: the class named in
`roberta_core.weights.HEADS` (with the backend's prefix) from the backend package, `Cls(config)`,
then the backend's own `convert.from_canonical(model, state)`; it runs it in evaluation mode and
reads the outputs back as float64 NumPy. A built model is reused for every case with the same
config (the runner loads each case's weights into it), which saves most of the build time.
Gradients come back in canonical form through the same converter: the gradient values are put
where the parameters were and `convert.to_canonical` reads them, so the names and layouts are
the backend's own mapping, not one written here.

Adapter interface (the runner relies on nothing else):
    name                              'pt' | 'tf' | 'flax'
    build(config, head, dtype) -> model (evaluation mode, on the adapter's device)
    load(model, state)                loads canonical weights (every key the model owns)
    call(model, inputs, past=None, dtype) -> the backend's output mapping
    to_numpy(outputs) -> {field: float64 array or nested tuples of them}
    grads(model, inputs, objective) -> {canonical key: float32 gradient, PT layout}
    weighted_sum(tensor, weights) -> scalar tensor sum(tensor * weights)
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from roberta_core.weights import HEADS

NAMES = ("pt", "tf", "flax")
PACKAGES = {"pt": ("torch", "roberta_pt"), "tf": ("tensorflow", "roberta_tf"), "flax": ("jax", "flax", "roberta_flax")}
PREFIX = {"pt": "", "tf": "TF", "flax": "Flax"}
DEVICES = ("cpu", "gpu")


def model_class(backend: str, head: str):
    """The backend's class for `head`, from its package exports."""
    package = importlib.import_module(PACKAGES[backend][-1])
    name = PREFIX[backend] + HEADS[head]
    try:
        return getattr(package, name)
    except AttributeError:
        raise ImportError(f"{PACKAGES[backend][-1]} does not export {name}") from None


def _walk(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """Apply `leaf` to every array of an output value (arrays, or nested tuples/lists of them)."""
    if isinstance(value, (tuple, list)):
        return tuple(_walk(v, leaf) for v in value)
    return leaf(value)


def _is_float(array: np.ndarray) -> bool:
    return array.dtype.kind == "f"


# ---------------------------------------------------------------------------- PyTorch


class TorchBackend:
    name = "pt"

    def __init__(self, device: str = "cpu"):
        import torch

        self.torch = torch
        self.convert = importlib.import_module("roberta_pt.convert")
        if device == "gpu":
            if not torch.cuda.is_available():
                raise RuntimeError("PyTorch sees no CUDA device")
            # fp32 comparisons need true fp32 products: no TF32 in matmuls or convolutions.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.set_float32_matmul_precision("highest")
        self.device = torch.device("cuda" if device == "gpu" else "cpu")

    def _dtype(self, dtype: str):
        return {"float32": self.torch.float32, "bfloat16": self.torch.bfloat16}[dtype]

    def build(self, config, head: str, dtype: str = "float32"):
        return model_class("pt", head)(config).to(device=self.device, dtype=self._dtype(dtype)).eval()

    def load(self, model, state: Mapping[str, np.ndarray]) -> None:
        self.convert.from_canonical(model, {k: np.array(v, dtype=np.float32) for k, v in state.items()})

    def _tensor(self, value: Any, dtype: str):
        if not isinstance(value, np.ndarray):
            return value  # flags, and a cache this backend returned
        t = self.torch.as_tensor(value)
        t = t.to(self._dtype(dtype)) if _is_float(value) else t.long()
        return t.to(self.device)

    def call(self, model, inputs: Mapping[str, Any], past: Any = None, dtype: str = "float32"):
        kwargs = {k: self._tensor(v, dtype) for k, v in inputs.items()}
        if past is not None:
            kwargs["past_key_values"] = past
        with self.torch.no_grad():
            return model(**kwargs)

    def to_numpy(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        leaf = lambda t: t.detach().to(self.torch.float64).cpu().numpy()  # noqa: E731
        return {k: _walk(v, leaf) for k, v in outputs.items()}

    def grads(self, model, inputs: Mapping[str, Any], objective: Callable) -> dict[str, np.ndarray]:
        kwargs = {k: self._tensor(v, "float32") for k, v in inputs.items()}
        model.zero_grad(set_to_none=True)
        objective(model(**kwargs)).backward()
        with self.torch.no_grad():
            for p in model.parameters():
                p.data = p.grad if p.grad is not None else self.torch.zeros_like(p)
        return {k: np.array(v, dtype=np.float32) for k, v in self.convert.to_canonical(model).items()}

    def weighted_sum(self, tensor, weights: np.ndarray):
        return (tensor * self.torch.as_tensor(weights, device=tensor.device, dtype=tensor.dtype)).sum()


# ---------------------------------------------------------------------------- Flax (NNX)


class FlaxBackend:
    name = "flax"

    def __init__(self, device: str = "cpu"):
        import jax
        import jax.numpy as jnp
        from flax import nnx

        self.jax, self.jnp, self.nnx = jax, jnp, nnx
        self.convert = importlib.import_module("roberta_flax.convert")
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

    def _dtype(self, dtype: str):
        return {"float32": self.jnp.float32, "bfloat16": self.jnp.bfloat16}[dtype]

    def build(self, config, head: str, dtype: str = "float32"):
        with self.jax.default_device(self.device):
            model = model_class("flax", head)(config, dtype=self._dtype(dtype))
        model.eval()
        return model

    def load(self, model, state: Mapping[str, np.ndarray]) -> None:
        with self.jax.default_device(self.device):
            self.convert.from_canonical(model, state)

    def _array(self, value: Any, dtype: str):
        if not isinstance(value, np.ndarray):
            return value
        array = value.astype(self._dtype(dtype)) if _is_float(value) else value.astype(np.int32)
        return self.jax.device_put(array, self.device)

    def _apply(self, fn: Callable, model, inputs: Mapping[str, Any], dtype: str, past: Any = None):
        """fn(model, arrays, flags), jitted over the model and the arrays when `self.jit`."""
        arrays = {k: self._array(v, dtype) for k, v in inputs.items() if isinstance(v, np.ndarray)}
        if past is not None:
            arrays["past_key_values"] = past
        flags = {k: v for k, v in inputs.items() if not isinstance(v, np.ndarray)}
        run = lambda m, a: fn(m, a, flags)  # noqa: E731
        with self.jax.default_device(self.device):
            return (self.nnx.jit(run) if self.jit else run)(model, arrays)

    def call(self, model, inputs: Mapping[str, Any], past: Any = None, dtype: str = "float32"):
        return self._apply(lambda m, a, flags: m(**a, **flags), model, inputs, dtype, past)

    def to_numpy(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        leaf = lambda a: np.asarray(self.jax.device_get(a)).astype(np.float64)  # noqa: E731
        return {k: _walk(v, leaf) for k, v in outputs.items()}

    def grads(self, model, inputs: Mapping[str, Any], objective: Callable) -> dict[str, np.ndarray]:
        grad = lambda m, a, flags: self.nnx.grad(lambda m: objective(m(**a, **flags)))(m)  # noqa: E731
        self.nnx.update(model, self._apply(grad, model, inputs, "float32"))  # the gradients where the parameters were
        return {k: np.array(v, dtype=np.float32) for k, v in self.convert.to_canonical(model).items()}

    def weighted_sum(self, array, weights: np.ndarray):
        return (array * self.jnp.asarray(weights, dtype=array.dtype)).sum()


# ---------------------------------------------------------------------------- TensorFlow


class TFBackend:
    name = "tf"

    def __init__(self, device: str = "cpu"):
        import tensorflow as tf

        self.tf = tf
        self.convert = importlib.import_module("roberta_tf.convert")
        if device == "gpu":
            if not tf.config.list_physical_devices("GPU"):
                raise RuntimeError("TensorFlow sees no GPU")
            tf.config.experimental.enable_tensor_float_32_execution(False)
        self.device = "/GPU:0" if device == "gpu" else "/CPU:0"

    def _dtype(self, dtype: str):
        return {"float32": self.tf.float32, "bfloat16": self.tf.bfloat16}[dtype]

    def build(self, config, head: str, dtype: str = "float32"):
        with self.tf.device(self.device):
            return model_class("tf", head)(config, dtype=dtype)

    def load(self, model, state: Mapping[str, np.ndarray]) -> None:
        with self.tf.device(self.device):
            self.convert.from_canonical(model, state)

    def _tensor(self, value: Any, dtype: str):
        if not isinstance(value, np.ndarray):
            return value
        return self.tf.constant(value, dtype=self._dtype(dtype) if _is_float(value) else self.tf.int32)

    def call(self, model, inputs: Mapping[str, Any], past: Any = None, dtype: str = "float32"):
        with self.tf.device(self.device):
            kwargs = {k: self._tensor(v, dtype) for k, v in inputs.items()}
            if past is not None:
                kwargs["past_key_values"] = past
            return model(**kwargs, training=False)

    def to_numpy(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        leaf = lambda t: np.asarray(self.tf.cast(t, self.tf.float64))  # noqa: E731
        return {k: _walk(v, leaf) for k, v in outputs.items()}

    def grads(self, model, inputs: Mapping[str, Any], objective: Callable) -> dict[str, np.ndarray]:
        tf = self.tf
        with tf.device(self.device):
            kwargs = {k: self._tensor(v, "float32") for k, v in inputs.items()}
            with tf.GradientTape() as tape:
                value = objective(model(**kwargs, training=False))
            variables = model.trainable_variables
            grads = tape.gradient(value, variables)
            for var, grad in zip(variables, grads):  # the gradients where the parameters were
                var.assign(tf.zeros(var.shape, var.dtype) if grad is None else tf.convert_to_tensor(grad))
        return {k: np.array(v, dtype=np.float32) for k, v in self.convert.to_canonical(model).items()}

    def weighted_sum(self, tensor, weights: np.ndarray):
        return self.tf.reduce_sum(tensor * self.tf.constant(weights, dtype=tensor.dtype))


ADAPTERS = {"pt": TorchBackend, "tf": TFBackend, "flax": FlaxBackend}


def installed(name: str) -> bool:
    """True when the backend's framework and package import."""
    try:
        for module in PACKAGES[name]:
            importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return False
    return True


def installed_names() -> list[str]:
    """The backends installed here, in NAMES order."""
    return [n for n in NAMES if installed(n)]


def tf_has_gpu() -> bool:
    """True when TensorFlow is installed and sees a GPU (the lent GPU machines have no TensorFlow)."""
    try:
        import tensorflow as tf
    except Exception:  # noqa: BLE001
        return False
    return bool(tf.config.list_physical_devices("GPU"))


def get(names: Sequence[str], device: str = "cpu") -> list:
    """Adapters for `names`, each of which must be installed."""
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    missing = [n for n in names if not installed(n)]
    if missing:
        needs = ", ".join(m for n in missing for m in PACKAGES[n])
        raise ImportError(f"backend(s) not installed or not importable: {', '.join(missing)} (needs {needs})")
    adapters = []
    for n in names:
        try:
            adapters.append(ADAPTERS[n](device))
        except RuntimeError as e:  # the framework sees no device of that kind
            raise ValueError(f"--device {device}: {e}") from None
    return adapters
