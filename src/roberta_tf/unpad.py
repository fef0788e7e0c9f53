"""Padding-free computation for `unpad=True` or `unpad=N` (TensorFlow): the real tokens of a
padded batch packed into one stream, each sequence attending over itself, and back. The model
calls one entry, `packing_for(attention_mask, unpad)`; the heads use `unpad_rows`/`repad`/
`run_packed` to run a token-level head on the real tokens only.

`unpad=True`: eagerly and in a graph the stream has exactly the real tokens; under XLA (static
shapes) it takes the smallest of a few sizes that holds them, a `tf.switch_case` with an encoder
per size. `unpad=N`, a token budget: one stream of min(N, B * T) slots in every mode (one encoder
to compile), the real tokens and then padding positions computed like any token and dropped. A
budget below the real tokens is a ValueError eagerly, a graph assertion in `tf.function`, and
NaN outputs under XLA (which compiles assertions away), never outputs that miss tokens.

Shapes: B batch, T padded length, N real tokens, h heads, D head size. The same names in every
backend (`roberta_pt/unpad.py`, `roberta_flax/unpad.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Optional, Sequence

import keras
import tensorflow as tf

from roberta_core.validation import check_token_budget, token_budget

from . import modeling  # the attention core and the mask are the model's; read at call time
from ._framework import dims, in_xla

__all__ = ["Packing", "pack", "run_packed", "unpad_rows", "repad", "first_rows", "first_positions", "packed_attention", "packing_for"]

# Under XLA every shape is static, so a packed stream cannot have exactly as many rows as there
# are real tokens: it takes the smallest of these sizes (fractions of B * T, rounded up to a
# multiple of 8) that holds them, each size compiled once as a branch of one `tf.switch_case`.
# Each branch is a whole encoder to compile: a few sizes, the last one the padded batch's.
# (`unpad=N` gives the one size itself: one encoder.)
_BUDGETS = (0.25, 0.5, 0.75, 1.0)


@dataclasses.dataclass(frozen=True)
class Packing:
    """Where the real tokens of a padded batch (B, T) sit in the packed stream (N,) that an
    unpadded forward computes on. `index` (N,) int32: flat positions b * T + t of the real
    tokens, row by row, in order; `lengths` (B,) int32: real tokens per row; `cu_seqlens`
    (B + 1,) int32: their running sum from 0; `mask` (B, T) bool: the attention mask.

    `budgets` (TF's addition, for XLA's static shapes): empty for the exact stream above. One
    size n: a stream of n rows, the real tokens and then n - N padding positions, computed like
    any token and dropped at the end. Several: `index` orders all B * T positions that way, and
    `run_packed` takes the first n rows for the smallest n that holds the real tokens. (A
    dataclass, not PyTorch's NamedTuple: Keras refuses a call argument that nests tensors
    with numbers.)
    """

    index: tf.Tensor
    lengths: tf.Tensor
    cu_seqlens: tf.Tensor
    mask: tf.Tensor
    budgets: tuple[int, ...] = ()


def pack(attention_mask: tf.Tensor, budgets: Sequence[float] = ()) -> Packing:
    """The packing of a (B, T) attention mask (1 or True = real token): the exact stream, or with
    `budgets` (fractions of B * T; static B and T) the stream sizes to choose from at run time."""
    mask = attention_mask if attention_mask.dtype == tf.bool else tf.not_equal(attention_mask, 0)
    counts = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)  # (B,)
    cu_seqlens = tf.pad(tf.cumsum(counts), [[1, 0]])
    flat = tf.reshape(mask, [-1])
    if not budgets:
        return Packing(tf.cast(tf.where(flat)[:, 0], tf.int32), counts, cu_seqlens, mask)
    total = mask.shape[0] * mask.shape[1]
    sizes = sorted({min(total, 8 * math.ceil(f * total / 8)) for f in budgets} | {total})
    return Packing(_true_first(flat, cu_seqlens[-1]), counts, cu_seqlens, mask, tuple(sizes))


def _true_first(flat: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    """(N,) bool with `count` True -> (N,) int32: the positions that are True, in order, then the
    others, in order. Each position's row comes from two running counts and is inverted with a
    scatter: no sort, which XLA's CPU backend runs slowly (a stable argsort of the 1,024 labels
    of a roberta-base 8×128 batch made its training step five times slower)."""
    real = tf.cast(flat, tf.int32)
    rows = tf.where(flat, tf.cumsum(real, exclusive=True), count + tf.cumsum(1 - real, exclusive=True))
    return tf.scatter_nd(rows[:, None], tf.range(tf.size(flat)), tf.shape(flat))


def run_packed(fn: Callable[[Packing], Any], packing: Packing) -> Any:
    """`fn(packing)`; when `packing` has several budgets (XLA), a `tf.switch_case` whose branch
    for the smallest budget that holds the real tokens is the one that runs. `fn` must return the
    same structure and shapes for every budget (outputs in the padded layout do)."""
    if len(packing.budgets) <= 1:
        return fn(packing)
    branch = tf.reduce_sum(tf.cast(packing.cu_seqlens[-1] > tf.constant(packing.budgets), tf.int32))
    return tf.switch_case(branch, [functools.partial(fn, _first(packing, n)) for n in packing.budgets])


def _first(packing: Packing, n: int) -> Packing:
    """The stream of the first n rows of a packing by budgets (the real tokens, then padding)."""
    return dataclasses.replace(packing, index=packing.index[:n], budgets=(n,))


def unpad_rows(x: tf.Tensor, packing: Packing) -> tf.Tensor:
    """(B, T, ...) -> (N, ...): the real tokens' rows, in order."""
    return tf.gather(tf.reshape(x, [-1, *dims(x)[2:]]), packing.index)


def repad(x: tf.Tensor, packing: Packing) -> tf.Tensor:
    """(N, ...) -> (B, T, ...): back to the padded layout, zeros at padding positions (the inverse
    of `unpad_rows`). A stream of a static size that cannot hold the real tokens (`unpad=N` too
    small, under XLA) gives NaN everywhere: never states that miss part of a sequence."""
    B, T = dims(packing.mask)
    tail = dims(x)[1:]
    if packing.budgets:  # the rows after the real tokens sit at padding positions: zeros there
        rows = tf.shape(x)[0]
        real = tf.range(rows) < packing.cu_seqlens[-1]
        x = tf.where(tf.reshape(real, [-1] + [1] * len(tail)), x, tf.zeros_like(x))
    padded = tf.reshape(tf.scatter_nd(packing.index[:, None], x, [B * T, *tail]), [B, T, *tail])
    if packing.budgets and x.dtype.is_floating:
        padded = tf.where(packing.cu_seqlens[-1] <= rows, padded, tf.constant(float("nan"), x.dtype))
    return padded


def first_rows(x: tf.Tensor, packing: Packing) -> tf.Tensor:
    """(1, N, ...) -> (B, 1, ...): each row's first real token in the stream (an empty row reads
    the slot after the real tokens or a zero row past the stream, values that `first_positions`
    zeroes, or NaNs for a budget too small; an empty stream gives zeros)."""
    rows = tf.concat([x[0], tf.zeros(tf.concat([[1], tf.shape(x)[2:]], 0), x.dtype)], axis=0)  # (N + 1, ...)
    starts = tf.minimum(packing.cu_seqlens[:-1], tf.shape(x)[1])
    return tf.gather(rows, starts)[:, None]


def first_positions(x: tf.Tensor, packing: Packing) -> tf.Tensor:
    """(B, 1, ...) states of each row's first position, computed on the padded rows (the last
    layer of a `first_token_only` call): zeros where that position is padding, as `repad` gives;
    NaN when a stream of a static size cannot hold the real tokens, as `repad` gives."""
    keep = tf.reshape(packing.mask[:, :1], [-1, 1] + [1] * (len(x.shape) - 2))
    x = tf.where(keep, x, tf.zeros_like(x))
    if packing.budgets and x.dtype.is_floating:
        x = tf.where(packing.cu_seqlens[-1] <= tf.shape(packing.index)[0], x, tf.constant(float("nan"), x.dtype))
    return x


def packed_attention(
    query: tf.Tensor,
    key: tf.Tensor,
    value: tf.Tensor,
    packing: Packing,
    *,
    dropout: Optional[keras.layers.Layer] = None,
    training: bool = False,
    is_causal: bool = False,
    strategy: Optional[str] = None,
) -> tf.Tensor:
    """Attention of each sequence over itself in a packed stream: q/k/v (1, h, N, D) -> context
    (1, h, N, D); no score is computed between two sequences or on padding.

    Strategies (`strategy=None` picks): 'sequences', one attention per sequence (the exact
    stream's choice, eagerly and in a graph: exact work, and B small einsums cost nothing next to
    the matmuls); 'padded', the sequences put back into their padded rows for one masked call
    (XLA's, whose shapes are static: it computes the padded scores, a small part of the work, but
    no matmul on padding).
    """
    B = packing.mask.shape[0]
    if strategy is None:
        strategy = "padded" if packing.budgets or B is None else "sequences"
    if strategy == "sequences":
        pieces = []
        for q, k, v in zip(*(tf.split(x, packing.lengths, axis=2, num=B) for x in (query, key, value))):
            mask = None
            if is_causal:
                n = tf.range(tf.shape(q)[2])
                mask = modeling._additive_mask(n[None, :] <= n[:, None], q.dtype)  # (n, n)
            pieces.append(modeling.explicit_attention(q, k, v, mask, dropout=dropout, training=training)[0])
        return tf.concat(pieces, axis=2)
    # 'padded': (1, h, N, D) -> (B, h, T, D) and back; the mask is the padded forward's.
    T = dims(packing.mask)[1]

    def to_rows(x: tf.Tensor) -> tf.Tensor:
        return tf.transpose(repad(tf.transpose(x[0], (1, 0, 2)), packing), (0, 2, 1, 3))  # (B, h, T, D)

    keep = packing.mask[:, None, None, :]  # (B, 1, 1, T)
    if is_causal:
        n = tf.range(T)
        keep = keep & (n[None, :] <= n[:, None])
    context, _ = modeling.explicit_attention(
        to_rows(query), to_rows(key), to_rows(value), modeling._additive_mask(keep, query.dtype), dropout=dropout,
        training=training,
    )
    return tf.transpose(unpad_rows(tf.transpose(context, (0, 2, 1, 3)), packing), (1, 0, 2))[None]  # (1, h, N, D)


def _nothing_masked(mask: Optional[tf.Tensor]) -> bool:
    """True when `mask` keeps every position. Inside a `tf.function` the values are unknown:
    the mask is then applied as given (no data-dependent Python branch)."""
    return mask is None or (tf.executing_eagerly() and bool(tf.reduce_all(tf.not_equal(mask, 0))))


def packing_for(attention_mask: Optional[tf.Tensor], unpad: bool | int) -> Optional[Packing]:
    """The packing of an `unpad` call (True, False or a token budget N, see the module's
    docstring), None when it does not unpad or nothing is padded. `unpad=True`: the exact
    stream; under XLA, one that chooses its size among `_BUDGETS` at run time. `unpad=N`: one
    stream of min(N, B * T) slots; in a graph that does not know B and T, the exact stream (the
    same numbers), with the budget's assertion. None under XLA without a static batch and length
    to size the stream by (the padded forward)."""
    unpad = token_budget(unpad)
    if not unpad or _nothing_masked(attention_mask):
        return None
    static = attention_mask.shape.is_fully_defined()
    if in_xla() and not static:
        return None
    if unpad is True:
        return pack(attention_mask, _BUDGETS) if in_xla() else pack(attention_mask)
    if tf.executing_eagerly():
        check_token_budget(unpad, int(tf.math.count_nonzero(attention_mask)))
    if static:
        packing = _first(pack(attention_mask, (1.0,)), min(unpad, attention_mask.shape.num_elements()))
    else:
        packing = pack(attention_mask)
    if not tf.executing_eagerly() and not in_xla():  # XLA compiles assertions away: `repad` poisons instead
        check = tf.debugging.assert_less_equal(
            packing.cu_seqlens[-1], unpad, message=f"unpad={unpad} slots cannot hold the real tokens of this batch"
        )
        with tf.control_dependencies([check]):  # nothing reads the stream before the check
            packing = dataclasses.replace(packing, index=tf.identity(packing.index))
    return packing
