"""The heads' losses against hand computations, generation against a float64 argmax loop, and
bad input: each a clear error before anything is computed (eagerly, and under jit at trace
time; ids and labels out of range under jit through the opt-in checkify check)."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from roberta_core.reference import forward as reference
from roberta_core.config import RobertaConfig
from roberta_flax import checked
from roberta_flax.heads import (
    _filter_logits,
    causal_lm_loss,
    masked_lm_loss,
    multiple_choice_loss,
    question_answering_loss,
    sequence_classification_loss,
    token_classification_loss,
)
from tests.helpers import assert_close, padded_batch, tiny_config
from tests.roberta_flax.common import CLASSES, build, forward


def log_softmax(row):
    m = max(row)
    return [x - m - math.log(sum(math.exp(y - m) for y in row)) for x in row]


# ---------------------------------------------------------------------------- losses by hand


def test_token_losses_ignore_minus_100_and_are_zero_when_all_ignored():
    logits = np.array([[[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], [[2.0, -1.0, 0.0], [1.0, 1.0, 1.0]]], np.float32)
    labels = np.array([[1, -100], [0, 2]])
    # By hand: the mean of -log p(label) over the three kept positions.
    want = -(log_softmax([1.0, 2.0, 0.5])[1] + log_softmax([2.0, -1.0, 0.0])[0] + log_softmax([1.0, 1.0, 1.0])[2]) / 3
    assert float(masked_lm_loss(logits, labels)) == pytest.approx(want, rel=1e-6)
    assert float(token_classification_loss(logits, labels)) == pytest.approx(want, rel=1e-6)
    none = masked_lm_loss(logits, np.full((2, 2), -100))
    assert float(none) == 0.0
    # Causal: position t predicts label t + 1; the first label and the last logits drop out.
    shifted = -(log_softmax([1.0, 2.0, 0.5])[2] + log_softmax([2.0, -1.0, 0.0])[1]) / 2
    assert float(causal_lm_loss(logits, np.array([[9, 2], [9, 1]]))) == pytest.approx(shifted, rel=1e-6)


def test_sequence_classification_losses_by_problem_type():
    logits = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]], np.float32)
    single = -(log_softmax([0.5, -1.0, 2.0])[2] + log_softmax([1.5, 0.0, -0.5])[0]) / 2
    loss = sequence_classification_loss
    assert float(loss(logits, np.array([2, 0]), "single_label_classification")) == pytest.approx(single, rel=1e-6)
    targets = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], np.float32)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    bce = -np.mean([t * math.log(sig(x)) + (1 - t) * math.log(1 - sig(x))
                    for x, t in zip(logits.ravel(), targets.ravel())])
    assert float(loss(logits, targets, "multi_label_classification")) == pytest.approx(bce, rel=1e-6)
    mse = np.mean((logits - targets) ** 2)
    assert float(loss(logits, targets, "regression")) == pytest.approx(mse, rel=1e-6)
    # One label: logits (B, 1) and labels (B,) are compared element by element, not broadcast.
    one = np.array([[0.5], [2.0]], np.float32)
    assert float(loss(one, np.array([1.0, 1.0]), "regression")) == pytest.approx((0.25 + 1.0) / 2)


def test_multiple_choice_and_question_answering_losses():
    logits = np.array([[0.0, 1.0], [2.0, 0.0]], np.float32)
    want = -(log_softmax([0.0, 1.0])[1] + log_softmax([2.0, 0.0])[1]) / 2
    assert float(multiple_choice_loss(logits, np.array([1, 1]))) == pytest.approx(want, rel=1e-6)
    start = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]], np.float32)
    end = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0]], np.float32)
    # Row 1's start (7) is clamped to T = 3 and ignored; negative positions clamp to 0.
    want_start = -log_softmax([0.0, 1.0, 2.0])[1]
    want_end = -(log_softmax([2.0, 0.0, 0.0])[0] + log_softmax([0.0, 3.0, 1.0])[2]) / 2
    got = question_answering_loss(start, end, np.array([1, 7]), np.array([-4, 2]))
    assert float(got) == pytest.approx((want_start + want_end) / 2, rel=1e-6)


def test_filter_logits_keeps_top_k_then_top_p():
    logits = jnp.log(jnp.array([[0.5, 0.05, 0.3, 0.15]]))
    assert np.isfinite(np.asarray(_filter_logits(logits, 2, None))).tolist() == [[True, False, True, False]]
    # top_p 0.7: 0.5 then 0.3 reach it; 0.5 alone does not.
    assert np.isfinite(np.asarray(_filter_logits(logits, None, 0.7))).tolist() == [[True, False, True, False]]
    assert np.isfinite(np.asarray(_filter_logits(logits, None, 0.5))).tolist() == [[True, False, False, False]]
    assert np.isfinite(np.asarray(_filter_logits(logits, 3, 0.9))).tolist() == [[True, False, True, True]]


def test_multi_label_loss_through_the_model():
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config)
    ids, mask = padded_batch(config)
    targets = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1]], np.float32)  # float labels: multi-label
    out = model(input_ids=ids, attention_mask=mask, labels=targets)
    ref = reference(config, state, "sequence_classification", input_ids=ids, attention_mask=mask, labels=targets)
    assert_close(out.loss, ref["loss"], atol=1e-6, what="multi-label loss")


# ---------------------------------------------------------------------------- generation


def _greedy_alone(config, state, prompt, steps):
    """Argmax continuation of one unpadded prompt by full float64 forwards (no cache), at v4 Flax
    generate's positions: attention_mask.cumsum(-1) - 1, from 0 (modeling_flax_roberta.py's
    prepare_inputs_for_generation), not RoBERTa's padding_idx + 1 of a forward call."""
    row = np.asarray(prompt)[None]
    for _ in range(steps):
        positions = np.arange(row.shape[1])[None]
        logits = reference(config, state, "causal_lm", input_ids=row, position_ids=positions)["logits"]
        row = np.concatenate([row, logits[:, -1].argmax(-1)[:, None]], axis=1)
    return row[0, len(prompt):].tolist()


@pytest.fixture(scope="module")
def decoder():
    config = tiny_config(is_decoder=True)
    model, state = build("causal_lm", config, seed=11)
    ids, mask = padded_batch(config, lengths=(5, 3, 2), seed=11)
    alone = [_greedy_alone(config, state, ids[b, : mask[b].sum()], 6) for b in range(3)]
    # Three end-of-sequence ids that never come (the calls share one eos shape: one compile).
    never = [t for t in range(4, 100) if all(t not in row for row in alone)][:3]
    return model, ids, mask, alone, never


def test_greedy_generation_gives_each_row_what_it_gets_alone(decoder):
    model, ids, mask, alone, never = decoder
    right = model.generate(ids, attention_mask=mask, max_new_tokens=6, eos_token_id=never).sequences
    assert right.shape == (3, 11) and np.array_equal(right[:, :5], ids)
    # v4's other limit: max_length counts the prompt (5 + 6).
    assert np.array_equal(model.generate(ids, attention_mask=mask, max_length=11, eos_token_id=never).sequences, right)
    assert np.asarray(right[:, 5:]).tolist() == alone
    left_ids, left_mask = np.full_like(ids, 1), np.zeros_like(mask)
    for b in range(3):
        n = mask[b].sum()
        left_ids[b, 5 - n:], left_mask[b, 5 - n:] = ids[b, :n], 1
    left = model.generate(left_ids, attention_mask=left_mask, max_new_tokens=6, eos_token_id=never).sequences
    assert np.asarray(left[:, 5:]).tolist() == alone


def test_generation_stops_rows_at_eos_pads_them_and_ends_when_all_stopped(decoder):
    model, ids, mask, alone, _ = decoder
    eos = [alone[0][1], alone[1][2], alone[2][0]]  # each row meets one of them within 3 steps
    out = np.asarray(model.generate(ids, attention_mask=mask, max_new_tokens=6, eos_token_id=eos, pad_token_id=1).sequences)
    stops = [min(row.index(t) for t in eos if t in row) + 1 for row in alone]
    assert out.shape == (3, 5 + max(stops))  # no step after the last row finished
    for b, row in enumerate(alone):
        got = out[b, 5:].tolist()
        assert got[: stops[b]] == row[: stops[b]] and all(t == 1 for t in got[stops[b]:]), (b, got, row)


def test_sampling_with_top_k_1_is_greedy_and_seeded(decoder):
    model, ids, mask, alone, never = decoder
    kw = dict(attention_mask=mask, max_new_tokens=6, eos_token_id=never, do_sample=True, top_k=1, temperature=0.7)
    assert np.asarray(model.generate(ids, seed=1, **kw).sequences[:, 5:]).tolist() == alone
    assert np.array_equal(model.generate(ids, seed=3, **kw).sequences, model.generate(ids, seed=3, **kw).sequences)


# ---------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def mlm():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    ids, mask = padded_batch(config)
    return model, ids, mask


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(input_ids="ids", inputs_embeds=np.zeros((3, 7, 32), np.float32)), ValueError, "not both"),
        (dict(), ValueError, "give input_ids"),
        (dict(input_ids=np.zeros((3, 7, 2), np.int32)), ValueError, r"shape \(batch, length\)"),
        (dict(inputs_embeds=np.zeros((3, 7, 16), np.float32)), ValueError, "hidden_size=32"),
        (dict(input_ids="ids", attention_mask=np.ones((3, 6))), ValueError, r"attention_mask must have shape \(3, 7\)"),
        (dict(input_ids=np.zeros((1, 65), np.int32)), ValueError, "exceeds the 64 tokens"),
        (dict(input_ids="ids", token_type_ids=np.zeros((3, 6), np.int32)), ValueError,
         "token_type_ids must have shape"),
        (dict(input_ids="ids", head_mask=np.ones((3,))), ValueError, r"head_mask must have shape \(4,\)"),
        (dict(input_ids=np.full((3, 7), 100)), ValueError, r"input_ids must be in 0..99; got values from 100 to 100"),
        (dict(input_ids=np.full((3, 7), -1)), ValueError, r"input_ids must be in 0..99"),
        (dict(input_ids=np.zeros((3, 7), np.float32)), TypeError, "input_ids must be an integer array"),
        (dict(input_ids="ids", token_type_ids=np.ones((3, 7), np.int32)), ValueError,
         r"token_type_ids must be in 0..0"),
        (dict(input_ids="ids", position_ids=np.full((3, 7), 66)), ValueError, r"position_ids must be in 0..65"),
        (dict(input_ids="ids", encoder_hidden_states=np.zeros((3, 2, 32), np.float32)), ValueError,
         "no cross-attention"),
    ],
)
def test_bad_encoder_inputs_fail_before_computing(mlm, kwargs, error, words):
    model, ids, _ = mlm
    kwargs = {k: ids if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(error, match=words):
        model(**kwargs)


def _labels(head, **values):
    config = tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm")
    ids, mask = padded_batch(config)
    return build(head, config)[0], dict(input_ids=ids, attention_mask=mask, **values)


# Shapes and kinds are known when jit traces: the error comes before anything is compiled.
TRACE_TIME_LABEL_CASES = [
    ("masked_lm", dict(labels=np.zeros((3, 6), np.int32)), ValueError, r"labels must have shape \(3, 7\)"),
    ("masked_lm", dict(labels=np.zeros((3, 7), np.float32)), TypeError, "labels must be integer"),
    ("sequence_classification", dict(labels=np.array([[0, 1], [1, 0], [2, 0]])), ValueError,
     r"single-label classification labels must have shape \(3,\) or \(3, 1\)"),
    ("sequence_classification", dict(labels=np.zeros((3, 2), np.float32)), ValueError,
     r"multi-label classification labels must have shape \(3, 3\)"),
    ("question_answering", dict(start_positions=np.array([1.0, 2.0, 0.0]), end_positions=np.array([1, 2, 0])),
     TypeError, "start_positions/end_positions must be integer"),
]


@pytest.mark.parametrize("head, labels, error, words", TRACE_TIME_LABEL_CASES)
def test_labels_of_the_wrong_shape_or_kind(head, labels, error, words):
    model, inputs = _labels(head, **labels)
    with pytest.raises(error, match=words):
        forward(model, inputs)


# Values are checked eagerly, after the encoder (which knows B and T) and before the loss.
RANGE_LABEL_CASES = [
    ("masked_lm", np.where(padded_batch(tiny_config())[0] > 50, 100, 5), r"labels must be in 0..99 \(or -100"),
    ("causal_lm", np.full((3, 7), -5), r"labels must be in 0..99"),
    ("token_classification", np.full((3, 7), 3), r"labels must be in 0..2"),
    ("sequence_classification", np.array([0, 3, 1]), r"labels must be in 0..2"),
]


@pytest.mark.parametrize("head, labels, words", RANGE_LABEL_CASES)
def test_labels_out_of_range(head, labels, words):
    model, inputs = _labels(head, labels=labels)
    with pytest.raises(ValueError, match=words):
        model(**inputs)


def test_bad_head_inputs_fail_before_computing():
    config = tiny_config(num_labels=3)
    ids, mask = padded_batch(config)
    choice, _ = build("multiple_choice", config)
    with pytest.raises(ValueError, match=r"shape \(batch, choices, length\)"):
        choice(input_ids=ids)
    with pytest.raises(ValueError, match=r"attention_mask must have leading shape \(3, 2, 7\)"):
        choice(input_ids=np.stack([ids, ids], 1), attention_mask=mask)
    with pytest.raises(ValueError, match=r"labels must be in 0..1"):  # checked before the encoder runs
        choice(input_ids=np.stack([ids, ids], 1), labels=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        choice(input_ids=np.stack([ids, ids], 1), labels=np.array([0, 1]))
    qa, _ = build("question_answering", tiny_config(num_labels=2))
    assert qa(input_ids=ids, start_positions=np.zeros(3, np.int32)).loss is None  # one alone: no loss, as v4
    with pytest.raises(ValueError, match="needs a decoder"):
        CLASSES["model"](tiny_config(add_cross_attention=True))
    with pytest.raises(TypeError, match="config must be a roberta_core.RobertaConfig"):
        CLASSES["model"]({"hidden_size": 32})
    with pytest.raises(ValueError, match="attn_implementation must be one of"):
        CLASSES["model"](config, attn_implementation="flash")
    # PyTorch's names, so one setting serves every backend
    assert CLASSES["model"](config, attn_implementation="eager").attn_implementation == "einsum"
    assert CLASSES["model"](config, attn_implementation="sdpa").attn_implementation == "dot_product"
    with pytest.raises(ValueError, match="divisible"):
        RobertaConfig.from_preset("tiny", num_attention_heads=5)
    decoder, _ = build("causal_lm", tiny_config(is_decoder=True))
    with pytest.raises(ValueError, match="one entry per layer"):
        decoder(input_ids=ids, past_key_values=((np.zeros((3, 4, 2, 8)),) * 2,))
    with pytest.raises(ValueError, match=r"shape \(batch, 4, cached, 8\)"):
        decoder(input_ids=ids, past_key_values=((np.zeros((3, 2, 8)),) * 2,) * 2)
    with pytest.raises(ValueError, match="60 cached.*exceeds the 64 tokens"):
        decoder(input_ids=ids, past_key_values=((np.zeros((3, 4, 60, 8)),) * 2,) * 2)
    past = ((np.zeros((3, 4, 2, 8), np.float32),) * 2,) * 2
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(3, 9\) \(cached \+ new tokens\)"):
        decoder(input_ids=ids, attention_mask=mask, past_key_values=past)
    with pytest.raises(ValueError, match="a batch of 3, the inputs 1"):
        decoder(input_ids=ids[:1], past_key_values=past)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(max_new_tokens=0), "max_new_tokens must be a positive integer"),
        (dict(do_sample=True, temperature=0.0), "temperature must be > 0"),
        (dict(do_sample=True, top_p=1.5), r"top_p must be in \(0, 1\]"),
        (dict(do_sample=True, top_k=-1), "top_k must be a non-negative integer"),
        (dict(max_new_tokens=60), "prompt length 7 \\+ max_new_tokens 60 exceeds the 64"),
        (dict(input_ids=np.full((3, 7), 100)), r"input_ids must be in 0..99"),
    ],
)
def test_bad_generation_settings(kwargs, words):
    config = tiny_config(is_decoder=True)
    model, _ = build("causal_lm", config)
    ids, mask = padded_batch(config)
    kwargs = {"input_ids": ids, "attention_mask": mask, **kwargs}
    with pytest.raises(ValueError, match=words):
        model.generate(**kwargs)


def test_generate_needs_a_decoder():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = build("causal_lm", tiny_config())
    with pytest.raises(ValueError, match="is_decoder=True"):
        model.generate(np.zeros((1, 3), np.int32))


def test_out_of_range_values_under_jit_with_checkify(mlm):
    """Opt-in: with enable_jit_checks() and `checked`, the jitted model raises the eager ValueError."""
    model, ids, mask = mlm
    model.enable_jit_checks()
    try:
        graphdef, state = nnx.split(model)
        run = checked(jax.jit(lambda state, ids, labels: nnx.merge(graphdef, state)(ids, labels=labels).logits))
        logits = run(state, ids, ids)
        assert logits.shape == (3, 7, 100)
        bad = ids.copy()
        bad[1, 2] = 250
        with pytest.raises(ValueError, match="input_ids must be in 0..99; got values from 0 to 250"):
            run(state, bad, ids)
        with pytest.raises(ValueError, match=r"labels must be in 0..99 \(or -100 to ignore a position\); got .* -5"):
            run(state, ids, np.where(ids > 50, -5, ids))
    finally:
        model.enable_jit_checks(False)


# ---------------------------------------------------------------------------- values JAX would narrow (issue 17)

# Without jax_enable_x64 JAX holds integers as int32: an int64 id of 2**32 + 5 would become 5
# and read row 5's embedding. PyTorch and TensorFlow refuse it; so must every way into this model.
WIDE = 2**32 + 5


def test_int64_ids_beyond_int32_are_refused_not_wrapped():
    assert not jax.config.jax_enable_x64  # the setting under which the cast wraps
    config = tiny_config(num_labels=3)
    model, _ = build("masked_lm", config)
    ids, mask = padded_batch(config)
    wide = ids.astype(np.int64)
    wide[1, 2] = WIDE
    with pytest.raises(ValueError, match=rf"input_ids must be in 0..99; got values from 0 to {WIDE}"):
        model(input_ids=wide, attention_mask=mask)
    with pytest.raises(ValueError, match=rf"input_ids must be in 0..99; got values from -{WIDE}"):
        model(input_ids=np.where(wide == WIDE, -WIDE, wide), attention_mask=mask)
    with pytest.raises(ValueError, match=r"token_type_ids must be in 0..0"):
        model(input_ids=ids, token_type_ids=np.where(wide == WIDE, 2**32, 0))
    labels = np.full(ids.shape, -100, np.int64)
    labels[0, 1] = 2**32 + 7  # would be label 7, a valid one
    with pytest.raises(ValueError, match=r"labels must hold values within int32 .* got values from -100 to 4294967303"):
        model(input_ids=ids, labels=labels)
    decoder, _ = build("causal_lm", tiny_config(is_decoder=True))
    with pytest.raises(ValueError, match=rf"input_ids must be in 0..99; got values from 0 to {WIDE}"):
        decoder.generate(wide, attention_mask=mask, max_new_tokens=2)
    # The framework-free entry (roberta_core.runtime) reaches the model with its NumPy ids intact.
    from roberta_flax.convert import call_numpy

    with pytest.raises(ValueError, match=rf"input_ids must be in 0..99; got values from 0 to {WIDE}"):
        call_numpy(model, dict(input_ids=wide, attention_mask=mask))
    # In range, int64 ids give the numbers of int32 ones.
    assert np.array_equal(model(input_ids=ids.astype(np.int64)).logits, model(input_ids=ids.astype(np.int32)).logits)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_non_float_inputs_embeds_are_refused(dtype):
    config = tiny_config()
    model, _ = build("model", config)
    embeds = np.ones((3, 7, config.hidden_size), dtype)
    words = r"inputs_embeds must be a floating point array \(float16, bfloat16, float32 or float64\)"
    with pytest.raises(TypeError, match=words):
        model(inputs_embeds=embeds)
    with pytest.raises(TypeError, match=words):  # the same words at trace time under jit
        forward(model, dict(inputs_embeds=embeds))
    choice, _ = build("multiple_choice", tiny_config(num_labels=3))
    with pytest.raises(TypeError, match=words):
        choice(inputs_embeds=embeds[:, None])


def test_multiple_choice_takes_v4_flaxs_positional_order():
    # v4's FlaxRobertaForMultipleChoice.__call__(input_ids, attention_mask, token_type_ids, ...):
    # unlike the PyTorch class, the mask comes second. A positional call must mean what it meant there.
    model, _ = build("multiple_choice", tiny_config(type_vocab_size=2))
    ids, mask = padded_batch(model.config, lengths=(7, 5, 2))
    ids, mask = ids[None], mask[None]  # (1, 3 choices, T)
    types = (np.arange(ids.shape[-1]) >= 3).astype(np.int64)[None, None].repeat(3, 1)
    by_name = np.asarray(model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits)
    np.testing.assert_array_equal(np.asarray(model(ids, mask, types).logits), by_name)
    swapped = np.asarray(model(input_ids=ids, attention_mask=types, token_type_ids=mask).logits)
    assert not np.allclose(swapped, by_name)


def test_prepare_inputs_for_generation_gives_what_the_cache_has_not_seen(decoder):
    model = decoder[0]
    ids = np.array([[0, 5, 9, 13]])
    past = model(input_ids=ids[:, :3], use_cache=True).past_key_values
    step = model.prepare_inputs_for_generation(ids, past_key_values=past, attention_mask=np.ones_like(ids))
    assert np.asarray(step["input_ids"]).tolist() == [[13]] and step["attention_mask"].shape == (1, 4)
    assert model.prepare_inputs_for_generation(ids)["input_ids"] is ids  # no cache: every token


def test_question_answering_with_one_position_has_no_loss():
    # as v4's PyTorch and TF heads: a loss needs both positions, one alone is not used
    qa = build("question_answering", tiny_config(num_labels=2))[0]
    ids = jnp.array([[0, 5, 9, 2], [0, 7, 2, 1]])
    out = qa(input_ids=ids, start_positions=jnp.array([1, 2]))
    assert out.loss is None
    np.testing.assert_array_equal(np.asarray(out.start_logits), np.asarray(qa(input_ids=ids).start_logits))
