"""The PyTorch encoder and heads against the float64 NumPy reference (roberta_core.reference),
feature by feature: every head, both attention paths, relative positions, head_mask,
inputs_embeds, token types, attentions/hidden states, every activation, half precision."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from roberta_core import reference
from roberta_core.config import ACTIVATIONS
from roberta_pt import RobertaForMaskedLM
from roberta_pt.modeling import ACT2FN, position_ids_from_input_ids
from tests.helpers import ALL_HEADS, padded_batch, rel_err, tiny_config
from tests.roberta_pt.common import build, run_reference, t


def _inputs(config, head):
    ids, mask = padded_batch(config, lengths=(7, 5, 2))
    if head == "multiple_choice":  # (B, C, T): two choices per example
        ids2, mask2 = padded_batch(config, lengths=(3, 7, 6), seed=1)
        return dict(input_ids=t(np.stack([ids, ids2], 1)), attention_mask=t(np.stack([mask, mask2], 1)))
    return dict(input_ids=t(ids), attention_mask=t(mask))


def _compare(out, ref, what, tol=1e-5):
    assert set(out.keys()) == set(ref.keys()), f"{what}: fields {list(out.keys())} != reference {list(ref.keys())}"
    for name, value in ref.items():
        if isinstance(value, tuple):
            assert len(out[name]) == len(value), f"{what}.{name}: {len(out[name])} entries != {len(value)}"
            for i, (a, b) in enumerate(zip(out[name], value)):
                if isinstance(b, tuple):  # past_key_values: one tuple per layer
                    for j, (x, y) in enumerate(zip(a, b)):
                        assert rel_err(x.detach().numpy(), y) <= tol, f"{what}.{name}[{i}][{j}]"
                else:
                    assert rel_err(a.detach().float().numpy(), b) <= tol, f"{what}.{name}[{i}]"
        else:
            err = rel_err(out[name].detach().float().numpy(), value)
            assert err <= tol, f"{what}.{name}: relative error {err:.3g} > {tol:g}"


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("head", ALL_HEADS)
def test_every_head_matches_reference(head, attn):
    # QA scores a start and an end: its num_labels is 2 (v4's qa_outputs has num_labels outputs).
    config = tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm")
    model, state = build(head, config, attn_implementation=attn)
    inputs = _inputs(config, head)
    with torch.no_grad():
        out = model(**inputs)
    _compare(out, run_reference(config, state, head, **inputs), f"{head}/{attn}")


@pytest.mark.parametrize("kind", ["relative_key", "relative_key_query"])
def test_relative_positions_match_reference(kind):
    config = tiny_config(position_embedding_type=kind)
    model, state = build("masked_lm", config)
    inputs = _inputs(config, "masked_lm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one-time sdpa -> eager notice
        with torch.no_grad():
            out = model(**inputs, output_attentions=True)
    _compare(out, run_reference(config, state, "masked_lm", **inputs, output_attentions=True), kind)


@pytest.mark.parametrize("shape", ["heads", "layers_heads"])
def test_head_mask_attentions_hidden_states_match_reference(shape):
    config = tiny_config()
    model, state = build("model", config)
    rng = np.random.default_rng(3)
    head_mask = rng.uniform(0, 1, (4,) if shape == "heads" else (2, 4)).astype(np.float32)
    head_mask.flat[1] = 0.0  # a pruned head
    inputs = dict(_inputs(config, "model"), head_mask=t(head_mask), output_attentions=True, output_hidden_states=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            out = model(**inputs)
    assert len(out.attentions) == 2 and len(out.hidden_states) == 3
    assert float(out.attentions[0][:, 1].abs().max()) == 0.0  # the pruned head attends to nothing
    _compare(out, run_reference(config, state, "model", **inputs), shape)


def test_inputs_embeds_token_types_and_position_ids_match_reference():
    config = tiny_config(type_vocab_size=2)
    model, state = build("model", config)
    rng = np.random.default_rng(4)
    embeds = rng.standard_normal((2, 5, config.hidden_size)).astype(np.float32)
    types = rng.integers(0, 2, (2, 5))
    positions = np.array([[2, 3, 4, 5, 6], [9, 8, 7, 6, 5]])
    for inputs in (
        dict(inputs_embeds=t(embeds), token_type_ids=t(types)),
        dict(inputs_embeds=t(embeds), position_ids=t(positions), attention_mask=t(padded_batch(config, (5, 3))[1])),
        dict(input_ids=t(rng.integers(4, 100, (2, 5))), token_type_ids=t(types), position_ids=t(positions[:1])),
    ):
        with torch.no_grad():
            out = model(**inputs)
        _compare(out, run_reference(config, state, "model", **inputs), str(sorted(inputs)))


def test_inputs_embeds_equal_the_looked_up_ids():
    # From embeddings the positions are sequential: the same as ids without padding.
    config = tiny_config()
    model, _ = build("model", config)
    ids = t(np.array([[0, 5, 9, 2]]))
    with torch.no_grad():
        a = model(input_ids=ids).last_hidden_state
        b = model(inputs_embeds=model.get_input_embeddings()(ids)).last_hidden_state
    assert torch.equal(a, b)


def test_position_ids_from_padding_by_hand():
    ids = torch.tensor([[0, 5, 6, 1, 1], [1, 1, 0, 7, 2]])
    assert position_ids_from_input_ids(ids, 1).tolist() == [[2, 3, 4, 1, 1], [1, 1, 2, 3, 4]]
    assert position_ids_from_input_ids(ids[:, :2], 1, past_length=3).tolist() == [[5, 6], [1, 1]]


def test_padding_does_not_change_real_positions():
    # A row alone (no mask: the fast SDPA path) equals the same row padded in a batch.
    config = tiny_config()
    model, _ = build("masked_lm", config)
    ids, mask = padded_batch(config, lengths=(7, 4))
    with torch.no_grad():
        batch = model(input_ids=t(ids), attention_mask=t(mask)).logits
        alone = model(input_ids=t(ids[1:, :4])).logits
    assert (batch[1, :4] - alone[0]).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_matches_reference(name):
    x = torch.linspace(-12, 12, 97, dtype=torch.float64)
    got = ACT2FN[name](x).numpy()
    want = reference.ACT2FN[name](x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9, err_msg=name)


def test_gelu_is_the_exact_erf_form():
    x = [-3.0, -0.5, 0.0, 0.7, 2.5]
    want = [v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x]
    np.testing.assert_allclose(ACT2FN["gelu"](torch.tensor(x, dtype=torch.float64)).numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("act", ["gelu_new", "relu", "silu"])
def test_hidden_act_reaches_the_model(act):
    config = tiny_config(hidden_act=act)
    model, state = build("model", config)
    inputs = _inputs(config, "model")
    with torch.no_grad():
        out = model(**inputs)
    _compare(out, run_reference(config, state, "model", **inputs), act)


def test_weight_init_follows_v4():
    config = tiny_config(vocab_size=1000, initializer_range=0.05)
    torch.manual_seed(0)
    model = RobertaForMaskedLM(config).requires_grad_(False)
    emb = model.roberta.embeddings
    assert float(emb.word_embeddings.weight[config.pad_token_id].abs().max()) == 0.0
    assert float(emb.position_embeddings.weight[config.pad_token_id].abs().max()) == 0.0
    assert abs(float(emb.word_embeddings.weight.std()) - 0.05) < 0.003
    query = model.roberta.encoder.layer[0].attention.self.query
    assert abs(float(query.weight.std()) - 0.05) < 0.01
    assert float(query.bias.abs().max()) == 0.0 and float(model.lm_head.bias.abs().max()) == 0.0
    ln = model.roberta.encoder.layer[1].output.LayerNorm
    assert torch.equal(ln.weight, torch.ones_like(ln.weight)) and torch.equal(ln.bias, torch.zeros_like(ln.bias))
    assert model.lm_head.decoder.weight is emb.word_embeddings.weight
    assert model.lm_head.decoder.bias is model.lm_head.bias


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_reference(dtype):
    config = tiny_config()
    model, state = build("masked_lm", config)
    inputs = _inputs(config, "masked_lm")
    with torch.no_grad():
        logits = model.to(dtype)(**inputs).logits
    assert logits.dtype == dtype
    err = rel_err(logits.float().numpy(), run_reference(config, state, "masked_lm", **inputs)["logits"])
    assert err <= 2e-2, f"{dtype}: relative error {err:.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_fully_padded_rows_stay_finite(dtype, attn):
    # A row with nothing to attend to (all padding; in a decoder, leading left padding).
    for decoder in (False, True):
        config = tiny_config(is_decoder=decoder)
        model, _ = build("causal_lm" if decoder else "masked_lm", config, attn_implementation=attn)
        ids, mask = padded_batch(config, lengths=(6, 3))
        mask[1] = 0
        if decoder:
            mask[0] = [0, 0, 1, 1, 1, 1]  # left padding
        with torch.no_grad():
            logits = model.to(dtype)(input_ids=t(ids), attention_mask=t(mask)).logits
        assert torch.isfinite(logits).all(), f"{dtype} {attn} decoder={decoder}"


@pytest.mark.filterwarnings("ignore:sdpa attention")
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_decoder_with_cross_attention_matches_reference(attn):
    config = tiny_config(is_decoder=True, add_cross_attention=True)
    model, state = build("causal_lm", config, attn_implementation=attn)
    rng = np.random.default_rng(8)
    ids, mask = padded_batch(config, lengths=(6, 4))
    inputs = dict(
        input_ids=t(ids), attention_mask=t(mask),
        encoder_hidden_states=torch.from_numpy(rng.standard_normal((2, 5, config.hidden_size)).astype(np.float32)),
        encoder_attention_mask=t(padded_batch(config, lengths=(5, 3))[1]),
    )
    for extra in ({}, dict(output_attentions=True)):
        with torch.no_grad():
            out = model(**inputs, **extra)
        assert ("cross_attentions" in out) == bool(extra)
        _compare(out, run_reference(config, state, "causal_lm", **inputs, **extra), f"{attn} {extra}")


def test_return_dict_false_gives_the_present_fields_in_order():
    config = tiny_config()
    model, _ = build("model", config)
    inputs = _inputs(config, "model")
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        tup = model(**inputs, output_hidden_states=True, return_dict=False)
    assert isinstance(tup, tuple) and len(tup) == 3  # last_hidden_state, pooler_output, hidden_states
    assert torch.equal(tup[0], out.last_hidden_state) and torch.equal(tup[1], out.pooler_output)
    assert all(torch.equal(a, b) for a, b in zip(tup[2], out.hidden_states))


def test_query_forward_hook_fires_in_training_with_gradients():
    # query/key/value are called as modules in every mode, training included (ARCHITECTURE §4): a
    # forward hook (what LoRA, PEFT and quantization wrappers rely on) on `attention.self.query`
    # sees the training step, and what it returns is what the model computes with. Expected: the
    # reference with that layer's query weights zeroed, which is what a hook giving zeros means.
    config = tiny_config()
    model, state = build("masked_lm", config)
    model.train()
    ids, mask = padded_batch(config, lengths=(7, 5, 2))
    labels = np.where(mask == 1, ids, -100)
    seen = []

    def zero_query(module, args, output):
        seen.append((module.training, torch.is_grad_enabled(), output.requires_grad))
        return torch.zeros_like(output)

    handle = model.roberta.encoder.layer[0].attention.self.query.register_forward_hook(zero_query)
    try:
        out = model(input_ids=t(ids), attention_mask=t(mask), labels=t(labels))
        out.loss.backward()
    finally:
        handle.remove()
    assert seen == [(True, True, True)]
    zeroed = dict(state)
    for name in ("weight", "bias"):
        key = f"roberta.encoder.layer.0.attention.self.query.{name}"
        zeroed[key] = np.zeros_like(state[key])
    ref = run_reference(config, zeroed, "masked_lm", input_ids=ids, attention_mask=mask)
    assert rel_err(out.logits.detach().numpy(), ref["logits"]) <= 1e-5


def test_attn_implementation_is_resolved_once_by_the_base():
    # The pretrained-model base resolves it (roberta_core.backends, shared by every backend): a
    # head and its encoder agree, the other backends' names map to PyTorch's, None is the default.
    config = tiny_config()
    for given, want in [(None, "sdpa"), ("eager", "eager"), ("einsum", "eager"), ("dot_product", "sdpa")]:
        model = RobertaForMaskedLM(config, attn_implementation=given)
        assert (model.attn_implementation, model.roberta.attn_implementation) == (want, want)
    with pytest.raises(ValueError, match=r"attn_implementation must be one of \('sdpa', 'eager'\).*got 'flash'"):
        RobertaForMaskedLM(config, attn_implementation="flash")
