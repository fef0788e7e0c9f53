"""What every pipeline shares: loading the model once, options at construction or at call,
v4's single-in/single-out, list-in/list-out and stream-in/iterator-out conventions, and the
batched forward (rows sorted by length, run with `unpad=True` so a batch of ragged texts computes
no padding)."""

from __future__ import annotations

import itertools
import os
import sys
from typing import Any, Iterable, Iterator

import numpy as np

from .. import backends, runtime
from ..config import RobertaConfig

__all__ = ["Pipeline", "PipelineIterator", "Row"]


class Row(dict):
    """One model input of a pipeline: "input_ids" (T,) plus what post-processing needs (offsets,
    masks, the window's encoding); several rows may belong to one input (QA windows, choices)."""


def _positive_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def is_stream(inputs: Any) -> bool:
    """Whether `inputs` are many inputs to answer lazily, as v4 answers a generator or a dataset
    (`KeyDataset`, a `datasets.Dataset` or one of its columns): any iterable, or sized and
    indexable, that is not a text, a dict, a list or a tuple."""
    if isinstance(inputs, (str, bytes, dict, list, tuple)):
        return False
    return hasattr(inputs, "__iter__") or (hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__"))


class PipelineIterator:
    """The results of a dataset input (sized and indexable, as v4's `KeyDataset` or a torch
    map-style `Dataset`), one by one and lazily, as a plain iterator; `len()` is v4's: the number
    of batches its loader reads (`batch_size` inputs each, 1 when none was given)."""

    def __init__(self, results: Iterator, size: int, batch_size: int | None):
        self._results, self._size, self._batch_size = results, size, batch_size or 1

    def __iter__(self) -> "PipelineIterator":
        return self

    def __next__(self) -> Any:
        return next(self._results)

    def __len__(self) -> int:
        return -(-self._size // self._batch_size)


def _items(inputs: Any) -> Iterator:
    # A map-style dataset (torch's `Dataset`, v4's `KeyDataset`) has no __iter__: read it by index.
    return iter(inputs) if hasattr(inputs, "__iter__") else (inputs[i] for i in range(len(inputs)))


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
    # v4's tasks whose `_sanitize_parameters` takes **kwargs (question-answering, zero-shot,
    # feature-extraction) pass over an option they do not know; the others refuse it
    ignores_unknown_options = False
    output_hidden_states = False
    token_fields: tuple[str, ...] = ()  # output fields with a token axis (B, T, ...), cut to each row's length

    def __init__(self, model, *, tokenizer=None, backend: str | None = None, device: Any = None,
                 batch_size: int | None = None, num_workers: int | None = None, progress: bool | None = None,
                 framework: str | None = None, model_kwargs: dict | None = None, config: Any = None,
                 torch_dtype: Any = None, dtype: Any = None, device_map: Any = None, revision: str | None = None,
                 token: Any = None, trust_remote_code: bool | None = None, use_fast: bool = True,
                 binary_output: bool = False, feature_extractor: Any = None, image_processor: Any = None,
                 processor: Any = None, modelcard: Any = None, args_parser: Any = None, code_revision: Any = None,
                 _commit_hash: Any = None, **options):
        if framework is not None:  # v4's name for the backend
            if framework not in backends.NAMES:
                raise ValueError(f"framework must be one of {', '.join(backends.NAMES)}, got {framework!r}")
            if backend is not None and backend != framework:
                raise ValueError(f"framework={framework!r} and backend={backend!r} disagree; give one of them")
            backend = framework
        # batch_size as given (None: not given, which v4's feature-extraction reads as 1), and the
        # rows run at once (8 when not given: sorted by length and unpadded, batches cost nothing)
        self._batch_size = None if batch_size is None else _positive_batch_size(batch_size)
        self.batch_size = batch_size or 8
        self.num_workers = num_workers  # v4's DataLoader workers: accepted, there is no loader here
        self.progress = progress
        self.binary_output = binary_output  # v4's flag (its command line's binary output): kept, as v4
        # v4's generic construction arguments: kept as given (a text pipeline does not read them);
        # `args_parser` (v4's input parsing), `code_revision` and `_commit_hash` (Hub pins) are taken and unused
        self.feature_extractor, self.image_processor = feature_extractor, image_processor
        self.processor, self.modelcard = processor, modelcard
        self.path = None
        device = _device_name(device)
        self._device = device
        # v4's Hub options go to the model's and the tokenizer's loading
        hub = {k: v for k, v in (("revision", revision), ("token", token)) if v is not None}
        if isinstance(tokenizer, tuple):  # v4's (name, {from_pretrained keywords})
            if len(tokenizer) != 2 or not isinstance(tokenizer[1], dict):
                raise TypeError("tokenizer as a tuple must be (name or path, {keywords}), as v4's pipeline takes it")
            tokenizer = _load_tokenizer(tokenizer[0], use_fast, {**hub, **tokenizer[1]})
        elif isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = _load_tokenizer(tokenizer, use_fast, hub)
        if isinstance(config, (str, os.PathLike)):
            config = RobertaConfig.from_pretrained(os.fspath(config), **hub)
        elif config is not None:
            from ..config import own_config

            config = own_config(config)  # ours, or v4's transformers.RobertaConfig converted
        if isinstance(model, (str, os.PathLike)):
            from ..commands import resolve_backend

            self.path = os.fspath(model)
            self.config = config if config is not None else RobertaConfig.from_pretrained(self.path, **hub)
            self.tokenizer = tokenizer if tokenizer is not None else _load_tokenizer(self.path, use_fast, hub)
            self.backend = resolve_backend(backend)
            kwargs = dict(model_kwargs or {})
            # v4's pipeline(): torch_dtype/dtype/device_map given both directly and in model_kwargs is an error
            for name, value in (("torch_dtype", torch_dtype), ("dtype", dtype), ("device_map", device_map)):
                if value is not None:
                    if name in kwargs:
                        raise ValueError(f"You cannot use both `pipeline(... {name}=..., model_kwargs={{\"{name}\":...}})` "
                                         f"as those arguments might conflict, use only one.)")
                    kwargs[name] = value
            kwargs.update(hub)
            if trust_remote_code is not None:
                kwargs["trust_remote_code"] = trust_remote_code
            if config is not None:
                kwargs["config"] = config
            if device is not None:
                kwargs["device_map"] = device  # v4: `device` wins over `device_map`
            self.model = runtime.load_model(self.backend, self.head, self._weights_path(), **_for_backend(self.backend, kwargs))
        else:
            if tokenizer is None:
                raise TypeError("a loaded model needs its tokenizer: pipeline(task, model, tokenizer=...)")
            self.backend = backend or _backend_of(model)
            self.model, self.tokenizer = model, tokenizer
            self.config = model.config
        self.options = self.check_options({**self.defaults, **self.sanitize(options)})

    @property
    def framework(self) -> str:
        """v4's name for the backend: "pt", "tf" or "flax"."""
        return self.backend

    @property
    def device(self) -> Any:
        """Where the model runs: for PyTorch its parameters' `torch.device` (as v4's
        `pipeline.device`), else the device asked for ("cpu" when none was)."""
        if self.backend == "pt":
            import torch

            parameter = next(iter(self.model.parameters()), None) if hasattr(self.model, "parameters") else None
            return parameter.device if parameter is not None else torch.device("cpu")
        return self._device if self._device is not None else "cpu"

    @property
    def dtype(self) -> Any:
        """The model's dtype (v4's `pipeline.dtype`): a torch dtype for PyTorch, else the backend's."""
        return getattr(self.model, "dtype", None)

    @property
    def torch_dtype(self) -> Any:
        """v4's older name of `dtype`."""
        return self.dtype

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """The model and its tokenizer into `save_directory` (v4's `Pipeline.save_pretrained`;
        `kwargs` go to the model's `save_pretrained`)."""
        if os.path.isfile(save_directory):
            raise ValueError(f"Provided path ({save_directory}) should be a directory, not a file")
        os.makedirs(save_directory, exist_ok=True)
        self.model.save_pretrained(save_directory, **kwargs)
        self.tokenizer.save_pretrained(save_directory)

    def predict(self, X: Any) -> Any:
        """v4's scikit-learn style name for calling the pipeline."""
        return self(X)

    def transform(self, X: Any) -> Any:
        """v4's scikit-learn style name for calling the pipeline."""
        return self(X)

    def _weights_path(self) -> str:
        return self.path

    # ------------------------------------------------------------------ options

    def sanitize(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options given at one place (the construction, or one call) in this task's own
        terms: v4's legacy names translated, checks that v4 makes on what one place gives.
        Construction and call are sanitized apart, then merged (the call's win), as v4 does."""
        return options

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options, validated; unknown names are refused with the ones this task takes (or,
        with `ignores_unknown_options`, left out, as v4's)."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown and self.ignores_unknown_options:
            return {k: v for k, v in options.items() if k in self.defaults}
        if unknown:
            known = [name for name in self.defaults if not name.startswith("_")]
            raise TypeError(f"{self.task} takes no option {', '.join(unknown)}; its options are {', '.join(known) or 'none'}")
        return options

    def __call__(self, inputs, *, batch_size: int | None = None, num_workers: int | None = None, **options):
        """Results for one input (one result), a list or tuple of inputs (a list, in input order)
        or a stream of inputs (a generator, a dataset: an iterator of results, computed a batch
        at a time as they are read; a dataset's iterator has v4's `len()`). `batch_size` and
        `num_workers` as v4's, for this call."""
        options = self.check_options({**self.options, **self.sanitize(options)})
        batch_size = self._batch_size if batch_size is None else _positive_batch_size(batch_size)
        if isinstance(inputs, (list, tuple)):
            return self.run(list(inputs), options, batch_size)
        if is_stream(inputs):
            results = self.stream(_items(inputs), options, batch_size)
            if hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__"):
                return PipelineIterator(results, len(inputs), batch_size)
            return results
        return self.run([inputs], options, batch_size)[0]

    def stream(self, items: Iterator, options: dict[str, Any], batch_size: int | None) -> Iterator:
        """The results of `items` one by one, read and run `batch_size` (or 8) inputs at a time."""
        while True:
            chunk = list(itertools.islice(items, batch_size or self.batch_size))
            if not chunk:
                return
            yield from self.run(chunk, options, batch_size)

    # ------------------------------------------------------------------ the batched forward

    def run(self, items: list, options: dict[str, Any], batch_size: int | None = None) -> list:
        """The results of `items`; `batch_size` is the one given (None: not given)."""
        rows_of = [self.preprocess(item, options) for item in items]
        flat = [(i, j, row) for i, rows in enumerate(rows_of) for j, row in enumerate(rows)]
        outputs = self.forward([row for _, _, row in flat], batch_size or self.batch_size)
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

    def check_lengths(self, rows: list[Row]) -> None:
        """A clear error for a row longer than the model's positions serve (before the model)."""
        for row in rows:
            n = len(row["input_ids"])
            if n > self.config.max_sequence_length:
                raise ValueError(
                    f"an input is {n} tokens long; this model reads at most {self.config.max_sequence_length} "
                    f"(max_position_embeddings={self.config.max_position_embeddings} minus the padding offset); shorten it"
                )

    def forward(self, rows: list[Row], batch_size: int) -> list[dict[str, np.ndarray]]:
        """The model's outputs for each row, in the rows' order: rows sorted by length (longest
        first) are run `batch_size` at a time, right-padded within the batch; each row gets its
        own outputs with the padding positions cut off."""
        self.check_lengths(rows)
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r]["input_ids"]))
        results: list[Any] = [None] * len(rows)
        batches = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
        show = self.progress if self.progress is not None else len(batches) > 20 and sys.stderr.isatty()
        for batch in _progress(batches, show, self.task):
            ids, mask = self.pad([rows[r]["input_ids"] for r in batch], masks=[rows[r].get("attention_mask") for r in batch])
            inputs = self.model_inputs(ids, mask)
            if any(rows[r].get("attention_mask") is not None for r in batch):
                inputs.pop("unpad", None)  # the tokenizer's own padding: its positions computed (and kept), as v4's
            out = runtime.run_model(self.backend, self.model, inputs)
            for b, r in enumerate(batch):
                results[r] = self.row_outputs(out, inputs, b, len(rows[r]["input_ids"]))
        return results

    def pad(self, sequences: list, side: str = "right", masks: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`input_ids` and `attention_mask` (B, longest) of token sequences, padded with the
        model's pad id on `side`; a sequence's own mask (`masks[b]`, the tokenizer's when it
        padded the text itself) is kept, else its tokens are all real."""
        length = max(len(s) for s in sequences)
        ids = np.full((len(sequences), length), self.config.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(sequences), length), dtype=np.int64)
        for b, sequence in enumerate(sequences):
            where = slice(0, len(sequence)) if side == "right" else slice(length - len(sequence), length)
            own = None if masks is None else masks[b]
            ids[b, where], mask[b, where] = sequence, (1 if own is None else own)
        return ids, mask

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
        # windows of a long text in the fast layout, also from a slow tokenizer (whose own call gives v4 slow's)
        call = getattr(self.tokenizer, "_call_fast_layout", self.tokenizer)
        encoding = call(text, pair, **kwargs) if pair is not None else call(text, **kwargs)
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


def _device_name(device: Any) -> Any:
    """v4's `device`: -1 is the CPU; a `torch.device` is named by its string ("cpu", "cuda:0"), which
    every backend reads."""
    if device == -1 or device == "-1":
        return "cpu"
    if type(device).__module__ == "torch" and type(device).__name__ == "device":
        return str(device)
    return device


def _for_backend(backend: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """v4's `pipeline()` model options for `backend`'s `from_pretrained`: PyTorch takes them as they
    are; TensorFlow and Flax take `torch_dtype` as `dtype` (a torch dtype by its name) and a
    `torch.device` as its name."""
    if backend == "pt":
        return kwargs
    kwargs = dict(kwargs)
    if "torch_dtype" in kwargs:
        value = kwargs.pop("torch_dtype")
        if "dtype" in kwargs:
            raise ValueError("give one of torch_dtype and dtype")
        kwargs["dtype"] = value
    if type(kwargs.get("dtype")).__module__ == "torch":
        kwargs["dtype"] = str(kwargs["dtype"]).removeprefix("torch.")
    if "device_map" in kwargs:
        kwargs["device_map"] = _device_name(kwargs["device_map"])
    return kwargs


def _load_tokenizer(path: str | os.PathLike, use_fast: bool, hub: dict[str, Any]):
    """The tokenizer of a directory (or Hub id); `use_fast=False` the slow class of the same kind
    (v4's `use_fast`), where the library has one."""
    from ..auto_tokenizer import load_tokenizer, tokenizer_class_for

    if not use_fast and os.path.isdir(path):
        name = tokenizer_class_for(path)
        if name.endswith("Fast"):
            import roberta_core

            slow = getattr(roberta_core, name.removesuffix("Fast"), None)
            if slow is not None:
                return slow.from_pretrained(os.fspath(path))
    return load_tokenizer(path, **hub)


def _progress(batches: list, show: bool, task: str) -> Iterable:
    if not show:
        return batches
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return batches
    return tqdm(batches, desc=task, unit="batch")
