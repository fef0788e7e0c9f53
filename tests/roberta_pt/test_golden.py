"""The PyTorch backend reproduces what `transformers` 4.57.6 gave on the golden fixtures
(tests/fixtures/golden), loading each of the four weight files transformers wrote."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from tests.helpers import assert_close, golden
from tests.roberta_pt.common import CLASSES

FORMATS = ("model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
FIELDS = {
    "model": ("last_hidden_state", "pooler_output"),
    "masked_lm": ("logits",),
    "sequence_classification": ("logits",),
}


@pytest.mark.parametrize("weights", FORMATS)
@pytest.mark.parametrize("head", tuple(FIELDS))
def test_golden_outputs_from_every_weight_file(head, weights, tmp_path):
    source = golden(head)
    shutil.copy(source / "config.json", tmp_path)
    shutil.copy(source / weights, tmp_path)  # the only weights file there
    io = np.load(source / "io.npz")
    model = CLASSES[head].from_pretrained(tmp_path, strict=True)
    assert not model.training
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(io["input_ids"]), attention_mask=torch.from_numpy(io["attention_mask"]))
    for field in FIELDS[head]:
        assert_close(out[field].numpy(), io[f"pt_{field}"], atol=1e-5, what=f"{head}/{weights}/{field}")


@pytest.mark.parametrize("head", tuple(FIELDS))
def test_golden_outputs_with_eager_attention(head):
    source = golden(head)
    io = np.load(source / "io.npz")
    model = CLASSES[head].from_pretrained(source, attn_implementation="eager")
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(io["input_ids"]), attention_mask=torch.from_numpy(io["attention_mask"]))
    for field in FIELDS[head]:
        assert_close(out[field].numpy(), io[f"pt_{field}"], atol=1e-5, what=f"{head}/eager/{field}")
