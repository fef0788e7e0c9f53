"""RobertaTokenizer: RoBERTa's byte-level BPE in pure Python.

A text goes through three steps, the same ones `tokenizers` runs in Rust for RobertaTokenizerFast:
added tokens (<s>, <mask>, ...) are cut out first, the rest is split by GPT-2's pattern into
pre-tokens (words with their leading space, digit runs, symbol runs, whitespace runs), and each
pre-token's UTF-8 bytes are merged by BPE rank. Everything around that (special tokens, truncation,
padding, offsets, decoding, files) is in tokenization_base and the modules it is built from.

Speed comes from caching whole pre-tokens: the cache maps the raw pre-token string straight to its
ids, so a word seen before costs one dict lookup, with no byte mapping or token-to-id step.
"""

from __future__ import annotations

from itertools import chain
from types import MappingProxyType
from typing import Mapping

import regex

from .pretokenization import PRETOKENIZE_TEMPLATE, SLOW_CLASSES, WHITESPACE, bytes_to_unicode
from .tokenization_base import RobertaTokenizerBase

CACHE_CAPACITY = 200_000  # pre-tokens; English text needs far fewer, a cleared cache refills quickly
_NO_RANK = 1 << 62
_UNKNOWN = -1  # the id of a BPE symbol missing from the vocabulary, until encoding gives it the unk id
# A word character next to a single_word token stops it from matching (Unicode \w, as `tokenizers`).
_WORD_CHARACTER = regex.compile(r"\w")


class _PieceCache(dict):
    """pre-token string -> tuple of BPE ids; computes misses and is emptied when it reaches capacity."""

    def __init__(self, encode_piece):
        super().__init__()
        self._encode_piece = encode_piece

    def __reduce__(self):
        return type(self), (self._encode_piece,)  # a pickled tokenizer starts with an empty cache

    def __missing__(self, piece: str) -> tuple[int, ...]:
        ids = self._encode_piece(piece)
        if len(self) >= CACHE_CAPACITY:
            self.clear()
        self[piece] = ids
        return ids


class RobertaTokenizer(RobertaTokenizerBase):
    """RoBERTa's tokenizer in pure Python; same API and same output as RobertaTokenizerFast.

    >>> tok = RobertaTokenizer.from_pretrained("path/to/roberta-base")
    >>> tok("Hello world!")["input_ids"]
    [0, 31414, 232, 328, 2]
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ranks = {pair: rank for rank, pair in enumerate(self._merges)}
        self._byte_symbols = bytes_to_unicode()
        self._pattern = regex.compile(PRETOKENIZE_TEMPLATE.format(**SLOW_CLASSES))
        self._cache = _PieceCache(self._bpe)
        self._token_bytes = [len(token) for token in self._decoder]  # one symbol per byte
        # A vocabulary without some byte symbols (v4 takes one: its tests' toy vocabularies): such a
        # byte's symbol, and a merged symbol missing from the vocab, get _UNKNOWN in the cache and
        # the unk id (as v4's slow tokenizer gives, in its tokens the symbol) when encoded.
        self._complete = all(symbol in self._encoder for symbol in self._byte_symbols.values())
        if not self._complete:
            self._unknown_shows_text = True  # its tokens show an unknown symbol itself (`_sequence_tokens`)

    # v4's attributes of its slow tokenizer's vocabulary, read-only here (the BPE caches depend on them).
    @property
    def encoder(self) -> Mapping[str, int]:
        """vocab.json: token -> id, without added tokens."""
        return MappingProxyType(self._encoder)

    @property
    def decoder(self) -> dict[int, str]:
        return dict(enumerate(self._decoder))

    @property
    def bpe_ranks(self) -> Mapping[tuple[str, str], int]:
        """merges.txt: (left, right) -> rank."""
        return MappingProxyType(self._ranks)

    @property
    def byte_encoder(self) -> Mapping[int, str]:
        return MappingProxyType(self._byte_symbols)

    @property
    def byte_decoder(self) -> dict[str, int]:
        return {symbol: byte for byte, symbol in self._byte_symbols.items()}

    def _added_tokens_changed(self) -> None:
        # One alternation per matching pass, longest first, so the regex finds the leftmost-longest
        # token as tokenizers' Aho-Corasick automaton does.
        passes = []
        for normalized in (False, True):
            contents = sorted((t.content for t in self._added.values() if t.normalized == normalized),
                              key=lambda c: (-len(c), c))
            passes.append(regex.compile("|".join(map(regex.escape, contents))) if contents else None)
        self._added_passes = passes
        self._added_first_chars = {t.content[0] for t in self._added.values()}

    # ------------------------------------------------------------------ text -> ids

    def _encode_texts(self, texts, with_offsets, split_special, prefix_space=False):
        encoded = [self._encode_text(text, with_offsets, split_special) for text in texts]
        return encoded if self._complete else [self._unknown_to_unk(*e) for e in encoded]

    def _unknown_to_unk(self, ids, offsets, words):
        """The unk id for each unknown symbol (v4 slow's `encoder.get(token, unk)`); without an unk
        token the symbol is left out (no id to give it)."""
        if _UNKNOWN not in ids:
            return ids, offsets, words
        unk = self.unk_token_id
        if unk is not None:
            return [unk if i == _UNKNOWN else i for i in ids], offsets, words
        keep = [k for k, i in enumerate(ids) if i != _UNKNOWN]
        return ([ids[k] for k in keep], None if offsets is None else [offsets[k] for k in keep],
                None if words is None else [words[k] for k in keep])

    def _sequence_tokens(self, seqs, split, split_special, add_prefix_space=None):
        """With a vocabulary missing symbols, the token strings as v4's slow tokenizer shows them:
        an unknown symbol as itself (else the strings of the ids)."""
        if self._complete:
            return super()._sequence_tokens(seqs, split, split_special, add_prefix_space)
        _, inputs, _, _ = self._engine_inputs(seqs, split, add_prefix_space)
        unk = self.unk_token_id
        tokens = []
        for text in inputs:
            shown = []
            for start, end, token_id in self._split_added(text, split_special):
                if token_id is not None:
                    shown.append(self._added[token_id].content)
                    continue
                for piece in self._pattern.findall(text, start, end):
                    shown += [symbol for symbol in self._bpe_symbols(piece)
                              if symbol in self._encoder or unk is not None]
            tokens.append(shown)
        if not split:
            return tokens
        grouped, position = [], 0
        for words in seqs:
            grouped.append([t for w in range(len(words)) for t in tokens[position + w]])
            position += len(words)
        return grouped

    def _encode_text(self, text: str, with_offsets: bool, split_special: bool):
        if not with_offsets and not any(c in text for c in self._added_first_chars):
            return list(chain.from_iterable(map(self._cache.__getitem__, self._pattern.findall(text)))), None, None
        ids, offsets, words = [], ([] if with_offsets else None), ([] if with_offsets else None)
        for start, end, token_id in self._split_added(text, split_special):
            if token_id is not None:
                ids.append(token_id)
                if with_offsets:
                    offsets.append((start, end))
                    words.append(words[-1] + 1 if words else 0)  # an added token is a word of its own
            elif with_offsets:
                self._bpe_with_offsets(text, start, end, ids, offsets, words)
            else:
                ids += chain.from_iterable(map(self._cache.__getitem__, self._pattern.findall(text, start, end)))
        return ids, offsets, words

    def _split_added(self, text: str, split_special: bool) -> list[tuple[int, int, int | None]]:
        """(start, end, added token id or None for plain text) pieces covering `text`."""
        first_pass, second_pass = self._added_passes
        pieces = self._match_added(text, 0, len(text), first_pass, split_special)
        if second_pass is None:
            return pieces
        return [found for start, end, token_id in pieces
                for found in ([(start, end, token_id)] if token_id is not None
                              else self._match_added(text, start, end, second_pass, split_special))]

    def _match_added(self, text: str, begin: int, stop: int, pattern, split_special: bool):
        """Matches of `pattern` in text[begin:stop], which counts as a whole sentence (as each
        piece does in tokenizers' AddedVocabulary::find_matches), with lstrip/rstrip/single_word."""
        if pattern is None:
            return [(begin, stop, None)]
        pieces, last = [], begin
        for match in pattern.finditer(text, begin, stop):
            start, end = match.span()
            token_id = self._added_ids[match.group()]
            token = self._added[token_id]
            if split_special and token.special:
                continue
            if token.single_word and ((start > begin and _WORD_CHARACTER.match(text[start - 1]))
                                      or (end < stop and _WORD_CHARACTER.match(text[end]))):
                continue
            if token.lstrip:
                new_start = start
                while new_start > begin and text[new_start - 1] in WHITESPACE:
                    new_start -= 1
                start = max(new_start, last)
            if token.rstrip:
                while end < stop and text[end] in WHITESPACE:
                    end += 1
            if last < start:
                pieces.append((last, start, None))
            pieces.append((start, end, token_id))
            last = end
        if last < stop:
            pieces.append((last, stop, None))
        return pieces

    def _bpe_with_offsets(self, text: str, start: int, end: int, ids: list, offsets: list, words: list) -> None:
        """BPE ids of text[start:end], the character span of each (a token that covers part of a
        multi-byte character gets that whole character) and its word: one per pre-token, numbered
        on from the last of `words`, as `tokenizers` numbers its pre-tokenizer's splits."""
        token_bytes, cache = self._token_bytes, self._cache
        word = words[-1] + 1 if words else 0
        for match in self._pattern.finditer(text, start, end):
            piece, position = match.group(), match.start()
            piece_ids = cache[piece]
            ids += piece_ids
            words += [word] * len(piece_ids)
            word += 1
            if not self._complete:  # an unknown symbol's byte count is not that of an id's token
                lengths = [len(symbol) for symbol in self._bpe_symbols(piece)]
            else:
                lengths = [token_bytes[token_id] for token_id in piece_ids]
            if piece.isascii():
                for n in lengths:
                    offsets.append((position, position + n))
                    position += n
                continue
            char_of_byte = [k for k, ch in enumerate(piece) for _ in range(len(ch.encode()))]
            byte = 0
            for n in lengths:
                offsets.append((position + char_of_byte[byte], position + char_of_byte[byte + n - 1] + 1))
                byte += n

    def _bpe(self, piece: str) -> tuple[int, ...]:
        """BPE ids of one pre-token (_UNKNOWN for a symbol missing from the vocabulary)."""
        encoder = self._encoder
        if self._complete:
            return tuple(encoder[symbol] for symbol in self._bpe_symbols(piece))
        return tuple(encoder.get(symbol, _UNKNOWN) for symbol in self._bpe_symbols(piece))

    def _bpe_symbols(self, piece: str) -> list[str]:
        """BPE symbols of one pre-token: merge the lowest-ranked adjacent pair, leftmost first, until none is left.

        One merge per step, as `tokenizers`' priority queue does it; `pair_ranks[i]` is the rank of
        (word[i], word[i + 1]) and only the two pairs next to a merge change.
        """
        ranks = self._ranks
        word = [self._byte_symbols[b] for b in piece.encode("utf-8")]
        pair_ranks = [ranks.get(pair, _NO_RANK) for pair in zip(word, word[1:])]
        while pair_ranks:
            best = min(pair_ranks)
            if best == _NO_RANK:
                break
            i = pair_ranks.index(best)
            word[i:i + 2] = [word[i] + word[i + 1]]
            del pair_ranks[i]
            if i > 0:
                pair_ranks[i - 1] = ranks.get((word[i - 1], word[i]), _NO_RANK)
            if i < len(pair_ranks):
                pair_ranks[i] = ranks.get((word[i], word[i + 1]), _NO_RANK)
        return word
