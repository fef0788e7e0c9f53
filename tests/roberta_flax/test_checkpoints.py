"""from_pretrained / save_pretrained: the golden checkpoints transformers 4.57.6 wrote, in each of
the four formats, reproduce its outputs; our files round-trip bit-exactly; another head's
checkpoint, strictness, shape mismatches and dtypes behave as in v4."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from flax.serialization import msgpack_restore

from roberta_core.config import RobertaConfig
from roberta_core.weights import CheckpointKeyError, parameter_shapes
from roberta_flax.convert import to_canonical
from tests.helpers import assert_close, golden, rel_err
from tests.roberta_flax.common import CLASSES, build

FILES = {
    "safetensors": "model.safetensors",
    "bin": "pytorch_model.bin",
    "h5": "tf_model.h5",
    "msgpack": "flax_model.msgpack",
}
GOLDEN_HEADS = {
    "model": ("last_hidden_state", "pooler_output"),
    "masked_lm": ("logits",),
    "sequence_classification": ("logits",),
}


def only(source: Path, weights: str, target: Path) -> Path:
    """A checkpoint directory holding source's config and one weights file."""
    target.mkdir()
    for name in ("config.json", weights):
        os.symlink(source / name, target / name)
    return target


@pytest.mark.parametrize("fmt", FILES)
@pytest.mark.parametrize("head", GOLDEN_HEADS)
def test_golden_checkpoint_reproduces_transformers(head, fmt, tmp_path):
    source = golden(head)
    io = np.load(source / "io.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a golden checkpoint loads without a word
        model = CLASSES[head].from_pretrained(only(source, FILES[fmt], tmp_path / "ckpt"))
    out = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"])
    for field in GOLDEN_HEADS[head]:
        assert_close(out[field], io[f"pt_{field}"], atol=1e-5, what=f"{field} vs transformers PyTorch")
        assert_close(out[field], io[f"flax_{field}"], atol=1e-5, what=f"{field} vs transformers Flax")


def test_bfloat16_within_two_percent_of_float32():
    source = golden("masked_lm")
    io = np.load(source / "io.npz")
    model = CLASSES["masked_lm"].from_pretrained(source, dtype="bfloat16")
    assert model.lm_head.bias[...].dtype == jnp.bfloat16
    logits = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"]).logits
    assert logits.dtype == jnp.bfloat16
    assert rel_err(np.asarray(logits, np.float32), io["pt_logits"]) <= 2e-2


@pytest.mark.parametrize("fmt", ["safetensors", "msgpack"])
def test_save_and_load_round_trip_bit_exact(fmt, tmp_path):
    config = RobertaConfig.from_pretrained(golden("masked_lm"))
    model, state = build("masked_lm", config, seed=4)
    model.save_pretrained(tmp_path, format=fmt)
    assert (tmp_path / FILES[fmt]).is_file() and (tmp_path / "config.json").is_file()
    loaded = CLASSES["masked_lm"].from_pretrained(tmp_path)
    back = to_canonical(loaded)
    assert list(back) == list(state)
    for key in state:
        assert np.array_equal(back[key], state[key]), key
    assert RobertaConfig.from_pretrained(tmp_path).architectures == ["RobertaForMaskedLM"]
    if fmt == "msgpack":
        # The tree transformers' Flax models read: the golden file's paths and shapes.
        ours = msgpack_restore((tmp_path / FILES[fmt]).read_bytes())
        theirs = msgpack_restore((golden("masked_lm") / FILES[fmt]).read_bytes())
        assert _tree_shapes(ours) == _tree_shapes(theirs)


def _tree_shapes(tree, prefix=()):
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_tree_shapes(value, prefix + (key,)))
        else:
            out[prefix + (key,)] = (value.shape, value.dtype)
    return out


def test_v4_safe_serialization_false_writes_msgpack(tmp_path):
    model, _ = build("model", RobertaConfig.from_pretrained(golden("model")))
    model.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "flax_model.msgpack").is_file() and not (tmp_path / "model.safetensors").exists()
    with pytest.raises(ValueError, match="'safetensors' or 'msgpack'"):
        model.save_pretrained(tmp_path / "x", format="h5")


def test_other_heads_checkpoint_loads_with_one_warning_and_strict_refuses():
    source = golden("masked_lm")
    with pytest.warns(UserWarning) as record:
        model = CLASSES["sequence_classification"].from_pretrained(source, num_labels=4)
    text = "\n".join(str(w.message) for w in record)
    assert "newly initialised" in text and "classifier.out_proj.weight" in text and "lm_head.dense.weight" in text
    assert model.classifier.out_proj.kernel.shape == (32, 4)
    # The encoder came from the checkpoint.
    ref = CLASSES["masked_lm"].from_pretrained(source)
    assert np.array_equal(
        np.asarray(model.roberta.embeddings.word_embeddings.embedding[...]),
        np.asarray(ref.roberta.embeddings.word_embeddings.embedding[...]),
    )
    # The model was built without drawing the weights the checkpoint gave; what it lacked (and
    # dropout's random streams) is what a model built eagerly from the same seed holds.
    fresh = CLASSES["sequence_classification"](model.config, rngs=nnx.Rngs(0))
    loaded, built = to_canonical(model), to_canonical(fresh)
    for key in ("classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight"):
        assert np.array_equal(loaded[key], built[key]), key
    assert loaded["classifier.dense.weight"].std() > 0  # (not a constant)
    def raw(x):
        return np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)

    streams = [[raw(x) for x in jax.tree.leaves(nnx.state(m, nnx.RngState))] for m in (model, fresh)]
    assert len(streams[0]) == len(streams[1]) > 0
    assert all(np.array_equal(a, b) for a, b in zip(*streams))
    with pytest.raises(CheckpointKeyError, match="strict"):
        CLASSES["sequence_classification"].from_pretrained(source, strict=True)


def test_shape_mismatch_is_an_error_unless_ignored():
    source = golden("sequence_classification")  # 3 labels
    with pytest.raises(CheckpointKeyError, match="classifier.out_proj.weight"):
        CLASSES["sequence_classification"].from_pretrained(source, num_labels=5)
    with pytest.warns(UserWarning, match="ignore_mismatched_sizes"):
        model = CLASSES["sequence_classification"].from_pretrained(source, num_labels=5, ignore_mismatched_sizes=True)
    assert model.classifier.out_proj.kernel.shape == (32, 5)


def test_from_pretrained_dtypes_and_eval_mode():
    source = golden("model")
    model = CLASSES["model"].from_pretrained(source, dtype="auto")
    assert model.dtype == jnp.float32 and model.deterministic
    mixed = CLASSES["model"].from_pretrained(source, dtype=jnp.bfloat16, param_dtype=jnp.float32)
    assert mixed.dtype == jnp.bfloat16 and mixed.pooler.dense.kernel[...].dtype == jnp.float32
    with pytest.raises(TypeError, match="floating"):
        CLASSES["model"].from_pretrained(source, dtype=jnp.int32)
    with pytest.raises(ValueError, match="one of"):
        CLASSES["model"].from_pretrained(source, dtype="float8")
    with pytest.raises(ValueError, match="attn_implementation"):
        CLASSES["model"].from_pretrained(source, attn_implementation="flash")


def test_num_parameters_counts_the_tied_decoder_once():
    config = RobertaConfig.from_pretrained(golden("masked_lm"))
    model = CLASSES["masked_lm"](config)
    expected = sum(int(np.prod(s)) for s in parameter_shapes(config, "masked_lm").values())
    assert model.num_parameters() == expected
    embeddings = 100 * 32 + 66 * 32 + 1 * 32
    assert model.num_parameters(exclude_embeddings=True) == expected - embeddings


def test_resize_token_embeddings():
    config = RobertaConfig.from_pretrained(golden("masked_lm"))
    model, state = build("masked_lm", config.copy())
    model.resize_token_embeddings(103)
    table = np.asarray(model.get_input_embeddings().embedding[...])
    old = state["roberta.embeddings.word_embeddings.weight"]
    assert table.shape == (103, 32) and model.config.vocab_size == 103
    assert np.array_equal(table[:100], old)
    np.testing.assert_allclose(table[100:], np.broadcast_to(old.mean(axis=0), (3, 32)), rtol=1e-6, atol=1e-7)
    bias = np.asarray(model.lm_head.bias[...])
    assert bias.shape == (103,) and np.array_equal(bias[:100], state["lm_head.bias"]) and not bias[100:].any()
    assert sorted(to_canonical(model)) == sorted(state)  # the same keys, new shapes
    with pytest.raises(ValueError, match="pad_token_id"):
        model.resize_token_embeddings(1)
    # v4's other forms: no size is no change; pad_to_multiple_of rounds up (the current size without one).
    assert model.resize_token_embeddings() is model.get_input_embeddings() and model.config.vocab_size == 103
    model.resize_token_embeddings(pad_to_multiple_of=8)
    assert model.config.vocab_size == 104 and np.asarray(model.lm_head.bias[...]).shape == (104,)


def test_gradient_checkpointing_switch():
    model = CLASSES["model"](RobertaConfig.from_pretrained(golden("model")))
    assert not model.is_gradient_checkpointing
    model.gradient_checkpointing_enable()
    assert model.encoder.gradient_checkpointing
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing


def test_nnx_train_and_eval_switch_dropout():
    model = CLASSES["masked_lm"](RobertaConfig.from_pretrained(golden("masked_lm")))
    assert model._deterministic(None)  # built in evaluation mode, as v4's Flax default
    model.train()
    assert not model._deterministic(None) and model._deterministic(True)
    assert all(not m.deterministic for _, m in nnx.iter_modules(model) if hasattr(m, "deterministic"))
    model.eval()
    assert model._deterministic(None) and not model._deterministic(False)
