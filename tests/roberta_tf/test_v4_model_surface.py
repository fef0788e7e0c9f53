"""v4 TF's model surface around the call (transformers 4.57.6's TFPreTrainedModel): `from_config`
with a config, a config dict or Keras' own dict; `model.serving`, the `tf.function` of one dict of
inputs; the `framework` and `config_class` class attributes; `dummy_inputs`. Expected values are
v4's behaviour, recorded from transformers 4.57.6 (noted where literal) or our own plain call."""

from __future__ import annotations

import numpy as np
import keras
import pytest
import tensorflow as tf

import roberta_tf
from roberta_core import RobertaConfig
from tests.helpers import assert_close, padded_batch, tiny_config
from tests.roberta_tf.common import CLASSES, build


def test_framework_and_config_class():
    # v4 4.57.6: TFRobertaForSequenceClassification(...).framework == "tf", config_class RobertaConfig
    for cls in CLASSES.values():
        assert cls.framework == "tf"
        assert cls.config_class is RobertaConfig


def test_from_config_with_a_config():
    # v4 4.57.6: M.from_config(config) builds M(config); keywords go to the model (name="xx" -> model.name)
    config = tiny_config(num_labels=4)
    model = roberta_tf.TFRobertaForSequenceClassification.from_config(config)
    assert type(model) is roberta_tf.TFRobertaForSequenceClassification
    assert model.config.num_labels == 4
    assert roberta_tf.TFRobertaForSequenceClassification.from_config(config, name="xx").name == "xx"


def test_from_config_with_a_v4_style_config_object():
    # as from_pretrained(config=...): any object with to_dict() (a transformers RobertaConfig)
    class Foreign:
        def to_dict(self):
            return tiny_config(num_labels=6).to_dict()

    model = roberta_tf.TFRobertaForSequenceClassification.from_config(Foreign())
    assert model.config.num_labels == 6


def test_from_config_with_a_dict_and_overrides():
    # v4 4.57.6: M.from_config(config.to_dict(), num_labels=5).config.num_labels == 5 (keywords -> config)
    config = tiny_config(num_labels=3)
    model = roberta_tf.TFRobertaForSequenceClassification.from_config(config.to_dict(), num_labels=5)
    assert model.config.num_labels == 5
    assert model.config.hidden_size == config.hidden_size


def test_from_config_keeps_keras_deserialisation():
    model, _ = build("sequence_classification", tiny_config(num_labels=3))
    clone = type(model).from_config(model.get_config())
    assert clone.config.to_dict() == model.config.to_dict() and clone.name == model.name
    copy = keras.models.clone_model(model)
    assert copy.config.num_labels == 3


@pytest.mark.parametrize("head", ["sequence_classification", "question_answering", "model", "multiple_choice"])
def test_serving_is_the_call_on_a_dict(head):
    config = tiny_config(num_labels=2 if head == "question_answering" else 3)
    model, _ = build(head, config)
    ids, mask = padded_batch(config)
    if head == "multiple_choice":
        ids, mask = np.stack([ids, ids[::-1]], 1), np.stack([mask, mask[::-1]], 1)
    inputs = {"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask), "token_type_ids": tf.zeros_like(ids)}
    served = model.serving(inputs)
    plain = model(ids, attention_mask=mask)
    # v4 4.57.6 serving keys: ['logits'] (classifiers), ['start_logits', 'end_logits'] (QA),
    # ['last_hidden_state', 'pooler_output'] (bare model)
    assert list(served.keys()) == list(plain.keys())
    for key in served:
        assert_close(served[key].numpy(), plain[key].numpy(), atol=1e-5, what=key)
    # v4 4.57.6: int64 inputs and no token_type_ids trace another signature, same keys
    again = model.serving({"input_ids": tf.constant(ids, tf.int64), "attention_mask": tf.constant(mask, tf.int64)})
    assert list(again.keys()) == list(plain.keys())


def test_serving_concrete_function_of_the_input_signature():
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    concrete = model.serving.get_concrete_function(model.input_signature)
    assert list(concrete.structured_outputs.keys()) == ["logits"]  # v4 4.57.6: odict_keys(['logits'])
    spec = concrete.structured_input_signature[0][0]
    assert {k: (v.dtype, tuple(v.shape)) for k, v in spec.items()} == {
        name: (tf.int32, (None, None)) for name in ("input_ids", "attention_mask", "token_type_ids")
    }


def test_serving_causal_lm_stacks_the_cache():
    config = tiny_config(is_decoder=True)
    model, _ = build("causal_lm", config)
    ids, mask = padded_batch(config)
    served = model.serving({"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask)})
    # v4 4.57.6: {'logits': (2, 7, 100), 'past_key_values': (2, 2, 2, 4, 7, 8)} for 2 layers, B=2, 4 heads
    assert list(served.keys()) == ["logits", "past_key_values"]
    B, T = ids.shape
    heads = config.num_attention_heads
    assert tuple(served["past_key_values"].shape) == (
        config.num_hidden_layers, 2, B, heads, T, config.hidden_size // heads)
    assert_close(served["logits"].numpy(), model(ids, attention_mask=mask).logits.numpy(), atol=1e-5)


def test_dummy_inputs():
    # v4 4.57.6: ones (1, 2) int32 for input_ids and attention_mask, token_type_ids zeros;
    # (1, 2, 2) for multiple choice; with add_cross_attention also encoder_hidden_states ones (1, 2, H)
    model, _ = build("sequence_classification", tiny_config(num_labels=3))
    dummies = model.dummy_inputs
    assert list(dummies) == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(v.dtype == tf.int32 and tuple(v.shape) == (1, 2) for v in dummies.values())
    assert dummies["token_type_ids"].numpy().sum() == 0 and dummies["input_ids"].numpy().sum() == 2
    choice, _ = build("multiple_choice", tiny_config(num_labels=3))
    assert tuple(choice.dummy_inputs["input_ids"].shape) == (1, 2, 2)
    config = tiny_config(is_decoder=True, add_cross_attention=True)
    decoder = roberta_tf.TFRobertaModel(config)
    dummies = decoder.dummy_inputs
    assert tuple(dummies["encoder_hidden_states"].shape) == (1, 2, config.hidden_size)
    decoder(dummies)  # builds, as v4's `model(model.dummy_inputs)`
