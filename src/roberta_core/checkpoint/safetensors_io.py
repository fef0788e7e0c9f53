"""`model.safetensors`, or shards `model-0000k-of-0000n.safetensors` + `model.safetensors.index.json`.

The `safetensors` library validates a file (header, offsets, sizes) before we read it; we then read
the bytes with plain reads into fresh arrays."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from .. import weights
from ..fileio import atomic_path
from ._sharded import add_variant, parse_size, read_sharded, write_sharded
from ._common import SAFETENSORS, SAFETENSORS_INDEX, CheckpointFormatError, DTYPES, check_state, empty_aligned

__all__ = ["parse_size", "read_safetensors", "read_safetensors_index", "write_safetensors", "write_safetensors_sharded",
           "is_shard_name"]

_SHARD = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")


def is_shard_name(name: str) -> bool:
    """Whether `name` is a shard file name a sharded save writes (`model-00001-of-00003.safetensors`)."""
    return _SHARD.fullmatch(name) is not None


def _safe_open(path: Path):
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="numpy")
    except Exception as e:  # safetensors raises its own SafetensorError (an Exception)
        raise CheckpointFormatError(f"{path}: not a readable safetensors file (truncated or corrupt?): {e}") from None


# safetensors dtype tags -> NumPy dtypes
_ST_DTYPES: dict[str, np.dtype] = {
    "F64": DTYPES["float64"], "F32": DTYPES["float32"], "F16": DTYPES["float16"], "BF16": DTYPES["bfloat16"],
    "F8_E4M3": DTYPES["float8_e4m3fn"], "F8_E5M2": DTYPES["float8_e5m2"], "I64": DTYPES["int64"],
    "I32": DTYPES["int32"], "I16": DTYPES["int16"], "I8": DTYPES["int8"], "U64": DTYPES["uint64"],
    "U32": DTYPES["uint32"], "U16": DTYPES["uint16"], "U8": DTYPES["uint8"], "BOOL": DTYPES["bool"],
}


def read_safetensors(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from a safetensors file, one tensor at a time: a
    RoBERTa-PreLayerNorm file's `roberta_prelayernorm.` keys come as `roberta.` (`weights.from_file_key`).

    The `safetensors` library validates the file (header, offsets, sizes); the bytes are then read
    with plain reads into fresh arrays rather than through a memory map, so loading a checkpoint
    costs one copy of the weights in memory, not the copy plus every mapped page."""
    for key, array in _read_file_keys(path):
        yield weights.from_file_key(key), array


def _read_file_keys(path: str | os.PathLike, wanted: frozenset[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(key as the file names it, array), one tensor at a time; only the keys in `wanted` when
    given (a shard: the others are never read)."""
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
            if wanted is not None and key not in wanted:
                continue
            dtype = _ST_DTYPES.get(info["dtype"])
            if dtype is None:
                raise CheckpointFormatError(f"{path}: tensor {key!r} has unsupported dtype {info['dtype']!r}")
            start, end = info["data_offsets"]
            array = empty_aligned(tuple(info["shape"]), dtype)
            raw.seek(base + start)
            if array.nbytes != end - start or raw.readinto(array.reshape(-1).view(np.uint8)) != end - start:
                raise CheckpointFormatError(f"{path}: cannot read tensor {key!r}: file truncated or offsets wrong")
            yield key, array


def read_safetensors_index(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from a sharded checkpoint described by `model.safetensors.index.json`
    (the index's checks: `_sharded.read_index`)."""
    return read_sharded(path, _shard_items)


def _shard_items(path: Path, wanted: frozenset[str]) -> Iterator[tuple[str, str, np.ndarray]]:
    for key, array in _read_file_keys(path, wanted):
        yield key, weights.from_file_key(key), array


def write_safetensors(state: Mapping[str, np.ndarray], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write one safetensors file, atomically. Its metadata always says `"format": "pt"` (transformers
    refuses files without a format), plus any `metadata` given."""
    from safetensors.numpy import save_file

    check_state(state)
    path = Path(path)
    tensors = {k: np.asarray(v, order="C") for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", **(metadata or {})})
    return path


def write_safetensors_sharded(
    state: Mapping[str, np.ndarray], directory: str | os.PathLike, max_shard_size: int | str,
    *, is_weights_file=lambda name: name in (SAFETENSORS, SAFETENSORS_INDEX) or is_shard_name(name),
    variant: str | None = None,
) -> list[Path]:
    """Write `model-0000k-of-0000n.safetensors` + `model.safetensors.index.json` into `directory`
    (or a single `model.safetensors` when everything fits one shard: see `write_safetensors`), v4's
    variant names with `variant` (`model.fp16-00001-of-00002.safetensors`). The folder is rebuilt
    atomically, its files that `is_weights_file` does not claim carried over (`_sharded.write_sharded`)."""
    check_state(state)
    directory = Path(directory)
    from safetensors.numpy import save_file

    def write_shard(keys: list[str], path: Path) -> None:
        save_file({k: np.asarray(state[k], order="C") for k in keys}, str(path), metadata={"format": "pt"})

    return write_sharded(directory, SAFETENSORS, state, max_shard_size, write_shard,
                         lambda: write_safetensors(state, directory / add_variant(SAFETENSORS, variant)),
                         variant=variant, is_weights_file=is_weights_file)
