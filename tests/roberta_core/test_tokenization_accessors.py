"""v4 fast's BatchEncoding accessors (tokens, word_ids, sequence_ids, char/word/token maps) and
`text_target`, on both tokenizers (issue 14).

Expected values are worked out by hand from the roberta-base vocab.json (read with json alone) and
from v4 fast's rules: a word is a pre-token of GPT-2's published pattern or an added token,
numbered from 0 in each text of a pair; offsets leave out the space a token carries
(trim_offsets); special tokens and pads map to None. Slow/fast agreement of every accessor on
arbitrary input is in test_tokenization_agreement.py (`outcome`).
"""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roberta_core.batch_encoding import CharSpan, TokenSpan
from roberta_core.tokenization import RobertaTokenizer
from roberta_core.tokenization_fast import RobertaTokenizerFast

DATA = Path(__file__).resolve().parents[2] / "../shared/data/roberta-base-tokenizer"
BOTH = pytest.mark.parametrize("cls", [RobertaTokenizer, RobertaTokenizerFast], ids=["slow", "fast"])
PROPERTY = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# GPT-2's pre-token pattern as published (openai/gpt-2 encoder.py), for words found independently.
GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


@pytest.fixture(scope="module")
def loaded():
    if not DATA.is_dir():
        pytest.skip(f"roberta-base tokenizer files absent ({DATA})")
    return {cls: cls.from_pretrained(DATA) for cls in (RobertaTokenizer, RobertaTokenizerFast)}


@pytest.fixture(scope="module")
def untrimmed(loaded):
    return {cls: cls.from_pretrained(DATA, trim_offsets=False) for cls in loaded}


@pytest.fixture
def tok(loaded, cls):
    return loaded[cls]


@pytest.fixture(scope="module")
def vocab():
    if not DATA.is_dir():
        pytest.skip(f"roberta-base tokenizer files absent ({DATA})")
    return json.loads((DATA / "vocab.json").read_text(encoding="utf-8"))


@BOTH
def test_hello_world(tok):
    out = tok("Hello world")
    assert out.tokens() == ["<s>", "Hello", "Ġworld", "</s>"]
    assert out.word_ids() == [None, 0, 1, None]
    assert out.sequence_ids() == [None, 0, 0, None]
    assert out.is_fast == tok.is_fast and out.n_sequences == 1  # v4 reports which tokenizer made it
    # 'Hello' covers characters 0-4, 'Ġworld' 6-10 (the space at 5 is trimmed off it), nothing 11.
    assert [out.char_to_token(c) for c in range(13)] == [1] * 5 + [None] + [2] * 5 + [None, None]
    assert [out.char_to_word(c) for c in range(12)] == [0] * 5 + [None] + [1] * 5 + [None]
    assert [out.token_to_chars(t) for t in range(4)] == [None, CharSpan(0, 5), CharSpan(6, 11), None]
    assert [out.token_to_word(t) for t in range(4)] == [None, 0, 1, None]
    assert [out.token_to_sequence(t) for t in range(4)] == [None, 0, 0, None]
    assert out.word_to_tokens(0) == TokenSpan(1, 2) and out.word_to_tokens(1) == TokenSpan(2, 3)
    assert out.word_to_tokens(2) is None and out.word_to_chars(2) is None
    assert out.word_to_chars(1) == CharSpan(6, 11)
    assert out.token_to_word(-2) == 1 and out.token_to_chars(0, 2) == CharSpan(6, 11)  # (batch, token) form
    with pytest.warns(FutureWarning):
        assert out.words() == [None, 0, 1, None]


@BOTH
def test_untrimmed_offsets_give_the_space_to_the_word(untrimmed, cls):
    tok = untrimmed[cls]
    out = tok("Hello world")
    assert out.char_to_token(5) == 2 and out.token_to_chars(2) == CharSpan(5, 11)


@BOTH
def test_words_are_pre_tokens_and_added_tokens(tok, vocab):
    out = tok("it's 2024!")
    assert out["input_ids"] == [0, vocab["it"], vocab["'s"], vocab["Ġ2024"], vocab["!"], 2]
    assert out.word_ids() == [None, 0, 1, 2, 3, None]  # it | 's | ' 2024' | !
    assert out.word_to_chars(2) == CharSpan(5, 9)
    # <mask> (lstrip) takes the space before it and is a word of its own.
    masked = tok("Hi <mask> there")
    # recorded from transformers 4.57.6: the fast token shows the space it took, the slow one not
    assert masked.tokens() == ["<s>", "Hi", " <mask>" if tok.is_fast else "<mask>", "Ġthere", "</s>"]
    assert masked.word_ids() == [None, 0, 1, 2, None]
    assert masked.token_to_chars(2) == CharSpan(3, 9)  # the space it absorbed is trimmed, as in v4


@BOTH
def test_pair(tok):
    out = tok("Hello world", "pair text")
    assert out.tokens() == ["<s>", "Hello", "Ġworld", "</s>", "</s>", "pair", "Ġtext", "</s>"]
    assert out.word_ids() == [None, 0, 1, None, None, 0, 1, None]  # words restart in the second text
    assert out.sequence_ids() == [None, 0, 0, None, None, 1, 1, None]
    assert out.n_sequences == 2
    assert out.char_to_token(0) == 1 and out.char_to_token(0, sequence_index=1) == 5
    assert out.char_to_token(0, 6, sequence_index=1) == 6  # (batch, char) form
    assert out.word_to_tokens(1, sequence_index=1) == TokenSpan(6, 7)
    assert out.word_to_chars(1, sequence_index=1) == CharSpan(5, 9)
    assert out.char_to_word(7, sequence_index=1) == 1
    assert out.token_to_sequence(6) == 1 and out.token_to_chars(6) == CharSpan(5, 9)
    with pytest.raises(ValueError, match=r"sequence_index must be in \[0, 2\)"):
        out.char_to_token(0, sequence_index=2)
    with pytest.raises(ValueError, match="a single text"):
        tok("Hello").char_to_token(0, sequence_index=1)


@BOTH
@pytest.mark.parametrize("side", ["right", "left"])
def test_batch_with_padding(tok, side):
    out = tok(["Hello world", "Hi"], padding=True, padding_side=side)
    pads = 1
    real = ["<s>", "Hi", "</s>"]
    expected = real + ["<pad>"] * pads if side == "right" else ["<pad>"] * pads + real
    assert out.tokens(1) == expected and out.tokens(0) == ["<s>", "Hello", "Ġworld", "</s>"]
    words = [None, 0, None] + [None] * pads if side == "right" else [None] * pads + [None, 0, None]
    assert out.word_ids(1) == words and out.word_ids(-1) == words
    hi = 1 if side == "right" else 2  # the token 'Hi' after the left pad
    assert out.char_to_token(1, 0) == hi and out.char_to_token(1, 1) == hi and out.char_to_token(1, 2) is None
    pad = 3 if side == "right" else 0
    assert out.token_to_chars(1, pad) is None and out.token_to_word(1, pad) is None
    assert out.token_to_sequence(1, pad) is None
    assert out.word_to_tokens(1, 0) == TokenSpan(hi, hi + 1)
    assert (out.encodings is None) == (not tok.is_fast)  # v4: no encodings from the slow tokenizer
    encoding = out[1]
    assert encoding.tokens == expected and len(encoding) == 4
    assert encoding.attention_mask == [0 if t == "<pad>" else 1 for t in expected]
    assert encoding.ids == out["input_ids"][1]
    assert out[1].tokens == expected and out[-1].word_ids == words  # v4: an int key gives the row's encoding
    assert out[1:]["input_ids"] == [out["input_ids"][1]]  # and a slice the rows of every key
    tensors = tok(["Hello world", "Hi"], padding=True, padding_side=side, return_tensors="np")
    assert tensors.tokens(1) == expected and tensors.char_to_token(1, 0) == hi


@BOTH
def test_pre_split_words_split_into_several_tokens(tok, vocab):
    out = tok(["Hello", "tokenization", "!"], is_split_into_words=True)
    assert out["input_ids"] == [0, vocab["ĠHello"], vocab["Ġtoken"], vocab["ization"], vocab["Ġ!"], 2]
    assert out.tokens() == ["<s>", "ĠHello", "Ġtoken", "ization", "Ġ!", "</s>"]
    assert out.word_ids() == [None, 0, 1, 1, 2, None]
    assert out.word_to_tokens(1) == TokenSpan(2, 4)
    # Offsets index each word (as v4): 'token' is 0-5 of 'tokenization', 'ization' 5-12.
    assert out.token_to_chars(2) == CharSpan(0, 5) and out.token_to_chars(3) == CharSpan(5, 12)
    assert out.word_to_chars(1) == CharSpan(0, 12)
    # Every word's offsets start at 0, so a character maps to the first token whose span holds it (v4's rule).
    assert out.char_to_token(2) == 1 and out.char_to_token(7) == 3
    pair = tok(["a", "tokenization"], ["b", "c"], is_split_into_words=True)
    assert pair.word_ids() == [None, 0, 1, 1, None, None, 0, 1, None]


@BOTH
def test_overflow_windows_with_stride(tok):
    # v4's slow tokenizer returns overflowing_tokens from a call (test_tokenization_v4.py); the windows
    # the pipelines read come from its fast-layout call, the same as the fast tokenizer's
    call = tok if tok.is_fast else tok._call_fast_layout
    out = call("a b c d e f g", truncation=True, max_length=5, stride=1, return_overflowing_tokens=True)
    # 3 tokens per window, 1 shared with the next: a b c | c d e | e f g
    assert [out.tokens(i) for i in range(3)] == [["<s>", "a", "Ġb", "Ġc", "</s>"], ["<s>", "Ġc", "Ġd", "Ġe", "</s>"],
                                                 ["<s>", "Ġe", "Ġf", "Ġg", "</s>"]]
    assert [out.word_ids(i) for i in range(3)] == [[None, 0, 1, 2, None], [None, 2, 3, 4, None], [None, 4, 5, 6, None]]
    assert out.token_to_chars(1, 1) == CharSpan(4, 5) and out.char_to_token(1, 4) == 1
    assert out.char_to_token(1, 0) is None  # 'a' is not in the second window
    assert out.word_to_tokens(2, 6) == TokenSpan(3, 4) and out.word_to_tokens(2, 0) is None
    assert out["overflow_to_sample_mapping"] == [0, 0, 0]


@BOTH
def test_bad_indices(tok):
    out = tok(["Hello world", "Hi"], padding=True)
    with pytest.raises(ValueError, match=r"batch_index must be in \[-2, 2\)"):
        out.word_ids(2)
    with pytest.raises(ValueError, match=r"token_index must be in \[-4, 4\)"):
        out.token_to_chars(0, 4)
    with pytest.raises(TypeError, match="token_index must be an int"):
        out.token_to_word(0, True)
    with pytest.raises(ValueError, match="char_index must be >= 0"):
        out.char_to_token(0, -1)
    assert out.char_to_token(0, 10_000) is None  # past the end: no token, as in v4
    with pytest.raises(ValueError, match="only available on the output of a tokenizer call"):
        tok.pad({"input_ids": [[0, 2]]}).word_ids()
    ids = tok.prepare_for_model([31414, 232])
    assert ids.tokens() == ["<s>", "Hello", "Ġworld", "</s>"] and ids.word_ids() == [None] * 4
    with pytest.raises(ValueError, match="only available for text input"):
        ids.char_to_token(0)


@BOTH
def test_pickled_encoding_keeps_its_accessors(tok):
    out = tok(["Hello world", "Hi there"], ["x", "y"], padding=True)
    clone = pickle.loads(pickle.dumps(out))
    assert clone._source is None  # the tokenizer does not travel with it
    for b in range(2):
        assert clone.tokens(b) == out.tokens(b) and clone.word_ids(b) == out.word_ids(b)
        assert [clone.char_to_token(b, c) for c in range(12)] == [out.char_to_token(b, c) for c in range(12)]


@BOTH
def test_a_changed_tokenizer_is_detected(loaded, cls):  # `loaded`: skips where the files are absent
    tok = cls.from_pretrained(DATA)  # its own: add_tokens changes it
    out = tok("Hello world")
    tok.add_tokens(["world"])  # the text now gives another token for 'world'
    with pytest.raises(ValueError, match="tokenizer changed"):
        out.word_ids()


@BOTH
def test_long_text_in_pieces_numbers_words_on(loaded, cls):
    """The fast tokenizer encodes a long text in pieces: word ids go on across them."""
    text = "one, two 3 <mask> four's five " * 40
    tok = cls.from_pretrained(DATA)
    tok.max_chunk_chars = 50  # (the slow tokenizer never cuts: it checks the count alone)
    words = tok(text).word_ids()
    # 8 words a repetition: 'one' | ',' | ' two' | ' 3' | ' <mask>' | ' four' | "'s" | ' five' (the space
    # before the next 'one' goes to it), then the final space.
    assert words[0] is None and words[-1] is None
    assert words[1:-1] == sorted(words[1:-1]) and set(words[1:-1]) == set(range(8 * 40 + 1))
    assert words == loaded[RobertaTokenizer](text).word_ids()


@BOTH
def test_text_target(tok, vocab):
    out = tok("in", text_target="out long")
    assert out["input_ids"] == [0, vocab["in"], 2]
    assert out["labels"] == [0, vocab["out"], vocab["Ġlong"], 2]
    batch = tok(["a", "b"], text_target=["out long", "out"], padding=True, return_tensors="np")
    assert batch["labels"].tolist() == [[0, vocab["out"], vocab["Ġlong"], 2], [0, vocab["out"], 2, 1]]  # pad id 1
    assert batch["input_ids"].shape == (2, 3)
    only = tok(text_target="out long")
    assert set(only) == {"input_ids", "attention_mask"} and only["input_ids"] == [0, vocab["out"], vocab["Ġlong"], 2]
    pairs = tok("in", text_target="out", text_pair_target="long")
    assert pairs["labels"] == [0, vocab["out"], 2, 2, vocab["long"], 2]
    cut = tok("in", text_target="out long out long", truncation=True, max_length=4)
    assert cut["labels"] == [0, vocab["out"], vocab["Ġlong"], 2]
    with pytest.raises(ValueError, match="text_pair_target was given without text_target"):
        tok("in", text_pair_target="x")
    with pytest.raises(ValueError, match="same number of rows"):
        tok(["a", "b"], text_target=["x"])


@BOTH
@PROPERTY
@given(text=st.text(st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), max_size=24))
def test_words_are_gpt2_pre_tokens(loaded, untrimmed, cls, text):
    """Without added tokens in the text, word k is the k-th match of GPT-2's published pattern: each
    token's untrimmed span lies in the span of its word's match."""
    tok = loaded[cls]
    out = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = [m.span() for m in GPT2_PATTERN.finditer(text)]
    words = out.word_ids()
    assert len(words) == len(out["input_ids"])
    assert sorted(set(words)) == list(range(len(spans)))
    offsets = untrimmed[cls](text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for (start, end), word in zip(offsets, words):
        assert spans[word][0] <= start < end <= spans[word][1]
    for word, (start, end) in enumerate(spans):
        span = out.word_to_tokens(word)
        assert all(w == word for w in words[span.start:span.end])


def test_numpy_indices_are_ints(loaded):
    out = loaded[RobertaTokenizerFast](["Hello world"])
    assert out.token_to_word(np.int64(0), np.int64(2)) == 1
