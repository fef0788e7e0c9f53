"""GPT-2's byte-level BPE text rules, shared by both RoBERTa tokenizers: how a text is split into
pre-tokens, the byte <-> symbol table of token strings, the whitespace set added tokens strip,
and where a long text may be cut into pieces that encode to the same ids as the whole.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

import regex

# GPT-2's pre-tokenization: contractions, letters, digits, other symbols, whitespace runs (the run
# before a word leaves its last space to the word). {L}, {N}, {S} are letter, digit and whitespace
# classes: `regex`'s \p{L}, \p{N}, \s in the slow tokenizer, the same sets spelled out as code
# point ranges for the Oniguruma engine inside `tokenizers` (see tokenization_fast.py).
PRETOKENIZE_TEMPLATE = (
    r"'(?:[sdmt]|ll|ve|re)| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+"
)
SLOW_CLASSES = {"L": r"\p{L}", "N": r"\p{N}", "S": r"\s"}


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table: a token string is a string of these characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)  # control bytes and spaces move past Latin-1
            shift += 1
    return table


# Byte-level symbol -> its byte; other Latin-1 characters -> U+FFFF so that encoding them fails.
_SYMBOL_TO_BYTE = {**{b: 0xFFFF for b in range(256)}, **{ord(c): b for b, c in bytes_to_unicode().items()}}


def symbols_to_bytes(token: str) -> bytes:
    """The bytes a byte-level token string stands for; a string with other characters is taken as
    UTF-8 text, as the `tokenizers` ByteLevel decoder does."""
    try:
        return token.translate(_SYMBOL_TO_BYTE).encode("latin-1")
    except UnicodeEncodeError:
        return token.encode()


# Unicode White_Space, which is both `regex`'s \s and Rust's char::is_whitespace (tokenizers strips
# it around lstrip/rstrip added tokens). str.isspace would add U+001C..U+001F.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if regex.match(r"\s", c))


_SURROGATE = regex.compile("[\ud800-\udfff]")


def surrogate_error(texts) -> ValueError | None:
    """The error for the first lone surrogate among `texts`, or None. A str can hold one (from
    `bytes.decode(errors='surrogateescape')` or JSON '\\ud800'); it has no UTF-8 bytes to tokenize."""
    for text in texts:
        found = _SURROGATE.search(text)
        if found:
            at = found.start()
            return ValueError(
                f"text has a lone surrogate U+{ord(found.group()):04X} at character {at} of "
                f"{text[max(at - 20, 0):at + 20]!r}; a text must be valid Unicode (surrogates U+D800..U+DFFF "
                "have no UTF-8 form: decode bytes with errors='replace' rather than 'surrogateescape')")
    return None


# Places where GPT-2's pattern always ends one pre-token and starts the next, whatever follows or
# precedes: before whitespace that follows a non-space (no pre-token holds a non-space followed by
# a space; the space before a word belongs to the word, so the cut goes before it), and between a
# letter, a digit and another symbol next to each other (an apostrophe excepted, which may start
# a contraction: "'s"). No alternative of the pattern looks behind, and none that can end before
# such a place looks ahead across it, so the text before and the text after split exactly as the
# whole does.
_CUT_PATTERN = (
    r"(?<=\S)(?=\s)|(?<=\p{L})(?=[^\s\p{L}])|(?<=\p{N})(?=[^\s\p{N}])|(?<=[^\s\p{L}\p{N}'])(?=[\p{L}\p{N}])"
)
_CUT = regex.compile(_CUT_PATTERN)
_LAST_CUT = regex.compile(_CUT_PATTERN, flags=regex.REVERSE)  # matches from the end backwards


def chunk_spans(text: str, size: int, added_tokens: Iterable[str] = (), cuts=None) -> list[tuple[int, int]]:
    """(start, end) spans covering `text`, each at most `size` characters where the text allows it,
    cut only where the pieces tokenize to exactly the ids and (shifted) offsets of the whole.

    A cut goes at the last safe place in the second half of each `size` window (the first one
    after it, where the window has none: a piece may then be longer). Besides the pattern's safe
    places (`_CUT`, or `cuts`: a (forward, REVERSE) pair of compiled patterns another tokenizer's
    pre-tokenizer allows), a cut must not touch an occurrence of an added token (`added_tokens`, their
    contents): it would split it, or change what its lstrip/rstrip/single_word rules see.
    """
    contents = [c for c in added_tokens if c]
    forward, backward = cuts or (_CUT, _LAST_CUT)
    spans, start, n = [], 0, len(text)
    while n - start > size:
        low, high = start + max(size // 2, 1), start + size
        cut = _safe_cut(text, contents, low - 1, high + 1, backward)
        if cut is None:
            cut = _safe_cut(text, contents, high, n, forward)
        if cut is None:
            break
        spans.append((start, cut))
        start = cut
    spans.append((start, n))
    return spans


def _safe_cut(text: str, contents: list[str], low: int, high: int, pattern) -> int | None:
    """The first position in (low, high) that `pattern` finds (the last one for a REVERSE pattern)
    where no added token touches."""
    for match in pattern.finditer(text, low, high):
        cut = match.start()
        if low < cut < high and not _touches_added_token(text, cut, contents):
            return cut
    return None


def _touches_added_token(text: str, cut: int, contents: list[str]) -> bool:
    """Whether an occurrence [s, e) of one of `contents` has s <= cut <= e."""
    for content in contents:
        # An occurrence that fits in text[cut - m:cut + m] starts at or before the cut and ends at or after it.
        if text.find(content, max(cut - len(content), 0), cut + len(content)) != -1:
            return True
    return False
