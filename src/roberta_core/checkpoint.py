"""Checkpoint files <-> the canonical state dict, with NumPy only.

The canonical form is `dict[str, np.ndarray]` keyed by Hugging Face PyTorch names with linear
weights `(out, in)` (see `roberta_core.weights`). This module reads and writes the four files a
`transformers` v4 checkpoint directory may hold, without importing torch, TensorFlow or JAX:

- `model.safetensors`, or shards `model-0000k-of-0000n.safetensors` + `model.safetensors.index.json`;
- `pytorch_model.bin`: the zip archive `torch.save` writes, unpickled by a restricted unpickler
  that only knows how to rebuild tensors (a pickle naming any other global is refused, never run);
- `tf_model.h5`: the Keras 2 weights file transformers' TF models write (h5py);
- `flax_model.msgpack`: Flax's msgpack serialisation of the parameter tree.

bf16 and fp16 arrays stay bf16 (`ml_dtypes.bfloat16`) and fp16. Writers are atomic: they write a
temporary file in the target folder, fsync it and rename it into place, so a failure leaves the
folder as it was. Corrupt or hostile files raise `CheckpointFormatError` naming the file.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pickle
import re
import shutil
import struct
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import ml_dtypes  # registers bfloat16 & co. with NumPy (safetensors' numpy API needs the name)
import numpy as np

from . import weights
from .fileio import atomic_path as _atomic_path
from .fileio import fsync_dir as _fsync_dir

__all__ = [
    "CheckpointFormatError",
    "UnsafePickleError",
    "WEIGHTS_FILES",
    "FORMATS",
    "find_weights_file",
    "iter_state_dict",
    "load_state_dict",
    "save_state_dict",
    "read_safetensors",
    "read_safetensors_index",
    "write_safetensors",
    "write_safetensors_sharded",
    "read_torch_bin",
    "write_torch_bin",
    "read_tf_h5",
    "write_tf_h5",
    "read_flax_msgpack",
    "write_flax_msgpack",
    "parse_size",
]

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TF_H5 = "tf_model.h5"
FLAX_MSGPACK = "flax_model.msgpack"

# What a checkpoint directory may hold, in the order `find_weights_file` prefers them.
WEIGHTS_FILES = (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TF_H5, FLAX_MSGPACK)

# save_state_dict format -> file written
FORMATS = {"safetensors": SAFETENSORS, "bin": TORCH_BIN, "h5": TF_H5, "msgpack": FLAX_MSGPACK}


class CheckpointFormatError(ValueError):
    """A weights file is truncated, corrupt, of an unsupported kind, or names unknown parameters."""


class UnsafePickleError(CheckpointFormatError):
    """A `pytorch_model.bin` pickle references a global that is not a tensor-rebuild function."""


# ---------------------------------------------------------------------------- dtypes

# Every dtype a weights file may carry, by the name NumPy/Flax/safetensors use.
_DTYPES: dict[str, np.dtype] = {
    np.dtype(t).name: np.dtype(t)
    for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
        np.float16, np.float32, np.float64, np.complex64, np.complex128,
        ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2,
    )
}

# torch's typed storage classes (pickled as `torch.FloatStorage`) -> element dtype. Tensors of
# the other dtypes (uint16/32/64, float8) are pickled with an untyped byte storage and the dtype
# (`torch.uint16`) through `_rebuild_tensor_v3`.
_TORCH_STORAGES: dict[str, np.dtype] = {
    "FloatStorage": _DTYPES["float32"], "DoubleStorage": _DTYPES["float64"],
    "HalfStorage": _DTYPES["float16"], "BFloat16Storage": _DTYPES["bfloat16"],
    "LongStorage": _DTYPES["int64"], "IntStorage": _DTYPES["int32"], "ShortStorage": _DTYPES["int16"],
    "CharStorage": _DTYPES["int8"], "ByteStorage": _DTYPES["uint8"], "BoolStorage": _DTYPES["bool"],
    "ComplexFloatStorage": _DTYPES["complex64"], "ComplexDoubleStorage": _DTYPES["complex128"],
}
_STORAGE_FOR_DTYPE = {dt.name: name for name, dt in _TORCH_STORAGES.items()}


def _check_state(state: Mapping[str, Any]) -> None:
    """Writers take str keys and numeric NumPy arrays only."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a mapping of str -> numpy.ndarray, got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"state keys must be str, got {key!r} ({type(key).__name__})")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"state[{key!r}] must be a numpy.ndarray, got {type(value).__name__}")
        if value.dtype.name not in _DTYPES:
            raise TypeError(f"state[{key!r}] has dtype {value.dtype}; allowed: {', '.join(_DTYPES)}")


# ---------------------------------------------------------------------------- atomic files


# ---------------------------------------------------------------------------- safetensors

_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(size: int | str) -> int:
    """Bytes in `size`: an int, or a string like '2GB', '500MB', '1.5GiB' (decimal KB/MB/GB/TB as
    Hugging Face uses them; KiB/MiB/GiB/TiB binary)."""
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise TypeError(f"max_shard_size must be an int or a string like '2GB', got {size!r}")
    if isinstance(size, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]I?B)\s*", size, flags=re.IGNORECASE)
        if m is None:
            raise ValueError(f"max_shard_size {size!r} is not a size like '2GB', '500MB' or '1GiB'")
        size = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()])
    if size <= 0:
        raise ValueError(f"max_shard_size must be positive, got {size}")
    return size


def _safe_open(path: Path):
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="numpy")
    except Exception as e:  # safetensors raises its own SafetensorError (an Exception)
        raise CheckpointFormatError(f"{path}: not a readable safetensors file (truncated or corrupt?): {e}") from None


def _empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary: XLA and
    TensorFlow adopt such memory as a CPU tensor without copying it (torch adopts any)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes].view(dtype).reshape(shape)


# safetensors dtype tags -> NumPy dtypes
_ST_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2), "I64": np.dtype(np.int64), "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16), "I8": np.dtype(np.int8), "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32), "U16": np.dtype(np.uint16), "U8": np.dtype(np.uint8), "BOOL": np.dtype(np.bool_),
}


def read_safetensors(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, array) from a safetensors file, one tensor at a time.

    The `safetensors` library validates the file (header, offsets, sizes); the bytes are then read
    with plain reads into fresh arrays rather than through a memory map, so loading a checkpoint
    costs one copy of the weights in memory, not the copy plus every mapped page."""
    path = Path(path)
    with _safe_open(path) as f:
        fmt = (f.metadata() or {}).get("format", "pt")
        if fmt not in ("pt", "np", "numpy"):
            raise CheckpointFormatError(
                f"{path}: safetensors written by transformers' {fmt!r} classes (metadata format={fmt!r}) "
                "carry that framework's names; supported are PyTorch-named files (format 'pt')"
            )
    with open(path, "rb") as raw:
        (header_len,) = struct.unpack("<Q", raw.read(8))
        header = json.loads(raw.read(header_len))
        header.pop("__metadata__", None)
        base = 8 + header_len
        for key, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            dtype = _ST_DTYPES.get(info["dtype"])
            if dtype is None:
                raise CheckpointFormatError(f"{path}: tensor {key!r} has unsupported dtype {info['dtype']!r}")
            start, end = info["data_offsets"]
            array = _empty(tuple(info["shape"]), dtype)
            raw.seek(base + start)
            if array.nbytes != end - start or raw.readinto(array.reshape(-1).view(np.uint8)) != end - start:
                raise CheckpointFormatError(f"{path}: cannot read tensor {key!r}: file truncated or offsets wrong")
            yield key, array


def read_safetensors_index(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, array) from a sharded checkpoint described by `model.safetensors.index.json`."""
    path = Path(path)
    try:
        weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise TypeError("weight_map is not a mapping of names to shard files")
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointFormatError(f"{path}: not a safetensors index (JSON with a 'weight_map'): {e}") from None
    shards: dict[str, list[str]] = {}
    for key, shard in weight_map.items():
        if Path(shard).name != shard:
            raise CheckpointFormatError(f"{path}: shard {shard!r} is not a file name in the same folder")
        shards.setdefault(shard, []).append(key)
    missing = [s for s in shards if not (path.parent / s).is_file()]
    if missing:
        raise CheckpointFormatError(f"{path}: shard file(s) missing: {', '.join(missing)}")
    for shard, keys in shards.items():
        wanted = set(keys)
        for key, array in read_safetensors(path.parent / shard):
            if key in wanted:
                wanted.discard(key)
                yield key, array
        if wanted:
            raise CheckpointFormatError(f"{path.parent / shard}: lacks tensors the index puts there: {sorted(wanted)[:8]}")


def write_safetensors(state: Mapping[str, np.ndarray], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write one safetensors file, atomically. Its metadata always says `"format": "pt"` (transformers
    refuses files without a format), plus any `metadata` given."""
    from safetensors.numpy import save_file

    _check_state(state)
    path = Path(path)
    tensors = {k: np.asarray(v, order="C") for k, v in state.items()}
    with _atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", **(metadata or {})})
    return path


def _shards(state: Mapping[str, np.ndarray], max_bytes: int) -> list[list[str]]:
    """Greedy split in key order, as Hugging Face does: a tensor larger than the limit gets a shard of its own."""
    shards: list[list[str]] = [[]]
    size = 0
    for key, value in state.items():
        if shards[-1] and size + value.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += value.nbytes
    return shards


def write_safetensors_sharded(
    state: Mapping[str, np.ndarray], directory: str | os.PathLike, max_shard_size: int | str
) -> list[Path]:
    """Write `model-0000k-of-0000n.safetensors` + `model.safetensors.index.json` (or a single
    `model.safetensors` when everything fits one shard). All files are written into a temporary
    folder first and moved into place when complete, the index last; stale shards of an earlier
    save are removed afterwards."""
    _check_state(state)
    directory = Path(directory)
    groups = _shards(state, parse_size(max_shard_size))
    if len(groups) == 1:
        written = [write_safetensors(state, directory / SAFETENSORS)]
        _remove_stale(directory, keep=written)
        return written
    names = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    index = {
        "metadata": {"total_parameters": int(sum(v.size for v in state.values())),
                     "total_size": int(sum(v.nbytes for v in state.values()))},
        "weight_map": {key: name for name, keys in zip(names, groups) for key in keys},
    }
    from safetensors.numpy import save_file

    with _staging_dir(directory) as staging:
        for name, keys in zip(names, groups):
            save_file({k: np.asarray(state[k], order="C") for k in keys}, str(staging / name), metadata={"format": "pt"})
        (staging / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written = _publish(staging, directory, names + [SAFETENSORS_INDEX])
    _remove_stale(directory, keep=written)
    return written


@contextlib.contextmanager
def _staging_dir(directory: Path) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".roberta-save-", dir=directory))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, directory: Path, names: list[str]) -> list[Path]:
    for name in names:
        with open(staging / name, "rb+") as f:
            os.fsync(f.fileno())
    for name in names:
        os.replace(staging / name, directory / name)
    _fsync_dir(directory)
    return [directory / n for n in names]


def _remove_stale(directory: Path, keep: list[Path]) -> None:
    """After a safetensors save, drop the other layout's files so the folder holds one checkpoint."""
    stale = [directory / SAFETENSORS, directory / SAFETENSORS_INDEX, *directory.glob("model-*-of-*.safetensors")]
    for path in stale:
        if path not in keep:
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- pytorch_model.bin


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
    **{("torch", name): (_STORAGE_MARK, dtype) for name, dtype in _TORCH_STORAGES.items()},
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


class _TorchArchive:
    """An open torch.save zip: the unpickled object (with `_TensorRef`s) and on-demand array reads.
    A storage's bytes are read once and dropped when its last tensor has been materialised."""

    def __init__(self, path: Path, extra_globals: Mapping[tuple[str, str], Any]):
        self.path = path
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                head = f.read(16)
            if head[:1] == b"\x80":  # a bare pickle stream
                raise CheckpointFormatError(
                    f"{path}: a legacy (pre-zip, torch < 1.6) torch.save pickle; that format is unsupported. "
                    "Re-save it with torch >= 1.6 (torch.save(torch.load(f), f)) or convert it to safetensors"
                )
            raise CheckpointFormatError(f"{path}: not a torch.save zip archive (truncated or corrupt?)")
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as e:
            raise CheckpointFormatError(f"{path}: truncated or corrupt torch zip archive: {e}") from None
        try:
            self._read(extra_globals)
            self._uses = collections.Counter(ref.storage.key for ref in _refs(self.obj))
        except RecursionError:
            self.zip.close()
            raise CheckpointFormatError(f"{path}: the pickle nests too deeply or refers to itself") from None
        except BaseException:
            self.zip.close()
            raise
        self._cache: dict[str, np.ndarray] = {}

    def _read(self, extra_globals: Mapping[tuple[str, str], Any]) -> None:
        """Find the pickle and the byte order, unpickle into `self.obj`."""
        path = self.path
        pkl = [n for n in self.zip.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointFormatError(f"{path}: zip archive without <name>/data.pkl; not written by torch.save")
        self.prefix = pkl[0][: -len("data.pkl")]
        try:
            names = set(self.zip.namelist())
            order = self.zip.read(self.prefix + "byteorder").decode() if self.prefix + "byteorder" in names else "little"
            if order not in ("little", "big"):
                raise CheckpointFormatError(f"{path}: unknown byteorder record {order!r}")
            self.byteorder = "<" if order == "little" else ">"
            with self.zip.open(pkl[0]) as f:
                self.obj = _RestrictedUnpickler(f, path, extra_globals).load()
        except CheckpointFormatError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError) as e:
            raise CheckpointFormatError(f"{path}: truncated or corrupt torch zip archive: {e}") from None
        except pickle.UnpicklingError as e:
            raise CheckpointFormatError(f"{path}: corrupt pickle in the archive: {e}") from None
        except (TypeError, AttributeError, IndexError, KeyError, ValueError) as e:
            raise CheckpointFormatError(f"{path}: malformed pickle in the archive: {e}") from None

    def close(self) -> None:
        self.zip.close()

    def _storage(self, storage: _Storage) -> np.ndarray:
        data = self._cache.get(storage.key)
        if data is None:
            name = f"{self.prefix}data/{storage.key}"
            dtype = storage.dtype.newbyteorder(self.byteorder) if storage.dtype.itemsize > 1 else storage.dtype
            data = np.empty(storage.numel, dtype=dtype)
            try:
                with self.zip.open(name) as f:
                    got = f.readinto(memoryview(data.view(np.uint8)))
                    extra = f.read(1)
            except KeyError:
                raise CheckpointFormatError(f"{self.path}: storage record {name} is missing") from None
            except (zipfile.BadZipFile, EOFError, OSError) as e:
                raise CheckpointFormatError(f"{self.path}: cannot read {name} (truncated or corrupt?): {e}") from None
            if got != data.nbytes or extra:
                raise CheckpointFormatError(
                    f"{self.path}: storage {name} holds a different number of bytes than its {storage.numel} "
                    f"{storage.dtype} elements need ({data.nbytes})"
                )
            if self.byteorder == ">":
                data = data.astype(storage.dtype)
            self._cache[storage.key] = data
        return data

    def materialize(self, ref: _TensorRef) -> np.ndarray:
        """The array `ref` describes, as an owned C-contiguous array."""
        data = self._storage(ref.storage)
        self._uses[ref.storage.key] -= 1
        last_use = self._uses[ref.storage.key] == 0
        if last_use:
            del self._cache[ref.storage.key]
        size = int(np.prod(ref.shape))
        contiguous = ref.stride == _contiguous_strides(ref.shape)
        if last_use and ref.offset == 0 and size == data.size and contiguous:
            return data.reshape(ref.shape)  # the common case: a tensor owns its whole storage
        if not size:
            return np.empty(ref.shape, dtype=data.dtype)
        # Stride over opaque items: as_strided cannot describe ml_dtypes' types (bf16, float8).
        items = data.view(f"V{data.itemsize}")[ref.offset:]
        view = np.lib.stride_tricks.as_strided(items, shape=ref.shape, strides=[s * data.itemsize for s in ref.stride])
        return np.array(view, order="C").view(data.dtype)

    def resolve(self, obj: Any) -> Any:
        """`obj` with every `_TensorRef` replaced by its array (containers rebuilt)."""
        if isinstance(obj, _TensorRef):
            return self.materialize(obj)
        if isinstance(obj, dict):
            out = type(obj)() if type(obj) in (dict, collections.OrderedDict) else {}
            for k, v in obj.items():
                out[k] = self.resolve(v)
            return out
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.resolve(v) for v in obj)
        if hasattr(obj, "__dict__") and not isinstance(obj, type):
            for k, v in vars(obj).items():
                setattr(obj, k, self.resolve(v))
        return obj


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


def read_torch_bin(
    path: str | os.PathLike, *, extra_globals: Mapping[tuple[str, str], Any] | None = None
) -> Any:
    """The object a `torch.save` zip file holds, with tensors as NumPy arrays.

    Only tensor-rebuild functions, torch storage classes and `OrderedDict` may appear in the
    pickle; `extra_globals` maps further `(module, name)` pairs to the objects to use (e.g.
    `{("argparse", "Namespace"): argparse.Namespace}` for fairseq checkpoints).
    """
    archive = _TorchArchive(Path(path), extra_globals or {})
    try:
        return archive.resolve(archive.obj)
    finally:
        archive.close()


def _iter_torch_bin(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, array) of a state-dict .bin, reading each storage only when it is needed."""
    archive = _TorchArchive(path, {})
    try:
        state = archive.obj
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, _TensorRef) for k, v in state.items()):
            raise CheckpointFormatError(f"{path}: holds a {type(state).__name__}, not a state dict of name -> tensor")
        for key, ref in state.items():
            yield key, archive.materialize(ref)
    finally:
        archive.close()


class _PickleWriter:
    """Just enough of pickle protocol 2 to write a torch state dict without importing torch."""

    def __init__(self) -> None:
        self.out = bytearray(pickle.PROTO + b"\x02")

    def int(self, n: int) -> None:
        if 0 <= n < 2**8:
            self.out += pickle.BININT1 + n.to_bytes(1, "little")
        elif 0 <= n < 2**16:
            self.out += pickle.BININT2 + n.to_bytes(2, "little")
        elif -(2**31) <= n < 2**31:
            self.out += pickle.BININT + n.to_bytes(4, "little", signed=True)
        else:
            data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            self.out += pickle.LONG1 + bytes([len(data)]) + data

    def str(self, s: str) -> None:
        data = s.encode("utf-8")
        self.out += pickle.BINUNICODE + struct.pack("<I", len(data)) + data

    def glob(self, module: str, name: str) -> None:
        self.out += pickle.GLOBAL + f"{module}\n{name}\n".encode()

    def ints(self, values: tuple[int, ...]) -> None:
        self.out += pickle.MARK
        for v in values:
            self.int(v)
        self.out += pickle.TUPLE

    def tensor(self, key: str, array: np.ndarray) -> None:
        # _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict()) with a typed
        # storage, or, for dtypes torch has no typed storage for, _rebuild_tensor_v3(..., dtype)
        # with an untyped one of `nbytes` bytes, as torch.save does.
        typed = _STORAGE_FOR_DTYPE.get(array.dtype.name)
        self.glob("torch._utils", "_rebuild_tensor_v2" if typed else "_rebuild_tensor_v3")
        self.out += pickle.MARK + pickle.MARK
        self.str("storage")
        if typed:
            self.glob("torch", typed)
        else:
            self.glob("torch.storage", "UntypedStorage")
        self.str(key)
        self.str("cpu")
        self.int(array.size if typed else array.nbytes)
        self.out += pickle.TUPLE + pickle.BINPERSID
        self.int(0)
        self.ints(array.shape)
        self.ints(_contiguous_strides(array.shape))
        self.out += pickle.NEWFALSE
        self.glob("collections", "OrderedDict")
        self.out += pickle.EMPTY_TUPLE + pickle.REDUCE
        if not typed:
            self.glob("torch", array.dtype.name)
        self.out += pickle.TUPLE + pickle.REDUCE

    def state_dict(self, names: list[str], arrays: list[np.ndarray]) -> bytes:
        self.out += pickle.EMPTY_DICT
        if names:
            self.out += pickle.MARK
            for i, (name, array) in enumerate(zip(names, arrays)):
                self.str(name)
                self.tensor(str(i), array)
            self.out += pickle.SETITEMS
        self.out += pickle.STOP
        return bytes(self.out)


def _little_endian(array: np.ndarray) -> np.ndarray:
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and sys.byteorder == "big"):
        return array.astype(array.dtype.newbyteorder("<"))
    return array


_ALIGN = 64  # torch aligns each record's data to 64 bytes (so it can be memory-mapped)


def _write_aligned(zf: zipfile.ZipFile, name: str, data: bytes | memoryview) -> None:
    """Store `data` uncompressed with an 'FB' padding extra field, as torch does, so that the
    bytes start at a multiple of 64 in the file."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    size = len(data)
    zip64 = size * 1.05 > zipfile.ZIP64_LIMIT  # zipfile adds a 20-byte zip64 extra field then
    header = 30 + len(name.encode()) + 4 + (20 if zip64 else 0)
    pad = -(zf.fp.tell() + header) % _ALIGN
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, data)


def write_torch_bin(state: Mapping[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write a `torch.save`-compatible zip (`torch.load(..., weights_only=True)` reads it), atomically.
    Every tensor gets a storage of its own, little-endian, C-contiguous."""
    _check_state(state)
    path = Path(path)
    names = list(state)
    arrays = [np.asarray(_little_endian(state[k]), order="C") for k in names]
    archive = path.stem  # torch names the archive folder after the file
    with _atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_aligned(zf, f"{archive}/data.pkl", _PickleWriter().state_dict(names, arrays))
            _write_aligned(zf, f"{archive}/.format_version", b"1")
            _write_aligned(zf, f"{archive}/.storage_alignment", str(_ALIGN).encode())
            _write_aligned(zf, f"{archive}/byteorder", b"little")
            for i, array in enumerate(arrays):
                _write_aligned(zf, f"{archive}/data/{i}", memoryview(array.reshape(-1).view(np.uint8)))
            _write_aligned(zf, f"{archive}/version", b"3\n")
    return path


# ---------------------------------------------------------------------------- tf_model.h5

# Keras 2 splits an attribute list over `name0`, `name1`, ... when it exceeds the HDF5 header limit.
_HDF5_ATTR_LIMIT = 64512
_KERAS_VERSION = b"2.21.0"  # the tf-keras release whose file layout this mirrors (recorded, never checked)


def _h5_names(group, name: str) -> list[str]:
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks, i = [], 0
        while f"{name}{i}" in group.attrs:
            chunks.append(group.attrs[f"{name}{i}"])
            i += 1
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for chunk in chunks for n in chunk]


def _set_h5_names(group, name: str, values: list[str]) -> None:
    """Like Keras 2's save_attributes_to_hdf5_group: one variable-length string list, or
    fixed-length chunks when the list would not fit an HDF5 object header."""
    data = [v.encode("utf-8") for v in values]
    array = np.asarray(data)
    chunks = 1
    while any(c.nbytes > _HDF5_ATTR_LIMIT for c in np.array_split(array, chunks)):
        chunks += 1
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, chunk in enumerate(np.array_split(array, chunks)):
            group.attrs[f"{name}{i}"] = chunk


def _h5_array(dataset) -> np.ndarray:
    array = dataset[()]
    if array.dtype.kind == "V" and array.dtype.itemsize == 2:
        array = array.view(ml_dtypes.bfloat16)  # h5py keeps bf16 as an untagged 2-byte opaque type
    return np.asarray(array)


def read_tf_h5(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from a transformers v4 `tf_model.h5`: TF names mapped through
    `weights.from_tf_name`, kernels transposed to `(out, in)`. A bare TFRobertaModel file (only a
    `roberta` layer) yields unprefixed names, as RobertaModel's state dict has them."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointFormatError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {e}") from None
    try:
        layers = _h5_names(f, "layer_names")
        if not layers:
            raise CheckpointFormatError(f"{path}: no 'layer_names' attribute; not a Keras/transformers TF weights file")
        bare = set(layers) == {"roberta"}
        seen: set[str] = set()
        for layer in layers:
            if layer not in f:
                raise CheckpointFormatError(f"{path}: layer group {layer!r} listed in layer_names is missing")
            group = f[layer]
            for name in _h5_names(group, "weight_names"):
                key = weights.from_tf_name(name)
                if bare:
                    key = key.removeprefix(weights.PREFIX)
                if key in seen:
                    continue  # the LM head's layer lists the embeddings it shares again
                seen.add(key)
                if name not in group:
                    raise CheckpointFormatError(f"{path}: weight {layer}/{name} is listed but has no dataset")
                array = _h5_array(group[name])
                yield key, (np.ascontiguousarray(array.T) if weights.is_transposed(key) else array)
    except weights.CheckpointKeyError as e:
        raise CheckpointFormatError(f"{path}: {e}") from None
    except (OSError, KeyError, RuntimeError) as e:
        raise CheckpointFormatError(f"{path}: corrupt HDF5 content: {e}") from None
    finally:
        f.close()


def _tf_scope(architecture: str) -> str:
    """Keras' automatic layer name of the TF class: 'RobertaForMaskedLM' -> 'tf_roberta_for_masked_lm'."""
    name = "TF" + re.sub(r"^(TF|Flax)", "", architecture)
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _guess_architecture(state: Mapping[str, np.ndarray]) -> str:
    """The PyTorch class whose state dict this is, from its keys (causal and masked LM share keys:
    pass `architecture` to tell them apart)."""
    keys = set(state)
    if any(k.startswith(("embeddings.", "encoder.", "pooler.")) for k in keys):
        head = "model"
    elif any(k.startswith("lm_head.") for k in keys):
        head = "masked_lm"
    elif "classifier.dense.weight" in keys:
        head = "sequence_classification"
    elif "classifier.weight" in keys:
        head = "multiple_choice" if "roberta.pooler.dense.weight" in keys else "token_classification"
    elif "qa_outputs.weight" in keys:
        head = "question_answering"
    else:
        raise ValueError("cannot tell which RoBERTa class these weights belong to; pass architecture='RobertaFor...'")
    return weights.HEADS[head]


def _framework_items(
    state: Mapping[str, np.ndarray], path: Path, *, untied_decoder: bool
) -> Iterator[tuple[str, np.ndarray]]:
    """The state's parameters as TF/Flax store them: buffers dropped, tied aliases dropped (both
    frameworks reuse the source), linear weights transposed to `(in, out)`. An LM decoder weight
    that differs from the word embeddings is kept where the format can hold it (`untied_decoder`:
    Flax's `lm_head/decoder/kernel`); TF v4 always ties it, so there it is an error."""
    for key, value in state.items():
        if weights.is_buffer(key):
            continue
        source = weights.TIED.get(key)
        if source is not None and source in state:
            if np.array_equal(state[source], value):
                continue
            if not (untied_decoder and key == "lm_head.decoder.weight"):
                raise ValueError(f"cannot write {path.name}: {key} differs from {source}, and this format stores them as one tensor")
        try:
            transposed = weights.is_transposed(key)
        except weights.CheckpointKeyError as e:
            raise ValueError(f"cannot write {path.name}: {e}") from None
        yield key, (np.ascontiguousarray(value.T) if transposed else value)


def write_tf_h5(state: Mapping[str, np.ndarray], path: str | os.PathLike, *, architecture: str | None = None) -> Path:
    """Write a `tf_model.h5` as transformers v4's TF classes do (tf-keras `save_weights`), atomically:
    root attrs `layer_names`/`backend`/`keras_version`, one group per top-level layer (`roberta`,
    `lm_head`, `classifier`, `qa_outputs`) whose `weight_names` are `<scope>/<tf name>:0` and whose
    datasets sit at those paths, an empty `top_level_model_weights` group. The LM head's group
    lists the embeddings it shares again, as Keras does. Weights are listed in the state's order
    (Keras lists the embeddings last; transformers and our reader match by name)."""
    import h5py

    _check_state(state)
    path = Path(path)
    scope = _tf_scope(architecture or _guess_architecture(state))
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    for key, value in _framework_items(state, path, untied_decoder=False):
        name = f"{scope}/{weights.to_tf_name(key)}:0"
        groups.setdefault(name.split("/")[1], []).append((name, value))
    if "lm_head" in groups:
        groups["lm_head"] += [(n, v) for n, v in groups.get("roberta", []) if "/roberta/embeddings/" in n]
    layers = sorted(groups, key=lambda g: g != "roberta")  # model order: the encoder first
    with _atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _set_h5_names(f, "layer_names", layers)
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = _KERAS_VERSION
            for layer in sorted(groups):
                group = f.create_group(layer)
                _set_h5_names(group, "weight_names", [n for n, _ in groups[layer]])
                for name, value in groups[layer]:
                    group.create_dataset(name, data=value)
            _set_h5_names(f.create_group("top_level_model_weights"), "weight_names", [])
    return path


# ---------------------------------------------------------------------------- flax_model.msgpack

_MSGPACK_NDARRAY = 1  # Flax's msgpack extension code for an ndarray: packb((shape, dtype name, bytes))
_FLAX_CHUNKED = "__msgpack_chunked_array__"
_FLAX_MAX_CHUNK = 2**30  # Flax splits leaves above this many bytes into chunks


def _ndarray_from_ext(code: int, data: bytes) -> Any:
    import msgpack

    if code != _MSGPACK_NDARRAY:
        raise CheckpointFormatError(f"unsupported msgpack extension type {code} (only ndarrays, code 1, are weights)")
    shape, dtype_name, buffer = msgpack.unpackb(data, raw=True)
    name = dtype_name.decode() if isinstance(dtype_name, bytes) else dtype_name
    if name not in _DTYPES:
        raise CheckpointFormatError(f"array of dtype {name!r}; allowed: {', '.join(_DTYPES)}")
    dtype = _DTYPES[name]
    shape = tuple(shape)
    if len(buffer) != int(np.prod(shape)) * dtype.itemsize:
        raise CheckpointFormatError(f"array of shape {shape} {name} carries {len(buffer)} bytes")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


def _unchunk(node: dict) -> np.ndarray:
    shape = tuple(node["shape"][str(i)] for i in range(len(node["shape"])))
    chunks = [node["chunks"][str(i)] for i in range(len(node["chunks"]))]
    return np.concatenate(chunks).reshape(shape)


def _flatten(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], np.ndarray]]:
    if isinstance(tree, dict) and _FLAX_CHUNKED in tree:
        yield path, _unchunk(tree)
    elif isinstance(tree, dict):
        for k in list(tree):  # popped, so a converter never holds a leaf twice (here and transposed)
            yield from _flatten(tree.pop(k), path + (str(k),))
    elif isinstance(tree, np.ndarray):
        yield path, tree
    else:
        raise CheckpointFormatError(f"{'/'.join(path)} is a {type(tree).__name__}, not an array")


def read_flax_msgpack(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from a Flax `flax_model.msgpack`: paths mapped through
    `weights.from_flax_path`, kernels transposed to `(out, in)`. A tree without a `roberta` level
    (FlaxRobertaModel) yields unprefixed names, as RobertaModel's state dict has them."""
    import msgpack

    path = Path(path)
    try:
        with open(path, "rb") as f:
            # max_buffer_size=0: no 100 MiB cap on one leaf (Flax chunks leaves above 1 GiB itself)
            unpacker = msgpack.Unpacker(f, ext_hook=_ndarray_from_ext, raw=False, strict_map_key=False, max_buffer_size=0)
            tree = unpacker.unpack()
            consumed = unpacker.tell()
    except msgpack.OutOfData:
        raise CheckpointFormatError(f"{path}: truncated msgpack file") from None
    except CheckpointFormatError as e:
        raise CheckpointFormatError(f"{path}: {e}") from None
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise CheckpointFormatError(f"{path}: not a Flax msgpack file (truncated or corrupt?): {e}") from None
    if consumed != path.stat().st_size:
        raise CheckpointFormatError(f"{path}: {path.stat().st_size - consumed} bytes of trailing data after the parameter tree")
    if not isinstance(tree, dict):
        raise CheckpointFormatError(f"{path}: top level is a {type(tree).__name__}, not a parameter tree")
    bare = "roberta" not in tree
    try:
        for flax_path, array in _flatten(tree):
            key = weights.from_flax_path(flax_path)
            if bare:
                key = key.removeprefix(weights.PREFIX)
            yield key, (np.ascontiguousarray(array.T) if weights.is_transposed(key) else array)
    except (weights.CheckpointKeyError, CheckpointFormatError) as e:
        raise CheckpointFormatError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointFormatError(f"{path}: malformed chunked array: {e}") from None


def _flax_tree(state: Mapping[str, np.ndarray], path: Path) -> dict:
    """Nested dict of Flax paths; bare RobertaModel weights (unprefixed) lose the `roberta` level."""
    bare = any(k.startswith(("embeddings.", "encoder.", "pooler.")) for k in state)
    tree: dict = {}
    for key, value in _framework_items(state, path, untied_decoder=True):
        flax_path = weights.to_flax_path(key)
        if bare and flax_path[0] == "roberta":
            flax_path = flax_path[1:]
        node = tree
        for part in flax_path[:-1]:
            node = node.setdefault(part, {})
        node[flax_path[-1]] = value
    return tree


def _pack_tree(packer, tree: dict, out) -> None:
    """Stream the tree leaf by leaf (keys sorted, as JAX flattens dicts), so no whole-file buffer is built."""
    import msgpack

    out.write(packer.pack_map_header(len(tree)))
    for key in sorted(tree):
        value = tree[key]
        out.write(packer.pack(key))
        if isinstance(value, dict):
            _pack_tree(packer, value, out)
        elif not isinstance(value, np.ndarray):
            out.write(packer.pack(value))  # the flag and sizes of a chunked leaf
        elif value.nbytes > _FLAX_MAX_CHUNK:
            step = max(1, _FLAX_MAX_CHUNK // value.dtype.itemsize)
            flat = value.reshape(-1)
            chunks = {str(i): flat[s:s + step] for i, s in enumerate(range(0, flat.size, step))}
            shape = {str(i): n for i, n in enumerate(value.shape)}
            _pack_tree(packer, {_FLAX_CHUNKED: True, "shape": shape, "chunks": chunks}, out)
        else:
            _pack_ndarray(packer, value, out)


def _pack_ndarray(packer, value: np.ndarray, out) -> None:
    """Flax's ndarray extension `packb((shape, dtype name, bytes))`, byte for byte as msgpack writes
    it; a large array's bytes go from its buffer to the file, not through two payload copies."""
    import msgpack

    if value.nbytes < 2**16:
        payload = msgpack.packb((value.shape, value.dtype.name, value.tobytes("C")), use_bin_type=True)
        out.write(packer.pack(msgpack.ExtType(_MSGPACK_NDARRAY, payload)))
        return
    # array of 3, shape, dtype name, bin 32 header; all inside an ext 32 record
    head = packer.pack_array_header(3) + packer.pack(list(value.shape)) + packer.pack(value.dtype.name)
    head += b"\xc6" + struct.pack(">I", value.nbytes)
    out.write(b"\xc9" + struct.pack(">Ib", len(head) + value.nbytes, _MSGPACK_NDARRAY) + head)
    out.write(memoryview(np.ascontiguousarray(value).reshape(-1).view(np.uint8)))


def write_flax_msgpack(state: Mapping[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write a `flax_model.msgpack` as transformers v4's Flax classes do (`flax.serialization.to_bytes`
    of the Linen parameter tree), atomically."""
    import msgpack

    _check_state(state)
    path = Path(path)
    tree = _flax_tree(state, path)
    packer = msgpack.Packer(use_bin_type=True, strict_types=True)
    with _atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            _pack_tree(packer, tree, f)
    return path


# ---------------------------------------------------------------------------- entry points

_READERS: dict[str, Callable[[Path], Iterator[tuple[str, np.ndarray]]]] = {
    SAFETENSORS_INDEX: read_safetensors_index,
    ".safetensors": read_safetensors,
    ".bin": _iter_torch_bin,
    ".pt": _iter_torch_bin,
    ".pth": _iter_torch_bin,
    ".h5": read_tf_h5,
    ".msgpack": read_flax_msgpack,
}


def find_weights_file(directory: str | os.PathLike) -> Path:
    """The weights file of a checkpoint directory, preferring safetensors, then the sharded
    index, then pytorch_model.bin, tf_model.h5 and flax_model.msgpack."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such checkpoint directory")
    for name in WEIGHTS_FILES:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{directory}: no weights file found; looked for {', '.join(WEIGHTS_FILES)}")


def _reader(path: Path) -> Callable[[Path], Iterator[tuple[str, np.ndarray]]]:
    reader = _READERS.get(path.name) or _READERS.get(path.suffix)
    if reader is None:
        raise CheckpointFormatError(
            f"{path}: unknown weights file type; expected one of {', '.join(WEIGHTS_FILES)} "
            "(or any *.safetensors, *.bin, *.h5, *.msgpack file)"
        )
    return reader


def iter_state_dict(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) pairs of a weights file or checkpoint directory, one array at
    a time, so that a converter never needs the whole model in memory twice."""
    path = Path(path)
    if path.is_dir():
        path = find_weights_file(path)
    elif not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file or checkpoint directory")
    seen: set[str] = set()
    for key, array in _reader(path)(path):
        if key in seen:
            raise CheckpointFormatError(f"{path}: parameter {key!r} appears twice")
        seen.add(key)
        yield key, array


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The canonical state dict of a weights file or checkpoint directory (any of the four formats)."""
    return dict(iter_state_dict(path))


def save_state_dict(
    state: Mapping[str, np.ndarray],
    directory: str | os.PathLike,
    *,
    format: str = "safetensors",
    max_shard_size: int | str | None = None,
    architecture: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write a canonical state dict into a checkpoint directory in `format` ('safetensors', 'bin',
    'h5' or 'msgpack') and return the files written. `max_shard_size` (safetensors only) splits
    the weights into shards; `architecture` names the PyTorch class for the TF file's scope
    (guessed from the keys when absent). Each file is written atomically."""
    if format not in FORMATS:
        raise ValueError(f"unknown checkpoint format {format!r}; choose one of {', '.join(FORMATS)}")
    if max_shard_size is not None and format != "safetensors":
        raise ValueError(f"max_shard_size is supported for safetensors only, not {format!r}")
    if metadata is not None and format != "safetensors":
        raise ValueError(f"metadata is supported for safetensors only, not {format!r}")
    if architecture is not None:
        weights.head_for_architecture(architecture)  # validates the name
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} exists and is not a directory")
    target = directory / FORMATS[format]
    created = not directory.exists()
    try:
        if format == "safetensors" and max_shard_size is not None:
            return write_safetensors_sharded(state, directory, max_shard_size)
        if format == "safetensors":
            written = [write_safetensors(state, target, metadata)]
            _remove_stale(directory, keep=written)
            return written
        if format == "bin":
            return [write_torch_bin(state, target)]
        if format == "h5":
            return [write_tf_h5(state, target, architecture=architecture)]
        return [write_flax_msgpack(state, target)]
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if it stayed empty
        raise
