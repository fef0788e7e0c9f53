"""`tf_model.h5`: the Keras 2 weights file transformers' TF classes write (tf-keras
`save_weights`), read and written with h5py."""

from __future__ import annotations

import bisect
import itertools
import math
import os
import re
from pathlib import Path
from typing import Iterator, Mapping

import ml_dtypes
import numpy as np

from .. import weights
from ..fileio import atomic_path
from ._common import TF_H5, BASE_MODEL_PREFIXES as _BASE_LAYERS, CheckpointFormatError, check_state, guess_architecture
from ._sharded import read_index, read_sharded, write_sharded

__all__ = ["read_tf_h5", "write_tf_h5", "framework_items", "read_tf_h5_index", "write_tf_h5_sharded"]


# Keras 2 splits an attribute list over `name0`, `name1`, ... when it exceeds the HDF5 header limit.
_HDF5_ATTR_LIMIT = 64512
_KERAS_VERSION = b"2.21.0"  # the tf-keras release whose file layout this mirrors (recorded, never checked)


# The name lists of one file (the root's `layer_names` and each layer group's `weight_names`,
# repeats included) may hold at most this many names together: a Keras file lists each weight once
# (the LM head's layer lists the shared embeddings again), a few hundred for RoBERTa, a few
# thousand for the largest TF checkpoints v4 writes. Every listed name is read and decoded, so
# without a cap a file of a few MB of repeated names asks for millions of strings.
MAX_H5_NAMES = 100_000


class _NameBudget:
    """The names one file has listed so far (`MAX_H5_NAMES` at most), counted from each
    attribute's shape before its values are read."""

    def __init__(self, path: Path):
        self.path, self.count = path, 0

    def charge(self, group, attr: str) -> None:
        shape = group.attrs.get_id(attr).shape
        self.count += max(math.prod(shape), 1)  # an attribute costs a read even if empty
        if self.count > MAX_H5_NAMES:
            raise CheckpointFormatError(
                f"{self.path}: the file's name lists ('layer_names', 'weight_names') hold more than {MAX_H5_NAMES} "
                "names; a transformers TF checkpoint lists a few thousand at most. Refusing it"
            )


def _h5_names(group, name: str, budget: _NameBudget) -> list[str]:
    """The names of the attribute `name` of `group` (or of `name0`, `name1`, ... as Keras splits a
    long list), each attribute charged to `budget` before it is read."""
    if name in group.attrs:
        attrs: Iterator[str] = iter([name])
    else:
        attrs = itertools.takewhile(lambda attr: attr in group.attrs, (f"{name}{i}" for i in itertools.count()))
    names: list[str] = []
    for attr in attrs:  # each charged before it is read, so a file of many small attributes stops early too
        budget.charge(group, attr)
        names += [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in np.asarray(group.attrs[attr]).reshape(-1)]
    return names


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


# An h5 dataset with a compression filter may inflate to at most this many times its stored bytes
# (plus 1 MiB), and the compressed datasets read from one file together to at most this many times
# the file's size (plus 1 MiB once, for the whole file). The uncompressed datasets read from one
# file together hold at most the file's size: each byte of them is stored once in the file.
MAX_INFLATION = 32
_ALLOWANCE = 2**20


class _H5Budget:
    """What one h5 file may yield: the contiguous datasets' data ranges (two datasets whose raw
    data overlap are refused, whatever their headers), and the bytes read so far, uncompressed
    (at most the file's size) and compressed (at most `MAX_INFLATION` times the file's size plus
    1 MiB)."""

    def __init__(self, path: Path):
        self.path = path
        self.size = path.stat().st_size
        self.plain = 0
        self.inflated = 0
        self.starts: list[int] = []  # sorted data offsets of the contiguous datasets read
        self.ranges: dict[int, tuple[int, str]] = {}  # offset -> (end, where)

    def charge(self, dataset, where: str, declared: int, compressed: bool) -> None:
        """Account for reading `dataset` (`declared` bytes), refusing it when it would overlap a
        dataset read before or exceed the file's budget."""
        offset = dataset.id.get_offset()  # None unless contiguous and allocated
        if offset is not None and declared:
            end = offset + dataset.id.get_storage_size()
            if end > self.size:
                raise CheckpointFormatError(f"{self.path}: {where}'s data reaches past the end of the file; refusing it")
            k = bisect.bisect_left(self.starts, offset)
            for j in (k - 1, k):
                if 0 <= j < len(self.starts):
                    other = self.starts[j]
                    other_end, other_where = self.ranges[other]
                    if offset < other_end and other < end:
                        raise CheckpointFormatError(
                            f"{self.path}: {where}'s data overlaps {other_where}'s (one block of bytes under two "
                            "datasets); each byte is read once"
                        )
            self.starts.insert(k, offset)
            self.ranges[offset] = (end, where)
        if compressed:
            self.inflated += declared
            limit, total, what = MAX_INFLATION * self.size + _ALLOWANCE, self.inflated, "compressed"
        else:
            self.plain += declared
            limit, total, what = self.size, self.plain, "uncompressed"
        if total > limit:
            raise CheckpointFormatError(
                f"{self.path}: reading {where} would make {total} bytes of {what} datasets from a file of {self.size} "
                f"bytes (at most {limit}: data read twice, or a compression bomb?); refusing it"
            )


def _h5_dataset(path: Path, root, parts: list[str]):
    """The dataset at `parts` under `root`, reached through hard links only: a soft or external
    link (which could name any object, or another file) is refused before it is followed."""
    import h5py

    node = root
    for i, part in enumerate(parts):
        where = "/".join(parts[: i + 1])
        link = node.get(part, getlink=True)
        if link is None:
            raise CheckpointFormatError(f"{path}: {where} is listed but missing")
        if not isinstance(link, h5py.HardLink):
            raise CheckpointFormatError(
                f"{path}: {where} is a {type(link).__name__} (a soft or external link); only datasets stored in this "
                "file are read"
            )
        node = node[part]
    if not isinstance(node, h5py.Dataset):
        raise CheckpointFormatError(f"{path}: {'/'.join(parts)} is a {type(node).__name__}, not a dataset")
    return node


def _check_h5_dataset(path: Path, dataset, where: str) -> tuple[int, bool]:
    """Refuse, before reading, a dataset whose data would not come from this file's own bytes
    (external storage, a virtual dataset), that is not numeric, or whose declared size disagrees
    with what the file stores for it (an unwritten dataset of a huge shape reads as 1 GiB of fill
    values from a few KB of file). Returns (its declared bytes, whether it is compressed)."""
    import h5py

    plist = dataset.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise CheckpointFormatError(f"{path}: {where} is a virtual dataset (its data lives in other files); refusing it")
    if plist.get_external_count() > 0:
        raise CheckpointFormatError(f"{path}: {where} has external storage (its data lives in other files); refusing it")
    dtype = dataset.dtype
    if not (dtype.kind in "fiucb" or (dtype.kind == "V" and dtype.itemsize == 2 and dtype.names is None)):
        raise CheckpointFormatError(f"{path}: {where} holds {dtype} data, not numbers")
    declared = dtype.itemsize
    for n in dataset.shape:
        declared *= n
    stored = dataset.id.get_storage_size()
    compressed = plist.get_nfilters() > 0
    if stored > path.stat().st_size or (not compressed and stored != declared) or (
        compressed and declared > MAX_INFLATION * stored + _ALLOWANCE
    ):
        raise CheckpointFormatError(
            f"{path}: {where} declares {tuple(dataset.shape)} {dtype} ({declared} bytes) but the file stores "
            f"{stored} bytes for it{' compressed' if compressed else ''}; refusing to read it"
        )
    return declared, compressed


def _h5_array(dataset) -> np.ndarray:
    array = dataset[()]
    if array.dtype.kind == "V" and array.dtype.itemsize == 2:
        array = array.view(ml_dtypes.bfloat16)  # h5py keeps bf16 as an untagged 2-byte opaque type
    return np.asarray(array)


def read_tf_h5(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from a transformers v4 `tf_model.h5`: TF names mapped through
    `weights.from_tf_name`, kernels transposed to `(out, in)`. A bare TFRobertaModel file (only a
    `roberta` layer, `roberta_prelayernorm` for RoBERTa-PreLayerNorm) yields unprefixed names, as
    RobertaModel's state dict has them; a PreLN file's encoder names come as `roberta.`.

    Only datasets stored in this file, reached through hard links, are read, each checked before
    its data is (see `_check_h5_dataset`), each name once and each dataset once (`_read_h5`)."""
    for _, key, array in _read_h5(Path(path)):
        yield key, array


def _is_bare(layers) -> bool:
    """Whether a file's weights all sit under one encoder layer (`roberta`, or
    `roberta_prelayernorm`): a bare TFRobertaModel's, whose names come unprefixed."""
    layers = set(layers)
    return len(layers) == 1 and layers <= set(_BASE_LAYERS)


def _read_h5(
    path: Path, *, shard: bool = False, wanted: frozenset[str] | None = None, bare: bool | None = None
) -> Iterator[tuple[str, str, np.ndarray]]:
    """(the name as the file lists it, canonical key, array) of a Keras 2 weights file, the one
    reader of both layouts: a whole `tf_model.h5` (root `layer_names` lists layer groups, each
    group's `weight_names` its datasets, scoped) or a shard of v4's sharded TF checkpoint
    (`shard=True`: root `layer_names` lists the datasets themselves, unscoped). `wanted` (a
    shard's names the index puts there) limits what is read; `bare` is the whole checkpoint's
    (`_is_bare` of its layers), found from this file when None.

    Each key is read once (a name listed again, as the LM head's layer lists the shared
    embeddings, is skipped before anything is read), and each dataset once: one dataset
    hard-linked under two names is refused, and so are two datasets whose data overlap; the file
    has one budget (`_H5Budget`), so a file can never make more arrays than it stores."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise CheckpointFormatError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {e}") from None
    try:
        budget = _NameBudget(path)
        layers = list(dict.fromkeys(_h5_names(f, "layer_names", budget)))  # a layer listed again is read once
        if not layers:
            what = "a shard of a transformers TF checkpoint" if shard else "a Keras/transformers TF weights file"
            raise CheckpointFormatError(f"{path}: no 'layer_names' attribute; not {what}")
        if bare is None:
            bare = _is_bare(n.split("/", 1)[0] for n in layers) if shard else _is_bare(layers)
        seen: set[str] = set()
        data_budget = _H5Budget(path)
        read: dict[int, str] = {}  # dataset address -> the name it was read under
        for group, name, where in _h5_listing(path, f, layers, shard, budget):
            if wanted is not None and name not in wanted:
                continue
            parts = [p for p in name.split("/") if p]
            if not parts or any(p in (".", "..") for p in parts):
                raise CheckpointFormatError(f"{path}: weight name {name!r} is not a dataset path")
            key = weights.from_tf_name(name)
            if bare:
                key = key.removeprefix(weights.PREFIX)
            if key in seen:
                continue  # the LM head's layer lists the embeddings it shares again
            seen.add(key)
            dataset = _h5_dataset(path, group, parts)
            address = h5py.h5o.get_info(dataset.id).addr
            if address in read:
                raise CheckpointFormatError(
                    f"{path}: {where} is the same dataset as {read[address]} (one dataset linked under two names); "
                    "each dataset is read once"
                )
            read[address] = where
            data_budget.charge(dataset, where, *_check_h5_dataset(path, dataset, where))
            array = _h5_array(dataset)
            yield name, key, (np.ascontiguousarray(array.T) if weights.is_transposed(key) else array)
    except weights.CheckpointKeyError as e:
        raise CheckpointFormatError(f"{path}: {e}") from None
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointFormatError):
            raise
        raise CheckpointFormatError(f"{path}: corrupt HDF5 content: {e}") from None
    finally:
        f.close()


def _h5_listing(path: Path, f, layers: list[str], shard: bool, budget: _NameBudget):
    """(group, dataset name in it, where for messages) of every name the file lists, in order,
    each (group, name) once: `layers` holds no repeats, each layer group's `weight_names` is read
    once and a name it lists again is dropped here, before `_read_h5` maps it (the work stays
    linear in the file, whatever it repeats)."""
    if shard:
        for name in layers:
            yield f, name, name
        return
    for layer in layers:
        if not layer or "/" in layer or layer in (".", ".."):
            raise CheckpointFormatError(f"{path}: layer name {layer!r} is not a group name")
        if f.get(layer, getlink=True) is None:
            raise CheckpointFormatError(f"{path}: layer group {layer!r} listed in layer_names is missing")
        group = _h5_group(path, f, layer)
        for name in dict.fromkeys(_h5_names(group, "weight_names", budget)):
            yield group, name, f"{layer}/{name}"


def _h5_group(path: Path, f, layer: str):
    import h5py

    link = f.get(layer, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise CheckpointFormatError(f"{path}: layer {layer!r} is a {type(link).__name__}; only groups in this file are read")
    group = f[layer]
    if not isinstance(group, h5py.Group):
        raise CheckpointFormatError(f"{path}: layer {layer!r} is a {type(group).__name__}, not a group")
    return group


def _tf_scope(architecture: str) -> str:
    """Keras' automatic layer name of the TF class: 'RobertaForMaskedLM' -> 'tf_roberta_for_masked_lm'
    (the family's as Keras makes them: 'tfxlm_roberta_for_masked_lm', 'tf_roberta_pre_layer_norm_model')."""
    name = "TF" + re.sub(r"^(TF|Flax)", "", architecture)
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def framework_items(
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


def write_tf_h5(
    state: Mapping[str, np.ndarray], path: str | os.PathLike, *, architecture: str | None = None,
    base_model_prefix: str = "roberta",
) -> Path:
    """Write a `tf_model.h5` as transformers v4's TF classes do (tf-keras `save_weights`), atomically:
    root attrs `layer_names`/`backend`/`keras_version`, one group per top-level layer (`roberta`,
    `lm_head`, `classifier`, `qa_outputs`) whose `weight_names` are `<scope>/<tf name>:0` and whose
    datasets sit at those paths, an empty `top_level_model_weights` group. The LM head's group
    lists the embeddings it shares again, as Keras does. Weights are listed in the state's order
    (Keras lists the embeddings last; transformers and our reader match by name).

    `architecture` (a family class name, e.g. 'XLMRobertaForMaskedLM') gives the outer scope;
    `base_model_prefix` names the encoder's layer (`roberta_prelayernorm` for RoBERTa-PreLayerNorm)."""
    import h5py

    check_state(state)
    path = Path(path)
    scope = _tf_scope(architecture or guess_architecture(state))
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    if base_model_prefix not in _BASE_LAYERS:
        raise ValueError(f"base_model_prefix must be one of {', '.join(_BASE_LAYERS)}, got {base_model_prefix!r}")
    for key, value in framework_items(state, path, untied_decoder=False):
        tf_name = weights.to_tf_name(key)
        if tf_name.startswith("roberta/"):
            tf_name = base_model_prefix + tf_name[len("roberta"):]
        name = f"{scope}/{tf_name}:0"
        groups.setdefault(name.split("/")[1], []).append((name, value))
    if "lm_head" in groups:
        shared = f"/{base_model_prefix}/embeddings/"
        groups["lm_head"] += [(n, v) for n, v in groups.get(base_model_prefix, []) if shared in n]
    layers = sorted(groups, key=lambda g: g != base_model_prefix)  # model order: the encoder first
    with atomic_path(path) as tmp:
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




# ---------------------------------------------------------------------------- v4's sharded layout


def _strip_scope(name: str) -> str:
    """v4's `strip_model_name_and_prefix`: the TF variable name without the model's scope
    ('tf_roberta_for_masked_lm/roberta/...:0' -> 'roberta/...:0'), the name a shard stores."""
    if "model." not in name and len(name.split("/")) > 1:
        name = "/".join(name.split("/")[1:])
    return name


def read_tf_h5_index(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray]]:
    """Yield canonical (name, array) from v4's sharded `tf_model.h5.index.json` and its
    `tf_model-0000k-of-0000n.h5` shards (the index's checks: `_sharded.read_index`). A shard lists
    its datasets in the root attribute `layer_names` (the variable names without the model's
    scope) and holds each at that path; of each shard only the names the index puts there are
    read, each once, as `read_tf_h5` reads them (`_read_h5`). The names of a bare TFRobertaModel
    come unprefixed. The index is read at the first `next` (errors come wrapped, naming it)."""
    names = [_strip_scope(k) for keys in read_index(path).values() for k in keys]
    bare = _is_bare(n.split("/", 1)[0] for n in names)
    yield from read_sharded(path, lambda shard, wanted: _read_h5(shard, shard=True, wanted=wanted, bare=bare),
                            name_of=_strip_scope)


def write_tf_h5_sharded(
    state: Mapping[str, np.ndarray], directory: str | os.PathLike, max_shard_size: int | str, *,
    is_weights_file, architecture: str | None = None, base_model_prefix: str = "roberta",
) -> list[Path]:
    """v4 TF's `save_pretrained(max_shard_size=...)` layout: shards `tf_model-0000k-of-0000n.h5`
    (datasets at the variable names without the model's scope, listed in the root attribute
    `layer_names`) + `tf_model.h5.index.json` (the full variable names, `total_size`), or one
    `tf_model.h5` (`write_tf_h5`) when everything fits; the folder rebuilt atomically."""
    import h5py

    check_state(state)
    directory = Path(directory)
    if base_model_prefix not in _BASE_LAYERS:
        raise ValueError(f"base_model_prefix must be one of {', '.join(_BASE_LAYERS)}, got {base_model_prefix!r}")
    scope = _tf_scope(architecture or guess_architecture(state))
    items: dict[str, np.ndarray] = {}
    for key, value in framework_items(state, directory / TF_H5, untied_decoder=False):
        tf_name = weights.to_tf_name(key)
        if tf_name.startswith("roberta/"):
            tf_name = base_model_prefix + tf_name[len("roberta"):]
        items[f"{tf_name}:0"] = value

    def write_shard(names: list[str], path: Path) -> None:
        with h5py.File(path, "w") as f:
            for name in sorted(names):
                f.create_dataset(name, data=items[name])
            _set_h5_names(f, "layer_names", sorted(names))

    return write_sharded(
        directory, TF_H5, items, max_shard_size, write_shard,
        lambda: write_tf_h5(state, directory / TF_H5, architecture=architecture, base_model_prefix=base_model_prefix),
        weight_name=lambda n: f"{scope}/{n}", is_weights_file=is_weights_file, total_parameters=False,
    )
