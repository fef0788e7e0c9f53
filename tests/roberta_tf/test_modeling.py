"""The TF encoder and heads against independent numbers: the float64 NumPy reference
(roberta_core/reference.py), hand-computed NumPy, and the PyTorch backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from roberta_core import reference
from roberta_core.config import ACTIVATIONS
from roberta_core.weights import parameter_shapes
from roberta_tf.convert import from_canonical, to_canonical
from roberta_tf.modeling import ACT2FN, position_ids_from_input_ids
from tests.helpers import ALL_HEADS, assert_close, padded_batch, random_state, rel_err, tiny_config

from .common import CLASSES, build, inputs_for

LIST_FIELDS = ("hidden_states", "attentions", "cross_attentions", "past_key_values")


def assert_matches_reference(out, ref, bar=1e-5):
    """Every field the reference gives is present and within `bar` relative error (ARCHITECTURE §5)."""
    assert set(ref) <= set(out), f"missing fields {set(ref) - set(out)}"
    for name, want in ref.items():
        got = tf.reduce_mean(out[name]) if name == "loss" else out[name]  # v4 TF's loss shapes: their mean
        if name in LIST_FIELDS:
            flat_got, flat_want = tf.nest.flatten(got), tf.nest.flatten(want)
            assert len(flat_got) == len(flat_want), name
            for g, w in zip(flat_got, flat_want):
                assert rel_err(np.asarray(g), w) <= bar, name
        else:
            assert rel_err(np.asarray(got), want) <= bar, f"{name}: {rel_err(np.asarray(got), want):.2e}"


def config_for(head, **overrides):
    """tiny, with 3 labels (QA: 2, a start and an end score); the causal LM is a decoder."""
    num_labels = 2 if head == "question_answering" else 3
    return tiny_config(is_decoder=head == "causal_lm", num_labels=num_labels, **overrides)


@pytest.mark.parametrize("head", ALL_HEADS)
def test_every_head_matches_the_reference(head):
    config = config_for(head)
    model, state = build(head, config, seed=3)
    inputs = inputs_for(config, head)
    assert_matches_reference(model(**inputs), reference.forward(config, state, head, **inputs))


def test_relative_positions_head_mask_attentions_and_states_match_the_reference():
    ids, mask = padded_batch(tiny_config())
    cases = (("relative_key", [1.0, 0.0, 1.0, 0.5]), ("relative_key_query", [[1, 0, 1, 0.5], [0, 1, 1, 1]]))
    for kind, head_mask in cases:
        config = tiny_config(position_embedding_type=kind)
        model, state = build("masked_lm", config, seed=4)
        inputs = dict(input_ids=ids, attention_mask=mask, head_mask=np.array(head_mask, np.float32),
                      output_attentions=True, output_hidden_states=True)
        out = model(**inputs)
        assert len(out.attentions) == 2 and len(out.hidden_states) == 3
        assert_matches_reference(out, reference.forward(config, state, "masked_lm", **inputs))


def test_decoder_with_cross_attention_and_cache_matches_the_reference():
    config = tiny_config(is_decoder=True, add_cross_attention=True, position_embedding_type="relative_key_query")
    model, state = build("causal_lm", config, seed=5)
    ids, mask = padded_batch(config)
    rng = np.random.default_rng(0)
    inputs = dict(
        input_ids=ids, attention_mask=mask, use_cache=True, output_attentions=True,
        encoder_hidden_states=rng.standard_normal((3, 4, 32)).astype(np.float32),
        encoder_attention_mask=np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]),
    )
    out = model(**inputs)
    assert len(out.past_key_values[0]) == 4  # (k, v, cross_k, cross_v)
    assert_matches_reference(out, reference.forward(config, state, "causal_lm", **inputs))


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key_query"])
def test_incremental_decoding_equals_the_full_forward(position_embedding_type):
    config = tiny_config(is_decoder=True, add_cross_attention=True, position_embedding_type=position_embedding_type)
    model, _ = build("causal_lm", config, seed=6)
    ids, mask = padded_batch(config, lengths=(7, 6, 7))
    source = np.random.default_rng(1).standard_normal((3, 4, 32)).astype(np.float32)
    full = model(input_ids=ids, attention_mask=mask, encoder_hidden_states=source).logits.numpy()
    out = model(input_ids=ids[:, :3], attention_mask=mask[:, :3], encoder_hidden_states=source, use_cache=True)
    pieces, past = [out.logits.numpy()], out.past_key_values
    for t in range(3, 7):  # one token at a time, the cross-attention keys reused from the cache
        out = model(input_ids=ids[:, t:t + 1], attention_mask=mask[:, :t + 1], encoder_hidden_states=source,
                    past_key_values=past, use_cache=True)
        pieces.append(out.logits.numpy())
        past = out.past_key_values
    assert past[0][0].shape == (3, 4, 7, 8)
    real = mask == 1
    assert_close(np.concatenate(pieces, axis=1)[real], full[real], what="incremental vs full")


def test_sequence_classification_problem_types_match_the_reference():
    ids, mask = padded_batch(tiny_config())
    cases = {
        (1, None): [np.array([0.5, 1.5, -2.0], np.float32), np.array([[0.5], [1.5], [-2.0]], np.float32)],  # regression
        (3, None): [np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], np.float32), np.array([2, -100, 0])],  # multi, single
        (3, "regression"): [np.arange(9, dtype=np.float32).reshape(3, 3)],
    }
    for (num_labels, problem_type), all_labels in cases.items():
        config = tiny_config(num_labels=num_labels, problem_type=problem_type)
        model, state = build("sequence_classification", config, seed=7)
        for labels in all_labels:
            inputs = dict(input_ids=ids, attention_mask=mask, labels=labels)
            assert_matches_reference(
                model(**inputs), reference.forward(config, state, "sequence_classification", **inputs)
            )


def test_losses_are_zero_not_nan_when_every_label_is_ignored():
    config = tiny_config()
    ids, mask = padded_batch(config)
    mlm, _ = build("masked_lm", config)
    assert mlm(input_ids=ids, labels=np.full_like(ids, -100)).loss.numpy().tolist() == [0.0]
    qa, _ = build("question_answering", config)
    T = ids.shape[1]
    loss = qa(input_ids=ids, start_positions=np.full(3, T + 1), end_positions=np.full(3, 99)).loss
    assert loss.numpy().tolist() == [0.0, 0.0, 0.0]


def test_inputs_embeds_and_token_types_match_the_reference():
    config = tiny_config(type_vocab_size=2)
    model, state = build("model", config, seed=8)
    ids, _ = padded_batch(config, lengths=(6, 6))
    types = np.array([[0, 0, 0, 1, 1, 1], [0, 1, 0, 1, 0, 1]])
    inputs = dict(input_ids=ids, token_type_ids=types)
    assert_matches_reference(model(**inputs), reference.forward(config, state, "model", **inputs))
    # Embeddings in place of ids: the same states when nothing is padded (positions count from 2).
    embeds = state["embeddings.word_embeddings.weight"][ids]
    by_embeds = model(inputs_embeds=embeds, token_type_ids=types).last_hidden_state
    assert_close(by_embeds, model(**inputs).last_hidden_state, what="inputs_embeds vs input_ids")


def test_position_ids_from_padding_by_hand():
    ids = tf.constant([[0, 5, 6, 1, 1], [1, 1, 0, 7, 2]])
    want = np.array([[2, 3, 4, 1, 1], [1, 1, 2, 3, 4]])  # pads keep padding_idx 1, real tokens count from 2
    np.testing.assert_array_equal(position_ids_from_input_ids(ids, 1).numpy(), want)
    np.testing.assert_array_equal(position_ids_from_input_ids(ids, 1, 3).numpy(), np.where(want > 1, want + 3, 1))


def test_a_padded_row_equals_the_row_alone():
    config = tiny_config()
    model, _ = build("masked_lm", config, seed=9)
    ids, mask = padded_batch(config, lengths=(7, 4))
    batch = model(input_ids=ids, attention_mask=mask).logits.numpy()
    alone = model(input_ids=ids[1:, :4]).logits.numpy()
    assert_close(batch[1, :4], alone[0], what="padded row vs alone")


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_match_the_reference(name):
    x = np.linspace(-12.0, 12.0, 241)
    got = ACT2FN[name](tf.constant(x, tf.float64)).numpy()
    assert_close(got, reference.ACT2FN[name](x), atol=1e-7, what=name)  # TF's float64 erf: ~5e-9


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "mixed_bfloat16"])
def test_half_precision_is_close_and_padded_rows_stay_finite(dtype):
    config = tiny_config()
    ids, mask = padded_batch(config)
    mask[2] = 0  # a row with nothing to attend to
    state = random_state(config, "masked_lm", seed=5)
    model = from_canonical(CLASSES["masked_lm"](config, dtype=dtype), state)
    logits = np.asarray(tf.cast(model(input_ids=ids, attention_mask=mask).logits, tf.float32))
    assert np.isfinite(logits).all()
    ref = reference.forward(config, state, "masked_lm", input_ids=ids, attention_mask=mask)["logits"]
    assert rel_err(logits[:2], ref[:2]) <= 2e-2


def test_initialisation_follows_v4():
    config = tiny_config(vocab_size=400, initializer_range=0.3)
    state = to_canonical(CLASSES["masked_lm"](config))
    words = state["roberta.embeddings.word_embeddings.weight"]
    assert not words[config.pad_token_id].any() and not state["roberta.embeddings.position_embeddings.weight"][1].any()
    assert abs(np.delete(words, 1, axis=0).std() - 0.3) < 0.02
    assert abs(state["roberta.encoder.layer.0.intermediate.dense.weight"].std() - 0.3) < 0.03
    for key, value in state.items():
        if "LayerNorm" in key or "layer_norm" in key:
            assert np.all(value == (1.0 if key.endswith("weight") else 0.0)), key
        elif key.endswith("bias"):
            assert not value.any(), key


def test_convert_round_trip_is_exact_and_refuses_foreign_keys():
    config = tiny_config()
    model, state = build("question_answering", config)
    back = to_canonical(model)
    assert list(back) == list(parameter_shapes(config, "question_answering"))
    assert all(np.array_equal(back[k], state[k]) and back[k].dtype == state[k].dtype for k in state)
    with pytest.raises(ValueError, match="lm_head.bias"):
        from_canonical(model, {**state, "lm_head.bias": np.zeros(100, np.float32)})
    with pytest.raises(ValueError, match="lacks 1 parameter.*qa_outputs.bias"):
        from_canonical(model, {k: v for k, v in state.items() if k != "qa_outputs.bias"})
    with pytest.raises(ValueError, match=r"qa_outputs.weight \(3, 32\) != expected \(2, 32\)"):
        from_canonical(model, {**state, "qa_outputs.weight": np.zeros((3, 32), np.float32)})
    np.testing.assert_array_equal(to_canonical(model)["qa_outputs.weight"], state["qa_outputs.weight"])  # untouched


def test_num_parameters_counts_each_tied_weight_once():
    config = tiny_config()
    for head in ALL_HEADS:
        model = CLASSES[head](config.copy(is_decoder=head == "causal_lm"))
        want = sum(math.prod(s) for s in parameter_shapes(model.config, head).values())
        assert model.num_parameters() == want, head
    words = config.vocab_size * config.hidden_size
    assert model.num_parameters(exclude_embeddings=True) < want - words


def test_resize_token_embeddings_keeps_rows_and_ties():
    config = tiny_config()
    model, state = build("masked_lm", config)
    model.resize_token_embeddings(110)
    new = to_canonical(model)
    words = new["roberta.embeddings.word_embeddings.weight"]
    old_words = state["roberta.embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(words[:100], old_words)
    assert_close(words[100:], np.broadcast_to(old_words.mean(0), (10, 32)), atol=1e-6, what="mean rows")
    grown_bias = np.concatenate([state["lm_head.bias"], np.zeros(10, np.float32)])
    np.testing.assert_array_equal(new["lm_head.bias"], grown_bias)
    assert model.config.vocab_size == 110 and model.get_output_embeddings() is model.get_input_embeddings()
    ids, _ = padded_batch(model.config)
    ids[0, 1] = 105
    assert model(input_ids=ids).logits.shape == (3, 7, 110)
    with pytest.raises(ValueError, match="would drop eos_token_id=2"):
        model.resize_token_embeddings(2)
    # v4's other forms: no size is no change; pad_to_multiple_of rounds up (the current size without one).
    assert model.resize_token_embeddings() is model.get_input_embeddings() and model.config.vocab_size == 110
    model.resize_token_embeddings(pad_to_multiple_of=16)
    assert model.config.vocab_size == 112 and to_canonical(model)["lm_head.bias"].shape == (112,)
    untied = tiny_config(tie_word_embeddings=False)
    model, state = build("masked_lm", untied)
    model.resize_token_embeddings(90, mean_resizing=False)
    new = to_canonical(model)
    np.testing.assert_array_equal(new["lm_head.decoder.weight"], state["lm_head.decoder.weight"][:90])
    assert model(input_ids=ids % 90).logits.shape == (3, 7, 90)


@pytest.mark.parametrize("head", ALL_HEADS)
def test_logits_equal_the_pytorch_backend(head):
    torch = pytest.importorskip("torch")
    roberta_pt = pytest.importorskip("roberta_pt")
    from roberta_pt.convert import from_canonical as pt_from_canonical

    relative = head == "causal_lm"
    config = config_for(head, position_embedding_type="relative_key_query" if relative else "absolute")
    model, state = build(head, config, seed=11)
    pt_model = getattr(roberta_pt, type(model).__name__[2:])(config, attn_implementation="eager" if relative else None)
    pt_model = pt_from_canonical(pt_model, {k: v.copy() for k, v in state.items()}).eval()
    inputs = inputs_for(config, head)
    with torch.no_grad():
        want = pt_model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    got = model(**inputs)
    for name, value in want.items():
        if name == "loss":  # v4 TF's shape, (1,) or per example: the mean is PyTorch's scalar
            assert_close(tf.reduce_mean(got[name]), value.numpy(), what=f"{head} {name}")
        elif name != "past_key_values":
            assert_close(got[name], value.numpy(), what=f"{head} {name}")


def test_query_key_value_are_called_as_layers_in_training():
    # A wrapper or call hook on attention.self.query (LoRA, a quantised layer, an activation
    # probe) must see the training forward too, not only inference: no fused Q/K/V matmul.
    config = tiny_config(is_decoder=False)
    model, _ = build("masked_lm", config)
    ids, mask = padded_batch(config)
    attention = model.roberta.encoder.layer[0].attention.self
    seen = {"query": [], "key": [], "value": []}
    for name in seen:
        layer = getattr(attention, name)

        def hook(inputs, *args, _call=layer.call, _name=name, **kwargs):
            seen[_name].append(tuple(inputs.shape))
            return _call(inputs, *args, **kwargs)

        layer.call = hook
    labels = np.where(mask == 1, ids, -100)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(input_ids=ids, attention_mask=mask, labels=labels, training=True).loss)
    grad = tape.gradient(loss, attention.query.kernel)
    assert seen == {name: [(3, 7, config.hidden_size)] for name in seen}
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0


def test_multiple_choice_takes_v4_tfs_positional_order():
    # v4's TFRobertaForMultipleChoice.call(input_ids, attention_mask, token_type_ids, ...): unlike
    # the PyTorch class, the mask comes second. A positional call must mean what it meant there.
    model, _ = build("multiple_choice", tiny_config(type_vocab_size=2))
    ids, mask = padded_batch(model.config, lengths=(7, 5, 2))
    ids, mask = ids[None], mask[None]  # (1, 3 choices, T)
    types = (np.arange(ids.shape[-1]) >= 3).astype(np.int64)[None, None].repeat(3, 1)
    by_name = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.numpy()
    np.testing.assert_array_equal(model(ids, mask, types).logits.numpy(), by_name)
    swapped = model(input_ids=ids, attention_mask=types, token_type_ids=mask).logits.numpy()
    assert not np.allclose(swapped, by_name)


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


def test_losses_have_v4_tfs_shapes_and_per_example_values():
    """v4's TF heads return per-example losses (B,) for sequence classification, multiple choice
    and QA, and (1,) for the token-level heads; expected values by hand from the logits. Their
    mean is the scalar of the other backends, also when a label is ignored."""
    config = config_for("sequence_classification")
    ids, mask = padded_batch(config)
    seqcls, _ = build("sequence_classification", config)
    labels = np.array([2, 0, 1])
    out = seqcls(input_ids=ids, attention_mask=mask, labels=labels)
    want = -_log_softmax(out.logits.numpy())[np.arange(3), labels]
    assert out.loss.shape == (3,)
    np.testing.assert_allclose(out.loss.numpy(), want, rtol=1e-5)
    # v4's own argument, the logits, works too (and our output mapping).
    np.testing.assert_allclose(seqcls.hf_compute_loss(labels, out.logits).numpy(), want, rtol=1e-5)
    ignored = seqcls(input_ids=ids, attention_mask=mask, labels=np.array([2, -100, 1])).loss.numpy()
    np.testing.assert_allclose(ignored, [want[0] * 1.5, 0.0, want[2] * 1.5], rtol=1e-5)  # B / kept = 3 / 2
    assert ignored.mean() == pytest.approx(want[[0, 2]].mean(), rel=1e-5)

    mc, _ = build("multiple_choice", config)
    inputs = inputs_for(config, "multiple_choice")
    out = mc(**inputs)
    assert out.loss.shape == (2,)
    np.testing.assert_allclose(out.loss.numpy(), -_log_softmax(out.logits.numpy())[[0, 1], inputs["labels"]], rtol=1e-5)

    qa_config = config_for("question_answering")
    qa, _ = build("question_answering", qa_config)
    start, end = np.array([1, 2, 0]), np.array([3, 4, 1])
    out = qa(input_ids=ids, attention_mask=mask, start_positions=start, end_positions=end)
    s, e = _log_softmax(out.start_logits.numpy()), _log_softmax(out.end_logits.numpy())
    want = -(s[np.arange(3), start] + e[np.arange(3), end]) / 2
    assert out.loss.shape == (3,)
    np.testing.assert_allclose(out.loss.numpy(), want, rtol=1e-5)
    v4_keys = qa.hf_compute_loss({"start_position": start, "end_position": end}, (out.start_logits, out.end_logits))
    np.testing.assert_allclose(v4_keys.numpy(), want, rtol=1e-5)

    for head in ("masked_lm", "causal_lm", "token_classification"):
        head_config = config_for(head)
        model, _ = build(head, head_config)
        assert model(**inputs_for(head_config, head)).loss.shape == (1,), head
