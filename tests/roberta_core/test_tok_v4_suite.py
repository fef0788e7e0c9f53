"""What transformers v4's own tokenizer test suite (tests/test_tokenization_common.py of 4.57.6 and
tests/models/roberta/test_tokenization_roberta.py) exercises, where ours differed from v4.

Expected values are v4 4.57.6's outputs, recorded as literals ("v4 4.57.6 gives ..."), or plain
properties. The toy vocabulary is the one v4's RoBERTa tests write (a dozen symbols, no byte
table); the roberta-base tests skip without ../shared/data.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from roberta_core.special_tokens import AddedToken
from roberta_core.tokenization import RobertaTokenizer
from roberta_core.tokenization_fast import RobertaTokenizerFast

ROBERTA_BASE = Path(__file__).resolve().parents[3] / "shared" / "data" / "roberta-base-tokenizer"
needs_roberta_base = pytest.mark.skipif(not (ROBERTA_BASE / "vocab.json").is_file(),
                                        reason=f"{ROBERTA_BASE} is absent")
BOTH = pytest.mark.parametrize("cls", [RobertaTokenizer, RobertaTokenizerFast], ids=["slow", "fast"])

# v4's tests: "Adapted from Sennrich et al. 2015"
TOY_VOCAB = ["l", "o", "w", "e", "r", "s", "t", "i", "d", "n", "\u0120", "\u0120l", "\u0120n", "\u0120lo",
             "\u0120low", "er", "\u0120lowest", "\u0120newer", "\u0120wider", "<unk>"]
TOY_MERGES = ["#version: 0.2", "\u0120 l", "\u0120l o", "\u0120lo w", "e r", ""]


@pytest.fixture
def toy(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps(dict(zip(TOY_VOCAB, range(len(TOY_VOCAB))))) + "\n",
                                         encoding="utf-8")
    (tmp_path / "merges.txt").write_text("\n".join(TOY_MERGES), encoding="utf-8")
    return tmp_path


# ---------------------------------------------------------------- a vocabulary without the byte table

@BOTH
def test_toy_vocabulary_loads_and_the_specials_are_added_after_it(cls, toy):
    tok = cls.from_pretrained(toy, unk_token="<unk>")
    # v4 4.57.6 gives len 24, vocab_size 20, all_special_ids [20, 21, 19, 22, 23]
    assert (len(tok), tok.vocab_size) == (24, 20)
    assert tok.all_special_tokens == ["<s>", "</s>", "<unk>", "<pad>", "<mask>"]
    assert tok.all_special_ids == [20, 21, 19, 22, 23]


def test_full_tokenizer_of_v4s_roberta_tests(toy):
    # v4's test_full_tokenizer
    tok = RobertaTokenizer(toy / "vocab.json", toy / "merges.txt", unk_token="<unk>")
    tokens = tok.tokenize("lower newer")
    assert tokens == ["l", "o", "w", "er", "\u0120", "n", "e", "w", "er"]
    assert tok.convert_tokens_to_ids(tokens + [tok.unk_token]) == [0, 1, 2, 15, 10, 9, 3, 2, 15, 19]


def test_slow_gives_unk_for_a_byte_without_symbol(toy):
    tok = RobertaTokenizer.from_pretrained(toy, unk_token="<unk>")
    # v4 4.57.6 (slow): each unknown symbol is <unk> (19); tokenize shows the symbols themselves
    assert tok("lower newer xyz!")["input_ids"] == [20, 0, 1, 2, 15, 10, 9, 3, 2, 15, 10, 19, 19, 19, 19, 21]
    assert tok.tokenize("lower newer xyz!") == ["l", "o", "w", "er", "Ġ", "n", "e", "w", "er", "Ġ", "x", "y", "z", "!"]
    assert tok.decode([0, 1, 2, 5]) == "lows"
    # offsets (ours; v4's slow has none): one character per unknown symbol, as the fast engine counts them
    # (a 2-byte 'é' is two unknown symbols, each spanning the character; ' lo' is 'Ġlo', trimmed)
    enc = tok("xé lo", add_special_tokens=False, return_offsets_mapping=True)
    assert enc["input_ids"] == [19, 19, 19, 13]
    assert enc["offset_mapping"] == [(0, 1), (1, 2), (1, 2), (3, 5)]
    assert enc.tokens() == ["x", "Ã", "©", "Ġlo"]


def test_fast_drops_a_byte_without_symbol(toy):
    tok = RobertaTokenizerFast.from_pretrained(toy, unk_token="<unk>")
    enc = tok("lower newer xyz!", return_offsets_mapping=True)
    # v4 4.57.6 (fast: `tokenizers`' BPE without an unk token leaves them out)
    assert enc["input_ids"] == [20, 0, 1, 2, 15, 10, 9, 3, 2, 15, 10, 21]
    assert enc["offset_mapping"] == [(0, 0), (0, 1), (1, 2), (2, 3), (3, 5), (6, 6), (6, 7), (7, 8), (8, 9),
                                     (9, 11), (12, 12), (0, 0)]
    assert tok.tokenize("lower newer xyz!") == ["l", "o", "w", "er", "Ġ", "n", "e", "w", "er", "Ġ"]


# ---------------------------------------------------------------- keywords

@BOTH
def test_unknown_keywords_are_kept_as_v4_keeps_them(cls, toy, tmp_path):
    # v4's common tests pass do_lower_case=... (and verbose=...) to every tokenizer class
    tok = cls.from_pretrained(toy, do_lower_case=True, verbose=True)
    assert tok.init_kwargs["do_lower_case"] is True and tok.verbose is True
    tok.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is True  # v4 4.57.6 writes it back too
    direct = cls(toy / "vocab.json", toy / "merges.txt", do_lower_case=False)
    assert direct.init_kwargs["do_lower_case"] is False


@BOTH
@pytest.mark.parametrize("key", ["add_special_tokens", "get_vocab"])
def test_a_keyword_named_like_a_method_is_an_attribute_error(cls, toy, key):
    # v4 4.57.6: "add_special_tokens conflicts with the method add_special_tokens in RobertaTokenizer"
    with pytest.raises(AttributeError, match=f"{key} conflicts with the method {key}"):
        cls.from_pretrained(toy, **{key: True})
    with pytest.raises(AttributeError, match="conflicts with the method"):
        cls(toy / "vocab.json", toy / "merges.txt", **{key: True})


@BOTH
def test_init_inputs_is_empty(cls, toy):
    assert cls.from_pretrained(toy).init_inputs == ()


@BOTH
def test_the_fast_class_signature_holds_only_what_init_kwargs_records(cls, toy):
    # v4's test_tokenizer_(slow|fast)_store_full_signature
    import inspect

    tok = cls.from_pretrained(toy)
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if parameter.default is not inspect.Parameter.empty and name not in ("vocab_file", "merges_file",
                                                                              "tokenizer_file"):
            assert name in tok.init_kwargs


# ---------------------------------------------------------------- special tokens

def test_added_token_equals_tokenizers_one_and_prints_as_v4():
    tokenizers = pytest.importorskip("tokenizers")
    theirs = tokenizers.AddedToken("[NEW_EOS]", rstrip=False, lstrip=True, normalized=False, special=True)
    ours = AddedToken("[NEW_EOS]", lstrip=True, normalized=False, special=True)
    assert ours == theirs and theirs == ours and theirs in [ours] and ours in [theirs]
    assert ours != tokenizers.AddedToken("[NEW_EOS]", lstrip=False, normalized=False, special=True)
    assert ours != "[NEW_EOS]"
    # v4 4.57.6 prints its tokens so (tokenizers' repr)
    assert repr(ours) == repr(theirs) == ('AddedToken("[NEW_EOS]", rstrip=False, lstrip=True, single_word=False, '
                                          'normalized=False, special=True)')


@BOTH
def test_v4_added_token_as_special_token_round_trips(cls, toy, tmp_path):
    # v4's test_added_tokens_serialization, with v4's own AddedToken class (tokenizers')
    tokenizers = pytest.importorskip("tokenizers")
    new_eos = tokenizers.AddedToken("[NEW_EOS]", rstrip=False, lstrip=True, normalized=False, special=True)
    tok = cls.from_pretrained(toy, eos_token=new_eos)
    assert tok._special_tokens_map["eos_token"] == new_eos
    assert new_eos in tok.added_tokens_decoder.values()
    assert tok.added_tokens_decoder[tok.eos_token_id] == new_eos
    tok.save_pretrained(tmp_path / "saved")
    for other in (RobertaTokenizer, RobertaTokenizerFast):
        again = other.from_pretrained(tmp_path / "saved")
        assert again.added_tokens_decoder[again.eos_token_id] == new_eos


@BOTH
def test_special_tokens_map_attribute(cls, toy):
    tok = cls.from_pretrained(toy)
    held = tok._special_tokens_map
    # v4 4.57.6: every role and additional_special_tokens ([] here)
    assert list(held) == ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                          "mask_token", "additional_special_tokens"]
    assert held["mask_token"] == AddedToken("<mask>", lstrip=True, normalized=False, special=True)
    assert held["additional_special_tokens"] == []


@needs_roberta_base
@BOTH
def test_additional_special_tokens_setters(cls):
    tok = cls.from_pretrained(ROBERTA_BASE)
    tok.additional_special_tokens = None
    # v4 4.57.6: None, None, and no key in special_tokens_map
    assert tok.additional_special_tokens is None and tok.additional_special_tokens_ids is None
    assert "additional_special_tokens" not in tok.special_tokens_map
    tok.additional_special_tokens = ["<x>", AddedToken("hello")]
    # v4 4.57.6: the attribute adds nothing ('<x>' is unk, 3) and the text is not split on them
    assert tok.additional_special_tokens == ["<x>", "hello"] and tok.additional_special_tokens_ids == [3, 42891]
    assert tok.all_special_tokens == ["<s>", "</s>", "<unk>", "<pad>", "<mask>", "<x>", "hello"]
    assert len(tok) == 50265 and tok("<x> hello")["input_ids"] == [0, 41552, 1178, 15698, 20760, 2]
    tok.additional_special_tokens_ids = [5, 70000]
    assert tok.additional_special_tokens == ["Ġthe", "None"]  # v4 4.57.6 (no token past the vocabulary)
    tok.additional_special_tokens_ids = []
    assert tok.additional_special_tokens == [] and tok.additional_special_tokens_ids == []
    assert tok.all_special_ids == [0, 2, 3, 1, 50264]


@BOTH
def test_wrong_add_special_tokens_arguments_are_v4s_assertion_errors(cls, toy):
    tok = cls.from_pretrained(toy)
    # v4 4.57.6: AssertionError "Tokens <a> for key additional_special_tokens should all be str or AddedToken
    # instances" and "Key foo_token is not a special token"
    with pytest.raises(AssertionError):
        tok.add_special_tokens({"additional_special_tokens": "<a>"})
    with pytest.raises(AssertionError):
        tok.add_special_tokens({"foo_token": "<a>"})
    with pytest.raises(TypeError):  # as before
        tok.add_special_tokens({"additional_special_tokens": "<a>"})
    with pytest.raises(ValueError):
        tok.add_special_tokens({"foo_token": "<a>"})


# ---------------------------------------------------------------- pad

@needs_roberta_base
@BOTH
def test_pad_pads_the_input_named_first_in_model_input_names(cls):
    tok = cls.from_pretrained(ROBERTA_BASE)
    enc = tok(["a b c", "a"])
    enc["inputs"] = enc.pop("input_ids")
    tok.model_input_names = ["inputs", "attention_mask"]
    # v4 4.57.6 gives these (the key order kept)
    padded = tok.pad(enc, padding="longest")
    assert list(padded) == ["attention_mask", "inputs"]
    assert padded["inputs"] == [[0, 102, 741, 740, 2], [0, 102, 2, 1, 1]]
    assert padded["attention_mask"] == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    padded = tok.pad([{"inputs": [0, 5, 2]}, {"inputs": [0, 2]}])
    assert dict(padded) == {"inputs": [[0, 5, 2], [0, 2, 1]], "attention_mask": [[1, 1, 1], [1, 1, 0]]}


@BOTH
def test_fast_pad_gives_v4s_advice_once(cls, toy, caplog):
    tok = cls.from_pretrained(toy)
    enc = tok("lower")
    with caplog.at_level(logging.WARNING, logger="roberta_core"):
        tok.pad(enc)
        tok.pad(enc)
    advice = [r for r in caplog.records if "using the `__call__` method is faster" in r.getMessage()]
    assert len(advice) == (1 if cls.is_fast else 0)  # v4 4.57.6: the fast tokenizer's only
    caplog.clear()
    tok.deprecation_warnings = {}  # v4's way to give the warnings again
    with caplog.at_level(logging.WARNING, logger="roberta_core"):
        tok.pad(enc)
    assert len([r for r in caplog.records if "faster" in r.getMessage()]) == (1 if cls.is_fast else 0)


# ---------------------------------------------------------------- prepare_seq2seq_batch

@needs_roberta_base
@BOTH
def test_prepare_seq2seq_batch(cls):
    tok = cls.from_pretrained(ROBERTA_BASE)
    with pytest.warns(FutureWarning, match="prepare_seq2seq_batch"):
        batch = tok.prepare_seq2seq_batch(src_texts=["a b c d e", "a"], tgt_texts=["x y z w v u t s", "x"],
                                          max_length=3, max_target_length=5, return_tensors="np", src_lang="en")
    # v4 4.57.6 gives these
    assert {k: v.tolist() for k, v in batch.items()} == {
        "input_ids": [[0, 102, 2], [0, 102, 2]], "attention_mask": [[1, 1, 1], [1, 1, 1]],
        "labels": [[0, 1178, 1423, 992, 2], [0, 1178, 2, 1, 1]]}
    with pytest.warns(FutureWarning):
        batch = tok.prepare_seq2seq_batch(["a b c d e", "a"], max_length=4)
    assert dict(batch) == {"input_ids": [[0, 102, 741, 2], [0, 102, 2, 1]], "attention_mask": [[1, 1, 1, 1], [1, 1, 1, 0]]}


# ---------------------------------------------------------------- train_new_from_iterator

SMALL_TRAINING_CORPUS = [  # v4's
    ["This is the first sentence.", "This is the second one."],
    ["This sentence (contains #) over symbols and numbers 12 3.", "But not this one."],
]


def test_training_with_a_small_vocab_size_keeps_the_alphabet(toy):
    tok = RobertaTokenizerFast.from_pretrained(toy)
    new = tok.train_new_from_iterator(SMALL_TRAINING_CORPUS, 100)
    # v4 4.57.6: 261 tokens (5 specials in their id order, then the 256 byte symbols)
    assert (len(new), new.vocab_size) == (261, 261)
    assert new.all_special_tokens == ["<s>", "</s>", "<unk>", "<pad>", "<mask>"]
    assert new.all_special_ids == [1, 2, 0, 3, 4]
    assert new.decode(new("This is the first sentence")["input_ids"], skip_special_tokens=True) == \
        "This is the first sentence"
    assert new.special_tokens_map == tok.special_tokens_map


def test_training_renames_special_tokens_with_special_tokens_map(toy):
    tok = RobertaTokenizerFast.from_pretrained(toy)
    new = tok.train_new_from_iterator(SMALL_TRAINING_CORPUS, 300, special_tokens_map={"<s>": "<cls>", "</s>": "</s>a"},
                                      new_special_tokens=["<x>"])
    # v4 4.57.6 gives these: the flags kept, the roles renamed, '<x>' an additional special token
    assert new.special_tokens_map == {"bos_token": "<cls>", "eos_token": "</s>a", "unk_token": "<unk>",
                                      "sep_token": "</s>a", "pad_token": "<pad>", "cls_token": "<cls>",
                                      "mask_token": "<mask>", "additional_special_tokens": ["<x>"]}
    assert new.all_special_ids == [1, 2, 0, 3, 4, 5]
    assert new.added_tokens_decoder[1] == AddedToken("<cls>", normalized=True, special=True)
    assert new.added_tokens_decoder[4] == AddedToken("<mask>", lstrip=True, normalized=False, special=True)
    assert new.added_tokens_decoder[5] == AddedToken("<x>", normalized=False, special=True)
    assert new.get_vocab()["<cls>"] == new.cls_token_id == 1
    assert len(new) == 300
