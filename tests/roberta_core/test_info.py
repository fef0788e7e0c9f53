"""`roberta info` (roberta_core.commands.info) on checkpoints with broken or hostile side files and
weights: it describes what it finds, naming each problem, and never dies of a RecursionError or a
UnicodeDecodeError. Oracles: files crafted with one known defect each."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from roberta_core import checkpoint
from roberta_core.commands.info import info
from tests.helpers import golden


@pytest.fixture
def ckpt(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for file in ("config.json", "model.safetensors"):
        shutil.copyfile(golden("masked_lm") / file, folder / file)
    return folder


def test_unreadable_tokenizer_files_are_described_with_the_reason(ckpt):
    (ckpt / "tokenizer.json").write_bytes('{"model": {"type": "BPE", "vocab": {"café": 0}}}'.encode("latin-1"))
    assert info(ckpt)["tokenizer"].startswith("tokenizer.json (unreadable: is not UTF-8 text (byte 0xe9")
    (ckpt / "tokenizer.json").write_text("[" * 100_000 + "]" * 100_000)
    assert info(ckpt)["tokenizer"] == "tokenizer.json (unreadable: JSON nested more deeply than Python can read)"
    (ckpt / "tokenizer.json").write_text('{"model": ["not", "a", "model"]}')
    assert info(ckpt)["tokenizer"] == "tokenizer.json (unreadable: not a tokenizers model)"
    (ckpt / "tokenizer.json").unlink()
    (ckpt / "merges.txt").write_text("#version: 0.2\n")
    (ckpt / "vocab.json").write_text("[1, 2, 3]")
    assert info(ckpt)["tokenizer"] == "vocab.json + merges.txt (vocab.json unreadable: not a mapping of tokens to ids)"
    (ckpt / "vocab.json").write_text('{"<s>": 0,\n "a": }')
    assert info(ckpt)["tokenizer"] == (
        "vocab.json + merges.txt (vocab.json unreadable: is not valid JSON: Expecting value at line 2, column 7)")


def test_a_hostile_config_is_refused_naming_the_file(ckpt):
    (ckpt / "config.json").write_text(json.dumps({"x": json.loads("[" * 50 + "]" * 50)}))
    with pytest.raises(ValueError, match=r"config\.json: JSON nested more than 32 levels deep"):
        info(ckpt)


def test_weights_that_no_model_should_load_are_listed_as_problems(ckpt):
    state = checkpoint.load_state_dict(ckpt / "model.safetensors")
    nan, integer = "roberta.encoder.layer.0.intermediate.dense.weight", "lm_head.layer_norm.bias"
    state[nan] = state[nan].copy()
    state[nan][1, 2] = np.nan
    state[integer] = state[integer].astype(np.int32)
    checkpoint.write_safetensors(state, ckpt / "model.safetensors")
    with pytest.warns(UserWarning):  # the reader names both too
        problems = info(ckpt)["problems"]
    assert f"not floating point (1): {integer} (int32)" in problems
    assert f"NaN or Inf values (1): {nan}" in problems
