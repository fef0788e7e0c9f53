"""Keras variables <-> the canonical NumPy dict (DESIGN §3).

Keras 3 keeps variables by layer path and creation order, not by the TF1 names v4 wrote
(`.../query/kernel:0`), so the mapping goes by structure: a canonical key such as
`roberta.encoder.layer.0.attention.self.query.weight` is the attribute path
`model.roberta.encoder.layer[0].attention.self.query` and, that being a Dense layer, its
`kernel`. Dense kernels are stored (in, out), the transpose of the canonical (out, in)
(`roberta_core.weights.is_transposed`). bfloat16 travels as `ml_dtypes.bfloat16` arrays.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.common import variables as keras_variables

from roberta_core.weights import is_transposed, parameter_shapes

__all__ = ["to_canonical", "from_canonical", "initialize_from_canonical", "variables", "call_numpy"]

# Canonical module names that are attributes of another name in the Keras tree: a Keras layer
# owns a read-only `output` property, so the blocks PyTorch calls `output` are `dense_output`.
_ATTRIBUTES = {"output": "dense_output"}


def _owned_shapes(model: keras.Model) -> dict[str, tuple[int, ...]]:
    """`parameter_shapes(config, head)`, less the pooler of a TFRobertaModel built without it."""
    shapes = parameter_shapes(model.config, model.head)
    if getattr(model.base_model, "pooler", True) is None:
        shapes = {k: v for k, v in shapes.items() if ".pooler." not in f".{k}"}
    return shapes


def _variable(model: keras.Model, key: str) -> keras.Variable:
    """The Keras variable holding canonical `key`."""
    path, _, param = key.rpartition(".")
    node: Any = model
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, _ATTRIBUTES.get(part, part))
    if isinstance(node, keras.layers.Dense):
        return node.kernel if param == "weight" else node.bias
    if isinstance(node, keras.layers.Embedding):
        return node.embeddings
    if isinstance(node, keras.layers.LayerNormalization):
        return node.gamma if param == "weight" else node.beta
    return getattr(node, param)  # a bare variable: lm_head.bias


def variables(model: keras.Model) -> dict[str, keras.Variable]:
    """`{canonical key: variable}` for every parameter the model owns, in module order. The tied
    decoder is not listed: it is the word embedding variable."""
    return {key: _variable(model, key) for key in _owned_shapes(model)}


def _as_array(variable: keras.Variable, transpose: bool) -> np.ndarray:
    array = np.asarray(keras.ops.convert_to_numpy(variable))
    return np.ascontiguousarray(array.T) if transpose else array


def to_canonical(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's parameters as `{canonical key: array}`, exactly the keys of
    `parameter_shapes(model.config, model.head)` in that order, PyTorch layout, the variables' dtype."""
    return {key: _as_array(var, is_transposed(key)) for key, var in variables(model).items()}


def _check_state(model: keras.Model, state: Mapping[str, Any], allow_missing: bool) -> None:
    """Every key of `state` one the model owns, with its shape; every owned key present unless
    `allow_missing`."""
    expected = _owned_shapes(model)
    name = type(model).__name__
    unknown = [k for k in state if k not in expected]
    if unknown:
        raise ValueError(
            f"{name} owns no parameter(s) {unknown}; its keys are those of parameter_shapes(config, {model.head!r})"
        )
    missing = [k for k in expected if k not in state]
    if missing and not allow_missing:
        raise ValueError(f"state lacks {len(missing)} parameter(s) of {name}: {missing}")
    wrong = [(k, tuple(np.shape(v)), expected[k]) for k, v in state.items() if tuple(np.shape(v)) != expected[k]]
    if wrong:
        listed = ", ".join(f"{k} {got} != expected {want}" for k, got, want in wrong)
        raise ValueError(f"shape mismatch loading {name}: {listed}")


def _value(variable: keras.Variable, key: str, value: Any, adopt: bool = False) -> tf.Tensor:
    """Canonical `value` as a tensor in `variable`'s layout and dtype. With `adopt`, an array
    already so (C-contiguous, 64-byte aligned, the variable's NumPy dtype) is wrapped without a
    copy (DLPack): a variable made from it then keeps that memory as its own storage."""
    array = np.asarray(value)
    if is_transposed(key):
        array = array.T
    if str(array.dtype) != variable.dtype:
        # Through float32: exact for every half type, and TF casts it to bfloat16 by rounding.
        return tf.cast(array.astype(np.float32), variable.dtype)
    if adopt and array.dtype.kind == "f" and array.flags.c_contiguous and array.ctypes.data % 64 == 0:
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.convert_to_tensor(array)


def from_canonical(model: keras.Model, state: Mapping[str, Any], *, allow_missing: bool = False) -> keras.Model:
    """Load canonical arrays into `model` (in place; returns it), cast to each variable's dtype.

    Every key must be one the model owns, with its shape; every owned key must be present
    unless `allow_missing` (those keep their values). Nothing is assigned unless all of it fits.
    """
    _check_state(model, state, allow_missing)
    for key, value in state.items():
        variable = _variable(model, key)
        variable.assign(_value(variable, key, value))
    return model


def initialize_from_canonical(model: keras.Model, state: dict[str, np.ndarray]) -> keras.Model:
    """Create the variables of a model built under `keras.StatelessScope(initialize_variables=False)`
    (none made yet) from canonical arrays, and the variables of keys `state` lacks with their
    own initialisers; returns the model. For loading: no random weights are drawn only to be
    overwritten, and `state` is emptied as its arrays are used, each one becoming the variable's
    storage where its layout allows (`_value`), so the weights are in memory about once.
    The checks are `from_canonical`'s (missing keys allowed)."""
    _check_state(model, state, allow_missing=True)
    adopted: set[int] = set()
    for key in list(state):
        variable = _variable(model, key)
        array = state.pop(key)
        # Two keys of one array (a checkpoint's alias) must not share a variable's storage.
        fresh = id(array) not in adopted
        adopted.add(id(array))
        variable._initializer = lambda shape, dtype, v=variable, k=key, a=array, f=fresh: _value(v, k, a, adopt=f)
        del array
    # Keras' own pass over the variables its scope left uninitialised, in creation order.
    keras_variables.initialize_all_variables()
    return model


def call_numpy(model: keras.Model, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`model(**inputs)` for callers that hold no framework (`roberta_core.runtime`): NumPy arrays
    in (other values, such as `output_hidden_states=True`, pass as they are), the output fields
    out as NumPy arrays (per-layer fields as tuples of them), dropout off."""
    out = model(**{k: tf.convert_to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()},
                training=False)
    return {k: _numpy(v) for k, v in out.items() if v is not None}


def _numpy(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_numpy(v) for v in value)
    return value.numpy() if isinstance(value, (tf.Tensor, tf.Variable)) else value
