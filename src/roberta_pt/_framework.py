"""PyTorch machinery that the model text uses but that is not the model: NumPy arrays as tensors
and back, the output classes as pytrees, the input checks (eager, and inside a compiled or
exported graph), dtype resolution, and the kernel of the LM head's vocabulary projection.
`modeling.py` and `heads.py` read as the model; this file holds what torch.compile,
torch.export and the dtype rules ask of them.
"""

from __future__ import annotations

import platform
from typing import Any, Mapping, Optional

import ml_dtypes
import numpy as np
import torch
import torch.nn.functional as F
import torch.utils._pytree as pytree  # no public API: registering a pytree node is only in torch.utils._pytree
from torch import nn
from torch.nn.modules import module as _module  # the global hooks a plain module call would run

from roberta_core.outputs import OUTPUT_CLASSES
from roberta_core.pretrained import whole_model_device
from roberta_core.validation import IGNORE_INDEX, check_range, range_message

__all__ = [
    "as_array",
    "as_tensor",
    "InputValueError",
    "check_values",
    "check_input_dtypes",
    "shape_of",
    "resolve_dtype",
    "resolve_device",
    "vocabulary_projection",
]


# ---------------------------------------------------------------------------- tensors and arrays

def as_array(tensor: torch.Tensor) -> np.ndarray:
    """A CPU tensor's memory as a NumPy array (a view where possible)."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def as_tensor(array: Any) -> torch.Tensor:
    """A NumPy array as a CPU tensor sharing its memory; a read-only array (a memory-mapped
    file) is copied, as parameters must be writable."""
    array = np.asarray(array)
    if not array.flags.writeable:
        array = array.copy()
    if array.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


# ---------------------------------------------------------------------------- outputs as pytrees

def _register_outputs() -> None:
    """Make the `roberta_core.outputs` classes torch pytree nodes, so a compiled or exported
    forward may return them (the fields present become the leaves, their names the context)."""
    for cls in OUTPUT_CLASSES:
        if cls in pytree.SUPPORTED_NODES:
            continue
        pytree.register_pytree_node(
            cls,
            lambda out: (list(out.values()), list(out.keys())),
            lambda values, keys, cls=cls: cls(zip(keys, values)),
            serialized_type_name=f"{cls.__module__}.{cls.__name__}",
            flatten_with_keys_fn=lambda out: ([(pytree.MappingKey(k), v) for k, v in out.items()], list(out.keys())),
        )


_register_outputs()


# ---------------------------------------------------------------------------- input checks

# Dtypes an embedding lookup takes as indices.
INDEX_DTYPES = (torch.int64, torch.int32)


class InputValueError(ValueError, RuntimeError):
    """Input values out of range, found inside a compiled or exported graph. A ValueError like the
    eager check's; also a RuntimeError, as the in-graph assertion it replaces raised."""


# The check reads the values on the host, so no CUDA graph may capture it (the tag exists from
# torch 2.8; before it Inductor's CUDA graphs are opt-in, `mode="reduce-overhead"`).
_HOST_SYNC = {"tags": (torch.Tag.cudagraph_unsafe,)} if hasattr(torch.Tag, "cudagraph_unsafe") else {}


@torch.library.custom_op("roberta_pt::check_values", mutates_args=(), **_HOST_SYNC)
def _checked_values(values: torch.Tensor, name: str, upper: int, lower: int, allow_ignore: bool) -> torch.Tensor:
    """`check_values` as an operator of its own, for compiled and exported graphs: the graph keeps
    it (the lookup reads its output) and runs it as a Python call, so a bad value raises an
    InputValueError. An in-graph assertion cannot: Inductor compiles it into a C++ `throw` that
    aborts the process on CPU, a device-side assert on GPU. Returns a copy of `values` (an
    operator's output may not alias its input); the copy of a (B, T) id tensor costs nothing."""
    shown = values.masked_fill(values == IGNORE_INDEX, lower) if allow_ignore else values
    if shown.numel():
        lo, hi = torch.stack(list(torch.aminmax(shown))).tolist()
        if lo < lower or hi >= upper:
            raise InputValueError(f"{range_message(name, upper, lower, allow_ignore)}; got values from {lo} to {hi}")
    return values.clone()


@_checked_values.register_fake
def _(values: torch.Tensor, name: str, upper: int, lower: int, allow_ignore: bool) -> torch.Tensor:
    return torch.empty_like(values)


def check_values(
    name: str, values: torch.Tensor, upper: int, *, lower: int = 0, allow_ignore: bool = False, index: bool = True
) -> torch.Tensor:
    """Fail fast when integer `values` (ids, token types, labels) leave [lower, upper); returns
    the values to compute with (use them: under compilation they carry the check).

    `index`: the values index an embedding table, so they must be int64 or int32 (a narrower
    integer type is a TypeError here, not a dispatcher error later). With `allow_ignore`, -100 is
    allowed too. Eagerly this is one host sync for min and max, before any kernel indexes with the
    values — so a GPU raises a ValueError instead of a device-side assert. Under torch.compile and
    torch.export it is one operator in the graph that does the same (an `InputValueError`). Not in a
    graph for ONNX (`torch.onnx.export`'s dynamo exporter), which has no operator to raise with and
    cannot translate ours: the exported graph takes the values as given, as transformers' does.
    """
    if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
        allowed = " (int64 or int32)" if index else ""
        raise TypeError(f"{name} must be an integer tensor{allowed}, got {values.dtype}")
    if index and values.dtype not in INDEX_DTYPES:
        raise TypeError(f"{name} must be an int64 or int32 tensor (it indexes a table), got {values.dtype}")
    if _is_exporting() and torch.onnx.is_in_onnx_export():
        return values
    if torch.compiler.is_compiling():
        return _checked_values(values, name, upper, lower, allow_ignore)
    shown = values.masked_fill(values == IGNORE_INDEX, lower) if allow_ignore else values  # min over the others
    if shown.numel():
        lo, hi = torch.stack(list(torch.aminmax(shown))).tolist()
        check_range(name, lo, hi, upper, lower=lower, allow_ignore=allow_ignore)
    return values


def check_input_dtypes(
    attention_mask: Optional[torch.Tensor], inputs_embeds: Optional[torch.Tensor]
) -> Optional[torch.Tensor]:
    """The dtypes of the inputs that are not ids: `inputs_embeds` must be floating (a TypeError
    naming it otherwise: an integer tensor would be promoted silently); `attention_mask` may be
    integer, floating or bool (it is read as `!= 0`), returned as given. A complex mask is a
    TypeError."""
    if inputs_embeds is not None and not inputs_embeds.is_floating_point():
        raise TypeError(
            f"inputs_embeds must be a floating tensor (float16, bfloat16, float32 or float64), "
            f"got {inputs_embeds.dtype}; pass token ids as input_ids"
        )
    if attention_mask is not None and attention_mask.is_complex():
        raise TypeError(f"attention_mask must be an integer, floating or bool tensor, got {attention_mask.dtype}")
    return attention_mask


def shape_of(tensor: Optional[torch.Tensor]) -> Optional[tuple[int, ...]]:
    """The shape as a tuple of ints, for `roberta_core.validation`; None for None."""
    return None if tensor is None else tuple(tensor.shape)


# ---------------------------------------------------------------------------- dtypes

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


def resolve_dtype(dtype: Any, state: Mapping[str, Any], config_dtype: Any = None) -> torch.dtype:
    """`from_pretrained`'s dtype: None is float32 (as v4), 'auto' the checkpoint's own — its
    config's `dtype` (`torch_dtype`) where it names one, else the weights' (v4 4.57's order)."""
    if dtype == "auto" and config_dtype not in (None, "auto"):
        if not isinstance(config_dtype, torch.dtype) and str(config_dtype) not in _DTYPES:
            raise ValueError(f"the checkpoint's config names dtype {config_dtype!r}; dtype='auto' needs one of "
                             f"{', '.join(_DTYPES)}")
        dtype = config_dtype if isinstance(config_dtype, torch.dtype) else _DTYPES[str(config_dtype)]
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating point type, got {dtype}")
        return dtype
    if dtype == "auto":
        return next((as_tensor(a).dtype for a in state.values()), torch.float32)
    if dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype must be a torch floating dtype, 'auto' or one of {', '.join(_DTYPES)}; got {dtype!r}")


# ---------------------------------------------------------------------------- placement

_DEVICE_MAP_VALUES = "'cpu', 'cuda', 'cuda:N', 'mps', 'auto', a GPU index, a torch.device or {'': device}"


def resolve_device(device: Any, device_map: Any) -> torch.device:
    """Where `from_pretrained` puts the weights: `device`, or v4's `device_map` ('auto': the GPU
    when there is one, else the CPU; 'cpu', 'cuda', 'cuda:1', an int GPU index, a torch.device,
    or `{"": device}`, the whole model on one device). The model is not split over devices: a
    map that places modules apart is refused, as is a device torch cannot reach."""
    if device_map is None:
        return torch.device(device) if device is not None else torch.device("cpu")
    device_map = whole_model_device(device_map)
    if isinstance(device_map, str) and device_map == "auto":
        device_map = "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device_map, bool) or not isinstance(device_map, (str, int, torch.device)):
        raise ValueError(f"device_map must be {_DEVICE_MAP_VALUES}; got {device_map!r}")
    if isinstance(device_map, int) and device_map < 0:
        raise ValueError(f"device_map must be {_DEVICE_MAP_VALUES}; got {device_map!r}")
    try:
        placed = torch.device("cuda", device_map) if isinstance(device_map, int) else torch.device(device_map)
    except RuntimeError as error:
        raise ValueError(f"device_map must be {_DEVICE_MAP_VALUES}; got {device_map!r} ({error})") from None
    if placed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device_map={device_map!r} asks for a GPU, but torch sees none (use 'cpu' or 'auto')")
    if placed.type == "cuda" and placed.index is not None and placed.index >= torch.cuda.device_count():
        raise ValueError(f"device_map={device_map!r}: there are {torch.cuda.device_count()} GPU(s)")
    if device is not None and torch.device(device) != placed:
        raise ValueError(f"device={device!r} and device_map={device_map!r} disagree; give one of them")
    return placed


# ---------------------------------------------------------------------------- the vocabulary projection

def _onednn_linear_probe() -> bool:
    """Whether `torch.ops.mkldnn._linear_pointwise` (the kernel Inductor's frozen graphs call) runs
    here and agrees with `F.linear` on a small product. x86 only: elsewhere oneDNN sits on other
    libraries, unmeasured. Probed once, at import (never inside a graph being traced)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    try:
        with torch.no_grad():  # fixed numbers: the probe leaves the global random state alone
            cpu = dict(dtype=torch.float32, device="cpu")
            x = torch.arange(15, **cpu).reshape(3, 5) / 7 - 1
            w, b = torch.arange(35, **cpu).reshape(7, 5).cos(), torch.arange(7, **cpu).sin()
            y = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
            return tuple(y.shape) == (3, 7) and bool(torch.allclose(y, F.linear(x, w, b), atol=1e-5))
    except Exception:  # noqa: BLE001 - an op missing or changed in this build: MKL's product then
        return False


_onednn_linear = _onednn_linear_probe()
# A torch without `torch.compiler.is_exporting`: every traced graph records the plain product.
_is_exporting = getattr(torch.compiler, "is_exporting", torch.compiler.is_compiling)


@torch.library.custom_op("roberta3::onednn_linear", mutates_args=())
def _onednn_linear_op(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """oneDNN's `x @ weight.T + bias`, as one opaque op: torch.compile keeps it as written (Inductor
    cannot lower `mkldnn._linear_pointwise` with an unpacked weight itself)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@_onednn_linear_op.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def _plain_call(layer: nn.Module) -> bool:
    """Whether `layer(x)` would be the class's `forward(x)` and nothing more: no hook of its own or
    a global one (the condition of `nn.Module.__call__`'s own fast path), no `forward` set on the
    instance (accelerate's offloading hooks wrap it so)."""
    return "forward" not in vars(layer) and not (
        layer._forward_hooks or layer._forward_pre_hooks or layer._backward_hooks or layer._backward_pre_hooks
        or _module._global_forward_hooks or _module._global_forward_pre_hooks
        or _module._global_backward_hooks or _module._global_backward_pre_hooks
    )


# A torch without `_are_functorch_transforms_active`: the current transform level (eager only).
_transforms_active = getattr(torch._C, "_are_functorch_transforms_active",
                             lambda: torch._C._functorch.maybe_current_level() is not None)


def _plain_tensors(compiling: bool, *tensors: Optional[torch.Tensor]) -> bool:
    """Plain CPU tensors with nothing around them that would see or differentiate `F.linear` and
    not know the oneDNN op: no `torch.func` transform (vmap, grad, jvp: their tensors look plain),
    no forward-mode AD level, no torch-function mode (`with torch.device`, profilers), no
    dispatch mode (FlopCounterMode; checked eagerly only: dynamo cannot read the stack, and a mode
    around a compiled call sees the compiled graph's ops), no tensor subclass (torchao's weights).
    Evaluated under torch.compile too, so each change recompiles."""
    return (
        not _transforms_active()
        and getattr(torch.autograd.forward_ad, "_current_level", -1) < 0
        and not torch._C._is_torch_function_mode_enabled()
        and (compiling or torch._C._len_torch_dispatch_stack() == 0)
        and all(t is None or (type(t) in (torch.Tensor, nn.Parameter) and t.device.type == "cpu") for t in tensors)
    )


def vocabulary_projection(decoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`decoder(x)` for the LM head's (V, H) decoder: (..., H) -> (..., V).

    Why not just `decoder(x)`: on CPU, MKL's sgemm writing V = 50,265 columns runs at 60-90% of
    its speed on aligned widths (an odd output row stride), and at 40-65% for a few rows (the
    fill-mask pipeline, generation steps); oneDNN's kernel does not slow down so (1.2x at 1,024 rows,
    1.5-2.2x at 1-128 rows; benchmarks/RESULTS.md). It is taken only where it is the same
    computation: an x86 CPU, float32 tensors on it, no gradient wanted (backward or forward
    mode), no autocast, oneDNN not switched off (`torch.backends.mkldnn.enabled`), a plain
    `nn.Linear` called without hooks (LoRA wraps the decoder in another module,
    `quantize_dynamic` swaps its class, torchao swaps its weight's class: all go through
    `decoder(x)`), and not inside torch.export or a trace, which record `decoder(x)` as is for
    other runtimes (ONNX, AOTInductor). torch.compile keeps the kernel as one op."""
    weight, bias = getattr(decoder, "weight", None), getattr(decoder, "bias", None)
    if (
        _onednn_linear
        and type(decoder) is nn.Linear
        and _plain_call(decoder)
        and _plain_tensors(torch.compiler.is_compiling(), x, weight, bias)
        and x.dim() >= 2
        and weight.dim() == 2 and weight.is_contiguous() and x.shape[-1] == weight.shape[1]
        and x.dtype == weight.dtype == torch.float32
        and (bias is None or (bias.dtype == torch.float32 and bias.is_contiguous()))
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)))
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.mkldnn.enabled
        and not (_is_exporting() or torch.jit.is_tracing())
    ):
        return _onednn_linear_op(x, weight, bias)
    return decoder(x)
