"""roberta_core.data and roberta_core.app.corpus: packing, dynamic masking, batching, the token
file and the built-in corpus. Properties are checked with hypothesis; expected values come
from counting by hand (Counter, unique ids), never from the code under test."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roberta_core.app import corpus
from roberta_core.data import (
    DOC_SENTENCES,
    FULL_SENTENCES,
    MaskedLMBatches,
    TokenFile,
    encode_documents,
    mask_tokens,
    pack_sentences,
    read_documents,
    split_batch,
    split_sentences,
    unigram_counts,
    write_token_file,
)

BOS, PAD, EOS, MASK = 0, 1, 2, 3
SPECIALS = (BOS, PAD, EOS, MASK)
VOCAB = 100
FIRST_ID = 10  # content ids are numbered from here, so every token is unique and traceable

MASKING = dict(mask_token_id=MASK, special_ids=SPECIALS, vocab_size=VOCAB)


# ------------------------------------------------------------------ packing

# A corpus shape: documents -> sentences -> sentence lengths (0 = an empty sentence)
corpora = st.lists(st.lists(st.integers(0, 30), min_size=0, max_size=5), min_size=0, max_size=8)


def numbered(shape: list[list[int]]) -> tuple[list[list[np.ndarray]], dict[int, tuple[int, int]]]:
    """Documents of sentences holding consecutive unique ids, and id -> (document, sentence)."""
    docs, where, next_id = [], {}, FIRST_ID
    for d, lengths in enumerate(shape):
        doc = []
        for s, n in enumerate(lengths):
            ids = np.arange(next_id, next_id + n)
            where.update({int(i): (d, s) for i in ids})
            doc.append(ids)
            next_id += n
        docs.append(doc)
    return docs, where


@settings(max_examples=150, deadline=None)
@given(shape=corpora, max_len=st.integers(3, 40), mode=st.sampled_from([FULL_SENTENCES, DOC_SENTENCES]))
def test_packing_loses_and_repeats_no_token(shape, max_len, mode):
    docs, where = numbered(shape)
    seqs = list(pack_sentences(docs, max_len, bos_id=BOS, eos_id=EOS, mode=mode))
    content = []
    for seq in seqs:
        assert 3 <= seq.size <= max_len and seq[0] == BOS and seq[-1] == EOS
        inner = seq[1:-1]
        assert inner.size and inner[0] != EOS and inner[-1] != EOS  # no separator at either end
        for k, tok in enumerate(inner):
            if tok == EOS:  # a document separator: only in FULL-SENTENCES, only between documents
                assert mode == FULL_SENTENCES
                assert where[int(inner[k - 1])][0] < where[int(inner[k + 1])][0]
            else:
                content.append(int(tok))
        if mode == DOC_SENTENCES:
            assert len({where[int(t)][0] for t in inner}) == 1
        else:  # consecutive documents are separated inside a sequence, never run together
            for a, b in zip(inner[:-1], inner[1:]):
                if a != EOS and b != EOS:
                    assert where[int(a)][0] == where[int(b)][0]
    # every token exactly once, in corpus order
    assert content == list(range(FIRST_ID, FIRST_ID + len(where)))
    # whole sentences: one that fits a sequence is never cut
    home = Counter()
    for n, seq in enumerate(seqs):
        for tok in seq[1:-1]:
            if tok != EOS:
                home[(where[int(tok)], n)] += 1
    cut = Counter(key for key, _ in home)
    for (d, s), pieces in cut.items():
        if shape[d][s] <= max_len - 2:
            assert pieces == 1, f"sentence {(d, s)} of {shape[d][s]} tokens was cut"


def test_packing_by_hand():
    docs = [[[10, 11]], [[20], [21, 22, 23]], [list(range(30, 39))]]
    # room for 6 tokens between <s> and </s>; the 9-token sentence is longer than a sequence
    full = [s.tolist() for s in pack_sentences(docs, 8, bos_id=BOS, eos_id=EOS)]
    assert full == [
        [0, 10, 11, 2, 20, 2],  # 10 11 </s> 20, then 21 22 23 would make 7
        [0, 21, 22, 23, 2],  # </s> + the first 6-piece of the long sentence would make 10
        [0, 30, 31, 32, 33, 34, 35, 2],
        [0, 36, 37, 38, 2],
    ]
    doc = [s.tolist() for s in pack_sentences(docs, 8, bos_id=BOS, eos_id=EOS, mode=DOC_SENTENCES)]
    assert doc == [[0, 10, 11, 2], [0, 20, 21, 22, 23, 2], [0, 30, 31, 32, 33, 34, 35, 2], [0, 36, 37, 38, 2]]


@pytest.mark.parametrize("max_len, mode, error", [(2, FULL_SENTENCES, ValueError), (8, "sentences", ValueError), (8.0, FULL_SENTENCES, TypeError)])
def test_packing_rejects(max_len, mode, error):
    with pytest.raises(error, match="max_len|packing"):
        list(pack_sentences([[[5, 6]]], max_len, bos_id=BOS, eos_id=EOS, mode=mode))


# ------------------------------------------------------------------ dynamic masking


def sigmas(count: int, n: int, p: float) -> float:
    """How many binomial standard deviations `count` lies from n*p."""
    return abs(count - n * p) / np.sqrt(n * p * (1 - p))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), p=st.sampled_from([0.15, 0.3]))
def test_masking_rates_are_binomial(seed, p):
    data = np.random.default_rng(seed)
    ids = data.integers(0, VOCAB, size=(64, 128))  # specials included, about 4% of positions
    masked, labels = mask_tokens(ids, np.random.default_rng(seed), mlm_probability=p, **MASKING)
    eligible = ~np.isin(ids, SPECIALS)
    chosen = labels != -100
    n, k = int(eligible.sum()), int(chosen.sum())
    # 6 standard deviations: a false alarm about once in 5e8 draws
    assert sigmas(k, n, p) < 6
    as_mask = int((masked[chosen] == MASK).sum())
    kept = int((masked[chosen] == ids[chosen]).sum())
    candidates = VOCAB - len(SPECIALS)
    assert sigmas(as_mask, k, 0.8) < 6
    # 10% stay, plus the random draws that hit the original token (1 in `candidates`)
    assert sigmas(kept, k, 0.1 + 0.1 / candidates) < 6
    assert sigmas(k - as_mask - kept, k, 0.1 * (1 - 1 / candidates)) < 6


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), ids=st.lists(st.integers(0, VOCAB - 1), min_size=1, max_size=200))
def test_masking_never_touches_specials_and_labels_the_originals(seed, ids):
    ids = np.array(ids)
    masked, labels = mask_tokens(ids, np.random.default_rng(seed), **MASKING)
    special = np.isin(ids, SPECIALS)
    assert (labels[special] == -100).all() and (masked[special] == ids[special]).all()
    chosen = labels != -100
    assert (labels[chosen] == ids[chosen]).all()
    assert (masked[~chosen] == ids[~chosen]).all()
    # a random replacement is never a special token (only <mask> itself may appear)
    assert not np.isin(masked[chosen & (masked != MASK)], SPECIALS).any()
    # the same seed gives the same masks
    again = mask_tokens(ids, np.random.default_rng(seed), **MASKING)
    assert (again[0] == masked).all() and (again[1] == labels).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(mlm_probability=0.0), ValueError, "mlm_probability"),
        (dict(mlm_probability=1.0), ValueError, "mlm_probability"),
        (dict(vocab_size=4), ValueError, "no non-special token"),
    ],
)
def test_masking_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        mask_tokens(np.array([0, 5, 2]), np.random.default_rng(0), **{**MASKING, **kwargs})
    with pytest.raises(TypeError, match="integers"):
        mask_tokens(np.array([0.0, 5.0]), np.random.default_rng(0), **MASKING)


# ------------------------------------------------------------------ batches


def sequences(n: int, seed: int = 0, lo: int = 5, hi: int = 30) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        body = rng.integers(len(SPECIALS), VOCAB, size=int(rng.integers(lo, hi + 1)) - 2)
        out.append(np.concatenate([[BOS], body, [EOS]]))
    return out


def batches(seqs, **kw) -> MaskedLMBatches:
    args = dict(batch_tokens=4 * 32, max_len=32, pad_id=PAD, seed=7, **MASKING)
    args.update(kw)
    return MaskedLMBatches(seqs, **args)


def unmasked(batch: dict, row: int) -> np.ndarray:
    """The row's original tokens: the labels where chosen, the input elsewhere, pads dropped."""
    ids = np.where(batch["labels"][row] != -100, batch["labels"][row], batch["input_ids"][row])
    return ids[batch["attention_mask"][row] == 1]


@pytest.mark.parametrize("mode", [FULL_SENTENCES, DOC_SENTENCES])
def test_each_epoch_serves_every_sequence_once(mode):
    seqs = sequences(23)
    served = []
    for batch in batches(seqs, mode=mode).epoch(3):
        B, T = batch["input_ids"].shape
        assert all(v.shape == (B, T) and v.dtype == np.int64 for v in batch.values())
        if mode == FULL_SENTENCES:
            assert T == 32 and B <= 4
        else:
            assert B * T <= 4 * 32 and (T % 8 == 0 or T == 32)
        assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
        assert (batch["input_ids"][batch["attention_mask"] == 0] == PAD).all()
        served += [tuple(unmasked(batch, r)) for r in range(B)]
    assert Counter(served) == Counter(tuple(s) for s in seqs)


def test_doc_sentences_batches_grow_when_sequences_are_short():
    short, long_ = sequences(40, lo=5, hi=8), sequences(40, lo=28, hi=32)
    rows = lambda seqs: [b["input_ids"].shape[0] for b in batches(seqs, mode=DOC_SENTENCES, batch_tokens=128).epoch(0)]
    assert max(rows(long_)) == 4 and min(rows(short)[:-1]) == 16  # 128 tokens: 4 of 32, 16 of 8


def test_two_epochs_mask_differently_and_the_same_seed_repeats():
    seqs = sequences(8, lo=40, hi=60)
    stream = batches(seqs, max_len=64, batch_tokens=8 * 64, shuffle=False).stream()
    first, second = next(stream), next(stream)  # 8 rows = one epoch per batch, same order
    assert (first["attention_mask"] == second["attention_mask"]).all()
    for row in range(8):
        assert (first["labels"][row] != second["labels"][row]).any(), f"sequence {row} got the same mask twice"
    again = next(batches(seqs, max_len=64, batch_tokens=8 * 64, shuffle=False).stream())
    assert all((again[k] == first[k]).all() for k in first)
    other = next(batches(seqs, max_len=64, batch_tokens=8 * 64, shuffle=False, seed=8).stream())
    assert (other["labels"] != first["labels"]).any()


def test_shuffle_orders_each_epoch_afresh():
    seqs = sequences(50)
    b = batches(seqs)
    assert sorted(b.order(0)) == list(range(50)) and (b.order(0) != b.order(1)).any()
    assert (batches(seqs, shuffle=False).order(4) == np.arange(50)).all()


@pytest.mark.parametrize("mode", [FULL_SENTENCES, DOC_SENTENCES])
def test_resuming_continues_the_same_stream(mode):
    b = batches(sequences(11), mode=mode)
    head = [x for _, x in zip(range(9), b.stream())]
    tail = [x for _, x in zip(range(4), b.stream(start=5))]
    for x, y in zip(head[5:], tail):
        assert all((x[k] == y[k]).all() for k in x)


def test_masks_do_not_depend_on_batch_size_and_full_batches_cross_epochs():
    seqs = sequences(10)
    big = next(batches(seqs, batch_tokens=10 * 32, shuffle=False).stream())
    small = [x for _, x in zip(range(5), batches(seqs, batch_tokens=2 * 32, shuffle=False).stream())]
    assert all((np.concatenate([s[k] for s in small]) == big[k]).all() for k in big)
    # 3 rows over 10 sequences: batch 3 holds the last of epoch 0 and the first two of epoch 1
    b = list(zip(range(4), batches(seqs, batch_tokens=3 * 32, shuffle=False).stream()))[3][1]
    assert b["input_ids"].shape == (3, 32)
    assert [tuple(unmasked(b, r)) for r in range(3)] == [tuple(s) for s in (seqs[9], seqs[0], seqs[1])]


def test_split_batch():
    b = next(batches(sequences(8)).stream())
    parts = split_batch(b, 2)
    assert all((np.concatenate([p[k] for p in parts]) == b[k]).all() for k in b)
    for bad in (3, 0, 1.5):
        with pytest.raises(ValueError, match="cannot be split"):
            split_batch(b, bad)


@pytest.mark.parametrize(
    "seqs, kwargs, match",
    [
        ([], {}, "corpus is empty"),
        ([np.zeros(0, np.int64)], {}, "corpus is empty"),
        (None, dict(batch_tokens=31), "cannot fit one sequence"),
        (None, dict(batch_tokens=None), "cannot fit one sequence"),
        (None, dict(max_len=16), "more than max_len"),
        (None, dict(seed=-1), "seed"),
        (None, dict(mlm_probability=1.5), "mlm_probability"),
        (None, dict(mode="docs"), "packing"),
    ],
)
def test_batches_reject(seqs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        batches(sequences(4) if seqs is None else seqs, **kwargs)


def test_stream_rejects_a_negative_start():
    with pytest.raises(ValueError, match="start"):
        next(batches(sequences(4)).stream(start=-1))


def test_training_batches_are_bounded_by_the_sequences():
    """issue 17: a batch of 1e13 tokens over a small corpus grew until MemoryError. 4 sequences of
    max_len 32 fill at most 4 * 32 = 128 tokens; a larger training batch is refused, naming the range."""
    seqs = sequences(4)
    assert next(batches(seqs, batch_tokens=4 * 32).stream())["input_ids"].shape == (4, 32)  # the whole corpus: fine
    for mode in (FULL_SENTENCES, DOC_SENTENCES):
        with pytest.raises(ValueError, match=r"use batch_tokens in 32\.\.128"):
            next(batches(seqs, mode=mode, batch_tokens=1000 * 32).stream())
    # evaluation passes once over the sequences: a large batch is simply all of them
    (held,) = batches(seqs, batch_tokens=1000 * 32).epoch(0)
    assert held["input_ids"].shape == (4, 32)


# ------------------------------------------------------------------ token file, documents, sentences


def test_token_file_round_trip_and_unigram_counts(tmp_path):
    seqs = sequences(30)
    tf = write_token_file(iter(seqs), tmp_path / "train", vocab_size=VOCAB)
    again = TokenFile(tmp_path / "train")
    assert len(again) == 30 and again.num_tokens == sum(len(s) for s in seqs)
    assert all((again[i] == s).all() for i, s in enumerate(seqs)) and (again[-1] == seqs[-1]).all()
    assert (tf.lengths == [len(s) for s in seqs]).all()
    expected = Counter(int(t) for s in seqs for t in s if t not in SPECIALS)
    counts = unigram_counts(again, SPECIALS)
    assert {i: int(c) for i, c in enumerate(counts) if c} == dict(expected)
    with pytest.raises(IndexError):
        again[30]
    # a batcher reads it through the memory map like a list
    assert sum(b["attention_mask"].sum() for b in batches(again).epoch(0)) == again.num_tokens


def test_token_file_writes_are_atomic(tmp_path):
    def failing():
        yield np.array([0, 5, 2])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_token_file(failing(), tmp_path / "t", vocab_size=VOCAB)
    with pytest.raises(ValueError, match="0..99"):
        write_token_file([np.array([0, 100, 2])], tmp_path / "t", vocab_size=VOCAB)
    assert list(tmp_path.iterdir()) == []
    write_token_file([], tmp_path / "t", vocab_size=VOCAB)
    with pytest.raises(FileExistsError):
        write_token_file([], tmp_path / "t", vocab_size=VOCAB)
    with pytest.raises(ValueError, match="corpus is empty"):
        batches(TokenFile(tmp_path / "t"))
    with pytest.raises(FileNotFoundError, match="not a token file"):
        TokenFile(tmp_path)


def test_read_documents_streams_blank_line_separated_documents(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("First doc, line 1.\nline 2.\n\n\n  \nSecond doc.\n", encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("Third " * 10 + "\n" + "more\n" * 5, encoding="utf-8")
    assert list(read_documents([a])) == ["First doc, line 1.\nline 2.", "Second doc."]
    parts = list(read_documents([a, b], max_chars=70))
    assert parts[:2] == ["First doc, line 1.\nline 2.", "Second doc."]
    assert "\n".join(parts[2:]) == ("Third " * 10).rstrip("\n") + "\n" + "\n".join(["more"] * 5)
    assert len(parts) > 3  # the long document came in parts
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        list(read_documents([tmp_path / "missing.txt"]))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab .!?\n\t"), max_size=60) | st.text(max_size=40))
def test_split_sentences_is_lossless(text):
    assert "".join(split_sentences(text)) == text


def test_split_sentences_and_encode_documents():
    assert split_sentences("One. Two? Three!\n\nFour") == ["One.", " Two?", " Three!", "\n\nFour"]
    with pytest.raises(TypeError, match="str"):
        split_sentences(b"bytes")
    encode = lambda texts: [[len(w) + 4 for w in t.split()] for t in texts]  # a toy tokenizer
    docs = list(encode_documents(["Aa bbb. Cc", "   ", "Dddd."], encode, chunk=2))
    assert [[s.tolist() for s in d] for d in docs] == [[[6, 8], [6]], [[9]]]


# ------------------------------------------------------------------ the built-in corpus


def test_builtin_corpus_and_task_are_deterministic_and_disjoint():
    train, held, everything = (list(corpus.builtin_documents(s)) for s in ("train", "heldout", "all"))
    assert Counter(train) + Counter(held) == Counter(everything)
    assert not set(train) & set(held)
    assert sum(map(len, everything)) > 1_500_000 and 0.02 < len(held) / len(everything) < 0.10
    assert list(corpus.builtin_documents("heldout")) == held
    task_train, task_held = corpus.package_task("train"), corpus.package_task("heldout")
    assert len(task_held) > 200 and len(task_train) > 3 * len(task_held)
    assert {e["label"] for e in task_train} == set(range(len(corpus.PACKAGE_LABELS)))
    texts = [e["text"] for e in task_train + task_held]
    assert len(set(texts)) == len(texts)  # no docstring twice, none on both sides
    with pytest.raises(ValueError, match="split"):
        list(corpus.builtin_documents("test"))
    with pytest.raises(ValueError, match="split"):
        corpus.package_task("all")
