"""What v4's own TF test suite (tests/test_modeling_tf_common.py's TFModelTesterMixin and
tests/models/roberta/test_modeling_tf_roberta.py, transformers 4.57.6 era) asks of a model and
ours first did differently: `test_loss_computation`'s tuple of every call parameter, `test_keras_fit`
with the labels inside the input dict and a metric compiled, `test_embeddings_out_of_bounds_raise_exception`,
and `test_lm_head_model_random_no_beam_search_generate`'s `generate()` without a prompt.

Expected values: two paths that must agree (dict vs tuple, labels in x vs as y), or v4 4.57.6's
behaviour recorded as a literal (error types, the shape of an unprompted generation)."""

from __future__ import annotations

import inspect
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_config

from .common import CLASSES, build

B, T = 3, 5


def _batch(config, head, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, config.vocab_size, (B, T)).astype(np.int32)
    mask = np.ones((B, T), np.int32)
    mask[1, -2:] = 0
    if head == "multiple_choice":
        ids, mask = np.stack([ids, ids[::-1]], 1), np.stack([mask, mask[::-1]], 1)
    x = {"input_ids": ids, "attention_mask": mask}
    if head in ("masked_lm", "causal_lm", "token_classification"):
        high = config.vocab_size if head.endswith("lm") else config.num_labels
        x["labels"] = rng.integers(0, high, (B, T)).astype(np.int32)
    elif head in ("sequence_classification", "multiple_choice"):
        x["labels"] = rng.integers(0, 2, (B,)).astype(np.int32)
    elif head == "question_answering":
        x["start_positions"] = rng.integers(0, T, (B,)).astype(np.int32)
        x["end_positions"] = rng.integers(0, T, (B,)).astype(np.int32)
    return x


LOSS_HEADS = [h for h in CLASSES if h != "model"]


@pytest.mark.parametrize("head", LOSS_HEADS)
def test_a_tuple_of_every_parameter_with_its_default_maps_as_the_signature(head):
    # v4's test_loss_computation: a tuple holding each call parameter's default (None, False) in
    # signature order, the ids and labels in their places, the last parameter left off.
    config = tiny_config(is_decoder=head == "causal_lm")
    model, _ = build(head, config, seed=1)
    x = _batch(config, head)
    want = model(x).loss
    params = inspect.signature(model.call).parameters
    values = [p.default for name, p in params.items() if name != "kwargs"]
    names = [name for name in params if name != "kwargs"]
    for name, value in x.items():
        values[names.index(name)] = value
    np.testing.assert_allclose(model(tuple(values[:-1])).loss.numpy(), want.numpy(), rtol=1e-6)
    # a Python flag in its place is taken too (v4's input_processing accepts bools)
    values[names.index("return_dict")] = False
    np.testing.assert_allclose(model(tuple(values[:-1]))[0].numpy(), want.numpy(), rtol=1e-6)


def test_nested_python_lists_of_ids_stay_ids():
    config = tiny_config()
    model, _ = build("masked_lm", config, seed=1)
    ids = [[5, 6, 7], [8, 9, 10]]
    np.testing.assert_allclose(model(ids).logits.numpy(), model(np.array(ids)).logits.numpy(), rtol=1e-6)


def test_ids_out_of_the_table_raise_tensorflows_invalid_argument_error():
    # v4 4.57.6 TF raises tf.errors.InvalidArgumentError ("The maximum value of input_ids (700) must be
    # smaller than the embedding layer's input dimension (99)"); ours is also the shared ValueError.
    config = tiny_config()
    model, _ = build("model", config)
    bad = np.full((1, 3), config.vocab_size + 5, np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids"):
        model(bad)
    with pytest.raises(ValueError, match="input_ids"):
        model(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids"):
        tf.function(model)(tf.constant(bad))  # the graph's assertion: the same type


@pytest.mark.parametrize("head", LOSS_HEADS)
def test_fit_with_labels_in_the_dict_reports_the_metrics_of_labels_given_as_y(head):
    # v4's test_keras_fit: compiled with a metric, fit on a dict holding the labels, then on
    # (inputs, {label columns}); both give the same validation loss and the same history keys,
    # the accuracy among them.
    config = tiny_config(is_decoder=head == "causal_lm")
    model, _ = build(head, config, seed=2)
    x = {k: tf.constant(v) for k, v in _batch(config, head).items()}
    label_names = [k for k in x if k in ("labels", "start_positions", "end_positions")]
    labels = {k: x[k] for k in label_names}
    features = {k: v for k, v in x.items() if k not in label_names}
    weight = tf.fill([B], 0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.0), metrics=[keras.metrics.SparseCategoricalAccuracy()],
                  run_eagerly=True)
    first = model.fit(x, validation_data=x, sample_weight=weight, steps_per_epoch=1, validation_steps=1,
                      shuffle=False, verbose=0).history
    second = model.fit(features, labels, validation_data=(features, labels), sample_weight=weight,
                       steps_per_epoch=1, validation_steps=1, shuffle=False, verbose=0).history
    assert first.keys() == second.keys()
    assert any(k.endswith("accuracy") for k in first) and any(k.startswith("val_") and k.endswith("accuracy")
                                                                for k in first)
    assert not math.isnan(first["val_loss"][0])
    np.testing.assert_allclose(first["val_loss"][0], second["val_loss"][0], rtol=1e-5)
    for key in first:
        np.testing.assert_allclose(first[key][0], second[key][0], rtol=1e-5, err_msg=key)


def test_fit_accuracy_of_question_answering_is_measured_on_both_positions():
    # metrics=["accuracy"]-style flat list on QA's two outputs: the mean over start and end rows
    # (v4's Keras 2 measured each output apart; their mean is this value).
    config = tiny_config()
    model, _ = build("question_answering", config, seed=3)
    x = {k: tf.constant(v) for k, v in _batch(config, "question_answering").items()}
    out = model(x)
    hits = np.concatenate([
        np.argmax(out.start_logits.numpy(), -1) == x["start_positions"].numpy(),
        np.argmax(out.end_logits.numpy(), -1) == x["end_positions"].numpy(),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.0), metrics=[keras.metrics.SparseCategoricalAccuracy()],
                  run_eagerly=True)
    result = model.evaluate(x, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["sparse_categorical_accuracy"], hits.mean(), rtol=1e-6)


def test_generate_without_a_prompt_starts_from_bos():
    # v4 4.57.6 TF: generate(max_length=5) with no input ids gives one row of 5 ids starting with
    # bos_token_id (0), the tokens generate([[0]]) gives; no bos_token_id: a ValueError.
    config = tiny_config(is_decoder=True)
    model, _ = build("causal_lm", config, seed=4)
    out = model.generate(do_sample=False, max_length=5).numpy()
    assert out.shape == (1, 5) and out[0, 0] == config.bos_token_id
    np.testing.assert_array_equal(out, model.generate(np.array([[config.bos_token_id]]), do_sample=False,
                                                      max_length=5).numpy())
    model.generation_config.bos_token_id = None
    model.config.bos_token_id = None
    with pytest.raises(ValueError, match="bos_token_id"):
        model.generate(max_length=5)


def _last_logits(model, ids):
    """The last position's logits of a full forward (no cache, no generate loop)."""
    return model(tf.constant(ids), attention_mask=tf.ones_like(tf.constant(ids))).logits[:, -1].numpy()


def test_bad_words_ids_ban_a_token_and_a_token_after_its_prefix():
    # v4's NoBadWordsLogitsProcessor (test_lm_head_model_random_no_beam_search_generate): a one-token
    # word is never generated; a longer word's last token is banned right after the rest.
    config = tiny_config(is_decoder=True, eos_token_id=None)
    model, _ = build("causal_lm", config, seed=5)
    prompt = np.array([[0, 7, 9, 11]])
    first = int(np.argmax(_last_logits(model, prompt)[0]))
    out = model.generate(prompt, do_sample=False, max_new_tokens=1, bad_words_ids=[[first]],
                         return_dict_in_generate=True, output_scores=True)
    want = _last_logits(model, prompt)[0]
    want[first] = -np.inf
    assert int(out.sequences[0, -1]) == int(np.argmax(want))
    assert np.isneginf(out.scores[0][0, first])
    # the prefix [11] ends the prompt: its last token `first` is banned; a prefix absent bans nothing
    banned = model.generate(prompt, do_sample=False, max_new_tokens=1, bad_words_ids=[[11, first]]).numpy()
    assert banned[0, -1] == int(np.argmax(want))
    free = model.generate(prompt, do_sample=False, max_new_tokens=1, bad_words_ids=[[12, first]]).numpy()
    assert free[0, -1] == first
    # sampled, and compiled
    sampled = model.generate(prompt, do_sample=True, max_new_tokens=6, seed=[1, 2], bad_words_ids=[[first]]).numpy()
    assert first not in sampled[0, prompt.shape[1]:].tolist()
    kw = dict(do_sample=False, max_new_tokens=6, bad_words_ids=[[first], [3, 4]])
    eager = model.generate(prompt, **kw).numpy()
    assert first not in eager[0, prompt.shape[1]:].tolist()
    np.testing.assert_array_equal(tf.function(model.generate, jit_compile=True)(tf.constant(prompt), **kw).numpy(),
                                  eager)
    with pytest.raises(ValueError, match="bad_words_ids"):
        model.generate(prompt, bad_words_ids=[[config.vocab_size]])


def test_no_eos_token_generates_to_max_length():
    # v4's _test_xla_generate sets config.eos_token_id = None: generation runs to max_new_tokens.
    config = tiny_config(is_decoder=True, eos_token_id=None)
    model, _ = build("causal_lm", config, seed=6)
    prompt = tf.constant([[0, 5, 6], [0, 8, 9]])
    eager = model.generate(prompt, do_sample=False, max_new_tokens=3).numpy()
    assert eager.shape == (2, 6)
    np.testing.assert_array_equal(
        tf.function(model.generate, jit_compile=True)(prompt, do_sample=False, max_new_tokens=3).numpy(), eager)


def test_sampling_compiles_with_xla():
    # v4's XLA generate tests compile generate(); sampling with v4 TF's seed pair compiles too (XLA's
    # sampler takes int32 seeds; it draws with XLA's own generator, so not the eager tokens).
    config = tiny_config(is_decoder=True, eos_token_id=None)
    model, _ = build("causal_lm", config, seed=7)
    prompt = tf.constant([[0, 5, 6], [0, 8, 9]])
    kw = dict(do_sample=True, max_new_tokens=4, seed=[3, 4])
    out = tf.function(model.generate, jit_compile=True)(prompt, **kw).numpy()
    assert out.shape == (2, 7)
    np.testing.assert_array_equal(out[:, :3], prompt.numpy())
    assert ((out >= 0) & (out < config.vocab_size)).all()
