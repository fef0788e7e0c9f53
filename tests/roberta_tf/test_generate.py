"""`generate()` on the causal LM: greedy equals a manual argmax loop over full forwards, a
padded batch gives each row its tokens alone (left or right padding), rows stop at eos,
sampling is seeded and filtered as specified, and the XLA-compiled loop gives the same ids."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from roberta_tf.heads import _filter_logits
from tests.helpers import padded_batch, tiny_config

from .common import build

LENGTHS = (5, 3, 4)


@pytest.fixture(scope="module")
def model():
    # Relative distances make the fixed-length cache's layout matter, not only positions.
    config = tiny_config(is_decoder=True, position_embedding_type="relative_key_query")
    return build("causal_lm", config, seed=1)[0]


@pytest.fixture(scope="module")
def right_padded(model):
    return padded_batch(model.config, LENGTHS, seed=4)


def manual_greedy(model, ids, steps):
    """Argmax of a full forward over the whole sequence, one token at a time (no cache)."""
    for _ in range(steps):
        logits = model(input_ids=ids).logits.numpy()[:, -1]
        ids = np.concatenate([ids, logits.argmax(-1)[:, None]], axis=1)
    return ids


def test_greedy_equals_a_manual_argmax_loop(model, right_padded):
    ids = right_padded[0][:, :3]
    out = model.generate(ids, max_new_tokens=6, eos_token_id=[]).numpy()
    np.testing.assert_array_equal(out, manual_greedy(model, ids, 6))
    # v4's other limit: max_length counts the prompt (3 + 6).
    np.testing.assert_array_equal(model.generate(ids, max_length=9, eos_token_id=[]).numpy(), out)


def test_each_row_of_a_padded_batch_gets_its_tokens_alone(model, right_padded):
    ids, mask = right_padded
    T = ids.shape[1]
    right = model.generate(ids, attention_mask=mask, max_new_tokens=4, eos_token_id=[]).numpy()
    left_ids, left_mask = np.full_like(ids, model.config.pad_token_id), np.zeros_like(mask)
    for b, n in enumerate(LENGTHS):
        left_ids[b, T - n:], left_mask[b, T - n:] = ids[b, :n], 1
    left = model.generate(left_ids, attention_mask=left_mask, max_new_tokens=4, eos_token_id=[]).numpy()
    np.testing.assert_array_equal(right[:, :T], ids)  # the prompts come back as given
    np.testing.assert_array_equal(left[:, :T], left_ids)
    for b, n in enumerate(LENGTHS):
        alone = manual_greedy(model, ids[b:b + 1, :n], 4)[0, n:]
        np.testing.assert_array_equal(right[b, T:], alone, err_msg=f"row {b} right-padded")
        np.testing.assert_array_equal(left[b, T:], alone, err_msg=f"row {b} left-padded")


def test_rows_stop_at_eos_and_are_filled_with_pad(model, right_padded):
    ids, mask = right_padded
    free = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=[]).numpy()[:, 5:]
    eos = int(free[0, 1])  # row 0 emits it second
    out = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=eos, pad_token_id=7).numpy()[:, 5:]
    for b in range(3):
        hits = np.flatnonzero(free[b] == eos)
        stop = hits[0] + 1 if hits.size else 5
        np.testing.assert_array_equal(out[b, :stop], free[b, :stop])
        assert (out[b, stop:] == 7).all()
    # When every row has stopped, generation ends: no columns of padding only.
    stops = list(free[:, 1])  # every row meets one of them by its second token
    out = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=stops).numpy()
    longest = max(np.flatnonzero(np.isin(row, stops))[0] + 1 for row in free)
    assert out.shape == (3, 5 + longest)
    np.testing.assert_array_equal(out[0, 5:], free[0, :longest])


def test_sampling_is_seeded_and_filtered(model, right_padded):
    ids, mask = right_padded
    greedy = model.generate(ids, attention_mask=mask, max_new_tokens=4, eos_token_id=[]).numpy()
    kwargs = dict(attention_mask=mask, max_new_tokens=4, eos_token_id=[], do_sample=True)
    first = model.generate(ids, temperature=2.0, seed=3, **kwargs).numpy()
    np.testing.assert_array_equal(first, model.generate(ids, temperature=2.0, seed=3, **kwargs).numpy())
    others = [model.generate(ids, temperature=2.0, seed=s, **kwargs).numpy() for s in (4, 5)]
    assert any(not np.array_equal(first, o) for o in others)  # the seed matters
    np.testing.assert_array_equal(model.generate(ids, top_k=1, seed=0, **kwargs).numpy(), greedy)
    np.testing.assert_array_equal(model.generate(ids, top_p=1e-6, seed=0, **kwargs).numpy(), greedy)


def test_filter_logits_by_hand():
    logits = tf.constant([[2.0, 1.0, 0.0, -1.0]])  # softmax: 0.644, 0.237, 0.087, 0.032
    inf = -np.inf
    np.testing.assert_array_equal(_filter_logits(logits, 2, None).numpy(), [[2.0, 1.0, inf, inf]])
    np.testing.assert_array_equal(_filter_logits(logits, None, 0.5).numpy(), [[2.0, inf, inf, inf]])
    np.testing.assert_array_equal(_filter_logits(logits, None, 0.7).numpy(), [[2.0, 1.0, inf, inf]])
    # top_k first, then top_p over what is left: softmax(2, 1, 0) = 0.665, 0.245, 0.090.
    np.testing.assert_array_equal(_filter_logits(logits, 3, 0.95).numpy(), [[2.0, 1.0, 0.0, inf]])
    np.testing.assert_array_equal(_filter_logits(logits, 3, 0.9).numpy(), [[2.0, 1.0, inf, inf]])


def test_the_xla_compiled_loop_gives_the_eager_ids(model, right_padded):
    ids, mask = right_padded
    eager = model.generate(ids, attention_mask=mask, max_new_tokens=3, eos_token_id=[]).numpy()
    compiled = tf.function(
        lambda i, m: model.generate(i, attention_mask=m, max_new_tokens=3, eos_token_id=[]), jit_compile=True
    )
    np.testing.assert_array_equal(compiled(tf.constant(ids), tf.constant(mask)).numpy(), eager)


def test_generate_refuses_what_it_cannot_do(model, right_padded):
    ids, _ = right_padded
    with pytest.raises(ValueError, match="prompt length 5 \\+ max_new_tokens 80 exceeds the 66 positions"):
        model.generate(ids, max_new_tokens=80)
    with pytest.raises(ValueError, match="top_p must be in"):
        model.generate(ids, do_sample=True, top_p=1.5)
    with pytest.raises(ValueError, match="input_ids must be in 0..99"):
        model.generate(ids + 100)
    with pytest.warns(UserWarning, match="attends both ways unless the config has is_decoder=True"):
        encoder, _ = build("causal_lm", tiny_config())
    with pytest.raises(ValueError, match="needs a causal decoder"):
        encoder.generate(ids)


def test_greedy_ids_equal_a_pytorch_forward_loop(right_padded):
    torch = pytest.importorskip("torch")
    roberta_pt = pytest.importorskip("roberta_pt")
    from roberta_pt.convert import from_canonical as pt_from_canonical

    config = tiny_config(is_decoder=True)
    model, state = build("causal_lm", config, seed=2)
    pt_model = pt_from_canonical(roberta_pt.RobertaForCausalLM(config), {k: v.copy() for k, v in state.items()})
    ids, mask = right_padded
    got = model.generate(ids, attention_mask=mask, max_new_tokens=4, eos_token_id=[]).numpy()
    # v4 TF's generate reads RoBERTa's own positions (its prepare_inputs_for_generation passes none),
    # v4 PyTorch's (and roberta_pt's) cumsum - 1: the reference is the PyTorch forward's argmax
    # loop at its default positions, each row alone.
    pt_model.eval()
    for b in range(ids.shape[0]):
        row = torch.from_numpy(ids[b : b + 1, : mask[b].sum()])
        with torch.no_grad():
            for _ in range(4):
                row = torch.cat([row, pt_model(row).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        assert got[b, ids.shape[1]:].tolist() == row[0, mask[b].sum():].tolist(), b


def test_prepare_inputs_for_generation_gives_what_the_cache_has_not_seen(model):
    ids = np.array([[0, 5, 9, 13]])
    past = model(input_ids=ids[:, :3], use_cache=True).past_key_values
    step = model.prepare_inputs_for_generation(ids, past_key_values=past, attention_mask=np.ones_like(ids))
    assert np.asarray(step["input_ids"]).tolist() == [[13]] and step["attention_mask"].shape == (1, 4)
    assert model.prepare_inputs_for_generation(ids)["input_ids"] is ids  # no cache: every token
