"""The padding-free machinery of the PyTorch backend (`unpad=True`): where a padded batch's real
tokens sit in one packed stream, moving rows between the two layouts, attention of each sequence
over itself in the stream, and `packing_for`, the one entry the model calls.

Eager PyTorch has dynamic shapes, so the stream holds exactly the real tokens (one host sync for
their count). Shapes: B batch, T padded length, N real tokens, h heads, D head size. A parallel
text of `roberta_tf/unpad.py` and `roberta_flax/unpad.py`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import torch
import torch.nn.functional as F

from roberta_core.validation import check_token_budget, token_budget

from . import modeling  # the attention core and the mask are the model's; read at call time

__all__ = ["Packing", "pack", "unpad_rows", "repad", "first_rows", "first_positions", "packed_attention", "packing_for"]


class Packing(NamedTuple):
    """Where the real tokens of a padded batch (B, T) sit in the packed stream (N,) that an
    unpadded forward computes on. `index` (N,): flat positions b * T + t of the real tokens, row
    by row, in order; `lengths`: real tokens per row (Python ints); `cu_seqlens` (B + 1,) int32:
    their running sum from 0; `mask` (B, T) bool: the attention mask."""

    index: torch.Tensor
    lengths: list[int]
    cu_seqlens: torch.Tensor
    mask: torch.Tensor


def pack(attention_mask: torch.Tensor) -> Packing:
    """The packing of a (B, T) attention mask (1 = real token). One host sync, for the lengths."""
    mask = attention_mask.bool()
    counts = mask.sum(dim=1)  # (B,)
    cu_seqlens = F.pad(torch.cumsum(counts, dim=0, dtype=torch.int32), (1, 0))
    return Packing(mask.reshape(-1).nonzero().squeeze(1), counts.tolist(), cu_seqlens, mask)


def unpad_rows(x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """(B, T, ...) -> (N, ...): the real tokens' rows, in order."""
    return x.reshape(-1, *x.shape[2:]).index_select(0, packing.index)


def repad(x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """(N, ...) -> (B, T, ...): back to the padded layout, zeros at padding positions (the inverse
    of `unpad_rows`)."""
    B, T = packing.mask.shape
    # Each row written once: the real rows copied in, then zeros in the padding rows only (a
    # zero-filled buffer would write the real rows twice; for MLM logits that is most of the time).
    # The padding rows are the first B*T - N of the mask sorted (any order among equals): no host
    # sync for them, and no data-dependent shape under torch.compile.
    padding = torch.argsort(packing.mask.reshape(-1).to(torch.int32))[: B * T - x.shape[0]]
    out = x.new_empty(B * T, *x.shape[1:]).index_copy_(0, packing.index, x).index_fill_(0, padding, 0)
    return out.view(B, T, *x.shape[1:])


def first_rows(x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """(1, N, ...) -> (B, 1, ...): each row's first real token in the stream (an empty row reads
    the last slot, a value that `first_positions` zeroes; an empty stream gives zeros)."""
    if x.shape[1] == 0:
        return x.new_zeros(packing.mask.shape[0], 1, *x.shape[2:])
    starts = torch.minimum(packing.cu_seqlens[:-1], packing.cu_seqlens[-1] - 1).long()  # traceable: no size read
    return x[0].index_select(0, starts)[:, None]


def first_positions(x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """(B, 1, ...) states of each row's first position, computed on the padded rows (the last
    layer of a `first_token_only` call): zeros where that position is padding, as `repad` gives."""
    keep = packing.mask[:, :1].reshape(*packing.mask.shape[:1], 1, *[1] * (x.dim() - 2))
    return torch.where(keep, x, 0)


def _varlen_attn() -> Any:
    """PyTorch's varlen flash attention (CUDA, half precision), where this PyTorch has it."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def packed_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    packing: Packing,
    *,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    strategy: Optional[str] = None,
) -> torch.Tensor:
    """Attention of each sequence over itself in a packed stream: q/k/v (1, h, N, D) -> context
    (1, h, N, D); no score is computed between two sequences or on padding.

    Strategies (`strategy=None` picks): 'varlen', PyTorch's varlen flash kernel (CUDA, fp16/bf16,
    no dropout, not causal); 'sequences', one fused attention per sequence (the CPU's choice: exact
    work, and a few calls cost nothing next to the matmuls); 'padded', the sequences put back into
    their padded rows for one masked call (the GPU's fallback: one kernel instead of B; it computes
    the padded scores, a small part of the work, but no matmul on padding).
    """
    if strategy is None:
        half = query.dtype in (torch.float16, torch.bfloat16)
        if torch.jit.is_tracing():
            # An exported graph (`roberta_pt.export`, packed=True): the lengths are data, not
            # Python ints to split by; one masked call on the padded rows traces for any batch.
            strategy = "padded"
        elif query.device.type != "cuda":
            strategy = "sequences"
        elif half and dropout_p == 0.0 and not is_causal and _varlen_attn() is not None:
            strategy = "varlen"
        else:
            strategy = "padded"
    if strategy == "varlen":
        lengths = packing.cu_seqlens
        longest = max(packing.lengths)
        # The kernel takes (N, h, D), dense: the projections' layout before the head split.
        q, k, v = (x[0].transpose(0, 1).contiguous() for x in (query, key, value))
        context = _varlen_attn()(q, k, v, lengths, lengths, longest, longest)
        return context.transpose(0, 1)[None]
    if strategy == "sequences":
        pieces = [
            modeling.fused_attention(q, k, v, None, dropout_p=dropout_p, is_causal=is_causal).transpose(1, 2)
            for q, k, v in zip(*(x.split(packing.lengths, dim=2) for x in (query, key, value)))
        ]
        # Joined as (1, N, h, D), the layout the output projection reads: one copy, not two.
        return torch.cat(pieces, dim=1).transpose(1, 2)
    # 'padded': the stream's rows put into (B, T) slots for one masked call and taken back. The
    # heads stay the leading axis, (h, B, T, D): moving rows is one gather along the token axis,
    # no transpose and no copy besides (an exported graph pays for each). A padding slot reads
    # row 0 of the stream: the mask hides it as a key, and its query's output is dropped.
    h, N, D = query.shape[1:]
    B, T = packing.mask.shape
    real = packing.mask.reshape(-1)
    slot = torch.where(real, torch.cumsum(real.long(), 0) - 1, 0)  # (B * T,): each slot's row of the stream

    def to_rows(x: torch.Tensor) -> torch.Tensor:
        return x[0].index_select(1, slot).view(h, B, T, D)  # (h, B, T, D)

    keep = packing.mask[None, :, None, :]  # (1, B, 1, T)
    if is_causal:
        keep = keep & torch.ones(T, T, dtype=torch.bool, device=keep.device).tril()
    mask = modeling._additive_mask(keep, query.dtype)
    context = modeling.fused_attention(to_rows(query), to_rows(key), to_rows(value), mask, dropout_p=dropout_p)
    return context.reshape(h, B * T, D).index_select(1, packing.index)[None]  # (1, h, N, D)


def _nothing_masked(mask: Optional[torch.Tensor]) -> bool:
    """True when `mask` keeps every position. Under torch.compile the values are unknown:
    the mask is then applied as given (no data-dependent branch, no graph break)."""
    return mask is None or (not torch.compiler.is_compiling() and bool(mask.all()))


def packing_for(attention_mask: Optional[torch.Tensor], unpad: bool | int) -> Optional[Packing]:
    """The packing of an `unpad` call (True, False or a token budget N, as TF and Flax take it),
    None when it does not unpad or nothing is padded. PyTorch's shapes are dynamic: the stream is
    always the exact one, and a budget N is only checked to hold the real tokens (the same
    ValueError as the other backends), so one call runs unchanged in all three."""
    unpad = token_budget(unpad)
    if not unpad or _nothing_masked(attention_mask) or attention_mask.dim() != 2:  # a (B, T, S) mask: padded layout
        return None
    packing = pack(attention_mask)
    if unpad is not True:
        check_token_budget(unpad, sum(packing.lengths))
    return packing
