"""Flax NNX parameter state <-> the canonical NumPy dict (ARCHITECTURE §3).

The NNX state paths are v4's Flax (Linen) tree paths (`roberta/encoder/layer/0/attention/self/
query/kernel`); `roberta_core.weights.from_flax_path`/`to_flax_path` name them canonically and
`is_transposed` says which arrays Flax stores (in, out) where PyTorch stores (out, in). Both
directions are a walk over `parameter_shapes(config, head)`. A bare FlaxRobertaModel's tree has
no `roberta` level (as in v4), matching the bare model's unprefixed canonical keys.
bfloat16 travels as `ml_dtypes.bfloat16` arrays, NumPy having no bfloat16 of its own.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from roberta_core.weights import PREFIX, check_state, from_flax_path, is_transposed, parameter_shapes

__all__ = ["to_canonical", "from_canonical", "call_numpy"]


def _parameters(model: nnx.Module) -> dict[str, nnx.Param]:
    """Canonical key -> the model's parameter. A tied LM decoder owns no kernel (it multiplies
    by the word embeddings), so every parameter appears once."""
    bare = model.head == "model"
    params = {}
    for path, param in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        key = from_flax_path(path)
        params[key.removeprefix(PREFIX) if bare else key] = param
    return params


def _shapes(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    """`parameter_shapes(config, head)`, less the pooler of a FlaxRobertaModel built without it."""
    return parameter_shapes(model.config, model.head, pooled=model.base_model.pooler is not None)


def to_canonical(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's parameters as `{canonical key: array}`, exactly the keys of
    `parameter_shapes(model.config, model.head)` in that order (no pooler when the model has
    none), PyTorch layout."""
    params = _parameters(model)
    state = {}
    for key in _shapes(model):
        array = np.asarray(jax.device_get(params[key][...]))
        state[key] = np.ascontiguousarray(array.T) if is_transposed(key) else array
    return state


def from_canonical(
    model: nnx.Module, state: Mapping[str, Any], *, allow_missing: bool = False, consume: bool = False
) -> nnx.Module:
    """Load canonical arrays into `model` (in place; returns it).

    Every key must be one the model owns, with its shape; every owned key must be present
    unless `allow_missing` (those keep their values). Arrays are cast to each parameter's
    dtype and keep its placement (a sharded parameter stays sharded). A parameter of an abstract
    model (built under `nnx.eval_shape`) is given its value. `consume` removes each entry from
    `state` once loaded and lets the parameter take the array's memory itself where dtype and
    layout allow (on CPU a 64-byte aligned array, as `roberta_core.checkpoint` reads them), so
    `from_pretrained` never holds two copies.
    """
    expected = _shapes(model)
    check_state(type(model).__name__, model.head, expected, state, allow_missing=allow_missing)
    params = _parameters(model)
    for key in list(state):
        param = params[key]
        array = np.asarray(state.pop(key) if consume else state[key])
        if is_transposed(key):
            array = array.T
        old = param.get_value()  # a jax.Array, or a jax.ShapeDtypeStruct when abstract
        # A placement only where the old value had one (a sharded model): an array that JAX may
        # move to where it is used stays so, as jit's programs are keyed on that too.
        sharding = old.sharding if getattr(old, "committed", False) else None
        # Aliasing only arrays handed over (`consume`): a caller's array may change after the call.
        param.set_value(jax.device_put(np.asarray(array, dtype=old.dtype), sharding, may_alias=consume))
    return model


def call_numpy(model: nnx.Module, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`model(**inputs)` for callers that hold no framework (`roberta_core.runtime`): NumPy arrays
    in (other values, such as `output_hidden_states=True`, pass as they are), the output fields
    out as NumPy arrays (per-layer fields as tuples of them). Integer arrays reach the model as
    NumPy arrays: its checks see the values before JAX narrows int64 to int32."""
    out = model(**{k: _jax_input(v) for k, v in inputs.items()})
    return {k: _numpy(v) for k, v in out.items() if v is not None}


def _jax_input(value: Any) -> Any:
    if isinstance(value, np.ndarray) and not np.issubdtype(value.dtype, np.integer):
        return jnp.asarray(value)
    return value


def _numpy(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_numpy(v) for v in value)
    return np.asarray(value) if isinstance(value, jax.Array) else value
