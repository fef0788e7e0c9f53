"""v4 Flax's generate and saving API (transformers 4.57.6, modeling_flax_roberta.py and
generation/flax_utils.py): `generate()` returns an output with `.sequences`, positions as v4 Flax's
`prepare_inputs_for_generation` (`attention_mask.cumsum(-1) - 1`), `prng_key=` with v4's key
discipline, `params=`; `save_pretrained(params=tree)`; `can_generate()`; `from_pretrained(config=<v4
config>)`; `output_attentions` / `head_mask` calls are silent as v4's.

Expected values come from the float64 reference (`roberta_core.reference`) or from manual loops
written after v4's code, never from the generate under test."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import roberta_flax as rf
from roberta_core.reference import forward as reference
from tests.helpers import assert_close, multiple_choice_case, padded_batch, tiny_config

from .common import build


def v4_flax_positions(mask: np.ndarray) -> np.ndarray:
    """v4 Flax's generation positions: attention_mask.cumsum(-1) - 1 (padding gets -1 there; it is
    masked out, so any valid row serves: 1 here, as v4's PyTorch generate puts it)."""
    return np.where(mask != 0, np.cumsum(mask, axis=-1) - 1, 1)


def manual_v4_greedy(config, state, ids, mask, steps):
    """v4 Flax's greedy choice by full float64 forwards: the sequence grows after the prompt as
    given (padding stays where it is), the mask by ones, positions by `v4_flax_positions`."""
    ids, mask = np.asarray(ids), np.asarray(mask)
    for _ in range(steps):
        logits = reference(
            config, state, "causal_lm", input_ids=ids, attention_mask=mask, position_ids=v4_flax_positions(mask)
        )["logits"]
        ids = np.concatenate([ids, logits[:, -1].argmax(-1)[:, None]], axis=1)
        mask = np.concatenate([mask, np.ones_like(mask[:, :1])], axis=1)
    return ids


@pytest.fixture(scope="module")
def decoder():
    config = tiny_config(is_decoder=True)
    model, state = build("causal_lm", config, seed=7)
    return model, state


def test_generate_returns_sequences_and_chooses_as_v4_flax_positions(decoder):
    model, state = decoder
    config = model.config
    ids, mask = padded_batch(config, lengths=(5, 3, 2), seed=3)
    # Left padding, as v4 batches prompts for generation.
    left_ids, left_mask = np.full_like(ids, config.pad_token_id), np.zeros_like(mask)
    for b in range(ids.shape[0]):
        n = mask[b].sum()
        left_ids[b, 5 - n:], left_mask[b, 5 - n:] = ids[b, :n], 1
    out = model.generate(left_ids, attention_mask=left_mask, max_new_tokens=5, eos_token_id=[])
    assert set(out.keys()) == {"sequences"}
    want = manual_v4_greedy(config, state, left_ids, left_mask, 5)
    assert np.asarray(out.sequences).tolist() == want.tolist()
    # Right padding: v4 would continue from the padding's logits; each row continues its own last
    # token here (the prompts are right-aligned first), so the new tokens are the left-padded ones.
    right = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=[]).sequences
    assert np.array_equal(right[:, :5], ids) and np.asarray(right[:, 5:]).tolist() == want[:, 5:].tolist()
    # The positions matter: RoBERTa's own (padding_idx + 1 onwards) give other logits.
    v4 = reference(config, state, "causal_lm", input_ids=ids[:1, :5], position_ids=np.arange(5)[None])["logits"]
    own = reference(config, state, "causal_lm", input_ids=ids[:1, :5])["logits"]
    assert not np.allclose(v4[0, -1], own[0, -1], atol=1e-3)


def test_generate_under_jit_returns_the_output_with_every_column(decoder):
    model, state = decoder
    prompt = np.array([[0, 5, 6, 7]], np.int32)
    run = jax.jit(lambda x: model.generate(x, max_new_tokens=3, eos_token_id=[]).sequences)
    got = np.asarray(run(prompt))
    assert got.tolist() == manual_v4_greedy(model.config, state, prompt, np.ones_like(prompt), 3).tolist()
    whole = jax.jit(lambda x: model.generate(x, max_new_tokens=3, eos_token_id=[]))(prompt)  # a pytree
    assert np.array_equal(whole.sequences, got)


def test_prng_key_samples_as_v4_flax_sample_loop(decoder):
    """v4's `_sample`: each step splits the key, draws `categorical` with the first half, carries
    the second (flax_utils.py sample_search_body_fn); the first step runs on the whole prompt."""
    model, state = decoder
    config = model.config
    prompt = np.array([[0, 9, 17, 23], [0, 40, 41, 5]], np.int32)
    key = jax.random.PRNGKey(42)
    got = model.generate(prompt, do_sample=True, max_new_tokens=4, eos_token_id=[], prng_key=key).sequences
    ids, want_key = prompt, key
    for _ in range(4):
        logits = model(ids, position_ids=np.broadcast_to(np.arange(ids.shape[1]), ids.shape)).logits[:, -1]
        kth = jax.lax.top_k(logits, 50)[0][:, -1:]  # v4's default top_k=50 warper: the rest at -inf
        logits = jnp.where(logits < kth, -jnp.inf, logits)
        draw, want_key = jax.random.split(want_key)
        token = jax.random.categorical(draw, logits, axis=-1)
        ids = np.concatenate([ids, np.asarray(token)[:, None]], axis=1)
    assert np.asarray(got).tolist() == ids.tolist()
    other = model.generate(prompt, do_sample=True, max_new_tokens=4, eos_token_id=[], prng_key=jax.random.PRNGKey(1))
    assert not np.array_equal(other.sequences, got)
    with pytest.raises(TypeError, match="prng_key"):
        model.generate(prompt, do_sample=True, max_new_tokens=2, prng_key=key, seed=3)
    with pytest.raises(NotImplementedError, match="num_beams"):
        model.generate(prompt, max_new_tokens=2, num_beams=2)


def test_generate_with_params_uses_them_and_leaves_the_model_alone(decoder):
    model, _ = decoder
    config = model.config
    other, other_state = build("causal_lm", config, seed=8)
    before = jax.tree.map(np.asarray, model.params)
    prompt = np.array([[0, 11, 12, 13, 14]], np.int32)
    got = model.generate(prompt, max_new_tokens=4, eos_token_id=[], params=other.params).sequences
    want = manual_v4_greedy(config, other_state, prompt, np.ones_like(prompt), 4)
    assert np.asarray(got).tolist() == want.tolist()
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, model.params), before)


def test_save_pretrained_writes_the_given_params(tmp_path):
    config = tiny_config()
    model, state = build("masked_lm", config, seed=2)
    own = jax.tree.map(np.asarray, model.params)
    tree = jax.tree.map(lambda x: np.asarray(x) * 0.5 + 0.25, model.params)  # a training loop's params
    ids, mask = padded_batch(config)
    for fmt in ("safetensors", "msgpack"):
        model.save_pretrained(tmp_path / fmt, params=tree, format=fmt)
        loaded = rf.FlaxRobertaForMaskedLM.from_pretrained(tmp_path / fmt)
        jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, loaded.params), tree)
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, model.params), own)  # unchanged
    # The model saved as it is still holds its own weights.
    model.save_pretrained(tmp_path / "own")
    again = rf.FlaxRobertaForMaskedLM.from_pretrained(tmp_path / "own")
    assert_close(again(ids, mask).logits, reference(config, state, "masked_lm", input_ids=ids, attention_mask=mask)["logits"],
                 atol=1e-5, what="logits")
    # As v4 writes the tree it is given, a partial tree is written without the parameters it lacks
    # (v4's test_from_pretrained_with_no_automatic_init saves one): loading reports them missing.
    partial = dict(tree)
    partial.pop("lm_head")
    model.save_pretrained(tmp_path / "partial", params=partial)
    _, info = rf.FlaxRobertaForMaskedLM.from_pretrained(tmp_path / "partial", output_loading_info=True)
    assert info["missing_keys"] and all(k.startswith("lm_head.") for k in info["missing_keys"])
    bad = {**tree, "extra": {"kernel": np.zeros((2, 2), np.float32)}}  # a key the model has not
    with pytest.raises(ValueError, match="unexpected"):
        model.save_pretrained(tmp_path / "bad", params=bad)


def test_can_generate_only_on_the_causal_lm():
    assert rf.FlaxRobertaForCausalLM.can_generate() is True
    for cls in (rf.FlaxRobertaModel, rf.FlaxRobertaForMaskedLM, rf.FlaxRobertaForSequenceClassification):
        assert cls.can_generate() is False


def test_output_attentions_and_head_mask_are_silent_as_v4():
    config = tiny_config()
    model, state = build("model", config, seed=6)  # default attention: dot_product
    ids, mask = padded_batch(config)
    head_mask = np.array([1.0, 0.0, 1.0, 1.0], np.float32)[: config.num_attention_heads]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            out = model(ids, mask, output_attentions=True)
            masked = model(ids, mask, head_mask=head_mask)
    ref = reference(config, state, "model", input_ids=ids, attention_mask=mask, output_attentions=True)
    for got, want in zip(out.attentions, ref["attentions"]):
        assert_close(got, want, atol=1e-5, what="attentions")
    ref = reference(config, state, "model", input_ids=ids, attention_mask=mask, head_mask=head_mask)
    assert_close(masked.last_hidden_state, ref["last_hidden_state"], atol=1e-5, what="last_hidden_state")


def test_multiple_choice_takes_position_ids_fourth_as_v4_flax():
    """v4 Flax's FlaxRobertaPreTrainedModel.__call__(input_ids, attention_mask, token_type_ids,
    position_ids, head_mask, ...): no labels among the positional inputs (ours come after them)."""
    config = tiny_config()
    mc, state = build("multiple_choice", config, seed=2)
    case = multiple_choice_case(config, state)
    ids3, mask3, positions, labels = case["ids"], case["mask"], case["positions"], case["labels"]
    assert_close(mc(ids3, mask3, None, positions).logits, case["logits"], atol=1e-5, what="positional position_ids")
    assert_close(mc(ids3, mask3, labels=labels).loss, case["loss"], atol=1e-5, what="loss")
