"""Losses (by hand), the key/value cache, generate(), gradient checkpointing and the
embedding utilities of the PyTorch heads."""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
import torch

from roberta_core.generation import GenerationConfig
from roberta_core.weights import parameter_shapes
from roberta_pt import RobertaForCausalLM, RobertaForMaskedLM
from roberta_pt.heads import (
    _filter_logits,
    causal_lm_loss,
    masked_lm_loss,
    multiple_choice_loss,
    question_answering_loss,
    sequence_classification_loss,
    token_classification_loss,
)
from tests.helpers import ALL_HEADS, padded_batch, tiny_config
from tests.roberta_pt.common import CLASSES, build, run_reference, t


def _ce(row, label):
    """-log softmax(row)[label], by hand."""
    return math.log(sum(math.exp(v) for v in row)) - row[label]


def _f(x):
    return torch.tensor(x, dtype=torch.float32)


# ---------------------------------------------------------------------------- losses by hand

def test_masked_lm_loss_by_hand():
    logits = [[[2.0, 0.0, -1.0, 0.5], [0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.0, 3.0]]]
    labels = torch.tensor([[-100, 2, 3]])
    want = (_ce(logits[0][1], 2) + _ce(logits[0][2], 3)) / 2
    assert abs(float(masked_lm_loss(_f(logits), labels)) - want) < 1e-6
    assert abs(float(token_classification_loss(_f(logits), labels)) - want) < 1e-6


def test_all_ignored_labels_give_zero_not_nan():
    logits = _f([[[2.0, 0.0, -1.0], [0.1, 0.2, 0.3]]]).requires_grad_()
    loss = masked_lm_loss(logits, torch.full((1, 2), -100))
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert float(causal_lm_loss(logits.detach(), torch.tensor([[5, -100]]))) == 0.0  # only the unshifted label is real


def test_causal_lm_loss_is_shifted_by_hand():
    logits = [[[2.0, 0.0, -1.0], [0.1, 0.2, 0.3], [5.0, 5.0, 5.0]]]
    labels = torch.tensor([[1, 2, 0]])
    # Position 0 predicts label 2 (token 1's label... the next token), position 1 predicts 0.
    want = (_ce(logits[0][0], 2) + _ce(logits[0][1], 0)) / 2
    assert abs(float(causal_lm_loss(_f(logits), labels)) - want) < 1e-6


def test_sequence_classification_losses_by_hand():
    # Regression, one label: logits (B, 1) and labels (B,) are squeezed together.
    assert abs(float(sequence_classification_loss(_f([[0.5], [2.0]]), _f([1.0, 0.0]), "regression"))
               - (0.25 + 4.0) / 2) < 1e-6
    assert abs(float(sequence_classification_loss(_f([[0.5, 1.0]]), _f([[0.0, 3.0]]), "regression"))
               - (0.25 + 4.0) / 2) < 1e-6
    rows = [[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]
    want = (_ce(rows[0], 1) + _ce(rows[1], 0)) / 2
    assert abs(float(sequence_classification_loss(_f(rows), torch.tensor([1, 0]), "single_label_classification"))
               - want) < 1e-6
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    y = [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    bce = -sum(yy * math.log(sig(x)) + (1 - yy) * math.log(1 - sig(x))
               for r, yr in zip(rows, y) for x, yy in zip(r, yr)) / 6
    assert abs(float(sequence_classification_loss(_f(rows), _f(y), "multi_label_classification")) - bce) < 1e-6


def test_multiple_choice_loss_by_hand():
    rows = [[0.3, -0.2], [1.5, 0.5]]
    want = (_ce(rows[0], 1) + _ce(rows[1], 0)) / 2
    assert abs(float(multiple_choice_loss(_f(rows), torch.tensor([1, 0]))) - want) < 1e-6


def test_question_answering_loss_clamps_and_ignores_by_hand():
    start = [[0.1, 2.0, 0.3, 0.0], [1.0, 0.0, 0.0, 0.5]]
    end = [[0.0, 0.5, 1.5, 0.2], [0.3, 0.3, 0.9, 0.1]]
    # Start 9 is clamped to T = 4: ignored. End -3 is clamped to 0.
    want_start = _ce(start[0], 1)
    want_end = (_ce(end[0], 2) + _ce(end[1], 0)) / 2
    got = question_answering_loss(_f(start), _f(end), torch.tensor([1, 9]), torch.tensor([[2], [-3]]))
    assert abs(float(got) - (want_start + want_end) / 2) < 1e-6


@pytest.mark.parametrize(
    "head, problem",
    [(h, None) for h in ALL_HEADS if h != "model"]
    + [("sequence_classification", "regression"), ("sequence_classification", "multi_label_classification")],
)
def test_model_loss_matches_reference(head, problem):
    # QA scores a start and an end: its num_labels is 2 (v4's qa_outputs has num_labels outputs).
    num_labels = 2 if head == "question_answering" else 3
    config = tiny_config(num_labels=num_labels, is_decoder=head == "causal_lm", problem_type=problem)
    model, state = build(head, config)
    ids, mask = padded_batch(config, lengths=(6, 4))
    rng = np.random.default_rng(5)
    inputs = dict(input_ids=t(ids), attention_mask=t(mask))
    if head in ("masked_lm", "causal_lm", "token_classification"):
        upper = config.vocab_size if "lm" in head else 3
        labels = np.where(mask == 1, rng.integers(0, upper, ids.shape), -100)
        inputs["labels"] = t(labels)
    elif head == "sequence_classification":
        inputs["labels"] = t(np.array([2, 0])) if problem is None else _f(rng.integers(0, 2, (2, 3)).astype(np.float32))
    elif head == "multiple_choice":
        inputs = dict(input_ids=t(np.stack([ids, ids[::-1]], 1)), attention_mask=t(np.stack([mask, mask[::-1]], 1)),
                      labels=t(np.array([1, 0])))
    else:
        inputs.update(start_positions=t(np.array([1, 30])), end_positions=t(np.array([3, 2])))
    with torch.no_grad():
        out = model(**inputs)
    want = run_reference(config, state, head, **inputs)["loss"]
    assert abs(float(out.loss) - float(want)) <= 1e-5 * max(1.0, abs(float(want))), f"{head}: {out.loss} != {want}"


# ---------------------------------------------------------------------------- the cache

@pytest.mark.parametrize("variant", ["absolute", "relative_key_query", "cross_attention"])
def test_incremental_decoding_equals_full_forward(variant):
    kw = dict(is_decoder=True)
    if variant == "cross_attention":
        kw["add_cross_attention"] = True
    else:
        kw["position_embedding_type"] = variant
    config = tiny_config(**kw)
    model, _ = build("causal_lm", config, attn_implementation="eager" if variant != "absolute" else None)
    ids, mask = padded_batch(config, lengths=(8, 6), pad_to=8)
    mask[1] = [0, 0, 1, 1, 1, 1, 1, 1]  # left padding, as in batched decoding
    extra = {}
    if variant == "cross_attention":
        rng = np.random.default_rng(6)
        extra = dict(encoder_hidden_states=_f(rng.standard_normal((2, 5, config.hidden_size))),
                     encoder_attention_mask=t(np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])))
    with torch.no_grad():
        full = model(input_ids=t(ids), attention_mask=t(mask), use_cache=False, **extra).logits
        pieces, past, start = [], None, 0
        for stop in (4, 5, 6, 8):  # a prompt, two single tokens, a chunk of two
            out = model(input_ids=t(ids[:, start:stop]), attention_mask=t(mask[:, :stop]), past_key_values=past,
                        use_cache=True, **extra)
            pieces.append(out.logits)
            past, start = out.past_key_values, stop
    # v4: (k, v, cross_k, cross_v) per layer, the cross pair None without cross-attention.
    assert len(past) == 2 and len(past[0]) == 4 and (past[0][2] is None) == (variant != "cross_attention")
    assert past[0][0].shape == (2, 4, 8, config.head_dim)
    real = torch.from_numpy(mask).bool()
    diff = (torch.cat(pieces, 1) - full).abs()[real]
    assert float(diff.max()) <= 1e-5


# ---------------------------------------------------------------------------- generate

def _decoder(**kw):
    config = tiny_config(is_decoder=True, **kw)
    return build("causal_lm", config)[0]


def _manual_greedy(model, ids, steps, process=lambda scores, seq, step: scores):
    """A greedy loop without cache: the whole sequence again every step, with the position ids
    v4.57's generation loop passes (GenerationMixin.prepare_inputs_for_generation:
    attention_mask.cumsum(-1) - 1, so 0, 1, 2, ... for an unpadded row); `process` edits each
    step's (B, V) scores. Returns the ids and each step's scores."""
    seq, scores = ids, []
    with torch.no_grad():
        for step in range(steps):
            positions = torch.arange(seq.shape[1])[None].expand_as(seq)
            logits = model(input_ids=seq, position_ids=positions, use_cache=False).logits[:, -1]
            scores.append(process(logits, seq, step))
            seq = torch.cat([seq, scores[-1].argmax(-1)[:, None]], 1)
    return seq, scores


def test_greedy_generate_equals_a_manual_argmax_loop():
    model = _decoder()
    ids = t(np.array([[0, 17, 42, 9], [0, 5, 66, 71]]))
    manual, scores = _manual_greedy(model, ids, 6)
    assert torch.equal(model.generate(ids, max_new_tokens=6, eos_token_id=[]), manual)
    # v4's other limit: max_length counts the prompt (4 + 6); the default is 20 new tokens (v4's
    # PyTorch generate; its TF and Flax count the prompt in the default 20).
    assert torch.equal(model.generate(ids, max_length=10, eos_token_id=[]), manual)
    assert model.generate(ids, eos_token_id=[]).shape == (2, 4 + 20)
    with pytest.raises(ValueError, match="counts the prompt"):
        model.generate(ids, max_length=4)
    # v4's return_dict_in_generate: the sequences and each step's scores
    out = model.generate(ids, max_new_tokens=6, eos_token_id=[], return_dict_in_generate=True, output_scores=True)
    assert torch.equal(out.sequences, manual) and len(out.scores) == 6
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(out.scores, scores))
    assert out.logits is None and model.can_generate()
    # settings from a generation config (v4's GenerationConfig, or any object or mapping with its names)
    assert torch.equal(model.generate(ids, generation_config={"max_new_tokens": 6, "eos_token_id": []}), manual)
    with pytest.raises(NotImplementedError, match="num_beams must be 1, got 2"):
        model.generate(ids, num_beams=2)
    # v4's other token-changing settings are refused, not ignored (v4 4.57 applies them), from a
    # given config or the model's (no_repeat_ngram_size and num_return_sequences are implemented:
    # tests/roberta_pt/test_v4_generate_keywords.py)
    for setting in ({"min_length": 12}, {"typical_p": 0.5}, {"forced_eos_token_id": 2}):
        with pytest.raises(NotImplementedError, match=f"{next(iter(setting))}=.* is not implemented"):
            model.generate(ids, max_new_tokens=3, generation_config=setting)
    assert torch.equal(model.generate(ids, generation_config={"max_new_tokens": 6, "eos_token_id": [],
                                                              "suppress_tokens": [], "min_length": 0}), manual)
    saved, model.generation_config = model.generation_config, GenerationConfig(min_length=12)
    try:
        with pytest.raises(NotImplementedError, match="min_length=12"):
            model.generate(ids, max_new_tokens=3)
    finally:
        model.generation_config = saved


def test_a_generation_config_given_leaves_the_models_settings_it_does_not_change():
    """v4 4.57 (GenerationMixin._prepare_generation_config): a field of the generation_config passed
    to generate that is still at GenerationConfig()'s default keeps the model's own value."""
    from roberta_core.generation import GenerationConfig

    model = _decoder()
    ids = t(np.array([[0, 17, 42, 9], [0, 5, 66, 71]]))
    model.generation_config.repetition_penalty = 50.0
    model.generation_config.eos_token_id = []
    expected = model.generate(ids, max_new_tokens=6)
    assert not torch.equal(expected, model.generate(ids, max_new_tokens=6, repetition_penalty=1.0))
    assert torch.equal(model.generate(ids, generation_config=GenerationConfig(max_new_tokens=6)), expected)


def test_repetition_penalty_and_min_new_tokens_as_v4s_processors():
    """v4's RepetitionPenaltyLogitsProcessor (a seen token's score divided by the penalty, multiplied
    when negative) and MinNewTokensLengthLogitsProcessor (the end token at -inf until then)."""
    model = _decoder()
    ids = t(np.array([[0, 17, 42, 9], [0, 5, 66, 71]]))

    def penalise(scores, seq, step):
        seen = torch.gather(scores, 1, seq)
        return scores.scatter(1, seq, torch.where(seen < 0, seen * 1.7, seen / 1.7))

    manual, _ = _manual_greedy(model, ids, 6, penalise)
    assert torch.equal(model.generate(ids, max_new_tokens=6, eos_token_id=[], repetition_penalty=1.7), manual)
    free = model.generate(ids, max_new_tokens=6, eos_token_id=[])
    eos = int(free[0, 5])  # a token the free run emits second: as end token it would stop row 0 there
    manual, _ = _manual_greedy(model, ids, 4, lambda s, q, step: s.index_fill(1, torch.tensor([eos]), float("-inf"))
                               if step < 3 else s)
    out = model.generate(ids, max_new_tokens=4, eos_token_id=eos, min_new_tokens=3)
    assert torch.equal(out[:, :7], manual[:, :7]) and int(out[0, 4]) != eos
    with pytest.raises(ValueError, match="repetition_penalty must be a positive number"):
        model.generate(ids, repetition_penalty=0)


def test_generation_config_saves_and_loads_as_v4s(tmp_path):
    model = _decoder()
    assert model.generation_config.to_diff_dict() == {
        "_from_model_config": True, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
    model.generation_config.max_new_tokens = 3
    model.save_pretrained(tmp_path)
    # v4 writes what differs from GenerationConfig()'s defaults (recorded from transformers 4.57.6:
    # {"_from_model_config": true, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, ...})
    written = json.loads((tmp_path / "generation_config.json").read_text())
    assert written == {"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
                       "max_new_tokens": 3}
    loaded = RobertaForCausalLM.from_pretrained(tmp_path)
    ids = t(np.array([[0, 17, 42, 9]]))
    assert loaded.generation_config.max_new_tokens == 3 and loaded.generate(ids).shape == (1, 4 + 3)


def test_peft_prompt_tuning_generates_with_its_virtual_tokens():
    """peft's prompt tuning wraps `prepare_inputs_for_generation`, which generate calls each step:
    the virtual tokens' embeddings go first, as a manual loop over the embeddings computes."""
    peft = pytest.importorskip("peft")
    model = _decoder()
    wrapped = peft.get_peft_model(model, peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    ids = t(np.array([[0, 17, 42, 9], [0, 5, 66, 71]]))
    out = wrapped.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, eos_token_id=[])
    prompts = wrapped.get_prompt(batch_size=2)  # (B, 3, H)
    seq = ids
    with torch.no_grad():
        for _ in range(4):
            embeds = torch.cat([prompts, model.get_input_embeddings()(seq)], dim=1)
            nxt = model(inputs_embeds=embeds, use_cache=False).logits[:, -1].argmax(-1)
            seq = torch.cat([seq, nxt[:, None]], 1)
    assert torch.equal(out, seq)
    assert not torch.equal(out, model.generate(ids, max_new_tokens=4, eos_token_id=[]))  # the prompt mattered


def test_the_cache_is_taken_under_its_newer_name_too():
    """transformers 5.24 renamed `past_key_values` to `cache`, and peft >= 0.22 passes prefixes
    under the name of the transformers installed: every forward that takes a cache takes either."""
    model = _decoder()
    ids = t(np.array([[0, 17, 42, 9, 5]]))
    fresh = lambda: model(ids[:, :3], use_cache=True).past_key_values  # noqa: E731 (filled in place)
    want = model(ids[:, 3:], past_key_values=fresh()).logits
    assert torch.equal(model(ids[:, 3:], cache=fresh()).logits, want)
    assert torch.equal(model.roberta(ids[:, 3:], cache=fresh()).last_hidden_state,
                       model.roberta(ids[:, 3:], past_key_values=fresh()).last_hidden_state)
    with pytest.raises(ValueError, match="past_key_values or cache"):
        model(ids[:, 3:], past_key_values=fresh(), cache=fresh())
    for head in ("sequence_classification", "token_classification", "question_answering"):
        assert "cache" in inspect.signature(CLASSES[head].forward).parameters, head


def test_generation_steps_name_the_cache_as_peft_reads_it(monkeypatch):
    """peft's prompt learning looks for the cache in each step's inputs under
    `peft.import_utils.get_transformers_cache_name()` (peft >= 0.22; `cache` beside transformers
    >= 5.24): the steps use that name, and generation gives the same ids under either."""
    import sys
    import types

    model = _decoder()
    ids = t(np.array([[0, 17, 42, 9], [0, 5, 66, 71]]))
    mask = torch.ones_like(ids)
    monkeypatch.delitem(sys.modules, "peft.import_utils", raising=False)  # no peft: v4's name
    assert "past_key_values" in model.prepare_inputs_for_generation(ids, attention_mask=mask)
    want = model.generate(ids, attention_mask=mask, max_new_tokens=4, eos_token_id=[])
    fake = types.ModuleType("peft.import_utils")
    fake.get_transformers_cache_name = lambda: "cache"
    monkeypatch.setitem(sys.modules, "peft.import_utils", fake)
    step = model.prepare_inputs_for_generation(ids, attention_mask=mask)
    assert "cache" in step and "past_key_values" not in step
    assert torch.equal(model.generate(ids, attention_mask=mask, max_new_tokens=4, eos_token_id=[]), want)


@pytest.mark.filterwarnings("ignore:sdpa attention")
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("positions", ["absolute", "relative_key"])
def test_padded_batch_generates_what_each_row_gets_alone(side, positions):
    model = _decoder(position_embedding_type=positions)
    lengths = (6, 3, 1)
    rng = np.random.default_rng(7)
    ids = np.full((3, 6), model.config.pad_token_id)
    mask = np.zeros((3, 6), dtype=np.int64)
    rows = [np.concatenate([[0], rng.integers(4, 100, n - 1)]) for n in lengths]
    for b, row in enumerate(rows):
        cols = slice(0, len(row)) if side == "right" else slice(6 - len(row), 6)
        ids[b, cols], mask[b, cols] = row, 1
    out = model.generate(t(ids), attention_mask=t(mask), max_new_tokens=5, eos_token_id=[])
    assert out.shape == (3, 11) and torch.equal(out[:, :6], t(ids))
    for b, row in enumerate(rows):
        alone = model.generate(t(row[None]), max_new_tokens=5, eos_token_id=[])
        assert torch.equal(out[b, 6:], alone[0, len(row):]), f"row {b}"


def test_rows_stop_at_eos_then_pad():
    model = _decoder()
    ids = t(np.array([[0, 17, 42], [0, 5, 66]]))
    free = model.generate(ids, max_new_tokens=6, eos_token_id=[])[:, 3:].tolist()
    # One stop token per row (row 0's second new token, row 1's first), then each alone.
    for eos in ([free[0][1], free[1][0]], free[0][1]):
        out = model.generate(ids, max_new_tokens=6, eos_token_id=eos, pad_token_id=1)
        stops = {eos} if isinstance(eos, int) else set(eos)
        finished_at = []
        for b in range(2):
            first = next((i for i, tok in enumerate(free[b]) if tok in stops), None)
            finished_at.append(6 if first is None else first + 1)
            new = out[b, 3:].tolist()
            assert new[: finished_at[b]] == free[b][: finished_at[b]]
            assert all(tok == 1 for tok in new[finished_at[b]:]), f"row {b} continues after eos: {new}"
        assert out.shape == (2, 3 + max(finished_at))  # generation ends when every row is finished


def test_sampling_is_seeded_and_filters_reduce_to_greedy():
    model = _decoder()
    ids = t(np.array([[0, 17, 42, 9]]))
    greedy = model.generate(ids, max_new_tokens=5, eos_token_id=[])
    a = model.generate(ids, max_new_tokens=5, do_sample=True, temperature=1.5, seed=3, eos_token_id=[])
    b = model.generate(ids, max_new_tokens=5, do_sample=True, temperature=1.5, seed=3, eos_token_id=[])
    assert torch.equal(a, b)
    for narrow in (dict(top_k=1), dict(top_p=1e-6)):  # only the most likely token survives
        sampled = model.generate(ids, max_new_tokens=5, do_sample=True, seed=0, eos_token_id=[], **narrow)
        assert torch.equal(sampled, greedy)


def test_top_k_top_p_filters_by_hand():
    logits = torch.log(_f([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda x: torch.isfinite(x)[0].tolist()  # noqa: E731
    assert kept(_filter_logits(logits, 2, None)) == [True, True, False, False]
    assert kept(_filter_logits(logits, None, 0.5)) == [True, False, False, False]  # 0.5 reaches 0.5
    assert kept(_filter_logits(logits, None, 0.7)) == [True, True, False, False]
    assert kept(_filter_logits(logits, None, 0.81)) == [True, True, True, False]


# ---------------------------------------------------------------------------- training utilities

def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    model, _ = build("masked_lm", config)
    model.train()
    ids, mask = padded_batch(config, lengths=(7, 5))
    labels = t(np.where(mask == 1, ids, -100))
    calls, layer = [], model.roberta.encoder.layer[0]
    forward = layer.forward
    layer.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)  # counts recomputation too (hooks do not)

    def grads():
        model.zero_grad()
        torch.manual_seed(11)  # the same dropout masks
        model(input_ids=t(ids), attention_mask=t(mask), labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    assert len(calls) == 1
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    checkpointed = grads()
    assert len(calls) == 3  # the layer ran again in the backward pass
    for name, g in plain.items():
        assert torch.allclose(g, checkpointed[name], atol=1e-7, rtol=0), name
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing


@pytest.mark.parametrize("head", ALL_HEADS)
def test_num_parameters_counts_the_weights_table(head):
    config = tiny_config(num_labels=3, is_decoder=head == "causal_lm")
    model = CLASSES[head](config)
    assert model.num_parameters() == sum(math.prod(s) for s in parameter_shapes(config, head).values())


def test_resize_token_embeddings_keeps_rows_and_ties():
    config = tiny_config()
    model, _ = build("masked_lm", config)
    old = model.get_input_embeddings().weight.detach().clone()
    new = model.resize_token_embeddings(110)
    assert new is model.get_input_embeddings() and model.config.vocab_size == 110
    assert torch.equal(new.weight[:100], old)
    assert torch.allclose(new.weight[100:], old.mean(0).expand(10, -1))
    assert model.lm_head.decoder.weight is new.weight and model.lm_head.bias.shape == (110,)
    assert model.lm_head.decoder.bias is model.lm_head.bias
    with torch.no_grad():
        assert model(input_ids=torch.tensor([[0, 105, 2]])).logits.shape == (1, 3, 110)
    model.resize_token_embeddings(50)
    assert model.get_input_embeddings().weight.shape == (50, config.hidden_size)
    with pytest.raises(ValueError, match="input_ids must be in 0..49"):
        model(input_ids=torch.tensor([[0, 60]]))
    with pytest.raises(ValueError, match="eos_token_id"):
        model.resize_token_embeddings(2)
    # v4's other forms: no size is no change; pad_to_multiple_of rounds up (the current size without one).
    assert model.resize_token_embeddings() is model.get_input_embeddings() and model.config.vocab_size == 50
    assert model.resize_token_embeddings(pad_to_multiple_of=16).weight.shape == (64, config.hidden_size)
    assert model.resize_token_embeddings(65, pad_to_multiple_of=8).weight.shape == (72, config.hidden_size)
    assert model.config.vocab_size == 72 and model.lm_head.bias.shape == (72,)
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        model.resize_token_embeddings(pad_to_multiple_of=0)


def test_untied_decoder_and_set_input_embeddings():
    config = tiny_config(tie_word_embeddings=False)
    model, state = build("masked_lm", config)
    assert model.lm_head.decoder.weight is not model.get_input_embeddings().weight
    assert torch.equal(model.lm_head.decoder.weight, torch.from_numpy(state["lm_head.decoder.weight"]))
    tied = RobertaForMaskedLM(tiny_config())
    table = torch.nn.Embedding(100, 32, padding_idx=1)
    # As v4 (4.57.6): only the module is swapped; the decoder follows at the next tie_weights().
    tied.set_input_embeddings(table)
    assert tied.get_input_embeddings() is table and tied.lm_head.decoder.weight is not table.weight
    tied.tie_weights()
    assert tied.lm_head.decoder.weight is table.weight


def test_generate_without_a_decoder_config_runs_as_v4():
    """v4 warns at construction but generates (its GenerationTesterMixin does, with the tester's
    encoder config): the tokens are v4's, checked in test_v4_suite.py."""
    with pytest.warns(UserWarning, match="is_decoder=True"):
        model = RobertaForCausalLM(tiny_config())
    assert model.generate(torch.tensor([[0, 5]]), max_new_tokens=2).shape == (1, 4)


def test_single_label_classification_takes_labels_of_shape_b_by_1_as_v4():
    """v4 flattens the labels (`labels.view(-1)`): a Keras-style (B, 1) column gives the (B,) loss."""
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    ids = t(np.array([[0, 17, 42, 9], [0, 5, 66, 71]]))
    flat = model(input_ids=ids, labels=torch.tensor([2, 0])).loss
    assert torch.equal(model(input_ids=ids, labels=torch.tensor([[2], [0]])).loss, flat)


def test_causal_lm_takes_v4s_loss_keywords():
    # v4's Trainer passes `num_items_in_batch` (the labels counted over an accumulated step) to a
    # causal LM, whose loss is then the sum over that count. Expected: the reference's logits
    # (float64) and a cross-entropy computed here.
    config = tiny_config(is_decoder=True)
    model, state = build("causal_lm", config)
    ids = np.array([[0, 17, 42, 9, 2], [0, 5, 66, 2, 1]])
    labels = ids.copy()
    labels[1, 4] = -100
    logits = run_reference(config, state, "causal_lm", input_ids=ids)["logits"]

    def summed(logits, targets):
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        keep = targets != -100
        return -np.take_along_axis(logp[keep], targets[keep][:, None], 1).sum()

    total = summed(logits[:, :-1], labels[:, 1:])
    with torch.no_grad():
        got = model(t(ids), labels=t(labels), num_items_in_batch=torch.tensor(11)).loss
        shifted = np.pad(labels, ((0, 0), (0, 1)), constant_values=-100)[:, 1:]
        own_shift = model(t(ids), labels=t(labels), shift_labels=t(shifted), num_items_in_batch=4).loss
        plain = model(t(ids), labels=t(labels)).loss
    np.testing.assert_allclose(got.item(), total / 11, rtol=1e-5)
    np.testing.assert_allclose(own_shift.item(), summed(logits, shifted) / 4, rtol=1e-5)
    np.testing.assert_allclose(plain.item(), total / 7, rtol=1e-5)  # 7 targets after the shift
    # What Trainer reads: the flag, and "labels" as the only named parameter with "label" in it.
    assert RobertaForCausalLM.accepts_loss_kwargs
    assert [p for p in inspect.signature(RobertaForCausalLM.forward).parameters if "label" in p] == ["labels"]
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        model(t(ids), labels=t(labels), num_item_in_batch=3)
