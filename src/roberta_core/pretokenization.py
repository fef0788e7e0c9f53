"""GPT-2's byte-level BPE text rules, shared by both RoBERTa tokenizers: how a text is split into
pre-tokens, the byte <-> symbol table of token strings, the whitespace set added tokens strip,
and where a long text may be cut into pieces that encode to the same ids as the whole.
"""

from __future__ import annotations

from functools import lru_cache

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
