"""PyTorch module parameters <-> the canonical NumPy dict (ARCHITECTURE §3).

The PyTorch modules already carry the canonical names and layout (linear weights (out, in)), so
both directions are a walk over `parameter_shapes(config, head)`: no renaming, no transposing,
and no copies beyond what torch needs (CPU float32 tensors and arrays share memory).
bfloat16 travels as `ml_dtypes.bfloat16` arrays, NumPy having no bfloat16 of its own
(`_framework.as_array`/`as_tensor`).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn

from roberta_core.weights import check_state, parameter_shapes

from ._framework import as_array, as_tensor

__all__ = ["to_canonical", "from_canonical", "call_numpy"]


def _parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Canonical key -> the model's parameter. Tied parameters appear once, under their owner's
    name (the word embeddings, lm_head.bias)."""
    return dict(model.named_parameters())


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """`parameter_shapes(config, head)`, less the pooler of a RobertaModel built without it."""
    return parameter_shapes(model.config, model.head, pooled=model.base_model.pooler is not None)


def to_canonical(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's parameters as `{canonical key: array}`, exactly the keys of
    `parameter_shapes(model.config, model.head)` in that order (no pooler when the model has
    none), PyTorch layout."""
    params = _parameters(model)
    return {key: as_array(params[key]) for key in _shapes(model)}


def from_canonical(
    model: nn.Module,
    state: Mapping[str, Any],
    *,
    allow_missing: bool = False,
    dtype: Optional[torch.dtype] = None,
    device: Optional[torch.device] = None,
    consume: bool = False,
) -> nn.Module:
    """Load canonical arrays into `model` (in place; returns it).

    Every key must be one the model owns, with its shape; every owned key must be present
    unless `allow_missing` (those keep their values). A parameter on the meta device (a model
    built under `torch.device('meta')`) is replaced by the array itself, cast to `dtype` and
    moved to `device` only where they differ; any other parameter is copied into. `consume`
    removes each entry from `state` once loaded, so `from_pretrained` never holds two copies.
    """
    expected = _shapes(model)
    check_state(type(model).__name__, model.head, expected, state, allow_missing=allow_missing)
    for key in list(state):
        module_name, _, param_name = key.rpartition(".")
        module = model.get_submodule(module_name)
        param = getattr(module, param_name)
        tensor = as_tensor(state.pop(key) if consume else state[key])
        if param.is_meta:
            tensor = tensor.to(device=device or "cpu", dtype=dtype or param.dtype)
            setattr(module, param_name, nn.Parameter(tensor, requires_grad=param.requires_grad))
        else:
            with torch.no_grad():
                param.copy_(tensor)
    _computed_buffers(model)
    return model


def _computed_buffers(model: nn.Module) -> None:
    """Give the buffers that are computed, never loaded (the embeddings' v4 `position_ids` and
    `token_type_ids`), of a model built on the meta device, storage where its word table landed
    (a forward reading meta indices gets uninitialised memory from torch, silently). Buffers
    whose word table is still on meta wait for it (`from_pretrained` materialises it, then calls
    this again)."""
    for module in model.modules():
        rebuild = getattr(module, "_register_buffers", None)
        if rebuild is not None and module.position_ids.is_meta and not module.word_embeddings.weight.is_meta:
            rebuild(module.position_ids.shape[1], module.word_embeddings.weight.device)


def call_numpy(model: nn.Module, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`model(**inputs)` for callers that hold no framework (`roberta_core.runtime`): NumPy arrays
    in (other values, such as `output_hidden_states=True`, pass as they are), the output fields
    out as NumPy arrays (per-layer fields as tuples of them), no gradients recorded."""
    device = next(model.parameters()).device  # the model's inputs go where its weights are
    with torch.no_grad():
        out = model(**{k: as_tensor(v).to(device) if isinstance(v, np.ndarray) else v for k, v in inputs.items()})
    return {k: _numpy(v) for k, v in out.items() if v is not None}


def _numpy(value: Any) -> Any:
    value = _cache_tuples(value)
    if isinstance(value, (tuple, list)):
        return tuple(_numpy(v) for v in value)
    return as_array(value) if isinstance(value, torch.Tensor) else value


def _cache_tuples(value: Any) -> Any:
    """A returned cache object (v4's API: `to_legacy_cache()`, such as `modeling.RobertaCache`) as
    its legacy tuples, (k, v) or (k, v, cross_k, cross_v) per layer, without the empty
    cross-attention pair (None) of a decoder without cross-attention; any other value as it is."""
    if not hasattr(value, "to_legacy_cache"):
        return value
    return tuple(tuple(t for t in entry if t is not None) for entry in value.to_legacy_cache())
