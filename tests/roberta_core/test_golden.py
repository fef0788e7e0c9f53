"""The golden fixtures (written by transformers 4.57.6 from PyTorch, TensorFlow and Flax) read
through `roberta_core.checkpoint` to one and the same canonical state dict, and that state dict
is exactly the table of `roberta_core.weights`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from roberta_core import checkpoint
from roberta_core.config import RobertaConfig
from roberta_core.weights import parameter_shapes, tied_keys
from tests.helpers import golden

HEADS = ("model", "masked_lm", "sequence_classification")
FILES = ("model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")


def assert_identical(got: dict, ref: dict, what: str) -> None:
    assert list(sorted(got)) == list(sorted(ref)), f"{what}: keys differ: {set(got) ^ set(ref)}"
    for key, want in ref.items():
        have = got[key]
        assert have.dtype == want.dtype and have.shape == want.shape, f"{what}: {key} {have.dtype}{have.shape} != {want.dtype}{want.shape}"
        assert have.tobytes() == want.tobytes(), f"{what}: {key} differs"


def without_tied(config: RobertaConfig, head: str, state: dict) -> dict:
    """Drop the tied aliases (pytorch_model.bin keeps them, the other files do not) after checking
    that each equals the array it is tied to."""
    out = dict(state)
    for alias, source in tied_keys(config, head).items():
        if alias in out:
            assert out[alias].tobytes() == out[source].tobytes(), f"{alias} is not tied to {source}"
            del out[alias]
    return out


@pytest.mark.parametrize("head", HEADS)
def test_four_formats_read_to_the_same_canonical_tensors(head):
    folder = golden(head)
    config = RobertaConfig.from_pretrained(folder)
    ref = checkpoint.load_state_dict(folder / "model.safetensors")
    for name in FILES[1:]:
        got = without_tied(config, head, checkpoint.load_state_dict(folder / name))
        assert_identical(got, ref, f"{head}/{name}")


@pytest.mark.parametrize("head", HEADS)
def test_canonical_names_and_shapes_match_the_weights_table(head):
    folder = golden(head)
    config = RobertaConfig.from_pretrained(folder)
    state = checkpoint.load_state_dict(folder)
    assert {k: v.shape for k, v in state.items()} == parameter_shapes(config, head)
    assert all(v.dtype == np.float32 for v in state.values())


def test_pytorch_bin_keeps_tied_decoder_and_safetensors_omits_it():
    folder = golden("masked_lm")
    bin_state = checkpoint.load_state_dict(folder / "pytorch_model.bin")
    st_state = checkpoint.load_state_dict(folder / "model.safetensors")
    assert {"lm_head.decoder.weight", "lm_head.decoder.bias"} <= set(bin_state)
    assert not {"lm_head.decoder.weight", "lm_head.decoder.bias"} & set(st_state)


@pytest.mark.parametrize("head", HEADS)
def test_pytorch_bin_matches_torch_load(head):
    torch = pytest.importorskip("torch")
    path = golden(head) / "pytorch_model.bin"
    ours = checkpoint.load_state_dict(path)
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs)
    for key, tensor in theirs.items():
        np.testing.assert_array_equal(ours[key], tensor.numpy(), err_msg=key)


@pytest.mark.parametrize(
    "present, expected",
    [
        (FILES, "model.safetensors"),
        (("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"), "pytorch_model.bin"),
        (("tf_model.h5", "flax_model.msgpack"), "tf_model.h5"),
        (("flax_model.msgpack",), "flax_model.msgpack"),
    ],
)
def test_directory_reads_the_preferred_file(tmp_path, present, expected):
    folder = golden("sequence_classification")
    for name in present:
        shutil.copy(folder / name, tmp_path / name)
    assert checkpoint.find_weights_file(tmp_path) == tmp_path / expected
    assert_identical(checkpoint.load_state_dict(tmp_path), checkpoint.load_state_dict(folder / "model.safetensors"), expected)
