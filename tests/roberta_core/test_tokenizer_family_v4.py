"""XLM-R's and CamemBERT's tokenizers against transformers v4 where a review found them apart:
tokens() / tokenize() of characters the model does not know show the piece's own text, as v4's
slow (SentencePiece's pieces) and fast (`tokenizers`' Encoding.tokens) ones do, while
convert_ids_to_tokens keeps '<unk>'; and the slow CamembertTokenizer's vocab_size is
SentencePiece's piece count (v4's `len(self.sp_model)`).

The SentencePiece model is the one `test_tokenizer_family` trains (its fixtures, reused). Expected
values are transformers 4.57.6's outputs on that model, recorded as literals, and SentencePiece's
own `encode(out_type=str)` where it applies; never the classes under test.
"""

from __future__ import annotations

import json
import pickle

import pytest

spm = pytest.importorskip("sentencepiece")

from roberta_core.tokenization import RobertaTokenizer  # noqa: E402
from roberta_core.tokenization_fast import RobertaTokenizerFast  # noqa: E402
from roberta_core.tokenization_xlm_roberta import CamembertTokenizer, XLMRobertaTokenizer  # noqa: E402
from roberta_core.tokenization_xlm_roberta_fast import CamembertTokenizerFast, XLMRobertaTokenizerFast  # noqa: E402
from tests.roberta_core.test_tokenizer_family import sp, spm_file  # noqa: E402,F401  (fixtures)

CLASSES = [XLMRobertaTokenizer, XLMRobertaTokenizerFast, CamembertTokenizer, CamembertTokenizerFast]

# v4 4.57.6's tokenize() on the test model, the same for all four classes but where noted: 'Å', the
# emoji, 'Ω' and 'Ж' are not in the model (they are <unk>, id 3, in the ids).
V4_TOKENIZE = {
    "x ÅÅ 😀": ["▁", "x", "▁", "ÅÅ", "▁", "😀"],
    "Le café ÅÅ, ça va": ["▁", "L", "e", "▁", "c", "a", "f", "é", "▁", "ÅÅ", ",", "▁", "ç", "a", "▁", "v", "a"],
    "ÅÅ": ["▁", "ÅÅ"],
    "the Ω value Ж": ["▁the", "▁", "Ω", "▁value", "▁", "Ж"],
}
# v4 4.57.6: input_ids of the same texts (XLM-R's layout; CamemBERT's is shown in the test below)
V4_XLMR_IDS = {
    "x ÅÅ 😀": [0, 4, 44, 4, 3, 4, 3, 2],
    "Le café ÅÅ, ça va": [0, 4, 156, 6, 4, 13, 12, 23, 223, 4, 3, 20, 4, 291, 12, 4, 50, 12, 2],
    "ÅÅ": [0, 4, 3, 2],
    "the Ω value Ж": [0, 11, 4, 3, 88, 4, 3, 2],
}


@pytest.fixture(scope="module")
def made(spm_file):
    return {cls: cls(vocab_file=spm_file) for cls in CLASSES}


def _shift(family_cls, ids):
    """XLM-R's ids in CamemBERT's layout (<s> 5, </s> 6, <unk> 3, pieces +3 further)."""
    if not issubclass(family_cls, (CamembertTokenizer, CamembertTokenizerFast)):
        return ids
    return [{0: 5, 2: 6, 3: 3}.get(i, i + 3) for i in ids]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_tokenize_shows_an_unknown_piece_as_its_text(made, sp, cls):
    tok = made[cls]
    for text, expected in V4_TOKENIZE.items():
        assert tok.tokenize(text) == expected, text
        if not tok.is_fast:  # v4 slow's tokenize() is SentencePiece's encode(out_type=str)
            assert tok.tokenize(text) == sp.encode(text, out_type=str)
        ids = tok(text)["input_ids"]
        assert ids == _shift(cls, V4_XLMR_IDS[text])
        # convert_ids_to_tokens stays v4's: the unknown pieces are '<unk>' there
        tokens = tok.convert_ids_to_tokens(ids)
        assert [t for t, i in zip(tokens, ids) if i == tok.unk_token_id] == ["<unk>"] * ids.count(3)
        assert tok.convert_ids_to_tokens(3) == "<unk>"


def test_the_slow_and_fast_differ_on_a_rewritten_cluster_as_v4s(made):
    # '①' + a combining mark: v4 slow (SentencePiece) keeps the mark as an unknown piece, shown as its
    # text; v4 fast (tokenizers) drops it
    assert made[XLMRobertaTokenizer].tokenize("a①\u0301") == ["▁a", "1", "\u0301"]
    assert made[XLMRobertaTokenizer]("a①\u0301")["input_ids"] == [0, 26, 76, 3, 2]
    assert made[XLMRobertaTokenizerFast].tokenize("a①\u0301") == ["▁a", "1"]


@pytest.mark.parametrize("cls", [XLMRobertaTokenizerFast, CamembertTokenizerFast], ids=lambda c: c.__name__)
def test_fast_tokens_of_pairs_windows_and_words_are_v4s(made, cls):
    tok = made[cls]
    # v4 4.57.6 (the same strings for both fast classes)
    pair = tok("x ÅÅ 😀", "Le café ÅÅ, ça va")
    assert pair.tokens() == ["<s>", "▁", "x", "▁", "ÅÅ", "▁", "😀", "</s>", "</s>", "▁", "L", "e", "▁", "c", "a",
                             "f", "é", "▁", "ÅÅ", ",", "▁", "ç", "a", "▁", "v", "a", "</s>"]
    assert pair[0].tokens == pair.tokens()
    windows = tok("ÅÅ one ÅÅ two ÅÅ three ÅÅ four", max_length=8, truncation=True, stride=2,
                  return_overflowing_tokens=True, padding="max_length")
    assert windows["input_ids"][0] == _shift(cls, [0, 4, 3, 4, 30, 6, 4, 2])
    assert [windows.tokens(i) for i in range(len(windows["input_ids"]))] == [
        ["<s>", "▁", "ÅÅ", "▁", "on", "e", "▁", "</s>"], ["<s>", "e", "▁", "ÅÅ", "▁", "t", "w", "</s>"],
        ["<s>", "t", "w", "o", "▁", "ÅÅ", "▁", "</s>"], ["<s>", "ÅÅ", "▁", "t", "h", "re", "e", "</s>"],
        ["<s>", "re", "e", "▁", "ÅÅ", "▁", "f", "</s>"], ["<s>", "▁", "f", "o", "u", "r", "</s>", "<pad>"]]
    words = tok(["ÅÅx", "y"], is_split_into_words=True)
    assert words.tokens() == ["<s>", "▁", "ÅÅ", "x", "▁", "y", "</s>"]
    padded = tok(["ÅÅ", "a longer text"], padding=True, padding_side="left")
    assert padded.tokens(0) == ["<pad>"] * 9 + ["<s>", "▁", "ÅÅ", "</s>"]


@pytest.mark.parametrize("cls", [XLMRobertaTokenizer, CamembertTokenizer], ids=lambda c: c.__name__)
def test_slow_tokens_with_added_tokens_and_pickling(spm_file, sp, cls):
    tok = cls(vocab_file=spm_file)
    tok.add_tokens(["zzq"])
    assert tok.tokenize("zzq ÅÅ") == ["zzq", "▁", "ÅÅ"]  # v4 4.57.6
    assert tok("ÅÅ 😀")[0].tokens == ["<s>", *sp.encode("ÅÅ 😀", out_type=str), "</s>"]
    again = pickle.loads(pickle.dumps(tok))
    assert again.tokenize("zzq ÅÅ") == ["zzq", "▁", "ÅÅ"]
    assert again.vocab_size == tok.vocab_size


def test_camembert_slow_vocab_size_counts_sentencepiece_pieces(spm_file, sp, tmp_path):
    # v4 4.57.6: slow 300 (its len(sp_model)), fast 305; both len() 305 (+1 per added token)
    slow, fast = CamembertTokenizer(vocab_file=spm_file), CamembertTokenizerFast(vocab_file=spm_file)
    assert slow.vocab_size == len(sp) == 300 and fast.vocab_size == 305
    assert len(slow) == len(fast) == len(slow.get_vocab()) == 305
    assert slow.mask_token_id == 304 and slow.convert_ids_to_tokens(303) == sp.id_to_piece(299)
    assert f"vocab_size={len(sp)}," in repr(slow)
    slow.add_tokens(["zzq"])
    assert slow.vocab_size == 300 and len(slow) == 306
    slow.save_pretrained(tmp_path)
    # v4 4.57.6 writes the tokens past its vocab_size
    assert json.loads((tmp_path / "added_tokens.json").read_text()) == {"<mask>": 304, "zzq": 305}
    assert CamembertTokenizer.from_pretrained(tmp_path).vocab_size == 300
    # XLM-R: v4 counts the whole vocabulary, slow and fast
    assert XLMRobertaTokenizer(vocab_file=spm_file).vocab_size == XLMRobertaTokenizerFast(vocab_file=spm_file).vocab_size == 302


def test_byte_level_tokenizers_keep_their_token_strings():
    # byte-level BPE has no unknown pieces: the RoBERTa tokenizers' tokens() stay the ids' tokens
    assert RobertaTokenizer._unknown_shows_text is False and RobertaTokenizerFast._unknown_shows_text is False
    assert XLMRobertaTokenizer._unknown_shows_text and XLMRobertaTokenizerFast._unknown_shows_text
