"""roberta_core.checkpoint: our writers' files read back bit-exactly in every format and dtype,
torch reads our .bin, and every bad file or failed write ends in a clear error with nothing left
behind. torch, where installed, is the independent oracle for the .bin format."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import zipfile

import h5py
import ml_dtypes
import numpy as np
import pytest

from roberta_core import checkpoint
from roberta_core.checkpoint import CheckpointFormatError, UnsafePickleError
from tests.helpers import REPO, golden, random_state, tiny_config, with_tied

FORMATS = ("safetensors", "bin", "h5", "msgpack")
DTYPES = (np.float32, np.float16, ml_dtypes.bfloat16)
ARCH = {"model": "RobertaModel", "masked_lm": "RobertaForMaskedLM",
        "sequence_classification": "RobertaForSequenceClassification", "question_answering": "RobertaForQuestionAnswering"}


def state_of(head: str, dtype=np.float32, seed: int = 0) -> dict[str, np.ndarray]:
    return {k: v.astype(dtype) for k, v in random_state(tiny_config(), head, seed=seed).items()}


def assert_bit_exact(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, (key, got[key].dtype, want[key].dtype)
        assert got[key].shape == want[key].shape, (key, got[key].shape, want[key].shape)
        assert got[key].tobytes() == want[key].tobytes(), key


def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("head", ["model", "masked_lm", "sequence_classification", "question_answering"])
def test_round_trip_is_bit_exact(tmp_path, head, fmt, dtype):
    state = state_of(head, dtype)
    written = checkpoint.save_state_dict(state, tmp_path, format=fmt, architecture=ARCH[head])
    assert listing(tmp_path) == [checkpoint.FORMATS[fmt]] == [p.name for p in written]
    assert_bit_exact(checkpoint.load_state_dict(tmp_path), state)


@pytest.mark.parametrize("fmt", ["h5", "msgpack"])
def test_tied_decoder_is_stored_once_and_reads_back_without_alias(tmp_path, fmt):
    config = tiny_config()
    state = state_of("masked_lm")
    checkpoint.save_state_dict(with_tied(config, "masked_lm", state), tmp_path, format=fmt)
    assert_bit_exact(checkpoint.load_state_dict(tmp_path), state)


def test_untied_decoder_goes_to_flax_but_tf_refuses_it(tmp_path):
    state = state_of("masked_lm")
    state["lm_head.decoder.weight"] = np.ones_like(state["roberta.embeddings.word_embeddings.weight"])
    checkpoint.save_state_dict(state, tmp_path, format="msgpack")
    assert_bit_exact(checkpoint.load_state_dict(tmp_path), state)
    with pytest.raises(ValueError, match=r"tf_model\.h5: lm_head\.decoder\.weight differs from roberta\.embeddings"):
        checkpoint.save_state_dict(state, tmp_path / "tf", format="h5")
    assert not (tmp_path / "tf").exists()


def test_h5_layout_is_the_one_transformers_writes(tmp_path):
    checkpoint.save_state_dict(state_of("masked_lm"), tmp_path, format="h5", architecture="RobertaForMaskedLM")
    ours = h5py.File(tmp_path / "tf_model.h5", "r")
    theirs = h5py.File(golden("masked_lm") / "tf_model.h5", "r")
    with ours, theirs:
        assert list(ours.attrs["layer_names"]) == list(theirs.attrs["layer_names"])
        assert sorted(ours) == sorted(theirs)
        for layer in theirs:
            assert sorted(ours[layer].attrs["weight_names"]) == sorted(theirs[layer].attrs["weight_names"]), layer
            for name in theirs[layer].attrs["weight_names"]:
                assert ours[layer][name].shape == theirs[layer][name].shape, name


def test_h5_splits_long_name_lists_like_keras(tmp_path):
    # 70 layers of names exceed the 64 KiB HDF5 header limit: Keras then writes weight_names0, 1, ...
    config = tiny_config(num_hidden_layers=70, hidden_size=8, num_attention_heads=1, intermediate_size=4)
    state = random_state(config, "model")
    checkpoint.save_state_dict(state, tmp_path, format="h5")
    with h5py.File(tmp_path / "tf_model.h5", "r") as f:
        assert "weight_names" not in f["roberta"].attrs and "weight_names1" in f["roberta"].attrs
    assert_bit_exact(checkpoint.load_state_dict(tmp_path), state)


def test_h5_stores_bf16_as_keras_does(tmp_path):
    # Keras stores bf16 variables as an untagged 2-byte opaque HDF5 type; we read it as bfloat16.
    state = state_of("sequence_classification", ml_dtypes.bfloat16)
    checkpoint.save_state_dict(state, tmp_path, format="h5")
    with h5py.File(tmp_path / "tf_model.h5", "r") as f:
        name = f["classifier"].attrs["weight_names"][0]
        assert isinstance(f["classifier"][name].id.get_type(), h5py.h5t.TypeOpaqueID)


# ---------------------------------------------------------------------------- safetensors shards


@pytest.mark.parametrize("size", ["20KB", 20_000, "0.02MB"])
def test_sharded_safetensors(tmp_path, size):
    state = state_of("masked_lm")
    written = checkpoint.save_state_dict(state, tmp_path, max_shard_size=size)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and [p.name for p in written] == shards + ["model.safetensors.index.json"]
    assert all(n == f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i, n in enumerate(shards))
    assert index["metadata"]["total_size"] == sum(v.nbytes for v in state.values())
    for shard in shards:  # every shard within the limit unless it holds one oversized tensor
        size_on_disk = sum(state[k].nbytes for k, s in index["weight_map"].items() if s == shard)
        keys = [k for k, s in index["weight_map"].items() if s == shard]
        assert size_on_disk <= 20_000 or len(keys) == 1
    assert_bit_exact(checkpoint.load_state_dict(tmp_path), state)


def test_resaving_removes_stale_shards(tmp_path):
    state = state_of("masked_lm")
    checkpoint.save_state_dict(state, tmp_path, max_shard_size="10KB")
    many = len(list(tmp_path.glob("model-*")))
    checkpoint.save_state_dict(state, tmp_path, max_shard_size="40KB")
    assert 1 < len(list(tmp_path.glob("model-*"))) < many
    checkpoint.save_state_dict(state, tmp_path)
    assert listing(tmp_path) == ["model.safetensors"]
    assert_bit_exact(checkpoint.load_state_dict(tmp_path), state)


def test_safetensors_metadata_is_format_pt(tmp_path):
    from safetensors import safe_open

    checkpoint.save_state_dict(state_of("model"), tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}


@pytest.mark.parametrize(
    "size, expected", [("2GB", 2 * 10**9), ("500MB", 500 * 10**6), ("1GiB", 2**30), ("1.5kb", 1500), (7, 7)]
)
def test_parse_size(size, expected):
    assert checkpoint.parse_size(size) == expected


@pytest.mark.parametrize("size, error", [("2 parsecs", ValueError), ("0MB", ValueError), (-1, ValueError), (1.5, TypeError)])
def test_parse_size_rejects(size, error):
    with pytest.raises(error, match="max_shard_size"):
        checkpoint.parse_size(size)


def test_sharded_index_with_missing_shard(tmp_path):
    checkpoint.save_state_dict(state_of("model"), tmp_path, max_shard_size="20KB")
    (tmp_path / "model-00002-of-00005.safetensors").unlink()
    with pytest.raises(CheckpointFormatError, match=r"index\.json: shard file\(s\) missing: model-00002-of-00005"):
        checkpoint.load_state_dict(tmp_path)


# ---------------------------------------------------------------------------- torch as the oracle


@pytest.mark.parametrize("mmap", [False, True])
def test_torch_load_reads_our_bin(tmp_path, mmap):
    torch = pytest.importorskip("torch")
    state = {**state_of("masked_lm"), "half": np.arange(6, dtype=np.float16).reshape(2, 3),
             "bf16": np.linspace(-2, 2, 10).astype(ml_dtypes.bfloat16), "ids": np.arange(5, dtype=np.int64),
             "scalar": np.array(3.5, dtype=np.float32), "empty": np.zeros((0, 4), dtype=np.float32)}
    checkpoint.save_state_dict(state, tmp_path, format="bin")
    loaded = torch.load(tmp_path / "pytorch_model.bin", map_location="cpu", weights_only=True, mmap=mmap)
    assert list(loaded) == list(state)
    for key, tensor in loaded.items():
        want = state[key]
        if want.dtype == ml_dtypes.bfloat16:
            assert tensor.dtype == torch.bfloat16
            tensor, want = tensor.view(torch.int16), want.view(np.int16)
        assert tensor.shape == want.shape and np.array_equal(tensor.numpy(), want), key


def test_we_read_what_torch_save_writes(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    module = torch.nn.Linear(3, 2)
    obj = {
        "offset_view": base[1:3],  # shares base's storage with an offset
        "transposed": base.t(),  # non-contiguous strides
        "base": base,
        "every_other": base[:, ::2],
        "param": torch.nn.Parameter(torch.ones(2, 2)),  # _rebuild_parameter
        **{f"linear.{k}": v for k, v in module.state_dict().items()},  # an OrderedDict with _metadata
    }
    torch.save(obj, tmp_path / "x.bin")
    torch.save(module.state_dict(), tmp_path / "sd.bin")
    ours = checkpoint.read_torch_bin(tmp_path / "x.bin")
    for key, tensor in obj.items():
        got = ours[key]
        np.testing.assert_array_equal(got, tensor.detach().numpy(), err_msg=key)
        assert got.flags.c_contiguous and got.flags.writeable
    ours["base"][0, 0] = 99  # arrays that shared a storage in torch are independent copies here
    assert ours["offset_view"][0, 0] == 6
    sd = checkpoint.load_state_dict(tmp_path / "sd.bin")
    assert sorted(sd) == ["bias", "weight"]
    np.testing.assert_array_equal(sd["weight"], module.weight.detach().numpy())


TORCH_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool",
                "complex64", "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2")


@pytest.mark.parametrize("name", TORCH_DTYPES)
def test_every_dtype_both_ways_with_torch(tmp_path, name):
    # torch pickles most dtypes with typed storages (_rebuild_tensor_v2), uint16/32/64 and float8
    # with byte storages and the dtype (_rebuild_tensor_v3); both ways must keep the bytes.
    torch = pytest.importorskip("torch")

    def raw(t):
        return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()

    t = (torch.arange(12).reshape(3, 4) % 5).to(getattr(torch, name))
    obj = {"full": t, "strided": t[1:, ::2], "scalar": t[1, 1], "empty": t[:0]}
    torch.save(obj, tmp_path / "theirs.bin")
    ours = checkpoint.load_state_dict(tmp_path / "theirs.bin")
    for key, tensor in obj.items():
        assert (ours[key].dtype.name, ours[key].shape) == (name, tuple(tensor.shape)), key
        assert ours[key].tobytes() == raw(tensor), key
    checkpoint.save_state_dict(ours, tmp_path, format="bin")
    back = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    for key, tensor in obj.items():
        assert back[key].dtype == t.dtype and back[key].shape == tensor.shape and raw(back[key]) == raw(tensor), key


def test_fairseq_namespace_needs_explicit_permission(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"args": argparse.Namespace(arch="roberta_base"), "model": {"w": torch.ones(2)}}, tmp_path / "model.pt")
    with pytest.raises(UnsafePickleError, match=r"argparse\.Namespace"):
        checkpoint.read_torch_bin(tmp_path / "model.pt")
    obj = checkpoint.read_torch_bin(tmp_path / "model.pt", extra_globals={("argparse", "Namespace"): argparse.Namespace})
    assert obj["args"].arch == "roberta_base" and np.array_equal(obj["model"]["w"], np.ones(2, np.float32))


# ---------------------------------------------------------------------------- hostile pickles


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def torch_zip_with(tmp_path, payload: bytes, name: str = "pytorch_model.bin"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    return path


def test_pickle_calling_os_system_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = torch_zip_with(tmp_path, pickle.dumps({"w": _Evil(os.system, f"touch {marker}")}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"pytorch_model\.bin: the pickle references (posix|os)\.system"):
        checkpoint.load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("func, args", [(eval, ("1+1",)), (subprocess.call, (["true"],)), (getattr, (argparse.Namespace(), "x"))])
def test_pickle_with_any_unknown_global_is_refused(tmp_path, func, args):
    path = torch_zip_with(tmp_path, pickle.dumps(_Evil(func, *args), protocol=4))
    with pytest.raises(UnsafePickleError, match="not a tensor-rebuild function"):
        checkpoint.read_torch_bin(path)


def test_legacy_and_foreign_files_are_refused(tmp_path):
    legacy = tmp_path / "legacy.bin"
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + b"rest")
    with pytest.raises(CheckpointFormatError, match=r"legacy \(pre-zip, torch < 1\.6\).*unsupported"):
        checkpoint.load_state_dict(legacy)
    foreign = tmp_path / "foreign.bin"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointFormatError, match=r"foreign\.bin: zip archive without <name>/data\.pkl"):
        checkpoint.load_state_dict(foreign)


def test_bin_that_holds_no_state_dict(tmp_path):
    path = torch_zip_with(tmp_path, pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(CheckpointFormatError, match=r"holds a list, not a state dict"):
        checkpoint.load_state_dict(path)
    looped = []
    looped.append(looped)
    path = torch_zip_with(tmp_path, pickle.dumps(looped, protocol=2))
    with pytest.raises(CheckpointFormatError, match=r"pytorch_model\.bin: the pickle nests too deeply or refers to itself"):
        checkpoint.load_state_dict(path)


# ---------------------------------------------------------------------------- truncated / corrupt


def damaged_copy(tmp_path, head: str, name: str, how: str):
    data = bytearray((golden(head) / name).read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:  # flip bytes in the middle of the tensor data
        mid = len(data) // 2
        data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "name, problem",
    [
        ("model.safetensors", "truncated or corrupt"),
        ("pytorch_model.bin", "truncated or corrupt"),
        ("tf_model.h5", "truncated or corrupt"),
        ("flax_model.msgpack", "truncated"),
    ],
)
def test_truncated_files(tmp_path, name, problem):
    path = damaged_copy(tmp_path, "masked_lm", name, "truncated")
    with pytest.raises(CheckpointFormatError, match=rf"{name.replace('.', '[.]')}: .*{problem}"):
        checkpoint.load_state_dict(tmp_path)


def test_corrupt_torch_bin_fails_its_crc(tmp_path):
    path = damaged_copy(tmp_path, "masked_lm", "pytorch_model.bin", "flipped")
    with pytest.raises(CheckpointFormatError, match=r"pytorch_model\.bin: .*(CRC|corrupt)"):
        checkpoint.load_state_dict(path)


@pytest.mark.parametrize("name", ["model.safetensors", "tf_model.h5", "flax_model.msgpack"])
def test_garbage_files(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointFormatError, match=rf"{name.replace('.', '[.]')}: "):
        checkpoint.load_state_dict(tmp_path / name)


def test_msgpack_with_trailing_data_or_unknown_names(tmp_path):
    data = (golden("model") / "flax_model.msgpack").read_bytes()
    (tmp_path / "flax_model.msgpack").write_bytes(data + b"\xc0")
    with pytest.raises(CheckpointFormatError, match="1 bytes of trailing data"):
        checkpoint.load_state_dict(tmp_path)
    import msgpack

    bad = {"roberta": {"embeddings": {"word_embeddings": {"weird": msgpack.ExtType(1, msgpack.packb(((2,), "float32", b"\0" * 8)))}}}}
    (tmp_path / "flax_model.msgpack").write_bytes(msgpack.packb(bad))
    with pytest.raises(CheckpointFormatError, match=r"flax_model\.msgpack: .*unknown leaf 'weird'"):
        checkpoint.load_state_dict(tmp_path)
    lying = {"lm_head": {"bias": msgpack.ExtType(1, msgpack.packb(((3,), "float32", b"\0" * 8)))}}
    (tmp_path / "flax_model.msgpack").write_bytes(msgpack.packb(lying))
    with pytest.raises(CheckpointFormatError, match=r"shape \(3,\) float32 carries 8 bytes"):
        checkpoint.load_state_dict(tmp_path)


def test_h5_with_a_foreign_weight_name(tmp_path):
    path = tmp_path / "tf_model.h5"
    path.write_bytes((golden("model") / "tf_model.h5").read_bytes())
    with h5py.File(path, "r+") as f:
        names = list(f["roberta"].attrs["weight_names"]) + ["tf_roberta_model/roberta/bogus/thing:0"]
        f["roberta"].attrs["weight_names"] = [n.encode() for n in names]
        f["roberta"].create_dataset("tf_roberta_model/roberta/bogus/thing:0", data=np.zeros(2, np.float32))
    with pytest.raises(CheckpointFormatError, match=r"tf_model\.h5: .*bogus"):
        checkpoint.load_state_dict(path)


def test_missing_weights(tmp_path):
    # v4's words ("Error no file named ... found in directory ..."), naming every file looked for
    with pytest.raises(FileNotFoundError, match=r"Error no file named model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin, pytorch_model\.bin\.index\.json, tf_model\.h5, tf_model\.h5\.index\.json, flax_model\.msgpack or flax_model\.msgpack\.index\.json found in directory"):
        checkpoint.load_state_dict(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such weights file or checkpoint directory"):
        checkpoint.load_state_dict(tmp_path / "nope")
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(CheckpointFormatError, match=r"weights\.npz: unknown weights file type"):
        checkpoint.load_state_dict(tmp_path / "weights.npz")


# ---------------------------------------------------------------------------- failed writes


def test_bad_state_is_refused_before_anything_is_written(tmp_path):
    target = tmp_path / "ckpt"
    for fmt in FORMATS:
        with pytest.raises(TypeError, match=r"state\['x'\] has dtype object"):
            checkpoint.save_state_dict({"x": np.array([None])}, target, format=fmt)
        with pytest.raises(TypeError, match=r"state\['x'\] must be a numpy\.ndarray, got list"):
            checkpoint.save_state_dict({"x": [1.0]}, target, format=fmt)
    for fmt in ("h5", "msgpack"):  # names these formats have no spelling for
        with pytest.raises(ValueError, match=rf"cannot write {checkpoint.FORMATS[fmt]}: 'lm_head\.weird\.gamma' is not a RoBERTa parameter name"):
            checkpoint.save_state_dict({"lm_head.weird.gamma": np.zeros(2, np.float32)}, target, format=fmt)
    with pytest.raises(ValueError, match=r"unknown checkpoint format 'onnx'; choose one of safetensors, bin, h5, msgpack"):
        checkpoint.save_state_dict(state_of("model"), target, format="onnx")
    with pytest.raises(ValueError, match=r"variant='fp16': v4 names variants of model\.safetensors and pytorch_model\.bin only"):
        checkpoint.save_state_dict(state_of("model"), target, format="h5", variant="fp16")
    assert not target.exists()


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_write_keeps_the_good_file_and_leaves_no_temp(tmp_path, monkeypatch, fmt):
    good = state_of("masked_lm", seed=1)
    checkpoint.save_state_dict(good, tmp_path, format=fmt)
    before = (tmp_path / checkpoint.FORMATS[fmt]).read_bytes()

    def failing_fsync(fd):  # fails once the writer has filled its temporary file
        raise Boom("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(Boom):
        checkpoint.save_state_dict(state_of("masked_lm", seed=2), tmp_path, format=fmt)
    assert listing(tmp_path) == [checkpoint.FORMATS[fmt]]
    assert (tmp_path / checkpoint.FORMATS[fmt]).read_bytes() == before


def test_failed_sharded_write_leaves_nothing(tmp_path, monkeypatch):
    import safetensors.numpy

    calls = []

    def save_then_fail(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 3:
            raise Boom("disk full")
        return real(tensors, filename, metadata=metadata)

    real = safetensors.numpy.save_file
    monkeypatch.setattr(safetensors.numpy, "save_file", save_then_fail)
    with pytest.raises(Boom):
        checkpoint.save_state_dict(state_of("masked_lm"), tmp_path / "new", max_shard_size="20KB")
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------------------- no framework needed


def test_checkpoint_reads_and_writes_without_any_framework(tmp_path):
    code = f"""
import sys
from roberta_core import checkpoint
for name in {list(checkpoint.FORMATS.values())!r}:
    state = checkpoint.load_state_dict({str(golden("masked_lm"))!r} + "/" + name)
    for fmt in checkpoint.FORMATS:
        checkpoint.save_state_dict(state, {str(tmp_path)!r} + "/" + fmt, format=fmt)
        checkpoint.save_state_dict(state, {str(tmp_path)!r} + "/sharded-" + fmt, format=fmt, max_shard_size="20KB")
        checkpoint.load_state_dict({str(tmp_path)!r} + "/sharded-" + fmt)
loaded = sorted(m for m in ("torch", "tensorflow", "jax", "flax", "keras") if m in sys.modules)
assert not loaded, loaded
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# ---------------------------------------------------------------------------- Flax as the oracle


def test_flax_reads_our_msgpack_and_we_read_flax_chunked_leaves(tmp_path, monkeypatch):
    serialization = pytest.importorskip("flax.serialization")
    state = state_of("masked_lm", ml_dtypes.bfloat16)
    # Leaves above the chunk limit are split (Flax: 1 GiB); shrink the limit on both sides.
    monkeypatch.setattr(checkpoint.flax_msgpack, "_FLAX_MAX_CHUNK", 1000)
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 1000)
    checkpoint.save_state_dict(state, tmp_path, format="msgpack")
    ours = (tmp_path / "flax_model.msgpack").read_bytes()
    assert b"__msgpack_chunked_array__" in ours
    tree = serialization.msgpack_restore(ours)
    word = state["roberta.embeddings.word_embeddings.weight"]
    assert tree["roberta"]["embeddings"]["word_embeddings"]["embedding"].tobytes() == word.tobytes()
    assert tree["lm_head"]["dense"]["kernel"].tobytes() == state["lm_head.dense.weight"].T.tobytes()
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "flax_model.msgpack").write_bytes(serialization.msgpack_serialize(tree))
    assert b"__msgpack_chunked_array__" in (tmp_path / "theirs" / "flax_model.msgpack").read_bytes()
    assert_bit_exact(checkpoint.load_state_dict(tmp_path / "theirs"), state)


def test_sharded_save_keeps_the_folders_other_files(tmp_path):
    # A sharded save rebuilds the folder (atomic_dir): everything that is not weights comes along.
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "runs").mkdir()
    (folder / "runs" / "log.txt").write_text("step 1")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(folder)
    checkpoint.save_state_dict(state_of("model"), folder, format="bin")
    state = state_of("masked_lm")
    checkpoint.save_state_dict(state, tmp_path / "link", max_shard_size="20KB")
    assert (tmp_path / "link").is_symlink()  # the link still points at the rebuilt folder
    assert (folder / "config.json").read_text() == '{"a": 1}' and (folder / "runs" / "log.txt").read_text() == "step 1"
    assert not (folder / "pytorch_model.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "elsewhere", "link"]  # no staging left
    assert_bit_exact(checkpoint.load_state_dict(tmp_path / "link"), state)
