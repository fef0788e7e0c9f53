"""Inputs v4's own code hands the tokenizers: arrays and tensors (TensorFlow's too) to
`get_special_tokens_mask` and `pad` (v4's data collators), and token ids or token strings to the
slow tokenizer's `encode_plus` (v4's question-answering preprocessing, `squad.py`).

Every expected value was recorded from transformers 4.57.6 (RobertaTokenizer and
RobertaTokenizerFast) on the small vocabulary of test_tokenization.tiny_files ('a' 101, 'b' 102,
'Ġ' 36, 'he' 260, 'hel' 261, 'Ġw' 262, '<mask>' 263, '<unk>' 3, '<pad>' 1).
"""

import json

import numpy as np
import pytest

from roberta_core.tokenization import RobertaTokenizer
from roberta_core.tokenization_fast import RobertaTokenizerFast
from tests.roberta_core.test_tokenization import BOTH
from tests.roberta_core.test_tokenization_v4 import files, tok  # noqa: F401  (the shared fixtures)


def listed(encoding) -> dict:
    return json.loads(json.dumps({k: np.asarray(v).tolist() for k, v in encoding.items()}))


class EagerLike:
    """What a TensorFlow EagerTensor offers here: `.numpy()`, no `.tolist()`, unhashable (its
    `==` is elementwise), iterable into scalar tensors of its own kind."""

    __hash__ = None

    def __init__(self, values):
        self._array = np.asarray(values)

    def numpy(self):
        return self._array

    def __len__(self):
        return len(self._array)

    def __iter__(self):
        return (EagerLike(v) for v in self._array)

    def __eq__(self, other):
        return EagerLike(self._array == other)

    def __bool__(self):
        if self._array.size != 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous.")
        return bool(self._array)


IDS = [0, 101, 102, 2, 2, 1, 263, 3]
MASK = [1, 0, 0, 1, 1, 1, 1, 1]  # v4, slow and fast, for a list, a NumPy array, a torch and a TF tensor


# ----------------------------------------------------------------------------- get_special_tokens_mask


@BOTH
def test_special_tokens_mask_of_arrays_and_tensors(tok):
    for ids in (IDS, tuple(IDS), np.array(IDS), [np.int64(i) for i in IDS], EagerLike(IDS), list(EagerLike(IDS))):
        assert tok.get_special_tokens_mask(ids, already_has_special_tokens=True) == MASK
    torch = pytest.importorskip("torch")
    assert tok.get_special_tokens_mask(torch.tensor(IDS), already_has_special_tokens=True) == MASK


@BOTH
def test_special_tokens_mask_of_a_tensorflow_tensor(tok):
    tf = pytest.importorskip("tensorflow")
    # v4's DataCollatorForWholeWordMask(tok, return_tensors="tf") passes rows of a TF tensor.
    assert tok.get_special_tokens_mask(tf.constant(IDS), already_has_special_tokens=True) == MASK
    assert tok.get_special_tokens_mask(tf.constant([IDS])[0], already_has_special_tokens=True) == MASK


# ----------------------------------------------------------------------------- pad

A, B = [0, 261, 101, 2], [0, 261, 2]
PADDED = {"input_ids": [[0, 261, 101, 2], [0, 261, 2, 1]], "attention_mask": [[1, 1, 1, 1], [1, 1, 1, 0]]}


@BOTH
def test_pad_values_without_tolist(tok):
    out = tok.pad([{"input_ids": EagerLike(A)}, {"input_ids": EagerLike(B)}], return_tensors="np")
    assert isinstance(out["input_ids"], np.ndarray) and listed(out) == PADDED
    assert listed(tok.pad({"input_ids": [EagerLike(A), EagerLike(B)]}, return_tensors="np")) == PADDED
    out = tok.pad({"input_ids": EagerLike([A, A])}, return_tensors="np")
    assert listed(out) == {"input_ids": [A, A], "attention_mask": [[1] * 4] * 2}
    out = tok.pad({"input_ids": EagerLike(A)}, padding="max_length", max_length=6)
    assert listed(out) == {"input_ids": [0, 261, 101, 2, 1, 1], "attention_mask": [1, 1, 1, 1, 0, 0]}
    out = tok.pad([{"input_ids": EagerLike(A), "labels": EagerLike(1)}, {"input_ids": EagerLike(B), "labels": EagerLike(0)}],
                  return_tensors="np")
    assert list(out) == ["input_ids", "labels", "attention_mask"]
    assert listed(out) == {**PADDED, "labels": [1, 0]}


@BOTH
@pytest.mark.parametrize("return_tensors", [None, "np", "pt", "tf"])
def test_pad_tensorflow_tensors(tok, return_tensors):
    tf = pytest.importorskip("tensorflow")
    expected_type = {None: tf.Tensor, "np": np.ndarray, "tf": tf.Tensor}.get(return_tensors)
    if return_tensors == "pt":
        expected_type = pytest.importorskip("torch").Tensor
    for inputs in ([{"input_ids": tf.constant(A)}, {"input_ids": tf.constant(B)}],
                   {"input_ids": [tf.constant(A), tf.constant(B)]}):
        out = tok.pad(inputs, return_tensors=return_tensors)
        assert all(isinstance(v, expected_type) for v in out.values()), {k: type(v) for k, v in out.items()}
        assert listed(out) == PADDED
    out = tok.pad({"input_ids": tf.constant([A, A])}, return_tensors=return_tensors)
    assert listed(out) == {"input_ids": [A, A], "attention_mask": [[1] * 4] * 2}


@BOTH
def test_pad_of_a_dict_of_arrays_keeps_their_type(tok):
    # v4 infers the tensor type from the first row whatever the form (dict of lists, list of dicts).
    out = tok.pad({"input_ids": [np.array(A), np.array(B)]})
    assert isinstance(out["input_ids"], np.ndarray) and isinstance(out["attention_mask"], np.ndarray)
    assert listed(out) == PADDED
    torch = pytest.importorskip("torch")
    out = tok.pad({"input_ids": [torch.tensor(A), torch.tensor(B)]})
    assert isinstance(out["input_ids"], torch.Tensor) and listed(out) == PADDED


# ----------------------------------------------------------------------------- ids and tokens as text

Q = [261, 36, 101]  # 'hel a'
TOKENS = ["Ġw", "hel", "<mask>", "zzz"]  # 'zzz' is no token: the unk id


def test_slow_encode_takes_ids_and_token_strings(files):
    tok = RobertaTokenizer.from_pretrained(files)
    assert tok.encode(Q) == [0, 261, 36, 101, 2]
    assert tok.encode(Q, add_special_tokens=False) == Q
    assert tok.encode(Q, is_split_into_words=True) == [0, 261, 36, 101, 2]
    assert tok.encode(TOKENS) == [0, 262, 261, 263, 3, 2]
    assert tok.encode(Q, TOKENS) == [0, 261, 36, 101, 2, 2, 262, 261, 263, 3, 2]
    assert tok.encode("hel a", Q) == [0, 261, 36, 101, 2, 2, 261, 36, 101, 2]
    assert tok.encode(Q, "hel a") == [0, 261, 36, 101, 2, 2, 261, 36, 101, 2]
    assert tok.encode(["hel", "ab"]) == [0, 261, 3, 2]  # token strings, not texts
    assert tok.encode(["hel", "ab", "a"]) == [0, 261, 3, 101, 2]
    out = tok.encode_plus(["hel", "ab"], return_token_type_ids=True, return_special_tokens_mask=True)
    assert listed(out) == {"input_ids": [0, 261, 3, 2], "token_type_ids": [0] * 4, "special_tokens_mask": [1, 0, 0, 1],
                           "attention_mask": [1] * 4}
    assert list(out) == ["input_ids", "token_type_ids", "special_tokens_mask", "attention_mask"]


def test_slow_encode_plus_as_squad_preprocessing_calls_it(files):
    tok = RobertaTokenizer.from_pretrained(files)
    out = tok.encode_plus(Q, TOKENS, return_token_type_ids=True, return_special_tokens_mask=True, return_length=True)
    assert list(out) == ["input_ids", "token_type_ids", "special_tokens_mask", "attention_mask", "length"]
    assert dict(out) == {"input_ids": [0, 261, 36, 101, 2, 2, 262, 261, 263, 3, 2], "token_type_ids": [0] * 11,
                         "special_tokens_mask": [1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1], "attention_mask": [1] * 11,
                         "length": 11}
    # transformers/data/processors/squad.py: the question's ids, the context's tokens.
    out = tok.encode_plus(Q, TOKENS * 3, truncation="only_second", padding="max_length", max_length=14,
                          return_overflowing_tokens=True, stride=2, return_token_type_ids=True)
    assert list(out) == ["overflowing_tokens", "num_truncated_tokens", "input_ids", "token_type_ids", "attention_mask"]
    assert dict(out) == {"overflowing_tokens": [261, 263, 3, 262, 261, 263, 3], "num_truncated_tokens": 5,
                         "input_ids": [0, 261, 36, 101, 2, 2, 262, 261, 263, 3, 262, 261, 263, 2],
                         "token_type_ids": [0] * 14, "attention_mask": [1] * 14}
    out = tok.encode_plus(Q, padding="max_length", max_length=7, return_tensors="np")
    assert isinstance(out["input_ids"], np.ndarray)
    assert listed(out) == {"input_ids": [[0, 261, 36, 101, 2, 1, 1]], "attention_mask": [[1, 1, 1, 1, 1, 0, 0]]}


def test_fast_encode_reads_two_strings_as_a_pair_and_refuses_ids(files):
    tok = RobertaTokenizerFast.from_pretrained(files)
    # `tokenizers` reads a list of two strings as (text, pair), as v4's fast encode_plus passes it on.
    assert tok.encode(["hel", "ab"]) == [0, 261, 2, 2, 101, 102, 2]
    out = tok.encode_plus(["hel", "ab"], return_token_type_ids=True, return_special_tokens_mask=True)
    assert list(out) == ["input_ids", "token_type_ids", "attention_mask", "special_tokens_mask"]
    assert dict(out) == {"input_ids": [0, 261, 2, 2, 101, 102, 2], "token_type_ids": [0] * 7, "attention_mask": [1] * 7,
                         "special_tokens_mask": [1, 0, 1, 1, 0, 0, 1]}
    for args in ([Q], [TOKENS], [["hel", "ab", "a"]], [Q, TOKENS], ["hel a", Q], [Q, "hel a"]):
        with pytest.raises(TypeError):
            tok.encode(*args)
    with pytest.raises(TypeError):
        tok.encode_plus(Q, TOKENS * 3, truncation="only_second", max_length=14, return_overflowing_tokens=True)


@BOTH
def test_call_does_not_take_ids(tok):
    with pytest.raises((TypeError, ValueError)):  # v4: ValueError "text input must be of type `str` ..."
        tok(Q)
