"""The Flax encoder and heads against independent oracles: the float64 NumPy reference
(roberta_core/reference.py), the PyTorch backend, and v4's Flax parameter tree.

Every model call goes through `common.forward` (one jit per model structure and input shape)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from flax.serialization import msgpack_restore

from roberta_core.reference import ACT2FN as REFERENCE_ACT2FN
from roberta_core.reference import forward as reference
from roberta_core.config import ACTIVATIONS
from roberta_core.outputs import MaskedLMOutput
from roberta_flax import _framework, modeling
from roberta_flax.convert import from_canonical, to_canonical
from tests.helpers import ALL_HEADS, assert_close, golden, padded_batch, random_state, rel_err, tiny_config
from tests.roberta_flax.common import CLASSES, build, forward, head_config, head_inputs, main_output


# ---------------------------------------------------------------------------- pieces


def test_activations_match_reference():
    x = np.linspace(-12.0, 12.0, 481)
    # One compiled function for all of them.
    got = jax.jit(lambda x: {name: modeling.ACT2FN[name](x) for name in ACTIVATIONS})(jnp.asarray(x, jnp.float32))
    for name in ACTIVATIONS:
        want = REFERENCE_ACT2FN[name](x)
        worst = np.max(np.abs(np.asarray(got[name], np.float64) - want) / np.maximum(1.0, np.abs(want)))
        assert worst <= 2e-6, f"{name}: relative error {worst:.2g}"
    # gelu is the exact erf form: the tanh approximation differs from it by ~1e-4 near -2.
    assert abs(float(got["gelu"][200]) - float(got["gelu_new"][200])) > 1e-5


def test_position_ids_follow_padding():
    ids = jnp.array([[0, 5, 6, 1, 1], [1, 1, 0, 7, 8]])
    # By hand: real tokens count from padding_idx + 1 = 2 (after 3 cached ones: from 5), pads stay 1.
    assert modeling.position_ids_from_input_ids(ids, 1).tolist() == [[2, 3, 4, 1, 1], [1, 1, 2, 3, 4]]
    assert modeling.position_ids_from_input_ids(ids, 1, 3).tolist() == [[5, 6, 7, 1, 1], [1, 1, 5, 6, 7]]


@pytest.mark.parametrize("head", ["model", "masked_lm", "sequence_classification"])
def test_state_paths_are_v4_flax_tree_paths(head):
    """The NNX state of each head has exactly the paths of the flax_model.msgpack transformers wrote."""
    tree = msgpack_restore((golden(head) / "flax_model.msgpack").read_bytes())

    def paths(node, prefix=()):
        for key, value in node.items():
            yield from paths(value, prefix + (key,)) if isinstance(value, dict) else [prefix + (key,)]

    model = CLASSES[head](head_config(head))
    ours = {tuple(str(p) for p in path) for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    assert ours == set(paths(tree))


@pytest.mark.parametrize(
    "head, overrides",
    [(h, {}) for h in ALL_HEADS]
    + [("masked_lm", dict(tie_word_embeddings=False)),
       ("causal_lm", dict(is_decoder=True, add_cross_attention=True, position_embedding_type="relative_key"))],
)
def test_canonical_round_trip_is_bit_exact(head, overrides):
    config = head_config(head, **overrides)
    state = random_state(config, head, seed=3)
    model = from_canonical(CLASSES[head](config), state)
    back = to_canonical(model)
    assert list(back) == list(state)  # the keys of parameter_shapes, in order
    for key in state:
        assert back[key].dtype == state[key].dtype and np.array_equal(back[key], state[key]), key


def test_from_canonical_names_what_is_wrong():
    config = head_config("masked_lm")
    model = CLASSES["masked_lm"](config)
    state = random_state(config, "masked_lm")
    with pytest.raises(ValueError, match="owns no parameter.*classifier.out_proj.weight"):
        from_canonical(model, {**state, "classifier.out_proj.weight": np.zeros((3, 32), np.float32)})
    with pytest.raises(ValueError, match="lacks 1 parameter.*lm_head.bias"):
        from_canonical(model, {k: v for k, v in state.items() if k != "lm_head.bias"})
    with pytest.raises(ValueError, match=r"lm_head.dense.weight \(32, 31\) != expected \(32, 32\)"):
        from_canonical(model, {**state, "lm_head.dense.weight": np.zeros((32, 31), np.float32)})


def test_outputs_are_pytrees():
    out = MaskedLMOutput(loss=jnp.float32(1.0), logits=jnp.ones((1, 2, 3)))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(out)
    assert [jax.tree_util.keystr(p) for p, _ in leaves] == ["['loss']", "['logits']"]
    again = jax.tree.unflatten(treedef, [x * 2 for _, x in leaves])
    assert type(again) is MaskedLMOutput and float(again.loss) == 2.0 and "hidden_states" not in again


# ---------------------------------------------------------------------------- all heads vs oracles


@pytest.mark.parametrize("head", ALL_HEADS)
def test_heads_match_float64_reference(head):
    config = head_config(head)
    model, state = build(head, config)
    inputs = head_inputs(config, head)
    out = model(**inputs)
    ref = reference(config, state, head, **inputs)
    assert list(out.keys()) == list(ref.keys())
    for field in main_output(head):
        assert rel_err(out[field], ref[field]) <= 1e-5, field
        assert_close(out[field], ref[field], atol=1e-5, what=field)
    if head != "model":
        assert_close(out.loss, ref["loss"], atol=1e-5, what="loss")


@pytest.mark.parametrize("head", ALL_HEADS)
def test_heads_match_pytorch_backend(head):
    torch = pytest.importorskip("torch")
    roberta_pt = pytest.importorskip("roberta_pt")
    from roberta_pt.convert import from_canonical as pt_from_canonical

    config = head_config(head)
    model, state = build(head, config)
    inputs = head_inputs(config, head)
    out = model(**inputs)
    pt_class = getattr(roberta_pt, CLASSES[head].__name__.removeprefix("Flax"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the causal LM's and the fallbacks' notes
        pt_model = pt_from_canonical(pt_class(config), state).eval()
        with torch.no_grad():
            pt_out = pt_model(**{k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()})
    for field in main_output(head) + (() if head == "model" else ("loss",)):
        assert_close(out[field], pt_out[field].numpy(), atol=1e-5, what=field)


def test_all_inputs_and_outputs_match_reference():
    """inputs_embeds, token types, explicit positions, a per-layer head_mask, every hidden state
    and attention map; a fully padded row stays finite."""
    config = tiny_config(type_vocab_size=2)
    model, state = build("model", config, attn_implementation="einsum")
    rng = np.random.default_rng(5)
    ids, mask = padded_batch(config)
    mask[2] = 0  # nothing to attend to
    inputs = dict(
        inputs_embeds=rng.standard_normal((3, 7, 32)).astype(np.float32),
        attention_mask=mask,
        token_type_ids=rng.integers(0, 2, (3, 7)),
        position_ids=rng.integers(2, 60, (3, 7)),
        head_mask=np.array([[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 1.0]], np.float32),
    )
    flags = (("output_attentions", True), ("output_hidden_states", True))
    out = forward(model, inputs, flags)
    ref = reference(config, state, "model", **inputs, output_attentions=True, output_hidden_states=True)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    for field in ("last_hidden_state", "pooler_output", "hidden_states", "attentions"):
        for got, want in zip(jax.tree.leaves(out[field]), jax.tree.leaves(ref[field])):
            assert np.isfinite(np.asarray(got)).all(), field
            assert_close(got, want, atol=1e-5, what=field)


def test_relative_key_positions_match_reference():
    """(relative_key_query is checked by the incremental decoding test.)"""
    config = tiny_config(position_embedding_type="relative_key")
    model, state = build("model", config, attn_implementation="einsum")
    ids, mask = padded_batch(config)
    out = forward(model, dict(input_ids=ids, attention_mask=mask), (("output_attentions", True),))
    ref = reference(config, state, "model", input_ids=ids, attention_mask=mask, output_attentions=True)
    assert_close(out.last_hidden_state, ref["last_hidden_state"], what="last_hidden_state")
    for got, want in zip(out.attentions, ref["attentions"]):
        assert_close(got, want, what="attentions")


def test_fallback_to_einsum_is_silent_as_v4():
    """v4 Flax's attention is always the explicit one, so it never warns: neither does the
    fallback here (the values are the same either way)."""
    config = tiny_config(position_embedding_type="relative_key")
    model = CLASSES["model"](config)
    plain = CLASSES["model"](tiny_config())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model._use_fused(False, None) is False
        assert plain._use_fused(True, None) is False and plain._use_fused(False, np.ones(4)) is False
        assert plain._use_fused(False, None) is True


@pytest.mark.parametrize(
    "overrides",
    [dict(add_cross_attention=True), dict(position_embedding_type="relative_key_query")],
    ids=["cross_attention", "relative_key_query"],
)
def test_incremental_decoding_equals_full_forward(overrides):
    """4 tokens, then 3 more on their cache: the logits and the cache of the full 7-token
    forward (float64 reference; the Flax full forward is held to it by the tests above)."""
    config = tiny_config(is_decoder=True, **overrides)
    model, state = build("causal_lm", config)
    ids, mask = padded_batch(config, lengths=(7, 6, 7))
    inputs = dict(input_ids=ids, attention_mask=mask)
    if config.add_cross_attention:
        rng = np.random.default_rng(2)
        inputs["encoder_hidden_states"] = rng.standard_normal((3, 5, 32)).astype(np.float32)
        inputs["encoder_attention_mask"] = np.array([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]])
    full = reference(config, state, "causal_lm", **inputs, use_cache=True)

    first = forward(model, {**inputs, "input_ids": ids[:, :4], "attention_mask": mask[:, :4]})
    rest = forward(model, {**inputs, "input_ids": ids[:, 4:], "past_key_values": first.past_key_values})
    assert_close(np.concatenate([first.logits, rest.logits], axis=1), full["logits"], what="incremental logits")
    cache, want = jax.tree.leaves(rest.past_key_values), jax.tree.leaves(full["past_key_values"])
    assert len(cache) == len(want) == config.num_hidden_layers * (4 if config.add_cross_attention else 2)
    for got, expected in zip(cache, want):
        assert_close(got, expected, what="cache")


def test_eager_calls_are_compiled_with_eager_meaning():
    """An eager call runs as one compiled program, reused by the next, equal to the caller's
    jit; it still follows the model: a changed config, train mode, dropout's random streams
    (which advance as eagerly)."""
    config = head_config("masked_lm")
    model, _ = build("masked_lm", config)
    inputs = head_inputs(config, "masked_lm")
    eager = model(**inputs)
    programs = _framework._compiled_call._cache_size()
    assert np.array_equal(model(**inputs).logits, eager.logits)
    assert _framework._compiled_call._cache_size() == programs  # the second call reused the program
    jitted = forward(model, inputs)
    assert_close(eager.logits, jitted.logits, atol=1e-5, what="logits")
    assert_close(eager.loss, jitted.loss, atol=1e-6, what="loss")
    config.max_position_embeddings = 8  # now 6 tokens at most: the old program must not run
    try:
        with pytest.raises(ValueError, match="exceeds the 6 tokens"):
            model(**inputs)
    finally:
        config.max_position_embeddings = 66
    model.train()
    model.set_attributes(rate=0.1)  # every dropout
    stream = model.roberta.embeddings.dropout.rngs
    drawn = int(stream.count[...])
    a, b = model(**inputs).logits, model(**inputs).logits
    assert int(stream.count[...]) == drawn + 2 and not np.allclose(a, b)  # a new dropout mask each call


def test_fast_and_einsum_attention_agree():
    config = head_config("masked_lm")
    fast, _ = build("masked_lm", config)
    slow, _ = build("masked_lm", config, attn_implementation="einsum")
    ids, mask = padded_batch(config)
    inputs = dict(input_ids=ids, attention_mask=mask)
    assert_close(forward(fast, inputs).logits, forward(slow, inputs).logits, atol=1e-5, what="logits")
