"""roberta_core.pretrained: the framework-neutral half of every backend's `from_pretrained` refuses
parameters that are not floating point (a backend would cast them silently) and names, in one
warning, the parameters that hold NaN or Inf.

Oracles: files crafted with a known defect in a known tensor (the golden fixture with one tensor
changed), and NumPy's own isfinite on each array."""

from __future__ import annotations

import shutil
import warnings

import ml_dtypes
import numpy as np
import pytest

from roberta_core import checkpoint, runtime
from roberta_core.reference import forward as reference
from roberta_core.pretrained import check_floating, load_pretrained, nonfinite, save_pretrained_files
from tests.helpers import assert_close, golden, padded_batch, random_state, tiny_config


def crafted(tmp_path, change) -> tuple:
    """The golden masked-LM checkpoint with `change(state)` applied to its weights."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    shutil.copyfile(golden("masked_lm") / "config.json", folder / "config.json")
    state = change(checkpoint.load_state_dict(golden("masked_lm") / "model.safetensors"))
    checkpoint.write_safetensors(state, folder / "model.safetensors")
    return folder, state


@pytest.mark.filterwarnings("ignore:.*integer or bool values")  # the reader's own note
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_parameters_that_are_not_floating_point_are_refused_by_name(tmp_path, dtype):
    key = "roberta.encoder.layer.0.attention.self.key.bias"
    folder, _ = crafted(tmp_path, lambda s: {**s, key: s[key].astype(dtype)})
    with pytest.raises(TypeError, match=rf"ckpt: parameter {key} is stored as {np.dtype(dtype).name}; "
                                        r"RoBERTa parameters are floating point"):
        load_pretrained(folder, "masked_lm")


def test_which_dtypes_count_as_floating_point():
    for dtype in (np.float16, np.float32, np.float64, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn):
        check_floating([("w", np.zeros(3, dtype))], "file")
    for dtype in (np.complex64, np.uint8, ml_dtypes.int4):  # safetensors/h5 can hold these too
        with pytest.raises(TypeError, match=rf"file: parameter w is stored as {np.dtype(dtype).name}"):
            check_floating([("w", np.zeros(3, dtype))], "file")


def test_half_precision_and_buffers_load(tmp_path):
    buffer = "roberta.embeddings.position_ids"  # older checkpoints carry int64 buffers: not parameters
    folder, state = crafted(tmp_path, lambda s: {
        **{k: v.astype(ml_dtypes.bfloat16) for k, v in s.items()}, buffer: np.arange(66, dtype=np.int64)[None]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, loaded, plan = load_pretrained(folder, "masked_lm")
    assert buffer not in loaded and not plan.missing
    assert all(v.dtype == ml_dtypes.bfloat16 for v in loaded.values())


def test_nan_and_inf_parameters_are_named_in_one_warning(tmp_path):
    bad = {"roberta.encoder.layer.1.output.dense.weight": np.nan, "lm_head.dense.bias": np.inf,
           "roberta.embeddings.word_embeddings.weight": -np.inf}

    def poison(state):
        for key, value in bad.items():
            state[key] = state[key].copy()
            state[key].flat[3] = value
        return state

    folder, state = crafted(tmp_path, poison)
    with pytest.warns(UserWarning) as record:
        _, loaded, _ = load_pretrained(folder, "masked_lm")
    messages = [str(w.message) for w in record if "NaN or Inf" in str(w.message)]
    assert len(messages) == 1 and "model.safetensors: 3 tensor(s) hold NaN or Inf values" in messages[0]
    assert all(key in messages[0] for key in bad)
    # The names are exactly those NumPy's isfinite finds, in every float width.
    for dtype in (np.float16, np.float32, np.float64, ml_dtypes.bfloat16):
        cast = {k: v.astype(dtype) for k, v in state.items()}
        want = sorted(k for k, v in cast.items() if not np.isfinite(v.astype(np.float64)).all())
        assert sorted(nonfinite(cast.items())) == sorted(bad) == want, dtype
    # Finite float64 values whose sum overflows are not mistaken for Inf.
    assert nonfinite([("big", np.full(4, 1e308))]) == []


@pytest.mark.parametrize("backend", [
    pytest.param(b, marks=pytest.mark.skipif(not runtime.available(b), reason=f"{b} not installed"))
    for b in ("pt", "tf", "flax")])
def test_every_backend_takes_a_config_object_with_to_dict(tmp_path, backend):
    """`from_pretrained(d, config=...)` with v4's `transformers.RobertaConfig` (or any object with
    `to_dict()`), as v4 code passes it: read through its dict; the caller's object untouched."""
    config = tiny_config(num_labels=3)
    state = random_state(config, "sequence_classification", seed=5)
    save_pretrained_files(tmp_path, config, state, "sequence_classification")
    ids, mask = padded_batch(config)
    want = reference(config, state, "sequence_classification", input_ids=ids, attention_mask=mask)["logits"]

    class Foreign:  # any object with to_dict(), as v4's PretrainedConfig
        def to_dict(self):
            return config.to_dict()

    model = runtime.load_model(backend, "sequence_classification", tmp_path, config=Foreign())
    got = runtime.run_model(backend, model, {"input_ids": ids, "attention_mask": mask})["logits"]
    assert_close(got, want, atol=1e-5, what=f"{backend} logits")
    with pytest.raises(TypeError, match="config must be"):
        runtime.load_model(backend, "sequence_classification", tmp_path, config=object())
