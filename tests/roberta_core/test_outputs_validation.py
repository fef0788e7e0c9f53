"""Model outputs (v4 field access) and the shared input checks."""

import pickle

import pytest

from roberta_core.outputs import MaskedLMOutput, QuestionAnsweringModelOutput
from roberta_core.validation import (
    check_forward_inputs,
    check_generation_args,
    new_token_count,
    check_labels,
    check_range,
    resolve_problem_type,
)
from tests.helpers import tiny_config


def test_output_access_like_v4():
    out = MaskedLMOutput(logits="L", hidden_states=("h0", "h1"))
    assert out.logits == "L" and out["logits"] == "L" and out[0] == "L"
    assert out.loss is None and "loss" not in out
    assert out.to_tuple() == ("L", ("h0", "h1"))
    out.loss = "x"  # set later: still comes first, as in declaration order
    assert list(out) == ["loss", "logits", "hidden_states"] and out[0] == "x"
    rebuilt = MaskedLMOutput((k, v) for k, v in out.items())  # how tree utilities rebuild it
    assert rebuilt == out and type(rebuilt) is MaskedLMOutput
    assert pickle.loads(pickle.dumps(out)) == out
    with pytest.raises(TypeError, match="no field"):
        MaskedLMOutput(start_logits=1)
    with pytest.raises(AttributeError):
        QuestionAnsweringModelOutput().logits


def test_item_assignment_adds_keys_like_v4():
    # v4's fill-mask pipeline stores `input_ids` in the model's output before post-processing.
    out = MaskedLMOutput(logits="L")
    out["input_ids"] = "ids"
    assert list(out) == ["logits", "input_ids"] and out.input_ids == "ids" and out.to_tuple() == ("L", "ids")
    out.loss = "x"  # a field set later still takes its place; added keys stay last
    assert list(out.items()) == [("loss", "x"), ("logits", "L"), ("input_ids", "ids")] and out[2] == "ids"
    out.input_ids = "other"  # an added key is an attribute too, as in v4
    assert out["input_ids"] == "other"
    for copy in (pickle.loads(pickle.dumps(out)), MaskedLMOutput((k, v) for k, v in out.items())):
        assert type(copy) is MaskedLMOutput and list(copy.items()) == list(out.items())
    with pytest.raises(TypeError, match="no field"):
        MaskedLMOutput(logits="L", input_ids="ids")  # keywords are the fields only (v4: a dataclass)
    with pytest.raises(TypeError, match="strings"):
        out[None] = 1
    with pytest.raises(AttributeError):
        out.anything_else


def test_forward_input_checks():
    c = tiny_config()
    assert check_forward_inputs(c, input_ids=(2, 5), attention_mask=(2, 5)) == (2, 5)
    assert check_forward_inputs(c, inputs_embeds=(2, 5, 32)) == (2, 5)
    cases = [
        (dict(input_ids=(2, 5), inputs_embeds=(2, 5, 32)), "not both"),
        (dict(), "give input_ids"),
        (dict(input_ids=(5,)), r"shape \(batch, length\)"),
        (dict(inputs_embeds=(2, 5, 16)), "hidden_size=32"),
        (dict(input_ids=(2, 65)), "exceeds the 64 tokens"),
        (dict(input_ids=(2, 1), past_length=64), r"65 \(64 cached \+ 1 new\)"),
        (dict(input_ids=(2, 5), attention_mask=(2, 4)), r"attention_mask must have shape \(2, 5\)"),
        (dict(input_ids=(2, 5), token_type_ids=(5,)), "token_type_ids must have shape"),
        (dict(input_ids=(2, 5), head_mask=(3,)), r"head_mask must have shape \(4,\) or \(2, 4\)"),
        (dict(input_ids=(2, 5), encoder_hidden_states=(2, 3, 32)), "no cross-attention"),
        (dict(input_ids=(0, 5)), "at least one sequence"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            check_forward_inputs(c, **kwargs)
    rel = tiny_config(position_embedding_type="relative_key")
    assert check_forward_inputs(rel, input_ids=(1, 66)) == (1, 66)


def test_range_and_labels():
    check_range("input_ids", 0, 99, 100)
    with pytest.raises(ValueError, match=r"input_ids must be in 0\.\.99; got values from 0 to 100"):
        check_range("input_ids", 0, 100, 100)
    c = tiny_config(num_labels=3)
    assert resolve_problem_type(c, True) == "single_label_classification"
    assert resolve_problem_type(c, False) == "multi_label_classification"
    assert resolve_problem_type(tiny_config(num_labels=1), True) == "regression"
    assert check_labels("sequence_classification", c, (2, 3), batch=2, length=5, labels_are_integers=False) == "multi_label_classification"
    with pytest.raises(ValueError, match=r"shape \(2, 5\) \(one per token\)"):
        check_labels("masked_lm", c, (2, 4), batch=2, length=5, labels_are_integers=True)
    with pytest.raises(TypeError, match="integer"):
        check_labels("token_classification", c, (2, 5), batch=2, length=5, labels_are_integers=False)
    with pytest.raises(ValueError, match=r"multi-label classification labels must have shape \(2, 3\)"):
        check_labels("sequence_classification", c, (2,), batch=2, length=5, labels_are_integers=False)


def test_generation_args():
    check_generation_args(max_new_tokens=3, temperature=0.7, top_k=5, top_p=0.9, do_sample=True)
    for kwargs, match in [
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(temperature=0.0, do_sample=True), "temperature"),
        (dict(top_k=-1), "top_k"),  # 0 is v4's "no filter"
        (dict(top_p=1.5), "top_p"),
    ]:
        args = dict(max_new_tokens=3, temperature=1.0, top_k=None, top_p=None, do_sample=False)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            check_generation_args(**args)


def test_new_token_count_reads_v4s_two_limits():
    # v4 4.57: the default max_length=20 of GenerationConfig counts the prompt in its TF and Flax
    # generate (with a warning recommending max_new_tokens; a prompt of 20 or more is an error), while
    # its PyTorch GenerationMixin reads it as 20 new tokens, capped by the positions
    # (transformers/generation/utils.py, _prepare_generated_length); max_new_tokens wins over
    # max_length (with a warning), max_length <= prompt is an error.
    with pytest.warns(UserWarning, match="default `max_length` \\(=20\\)"):
        assert new_token_count(5, None, None) == 15
    with pytest.raises(ValueError, match="max_length=20 counts the prompt, which already has 25 tokens"):
        new_token_count(25, None, None)
    assert new_token_count(25, None, None, default_counts_prompt=False) == 20
    assert new_token_count(25, None, None, default_counts_prompt=False, limit=30) == 5
    assert new_token_count(5, None, 8) == 3 and new_token_count(5, 2, None) == 2
    with pytest.warns(UserWarning, match="max_new_tokens takes precedence"):
        assert new_token_count(5, 2, 8) == 2
    with pytest.raises(ValueError, match="max_length=8 counts the prompt, which already has 10 tokens"):
        new_token_count(10, None, 8)
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        new_token_count(5, None, 0)

