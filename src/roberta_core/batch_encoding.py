"""`BatchEncoding`, what a tokenizer call returns: a dict of lists or tensors that also reads as
attributes, and remembers the rows it was built from for per-token accessors."""

from __future__ import annotations

TENSOR_TYPES = ("np", "pt", "tf", "jax")


class BatchEncoding(dict):
    """The tokenizers' output: a dict of lists (or tensors) that also reads as attributes.

    Keys: input_ids (B, T), attention_mask (B, T) and, when asked, token_type_ids,
    special_tokens_mask, offset_mapping (B, T, 2), length (B,), overflow_to_sample_mapping (B,).
    A single text gives flat lists (T,) unless tensors or overflow windows were asked for.

    Per-token accessors (`word_ids`, `sequence_ids`) read the rows the tokenizer built: `rows` is
    (list of `padding._Row`, (padded length, padded on the left?) or None). A new accessor takes
    its row with `self._row(batch_index, name)` (ids, offsets, words, n1, n2, special and
    `sequence_ids()` before padding) and, for a per-token list, pads it with `self._padded(values)`
    so that it lines up with `input_ids`.
    """

    def __init__(self, data=None, tensor_type: str | None = None, *, rows=None):
        super().__init__(data or {})
        self._rows = rows
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getattr__(self, name):
        if name.startswith("_") or name not in self:
            raise AttributeError(f"BatchEncoding has no attribute or key {name!r}")
        return self[name]

    def __getstate__(self):
        return {"data": dict(self), "rows": self._rows}

    def __setstate__(self, state):
        self.update(state["data"])
        self._rows = state["rows"]

    @property
    def data(self) -> dict:
        return dict(self)

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Which word of the pre-split input each token of row `batch_index` came from (None for
        special tokens, pads, and for input that was not split into words)."""
        row = self._row(batch_index, "word_ids")
        return self._padded(row.words if row.words is not None else [None] * len(row.ids))

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0 for tokens of the first text, 1 for the second, None for special tokens and pads."""
        return self._padded(self._row(batch_index, "sequence_ids").sequence_ids())

    def _row(self, batch_index: int, what: str):
        """Row `batch_index` as the tokenizer built it (before padding); `what` names the accessor in errors."""
        if self._rows is None:
            raise ValueError(f"{what}() is only available on the output of a tokenizer call")
        rows = self._rows[0]
        if not 0 <= batch_index < len(rows):
            raise ValueError(f"batch_index must be in [0, {len(rows)}), got {batch_index}")
        return rows[batch_index]

    def _padded(self, values: list) -> list:
        """A per-token list of one row padded as input_ids was (None at the pads)."""
        if self._rows[1] is None:
            return list(values)
        target, left = self._rows[1]
        return _pad_rows([list(values)], target, None, left)[0]

    def convert_to_tensors(self, tensor_type: str) -> BatchEncoding:
        """Turn every value into a tensor of `tensor_type` ('np', 'pt', 'tf', 'jax'), importing it only now."""
        if tensor_type not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be one of {TENSOR_TYPES} or None, got {tensor_type!r}")
        import numpy as np

        convert = _tensor_converter(tensor_type)
        for key, value in self.items():
            if len(value) and isinstance(value[0], list) and len({len(row) for row in value}) > 1:
                raise ValueError(
                    f"cannot make a tensor of {key!r}: its rows have different lengths "
                    f"({sorted({len(row) for row in value})[:5]}...); pass padding=True or padding='max_length'")
            self[key] = convert(np.asarray(value, dtype=np.int64))
        return self

    def to(self, device) -> BatchEncoding:
        """Move PyTorch tensors to `device` (as v4 does); other values are left as they are."""
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self


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


def _pad_rows(rows: list[list], target: int, value, left: bool) -> list[list]:
    if left:
        return [[value] * (target - len(r)) + r if len(r) < target else r for r in rows]
    return [r + [value] * (target - len(r)) if len(r) < target else r for r in rows]
