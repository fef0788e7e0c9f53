"""v4 TF's API around the models (transformers 4.57.6, modeling_tf_utils.py, generation/tf_utils.py):
`generate(return_dict_in_generate=, output_scores=, num_beams=, seed=[a, b])`, list/tuple inputs
mapped positionally (input_processing), `can_generate()`, `serving_output()`,
`get_bias`/`set_bias`/`get_lm_head`, and `from_pretrained(config=<v4 config>)`.

Expected values come from full forwards of the model (not the generate loop under test), the
float64 reference, or TF's stateless sampler called by hand as v4's `_sample` calls it."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import roberta_tf as rt
from roberta_core.reference import forward as reference
from roberta_tf.heads import _filter_logits
from tests.helpers import assert_close, multiple_choice_case, padded_batch, tiny_config

from .common import build


@pytest.fixture(scope="module")
def decoder():
    return build("causal_lm", tiny_config(is_decoder=True), seed=3)


def full_forward_logits(model, ids):
    """The last position's logits of a full forward (no cache), at RoBERTa's own positions:
    v4 TF's prepare_inputs_for_generation passes no position ids."""
    return model(input_ids=ids).logits.numpy()[:, -1]


def test_return_dict_in_generate_gives_sequences_and_the_scores_of_each_step(decoder):
    model, _ = decoder
    ids = np.array([[0, 9, 17, 23], [0, 40, 41, 5]], np.int32)
    plain = model.generate(ids, max_new_tokens=4, eos_token_id=[]).numpy()
    out = model.generate(ids, max_new_tokens=4, eos_token_id=[], return_dict_in_generate=True, output_scores=True)
    np.testing.assert_array_equal(out.sequences.numpy(), plain)
    assert isinstance(out.scores, tuple) and len(out.scores) == 4
    for step, scores in enumerate(out.scores):
        assert scores.shape == (2, model.config.vocab_size)
        # Greedy scores are the logits the token was chosen from: a full forward's.
        assert_close(scores, full_forward_logits(model, plain[:, : 4 + step]), atol=1e-5, what=f"scores {step}")
        np.testing.assert_array_equal(scores.numpy().argmax(-1), plain[:, 4 + step])
    out = model.generate(ids, max_new_tokens=2, eos_token_id=[], return_dict_in_generate=True)
    assert set(out.keys()) == {"sequences"}  # scores only with output_scores, as v4


def test_scores_stop_with_the_rows_and_are_filtered_when_sampling(decoder):
    model, _ = decoder
    ids = np.array([[0, 9, 17, 23]], np.int32)
    free = model.generate(ids, max_new_tokens=5, eos_token_id=[]).numpy()
    eos = int(free[0, 6])  # the third new token ends the row
    out = model.generate(ids, max_new_tokens=5, eos_token_id=eos, return_dict_in_generate=True, output_scores=True)
    assert out.sequences.shape == (1, 7) and len(out.scores) == 3
    out = model.generate(
        ids, max_new_tokens=3, eos_token_id=[], do_sample=True, top_k=4, temperature=0.5, seed=[3, 7],
        return_dict_in_generate=True, output_scores=True,
    )
    seq = out.sequences.numpy()
    for step, scores in enumerate(out.scores):
        want = _filter_logits(tf.constant(full_forward_logits(model, seq[:, : 4 + step])) / 0.5, 4, None).numpy()
        finite = np.isfinite(scores.numpy())
        assert finite.sum() == 4 and np.array_equal(finite, np.isfinite(want))
        assert_close(scores.numpy()[finite], want[finite], atol=1e-4, what=f"sampled scores {step}")


def test_seed_pair_draws_every_token_as_v4_tf(decoder):
    """v4's `_sample` draws `tf.random.stateless_categorical(scores, 1, seed=seed)` with the
    given pair at every step: a loop over full forwards with v4's warpers and that pair draws
    the same ids. An int seed gives each step its own pair."""
    model, _ = decoder
    ids = np.array([[0, 9, 17, 23], [0, 40, 41, 5]], np.int32)
    kwargs = dict(max_new_tokens=4, eos_token_id=[], do_sample=True, temperature=1.5)
    got = model.generate(ids, seed=[11, 4], **kwargs).numpy()
    np.testing.assert_array_equal(got, model.generate(ids, seed=(11, 4), **kwargs).numpy())
    seq = ids
    for _ in range(4):
        logits = tf.constant(full_forward_logits(model, seq)) / 1.5
        # v4's warpers: temperature, then GenerationConfig's default top_k=50 (the rest at -inf)
        kth = tf.math.top_k(logits, 50).values[:, -1:]
        logits = tf.where(logits < kth, float("-inf"), logits)
        token = tf.random.stateless_categorical(logits, 1, seed=[11, 4], dtype=tf.int32)[:, 0].numpy()
        seq = np.concatenate([seq, token[:, None]], axis=1)
    np.testing.assert_array_equal(got, seq)
    assert not np.array_equal(model.generate(ids, seed=11, **kwargs).numpy(), got)  # [11, s] per step
    with pytest.raises(ValueError, match="two ints"):
        model.generate(ids, seed=[1, 2, 3], **kwargs)


def test_tuples_leave_the_cache_out_as_v4_tf(decoder):
    """v4 TF's encoder builds its `return_dict=False` tuple from the states, hidden states and
    attentions only (`modeling_tf_roberta.TFRobertaEncoder.call`), and every head appends the
    encoder's tuple after its own: a causal LM's tuple is (logits, [hidden_states], ...) whatever
    `use_cache` says, and a bare decoder's (sequence, pooled, ...); the dict form keeps the cache."""
    model, _ = decoder
    ids = np.array([[0, 9, 17, 23]], np.int32)
    full = model(ids, use_cache=True, output_hidden_states=True)
    assert full.past_key_values is not None
    plain = model(ids, use_cache=True, return_dict=False)
    assert len(plain) == 1 and np.array_equal(plain[0].numpy(), full.logits.numpy())
    states = model(ids, use_cache=True, output_hidden_states=True, return_dict=False)
    assert len(states) == 2 and len(states[1]) == model.config.num_hidden_layers + 1
    np.testing.assert_array_equal(states[1][-1].numpy(), full.hidden_states[-1].numpy())
    with_loss = model(ids, labels=ids, return_dict=False)
    assert len(with_loss) == 2 and with_loss[1].shape == full.logits.shape
    bare, _ = build("model", tiny_config(is_decoder=True), seed=3)
    out = bare(ids, use_cache=True, return_dict=False)
    assert len(out) == 2 and out[1].shape == (1, bare.config.hidden_size)  # sequence, pooled


def test_num_beams_above_one_is_not_implemented(decoder):
    model, _ = decoder
    with pytest.raises(NotImplementedError, match="num_beams"):
        model.generate(np.array([[0, 5, 6]]), max_new_tokens=2, num_beams=3)


def test_list_and_tuple_inputs_map_positionally_as_v4():
    config = tiny_config(type_vocab_size=2)
    model, state = build("masked_lm", config, seed=1)
    ids, mask = padded_batch(config)
    types = (np.arange(ids.size).reshape(ids.shape) % 2).astype(np.int64)
    want = reference(config, state, "masked_lm", input_ids=ids, attention_mask=mask)["logits"]
    assert_close(model([ids, mask]).logits, want, atol=1e-5, what="[ids, mask]")
    assert_close(model([tf.constant(ids), tf.constant(mask)]).logits, want, atol=1e-5, what="[tensors]")
    want_types = reference(config, state, "masked_lm", input_ids=ids, attention_mask=mask, token_type_ids=types)
    assert_close(model((ids, mask, types)).logits, want_types["logits"], atol=1e-5, what="(ids, mask, types)")
    # Nested Python lists of ids stay ids (a list of lists of ints is not a list of inputs).
    no_mask = reference(config, state, "masked_lm", input_ids=ids)["logits"]
    assert_close(model(ids.tolist()).logits, no_mask, atol=1e-5, what="python list ids")
    with pytest.raises(TypeError, match="both"):
        model([ids, mask], attention_mask=mask)
    # Multiple choice: its own parameter order.
    mc, mc_state = build("multiple_choice", config, seed=2)
    ids3, mask3 = np.stack([ids, ids[::-1]], 1), np.stack([mask, mask[::-1]], 1)
    want = reference(config, mc_state, "multiple_choice", input_ids=ids3, attention_mask=mask3)["logits"]
    assert_close(mc([ids3, mask3]).logits, want, atol=1e-5, what="multiple choice [ids, mask]")


def test_can_generate_only_on_the_causal_lm():
    assert rt.TFRobertaForCausalLM.can_generate() is True
    for cls in (rt.TFRobertaModel, rt.TFRobertaForMaskedLM, rt.TFRobertaForQuestionAnswering):
        assert cls.can_generate() is False


def test_serving_output_drops_what_the_config_does_not_ask_for(decoder):
    model, _ = decoder
    ids = np.array([[0, 9, 17, 23]], np.int32)
    out = model(ids, output_hidden_states=True, output_attentions=True, use_cache=True)
    served = model.serving_output(out)  # config: no hidden states, no attentions; use_cache on
    assert set(served.keys()) == {"logits", "past_key_values"}
    # past_key_values: per layer (k, v) of one shape: stacked into one tensor, as v4.
    assert tuple(served["past_key_values"].shape) == (model.config.num_hidden_layers, 2) + tuple(
        out.past_key_values[0][0].shape
    )
    plain = model.serving_output((out.logits,))
    assert isinstance(plain, tuple)  # not an output: returned as given


def test_bias_and_lm_head_accessors():
    config = tiny_config()
    model, state = build("masked_lm", config, seed=4)
    assert model.get_lm_head() is model.lm_head
    bias = model.get_bias()
    assert set(bias) == {"bias"}
    np.testing.assert_allclose(bias["bias"].numpy(), state["lm_head.bias"], atol=0)
    ids, mask = padded_batch(config)
    new = np.linspace(-1, 1, config.vocab_size).astype(np.float32)
    model.set_bias({"bias": new})
    want = reference(config, {**state, "lm_head.bias": new}, "masked_lm", input_ids=ids, attention_mask=mask)["logits"]
    assert_close(model(ids, attention_mask=mask).logits, want, atol=1e-5, what="logits with the new bias")
    seq, _ = build("sequence_classification", tiny_config(num_labels=2))
    assert seq.get_lm_head() is None and seq.get_bias() is None
    clm, _ = build("causal_lm", tiny_config(is_decoder=True))
    assert clm.get_lm_head() is clm.lm_head


def test_return_dict_in_generate_compiles_with_xla(decoder):
    model, _ = decoder
    ids = np.array([[0, 9, 17, 23], [0, 40, 41, 5]], np.int32)
    eager = model.generate(ids, max_new_tokens=3, eos_token_id=[], return_dict_in_generate=True, output_scores=True)
    run = tf.function(
        lambda i: model.generate(i, max_new_tokens=3, eos_token_id=[], return_dict_in_generate=True, output_scores=True),
        jit_compile=True,
    )
    compiled = run(tf.constant(ids))
    np.testing.assert_array_equal(compiled.sequences.numpy(), eager.sequences.numpy())
    assert len(compiled.scores) == 3
    for got, want in zip(compiled.scores, eager.scores):
        assert_close(got, want, atol=1e-5, what="compiled scores")


def test_multiple_choice_takes_position_ids_fourth_as_v4_tf():
    """v4 TF's TFRobertaForMultipleChoice.call(input_ids, attention_mask, token_type_ids,
    position_ids, head_mask, inputs_embeds, ..., labels): labels come after the inputs."""
    config = tiny_config()
    mc, state = build("multiple_choice", config, seed=2)
    case = multiple_choice_case(config, state)
    ids3, mask3, positions, labels = case["ids"], case["mask"], case["positions"], case["labels"]
    assert_close(mc(ids3, mask3, None, positions).logits, case["logits"], atol=1e-5, what="positional position_ids")
    assert_close(mc([ids3, mask3, None, positions]).logits, case["logits"], atol=1e-5, what="list position_ids")
    # v4 TF's multiple-choice loss is per example (B,); the reference's is their mean.
    assert_close(np.mean(mc(ids3, mask3, labels=labels).loss), case["loss"], atol=1e-5, what="loss")


def test_sequence_classification_labels_of_shape_b_by_1_as_v4():
    """v4 TF reads a (B, 1) label column (Keras' usual `y`) as (B,): the same per-example loss."""
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    ids, mask = padded_batch(config)
    flat = model(input_ids=ids, attention_mask=mask, labels=np.array([2, 0, 1])).loss
    column = model(input_ids=ids, attention_mask=mask, labels=np.array([[2], [0], [1]])).loss
    assert column.shape == flat.shape == (3,)
    np.testing.assert_array_equal(column.numpy(), flat.numpy())


def test_word_table_is_also_weight_as_v4_tf():
    # v4 TF's embeddings layer holds the word table as `weight` (build(): add_weight(name="weight")),
    # read as `model.roberta.embeddings.weight` or `model.get_input_embeddings().weight`.
    config = tiny_config()
    model, state = build("masked_lm", config, seed=5)
    want = state["roberta.embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(model.roberta.embeddings.weight.numpy(), want)
    np.testing.assert_array_equal(model.get_input_embeddings().weight.numpy(), want)
    rows = config.vocab_size + 2
    model.set_input_embeddings(np.ones((rows, config.hidden_size), np.float32))
    assert model.roberta.embeddings.weight.shape == (rows, config.hidden_size)
    np.testing.assert_array_equal(model.get_input_embeddings().weight.numpy(), 1.0)
