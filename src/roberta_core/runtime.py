"""Run a backend's model on NumPy inputs: what the `roberta` command and conversion checks need.

Nothing here imports a backend or a framework until a function is called with that backend's
name, so NumPy-only commands never pay for (or depend on) torch, TensorFlow or JAX.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, Mapping

import numpy as np

from .weights import HEADS

__all__ = ["BACKENDS", "available", "require", "load_model", "run_model"]

# backend -> (package, class-name prefix, framework module, pip extra)
BACKENDS: dict[str, tuple[str, str, str, str]] = {
    "pt": ("roberta_pt", "", "torch", "torch"),
    "tf": ("roberta_tf", "TF", "tensorflow", "tf"),
    "flax": ("roberta_flax", "Flax", "jax", "flax"),
}


def _check_name(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def available(backend: str) -> bool:
    """Whether `backend` and its framework are installed (checked without importing them)."""
    _check_name(backend)
    package, _, framework, _ = BACKENDS[backend]
    return all(importlib.util.find_spec(name) is not None for name in (package, framework))


def require(backend: str):
    """Import the backend package, or raise ImportError saying what to install."""
    _check_name(backend)
    package, _, framework, extra = BACKENDS[backend]
    if not available(backend):
        raise ImportError(
            f"the {backend!r} backend needs {framework}, which is not installed; "
            f"install it with `pip install 'roberta3[{extra}]'` or choose another --backend"
        )
    if backend == "tf":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notes are not for command users
    module = importlib.import_module(package)
    if not hasattr(module, BACKENDS[backend][1] + HEADS["model"]):
        raise ImportError(f"{package} does not provide its models yet (no {BACKENDS[backend][1]}RobertaModel)")
    return module


def load_model(backend: str, head: str, path: str | os.PathLike, **kwargs: Any):
    """`<Prefix>RobertaFor<Head>.from_pretrained(path, **kwargs)` of `backend` (evaluation mode)."""
    module = require(backend)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    cls = getattr(module, BACKENDS[backend][1] + HEADS[head])
    return cls.from_pretrained(os.fspath(path), **kwargs)


def run_model(backend: str, model: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The model's outputs for `inputs` (NumPy arrays, plus flags such as `output_hidden_states`),
    as float32 (or integer) NumPy arrays; per-layer fields stay tuples of arrays. The call itself
    is the backend's (`<package>.convert.call_numpy`): the framework stays out of this module."""
    _check_name(backend)
    call_numpy = importlib.import_module(BACKENDS[backend][0] + ".convert").call_numpy
    return {k: _to_numpy(v) for k, v in call_numpy(model, inputs).items()}


def _to_numpy(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_to_numpy(v) for v in value)
    array = np.asarray(value)  # bfloat16 arrives as ml_dtypes' NumPy type
    return array.astype(np.float32) if array.dtype.kind == "f" or array.dtype.name == "bfloat16" else array
