"""`BatchEncoding`, what a tokenizer call returns: a dict of lists or tensors that also reads as
attributes, and remembers the rows it was built from for v4 fast's per-token accessors."""

from __future__ import annotations

import logging
import operator
import sys
import warnings
from typing import NamedTuple

logger = logging.getLogger(__name__)

TENSOR_TYPES = ("np", "pt", "tf", "jax")


class CharSpan(NamedTuple):
    """Characters [start, end) of the original text (of the word, for pre-split input)."""

    start: int
    end: int


class TokenSpan(NamedTuple):
    """Tokens [start, end) of an encoded row."""

    start: int
    end: int


class TokenSource:
    """What the accessors need besides the rows: the tokenizer (token strings) and the call's inputs,
    re-encoded with offsets and word ids on first use only, so that a call that does not use them
    costs nothing more. `seqs` is None where there was no text (`prepare_for_model`)."""

    __slots__ = ("tokenizer", "seqs", "split", "split_special", "prefix_space", "_encoded", "_tokens")

    def __init__(self, tokenizer, seqs, split: bool, split_special: bool, prefix_space: bool | None):
        self.tokenizer, self.seqs, self.split, self.split_special = tokenizer, seqs, split, split_special
        self.prefix_space = prefix_space  # the call's add_prefix_space
        self._encoded = self._tokens = None

    def tokens(self) -> list[list[str]]:
        """The token strings of every input sequence (`_sequence_tokens`)."""
        if self._tokens is None:
            self._tokens = self.tokenizer._sequence_tokens(self.seqs, self.split, self.split_special, self.prefix_space)
        return self._tokens

    def encoded(self) -> list[tuple] | None:
        """(ids, offsets, words, origin) of every input sequence, as `_encode_sequences` gives them."""
        if self._encoded is None and self.seqs is not None:
            self._encoded = self.tokenizer._encode_sequences(
                self.seqs, self.split, True, self.split_special, self.prefix_space
            )
        return self._encoded


class BatchEncoding(dict):
    """The tokenizers' output: a dict of lists (or tensors) that also reads as attributes.

    Keys: input_ids (B, T), attention_mask (B, T) and, when asked, token_type_ids,
    special_tokens_mask, offset_mapping (B, T, 2), length (B,), overflow_to_sample_mapping (B,),
    labels (B, T') for `text_target`. A single text gives flat lists (T,) unless tensors or
    overflow windows were asked for.

    The per-token accessors of v4's fast BatchEncoding (`tokens`, `word_ids`, `sequence_ids`,
    `token_to_word`, `char_to_token`, `word_to_tokens`, ...) work on the output of both tokenizers,
    with v4's conventions: `f(index)` reads batch item 0, `f(batch_index, index)` any item (an
    overflow window is an item of its own); token indices count the padded row; None where
    nothing corresponds (special tokens, pads, a character no token covers, a word not there).
    Words are v4 fast's: the given words for pre-split input, else the pre-tokens (a word and
    its leading space, a digit run, a symbol run, a whitespace run, an added token), numbered
    from 0 in each text of a pair. Character offsets follow the tokenizer's trim_offsets, and
    index each word for pre-split input, as v4's. Offsets and words are computed on first use (the
    texts are encoded again), so a call that does not use them costs nothing more; pickling
    computes them and leaves the tokenizer and the texts behind.

    Where v4 fails or answers silently, these raise: a batch or token index out of range, a
    negative character or word index (ValueError), a non-int index (TypeError), sequence_index
    1 on a single text (v4 reads the whole row); `word_to_chars` of an absent word is None.

    Internals: `rows` is (list of `padding._Row`, (padded length, padded on the left?) or None);
    `source` a `TokenSource`. A new accessor takes its row with `self._row(batch_index, name)`,
    the row's per-token data, padded as input_ids was, with `self._offsets(b)`, `self._words(b)`,
    `self._tokens(b)`, and pads other per-token lists with `self._padded(values)`.
    """

    def __init__(self, data=None, tensor_type: str | None = None, *, rows=None, source: TokenSource | None = None,
                 fast: bool = True):
        super().__init__(data or {})
        self._rows = rows
        self._source = source
        self._fast = fast and rows is not None
        self._cache = {}  # (what, batch index) -> a padded per-token list
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getitem__(self, key):
        """A key's value; as in v4, an int gives that row's `TokenEncoding` and a slice the rows of every key."""
        if isinstance(key, str):
            return super().__getitem__(key)
        if isinstance(key, int) and not isinstance(key, bool) and self._rows is not None:
            return TokenEncoding(self, self._batch(key, "BatchEncoding[int]"))
        if isinstance(key, slice):
            return {name: value[key] for name, value in self.items()}
        return super().__getitem__(key)

    def __getattr__(self, name):
        if name.startswith("_") or name not in self:
            raise AttributeError(f"BatchEncoding has no attribute or key {name!r}")
        return self[name]

    def __getstate__(self):
        # The accessors' data goes along, computed now, rather than the tokenizer and the texts.
        if self._rows is not None and self._source is not None:
            for b in range(len(self._rows[0])):
                self._tokens(b)
                if self._source.seqs is not None or self._rows[0][b].words is not None:
                    self._words(b)
                if self._source.seqs is not None or self._rows[0][b].offsets is not None:
                    self._offsets(b)
        return {"data": dict(self), "rows": self._rows, "cache": self._cache, "fast": self._fast}

    def __setstate__(self, state):
        self.update(state["data"])
        self._rows = state["rows"]
        self._fast = state.get("fast", self._rows is not None)
        self._source = None
        self._cache = state.get("cache", {})

    @property
    def data(self) -> dict:
        return dict(self)

    # ------------------------------------------------------------------ v4 fast accessors

    @property
    def is_fast(self) -> bool:
        """Whether a fast tokenizer's call made it, as v4 reports it: False for the slow tokenizer's
        output, `prepare_for_model`'s and `pad()`'s (the accessors still work on the slow
        tokenizer's and `prepare_for_model`'s output, which v4 does not offer)."""
        return self._fast

    @property
    def n_sequences(self) -> int | None:
        """1 for single texts, 2 for pairs (as batch item 0 has it), None when unknown."""
        if self._rows is None or not self._rows[0]:
            return None
        return 1 if self._rows[0][0].n2 is None else 2

    @property
    def encodings(self) -> list[TokenEncoding] | None:
        """One `TokenEncoding` per row (v4: the `tokenizers.Encoding` of each); None where v4 has
        none (not `is_fast`)."""
        if not self._fast:
            return None
        return [TokenEncoding(self, b) for b in range(len(self._rows[0]))]

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of row `batch_index` ('<s>', 'ĠHello', ..., '<pad>')."""
        return list(self._tokens(self._batch(batch_index, "tokens")))

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """The word each token of row `batch_index` came from (None for special tokens and pads)."""
        return list(self._words(self._batch(batch_index, "word_ids")))

    def words(self, batch_index: int = 0) -> list[int | None]:
        """Deprecated in v4 for `word_ids` (same result)."""
        warnings.warn("BatchEncoding.words() is deprecated (as in v4); use word_ids()", FutureWarning, stacklevel=2)
        return self.word_ids(batch_index)

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0 for tokens of the first text, 1 for the second, None for special tokens and pads."""
        return list(self._sequence_ids(self._batch(batch_index, "sequence_ids")))

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """Which text of the pair (0 or 1) a token belongs to; None for special tokens and pads."""
        b, t = self._batch_and_token(batch_or_token_index, token_index, "token_to_sequence")
        return self._sequence_ids(b)[t]

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """The word a token belongs to (within its text); None for special tokens and pads."""
        b, t = self._batch_and_token(batch_or_token_index, token_index, "token_to_word")
        return self._words(b)[t]

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        """The characters a token covers in its text (its word, for pre-split input); None for
        special tokens and pads."""
        b, t = self._batch_and_token(batch_or_token_index, token_index, "token_to_chars")
        if self._sequence_ids(b)[t] is None:
            return None
        return CharSpan(*self._offsets(b)[t])

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None,
                      sequence_index: int = 0) -> int | None:
        """The first token of text `sequence_index` that covers a character; None if none does
        (a space that trim_offsets leaves out of every token, a character past the end)."""
        b, c = self._batch_and_other(batch_or_char_index, char_index, "char_index", "char_to_token")
        return self._char_to_token(b, c, self._sequence(b, sequence_index))

    def char_to_word(self, batch_or_char_index: int, char_index: int | None = None,
                     sequence_index: int = 0) -> int | None:
        """The word of the token that covers a character (see `char_to_token`); None if none does."""
        b, c = self._batch_and_other(batch_or_char_index, char_index, "char_index", "char_to_word")
        token = self._char_to_token(b, c, self._sequence(b, sequence_index))
        return None if token is None else self._words(b)[token]

    def word_to_tokens(self, batch_or_word_index: int, word_index: int | None = None,
                       sequence_index: int = 0) -> TokenSpan | None:
        """The tokens [start, end) of a word of text `sequence_index`; None if the row has no token of it."""
        b, w = self._batch_and_other(batch_or_word_index, word_index, "word_index", "word_to_tokens")
        return self._word_to_tokens(b, w, self._sequence(b, sequence_index))

    def word_to_chars(self, batch_or_word_index: int, word_index: int | None = None,
                      sequence_index: int = 0) -> CharSpan | None:
        """The characters of a word of text `sequence_index` (first token's start, last token's end);
        None if the row has no token of it (v4 raises a TypeError there)."""
        b, w = self._batch_and_other(batch_or_word_index, word_index, "word_index", "word_to_chars")
        span = self._word_to_tokens(b, w, self._sequence(b, sequence_index))
        if span is None:
            return None
        offsets = self._offsets(b)
        return CharSpan(offsets[span.start][0], offsets[span.end - 1][1])

    # ------------------------------------------------------------------ accessor internals

    def _char_to_token(self, b: int, char: int, sequence: int) -> int | None:
        def make():  # character -> the first token of the text that covers it (tokens of one character may overlap)
            found = {}
            for t, (s, (start, end)) in enumerate(zip(self._sequence_ids(b), self._offsets(b))):
                if s == sequence:
                    for c in range(start, end):
                        found.setdefault(c, t)
            return found
        return self._cached(f"char_to_token{sequence}", b, make).get(char)

    def _word_to_tokens(self, b: int, word: int, sequence: int) -> TokenSpan | None:
        def make():  # word -> (its first token, one past its last) in the text
            found = {}
            for t, (s, w) in enumerate(zip(self._sequence_ids(b), self._words(b))):
                if s == sequence and w is not None:
                    found[w] = (found.get(w, (t,))[0], t + 1)
            return found
        span = self._cached(f"word_to_tokens{sequence}", b, make).get(word)
        return None if span is None else TokenSpan(*span)

    def _batch(self, batch_index, what: str) -> int:
        """`batch_index` checked (negative counts from the end) and the rows present."""
        rows = self._check_rows(what)
        return _checked_index(batch_index, "batch_index", len(rows), what)

    def _batch_and_token(self, first, token_index, what: str) -> tuple[int, int]:
        b, t = (0, first) if token_index is None else (first, token_index)
        b = self._batch(b, what)
        return b, _checked_index(t, "token_index", len(self._sequence_ids(b)), what)

    def _batch_and_other(self, first, other, name: str, what: str) -> tuple[int, int]:
        """(batch index, char or word index): v4's `f(index)` / `f(batch_index, index)`."""
        b, i = (0, first) if other is None else (first, other)
        b = self._batch(b, what)
        i = _as_int(i, name, what)
        if i < 0:
            raise ValueError(f"{what}: {name} must be >= 0, got {i}")
        return b, i

    def _sequence(self, b: int, sequence_index) -> int:
        sequence_index = _as_int(sequence_index, "sequence_index", "")
        count = 1 if self._rows[0][b].n2 is None else 2
        if not 0 <= sequence_index < count:
            raise ValueError(f"sequence_index must be in [0, {count}) for batch item {b} "
                             f"({'a pair' if count == 2 else 'a single text'}), got {sequence_index}")
        return sequence_index

    def _check_rows(self, what: str) -> list:
        if self._rows is None:
            raise ValueError(f"{what}() is only available on the output of a tokenizer call")
        return self._rows[0]

    def _row(self, batch_index: int, what: str):
        """Row `batch_index` as the tokenizer built it (before padding); `what` names the accessor in errors."""
        return self._rows[0][self._batch(batch_index, what)]

    def _padded(self, values: list, filler=None) -> list:
        """A per-token list of one row padded as input_ids was (`filler` at the pads)."""
        if self._rows[1] is None:
            return list(values)
        target, left = self._rows[1]
        return _pad_rows([list(values)], target, filler, left)[0]

    def _cached(self, what: str, b: int, make) -> list:
        key = (what, b)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _sequence_ids(self, b: int) -> list:
        return self._cached("sequence_ids", b, lambda: self._padded(self._rows[0][b].sequence_ids()))

    def _tokens(self, b: int) -> list[str]:
        def make():
            if self._source is None:
                raise ValueError("tokens() needs the tokenizer: this encoding was unpickled without them")
            tokenizer, row = self._source.tokenizer, self._rows[0][b]
            stripping = {i for i, t in tokenizer.added_tokens_decoder.items() if t.lstrip or t.rstrip}
            if getattr(tokenizer, "_unknown_shows_text", False) and tokenizer.unk_token_id is not None:
                stripping.add(tokenizer.unk_token_id)
            if self._source.seqs is None or not stripping.intersection(row.ids):
                return self._padded(tokenizer.convert_ids_to_tokens(row.ids), tokenizer.pad_token)
            # An added token that strips whitespace may show it (v4 fast), and a SentencePiece tokenizer's
            # unknown piece shows its own text (v4 slow and fast; `_unknown_shows_text`): their strings
            # in the texts' tokens.
            strings = self._source.tokens()
            parts = [None if origin is None else strings[origin[0]][origin[1]:origin[1] + n]
                     for origin, n in zip(row.origin, (row.n1, row.n2))]
            shown = row.around(parts[0], parts[1], None)
            tokens = [shown[t] if i in stripping else token
                      for t, (i, token) in enumerate(zip(row.ids, tokenizer.convert_ids_to_tokens(row.ids)))]
            return self._padded(tokens, tokenizer.pad_token)
        return self._cached("tokens", b, make)

    def _words(self, b: int) -> list:
        def make():
            row = self._rows[0][b]
            if row.words is not None:
                return self._padded(row.words)
            if self._source is None or self._source.seqs is None:
                return [None] * len(self._sequence_ids(b))  # token ids without text: no words (v4's slow path)
            return self._padded(self._reencoded(b, 2, None))
        return self._cached("words", b, make)

    def _offsets(self, b: int) -> list:
        def make():
            row = self._rows[0][b]
            if row.offsets is not None:
                return self._padded(row.offsets, (0, 0))
            if self._source is None or self._source.seqs is None:
                raise ValueError("character offsets are only available for text input (not prepare_for_model ids)")
            return self._padded(self._reencoded(b, 1, (0, 0)), (0, 0))
        return self._cached("offsets", b, make)

    def _reencoded(self, b: int, field: int, filler) -> list:
        """Field 1 (offsets) or 2 (words) of row `b`, from the inputs encoded again with offsets."""
        row, encoded = self._rows[0][b], self._source.encoded()
        where = (1, 3 + row.n1) if row.special else (0, row.n1)  # where a and b start in the row
        parts = []
        for origin, n, at in zip(row.origin, (row.n1, row.n2), where):
            if origin is None:  # no second text
                parts.append(None)
                continue
            k, start = origin
            again = encoded[k]
            # The tokenizer may have changed since the call (added tokens, options): then the texts
            # no longer give the ids of this row, and their offsets would not describe it.
            if again[0][start:start + n] != row.ids[at:at + n]:
                raise ValueError("the tokenizer changed since this encoding was made (its texts now give other "
                                 "ids); encode them again to use the accessors")
            parts.append(again[field][start:start + n])
        return row.around(parts[0], parts[1], filler)

    def convert_to_tensors(self, tensor_type: str) -> BatchEncoding:
        """Turn every value into a tensor of `tensor_type` ('np', 'pt', 'tf', 'jax'), importing it only now:
        int64, except int32 for TensorFlow (v4's `tf.constant` of Python ints) and JAX (its default)."""
        if tensor_type not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be one of {TENSOR_TYPES} or None, got {tensor_type!r}")
        import numpy as np

        convert = _tensor_converter(tensor_type)
        for key, value in self.items():
            if isinstance(value, list) and value and isinstance(value[0], list) and len({len(row) for row in value}) > 1:
                raise ValueError(
                    f"cannot make a tensor of {key!r}: its rows have different lengths "
                    f"({sorted({len(row) for row in value})[:5]}...); pass padding=True or padding='max_length'")
            self[key] = convert(np.asarray(value, dtype=np.int32 if tensor_type == "tf" else np.int64))
        return self

    def to(self, device, *, non_blocking: bool = False) -> BatchEncoding:
        """Move PyTorch tensors to `device` (a str, an int or a `torch.device`), as v4 does; other values
        are left as they are. Anything else (a dtype such as `torch.float16`, which code that casts every
        input of a module passes) is refused as v4 refuses it: a warning is logged and nothing changes,
        so that the token ids are never cast to floats."""
        torch = sys.modules.get("torch")  # a torch.device can only exist once torch is imported
        if not (isinstance(device, (str, int)) or (torch is not None and isinstance(device, torch.device))):
            logger.warning(f"Attempting to cast a BatchEncoding to type {device}. This is not supported.")
            return self
        for key, value in self.items():
            if hasattr(value, "to") and callable(value.to):
                self[key] = value.to(device, non_blocking=True) if non_blocking else value.to(device)
        return self

    def copy(self) -> BatchEncoding:
        """A shallow copy that is a BatchEncoding still (v4's, a UserDict, copies as its own class), with
        the accessors' rows; the values are the same objects, as `dict.copy` gives them."""
        copied = BatchEncoding(dict(self), rows=self._rows, source=self._source, fast=self._fast)
        copied._cache = dict(self._cache)
        return copied

    __copy__ = copy


def _tensor_converter(tensor_type: str):
    if tensor_type == "np":
        return lambda array: array
    if tensor_type == "pt":
        import torch

        return torch.from_numpy
    if tensor_type == "tf":
        import tensorflow as tf

        return tf.convert_to_tensor
    import jax.numpy as jnp

    return jnp.asarray


def to_python(value):
    """Python lists and numbers from NumPy arrays and PyTorch, JAX or TensorFlow tensors (duck typed,
    no framework imported: `.tolist()`, or `.numpy()` for TensorFlow's, which have no `.tolist()`),
    as v4's `to_py_obj`; also inside lists and tuples (a list of 1-D tensors, of scalar tensors). A
    list or tuple with nothing to convert is returned as it is (offsets stay tuples)."""
    if isinstance(value, (list, tuple)):
        if not any(not isinstance(v, (int, float, str)) and (isinstance(v, (list, tuple)) or hasattr(v, "tolist")
                                                             or hasattr(v, "numpy")) for v in value):
            return value
        converted = [to_python(v) for v in value]
        return value if all(c is v for c, v in zip(converted, value)) else converted
    if isinstance(value, (str, bytes, int, float)) or value is None:
        return value
    if not hasattr(value, "tolist") and hasattr(value, "numpy"):  # TensorFlow
        value = value.numpy()
    return value.tolist() if hasattr(value, "tolist") else value


def _pad_rows(rows: list[list], target: int, value, left: bool) -> list[list]:
    if left:
        return [[value] * (target - len(r)) + r if len(r) < target else r for r in rows]
    return [r + [value] * (target - len(r)) if len(r) < target else r for r in rows]


def _as_int(value, name: str, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what + ': ' if what else ''}{name} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what + ': ' if what else ''}{name} must be an int, got {type(value).__name__}") from None


def _checked_index(value, name: str, size: int, what: str) -> int:
    """An index into `size` items, negative ones counting from the end (as Python's)."""
    value = _as_int(value, name, what)
    if not -size <= value < size:
        raise ValueError(f"{what}: {name} must be in [{-size}, {size}), got {value}")
    return value + size if value < 0 else value


class TokenEncoding:
    """One row of a BatchEncoding as v4's `tokenizers.Encoding` shows it: ids, tokens, offsets,
    word_ids, sequence_ids, masks (lists of the padded row's length, T)."""

    def __init__(self, batch: BatchEncoding, batch_index: int):
        self._batch, self._index = batch, batch_index

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"TokenEncoding(num_tokens={len(self)})"

    @property
    def ids(self) -> list[int]:
        ids = self._batch["input_ids"]
        ids = ids.numpy() if not hasattr(ids, "tolist") and hasattr(ids, "numpy") else ids  # TensorFlow
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        return list(ids[self._index] if ids and isinstance(ids[0], list) else ids)

    @property
    def tokens(self) -> list[str]:
        return self._batch.tokens(self._index)

    @property
    def offsets(self) -> list[tuple[int, int]]:
        return list(self._batch._offsets(self._index))

    @property
    def word_ids(self) -> list[int | None]:
        return self._batch.word_ids(self._index)

    words = word_ids

    @property
    def sequence_ids(self) -> list[int | None]:
        return self._batch.sequence_ids(self._index)

    @property
    def type_ids(self) -> list[int]:
        return [0] * len(self)  # RoBERTa has one token type

    @property
    def attention_mask(self) -> list[int]:
        return self._batch._padded([1] * len(self._batch._rows[0][self._index].ids), 0)

    @property
    def special_tokens_mask(self) -> list[int]:
        return self._batch._padded(self._batch._rows[0][self._index].special_mask(), 1)

    @property
    def n_sequences(self) -> int:
        return 1 if self._batch._rows[0][self._index].n2 is None else 2

    @property
    def overflowing(self) -> list:
        return []  # overflow windows are rows of their own here (v4 flattens them the same way)

    # The `tokenizers.Encoding` accessors that v4's pipelines call on `encodings[i]` (the
    # question-answering pipeline maps its answer span to words with them): the row's
    # BatchEncoding accessors, with plain tuples, and None for an index past the end as
    # `tokenizers` gives.
    def token_to_sequence(self, token_index: int) -> int | None:
        return self._token(token_index, self._batch.token_to_sequence)

    def token_to_word(self, token_index: int) -> int | None:
        return self._token(token_index, self._batch.token_to_word)

    def token_to_chars(self, token_index: int) -> tuple[int, int] | None:
        return _plain(self._token(token_index, self._batch.token_to_chars))

    def word_to_tokens(self, word_index: int, sequence_index: int = 0) -> tuple[int, int] | None:
        return _plain(self._batch.word_to_tokens(self._index, word_index, sequence_index))

    def word_to_chars(self, word_index: int, sequence_index: int = 0) -> tuple[int, int] | None:
        return _plain(self._batch.word_to_chars(self._index, word_index, sequence_index))

    def char_to_token(self, char_pos: int, sequence_index: int = 0) -> int | None:
        return self._batch.char_to_token(self._index, char_pos, sequence_index)

    def char_to_word(self, char_pos: int, sequence_index: int = 0) -> int | None:
        return self._batch.char_to_word(self._index, char_pos, sequence_index)

    def _token(self, token_index: int, accessor):
        index = _as_int(token_index, "token_index", "TokenEncoding")
        if index < 0:
            raise ValueError(f"TokenEncoding: token_index must be in [0, {len(self)}), got {index}")
        return accessor(self._index, index) if index < len(self) else None


def _plain(span: tuple | None) -> tuple[int, int] | None:
    return None if span is None else tuple(span)
