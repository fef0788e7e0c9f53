"""XLMRobertaTokenizerFast and CamembertTokenizerFast: XLM-RoBERTa's and CamemBERT's SentencePiece
Unigram tokenizers run by the `tokenizers` library (Rust), from a Unigram `tokenizer.json` or,
when a checkpoint has only `sentencepiece.bpe.model`, from that model through our converter
(`tokenization_xlm_roberta.converted_pipeline`; no `sentencepiece` package needed).

Rust cuts out the added tokens, normalises, splits at `▁` and runs the Unigram over a whole batch
in parallel; special tokens, truncation, padding and decoding are the shared Python code the slow
XLMRobertaTokenizer uses too, so both give the same ids.
"""

from __future__ import annotations

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

    def _encode_texts(self, texts, with_offsets, split_special):
        engine = self._engine_for(split_special)
        if with_offsets:
            return [(e.ids, e.offsets, e.word_ids) for e in engine.encode_batch(texts, add_special_tokens=False)]
        return [(e.ids, None, None) for e in engine.encode_batch_fast(texts, add_special_tokens=False)]


class CamembertTokenizerFast(XLMRobertaTokenizerFast):
    """CamemBERT's tokenizer backed by `tokenizers` (CamemBERT's special-token table, see CamembertTokenizer)."""

    family = "camembert"
    tokenizer_class_name = "CamembertTokenizer"
