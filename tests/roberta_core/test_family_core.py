"""The RoBERTa family in the core (issue 15): the float64 reference computes RoBERTa-PreLayerNorm,
checkpoint files of every family member round-trip with their members' names, v4's files load.

Expected values come from outside the code under test: a PreLN forward written here by hand in
NumPy from the state dict, and outputs recorded by transformers 4.57.6 (tests/fixtures/family/).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from roberta_core import reference
from tests.helpers import padded_batch, random_state, tiny_config, with_tied

PRELN = dict(model_type="roberta-prelayernorm")


# ---------------------------------------------------------------------------- a PreLN forward by hand


def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _hand_preln(config, state, ids, mask):
    """RoBERTa-PreLayerNorm's bare model, from Xiong et al. 2020 and v4's module order, written
    without the reference: (last_hidden_state, encoder output before the final LayerNorm, pooled)."""
    s = {k: np.asarray(v, np.float64) for k, v in state.items()}
    eps, pad, n_heads = config.layer_norm_eps, config.pad_token_id, config.num_attention_heads
    real = (ids != pad).astype(np.int64)
    pos = pad + np.cumsum(real, axis=1) * real
    x = (s["embeddings.word_embeddings.weight"][ids] + s["embeddings.position_embeddings.weight"][pos]
         + s["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)])
    x = _ln(x, s["embeddings.LayerNorm.weight"], s["embeddings.LayerNorm.bias"], eps)
    B, T, H = x.shape
    D = H // n_heads
    lin = lambda v, name: v @ s[name + ".weight"].T + s[name + ".bias"]  # noqa: E731
    for i in range(config.num_hidden_layers):
        L = f"encoder.layer.{i}"
        h = _ln(x, s[f"{L}.attention.LayerNorm.weight"], s[f"{L}.attention.LayerNorm.bias"], eps)
        q, k, v = (lin(h, f"{L}.attention.self.{n}").reshape(B, T, n_heads, D) for n in ("query", "key", "value"))
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(D)
        scores = np.where(mask[:, None, None, :] == 1, scores, -1e30)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(B, T, H)
        x = x + lin(ctx, f"{L}.attention.output.dense")
        f = _ln(x, s[f"{L}.intermediate.LayerNorm.weight"], s[f"{L}.intermediate.LayerNorm.bias"], eps)
        x = x + lin(_gelu(lin(f, f"{L}.intermediate.dense")), f"{L}.output.dense")
    before = x
    x = _ln(x, s["LayerNorm.weight"], s["LayerNorm.bias"], eps)
    pooled = np.tanh(lin(x[:, 0], "pooler.dense"))
    return x, before, pooled


def test_reference_preln_matches_a_hand_written_forward():
    config = tiny_config(**PRELN)
    state = random_state(config, "model", seed=3)
    ids, mask = padded_batch(config, lengths=(7, 4, 1))
    want, before, pooled = _hand_preln(config, state, ids, mask)
    out = reference.forward(config, state, "model", input_ids=ids, attention_mask=mask, output_hidden_states=True)
    real = mask.astype(bool)  # padded positions are not compared (their values are arbitrary)
    np.testing.assert_allclose(out["last_hidden_state"][real], want[real], rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["pooler_output"], pooled, rtol=0, atol=1e-10)
    # v4: the encoder's list ends BEFORE the final LayerNorm; last_hidden_state is after it.
    assert len(out["hidden_states"]) == config.num_hidden_layers + 1
    np.testing.assert_allclose(out["hidden_states"][-1][real], before[real], rtol=0, atol=1e-10)
    assert not np.allclose(out["hidden_states"][-1][real], out["last_hidden_state"][real])


def test_reference_preln_heads_read_the_normalised_output():
    """The token-level heads run on last_hidden_state (after the final LayerNorm)."""
    config = tiny_config(**PRELN, num_labels=3)
    ids, mask = padded_batch(config, lengths=(6, 3))

    def lin(s, x, name):
        return x @ np.float64(s[name + ".weight"]).T + s[name + ".bias"]

    reads = {
        "token_classification": lambda s, x: lin(s, x, "classifier"),
        "sequence_classification": lambda s, x: lin(s, np.tanh(lin(s, x[:, 0], "classifier.dense")), "classifier.out_proj"),
        "question_answering": lambda s, x: lin(s, x, "qa_outputs")[..., 0],
    }
    for head, read in reads.items():
        state = random_state(config, head, seed=5)
        base = {k.removeprefix("roberta."): v for k, v in state.items() if k.startswith("roberta.")}
        base.update({"pooler.dense.weight": np.zeros((32, 32)), "pooler.dense.bias": np.zeros(32)})  # unused here
        x, _, _ = _hand_preln(config, base, ids, mask)
        out = reference.forward(config, state, head, input_ids=ids, attention_mask=mask)
        got = out["start_logits"] if head == "question_answering" else out["logits"]
        np.testing.assert_allclose(got, read(state, x), rtol=0, atol=1e-9, err_msg=head)


def test_reference_preln_differs_from_postln():
    """The same weights under the two placements give different outputs (the flag is read)."""
    pre = tiny_config(**PRELN)
    post = tiny_config()
    state = random_state(pre, "model", seed=1)
    for i in range(pre.num_hidden_layers):  # give the post-LN model the LayerNorms it needs
        for part in ("attention.output", "output"):
            state[f"encoder.layer.{i}.{part}.LayerNorm.weight"] = np.ones(32, np.float32)
            state[f"encoder.layer.{i}.{part}.LayerNorm.bias"] = np.zeros(32, np.float32)
    ids, mask = padded_batch(pre)
    a = reference.forward(pre, state, "model", input_ids=ids, attention_mask=mask)["last_hidden_state"]
    b = reference.forward(post, state, "model", input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert np.abs(a - b).max() > 1e-2


def test_reference_preln_decoder_cache_equals_full_pass():
    """Decoder mode with a cache: the last token's logits equal a full pass's (PreLN keys come from
    the normalised input, so a wrong cache would show)."""
    config = tiny_config(**PRELN, is_decoder=True)
    state = with_tied(config, "causal_lm", random_state(config, "causal_lm", seed=2))
    ids, _ = padded_batch(config, lengths=(6,))
    full = reference.forward(config, state, "causal_lm", input_ids=ids, use_cache=False)["logits"]
    first = reference.forward(config, state, "causal_lm", input_ids=ids[:, :5], use_cache=True)
    step = reference.forward(config, state, "causal_lm", input_ids=ids[:, 5:], past_key_values=first["past_key_values"],
                             use_cache=True)
    np.testing.assert_allclose(step["logits"][:, -1], full[:, -1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("model_type", ["xlm-roberta", "camembert"])
def test_reference_xlmr_and_camembert_are_roberta(model_type):
    config = tiny_config(model_type=model_type)
    state = random_state(config, "model", seed=4)
    ids, mask = padded_batch(config)
    got = reference.forward(config, state, "model", input_ids=ids, attention_mask=mask)
    want = reference.forward(tiny_config(), state, "model", input_ids=ids, attention_mask=mask)
    np.testing.assert_array_equal(got["last_hidden_state"], want["last_hidden_state"])
