"""Crafted hostile checkpoint files of issue 17: each ends in the library's own error naming the
file, within bounded time and memory, reading nothing outside the file and changing nothing in the
process. The files are assembled by hand in `crafted.py`; loads that could crash, hang or exhaust
memory run in a separate process under an address-space limit (`crafted.load_isolated`)."""

from __future__ import annotations

import argparse
import os
import stat
import warnings

import ml_dtypes
import numpy as np
import pytest

from roberta_core import checkpoint, fairseq
from roberta_core.checkpoint import CheckpointFormatError, UnsafePickleError
from tests.helpers import random_state, tiny_config
from tests.roberta_core import crafted


def refused(path, result: dict, *words: str) -> None:
    """`result` is the library's own error (a ValueError subclass) naming `path` and saying `words`."""
    assert result["outcome"] == "error", f"{path.name} loaded: {str(result)[:300]}"
    assert result["library"], f"{path.name}: raw {result['type']}: {result['message']}"
    assert str(path) in result["message"], result["message"]
    for word in words:
        assert word in result["message"], result["message"]


# ---------------------------------------------------------------------------- 1. out-of-bounds reads


@pytest.mark.parametrize("field, value", [("shape", (4096,)), ("stride", (2**40,)), ("offset", 2**40)])
def test_build_cannot_rewrite_a_tensor_record_after_it_was_checked(tmp_path, field, value):
    path = crafted.bin_build_rewrite(tmp_path, field, value)
    [result] = crafted.load_isolated([path])
    refused(path, result)


def test_records_are_checked_against_the_bytes_at_copy_time(tmp_path):
    # Even a record changed by our own code after unpickling cannot reach past the storage.
    path = crafted.torch_zip(tmp_path / "pytorch_model.bin",
                             crafted.state_dict([("w", crafted.tensor("0", 4, (4,), (1,)))]), {"0": crafted.FOUR_FLOATS})
    archive = checkpoint.torch_bin.TorchArchive(path, {})
    try:
        ref = archive.obj["w"]
        with pytest.raises(AttributeError):
            ref.shape = (4096,)
        object.__setattr__(ref, "shape", (4096,))  # what a BUILD on the record would have done
        with pytest.raises(CheckpointFormatError, match=r"pytorch_model\.bin: tensor 'w'.* needs elements up to 4095.*4"):
            archive.materialize(ref, name="w")
    finally:
        archive.close()


def test_stride_zero_view_may_not_blow_a_small_storage_up(tmp_path):
    path = crafted.bin_stride_blowup(tmp_path)
    [result] = crafted.load_isolated([path])
    refused(path, result, "overlapping")


def test_small_overlapping_views_still_load(tmp_path):
    # torch saves expanded tensors (stride 0) as such; a small one is legitimate and reads as torch does.
    path = crafted.torch_zip(tmp_path / "pytorch_model.bin",
                             crafted.state_dict([("w", crafted.tensor("0", 4, (3, 4), (0, 1)))]), {"0": crafted.FOUR_FLOATS})
    got = checkpoint.load_state_dict(path)["w"]
    np.testing.assert_array_equal(got, np.tile(np.arange(4, dtype=np.float32), (3, 1)))


# ---------------------------------------------------------------------------- 2. billion laughs


@pytest.mark.parametrize("build", [crafted.billion_laughs,
                                   lambda d: crafted.billion_laughs(d, "model.pt"),
                                   crafted.billion_laughs_legacy], ids=["bin", "fairseq-zip", "fairseq-legacy"])
def test_billion_laughs_is_refused_quickly(tmp_path, build):
    path = build(tmp_path)
    [result] = crafted.load_isolated([path], timeout=30)
    refused(path, result, "objects")


def test_a_hostile_object_in_a_record_is_not_printed_in_the_error(tmp_path):
    path = crafted.laughs_in_a_tensor_record(tmp_path)
    [result] = crafted.load_isolated([path], timeout=30)
    refused(path, result, "malformed tensor record")
    assert len(result["message"]) < 400


def test_deep_nesting_names_the_file(tmp_path):
    path = crafted.deep_nesting(tmp_path)
    [result] = crafted.load_isolated([path])
    refused(path, result, "nests")


# ---------------------------------------------------------------------------- 3. h5 never reads another file


@pytest.mark.parametrize("build, what", [(crafted.h5_external_storage, "external storage"),
                                         (crafted.h5_external_link, "link"),
                                         (crafted.h5_soft_link, "link"),
                                         (crafted.h5_virtual, "virtual")])
def test_h5_reads_nothing_outside_the_file(tmp_path, build, what):
    path = build(tmp_path)
    [result] = crafted.load_isolated([path])
    refused(path, result, what)


def test_h5_unwritten_dataset_with_a_huge_shape_is_refused_before_reading(tmp_path):
    path = crafted.h5_unwritten_chunked(tmp_path)
    [result] = crafted.load_isolated([path], spare_bytes=192 * 2**20)  # the dataset declares 256 MiB
    refused(path, result, "declares")


# ---------------------------------------------------------------------------- 3b. read amplification


def test_one_bin_storage_viewed_by_many_keys_is_refused(tmp_path):
    # 20 keys over one 4 MiB storage would be 80 MiB of arrays from a 4 MiB file.
    path = crafted.bin_shared_storage(tmp_path)
    [result] = crafted.load_isolated([path], spare_bytes=192 * 2**20)
    refused(path, result, "storages hold")


def test_tied_weights_over_one_storage_still_load(tmp_path):
    # v4's torch.save of a tied model: the word embeddings and the LM decoder share one storage.
    state = checkpoint.load_state_dict(crafted.bin_tied(tmp_path))
    np.testing.assert_array_equal(state["lm_head.decoder.weight"], state["roberta.embeddings.word_embeddings.weight"])
    assert state["lm_head.decoder.weight"] is not state["roberta.embeddings.word_embeddings.weight"]


def test_tied_weights_saved_by_torch_still_load(tmp_path):
    torch = pytest.importorskip("torch")
    emb = torch.arange(32, dtype=torch.float32).reshape(8, 4)
    bias = torch.zeros(8)
    torch.save({"roberta.embeddings.word_embeddings.weight": emb, "lm_head.decoder.weight": emb, "lm_head.bias": bias,
                "lm_head.decoder.bias": bias}, tmp_path / "pytorch_model.bin")
    state = checkpoint.load_state_dict(tmp_path)
    np.testing.assert_array_equal(state["lm_head.decoder.weight"], emb.numpy())


def test_one_h5_dataset_linked_under_many_names_is_refused(tmp_path):
    path = crafted.h5_hard_linked(tmp_path)
    [result] = crafted.load_isolated([path], spare_bytes=192 * 2**20)
    refused(path, result, "same dataset")


def test_an_h5_shard_reads_each_name_the_index_puts_there_once(tmp_path, monkeypatch):
    reads = []
    real = checkpoint.tf_h5._h5_array
    monkeypatch.setattr(checkpoint.tf_h5, "_h5_array", lambda dataset: reads.append(dataset.name) or real(dataset))
    index = crafted.h5_shard_listing_a_name_many_times(tmp_path)
    state = checkpoint.load_state_dict(index)
    assert list(state) == ["embeddings.word_embeddings.weight"]  # a bare model's names
    assert reads == ["/" + crafted.H5_NAME]  # once, and nothing the index does not put there


def test_an_h5_shard_with_one_dataset_under_two_names_is_refused(tmp_path):
    index = crafted.h5_shard_hard_linked(tmp_path)
    with pytest.raises(CheckpointFormatError, match="same dataset"):
        checkpoint.load_state_dict(index)


def test_many_small_deflated_storages_share_one_archive_budget(tmp_path):
    # 64 deflated 1 MiB storages, each within a per-entry allowance: 64 MiB of arrays from 86 KB.
    path = crafted.bin_many_small_bombs(tmp_path)
    assert path.stat().st_size < 2**17
    [result] = crafted.load_isolated([path], spare_bytes=48 * 2**20)
    refused(path, result, "zip bomb", "for the archive")


def test_deflated_storages_of_real_weights_still_load(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {str(k): rng.standard_normal(4096).astype("<f4") for k in range(8)}
    items = [(f"w{k}", crafted.tensor(k, 4096, (64, 64), (64, 1))) for k in arrays]
    path = crafted.torch_zip(tmp_path / "pytorch_model.bin", crafted.state_dict(items),
                             {k: a.tobytes() for k, a in arrays.items()}, deflate=True)
    state = checkpoint.load_state_dict(path)
    for k, a in arrays.items():
        np.testing.assert_array_equal(state[f"w{k}"], a.reshape(64, 64))


def test_many_small_compressed_h5_datasets_share_one_file_budget(tmp_path):
    # 64 gzip'd 1 MiB datasets of zeros, each within a per-dataset allowance: 64 MiB from ~600 KB.
    path = crafted.h5_many_small_bombs(tmp_path)
    [result] = crafted.load_isolated([path])
    refused(path, result, "compressed datasets")


def test_compressed_h5_datasets_of_real_weights_still_load(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((64, 64)).astype("<f4")
    path = crafted.h5_file(tmp_path, lambda f, g, n: g.create_dataset(n, data=values, compression="gzip"))
    state = checkpoint.load_state_dict(path)
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"], values)


def test_h5_datasets_whose_data_is_one_block_are_refused(tmp_path):
    # Eight datasets with headers of their own, their data addresses rewritten to the first one's.
    path = crafted.h5_aliased_data(tmp_path)
    [result] = crafted.load_isolated([path])
    refused(path, result, "overlaps")


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_shard_file_named_twice_in_an_index_is_read_once(tmp_path, link):
    index = crafted.linked_shards(tmp_path, os.link if link == "hardlink" else None)
    with pytest.raises(CheckpointFormatError, match="same file"):
        checkpoint.load_state_dict(index)


@pytest.mark.parametrize("name", ["model.safetensors.index.json", "pytorch_model.bin.index.json",
                                  "tf_model.h5.index.json", "flax_model.msgpack.index.json"])
def test_a_deeply_nested_index_names_the_file(tmp_path, name):
    path = crafted.deep_index(tmp_path, name)
    reader = checkpoint.iter_state_dict(path)  # lazy: nothing read yet, so nothing raised outside the wrapper
    with pytest.raises(CheckpointFormatError, match="not a shard index.*RecursionError") as caught:
        next(reader)
    assert str(path) in str(caught.value)
    with pytest.raises(CheckpointFormatError, match="RecursionError"):
        checkpoint._sharded.shard_files(path)
    for read_index in (checkpoint.read_safetensors_index, checkpoint.torch_bin.read_torch_bin_index,
                       checkpoint.tf_h5.read_tf_h5_index, checkpoint.flax_msgpack.read_flax_msgpack_index):
        read_index(path)  # a generator: reading starts at the first next


# ---------------------------------------------------------------------------- 4. one weight format per folder


def state_of(seed: int) -> dict[str, np.ndarray]:
    return random_state(tiny_config(), "masked_lm", seed=seed)


@pytest.mark.parametrize("old", ["safetensors", "sharded", "bin", "h5", "msgpack"])
@pytest.mark.parametrize("new", ["safetensors", "sharded", "bin", "h5", "msgpack"])
def test_a_save_leaves_exactly_the_new_weights(tmp_path, old, new):
    def save(state, fmt):
        shard = {"max_shard_size": "20KB"} if fmt == "sharded" else {}
        return checkpoint.save_state_dict(state, tmp_path, format="safetensors" if fmt == "sharded" else fmt, **shard)

    (tmp_path / "config.json").write_text("{}")
    save(state_of(1), old)
    written = save(state_of(2), new)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["config.json", *(p.name for p in written)])
    assert checkpoint.find_weights_file(tmp_path).name in {p.name for p in written}
    got = checkpoint.load_state_dict(tmp_path)
    for key, value in state_of(2).items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


# ---------------------------------------------------------------------------- 5. a refused pickle changes nothing


def test_refused_pickle_cannot_patch_argparse_namespace(tmp_path):
    original = argparse.Namespace.__dict__.get("__eq__")
    path = crafted.namespace_eq_rewrite(tmp_path)
    try:
        with pytest.raises(CheckpointFormatError, match=r"model\.pt: "):
            fairseq.read_checkpoint(path)
        assert argparse.Namespace.__dict__.get("__eq__") is original
        assert argparse.Namespace(a=1) == argparse.Namespace(a=1)
    finally:
        argparse.Namespace.__eq__ = original


def test_refused_pickle_cannot_change_the_readers_defaults(tmp_path):
    func = checkpoint.pickle_reader._rebuild_parameter
    before = func.__defaults__
    path = crafted.defaults_rewrite(tmp_path)
    try:
        with pytest.raises(UnsafePickleError, match=r"pytorch_model\.bin: "):
            checkpoint.load_state_dict(path)
        assert func.__defaults__ == before
    finally:
        func.__defaults__ = before


def test_forbidden_global_is_refused_before_anything_is_built(tmp_path):
    # os.system comes last in the stream: a scan of the opcodes finds it before the first object exists.
    pkl = crafted.state_dict([("w", crafted.tensor("0", 4, (4,), (1,)))])[:-1]
    pkl += crafted.P.POP + crafted.glob("os", "system") + crafted.P.STOP
    path = crafted.torch_zip(tmp_path / "pytorch_model.bin", pkl, {"0": crafted.FOUR_FLOATS})
    calls = []
    real = checkpoint.pickle_reader._rebuild_tensor
    checkpoint.pickle_reader._TORCH_GLOBALS[("torch._utils", "_rebuild_tensor_v2")] = lambda *a: calls.append(a) or real(*a)
    try:
        with pytest.raises(UnsafePickleError, match=r"os\.system"):
            checkpoint.load_state_dict(path)
    finally:
        checkpoint.pickle_reader._TORCH_GLOBALS[("torch._utils", "_rebuild_tensor_v2")] = real
    assert calls == []


# ---------------------------------------------------------------------------- 6. memory blow-ups before any check


def test_zip_bomb_is_refused_before_inflating(tmp_path):
    path = crafted.zip_bomb(tmp_path)
    assert path.stat().st_size < 2**20
    [result] = crafted.load_isolated([path], spare_bytes=48 * 2**20)  # the entry inflates to 64 MiB
    refused(path, result, "compress")


def test_storage_size_must_match_its_zip_entry(tmp_path):
    path = crafted.storage_larger_than_entry(tmp_path)
    [result] = crafted.load_isolated([path])
    refused(path, result, "2147483648")


# ---------------------------------------------------------------------------- 7. errors, warnings, permissions


def test_nan_and_inf_weights_give_one_warning_naming_them(tmp_path):
    state = state_of(0)
    state["lm_head.bias"][3] = np.nan
    state["roberta.pooler.dense.weight"] = np.zeros((4, 4), np.float32)  # not in masked_lm: any name works
    state["roberta.pooler.dense.weight"][0, 0] = np.inf
    checkpoint.save_state_dict(state, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint.load_state_dict(tmp_path)
    messages = [str(w.message) for w in caught if "NaN" in str(w.message) or "Inf" in str(w.message)]
    assert len(messages) == 1, messages
    assert "lm_head.bias" in messages[0] and "roberta.pooler.dense.weight" in messages[0] and str(tmp_path) in messages[0]


def test_integer_weights_where_floats_are_expected_are_named(tmp_path):
    state = state_of(0)
    state["lm_head.bias"] = state["lm_head.bias"].astype(np.int32)
    state["roberta.embeddings.position_ids"] = np.arange(8, dtype=np.int64)[None]  # an int buffer is fine
    checkpoint.save_state_dict(state, tmp_path)
    with pytest.warns(UserWarning, match=r"lm_head\.bias \(int32\)") as record:
        got = checkpoint.load_state_dict(tmp_path)
    assert got["lm_head.bias"].dtype == np.int32  # read as stored, never cast silently
    assert not any("position_ids" in str(w.message) for w in record)


@pytest.mark.parametrize("fmt", ["safetensors", "sharded", "bin", "h5", "msgpack"])
def test_weights_files_get_the_usual_permissions(tmp_path, fmt):
    old = os.umask(0o022)
    try:
        if fmt == "sharded":
            written = checkpoint.save_state_dict(state_of(0), tmp_path / "c", max_shard_size="20KB")
        else:
            written = checkpoint.save_state_dict(state_of(0), tmp_path / "c", format=fmt)
    finally:
        os.umask(old)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_msgpack_array_too_big_names_the_file(tmp_path):
    import msgpack

    huge = {"lm_head": {"bias": msgpack.ExtType(1, msgpack.packb(((2**40, 2**40), "float32", b"")))}}
    (tmp_path / "flax_model.msgpack").write_bytes(msgpack.packb(huge))
    with pytest.raises(CheckpointFormatError, match=r"flax_model\.msgpack: "):
        checkpoint.load_state_dict(tmp_path)


def test_bf16_weights_still_load_without_a_warning(tmp_path):
    state = {k: v.astype(ml_dtypes.bfloat16) for k, v in state_of(0).items()}
    checkpoint.save_state_dict(state, tmp_path, format="bin")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint.load_state_dict(tmp_path)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_nan_in_half_precision_weights_is_named(tmp_path, dtype):
    state = {k: v.astype(dtype) for k, v in state_of(0).items()}
    state["lm_head.bias"][1] = np.inf
    checkpoint.save_state_dict(state, tmp_path, format="bin")
    with pytest.warns(UserWarning, match=r"1 tensor\(s\) hold NaN or Inf values: lm_head\.bias$"):
        checkpoint.load_state_dict(tmp_path)
