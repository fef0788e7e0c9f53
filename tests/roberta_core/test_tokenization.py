"""RobertaTokenizer / RobertaTokenizerFast: published ids, the v4 API, files, training and bad input.

Expected values come from public sources (the ids in the issue, llama.cpp's RoBERTa cases, the
roberta-base vocab.json itself) or are worked out by hand from the rules stated in each test.
Slow/fast agreement on arbitrary input is in test_tokenization_agreement.py.
"""

import logging
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roberta_core.pretokenization import chunk_spans
from roberta_core.tokenization import RobertaTokenizer
from roberta_core.tokenization_base import AddedToken, BatchEncoding
from roberta_core.tokenization_fast import RobertaTokenizerFast

SHARED = Path(__file__).resolve().parents[2] / "../shared/data"
DATA = SHARED / "roberta-base-tokenizer"
CASES = SHARED / "tokenizer-cases"
needs_vocab = pytest.mark.skipif(not DATA.is_dir(), reason=f"roberta-base tokenizer files absent ({DATA})")
BOTH = pytest.mark.parametrize("cls", [RobertaTokenizer, RobertaTokenizerFast], ids=["slow", "fast"])


@pytest.fixture(scope="module")
def loaded():
    if not DATA.is_dir():
        pytest.skip(f"roberta-base tokenizer files absent ({DATA})")
    return {RobertaTokenizer: RobertaTokenizer.from_pretrained(DATA),
            RobertaTokenizerFast: RobertaTokenizerFast.from_pretrained(DATA)}


@pytest.fixture
def tok(loaded, cls):
    return loaded[cls]


@pytest.fixture(scope="module")
def vocab():
    """roberta-base's vocab.json read with json alone: the source of expected ids."""
    if not DATA.is_dir():
        pytest.skip(f"roberta-base tokenizer files absent ({DATA})")
    return json.loads((DATA / "vocab.json").read_text(encoding="utf-8"))


def gpt2_symbols() -> list[str]:
    """GPT-2's 256 byte symbols (encoder.py in openai/gpt-2), written out for tiny test vocabularies."""
    kept = [*range(33, 127), *range(161, 173), *range(174, 256)]
    moved = [b for b in range(256) if b not in kept]
    table = {**{b: chr(b) for b in kept}, **{b: chr(256 + n) for n, b in enumerate(moved)}}
    return [table[b] for b in range(256)]


def tiny_files(directory: Path, merges=(("h", "e"), ("he", "l"), ("Ġ", "w")), vocab_edit=None):
    """A byte-level vocab: 4 specials, 256 byte symbols, one token per merge, then <mask>."""
    tokens = ["<s>", "<pad>", "</s>", "<unk>", *gpt2_symbols(), *("".join(m) for m in merges), "<mask>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    if vocab_edit:
        vocab_edit(vocab)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return directory


# ----------------------------------------------------------------------------- published ids


@needs_vocab
@BOTH
@pytest.mark.parametrize("text, pair, add_special, expected", [
    ("Hello world!", None, True, [0, 31414, 232, 328, 2]),
    ("Hello world! cécé herlolip", None, True, [0, 31414, 232, 328, 740, 1140, 12695, 69, 46078, 1588, 2]),
    ("The goal of life is <mask>.", None, True, [0, 133, 724, 9, 301, 16, 50264, 4, 2]),
    ("Question?", "Answer", True, [0, 45641, 116, 2, 2, 33683, 2]),
    ("The quick brown fox jumps over the lazy dog", None, False, [133, 2119, 6219, 23602, 13855, 81, 5, 22414, 2335]),
    ("A, <mask> AllenNLP sentence.", None, True, [0, 250, 6, 50264, 3823, 487, 21992, 3645, 4, 2]),
])
def test_published_ids(tok, text, pair, add_special, expected):
    assert tok.encode(text, pair, add_special_tokens=add_special) == expected
    assert tok(text, pair, add_special_tokens=add_special)["input_ids"] == expected


@needs_vocab
@BOTH
def test_add_prefix_space_makes_the_first_word_a_word(cls, vocab):
    tok = cls.from_pretrained(DATA, add_prefix_space=True)
    ids = tok.encode("The quick brown fox jumps over the lazy dog", add_special_tokens=False)
    assert ids[0] == 20 == vocab["ĠThe"]
    assert ids[1:] == [2119, 6219, 23602, 13855, 81, 5, 22414, 2335]


def _llama_cpp_cases():
    if not CASES.is_dir():
        return []
    texts = (CASES / "ggml-vocab-roberta-bpe.gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    ids = (CASES / "ggml-vocab-roberta-bpe.gguf.out").read_text(encoding="utf-8").split("\n")
    return [(t, [int(i) for i in line.split()]) for t, line in zip(texts[:-1], ids)]


@pytest.mark.skipif(not CASES.is_dir(), reason=f"tokenizer cases absent ({CASES})")
@needs_vocab
@BOTH
def test_llama_cpp_roberta_cases(tok):
    cases = _llama_cpp_cases()
    assert len(cases) == 46
    for text, expected in cases:
        assert tok.encode(text, add_special_tokens=False) == expected, repr(text)
    texts = [t for t, _ in cases]
    assert tok(texts, add_special_tokens=False)["input_ids"] == [e for _, e in cases]


# ----------------------------------------------------------------------------- the v4 API


@needs_vocab
@BOTH
def test_sizes_and_special_tokens(tok):
    assert tok.vocab_size == len(tok) == len(tok.get_vocab()) == 50265
    assert tok.model_max_length == int(1e30)  # v4's VERY_LARGE_INTEGER: these files set none (4.57.6)
    assert (tok.bos_token, tok.eos_token, tok.sep_token, tok.cls_token) == ("<s>", "</s>", "</s>", "<s>")
    assert (tok.pad_token_id, tok.unk_token_id, tok.mask_token_id) == (1, 3, 50264)
    assert sorted(tok.all_special_ids) == [0, 1, 2, 3, 50264]
    assert tok.added_tokens_decoder[50264] == AddedToken("<mask>", lstrip=True, normalized=False, special=True)
    assert tok.is_fast == (type(tok) is RobertaTokenizerFast)


@needs_vocab
@BOTH
def test_tokenize_and_conversions(tok, vocab):
    assert tok.tokenize("Hello world!") == ["Hello", "Ġworld", "!"]
    assert tok.convert_tokens_to_ids(["Hello", "Ġworld", "!"]) == [vocab["Hello"], vocab["Ġworld"], vocab["!"]]
    assert tok.convert_tokens_to_ids("no-such-token") == 3  # unknown -> <unk>, as in v4
    assert tok.convert_ids_to_tokens(232) == "Ġworld"
    assert tok.convert_ids_to_tokens([0, 232, 2], skip_special_tokens=True) == ["Ġworld"]
    assert tok.convert_tokens_to_string(["Hello", "Ġworld", "<mask>"]) == "Hello world<mask>"


@needs_vocab
@BOTH
def test_special_token_layout(tok):
    assert tok.build_inputs_with_special_tokens([7, 8]) == [0, 7, 8, 2]
    assert tok.build_inputs_with_special_tokens([7], [9]) == [0, 7, 2, 2, 9, 2]
    assert tok.get_special_tokens_mask([7, 8]) == [1, 0, 0, 1]
    assert tok.get_special_tokens_mask([7], [9]) == [1, 0, 1, 1, 0, 1]
    assert tok.get_special_tokens_mask([0, 7, 2, 50264], already_has_special_tokens=True) == [1, 0, 1, 1]
    assert tok.create_token_type_ids_from_sequences([7], [9]) == [0] * 6
    assert (tok.num_special_tokens_to_add(), tok.num_special_tokens_to_add(pair=True)) == (2, 4)
    out = tok("Question?", "Answer", return_token_type_ids=True, return_special_tokens_mask=True)
    assert out["token_type_ids"] == [0] * 7
    assert out["special_tokens_mask"] == [1, 0, 0, 1, 1, 0, 1]
    assert out.sequence_ids() == [None, 0, 0, None, None, 1, None]


@needs_vocab
@BOTH
def test_decode(tok):
    ids = [0, 31414, 232, 328, 2]
    assert tok.decode(ids) == "<s>Hello world!</s>"
    assert tok.decode(ids, skip_special_tokens=True) == "Hello world!"
    assert tok.decode(np.array(ids)) == tok.decode(ids)
    assert tok.batch_decode(np.array([ids, ids]), skip_special_tokens=True) == ["Hello world!"] * 2
    spaced = tok.encode("Hello , world ! it 's", add_special_tokens=False)
    assert tok.decode(spaced) == "Hello , world ! it 's"
    assert tok.decode(spaced, clean_up_tokenization_spaces=True) == "Hello, world! it's"
    assert tok.decode(tok.encode("😀")[1:2]) == "\ufffd"  # a lone part of a 4-byte character (errors='replace')


@needs_vocab
@BOTH
def test_offsets(tok, cls):
    out = tok("Hello world!", return_offsets_mapping=True)
    assert out["offset_mapping"] == [(0, 0), (0, 5), (6, 11), (11, 12), (0, 0)]
    masked = tok("A, <mask> AllenNLP sentence.", return_offsets_mapping=True)["offset_mapping"]
    assert masked[3] == (3, 9)  # <mask> without the space it absorbed
    untrimmed = cls.from_pretrained(DATA, trim_offsets=False)
    assert untrimmed("Hello world!", return_offsets_mapping=True)["offset_mapping"][2] == (5, 11)
    assert untrimmed("A, <mask> AllenNLP", return_offsets_mapping=True)["offset_mapping"][3] == (2, 9)
    prefixed = cls.from_pretrained(DATA, add_prefix_space=True)
    assert prefixed("Hello", return_offsets_mapping=True)["offset_mapping"] == [(0, 0), (0, 5), (0, 0)]
    emoji = tok(" 😀x", add_special_tokens=False, return_offsets_mapping=True)  # 'ĠðŁĺ', 'Ģ', 'x'
    assert emoji["offset_mapping"] == [(1, 2), (1, 2), (2, 3)]


@needs_vocab
@BOTH
def test_pre_split_words(tok, vocab):
    out = tok(["Hello", "world"], is_split_into_words=True, return_offsets_mapping=True)
    assert out["input_ids"] == [0, vocab["ĠHello"], vocab["Ġworld"], 2]  # every word gets its space, as in v4
    assert out.word_ids() == [None, 0, 1, None]
    assert out["offset_mapping"] == [(0, 0), (0, 5), (0, 5), (0, 0)]  # within each word
    batch = tok([["Hello"], ["a", "b"]], [["world"], ["c"]], is_split_into_words=True, padding=True)
    assert batch.word_ids(1) == [None, 0, 1, None, None, 0, None]
    assert batch.word_ids(0) == [None, 0, None, None, 0, None, None]


@needs_vocab
@BOTH
def test_batches_padding_and_lengths(tok, vocab):
    a, sa = vocab["a"], vocab["Ġa"]
    out = tok(["a", "a a a"], padding=True, return_length=True, return_special_tokens_mask=True)
    assert out["input_ids"] == [[0, a, 2, 1, 1], [0, a, sa, sa, 2]]
    assert out["attention_mask"] == [[1, 1, 1, 0, 0], [1] * 5]
    assert out["special_tokens_mask"] == [[1, 0, 1, 1, 1], [1, 0, 0, 0, 1]]
    # v4 (4.57.6): the fast tokenizer counts the padding, the slow one in a batch does not
    assert out["length"] == ([5, 5] if tok.is_fast else [3, 5])
    left = tok(["a", "a a a"], padding=True, padding_side="left")
    assert left["input_ids"][0] == [1, 1, 0, a, 2] and left["attention_mask"][0] == [0, 0, 1, 1, 1]
    assert left.sequence_ids(0) == [None, None, None, 0, None]
    assert [len(r) for r in tok(["a", "a a a"], padding=True, pad_to_multiple_of=8)["input_ids"]] == [8, 8]
    assert [len(r) for r in tok(["a", "a a a"], padding="max_length", max_length=7)["input_ids"]] == [7, 7]
    single = tok("a a a")
    assert isinstance(single, BatchEncoding) and single.input_ids == [0, a, sa, sa, 2]
    arrays = tok(["a", "a a a"], padding=True, return_tensors="np")
    assert arrays["input_ids"].shape == (2, 5) and arrays["input_ids"].dtype == np.int64
    assert tok("a", return_tensors="np")["input_ids"].shape == (1, 3)
    assert tok([("a", "a a")])["input_ids"] == [[0, a, 2, 2, a, sa, 2]]  # a batch of one (text, pair)
    assert tok([], padding=True)["input_ids"] == []


@needs_vocab
@BOTH
def test_truncation_and_overflow_windows(tok, cls, vocab):
    a, sa, b, sb = vocab["a"], vocab["Ġa"], vocab["b"], vocab["Ġb"]
    ten_a = [a] + [sa] * 9  # "a a a a a a a a a a"
    text_a, text_b = " ".join("a" * 10), " ".join("b" * 10)
    # One text, max_length 6: 4 tokens per window, windows advance by 4 - stride.
    out = tok(text_a, truncation=True, max_length=6, stride=1, return_overflowing_tokens=True)
    left = cls.from_pretrained(DATA, truncation_side="left")
    out_left = left(text_a, truncation=True, max_length=6, stride=1, return_overflowing_tokens=True)
    assert tok(text_a, max_length=6)["input_ids"] == [0, *ten_a[:4], 2]  # max_length alone truncates, as in v4
    if cls is RobertaTokenizer:  # v4's slow layout: the cut ids with `stride` before them, flat
        assert out == {"overflowing_tokens": ten_a[3:], "num_truncated_tokens": 6, "input_ids": [0, *ten_a[:4], 2],
                       "attention_mask": [1] * 6}
        assert out_left["overflowing_tokens"] == ten_a[:7] and out_left["input_ids"] == [0, *ten_a[6:], 2]
        return
    windows = [ten_a[0:4], ten_a[3:7], ten_a[6:10]]
    assert out["input_ids"] == [[0, *w, 2] for w in windows]
    assert out["overflow_to_sample_mapping"] == [0, 0, 0]
    assert out_left["input_ids"] == [[0, *ten_a[i:j], 2] for i, j in [(6, 10), (3, 7), (0, 4)]]
    # A pair, 'longest_first': the longer text is cut first, the rest split evenly (second gets the odd one).
    ten_b = [b] + [sb] * 9
    out = tok(text_a, text_b, truncation=True, max_length=19)  # 15 tokens of text
    assert out["input_ids"] == [0, *ten_a[:7], 2, 2, *ten_b[:8], 2]
    out = tok("a a a", text_b, truncation=True, max_length=14)  # 10 tokens: 3 + 7
    assert out["input_ids"] == [0, a, sa, sa, 2, 2, *ten_b[:7], 2]
    # 'only_second' with windows: the first text repeats in every row.
    out = tok(["a a", "a"], [text_b, "b"], truncation="only_second", max_length=10, stride=2,
              return_overflowing_tokens=True)
    assert out["input_ids"][:4] == [[0, a, sa, 2, 2, *ten_b[i:i + 4], 2] for i in (0, 2, 4, 6)]
    assert out["input_ids"][4] == [0, a, 2, 2, b, 2]
    assert out["overflow_to_sample_mapping"] == [0, 0, 0, 0, 1]
    out = tok(text_a, "b", truncation="only_first", max_length=8, return_overflowing_tokens=True)
    assert out["input_ids"] == [[0, *ten_a[0:3], 2, 2, b, 2], [0, *ten_a[3:6], 2, 2, b, 2],
                                [0, *ten_a[6:9], 2, 2, b, 2], [0, ten_a[9], 2, 2, b, 2]]


@needs_vocab
@BOTH
def test_added_tokens(cls):
    tok = cls.from_pretrained(DATA)
    assert tok.add_tokens(["new_word", AddedToken("<sep2>", special=True)]) == 2
    assert tok.add_tokens(["new_word"]) == 0
    assert tok.convert_tokens_to_ids(["new_word", "<sep2>"]) == [50265, 50266]
    assert len(tok) == 50267 and tok.vocab_size == 50265
    assert tok.encode("a new_word<sep2>", add_special_tokens=False)[-2:] == [50265, 50266]
    assert tok.add_special_tokens({"additional_special_tokens": ["<x>"]}) == 1
    assert tok.additional_special_tokens == ["<x>"] and 50267 in tok.all_special_ids
    # recorded from transformers 4.57.6: the slow tokenizer puts spaces around added tokens that are not special
    ids = tok.encode("a <x> new_word")
    assert tok.decode(ids, skip_special_tokens=True) == ("a  new_word" if tok.is_fast else "a   new_word")
    assert tok.decode(ids) == ("<s>a <x> new_word</s>" if tok.is_fast else "<s>a  <x>   new_word </s>")
    tok.pad_token = "<sep2>"
    assert tok.pad_token_id == 50266 and tok(["a", "a a"], padding=True)["input_ids"][0][-1] == 50266


@needs_vocab
@BOTH
def test_split_special_tokens_and_pickling(tok):
    assert tok.encode("<s><mask>", add_special_tokens=False) == [0, 50264]
    as_text = tok.encode("<s><mask>", add_special_tokens=False, split_special_tokens=True)
    assert not set(as_text) & set(tok.all_special_ids) and tok.decode(as_text) == "<s><mask>"
    clone = pickle.loads(pickle.dumps(tok))
    text = "Hello <mask>, wörld!"
    assert clone(text, return_offsets_mapping=True) == tok(text, return_offsets_mapping=True)
    out = tok([["a", "b"]], is_split_into_words=True)
    assert pickle.loads(pickle.dumps(out)).word_ids(0) == out.word_ids(0) == [None, 0, 1, None]


@needs_vocab
@BOTH
def test_pad_and_prepare_for_model(tok, vocab):
    a = vocab["a"]
    features = [{"input_ids": [0, a, 2]}, {"input_ids": [0, a, a, a, 2]}]
    padded = tok.pad(features, return_tensors="np")
    assert padded["input_ids"].tolist() == [[0, a, 2, 1, 1], [0, a, a, a, 2]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1] * 5]
    assert tok.pad({"input_ids": [0, a, 2]}, padding="max_length", max_length=4)["input_ids"] == [0, a, 2, 1]
    assert tok.prepare_for_model([a, a, a], [a], truncation=True, max_length=6)["input_ids"] == [0, a, 2, 2, a, 2]


@needs_vocab
@pytest.mark.parametrize("kind, module", [("np", None), ("pt", "torch"), ("tf", "tensorflow"), ("jax", "jax")])
def test_return_tensors(loaded, kind, module):
    if module:
        pytest.importorskip(module)
    for tok in loaded.values():
        out = tok(["Hello world!", "Hi"], padding=True, return_tensors=kind, return_offsets_mapping=True)
        assert tuple(out["input_ids"].shape) == (2, 5) and tuple(out["offset_mapping"].shape) == (2, 5, 2)
        assert np.asarray(out["input_ids"]).tolist()[0] == [0, 31414, 232, 328, 2]
        assert tok.decode(out["input_ids"][0]) == "<s>Hello world!</s>"


def test_frameworks_are_imported_only_when_asked():
    code = ("import sys; from roberta_core.tokenization_fast import RobertaTokenizerFast; "
            "from roberta_core.tokenization import RobertaTokenizer; "
            "assert not {'torch', 'tensorflow', 'jax', 'keras', 'flax'} & set(sys.modules), sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-2000:]


# ----------------------------------------------------------------------------- files


@needs_vocab
@BOTH
def test_save_and_load_round_trip(cls, tmp_path, vocab):
    tok = cls.from_pretrained(DATA, add_prefix_space=True)
    tok.add_tokens([AddedToken("<new>", rstrip=True)])
    written = tok.save_pretrained(tmp_path / "saved")
    names = sorted(Path(p).name for p in written)
    # v4's files: tokenizer.json only from the fast tokenizer (test_tokenizer_save_v4 checks the rest)
    assert names == ["added_tokens.json", "merges.txt", "special_tokens_map.json",
                     *(["tokenizer.json"] if tok.is_fast else []), "tokenizer_config.json", "vocab.json"]
    texts = ["Hello <new>  world", "The <mask> sat.", ""]
    expected = tok(texts, return_offsets_mapping=True)
    for other in (RobertaTokenizer, RobertaTokenizerFast):
        back = other.from_pretrained(tmp_path / "saved")
        if other.is_fast == tok.is_fast:
            assert back(texts, return_offsets_mapping=True) == expected
        else:  # as v4's: after '<new>' took the spaces, only the fast one puts a prefix space before 'world'
            assert back(texts[1:], return_offsets_mapping=True) == tok(texts[1:], return_offsets_mapping=True)
            world = 232 if back.is_fast else 8331  # ' world' / 'world': v4 4.57.6's two tokenizers
            assert back(texts[0])["input_ids"] == [0, 20920, 1437, 50265, world, 2]
        assert back.added_tokens_decoder == tok.added_tokens_decoder and back.add_prefix_space
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert config["added_tokens_decoder"]["50264"]["lstrip"] is True and config["model_max_length"] == int(1e30)
    # tokenizer.json is transformers' pipeline: `tokenizers` alone reads and runs it.
    from tokenizers import Tokenizer

    fast_folder = tmp_path / "saved"
    if not tok.is_fast:  # as v4's, the slow tokenizer writes no tokenizer.json
        fast_folder = tmp_path / "fast"
        RobertaTokenizerFast.from_pretrained(DATA, add_prefix_space=True).save_pretrained(fast_folder)
    backend = Tokenizer.from_file(str(fast_folder / "tokenizer.json"))
    assert backend.encode("Hello world!").ids == [0, 20920, 232, 328, 2]
    assert backend.encode("Question?", "Answer").ids == [0, vocab["ĠQuestion"], 116, 2, 2, vocab["ĠAnswer"], 2]
    # vocab.json / merges.txt only (v4's slow layout) give the same tokenizer.
    (tmp_path / "saved" / "tokenizer.json").unlink(missing_ok=True)
    assert cls.from_pretrained(tmp_path / "saved")(texts, return_offsets_mapping=True) == expected


@needs_vocab
def test_slow_and_fast_save_the_same_files(loaded, tmp_path):
    for cls, tok in loaded.items():
        tok.save_pretrained(tmp_path / cls.__name__)
    for name in ("merges.txt", "special_tokens_map.json"):  # (tokenizer_config.json: fast adds trim_offsets)
        assert (tmp_path / "RobertaTokenizer" / name).read_bytes() == (tmp_path / "RobertaTokenizerFast" / name).read_bytes()
    # the same vocabulary, laid out as v4's slow (indented, by token) and fast (compact, by id) ones write it
    assert json.loads((tmp_path / "RobertaTokenizer" / "vocab.json").read_text()) == \
        json.loads((tmp_path / "RobertaTokenizerFast" / "vocab.json").read_text())
    assert (tmp_path / "RobertaTokenizer" / "merges.txt").read_text() == (DATA / "merges.txt").read_text()
    assert json.loads((tmp_path / "RobertaTokenizer" / "vocab.json").read_text()) == json.loads((DATA / "vocab.json").read_text())


@BOTH
def test_save_vocabulary_with_prefix(cls, tmp_path):
    tok = cls(tiny_files(tmp_path / "src") / "vocab.json", tmp_path / "src" / "merges.txt")
    (tmp_path / "out").mkdir()
    paths = tok.save_vocabulary(tmp_path / "out", "my")
    assert [Path(p).name for p in paths] == ["my-vocab.json", "my-merges.txt"]
    assert Path(paths[1]).read_text() == (tmp_path / "src" / "merges.txt").read_text()
    with pytest.raises(ValueError, match="not a directory"):
        tok.save_vocabulary(tmp_path / "missing")


@BOTH
def test_a_failed_save_leaves_nothing_behind(cls, tmp_path, monkeypatch):
    tok = cls(tiny_files(tmp_path / "src") / "vocab.json", tmp_path / "src" / "merges.txt")
    target = tmp_path / "out"
    target.mkdir()
    (target / "vocab.json").write_text("previous")
    calls = []

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        tok.save_pretrained(target)
    assert sorted(p.name for p in target.iterdir()) == ["vocab.json"]
    assert (target / "vocab.json").read_text() == "previous"
    calls.clear()
    with pytest.raises(OSError, match="disk full"):
        tok.save_pretrained(tmp_path / "new" / "dir")
    assert not (tmp_path / "new").exists()


# ----------------------------------------------------------------------------- training


def test_train_new_from_iterator_loads_in_both(tmp_path):
    import pydoc_data.topics

    base = RobertaTokenizerFast(tiny_files(tmp_path / "src") / "vocab.json", tmp_path / "src" / "merges.txt")
    texts = [p for name in sorted(pydoc_data.topics.topics)[:60] for p in pydoc_data.topics.topics[name].split("\n\n")]
    trained = base.train_new_from_iterator(iter(texts), vocab_size=700, min_frequency=2)
    vocab = trained.get_vocab()
    assert len(trained) == 700
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] == [0, 1, 2, 3, 4]
    assert trained.added_tokens_decoder[4].lstrip  # <mask> keeps absorbing the space before it
    trained.save_pretrained(tmp_path / "trained")
    slow = RobertaTokenizer.from_pretrained(tmp_path / "trained")
    fast = RobertaTokenizerFast.from_pretrained(tmp_path / "trained")
    samples = texts[:40] + ["Ünïcödé 😀 中文 <mask> text", "", "   \n\t"]
    slow_out = slow(samples, return_offsets_mapping=True)
    assert slow_out == fast(samples, return_offsets_mapping=True)
    assert sum(map(len, slow_out["input_ids"])) < 0.6 * sum(len(s.encode()) for s in samples)  # merges do work
    assert [slow.decode(ids, skip_special_tokens=True) for ids in slow_out["input_ids"]] == [
        s.replace(" <mask>", "") for s in samples]
    batched = base.train_new_from_iterator([texts[:300], texts[300:]], vocab_size=700, min_frequency=2)
    assert batched.get_vocab() == vocab  # batches of texts, as v4 takes them, learn the same
    no_merges = base.train_new_from_iterator(texts[:50], vocab_size=300, min_frequency=10**9)
    assert len(no_merges) == 256 + 5


# ----------------------------------------------------------------------------- bad input


@needs_vocab
@BOTH
def test_non_string_input_is_a_type_error(tok):
    for bad, match in [(5, "got int"), (["a", 5], "batch item 1"), (b"bytes", "got bytes"), ([["a", 3]], "batch item 0")]:
        with pytest.raises(TypeError, match=match):
            tok(bad)
    with pytest.raises(TypeError, match="text is required"):
        tok(None)
    with pytest.raises(TypeError, match="text_pair must be"):
        tok("a", 5)
    with pytest.raises(TypeError, match="list of words"):
        tok([["a", 3]], is_split_into_words=True)
    with pytest.raises(TypeError, match="use __call__ or batch_encode_plus"):
        tok.encode_plus([])  # (["a", "b"] is v4's tokens (slow) or a text and its pair (fast))
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['pading'\\]"):
        tok("a", pading=True)


@needs_vocab
@BOTH
def test_ids_outside_the_vocabulary(tok):
    # As v4 (4.57.6): convert_ids_to_tokens gives None past the vocabulary, fast decode skips those
    # ids; slow decode names the id (v4 fails there with a TypeError); a negative id is an error
    # but for the slow convert_ids_to_tokens (None). More in test_tokenizer_v4_surface.py.
    for bad in (-1, 50265, 10**9):
        if not tok.is_fast or bad < 0:
            with pytest.raises(ValueError, match=r"outside the vocabulary \[0, 50265\)"):
                tok.decode([0, bad])
        else:
            assert tok.decode([0, bad]) == "<s>"
        if tok.is_fast and bad < 0:
            with pytest.raises(ValueError, match="outside the vocabulary"):
                tok.convert_ids_to_tokens(bad)
        else:
            assert tok.convert_ids_to_tokens(bad) is None
    with pytest.raises(TypeError, match="must be ints"):
        tok.decode([1.5])
    with pytest.raises(TypeError, match="must be a list of int"):
        tok.decode("31414")


@needs_vocab
@BOTH
def test_bad_lengths_and_strategies(tok):
    cases = [
        (dict(truncation=True, max_length=1), "smaller than the 2 special tokens"),
        (dict(text_pair="b", truncation=True, max_length=3), "smaller than the 4 special tokens"),
        (dict(truncation="only_second", max_length=6), "needs a text_pair"),
        (dict(text_pair="b", truncation="only_first", max_length=5), "would lose all"),
        # windows (fast) must advance; the slow tokenizer refuses pair overflow with 'longest_first' (v4)
        (dict(truncation=True, max_length=4, stride=2, return_overflowing_tokens=True), "stride=2 must be smaller")
        if tok.is_fast else
        (dict(text_pair="b", truncation=True, max_length=5, return_overflowing_tokens=True), "`only_second` or `only_first`"),
        (dict(padding="longer"), "padding must be"),
        (dict(truncation="only_third"), "truncation must be"),
        (dict(return_tensors="torch"), "return_tensors must be"),
        (dict(padding=True, padding_side="middle"), "padding_side must be"),
        (dict(padding=True, pad_to_multiple_of=0), "pad_to_multiple_of must be"),
        (dict(max_length=-1), "max_length must be"),
        (dict(padding="max_length", truncation=True, max_length=10, pad_to_multiple_of=4), "not a multiple"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            tok("a a a a a", **kwargs)
    with pytest.raises(ValueError, match="rows have different lengths"):
        tok(["a", "a a"], return_tensors="np")


@needs_vocab
@BOTH
def test_v4_loading_keywords_are_accepted(cls):
    # what v4 code passes to from_pretrained (AutoTokenizer's and the Hub's options) loads as without them
    tok = cls.from_pretrained(DATA, trust_remote_code=True, use_fast=True, from_slow=True, _from_auto=True,
                              proxies=None, resume_download=None, _commit_hash=None, user_agent={})
    assert tok("Hello world")["input_ids"] == [0, 31414, 232, 2] and "trust_remote_code" not in tok.init_kwargs
    # v4 keeps a keyword it does not use in init_kwargs (save_pretrained writes it back)
    assert cls.from_pretrained(DATA, foo=1).init_kwargs["foo"] == 1


@needs_vocab
@BOTH
def test_max_length_alone_truncates_only_with_padding_false(tok):
    # v4: max_length without truncation turns 'longest_first' on only when padding is False (its
    # default), not for padding='do_not_pad'; 'only_second' lets a single text that fits through.
    whole = tok("a a a a a")["input_ids"]
    assert len(tok("a a a a a", max_length=4)["input_ids"]) == 4
    assert tok("a a a a a", max_length=4, padding="do_not_pad")["input_ids"] == whole
    assert tok("a a a a a", truncation="only_second", max_length=7)["input_ids"] == whole


@BOTH
@pytest.mark.parametrize("edit, match", [
    (lambda v: v.update({"<mask>": 0}), "permutation of 0..263"),
    (lambda v: v.update({"<mask>": 400}), "permutation"),
])
def test_bad_vocabulary(cls, tmp_path, edit, match):
    files = tiny_files(tmp_path, vocab_edit=edit)
    with pytest.raises(ValueError, match=match):
        cls(files / "vocab.json", files / "merges.txt")


@BOTH
def test_bad_merges(cls, tmp_path):
    files = tiny_files(tmp_path / "unknown", merges=(("h", "e"), ("he", "zz")))
    with pytest.raises(ValueError, match="merge 1 .* references 'zz', which is not in the vocab"):
        cls(files / "vocab.json", files / "merges.txt")
    files = tiny_files(tmp_path / "repeated", merges=(("h", "e"), ("h", "e")))
    with pytest.raises(ValueError, match="repeats merge 0"):
        cls(files / "vocab.json", files / "merges.txt")
    files = tiny_files(tmp_path / "malformed")
    (files / "merges.txt").write_text("#version: 0.2\nh e\nhe l x\n")
    with pytest.raises(ValueError, match="line 3: expected two symbols"):
        cls(files / "vocab.json", files / "merges.txt")


@BOTH
def test_bad_files_and_added_tokens(cls, tmp_path):
    files = tiny_files(tmp_path / "tiny")
    with pytest.raises(ValueError, match="not a directory"):
        cls.from_pretrained(files / "vocab.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor vocab.json"):
        cls.from_pretrained(tmp_path / "empty")
    (files / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": {"300": {"content": "<gap>"}}}))
    with pytest.raises(ValueError, match="has id 300, but it must be 264"):
        cls.from_pretrained(files)
    (files / "tokenizer_config.json").unlink()
    spec = json.loads(RobertaTokenizerFast.from_pretrained(files).backend_tokenizer.to_str())
    spec["model"] = {"type": "WordPiece", "vocab": {}}
    (files / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="not a RoBERTa byte-level BPE tokenizer: model type 'WordPiece'"):
        cls.from_pretrained(files)
    with pytest.raises(ValueError, match="exactly one of"):
        cls()


def test_bad_training_arguments(tmp_path):
    base = RobertaTokenizerFast(tiny_files(tmp_path) / "vocab.json", tmp_path / "merges.txt")
    with pytest.raises(ValueError, match="vocab_size must be an int >= 0"):
        base.train_new_from_iterator(["a b c"], vocab_size=-1)
    with pytest.raises(TypeError, match="item 1 is int"):
        base.train_new_from_iterator(["a", 3], vocab_size=300)
    with pytest.raises(ValueError, match="min_frequency"):
        base.train_new_from_iterator(["a"], vocab_size=300, min_frequency=-1)


def _tokenizer_json(files: Path) -> dict:
    return json.loads(RobertaTokenizerFast.from_pretrained(files).backend_tokenizer.to_str())


@BOTH
@pytest.mark.parametrize("name, corrupt, match", [
    ("vocab.json", lambda f: b'{"<s>": 0, "<pad>": 1', r"vocab\.json: not valid JSON \(line 1, column"),
    ("vocab.json", lambda f: '{"caf\xe9": 0}'.encode("latin-1"), r"vocab\.json: not UTF-8 text"),
    ("merges.txt", lambda f: b"#version: 0.2\nh e\n\xff\xfe x\n", r"merges\.txt: not UTF-8 text"),
    ("tokenizer_config.json", lambda f: b'{"model_max_length": 512,', r"tokenizer_config\.json: not valid JSON"),
    ("special_tokens_map.json", lambda f: b"[1, 2]", r"special_tokens_map\.json: expected a JSON object"),
    ("tokenizer.json", lambda f: b"{", r"tokenizer\.json: not valid JSON"),
    ("tokenizer.json", lambda f: b"[]", r"tokenizer\.json: expected a JSON object, got list"),
    ("tokenizer.json", lambda f: json.dumps({**_tokenizer_json(f), "added_tokens": [{"content": "<s>"}]}).encode(),
     r"tokenizer\.json: added_tokens\[0\] needs an int 'id' and a str 'content'"),
    ("tokenizer.json", lambda f: json.dumps({**_tokenizer_json(f), "model": {
        **_tokenizer_json(f)["model"], "merges": [["h", "e"], 7]}}).encode(),
     r"tokenizer\.json: model\.merges\[1\] must be 'left right' or \[left, right\], got 7"),
    ("tokenizer.json", lambda f: json.dumps({**_tokenizer_json(f), "normalizer": "NFC"}).encode(),
     r"tokenizer\.json: normalizer must be a JSON object or null"),
])
def test_a_corrupt_file_is_named_in_the_error(cls, tmp_path, name, corrupt, match):
    files = tiny_files(tmp_path / "tiny")
    data = corrupt(files)
    (files / name).write_bytes(data)
    with pytest.raises(ValueError, match=match) as caught:
        cls.from_pretrained(files)
    assert str(files / name) in str(caught.value)
    assert not isinstance(caught.value, (json.JSONDecodeError, UnicodeDecodeError))


@needs_vocab
@BOTH
def test_a_lone_surrogate_is_a_clear_value_error(tok):
    """A str with an unpaired UTF-16 surrogate (from `bytes.decode(errors='surrogateescape')`, or
    JSON '\\ud800') has no UTF-8 form: both tokenizers say so, with where it is."""
    for call in (lambda: tok("ab\ud800c"), lambda: tok(["fine", "x \udfff"], return_offsets_mapping=True),
                 lambda: tok(["ok", "\ud83d"], is_split_into_words=True), lambda: tok("q", "\udc80 pair")):
        with pytest.raises(ValueError, match=r"lone surrogate U\+D[89A-F][0-9A-F]{2} at character \d+") as caught:
            call()
        assert type(caught.value) is ValueError
    with pytest.raises(ValueError, match=r"lone surrogate U\+D800 at character 2 of 'ab\\ud800c'"):
        tok("ab\ud800c")


@pytest.mark.parametrize("text, size, added, expected", [
    ("hello world foo", 6, (), ["hello", " world", " foo"]),  # before the space a word takes
    ("hello world foo", 6, ("o w",), ["hello world", " foo"]),  # never through an added token
    ("hello world foo", 6, ("o",), ["hello world", " foo"]),  # nor next to one (rstrip/single_word look there)
    ("abc123def", 4, (), ["abc", "123", "def"]),  # letters | digits | letters
    ("ab'cd ef", 3, (), ["ab", "'cd", " ef"]),  # not after an apostrophe ("'s", "'ll" are one pre-token)
    ("中文字" * 4, 3, (), ["中文字" * 4]),  # one word: no place to cut
    ("x  😀😀 y", 2, (), ["x", "  😀😀", " y"]),
])
def test_chunk_spans_cut_between_pre_tokens(text, size, added, expected):
    spans = chunk_spans(text, size, added)
    assert [text[a:b] for a, b in spans] == expected
    assert spans[0][0] == 0 and spans[-1][1] == len(text) and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


@BOTH
def test_v4_helpers_that_collators_and_pipelines_call(loaded, cls, tmp_path):
    """Expected values are v4's (4.57.6, fast and slow alike), worked out from its rules: decode's
    skip_special_tokens drops added tokens marked special; `_convert_id_to_token` gives None past
    the vocabulary; `pad` keeps one example unbatched; TensorFlow tensors are int32."""
    tok = cls.from_pretrained(DATA)
    tok.add_tokens(["<spec1>"], special_tokens=True)
    ids = tok("a <spec1> end")["input_ids"]
    assert ids[3] == len(loaded[cls]) and tok._convert_id_to_token(ids[2]) == "Ġ"
    assert tok.decode(ids, skip_special_tokens=True) == "a  end"
    assert tok.batch_decode([ids], skip_special_tokens=True, spaces_between_special_tokens=False) == ["a  end"]
    # v4 (4.57.6) ignores keywords decode does not know, a misspelling too (test_tokenizer_v4_surface.py)
    assert tok.decode(ids, skip_special_token=True) == tok.decode(ids)
    assert tok._convert_id_to_token(0) == "<s>" and tok._convert_id_to_token(len(tok)) is None
    assert tok._convert_token_to_id("<spec1>") == ids[3] and tok.pad_token_type_id == 0
    tok.model_max_length = 512
    assert (tok.max_len_single_sentence, tok.max_len_sentences_pair) == (510, 508)  # 512 less <s> </s> (</s></s>)
    one = tok.pad({"input_ids": [0, 5, 2], "labels": 1}, padding="max_length", max_length=6, return_tensors="np")
    assert one["input_ids"].tolist() == [0, 5, 2, 1, 1, 1] and one["attention_mask"].tolist() == [1, 1, 1, 0, 0, 0]
    assert one["labels"].shape == ()
    kept = tok.pad([{"input_ids": [0, 5, 2], "attention_mask": [1, 1, 0]}], padding="max_length", max_length=5,
                   return_attention_mask=False)
    assert kept["attention_mask"] == [[1, 1, 0, 0, 0]]  # the mask given is kept, and padded with the ids
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "RobertaTokenizer"
    tf = pytest.importorskip("tensorflow")
    assert tok("hi", return_tensors="tf")["input_ids"].dtype == tf.int32


def test_the_slow_tokenizer_takes_add_prefix_space_per_call(loaded, vocab):
    # v4's slow RobertaTokenizer takes add_prefix_space in tokenize() and calls (its QA pipeline
    # passes it); v4's fast one refuses it. Ids from vocab.json.
    slow, fast = loaded[RobertaTokenizer], loaded[RobertaTokenizerFast]
    assert slow.tokenize("hi there") == ["hi", "Ġthere"]
    assert slow.tokenize("hi there", add_prefix_space=True) == ["Ġhi", "Ġthere"]
    out = slow("hi there", add_prefix_space=True, return_offsets_mapping=True)
    assert out["input_ids"] == [0, vocab["Ġhi"], vocab["Ġthere"], 2]
    assert out["offset_mapping"] == [(0, 0), (0, 2), (3, 8), (0, 0)]  # offsets index the text as given
    assert out.tokens() == ["<s>", "Ġhi", "Ġthere", "</s>"] and out.word_ids() == [None, 0, 1, None]
    assert slow("hi there")["input_ids"][1] == vocab["hi"]  # the tokenizer's own setting is unchanged
    with pytest.raises(TypeError, match="add_prefix_space"):
        fast("hi there", add_prefix_space=True)


@BOTH
def test_a_too_long_sequence_is_announced_once_per_tokenizer(loaded, cls, caplog):
    """v4 warns once per tokenizer (its key 'sequence-length-is-longer-than-the-specified-maximum'),
    whatever the lengths: three texts of 6, 7 and 8 words over a model_max_length of 5 give one line."""
    tok = cls.from_pretrained(DATA, model_max_length=5)  # its own: the module's tokenizers are shared
    with caplog.at_level(logging.WARNING):
        for n in (6, 7, 8):
            tok("hel " * n)
    assert sum("longer than the specified maximum" in r.getMessage() for r in caplog.records) == 1
