"""Bad input fails fast with a clear ValueError/TypeError naming the problem and the allowed range."""

from __future__ import annotations

import pytest
import torch

from roberta_pt import RobertaForCausalLM, RobertaModel
from tests.helpers import tiny_config
from tests.roberta_pt.common import build

IDS = torch.tensor([[0, 5, 9, 2], [0, 7, 2, 1]])
MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])


@pytest.fixture(scope="module")
def model():
    return build("model", tiny_config())[0]


@pytest.mark.parametrize("bad", [100, 5000, -1])
def test_ids_outside_the_vocabulary(model, bad):
    ids = IDS.clone()
    ids[1, 2] = bad
    with pytest.raises(ValueError, match=r"input_ids must be in 0\.\.99; got values from"):
        model(input_ids=ids)


def test_ids_must_be_integers(model):
    with pytest.raises(TypeError, match="input_ids must be an integer tensor"):
        model(input_ids=IDS.float())


def test_ids_of_an_integer_type_no_table_takes(model):
    # Embedding lookups take int64 or int32 indices: a narrower type is refused by name, not by
    # the dispatcher deep in the lookup; int32 gives what int64 gives.
    with pytest.raises(TypeError, match=r"input_ids must be an int64 or int32 tensor .*got torch\.uint8"):
        model(input_ids=IDS.to(torch.uint8))
    with pytest.raises(TypeError, match=r"token_type_ids must be an int64 or int32 tensor .*got torch\.int16"):
        model(input_ids=IDS, token_type_ids=torch.zeros(2, 4, dtype=torch.int16))
    with pytest.raises(TypeError, match=r"input_ids must be an integer tensor \(int64 or int32\), got torch\.bool"):
        model(input_ids=IDS.bool())
    with torch.no_grad():
        assert torch.equal(model(input_ids=IDS.int()).last_hidden_state, model(input_ids=IDS).last_hidden_state)


def test_inputs_embeds_must_be_floating(model):
    with pytest.raises(TypeError, match=r"inputs_embeds must be a floating tensor .*got torch\.int64"):
        model(inputs_embeds=torch.ones(2, 4, 32, dtype=torch.long))


def test_bool_attention_mask_reads_as_the_integer_mask(model):
    with torch.no_grad():
        want = model(input_ids=IDS, attention_mask=MASK).last_hidden_state
        assert torch.equal(model(input_ids=IDS, attention_mask=MASK.bool()).last_hidden_state, want)


def test_sequence_longer_than_the_position_table(model):
    # tiny: 66 positions, padding_idx 1 -> 64 tokens.
    model(input_ids=torch.full((1, 64), 5))
    with pytest.raises(ValueError, match="sequence length 65 exceeds the 64 tokens"):
        model(input_ids=torch.full((1, 65), 5))


def test_ids_and_embeds_both_or_neither(model):
    with pytest.raises(ValueError, match="not both"):
        model(input_ids=IDS, inputs_embeds=torch.zeros(2, 4, 32))
    with pytest.raises(ValueError, match="give input_ids"):
        model(attention_mask=MASK)
    with pytest.raises(ValueError, match=r"inputs_embeds must have shape \(batch, length, hidden_size=32\)"):
        model(inputs_embeds=torch.zeros(2, 4, 31))


def test_shapes_of_masks_and_side_inputs(model):
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(2, 4\)"):
        model(input_ids=IDS, attention_mask=MASK[:, :3])
    with pytest.raises(ValueError, match=r"token_type_ids must have shape \(2, 4\)"):
        model(input_ids=IDS, token_type_ids=torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"head_mask must have shape \(4,\) or \(2, 4\)"):
        model(input_ids=IDS, head_mask=torch.ones(3))
    with pytest.raises(ValueError, match="no cross-attention"):
        model(input_ids=IDS, encoder_hidden_states=torch.zeros(2, 3, 32))


def test_token_types_and_positions_outside_their_tables(model):
    with pytest.raises(ValueError, match=r"token_type_ids must be in 0\.\.0"):
        model(input_ids=IDS, token_type_ids=torch.ones_like(IDS))
    with pytest.raises(ValueError, match=r"position_ids must be in 0\.\.65"):
        model(input_ids=IDS, position_ids=torch.tensor([[2, 3, 4, 66]]))


def test_malformed_cache():
    config = tiny_config(is_decoder=True)
    model = build("causal_lm", config)[0]
    past = model(input_ids=IDS, use_cache=True).past_key_values
    with pytest.raises(ValueError, match="one entry per layer"):
        model(input_ids=IDS[:, :1], past_key_values=past[:1])
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(2, 5\) \(cached \+ new tokens\)"):
        model(input_ids=IDS[:, :1], attention_mask=MASK, past_key_values=past)
    with pytest.raises(ValueError, match="a batch of 2, the inputs 1"):
        model(input_ids=IDS[:1, :1], past_key_values=past)


LABEL_CASES = [
    ("masked_lm", dict(labels=torch.zeros(2, 3, dtype=torch.long)), ValueError, r"labels must have shape \(2, 4\)"),
    ("masked_lm", dict(labels=torch.zeros(2, 4)), TypeError, "labels must be integer"),
    ("masked_lm", dict(labels=torch.tensor([[-100, 5, 100, -100]] * 2)), ValueError,
     r"labels must be in 0\.\.99 \(or -100 to ignore a position\)"),
    ("causal_lm", dict(labels=torch.tensor([[-5, 5, 1, 1]] * 2)), ValueError, r"labels must be in 0\.\.99"),
    ("token_classification", dict(labels=torch.tensor([[0, 1, 2, 3]] * 2)), ValueError, r"labels must be in 0\.\.2"),
    ("sequence_classification", dict(labels=torch.tensor([[0, 1], [1, 0]])), ValueError,
     r"single-label classification labels must have shape \(2,\) or \(2, 1\)"),
    ("sequence_classification", dict(labels=torch.tensor([0, 3])), ValueError, r"labels must be in 0\.\.2"),
    ("sequence_classification", dict(labels=torch.zeros(2, 2)), ValueError,
     r"multi-label classification labels must have shape \(2, 3\)"),
    ("question_answering", dict(start_positions=torch.tensor([1.0, 2.0]), end_positions=torch.tensor([1, 2])),
     TypeError, "start_positions/end_positions must be integer"),
]


@pytest.mark.parametrize("head, labels, error, message", LABEL_CASES)
def test_labels_of_the_wrong_shape_kind_or_range(head, labels, error, message):
    config = tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm")
    model = build(head, config)[0]
    with pytest.raises(error, match=message):
        model(input_ids=IDS, **labels)


def test_multiple_choice_inputs_and_labels():
    model = build("multiple_choice", tiny_config())[0]
    ids = IDS[None].expand(3, -1, -1)  # (B=3, C=2, T=4)
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, choices, length\)"):
        model(input_ids=IDS)
    with pytest.raises(ValueError, match=r"attention_mask must have leading shape \(3, 2, 4\)"):
        model(input_ids=ids, attention_mask=MASK)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1"):
        model(input_ids=ids, labels=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        model(input_ids=ids, labels=torch.tensor([0, 1]))


def test_generation_arguments():
    model = build("causal_lm", tiny_config(is_decoder=True))[0]
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        model.generate(IDS, max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate(IDS, do_sample=True, temperature=0.0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        model.generate(IDS, do_sample=True, top_p=0.0)
    with pytest.raises(ValueError, match="top_k must be a non-negative integer"):
        model.generate(IDS, do_sample=True, top_k=-1)
    # v4: top_k=0 turns the top-k filter off (the same draw as keeping the whole vocabulary)
    assert torch.equal(model.generate(IDS, do_sample=True, top_k=0, seed=3, max_new_tokens=3),
                       model.generate(IDS, do_sample=True, top_k=model.config.vocab_size, seed=3, max_new_tokens=3))
    with pytest.raises(ValueError, match="prompt length 4 \\+ max_new_tokens 61 exceeds the 64 positions"):
        model.generate(IDS, max_new_tokens=61)
    with pytest.raises(ValueError, match=r"input_ids must be in 0\.\.99"):
        model.generate(IDS + 100)


def test_construction_arguments():
    with pytest.raises(ValueError, match="attn_implementation must be one of"):
        RobertaModel(tiny_config(), attn_implementation="flash")
    # Flax's names, so one setting serves every backend
    assert RobertaModel(tiny_config(), attn_implementation="einsum").attn_implementation == "eager"
    assert RobertaModel(tiny_config(), attn_implementation="dot_product").attn_implementation == "sdpa"
    with pytest.raises(TypeError, match="config must be a roberta_core.RobertaConfig"):
        RobertaModel({"hidden_size": 32})
    with pytest.raises(ValueError, match="is_decoder=True"), pytest.warns(UserWarning, match="attends both ways"):
        RobertaForCausalLM(tiny_config(add_cross_attention=True))


def test_bad_values_do_not_reach_the_embedding_lookup(model, monkeypatch):
    # The check runs before any kernel indexes with the ids (on a GPU: no device-side assert).
    looked_up = []
    table = model.embeddings.word_embeddings
    monkeypatch.setattr(table, "forward", lambda ids: looked_up.append(ids) or torch.zeros(*ids.shape, 32))
    with pytest.raises(ValueError):
        model(input_ids=torch.tensor([[0, 100]]))
    assert looked_up == []
    assert model(input_ids=IDS).last_hidden_state.shape == (2, 4, 32)
    assert len(looked_up) == 1


def test_question_answering_with_one_position_has_no_loss():
    # as v4 (`if start_positions is not None and end_positions is not None`): one alone is not used
    qa = build("question_answering", tiny_config(num_labels=2))[0]
    for given in ({"start_positions": torch.tensor([1, 2])}, {"end_positions": torch.tensor([1, 2])}):
        out = qa(input_ids=IDS, attention_mask=MASK, **given)
        assert out.loss is None
        torch.testing.assert_close(out.start_logits, qa(input_ids=IDS, attention_mask=MASK).start_logits)
    assert qa(input_ids=IDS, start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([1, 2])).loss is not None
