"""Checks of the float64 reference itself, against sources that do not depend on it: the outputs
`transformers` 4.57.6 recorded in the golden fixtures, hand-computed values, and properties the
definitions imply (probabilities sum to 1, incremental decoding equals the full forward, a decoder
never looks ahead, padding does not change the real tokens' outputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from roberta_core import reference as ref
from roberta_core.config import ACTIVATIONS
from tests.helpers import golden, padded_batch, random_state, rel_err, tiny_config

# ---------------------------------------------------------------------------- golden outputs


@pytest.mark.parametrize(
    "head, fields",
    [("model", ("last_hidden_state", "pooler_output")), ("masked_lm", ("logits",)), ("sequence_classification", ("logits",))],
)
def test_matches_transformers_golden_outputs(head, fields):
    from safetensors.numpy import load_file

    from roberta_core.config import RobertaConfig

    path = golden(head)
    config = RobertaConfig.from_pretrained(path)
    io = np.load(path / "io.npz")
    out = ref.forward(config, load_file(path / "model.safetensors"), head, input_ids=io["input_ids"], attention_mask=io["attention_mask"])
    for field in fields:
        for framework in ("pt", "tf", "flax"):  # fp32 outputs: agreement to fp32 rounding
            assert rel_err(io[f"{framework}_{field}"], out[field]) < 2e-6, (field, framework)


# ---------------------------------------------------------------------------- building blocks


def test_every_activation_is_defined_and_exact_at_known_points():
    assert set(ref.ACT2FN) == set(ACTIVATIONS)
    f = ref.ACT2FN
    phi1 = 0.5 * (1 + math.erf(1 / math.sqrt(2)))  # standard normal CDF at 1
    assert f["gelu"](np.array(1.0)) == pytest.approx(phi1, abs=1e-15)
    assert f["gelu"](np.array(1.0)) == pytest.approx(0.8413447460685429, abs=1e-15)
    assert f["gelu"](np.array(-1.0)) == pytest.approx(-0.15865525393145707, abs=1e-15)
    assert f["gelu_python"](np.array(2.0)) == f["gelu"](np.array(2.0))
    x = np.linspace(-5, 5, 101)
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    for name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate"):
        np.testing.assert_allclose(f[name](x), tanh_form, rtol=1e-9, atol=1e-12)
        assert np.max(np.abs(f[name](x) - f["gelu"](x))) < 1e-3  # an approximation, not the same function
    assert f["quick_gelu"](np.array(1.0)) == pytest.approx(1 / (1 + math.exp(-1.702)))
    assert f["gelu_10"](np.array(20.0)) == 10.0 and f["gelu_10"](np.array(3.0)) == pytest.approx(3 * (0.5 * (1 + math.erf(3 / math.sqrt(2)))))
    assert f["relu"](np.array(-2.0)) == 0.0 and f["relu2"](np.array(3.0)) == 9.0 and f["relu6"](np.array(7.0)) == 6.0
    assert f["leaky_relu"](np.array(-1.0)) == pytest.approx(-0.01)
    assert f["silu"](np.array(1.0)) == pytest.approx(0.7310585786300049) and f["swish"](np.array(1.0)) == f["silu"](np.array(1.0))
    assert f["mish"](np.array(1.0)) == pytest.approx(math.tanh(math.log1p(math.e)))
    assert f["tanh"](np.array(0.5)) == pytest.approx(math.tanh(0.5))
    assert f["sigmoid"](np.array(-800.0)) == 0.0 and f["sigmoid"](np.array(2.0)) == pytest.approx(1 / (1 + math.exp(-2)))
    assert f["linear"](np.array(-3.5)) == -3.5
    assert f["laplace"](np.array(0.707107)) == pytest.approx(0.5)


def test_softmax_and_layer_norm():
    x = np.random.default_rng(0).standard_normal((3, 5)) * 50
    np.testing.assert_allclose(ref.softmax(x).sum(-1), 1.0, atol=1e-15)
    np.testing.assert_allclose(ref.softmax(np.log(np.array([1.0, 3.0]))), [0.25, 0.75])
    y = ref.layer_norm(x, np.ones(5), np.zeros(5), 1e-12)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-9)


def test_position_ids_from_padding_by_hand():
    cfg = tiny_config()  # pad_token_id = 1
    ids = np.array([[0, 5, 6, 1, 1], [1, 1, 0, 5, 6]])  # right and left padding
    np.testing.assert_array_equal(ref.position_ids_from(cfg, ids, 2, 5, 0), [[2, 3, 4, 1, 1], [1, 1, 2, 3, 4]])
    np.testing.assert_array_equal(ref.position_ids_from(cfg, ids[:, :2], 2, 2, 3), [[5, 6], [1, 1]])
    np.testing.assert_array_equal(ref.position_ids_from(cfg, None, 2, 3, 0), [[2, 3, 4]] * 2)
    np.testing.assert_array_equal(ref.position_ids_from(cfg, None, 1, 2, 4), [[6, 7]])


# ---------------------------------------------------------------------------- losses by hand


def test_cross_entropy_by_hand():
    logits = np.array([[0.0, math.log(3.0)], [2.0, 2.0], [5.0, -1.0]])
    assert ref.cross_entropy(logits, np.array([1, 0, -100])) == pytest.approx((-math.log(0.75) + math.log(2.0)) / 2)
    assert ref.cross_entropy(logits, np.array([-100, -100, -100])) == 0.0
    assert ref.cross_entropy(logits, np.array([2, 2, 2]), ignore_index=2) == 0.0


def test_bce_and_regression_by_hand():
    cfg = tiny_config(num_labels=2)
    assert ref.bce_with_logits(np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(math.log(2))
    x = np.array([[3.0, -2.0]])
    want = (math.log1p(math.exp(-3.0)) + (2.0 + math.log1p(math.exp(-2.0)))) / 2  # y = 1, 1
    assert ref.sequence_classification_loss(cfg, x, np.array([[1.0, 1.0]])) == pytest.approx(want)
    one = tiny_config(num_labels=1)
    assert ref.problem_type_of(one, np.array([0.5])) == "regression"
    assert ref.sequence_classification_loss(one, np.array([[1.0], [2.0]]), np.array([0.0, 4.0])) == pytest.approx((1 + 4) / 2)
    assert ref.problem_type_of(cfg, np.array([1, 0])) == "single_label_classification"
    assert ref.problem_type_of(cfg, np.array([[1.0, 0.0]])) == "multi_label_classification"
    reg = tiny_config(num_labels=2, problem_type="regression")
    assert ref.sequence_classification_loss(reg, np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])) == pytest.approx(2.5)


def test_question_answering_loss_clamps_and_ignores():
    start = np.log(np.array([[1.0, 1.0, 2.0], [1.0, 1.0, 1.0]]))  # T = 3
    end = np.log(np.array([[4.0, 1.0, 1.0], [1.0, 2.0, 1.0]]))
    # row 0: start 2 (p=1/2), end -5 -> clamped to 0 (p=2/3); row 1: start 9 and end 3 -> T, ignored
    loss = ref.question_answering_loss(start, end, np.array([2, 9]), np.array([-5, 3]))
    assert loss == pytest.approx((math.log(2) + math.log(1.5)) / 2)
    assert ref.question_answering_loss(start, end, np.array([3, 7]), np.array([4, 3])) == 0.0


def test_head_losses_follow_their_definitions():
    cfg = tiny_config(is_decoder=True)
    ids, mask = padded_batch(cfg, (6, 4))
    labels = np.where(mask == 1, ids, -100)
    out = ref.forward(cfg, random_state(cfg, "causal_lm"), "causal_lm", input_ids=ids, attention_mask=mask, labels=labels)
    nll = [
        -np.log(ref.softmax(out["logits"][b, t])[labels[b, t + 1]])
        for b in range(2) for t in range(5) if labels[b, t + 1] != -100
    ]
    assert out["loss"] == pytest.approx(np.mean(nll), rel=1e-12)
    mlm = ref.forward(cfg.copy(is_decoder=False), random_state(cfg, "masked_lm"), "masked_lm", input_ids=ids,
                      attention_mask=mask, labels=np.full(ids.shape, -100))
    assert mlm["loss"] == 0.0 and np.isfinite(mlm["logits"]).all()


# ---------------------------------------------------------------------------- properties of the model


def test_attention_rows_are_distributions_and_hide_padding():
    cfg = tiny_config()
    ids, mask = padded_batch(cfg, (7, 3, 0))  # the last row is all padding
    out = ref.forward(cfg, random_state(cfg, "model"), "model", input_ids=ids, attention_mask=mask, output_attentions=True)
    for probs in out["attentions"]:
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12)
        assert np.all(probs[1, :, :, 3:] == 0.0)  # keys past the real length get nothing
        np.testing.assert_allclose(probs[2], 1 / 7)  # nothing to attend to: uniform, not NaN
    assert np.isfinite(out["last_hidden_state"]).all()


def test_padding_does_not_change_real_tokens():
    cfg = tiny_config()
    state = random_state(cfg, "token_classification")
    ids, mask = padded_batch(cfg, (7, 4))
    both = ref.forward(cfg, state, "token_classification", input_ids=ids, attention_mask=mask)
    alone = ref.forward(cfg, state, "token_classification", input_ids=ids[1:, :4])
    np.testing.assert_allclose(both["logits"][1, :4], alone["logits"][0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key_query"])
def test_decoder_does_not_look_ahead(position_embedding_type):
    cfg = tiny_config(is_decoder=True, position_embedding_type=position_embedding_type)
    state = random_state(cfg, "causal_lm")
    ids, _ = padded_batch(cfg, (6, 6))
    changed = ids.copy()
    changed[:, 4:] = 7
    a = ref.forward(cfg, state, "causal_lm", input_ids=ids)["logits"]
    b = ref.forward(cfg, state, "causal_lm", input_ids=changed)["logits"]
    np.testing.assert_array_equal(a[:, :4], b[:, :4])
    assert np.abs(a[:, 4:] - b[:, 4:]).max() > 1e-3


@pytest.mark.parametrize(
    "overrides, cross",
    [({}, False), ({"position_embedding_type": "relative_key"}, False),
     ({"position_embedding_type": "relative_key_query"}, False), ({"add_cross_attention": True}, True)],
)
def test_incremental_decoding_equals_full_forward(overrides, cross):
    cfg = tiny_config(is_decoder=True, **overrides)
    state = random_state(cfg, "causal_lm", seed=3)
    ids, mask = padded_batch(cfg, (7, 7, 4), seed=1)  # right padding is the same in both
    extra = {}
    if cross:
        rng = np.random.default_rng(2)
        extra = dict(encoder_hidden_states=rng.standard_normal((3, 5, cfg.hidden_size)),
                     encoder_attention_mask=np.array([[1] * 5, [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]))
    full = ref.forward(cfg, state, "causal_lm", input_ids=ids, attention_mask=mask, use_cache=True, **extra)
    logits, past, start = [], None, 0
    for stop in (3, 4, 7):
        step = ref.forward(cfg, state, "causal_lm", input_ids=ids[:, start:stop], attention_mask=mask[:, :stop],
                           past_key_values=past, use_cache=True, **extra)
        logits.append(step["logits"])
        past, start = step["past_key_values"], stop
    np.testing.assert_allclose(np.concatenate(logits, axis=1), full["logits"], rtol=1e-11, atol=1e-11)
    for got_layer, want_layer in zip(past, full["past_key_values"]):
        assert len(got_layer) == (4 if cross else 2)
        for got, want in zip(got_layer, want_layer):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_head_mask_scales_probabilities():
    cfg = tiny_config()
    state = random_state(cfg, "model")
    ids, mask = padded_batch(cfg, (5, 3))
    plain = ref.forward(cfg, state, "model", input_ids=ids, attention_mask=mask, output_attentions=True)
    ones = ref.forward(cfg, state, "model", input_ids=ids, attention_mask=mask, head_mask=np.ones(4), output_attentions=True)
    np.testing.assert_array_equal(ones["last_hidden_state"], plain["last_hidden_state"])
    hm = np.array([[1.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0]])
    masked = ref.forward(cfg, state, "model", input_ids=ids, attention_mask=mask, head_mask=hm, output_attentions=True)
    np.testing.assert_allclose(masked["attentions"][0], plain["attentions"][0] * hm[0][None, :, None, None])
    assert np.all(masked["attentions"][1] == 0.0)


def test_multiple_choice_is_the_pooled_flattened_batch():
    cfg = tiny_config()
    state = random_state(cfg, "multiple_choice")
    ids, mask = padded_batch(cfg, (6, 4, 5, 6, 2, 3))
    out = ref.forward(cfg, state, "multiple_choice", input_ids=ids.reshape(2, 3, 6), attention_mask=mask.reshape(2, 3, 6),
                      labels=np.array([1, 2]))
    base = ref.forward(cfg, {k.removeprefix("roberta."): v for k, v in state.items() if k.startswith("roberta.")}, "model",
                       input_ids=ids, attention_mask=mask)
    flat = base["pooler_output"] @ state["classifier.weight"].astype(np.float64).T + state["classifier.bias"]
    np.testing.assert_allclose(out["logits"], flat.reshape(2, 3), rtol=1e-12)
    assert out["loss"] == pytest.approx(ref.cross_entropy(flat.reshape(2, 3), np.array([1, 2])))
