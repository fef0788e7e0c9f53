"""`pytorch_model.bin`: the zip archive `torch.save` writes (read through the restricted unpickler
of `pickle_reader`, storages read on demand), and a writer of the same format without torch."""

from __future__ import annotations

import collections
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .. import weights
from ..fileio import atomic_path
from ._common import TORCH_BIN, CheckpointFormatError, check_state
from ._sharded import add_variant, read_sharded, write_sharded
from .pickle_reader import (
    MAX_PICKLE_BYTES,
    STORAGE_FOR_DTYPE,
    _contiguous_strides,
    storage_uses,
    Storage,
    TensorRef,
    check_view,
    unpickle,
)

__all__ = ["read_torch_bin", "iter_torch_bin", "write_torch_bin", "read_torch_bin_index", "write_torch_bin_sharded"]


# The storages of one archive may together inflate to at most this many times the bytes they
# occupy in the file (plus 1 MiB once, for the whole archive): real weights compress by a few
# percent (torch.save does not compress at all); a 2 GB entry of zeros in 1 MB of file, or 64
# deflated 1 MiB entries of zeros in 86 KB, is a bomb. (Each entry is also checked on its own.)
MAX_INFLATION = 32
_ALLOWANCE = 2**20  # the one 1 MiB allowance of an archive

# The tensors of one archive may together hold at most this many times the bytes its storages
# hold (plus 1 MiB). Several tensors may view one storage (v4's torch.save writes the tied
# `lm_head.decoder.weight` and `roberta.embeddings.word_embeddings.weight` as two keys over one
# storage, a file's bytes read twice at most); twenty keys over one 4 MiB storage would be 80 MiB
# of arrays from a 4 MiB file.
MAX_REUSE = 2


class TorchArchive:
    """An open torch.save zip: the unpickled object (with `TensorRef`s) and on-demand array reads.
    A storage's bytes are read once and dropped when its last tensor has been materialised.

    Every zip entry is checked before it is read: its declared size must be what the pickle's
    records need, a stored entry's size must match its bytes in the file, and a deflated one may
    not inflate more than `MAX_INFLATION` times; reads never go past the declared size. The whole
    archive has one budget (`_storage_bytes`): its storages' data may not overlap in the file and
    may together inflate at most `MAX_INFLATION` times (plus 1 MiB once), and the arrays
    materialised from it total at most `MAX_REUSE` times the bytes its storages hold (plus 1 MiB)."""

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
            self.size = os.stat(path).st_size
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, NotImplementedError) as e:
            # NotImplementedError: an entry needs a zip feature zipfile lacks ("zip file version 8.8")
            raise CheckpointFormatError(f"{path}: truncated or corrupt torch zip archive: {e}") from None
        try:
            self._read(extra_globals)
            self._uses = storage_uses(self.obj)
        except BaseException:
            self.zip.close()
            raise
        self._cache: dict[str, np.ndarray] = {}

    _stored: int | None = None  # the bytes the storages hold (found at the first materialise)
    _materialised = 0  # the bytes of the arrays materialised so far

    def _storage_bytes(self) -> int:
        """The bytes the archive's storages hold: the declared sizes of the storage entries the
        pickle's records name (0 for a missing one, whose read fails), once the whole archive's
        budget is checked: the entries' data must lie in the file without overlapping (one stored
        block under two names is refused) and their declared sizes together may be at most
        `MAX_INFLATION` times their compressed sizes together, plus 1 MiB once. A subclass
        reading another container (fairseq's legacy files) has its storages inside the file: the
        file's size."""
        if not isinstance(getattr(self, "zip", None), zipfile.ZipFile):
            return self.size
        declared = compressed = 0
        spans: list[tuple[int, int, str]] = []
        with open(self.path, "rb") as f:
            for key in self._uses:
                name = f"{self.prefix}data/{key}"
                try:
                    info = self.zip.getinfo(name)
                except KeyError:
                    continue
                f.seek(info.header_offset)
                header = f.read(30)
                if len(header) != 30 or header[:4] != b"PK\x03\x04":
                    raise CheckpointFormatError(f"{self.path}: record {name} has no local zip header (corrupt archive?)")
                name_len, extra_len = struct.unpack("<HH", header[26:30])
                start = info.header_offset + 30 + name_len + extra_len
                if start + info.compress_size > self.size:
                    raise CheckpointFormatError(f"{self.path}: record {name} reaches past the end of the file (truncated?)")
                spans.append((start, start + info.compress_size, name))
                declared += info.file_size
                compressed += info.compress_size
        spans.sort()
        for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
            if start < end:
                raise CheckpointFormatError(
                    f"{self.path}: records {first} and {second} overlap in the file (one block of bytes under two "
                    "names); refusing the archive"
                )
        if declared > MAX_INFLATION * compressed + _ALLOWANCE:
            raise CheckpointFormatError(
                f"{self.path}: the storages would inflate from {compressed} compressed bytes to {declared} "
                f"(more than {MAX_INFLATION}x for the archive: a zip bomb?); refusing it"
            )
        return declared

    def _entry(self, name: str, need: int | None = None, limit: int | None = None) -> zipfile.ZipInfo:
        """The zip entry `name`, refused unless its declared size is `need` (or at most `limit`)
        and agrees with the bytes the archive really holds for it."""
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            raise CheckpointFormatError(f"{self.path}: record {name} is missing from the archive") from None
        if need is not None and info.file_size != need:
            raise CheckpointFormatError(
                f"{self.path}: record {name} declares {info.file_size} bytes, the pickle's records need {need}"
            )
        if limit is not None and info.file_size > limit:
            raise CheckpointFormatError(f"{self.path}: record {name} declares {info.file_size} bytes; at most {limit} are read")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise CheckpointFormatError(
                f"{self.path}: record {name} declares {info.file_size} bytes but stores {info.compress_size}"
            )
        if info.file_size > MAX_INFLATION * info.compress_size + _ALLOWANCE:
            raise CheckpointFormatError(
                f"{self.path}: record {name} would inflate from {info.compress_size} compressed bytes to "
                f"{info.file_size} (more than {MAX_INFLATION}x: a zip bomb?); refusing it"
            )
        if info.header_offset + info.compress_size > self.size:
            raise CheckpointFormatError(f"{self.path}: record {name} reaches past the end of the file (truncated?)")
        return info

    def _read_entry(self, name: str, limit: int) -> bytes:
        info = self._entry(name, limit=limit)
        with self.zip.open(info) as f:
            data = f.read(info.file_size)
        if len(data) != info.file_size:
            raise CheckpointFormatError(f"{self.path}: record {name} is truncated")
        return data

    def _read(self, extra_globals: Mapping[tuple[str, str], Any]) -> None:
        """Find the pickle and the byte order, unpickle into `self.obj`."""
        path = self.path
        pkl = [n for n in self.zip.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointFormatError(f"{path}: zip archive without <name>/data.pkl; not written by torch.save")
        self.prefix = pkl[0][: -len("data.pkl")]
        try:
            names = set(self.zip.namelist())
            order = self._read_entry(self.prefix + "byteorder", 16).decode() if self.prefix + "byteorder" in names else "little"
            if order not in ("little", "big"):
                raise CheckpointFormatError(f"{path}: unknown byteorder record {order!r}")
            self.byteorder = "<" if order == "little" else ">"
            data = self._read_entry(pkl[0], MAX_PICKLE_BYTES)
        except CheckpointFormatError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError, NotImplementedError) as e:
            raise CheckpointFormatError(f"{path}: truncated or corrupt torch zip archive: {e}") from None
        self.obj, _ = unpickle(data, path, extra_globals)

    def close(self) -> None:
        self.zip.close()

    def _storage(self, storage: Storage) -> np.ndarray:
        data = self._cache.get(storage.key)
        if data is None:
            name = f"{self.prefix}data/{storage.key}"
            if storage.dtype is None:
                raise CheckpointFormatError(f"{self.path}: storage {name} is never given a dtype")
            dtype = storage.dtype.newbyteorder(self.byteorder) if storage.dtype.itemsize > 1 else storage.dtype
            info = self._entry(name, need=storage.numel * dtype.itemsize)
            data = np.empty(storage.numel, dtype=dtype)
            try:
                with self.zip.open(info) as f:
                    got = f.readinto(memoryview(data.view(np.uint8)))
                    extra = f.read(1)
            except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as e:
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

    def materialize(self, ref: TensorRef, name: str | None = None) -> np.ndarray:
        """The array `ref` describes, as an owned C-contiguous array. The view is checked again
        here, against the bytes really read, so no record can make the copy leave its storage."""
        if self._stored is None:
            self._stored = self._storage_bytes()  # the archive's budget, checked before any storage is read
        data = self._storage(ref.storage)
        offset, shape, stride = ref.offset, ref.shape, ref.stride
        try:
            check_view(offset, shape, stride, data.size, data.itemsize)
        except CheckpointFormatError as e:
            what = f"tensor {name!r}" if name is not None else f"a tensor of storage {ref.storage.key}"
            raise CheckpointFormatError(f"{self.path}: {what}: {e}") from None
        nbytes = int(np.prod(shape, dtype=object)) * data.itemsize
        if self._materialised + nbytes > MAX_REUSE * self._stored + _ALLOWANCE:
            what = f"tensor {name!r}" if name is not None else f"a tensor of storage {ref.storage.key}"
            raise CheckpointFormatError(
                f"{self.path}: {what}: the tensors would hold {self._materialised + nbytes} bytes, more than "
                f"{MAX_REUSE}x the {self._stored} bytes the archive's storages hold (one storage viewed by many "
                "tensors?); refusing to materialise more"
            )
        self._materialised += nbytes
        self._uses[ref.storage.key] -= 1
        last_use = self._uses[ref.storage.key] <= 0
        if last_use:
            self._cache.pop(ref.storage.key, None)
        size = int(np.prod(shape, dtype=object))
        contiguous = stride == _contiguous_strides(shape)
        if last_use and offset == 0 and size == data.size and contiguous:
            return data.reshape(shape)  # the common case: a tensor owns its whole storage
        if not size:
            return np.empty(shape, dtype=data.dtype)
        # Stride over opaque items: as_strided cannot describe ml_dtypes' types (bf16, float8).
        items = data.view(f"V{data.itemsize}")[offset:]
        view = np.lib.stride_tricks.as_strided(items, shape=shape, strides=[s * data.itemsize for s in stride])
        return np.array(view, order="C").view(data.dtype)

    def resolve(self, obj: Any) -> Any:
        """`obj` with every `TensorRef` replaced by its array (containers rebuilt)."""
        if isinstance(obj, TensorRef):
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



def read_torch_bin(
    path: str | os.PathLike, *, extra_globals: Mapping[tuple[str, str], Any] | None = None
) -> Any:
    """The object a `torch.save` zip file holds, with tensors as NumPy arrays.

    Only tensor-rebuild functions, torch storage classes and `OrderedDict` may appear in the
    pickle; `extra_globals` maps further `(module, name)` pairs to the objects to use (e.g.
    `{("argparse", "Namespace"): argparse.Namespace}` for fairseq checkpoints).
    """
    archive = TorchArchive(Path(path), extra_globals or {})
    try:
        return archive.resolve(archive.obj)
    finally:
        archive.close()


def iter_torch_bin(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) of a state-dict .bin, reading each storage only when it is
    needed (a RoBERTa-PreLayerNorm file's `roberta_prelayernorm.` keys come as `roberta.`)."""
    for key, array in _iter_file_keys(Path(path)):
        yield weights.from_file_key(key), array


def _iter_file_keys(path: Path, wanted: frozenset[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(key as the file names it, array) of a state-dict .bin, one tensor at a time; only the keys
    in `wanted` when given (a shard: the others are never materialised)."""
    archive = TorchArchive(path, {})
    try:
        state = archive.obj
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, TensorRef) for k, v in state.items()):
            raise CheckpointFormatError(f"{path}: holds a {type(state).__name__}, not a state dict of name -> tensor")
        for key, ref in state.items():
            if wanted is None or key in wanted:
                yield key, archive.materialize(ref, name=key)
    finally:
        archive.close()


def read_torch_bin_index(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from v4's sharded `pytorch_model.bin.index.json` and its
    `pytorch_model-0000k-of-0000n.bin` shards, each read by the restricted unpickler (the index's
    checks: `_sharded.read_index`)."""
    return read_sharded(path, _shard_items)


def _shard_items(path: Path, wanted: frozenset[str]) -> Iterator[tuple[str, str, np.ndarray]]:
    for key, array in _iter_file_keys(path, wanted):
        yield key, weights.from_file_key(key), array


def write_torch_bin_sharded(
    state: Mapping[str, np.ndarray], directory: str | os.PathLike, max_shard_size: int | str, *,
    is_weights_file, variant: str | None = None,
) -> list[Path]:
    """v4's `save_pretrained(max_shard_size=..., safe_serialization=False)` layout: shards
    `pytorch_model-0000k-of-0000n.bin` + `pytorch_model.bin.index.json` (or one `pytorch_model.bin`
    when everything fits), the folder rebuilt atomically (`_sharded.write_sharded`). `state`'s keys
    are the file's."""
    check_state(state)
    directory = Path(directory)
    return write_sharded(directory, TORCH_BIN, state, max_shard_size,
                         lambda keys, path: write_torch_bin({k: state[k] for k in keys}, path),
                         lambda: write_torch_bin(state, directory / add_variant(TORCH_BIN, variant)),
                         variant=variant, is_weights_file=is_weights_file)


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
        typed = STORAGE_FOR_DTYPE.get(array.dtype.name)
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
    check_state(state)
    path = Path(path)
    names = list(state)
    arrays = [np.asarray(_little_endian(state[k]), order="C") for k in names]
    archive = path.stem  # torch names the archive folder after the file
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_aligned(zf, f"{archive}/data.pkl", _PickleWriter().state_dict(names, arrays))
            _write_aligned(zf, f"{archive}/.format_version", b"1")
            _write_aligned(zf, f"{archive}/.storage_alignment", str(_ALIGN).encode())
            _write_aligned(zf, f"{archive}/byteorder", b"little")
            for i, array in enumerate(arrays):
                _write_aligned(zf, f"{archive}/data/{i}", memoryview(array.reshape(-1).view(np.uint8)))
            _write_aligned(zf, f"{archive}/version", b"3\n")
    return path

