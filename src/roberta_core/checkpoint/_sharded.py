"""What every sharded format shares: v4's file names (`<stem>-0000k-of-0000n.<ext>` beside
`<file>.index.json`, a `variant` spliced in as `_add_variant` does), the index reader with the
checks an untrusted index gets, the generic reader over the shards, and the atomic writer of a
sharded folder.

v4 writes four sharded layouts, one per format: `model.safetensors.index.json`,
`pytorch_model.bin.index.json`, `tf_model.h5.index.json`, `flax_model.msgpack.index.json`, each
`{"metadata": {...}, "weight_map": {name: shard file}}`; the names are the format's own (PyTorch
keys; the TF variable names with the model's scope, `tf_roberta_for_masked_lm/roberta/...:0`;
the Flax paths joined by `/`)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from ..fileio import atomic_dir, current_umask
from ._common import CheckpointFormatError

__all__ = [
    "MAX_INDEX_BYTES", "parse_size", "add_variant", "variant_in", "index_name", "shard_name", "is_shard_of", "shard_files", "read_index",
    "read_sharded", "group_by_size", "write_sharded", "link_into",
]

# An index names one shard per tensor: a few hundred entries for RoBERTa, a few MB for the largest
# models on the Hub. A bigger file is not an index.
MAX_INDEX_BYTES = 64 * 2**20
MAX_SHARDS = 100_000
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


def add_variant(name: str, variant: str | None) -> str:
    """v4's `_add_variant`: 'model.safetensors', 'fp16' -> 'model.fp16.safetensors';
    'model.safetensors.index.json' -> 'model.safetensors.index.fp16.json'."""
    if variant is None:
        return name
    stem, ext = name.rsplit(".", 1)
    return f"{stem}.{variant}.{ext}"


def variant_in(name: str, file: str) -> str | None:
    """The variant `name` is a file of (`file`'s variant, a shard of it, or its index named as
    `add_variant`, `shard_name` and `index_name` name them: 'model.fp16.safetensors',
    'model.fp16-00001-of-00002.safetensors', 'model.safetensors.index.fp16.json' -> 'fp16'); None
    for any other name, the plain ones included."""
    stem, ext = file.rsplit(".", 1)
    for pattern in (re.escape(stem) + r"\.([A-Za-z0-9_\-]+?)(?:-\d{5}-of-\d{5})?\." + re.escape(ext),
                    re.escape(file) + r"\.index\.([A-Za-z0-9_\-]+)\.json"):
        m = re.fullmatch(pattern, name)
        if m is not None:
            return m.group(1)
    return None


def index_name(file: str, variant: str | None = None) -> str:
    """The index of a sharded `file`: 'pytorch_model.bin' -> 'pytorch_model.bin.index.json'."""
    return add_variant(f"{file}.index.json", variant)


def shard_name(file: str, k: int, n: int, variant: str | None = None) -> str:
    """v4's shard k (1-based) of n of `file`: 'tf_model.h5' -> 'tf_model-00001-of-00003.h5'
    ('model.fp16-00001-of-00003.safetensors' with a variant)."""
    stem, ext = add_variant(file, variant).rsplit(".", 1)
    return f"{stem}-{k:05d}-of-{n:05d}.{ext}"


def is_shard_of(name: str, file: str, variant: str | None = None) -> bool:
    """Whether `name` is a shard file name of `file` (in `variant`) as a sharded save writes it."""
    stem, ext = add_variant(file, variant).rsplit(".", 1)
    return re.fullmatch(re.escape(stem) + r"-\d{5}-of-\d{5}\." + re.escape(ext), name) is not None


def _weight_map(path: Path) -> dict[str, str]:
    try:
        size = path.stat().st_size
        if size > MAX_INDEX_BYTES:
            raise ValueError(f"{size} bytes; an index is at most {MAX_INDEX_BYTES}")
        with open(path, "rb") as f:
            weight_map = json.loads(f.read(MAX_INDEX_BYTES + 1).decode("utf-8"))["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise TypeError("weight_map is not a mapping of names to shard files")
    except (ValueError, KeyError, TypeError, RecursionError, MemoryError) as e:  # RecursionError: JSON nested too deep
        raise CheckpointFormatError(
            f"{path}: not a shard index (JSON with a 'weight_map'): {type(e).__name__}: {str(e)[:200]}"
        ) from None
    return weight_map


def shard_files(path: str | os.PathLike) -> dict[str, list[str]]:
    """shard file -> the names the index `path` puts there, in the index's order. The index is
    untrusted: at most `MAX_INDEX_BYTES`, and every shard must be a plain file name in the index's
    own folder (no folder, no '..'); each name sits in exactly one shard (a JSON object holds a
    name once) and no name is empty (no format stores a tensor under ''; a Flax path '' would be
    the top level of the tree). Whether the shards exist is not checked here (the Hub fetches
    them from this)."""
    path = Path(path)
    shards: dict[str, list[str]] = {}
    for key, shard in _weight_map(path).items():
        if not key:
            raise CheckpointFormatError(f"{path}: the weight_map names a tensor '' (an empty name); every tensor has a name")
        if shard in ("", ".", "..") or Path(shard).name != shard or "/" in shard or "\\" in shard or "\0" in shard:
            raise CheckpointFormatError(f"{path}: shard {shard!r} is not a file name in the same folder")
        shards.setdefault(shard, []).append(key)
    if len(shards) > MAX_SHARDS:
        raise CheckpointFormatError(f"{path}: names {len(shards)} shards; at most {MAX_SHARDS} are read")
    return shards


def read_index(path: str | os.PathLike) -> dict[str, list[str]]:
    """`shard_files`, and every shard present beside the index."""
    path = Path(path)
    shards = shard_files(path)
    missing = [s for s in shards if not (path.parent / s).is_file()]
    if missing:
        raise CheckpointFormatError(f"{path}: shard file(s) missing: {', '.join(missing)}")
    return shards


# A shard reader reads one shard file, and of it only the names in `wanted` (the names the index
# puts in that shard, as `name_of` spells them), each at most once: it yields (that name,
# canonical key, array). A name listed many times in a shard, or a name the index puts elsewhere,
# is never read.
ShardReader = Callable[[Path, frozenset[str]], Iterator[tuple[str, str, np.ndarray]]]


def read_sharded(
    path: str | os.PathLike, read_shard: ShardReader, *, name_of: Callable[[str], str] = lambda name: name
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from the sharded checkpoint whose index is `path`, one shard
    at a time: each shard must hold every name the index puts there, and is asked for those only
    (`read_shard(shard, wanted)`, see `ShardReader`). `name_of` turns an index name into the name
    the shard reader gives (TF: the variable name without the model's scope). Two shards that are
    one file (a symlink or hard link; (st_dev, st_ino) already read for this index) are refused:
    a file's per-file budget is spent once per index. A generator: the
    index is read at the first `next`, so its failures come through the caller's error wrapper."""
    path = Path(path)
    files: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) -> the shard read from that file
    for shard, keys in read_index(path).items():
        try:
            st = os.stat(path.parent / shard)  # follows a symlink: the Hub cache links shards to blobs
        except OSError as e:
            raise CheckpointFormatError(f"{path.parent / shard}: cannot read the shard: {e}") from None
        if (st.st_dev, st.st_ino) in files:
            raise CheckpointFormatError(
                f"{path}: shards {files[(st.st_dev, st.st_ino)]} and {shard} are the same file (a link, or identical "
                "content in the Hub cache); a checkpoint's shards hold different names, so each file is read once"
            )
        files[(st.st_dev, st.st_ino)] = shard
        wanted = {name_of(k) for k in keys}
        for name, key, array in read_shard(path.parent / shard, frozenset(wanted)):
            if name in wanted:  # a reader that yields a name twice, or one not asked for, gets no further
                wanted.discard(name)
                yield key, array
        if wanted:
            raise CheckpointFormatError(f"{path.parent / shard}: lacks tensors the index puts there: {sorted(wanted)[:8]}")


def group_by_size(sizes: Mapping[str, int], max_bytes: int) -> list[list[str]]:
    """Greedy split in key order, as Hugging Face does: a tensor larger than the limit gets a shard of its own."""
    shards: list[list[str]] = [[]]
    size = 0
    for key, nbytes in sizes.items():
        if shards[-1] and size + nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    return shards


def write_sharded(
    directory: str | os.PathLike, file: str, items: Mapping[str, np.ndarray], max_shard_size: int | str,
    write_shard: Callable[[list[str], Path], None], write_single: Callable[[], Path], *,
    weight_name: Callable[[str], str] = lambda k: k, variant: str | None = None,
    is_weights_file: Callable[[str], bool], total_parameters: bool = True,
) -> list[Path]:
    """Write v4's sharded layout of `file` into `directory`: `items` (name as the shards store it
    -> array) split by `group_by_size` at `max_shard_size`; or, when everything fits one shard,
    `write_single()` (the one-file save, its path returned in a list). Else `write_shard(names,
    path)` writes each group as `shard_name(file, k, n, variant)`, and the index (`index_name(file,
    variant)`) maps `weight_name(name)` to its shard, with v4's metadata: `total_size` (bytes),
    and `total_parameters` (elements) where v4's PyTorch save writes it (`total_parameters=True`;
    v4's TF and Flax indexes carry `total_size` only).

    Several files cannot be renamed into a folder in one step, so the whole folder is rebuilt with
    `fileio.atomic_dir`: the files of the existing folder that `is_weights_file` does not claim
    (config.json, tokenizer files, ...) are hard-linked (or copied) into a staging folder, the
    shards and the index are written there, and the staging folder is swapped in. A reader sees
    the old checkpoint or the new one, never a mix of shards; a failed save leaves the old folder.
    A symlinked `directory` is rebuilt where the link points."""
    groups = group_by_size({k: v.nbytes for k, v in items.items()}, parse_size(max_shard_size))
    if len(groups) == 1:
        return [write_single()]
    metadata = {"total_size": int(sum(v.nbytes for v in items.values()))}
    if total_parameters:
        metadata["total_parameters"] = int(sum(v.size for v in items.values()))
    directory = Path(directory)
    names = [shard_name(file, i + 1, len(groups), variant) for i in range(len(groups))]
    index = {
        "metadata": metadata,
        "weight_map": {weight_name(key): name for name, keys in zip(names, groups) for key in keys},
    }
    index_file = index_name(file, variant)
    folder = directory.resolve() if directory.is_symlink() else directory
    with atomic_dir(folder, overwrite=True) as staging:
        if folder.is_dir():
            for entry in folder.iterdir():
                if not is_weights_file(entry.name):
                    link_into(entry, staging / entry.name)
        for name, keys in zip(names, groups):
            write_shard(keys, staging / name)
        (staging / index_file).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for name in names:  # some writers (safetensors' save_file) create their files private (0600)
            os.chmod(staging / name, 0o666 & ~current_umask())
    return [directory / n for n in names + [index_file]]


def link_into(src: Path, dst: Path) -> None:
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
