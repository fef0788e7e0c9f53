"""The two opt-in fast paths against the padded forward and the float64 NumPy reference:
`unpad` (the real tokens packed into one stream, each sequence attending over itself) for every
head, and the MLM head's `masked_positions_only`; their static sizes under `jit` (a token
budget, a number of rows) and what a budget too small gives. (Their gradients: test_training.)

Every option is a compilation: the padded forwards are eager calls whose programs
test_modeling and test_heads share, the rest one program each."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from roberta_core.reference import forward as reference
from roberta_flax import checked, modeling
from roberta_flax.unpad import pack, packed_attention
from tests.helpers import ALL_HEADS, assert_close, padded_batch, rel_err, tiny_config
from tests.roberta_flax.common import build, forward, head_config, head_inputs

# The (3, 7) batch of `head_inputs`: 14 real tokens of 21 (multiple choice: 28 of 42).
REAL = {"multiple_choice": 28}


def _inputs(config, head: str) -> dict:
    """`head_inputs`, token labels at real positions only: unpadded, the logits at padding are
    zeros (not computed), so a label there would count against zeros."""
    inputs = head_inputs(config, head)
    if head in ("masked_lm", "causal_lm"):
        inputs["labels"] = np.where(inputs["attention_mask"] == 1, inputs["labels"], -100)
    return inputs


def _real(value, mask: np.ndarray) -> np.ndarray:
    """The rows of a (B, T, ...) output at real positions; other outputs whole."""
    value = np.asarray(value)
    return value[mask.astype(bool)] if value.shape[:mask.ndim] == mask.shape else value


@pytest.mark.parametrize("head", ALL_HEADS)
def test_unpad_equals_padded_forward_and_reference(head):
    config = head_config(head)
    model, state = build(head, config)
    inputs = _inputs(config, head)
    mask = inputs["attention_mask"]
    flags = dict(output_hidden_states=True) if head == "model" else {}
    padded = model(**inputs, **flags)
    packed = model(**inputs, **flags, unpad=True)  # eagerly the budget comes from the mask
    ref = reference(config, state, head, **inputs, **flags)
    flat_mask = mask.reshape(-1, mask.shape[-1])  # multiple choice: (B * C, T) states
    assert list(packed.keys()) == list(ref.keys())
    for name, want in ref.items():
        got, base = packed[name], padded[name]
        if name == "hidden_states":  # one (B, T, H) per layer
            for i, (g, b, r) in enumerate(zip(got, base, want)):
                assert_close(_real(g, flat_mask), _real(b, flat_mask), what=f"{head}.{name}[{i}]")
                assert rel_err(_real(g, flat_mask), _real(r, flat_mask)) <= 1e-5, f"{head}.{name}[{i}]"
            continue
        if head == "question_answering" and name == "loss":
            # Unpadded, QA leaves padding out of the softmax: the loss over real positions only.
            lengths = mask.sum(1)
            rows = [np.asarray(want_logits)[b, : lengths[b]]
                    for want_logits in (ref["start_logits"], ref["end_logits"]) for b in range(3)]
            T = mask.shape[1]
            targets = [p for k in ("start_positions", "end_positions") for p in np.clip(inputs[k], 0, T)]
            losses = [np.logaddexp.reduce(r) - r[p] for r, p in zip(rows, targets) if p < T]
            start, end = losses[:2], losses[2:]  # start 9 is clamped to T = 7: ignored
            assert abs(float(got) - (np.mean(start) + np.mean(end)) / 2) <= 1e-5
            continue
        m = flat_mask if name == "last_hidden_state" else mask
        assert_close(_real(got, m), _real(base, m), what=f"{head}.{name}")
        assert rel_err(_real(got, m), _real(want, m)) <= 1e-5, f"{head}.{name} vs reference"
        if np.shape(got)[:m.ndim] == m.shape:  # token-level outputs are not computed at padding
            fill = np.finfo(np.float32).min if head == "question_answering" else 0.0
            assert (np.asarray(got)[m == 0] == fill).all(), f"{head}.{name} at padding"


def test_unpad_with_left_padding_token_types_and_embeds():
    config = tiny_config(type_vocab_size=2)
    model, state = build("model", config)
    ids, mask = padded_batch(config)
    ids, mask = ids[:, ::-1].copy(), mask[:, ::-1].copy()  # left padding
    inputs = dict(
        inputs_embeds=state["embeddings.word_embeddings.weight"][ids],
        token_type_ids=np.random.default_rng(5).integers(0, 2, ids.shape),
        attention_mask=mask,
    )
    got = model(**inputs, unpad=True).last_hidden_state
    want = reference(config, state, "model", **inputs)["last_hidden_state"]
    assert rel_err(_real(got, mask), _real(want, mask)) <= 1e-5


def test_unpad_without_padding_is_the_plain_forward():
    config = head_config("masked_lm")
    model, _ = build("masked_lm", config)
    inputs = {**head_inputs(config, "masked_lm"), "attention_mask": np.ones((3, 7), np.int64)}
    assert np.array_equal(model(**inputs, unpad=True).logits, model(**inputs).logits)


def test_unpad_falls_back_for_attention_probabilities():
    """With output_attentions the call computes on the padded batch: the very same program."""
    config = tiny_config()
    model, _ = build("model", config)
    inputs = head_inputs(config, "model")
    graphdef, state = nnx.split(model)

    def program(**options):
        return str(jax.make_jaxpr(lambda state: nnx.merge(graphdef, state)(**inputs, **options))(state))

    modeling._warned.clear()
    with pytest.warns(UserWarning, match="unpad does not combine with"):
        packed = program(output_attentions=True, unpad=14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the einsum notice
        assert packed == program(output_attentions=True)
    assert program(unpad=14) != program()  # (and without the probabilities it does unpad)


def _numpy_attention(q, k, v, causal):
    """Softmax attention of one sequence, float64: q/k/v (h, n, D) -> (n, h, D)."""
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], bool)), scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    return ((probs / probs.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("strategy", ["padded", "segments"])
def test_packed_attention_keeps_sequences_apart(strategy, causal):
    _, mask = padded_batch(tiny_config(), lengths=(4, 6, 1, 3))
    N = int(mask.sum()) + 3  # three unused slots at the end
    packing = pack(mask, N)
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((1, 2, N, 8)) for _ in range(3))
    run = jax.jit(lambda q, k, v, packing: packed_attention(q, k, v, packing, is_causal=causal, strategy=strategy))
    got = np.asarray(run(*(jnp.asarray(x, jnp.float32) for x in (q, k, v)), packing))[0]  # (N, h, D)
    bounds = np.cumsum([0, *mask.sum(1)])
    want = np.concatenate([_numpy_attention(q[0, :, a:b], k[0, :, a:b], v[0, :, a:b], causal)
                           for a, b in zip(bounds[:-1], bounds[1:])])
    assert_close(got[: bounds[-1]], want, atol=1e-5, what=strategy)


def test_masked_positions_only_logits_are_the_labelled_rows():
    config = head_config("masked_lm")
    model, state = build("masked_lm", config)
    inputs = _inputs(config, "masked_lm")
    inputs["labels"][0, 1:4] = -100  # some real positions are not labelled either
    keep = inputs["labels"] != -100
    full = model(**inputs)
    only = model(**inputs, masked_positions_only=True)  # eagerly the rows come from the labels
    assert only.logits.shape == (int(keep.sum()), config.vocab_size)
    assert_close(only.logits, np.asarray(full.logits)[keep])
    assert abs(float(only.loss) - float(full.loss)) <= 1e-6 * abs(float(full.loss))
    ref = reference(config, state, "masked_lm", **inputs)
    assert rel_err(only.logits, ref["logits"][keep]) <= 1e-5
    assert abs(float(only.loss) - float(ref["loss"])) <= 1e-5 * abs(float(ref["loss"]))


def test_masked_positions_only_needs_labels():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    with pytest.raises(ValueError, match="masked_positions_only=True .* give labels"):
        model(input_ids=np.array([[0, 5, 6, 2]]), masked_positions_only=True)


def test_sizes_under_jit():
    """Under jit the sizes are static: True is an error that says what to give; a budget too
    small gives NaN (never numbers that miss part of a sequence or some labels), and with
    `enable_jit_checks()` the eager ValueError. (Room to spare: test_training.)"""
    config = head_config("masked_lm")
    model, _ = build("masked_lm", config)
    inputs = _inputs(config, "masked_lm")
    labelled = int((inputs["labels"] != -100).sum())
    with pytest.raises(ValueError, match="unpad=N"):
        forward(model, inputs, (("unpad", True),))
    with pytest.raises(ValueError, match="masked_positions_only=M"):
        forward(model, inputs, (("masked_positions_only", True),))
    short = forward(model, inputs, (("unpad", 12), ("masked_positions_only", labelled - 1)))
    assert np.isnan(np.asarray(short.logits)).all() and np.isnan(float(short.loss))
    with pytest.raises(ValueError, match="unpad=12 slots cannot hold the 14 real tokens"):
        model(**inputs, unpad=12)  # eagerly the values are known
    for bad in (0, -3, 2.5, "all"):  # refused before anything is computed, as in TF and PyTorch
        with pytest.raises(ValueError, match="unpad must be True, False or the token budget"):
            model(**inputs, unpad=bad)
    with pytest.raises(ValueError, match=f"masked_positions_only={labelled - 1} rows cannot hold the {labelled}"):
        model(**inputs, masked_positions_only=labelled - 1)
    model.enable_jit_checks()
    try:
        graphdef, state = nnx.split(model)
        run = checked(jax.jit(lambda state, inputs: nnx.merge(graphdef, state)(**inputs, unpad=12).logits))
        with pytest.raises(ValueError, match="unpad=12 slots cannot hold the 14 real tokens"):
            run(state, inputs)
    finally:
        model.enable_jit_checks(False)


# ---------------------------------------------------------------------------- first_token_only

@pytest.mark.parametrize("unpad", [False, True])
@pytest.mark.parametrize("head", ["sequence_classification", "multiple_choice"])
@pytest.mark.parametrize("model_type", ["roberta", "roberta-prelayernorm"])
def test_classification_heads_compute_the_last_layer_for_the_first_token_only(head, model_type, unpad, monkeypatch):
    # The heads read `<s>` alone: the last layer computes (B, 1, H), every other layer (B, T, H)
    # (under `unpad` the packed stream, (1, N, H)), and the logits and loss are the float64
    # reference's (which computes every position).
    config = head_config(head, model_type=model_type)
    model, state = build(head, config)
    inputs = _inputs(config, head)
    lengths = []
    layer_call = modeling.FlaxRobertaLayer.__call__

    def spy(self, *args, **kwargs):
        out = layer_call(self, *args, **kwargs)
        lengths.append(out[0].shape[1])
        return out

    monkeypatch.setattr(modeling.FlaxRobertaLayer, "__call__", spy)
    with jax.disable_jit():  # the call as written, op by op: the spy sees every layer
        got = model(**inputs, unpad=unpad)
    T = inputs["input_ids"].shape[-1]
    mask = inputs["attention_mask"]
    slots = min(-(-int(mask.sum()) // 64) * 64, mask.size)  # eager unpad=True: real tokens rounded up to 64, at most B*T
    assert lengths == [slots if unpad else T] * (config.num_hidden_layers - 1) + [1]
    ref = reference(config, state, head, **inputs)
    for name in ("logits", "loss"):
        assert rel_err(np.asarray(got[name]), ref[name]) <= 1e-5, name
    compiled = model(**inputs, unpad=unpad).logits
    assert_close(np.asarray(compiled), np.asarray(got.logits), what="compiled call")


def test_first_token_only_computes_every_position_when_more_is_read():
    config = head_config("sequence_classification")
    model, _ = build("sequence_classification", config)
    ids, mask = padded_batch(config, lengths=(7, 5, 2, 1))
    (B, T), H = ids.shape, config.hidden_size
    full = model.roberta(ids, mask).last_hidden_state
    first = model.roberta(ids, mask, first_token_only=True).last_hidden_state
    assert full.shape == (B, T, H) and first.shape == (B, 1, H)
    assert_close(np.asarray(first[:, 0]), np.asarray(full[:, 0]), what="first token")
    # what reads more than `<s>` after the last layer: every position computed, as without it
    for options in ({"output_hidden_states": True}, {"output_attentions": True}, {"deterministic": False}):
        out = model.roberta(ids, mask, first_token_only=True, **options).last_hidden_state
        assert out.shape == (B, T, H), options


def test_first_token_only_under_unpad_gives_the_packed_forward_first_states_left_padding_included():
    # The last layer on the padded rows must give what the whole packed forward gives at position 0:
    # the real first tokens' states, zeros where a row's first position is padding (left padding),
    # and NaN when a budget under jit leaves real tokens out (as the packed states are).
    config = head_config("sequence_classification")
    model, _ = build("sequence_classification", config)
    ids, mask = padded_batch(config, lengths=(7, 5, 2, 1))
    # row 1 padded on the left (ids and mask shifted): its first position is padding
    real = int(mask[1].sum())
    ids[1], mask[1] = np.roll(ids[1], ids.shape[1] - real), np.roll(mask[1], ids.shape[1] - real)
    assert mask[1, 0] == 0 and ids[1, -real] == config.bos_token_id
    full = model.roberta(ids, mask, unpad=True).last_hidden_state
    first = model.roberta(ids, mask, unpad=True, first_token_only=True).last_hidden_state
    padded = model.roberta(ids, mask).last_hidden_state
    assert first.shape == (ids.shape[0], 1, config.hidden_size)
    assert_close(np.asarray(first[:, 0]), np.asarray(full[:, 0]), what="first states, packed")
    assert not np.asarray(first[1]).any() and np.abs(np.asarray(full[0, 0])).sum() > 0
    keep = [0, 2, 3]  # first position real: v4's own (padded) states there
    assert_close(np.asarray(first[keep, 0]), np.asarray(padded[keep, 0]), what="first states, padded")
    jitted = nnx.jit(lambda m, i, a, n: m.roberta(i, a, unpad=n, first_token_only=True).last_hidden_state,
                     static_argnums=3)
    assert_close(np.asarray(jitted(model, ids, mask, 16)), np.asarray(first), what="under jit")
    short = jitted(model, ids, mask, 8)
    assert short.shape == first.shape and np.isnan(np.asarray(short)).all()  # 15 real tokens, 8 slots
    # An empty row: what the packed forward gives there (zeros), eagerly and op by op. (No real token
    # at all makes no stream: such a batch computes on its padded rows, as without first_token_only.)
    for empty in ([3], [0, 1, 2, 3]):
        mask[empty] = 0
        full = model.roberta(ids, mask, unpad=True).last_hidden_state[:, :1]
        first = model.roberta(ids, mask, unpad=True, first_token_only=True).last_hidden_state
        with jax.disable_jit():
            slow = model.roberta(ids, mask, unpad=True, first_token_only=True).last_hidden_state
        assert_close(np.asarray(first), np.asarray(full), what=f"empty rows {empty}")
        assert_close(np.asarray(slow), np.asarray(full), what=f"empty rows {empty}, op by op")
        if empty == [3]:
            assert not np.asarray(first[3]).any()


class _Reader(nnx.Module):
    """A replacement classifier or pooler that reads every position (their mean)."""

    seen: list = []  # on the class, not in the module's graph: the shapes each (traced) call saw

    def __init__(self, width):
        self.width = width

    def __call__(self, states, deterministic=True):
        _Reader.seen.append(tuple(states.shape))
        return states.mean(1)[:, : self.width]


def test_a_replaced_classifier_or_pooler_gets_every_position():
    config = head_config("sequence_classification")
    ids, mask = padded_batch(config, lengths=(7, 5, 2, 1))
    (B, T), H = ids.shape, config.hidden_size
    model, _ = build("sequence_classification", config)
    _Reader.seen.clear()
    model.classifier = _Reader(config.num_labels)
    logits = model(ids, attention_mask=mask).logits
    want = np.asarray(model.roberta(ids, mask).last_hidden_state).mean(1)[:, : config.num_labels]
    assert _Reader.seen == [(B, T, H)]
    assert_close(np.asarray(logits), want, what="mean over every position")
    model, _ = build("multiple_choice", head_config("multiple_choice"))
    _Reader.seen.clear()
    model.roberta.pooler = _Reader(H)
    model(ids[None], attention_mask=mask[None])
    assert _Reader.seen == [(B, T, H)]
