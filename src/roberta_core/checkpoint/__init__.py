"""Checkpoint files <-> the canonical state dict, with NumPy only.

The canonical form is `dict[str, np.ndarray]` keyed by Hugging Face PyTorch names with linear
weights `(out, in)` (see `roberta_core.weights`). This package reads and writes the four files a
`transformers` v4 checkpoint directory may hold, without importing torch, TensorFlow or JAX, one
module per format:

- `safetensors_io`: `model.safetensors`, or shards `model-0000k-of-0000n.safetensors` +
  `model.safetensors.index.json`;
- `torch_bin`: `pytorch_model.bin`, the zip archive `torch.save` writes, unpickled by the
  restricted unpickler of `pickle_reader` (shared with `roberta_core.fairseq`), which only knows
  how to rebuild tensors (a pickle naming any other global is refused, never run);
- `tf_h5`: `tf_model.h5`, the Keras 2 weights file transformers' TF models write (h5py);
- `flax_msgpack`: `flax_model.msgpack`, Flax's msgpack serialisation of the parameter tree.

`REGISTRY` maps each format name to its `Format` (file name, reader, writer); `FORMATS` maps it to
the file name only. bf16 and fp16 arrays stay bf16 (`ml_dtypes.bfloat16`) and fp16. Writers are
atomic: they write a temporary file in the target folder (a sharded save: a staging copy of the
folder), fsync it and rename it into place, so a failure leaves the folder as it was, and a save
leaves one set of weights in the folder. Corrupt or hostile files raise `CheckpointFormatError`
naming the file; SECURITY.md says what the readers promise for untrusted files.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from .. import weights
from ..fileio import fsync_dir
from ._common import (
    BASE_MODEL_PREFIXES,
    FLAX_MSGPACK,
    SAFETENSORS,
    SAFETENSORS_INDEX,
    TF_H5,
    TORCH_BIN,
    CheckpointFormatError,
    UnsafePickleError,
    guess_architecture,
)
from .flax_msgpack import read_flax_msgpack, write_flax_msgpack
from .pickle_reader import RestrictedUnpickler, Storage, TensorRef, tensor_refs
from .safetensors_io import (
    is_shard_name,
    parse_size,
    read_safetensors,
    read_safetensors_index,
    write_safetensors,
    write_safetensors_sharded,
)
from .tf_h5 import read_tf_h5, write_tf_h5
from .torch_bin import TorchArchive, iter_torch_bin, read_torch_bin, write_torch_bin

__all__ = [
    "CheckpointFormatError",
    "UnsafePickleError",
    "WEIGHTS_FILES",
    "FORMATS",
    "Format",
    "REGISTRY",
    "is_weights_file",
    "find_weights_file",
    "iter_state_dict",
    "load_state_dict",
    "save_state_dict",
    "guess_architecture",
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
    "TorchArchive",
    "RestrictedUnpickler",
    "Storage",
    "TensorRef",
    "tensor_refs",
]

# Old private names, kept while callers move to the public ones.
_TorchArchive, _RestrictedUnpickler, _Storage, _TensorRef, _refs = TorchArchive, RestrictedUnpickler, Storage, TensorRef, tensor_refs

# What a checkpoint directory may hold, in the order `find_weights_file` prefers them.
WEIGHTS_FILES = (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TF_H5, FLAX_MSGPACK)


# ---------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Format:
    """One checkpoint format: the file `save_state_dict` writes, the function that yields
    (canonical name, array) from such a file, and the function that writes one
    (`writer(state, path, **options)`)."""

    file: str
    reader: Callable[[Path], Iterator[tuple[str, np.ndarray]]]
    writer: Callable[..., Path]


def _write_bin(state, path, *, base_model_prefix="roberta", **_):
    return write_torch_bin(_file_keys(state, base_model_prefix), path)


def _write_msgpack(state, path, *, base_model_prefix="roberta", **_):
    return write_flax_msgpack(state, path, base_model_prefix=base_model_prefix)


def _write_h5(state, path, *, architecture=None, base_model_prefix="roberta", **_):
    return write_tf_h5(state, path, architecture=architecture, base_model_prefix=base_model_prefix)


def _write_safetensors(state, path, *, metadata=None, base_model_prefix="roberta", **_):
    return write_safetensors(_file_keys(state, base_model_prefix), path, metadata)


def _file_keys(state: Mapping[str, np.ndarray], base_model_prefix: str) -> dict[str, np.ndarray]:
    """The state with the keys a family member's PyTorch file uses (`roberta_prelayernorm.` for PreLN)."""
    return {weights.to_file_key(k, base_model_prefix): v for k, v in state.items()}


# format name -> how to write and read it, in `find_weights_file`'s order of preference.
REGISTRY: dict[str, Format] = {
    "safetensors": Format(SAFETENSORS, read_safetensors, _write_safetensors),
    "bin": Format(TORCH_BIN, iter_torch_bin, _write_bin),
    "h5": Format(TF_H5, read_tf_h5, _write_h5),
    "msgpack": Format(FLAX_MSGPACK, read_flax_msgpack, _write_msgpack),
}

# save_state_dict format -> file written
FORMATS: dict[str, str] = {name: fmt.file for name, fmt in REGISTRY.items()}

# Readers by exact file name first, then by suffix (a file given by path may be named anything).
_READERS: dict[str, Callable[[Path], Iterator[tuple[str, np.ndarray]]]] = {
    SAFETENSORS_INDEX: read_safetensors_index,
    ".safetensors": read_safetensors,
    ".bin": iter_torch_bin,
    ".pt": iter_torch_bin,
    ".pth": iter_torch_bin,
    ".h5": read_tf_h5,
    ".msgpack": read_flax_msgpack,
}


# ---------------------------------------------------------------------------- entry points
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
    a time, so that a converter never needs the whole model in memory twice.

    Every failure of a file's content ends in `CheckpointFormatError` naming the file (a memory or
    recursion limit hit by a hostile file included). Arrays come as stored, never cast: an integer
    or bool array under a RoBERTa parameter name (where floats are expected) is named in a warning,
    and once the file has been read, one warning names every tensor holding NaN or Inf."""
    path = Path(path)
    if path.is_dir():
        path = find_weights_file(path)
    elif not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file or checkpoint directory")
    seen: set[str] = set()
    non_finite: list[str] = []
    not_float: list[str] = []
    reader = _reader(path)(path)
    try:
        yield from _checked(path, reader, non_finite, not_float, seen)
    finally:
        reader.close()  # closes the file now, also when the caller stops early
    if non_finite:
        warnings.warn(f"{path}: {len(non_finite)} tensor(s) hold NaN or Inf values: {', '.join(non_finite[:12])}"
                      + (f", ... ({len(non_finite) - 12} more)" if len(non_finite) > 12 else ""), stacklevel=2)
    if not_float:
        warnings.warn(f"{path}: integer or bool values where RoBERTa parameters are floating point: "
                      f"{', '.join(not_float[:12])}; returned as stored, not cast", stacklevel=2)


_SMALL_FLOATS = ("bfloat16", "float8_e4m3fn", "float8_e5m2")  # ml_dtypes' types, kind 'V' to NumPy


def _has_non_finite(array: np.ndarray) -> bool:
    if array.dtype.kind in "fc":
        return not np.isfinite(array).all()
    if array.dtype.name in _SMALL_FLOATS:  # a float64 sum of these cannot overflow: it is finite iff they all are
        return not np.isfinite(np.add.reduce(array.reshape(-1), dtype=np.float64))
    return False


def _checked(path: Path, reader: Iterator[tuple[str, np.ndarray]], non_finite: list[str], not_float: list[str],
             seen: set[str]) -> Iterator[tuple[str, np.ndarray]]:
    """`reader`'s items, with its raw failures turned into errors naming `path`, duplicates
    refused, and the NaN/Inf and non-float tensors noted."""
    while True:
        try:
            item = next(reader, None)
        except CheckpointFormatError:
            raise
        except (MemoryError, RecursionError, OverflowError, ValueError, TypeError) as e:
            raise CheckpointFormatError(f"{path}: cannot read the weights ({type(e).__name__}: {e})") from None
        if item is None:
            break
        key, array = item
        if key in seen:
            raise CheckpointFormatError(f"{path}: parameter {key!r} appears twice")
        seen.add(key)
        if _has_non_finite(array):
            non_finite.append(key)
        if array.dtype.kind in "biu" and _expects_float(key):
            not_float.append(f"{key} ({array.dtype})")
        yield key, array


def _expects_float(key: str) -> bool:
    """Whether `key` is a RoBERTa parameter (floating point), not a buffer or a foreign name."""
    if weights.is_buffer(key):
        return False
    try:
        weights.is_transposed(key)
    except ValueError:
        return False
    return True


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The canonical state dict of a weights file or checkpoint directory (any of the four formats)."""
    return dict(iter_state_dict(path))


def is_weights_file(name: str) -> bool:
    """Whether a file of this name in a checkpoint directory holds weights (any format, shards included)."""
    return name in WEIGHTS_FILES or is_shard_name(name)


def save_state_dict(
    state: Mapping[str, np.ndarray],
    directory: str | os.PathLike,
    *,
    format: str = "safetensors",
    max_shard_size: int | str | None = None,
    architecture: str | None = None,
    metadata: Mapping[str, str] | None = None,
    base_model_prefix: str | None = None,
) -> list[Path]:
    """Write a canonical state dict into a checkpoint directory in `format` ('safetensors', 'bin',
    'h5' or 'msgpack') and return the files written. `max_shard_size` (safetensors only) splits
    the weights into shards; `architecture` names the PyTorch class for the TF file's scope
    (guessed from the keys when absent; any family member's name, `XLMRobertaForMaskedLM`).
    `base_model_prefix` is the encoder's name in the file (`config.base_model_prefix`:
    `roberta_prelayernorm` writes RoBERTa-PreLayerNorm's `roberta_prelayernorm.` keys, TF layer
    and Flax level); by default the architecture's member's, else `roberta`. The state itself
    is canonical (`roberta.` keys) whatever the member. Each file is written atomically.

    Afterwards the directory holds exactly one set of weights, the new one: weights files of other
    formats (and a stale shard index with its shards) are removed once the new files are in place,
    so a reader (`find_weights_file`, `from_pretrained`) can never prefer an old file."""
    if format not in FORMATS:
        raise ValueError(f"unknown checkpoint format {format!r}; choose one of {', '.join(FORMATS)}")
    if max_shard_size is not None and format != "safetensors":
        raise ValueError(f"max_shard_size is supported for safetensors only, not {format!r}")
    if metadata is not None and format != "safetensors":
        raise ValueError(f"metadata is supported for safetensors only, not {format!r}")
    if architecture is not None:
        weights.head_for_architecture(architecture)  # validates the name
    base_model_prefix, architecture = _member_names(state, base_model_prefix, architecture)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} exists and is not a directory")
    created = not directory.exists()
    try:
        if format == "safetensors" and max_shard_size is not None:
            written = write_safetensors_sharded(
                _file_keys(state, base_model_prefix), directory, max_shard_size, is_weights_file=is_weights_file
            )
        else:
            options = {"architecture": architecture, "metadata": metadata, "base_model_prefix": base_model_prefix}
            written = [REGISTRY[format].writer(state, directory / REGISTRY[format].file, **options)]
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if it stayed empty
        raise
    _remove_other_weights(directory, keep=written)
    return written


def _member_names(
    state: Mapping[str, np.ndarray], base_model_prefix: str | None, architecture: str | None
) -> tuple[str, str | None]:
    """(base_model_prefix, architecture) agreeing with each other: the prefix defaults to the
    architecture's member's; a PreLN prefix without an architecture gets the PreLN class of the
    head the keys show (the TF file's scope)."""
    member = None if architecture is None else weights.family_of_architecture(architecture)
    implied = "roberta_prelayernorm" if member == "roberta-prelayernorm" else "roberta"
    if base_model_prefix is None:
        return implied, architecture
    if base_model_prefix not in BASE_MODEL_PREFIXES:
        raise ValueError(
            f"base_model_prefix must be one of {', '.join(map(repr, BASE_MODEL_PREFIXES))}, got {base_model_prefix!r}"
        )
    if architecture is not None and base_model_prefix != implied:
        raise ValueError(
            f"architecture {architecture!r} names its encoder {implied!r} in files, not base_model_prefix={base_model_prefix!r}"
        )
    if architecture is None and base_model_prefix == "roberta_prelayernorm" and isinstance(state, Mapping):
        try:
            head = weights.head_for_architecture(guess_architecture(state))
        except ValueError:
            return base_model_prefix, None
        architecture = weights.architecture_name(head, "roberta-prelayernorm")
    return base_model_prefix, architecture


def _remove_other_weights(directory: Path, keep: list[Path]) -> None:
    """Delete the weights files in `directory` other than `keep`: first those a reader prefers
    (in `find_weights_file`'s order, an index before its shards), so that at every moment the file
    a reader picks is either the new one or absent from the race."""
    keep_names = {p.name for p in keep}
    stale = [directory / n for n in WEIGHTS_FILES if n not in keep_names]
    stale += sorted(p for p in directory.glob("model-*-of-*.safetensors") if is_shard_name(p.name) and p.name not in keep_names)
    removed = False
    for path in stale:
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
            removed = True
    if removed:
        fsync_dir(directory)
