"""The `roberta` subcommands, one module each with `add_arguments(parser)` + `run(args) -> int`:
`pretrain`, `finetune`, `demo` (front ends of `roberta_core.app`), `convert`, `parity`,
`fill-mask`, `tokenize`, `classify`, `info`. What the checkpoint commands share is here: finding
a checkpoint by name (a directory, or a Hub repo id through the Hugging Face cache:
`checkpoint_directory`), reading its tokenizer (`roberta_core.auto_tokenizer.load_tokenizer`),
choosing a backend, and turning text into a checked batch of one. No framework is imported here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import backends, runtime
from ..auto_tokenizer import WordLevelTokenizer, load_tokenizer  # the library's one loader, shared with the application
from ..config import RobertaConfig
from ..hub import resolve_pretrained

__all__ = ["checkpoint_directory", "load_tokenizer", "WordLevelTokenizer", "add_backend_argument", "resolve_backend", "encode", "print_json"]


def checkpoint_directory(name: str | os.PathLike, *, prefer: str = "safetensors") -> Path:
    """The local directory of checkpoint `name`: a directory as it is, or a Hub repo id's
    config.json, weights (`prefer` first) and tokenizer files (when it has them) from the
    Hugging Face cache, downloaded unless offline (`roberta_core.hub.resolve_pretrained`)."""
    return resolve_pretrained(name, need=("config", "weights"), want=("tokenizer",), prefer=prefer)


def add_backend_argument(parser) -> None:
    parser.add_argument(
        "--backend", choices=backends.NAMES, default=None,
        help=f"framework to run the model in (default: the first installed of {', '.join(backends.PREFERRED)})",
    )


def resolve_backend(choice: str | None) -> str:
    """The backend to use: the one asked for (it must be installed), else the first installed."""
    if choice is not None:
        runtime.require(choice)
        return choice
    for backend in backends.PREFERRED:
        if runtime.available(backend):
            return backend
    first, *others = (backends.get(b).extra for b in backends.PREFERRED)
    raise ImportError(
        f"no backend is installed; install one: pip install 'roberta3[{first}]' (or {', '.join(f'[{e}]' for e in others)})"
    )


def encode(tokenizer, config: RobertaConfig, text: str, pair: str | None = None) -> dict[str, np.ndarray]:
    """A batch of one: `input_ids` and `attention_mask`, (1, T) int64; refuses a text the model cannot read."""
    encoding = tokenizer(text, pair) if pair is not None else tokenizer(text)
    ids = np.asarray([encoding["input_ids"]], dtype=np.int64)
    if ids.shape[1] > config.max_sequence_length:
        raise ValueError(
            f"the input is {ids.shape[1]} tokens long; this model reads at most {config.max_sequence_length} "
            f"(max_position_embeddings={config.max_position_embeddings} minus the padding offset); shorten it"
        )
    if ids.size and (ids.max() >= config.vocab_size):
        raise ValueError(
            f"the tokenizer gives id {int(ids.max())}, outside the model's vocabulary of {config.vocab_size}; "
            "the tokenizer files do not belong to this checkpoint"
        )
    return {"input_ids": ids, "attention_mask": np.asarray([encoding["attention_mask"]], dtype=np.int64)}


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))
