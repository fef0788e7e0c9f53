"""XLMRobertaTokenizerFast and CamembertTokenizerFast: XLM-RoBERTa's and CamemBERT's SentencePiece
Unigram tokenizers run by the `tokenizers` library (Rust), from a Unigram `tokenizer.json` or,
when a checkpoint has only `sentencepiece.bpe.model`, from that model through our converter
(`tokenization_xlm_roberta.converted_pipeline`; no `sentencepiece` package needed).

Rust cuts out the added tokens, normalises, splits at `▁` and runs the Unigram over a whole batch
in parallel; special tokens, truncation, padding and decoding are the shared Python code the slow
XLMRobertaTokenizer uses too, so both give the same ids.
"""

from __future__ import annotations

import json

import regex

from .pretokenization import chunk_spans
from .tokenization_base import FastEngineMixin
from .tokenization_xlm_roberta import SentencePieceTokenizerBase

__all__ = ["XLMRobertaTokenizerFast", "CamembertTokenizerFast"]


class XLMRobertaTokenizerFast(FastEngineMixin, SentencePieceTokenizerBase):
    """XLM-RoBERTa's tokenizer backed by `tokenizers`; same API and same ids as XLMRobertaTokenizer.

    >>> tok = XLMRobertaTokenizerFast.from_pretrained("path/to/xlm-roberta-base")
    >>> tok(["Hello world!", "Bonjour"], padding=True, return_tensors="np")["input_ids"].shape
    (2, 5)
    """

    is_fast = True

    _cuttable = False

    def _build_engine(self):
        engine = self._backend_tokenizer()
        self._cuttable = _splits_at_spaces(engine)  # read once per engine: the JSON holds the whole vocabulary
        return engine

    def _chunk_spans(self, text: str, size: int, prefix_space: bool = False) -> list[tuple[int, int]]:
        # Metaspace (split=True) starts a word at each space and the Unigram never joins two words,
        # so a cut just before one space between two letters or digits (which no normaliser merges
        # with a neighbouring space) leaves every word whole; a run without such a space stays one piece.
        if not self._cuttable:
            return [(0, len(text))]
        return chunk_spans(text, size, [t.content for t in self._added.values()], cuts=_WORD_CUTS)


# Just before a single space that has a letter or digit on each side.
_WORD_CUT = r"(?<=[\p{L}\p{N}])(?= [\p{L}\p{N}])"
_WORD_CUTS = (regex.compile(_WORD_CUT), regex.compile(_WORD_CUT, flags=regex.REVERSE))


def _splits_at_spaces(engine) -> bool:
    """Whether `engine` (a `tokenizers.Tokenizer`) pre-tokenizes with Metaspace split=True, which
    our converter and v4's write; another tokenizer.json is never cut."""
    spec = json.loads(engine.to_str()).get("pre_tokenizer") or {}
    parts = spec.get("pretokenizers", [spec]) if spec.get("type") == "Sequence" else [spec]
    return len(parts) == 1 and parts[0].get("type") == "Metaspace" and parts[0].get("split", True) is True


class CamembertTokenizerFast(XLMRobertaTokenizerFast):
    """CamemBERT's tokenizer backed by `tokenizers` (CamemBERT's special-token table, see CamembertTokenizer)."""

    family = "camembert"
