"""Behaviour v4's own test suite exercises (tests/models/roberta/test_modeling_roberta.py,
ModelTesterMixin, GenerationTesterMixin) where we differed from transformers 4.57.6. Expected
values are v4 4.57.6's, recorded on the same weights (this model saved, loaded by v4), or plain
properties (equality of two paths, shapes, v4's messages)."""

from __future__ import annotations

import warnings

import pytest
import torch

from roberta_pt import RobertaForCausalLM, RobertaForMaskedLM, RobertaForSequenceClassification, RobertaModel
from roberta_pt.modeling import RobertaEmbeddings, create_position_ids_from_input_ids
from tests.helpers import tiny_config
from tests.roberta_pt.common import build

IDS = torch.tensor([[5, 9, 14, 3, 22, 7], [8, 30, 11, 4, 19, 6]])
MASK = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])
# transformers 4.57.6's RobertaForCausalLM.generate on build("causal_lm", tiny_config(is_decoder=...)),
# greedy, 4 new tokens (continued: 3, then 2 more from the first call's cache).
V4_GENERATE = {
    False: {
        "cache": [[5, 9, 14, 3, 22, 7, 94, 72, 4, 4], [8, 30, 11, 4, 19, 6, 33, 33, 33, 33]],
        "nocache": [[5, 9, 14, 3, 22, 7, 94, 65, 4, 4], [8, 30, 11, 4, 19, 6, 33, 33, 33, 56]],
        "bos": [[0, 28, 97, 89, 38]],
        "embeds": [[94, 72, 4, 4], [33, 33, 33, 33]],
        "continued": [[5, 9, 14, 3, 22, 7, 94, 72, 4, 4, 4], [8, 30, 11, 4, 19, 6, 33, 33, 33, 33, 75]],
    },
    True: {
        "cache": [[5, 9, 14, 3, 22, 7, 94, 94, 73, 4], [8, 30, 11, 4, 19, 6, 33, 33, 33, 33]],
        "nocache": [[5, 9, 14, 3, 22, 7, 94, 94, 73, 4], [8, 30, 11, 4, 19, 6, 33, 33, 33, 33]],
        "bos": [[0, 28, 97, 89, 38]],
        "embeds": [[94, 94, 73, 4], [33, 33, 33, 33]],
        "continued": [[5, 9, 14, 3, 22, 7, 94, 94, 73, 4, 4], [8, 30, 11, 4, 19, 6, 33, 33, 33, 33, 56]],
    },
}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module", params=[False, True], ids=["encoder_config", "decoder_config"])
def causal(request):
    return request.param, _quiet(build, "causal_lm", tiny_config(is_decoder=request.param))[0]


# ---------------------------------------------------------------------------- generate (GenerationTesterMixin)

def test_generate_runs_as_v4_with_and_without_cache(causal):
    # v4 generates with a config that is not a decoder (its test suite does): the prompt attends both
    # ways, then each new token over the cache; use_cache=False runs every position each step.
    dec, model = causal
    assert model.generate(IDS, attention_mask=MASK, max_new_tokens=4).tolist() == V4_GENERATE[dec]["cache"]
    got = model.generate(IDS, attention_mask=MASK, max_new_tokens=4, use_cache=False)
    assert got.tolist() == V4_GENERATE[dec]["nocache"]


def test_generate_without_cache_returns_v4s_per_step_shapes(causal):
    _, model = causal
    out = model.generate(IDS, attention_mask=MASK, max_new_tokens=2, use_cache=False, return_dict_in_generate=True,
                         output_attentions=True, output_hidden_states=True)
    # v4 4.57.6's shapes: every step runs on every position, and no cache is returned
    assert [[tuple(a.shape) for a in step] for step in out.attentions] == [[(2, 4, 6, 6)] * 2, [(2, 4, 7, 7)] * 2]
    assert [[tuple(h.shape) for h in step] for step in out.hidden_states] == [[(2, 6, 32)] * 3, [(2, 7, 32)] * 3]
    assert out.past_key_values is None


def test_generate_from_bos_and_from_inputs_embeds(causal):
    dec, model = causal
    assert model.generate(max_new_tokens=4).tolist() == V4_GENERATE[dec]["bos"]
    embeds = model.get_input_embeddings()(IDS)
    assert model.generate(inputs_embeds=embeds, attention_mask=MASK, max_new_tokens=4).tolist() == V4_GENERATE[dec]["embeds"]
    # ids with their embeddings: the ids are returned first, the tokens are those of the ids alone
    both = model.generate(IDS, inputs_embeds=embeds, attention_mask=MASK, max_new_tokens=4)
    assert both.tolist() == V4_GENERATE[dec]["cache"]
    import inspect

    assert "inputs_embeds" in inspect.signature(model.prepare_inputs_for_generation).parameters


def test_generate_continues_from_a_previous_calls_cache(causal):
    dec, model = causal
    first = model.generate(IDS, attention_mask=MASK, max_new_tokens=3, return_dict_in_generate=True)
    again = model.generate(first.sequences, attention_mask=torch.nn.functional.pad(MASK, (0, 3), value=1),
                           past_key_values=first.past_key_values, max_new_tokens=2)
    assert again.tolist() == V4_GENERATE[dec]["continued"]


# v4's GenerationTesterMixin passes these to every greedy and sampled call (bad_words_ids [[1, 0]],
# repetition_penalty 1.2, remove_invalid_values); transformers 4.57.6's tokens on the same weights,
# 5 new tokens, the prompts holding the pad token 1 (so that [1, 0] bans 0 after it).
PAD_IDS = torch.tensor([[5, 9, 14, 1, 22, 7], [8, 30, 11, 4, 19, 1]])
V4_LOGITS_PROCESSORS = {
    False: {"greedy": [[94, 72, 4, 73, 28], [75, 56, 4, 75, 28]],
            "greedy_nocache": [[94, 65, 4, 73, 28], [75, 72, 56, 4, 4]],
            "sample": [[65, 72, 94, 73, 13], [94, 4, 4, 73, 56], [51, 75, 72, 42, 4], [4, 73, 75, 56, 13]]},
    True: {"greedy": [[94, 72, 4, 73, 28], [75, 28, 75, 56, 72]],
           "greedy_nocache": [[94, 72, 4, 73, 28], [75, 28, 75, 56, 72]],
           "sample": [[65, 72, 94, 73, 13], [94, 4, 4, 73, 56], [51, 75, 56, 42, 4], [4, 73, 75, 56, 13]]},
}


@pytest.mark.parametrize("name,kw", [
    ("greedy", dict(do_sample=False)),
    ("greedy_nocache", dict(do_sample=False, use_cache=False)),
    ("sample", dict(do_sample=True, top_k=10, top_p=0.7, temperature=0.7, num_return_sequences=2)),
])
def test_generation_tester_logits_processors_as_v4(causal, name, kw):
    dec, model = causal
    torch.manual_seed(0)
    out = model.generate(PAD_IDS, attention_mask=MASK, max_new_tokens=5, bad_words_ids=[[1, 0], [33]],
                         repetition_penalty=1.2, remove_invalid_values=True, return_dict_in_generate=True,
                         output_scores=True, **kw)
    assert out.sequences[:, 6:].tolist() == V4_LOGITS_PROCESSORS[dec][name]
    scores = torch.stack(out.scores)
    if not kw["do_sample"]:  # the banned token 33 is the float minimum (remove_invalid_values), never -inf
        assert torch.isfinite(scores).all() and bool((scores[..., 33] == torch.finfo(scores.dtype).min).all())
    assert model.generate(max_new_tokens=3, remove_invalid_values=True).tolist() == [[0, 28, 97, 89]]  # v4's
    with pytest.raises(ValueError, match="bad_words_ids"):
        model.generate(PAD_IDS, max_new_tokens=1, bad_words_ids=[[1000]])


# ---------------------------------------------------------------------------- RobertaModelTest's own tests

def test_create_position_ids_helpers_as_v4():
    # v4's module function and embeddings method (its test suite imports both)
    assert create_position_ids_from_input_ids(torch.tensor([[12, 31, 1, 13, 1]]), 1, 3).tolist() == [[5, 6, 1, 7, 1]]
    assert create_position_ids_from_input_ids(torch.tensor([[12, 31, 13, 1]]), 1).dtype == torch.long
    embeddings = RobertaEmbeddings(tiny_config())
    assert embeddings.create_position_ids_from_inputs_embeds(torch.zeros(2, 3, 4)).tolist() == [[2, 3, 4], [2, 3, 4]]


# ---------------------------------------------------------------------------- ModelTesterMixin

def test_from_pretrained_of_a_state_dict_without_a_checkpoint(tmp_path):
    config = tiny_config()
    model, _ = build("sequence_classification", config)
    new = RobertaForSequenceClassification.from_pretrained(None, config=config, state_dict=model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), new.parameters()))
    # a bare model's keys into a head (the encoder prefix added, as v4), with v4's loading report
    base, _ = build("model", config)
    head, info = RobertaForMaskedLM.from_pretrained(None, config=config, state_dict=base.state_dict(),
                                                    output_loading_info=True)
    assert torch.equal(head.roberta.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight)
    # v4 4.57.6's report of the same call
    assert info == {"missing_keys": ["lm_head.bias", "lm_head.decoder.bias", "lm_head.dense.bias",
                                     "lm_head.dense.weight", "lm_head.layer_norm.bias", "lm_head.layer_norm.weight"],
                    "unexpected_keys": ["pooler.dense.bias", "pooler.dense.weight"], "mismatched_keys": [],
                    "error_msgs": []}
    lm, _ = build("masked_lm", config)
    _, info = RobertaModel.from_pretrained(None, config=config, state_dict=lm.state_dict(), output_loading_info=True)
    assert info == {"missing_keys": ["pooler.dense.bias", "pooler.dense.weight"],
                    "unexpected_keys": ["lm_head.bias", "lm_head.decoder.bias", "lm_head.decoder.weight",
                                        "lm_head.dense.bias", "lm_head.dense.weight", "lm_head.layer_norm.bias",
                                        "lm_head.layer_norm.weight"], "mismatched_keys": [], "error_msgs": []}
    _, info = RobertaForMaskedLM.from_pretrained(None, config=config, state_dict=lm.state_dict(), output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    with pytest.raises(ValueError, match="state_dict"):
        RobertaModel.from_pretrained(None, config=config)
    with pytest.raises(ValueError, match="`state_dict` cannot be passed together with a model name"):  # v4's words
        RobertaModel.from_pretrained(tmp_path, state_dict=lm.state_dict())


def test_config_gradient_checkpointing_turns_it_on_as_v4():
    config = tiny_config()
    config.gradient_checkpointing = True
    model = RobertaForMaskedLM(config)
    assert model.is_gradient_checkpointing and model.roberta.encoder.gradient_checkpointing
    assert not getattr(model.config, "gradient_checkpointing", False)  # consumed, as v4 (not saved again)


def test_negative_layer_in_pruned_heads_saves_and_loads(tmp_path):
    model, _ = build("model", tiny_config())
    model.prune_heads({0: [1, 2, 3], -1: [0]})  # v4's test_head_pruning_save_load_from_pretrained
    model.save_pretrained(tmp_path)
    loaded = RobertaModel.from_pretrained(tmp_path)
    ids = torch.tensor([[0, 5, 9, 2]])
    att = loaded(ids, output_attentions=True).attentions
    assert [a.shape[1] for a in att] == [1, 3]
    torch.testing.assert_close(loaded(ids).last_hidden_state, model(ids).last_hidden_state)


def test_resize_untied_lm_head_as_v4():
    model, _ = build("masked_lm", tiny_config(tie_word_embeddings=False))
    V = model.config.vocab_size
    old_bias, old_decoder = model.lm_head.bias.detach().clone(), model.lm_head.decoder.weight.detach().clone()
    model.resize_token_embeddings(V + 3)
    # v4 4.57.6 on these weights: new bias entries -0.026141 (the old mean), new decoder rows ~ the old mean
    torch.testing.assert_close(model.lm_head.bias[-3:], torch.full((3,), -0.026141270995140076), atol=1e-6, rtol=0)
    torch.testing.assert_close(model.lm_head.bias[-3:], old_bias.mean().expand(3))
    v4_row = torch.tensor([0.007981440052390099, 0.009379994124174118, 0.007970849983394146, 0.01776387356221676])
    torch.testing.assert_close(model.lm_head.decoder.weight[-1, :4], v4_row, atol=2e-5, rtol=0)  # v4 samples ~N(mean, 1e-9 cov)
    torch.testing.assert_close(model.lm_head.decoder.weight[-3:], old_decoder.mean(0).expand(3, -1))
    assert model.lm_head.decoder.bias is model.lm_head.bias
    # tied: the bias is padded with zeros (v4's _tie_or_clone_weights)
    tied, _ = build("masked_lm", tiny_config())
    tied.resize_token_embeddings(V + 3)
    assert tied.lm_head.bias[-3:].tolist() == [0.0, 0.0, 0.0]


def test_resize_pad_to_multiple_of_not_an_integer_has_v4s_message():
    model, _ = build("masked_lm", tiny_config())
    with pytest.raises(ValueError, match="Asking to pad the embedding matrix to a multiple of `1.3`, which is not "
                                         "and integer. Please make sure to pass an integer"):
        model.resize_token_embeddings(model.config.vocab_size, pad_to_multiple_of=1.3)
