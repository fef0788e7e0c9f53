"""The RoBERTa family in Flax (issue 15): v4's class names of XLM-RoBERTa, CamemBERT and
RoBERTa-PreLayerNorm (`FlaxXLMRobertaForMaskedLM`, `FlaxCamembertModel`,
`FlaxRobertaPreLayerNormForQuestionAnswering`, ...) build the member's model_type from any config;
RoBERTa-PreLayerNorm (LayerNorms before attention and feed-forward, one after the last layer)
on every path: eager and fused attention, `unpad`, the key/value cache and `generate`,
cross-attention, gradient checkpointing, export, checkpoints with the member's names.

Oracle: the float64 NumPy reference (`roberta_core.reference`, PreLN included) on the same
canonical weights; the padded forward for `unpad`; full recomputation for the cache.

Speed: a model's compiled call costs seconds to compile per structure, config and shape, and
each family member is a config of its own. Where the compiled path is not what a test is about,
calls run `eager` (`jax.disable_jit`): op by op, each operation compiled once for the whole
file. The compiled path of RoBERTa-PreLayerNorm is checked by the attention, `unpad`, `generate`
and export tests.
"""

from __future__ import annotations

import json
import shutil
import struct
import warnings

import jax
import numpy as np
import pytest
from flax import nnx

import roberta_flax as rf
from roberta_core.config import RobertaConfig
from roberta_core.reference import forward as reference
from roberta_core.weights import FAMILY, HEADS, architecture_name, parameter_shapes
from roberta_flax.convert import from_canonical, to_canonical
from tests.helpers import ALL_HEADS, FIXTURES, assert_close, padded_batch, random_state, rel_err
from tests.roberta_flax.common import CLASSES, head_config, head_inputs, main_output

MEMBERS = ("xlm-roberta", "camembert", "roberta-prelayernorm")
PRELN = "roberta-prelayernorm"
eager = jax.disable_jit
# Checkpoints transformers 4.57.6 wrote, with its PyTorch outputs (tests/fixtures/make_family.py).
V4_FILES = ("model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
V4_CASES = [(folder.name, name) for folder in sorted((FIXTURES / "family").glob("*")) for name in V4_FILES
            if (folder / name).is_file()]


def family_class(model_type: str, head: str) -> type:
    """v4's Flax class of `head` for a family member: 'FlaxXLMRobertaForMaskedLM', ..."""
    return getattr(rf, architecture_name(head, model_type, "Flax"))


def build_member(model_type: str, head: str, seed: int = 0, **overrides):
    """(model, canonical state): the member's class built from a plain RoBERTa config, holding
    random weights drawn for the member's architecture."""
    model = family_class(model_type, head)(head_config(head, **overrides))
    state = random_state(model.config, head, seed)
    return from_canonical(model, state), state


# ---------------------------------------------------------------------------- names and configs


@pytest.mark.parametrize("model_type", MEMBERS)
def test_family_classes_have_v4_names_and_set_model_type(model_type):
    stem = FAMILY[model_type]
    prefix = "roberta_prelayernorm" if model_type == PRELN else "roberta"
    for head in HEADS:
        cls = family_class(model_type, head)
        assert cls.__name__ == "Flax" + stem + HEADS[head][len("Roberta"):] and cls.__name__ in rf.__all__
        assert issubclass(cls, CLASSES[head]) and cls.base_model_prefix == prefix
    assert rf.__dict__[f"Flax{stem}PreTrainedModel"].base_model_prefix == prefix
    # A plain RoBERTa config gives the member's model_type; the config given is not changed.
    config = head_config("masked_lm")
    model = family_class(model_type, "masked_lm")(config)
    assert model.config.model_type == model_type and config.model_type == "roberta"
    assert model.base_model_prefix == prefix and model.roberta.config.model_type == model_type
    assert model.config.pre_layer_norm == (model_type == PRELN)


def test_roberta_classes_keep_the_config_model_type():
    """A `FlaxRoberta*` class builds what the config says (a PreLN config builds PreLN), and the
    PreLN name of the encoder reaches the same module, without a second copy of its parameters."""
    config = head_config("masked_lm", model_type=PRELN)
    model = rf.FlaxRobertaForMaskedLM(config)
    assert model.config.model_type == PRELN and model.base_model_prefix == "roberta_prelayernorm"
    assert model.roberta_prelayernorm is model.roberta and model.base_model is model.roberta
    assert list(to_canonical(model)) == list(parameter_shapes(config, "masked_lm"))
    plain = rf.FlaxRobertaForMaskedLM(head_config("masked_lm"))
    assert plain.config.model_type == "roberta" and not hasattr(plain, "roberta_prelayernorm")
    bare = rf.FlaxRobertaPreLayerNormModel(head_config("model"))
    assert bare.base_model is bare and not hasattr(bare, "roberta_prelayernorm")
    with pytest.raises(AttributeError):
        model.roberta_prelayernorm = model.roberta  # read-only


def test_preln_parameters_are_the_canonical_preln_names():
    """PreLN has the LayerNorms of v4's RobertaPreLayerNorm* and no post-LN ones, as Flax paths."""
    model = rf.FlaxRobertaPreLayerNormForCausalLM(head_config("causal_lm", add_cross_attention=True))
    paths = {"/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    for path in ("roberta/LayerNorm/scale", "roberta/encoder/layer/0/attention/LayerNorm/scale",
                 "roberta/encoder/layer/1/crossattention/LayerNorm/bias",
                 "roberta/encoder/layer/0/intermediate/LayerNorm/scale"):
        assert path in paths, path
    assert not [p for p in paths if "output/LayerNorm" in p]
    assert list(to_canonical(model)) == list(parameter_shapes(model.config, "causal_lm"))


# ---------------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("head", ALL_HEADS)
@pytest.mark.parametrize("model_type", MEMBERS)
def test_family_outputs_equal_the_reference(model_type, head):
    model, state = build_member(model_type, head)
    inputs = head_inputs(model.config, head)
    with eager():
        got = model(**inputs, output_hidden_states=True)
    want = reference(model.config, state, head, **inputs, output_hidden_states=True)
    names = (*(() if head == "model" else ("loss",)), *main_output(head), "hidden_states")
    assert set(names) <= set(want)
    for name in names:
        if name == "hidden_states":
            assert len(got[name]) == model.config.num_hidden_layers + 1
            for i, (g, w) in enumerate(zip(got[name], want[name])):
                assert rel_err(g, w) <= 1e-5, f"{model_type} {head}.{name}[{i}]"
        else:
            assert rel_err(got[name], want[name]) <= 1e-5, f"{model_type} {head}.{name}"


def test_preln_last_hidden_state_is_the_final_layernorm_of_the_last_hidden_states():
    """As v4: `hidden_states[-1]` is the encoder's output, `last_hidden_state` its LayerNorm
    (computed here in NumPy from the canonical LayerNorm weights)."""
    model, state = build_member(PRELN, "model", seed=3)
    ids, mask = padded_batch(model.config)
    out = model(ids, attention_mask=mask, output_hidden_states=True)
    last = np.asarray(out.hidden_states[-1], np.float64)
    mean = last.mean(-1, keepdims=True)
    var = ((last - mean) ** 2).mean(-1, keepdims=True)
    normed = (last - mean) / np.sqrt(var + model.config.layer_norm_eps)
    normed = normed * state["LayerNorm.weight"] + state["LayerNorm.bias"]
    assert_close(out.last_hidden_state, normed, atol=1e-5, what="last_hidden_state")
    assert np.abs(np.asarray(out.last_hidden_state) - last).max() > 0.1  # the norm was applied once, not zero times


@pytest.mark.parametrize("attn", ["dot_product", "einsum"])
def test_preln_attention_paths_and_probabilities_equal_the_reference(attn):
    model = rf.FlaxRobertaPreLayerNormModel(head_config("model"), attn_implementation=attn)
    state = random_state(model.config, "model", 5)
    from_canonical(model, state)
    ids, mask = padded_batch(model.config)
    head_mask = np.array([1.0, 0.0, 1.0, 0.5])
    for kwargs in ({}, dict(output_attentions=True, head_mask=head_mask)):
        got = model(ids, attention_mask=mask, **kwargs)
        want = reference(model.config, state, "model", input_ids=ids, attention_mask=mask, **kwargs)
        for name in want:
            for i, (g, w) in enumerate(zip(*(v if isinstance(v, tuple) else (v,) for v in (got[name], want[name])))):
                assert rel_err(g, w) <= 1e-5, f"{attn} {kwargs.keys()} {name}[{i}]"


def test_preln_relative_positions_equal_the_reference():
    model, state = build_member(PRELN, "masked_lm", position_embedding_type="relative_key_query")
    inputs = head_inputs(model.config, "masked_lm")
    with eager():
        got = model(**inputs).logits
    assert rel_err(got, reference(model.config, state, "masked_lm", **inputs)["logits"]) <= 1e-5


# ---------------------------------------------------------------------------- fast paths


@pytest.mark.parametrize("head", ["model", "token_classification", "causal_lm"])
def test_preln_unpad_equals_padded(head):
    model, state = build_member(PRELN, head, seed=2)
    inputs = {k: v for k, v in head_inputs(model.config, head).items() if k in ("input_ids", "attention_mask")}
    if head == "causal_lm":
        inputs["use_cache"] = False  # a cache needs the padded layout (unpad would fall back)
    mask = inputs["attention_mask"].astype(bool)
    padded = model(**inputs, output_hidden_states=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to the padded batch
        packed = model(**inputs, output_hidden_states=True, unpad=True)
    name = "last_hidden_state" if head == "model" else "logits"
    assert_close(np.asarray(packed[name])[mask], np.asarray(padded[name])[mask], what=name)
    for i, (p, q) in enumerate(zip(packed.hidden_states, padded.hidden_states)):
        assert_close(np.asarray(p)[mask], np.asarray(q)[mask], what=f"hidden_states[{i}]")
    if head == "model":
        # Padding stays zeros (the final LayerNorm ran on the packed stream, not on the padding).
        assert (np.asarray(packed.last_hidden_state)[~mask] == 0).all()
        assert_close(packed.pooler_output, padded.pooler_output, what="pooler_output")


def test_preln_cache_equals_full_recompute_and_generate_is_greedy_by_full_forwards():
    model, state = build_member(PRELN, "causal_lm", seed=11)
    config = model.config
    ids = padded_batch(config, lengths=(6,), seed=11)[0]
    full = reference(config, state, "causal_lm", input_ids=ids, use_cache=False)["logits"]
    first = model(ids[:, :5], use_cache=True)
    step = model(ids[:, 5:], past_key_values=first.past_key_values, use_cache=True)
    assert rel_err(np.concatenate([first.logits, step.logits], axis=1), full) <= 1e-5
    # generate: one compiled loop over a preallocated cache; each token the argmax of a full
    # float64 forward over everything before it, at v4 Flax generate's positions (from 0).
    row = ids[0, :4]
    out = np.asarray(model.generate(ids[:, :4], max_new_tokens=4, eos_token_id=[]).sequences)
    for _ in range(4):
        nxt = reference(
            config, state, "causal_lm", input_ids=row[None], position_ids=np.arange(len(row))[None], use_cache=False
        )["logits"][0, -1].argmax()
        row = np.append(row, nxt)
    assert out[0].tolist() == row.tolist()


def test_preln_cross_attention_with_cache_equals_the_reference():
    model, state = build_member(PRELN, "causal_lm", seed=4, add_cross_attention=True)
    config = model.config
    ids, mask = padded_batch(config, lengths=(5, 5), seed=4)
    enc = np.random.default_rng(4).standard_normal((2, 3, config.hidden_size)).astype(np.float32)
    enc_mask = np.array([[1, 1, 1], [1, 1, 0]])
    kw = dict(encoder_hidden_states=enc, encoder_attention_mask=enc_mask)
    want = reference(config, state, "causal_lm", input_ids=ids, use_cache=False, **kw)["logits"]
    first = model(ids[:, :4], use_cache=True, **kw)
    last = model(ids[:, 4:], past_key_values=first.past_key_values, use_cache=True, **kw)
    assert rel_err(np.concatenate([first.logits, last.logits], axis=1), want) <= 1e-5


def test_preln_gradient_checkpointing_and_training_step():
    from roberta_core.optim import AdamW
    from roberta_flax.training import FlaxTrainer

    model, state = build_member(PRELN, "masked_lm", num_hidden_layers=1)
    inputs = head_inputs(model.config, "masked_lm")

    def grads(model):
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        loss = lambda p: nnx.merge(graphdef, p, rest)(**inputs).loss  # noqa: E731
        return to_canonical(nnx.merge(graphdef, jax.jit(jax.grad(loss))(params), rest))

    plain = grads(model)
    model.gradient_checkpointing_enable()
    remat = grads(model)
    for key in ("roberta.LayerNorm.weight", "roberta.encoder.layer.0.attention.LayerNorm.weight",
                "roberta.encoder.layer.0.intermediate.LayerNorm.bias"):
        assert np.abs(plain[key]).max() > 0, key  # the PreLN norms are in the gradient's path
    for key, g in plain.items():
        assert_close(remat[key], g, atol=1e-6, what=key)

    # The recipe's step: its loss (before the update) is the reference's; the final LayerNorm learns.
    trainer = FlaxTrainer("masked_lm", model.config, AdamW(peak_lr=1e-3, warmup=0, steps=10), state=state,
                          precision="fp32")
    assert trainer.model.config.pre_layer_norm
    loss = trainer.train_step([inputs], 1e-3, int((inputs["labels"] != -100).sum()))
    want = float(reference(model.config, state, "masked_lm", **inputs)["loss"])
    assert abs(loss - want) <= 1e-5 * want
    assert not np.array_equal(trainer.weights()["roberta.LayerNorm.weight"], state["roberta.LayerNorm.weight"])


def test_preln_stablehlo_export_equals_the_reference(tmp_path):
    from roberta_flax.export import export, load_exported

    model, state = build_member(PRELN, "token_classification", seed=6)
    ids, mask = padded_batch(model.config)
    axes = {"input_ids": ("batch", "sequence"), "attention_mask": ("batch", "sequence"),
            "logits": ("batch", "sequence", None)}
    example = dict(input_ids=ids.astype(np.int32), attention_mask=mask.astype(np.int32))
    path = export(model, tmp_path, example=example, axes=axes)
    # Served at another batch and length than the example's: the shapes are symbolic.
    other = dict(input_ids=ids[:2, :5], attention_mask=mask[:2, :5])
    got = load_exported(path)(other)["logits"]
    want = reference(model.config, state, "token_classification", **other)["logits"]
    assert rel_err(got, want) <= 1e-5


# ---------------------------------------------------------------------------- checkpoints


def _safetensors_keys(path) -> list[str]:
    """The tensor names in a safetensors file's header (read here, not through the library)."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return [k for k in json.loads(f.read(size)) if k != "__metadata__"]


@pytest.mark.parametrize("fmt", ["safetensors", "msgpack"])
@pytest.mark.parametrize("model_type", MEMBERS)
def test_save_and_load_keep_model_type_architecture_and_outputs(model_type, fmt, tmp_path):
    model, _ = build_member(model_type, "masked_lm", seed=8)
    inputs = head_inputs(model.config, "masked_lm")
    with eager():
        want = np.asarray(model(**inputs).logits)
    model.save_pretrained(tmp_path, format=fmt)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == model_type
    assert saved["architectures"] == [architecture_name("masked_lm", model_type)]
    assert RobertaConfig.from_pretrained(tmp_path).model_type == model_type
    for cls in (family_class(model_type, "masked_lm"), rf.FlaxRobertaForMaskedLM):
        loaded = cls.from_pretrained(tmp_path)
        assert loaded.config.model_type == model_type, cls.__name__
        assert loaded.config.pre_layer_norm == (model_type == PRELN)
        with eager():
            assert np.array_equal(np.asarray(loaded(**inputs).logits), want), cls.__name__


def test_preln_checkpoint_files_name_the_encoder_roberta_prelayernorm(tmp_path):
    from flax.serialization import msgpack_restore

    model, _ = build_member(PRELN, "sequence_classification", seed=9)
    model.save_pretrained(tmp_path / "st", safe_serialization=True)
    keys = _safetensors_keys(tmp_path / "st" / "model.safetensors")
    assert "roberta_prelayernorm.LayerNorm.weight" in keys
    assert "roberta_prelayernorm.encoder.layer.0.attention.LayerNorm.weight" in keys
    assert not [k for k in keys if k.startswith("roberta.")] and "classifier.dense.weight" in keys
    model.save_pretrained(tmp_path / "mp", format="msgpack")
    tree = msgpack_restore((tmp_path / "mp" / "flax_model.msgpack").read_bytes())
    assert sorted(tree) == ["classifier", "roberta_prelayernorm"]
    assert "LayerNorm" in tree["roberta_prelayernorm"]
    # A RoBERTa (post-LN) checkpoint keeps `roberta.` names.
    xlmr = rf.FlaxXLMRobertaForSequenceClassification(head_config("sequence_classification"))
    xlmr.save_pretrained(tmp_path / "x", safe_serialization=True)
    assert all(not k.startswith("roberta_prelayernorm.") for k in _safetensors_keys(tmp_path / "x" / "model.safetensors"))


def test_preln_params_tree_names_the_encoder_roberta_prelayernorm_as_v4_and_its_file(tmp_path):
    # v4's FlaxRobertaPreLayerNorm* models hold `params["roberta_prelayernorm"]`: the same tree
    # as their flax_model.msgpack; scripts index it by that name.
    from flax.serialization import msgpack_restore

    model, _ = build_member(PRELN, "masked_lm", seed=4)
    params = model.params
    assert sorted(params) == ["lm_head", "roberta_prelayernorm"]
    model.save_pretrained(tmp_path, format="msgpack")
    saved = msgpack_restore((tmp_path / "flax_model.msgpack").read_bytes())
    flat = lambda tree: {k: np.asarray(v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}
    assert {jax.tree_util.keystr(k) for k in flat(params)} >= {jax.tree_util.keystr(k) for k in flat(saved)}
    # The setter takes v4's tree back (and the `roberta` level too); a call with params= works.
    ids = np.array([[0, 5, 6, 7, 2]], dtype=np.int32)
    with eager():
        before = np.asarray(model(ids).logits)
        doubled = jax.tree.map(lambda x: x * 2, params)
        np.testing.assert_allclose(np.asarray(model(ids, params=params).logits), before, rtol=1e-6, atol=1e-6)
        model.params = doubled
        assert not np.allclose(np.asarray(model(ids).logits), before)
        model.params = {("roberta" if k == "roberta_prelayernorm" else k): v for k, v in params.items()}
        np.testing.assert_allclose(np.asarray(model(ids).logits), before, rtol=1e-6, atol=1e-6)
    # A post-LN member keeps `roberta`.
    assert "roberta" in rf.FlaxXLMRobertaForMaskedLM(head_config("masked_lm")).params


def test_family_class_loads_a_plain_roberta_checkpoint_as_the_member(tmp_path):
    """`FlaxXLMRobertaForMaskedLM.from_pretrained(roberta_dir)` is XLM-R with the same weights,
    as v4's config class would make it."""
    model, _ = build_member("camembert", "masked_lm")
    inputs = head_inputs(model.config, "masked_lm")
    plain = rf.FlaxRobertaForMaskedLM(head_config("masked_lm"))
    from_canonical(plain, to_canonical(model))
    plain.save_pretrained(tmp_path)
    loaded = rf.FlaxXLMRobertaForMaskedLM.from_pretrained(tmp_path)
    assert loaded.config.model_type == "xlm-roberta"
    with eager():
        assert np.array_equal(np.asarray(loaded(**inputs).logits), np.asarray(model(**inputs).logits))


@pytest.mark.parametrize("folder, weights", V4_CASES)
def test_v4_family_checkpoint_loads_under_its_v4_flax_class_with_v4_outputs(folder, weights, tmp_path):
    # Each weight file alone with its config.json, loaded by the Flax class of the name config.json gives.
    source = FIXTURES / "family" / folder
    for name in ("config.json", weights):
        shutil.copy(source / name, tmp_path / name)
    saved = json.loads((source / "config.json").read_text())
    model = getattr(rf, "Flax" + saved["architectures"][0]).from_pretrained(tmp_path, strict=True)
    assert model.config.model_type == saved["model_type"]
    io = np.load(source / "io.npz")
    with eager():
        out = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"], output_hidden_states=True)
    fields = [k[len("pt_"):] for k in io.files if k.startswith("pt_")]
    assert fields
    for field in fields:
        got = out.hidden_states[-1] if field == "hidden_last" else out[field]
        assert rel_err(got, io[f"pt_{field}"]) <= 1e-5, f"{folder}/{weights}: {field}"


def test_preln_class_given_a_roberta_checkpoint_reports_the_norms_it_lacks(tmp_path):
    """`FlaxRobertaPreLayerNormForMaskedLM.from_pretrained(roberta_dir)` builds PreLN, as v4's
    config class makes it: the post-LN norms are unused, the PreLN ones newly initialised."""
    rf.FlaxRobertaForMaskedLM(head_config("masked_lm")).save_pretrained(tmp_path)
    with pytest.warns(UserWarning):
        model, info = rf.FlaxRobertaPreLayerNormForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert model.config.pre_layer_norm
    assert "roberta.LayerNorm.weight" in info["missing_keys"]
    assert "roberta.encoder.layer.0.intermediate.LayerNorm.weight" in info["missing_keys"]
    assert "roberta.encoder.layer.0.output.LayerNorm.weight" in info["unexpected_keys"]
