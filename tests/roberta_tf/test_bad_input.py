"""Bad input is a clear error naming the problem and the allowed range: a ValueError/TypeError
eagerly (the message alone, not Keras' wrapping), the same error at trace time inside
`tf.function` for shapes, and a failed graph assertion with the same words for values."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, padded_batch, tiny_config

from .common import build


@pytest.fixture(scope="module")
def config():
    return tiny_config(num_labels=3)


@pytest.fixture(scope="module")
def mlm(config):
    return build("masked_lm", config)[0]


@pytest.fixture(scope="module")
def batch(config):
    return padded_batch(config)


def bad_ids(ids, value):
    ids = ids.copy()
    ids[1, 2] = value
    return ids


CASES = [
    ("id too large", lambda ids, mask: dict(input_ids=bad_ids(ids, 100)), ValueError,
     r"^input_ids must be in 0\.\.99; got values from 0 to 100$"),
    ("negative id", lambda ids, mask: dict(input_ids=bad_ids(ids, -1)), ValueError,
     r"input_ids must be in 0\.\.99; got values from -1"),
    ("float ids", lambda ids, mask: dict(input_ids=ids.astype(np.float32)), TypeError,
     "input_ids must be an integer tensor"),
    ("token type", lambda ids, mask: dict(input_ids=ids, token_type_ids=np.ones_like(ids)), ValueError,
     r"token_type_ids must be in 0\.\.0"),
    ("position id", lambda ids, mask: dict(input_ids=ids, position_ids=ids * 0 + 66), ValueError,
     r"position_ids must be in 0\.\.65"),
    ("too long", lambda ids, mask: dict(input_ids=np.zeros((1, 65), np.int64)), ValueError,
     "sequence length 65 exceeds the 64 tokens"),
    ("mask shape", lambda ids, mask: dict(input_ids=ids, attention_mask=mask[:, :4]), ValueError,
     r"attention_mask must have shape \(3, 7\)"),
    ("token type shape", lambda ids, mask: dict(input_ids=ids, token_type_ids=ids[:2]), ValueError,
     r"token_type_ids must have shape \(3, 7\)"),
    ("ids and embeds", lambda ids, mask: dict(input_ids=ids, inputs_embeds=np.zeros((3, 7, 32), np.float32)),
     ValueError, "give input_ids or inputs_embeds, not both"),
    ("neither", lambda ids, mask: dict(attention_mask=mask), ValueError, "give input_ids .* or inputs_embeds"),
    ("embeds width", lambda ids, mask: dict(inputs_embeds=np.zeros((3, 7, 31), np.float32)), ValueError,
     "hidden_size=32"),
    ("head mask", lambda ids, mask: dict(input_ids=ids, head_mask=np.ones(3, np.float32)), ValueError,
     r"head_mask must have shape \(4,\) or \(2, 4\)"),
    ("no cross-attention",
     lambda ids, mask: dict(input_ids=ids, encoder_hidden_states=np.zeros((3, 2, 32), np.float32)),
     ValueError, "no cross-attention"),
    ("label range", lambda ids, mask: dict(input_ids=ids, labels=bad_ids(np.where(mask == 1, ids, -100), 100)),
     ValueError, r"labels must be in 0\.\.99 \(or -100 to ignore a position\); got values from 0 to 100"),
    ("label shape", lambda ids, mask: dict(input_ids=ids, labels=ids[:, :3]), ValueError,
     r"labels must have shape \(3, 7\)"),
    ("float labels", lambda ids, mask: dict(input_ids=ids, labels=ids.astype(np.float32)), TypeError,
     "labels must be integer"),
]


@pytest.mark.parametrize("name, kwargs, error, message", CASES, ids=[case[0] for case in CASES])
def test_eager_errors_name_the_problem(mlm, batch, name, kwargs, error, message):
    with pytest.raises(error, match=message) as caught:
        mlm(**kwargs(*batch))
    assert "Exception encountered" not in str(caught.value)


def test_head_specific_errors(config, batch):
    ids, mask = batch
    classifier, _ = build("sequence_classification", config)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2 .*got values from 0 to 3"):
        classifier(input_ids=ids, labels=np.array([0, 3, 1]))
    with pytest.raises(ValueError, match=r"multi-label classification labels must have shape \(3, 3\)"):
        classifier(input_ids=ids, labels=np.array([0.0, 1.0, 1.0]))
    qa, _ = build("question_answering", tiny_config(num_labels=2))
    # as v4 (`if start_positions is not None and end_positions is not None`): one alone gives no loss
    alone = qa(input_ids=ids, start_positions=np.array([1, 2, 3]))
    assert alone.loss is None
    np.testing.assert_array_equal(alone.start_logits.numpy(), qa(input_ids=ids).start_logits.numpy())
    choice, _ = build("multiple_choice", config)
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, choices, length\)"):
        choice(input_ids=ids)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2 .*got values from 0 to 3"):
        choice(input_ids=np.stack([ids, ids]), labels=np.array([0, 3]))
    decoder, _ = build("causal_lm", tiny_config(is_decoder=True))
    past = decoder(input_ids=ids, use_cache=True).past_key_values
    with pytest.raises(ValueError, match=r"past_key_values must hold one entry per layer \(2\)"):
        decoder(input_ids=ids[:, :1], past_key_values=past[:1])
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(3, 8\) \(cached \+ new tokens\)"):
        decoder(input_ids=ids[:, :1], past_key_values=past, attention_mask=mask)


def test_inside_tf_function_values_fail_an_assertion_with_the_same_words(mlm, batch):
    ids, mask = batch
    labels = np.where(mask == 1, ids, -100)

    @tf.function
    def loss(input_ids, labels):
        return tf.reduce_mean(mlm(input_ids=input_ids, attention_mask=mask, labels=labels).loss)

    assert np.isfinite(float(loss(ids, labels)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_ids must be in 0\.\.99"):
        loss(bad_ids(ids, 100), labels)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must be in 0\.\.99 \(or -100"):
        loss(ids, bad_ids(labels, -7))
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(3, 5\)"):  # shapes: at trace time
        loss(ids[:, :5], labels[:, :5])


def test_importing_under_another_keras_backend_is_a_clear_error():
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-c", "import roberta_tf"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "ImportError: roberta_tf needs Keras' TensorFlow backend, but KERAS_BACKEND='jax'" in result.stderr


def test_a_bool_attention_mask_means_what_ones_and_zeros_mean(config, mlm, batch):
    # Issue 17: a bool mask was a raw TF error; v4 TF casts it (True = attend).
    ids, mask = batch
    want = mlm(input_ids=ids, attention_mask=mask).logits.numpy()
    np.testing.assert_array_equal(mlm(input_ids=ids, attention_mask=mask.astype(bool)).logits, want)
    np.testing.assert_array_equal(mlm(input_ids=ids, attention_mask=tf.constant(mask.astype(bool)), unpad=True).logits,
                                  mlm(input_ids=ids, attention_mask=mask, unpad=True).logits)
    decoder, _ = build("causal_lm", tiny_config(is_decoder=True))
    np.testing.assert_array_equal(
        decoder.generate(ids, attention_mask=mask.astype(bool), max_new_tokens=2),
        decoder.generate(ids, attention_mask=mask, max_new_tokens=2),
    )


def test_integer_inputs_embeds_name_the_input_and_the_allowed_dtypes(mlm, batch):
    ids, _ = batch
    with pytest.raises(TypeError, match=r"^inputs_embeds must be a floating tensor \(float16, bfloat16, float32 or "
                                        r"float64\), got int32; pass token ids as input_ids$"):
        mlm(inputs_embeds=np.zeros((3, 7, 32), np.int32))
    with pytest.raises(TypeError, match="attention_mask must be an integer, floating or bool tensor, got string"):
        mlm(input_ids=ids, attention_mask=tf.fill(ids.shape, "1"))


def test_check_inputs_is_the_checked_path_for_xla(mlm, batch):
    # Issue 17: XLA compiles the model's assertions away, so an out-of-range id under
    # jit_compile=True gives numbers, not an error; `check_inputs` is the documented check.
    ids, mask = batch
    compiled = tf.function(lambda i, m: mlm(input_ids=i, attention_mask=m).logits, jit_compile=True)
    np.testing.assert_allclose(compiled(ids, mask), mlm(input_ids=ids, attention_mask=mask).logits, atol=1e-5)
    mlm.check_inputs(input_ids=ids, token_type_ids=np.zeros_like(ids), position_ids=ids * 0 + 2)  # in range: silent
    with pytest.raises(ValueError, match=r"^input_ids must be in 0\.\.99; got values from 0 to 100$"):
        mlm.check_inputs(input_ids=bad_ids(ids, 100))
    with pytest.raises(ValueError, match=r"token_type_ids must be in 0\.\.0"):
        mlm.check_inputs(input_ids=ids, token_type_ids=np.ones_like(ids))
    with pytest.raises(ValueError, match=r"position_ids must be in 0\.\.65"):
        mlm.check_inputs(position_ids=ids * 0 + 66)
    with pytest.raises(TypeError, match="input_ids must be an integer tensor, got float32"):
        mlm.check_inputs(input_ids=ids.astype(np.float32))
