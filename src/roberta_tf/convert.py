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

from roberta_core.weights import is_transposed, parameter_shapes

__all__ = ["to_canonical", "from_canonical", "variables"]

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


def from_canonical(model: keras.Model, state: Mapping[str, Any], *, allow_missing: bool = False) -> keras.Model:
    """Load canonical arrays into `model` (in place; returns it), cast to each variable's dtype.

    Every key must be one the model owns, with its shape; every owned key must be present
    unless `allow_missing` (those keep their values). Nothing is assigned unless all of it fits.
    """
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
    for key, value in state.items():
        variable = _variable(model, key)
        array = np.asarray(value)
        if is_transposed(key):
            array = array.T
        # Through float32: exact for every half type, and TF casts it to bfloat16 by rounding.
        if str(array.dtype) != variable.dtype:
            array = array.astype(np.float32)
        variable.assign(tf.cast(array, variable.dtype))
    return model
