"""Keras variables <-> the canonical NumPy dict (ARCHITECTURE §3).

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

from roberta_core.weights import check_state, is_transposed, parameter_shapes

from ._framework import initialize_deferred, is_deferred

__all__ = ["to_canonical", "from_canonical", "variables", "call_numpy"]

# Canonical module names that are attributes of another name in the Keras tree: a Keras layer
# owns a read-only `output` property, so the blocks PyTorch calls `output` are `dense_output`.
_ATTRIBUTES = {"output": "dense_output"}


def _owned_shapes(model: keras.Model) -> dict[str, tuple[int, ...]]:
    """`parameter_shapes(config, head)`, less the pooler of a TFRobertaModel built without it."""
    return parameter_shapes(model.config, model.head, pooled=model.base_model.pooler is not None)


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


def from_canonical(
    model: keras.Model, state: Mapping[str, Any], *, allow_missing: bool = False, consume: bool = False
) -> keras.Model:
    """Load canonical arrays into `model` (in place; returns it), cast to each variable's dtype.

    Every key must be one the model owns, with its shape; every owned key must be present
    unless `allow_missing` (those keep their values). Nothing is assigned unless all of it fits.
    A variable of a model built under `keras.StatelessScope(initialize_variables=False)` (none
    made yet) is created from its array, and one whose key `state` lacks with its own
    initialiser: no random weights are drawn only to be overwritten. `consume` removes each
    entry from `state` once used and lets a created variable take the array's memory as its
    storage where its layout allows (`_value`), so `from_pretrained` holds the weights about once.
    """
    check_state(type(model).__name__, model.head, _owned_shapes(model), state, allow_missing=allow_missing)
    for key, value in state.items():  # before any variable changes: a string array is no weight
        dtype = np.asarray(value).dtype
        if dtype.kind not in "biuf" and dtype.name != "bfloat16":
            raise TypeError(f"{key} must hold numbers to load into {type(model).__name__}, got dtype {dtype}")
    initializers = {}
    adopted: set[int] = set()
    for key in list(state):
        variable = _variable(model, key)
        value = state.pop(key) if consume else state[key]
        if is_deferred(variable):
            # Two keys of one array (a checkpoint's alias) must not share a variable's storage.
            adopt = consume and id(value) not in adopted
            adopted.add(id(value))
            initializers[id(variable)] = lambda v=variable, k=key, a=value, f=adopt: _value(v, k, a, adopt=f)
        else:
            variable.assign(_value(variable, key, value))
        del value
    # The variables a stateless build left without values: from their arrays, or their initialisers.
    initialize_deferred(model, initializers)
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
