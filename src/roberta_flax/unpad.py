"""The padding-free machinery of the Flax backend (`unpad=True` or `unpad=N`): where a padded
batch's real tokens sit in one packed stream, moving rows between the two layouts, attention of
each sequence over itself in the stream, and `packing_for`, the one entry the model calls.

Shapes are static under `jit`, so the stream has a static number of slots N (the token budget):
an eager `unpad=True` rounds the real tokens up to a multiple of `_PACK_MULTIPLE` (few budgets,
few compilations); under `jit` the caller gives the budget. Shapes: B batch, T padded length,
N slots, h heads, D head size. A parallel text of `roberta_pt/unpad.py` and
`roberta_tf/unpad.py`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from roberta_core.validation import check_token_budget, token_budget

from . import modeling  # the attention cores are the model's; read at call time
from ._framework import _is_traced

__all__ = ["Packing", "pack", "unpad_rows", "repad", "first_rows", "first_positions", "packed_attention", "packing_for"]

# `unpad=True` rounds the packed stream up to a multiple of this many slots: a few budgets (few
# compilations) for a little work on unused slots.
_PACK_MULTIPLE = 64


class Packing(NamedTuple):
    """Where the real tokens of a padded batch (B, T) sit in the packed stream (N,) that an
    unpadded forward computes on. N is a static token budget (shapes are static under `jit`):
    the real tokens fill the first slots, row by row, in order; the slots after them are unused
    (they hold token 0 and compute values nothing reads). `index` (N,): flat position b * T + t
    of each slot's token, B * T for unused slots; `slot` (B, T): each position's slot, N at
    padding; `cu_seqlens` (B + 1,) int32: the running sum of the rows' real tokens from 0;
    `mask` (B, T) bool: the attention mask; `fits` (): whether every real token got a slot (a
    budget given under `jit` may be too small: the outputs are then NaN, see `pack`)."""

    index: jax.Array
    slot: jax.Array
    cu_seqlens: jax.Array
    mask: jax.Array
    fits: jax.Array


def pack(attention_mask: jax.Array, budget: int) -> Packing:
    """The packing of a (B, T) attention mask (1 = real token) into a stream of `budget` slots.
    Traceable: nothing is read back to the host. Tokens beyond the budget get no slot; the model
    then returns NaN rather than numbers that miss part of a sequence (with `enable_jit_checks()`
    it is a checkify error)."""
    mask = jnp.asarray(attention_mask).astype(bool)
    B, T = mask.shape
    lengths = mask.sum(axis=1, dtype=jnp.int32)  # (B,)
    cu_seqlens = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(lengths, dtype=jnp.int32)])
    flat = mask.reshape(-1)
    rank = jnp.cumsum(flat, dtype=jnp.int32) - 1  # each real token's place in the stream
    slot = jnp.where(flat & (rank < budget), rank, budget).reshape(B, T)
    index = jnp.nonzero(flat, size=budget, fill_value=B * T)[0].astype(jnp.int32)
    return Packing(index, slot, cu_seqlens, mask, cu_seqlens[-1] <= budget)


def unpad_rows(x: jax.Array, packing: Packing) -> jax.Array:
    """(B, T, ...) -> (N, ...): the real tokens' rows, in order; zeros in unused slots."""
    return jnp.take(x.reshape(-1, *x.shape[2:]), packing.index, axis=0, mode="fill", fill_value=0)


def repad(x: jax.Array, packing: Packing) -> jax.Array:
    """(N, ...) -> (B, T, ...): back to the padded layout, zeros at padding positions (the inverse
    of `unpad_rows`)."""
    return jnp.take(x, packing.slot, axis=0, mode="fill", fill_value=0)


def first_rows(x: jax.Array, packing: Packing) -> jax.Array:
    """(1, N, ...) -> (B, 1, ...): each row's first real token in the stream (an empty row, or one
    past a budget too small, reads the last slot, a value that `first_positions` zeroes or NaNs)."""
    return jnp.take(x[0], packing.cu_seqlens[:-1], axis=0, mode="clip")[:, None]


def first_positions(x: jax.Array, packing: Packing) -> jax.Array:
    """(B, 1, ...) states of each row's first position, computed on the padded rows (the last
    layer of a `first_token_only` call): zeros where that position is padding, as `repad` gives;
    NaN when the budget left real tokens out (`packing.fits`), as the packed states are."""
    keep = packing.mask[:, :1].reshape(packing.mask.shape[0], 1, *[1] * (x.ndim - 2))
    return jnp.where(packing.fits, jnp.where(keep, x, 0), jnp.nan)


def packed_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    packing: Packing,
    *,
    is_causal: bool = False,
    dropout: Optional[Callable[[jax.Array], jax.Array]] = None,
    strategy: Optional[str] = None,
) -> jax.Array:
    """Attention of each sequence over itself in a packed stream: q/k/v (1, h, N, D) -> context
    (1, N, h, D); no score between two sequences counts. `dropout` (training) drops
    probabilities through the explicit core; otherwise the fused one runs.

    Strategies (`strategy=None` takes the one that computes fewer scores; both shapes are
    static): 'padded', the sequences put back into their padded rows (B, T) for one masked call
    (B * T * T scores; the matmuls before and after still skip padding), and 'segments', one call
    over the stream with a block-diagonal mask of segment ids (N * N scores: many short
    sequences in a long padded batch).
    """
    (B, T), N = packing.mask.shape, query.shape[2]
    if strategy is None:
        strategy = "segments" if N * N < B * T * T else "padded"
    if strategy == "segments":
        segment = packing.index // T  # the row of each slot; B for unused slots (they see each other)
        keep = (segment[:, None] == segment[None, :])[None, None]  # (1, 1, N, N)
        if is_causal:
            keep = keep & jnp.tril(jnp.ones((N, N), bool))
        rows = (query, key, value)
    elif strategy == "padded":
        keep = packing.mask[:, None, None, :]  # (B, 1, 1, T)
        if is_causal:
            keep = keep & jnp.tril(jnp.ones((T, T), bool))
        # (1, h, N, D) -> (B, h, T, D)
        rows = tuple(repad(x[0].swapaxes(0, 1), packing).swapaxes(1, 2) for x in (query, key, value))
    else:
        raise ValueError(f"packed_attention strategy must be 'padded', 'segments' or None, got {strategy!r}")
    if dropout is None:
        context = modeling.fused_attention(*rows, keep)
    else:
        context, _ = modeling.explicit_attention(*rows, keep, dropout=dropout)
    if strategy == "padded":
        context = unpad_rows(context, packing)[None]  # (B, T, h, D) -> (1, N, h, D)
    return context


def _nothing_masked(mask: Optional[jax.Array]) -> bool:
    """True when `mask` keeps every position. Under jit the values are unknown: the mask is
    then applied as given (no data-dependent branch)."""
    return mask is None or (not _is_traced(mask) and bool(np.all(np.asarray(mask))))


def _packing_budget(attention_mask: Optional[jax.Array], unpad: bool | int) -> Optional[int]:
    """The static number of slots of an `unpad` call's packed stream; None when it computes on
    the padded batch (`unpad=False`, or nothing is padded). `unpad=True` takes the real tokens
    rounded up to a multiple of _PACK_MULTIPLE, which needs the mask's values: under `jit` give
    the budget itself, `unpad=N` (a Python int, at least the batch's real tokens)."""
    unpad = token_budget(unpad)
    if not unpad or _nothing_masked(attention_mask):
        return None
    size = int(np.prod(np.shape(attention_mask)))
    if _is_traced(attention_mask):
        if unpad is True:
            raise ValueError(
                "unpad=True sizes the packed stream from the attention mask's values, unknown under jit: give "
                "the token budget instead, unpad=N with N a Python int >= the real tokens of the batch"
            )
        return min(int(unpad), size)
    real = int(np.count_nonzero(np.asarray(attention_mask)))
    if unpad is True:
        return min(-(-real // _PACK_MULTIPLE) * _PACK_MULTIPLE, size)
    check_token_budget(unpad, real)
    return min(unpad, size)


def packing_for(attention_mask: Optional[jax.Array], unpad: bool | int) -> Optional[Packing]:
    """The packing of an `unpad` call, None when it does not unpad or nothing is padded."""
    budget = _packing_budget(attention_mask, unpad)
    return None if budget is None else pack(attention_mask, budget)
