"""Checkpoint files <-> the canonical state dict, with NumPy only.

The canonical form is `dict[str, np.ndarray]` keyed by Hugging Face PyTorch names with linear
weights `(out, in)` (see `roberta_core.weights`). This package reads and writes the four files a
`transformers` v4 checkpoint directory may hold, without importing torch, TensorFlow or JAX, one
module per format:

- `safetensors_io`: `model.safetensors`, or shards `model-0000k-of-0000n.safetensors` +
  `model.safetensors.index.json`;
- `_sharded`: what v4's four sharded layouts share (`<file>.index.json` + `<stem>-0000k-of-0000n.<ext>`,
  the variant names `model.fp16.safetensors`), the index's checks, the atomic sharded writer;
- `torch_bin`: `pytorch_model.bin`, the zip archive `torch.save` writes, unpickled by the
  restricted unpickler of `pickle_reader` (shared with `roberta_core.fairseq`), which only knows
  how to rebuild tensors (a pickle naming any other global is refused, never run);
- `tf_h5`: `tf_model.h5`, the Keras 2 weights file transformers' TF models write (h5py);
- `flax_msgpack`: `flax_model.msgpack`, Flax's msgpack serialisation of the parameter tree.

Each format may also be sharded as v4 shards it (`pytorch_model.bin.index.json`,
`tf_model.h5.index.json`, `flax_model.msgpack.index.json` with their shards), and safetensors and
bin files may carry v4's `variant` in their names (`model.fp16.safetensors`, `pytorch_model.fp16.bin`).

`REGISTRY` maps each format name to its `Format` (file name, reader, writer); `FORMATS` maps it to
the file name only. bf16 and fp16 arrays stay bf16 (`ml_dtypes.bfloat16`) and fp16. Writers are
atomic: they write a temporary file in the target folder (a sharded save: a staging copy of the
folder), fsync it and rename it into place, so a failure leaves the folder as it was, and a save
leaves one set of weights of its variant in the folder (another variant's files stay). Corrupt or hostile files raise `CheckpointFormatError`
naming the file; SECURITY.md says what the readers promise for untrusted files.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from .. import weights
from ..fileio import fsync_dir
from ._common import (
    BASE_MODEL_PREFIXES,
    FLAX_MSGPACK,
    FLAX_MSGPACK_INDEX,
    SAFETENSORS,
    SAFETENSORS_INDEX,
    TF_H5,
    TF_H5_INDEX,
    TORCH_BIN,
    TORCH_BIN_INDEX,
    DTYPES,
    CheckpointFormatError,
    UnsafePickleError,
    guess_architecture,
)
from ._sharded import add_variant, index_name, is_shard_of, variant_in
from .flax_msgpack import read_flax_msgpack, read_flax_msgpack_index, write_flax_msgpack, write_flax_msgpack_sharded
from .pickle_reader import RestrictedUnpickler, Storage, TensorRef, tensor_refs
from .safetensors_io import (
    is_shard_name,
    parse_size,
    read_safetensors,
    read_safetensors_index,
    write_safetensors,
    write_safetensors_sharded,
)
from .tf_h5 import read_tf_h5, read_tf_h5_index, write_tf_h5, write_tf_h5_sharded
from .torch_bin import TorchArchive, iter_torch_bin, read_torch_bin, read_torch_bin_index, write_torch_bin, write_torch_bin_sharded

__all__ = [
    "CheckpointFormatError",
    "UnsafePickleError",
    "WEIGHTS_FILES",
    "FORMATS",
    "Format",
    "REGISTRY",
    "is_weights_file",
    "variant_of",
    "find_weights_file",
    "weights_files",
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

# What a checkpoint directory may hold, in the order `find_weights_file` prefers them: each
# format's file, then v4's index of its shards.
WEIGHTS_FILES = (
    SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_BIN_INDEX, TF_H5, TF_H5_INDEX, FLAX_MSGPACK, FLAX_MSGPACK_INDEX,
)


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

# Readers by suffix (a file given by path may be named anything); a shard index by the format it names.
_INDEX_READERS: dict[str, Callable[[Path], Iterator[tuple[str, np.ndarray]]]] = {
    ".safetensors": read_safetensors_index,
    ".bin": read_torch_bin_index,
    ".h5": read_tf_h5_index,
    ".msgpack": read_flax_msgpack_index,
}
_INDEX = re.compile(r".+(\.safetensors|\.bin|\.h5|\.msgpack)\.index(?:\.[^.]+)?\.json")
_READERS: dict[str, Callable[[Path], Iterator[tuple[str, np.ndarray]]]] = {
    ".safetensors": read_safetensors,
    ".bin": iter_torch_bin,
    ".pt": iter_torch_bin,
    ".pth": iter_torch_bin,
    ".h5": read_tf_h5,
    ".msgpack": read_flax_msgpack,
}


# ---------------------------------------------------------------------------- entry points
def weights_files(
    formats: Iterable[str] = (), *, variant: str | None = None, use_safetensors: bool | None = None,
    only: bool = False,
) -> tuple[str, ...]:
    """The weights file names a checkpoint directory is searched for, in order: the formats in
    `formats` first (names of `REGISTRY`), then the others in `REGISTRY`'s order (none with
    `only`); each format's file, then v4's index of its shards. `variant` (v4's, e.g. 'fp16')
    gives v4's variant names (`model.fp16.safetensors`, `model.safetensors.index.fp16.json`,
    `pytorch_model.fp16.bin`, `pytorch_model.bin.index.fp16.json`) and only those: v4 names no
    variant of the TF and Flax files. `use_safetensors` is v4's: False leaves safetensors out,
    True keeps only safetensors."""
    formats = list(dict.fromkeys([*formats, *(() if only else REGISTRY)]))
    unknown = [f for f in formats if f not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown checkpoint format {unknown[0]!r}; choose among {', '.join(REGISTRY)}")
    check_variant(variant)
    names = []
    for name in formats:
        if (use_safetensors is False and name == "safetensors") or (use_safetensors and name != "safetensors"):
            continue
        if variant is not None and name not in ("safetensors", "bin"):
            continue
        names += [add_variant(REGISTRY[name].file, variant), index_name(REGISTRY[name].file, variant)]
    return tuple(names)


def check_variant(variant: str | None) -> None:
    """v4's `variant` is a word spliced into file names ('fp16', 'bf16', 'ema')."""
    if variant is not None and (not isinstance(variant, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", variant)):
        raise ValueError(f"variant must be a word like 'fp16' (letters, digits, '-', '_'), got {variant!r}")


def find_weights_file(
    directory: str | os.PathLike, formats: Iterable[str] = (), *, variant: str | None = None,
    use_safetensors: bool | None = None, only: bool = False,
) -> Path:
    """The weights file of a checkpoint directory: the first of `weights_files(formats, variant=,
    use_safetensors=, only=)` there (by default: safetensors, its sharded index, pytorch_model.bin, its
    index, tf_model.h5, its index, flax_model.msgpack, its index). None there: FileNotFoundError
    (an OSError, as v4's) in v4's words, naming the files looked for."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such checkpoint directory")
    formats = list(formats)
    names = weights_files(formats, variant=variant, use_safetensors=use_safetensors, only=only)
    for name in names:
        if (directory / name).is_file():
            return directory / name
    if use_safetensors:  # v4's words
        message = f"Error no file named {add_variant(SAFETENSORS, variant)} found in directory {directory}."
    else:
        message = f"Error no file named {', '.join(names[:-1])} or {names[-1]} found in directory {directory}."
    if variant is not None:
        plain = [n for n in weights_files(formats, use_safetensors=use_safetensors, only=only)
                 if (directory / n).is_file()]
        if plain:
            message += (f" It holds {', '.join(plain)}, without the variant {variant!r}: use `variant=None` "
                        "to load those weights.")
    raise FileNotFoundError(message)


def _reader(path: Path) -> Callable[[Path], Iterator[tuple[str, np.ndarray]]]:
    index = _INDEX.fullmatch(path.name)
    reader = _INDEX_READERS[index.group(1)] if index else _READERS.get(path.suffix)
    if reader is None:
        raise CheckpointFormatError(
            f"{path}: unknown weights file type; expected one of {', '.join(WEIGHTS_FILES)} "
            "(or any *.safetensors, *.bin, *.h5, *.msgpack file, or a <file>.index.json of its shards)"
        )
    return reader


def iter_state_dict(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) pairs of a weights file or checkpoint directory, one array at
    a time, so that a converter never needs the whole model in memory twice.

    Every failure of a file's content ends in `CheckpointFormatError` naming the file (a memory or
    recursion limit hit by a hostile file included). Arrays come as stored, never cast: an integer
    or bool array under a RoBERTa parameter name (where floats are expected) is named in a warning,
    and once the file has been read, one warning names every tensor holding NaN or Inf. An array of
    a dtype outside `DTYPES` (object, unicode, bytes) is refused."""
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
        if not isinstance(array, np.ndarray) or array.dtype.name not in DTYPES:
            # no reader yields one now; refused here too, so an object, unicode or bytes array (which
            # only a malformed file could describe) never reaches a caller as a "weight"
            what = f"{array.dtype} data" if isinstance(array, np.ndarray) else f"a {type(array).__name__}"
            raise CheckpointFormatError(f"{path}: parameter {key!r} holds {what}, not numbers; allowed dtypes: "
                                        f"{', '.join(DTYPES)}")
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


def is_weights_file(name: str, variant: str | None = None) -> bool:
    """Whether a file of this name in a checkpoint directory holds weights (any format, shards
    included) of `variant` (None: the plain names; a variant's files are another set of weights,
    which a save of the plain names leaves in place, as v4's does)."""
    return name in _variant_files(variant) or any(is_shard_of(name, fmt.file, variant) for fmt in REGISTRY.values())


def variant_of(name: str) -> str | None:
    """The variant whose weights file (any format's file, shard or index) `name` is ('fp16' for
    'model.fp16.safetensors'); None for the plain names and for any other file."""
    for fmt in REGISTRY.values():
        variant = variant_in(name, fmt.file)
        if variant is not None and is_weights_file(name, variant):
            return variant
    return None


def _variant_files(variant: str | None) -> tuple[str, ...]:
    return tuple(n for fmt in REGISTRY.values() for n in (add_variant(fmt.file, variant), index_name(fmt.file, variant)))


def save_state_dict(
    state: Mapping[str, np.ndarray],
    directory: str | os.PathLike,
    *,
    format: str = "safetensors",
    max_shard_size: int | str | None = None,
    architecture: str | None = None,
    metadata: Mapping[str, str] | None = None,
    base_model_prefix: str | None = None,
    variant: str | None = None,
) -> list[Path]:
    """Write a canonical state dict into a checkpoint directory in `format` ('safetensors', 'bin',
    'h5' or 'msgpack') and return the files written. `max_shard_size` splits the weights into
    v4's shards of that format (`model-00001-of-00003.safetensors` + `model.safetensors.index.json`,
    `pytorch_model-...bin` + `pytorch_model.bin.index.json`, `tf_model-...h5` +
    `tf_model.h5.index.json`, `flax_model-...msgpack` + `flax_model.msgpack.index.json`), the
    folder rebuilt atomically. `variant` (safetensors and bin, as v4's PyTorch `save_pretrained`)
    writes v4's variant names (`model.fp16.safetensors`, `pytorch_model.fp16.bin`, shards
    `model.fp16-00001-of-00002.safetensors` + `model.safetensors.index.fp16.json`). `architecture` names the PyTorch class for the TF file's scope
    (guessed from the keys when absent; any family member's name, `XLMRobertaForMaskedLM`).
    `base_model_prefix` is the encoder's name in the file (`config.base_model_prefix`:
    `roberta_prelayernorm` writes RoBERTa-PreLayerNorm's `roberta_prelayernorm.` keys, TF layer
    and Flax level); by default the architecture's member's, else `roberta`. The state itself
    is canonical (`roberta.` keys) whatever the member. Each file is written atomically.

    Afterwards the directory holds exactly one set of weights of this variant, the new one: weights
    files of other formats (and a stale shard index with its shards) in the same variant are removed
    once the new files are in place, so a reader (`find_weights_file`, `from_pretrained`) can never
    prefer an old file. Another variant's files stay, as v4 leaves them."""
    if format not in FORMATS:
        raise ValueError(f"unknown checkpoint format {format!r}; choose one of {', '.join(FORMATS)}")
    check_variant(variant)
    if variant is not None and format not in ("safetensors", "bin"):
        raise ValueError(
            f"variant={variant!r}: v4 names variants of model.safetensors and pytorch_model.bin only, "
            f"not of {FORMATS[format]}; save format 'safetensors' or 'bin'"
        )
    if metadata is not None and format != "safetensors":
        raise ValueError(f"metadata is supported for safetensors only, not {format!r}")
    if architecture is not None:
        weights.head_for_architecture(architecture)  # validates the name
    base_model_prefix, architecture = _member_names(state, base_model_prefix, architecture)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} exists and is not a directory")
    created = not directory.exists()
    claims = lambda name: is_weights_file(name, variant)  # noqa: E731  (the files a sharded save replaces)
    try:
        if max_shard_size is not None and format == "safetensors":
            written = write_safetensors_sharded(
                _file_keys(state, base_model_prefix), directory, max_shard_size, is_weights_file=claims, variant=variant
            )
        elif max_shard_size is not None and format == "bin":
            written = write_torch_bin_sharded(
                _file_keys(state, base_model_prefix), directory, max_shard_size, is_weights_file=claims, variant=variant
            )
        elif max_shard_size is not None and format == "h5":
            written = write_tf_h5_sharded(state, directory, max_shard_size, is_weights_file=claims,
                                          architecture=architecture, base_model_prefix=base_model_prefix)
        elif max_shard_size is not None:
            written = write_flax_msgpack_sharded(state, directory, max_shard_size, is_weights_file=claims,
                                                 base_model_prefix=base_model_prefix)
        else:
            options = {"architecture": architecture, "metadata": metadata, "base_model_prefix": base_model_prefix}
            file = add_variant(REGISTRY[format].file, variant)
            written = [REGISTRY[format].writer(state, directory / file, **options)]
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if it stayed empty
        raise
    _remove_other_weights(directory, keep=written, variant=variant)
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


def _remove_other_weights(directory: Path, keep: list[Path], variant: str | None = None) -> None:
    """Delete the weights files of `variant` in `directory` other than `keep`: first those a reader
    prefers (in `find_weights_file`'s order, an index before its shards), so that at every moment
    the file a reader picks is either the new one or absent from the race."""
    keep_names = {p.name for p in keep}
    stale = [directory / n for n in _variant_files(variant) if n not in keep_names]
    stale += sorted(p for p in directory.iterdir() if p.name not in keep_names and p.name not in _variant_files(variant)
                    and is_weights_file(p.name, variant))
    removed = False
    for path in stale:
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
            removed = True
    if removed:
        fsync_dir(directory)
