"""Checks ported from v4's own Flax test suite (tests/test_modeling_flax_common.py's
FlaxModelTesterMixin, v4.4x-4.57 era) where ours differed: `from_pretrained(..., input_shape=)`,
`from_pretrained(..., _do_init=False)`, and v4's `model.key` / `params_shape_tree` /
`required_params` (test_no_automatic_init, test_from_pretrained_with_no_automatic_init)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from flax.traverse_util import flatten_dict, unflatten_dict

from roberta_core import RobertaConfig
from tests.roberta_flax.common import CLASSES


def _config() -> RobertaConfig:
    # v4's FlaxRobertaModelTester values (tests/models/roberta/test_modeling_flax_roberta.py), 1 layer
    return RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=37, type_vocab_size=16, max_position_embeddings=64)


def _ids(head: str) -> np.ndarray:
    ids = np.array([[0, 5, 6, 7, 2]], dtype=np.int32)
    return ids[:, None] if head == "multiple_choice" else ids


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A MaskedLM checkpoint (seed 3) and the model that wrote it."""
    model = CLASSES["masked_lm"](_config(), seed=3)
    path = tmp_path_factory.mktemp("mlm")
    model.save_pretrained(path)
    return path, model


def test_from_pretrained_takes_input_shape(saved):
    # v4 Flax's from_pretrained passes input_shape to the constructor (it was a TypeError here).
    path, _ = saved
    model = CLASSES["masked_lm"].from_pretrained(path, input_shape=(1, 8))
    assert model.input_shape == (1, 8)
    assert CLASSES["masked_lm"].from_pretrained(path).input_shape == (1, 1)  # v4's default


def test_model_key_is_the_seed_key_that_init_weights_redraws():
    # v4: model.key is jax.random.PRNGKey(seed) (seed 0 by default)
    config = _config()
    model = CLASSES["masked_lm"](config, seed=3)
    assert np.array_equal(model.key, jax.random.PRNGKey(3))
    assert np.array_equal(CLASSES["model"](config).key, jax.random.PRNGKey(0))
    assert np.array_equal(CLASSES["model"](config, rngs=nnx.Rngs(5)).key, jax.random.PRNGKey(5))
    redrawn = model.init_weights(model.key, model.input_shape)
    for a, b in zip(jax.tree.leaves(redrawn), jax.tree.leaves(model.params)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("head", ["model", "causal_lm", "multiple_choice"])
def test_required_params_and_params_shape_tree_describe_params(head):
    # v4: required_params == set(flatten_dict(params_shape_tree)); shapes as model.params'
    config = _config()
    built = CLASSES[head](config, _do_init=False)
    full = CLASSES[head](config)
    flat = flatten_dict(full.params)
    assert built.required_params == set(flat) == full.required_params
    shapes = flatten_dict(built.params_shape_tree)
    assert set(shapes) == set(flat)
    for key, value in shapes.items():
        assert isinstance(value, jax.ShapeDtypeStruct)
        assert value.shape == flat[key].shape and value.dtype == flat[key].dtype


@pytest.mark.parametrize("head", ["model", "sequence_classification", "multiple_choice"])
def test_v4_no_automatic_init(head):
    # v4's test_no_automatic_init (less its params-setter refusal, a documented difference)
    model = CLASSES[head](_config(), _do_init=False)
    with pytest.raises(ValueError):
        model.params
    params = model.init_weights(model.key, model.input_shape)
    flat = flatten_dict(params)
    assert all(k in flat for k in model.required_params)
    for k, v in flatten_dict(model.params_shape_tree).items():
        assert v.shape == flat[k].shape
    model(_ids(head), params=params, output_hidden_states=True)


def test_v4_from_pretrained_with_no_automatic_init(saved, tmp_path):
    # v4's test_from_pretrained_with_no_automatic_init: (model, params); model.params raises
    path, original = saved
    model, params = CLASSES["masked_lm"].from_pretrained(path, _do_init=False)
    with pytest.raises(ValueError):
        model.params
    assert set(flatten_dict(params)) == model.required_params
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(original.params)):
        np.testing.assert_array_equal(a, b)
    ids = _ids("masked_lm")
    np.testing.assert_allclose(model(ids, params=params).logits, original(ids).logits, atol=1e-6)
    # a parameter left out of the file is filled by init_weights(model.key, ..., params=)
    flat = flatten_dict(params)
    dropped = ("lm_head", "dense", "bias")
    flat.pop(dropped)
    model.save_pretrained(tmp_path, params=unflatten_dict(flat))
    model, params = CLASSES["masked_lm"].from_pretrained(tmp_path, _do_init=False)
    filled = flatten_dict(model.init_weights(model.key, model.input_shape, params=params))
    assert set(filled) == model.required_params
    assert filled[dropped].shape == (32,)
    assert jnp.all(filled[dropped] == 0)  # v4 initialises a dense bias to zeros


# ---------------------------------------------------------------- generate: v4 Flax's logits processors
# v4's tests/generation/test_flax_utils.py (test_*_generate_logits_warper) set min_length,
# forced_bos_token_id and forced_eos_token_id; v4 Flax's generate applies them
# (FlaxMinLengthLogitsProcessor, FlaxForcedBOSTokenLogitsProcessor, FlaxForcedEOSTokenLogitsProcessor).
# The expected tokens are plain properties of those processors against an unconstrained greedy run.


@pytest.fixture(scope="module")
def decoder():
    config = RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                           intermediate_size=37, max_position_embeddings=64, is_decoder=True)
    return CLASSES["causal_lm"](config, seed=3)


PROMPT = np.array([[5, 6, 7], [8, 9, 10]], dtype=np.int32)


def test_forced_eos_is_the_last_token_and_nothing_else_changes(decoder):
    free = np.asarray(decoder.generate(PROMPT, max_length=8).sequences)
    forced = np.asarray(decoder.generate(PROMPT, max_length=8, forced_eos_token_id=9).sequences)
    assert forced.shape == (2, 8)
    assert (forced[:, -1] == 9).all()  # at cur_len == max_length - 1
    np.testing.assert_array_equal(forced[:, :-1], free[:, :-1])


def test_forced_bos_acts_only_on_a_one_token_prompt(decoder):
    free = np.asarray(decoder.generate(PROMPT, max_length=8).sequences)
    np.testing.assert_array_equal(decoder.generate(PROMPT, max_length=8, forced_bos_token_id=9).sequences, free)
    one = np.asarray(decoder.generate(PROMPT[:, :1], max_length=4, forced_bos_token_id=9).sequences)
    assert (one[:, 1] == 9).all()  # at cur_len == 1


def test_min_length_holds_back_eos(decoder):
    free = np.asarray(decoder.generate(PROMPT, max_length=10).sequences)
    eos = int(free[0, 4])  # row 0's second new token
    stopped = np.asarray(decoder.generate(PROMPT, max_length=10, eos_token_id=eos).sequences)
    assert stopped.shape[1] <= 5 and stopped[0, 4] == eos  # ends at that eos without min_length
    held = np.asarray(decoder.generate(PROMPT, max_length=10, eos_token_id=eos, min_length=7).sequences)
    assert not (held[:, 3:7] == eos).any()  # cur_len 3..6 < min_length: eos banned
    np.testing.assert_array_equal(held[1, :4], free[1, :4])
    with pytest.raises(ValueError, match="Unfeasable length constraints"):  # v4's check
        decoder.generate(PROMPT, max_length=8, min_length=9)


def test_processors_from_a_generation_config_and_under_jit(decoder):
    # the settings as v4's tests give them (there through the model config's legacy fields)
    from roberta_core.generation import GenerationConfig

    settings = GenerationConfig(forced_eos_token_id=9, min_length=1, forced_bos_token_id=8, max_length=8)
    out = decoder.generate(PROMPT, generation_config=settings).sequences
    assert (np.asarray(out)[:, -1] == 9).all()
    jitted = jax.jit(lambda ids: decoder.generate(ids, generation_config=settings))(PROMPT).sequences
    np.testing.assert_array_equal(out, jitted)  # v4: jit(model.generate) gives the same tokens
    sampled = decoder.generate(PROMPT, generation_config=settings, do_sample=True, temperature=0.8, top_k=10,
                               top_p=0.3).sequences
    assert (np.asarray(sampled)[:, -1] == 9).all()
