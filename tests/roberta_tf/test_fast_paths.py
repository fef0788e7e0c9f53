"""The two opt-in fast paths against the padded forward and the float64 NumPy reference:
`unpad=True` (the real tokens packed into one stream, each sequence attending over itself)
and `unpad=N` (a token budget: one stream of a static size) for every head, forward and
backward, and the MLM head `masked_positions_only=True`; eagerly, in a graph and under XLA
(where the stream has one of a few static sizes, or the budget's)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import tensorflow as tf

import roberta_tf.heads
import roberta_tf.modeling
import roberta_tf.unpad
from roberta_core import reference
from roberta_tf.unpad import pack, packed_attention, run_packed
from tests.helpers import ALL_HEADS, assert_close, padded_batch, rel_err, tiny_config

from .common import build

LENGTHS = (7, 5, 2, 1)  # 15 real tokens of 28: more than half is padding


def _batch(config, head, seed=0):
    """Inputs and labels for `head` on a right-padded batch; the (B, T) real-token mask."""
    rng = np.random.default_rng(seed)
    ids, mask = padded_batch(config, lengths=LENGTHS, seed=seed)
    B, T = ids.shape
    if head == "multiple_choice":  # (B, C, T): the second choice has other lengths
        ids2, mask2 = padded_batch(config, lengths=(3, 7, 6, 4), seed=seed + 1)
        ids, mask = np.stack([ids, ids2], 1), np.stack([mask, mask2], 1)
    inputs = dict(input_ids=ids, attention_mask=mask)
    token_labels = np.where(mask == 1, rng.integers(0, config.vocab_size, mask.shape), -100)
    if head in ("masked_lm", "causal_lm"):
        inputs["labels"] = token_labels
    elif head == "token_classification":
        inputs["labels"] = np.where(mask == 1, rng.integers(0, config.num_labels, mask.shape), -100)
    elif head == "sequence_classification":
        inputs["labels"] = rng.integers(0, config.num_labels, B)
    elif head == "multiple_choice":
        inputs["labels"] = rng.integers(0, 2, B)
    elif head == "question_answering":
        inputs["start_positions"], inputs["end_positions"] = np.array([1, 0, 1, 0]), np.array([5, 3, 1, 0])
    if head == "causal_lm":
        inputs["use_cache"] = False  # a cache needs the padded layout
    return inputs, mask


def _real(value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The rows of a (B, T, ...) output at real positions; other outputs whole."""
    return value[mask.astype(bool)] if value.shape[:mask.ndim] == mask.shape else value


def _run_reference(config, state, head, inputs, **options):
    return reference.forward(config, state, head, **{k: v for k, v in inputs.items() if k != "use_cache"}, **options)


def _assert_unpadded(head, packed, padded, ref, inputs, mask, mode=""):
    """An unpadded forward's outputs (with hidden states) against the padded forward's and the
    reference's at the real positions; token-level outputs not computed at padding."""
    flat_mask = mask.reshape(-1, mask.shape[-1])  # multiple choice: (B * C, T) states
    for name, want in ref.items():
        if name == "past_key_values":
            continue
        got, base, what = packed[name], padded[name], f"{head}.{name} {mode}"
        if isinstance(want, tuple):  # hidden states, one (B, T, H) per layer
            for i, (g, b, r) in enumerate(zip(got, base, want)):
                assert_close(_real(g.numpy(), flat_mask), _real(b.numpy(), flat_mask), what=f"{what}[{i}]")
                assert rel_err(_real(g.numpy(), flat_mask), _real(r, flat_mask)) <= 1e-5, f"{what}[{i}]"
            continue
        if head == "question_answering" and name == "loss":
            # Unpadded, QA leaves padding out of the softmax: the loss over real positions only.
            real = [np.asarray(ref[k])[b, : LENGTHS[b]] for k in ("start_logits", "end_logits") for b in range(4)]
            targets = [int(p) for k in ("start_positions", "end_positions") for p in inputs[k]]
            expected = np.mean([np.logaddexp.reduce(r) - r[p] for r, p in zip(real, targets)])
            assert abs(float(tf.reduce_mean(got)) - expected) <= 1e-5 * expected, what
            continue
        if name == "loss":  # v4 TF's shapes, (1,) or per example: their means
            assert_close(np.mean(got), np.mean(base), what=what)
            assert rel_err(np.mean(got), want) <= 1e-5, f"{what} vs reference"
            continue
        got = got.numpy()
        assert_close(_real(got, mask), _real(base.numpy(), mask), what=what)
        assert rel_err(_real(got, mask), _real(np.asarray(want), mask)) <= 1e-5, f"{what} vs reference"
        if got.shape[:mask.ndim] == mask.shape:  # token-level outputs are not computed at padding
            fill = np.finfo(got.dtype).min if head == "question_answering" else 0.0
            assert (got[mask == 0] == fill).all(), f"{what} at padding"


@pytest.mark.parametrize("head", ALL_HEADS)
def test_unpad_equals_padded_forward_and_reference(head):
    config = tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm")
    model, state = build(head, config)
    inputs, mask = _batch(config, head)
    padded = model(**inputs, output_hidden_states=True)
    packed = model(**inputs, output_hidden_states=True, unpad=True)
    ref = _run_reference(config, state, head, inputs, output_hidden_states=True)
    _assert_unpadded(head, packed, padded, ref, inputs, mask)


@pytest.mark.parametrize("head", ALL_HEADS)
def test_unpad_budget_equals_padded_forward_and_reference(head):
    # unpad=N, one stream of min(N, B * T) slots: the real tokens, then padding positions that
    # are computed and dropped. Exactly the real tokens, more, and more than the whole batch;
    # eagerly, in a graph and under XLA (one encoder, no switch between sizes).
    config = tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm")
    model, state = build(head, config)
    inputs, mask = _batch(config, head)
    real, total = int(mask.sum()), mask.size
    padded = model(**inputs, output_hidden_states=True)
    ref = _run_reference(config, state, head, inputs, output_hidden_states=True)
    for budget in (real, real + 3, total, total + 5):
        packed = model(**inputs, output_hidden_states=True, unpad=budget)
        _assert_unpadded(head, packed, padded, ref, inputs, mask, f"eager unpad={budget}")
    names = sorted(k for k in inputs if k != "use_cache")
    tensors = [tf.constant(inputs[k]) for k in names]
    flags = {k: v for k, v in inputs.items() if k == "use_cache"}
    for mode, jit, budget in (("graph", False, real + 3), ("xla", True, real)):
        def call(*args, budget=budget):
            return model(**dict(zip(names, args)), **flags, output_hidden_states=True, unpad=budget)

        packed = tf.function(call, jit_compile=jit)(*tensors)
        _assert_unpadded(head, packed, padded, ref, inputs, mask, f"{mode} unpad={budget}")


def test_unpad_with_left_padding_token_types_and_embeds():
    config = tiny_config(type_vocab_size=2)
    model, state = build("model", config)
    ids, mask = padded_batch(config, lengths=LENGTHS)
    ids, mask = ids[:, ::-1].copy(), mask[:, ::-1].copy()  # left padding
    types = np.random.default_rng(5).integers(0, 2, ids.shape)
    for inputs in (
        dict(input_ids=ids, attention_mask=mask, token_type_ids=types),
        dict(inputs_embeds=model.get_input_embeddings()(ids), attention_mask=mask),
    ):
        padded, packed = model(**inputs), model(**inputs, unpad=True)
        assert_close(_real(packed.last_hidden_state.numpy(), mask), _real(padded.last_hidden_state.numpy(), mask),
                     what=str(sorted(inputs)))
    ref = reference.forward(config, state, "model", input_ids=ids, attention_mask=mask, token_type_ids=types)
    got = model(input_ids=ids, attention_mask=mask, token_type_ids=types, unpad=True).last_hidden_state
    assert rel_err(_real(got.numpy(), mask), _real(ref["last_hidden_state"], mask)) <= 1e-5


def test_unpad_without_padding_is_the_plain_forward():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    ids = np.random.default_rng(1).integers(4, 100, (3, 6))
    np.testing.assert_array_equal(model(input_ids=ids, attention_mask=np.ones_like(ids), unpad=True).logits,
                                  model(input_ids=ids).logits)


def test_unpad_falls_back_for_attention_probabilities():
    config = tiny_config()
    model, _ = build("model", config)
    inputs, mask = _batch(config, "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one-time notice
        padded = model(**inputs, output_attentions=True)
        packed = model(**inputs, output_attentions=True, unpad=True)
    for a, b in zip(packed.attentions, padded.attentions):
        np.testing.assert_array_equal(a, b)
    assert_close(_real(packed.last_hidden_state.numpy(), mask), _real(padded.last_hidden_state.numpy(), mask))


def test_unpad_budget_too_small_is_an_error_or_nan_never_fewer_tokens():
    # Eagerly the count is known: a ValueError. In a graph, an assertion; under XLA (assertions
    # compiled away) every output is NaN, never states or a loss over part of the tokens.
    config = tiny_config()
    model, _ = build("masked_lm", config)
    inputs, mask = _batch(config, "masked_lm")
    real = int(mask.sum())
    with pytest.raises(ValueError, match=f"unpad={real - 1} slots cannot hold the {real} real tokens of this batch"):
        model(**inputs, unpad=real - 1)
    tensors = [tf.constant(inputs[k]) for k in ("input_ids", "attention_mask", "labels")]

    def step(ids, mask, labels):
        return model(input_ids=ids, attention_mask=mask, labels=labels, unpad=real - 1)

    with pytest.raises(tf.errors.InvalidArgumentError, match=f"unpad={real - 1} slots cannot hold the real tokens"):
        tf.function(step)(*tensors)
    out = tf.function(step, jit_compile=True)(*tensors)
    assert np.isnan(out.logits.numpy()).all() and np.isnan(out.loss.numpy()).all()
    bare, _ = build("model", config)  # the pooler too: every output of the model is poisoned
    states = tf.function(lambda i, m: bare(input_ids=i, attention_mask=m, unpad=real - 1, output_hidden_states=True),
                         jit_compile=True)(*tensors[:2])
    for name in ("last_hidden_state", "pooler_output"):
        assert np.isnan(states[name].numpy()).all(), name
    assert all(np.isnan(h.numpy()).all() for h in states.hidden_states)


def test_unpad_budget_must_be_true_false_or_a_positive_int():
    config = tiny_config()
    model, _ = build("token_classification", config)
    inputs, mask = _batch(config, "token_classification")
    for bad in (0, -3, 2.5, "all", np.float32(16)):
        for target in (model, model.roberta):
            with pytest.raises(ValueError, match=r"unpad must be True, False or the token budget \(a positive int\)"):
                target(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], unpad=bad)
    # NumPy ints are budgets like Python's (not turned into tensors); None is False.
    base = model(**inputs).logits.numpy()
    for budget in (np.int64(mask.sum()), None):
        got = model(**inputs, unpad=budget).logits.numpy()
        assert_close(_real(got, mask), _real(base, mask), what=repr(budget))


def _case_ops(fn, *args):
    """The `tf.switch_case` ops (Case, StatelessCase) a traced function holds."""
    graph = tf.function(fn, jit_compile=True).get_concrete_function(*args).graph
    return [op.type for op in graph.get_operations() if op.type in ("Case", "StatelessCase")]


def test_unpad_budget_under_xla_traces_one_encoder():
    # A budget is one static size: no switch between four encoders to compile, as True builds.
    config = tiny_config()
    model, _ = build("masked_lm", config)
    inputs, mask = _batch(config, "masked_lm")
    ids, attention = tf.constant(inputs["input_ids"]), tf.constant(inputs["attention_mask"])

    def forward(unpad):
        return lambda i, m: model(input_ids=i, attention_mask=m, unpad=unpad).logits

    assert _case_ops(forward(True), ids, attention)  # the check sees True's switch
    assert _case_ops(forward(int(mask.sum())), ids, attention) == []


def test_unpad_budget_in_a_graph_of_unknown_shapes():
    # tf.function without static B and T: the exact stream (the same numbers), the budget checked.
    config = tiny_config()
    model, _ = build("masked_lm", config)
    inputs, mask = _batch(config, "masked_lm")
    real = int(mask.sum())
    spec = [tf.TensorSpec([None, None], tf.int64)] * 2
    base = model(**inputs).logits.numpy()
    for budget in (real, real + 3):
        got = tf.function(lambda i, m: model(input_ids=i, attention_mask=m, unpad=budget).logits,
                          input_signature=spec)(inputs["input_ids"], inputs["attention_mask"]).numpy()
        assert_close(_real(got, mask), _real(base, mask), what=str(budget))
        assert (got[mask == 0] == 0).all()
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"unpad={real - 1} slots cannot hold"):
        tf.function(lambda i, m: model(input_ids=i, attention_mask=m, unpad=real - 1).logits,
                    input_signature=spec)(inputs["input_ids"], inputs["attention_mask"])


def _numpy_attention(q, k, v, causal):
    """Softmax attention of one sequence, float64: q/k/v (h, n, D)."""
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], bool)), scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    return (probs / probs.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("strategy", ["sequences", "padded", "budget"])
def test_packed_attention_keeps_sequences_apart(strategy, causal):
    # 'padded' is XLA's strategy; 'budget' gives it XLA's stream of a static size, the real
    # tokens and then padding positions (computed, then dropped). All run here against NumPy.
    _, mask = padded_batch(tiny_config(), lengths=(4, 6, 1, 3))
    rng = np.random.default_rng(2)
    N = int(mask.sum())
    q, k, v = (rng.standard_normal((1, 2, N, 8)) for _ in range(3))
    lengths = mask.sum(1)
    bounds = np.cumsum([0, *lengths])
    want = np.concatenate([_numpy_attention(q[0, :, a:b], k[0, :, a:b], v[0, :, a:b], causal)
                           for a, b in zip(bounds[:-1], bounds[1:])], axis=1)[None]
    if strategy != "budget":
        got = packed_attention(*(tf.constant(x, tf.float32) for x in (q, k, v)), pack(mask), is_causal=causal,
                               strategy=strategy)
        assert_close(got.numpy(), want, atol=1e-5, what=strategy)
        return
    packing = pack(mask, budgets=(1.0,))  # every position, the real ones first
    extra = 4  # a stream of N + 4 rows, as run_packed makes one
    garbage = rng.standard_normal((1, 2, extra, 8))
    fixed = dataclasses.replace(packing, index=packing.index[: N + extra], budgets=(N + extra,))
    got = packed_attention(*(tf.constant(np.concatenate([x, garbage], 2), tf.float32) for x in (q, k, v)), fixed,
                           is_causal=causal)
    assert_close(got.numpy()[:, :, :N], want, atol=1e-5, what="budget")
    assert np.isfinite(got.numpy()).all()


def test_xla_stream_sizes_hold_the_real_tokens_and_keep_their_order():
    # The stream of a size n begins with the real tokens in order; run_packed picks the smallest n.
    _, mask = padded_batch(tiny_config(), lengths=LENGTHS)  # 15 real of 28
    packing = pack(mask, budgets=(0.25, 0.5, 0.75))
    assert packing.budgets == (8, 16, 24, 28)
    np.testing.assert_array_equal(packing.index[:15], np.flatnonzero(mask))
    assert sorted(packing.index.numpy()) == list(range(28))  # a permutation of the positions

    def budget(p):
        return tf.constant(p.budgets[0])

    # Named functions, not nested lambdas: autograph reads a lambda's source line, and two lambdas
    # on one line can be confused with each other.
    @tf.function(jit_compile=True, autograph=False)
    def chosen(m):
        return run_packed(budget, pack(m, (0.25, 0.5, 0.75)))

    assert int(run_packed(budget, packing)) == 16
    assert int(chosen(tf.constant(mask))) == 16


def _grads(model, tape, loss):
    variables = model.trainable_variables
    return {v.path: tf.convert_to_tensor(g).numpy() for v, g in zip(variables, tape.gradient(loss, variables))
            if g is not None}


def _loss_and_grads(model, inputs, options):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(**inputs, **options, training=True).loss)
    return float(loss), _grads(model, tape, loss)


def test_unpad_and_masked_positions_only_give_the_padded_gradients():
    config = tiny_config()
    model, _ = build("masked_lm", config)  # dropout is 0 in the tiny test config: the paths are deterministic
    inputs, _ = _batch(config, "masked_lm")
    inputs = {k: tf.constant(v) for k, v in inputs.items()}
    base_loss, base = _loss_and_grads(model, inputs, {})

    def step(ids, mask, labels, **options):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(input_ids=ids, attention_mask=mask, labels=labels, training=True, **options).loss)
        return loss, [g if g is None else tf.convert_to_tensor(g)
                      for g in tape.gradient(loss, model.trainable_variables)]

    paths = [v.path for v in model.trainable_variables]
    labelled = int((inputs["labels"].numpy() != -100).sum())
    real = int(inputs["attention_mask"].numpy().sum())
    for name, options in {"unpad": {"unpad": True}, "masked": {"masked_positions_only": True},
                          "masked rows": {"masked_positions_only": labelled + 3},
                          "both": {"unpad": True, "masked_positions_only": True},
                          "budget": {"unpad": real + 2}}.items():
        results = {"eager": _loss_and_grads(model, inputs, options)}
        # In a graph the streams have their exact sizes; under XLA True runs the head on every
        # row, and an int M on M rows (static shapes); a token budget is one stream's size.
        for mode, jit in {"unpad": (), "masked": (("xla", True),), "masked rows": (("xla", True),),
                          "both": (("graph", False),), "budget": (("xla", True),)}[name]:
            loss, grads = tf.function(lambda *a: step(*a, **options), jit_compile=jit)(
                inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
            results[mode] = (float(loss), {p: g.numpy() for p, g in zip(paths, grads) if g is not None})
        for mode, (loss, g) in results.items():
            assert abs(loss - base_loss) <= 1e-6 * abs(base_loss), f"{name} {mode}"
            assert g.keys() == base.keys(), f"{name} {mode}"
            for key in base:
                assert_close(g[key], base[key], atol=1e-5, what=f"{name} {mode}: {key}")


def test_unpad_under_xla_equals_the_eager_padded_logits(monkeypatch):
    monkeypatch.setattr(roberta_tf.unpad, "_BUDGETS", (0.5, 1.0))  # two encoders to compile, not four
    config = tiny_config()
    model, _ = build("masked_lm", config)
    inputs, mask = _batch(config, "masked_lm")
    ids, attention = tf.constant(inputs["input_ids"]), tf.constant(inputs["attention_mask"])
    base = model(input_ids=ids, attention_mask=attention).logits.numpy()
    got = tf.function(lambda i, m: model(input_ids=i, attention_mask=m, unpad=True).logits, jit_compile=True)(
        ids, attention).numpy()
    assert_close(_real(got, mask), _real(base, mask))
    assert (got[mask == 0] == 0).all()


def test_masked_positions_only_logits_are_the_labelled_rows():
    config = tiny_config()
    model, state = build("masked_lm", config)
    inputs, _ = _batch(config, "masked_lm")
    labels = inputs["labels"].copy()
    labels[0, 1:4] = -100  # some real positions are not labelled either
    inputs["labels"] = labels
    full = model(**inputs)
    keep = labels != -100
    ref = reference.forward(config, state, "masked_lm", **inputs)
    compiled = tf.function(lambda i, m, y: model(input_ids=i, attention_mask=m, labels=y, masked_positions_only=True),
                           jit_compile=True)
    for mode, only in (("eager", model(**inputs, masked_positions_only=True)),
                       ("xla", compiled(*(tf.constant(inputs[k]) for k in ("input_ids", "attention_mask", "labels"))))):
        assert only.logits.shape == (int(keep.sum()), config.vocab_size), mode
        assert_close(only.logits.numpy(), full.logits.numpy()[keep], what=mode)
        only_loss, full_loss = float(tf.reduce_mean(only.loss)), float(tf.reduce_mean(full.loss))
        assert abs(only_loss - full_loss) <= 1e-6 * abs(full_loss), mode
        assert rel_err(only.logits.numpy(), ref["logits"][keep]) <= 1e-5, mode
        assert abs(only_loss - float(ref["loss"])) <= 1e-5 * abs(float(ref["loss"])), mode


def test_masked_positions_only_rows_are_the_labelled_ones_then_zeros():
    # An int M sizes the logits statically (XLA's shapes): the labelled rows, then zeros; too few
    # rows are refused eagerly and give a NaN loss under XLA, never a loss over some labels.
    config = tiny_config()
    model, state = build("masked_lm", config)
    inputs, _ = _batch(config, "masked_lm")
    keep = inputs["labels"] != -100
    labelled = int(keep.sum())
    ref = reference.forward(config, state, "masked_lm", **inputs)
    tensors = [tf.constant(inputs[k]) for k in ("input_ids", "attention_mask", "labels")]

    def call(rows):
        return tf.function(lambda i, m, y: model(input_ids=i, attention_mask=m, labels=y, masked_positions_only=rows),
                           jit_compile=True)(*tensors)

    # A NumPy integer (`(labels != -100).sum()`) is a size like a Python int.
    numpy_rows = np.int64(keep.sum() + 2)
    for mode, out in (("eager", model(**inputs, masked_positions_only=numpy_rows)), ("xla", call(labelled + 2))):
        assert out.logits.shape == (labelled + 2, config.vocab_size), mode
        assert rel_err(out.logits.numpy()[:labelled], ref["logits"][keep]) <= 1e-5, mode
        assert (out.logits.numpy()[labelled:] == 0).all(), mode
        assert abs(float(tf.reduce_mean(out.loss)) - float(ref["loss"])) <= 1e-5 * abs(float(ref["loss"])), mode
    with pytest.raises(ValueError, match=f"masked_positions_only={labelled - 1} rows cannot hold the {labelled}"):
        model(**inputs, masked_positions_only=labelled - 1)
    assert np.isnan(call(labelled - 1).loss.numpy()).all()
    for bad in (-1, 2.5, "all"):
        with pytest.raises(ValueError, match="masked_positions_only must be True, False or the number of rows"):
            model(**inputs, masked_positions_only=bad)


def test_masked_positions_only_needs_labels():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    with pytest.raises(ValueError, match="masked_positions_only=True .* give labels"):
        model(input_ids=np.array([[0, 5, 6, 2]]), masked_positions_only=True)


# ---------------------------------------------------------------------------- first_token_only

@pytest.mark.parametrize("unpad", [False, True])
@pytest.mark.parametrize("head", ["sequence_classification", "multiple_choice"])
@pytest.mark.parametrize("model_type", ["roberta", "roberta-prelayernorm"])
def test_classification_heads_compute_the_last_layer_for_the_first_token_only(head, model_type, unpad, monkeypatch):
    # The heads read `<s>` alone: the last layer computes (B, 1, H), every other layer (B, T, H)
    # (under `unpad` the packed stream, (1, N, H)), and the logits and loss are the float64
    # reference's (which computes every position).
    config = tiny_config(num_labels=3, model_type=model_type)
    model, state = build(head, config)
    inputs, _ = _batch(config, head)
    lengths = []
    layer_call = roberta_tf.modeling.TFRobertaLayer.call

    def spy(self, *args, **kwargs):
        out = layer_call(self, *args, **kwargs)
        lengths.append(out[0].shape[1])
        return out

    monkeypatch.setattr(roberta_tf.modeling.TFRobertaLayer, "call", spy)
    got = model(**inputs, unpad=unpad)
    T = inputs["input_ids"].shape[-1]
    width = int(np.count_nonzero(inputs["attention_mask"])) if unpad else T
    assert lengths == [width] * (config.num_hidden_layers - 1) + [1]
    ref = _run_reference(config, state, head, inputs)
    assert rel_err(got.logits.numpy(), ref["logits"]) <= 1e-5
    assert rel_err(np.mean(got.loss), ref["loss"]) <= 1e-5


def test_first_token_only_computes_every_position_when_more_is_read():
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    ids, mask = padded_batch(config, lengths=LENGTHS)
    (B, T), H = ids.shape, config.hidden_size
    full = model.roberta(ids, attention_mask=mask).last_hidden_state
    first = model.roberta(ids, attention_mask=mask, first_token_only=True).last_hidden_state
    assert tuple(full.shape) == (B, T, H) and tuple(first.shape) == (B, 1, H)
    assert_close(first[:, 0].numpy(), full[:, 0].numpy(), what="first token")
    # what reads more than `<s>` after the last layer: every position computed, as without it
    for options in ({"output_hidden_states": True}, {"output_attentions": True}, {"training": True}):
        out = model.roberta(ids, attention_mask=mask, first_token_only=True, **options).last_hidden_state
        assert tuple(out.shape) == (B, T, H), options
    # in a graph and under XLA the same path, the same numbers (unpadded too)
    for jit in (False, True):
        for unpad in (False, True):
            call = tf.function(lambda i, m, u=unpad: model(i, attention_mask=m, unpad=u).logits, jit_compile=jit)
            assert_close(call(ids, mask).numpy(), model(ids, attention_mask=mask).logits.numpy(),
                         what=f"jit_compile={jit}, unpad={unpad}")


def test_first_token_only_under_unpad_gives_the_packed_forward_first_states_left_padding_included():
    # The last layer on the padded rows must give what the whole packed forward gives at position 0:
    # the real first tokens' states, zeros where a row's first position is padding (left padding),
    # and NaN under XLA when a budget leaves real tokens out (as the packed states are).
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    ids, mask = padded_batch(config, lengths=LENGTHS)
    # row 1 padded on the left (ids and mask shifted): its first position is padding
    real = int(mask[1].sum())
    ids[1], mask[1] = np.roll(ids[1], ids.shape[1] - real), np.roll(mask[1], ids.shape[1] - real)
    assert mask[1, 0] == 0 and ids[1, -real] == config.bos_token_id
    full = model.roberta(ids, attention_mask=mask, unpad=True).last_hidden_state
    first = model.roberta(ids, attention_mask=mask, unpad=True, first_token_only=True).last_hidden_state
    padded = model.roberta(ids, attention_mask=mask).last_hidden_state
    assert tuple(first.shape) == (ids.shape[0], 1, config.hidden_size)
    assert_close(first[:, 0].numpy(), full[:, 0].numpy(), what="first states, packed")
    assert not np.asarray(first[1]).any() and np.abs(full[0, 0].numpy()).sum() > 0
    keep = [0, 2, 3]  # first position real: v4's own (padded) states there
    assert_close(first.numpy()[keep, 0], padded.numpy()[keep, 0], what="first states, padded")
    for jit in (False, True):  # in a graph and under XLA: the same path and numbers
        call = tf.function(lambda i, m: model.roberta(i, attention_mask=m, unpad=True, first_token_only=True)
                           .last_hidden_state, jit_compile=jit)
        assert_close(call(ids, mask).numpy(), first.numpy(), what=f"jit_compile={jit}")
    short = tf.function(lambda i, m: model.roberta(i, attention_mask=m, unpad=8, first_token_only=True)
                        .last_hidden_state, jit_compile=True)(ids, mask)
    assert tuple(short.shape) == tuple(first.shape) and np.isnan(short.numpy()).all()  # 15 real tokens, 8 slots
    for empty in ([3], [0, 1, 2, 3]):  # rows with no real token: what the packed forward gives there
        mask[empty] = 0
        full = model.roberta(ids, attention_mask=mask, unpad=True).last_hidden_state[:, :1]
        for jit in (None, False, True):  # eagerly, in a graph, under XLA (a budget stream: slots past the real tokens)
            call = lambda i, m: model.roberta(i, attention_mask=m, unpad=True, first_token_only=True).last_hidden_state
            first = (call if jit is None else tf.function(call, jit_compile=jit))(ids, mask)
            assert_close(first.numpy(), full.numpy(), what=f"empty rows {empty}, jit_compile={jit}")
            assert not np.asarray(first[3]).any()  # zeros, as the packed forward gives at padding


class _Reader(tf.keras.layers.Layer):
    """A replacement classifier or pooler that reads every position (their mean)."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width, self.seen = width, []

    def call(self, states, training=False):
        self.seen.append(tuple(states.shape))
        return tf.reduce_mean(states, 1)[:, : self.width]


def test_a_replaced_classifier_or_pooler_gets_every_position():
    config = tiny_config(num_labels=3)
    ids, mask = padded_batch(config, lengths=LENGTHS)
    (B, T), H = ids.shape, config.hidden_size
    model, _ = build("sequence_classification", config)
    model.classifier = _Reader(3)
    logits = model(ids, attention_mask=mask).logits
    want = tf.reduce_mean(model.roberta(ids, attention_mask=mask).last_hidden_state, 1)[:, :3]
    assert model.classifier.seen == [(B, T, H)]
    assert_close(logits.numpy(), want.numpy(), what="mean over every position")
    model, _ = build("multiple_choice", config)
    model.roberta.pooler = _Reader(H)
    model(ids[None], attention_mask=mask[None])
    assert model.roberta.pooler.seen == [(B, T, H)]
