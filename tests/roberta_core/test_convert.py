"""roberta_core.conversion: lossless conversion between the four weight formats, dtype casts and
shards, verification in the frameworks, and every bad input of the issue — unknown formats, an
existing destination, a full or read-only disk, a source that is not a checkpoint — each ending in
a clear error with the source intact and nothing partial left behind.

Oracles: the golden fixture (weights written by transformers 4.57.6 in all four formats: ours must
read back exactly what transformers wrote), NumPy's own casts, and hashes of the files before and
after a failure."""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import ml_dtypes
import numpy as np
import pytest

from roberta_core import checkpoint, runtime
from roberta_core.checkpoint import CheckpointFormatError
from roberta_core.conversion import convert
from roberta_core.weights import TIED

convert_module = importlib.import_module("roberta_core.conversion")
from tests.helpers import golden, random_state, tiny_config

FILES = {"safetensors": "model.safetensors", "bin": "pytorch_model.bin", "h5": "tf_model.h5", "msgpack": "flax_model.msgpack"}


def source_checkpoint(tmp_path, head: str = "masked_lm", name: str = "src"):
    """A copy of the golden fixture with only config.json + model.safetensors (+ a tokenizer file to travel along)."""
    src = tmp_path / name
    src.mkdir()
    for file in ("config.json", "model.safetensors"):
        shutil.copyfile(golden(head) / file, src / file)
    (src / "vocab.json").write_text('{"<s>": 0}\n')
    return src


def digest(folder) -> dict[str, str]:
    """name -> sha256 of every file below `folder` (hidden files included)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def arrays(path) -> dict[str, np.ndarray]:
    return checkpoint.load_state_dict(path)


def without_tied(state: dict) -> dict:
    """`state` minus tied aliases that merely repeat their source."""
    return {k: v for k, v in state.items()
            if not (k in TIED and TIED[k] in state and v.tobytes() == state[TIED[k]].tobytes())}


def assert_bit_exact(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert (got[key].dtype, got[key].shape) == (want[key].dtype, want[key].shape), key
        assert got[key].tobytes() == want[key].tobytes(), key


def leftovers(folder) -> list[str]:
    """Temporary folders or files a conversion may have left in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------- lossless conversion


def test_fp32_round_trip_safetensors_h5_msgpack_bin_safetensors_is_bit_exact(tmp_path):
    src = source_checkpoint(tmp_path)
    original = arrays(src / "model.safetensors")
    previous = src
    for step, fmt in enumerate(["h5", "msgpack", "bin", "safetensors"]):
        dst = tmp_path / f"{step}-{fmt}"
        result = convert(previous, dst, to=fmt, verify=False)
        assert sorted(result.files) == sorted(["config.json", "vocab.json", FILES[fmt]])
        assert (dst / "config.json").read_bytes() == (golden("masked_lm") / "config.json").read_bytes()
        assert (dst / "vocab.json").read_text() == '{"<s>": 0}\n'
        # What we wrote reads back exactly as what transformers wrote in the same format
        # (its pytorch_model.bin repeats the tied decoder; our files, like its others, do not).
        assert_bit_exact(arrays(dst), without_tied(arrays(golden("masked_lm") / FILES[fmt])))
        previous = dst
    assert_bit_exact(arrays(previous), original)
    assert result.parameters == sum(v.size for v in original.values())


def test_bf16_weights_survive_every_format_unchanged(tmp_path):
    config = tiny_config(architectures=["RobertaForSequenceClassification"])
    state = {k: v.astype(ml_dtypes.bfloat16) for k, v in random_state(config, "sequence_classification", seed=3).items()}
    src = tmp_path / "src"
    checkpoint.save_state_dict(state, src, format="safetensors", architecture="RobertaForSequenceClassification")
    config.save_pretrained(src)
    previous = src
    for fmt in ["h5", "msgpack", "bin", "safetensors"]:
        convert(previous, tmp_path / fmt, to=fmt, verify=False)
        previous = tmp_path / fmt
    assert_bit_exact(arrays(previous), state)


def test_dtype_casts_floats_only_and_records_it_in_the_config(tmp_path):
    src = source_checkpoint(tmp_path)
    original = arrays(src)
    for dtype, np_dtype in (("bfloat16", ml_dtypes.bfloat16), ("float16", np.float16)):
        dst = tmp_path / dtype
        convert(src, dst, to="h5", dtype=dtype, verify=False)
        got = arrays(dst)
        for key, value in got.items():
            want = original[key].astype(np_dtype)
            assert value.dtype == want.dtype and value.tobytes() == want.tobytes(), key
        assert json.loads((dst / "config.json").read_text())["dtype"] == dtype
    # A float32 -> bf16 -> float32 trip gives back the bf16-rounded values exactly.
    convert(tmp_path / "bfloat16", tmp_path / "back", to="safetensors", dtype="float32", verify=False)
    for key, value in arrays(tmp_path / "back").items():
        assert value.dtype == np.float32
        assert value.tobytes() == original[key].astype(ml_dtypes.bfloat16).astype(np.float32).tobytes(), key


def test_max_shard_size_writes_shards_that_convert_back_exactly(tmp_path):
    src = source_checkpoint(tmp_path)
    result = convert(src, tmp_path / "sharded", to="safetensors", max_shard_size="20KB", verify=False)
    shards = [f for f in result.files if f.startswith("model-")]
    assert len(shards) > 2 and "model.safetensors.index.json" in result.files
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    convert(tmp_path / "sharded", tmp_path / "bin", to="bin", verify=False)
    assert_bit_exact(arrays(tmp_path / "bin"), arrays(src))


def test_from_picks_one_format_where_the_source_holds_several(tmp_path):
    # The golden folder holds all four; each --from reads its own file.
    for fmt in ("bin", "h5", "msgpack"):
        convert(golden("masked_lm"), tmp_path / fmt, to="safetensors", from_format=fmt, verify=False)
        assert_bit_exact(arrays(tmp_path / fmt), arrays(golden("masked_lm") / FILES[fmt]))
    with pytest.raises(FileNotFoundError, match="--from bin but there is no pytorch_model.bin"):
        convert(source_checkpoint(tmp_path), tmp_path / "x", to="h5", from_format="bin", verify=False)


SHARD_STEMS = {"safetensors": "model", "bin": "pytorch_model", "h5": "tf_model", "msgpack": "flax_model"}


def sharded_source(tmp_path, fmt: str, name: str = "sharded") -> tuple:
    """The golden masked LM saved as v4's shards of `fmt` (+ config.json, vocab.json); returns the
    folder and the state that was saved."""
    src = source_checkpoint(tmp_path, name=name)
    state = arrays(src / "model.safetensors")
    checkpoint.save_state_dict(state, src, format=fmt, max_shard_size="20KB", architecture="RobertaForMaskedLM")
    assert not (src / "model.safetensors").exists()  # the save leaves one set of weights: the shards
    return src, state


def shards_of(folder, fmt: str) -> list[str]:
    stem, ext = FILES[fmt].rsplit(".", 1)
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(stem + "-") and p.name.endswith("." + ext))


@pytest.mark.parametrize("fmt", ["bin", "h5", "msgpack"])
def test_a_sharded_bin_h5_msgpack_source_converts_with_from_and_auto_detected(tmp_path, fmt, monkeypatch):
    src, state = sharded_source(tmp_path, fmt)
    shards = shards_of(src, fmt)
    assert len(shards) > 2 and (src / f"{FILES[fmt]}.index.json").is_file()
    totals = []
    progress_bar = convert_module._progress_bar
    monkeypatch.setattr(convert_module, "_progress_bar",
                        lambda enabled, total, description: totals.append(total) or progress_bar(enabled, total, description))
    for from_format in (fmt, None):
        dst = tmp_path / f"from-{from_format}"
        result = convert(src, dst, to="safetensors", from_format=from_format, verify=False)
        # Neither the shards nor the index travel along as "tokenizer files".
        assert sorted(result.files) == ["config.json", "model.safetensors", "vocab.json"]
        assert_bit_exact(arrays(dst), state)
    # The progress total is the weights read: the shards, not the index file.
    assert totals == [sum((src / s).stat().st_size for s in shards)] * 2
    other = "h5" if fmt != "h5" else "bin"
    with pytest.raises(FileNotFoundError, match=rf"--from {other} but there is no {FILES[other]} or {FILES[other]}\.index\.json"):
        convert(src, tmp_path / "x", to="safetensors", from_format=other, verify=False)
    assert not (tmp_path / "x").exists()


def test_a_sharded_index_naming_a_shard_outside_its_folder_is_refused_before_reading(tmp_path):
    src, _ = sharded_source(tmp_path, "bin")
    index = json.loads((src / "pytorch_model.bin.index.json").read_text())
    index["weight_map"] = {k: "../" + v for k, v in index["weight_map"].items()}
    (src / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointFormatError, match="is not a file name in the same folder"):
        convert(src, tmp_path / "dst", from_format="bin", verify=False)
    assert not (tmp_path / "dst").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["h5", "msgpack", "bin"])
def test_max_shard_size_shards_every_format_and_reads_back_exactly(tmp_path, fmt):
    src = source_checkpoint(tmp_path)
    original = arrays(src)
    dst = tmp_path / fmt
    result = convert(src, dst, to=fmt, max_shard_size="20KB", verify=False)
    shards = shards_of(dst, fmt)
    assert len(shards) > 2
    assert sorted(result.files) == sorted(["config.json", "vocab.json", f"{FILES[fmt]}.index.json", *shards])
    index = json.loads((dst / f"{FILES[fmt]}.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert_bit_exact(arrays(dst), original)
    # and back: the sharded result is a source like any other
    convert(dst, tmp_path / "back", to="safetensors", verify=False)
    assert_bit_exact(arrays(tmp_path / "back"), original)


def test_max_shard_size_result_verifies_in_its_framework(tmp_path):
    needed = {"h5": "tf", "msgpack": "flax"}
    available = [fmt for fmt, backend in needed.items() if runtime.available(backend) and runtime.available("pt")]
    if not available:
        pytest.skip("needs the pt backend and tf or flax")
    src = source_checkpoint(tmp_path)
    for fmt in available:
        result = convert(src, tmp_path / fmt, to=fmt, max_shard_size="20KB", verify=True)
        assert result.checks and all(c.ok for c in result.checks)
        assert f"{FILES[fmt]}.index.json" in result.files


def test_variant_files_are_weights_never_copied_along_and_only_the_plain_weights_convert(tmp_path):
    src = source_checkpoint(tmp_path)
    plain = arrays(src)
    half = {k: v.astype(np.float16) for k, v in plain.items()}
    # v4's variant files beside the plain weights: a sharded fp16 safetensors, a bf16 bin.
    checkpoint.save_state_dict(half, src, format="safetensors", variant="fp16", max_shard_size="20KB")
    checkpoint.save_state_dict(half, src, format="bin", variant="bf16")
    names = sorted(p.name for p in src.iterdir())
    assert "model.safetensors.index.fp16.json" in names and "pytorch_model.bf16.bin" in names
    assert any(n.startswith("model.fp16-00001-of-") for n in names) and "model.safetensors" in names
    for to in ("h5", "safetensors"):
        dst = tmp_path / to
        result = convert(src, dst, to=to, verify=False)
        assert sorted(result.files) == sorted(["config.json", "vocab.json", FILES[to]])
        assert sorted(p.name for p in dst.iterdir()) == sorted(result.files)
        assert_bit_exact(arrays(dst), plain)  # the plain float32 weights, not a variant's
        assert any("bf16, fp16 variant's weights" in note for note in result.notes)
    # A folder with variant weights only holds nothing a conversion converts, and says why.
    (src / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="holds the bf16, fp16 variant's weights only"):
        convert(src, tmp_path / "x", verify=False)
    with pytest.raises(FileNotFoundError, match="--from bin but there is no pytorch_model.bin .*variant's weights only"):
        convert(src, tmp_path / "x", from_format="bin", verify=False)
    assert not (tmp_path / "x").exists()


def test_symlinks_out_of_the_checkpoint_are_not_copied(tmp_path):
    # A downloaded folder's `merges.txt -> <a private file>` must not land in the output (which may
    # be pushed to the Hub); a Hugging Face cache snapshot's links into its repo's blobs/ are copied.
    secret = tmp_path / "secret.txt"
    secret.write_text("private key", encoding="utf-8")
    src = source_checkpoint(tmp_path)
    (src / "merges.txt").symlink_to(secret)
    result = convert(src, tmp_path / "out", to="bin", verify=False)
    assert "merges.txt" not in result.files and not (tmp_path / "out" / "merges.txt").exists()
    assert any("merges.txt" in note and "outside the checkpoint" in note for note in result.notes)
    # The cache layout: snapshots/<commit>/merges.txt -> ../../blobs/<hash>
    repo = tmp_path / "models--me--tiny"
    snapshot = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    shutil.copytree(src, snapshot, symlinks=False, ignore=shutil.ignore_patterns("merges.txt"))
    (repo / "blobs" / "0f1e").write_text("#version: 0.2\n", encoding="utf-8")
    (snapshot / "merges.txt").symlink_to("../../blobs/0f1e")
    result = convert(snapshot, tmp_path / "from-cache", to="bin", verify=False)
    assert (tmp_path / "from-cache" / "merges.txt").read_text(encoding="utf-8") == "#version: 0.2\n"


def test_variant_weights_only_still_count_as_a_checkpoint_to_overwrite(tmp_path):
    src = source_checkpoint(tmp_path)
    old = tmp_path / "old"
    old.mkdir()
    shutil.copyfile(src / "model.safetensors", old / "model.fp16.safetensors")
    convert(src, old, to="msgpack", verify=False, overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == ["config.json", "flax_model.msgpack", "vocab.json"]


def test_result_has_ordinary_permissions_and_a_progress_bar_on_request(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(convert_module, "_PROGRESS_AFTER_S", 0)
    src = source_checkpoint(tmp_path)
    convert(src, tmp_path / "dst", to="msgpack", verify=False, progress=True)
    assert "safetensors -> msgpack" in capsys.readouterr().err
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "dst").stat().st_mode & 0o777 == 0o777 & ~umask
    for file in (tmp_path / "dst").iterdir():
        assert file.stat().st_mode & 0o777 == 0o666 & ~umask, file.name


# ---------------------------------------------------------------------------- verification


def test_verify_runs_source_and_result_in_their_frameworks(tmp_path):
    """h5 -> msgpack: the source runs in TensorFlow, the result in Flax (safetensors/bin run in
    PyTorch: the tests below)."""
    if not (runtime.available("tf") and runtime.available("flax")):
        pytest.skip("verification of h5 -> msgpack needs the tf and flax backends, which are not installed")
    src = tmp_path / "src"
    src.mkdir()
    for file in ("config.json", "tf_model.h5"):
        shutil.copyfile(golden("sequence_classification") / file, src / file)
    lines = []
    result = convert(src, tmp_path / "dst", to="msgpack", verify=True, log=lines.append)
    weights_check, *model_checks = result.checks
    assert "read back" in weights_check.what
    assert [c.what for c in model_checks] == ["RobertaForSequenceClassification: tf (h5) vs flax (msgpack)"]
    assert all(c.ok and c.rel <= 1e-5 for c in model_checks), model_checks
    assert any("tf (h5) vs flax (msgpack): max |diff|" in line for line in lines)


def test_verify_catches_a_writer_that_corrupts_and_installs_nothing(tmp_path, monkeypatch):
    if not runtime.available("pt"):
        pytest.skip("verification of a bin file needs the pt backend, which is not installed")
    real = checkpoint.save_state_dict

    def corrupting(state, directory, **kwargs):
        state = dict(state)
        key = "roberta.encoder.layer.1.output.dense.weight"
        state[key] = state[key] * np.float32(1.001)
        return real(state, directory, **kwargs)

    monkeypatch.setattr(checkpoint, "save_state_dict", corrupting)
    src = source_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="reads back different"):
        convert(src, tmp_path / "dst", to="bin", verify=True, log=lambda line: None)
    assert not (tmp_path / "dst").exists() and leftovers(tmp_path) == []


def test_verify_compares_model_outputs_not_only_files(tmp_path, monkeypatch):
    """A model check that cannot fail is no check: feed it a result whose weights differ from
    the source's and it must refuse."""
    if not runtime.available("pt"):
        pytest.skip("needs the pt backend, which is not installed")
    monkeypatch.setattr(convert_module, "_verify_weights", lambda state, result: convert_module.Check("skipped", 0, 0, 0))
    real = checkpoint.save_state_dict

    def perturbing(state, directory, **kwargs):
        state = {k: (v + np.float32(0.05) if k.endswith("query.weight") else v) for k, v in state.items()}
        return real(state, directory, **kwargs)

    monkeypatch.setattr(checkpoint, "save_state_dict", perturbing)
    with pytest.raises(ValueError, match="verification failed"):
        convert(source_checkpoint(tmp_path), tmp_path / "dst", to="bin", verify=True, log=lambda line: None)
    assert not (tmp_path / "dst").exists()


def test_verify_true_without_the_framework_says_what_to_install(tmp_path, monkeypatch):
    real = runtime.available
    monkeypatch.setattr(runtime, "available", lambda backend: backend != "tf" and real(backend))
    with pytest.raises(ImportError, match=r"tf backend.*roberta3\[tf\]"):
        convert(source_checkpoint(tmp_path), tmp_path / "dst", to="h5", verify=True)
    result = convert(source_checkpoint(tmp_path, name="src2"), tmp_path / "dst", to="h5")  # verify=None: skipped
    assert result.checks is None and "not verified" in result.notes[0]


# ---------------------------------------------------------------------------- bad input


def test_unknown_names_are_refused_before_anything_is_read(tmp_path):
    src = source_checkpoint(tmp_path)
    for kwargs, message in [
        (dict(to="onnx"), "unknown target format 'onnx'; choose one of safetensors, bin, h5, msgpack"),
        (dict(from_format="gguf"), "unknown source format 'gguf'; choose one of safetensors, bin, h5, msgpack, fairseq"),
        (dict(dtype="int8"), "unknown dtype 'int8'; choose one of float32, bfloat16, float16"),
        (dict(max_shard_size="lots"), "not a size like"),
        (dict(classification_head="mnli"), "apply to --from fairseq only"),
    ]:
        with pytest.raises(ValueError, match=message):
            convert(src, tmp_path / "dst", **kwargs)
    assert not (tmp_path / "dst").exists()


def test_an_existing_destination_is_refused_and_left_alone(tmp_path):
    src = source_checkpoint(tmp_path)
    convert(src, tmp_path / "dst", to="h5", verify=False)
    before = digest(tmp_path / "dst")
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        convert(src, tmp_path / "dst", to="msgpack", verify=False)
    assert digest(tmp_path / "dst") == before


def test_overwrite_replaces_a_checkpoint_but_nothing_else(tmp_path):
    src = source_checkpoint(tmp_path)
    convert(src, tmp_path / "dst", to="h5", verify=False)
    convert(src, tmp_path / "dst", to="msgpack", verify=False, overwrite=True)
    assert sorted(os.listdir(tmp_path / "dst")) == ["config.json", "flax_model.msgpack", "vocab.json"]
    assert leftovers(tmp_path) == []
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a checkpoint.*refusing to replace it"):
        convert(src, tmp_path / "notes", to="h5", verify=False, overwrite=True)
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a checkpoint directory"):
        convert(src, tmp_path / "file", to="h5", verify=False, overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == (tmp_path / "file").read_text() == "keep me"
    inner = source_checkpoint(tmp_path / "dst", name="inner")
    with pytest.raises(ValueError, match="inside .*dst; replacing .*dst would delete the source"):
        convert(inner, tmp_path / "dst", to="h5", verify=False, overwrite=True)


def test_overwrite_in_place_converts_the_folder_itself(tmp_path):
    src = source_checkpoint(tmp_path)
    original = arrays(src)
    convert(src, src, to="bin", verify=False, overwrite=True)
    assert sorted(os.listdir(src)) == ["config.json", "pytorch_model.bin", "vocab.json"]
    assert_bit_exact(arrays(src), original)


def test_a_failed_overwrite_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    src = source_checkpoint(tmp_path)
    convert(src, tmp_path / "dst", to="h5", verify=False)
    before = digest(tmp_path / "dst")

    def failing(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_flax_msgpack", failing)
    with pytest.raises(OSError, match="nothing was written"):
        convert(src, tmp_path / "dst", to="msgpack", verify=False, overwrite=True)
    assert digest(tmp_path / "dst") == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("to", ["safetensors", "bin", "msgpack"])
def test_a_full_disk_leaves_the_source_intact_and_nothing_behind(tmp_path, to):
    """The write really fails half way: the file-size limit (RLIMIT_FSIZE) makes the kernel
    refuse writes past 30 kB, as a full disk refuses them past its last block. (HDF5 cannot
    survive a failing write — it crashes the process — so the h5 case is guarded by the
    free-space check below instead.)"""
    src = source_checkpoint(tmp_path)
    before = digest(src)
    out = tmp_path / "out"
    out.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, hard))
    try:
        with pytest.raises(OSError, match="cannot write .*nothing was written") as info:
            convert(src, out / "deep" / "dst", to=to, verify=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert info.value.errno == errno.EFBIG
    assert os.listdir(out) == []  # no partial checkpoint, no staging folder, no created parents
    assert digest(src) == before


def test_not_enough_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    src = source_checkpoint(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OSError, match="No space left on device: the result needs about") as info:
        convert(src, tmp_path / "dst", to="h5", verify=False)
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "dst").exists() and leftovers(tmp_path) == []


def test_a_read_only_destination_leaves_the_source_intact_and_nothing_behind(tmp_path, monkeypatch):
    src = source_checkpoint(tmp_path)
    before = digest(src)
    parent = tmp_path / "ro"
    parent.mkdir()
    if os.geteuid() == 0:
        # root ignores permission bits; a read-only file system refuses the first mkdir with EROFS.
        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(tempfile, "mkdtemp", read_only)
        expected = errno.EROFS
    else:
        parent.chmod(0o555)
        expected = errno.EACCES
    try:
        with pytest.raises(OSError, match="cannot write .*nothing was written") as info:
            convert(src, parent / "dst", to="h5", verify=False)
    finally:
        parent.chmod(0o755)
    assert info.value.errno == expected
    assert os.listdir(parent) == [] and digest(src) == before


def test_a_source_that_is_not_a_checkpoint_is_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not a checkpoint: it holds none of model.safetensors"):
        convert(empty, tmp_path / "dst")
    with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
        convert(tmp_path / "missing", tmp_path / "dst")
    (tmp_path / "model.pt").write_bytes(b"\x80\x02")
    with pytest.raises(NotADirectoryError, match="pass --from fairseq"):
        convert(tmp_path / "model.pt", tmp_path / "dst")
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    shutil.copyfile(golden("masked_lm") / "model.safetensors", no_config / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="has weights but no config.json"):
        convert(no_config, tmp_path / "dst")
    corrupt = source_checkpoint(tmp_path, name="corrupt")
    (corrupt / "model.safetensors").write_bytes((corrupt / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(CheckpointFormatError, match="model.safetensors"):
        convert(corrupt, tmp_path / "dst", verify=False)
    bert = source_checkpoint(tmp_path, name="bert")
    state = {k.replace("roberta.", "bert."): v for k, v in arrays(bert).items()}
    checkpoint.write_safetensors(state, bert / "model.safetensors")
    with pytest.raises(ValueError, match="not a RoBERTa checkpoint: no RoBERTa head owns bert.embeddings"):
        convert(bert, tmp_path / "dst", verify=False)
    misfit = source_checkpoint(tmp_path, name="misfit")
    config = json.loads((misfit / "config.json").read_text())
    (misfit / "config.json").write_text(json.dumps({**config, "intermediate_size": 64}))
    with pytest.raises(ValueError, match="weights do not fit its config.json"):
        convert(misfit, tmp_path / "dst", verify=False)
    assert not (tmp_path / "dst").exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- hardening (issue 17)


def rewrite_weights(src, change) -> dict:
    """Replace `src`'s model.safetensors with `change(state)`; returns the new state."""
    state = change(arrays(src / "model.safetensors"))
    checkpoint.write_safetensors(state, src / "model.safetensors")
    return state


def test_a_source_no_head_loads_fully_is_refused_under_verify_not_called_verified(tmp_path):
    if not runtime.available("pt"):
        pytest.skip("verification of safetensors -> bin needs the pt backend, which is not installed")
    src = source_checkpoint(tmp_path)
    dropped = "roberta.encoder.layer.0.output.dense.bias"
    state = rewrite_weights(src, lambda s: {k: v for k, v in s.items() if k != dropped})
    with pytest.raises(ValueError, match=rf"no RoBERTa head loads these weights fully \(RobertaForMaskedLM lacks 1: "
                                         rf"{dropped}\).*pass verify=False \(--no-verify\) to convert it unchecked"):
        convert(src, tmp_path / "dst", to="bin", verify=True, log=lambda line: None)
    assert not (tmp_path / "dst").exists() and leftovers(tmp_path) == []
    # Unchecked, it converts as it is: the result lacks the same weight, and claims no check.
    result = convert(src, tmp_path / "dst", to="bin", verify=False)
    assert result.checks is None
    assert_bit_exact(arrays(tmp_path / "dst"), state)


def test_a_source_with_no_weights_is_refused(tmp_path):
    src = source_checkpoint(tmp_path)
    # A valid safetensors file holding no tensor: an 8-byte header length, then the header "{}".
    (src / "model.safetensors").write_bytes((8).to_bytes(8, "little") + b"{}      ")
    assert arrays(src / "model.safetensors") == {}
    for verify in (False, None):
        with pytest.raises(ValueError, match=r"model\.safetensors holds no weights: there is nothing to convert"):
            convert(src, tmp_path / "dst", to="h5", verify=verify, log=lambda line: None)
    assert not (tmp_path / "dst").exists() and leftovers(tmp_path) == []


def test_two_conversions_racing_to_one_destination_install_exactly_one(tmp_path, monkeypatch):
    """Both pass the 'dst does not exist' check and build their folders at the same time (a
    barrier holds each inside its write); then exactly one installs, the other fails and leaves
    the winner's checkpoint untouched."""
    src = source_checkpoint(tmp_path)
    real = checkpoint.save_state_dict
    barrier = threading.Barrier(2, timeout=120)

    def both_writing(*args, **kwargs):
        barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_state_dict", both_writing)
    outcomes: dict[str, object] = {}

    def run(fmt):
        try:
            outcomes[fmt] = convert(src, tmp_path / "dst", to=fmt, verify=False)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            outcomes[fmt] = e

    threads = [threading.Thread(target=run, args=(fmt,)) for fmt in ("h5", "msgpack")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    winners = [fmt for fmt, o in outcomes.items() if not isinstance(o, Exception)]
    losers = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert isinstance(losers[0], FileExistsError) and "dst" in str(losers[0]), losers[0]
    assert sorted(os.listdir(tmp_path / "dst")) == sorted(["config.json", "vocab.json", FILES[winners[0]]])
    assert_bit_exact(arrays(tmp_path / "dst"), arrays(src))
    assert leftovers(tmp_path) == []


_HANG_IN_WRITE = """
import pathlib, sys, time
from roberta_core import checkpoint
from roberta_core.conversion import convert
real = checkpoint.save_state_dict
def write_then_hang(state, directory, **kwargs):
    real(state, directory, **kwargs)
    pathlib.Path(sys.argv[3]).write_text(str(directory))
    time.sleep(600)
checkpoint.save_state_dict = write_then_hang
convert(sys.argv[1], sys.argv[2], to="h5", verify=False)
"""


def test_a_killed_conversions_staging_folder_is_removed_by_the_next_only_once_its_owner_is_gone(tmp_path):
    src = source_checkpoint(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", _HANG_IN_WRITE, str(src), str(out / "dst"), str(ready)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the conversion did not reach its write"
        staging = ready.read_text()
        # Its folder is hidden, says what it is for, and survives a conversion that runs meanwhile:
        # its owner is alive.
        assert os.path.basename(staging).startswith(".dst.") and "staging" in os.path.basename(staging)
        convert(src, out / "dst", to="msgpack", verify=False)
        assert os.path.isdir(staging)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert os.path.isdir(staging)  # kill -9: nobody cleaned up
    convert(src, out / "dst", to="bin", verify=False, overwrite=True)
    assert leftovers(out) == [] and sorted(os.listdir(out)) == ["dst"]
    assert sorted(os.listdir(out / "dst")) == ["config.json", "pytorch_model.bin", "vocab.json"]


def test_nan_weights_are_named_once_and_a_nan_check_names_them(tmp_path):
    src = source_checkpoint(tmp_path)
    poisoned = "roberta.encoder.layer.1.attention.self.query.weight"

    def poison(state):
        state[poisoned] = state[poisoned].copy()
        state[poisoned][0, 0] = np.nan
        return state

    state = rewrite_weights(src, poison)
    with pytest.warns(UserWarning) as record:
        convert(src, tmp_path / "unchecked", to="msgpack", verify=False)
    nan_warnings = [w for w in record if "NaN or Inf" in str(w.message)]
    assert len(nan_warnings) == 1 and f"1 tensor(s) hold NaN or Inf values: {poisoned}" in str(nan_warnings[0].message)
    with pytest.warns(UserWarning, match="NaN or Inf"):  # reading the result names it again
        assert_bit_exact(arrays(tmp_path / "unchecked"), state)  # converted as it is
    if not runtime.available("pt"):
        pytest.skip("the model check of safetensors -> bin needs the pt backend, which is not installed")
    with pytest.raises(ValueError, match=rf"max \|diff\| nan.*NaN or Inf in {poisoned}"), \
            pytest.warns(UserWarning, match="NaN or Inf"):
        convert(src, tmp_path / "dst", to="bin", verify=True, log=lambda line: None)
    assert not (tmp_path / "dst").exists()


@pytest.mark.filterwarnings("ignore:.*integer or bool values")  # the reader's own note
@pytest.mark.parametrize("dtype", [np.int32, np.bool_])
def test_integer_or_boolean_parameters_are_refused_by_name(tmp_path, dtype):
    src = source_checkpoint(tmp_path)
    key = "roberta.embeddings.LayerNorm.weight"
    rewrite_weights(src, lambda s: {**s, key: s[key].astype(dtype)})
    with pytest.raises(TypeError, match=rf"parameter {key} is stored as {np.dtype(dtype).name}; RoBERTa parameters are floating"):
        convert(src, tmp_path / "dst", to="h5", verify=False)
    assert not (tmp_path / "dst").exists() and leftovers(tmp_path) == []


def test_a_fairseq_source_is_checked_against_the_library_reference(tmp_path, monkeypatch):
    """The float64 reference is library code: the check runs with the test package `conformance`
    unimportable."""
    if not runtime.available("pt"):
        pytest.skip("the result (safetensors) runs in the pt backend, which is not installed")
    from tests.roberta_core.test_fairseq import fairseq_args, fairseq_state, vocab_size, write_checkpoint

    path = write_checkpoint(tmp_path / "fs", fairseq_state(vocab_size()), fairseq_args(), legacy=False)
    monkeypatch.setitem(sys.modules, "conformance", None)  # `import conformance...` raises ImportError
    for name in [m for m in sys.modules if m.startswith("conformance.")]:
        monkeypatch.setitem(sys.modules, name, None)
    result = convert(path, tmp_path / "ckpt", from_format="fairseq", to="safetensors", verify=True, log=lambda line: None)
    weights_check, *model_checks = result.checks
    assert [c.what for c in model_checks] == ["RobertaForMaskedLM: reference (fairseq) vs pt (safetensors)"]
    assert all(c.ok for c in model_checks), model_checks
