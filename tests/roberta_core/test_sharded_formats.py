"""v4's sharded layouts of every format, its `variant` file names, and which file `from_pretrained`
picks (`use_safetensors`, `from_pt`, a backend's order), as transformers 4.57.6 has them.

Oracles: the golden files (written by transformers 4.57.6) split into v4's sharded layout by this
file's own code (torch.save, h5py, msgpack; never our writers), the file names and index keys
v4 4.57.6 wrote for the same 2-layer masked LM (recorded below), and v4's error words."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import msgpack
import numpy as np
import pytest

from roberta_core import checkpoint
from roberta_core.checkpoint import CheckpointFormatError, _sharded
from roberta_core.config import RobertaConfig
from roberta_core.pretrained import pretrained_weights_file, save_pretrained_files
from roberta_core.weights import CheckpointKeyError
from tests.helpers import golden, random_state, tiny_config

# ---------------------------------------------------------------------------- v4's recordings

# transformers 4.57.6, RobertaForMaskedLM(tiny: 2 layers) saved with max_shard_size="20KB":
# TFRobertaForMaskedLM.save_pretrained -> tf_model.h5.index.json's weight_map keys, and
# FlaxRobertaForMaskedLM.save_pretrained -> flax_model.msgpack.index.json's (both "metadata": {"total_size"}).
_LAYER = [
    "attention/output/LayerNorm/{b}", "attention/output/LayerNorm/{g}", "attention/output/dense/bias",
    "attention/output/dense/kernel", "attention/self/key/bias", "attention/self/key/kernel",
    "attention/self/query/bias", "attention/self/query/kernel", "attention/self/value/bias",
    "attention/self/value/kernel", "intermediate/dense/bias", "intermediate/dense/kernel",
    "output/LayerNorm/{b}", "output/LayerNorm/{g}", "output/dense/bias", "output/dense/kernel",
]
V4_TF_INDEX_KEYS = sorted(
    [f"tf_roberta_for_masked_lm/{n}:0" for n in (
        "lm_head/bias", "lm_head/dense/bias", "lm_head/dense/kernel", "lm_head/layer_norm/beta", "lm_head/layer_norm/gamma",
        "roberta/embeddings/LayerNorm/beta", "roberta/embeddings/LayerNorm/gamma",
        "roberta/embeddings/position_embeddings/embeddings", "roberta/embeddings/token_type_embeddings/embeddings",
        "roberta/embeddings/word_embeddings/weight")]
    + [f"tf_roberta_for_masked_lm/roberta/encoder/layer_._{i}/{n.format(b='beta', g='gamma')}:0" for i in range(2) for n in _LAYER]
)
V4_FLAX_INDEX_KEYS = sorted(
    ["lm_head/bias", "lm_head/dense/bias", "lm_head/dense/kernel", "lm_head/layer_norm/bias", "lm_head/layer_norm/scale",
     "roberta/embeddings/LayerNorm/bias", "roberta/embeddings/LayerNorm/scale", "roberta/embeddings/position_embeddings/embedding",
     "roberta/embeddings/token_type_embeddings/embedding", "roberta/embeddings/word_embeddings/embedding"]
    + [f"roberta/encoder/layer/{i}/{n.format(b='bias', g='scale')}" for i in range(2) for n in _LAYER]
)
V4_INDEX = {"bin": "pytorch_model.bin.index.json", "h5": "tf_model.h5.index.json", "msgpack": "flax_model.msgpack.index.json",
            "safetensors": "model.safetensors.index.json"}
V4_SHARD = {"bin": "pytorch_model-{k:05d}-of-{n:05d}.bin", "h5": "tf_model-{k:05d}-of-{n:05d}.h5",
            "msgpack": "flax_model-{k:05d}-of-{n:05d}.msgpack", "safetensors": "model-{k:05d}-of-{n:05d}.safetensors"}


def assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape, key
        assert got[key].tobytes() == want[key].tobytes(), key


def golden_state(name: str) -> dict:
    return checkpoint.load_state_dict(golden("masked_lm") / name)


# ---------------------------------------------------------------------------- v4's layouts, split by hand


def split_bin(folder):
    """pytorch_model.bin (v4's) as v4's sharded layout, by torch itself: two torch.save shards + the index."""
    torch = pytest.importorskip("torch")
    state = torch.load(golden("masked_lm") / "pytorch_model.bin", weights_only=True)
    keys = list(state)
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    weight_map = {}
    for k, part in enumerate(halves, 1):
        name = f"pytorch_model-{k:05d}-of-00002.bin"
        torch.save({key: state[key] for key in part}, folder / name)
        weight_map.update({key: name for key in part})
    return "pytorch_model.bin.index.json", weight_map


def split_h5(folder):
    """tf_model.h5 (v4's) as v4 TF's sharded layout: datasets at the names without the model's scope,
    listed in the shard's root `layer_names`; the index keeps the full names."""
    with h5py.File(golden("masked_lm") / "tf_model.h5", "r") as f:
        full = {}
        for layer in f.attrs["layer_names"]:
            group = f[layer]
            for name in group.attrs["weight_names"]:
                name = name.decode() if isinstance(name, bytes) else name
                full.setdefault(name, group[name][()])
    names = sorted(full)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for k, part in enumerate(halves, 1):
        shard = f"tf_model-{k:05d}-of-00002.h5"
        with h5py.File(folder / shard, "w") as f:
            stripped = ["/".join(n.split("/")[1:]) for n in part]
            for name, short in zip(part, stripped):
                f.create_dataset(short, data=full[name])
            f.attrs["layer_names"] = [s.encode() for s in stripped]
        weight_map.update({name: shard for name in part})
    return "tf_model.h5.index.json", weight_map


def split_msgpack(folder):
    """flax_model.msgpack (v4's) as v4 Flax's sharded layout: each shard the parameter tree of its
    leaves (the records copied as they are), the index keys the paths joined by '/'."""
    tree = msgpack.unpackb((golden("masked_lm") / "flax_model.msgpack").read_bytes(), raw=False, strict_map_key=False)

    def leaves(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}/")
            else:
                yield prefix + key, value

    flat = dict(leaves(tree))
    names = list(flat)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for k, part in enumerate(halves, 1):
        shard_tree: dict = {}
        for name in part:
            *levels, leaf = name.split("/")
            node = shard_tree
            for level in levels:
                node = node.setdefault(level, {})
            node[leaf] = flat[name]
        shard = f"flax_model-{k:05d}-of-00002.msgpack"
        (folder / shard).write_bytes(msgpack.packb(shard_tree, use_bin_type=True))
        weight_map.update({name: shard for name in part})
    return "flax_model.msgpack.index.json", weight_map


SPLITTERS = {"bin": (split_bin, "pytorch_model.bin"), "h5": (split_h5, "tf_model.h5"), "msgpack": (split_msgpack, "flax_model.msgpack")}


def write_index(folder, name, weight_map, total=0):
    (folder / name).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


@pytest.mark.parametrize("fmt", sorted(SPLITTERS))
def test_v4_sharded_layouts_load_as_the_single_file(tmp_path, fmt):
    split, single = SPLITTERS[fmt]
    index, weight_map = split(tmp_path)
    write_index(tmp_path, index, weight_map)
    shutil.copy(golden("masked_lm") / "config.json", tmp_path)
    assert checkpoint.find_weights_file(tmp_path).name == index
    assert_same(checkpoint.load_state_dict(tmp_path), golden_state(single))


@pytest.mark.parametrize("fmt", sorted(SPLITTERS))
def test_a_hostile_index_is_refused(tmp_path, fmt, monkeypatch):
    split, _ = SPLITTERS[fmt]
    index, weight_map = split(tmp_path)
    first = next(iter(weight_map))
    outside = tmp_path.parent / "outside.bin"
    outside.write_bytes(b"x")
    for bad in ("../outside.bin", str(outside), "sub/" + weight_map[first], "", ".", ".."):
        write_index(tmp_path, index, {**weight_map, first: bad})
        with pytest.raises(CheckpointFormatError, match="is not a file name in the same folder"):
            checkpoint.load_state_dict(tmp_path)
    write_index(tmp_path, index, {**weight_map, first: V4_SHARD[fmt].format(k=3, n=3)})
    with pytest.raises(CheckpointFormatError, match="shard file\\(s\\) missing"):
        checkpoint.load_state_dict(tmp_path)
    write_index(tmp_path, index, {**weight_map, "roberta.not.there": weight_map[first]})
    with pytest.raises(CheckpointFormatError, match="lacks tensors the index puts there"):
        checkpoint.load_state_dict(tmp_path)
    for text in ("[1, 2]", '{"weight_map": ' + "[" * 200_000 + "]" * 200_000 + "}"):  # nested past the recursion limit
        (tmp_path / index).write_text(text)
        with pytest.raises(CheckpointFormatError, match="not a shard index"):
            checkpoint.load_state_dict(tmp_path)
        with pytest.raises(CheckpointFormatError, match="not a shard index"):
            _sharded.shard_files(tmp_path / index)  # what the Hub checks before fetching shards
    write_index(tmp_path, index, weight_map)
    monkeypatch.setattr(_sharded, "MAX_INDEX_BYTES", 100)
    with pytest.raises(CheckpointFormatError, match="an index is at most 100"):
        checkpoint.load_state_dict(tmp_path)


def test_a_bin_shard_goes_through_the_restricted_unpickler(tmp_path):
    """A shard is a pytorch_model.bin like any other: a pickle naming another global is refused, never run."""
    torch = pytest.importorskip("torch")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"roberta.embeddings.word_embeddings.weight": Evil()}, tmp_path / "pytorch_model-00001-of-00001.bin")
    write_index(tmp_path, "pytorch_model.bin.index.json",
                {"roberta.embeddings.word_embeddings.weight": "pytorch_model-00001-of-00001.bin"})
    with pytest.raises(checkpoint.UnsafePickleError):
        checkpoint.load_state_dict(tmp_path)


# ---------------------------------------------------------------------------- our sharded saves


@pytest.mark.parametrize("fmt", ["safetensors", "bin", "h5", "msgpack"])
def test_sharded_save_writes_v4s_layout(tmp_path, fmt):
    state = golden_state("model.safetensors")
    written = checkpoint.save_state_dict(state, tmp_path, format=fmt, max_shard_size="20KB",
                                         architecture="RobertaForMaskedLM")
    index = json.loads((tmp_path / V4_INDEX[fmt]).read_text())
    shards = sorted(set(index["weight_map"].values()))
    n = len(shards)
    assert n > 1 and shards == [V4_SHARD[fmt].format(k=k, n=n) for k in range(1, n + 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written) == sorted(shards + [V4_INDEX[fmt]])
    if fmt == "h5":
        assert sorted(index["weight_map"]) == V4_TF_INDEX_KEYS and set(index["metadata"]) == {"total_size"}
        with h5py.File(tmp_path / shards[0], "r") as f:  # v4's shard: names without the scope, in `layer_names`
            names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
            assert names and all(isinstance(f[n], h5py.Dataset) for n in names)
            assert {"tf_roberta_for_masked_lm/" + n for n in names} <= set(index["weight_map"])
    if fmt == "msgpack":
        assert sorted(index["weight_map"]) == V4_FLAX_INDEX_KEYS and set(index["metadata"]) == {"total_size"}
    if fmt in ("bin", "safetensors"):
        assert set(index["weight_map"]) == set(state) and set(index["metadata"]) == {"total_parameters", "total_size"}
    assert index["metadata"]["total_size"] == sum(v.nbytes for v in state.values())
    assert_same(checkpoint.load_state_dict(tmp_path), state)
    # Saving again unsharded leaves one file: the stale shards and index go.
    checkpoint.save_state_dict(state, tmp_path, format=fmt, architecture="RobertaForMaskedLM")
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.FORMATS[fmt]]


@pytest.mark.parametrize("fmt", ["bin", "h5", "msgpack"])
def test_a_failed_sharded_save_leaves_the_folder_as_it_was(tmp_path, monkeypatch, fmt):
    old = random_state(tiny_config(), "masked_lm", seed=1)
    checkpoint.save_state_dict(old, tmp_path, format=fmt, max_shard_size="20KB")
    (tmp_path / "config.json").write_text("{}")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real, calls = os.chmod, []

    def failing_chmod(path, mode, *args, **kwargs):  # the writer sets each shard's mode once all are written
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(_sharded.os, "chmod", failing_chmod)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_state_dict(random_state(tiny_config(), "masked_lm", seed=2), tmp_path, format=fmt, max_shard_size="20KB")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# ---------------------------------------------------------------------------- variants


def test_variant_names_are_v4s_and_other_variants_stay(tmp_path):
    plain, half = random_state(tiny_config(), "model", seed=1), random_state(tiny_config(), "model", seed=2)
    assert checkpoint.save_state_dict(plain, tmp_path)[0].name == "model.safetensors"
    assert checkpoint.save_state_dict(half, tmp_path, variant="fp16")[0].name == "model.fp16.safetensors"
    assert sorted(os.listdir(tmp_path)) == ["model.fp16.safetensors", "model.safetensors"]  # as v4 leaves them
    assert_same(checkpoint.load_state_dict(checkpoint.find_weights_file(tmp_path, variant="fp16")), half)
    assert_same(checkpoint.load_state_dict(tmp_path), plain)
    checkpoint.save_state_dict(half, tmp_path, variant="fp16", format="bin")
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors", "pytorch_model.fp16.bin"]
    written = checkpoint.save_state_dict(half, tmp_path, variant="fp16", max_shard_size="20KB")
    names = sorted(p.name for p in written)
    assert names[-1] == "model.safetensors.index.fp16.json" and names[0] == f"model.fp16-00001-of-{len(names) - 1:05d}.safetensors"
    assert sorted(os.listdir(tmp_path)) == sorted(names + ["model.safetensors"])
    assert checkpoint.find_weights_file(tmp_path, variant="fp16").name == "model.safetensors.index.fp16.json"
    assert_same(checkpoint.load_state_dict(tmp_path / "model.safetensors.index.fp16.json"), half)


def test_a_missing_variant_is_v4s_oserror(tmp_path):
    checkpoint.save_state_dict(random_state(tiny_config(), "model"), tmp_path)
    with pytest.raises(OSError, match=r"^Error no file named model\.fp16\.safetensors, .*pytorch_model\.fp16\.bin.* found in "
                                      r"directory .*variant=None"):
        checkpoint.find_weights_file(tmp_path, variant="fp16")
    with pytest.raises(ValueError, match="variant must be a word"):
        checkpoint.find_weights_file(tmp_path, variant="../x")


def test_use_safetensors_and_the_backends_order(tmp_path):
    config = tiny_config()
    save_pretrained_files(tmp_path, config, random_state(config, "masked_lm", seed=1), "masked_lm")
    for fmt in ("bin", "h5", "msgpack"):
        shutil.copy(golden("masked_lm") / checkpoint.FORMATS[fmt], tmp_path)
    pick = lambda prefer, **options: pretrained_weights_file(tmp_path, options, prefer=prefer).name  # noqa: E731
    assert pick("safetensors") == "model.safetensors"
    assert pick("safetensors", use_safetensors=False) == "pytorch_model.bin"  # v4
    assert pick("safetensors", from_tf=True) == "tf_model.h5" and pick("safetensors", from_flax=True) == "flax_model.msgpack"
    assert pick("h5") == "model.safetensors" and pick("h5", from_pt=True) == "pytorch_model.bin"  # v4 TF
    assert pick("h5", use_safetensors=False) == "tf_model.h5"
    assert pick("msgpack") == "flax_model.msgpack"  # v4 Flax
    # v4 TF (modeling_tf_utils, a local folder): from_pt's file, then safetensors, then the h5,
    # whatever use_safetensors=True says, and nothing else with it
    assert pick("h5", from_pt=True, use_safetensors=True) == "pytorch_model.bin"
    assert pick("h5", use_safetensors=True) == "model.safetensors"
    os.remove(tmp_path / "model.safetensors")
    with pytest.raises(OSError, match=r"^Error no file named model\.safetensors found in directory "):  # v4's words
        pick("safetensors", use_safetensors=True)
    assert pick("h5", use_safetensors=True) == "tf_model.h5"
    os.remove(tmp_path / "tf_model.h5")
    with pytest.raises(OSError, match="no file named model.safetensors"):  # the .bin and msgpack are not read
        pick("h5", use_safetensors=True)


# ---------------------------------------------------------------------------- the backends


def test_pytorch_from_pretrained_variant_use_safetensors_and_sharded_bin(tmp_path):
    torch = pytest.importorskip("torch")
    from roberta_pt import RobertaForMaskedLM, RobertaForSequenceClassification

    config = tiny_config()
    plain, half = random_state(config, "masked_lm", seed=1), random_state(config, "masked_lm", seed=2)
    save_pretrained_files(tmp_path, config, plain, "masked_lm")
    save_pretrained_files(tmp_path, config, half, "masked_lm", variant="fp16", format="bin")
    key = "roberta.embeddings.word_embeddings.weight"
    weight = lambda model: model.state_dict()[key].numpy()  # noqa: E731
    np.testing.assert_array_equal(weight(RobertaForMaskedLM.from_pretrained(tmp_path)), plain[key])
    np.testing.assert_array_equal(weight(RobertaForMaskedLM.from_pretrained(tmp_path, variant="fp16")), half[key])
    with pytest.raises(OSError, match="Error no file named model.bf16.safetensors"):
        RobertaForMaskedLM.from_pretrained(tmp_path, variant="bf16")
    # use_safetensors=False prefers pytorch_model.bin, as v4
    checkpoint.save_state_dict(half, tmp_path, format="bin", max_shard_size="20KB")
    assert (tmp_path / "pytorch_model.bin.index.json").is_file() and (tmp_path / "model.safetensors").is_file() is False
    save_pretrained_files(tmp_path / "both", config, plain, "masked_lm")
    torch.save({k: torch.from_numpy(v) for k, v in half.items()}, tmp_path / "both" / "pytorch_model.bin")
    np.testing.assert_array_equal(weight(RobertaForMaskedLM.from_pretrained(tmp_path / "both", use_safetensors=False)), half[key])
    np.testing.assert_array_equal(weight(RobertaForMaskedLM.from_pretrained(tmp_path / "both")), plain[key])
    # the sharded bin by itself
    model = RobertaForMaskedLM.from_pretrained(tmp_path)
    np.testing.assert_array_equal(weight(model), half[key])
    # save_pretrained(max_shard_size, safe_serialization=False): v4's sharded bin
    model.save_pretrained(tmp_path / "saved", max_shard_size="20KB", safe_serialization=False)
    names = sorted(os.listdir(tmp_path / "saved"))
    assert "pytorch_model.bin.index.json" in names and "pytorch_model-00001-of-" + names[1][-9:] in names
    np.testing.assert_array_equal(weight(RobertaForMaskedLM.from_pretrained(tmp_path / "saved")), half[key])
    model.save_pretrained(tmp_path / "saved", variant="fp16")
    assert "model.fp16.safetensors" in os.listdir(tmp_path / "saved")
    # a shape mismatch: v4's RuntimeError, and our CheckpointKeyError
    cls3 = RobertaForSequenceClassification.from_pretrained(tmp_path / "saved", num_labels=3)
    cls3.save_pretrained(tmp_path / "cls3")
    with pytest.raises(RuntimeError, match=r"^Error\(s\) in loading state_dict for RobertaForSequenceClassification:\n\t"
                                           r"size mismatch for ") as caught:
        RobertaForSequenceClassification.from_pretrained(tmp_path / "cls3", num_labels=5)
    assert ("\n\tsize mismatch for classifier.out_proj.weight: copying a param with shape torch.Size([3, 32]) from "
            "checkpoint, the shape in current model is torch.Size([5, 32]).\n") in str(caught.value)
    assert isinstance(caught.value, CheckpointKeyError) and isinstance(caught.value, ValueError)


def test_tf_and_flax_read_every_sharded_layout_and_write_theirs(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("flax")
    from roberta_flax import FlaxRobertaForMaskedLM
    from roberta_flax.convert import to_canonical as flax_canonical
    from roberta_tf import TFRobertaForMaskedLM
    from roberta_tf.convert import to_canonical as tf_canonical

    config = RobertaConfig.from_json_file(golden("masked_lm") / "config.json")
    want = golden_state("model.safetensors")["roberta.embeddings.word_embeddings.weight"]
    for fmt, (split, _) in SPLITTERS.items():
        folder = tmp_path / fmt
        folder.mkdir()
        index, weight_map = split(folder)
        write_index(folder, index, weight_map)
        config.save_pretrained(folder)
        for cls, to_canonical in ((TFRobertaForMaskedLM, tf_canonical), (FlaxRobertaForMaskedLM, flax_canonical)):
            got = to_canonical(cls.from_pretrained(folder))["roberta.embeddings.word_embeddings.weight"]
            np.testing.assert_array_equal(np.asarray(got), want)
    for cls, fmt in ((TFRobertaForMaskedLM, "h5"), (FlaxRobertaForMaskedLM, "msgpack")):
        model = cls.from_pretrained(tmp_path / fmt)
        model.save_pretrained(tmp_path / f"out-{fmt}", max_shard_size="20KB", safe_serialization=False)
        assert (tmp_path / f"out-{fmt}" / V4_INDEX[fmt]).is_file()
        assert_same(checkpoint.load_state_dict(tmp_path / f"out-{fmt}"), checkpoint.load_state_dict(tmp_path / fmt))
        with pytest.raises(ValueError, match="v4 names variants of model.safetensors and pytorch_model.bin only"):
            model.save_pretrained(tmp_path / "nope", variant="fp16", safe_serialization=False)
        with pytest.raises(ValueError, match="v4 names variants of model.safetensors and pytorch_model.bin only"):
            model.save_pretrained(tmp_path / "nope", variant="fp16")  # the default is v4's h5 / msgpack
        model.save_pretrained(tmp_path / f"var-{fmt}", variant="fp16", safe_serialization=True)
        assert sorted(os.listdir(tmp_path / f"var-{fmt}")) == ["config.json", "model.fp16.safetensors"]


# ---------------------------------------------------------------------------- tokenizers


def test_a_tokenizer_name_that_is_no_folder_nor_repo_id_is_v4s_oserror():
    from roberta_core.tokenization_fast import RobertaTokenizerFast

    for name in ("/nonexistent/dir/x", "not a repo id!!"):
        with pytest.raises(OSError, match=rf"^Can't load tokenizer for '{name}'\. If you were trying to load it from") as caught:
            RobertaTokenizerFast.from_pretrained(name)
        assert isinstance(caught.value, ValueError)  # as before


def test_variant_of_reads_v4s_variant_names():
    # v4's names (`_add_variant`, its shard and index names): the variant word, None for the rest.
    names = {"model.fp16.safetensors": "fp16", "model.fp16-00001-of-00002.safetensors": "fp16",
             "model.safetensors.index.fp16.json": "fp16", "pytorch_model.bf16.bin": "bf16",
             "pytorch_model.bin.index.bf16.json": "bf16", "model.safetensors": None, "tf_model.h5": None,
             "model-00001-of-00002.safetensors": None, "tokenizer.json": None, "model.fp16.json": None}
    assert {name: checkpoint.variant_of(name) for name in names} == names
