"""generate()'s v4 keywords (`inputs=`, `use_cache`, `token_type_ids`, `num_return_sequences`,
`no_repeat_ngram_size`, `stopping_criteria`, `output_hidden_states`/`output_attentions`, and v4's
inert ones). Expected ids were recorded from transformers 4.57.6's RobertaForCausalLM.generate on
the same weights (this model saved with save_pretrained, loaded by v4), or replayed independently."""

from __future__ import annotations

import warnings

import pytest
import torch

from tests.helpers import tiny_config
from tests.roberta_pt.common import build

IDS = torch.tensor([[5, 9, 14, 3, 22, 7], [1, 1, 30, 11, 4, 19]])
MASK = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1]])
TYPES = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
# transformers 4.57.6, same weights and prompts (left-padded row 1)
V4 = {
    "plain": [[5, 9, 14, 3, 22, 7, 81, 71, 81, 18, 94, 71], [1, 1, 30, 11, 4, 19, 94, 60, 11, 11, 51, 7]],
    "types": [[5, 9, 14, 3, 22, 7, 55, 48, 48, 7, 8, 36], [1, 1, 30, 11, 4, 19, 8, 48, 48, 48, 90, 8]],
    "ngram2": [[5, 9, 14, 3, 22, 7, 81, 71, 81, 18, 94, 71, 71, 89, 84, 84],
               [1, 1, 30, 11, 4, 19, 94, 60, 11, 11, 51, 7, 81, 7, 71, 81]],
    "ngram1": [[5, 9, 14, 3, 22, 7, 81, 71, 33, 18, 94, 55, 84, 89], [1, 1, 30, 11, 4, 19, 94, 60, 81, 47, 16, 7, 87, 88]],
    "stop": [[5, 9, 14, 3, 22, 7, 81, 1], [1, 1, 30, 11, 4, 19, 94, 60]],
}


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build("causal_lm", tiny_config(is_decoder=True, type_vocab_size=2))[0]


def gen(model, **kw):
    return model.generate(attention_mask=MASK, **kw).tolist()


def test_inputs_and_input_ids_and_use_cache_give_v4s_tokens(model):
    assert gen(model, inputs=IDS, max_new_tokens=6) == V4["plain"]
    assert gen(model, input_ids=IDS, max_new_tokens=6, use_cache=False) == V4["plain"]
    assert gen(model, input_ids=IDS, max_new_tokens=6, use_cache=True, early_stopping=True, synced_gpus=False) == V4["plain"]
    with pytest.raises(ValueError, match="inputs"):
        model.generate(IDS, input_ids=IDS)


def test_token_type_ids_as_v4(model):
    assert gen(model, inputs=IDS, max_new_tokens=6, token_type_ids=TYPES) == V4["types"]


@pytest.mark.parametrize("n", [1, 2])
def test_no_repeat_ngram_size_as_v4(model, n):
    assert gen(model, inputs=IDS, max_new_tokens=10 if n == 2 else 8, no_repeat_ngram_size=n) == V4[f"ngram{n}"]


def test_stopping_criteria_finish_rows_as_v4(model):
    def stop(input_ids, scores, **kwargs):
        return input_ids[:, -1] % 3 == 0

    assert gen(model, inputs=IDS, max_new_tokens=8, stopping_criteria=[stop], pad_token_id=1, eos_token_id=[]) == V4["stop"]


def test_num_return_sequences(model):
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(IDS, num_return_sequences=2, max_new_tokens=2)  # greedy: v4's ValueError
    torch.manual_seed(11)
    got = model.generate(IDS, attention_mask=MASK, do_sample=True, num_return_sequences=3, max_new_tokens=5)
    torch.manual_seed(11)  # replay: v4 repeats each prompt (repeat_interleave)
    want = model.generate(IDS.repeat_interleave(3, 0), attention_mask=MASK.repeat_interleave(3, 0), do_sample=True,
                          max_new_tokens=5)
    assert torch.equal(got, want) and got.shape[0] == 6


def test_hidden_states_and_attentions_per_step(model):
    out = model.generate(IDS, attention_mask=MASK, max_new_tokens=3, return_dict_in_generate=True,
                         output_hidden_states=True, output_attentions=True)
    # v4.57's shapes on this model
    assert [[tuple(h.shape) for h in step] for step in out.hidden_states] == [[(2, 6, 32)] * 3, [(2, 1, 32)] * 3,
                                                                               [(2, 1, 32)] * 3]
    assert [[tuple(a.shape) for a in step] for step in out.attentions] == [[(2, 4, 6, 6)] * 2, [(2, 4, 1, 7)] * 2,
                                                                            [(2, 4, 1, 8)] * 2]
    v4_last = [[-0.8848036527633667, -0.5838165879249573, 0.4330027401447296, -1.5051764249801636],
               [-0.7694020867347717, 0.34666281938552856, 0.598606288433075, -1.3190386295318604]]
    torch.testing.assert_close(out.hidden_states[2][-1][:, -1, :4], torch.tensor(v4_last), atol=1e-4, rtol=1e-4)


def test_other_v4_keywords(model):
    assert gen(model, inputs=IDS, max_new_tokens=6, streamer=None, logits_processor=[], typical_p=1.0) == V4["plain"]
    with pytest.raises(NotImplementedError, match="typical_p"):
        model.generate(IDS, typical_p=0.5)
    with pytest.raises(NotImplementedError, match="logits_processor"):
        model.generate(IDS, logits_processor=[lambda i, s: s])
    with pytest.raises(TypeError, match="foo"):
        model.generate(IDS, foo=1)


def test_question_answering_has_num_labels():
    assert build("question_answering", tiny_config())[0].num_labels == 2
