"""The two opt-in fast paths against the padded forward and the float64 NumPy reference:
`unpad=True` (the real tokens packed into one stream, each sequence attending over itself)
for every head, forward and backward, and the MLM head `masked_positions_only=True`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from roberta_pt.modeling import RobertaLayer
from roberta_pt.unpad import pack, packed_attention
from tests.helpers import ALL_HEADS, assert_close, padded_batch, rel_err, tiny_config
from tests.roberta_pt.common import build, run_reference, t

LENGTHS = (7, 5, 2, 1)  # 15 real tokens of 28: more than half is padding


def _batch(config, head, seed=0):
    """Inputs and labels for `head` on a right-padded batch; the (B, T) real-token mask."""
    rng = np.random.default_rng(seed)
    ids, mask = padded_batch(config, lengths=LENGTHS, seed=seed)
    B, T = ids.shape
    if head == "multiple_choice":  # (B, C, T): the second choice has other lengths
        ids2, mask2 = padded_batch(config, lengths=(3, 7, 6, 4), seed=seed + 1)
        ids, mask = np.stack([ids, ids2], 1), np.stack([mask, mask2], 1)
    inputs = dict(input_ids=t(ids), attention_mask=t(mask))
    token_labels = np.where(mask == 1, rng.integers(0, config.vocab_size, mask.shape), -100)
    if head in ("masked_lm", "causal_lm"):
        inputs["labels"] = t(token_labels)
    elif head == "token_classification":
        inputs["labels"] = t(np.where(mask == 1, rng.integers(0, config.num_labels, mask.shape), -100))
    elif head == "sequence_classification":
        inputs["labels"] = t(rng.integers(0, config.num_labels, B))
    elif head == "multiple_choice":
        inputs["labels"] = t(rng.integers(0, 2, B))
    elif head == "question_answering":
        inputs["start_positions"], inputs["end_positions"] = t(np.array([1, 0, 1, 0])), t(np.array([5, 3, 1, 0]))
    if head == "causal_lm":
        inputs["use_cache"] = False  # a cache needs the padded layout
    return inputs, mask


def _real(value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The rows of a (B, T, ...) output at real positions; other outputs whole."""
    return value[mask.astype(bool)] if value.shape[:mask.ndim] == mask.shape else value


@pytest.mark.parametrize("head", ALL_HEADS)
def test_unpad_equals_padded_forward_and_reference(head):
    config = tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm")
    model, state = build(head, config)
    inputs, mask = _batch(config, head)
    with torch.no_grad():
        padded = model(**inputs, output_hidden_states=True)
        packed = model(**inputs, output_hidden_states=True, unpad=True)
    reference_inputs = {k: v for k, v in inputs.items() if k != "use_cache"}
    reference = run_reference(config, state, head, **reference_inputs, output_hidden_states=True)
    flat_mask = mask.reshape(-1, mask.shape[-1])  # multiple choice: (B * C, T) states
    for name, ref in reference.items():
        if name == "past_key_values":
            continue
        got, base = packed[name], padded[name]
        if isinstance(ref, tuple):  # hidden states, one (B, T, H) per layer
            for i, (g, b, r) in enumerate(zip(got, base, ref)):
                assert_close(_real(g.numpy(), flat_mask), _real(b.numpy(), flat_mask), what=f"{head}.{name}[{i}]")
                assert rel_err(_real(g.numpy(), flat_mask), _real(r, flat_mask)) <= 1e-5, f"{head}.{name}[{i}]"
            continue
        m = flat_mask if name in ("last_hidden_state",) and head == "multiple_choice" else mask
        if head == "question_answering" and name == "loss":
            # Unpadded, QA leaves padding out of the softmax: the loss over real positions only.
            real = [np.asarray(reference[k])[b, : LENGTHS[b]] for k in ("start_logits", "end_logits") for b in range(4)]
            targets = [int(p) for k in ("start_positions", "end_positions") for p in inputs[k]]
            want = np.mean([np.logaddexp.reduce(r) - r[p] for r, p in zip(real, targets)])
            assert abs(float(got) - want) <= 1e-5 * want
            continue
        assert_close(_real(got.numpy(), m), _real(base.numpy(), m), what=f"{head}.{name}")
        assert rel_err(_real(got.numpy(), m), _real(np.asarray(ref), m)) <= 1e-5, f"{head}.{name} vs reference"
        if got.shape[:m.ndim] == m.shape:  # token-level outputs are not computed at padding
            fill = torch.finfo(got.dtype).min if head == "question_answering" else 0.0
            assert bool((got[torch.from_numpy(m == 0)] == fill).all()), f"{head}.{name} at padding"


def test_unpad_with_left_padding_token_types_and_embeds():
    config = tiny_config(type_vocab_size=2)
    model, state = build("model", config)
    ids, mask = padded_batch(config, lengths=LENGTHS)
    ids, mask = ids[:, ::-1].copy(), mask[:, ::-1].copy()  # left padding
    types = np.random.default_rng(5).integers(0, 2, ids.shape)
    with torch.no_grad():
        for inputs in (
            dict(input_ids=t(ids), attention_mask=t(mask), token_type_ids=t(types)),
            dict(inputs_embeds=model.get_input_embeddings()(t(ids)), attention_mask=t(mask)),
        ):
            padded, packed = model(**inputs), model(**inputs, unpad=True)
            assert_close(_real(packed.last_hidden_state.numpy(), mask), _real(padded.last_hidden_state.numpy(), mask),
                         what=str(sorted(inputs)))
    reference = run_reference(config, state, "model", input_ids=ids, attention_mask=mask, token_type_ids=types)
    got = model(input_ids=t(ids), attention_mask=t(mask), token_type_ids=t(types), unpad=True).last_hidden_state
    assert rel_err(_real(got.detach().numpy(), mask), _real(reference["last_hidden_state"], mask)) <= 1e-5


def test_unpad_without_padding_is_the_plain_forward():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    ids = t(np.random.default_rng(1).integers(4, 100, (3, 6)))
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, attention_mask=torch.ones_like(ids), unpad=True).logits,
                           model(input_ids=ids).logits)


def test_unpad_budget_is_checked_and_gives_the_exact_streams_numbers():
    # TF and Flax take unpad=N for their static shapes; PyTorch's shapes are dynamic, so the stream
    # stays exact and N is checked: one call runs unchanged in all three backends.
    config = tiny_config()
    model, _ = build("masked_lm", config)
    inputs, mask = _batch(config, "masked_lm")
    real = int(mask.sum())
    with torch.no_grad():
        exact = model(**inputs, unpad=True)
        for budget in (real, real + 5, np.int64(mask.size)):
            out = model(**inputs, unpad=budget)
            assert torch.equal(out.logits, exact.logits) and torch.equal(out.loss, exact.loss)
        with pytest.raises(ValueError, match=f"unpad={real - 1} slots cannot hold the {real} real tokens"):
            model(**inputs, unpad=real - 1)
        for bad in (0, -3, 2.5, "all"):
            with pytest.raises(ValueError, match="unpad must be True, False or the token budget"):
                model(**inputs, unpad=bad)


def test_unpad_falls_back_for_attention_probabilities():
    config = tiny_config()
    model, _ = build("model", config)
    inputs, mask = _batch(config, "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one-time notice
        with torch.no_grad():
            padded = model(**inputs, output_attentions=True)
            packed = model(**inputs, output_attentions=True, unpad=True)
    for a, b in zip(packed.attentions, padded.attentions):
        assert torch.equal(a, b)
    assert_close(_real(packed.last_hidden_state.numpy(), mask), _real(padded.last_hidden_state.numpy(), mask))


def _numpy_attention(q, k, v, causal):
    """Softmax attention of one sequence, float64: q/k/v (h, n, D)."""
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    if causal:
        scores = np.where(np.tril(np.ones(scores.shape[-2:], bool)), scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    return (probs / probs.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("strategy", ["sequences", "padded"])
def test_packed_attention_keeps_sequences_apart(strategy, causal):
    # 'padded' is what a GPU runs without the varlen kernel; both run here against NumPy.
    _, mask = padded_batch(tiny_config(), lengths=(4, 6, 1, 3))
    packing = pack(t(mask))
    rng = np.random.default_rng(2)
    N = int(mask.sum())
    q, k, v = (rng.standard_normal((1, 2, N, 8)) for _ in range(3))
    got = packed_attention(*(torch.from_numpy(x).float() for x in (q, k, v)), packing, is_causal=causal,
                           strategy=strategy)
    bounds = np.cumsum([0, *packing.lengths])
    want = np.concatenate([_numpy_attention(q[0, :, a:b], k[0, :, a:b], v[0, :, a:b], causal)
                           for a, b in zip(bounds[:-1], bounds[1:])], axis=1)[None]
    assert_close(got.numpy(), want, atol=1e-5, what=strategy)


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_unpad_and_masked_positions_only_give_the_padded_gradients():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    model.train()  # dropout is 0 in the tiny test config: the paths are deterministic
    inputs, _ = _batch(config, "masked_lm")
    grads = {}
    labelled = int((inputs["labels"] != -100).sum())
    for name, options in {"padded": {}, "unpad": {"unpad": True}, "masked": {"masked_positions_only": True},
                          "masked rows": {"masked_positions_only": labelled + 3},
                          "both": {"unpad": True, "masked_positions_only": True}}.items():
        model.zero_grad(set_to_none=True)
        loss = model(**inputs, **options).loss
        loss.backward()
        grads[name] = (loss.item(), _grads(model))
    base_loss, base = grads.pop("padded")
    for name, (loss, g) in grads.items():
        assert abs(loss - base_loss) <= 1e-6 * abs(base_loss), name
        assert g.keys() == base.keys(), name
        for key in base:
            assert_close(g[key].numpy(), base[key].numpy(), atol=1e-5, what=f"{name}: {key}")


def test_masked_positions_only_logits_are_the_labelled_rows():
    config = tiny_config()
    model, state = build("masked_lm", config)
    inputs, _ = _batch(config, "masked_lm")
    labels = inputs["labels"].clone()
    labels[0, 1:4] = -100  # some real positions are not labelled either
    with torch.no_grad():
        full = model(**{**inputs, "labels": labels})
        only = model(**{**inputs, "labels": labels}, masked_positions_only=True)
    keep = labels != -100
    assert only.logits.shape == (int(keep.sum()), config.vocab_size)
    assert_close(only.logits.numpy(), full.logits[keep].numpy())
    assert abs(float(only.loss) - float(full.loss)) <= 1e-6 * abs(float(full.loss))
    reference = run_reference(config, state, "masked_lm", input_ids=inputs["input_ids"],
                              attention_mask=inputs["attention_mask"], labels=labels)
    assert rel_err(only.logits.numpy(), reference["logits"][keep.numpy()]) <= 1e-5
    assert abs(float(only.loss) - float(reference["loss"])) <= 1e-5 * abs(float(reference["loss"]))


def test_masked_positions_only_rows_are_the_labelled_ones_then_zeros():
    # An int M sizes the logits statically (torch.compile; XLA in the other backends): the
    # labelled rows, then zeros; too few rows are refused eagerly, a NaN loss when compiled.
    config = tiny_config()
    model, state = build("masked_lm", config)
    inputs, _ = _batch(config, "masked_lm")
    keep = (inputs["labels"] != -100).numpy()
    labelled = int(keep.sum())
    reference = run_reference(config, state, "masked_lm", input_ids=inputs["input_ids"],
                              attention_mask=inputs["attention_mask"], labels=inputs["labels"])
    with torch.no_grad():
        out = model(**inputs, masked_positions_only=labelled + 2)
    assert out.logits.shape == (labelled + 2, config.vocab_size)
    assert rel_err(out.logits[:labelled].numpy(), reference["logits"][keep]) <= 1e-5
    assert (out.logits[labelled:] == 0).all()
    assert abs(float(out.loss) - float(reference["loss"])) <= 1e-5 * abs(float(reference["loss"]))
    with pytest.raises(ValueError, match=f"masked_positions_only={labelled - 1} rows cannot hold the {labelled}"):
        model(**inputs, masked_positions_only=labelled - 1)
    for bad in (-1, 2.5, "all"):
        with pytest.raises(ValueError, match="masked_positions_only must be True, False or the number of rows"):
            model(**inputs, masked_positions_only=bad)


def test_masked_positions_only_needs_labels():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    with pytest.raises(ValueError, match="masked_positions_only=True .* give labels"):
        model(input_ids=t(np.array([[0, 5, 6, 2]])), masked_positions_only=True)


def test_projections_with_and_without_gradients_agree():
    # Recording gradients, Q/K/V are one matmul of the concatenated weights; without, three.
    config = tiny_config(is_decoder=True)
    model, state = build("causal_lm", config)
    inputs, mask = _batch(config, "causal_lm")
    inputs.pop("labels")
    recorded = model(**inputs).logits.detach()
    with torch.no_grad():
        plain = model(**inputs).logits
    assert_close(recorded.numpy(), plain.numpy(), atol=1e-5)
    reference = run_reference(config, state, "causal_lm", input_ids=inputs["input_ids"],
                              attention_mask=inputs["attention_mask"])
    assert rel_err(_real(recorded.numpy(), mask), _real(reference["logits"], mask)) <= 1e-5


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
    inputs, mask = _batch(config, head)
    lengths = []
    layer_forward = RobertaLayer.forward

    def spy(self, *args, **kwargs):  # on the class: not a hook, which would turn the path off
        out = layer_forward(self, *args, **kwargs)
        lengths.append(out[0].shape[1])
        return out

    monkeypatch.setattr(RobertaLayer, "forward", spy)
    with torch.no_grad():
        got = model(**inputs, unpad=unpad)
    width = int(mask.sum()) if unpad else inputs["input_ids"].shape[-1]
    assert lengths == [width] * (config.num_hidden_layers - 1) + [1]
    reference = run_reference(config, state, head, **inputs)
    for name in ("logits", "loss"):
        assert rel_err(got[name].numpy(), reference[name]) <= 1e-5, name


def test_first_token_only_computes_every_position_when_more_is_read():
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    ids, mask = (t(a) for a in padded_batch(config, lengths=LENGTHS))
    (B, T), H = ids.shape, config.hidden_size
    with torch.no_grad():
        full = model.roberta(ids, mask).last_hidden_state
        first = model.roberta(ids, mask, first_token_only=True).last_hidden_state
        assert tuple(full.shape) == (B, T, H) and tuple(first.shape) == (B, 1, H)
        assert_close(first[:, 0].numpy(), full[:, 0].numpy(), what="first token")
        # what reads more than `<s>` after the last layer: every position computed, as without it
        for options in ({"output_hidden_states": True}, {"output_attentions": True}):
            out = model.roberta(ids, mask, first_token_only=True, **options).last_hidden_state
            assert tuple(out.shape) == (B, T, H), options
        seen = []
        handle = model.roberta.encoder.layer[-1].output.dense.register_forward_hook(
            lambda module, args, out: seen.append(tuple(out.shape)))
        try:
            logits = model(ids, attention_mask=mask).logits
        finally:
            handle.remove()
        assert seen == [(B, T, H)]  # a hook sees what v4 computes
        assert_close(logits.numpy(), model(ids, attention_mask=mask).logits.numpy(), what="logits with a hook")
    model.train()  # dropout would draw other masks than v4's: every position (dropout is 0 here)
    assert tuple(model.roberta(ids, mask, first_token_only=True).last_hidden_state.shape) == (B, T, H)
    model.eval()
    model.roberta.encoder.layer[0].output.dropout.train()  # Monte-Carlo dropout: one module in training
    assert tuple(model.roberta(ids, mask, first_token_only=True).last_hidden_state.shape) == (B, T, H)


def test_first_token_only_under_unpad_gives_the_packed_forward_first_states_left_padding_included():
    # The last layer on the padded rows must give what the whole packed forward gives at position 0:
    # the real first tokens' states, and zeros where a row's first position is padding (left padding).
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    ids, mask = (t(a) for a in padded_batch(config, lengths=LENGTHS))
    # row 1 padded on the left (ids and mask shifted): its first position is padding
    real = int(mask[1].sum())
    ids[1], mask[1] = ids[1].roll(ids.shape[1] - real), mask[1].roll(ids.shape[1] - real)
    assert mask[1, 0] == 0 and ids[1, -real] == config.bos_token_id
    with torch.no_grad():
        full = model.roberta(ids, mask, unpad=True).last_hidden_state
        first = model.roberta(ids, mask, unpad=True, first_token_only=True).last_hidden_state
        padded = model.roberta(ids, mask).last_hidden_state
    assert tuple(first.shape) == (ids.shape[0], 1, config.hidden_size)
    assert_close(first[:, 0].numpy(), full[:, 0].numpy(), what="first states, packed")
    assert not first[1].any() and full[0, 0].abs().sum() > 0
    keep = [0, 2, 3]  # first position real: v4's own (padded) states there
    assert_close(first[keep, 0].numpy(), padded[keep, 0].numpy(), what="first states, padded")
    for empty in ([3], [0, 1, 2, 3]):  # rows with no real token: what the packed forward gives there
        mask[empty] = 0
        with torch.no_grad():
            full = model.roberta(ids, mask, unpad=True).last_hidden_state[:, :1]
            first = model.roberta(ids, mask, unpad=True, first_token_only=True).last_hidden_state
        assert_close(first.numpy(), full.numpy(), what=f"empty rows {empty}")
        assert not first[3].any()  # zeros, as the packed forward gives at padding


class _Reader(torch.nn.Module):
    """A replacement classifier or pooler that reads every position (their mean)."""

    def __init__(self, width):
        super().__init__()
        self.width, self.seen = width, []

    def forward(self, states):
        self.seen.append(tuple(states.shape))
        return states.mean(1)[:, : self.width]


def test_a_replaced_classifier_or_pooler_gets_every_position():
    config = tiny_config(num_labels=3)
    ids, mask = (t(a) for a in padded_batch(config, lengths=LENGTHS))
    (B, T), H = ids.shape, config.hidden_size
    model, _ = build("sequence_classification", config)
    model.classifier = _Reader(3)
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits
        want = model.roberta(ids, mask).last_hidden_state.mean(1)[:, :3]
    assert model.classifier.seen == [(B, T, H)]
    assert_close(logits.numpy(), want.numpy(), what="mean over every position")
    model, _ = build("multiple_choice", config)
    model.roberta.pooler = _Reader(H)
    with torch.no_grad():
        model(ids[None], attention_mask=mask[None])
    assert model.roberta.pooler.seen == [(B, T, H)]


# ---------------------------------------------------------------------------- the LM head's decoder by oneDNN

def _spy_onednn(monkeypatch):
    """Count the calls of oneDNN's linear kernel (the LM head's decoder on CPU in inference)."""
    calls = []
    kernel = torch.ops.mkldnn._linear_pointwise

    def spy(*args):
        calls.append(tuple(args[0].shape))
        return kernel(*args)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", spy)
    return calls


def _recording_backend():
    """(graphs, backend): a torch.compile backend that keeps each graph dynamo hands it, as text,
    and runs it as traced."""
    graphs = []

    def recording(gm, example_inputs):
        graphs.append(str(gm.graph))
        return gm.forward

    return graphs, recording


def _needs_onednn():
    from roberta_pt import _framework

    if not _framework._onednn_linear:
        pytest.skip("oneDNN's linear kernel is not usable in this torch build or on this CPU (not x86)")


@pytest.mark.parametrize("head", ["masked_lm", "causal_lm"])
def test_the_lm_decoder_runs_on_onednn_in_inference_and_gives_the_reference(head, monkeypatch):
    _needs_onednn()
    config = tiny_config(is_decoder=head == "causal_lm")
    model, state = build(head, config)
    inputs, mask = _batch(config, head)
    inputs = {k: v for k, v in inputs.items() if k not in ("labels", "use_cache")}
    calls = _spy_onednn(monkeypatch)
    with torch.no_grad():
        out = model(**inputs).logits
    assert calls == [tuple(out.shape[:-1]) + (config.hidden_size,)]
    reference = run_reference(config, state, head, **inputs)
    assert rel_err(out.numpy(), reference["logits"]) <= 1e-5
    assert out.is_contiguous() and out.dtype == torch.float32
    if head == "causal_lm":
        return
    with torch.inference_mode():  # the fill-mask path: a few rows, MKL's slowest case
        few = model(**inputs, labels=t(np.where(mask == 1, 5, -100)), masked_positions_only=True).logits
    assert len(calls) == 2 and calls[1][0] == few.shape[0] == int(mask.sum())
    assert_close(few.numpy(), reference["logits"][mask.astype(bool)], atol=1e-5, what="masked rows")


def test_the_lm_decoder_call_stays_where_the_kernel_would_change_what_runs(monkeypatch):
    """Gradients, hooks, a wrapped or swapped decoder, float64, traces and compiled graphs all
    go through `decoder(x)` and see what it does."""
    _needs_onednn()
    from roberta_pt._framework import vocabulary_projection

    config = tiny_config()
    model, state = build("masked_lm", config)
    inputs, mask = _batch(config, "masked_lm")
    inputs.pop("labels")
    calls = _spy_onednn(monkeypatch)
    with torch.no_grad():
        expected = model(**inputs).logits
    assert len(calls) == 1
    calls.clear()

    # Gradients wanted: the product autograd knows, and they reach the tied embedding.
    loss = model(**inputs).logits.square().mean()
    loss.backward()
    assert calls == [] and model.roberta.embeddings.word_embeddings.weight.grad.abs().sum() > 0

    with torch.no_grad():
        # A forward hook on the decoder runs and its result is the output.
        handle = model.lm_head.decoder.register_forward_hook(lambda module, args, output: output * 0 + 7.0)
        hooked = model(**inputs).logits
        handle.remove()
        assert calls == [] and bool((hooked == 7.0).all())
        # A global hook counts too.
        seen = []
        handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, output: seen.append(type(module)))
        model(**inputs)
        handle.remove()
        assert calls == [] and torch.nn.Linear in seen
        # A forward set on the instance (accelerate's offloading wraps it so).
        decoder = model.lm_head.decoder
        decoder.forward = lambda x: torch.full(x.shape[:-1] + (config.vocab_size,), 3.0)
        assert bool((model(**inputs).logits == 3.0).all()) and calls == []
        del decoder.forward
        # A decoder of another class: torch.ao's dynamic int8 Linear (LoRA's wrapper alike).
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        assert type(quantized.lm_head.decoder) is not torch.nn.Linear
        assert rel_err(quantized(**inputs).logits.numpy(), expected.numpy()) < 0.1 and calls == []
        # Not float32.
        as64 = torch.nn.Linear(config.hidden_size, config.vocab_size).double()
        x64 = torch.randn(3, config.hidden_size, dtype=torch.float64)
        assert torch.equal(vocabulary_projection(as64, x64), as64(x64)) and calls == []
        # torch.export records the call as written (for ONNX, AOTInductor), no oneDNN op in its graph:
        # non-strict (tracing under a dispatch mode) and strict (dynamo), weights frozen as for serving.
        model.requires_grad_(False)
        for strict in (False, True):
            program = torch.export.export(model, (), inputs, strict=strict)
            assert calls == [] and "onednn" not in str(program.graph) and "mkldnn" not in str(program.graph)
            assert_close(program.module()(**inputs).logits.numpy(), expected.numpy(), atol=1e-5, what="exported")
        model.requires_grad_(True)

    # A trace records the plain product (what ONNX export traces), not the oneDNN op.
    with torch.no_grad():
        head = model.lm_head
        traced = torch.jit.trace(head, torch.randn(2, 3, config.hidden_size), check_trace=False)
    assert calls == [] and "mkldnn" not in str(traced.inlined_graph) and "onednn" not in str(traced.inlined_graph)
    with torch.no_grad():
        x = torch.randn(2, 3, config.hidden_size)
        assert_close(traced(x).numpy(), head(x).numpy(), atol=1e-5, what="traced head")
    assert len(calls) == 1


def test_the_lm_decoder_kernel_stays_one_op_under_torch_compile():
    _needs_onednn()
    torch.compiler.reset()
    config = tiny_config()
    model, state = build("masked_lm", config)
    inputs, mask = _batch(config, "masked_lm")
    inputs.pop("labels")
    graphs, recording = _recording_backend()
    compiled = torch.compile(model, fullgraph=True, backend=recording, dynamic=True)
    try:
        with torch.no_grad():
            got = compiled(**inputs).logits
            shorter = {k: v[:, :5] for k, v in inputs.items()}  # another length
            got_shorter = compiled(**shorter).logits
        assert graphs and all(graph.count("roberta3.onednn_linear") == 1 for graph in graphs)
        inference_graphs = len(graphs)
        for given, logits in ((inputs, got), (shorter, got_shorter)):
            reference = run_reference(config, state, "masked_lm", **given)
            assert rel_err(logits.numpy(), reference["logits"]) <= 1e-5
        # Gradients wanted: the graph is traced again, with the plain product.
        loss = compiled(**inputs).logits.square().mean()
        loss.backward()
        assert len(graphs) == inference_graphs + 1 and "onednn" not in graphs[-1] and "linear" in graphs[-1]
        assert model.lm_head.bias.grad.abs().sum() > 0
    finally:
        torch.compiler.reset()


def test_the_lm_decoder_kernel_is_left_out_of_compiled_graphs_under_transforms_and_modes():
    """Inside torch.compile the guards are traced too: a transform, a dual level or a function
    mode gives a graph with the plain product, and the numbers (values, tangents) of `decoder(x)`."""
    _needs_onednn()
    import torch.autograd.forward_ad as fwAD

    from roberta_pt._framework import vocabulary_projection

    torch.compiler.reset()
    torch.manual_seed(0)
    decoder = torch.nn.Linear(8, 11).requires_grad_(False)
    x, tangent = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    want, want_tangent = decoder(x), torch.nn.functional.linear(tangent, decoder.weight)
    graphs, recording = _recording_backend()
    project = torch.compile(lambda v: vocabulary_projection(decoder, v), backend=recording, fullgraph=True)
    try:
        with torch.no_grad():
            assert_close(project(x).numpy(), want.numpy(), atol=1e-6, what="compiled")
            assert "roberta3.onednn_linear" in graphs[-1]  # the kernel where nothing is in the way
            jvp = torch.compile(lambda v, t: torch.func.jvp(lambda u: vocabulary_projection(decoder, u), (v,), (t,))[1],
                                backend=recording, fullgraph=True)
            assert_close(jvp(x, tangent).numpy(), want_tangent.numpy(), atol=1e-5, what="compiled jvp")
            assert "onednn" not in graphs[-1]
            with fwAD.dual_level():
                out = fwAD.unpack_dual(project(fwAD.make_dual(x, tangent)))
                assert out.tangent is not None
                assert_close(out.tangent.numpy(), want_tangent.numpy(), atol=1e-5, what="compiled dual tangent")
            with torch.device("cpu"):  # a torch-function mode
                assert_close(project(x).numpy(), want.numpy(), atol=1e-6, what="under a function mode")
            assert "onednn" not in graphs[-1]
    finally:
        torch.compiler.reset()


def test_the_lm_decoder_kernel_is_left_out_under_transforms_modes_and_odd_tensors(monkeypatch):
    """Where `F.linear` is what a transform, a mode or an unusual tensor must see, the helper gives
    exactly what `decoder(x)` gives (values, tangents, dtype, errors) and the oneDNN op never runs."""
    _needs_onednn()
    import torch.autograd.forward_ad as fwAD
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    from roberta_pt import _framework
    from roberta_pt._framework import vocabulary_projection

    torch.manual_seed(0)
    decoder = torch.nn.Linear(8, 11)
    x, tangent = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    calls = _spy_onednn(monkeypatch)
    with torch.no_grad():
        want = decoder(x)
        assert_close(vocabulary_projection(decoder, x).numpy(), want.numpy(), atol=1e-6, what="plain call")
    assert len(calls) == 1  # the kernel runs on this very call when nothing is in the way
    calls.clear()

    want_tangent = torch.nn.functional.linear(tangent, decoder.weight).detach()
    decoder.requires_grad_(False)
    with torch.no_grad():
        # Forward-mode AD with frozen weights, under no_grad: the tangent is the decoder's.
        _, got = torch.func.jvp(lambda v: vocabulary_projection(decoder, v), (x,), (tangent,))
        assert_close(got.numpy(), want_tangent.numpy(), atol=1e-5, what="jvp tangent")
        with fwAD.dual_level():
            out = fwAD.unpack_dual(vocabulary_projection(decoder, fwAD.make_dual(x, tangent)))
            assert out.tangent is not None
            assert_close(out.tangent.numpy(), want_tangent.numpy(), atol=1e-5, what="dual tangent")
        assert_close(torch.func.vmap(lambda v: vocabulary_projection(decoder, v))(x).numpy(), want.numpy(),
                     atol=1e-5, what="vmap")
        # Autocast: bfloat16 out, as decoder(x) gives.
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert vocabulary_projection(decoder, x).dtype == decoder(x).dtype == torch.bfloat16
        # oneDNN switched off by the user.
        with torch.backends.mkldnn.flags(enabled=False):
            assert torch.equal(vocabulary_projection(decoder, x), decoder(x))
        # A dispatch mode counts the product it knows; a bare one sees it.
        with FlopCounterMode(display=False) as counter:
            vocabulary_projection(decoder, x)
        assert counter.get_total_flops() == 2 * 6 * 8 * 11

        class Seen(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                seen.append(str(func))
                return func(*args, **(kwargs or {}))

        seen = []
        with Seen():
            vocabulary_projection(decoder, x)
        assert any("addmm" in name or "linear" in name for name in seen) and not any("onednn" in n for n in seen)
        # A bias that is a strided view gives the right sums.
        strided = torch.nn.Linear(8, 11)
        strided.bias = torch.nn.Parameter(torch.randn(22)[::2], requires_grad=False)
        assert not strided.bias.is_contiguous()
        assert_close(vocabulary_projection(strided, x).numpy(), strided(x).numpy(), atol=1e-6, what="strided bias")
        # A weight of a tensor subclass (as torchao's): the decoder's own call.
        class Marked(torch.Tensor):
            pass

        marked = torch.nn.Linear(8, 11)
        marked.weight = torch.nn.Parameter(decoder.weight.detach().clone().as_subclass(Marked), requires_grad=False)
        assert type(marked.weight) is not torch.Tensor
        assert_close(vocabulary_projection(marked, x).numpy(), want.numpy() - decoder.bias.numpy() + marked.bias.detach().numpy(),
                     atol=1e-5, what="subclass weight")
        # The wrong width is torch's shape error, as decoder(x) gives.
        with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
            vocabulary_projection(decoder, torch.randn(2, 3, 7))
        # A weight on another device than the input is the decoder's error, not a silent zero.
        on_meta = torch.nn.Linear(8, 11, device="meta")
        with pytest.raises(RuntimeError):
            on_meta(x)
        with pytest.raises(RuntimeError):
            vocabulary_projection(on_meta, x)
        # The kernel off (as where the import's probe failed).
        monkeypatch.setattr(_framework, "_onednn_linear", False)
        assert torch.equal(vocabulary_projection(decoder, x), decoder(x))
    assert calls == []


def test_the_lm_head_still_scripts():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    scripted = torch.jit.script(model.lm_head)
    x = torch.randn(2, 3, config.hidden_size)
    with torch.no_grad():
        assert_close(scripted(x).numpy(), model.lm_head(x).numpy(), atol=1e-5, what="scripted head")
