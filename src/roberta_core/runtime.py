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

from . import backends
from .weights import HEADS

__all__ = ["available", "require", "load_model", "run_model"]


def available(backend: str) -> bool:
    """Whether `backend` and its frameworks are installed (checked without importing them)."""
    spec = backends.get(backend)
    return all(importlib.util.find_spec(name) is not None for name in (spec.package, *spec.frameworks))


def require(backend: str):
    """Import the backend package, or raise ImportError saying what to install."""
    spec = backends.get(backend)
    if not available(backend):
        missing = next((m for m in spec.frameworks if importlib.util.find_spec(m) is None), spec.package)
        raise ImportError(
            f"the {backend!r} backend needs {missing}, which is not installed; "
            f"install it with `pip install 'roberta3[{spec.extra}]'` or choose another --backend"
        )
    for variable, value in spec.environment.items():
        os.environ.setdefault(variable, value)
    module = importlib.import_module(spec.package)
    if not hasattr(module, spec.class_name(HEADS["model"])):
        raise ImportError(f"{spec.package} does not provide its models yet (no {spec.class_name(HEADS['model'])})")
    return module


def load_model(backend: str, head: str, path: str | os.PathLike, **kwargs: Any):
    """`<Prefix>RobertaFor<Head>.from_pretrained(path, **kwargs)` of `backend` (evaluation mode)."""
    module = require(backend)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    cls = getattr(module, backends.get(backend).class_name(HEADS[head]))
    return cls.from_pretrained(os.fspath(path), **kwargs)


def run_model(backend: str, model: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The model's outputs for `inputs` (NumPy arrays, plus flags such as `output_hidden_states`),
    as float32 (or integer) NumPy arrays; per-layer fields stay tuples of arrays. The call itself
    is the backend's (`<package>.convert.call_numpy`): the framework stays out of this module."""
    call_numpy = importlib.import_module(backends.get(backend).package + ".convert").call_numpy
    return {k: backends.map_arrays(v, _to_numpy) for k, v in call_numpy(model, inputs).items()}


def _to_numpy(value: Any) -> np.ndarray:
    array = np.asarray(value)  # bfloat16 arrives as ml_dtypes' NumPy type
    return array.astype(np.float32) if array.dtype.kind == "f" or array.dtype.name == "bfloat16" else array
