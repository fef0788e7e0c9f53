"""generate()'s v4 TF keywords: `inputs=`, `num_return_sequences`, `use_cache`, `early_stopping`,
`token_type_ids` (v4 TF's generate does not pass them to the model), and v4 settings not
implemented (a NotImplementedError naming them). Checked by independent replays."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.helpers import tiny_config
from tests.roberta_tf.common import build

IDS = np.array([[5, 9, 14, 3, 22, 7], [1, 1, 30, 11, 4, 19]])
MASK = np.array([[1] * 6, [0, 0, 1, 1, 1, 1]])


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build("causal_lm", tiny_config(is_decoder=True, type_vocab_size=2))[0]


def test_inputs_and_inert_keywords(model):
    plain = np.asarray(model.generate(IDS, attention_mask=MASK, max_new_tokens=4))
    for kw in (dict(inputs=IDS), dict(input_ids=IDS, use_cache=False, early_stopping=True),
               dict(inputs=IDS, token_type_ids=np.ones_like(IDS), num_return_sequences=1)):
        assert np.array_equal(np.asarray(model.generate(attention_mask=MASK, max_new_tokens=4, **kw)), plain)
    with pytest.raises(ValueError, match="inputs"):
        model.generate(IDS, input_ids=IDS)


def test_num_return_sequences(model):
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(IDS, num_return_sequences=2, max_new_tokens=2)  # greedy: v4's ValueError
    got = model.generate(IDS, attention_mask=MASK, do_sample=True, num_return_sequences=3, max_new_tokens=4, seed=5)
    want = model.generate(np.repeat(IDS, 3, 0), attention_mask=np.repeat(MASK, 3, 0), do_sample=True,
                          max_new_tokens=4, seed=5)  # replay: v4 repeats each prompt
    assert got.shape[0] == 6 and np.array_equal(np.asarray(got), np.asarray(want))


def test_settings_not_implemented(model):
    for kw in (dict(no_repeat_ngram_size=2), dict(output_hidden_states=True, return_dict_in_generate=True)):
        with pytest.raises(NotImplementedError, match=next(iter(kw))):
            model.generate(IDS, max_new_tokens=2, **kw)
    with pytest.raises(TypeError, match="foo"):
        model.generate(IDS, foo=1)


def test_question_answering_has_num_labels():
    assert build("question_answering", tiny_config())[0].num_labels == 2
