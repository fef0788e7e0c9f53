"""`model.safetensors`, or shards `model-0000k-of-0000n.safetensors` + `model.safetensors.index.json`.

The `safetensors` library validates a file (header, offsets, sizes) before we read it; we then read
the bytes with plain reads into fresh arrays."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from .. import weights
from ..fileio import atomic_dir, atomic_path, current_umask
from ._common import SAFETENSORS, SAFETENSORS_INDEX, CheckpointFormatError, DTYPES, check_state, empty_aligned

__all__ = ["parse_size", "read_safetensors", "read_safetensors_index", "write_safetensors", "write_safetensors_sharded",
           "is_shard_name"]

_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_SHARD = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")


def is_shard_name(name: str) -> bool:
    """Whether `name` is a shard file name a sharded save writes (`model-00001-of-00003.safetensors`)."""
    return _SHARD.fullmatch(name) is not None


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


def _read_file_keys(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """(key as the file names it, array), one tensor at a time."""
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
            array = empty_aligned(tuple(info["shape"]), dtype)
            raw.seek(base + start)
            if array.nbytes != end - start or raw.readinto(array.reshape(-1).view(np.uint8)) != end - start:
                raise CheckpointFormatError(f"{path}: cannot read tensor {key!r}: file truncated or offsets wrong")
            yield key, array


def read_safetensors_index(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from a sharded checkpoint described by `model.safetensors.index.json`."""
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
        for key, array in _read_file_keys(path.parent / shard):
            if key in wanted:
                wanted.discard(key)
                yield weights.from_file_key(key), array
        if wanted:
            raise CheckpointFormatError(f"{path.parent / shard}: lacks tensors the index puts there: {sorted(wanted)[:8]}")


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
    state: Mapping[str, np.ndarray], directory: str | os.PathLike, max_shard_size: int | str,
    *, is_weights_file=lambda name: name in (SAFETENSORS, SAFETENSORS_INDEX) or is_shard_name(name),
) -> list[Path]:
    """Write `model-0000k-of-0000n.safetensors` + `model.safetensors.index.json` into `directory`
    (or a single `model.safetensors` when everything fits one shard: see `write_safetensors`).

    Several files cannot be renamed into a folder in one step, so the whole folder is rebuilt with
    `fileio.atomic_dir`: the files of the existing folder that `is_weights_file` does not claim
    (config.json, tokenizer files, ...) are hard-linked (or copied) into a staging folder, the
    shards and the index are written there, and the staging folder is swapped in. A reader sees
    the old checkpoint or the new one, never a mix of shards; a failed save leaves the old folder.
    A symlinked `directory` is rebuilt where the link points."""
    check_state(state)
    directory = Path(directory)
    groups = _shards(state, parse_size(max_shard_size))
    if len(groups) == 1:
        return [write_safetensors(state, directory / SAFETENSORS)]
    names = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    index = {
        "metadata": {"total_parameters": int(sum(v.size for v in state.values())),
                     "total_size": int(sum(v.nbytes for v in state.values()))},
        "weight_map": {key: name for name, keys in zip(names, groups) for key in keys},
    }
    from safetensors.numpy import save_file

    folder = directory.resolve() if directory.is_symlink() else directory
    with atomic_dir(folder, overwrite=True) as staging:
        if folder.is_dir():
            for entry in folder.iterdir():
                if not is_weights_file(entry.name):
                    _link_into(entry, staging / entry.name)
        for name, keys in zip(names, groups):
            save_file({k: np.asarray(state[k], order="C") for k in keys}, str(staging / name), metadata={"format": "pt"})
        (staging / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for name in names:  # save_file creates its files private (0600)
            os.chmod(staging / name, 0o666 & ~current_umask())
    return [directory / n for n in names + [SAFETENSORS_INDEX]]


def _link_into(src: Path, dst: Path) -> None:
    """Carry `src` into the staging folder: a hard link where the file system allows, else a copy."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(src, dst)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
