"""TensorFlow and Keras machinery: tf.function and XLA give the eager numbers, gradient
checkpointing gives the plain gradients, `fit` trains with the head's loss from a tf.data
pipeline, and an exported SavedModel gives the same logits for any batch and length."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from roberta_core import reference
from roberta_core.outputs import SequenceClassifierOutput
from tests.helpers import assert_close, padded_batch, tiny_config

from .common import CLASSES, build, inputs_for


def test_tf_function_and_xla_give_the_eager_numbers():
    config = tiny_config(is_decoder=True, position_embedding_type="relative_key")
    model, _ = build("causal_lm", config, seed=1)
    inputs = inputs_for(config, "causal_lm")
    eager = model(**inputs)

    def call(input_ids, attention_mask, labels):
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

    graph = tf.function(call)(**inputs)
    xla = tf.function(call, jit_compile=True)(**inputs)
    for got in (graph, xla):  # the output class passes through tf.function as itself
        assert type(got) is type(eager) and list(got) == list(eager) == ["loss", "logits"]
        assert_close(got.logits, eager.logits, what="logits")
        assert_close(got.loss, eager.loss, what="loss")


def test_gradient_checkpointing_gives_the_plain_gradients_with_dropout_on():
    config = tiny_config(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)
    model, _ = build("masked_lm", config, seed=2)
    inputs = inputs_for(config, "masked_lm")
    seeds = [d.seed_generator for d in model._flatten_layers() if isinstance(d, keras.layers.Dropout) and d.rate > 0]
    start = [s.state.numpy() for s in seeds]

    def loss_and_gradients():
        for seed, value in zip(seeds, start):  # the same dropout masks for both runs
            seed.state.assign(value)
        with tf.GradientTape() as tape:
            loss = model(**inputs, training=True).loss
        return float(loss), tape.gradient(loss, model.trainable_weights)

    loss, plain = loss_and_gradients()
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    checkpointed_loss, checkpointed = loss_and_gradients()
    model.gradient_checkpointing_disable()
    assert checkpointed_loss == loss
    eval_loss = float(model(**inputs).loss)
    assert eval_loss != loss  # dropout was on: the masks the rerun replays matter
    for p, c, w in zip(plain, checkpointed, model.trainable_weights):
        assert_close(tf.convert_to_tensor(c), tf.convert_to_tensor(p), atol=1e-6, what=w.path)


def test_fit_for_one_epoch_lowers_the_loss_with_the_heads_own_loss():
    config = tiny_config(num_labels=2)
    keras.utils.set_random_seed(0)
    model = CLASSES["token_classification"](config)
    rng = np.random.default_rng(0)
    ids = rng.integers(4, config.vocab_size, size=(128, 8))
    ids[:, 0] = config.bos_token_id
    labels = np.where(ids == config.bos_token_id, -100, ids % 2)  # learnable from the token alone
    data = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": labels}).batch(16)
    before = float(model(input_ids=ids, labels=labels).loss)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    after = float(model(input_ids=ids, labels=labels).loss)
    assert np.isfinite(history.history["loss"][0])
    assert after < 0.85 * before


def test_evaluate_and_predict_with_labels_as_y():
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config, seed=3)
    ids, mask = padded_batch(config, lengths=(7, 5, 2, 6))
    labels = np.array([0, 2, 1, 2])
    data = tf.data.Dataset.from_tensor_slices(({"input_ids": ids, "attention_mask": mask}, labels)).batch(2)
    ref = reference.forward(config, state, "sequence_classification", input_ids=ids, attention_mask=mask, labels=labels)
    # No loss given to compile: the head's own loss against y.
    model.compile()
    assert_close(model.evaluate(data, verbose=0), ref["loss"], what="head loss from y")
    # A Keras loss and metric: they see the logits.
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    result = model.evaluate(data, verbose=0, return_dict=True)
    assert_close(result["loss"], ref["loss"], what="compiled loss")
    assert result["accuracy"] == np.mean(ref["logits"].argmax(-1) == labels)
    predicted = model.predict(data, verbose=0)
    assert isinstance(predicted, SequenceClassifierOutput)
    assert_close(predicted.logits, ref["logits"], what="predict")


def test_a_dict_of_inputs_equals_keyword_arguments():
    config = tiny_config()
    model, _ = build("question_answering", config)
    inputs = inputs_for(config, "question_answering")
    by_dict, by_kwargs = model(dict(inputs)), model(**inputs)
    for name in ("loss", "start_logits", "end_logits"):
        np.testing.assert_array_equal(by_dict[name], by_kwargs[name])


@pytest.mark.parametrize("head", ["sequence_classification", "multiple_choice", "causal_lm"])
def test_saved_model_serves_any_batch_and_length(tmp_path, head):
    config = tiny_config(is_decoder=head == "causal_lm")  # a decoder's cache is no signature output
    model, _ = build(head, config, seed=4)
    target = model.export_saved_model(tmp_path / "served")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]  # nothing left beside it
    serve = tf.saved_model.load(str(target)).signatures["serving_default"]
    for lengths in ((7, 5, 2), (3, 9, 4, 1)):
        inputs = inputs_for(config, head, lengths=lengths, labels=False)
        inputs["token_type_ids"] = np.zeros_like(inputs["input_ids"])
        served = serve(**{k: tf.constant(v, tf.int32) for k, v in inputs.items()})
        assert_close(served["logits"], model(**inputs).logits, what=f"served {lengths}")
    if head == "sequence_classification":
        bad = {k: tf.constant(v, tf.int32) for k, v in inputs.items()}
        bad["input_ids"] = tf.tensor_scatter_nd_update(bad["input_ids"], [[0, 1]], [config.vocab_size])
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_ids must be in 0\.\.99"):
            serve(**bad)
        bad["input_ids"] = tf.constant(inputs["input_ids"], tf.int32)
        bad["attention_mask"] = bad["attention_mask"][:, :3]
        with pytest.raises(tf.errors.InvalidArgumentError, match="attention_mask must have shape"):
            serve(**bad)
