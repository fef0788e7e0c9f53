"""RoBERTa's pretraining data, NumPy only (Liu et al., 2019, §3.1 and §4.2): text documents ->
sentences -> token ids -> packed sequences -> a token file on disk -> batches whose masks are
drawn afresh every time a sequence is served.

Every stage streams: documents are read line by line, packed sequences are appended to the
token file as they come, and batches read that file through a memory map, so no stage holds
the corpus in memory. A batch is a dict of int64 NumPy arrays (B, T) that every backend takes
as is: `input_ids`, `attention_mask` and `labels` (-100 where nothing is predicted).
"""

from __future__ import annotations

import functools
import json
import os
import re
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .fileio import atomic_dir
from .validation import IGNORE_INDEX

__all__ = [
    "FULL_SENTENCES",
    "DOC_SENTENCES",
    "PACKINGS",
    "read_documents",
    "split_sentences",
    "encode_documents",
    "pack_sentences",
    "write_token_file",
    "TokenFile",
    "mask_tokens",
    "MaskedLMBatches",
    "split_batch",
    "unigram_counts",
]

FULL_SENTENCES = "full-sentences"  # packed across document boundaries, one extra </s> between documents
DOC_SENTENCES = "doc-sentences"  # never crossing a document boundary; batches vary in size instead
PACKINGS = (FULL_SENTENCES, DOC_SENTENCES)


# ---------------------------------------------------------------------------------------------
# 1. Documents and sentences


def read_documents(paths: Iterable[str | os.PathLike], max_chars: int = 1 << 20) -> Iterator[str]:
    """Documents from UTF-8 text files, one after another: blank lines separate documents
    (the layout BERT and fairseq use). A document longer than `max_chars` is served in parts
    of about that size, cut at line ends, so a file of any size streams in bounded memory."""
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"corpus file {path} does not exist or is not a file")
        lines: list[str] = []
        size = 0
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    lines.append(line.rstrip("\n"))
                    size += len(line)
                if lines and (not line.strip() or size >= max_chars):
                    yield "\n".join(lines)
                    lines, size = [], 0
        if lines:
            yield "\n".join(lines)


# A sentence ends after . ! or ? before whitespace; a blank line ends one too. The split keeps
# the whitespace at the start of the next sentence, so "".join(sentences) == text and the
# byte-level tokenizer sees the same spaces it would see in the whole text.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])(?=\s)|(?=\n[^\S\n]*\n)")


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, lossless: their concatenation is `text`."""
    if not isinstance(text, str):
        raise TypeError(f"a document must be a str, got {type(text).__name__}")
    return [s for s in _SENTENCE_BREAK.split(text) if s]


def encode_documents(
    documents: Iterable[str], encode: Callable[[list[str]], list[list[int]]], chunk: int = 256
) -> Iterator[list[np.ndarray]]:
    """Each document as a list of sentences of token ids (no special tokens), for `pack_sentences`.

    `encode` maps a list of strings to their ids (e.g. a fast tokenizer called with
    `add_special_tokens=False`); documents are sent `chunk` at a time so it can batch.
    Sentences that encode to nothing and documents left empty are dropped.
    """
    documents = iter(documents)
    while block := list(islice(documents, chunk)):
        sentences = [split_sentences(doc) for doc in block]
        flat = [s for doc in sentences for s in doc]
        ids = iter(encode(flat)) if flat else iter(())
        for doc in sentences:
            encoded = [np.asarray(next(ids), dtype=np.int64) for _ in doc]
            encoded = [s for s in encoded if s.size]
            if encoded:
                yield encoded


# ---------------------------------------------------------------------------------------------
# 2. Packing (the paper's §4.2)


def _check_packing(max_len: int, mode: str) -> None:
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)):
        raise TypeError(f"max_len must be an integer, got {max_len!r}")
    if max_len < 3:
        raise ValueError(f"max_len must be >= 3 (<s>, one token, </s>), got {max_len}")
    if mode not in PACKINGS:
        raise ValueError(f"unknown packing {mode!r}; choose one of {', '.join(PACKINGS)}")


def pack_sentences(
    documents: Iterable[Sequence[Sequence[int]]],
    max_len: int,
    *,
    bos_id: int,
    eos_id: int,
    mode: str = FULL_SENTENCES,
) -> Iterator[np.ndarray]:
    """Pack whole sentences into sequences `<s> ... </s>` of at most `max_len` tokens.

    FULL-SENTENCES fills each sequence with contiguous sentences and crosses into the next
    document, putting one extra `</s>` between the two documents; DOC-SENTENCES ends a sequence
    at every document's end. A sentence longer than a whole sequence is cut into pieces that
    fill one each; no token is lost or repeated. Yields int64 arrays of length <= max_len.
    """
    _check_packing(max_len, mode)
    room = max_len - 2  # <s> and the closing </s>
    parts: list[np.ndarray] = []
    used = 0

    def emit() -> np.ndarray:
        return np.concatenate([[bos_id], *parts, [eos_id]]).astype(np.int64)

    for doc in documents:
        new_doc = True
        for sentence in doc:
            sentence = np.asarray(sentence, dtype=np.int64).reshape(-1)
            for start in range(0, sentence.size, room):
                piece = sentence[start : start + room]
                sep = mode == FULL_SENTENCES and new_doc and used > 0
                if used + sep + piece.size > room:
                    yield emit()
                    parts, used, sep = [], 0, False
                if sep:
                    parts.append(np.array([eos_id], dtype=np.int64))
                parts.append(piece)
                used += sep + piece.size
                new_doc = False
        if mode == DOC_SENTENCES and used:
            yield emit()
            parts, used = [], 0
    if used:
        yield emit()


# ---------------------------------------------------------------------------------------------
# 3. The token file: packed sequences on disk, read through a memory map

_META = "meta.json"
_IDS = "ids.bin"
_OFFSETS = "offsets.npy"


def write_token_file(sequences: Iterable[Sequence[int]], directory: str | os.PathLike, *, vocab_size: int) -> "TokenFile":
    """Append `sequences` to a new token file (a directory) as they come, then publish it
    atomically (`fileio.atomic_dir`): a failed or interrupted write leaves nothing at `directory`."""
    directory = Path(directory)
    if directory.exists():
        raise FileExistsError(f"token file {directory} exists already")
    dtype = np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)
    with atomic_dir(directory) as tmp:
        offsets = [0]
        with open(tmp / _IDS, "wb") as f:
            for seq in sequences:
                seq = np.asarray(seq)
                if seq.size and (seq.min() < 0 or seq.max() >= vocab_size):
                    raise ValueError(f"token ids must be in 0..{vocab_size - 1}; got {seq.min()}..{seq.max()}")
                f.write(seq.astype(dtype).tobytes())
                offsets.append(offsets[-1] + seq.size)
        np.save(tmp / _OFFSETS, np.asarray(offsets, dtype=np.int64))
        (tmp / _META).write_text(json.dumps({"dtype": dtype.name, "vocab_size": vocab_size}))
    return TokenFile(directory)


class TokenFile:
    """Packed sequences on disk, indexable like a list of int64 arrays; `lengths` (N,)."""

    def __init__(self, directory: str | os.PathLike):
        directory = Path(directory)
        if not (directory / _META).is_file():
            raise FileNotFoundError(f"{directory} is not a token file (no {_META})")
        meta = json.loads((directory / _META).read_text())
        self.directory = directory
        self.vocab_size = int(meta["vocab_size"])
        self.offsets = np.load(directory / _OFFSETS)
        self.lengths = np.diff(self.offsets)
        size = int(self.offsets[-1])
        # np.memmap refuses empty files; an empty token file has no ids to map
        self._ids = np.memmap(directory / _IDS, dtype=meta["dtype"], mode="r") if size else np.zeros(0, np.uint16)

    def __len__(self) -> int:
        return self.lengths.size

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range 0..{len(self) - 1}")
        i %= len(self)
        return self._ids[self.offsets[i] : self.offsets[i + 1]].astype(np.int64)

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    def chunks(self, size: int = 1 << 22) -> Iterator[np.ndarray]:
        """All ids in order, `size` at a time (for statistics over files of any size)."""
        for start in range(0, self.num_tokens, size):
            yield np.asarray(self._ids[start : start + size])


# ---------------------------------------------------------------------------------------------
# 4. Dynamic masking (BERT's 80/10/10, drawn anew each time, the paper's §4.1)


def mask_tokens(
    input_ids: np.ndarray,
    rng: np.random.Generator,
    *,
    mask_token_id: int,
    special_ids: Sequence[int],
    vocab_size: int,
    mlm_probability: float = 0.15,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose each non-special token with probability `mlm_probability`; of those, 80% become
    `<mask>`, 10% a random non-special token, 10% stay. Returns (masked ids, labels), both the
    shape of `input_ids`; labels hold the original id where chosen and -100 elsewhere."""
    ids = np.asarray(input_ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"input_ids must be integers, got dtype {ids.dtype}")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    special = tuple(sorted(set(int(s) for s in special_ids)))
    candidates = _replacements(int(vocab_size), special)
    chosen = (rng.random(ids.shape) < mlm_probability) & ~np.isin(ids, special)
    action = rng.random(ids.shape)
    random_ids = candidates[rng.integers(candidates.size, size=ids.shape)]
    masked = np.where(chosen & (action < 0.8), mask_token_id, ids)
    masked = np.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, masked)
    labels = np.where(chosen, ids, IGNORE_INDEX)
    return masked.astype(np.int64), labels.astype(np.int64)


@functools.lru_cache(maxsize=8)
def _replacements(vocab_size: int, special: tuple[int, ...]) -> np.ndarray:
    """The ids a random replacement may take: every non-special id."""
    candidates = np.setdiff1d(np.arange(vocab_size), np.asarray(special, dtype=np.int64))
    if candidates.size == 0:
        raise ValueError(f"a vocabulary of {vocab_size} ids has no non-special token to mask")
    return candidates


# ---------------------------------------------------------------------------------------------
# 5. Batches


class MaskedLMBatches:
    """Masked-LM batches over packed `sequences` (a TokenFile or a list of arrays), epoch after
    epoch, each epoch in its own seeded order.

    FULL-SENTENCES batches hold `batch_tokens // max_len` sequences padded to `max_len`.
    DOC-SENTENCES sequences vary in length, so a batch takes as many as fit `batch_tokens`
    once padded to its longest (multiple of 8): the tokens per batch stay about constant.

    The mask of a sequence is drawn from (seed, epoch, index): each serving gets a fresh mask,
    the same one whatever the batch size, worker count or resumption point.
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray],
        *,
        batch_tokens: int,
        max_len: int,
        pad_id: int,
        mask_token_id: int,
        special_ids: Sequence[int],
        vocab_size: int,
        mode: str = FULL_SENTENCES,
        seed: int = 0,
        shuffle: bool = True,
        mlm_probability: float = 0.15,
    ):
        _check_packing(max_len, mode)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        lengths = getattr(sequences, "lengths", None)  # a TokenFile knows them without reading
        self.lengths = np.asarray(lengths if lengths is not None else [len(s) for s in sequences], dtype=np.int64)
        if self.lengths.size == 0 or self.lengths.sum() == 0:
            raise ValueError("the corpus is empty: no sequence to train on")
        if self.lengths.max() > max_len:
            raise ValueError(f"a sequence holds {self.lengths.max()} tokens, more than max_len={max_len}")
        if isinstance(batch_tokens, bool) or not isinstance(batch_tokens, (int, np.integer)) or batch_tokens < max_len:
            raise ValueError(
                f"batch_tokens={batch_tokens!r} cannot fit one sequence of max_len={max_len}; "
                f"use batch_tokens >= {max_len}"
            )
        self.sequences = sequences
        self.batch_tokens, self.max_len, self.mode = int(batch_tokens), int(max_len), mode
        self.pad_id, self.seed, self.shuffle = pad_id, int(seed), shuffle
        self._mask = dict(
            mask_token_id=mask_token_id, special_ids=special_ids, vocab_size=vocab_size, mlm_probability=mlm_probability
        )

    @property
    def rows(self) -> int:
        """Sequences per FULL-SENTENCES batch."""
        return self.batch_tokens // self.max_len

    @property
    def max_batch_tokens(self) -> int:
        """The most tokens a training batch may take: every sequence once, padded to max_len.
        A larger batch would serve sequences twice in one update, and its size would be bounded
        by nothing the corpus holds (a typo of 1e13 would fill memory)."""
        return int(self.lengths.size) * self.max_len

    def order(self, epoch: int) -> np.ndarray:
        """The indices of the sequences in the order epoch `epoch` serves them."""
        n = self.lengths.size
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def _items(self, first_epoch: int, last_epoch: int | None) -> Iterator[tuple[int, int]]:
        epoch = first_epoch
        while last_epoch is None or epoch <= last_epoch:
            for i in self.order(epoch):
                yield epoch, int(i)
            epoch += 1

    def _groups(self, items: Iterator[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
        if self.mode == FULL_SENTENCES:
            while group := list(islice(items, self.rows)):
                yield group
            return
        group: list[tuple[int, int]] = []
        longest = 0
        for item in items:
            n = _round8(max(longest, int(self.lengths[item[1]])), self.max_len)
            if group and (len(group) + 1) * n > self.batch_tokens:
                yield group
                group, n = [], _round8(int(self.lengths[item[1]]), self.max_len)
            group.append(item)
            longest = n
        if group:
            yield group

    def _batch(self, group: list[tuple[int, int]]) -> dict[str, np.ndarray]:
        T = self.max_len if self.mode == FULL_SENTENCES else _round8(max(int(self.lengths[i]) for _, i in group), self.max_len)
        ids = np.full((len(group), T), self.pad_id, dtype=np.int64)
        labels = np.full((len(group), T), IGNORE_INDEX, dtype=np.int64)
        attention = np.zeros((len(group), T), dtype=np.int64)
        for row, (epoch, i) in enumerate(group):
            seq = np.asarray(self.sequences[i], dtype=np.int64)
            rng = np.random.default_rng([self.seed, epoch, i])
            ids[row, : seq.size], labels[row, : seq.size] = mask_tokens(seq, rng, **self._mask)
            attention[row, : seq.size] = 1
        return {"input_ids": ids, "attention_mask": attention, "labels": labels}

    def stream(self, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Batches forever, from batch number `start` on (what a resumed run continues with);
        FULL-SENTENCES batches always have `rows` rows, crossing epoch ends."""
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"start must be a non-negative batch number, got {start!r}")
        if self.batch_tokens > self.max_batch_tokens:
            raise ValueError(
                f"batch_tokens={self.batch_tokens} is more than the sequences fill ({self.lengths.size} of "
                f"max_len={self.max_len}); use batch_tokens in {self.max_len}..{self.max_batch_tokens}"
            )
        for group in islice(self._groups(self._items(0, None)), start, None):
            yield self._batch(group)

    def epoch(self, epoch: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """One pass over every sequence (the last batch may be smaller): for evaluation."""
        for group in self._groups(self._items(epoch, epoch)):
            yield self._batch(group)


def _round8(n: int, cap: int) -> int:
    """n rounded up to a multiple of 8 (fewer distinct shapes to compile), at most cap."""
    return min(-(-n // 8) * 8, cap)


def split_batch(batch: dict[str, np.ndarray], parts: int) -> list[dict[str, np.ndarray]]:
    """Cut a batch into `parts` equal runs of rows: micro-batches for gradient accumulation,
    or shards for data-parallel workers."""
    rows = len(next(iter(batch.values())))
    if isinstance(parts, bool) or not isinstance(parts, (int, np.integer)) or parts < 1 or rows % parts:
        raise ValueError(f"a batch of {rows} rows cannot be split into {parts!r} equal parts")
    size = rows // parts
    return [{k: v[p * size : (p + 1) * size] for k, v in batch.items()} for p in range(parts)]


# ---------------------------------------------------------------------------------------------
# 6. Statistics


def unigram_counts(tokens: TokenFile, special_ids: Sequence[int] = ()) -> np.ndarray:
    """How often each id occurs in `tokens` (vocab_size,), special ids counted as 0: the
    unigram baseline predicts the argmax at every masked position."""
    counts = np.zeros(tokens.vocab_size, dtype=np.int64)
    for chunk in tokens.chunks():
        counts += np.bincount(chunk, minlength=tokens.vocab_size)
    counts[np.asarray(list(special_ids), dtype=np.int64)] = 0
    return counts
