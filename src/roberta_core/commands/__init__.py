"""The `roberta` subcommands that use a checkpoint: `fill-mask`, `tokenize`, `classify`, `info`,
`parity` (one module each, `add_arguments(parser)` + `run(args)`; `convert` lives in
`roberta_core.convert`). What they share is here: reading a checkpoint's tokenizer, choosing a
backend, and turning text into a checked batch of one. No framework is imported here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import runtime
from ..config import RobertaConfig

__all__ = ["load_tokenizer", "WordLevelTokenizer", "add_backend_argument", "resolve_backend", "encode", "print_json"]


class WordLevelTokenizer:
    """A `tokenizers` tokenizer.json whose model is not byte-level BPE (the word- and
    character-level vocabularies `--from fairseq` writes for models trained without a BPE), with
    the few methods of `RobertaTokenizerFast` the commands use."""

    def __init__(self, path: str | os.PathLike, model_max_length: int | None = None):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(os.fspath(path))
        self.model_max_length = model_max_length
        vocab = self._tokenizer.get_vocab(with_added_tokens=True)
        for role, token in (("mask", "<mask>"), ("pad", "<pad>"), ("bos", "<s>"), ("eos", "</s>"), ("unk", "<unk>")):
            setattr(self, f"{role}_token", token)
            setattr(self, f"{role}_token_id", vocab.get(token))
        self.all_special_ids = sorted(i for i in (self.mask_token_id, self.pad_token_id, self.bos_token_id,
                                                  self.eos_token_id, self.unk_token_id) if i is not None)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def __call__(self, text: str, text_pair: str | None = None) -> dict[str, list[int]]:
        encoding = self._tokenizer.encode(text, text_pair)
        return {"input_ids": list(encoding.ids), "attention_mask": list(encoding.attention_mask)}

    def convert_ids_to_tokens(self, ids):
        return [self._tokenizer.id_to_token(int(i)) for i in ids]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer of a checkpoint (or tokenizer) directory: `RobertaTokenizerFast` for byte-level
    BPE files (`vocab.json` + `merges.txt`, or a BPE `tokenizer.json`), `WordLevelTokenizer` for a
    word- or character-level `tokenizer.json`."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint directory")
    tokenizer_json = path / "tokenizer.json"
    if tokenizer_json.is_file():
        try:
            kind = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["type"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{tokenizer_json} is not a tokenizers file: {e}") from None
        if kind != "BPE":
            settings = path / "tokenizer_config.json"
            max_length = json.loads(settings.read_text(encoding="utf-8")).get("model_max_length") if settings.is_file() else None
            return WordLevelTokenizer(tokenizer_json, max_length)
    elif not ((path / "vocab.json").is_file() and (path / "merges.txt").is_file()):
        raise FileNotFoundError(
            f"{path} has no tokenizer files (tokenizer.json, or vocab.json + merges.txt); "
            "copy them from the checkpoint the model was trained with"
        )
    from ..tokenization_fast import RobertaTokenizerFast

    return RobertaTokenizerFast.from_pretrained(path)


def add_backend_argument(parser) -> None:
    parser.add_argument(
        "--backend", choices=tuple(runtime.BACKENDS), default=None,
        help="framework to run the model in (default: the first installed of pt, flax, tf)",
    )


def resolve_backend(choice: str | None) -> str:
    """The backend to use: the one asked for (it must be installed), else the first installed."""
    if choice is not None:
        runtime.require(choice)
        return choice
    for backend in ("pt", "flax", "tf"):
        if runtime.available(backend):
            return backend
    raise ImportError("no backend is installed; install one: pip install 'roberta3[torch]' (or [tf], [flax])")


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
