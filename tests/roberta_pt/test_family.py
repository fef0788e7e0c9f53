"""The RoBERTa family in the PyTorch backend (issue 15): v4's class names of XLM-RoBERTa, CamemBERT
and RoBERTa-PreLayerNorm, their model_type through build, save and load, and RoBERTa-PreLayerNorm's
architecture on every path (both attention kernels, `unpad`, the key/value cache and `generate`,
cross-attention, gradient checkpointing, the training step, ONNX export).

Oracles: the float64 NumPy reference (`roberta_core.reference`) on the same canonical weights; v4's
LayerNorm formula by hand for the final LayerNorm; the padded forward and the full recompute for
the fast paths (themselves checked against the reference); the file's own keys read by safetensors.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

import roberta_pt
from roberta_core.weights import FAMILY, HEADS, parameter_shapes
from roberta_pt.convert import from_canonical, to_canonical
from tests.helpers import ALL_HEADS, FIXTURES, assert_close, padded_batch, random_state, rel_err, tiny_config
from tests.roberta_pt.common import CLASSES, build, run_reference, t

MEMBERS = ("xlm-roberta", "camembert", "roberta-prelayernorm")
# Checkpoints written by transformers 4.57.6 with its outputs (tests/fixtures/make_family.py): folder, weight files.
V4_FILES = {"model.safetensors": "safetensors", "pytorch_model.bin": "bin", "tf_model.h5": "h5",
            "flax_model.msgpack": "msgpack"}
V4_CASES = [(folder.name, name) for folder in sorted((FIXTURES / "family").glob("*")) for name in V4_FILES
            if (folder / name).is_file()]
PRELN = "roberta-prelayernorm"


def _alias(head: str, model_type: str) -> type:
    """v4's class of `head` for a family member, from the package: `XLMRobertaForMaskedLM`, ..."""
    return getattr(roberta_pt, CLASSES[head].__name__.replace("Roberta", FAMILY[model_type], 1))


def _config(head: str, **kw):
    # QA scores a start and an end: its num_labels is 2.
    return tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm", **kw)


def _build_alias(head: str, model_type: str, seed: int = 0, **kw):
    """(model in eval mode, its config, canonical state): the family class built from a plain
    RoBERTa config (the class sets model_type), holding random canonical weights."""
    model = _alias(head, model_type)(_config(head, **kw))
    state = random_state(model.config, head, seed)
    from_canonical(model, state)
    return model.eval(), model.config, state


def _inputs(config, head, lengths=(7, 5, 2)):
    ids, mask = padded_batch(config, lengths=lengths)
    if head == "multiple_choice":  # (B, C, T): two choices per example
        ids2, mask2 = padded_batch(config, lengths=lengths[::-1], seed=1)
        return dict(input_ids=t(np.stack([ids, ids2], 1)), attention_mask=t(np.stack([mask, mask2], 1)))
    return dict(input_ids=t(ids), attention_mask=t(mask))


def _compare(out, ref, what, tol=1e-5):
    assert set(out.keys()) == set(ref.keys()), f"{what}: fields {list(out.keys())} != reference {list(ref.keys())}"
    for name, value in ref.items():
        if name == "past_key_values":
            continue
        if isinstance(value, tuple):
            assert len(out[name]) == len(value), f"{what}.{name}: {len(out[name])} entries != {len(value)}"
            for i, (a, b) in enumerate(zip(out[name], value)):
                assert rel_err(a.detach().float().numpy(), b) <= tol, f"{what}.{name}[{i}]"
        else:
            err = rel_err(out[name].detach().float().numpy(), value)
            assert err <= tol, f"{what}.{name}: relative error {err:.3g} > {tol:g}"


# ---------------------------------------------------------------------------- v4's class names

@pytest.mark.parametrize("model_type", MEMBERS)
@pytest.mark.parametrize("head", ALL_HEADS)
def test_family_class_has_v4_name_model_type_and_matches_reference(head, model_type):
    cls = _alias(head, model_type)
    assert cls.__name__ in roberta_pt.__all__ and issubclass(cls, CLASSES[head])
    assert cls.base_model_prefix == ("roberta_prelayernorm" if model_type == PRELN else "roberta")
    model, config, state = _build_alias(head, model_type)
    assert config.model_type == model_type and model.config is config
    assert config.pre_layer_norm == (model_type == PRELN)
    inputs = _inputs(config, head)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    if head == "model":
        assert out.pooler_output is not None
    _compare(out, run_reference(config, state, head, **inputs, output_hidden_states=True), f"{head}/{model_type}")


def test_every_family_class_is_exported():
    names = {cls.__name__.replace("Roberta", FAMILY[m], 1) for cls in CLASSES.values() for m in MEMBERS}
    names |= {"XLMRobertaPreTrainedModel", "CamembertPreTrainedModel", "RobertaPreLayerNormPreTrainedModel"}
    assert names <= set(roberta_pt.__all__)
    assert all(getattr(roberta_pt, n).__module__.startswith("roberta_pt") for n in names)
    # the four members' eight classes, then v4's seven AutoModel* classes (roberta_core.auto)
    assert len(roberta_pt.__all__) == len(set(roberta_pt.__all__)) == 8 * 4 + 7
    assert {n for n in roberta_pt.__all__ if n.startswith("Auto")} == {
        "AutoModel", "AutoModelForCausalLM", "AutoModelForMaskedLM", "AutoModelForSequenceClassification",
        "AutoModelForMultipleChoice", "AutoModelForTokenClassification", "AutoModelForQuestionAnswering"}


def test_roberta_class_keeps_the_config_model_type():
    # A Roberta* class builds what the config says: an XLM-R config stays XLM-R, a PreLN config builds PreLN.
    for model_type in MEMBERS:
        model = roberta_pt.RobertaForMaskedLM(tiny_config(model_type=model_type))
        assert model.config.model_type == model_type
        assert (model.roberta.LayerNorm is not None) == (model_type == PRELN)
    # The family class's copy leaves the caller's config as it was.
    config = tiny_config()
    assert roberta_pt.CamembertModel(config).config.model_type == "camembert" and config.model_type == "roberta"


# ---------------------------------------------------------------------------- RoBERTa-PreLayerNorm's layout

@pytest.mark.filterwarnings("ignore:RobertaForMaskedLM should attend both ways")
@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("head", ["model", "masked_lm", "multiple_choice"])
def test_preln_parameter_names_are_the_canonical_table(head, cross):
    config = tiny_config(model_type=PRELN, is_decoder=cross, add_cross_attention=cross)
    model = CLASSES[head](config)
    names = set(dict(model.named_parameters()))
    assert names == set(parameter_shapes(config, head))
    prefix = "" if head == "model" else "roberta."
    for key in (f"{prefix}LayerNorm.weight", f"{prefix}encoder.layer.0.attention.LayerNorm.bias",
                f"{prefix}encoder.layer.1.intermediate.LayerNorm.weight"):
        assert key in names, key
    assert not any(k.endswith(("attention.output.LayerNorm.weight", ".output.LayerNorm.bias")) for k in names)
    assert any("crossattention.LayerNorm" in k for k in names) == cross


def test_preln_encoder_reachable_under_v4_name_without_a_second_registration():
    model = roberta_pt.RobertaPreLayerNormForSequenceClassification(_config("sequence_classification"))
    assert model.roberta_prelayernorm is model.roberta and model.base_model is model.roberta
    assert model.base_model_prefix == "roberta_prelayernorm"
    assert getattr(model, model.base_model_prefix) is model.roberta  # what v4 code does with the prefix
    assert all(n.startswith(("roberta.", "classifier.")) for n, _ in model.named_parameters())
    with pytest.raises(AttributeError):
        model.roberta_prelayernorm = None  # read-only
    # Post-LN models have no such attribute (as in v4); a bare model is its own base model.
    assert not hasattr(roberta_pt.XLMRobertaForMaskedLM(tiny_config()), "roberta_prelayernorm")
    bare = roberta_pt.RobertaPreLayerNormModel(tiny_config())
    assert bare.base_model is bare and not hasattr(bare, "roberta_prelayernorm")
    # A Roberta* class built with a PreLN config follows the config.
    assert roberta_pt.RobertaForMaskedLM(tiny_config(model_type=PRELN)).base_model_prefix == "roberta_prelayernorm"


def test_preln_hidden_states_end_before_the_final_layernorm():
    # v4: the encoder's list ends with the last layer's output; last_hidden_state is that through
    # the final LayerNorm (its formula by hand, float64).
    model, config, state = _build_alias("model", PRELN)
    with torch.no_grad():
        out = model(**_inputs(config, "model"), output_hidden_states=True)
    x = out.hidden_states[-1].double().numpy()
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    want = (x - mean) / np.sqrt(var + config.layer_norm_eps) * state["LayerNorm.weight"] + state["LayerNorm.bias"]
    assert_close(out.last_hidden_state.numpy(), want, atol=1e-5)
    assert len(out.hidden_states) == config.num_hidden_layers + 1


# ---------------------------------------------------------------------------- every path under PreLN

@pytest.mark.filterwarnings("ignore:sdpa attention")
@pytest.mark.parametrize("extra", [{}, {"output_attentions": True}, {"position_embedding_type": "relative_key_query"}])
def test_preln_eager_and_explicit_paths_match_reference(extra):
    kw = {k: v for k, v in extra.items() if k == "position_embedding_type"}
    call = {k: v for k, v in extra.items() if k != "position_embedding_type"}
    for attn in ("eager", "sdpa"):
        config = tiny_config(model_type=PRELN, **kw)
        model, state = build("masked_lm", config, attn_implementation=attn)
        inputs = _inputs(config, "masked_lm")
        with torch.no_grad():
            out = model(**inputs, **call)
        _compare(out, run_reference(config, state, "masked_lm", **inputs, **call), f"{attn} {extra}")


@pytest.mark.parametrize("head", ["model", "masked_lm", "token_classification", "question_answering"])
def test_preln_unpad_equals_padded(head):
    config = _config(head, model_type=PRELN)
    model, state = build(head, config)
    inputs = _inputs(config, head, lengths=(7, 5, 2, 1))
    mask = inputs["attention_mask"].numpy().astype(bool)
    with torch.no_grad():
        padded = model(**inputs, output_hidden_states=True)
        packed = model(**inputs, output_hidden_states=True, unpad=True)
    ref = run_reference(config, state, head, **inputs, output_hidden_states=True)
    for name in ref:
        got, base = packed[name], padded[name]
        pairs = zip(got, base, ref[name]) if isinstance(got, tuple) else [(got, base, ref[name])]
        for g, b, r in pairs:
            g, b, r = g.numpy(), b.numpy(), np.asarray(r)
            if g.shape[:2] == mask.shape:
                g, b, r = g[mask], b[mask], r[mask]
            assert_close(g, b, what=f"{head}.{name}")
            assert rel_err(g, r) <= 1e-5, f"{head}.{name} vs reference"
    if head == "model":  # the final LayerNorm ran on the packed stream: padding stays zeros
        assert float(packed.last_hidden_state[torch.from_numpy(~mask)].abs().max()) == 0.0


@pytest.mark.parametrize("cross", [False, True])
def test_preln_cache_and_generate_equal_full_recompute(cross):
    config = tiny_config(model_type=PRELN, is_decoder=True, add_cross_attention=cross)
    model, state = build("causal_lm", config)
    ids, mask = padded_batch(config, lengths=(8, 6), pad_to=8)
    mask[1] = [0, 0, 1, 1, 1, 1, 1, 1]  # left padding, as in batched decoding
    extra = {}
    if cross:
        rng = np.random.default_rng(6)
        extra = dict(encoder_hidden_states=torch.from_numpy(rng.standard_normal((2, 5, 32)).astype(np.float32)),
                     encoder_attention_mask=t(np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])))
    with torch.no_grad():
        full = model(input_ids=t(ids), attention_mask=t(mask), use_cache=False, **extra).logits
        pieces, past, start = [], None, 0
        for stop in (4, 5, 8):  # a prompt, one token, a chunk of three
            out = model(input_ids=t(ids[:, start:stop]), attention_mask=t(mask[:, :stop]), past_key_values=past,
                        use_cache=True, **extra)
            pieces.append(out.logits)
            past, start = out.past_key_values, stop
    real = torch.from_numpy(mask).bool()
    assert float((torch.cat(pieces, 1) - full).abs()[real].max()) <= 1e-5
    ref = run_reference(config, state, "causal_lm", input_ids=ids, attention_mask=mask,
                        **{k: v.numpy() for k, v in extra.items()})
    assert rel_err(full.numpy()[mask == 1], ref["logits"][mask == 1]) <= 1e-5
    if not cross:
        prompt = t(np.array([[0, 17, 42, 9], [0, 5, 66, 71]]))
        manual = prompt
        with torch.no_grad():
            for _ in range(5):  # no cache: the whole sequence again every step, at v4.57's generation positions
                positions = torch.arange(manual.shape[1])[None].expand_as(manual)  # attention_mask.cumsum(-1) - 1
                nxt = model(input_ids=manual, position_ids=positions, use_cache=False).logits[:, -1].argmax(-1)
                manual = torch.cat([manual, nxt[:, None]], 1)
        assert torch.equal(model.generate(prompt, max_new_tokens=5, eos_token_id=[]), manual)


def test_preln_gradient_checkpointing_and_training_step():
    from roberta_core.optim import AdamW
    from roberta_pt.training import Trainer

    config = tiny_config(model_type=PRELN, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    model, state = build("masked_lm", config)
    model.train()
    ids, mask = padded_batch(config, lengths=(7, 5))
    labels = np.where(mask == 1, ids, -100)

    def grads():
        model.zero_grad()
        torch.manual_seed(11)  # the same dropout masks
        model(input_ids=t(ids), attention_mask=t(mask), labels=t(labels)).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    model.gradient_checkpointing_enable()
    checkpointed = grads()
    for name, g in plain.items():
        assert torch.allclose(g, checkpointed[name], atol=1e-6), name
    for name in ("roberta.LayerNorm.weight", "roberta.encoder.layer.1.attention.LayerNorm.weight",
                 "roberta.encoder.layer.0.intermediate.LayerNorm.bias"):
        assert float(plain[name].abs().max()) > 0, f"{name} gets no gradient"

    # The recipe's step: its loss (before the update) is the reference's, without dropout.
    eval_config = tiny_config(model_type=PRELN)
    trainer = Trainer("masked_lm", eval_config, AdamW(peak_lr=1e-3, warmup=0, steps=10), state=state,
                      precision="fp32")
    assert trainer.model.config.pre_layer_norm
    batch = dict(input_ids=ids, attention_mask=mask, labels=labels)
    loss = trainer.train_step([batch], 1e-3, int((labels != -100).sum()))
    want = float(run_reference(eval_config, state, "masked_lm", **batch)["loss"])
    assert abs(loss - want) <= 1e-5 * want
    assert not np.array_equal(trainer.weights()["roberta.LayerNorm.weight"], state["roberta.LayerNorm.weight"])


@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.jit._script")
def test_preln_compiles_without_graph_breaks():
    # Graph breaks are a property of the Dynamo trace: the 'eager' backend shows them in a second.
    config = tiny_config(model_type=PRELN)
    model, _ = build("masked_lm", config)
    ids, mask = padded_batch(config, lengths=(7, 5, 2))
    torch.compiler.reset()
    try:
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        with torch.no_grad():
            assert torch.equal(compiled(input_ids=t(ids), attention_mask=t(mask)).logits,
                               model(input_ids=t(ids), attention_mask=t(mask)).logits)
    finally:
        torch.compiler.reset()


def test_preln_onnx_export_matches_reference(tmp_path):
    pytest.importorskip("onnxruntime")
    from roberta_pt.export import export, load_exported

    config = tiny_config(model_type=PRELN)
    model, state = build("masked_lm", config)
    ids, mask = padded_batch(config, lengths=(6, 3))
    path = export(model, tmp_path, example=dict(input_ids=ids, attention_mask=mask),
                  axes=dict(input_ids=("batch", "sequence"), attention_mask=("batch", "sequence"),
                            logits=("batch", "sequence", None)))
    ids, mask = padded_batch(config, lengths=(9, 4, 2), seed=3)  # another shape than traced
    got = load_exported(path)(dict(input_ids=ids, attention_mask=mask))["logits"]
    want = run_reference(config, state, "masked_lm", input_ids=ids, attention_mask=mask)["logits"]
    assert rel_err(got[mask == 1], want[mask == 1]) <= 1e-5


# ---------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("model_type", MEMBERS)
@pytest.mark.parametrize("head", ["masked_lm", "sequence_classification"])
def test_save_and_load_keep_model_type_architecture_and_outputs(head, model_type, tmp_path):
    model, config, state = _build_alias(head, model_type)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    name = _alias(head, model_type).__name__
    assert saved["model_type"] == model_type and saved["architectures"] == [name]
    inputs = _inputs(config, head)
    for cls in (_alias(head, model_type), CLASSES[head]):  # the family class, and the Roberta* one
        loaded = cls.from_pretrained(tmp_path, strict=True)
        assert loaded.config.model_type == model_type and loaded.config.pre_layer_norm == (model_type == PRELN)
        for key, value in to_canonical(loaded).items():
            assert np.array_equal(value, state[key]), key
        with torch.no_grad():
            assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)


def test_preln_checkpoint_files_carry_the_v4_prefix(tmp_path):
    from safetensors.numpy import load_file

    model, config, state = _build_alias("masked_lm", PRELN)
    model.save_pretrained(tmp_path)
    keys = set(load_file(tmp_path / "model.safetensors"))
    assert "roberta_prelayernorm.LayerNorm.weight" in keys
    assert "roberta_prelayernorm.encoder.layer.0.attention.LayerNorm.weight" in keys
    assert not any(k.startswith("roberta.") for k in keys)
    # RobertaForMaskedLM reads such a file as what it is: PreLN, every weight in place.
    loaded = roberta_pt.RobertaForMaskedLM.from_pretrained(tmp_path, strict=True)
    assert loaded.config.pre_layer_norm and type(loaded) is roberta_pt.RobertaForMaskedLM
    assert all(np.array_equal(v, state[k]) for k, v in to_canonical(loaded).items())


def test_family_class_loads_a_roberta_checkpoint_as_its_member(tmp_path):
    # v4's XLMRobertaForMaskedLM.from_pretrained(a RoBERTa folder) builds an XLM-R model.
    model, state = build("masked_lm", tiny_config())
    model.save_pretrained(tmp_path)
    loaded = roberta_pt.XLMRobertaForMaskedLM.from_pretrained(tmp_path, strict=True)
    assert loaded.config.model_type == "xlm-roberta"
    assert all(np.array_equal(v, state[k]) for k, v in to_canonical(loaded).items())
    # A PreLN class on a post-LN checkpoint: the LayerNorms are elsewhere, reported as v4 does.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        preln, info = roberta_pt.RobertaPreLayerNormForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert preln.config.pre_layer_norm
    assert "roberta.LayerNorm.weight" in info["missing_keys"]
    assert "roberta.encoder.layer.0.output.LayerNorm.weight" in info["unexpected_keys"]
    assert HEADS["masked_lm"] == "RobertaForMaskedLM"


@pytest.mark.parametrize("folder, weights", V4_CASES)
def test_v4_family_checkpoint_loads_under_its_v4_class_with_v4_outputs(folder, weights, tmp_path):
    # Each weight file alone with its config.json, loaded by the class config.json names.
    source = FIXTURES / "family" / folder
    for name in ("config.json", weights):
        shutil.copy(source / name, tmp_path / name)
    saved = json.loads((source / "config.json").read_text())
    cls = getattr(roberta_pt, saved["architectures"][0])
    model = cls.from_pretrained(tmp_path, strict=True)
    assert model.config.model_type == saved["model_type"]
    io = np.load(source / "io.npz")
    with torch.no_grad():
        out = model(input_ids=t(io["input_ids"]), attention_mask=t(io["attention_mask"]), output_hidden_states=True)
    fields = [k[len("pt_"):] for k in io.files if k.startswith("pt_")]
    assert fields
    for field in fields:
        got = out.hidden_states[-1] if field == "hidden_last" else out[field]
        assert rel_err(got.numpy(), io[f"pt_{field}"]) <= 1e-5, f"{folder}/{weights}: {field}"
