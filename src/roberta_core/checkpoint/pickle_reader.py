"""The restricted unpickler shared by `pytorch_model.bin` (torch_bin) and fairseq `model.pt`
(roberta_core.fairseq): it rebuilds a torch.save pickle into plain containers and inert tensor
records (`TensorRef`: a storage key, offset, shape and stride), never importing torch. A pickle
naming any global outside the allowed tensor-rebuild functions is refused, never run."""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ._common import CheckpointFormatError, DTYPES as _DTYPES, UnsafePickleError

# torch's typed storage classes (pickled as `torch.FloatStorage`) -> element dtype. Tensors of
# the other dtypes (uint16/32/64, float8) are pickled with an untyped byte storage and the dtype
# (`torch.uint16`) through `_rebuild_tensor_v3`.
TORCH_STORAGES: dict[str, np.dtype] = {
    "FloatStorage": _DTYPES["float32"], "DoubleStorage": _DTYPES["float64"],
    "HalfStorage": _DTYPES["float16"], "BFloat16Storage": _DTYPES["bfloat16"],
    "LongStorage": _DTYPES["int64"], "IntStorage": _DTYPES["int32"], "ShortStorage": _DTYPES["int16"],
    "CharStorage": _DTYPES["int8"], "ByteStorage": _DTYPES["uint8"], "BoolStorage": _DTYPES["bool"],
    "ComplexFloatStorage": _DTYPES["complex64"], "ComplexDoubleStorage": _DTYPES["complex128"],
}
STORAGE_FOR_DTYPE = {dt.name: name for name, dt in TORCH_STORAGES.items()}


class _Storage:
    """A storage a pickle refers to by key: its bytes are `<prefix>/data/<key>` in the zip.
    An untyped storage has dtype None and `numel` bytes until a tensor gives it its dtype."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _TensorRef:
    """A tensor the pickle described: a strided view of a storage, read on demand."""

    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage: _Storage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise CheckpointFormatError(f"tensor {what} must be a tuple of non-negative ints, got {value!r}")
    return tuple(value)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    """Stands in for torch._utils._rebuild_tensor(_v2): records the view, reads nothing yet.
    The trailing requires_grad / backward hooks / metadata do not matter for weights."""
    if not isinstance(storage, _Storage) or not isinstance(storage_offset, int) or storage_offset < 0:
        raise CheckpointFormatError(f"malformed tensor record: storage {storage!r}, offset {storage_offset!r}")
    shape, strides = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise CheckpointFormatError(f"tensor size {shape} and stride {strides} differ in rank")
    last = storage_offset + sum((n - 1) * s for n, s in zip(shape, strides)) if all(shape) else storage_offset - 1
    if last >= storage.numel:
        raise CheckpointFormatError(
            f"tensor view (offset {storage_offset}, size {shape}, stride {strides}) exceeds its storage of {storage.numel} elements"
        )
    return _TensorRef(storage, storage_offset, shape, strides)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, *_ignored) -> _TensorRef:
    """Stands in for torch._utils._rebuild_tensor_v3: a view of an untyped byte storage with the
    dtype given separately (offset and strides count elements of that dtype)."""
    if not (isinstance(dtype, tuple) and len(dtype) == 2 and dtype[0] is _DTYPE_MARK):
        raise CheckpointFormatError(f"malformed tensor record: dtype {dtype!r}")
    dtype = dtype[1]
    if isinstance(storage, _Storage) and storage.dtype is None:  # first use types the bytes
        if storage.numel % dtype.itemsize:
            raise CheckpointFormatError(f"storage {storage.key} of {storage.numel} bytes does not hold whole {dtype} elements")
        storage.dtype, storage.numel = dtype, storage.numel // dtype.itemsize
    elif isinstance(storage, _Storage) and storage.dtype != dtype:
        raise CheckpointFormatError(f"storage {storage.key} is used as {storage.dtype} and {dtype}")
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    """Stands in for torch._utils._rebuild_parameter(_with_state): a Parameter is its data."""
    if not isinstance(data, _TensorRef):
        raise CheckpointFormatError(f"malformed parameter record: {data!r}")
    return data


# find_class returns (mark, dtype) for `torch.<X>Storage` and for `torch.<dtype>`; the rebuild
# functions check the mark, so a pickle cannot pass anything else in their place.
_STORAGE_MARK = object()
_DTYPE_MARK = object()

# (module, name) -> what the unpickler binds it to. Nothing here can run code of the file's choosing.
_TORCH_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): (_STORAGE_MARK, dtype) for name, dtype in TORCH_STORAGES.items()},
    ("torch.storage", "UntypedStorage"): (_STORAGE_MARK, None),
    **{("torch", name): (_DTYPE_MARK, dtype) for name, dtype in _DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a torch.save pickle into plain containers and `_TensorRef`s. Any global outside
    `_TORCH_GLOBALS` (+ `extra_globals`) raises `UnsafePickleError` before it could be called."""

    def __init__(self, file, path: Path, extra_globals: Mapping[tuple[str, str], Any]):
        super().__init__(file)
        self._path = path
        self._globals = {**_TORCH_GLOBALS, **extra_globals}
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._path}: the pickle references {module}.{name}, which is not a tensor-rebuild function; "
                "refusing to load it (only tensors, storages and OrderedDict are allowed)"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', <storage class>, key, location, numel), as torch.save writes it
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], tuple) and pid[1][:1] == (_STORAGE_MARK,)
                and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[4] >= 0):
            raise CheckpointFormatError(f"{self._path}: unexpected persistent id in the pickle: {pid!r}")
        dtype, key, numel = pid[1][1], pid[2], pid[4]
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(key, dtype, numel)
        elif dtype is not None and storage.dtype != dtype:  # an untyped one is checked by _rebuild_tensor_v3
            raise CheckpointFormatError(f"{self._path}: storage {key} is used with two dtypes")
        return storage



def _refs(obj: Any) -> Iterator[_TensorRef]:
    if isinstance(obj, _TensorRef):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _refs(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _refs(v)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        for v in vars(obj).values():
            yield from _refs(v)


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))

