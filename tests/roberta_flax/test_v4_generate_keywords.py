"""generate()'s v4 Flax keywords, and v4 Flax's hand-written decoding loop: `init_cache(B, max_length)`,
`prepare_inputs_for_generation(ids, max_length, attention_mask)`, calls that take and return the
cache. Checked by independent replays (a full forward without a cache; our generate)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import tiny_config
from tests.roberta_flax.common import build

IDS = np.array([[5, 9, 14, 3, 22, 7], [1, 1, 30, 11, 4, 19]])
MASK = np.array([[1] * 6, [0, 0, 1, 1, 1, 1]])


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build("causal_lm", tiny_config(is_decoder=True))[0]


def test_init_cache_has_v4s_tree(model):
    cache = model.init_cache(2, 10)
    shapes = jax.tree_util.tree_map(lambda a: a.shape, cache)["roberta"]["encoder"]["layer"]
    config = model.config
    assert sorted(shapes) == [str(i) for i in range(config.num_hidden_layers)]
    head = (2, 10, config.num_attention_heads, config.hidden_size // config.num_attention_heads)
    assert shapes["0"] == {"attention": {"self": {"cache_index": (), "cached_key": head, "cached_value": head}}}


def test_hand_written_loop_as_v4(model):
    steps, max_length = 3, 9
    inputs = model.prepare_inputs_for_generation(jnp.asarray(IDS), max_length=max_length, attention_mask=jnp.asarray(MASK))
    assert sorted(inputs) == ["attention_mask", "past_key_values", "position_ids"]
    assert inputs["attention_mask"].shape == (2, max_length)
    assert np.asarray(inputs["position_ids"])[0].tolist() == list(range(6))
    out = model(jnp.asarray(IDS), **inputs)
    ids, positions, tokens = jnp.asarray(IDS), inputs["position_ids"], []
    for _ in range(steps):
        token = out.logits[:, -1].argmax(-1)[:, None]
        tokens.append(token)
        positions = positions[:, -1:] + 1
        out = model(token, attention_mask=inputs["attention_mask"], position_ids=positions,
                    past_key_values=out.past_key_values)
    index = out.past_key_values["roberta"]["encoder"]["layer"]["0"]["attention"]["self"]["cache_index"]
    assert int(index) == 6 + steps
    # replay: our generate (v4 Flax's positions) makes the same tokens
    made = np.asarray(model.generate(IDS, attention_mask=MASK, max_new_tokens=steps, eos_token_id=[]).sequences)[:, 6:]
    assert np.concatenate([np.asarray(t) for t in tokens], axis=1).tolist() == made.tolist()
    # replay: a full forward without a cache gives the last step's logits
    seq = jnp.concatenate([ids] + tokens, axis=1)
    full_mask = jnp.concatenate([jnp.asarray(MASK), jnp.ones((2, steps), jnp.int32)], axis=1)
    full_pos = jnp.where(full_mask != 0, jnp.cumsum(full_mask, axis=1) - 1, 1)
    full = model(seq, attention_mask=full_mask, position_ids=full_pos)
    np.testing.assert_allclose(np.asarray(out.logits[:, -1]), np.asarray(full.logits[:, -1]), atol=1e-4)


def test_v4_keywords(model):
    plain = np.asarray(model.generate(IDS, attention_mask=MASK, max_new_tokens=4).sequences)
    same = model.generate(IDS, attention_mask=MASK, max_new_tokens=4, use_cache=False, early_stopping=True,
                          trace=True, num_return_sequences=1, output_hidden_states=False, logits_processor=None)
    assert np.array_equal(np.asarray(same.sequences), plain)
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(IDS, num_return_sequences=2, max_new_tokens=2)  # greedy: v4's ValueError
    with pytest.raises(NotImplementedError, match="no_repeat_ngram_size"):
        model.generate(IDS, no_repeat_ngram_size=2, max_new_tokens=2)
    with pytest.raises(TypeError, match="foo"):
        model.generate(IDS, foo=1)


def test_question_answering_has_num_labels():
    assert build("question_answering", tiny_config())[0].num_labels == 2
