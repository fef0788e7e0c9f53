"""Where v4's slow and fast tokenizers differ from each other or from what one would guess: both of
ours follow v4 (transformers 4.57.6) of their kind.

Every expected value was recorded from transformers 4.57.6 (RobertaTokenizer and
RobertaTokenizerFast) on the same files: the small byte-level vocabulary of
test_tokenization.tiny_files (ids: 'a' 101, 'b' 102, ..., 'Ġ' 36, 'hel' 261, '<mask>' 263), made
without a tokenizer_config.json, as the real roberta-base folder is.
"""

import copy
import json
import logging

import numpy as np
import pytest

from roberta_core.tokenization import RobertaTokenizer
from roberta_core.tokenization_fast import RobertaTokenizerFast
from tests.roberta_core.test_tokenization import BOTH, tiny_files

SLOW, FAST = "slow", "fast"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tiny_files(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tok(files, cls):
    return cls.from_pretrained(files)


def kind(tok) -> str:
    return FAST if tok.is_fast else SLOW


def listed(encoding) -> dict:
    """A BatchEncoding as a plain dict, in its key order, with tuples (offsets) as lists."""
    return json.loads(json.dumps(dict(encoding)))


# ----------------------------------------------------------------------------- 1. model_max_length


@BOTH
def test_model_max_length_is_very_large_without_a_config_and_then_nothing_is_cut(tok, files, cls, caplog):
    assert tok.model_max_length == int(1e30) == 1000000000000000019884624838656
    assert tok.max_len_single_sentence == int(1e30) - 2
    with caplog.at_level(logging.WARNING):
        out = tok("hel hel hel", truncation=True)
        tok("hel hel hel", truncation=True)
    assert listed(out) == {"input_ids": [0, 261, 36, 261, 36, 261, 2], "attention_mask": [1] * 7}
    assert [r.message for r in caplog.records].count(
        "Asking to truncate to max_length but no maximum length is provided and the model has no predefined "
        "maximum length. Default to no truncation.") == 1  # once per tokenizer, as v4
    out = tok(["hel hel", "hel"], padding="max_length")
    assert listed(out) == {"input_ids": [[0, 261, 36, 261, 2], [0, 261, 2]],
                           "attention_mask": [[1] * 5, [1] * 3]}
    # A saved 1e30 stays 1e30; a model_max_length the config sets is used.
    tok.save_pretrained(files.parent / f"saved-{kind(tok)}")
    assert cls.from_pretrained(files.parent / f"saved-{kind(tok)}").model_max_length == int(1e30)
    config = json.loads((files.parent / f"saved-{kind(tok)}" / "tokenizer_config.json").read_text())
    config["model_max_length"] = 4
    (files.parent / f"saved-{kind(tok)}" / "tokenizer_config.json").write_text(json.dumps(config))
    four = cls.from_pretrained(files.parent / f"saved-{kind(tok)}")
    assert four("hel hel hel", truncation=True)["input_ids"] == [0, 261, 36, 2]


# ----------------------------------------------------------------------------- 2, 11. length and key order


@BOTH
def test_return_length_and_key_order(tok):
    batch = tok(["hel hel", "hel"], padding=True, return_length=True)
    single = tok("hel", return_length=True)
    single_max = tok("hel", padding="max_length", max_length=6, return_length=True)
    if tok.is_fast:  # the padded length, and a list even for one text
        assert listed(batch) == {"input_ids": [[0, 261, 36, 261, 2], [0, 261, 2, 1, 1]],
                                 "attention_mask": [[1] * 5, [1, 1, 1, 0, 0]], "length": [5, 5]}
        assert list(batch) == ["input_ids", "attention_mask", "length"]
        assert single["length"] == [3] and single_max["length"] == [6]
    else:  # a batch counts without the padding (v4's quirk), one text with it
        assert listed(batch) == {"input_ids": [[0, 261, 36, 261, 2], [0, 261, 2, 1, 1]], "length": [5, 3],
                                 "attention_mask": [[1] * 5, [1, 1, 1, 0, 0]]}
        assert list(batch) == ["input_ids", "length", "attention_mask"]
        assert single["length"] == 3 and single_max["length"] == 6
    everything = dict(return_length=True, return_special_tokens_mask=True, return_token_type_ids=True)
    keys_single = list(tok("hel", "he", **everything))
    keys_batch = list(tok(["hel", "he"], padding=True, **everything))
    if tok.is_fast:
        assert keys_single == keys_batch == ["input_ids", "token_type_ids", "attention_mask", "special_tokens_mask",
                                             "length"]
    else:
        assert keys_single == ["input_ids", "token_type_ids", "special_tokens_mask", "attention_mask", "length"]
        assert keys_batch == ["input_ids", "token_type_ids", "special_tokens_mask", "length", "attention_mask"]


# ----------------------------------------------------------------------------- 3, 4. overflow


@BOTH
def test_overflow_windows_fast_and_overflowing_tokens_slow(tok):
    single = tok("a b c d e", truncation=True, max_length=6, stride=2, return_overflowing_tokens=True)
    batch = tok(["a", "a b"], ["b c d e", "c"], truncation="only_second", max_length=8, stride=1,
                return_overflowing_tokens=True)
    if tok.is_fast:
        assert listed(single) == {
            "input_ids": [[0, 101, 36, 102, 36, 2], [0, 102, 36, 103, 36, 2], [0, 103, 36, 104, 36, 2],
                          [0, 104, 36, 105, 2]],
            "attention_mask": [[1] * 6, [1] * 6, [1] * 6, [1] * 5], "overflow_to_sample_mapping": [0, 0, 0, 0]}
        assert listed(batch) == {
            "input_ids": [[0, 101, 2, 2, 102, 36, 103, 2], [0, 101, 2, 2, 103, 36, 104, 2],
                          [0, 101, 2, 2, 104, 36, 105, 2], [0, 101, 36, 102, 2, 2, 103, 2]],
            "attention_mask": [[1] * 8] * 4, "overflow_to_sample_mapping": [0, 0, 0, 1]}
    else:
        assert listed(single) == {"overflowing_tokens": [102, 36, 103, 36, 104, 36, 105], "num_truncated_tokens": 5,
                                  "input_ids": [0, 101, 36, 102, 36, 2], "attention_mask": [1] * 6}
        assert listed(batch) == {"overflowing_tokens": [[103, 36, 104, 36, 105], []], "num_truncated_tokens": [4, 0],
                                 "input_ids": [[0, 101, 2, 2, 102, 36, 103, 2], [0, 101, 36, 102, 2, 2, 103, 2]],
                                 "attention_mask": [[1] * 8, [1] * 8]}


@BOTH
def test_pair_overflow_with_longest_first(tok):
    args = ("a b c d e", "h e l w")
    options = dict(truncation=True, max_length=10, stride=1, return_overflowing_tokens=True)
    if not tok.is_fast:
        with pytest.raises(ValueError, match="Not possible to return overflowing tokens for pair of sequences"):
            tok(*args, **options)
        return
    # tokenizers pairs the windows of both texts: (first, first), each later window of the first
    # text with every window of the second, then the first window with the second's later ones.
    first = [[101, 36, 102], [102, 36, 103], [103, 36, 104], [104, 36, 105]]
    second = [[108, 36, 105], [105, 36, 112], [112, 262]]
    order = [(0, 0)] + [(i, j) for i in (1, 2, 3) for j in (0, 1, 2)] + [(0, 1), (0, 2)]
    out = tok(*args, **options)
    assert out["input_ids"] == [[0, *first[i], 2, 2, *second[j], 2] for i, j in order]
    assert out["overflow_to_sample_mapping"] == [0] * 12 and len(out["input_ids"][3]) == 9


@BOTH
def test_prepare_for_model_is_v4_slow_for_both(tok):
    assert listed(tok.prepare_for_model([5, 6, 7, 8, 9, 10], truncation=True, max_length=5, stride=1,
                                        return_overflowing_tokens=True)) == {
        "overflowing_tokens": [7, 8, 9, 10], "num_truncated_tokens": 3, "input_ids": [0, 5, 6, 7, 2],
        "attention_mask": [1] * 5}
    assert listed(tok.prepare_for_model([5, 6, 7, 8], [9], truncation="only_first", max_length=6,
                                        return_overflowing_tokens=True, return_token_type_ids=True)) == {
        "overflowing_tokens": [6, 7, 8], "num_truncated_tokens": 3, "input_ids": [0, 5, 2, 2, 9, 2],
        "token_type_ids": [0] * 6, "attention_mask": [1] * 6}
    # 8. tensors of one row have no batch axis
    arrays = tok.prepare_for_model([5, 6], [7], return_tensors="np")
    assert {k: v.shape for k, v in arrays.items()} == {"input_ids": (7,), "attention_mask": (7,)}
    torch = pytest.importorskip("torch")
    tensors = tok.prepare_for_model([5, 6], return_tensors="pt")
    assert isinstance(tensors["input_ids"], torch.Tensor) and tuple(tensors["input_ids"].shape) == (4,)


@BOTH
def test_truncate_sequences(tok):
    assert tok.truncate_sequences([1, 2, 3, 4, 5], [6, 7, 8], num_tokens_to_remove=3) == ([1, 2, 3], [6, 7], [])
    assert tok.truncate_sequences([1, 2, 3, 4, 5], [6, 7, 8], num_tokens_to_remove=2, truncation_strategy="only_second",
                                  stride=1) == ([1, 2, 3, 4, 5], [6], [6, 7, 8])
    assert tok.truncate_sequences([1, 2, 3, 4, 5], num_tokens_to_remove=2, stride=1) == ([1, 2, 3], None, [3, 4, 5])


# ----------------------------------------------------------------------------- 5. special-token attributes


@BOTH
def test_setting_a_special_token_adds_nothing(tok):
    tok.pad_token = "[PAD]"
    assert (len(tok), tok.pad_token, tok.pad_token_id) == (264, "[PAD]", 3)  # unk's id
    assert tok.tokenize("a[PAD]") == ["a", "[", "P", "A", "D", "]"]
    assert tok(["a b", "a"], padding=True)["input_ids"] == [[0, 101, 36, 102, 2], [0, 101, 2, 3, 3]]
    assert tok.all_special_tokens == ["<s>", "</s>", "<unk>", "[PAD]", "<mask>"]
    assert tok.add_special_tokens({"pad_token": "[PAD]"}) == 1 and (len(tok), tok.pad_token_id) == (265, 264)


# ----------------------------------------------------------------------------- 6, 13. tokens


@BOTH
def test_tokens_of_a_token_that_strips_whitespace(tok):
    if tok.is_fast:  # the fast token shows the spaces it took
        assert tok.tokenize("a <mask> b") == ["a", " <mask>", "Ġ", "b"]
        assert tok.tokenize("a  <mask>") == ["a", "  <mask>"]
        assert tok.convert_tokens_to_string(tok.tokenize("a <mask> b")) == "a <mask> b"
        assert tok("a <mask> b").tokens() == ["<s>", "a", " <mask>", "Ġ", "b", "</s>"]
        assert tok.tokenize("hel", add_special_tokens=True) == ["<s>", "hel", "</s>"]
    else:
        assert tok.tokenize("a <mask> b") == ["a", "<mask>", "Ġ", "b"]
        assert tok.tokenize("a  <mask>") == ["a", "<mask>"]
        assert tok.convert_tokens_to_string(tok.tokenize("a <mask> b")) == "a<mask> b"
        assert tok.tokenize("hel", add_special_tokens=True) == ["hel"]  # the slow one ignores the flag


@BOTH
def test_add_tokens_counts(tok):
    # fast: every token added or changed (a vocabulary token too); slow: the new ids
    assert tok.add_tokens(["zzq", "<s>", "hel", "zzq"]) == (3 if tok.is_fast else 1)
    assert tok.add_tokens(["Ġw"]) == (1 if tok.is_fast else 0)


# ----------------------------------------------------------------------------- 7. pad


@BOTH
def test_pad_infers_the_tensor_type_and_leaves_offsets(tok):
    out = tok.pad([{"input_ids": np.array([0, 5, 2])}, {"input_ids": np.array([0, 2])}])
    assert isinstance(out["input_ids"], np.ndarray)
    assert out["input_ids"].tolist() == [[0, 5, 2], [0, 2, 1]] and out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    offsets = tok.pad({"input_ids": [[0, 5, 2], [0, 2]], "offset_mapping": [[(0, 0), (0, 1), (0, 0)], [(0, 0), (0, 0)]]})
    assert listed(offsets) == {"input_ids": [[0, 5, 2], [0, 2, 1]],
                               "offset_mapping": [[[0, 0], [0, 1], [0, 0]], [[0, 0], [0, 0]]],
                               "attention_mask": [[1, 1, 1], [1, 1, 0]]}
    torch = pytest.importorskip("torch")
    out = tok.pad({"input_ids": [torch.tensor([0, 5, 2]), torch.tensor([0, 2])]})
    assert isinstance(out["input_ids"], torch.Tensor) and out["input_ids"].tolist() == [[0, 5, 2], [0, 2, 1]]


# ----------------------------------------------------------------------------- 9, 10. v4 names


@BOTH
def test_v4_names(tok):
    expected_added = ({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 263} if tok.is_fast else
                      {"<s>": 0, "</s>": 2, "<unk>": 3, "<pad>": 1, "<mask>": 263})
    assert tok.get_added_vocab() == expected_added and list(tok.get_added_vocab()) == list(expected_added)
    assert tok.additional_special_tokens_ids == []
    assert {k: str(v) for k, v in tok.special_tokens_map_extended.items()} == {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>", "pad_token": "<pad>",
        "cls_token": "<s>", "mask_token": "<mask>"}
    assert [str(t) for t in tok.all_special_tokens_extended] == ["<s>", "</s>", "<unk>", "<pad>", "<mask>"]
    assert tok.verbose is False
    names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    assert tok.vocab_files_names == ({**names, "tokenizer_file": "tokenizer.json"} if tok.is_fast else names)
    keys = ["add_prefix_space", "bos_token", "cls_token", "eos_token", "errors", "mask_token", "name_or_path",
            "pad_token", "sep_token", "tokenizer_file", "unk_token"]
    assert sorted(tok.init_kwargs) == sorted(keys + (["trim_offsets"] if tok.is_fast else []))
    encoding = tok(["hel", "he"])
    assert (encoding.is_fast, encoding.encodings is None) == ((True, False) if tok.is_fast else (False, True))
    assert encoding.tokens(1) == ["<s>", "he", "</s>"]  # the accessors v4 lacks on slow output still work


def test_v4_names_of_each_class(files):
    fast = RobertaTokenizerFast.from_pretrained(files)
    assert fast.slow_tokenizer_class is RobertaTokenizer and fast.can_save_slow_tokenizer is True
    assert len(fast.vocab) == 264 and fast._tokenizer.encode("hel").ids == [0, 261, 2]
    slow = RobertaTokenizer.from_pretrained(files)
    assert len(slow.encoder) == 264 and slow.decoder[108] == "h"
    assert sorted(slow.bpe_ranks.items(), key=lambda kv: kv[1]) == [(("h", "e"), 0), (("he", "l"), 1), (("Ġ", "w"), 2)]
    assert len(slow.byte_encoder) == 256 and slow.byte_decoder["Ġ"] == 32
    assert not hasattr(slow, "vocab")


# ----------------------------------------------------------------------------- 12. decode


@BOTH
def test_decode_with_added_tokens(tok):
    tok = copy.deepcopy(tok)
    tok.add_tokens(["zzq"])
    tok.add_tokens(["<sp>"], special_tokens=True)
    ids = tok.encode("a zzq b<sp>")
    assert ids == [0, 101, 36, 264, 36, 102, 265, 2]
    if tok.is_fast:
        assert tok.decode(ids) == tok.decode(ids, spaces_between_special_tokens=False) == "<s>a zzq b<sp></s>"
        assert tok.decode(ids, skip_special_tokens=True) == "a zzq b"
        assert tok.all_special_tokens == ["<s>", "</s>", "<unk>", "<pad>", "<mask>"]
    else:  # spaces around added tokens; a special one added by add_tokens becomes an additional special token
        assert tok.decode(ids) == "<s>a  zzq  b <sp> </s>"
        assert tok.decode(ids, spaces_between_special_tokens=False) == "<s>a zzq b<sp></s>"
        assert tok.decode(ids, skip_special_tokens=True) == "a  zzq  b"
        assert tok.all_special_tokens == ["<s>", "</s>", "<unk>", "<pad>", "<mask>", "<sp>"]
