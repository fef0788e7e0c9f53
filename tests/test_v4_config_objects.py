"""Code written for v4 builds a model from a `transformers` config object
(`RobertaForMaskedLM(transformers.RobertaConfig(...))`): every backend's constructor takes
one (any object with `to_dict()`), converted to this library's RobertaConfig; our own config
is kept as the very object passed (v4: `model.config is config`)."""

from __future__ import annotations

import numpy as np
import pytest

from roberta_core.config import RobertaConfig, model_config

FIELDS = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=37, max_position_embeddings=64, num_labels=3,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


class V4StyleConfig:
    """What a `transformers.RobertaConfig` offers a constructor: attributes, `to_dict()` with
    v4's bookkeeping keys, and `_attn_implementation` kept out of the dict."""

    def __init__(self, **fields):
        self.fields = {"model_type": "roberta", "transformers_version": "4.57.6",
                       "architectures": ["RobertaForMaskedLM"], **fields}
        self._attn_implementation = "eager"

    def to_dict(self):
        return dict(self.fields)


def test_model_config_converts_a_v4_style_object_and_keeps_ours():
    ours = RobertaConfig(**FIELDS)
    assert model_config(ours) is ours
    converted = model_config(V4StyleConfig(**FIELDS))
    assert isinstance(converted, RobertaConfig)
    assert {k: getattr(converted, k) for k in FIELDS} == FIELDS
    assert converted._attn_implementation == "eager"
    with pytest.raises(TypeError, match="transformers config"):
        model_config({"vocab_size": 99})
    with pytest.raises(TypeError, match="transformers config"):
        model_config(RobertaConfig)  # the class, not a config


def _logits_width(backend: str, config) -> int:
    ids = np.array([[0, 5, 6, 7, 2]], dtype=np.int64)
    if backend == "pt":
        import roberta_pt
        import torch
        model = roberta_pt.RobertaForSequenceClassification(config)
        return int(model(torch.from_numpy(ids)).logits.shape[-1]), model.config
    if backend == "tf":
        import roberta_tf
        model = roberta_tf.TFRobertaForSequenceClassification(config)
        return int(model(ids).logits.shape[-1]), model.config
    import roberta_flax
    model = roberta_flax.FlaxRobertaForSequenceClassification(config)
    return int(model(ids).logits.shape[-1]), model.config


@pytest.mark.parametrize("backend,module", [("pt", "torch"), ("tf", "tensorflow"), ("flax", "flax")])
def test_every_backend_builds_from_a_v4_style_config(backend, module):
    pytest.importorskip(module)
    width, kept = _logits_width(backend, V4StyleConfig(**FIELDS))
    assert width == FIELDS["num_labels"]
    assert isinstance(kept, RobertaConfig) and kept.vocab_size == FIELDS["vocab_size"]
    ours = RobertaConfig(**FIELDS)
    assert _logits_width(backend, ours)[1] is ours
