"""What every pipeline shares: loading the model once, options at construction or at call,
v4's single-in/single-out and list-in/list-out conventions, and the batched forward (rows sorted
by length, run with `unpad=True` so a batch of ragged texts computes no padding)."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable

import numpy as np

from .. import backends, runtime
from ..config import RobertaConfig

__all__ = ["Pipeline", "Row"]


class Row(dict):
    """One model input of a pipeline: "input_ids" (T,) plus what post-processing needs (offsets,
    masks, the window's encoding); several rows may belong to one input (QA windows, choices)."""


def _backend_of(model: Any) -> str:
    package = type(model).__module__.split(".")[0]
    for name in backends.NAMES:
        if backends.get(name).package == package:
            return name
    raise TypeError(
        f"model must be a checkpoint directory or a model of one of the backends ({', '.join(backends.NAMES)}), "
        f"got a {type(model).__module__}.{type(model).__name__}"
    )


class Pipeline:
    """A task on a model, loaded once. Subclasses set `task`, `head`, `defaults` (the options they
    take, with v4's defaults) and implement `preprocess(item, options) -> list[Row]` and
    `postprocess(item, rows, outputs, options)` (`outputs` one dict of NumPy arrays per row, padding
    cut off)."""

    task = ""
    head = "model"
    defaults: dict[str, Any] = {}
    output_hidden_states = False
    token_fields: tuple[str, ...] = ()  # output fields with a token axis (B, T, ...), cut to each row's length

    def __init__(self, model, *, tokenizer=None, backend: str | None = None, device: str | None = None,
                 batch_size: int = 8, progress: bool | None = None, **options):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.progress = progress
        self.path = None
        if isinstance(model, (str, os.PathLike)):
            from ..commands import load_tokenizer, resolve_backend

            self.path = os.fspath(model)
            self.config = RobertaConfig.from_pretrained(self.path)
            self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(self.path)
            self.backend = resolve_backend(backend)
            kwargs = {} if device is None else {"device_map": device}
            self.model = runtime.load_model(self.backend, self.head, self._weights_path(), **kwargs)
        else:
            if tokenizer is None:
                raise TypeError("a loaded model needs its tokenizer: pipeline(task, model, tokenizer=...)")
            self.backend = backend or _backend_of(model)
            self.model, self.tokenizer = model, tokenizer
            self.config = model.config
        self.options = self.check_options({**self.defaults, **options})

    def _weights_path(self) -> str:
        return self.path

    # ------------------------------------------------------------------ options

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options, validated; unknown names are refused with the ones this task takes."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise TypeError(f"{self.task} takes no option {', '.join(unknown)}; its options are {', '.join(self.defaults) or 'none'}")
        return options

    def __call__(self, inputs, **options):
        """Results for one input (one result) or a list of inputs (a list, in input order)."""
        options = self.check_options({**self.options, **options})
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        results = self.run(items, options)
        return results[0] if single else results

    # ------------------------------------------------------------------ the batched forward

    def run(self, items: list, options: dict[str, Any]) -> list:
        rows_of = [self.preprocess(item, options) for item in items]
        flat = [(i, j, row) for i, rows in enumerate(rows_of) for j, row in enumerate(rows)]
        outputs = self.forward([row for _, _, row in flat])
        per_item: list[list] = [[None] * len(rows) for rows in rows_of]
        for (i, j, _), out in zip(flat, outputs):
            per_item[i][j] = out
        return [self.postprocess(item, rows, outs, options) for item, rows, outs in zip(items, rows_of, per_item)]

    def model_inputs(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if ids.shape[0] > 1 and not mask.all():
            inputs["unpad"] = True  # the real tokens only: sorting by length left little padding, unpad removes the rest
        if self.output_hidden_states:
            inputs["output_hidden_states"] = True
        return inputs

    def forward(self, rows: list[Row]) -> list[dict[str, np.ndarray]]:
        """The model's outputs for each row, in the rows' order: rows sorted by length (longest
        first) are run `batch_size` at a time, right-padded within the batch; each row gets its
        own outputs with the padding positions cut off."""
        for row in rows:
            n = len(row["input_ids"])
            if n > self.config.max_sequence_length:
                raise ValueError(
                    f"an input is {n} tokens long; this model reads at most {self.config.max_sequence_length} "
                    f"(max_position_embeddings={self.config.max_position_embeddings} minus the padding offset); shorten it"
                )
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r]["input_ids"]))
        results: list[Any] = [None] * len(rows)
        batches = [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        show = self.progress if self.progress is not None else len(batches) > 20 and sys.stderr.isatty()
        for batch in _progress(batches, show, self.task):
            length = len(rows[batch[0]]["input_ids"])
            ids = np.full((len(batch), length), self.config.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(batch), length), dtype=np.int64)
            for b, r in enumerate(batch):
                n = len(rows[r]["input_ids"])
                ids[b, :n] = rows[r]["input_ids"]
                mask[b, :n] = 1
            inputs = self.model_inputs(ids, mask)
            out = runtime.run_model(self.backend, self.model, inputs)
            for b, r in enumerate(batch):
                results[r] = self.row_outputs(out, inputs, b, len(rows[r]["input_ids"]))
        return results

    def row_outputs(self, out: dict[str, Any], inputs: dict[str, Any], b: int, n: int) -> dict[str, Any]:
        """Batch row `b`'s outputs (`n` real tokens) from the batch's `out` for `inputs`."""
        return {k: self.cut(k, v, b, n) for k, v in out.items()}

    def cut(self, key: str, value: Any, b: int, n: int) -> Any:
        """Row `b`'s part of an output field, its first `n` (real) tokens where it has a token axis."""
        if isinstance(value, tuple):
            return tuple(self.cut(key, v, b, n) for v in value)
        value = np.asarray(value)
        return value[b, :n] if key in self.token_fields or key == "hidden_states" else value[b]

    # ------------------------------------------------------------------ the task's part

    def preprocess(self, item, options) -> list[Row]:
        raise NotImplementedError

    def postprocess(self, item, rows: list[Row], outputs: list[dict], options):
        raise NotImplementedError

    def encode(self, text: str, pair: str | None = None, **kwargs):
        """The tokenizer's encoding of one text (or pair), ids checked against the vocabulary."""
        encoding = self.tokenizer(text, pair, **kwargs) if pair is not None else self.tokenizer(text, **kwargs)
        ids = encoding["input_ids"]
        flat = ids if not ids or isinstance(ids[0], int) else [i for window in ids for i in window]
        if flat and max(flat) >= self.config.vocab_size:
            raise ValueError(
                f"the tokenizer gives id {max(flat)}, outside the model's vocabulary of {self.config.vocab_size}; "
                "the tokenizer does not belong to this model"
            )
        return encoding

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, backend={self.backend!r}, path={self.path!r})"


def _progress(batches: list, show: bool, task: str) -> Iterable:
    if not show:
        return batches
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return batches
    return tqdm(batches, desc=task, unit="batch")
