"""`flax_model.msgpack`: Flax's msgpack serialisation of the Linen parameter tree
(`flax.serialization.to_bytes`), read and written with msgpack."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .. import weights
from ..fileio import atomic_path
from ._common import FLAX_MSGPACK, BASE_MODEL_PREFIXES as _BASE_LEVELS, CheckpointFormatError, DTYPES as _DTYPES, check_state
from ._sharded import read_index, read_sharded, write_sharded
from .tf_h5 import framework_items

__all__ = ["read_flax_msgpack", "write_flax_msgpack", "read_flax_msgpack_index", "write_flax_msgpack_sharded"]


_MSGPACK_NDARRAY = 1  # Flax's msgpack extension code for an ndarray: packb((shape, dtype name, bytes))
_FLAX_CHUNKED = "__msgpack_chunked_array__"
_FLAX_MAX_CHUNK = 2**30  # Flax splits leaves above this many bytes into chunks

# The maps, arrays and ndarrays one file may hold together. A Flax parameter tree is a map per
# module and an ndarray per parameter: a few hundred for RoBERTa, a few thousand for the largest
# models. msgpack builds a 64-byte dict from each 1-byte empty map: 5 MB of them were 387 MB of
# memory before the tree's shape could be refused.
MAX_MSGPACK_OBJECTS = 100_000


class _ObjectBudget:
    """Counts the maps, arrays and ndarrays as msgpack decodes them (its object, list and ext
    hooks) and refuses the file past `MAX_MSGPACK_OBJECTS`."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, value: Any) -> Any:
        self.count += 1
        if self.count > MAX_MSGPACK_OBJECTS:
            raise CheckpointFormatError(
                f"holds more than {MAX_MSGPACK_OBJECTS} maps, arrays and ndarrays; a Flax parameter tree has a "
                "few thousand at most"
            )
        return value

    def ext(self, code: int, data: bytes) -> Any:
        return _ndarray_from_ext(code, self(data))


def _ndarray_from_ext(code: int, data: bytes) -> Any:
    import msgpack

    if code != _MSGPACK_NDARRAY:
        raise CheckpointFormatError(f"unsupported msgpack extension type {code} (only ndarrays, code 1, are weights)")
    # (shape, dtype name, bytes): one array of 3 holding one of at most 64 ints, no map anywhere, so
    # a hostile payload (a million empty lists) is refused as it is decoded, not after
    record = msgpack.unpackb(data, raw=True, max_array_len=64, max_map_len=0, object_hook=_no_map)
    if not (isinstance(record, (list, tuple)) and len(record) == 3 and isinstance(record[2], bytes)):
        raise CheckpointFormatError("an ndarray record is not (shape, dtype name, bytes)")
    shape, dtype_name, buffer = record
    name = dtype_name.decode(errors="replace") if isinstance(dtype_name, bytes) else dtype_name
    if not isinstance(name, str) or name not in _DTYPES:
        raise CheckpointFormatError(f"array of dtype {name!r}; allowed: {', '.join(_DTYPES)}")
    dtype = _DTYPES[name]
    if not (isinstance(shape, (list, tuple)) and len(shape) <= 64 and all(type(n) is int and n >= 0 for n in shape)):
        raise CheckpointFormatError(f"array shape {shape!r} is not a list of non-negative ints")
    shape = tuple(shape)
    if len(buffer) != math.prod(shape) * dtype.itemsize:  # Python ints: no overflow
        raise CheckpointFormatError(f"array of shape {shape} {name} carries {len(buffer)} bytes")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


def _sequence(node: dict, field: str, where: str) -> list:
    """Flax's dict form of a tuple, `{"0": a, "1": b, ...}`, as a list; anything else is refused."""
    value = node.get(field)
    keys = [str(i) for i in range(len(value))] if isinstance(value, dict) else None
    if keys is None or set(value) != set(keys):  # in any order: a writer may sort the keys ('10' before '2')
        raise CheckpointFormatError(f"{where}: a chunked array's {field!r} is not Flax's {{'0': ..., '1': ...}} form")
    return [value[k] for k in keys]


def _no_map(value: Any) -> Any:
    raise CheckpointFormatError("an ndarray record holds a map; it is (shape, dtype name, bytes)")


def _unchunk(node: dict, where: str = "a chunked array") -> np.ndarray:
    """The array a Flax chunked leaf (`flax.serialization._chunk`: a leaf above 1 GiB as the 1-D
    ndarrays of its flattened slices, plus its shape) stands for. Each chunk must be a 1-D ndarray
    (our ext hook admits only numeric dtypes) of one dtype, and the chunks must together hold
    exactly the declared shape's elements: checked before they are concatenated, so a chunk that
    is a msgpack list of strings or objects never becomes a unicode or object array."""
    if set(node) != {_FLAX_CHUNKED, "shape", "chunks"} or node[_FLAX_CHUNKED] is not True:
        raise CheckpointFormatError(f"{where}: a chunked array node has keys {sorted(map(str, node))[:8]}, not Flax's "
                                    f"{_FLAX_CHUNKED!r}=True, 'shape' and 'chunks'")
    shape = _sequence(node, "shape", where)
    if len(shape) > 64 or not all(type(n) is int and n >= 0 for n in shape):
        raise CheckpointFormatError(f"{where}: a chunked array's shape is not a list of at most 64 non-negative ints")
    chunks = _sequence(node, "chunks", where)
    if not chunks:
        raise CheckpointFormatError(f"{where}: a chunked array has no chunks")
    for chunk in chunks:
        if not isinstance(chunk, np.ndarray) or chunk.ndim != 1 or chunk.dtype != chunks[0].dtype:
            what = f"a {chunk.dtype} array of shape {chunk.shape}" if isinstance(chunk, np.ndarray) else f"a {type(chunk).__name__}"
            raise CheckpointFormatError(
                f"{where}: a chunk of a chunked array is {what}; Flax's chunks are 1-D ndarrays of one numeric dtype"
            )
    total = sum(chunk.size for chunk in chunks)
    if total != math.prod(shape):
        raise CheckpointFormatError(f"{where}: the chunks hold {total} elements, the shape {tuple(shape)} needs {math.prod(shape)}")
    return np.concatenate(chunks).reshape(shape)


def _flatten(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], np.ndarray]]:
    if isinstance(tree, dict) and _FLAX_CHUNKED in tree:
        if not path:  # the top level itself: a parameter tree names its leaves
            raise CheckpointFormatError("the top level is a chunked array, not a tree of named parameters")
        yield path, _unchunk(tree, "/".join(path))
    elif isinstance(tree, dict):
        for k in list(tree):  # popped, so a converter never holds a leaf twice (here and transposed)
            yield from _flatten(tree.pop(k), path + (str(k),))
    elif isinstance(tree, np.ndarray):
        if not path:
            raise CheckpointFormatError("the top level is an array, not a tree of named parameters")
        yield path, tree
    else:
        raise CheckpointFormatError(f"{'/'.join(path)} is a {type(tree).__name__}, not an array")


def read_flax_msgpack(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from a Flax `flax_model.msgpack`: paths mapped through
    `weights.from_flax_path`, kernels transposed to `(out, in)`. A tree without a `roberta` level
    (FlaxRobertaModel) yields unprefixed names, as RobertaModel's state dict has them; a
    RoBERTa-PreLayerNorm tree's `roberta_prelayernorm` level comes as `roberta.` keys."""
    path = Path(path)
    tree = _load_tree(path)
    bare = not any(level in tree for level in _BASE_LEVELS)
    for _, key, array in _items(path, tree, bare):
        yield key, array


def _load_tree(path: Path) -> dict:
    import msgpack

    budget = _ObjectBudget()
    size = path.stat().st_size  # no container holds more items, no string more bytes, than the file has bytes
    try:
        with open(path, "rb") as f:
            # max_buffer_size=0: no 100 MiB cap on one leaf (Flax chunks leaves above 1 GiB itself)
            unpacker = msgpack.Unpacker(
                f, ext_hook=budget.ext, object_hook=budget, list_hook=budget, raw=False, strict_map_key=False,
                max_buffer_size=0, max_array_len=size, max_map_len=size, max_str_len=size, max_bin_len=size,
                max_ext_len=size,
            )
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
    return tree


def _items(path: Path, tree: dict, bare: bool, wanted: frozenset[str] | None = None) -> Iterator[tuple[str, str, np.ndarray]]:
    """(the leaf's path joined by '/', canonical key, array) of a parameter tree; only the paths
    in `wanted` when given (a shard: the others are dropped unconverted)."""
    try:
        for flax_path, array in _flatten(tree):
            if wanted is not None and "/".join(flax_path) not in wanted:
                continue
            key = weights.from_flax_path(flax_path)
            if bare:
                key = key.removeprefix(weights.PREFIX)
            yield "/".join(flax_path), key, (np.ascontiguousarray(array.T) if weights.is_transposed(key) else array)
    except (weights.CheckpointKeyError, CheckpointFormatError) as e:
        raise CheckpointFormatError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise CheckpointFormatError(f"{path}: malformed chunked array: {e}") from None


def read_flax_msgpack_index(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from v4's sharded `flax_model.msgpack.index.json` (Flax paths
    joined by '/') and its `flax_model-0000k-of-0000n.msgpack` shards, each a parameter tree read
    as `read_flax_msgpack` reads one, of which the paths the index puts there are kept (the
    index's checks: `_sharded.read_index`). The index is read at the first `next` (errors come
    wrapped, naming it)."""
    names = [k for keys in read_index(path).values() for k in keys]
    bare = not any(n.split("/", 1)[0] in _BASE_LEVELS for n in names)
    yield from read_sharded(path, lambda shard, wanted: _items(shard, _load_tree(shard), bare, wanted))


def _flax_tree(state: Mapping[str, np.ndarray], path: Path, base_model_prefix: str = "roberta") -> dict:
    """Nested dict of Flax paths; bare RobertaModel weights (unprefixed) lose the `roberta` level,
    which a head's tree names `base_model_prefix`."""
    bare = any(k.startswith(("embeddings.", "encoder.", "pooler.")) for k in state)
    tree: dict = {}
    for key, value in framework_items(state, path, untied_decoder=True):
        flax_path = weights.to_flax_path(key)
        if flax_path[0] == "roberta":
            flax_path = flax_path[1:] if bare else (base_model_prefix, *flax_path[1:])
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


def write_flax_msgpack(
    state: Mapping[str, np.ndarray], path: str | os.PathLike, *, base_model_prefix: str = "roberta"
) -> Path:
    """Write a `flax_model.msgpack` as transformers v4's Flax classes do (`flax.serialization.to_bytes`
    of the Linen parameter tree), atomically. `base_model_prefix` names the encoder's level
    (`roberta_prelayernorm` for RoBERTa-PreLayerNorm)."""
    import msgpack

    check_state(state)
    if base_model_prefix not in _BASE_LEVELS:
        raise ValueError(f"base_model_prefix must be one of {', '.join(_BASE_LEVELS)}, got {base_model_prefix!r}")
    path = Path(path)
    tree = _flax_tree(state, path, base_model_prefix)
    packer = msgpack.Packer(use_bin_type=True, strict_types=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            _pack_tree(packer, tree, f)
    return path



def write_flax_msgpack_sharded(
    state: Mapping[str, np.ndarray], directory: str | os.PathLike, max_shard_size: int | str, *,
    is_weights_file, base_model_prefix: str = "roberta",
) -> list[Path]:
    """v4 Flax's `save_pretrained(max_shard_size=...)` layout: shards
    `flax_model-0000k-of-0000n.msgpack` (each the parameter tree of its leaves) +
    `flax_model.msgpack.index.json` (the paths joined by '/', `total_size`), or one
    `flax_model.msgpack` when everything fits; the folder rebuilt atomically."""
    check_state(state)
    if base_model_prefix not in _BASE_LEVELS:
        raise ValueError(f"base_model_prefix must be one of {', '.join(_BASE_LEVELS)}, got {base_model_prefix!r}")
    directory = Path(directory)
    leaves = dict(_flatten_leaves(_flax_tree(state, directory / FLAX_MSGPACK, base_model_prefix)))
    import msgpack

    def write_shard(names: list[str], path: Path) -> None:
        tree: dict = {}
        for name in names:
            *levels, leaf = name.split("/")
            node = tree
            for level in levels:
                node = node.setdefault(level, {})
            node[leaf] = leaves[name]
        with open(path, "wb") as f:
            _pack_tree(msgpack.Packer(use_bin_type=True, strict_types=True), tree, f)

    return write_sharded(
        directory, FLAX_MSGPACK, leaves, max_shard_size, write_shard,
        lambda: write_flax_msgpack(state, directory / FLAX_MSGPACK, base_model_prefix=base_model_prefix),
        is_weights_file=is_weights_file, total_parameters=False,
    )


def _flatten_leaves(tree: dict, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """(path joined by '/', array) of a tree `_flax_tree` built, keys sorted as JAX flattens them."""
    for key in sorted(tree):
        if isinstance(tree[key], dict):
            yield from _flatten_leaves(tree[key], f"{prefix}{key}/")
        else:
            yield prefix + key, tree[key]
