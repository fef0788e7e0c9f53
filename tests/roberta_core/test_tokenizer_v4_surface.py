"""Small parts of v4's tokenizer surface: BatchEncoding.to / copy, ids given as NumPy or PyTorch
scalars, ids outside the vocabulary, the `*_token_id` setters, model_max_length=None,
model_input_names, prepare_for_model(prepend_batch_axis=True), decode's extra keywords and
add_tokens / add_special_tokens counts.

Every expected literal is what transformers 4.57.6 (RobertaTokenizer and RobertaTokenizerFast)
gave on the real roberta-base files (../shared/data/roberta-base-tokenizer; skipped when absent).
"""

import copy
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from roberta_core.batch_encoding import BatchEncoding
from roberta_core.tokenization import RobertaTokenizer
from roberta_core.tokenization_fast import RobertaTokenizerFast

DATA = Path(__file__).resolve().parents[2] / "../shared/data/roberta-base-tokenizer"
BOTH = pytest.mark.parametrize("cls", [RobertaTokenizer, RobertaTokenizerFast], ids=["slow", "fast"])
IDS = [0, 31414, 232, 2]  # "<s>Hello world</s>"


@pytest.fixture(scope="module")
def loaded():
    if not DATA.is_dir():
        pytest.skip(f"roberta-base tokenizer files absent ({DATA})")
    return {}


@pytest.fixture
def tok(loaded, cls):
    """The tokenizer of `cls`, read once and shared: for tests that do not change it."""
    if cls not in loaded:
        loaded[cls] = make(cls)
    return loaded[cls]


@pytest.fixture
def fresh(tok, cls):
    """A new tokenizer of `cls`, for a test that changes it (the shared one's vocabulary, not read again)."""
    return cls(vocab=tok._encoder, merges=tok._merges)


def make(cls, **kwargs):
    return cls(vocab_file=DATA / "vocab.json", merges_file=DATA / "merges.txt", **kwargs)


# ----------------------------------------------------------------------------- 1. BatchEncoding.to


@BOTH
def test_to_moves_tensors_but_refuses_a_dtype(tok, caplog):
    torch = pytest.importorskip("torch")
    enc = tok(["Hello world"], return_tensors="pt")
    # transformers 4.57.6: a dtype is refused with this warning and nothing changes (the ids stay int64)
    with caplog.at_level(logging.WARNING):
        assert enc.to(torch.float16) is enc
    assert enc["input_ids"].dtype == torch.int64 and enc["input_ids"].tolist() == [IDS]
    assert "Attempting to cast a BatchEncoding to type torch.float16. This is not supported." in caplog.messages
    assert enc.to(torch.bfloat16)["input_ids"].tolist() == [[0, 31414, 232, 2]]  # v4: not [0., 31360., ...]
    # a device (str, torch.device), with non_blocking as v4 takes it
    assert enc.to("cpu")["input_ids"].dtype == torch.int64
    assert enc.to(torch.device("cpu"), non_blocking=True)["input_ids"].device.type == "cpu"
    assert tok(["Hello world"]).to(torch.float16)["input_ids"] == [IDS]  # lists are left alone too


# ----------------------------------------------------------------------------- 2. NumPy / torch scalar ids


@BOTH
def test_ids_given_as_numpy_or_torch_scalars_inside_lists(tok):
    as_numpy = list(np.array(IDS))  # np.int64 items
    assert tok.decode(as_numpy) == "<s>Hello world</s>"  # transformers 4.57.6
    assert tok.decode([np.int32(31414)]) == "Hello"
    assert tok.decode([np.array(i) for i in IDS]) == "<s>Hello world</s>"  # 0-d arrays
    assert tok.convert_ids_to_tokens(as_numpy) == ["<s>", "Hello", "Ġworld", "</s>"]
    assert tok.convert_ids_to_tokens([np.array(5), np.array(6)]) == ["Ġthe", ","]
    assert tok.batch_decode([[np.int64(0), np.int64(31414), np.int64(2)]], skip_special_tokens=True) == ["Hello"]
    torch = pytest.importorskip("torch")
    assert tok.decode([torch.tensor(i) for i in IDS]) == "<s>Hello world</s>"
    assert tok.batch_decode([[torch.tensor(31414), torch.tensor(232)]]) == ["Hello world"]
    with pytest.raises(TypeError, match="must be ints"):
        tok.decode([np.float64(31414.0)])  # still not a float


# ----------------------------------------------------------------------------- 3. *_token_id setters


@BOTH
@pytest.mark.parametrize("role", ["bos", "eos", "unk", "sep", "pad", "cls", "mask"])
def test_token_id_setters(fresh, role):
    setattr(fresh, f"{role}_token_id", 50264)
    # transformers 4.57.6: ('<mask>', 50264, '<mask>') for every role
    assert (getattr(fresh, f"{role}_token"), getattr(fresh, f"{role}_token_id"),
            fresh.special_tokens_map[f"{role}_token"]) == ("<mask>", 50264, "<mask>")


@BOTH
def test_pad_token_id_setter(fresh):
    fresh.pad_token_id = 2
    assert (fresh.pad_token, fresh.pad_token_id) == ("</s>", 2)  # transformers 4.57.6
    assert fresh(["a b", "c"], padding=True)["input_ids"] == [[0, 102, 741, 2], [0, 438, 2, 2]]
    fresh.pad_token_id = None
    assert (fresh.pad_token, fresh.pad_token_id) == (None, None)
    fresh.pad_token_id = 50265  # past the vocabulary: the token of that id is None
    assert (fresh.pad_token, fresh.pad_token_id) == (None, None)


# ----------------------------------------------------------------------------- 4. BatchEncoding.copy


@BOTH
def test_copy_is_a_batch_encoding(tok):
    enc = tok(["a b", "c"], padding=True)
    copied = enc.copy()
    # transformers 4.57.6: type(enc.copy()).__name__ == 'BatchEncoding', a shallow copy
    assert type(copied) is BatchEncoding and copied is not enc and copied["input_ids"] is enc["input_ids"]
    assert dict(copied) == {"input_ids": [[0, 102, 741, 2], [0, 438, 2, 1]], "attention_mask": [[1, 1, 1, 1], [1, 1, 1, 0]]}
    copied["x"] = 1
    assert list(enc) == ["input_ids", "attention_mask"]
    assert copied.is_fast == tok.is_fast and type(copy.copy(enc)) is BatchEncoding
    # ours stays a dict (v4's is a UserDict): pad() and callers test isinstance(x, dict)
    assert isinstance(copied, dict)
    hello = tok(["Hello world", "c"]).copy()
    assert hello.tokens(0) == ["<s>", "Hello", "Ġworld", "</s>"] and hello.word_ids(0) == [None, 0, 1, None]
    pytest.importorskip("torch")
    assert type(tok("hi", return_tensors="pt").copy().to("cpu")) is BatchEncoding


# ----------------------------------------------------------------------------- 5. ids outside the vocabulary


@BOTH
def test_ids_outside_the_vocabulary(fresh):
    # transformers 4.57.6, both: None past the vocabulary
    assert fresh.convert_ids_to_tokens([31414, 50265]) == ["Hello", None]
    assert fresh.convert_ids_to_tokens(50265) is None
    fresh.add_tokens(["newtok"])
    assert fresh.convert_ids_to_tokens([31414, 50265, 50266]) == ["Hello", "newtok", None]
    if fresh.is_fast:
        # transformers 4.57.6 fast: decode skips unknown ids silently; a negative id is an OverflowError
        assert fresh.decode([31414, 50266, 232]) == "Hello world"
        assert fresh.decode([31414, 50265, 50266, 232]) == "Hellonewtok world"
        assert fresh.decode([0, 31414, 50300, 2], skip_special_tokens=True) == "Hello"
        for call in (fresh.decode, fresh.convert_ids_to_tokens):
            with pytest.raises(OverflowError, match="token id -1 at position 1"):
                call([31414, -1])
    else:
        # transformers 4.57.6 slow: convert_ids_to_tokens gives None for a negative id too; its decode
        # fails with a TypeError ("expected str instance, NoneType found"): ours names the id
        assert fresh.convert_ids_to_tokens([31414, -1]) == ["Hello", None]
        with pytest.raises(ValueError, match=r"token id 50266 at position 1 is outside the vocabulary \[0, 50266\)"):
            fresh.decode([31414, 50266, 232])


# ----------------------------------------------------------------------------- 6. one id with skip_special_tokens


@BOTH
def test_one_special_id_with_skip_special_tokens(tok):
    # transformers 4.57.6: skip_special_tokens is ignored for a single int
    assert tok.convert_ids_to_tokens(0, skip_special_tokens=True) == "<s>"
    assert tok.convert_ids_to_tokens(50264, skip_special_tokens=True) == "<mask>"
    assert tok.convert_ids_to_tokens([0, 50264, 5], skip_special_tokens=True) == ["Ġthe"]


# ----------------------------------------------------------------------------- 7. model_max_length


@BOTH
def test_model_max_length_none_and_float(loaded, cls, tmp_path):
    # transformers 4.57.6: None is its "very large" default, int(1e30)
    assert make(cls, model_max_length=None).model_max_length == 1000000000000000019884624838656
    assert make(cls, model_max_length=None)("a " * 5, truncation=True)["input_ids"][:3] == [0, 102, 10]
    assert cls.from_pretrained(DATA, model_max_length=None).model_max_length == 1000000000000000019884624838656
    folder = tmp_path / "null"
    folder.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (folder / name).write_bytes((DATA / name).read_bytes())
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": None}))
    assert cls.from_pretrained(folder).model_max_length == 1000000000000000019884624838656
    make(cls, model_max_length=None).save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())["model_max_length"] == int(1e30)
    # transformers 4.57.6 keeps a float as given (512.0)
    floated = make(cls, model_max_length=512.0)
    assert floated.model_max_length == 512.0 and isinstance(floated.model_max_length, float)
    assert floated("a b", truncation=True)["input_ids"] == [0, 102, 741, 2]
    with pytest.raises(ValueError, match="model_max_length"):
        make(cls, model_max_length="512")


# ----------------------------------------------------------------------------- 8. model_input_names


@BOTH
def test_model_input_names(loaded, cls, tmp_path):
    only_ids = make(cls, model_input_names=["input_ids"])
    # transformers 4.57.6: only the inputs named, unless a call asks for more
    assert only_ids.model_input_names == ["input_ids"]
    assert list(only_ids(["a", "b c"], padding=True)) == ["input_ids"]
    assert list(only_ids.encode_plus("a")) == ["input_ids"]
    assert list(only_ids.prepare_for_model([5, 6])) == ["input_ids"]
    assert list(only_ids("a", return_attention_mask=True)) == ["input_ids", "attention_mask"]
    features = [{"input_ids": [0, 5, 2]}, {"input_ids": [0, 5, 6, 2]}]
    assert dict(only_ids.pad(features)) == {"input_ids": [[0, 5, 2, 1], [0, 5, 6, 2]]}
    assert dict(only_ids.pad(features, True, None, None, None, None)) == {"input_ids": [[0, 5, 2, 1], [0, 5, 6, 2]]}
    assert dict(only_ids.pad(features, return_attention_mask=True)) == {
        "input_ids": [[0, 5, 2, 1], [0, 5, 6, 2]], "attention_mask": [[1, 1, 1, 0], [1, 1, 1, 1]]}
    assert make(cls, model_input_names=("input_ids",)).model_input_names == ("input_ids",)  # kept as given
    with_types = make(cls, model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    assert dict(with_types("a", "b")) == {"input_ids": [0, 102, 2, 2, 428, 2], "token_type_ids": [0] * 6,
                                          "attention_mask": [1] * 6}
    assert list(cls.from_pretrained(DATA, model_input_names=["input_ids"])("hi")) == ["input_ids"]
    # tokenizer_config.json: read, and written back by save_pretrained (not written when not given)
    only_ids.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())["model_input_names"] == ["input_ids"]
    loaded_again = cls.from_pretrained(tmp_path / "saved")
    assert loaded_again.model_input_names == ["input_ids"] and list(loaded_again("x")) == ["input_ids"]
    make(cls).save_pretrained(tmp_path / "default")
    assert "model_input_names" not in json.loads((tmp_path / "default" / "tokenizer_config.json").read_text())
    assert list(make(cls)("x")) == ["input_ids", "attention_mask"]
    with pytest.raises(TypeError, match="model_input_names"):
        make(cls, model_input_names="input_ids")


# ----------------------------------------------------------------------------- 9. prepare_for_model


@BOTH
def test_prepare_for_model_prepend_batch_axis(tok):
    # transformers 4.57.6: a batch axis of one with tensors, nothing changes without them
    out = tok.prepare_for_model([5, 6], [7], return_tensors="np", prepend_batch_axis=True)
    assert out["input_ids"].tolist() == [[0, 5, 6, 2, 2, 7, 2]] and out["attention_mask"].shape == (1, 7)
    assert dict(tok.prepare_for_model([5, 6], prepend_batch_axis=True)) == {
        "input_ids": [0, 5, 6, 2], "attention_mask": [1, 1, 1, 1]}
    assert tok.prepare_for_model([5, 6], return_tensors="np")["input_ids"].shape == (4,)
    pytest.importorskip("torch")
    assert tuple(tok.prepare_for_model([5, 6], return_tensors="pt", prepend_batch_axis=True)["input_ids"].shape) == (1, 4)


# ----------------------------------------------------------------------------- 10. decode's keywords


@BOTH
def test_decode_ignores_unknown_keywords(tok):
    # transformers 4.57.6 ignores them
    assert tok.decode(IDS, foo=1) == "<s>Hello world</s>"
    assert tok.batch_decode([[31414]], foo=1) == ["Hello"]
    assert tok.decode(IDS, skip_special_token=True) == "<s>Hello world</s>"  # a misspelling too, as v4


# ----------------------------------------------------------------------------- 11. add_tokens counts


@BOTH
def test_add_tokens_counts(fresh):
    # transformers 4.57.6 (both): an empty token is skipped
    assert fresh.add_tokens([""]) == 0 and fresh.add_tokens("") == 0 and fresh.add_tokens([""], special_tokens=True) == 0
    assert fresh.add_tokens(["", "newtok"]) == 1 and len(fresh) == 50266


@BOTH
@pytest.mark.parametrize("tokens, slow, fast", [
    # transformers 4.57.6's return values: slow counts new ids, fast the tokens added or changed
    ({"additional_special_tokens": ["<mask>"]}, 0, 1),  # <mask> without its lstrip
    ({"pad_token": "<pad>"}, 0, 1),  # normalized=False now
    ({"mask_token": "<mask>"}, 0, 1),
    ({"cls_token": "<s>", "bos_token": "<s>"}, 0, 1),
    ({"additional_special_tokens": ["[X]", "[Y]"]}, 2, 2),
    ({"additional_special_tokens": ["hello"]}, 0, 1),  # a word of the vocabulary
])
def test_add_special_tokens_counts(fresh, tokens, slow, fast):
    assert fresh.add_special_tokens(tokens) == (fast if fresh.is_fast else slow)


@BOTH
def test_add_special_tokens_twice_counts_once(fresh):
    # transformers 4.57.6 (both): (1, 0)
    assert fresh.add_special_tokens({"additional_special_tokens": ["[X]"]}) == 1
    assert fresh.add_special_tokens({"additional_special_tokens": ["[X]"]}) == 0
