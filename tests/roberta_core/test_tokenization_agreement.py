"""Property tests: RobertaTokenizer and RobertaTokenizerFast give the same output on any input, and
the fast one matches transformers' RoBERTa pipeline run by `tokenizers` itself (independent of our
Python post-processing) on ids, masks, overflow windows and offsets.

Reproducible: hypothesis runs derandomized with a fixed example budget (about 20 s on 2 cores).
"""

from pathlib import Path

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roberta_core.tokenization import RobertaTokenizer
from roberta_core.tokenization_base import WHITESPACE, AddedToken
from roberta_core.tokenization_fast import RobertaTokenizerFast

DATA = Path(__file__).resolve().parents[2] / "../shared/data/roberta-base-tokenizer"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"roberta-base tokenizer files absent ({DATA})")

PROPERTY = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Pieces that exercise every rule: added tokens with and without surrounding whitespace, each kind
# of whitespace run (plus U+001C..U+001F, which str.isspace calls space and Unicode does not),
# contractions, digits, emoji sequences, combining marks, CJK, and letters assigned in Unicode 16
# and 17 (Garay U+10D4A, Tulu-Tigalari U+11380, Sidetic U+10940) that older tables do not know.
FRAGMENTS = [
    "<mask>", " <mask>", "  <mask> ", "\t<mask>", "\u3000<mask>", "x<mask>y", "<s>", "</s>", "<pad>", "<unk>",
    "<mas", "</s><s>", *WHITESPACE, "\x1c", "\x1f", "  ", "\r\n", "\n\n\n", " \t ", "'s", "'ll", "'RE", "don't",
    "123", "4.5", " 2024", "😀", "👨‍👩‍👧", " 🇫🇷", "中文字", " 日本", "e\u0301", "\u0301", "Ǆ", "ß", "İ",
    "\U00010D4A", "\U00011380", "\U00010940", "\x00", "\x7f", "\ufeff", " Hello", "world", "!?", "...", "",
]
_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=10).map("".join)
# Characters whose classes `tokenizers`' Oniguruma tables agree on with `regex` (old Unicode): for
# comparisons with the Rust pipeline, which uses its own tables.
_OLD_ALPHABET = st.sampled_from(list(" abcXYZ019'.,!?-_<>/\t\n\r\u00a0\u3000éßΩжこ中😀\u0301"))
_old_text = st.lists(st.one_of(st.sampled_from(["<mask>", " <mask>", "<s>", "</s>", "'s", "  ", " Hello"]),
                               st.text(_OLD_ALPHABET, max_size=6)), max_size=16).map("".join)


@pytest.fixture(scope="module")
def pairs():
    """(slow, fast) with the defaults, and with the other setting of every tokenizer-level option but
    add_prefix_space, where v4's two tokenizers differ (tested against `tokenizers` below)."""
    default = (RobertaTokenizer.from_pretrained(DATA), RobertaTokenizerFast.from_pretrained(DATA))
    options = dict(trim_offsets=False, truncation_side="left")
    other = (RobertaTokenizer.from_pretrained(DATA, **options), RobertaTokenizerFast.from_pretrained(DATA, **options))
    return {"default": default, "other": other}


@pytest.fixture(scope="module")
def with_added_tokens():
    """The real vocab plus added tokens with every flag (ASCII contents, see test_added_token_flags)."""
    extra = [AddedToken("ab", single_word=True), AddedToken("<new>", rstrip=True, special=True),
             AddedToken("hello world"), AddedToken("xyz", lstrip=True, rstrip=True),
             AddedToken("zz", normalized=False), "<mask>z"]
    made = []
    for cls in (RobertaTokenizer, RobertaTokenizerFast):
        tok = cls.from_pretrained(DATA)
        tok.add_tokens(extra)
        made.append(tok)
    return made


def outcome(tok, *args, **kwargs):
    """The call's output with word/sequence ids and every other accessor, or its error type and message.

    What differs by design between the two, as between v4's slow and fast tokenizers (tested in
    test_tokenization_v4.py), is left out: `length` (padded or not), `is_fast`, the key order and
    the overflow layout (windows or `overflowing_tokens`: overflow is not asked for here; the
    fast tokenizer's windows are compared with `tokenizers` below)."""
    kwargs.pop("return_overflowing_tokens", None)
    try:
        out = tok(*args, **kwargs)
    except (ValueError, TypeError) as error:
        return ("error", type(error), str(error))
    rows = out["input_ids"] if out["input_ids"] and isinstance(out["input_ids"][0], list) else [out["input_ids"]]
    data = {k: v for k, v in out.items() if k != "length"}
    return ("ok", data, [out.word_ids(i) for i in range(len(rows))], [out.sequence_ids(i) for i in range(len(rows))],
            [accessors(out, i) for i in range(len(rows))])


def accessors(out, b: int) -> dict:
    """Everything v4 fast's per-token accessors say about row b: per token, per character up to
    two past the last offset, per word up to two past the last, in each text of the row."""
    n = len(out.tokens(b))
    spans = [out.token_to_chars(b, t) for t in range(n)]
    last_char = max((span.end for span in spans if span is not None), default=0)
    last_word = max((w for w in out.word_ids(b) if w is not None), default=0)
    sequences = sorted({s for s in out.sequence_ids(b) if s is not None}) or [0]
    return {
        # (an added token that strips whitespace shows it in the fast tokenizer's tokens, as in v4;
        # byte-level symbols are never whitespace)
        "tokens": [t.strip(WHITESPACE) for t in out.tokens(b)], "n_sequences": out.n_sequences,
        "per_token": [(spans[t], out.token_to_word(b, t), out.token_to_sequence(b, t)) for t in range(n)],
        "per_char": [(out.char_to_token(b, c, s), out.char_to_word(b, c, s))
                     for s in sequences for c in range(last_char + 2)],
        "per_word": [(out.word_to_tokens(b, w, s), out.word_to_chars(b, w, s))
                     for s in sequences for w in range(last_word + 2)],
    }


def assert_agree(slow, fast, *args, **kwargs):
    a, b = outcome(slow, *args, **kwargs), outcome(fast, *args, **kwargs)
    assert a == b, f"slow and fast differ for {args!r} {kwargs!r}"
    return a


def _gpt2_bytes_to_symbols():
    """GPT-2's published byte -> symbol table (encoder.py in openai/gpt-2), written out for the tests."""
    kept = [*range(33, 127), *range(161, 173), *range(174, 256)]
    moved = [b for b in range(256) if b not in kept]
    return {**{b: chr(b) for b in kept}, **{b: chr(256 + n) for n, b in enumerate(moved)}}


BYTE_OF = {symbol: byte for byte, symbol in _gpt2_bytes_to_symbols().items()}


call_options = st.fixed_dictionaries({
    "add_special_tokens": st.booleans(),
    "padding": st.sampled_from([False, True, "max_length"]),
    "truncation": st.sampled_from([None, True, "only_first", "only_second"]),
    "max_length": st.one_of(st.none(), st.integers(0, 24)),
    "stride": st.integers(0, 4),
    "return_overflowing_tokens": st.booleans(),
    "pad_to_multiple_of": st.sampled_from([None, 1, 4]),
    "padding_side": st.sampled_from(["right", "left"]),
    "return_offsets_mapping": st.just(True),
    "return_special_tokens_mask": st.just(True),
    "return_length": st.just(True),
    "return_token_type_ids": st.just(True),
    "split_special_tokens": st.booleans(),
})


@PROPERTY
@given(texts=st.lists(_text, min_size=1, max_size=3), pair_texts=st.none() | st.lists(_text, min_size=3, max_size=3),
       options=call_options, which=st.sampled_from(["default", "other"]))
def test_slow_and_fast_agree_on_texts_and_pairs(pairs, texts, pair_texts, options, which):
    slow, fast = pairs[which]
    pair = None if pair_texts is None else pair_texts[:len(texts)]
    assert_agree(slow, fast, texts, pair, **options)
    assert_agree_on_one(slow, fast, texts[0], None if pair is None else pair[0], **options)


def assert_agree_on_one(slow, fast, text, pair, **options):
    """One text and its pair: as v4's, the fast tokenizer takes an empty pair ('' or []) for none, the slow one not."""
    if pair is not None and len(pair) == 0:
        assert outcome(fast, text, pair, **options) == outcome(fast, text, **options)
    else:
        assert_agree(slow, fast, text, pair, **options)


@PROPERTY
@given(words=st.lists(st.lists(_text, max_size=5), min_size=1, max_size=3), options=call_options,
       which=st.sampled_from(["default", "other"]))
def test_slow_and_fast_agree_on_pre_split_words(pairs, words, options, which):
    slow, fast = pairs[which]
    # Words where v4's two tokenizers put the prefix spaces alike (the fast one's rule is tested
    # against `tokenizers` below): none starting with whitespace other than ' ', nor holding an
    # added token that is matched (after which the fast one adds another prefix space).
    matched = [] if options["split_special_tokens"] else list(slow.added_tokens_encoder)
    words = [[w for w in ws if not (w[:1].isspace() and w[0] != " ") and not any(t in w for t in matched)]
             for ws in words]
    assert_agree(slow, fast, words, is_split_into_words=True, **options)
    assert_agree_on_one(slow, fast, words[0], words[-1], is_split_into_words=True, **options)


@PROPERTY
@given(text=_text)
def test_decode_inverts_encode(pairs, text):
    """Byte-level BPE loses nothing: only the whitespace that <mask> absorbs (lstrip) is gone."""
    for slow, fast in pairs.values():
        for tok in (slow, fast):
            ids = tok.encode(text, add_special_tokens=False, split_special_tokens=True)
            expected = " " + text if tok.add_prefix_space and text and not text[0].isspace() else text
            assert tok.decode(ids) == expected
            absorbed = regex.sub(r"\s+(?=<mask>)", "", expected)
            assert tok.decode(tok.encode(text, add_special_tokens=False)) == absorbed
            assert tok.decode(tok.encode(text), skip_special_tokens=True) == regex.sub(
                r"<s>|</s>|<pad>|<unk>|<mask>", "", absorbed)


@PROPERTY
@given(text=_text)
def test_offsets_index_the_original_text(pairs, text):
    """text[start:end] is the token's own text; trim_offsets leaves out the spaces it carries."""
    for slow, fast in pairs.values():
        out = assert_agree(slow, fast, text, add_special_tokens=False, return_offsets_mapping=True)[1]
        tok = slow
        for k, (token_id, (start, end)) in enumerate(zip(out["input_ids"], out["offset_mapping"])):
            assert 0 <= start <= end <= len(text)
            span = text[start:end]
            if token_id in tok.added_tokens_decoder:
                content = tok.added_tokens_decoder[token_id].content
                assert span == content if tok.trim_offsets else regex.fullmatch(rf"\s*{regex.escape(content)}", span)
                continue
            token_bytes = bytes(BYTE_OF[c] for c in tok.convert_ids_to_tokens(token_id))
            try:
                piece = token_bytes.decode("utf-8")
            except UnicodeDecodeError:  # part of a multi-byte character: the span covers the characters it touches
                assert token_bytes.strip(b" ") in span.encode() and span == span.strip(" ") if tok.trim_offsets else True
                continue
            if tok.add_prefix_space and k == 0 and start == 0 and piece.startswith(" ") and not text.startswith(" "):
                piece = piece[1:]  # the space the tokenizer put in front is not in the text
            assert text[start:end] == (piece.strip(" ") if tok.trim_offsets else piece)


@PROPERTY
@given(text=st.lists(st.one_of(st.sampled_from(["ab", "<new>", "hello world", "xyz", "zz", "<mask>z", "<mask>",
                                                " ", "\t", "_", "a", "b", "é"]),
                               st.text(_OLD_ALPHABET, max_size=3)), max_size=12).map("".join),
       options=call_options)
def test_added_token_flags(with_added_tokens, text, options):
    """lstrip / rstrip / single_word / normalized tokens split alike. (single_word decides "word
    character" with Unicode tables; `tokenizers` has older ones than `regex`, so this stays on
    characters both know.)"""
    slow, fast = with_added_tokens
    assert_agree(slow, fast, text, **options)
    # (without v4 slow's spaces around added tokens, which its fast tokenizer does not put)
    assert slow.decode(slow.encode(text, add_special_tokens=False), spaces_between_special_tokens=False) == \
        fast.decode(fast.encode(text, add_special_tokens=False))


# ----------------------------------------------------------------------------- against tokenizers' own pipeline


@pytest.fixture(scope="module")
def reference():
    """transformers' RoBERTa pipeline, built here from the vocab files with `tokenizers` alone."""
    from tokenizers import AddedToken as RustToken
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    backend = Tokenizer(models.BPE.from_file(str(DATA / "vocab.json"), str(DATA / "merges.txt")))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                          add_prefix_space=False)
    backend.add_special_tokens([RustToken(t, normalized=False, special=True) for t in ("<s>", "<pad>", "</s>", "<unk>")]
                               + [RustToken("<mask>", lstrip=True, normalized=False, special=True)])
    return backend


# Lengths where truncation and overflow windows happen.
cutting_options = call_options.flatmap(lambda o: st.fixed_dictionaries({
    **{k: st.just(v) for k, v in o.items()},
    "truncation": st.sampled_from([None, True, "only_first", "only_second"]),
    "max_length": st.integers(5, 14),
    "return_overflowing_tokens": st.booleans(),
}))


@PROPERTY
@given(texts=st.lists(_old_text, min_size=1, max_size=3), pair_texts=st.none() | st.lists(_old_text, min_size=3, max_size=3),
       options=st.one_of(call_options, cutting_options), side=st.sampled_from(["right", "left"]))
def test_fast_matches_the_tokenizers_pipeline(pairs, reference, texts, pair_texts, options, side):
    """ids, attention and special-token masks, overflow windows and offsets as `tokenizers` makes them
    (it trims no whitespace off <mask>, so offsets are compared on BPE tokens only)."""
    fast = pairs["default"][1]
    options = {**options, "split_special_tokens": False}
    pair = None if pair_texts is None else pair_texts[:len(texts)]
    fast.truncation_side = side
    try:
        ours = fast(texts, pair, **options)
    except ValueError:
        return  # our stricter checks; slow/fast agreement on errors is tested above
    finally:
        fast.truncation_side = "right"
    reference.no_truncation()
    reference.no_padding()
    strategy = {None: None, True: "longest_first"}.get(options["truncation"], options["truncation"])
    max_length = options["max_length"]
    if strategy is None and max_length is not None and not options["padding"]:
        strategy = "longest_first"
    if max_length is None:  # as v4 without a model_max_length: no truncation, no padding to max_length
        strategy = None
        if options["padding"] == "max_length":
            options["padding"] = False
    if strategy is not None:
        reference.enable_truncation(max_length, stride=options["stride"] if options["return_overflowing_tokens"] else 0,
                                    strategy=strategy, direction=side)
    if options["padding"]:
        reference.enable_padding(direction=options["padding_side"], pad_id=1, pad_token="<pad>",
                                 length=max_length if options["padding"] == "max_length" else None,
                                 pad_to_multiple_of=options["pad_to_multiple_of"])
    inputs = texts if pair is None else list(zip(texts, pair))
    encodings = reference.encode_batch(inputs, add_special_tokens=options["add_special_tokens"])
    if options["return_overflowing_tokens"]:
        encodings = [e for main in encodings for e in [main, *main.overflowing]]
    assert ours["input_ids"] == [e.ids for e in encodings]
    assert ours["attention_mask"] == [e.attention_mask for e in encodings]
    assert ours["special_tokens_mask"] == [e.special_tokens_mask for e in encodings]
    added = set(fast.added_tokens_decoder)
    for row, e in zip(ours["offset_mapping"], encodings):
        assert [o for o, i in zip(row, e.ids) if i not in added] == [o for o, i in zip(e.offsets, e.ids) if i not in added]


@pytest.fixture(scope="module")
def prefix_references():
    """trim_offsets -> (our fast tokenizer with add_prefix_space=True, transformers' RoBERTa
    pipeline with add_prefix_space=True built with `tokenizers` alone)."""
    from tokenizers import AddedToken as RustToken
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    made = {}
    for trim in (True, False):
        backend = Tokenizer(models.BPE.from_file(str(DATA / "vocab.json"), str(DATA / "merges.txt")))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=trim,
                                                              add_prefix_space=True)
        backend.add_special_tokens([RustToken(t, normalized=False, special=True) for t in ("<s>", "<pad>", "</s>", "<unk>")]
                                   + [RustToken("<mask>", lstrip=True, normalized=False, special=True)])
        made[trim] = (RobertaTokenizerFast.from_pretrained(DATA, add_prefix_space=True, trim_offsets=trim), backend)
    return made


@PROPERTY
@given(texts=st.lists(_old_text, min_size=1, max_size=3), words=st.lists(_old_text, min_size=1, max_size=4),
       trim=st.booleans())
def test_fast_prefix_space_matches_the_tokenizers_pipeline(prefix_references, texts, words, trim):
    """add_prefix_space=True, as v4's fast tokenizer: a space before every piece of text between added
    tokens that does not start with ' ' (and before every pre-split word), and its offsets trimmed
    as `tokenizers` trims them; ids and every offset, texts and words."""
    fast, reference = prefix_references[trim]
    ours = fast(texts, return_offsets_mapping=True)
    theirs = reference.encode_batch(texts)
    assert ours["input_ids"] == [e.ids for e in theirs]
    assert ours["offset_mapping"] == [e.offsets for e in theirs]
    ours = fast(words, is_split_into_words=True, return_offsets_mapping=True)
    theirs = reference.encode(words, is_pretokenized=True)
    assert ours["input_ids"] == theirs.ids and ours["offset_mapping"] == theirs.offsets
    assert ours.word_ids() == theirs.word_ids


ENCODING_CASES = [("Hello world",), ("Hi there", "Bob  went home."), ("Ada Lovelace met Charles Babbage.", "Who met Ada?"),
                  ("  spaces, and punctuation!! 42",)]


@pytest.mark.parametrize("texts", ENCODING_CASES, ids=["single", "pair", "pair-long", "spaces"])
@pytest.mark.parametrize("which", [0, 1], ids=["slow", "fast"])
def test_encodings_answer_like_tokenizers_encodings(pairs, reference, texts, which):
    """`encodings[i]` has the `tokenizers.Encoding` accessors that v4's pipelines call (the
    question-answering pipeline maps its answer to words with token_to_word and word_to_chars),
    with the Encoding's answers: tuples, and None for pads, special tokens and indices past the end."""
    tok = pairs["default"][which]
    ours = tok(*texts, padding="max_length", max_length=24)[0]  # `encodings` is None for the slow one, as in v4
    reference.no_truncation()
    reference.enable_padding(pad_id=1, pad_token="<pad>", length=24)
    theirs = reference.encode(*texts)
    reference.no_padding()
    assert len(ours) == len(theirs) == 24
    for t in range(len(theirs) + 2):
        for name in ("token_to_sequence", "token_to_word", "token_to_chars"):
            assert getattr(ours, name)(t) == getattr(theirs, name)(t), (name, t)
    for s in range(len(texts)):
        for i in range(max(map(len, texts)) + 2):
            for name in ("word_to_tokens", "word_to_chars", "char_to_token", "char_to_word"):
                assert getattr(ours, name)(i, s) == getattr(theirs, name)(i, s), (name, i, s)
    assert ours.word_to_chars(1) == theirs.word_to_chars(1) and ours.char_to_token(1) == theirs.char_to_token(1)
    with pytest.raises(ValueError, match="token_index"):
        ours.token_to_word(-1)


# ----------------------------------------------------------------------------- long texts in pieces


class _Chunked:
    """Within the block, the fast tokenizer cuts texts longer than `size` characters into pieces,
    and records the length of every text its engine is given."""

    def __init__(self, tok, size):
        self.tok, self.size, self.lengths = tok, size, []

    def __enter__(self):
        encode = type(self.tok)._encode_pieces

        def spy(engine, texts, with_offsets):
            self.lengths += map(len, texts)
            return encode(engine, texts, with_offsets)

        self.tok.max_chunk_chars, self.tok._encode_pieces = self.size, spy
        return self

    def __exit__(self, *exc):
        del self.tok.max_chunk_chars, self.tok._encode_pieces


@pytest.fixture(scope="module")
def with_cut_tokens():
    """(slow, fast) with added tokens that are not in the vocab (their ids show whether they
    matched): single_word next to digits and '_', rstrip/lstrip, and contents that start or end
    with a space, as a cut before whitespace would meet them."""
    extra = [AddedToken("zqj", single_word=True), AddedToken("<r>", rstrip=True), AddedToken("<l>", lstrip=True),
             AddedToken(" qq"), AddedToken("vv ", normalized=False)]
    made = []
    for cls in (RobertaTokenizer, RobertaTokenizerFast):
        tok = cls.from_pretrained(DATA)
        tok.add_tokens(extra)
        made.append(tok)
    return tuple(made)


# Awkward places to cut: contractions, whitespace runs before words and before <mask> (lstrip), an
# rstrip token before spaces, a single_word token next to letters, tokens that hold a space, digit /
# letter / emoji / combining mark changes, and a space-free CJK run.
AWKWARD = ("don't  <mask> 中文字😀😀123abc's\t\t x<new>  y hello world  \u3000<mask>  'll 4.5e\u0301 ab cd "
           "xabx 7ab _ab  xyz  zz<mask>z 日本語日本語日本語 'RE  \n\n ab 7zqj _zqj zqj, x<r>  y  <l>z a qq b vv  c")


@pytest.mark.parametrize("which", ["default", "other", "added", "cut"])
def test_a_text_encoded_in_pieces_is_the_whole_text_encoded(pairs, with_added_tokens, with_cut_tokens, which):
    slow, fast = {"added": with_added_tokens, "cut": with_cut_tokens}.get(which) or pairs[which]
    for options in (dict(return_offsets_mapping=True), dict(split_special_tokens=True), {}):
        whole = fast(AWKWARD, **options)
        assert whole == slow(AWKWARD, **options)  # the slow tokenizer never cuts: an independent reference
        for size in range(1, len(AWKWARD) + 1):
            batch = [AWKWARD, "short", AWKWARD[:size], AWKWARD[size:]]
            whole_batch = fast(batch, **options)
            with _Chunked(fast, size) as chunked:
                assert fast(AWKWARD, **options) == whole, f"size {size}"
                assert fast(batch, **options) == whole_batch, f"size {size}"
            if size < 40:
                assert len(chunked.lengths) > 3  # it did cut


@PROPERTY
@given(text=st.lists(st.one_of(st.sampled_from([*FRAGMENTS, "ab", "<new>", "hello world", "xyz", "zz", "<mask>z",
                                                "zqj", "<r>", "<l>", " qq", "vv ", "7", "_"]),
                               st.text(max_size=6)), max_size=14).map("".join),
       size=st.integers(1, 12), offsets=st.booleans(), split_special=st.booleans())
def test_pieces_never_change_the_encoding(pairs, with_added_tokens, with_cut_tokens, text, size, offsets, split_special):
    options = dict(return_offsets_mapping=offsets, split_special_tokens=split_special)
    for slow, fast in [*pairs.values(), with_added_tokens, with_cut_tokens]:
        expected = slow(text, **options)
        with _Chunked(fast, size):
            got = fast(text, **options)
            assert got == expected
            assert got.word_ids() == expected.word_ids()  # words numbered on across the pieces


def test_the_engine_gets_bounded_pieces_of_a_long_text(pairs):
    """A long text with places to cut reaches `tokenizers` in pieces of at most max_chunk_chars
    (the memory of a 10 MB text was the memory of one 10 MB Encoding, 6 GB)."""
    slow, fast = pairs["default"]
    text = "".join(f"段落{k} 中文和😀emoji, and words {k * 7}! " for k in range(3000))
    expected = slow(text, return_offsets_mapping=True, verbose=False)
    with _Chunked(fast, 1000) as chunked:
        assert fast(text, return_offsets_mapping=True, verbose=False) == expected
    assert sum(chunked.lengths) == len(text) and max(chunked.lengths) <= 1000 and len(chunked.lengths) > len(text) // 1000
    with _Chunked(fast, 1000) as chunked:
        fast("中" * 2500)  # no place to cut in one long word: it goes whole
    assert chunked.lengths == [2500]
