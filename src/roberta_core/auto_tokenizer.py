"""The tokenizer of a checkpoint directory, whatever kind its files are: the one loader that the
`roberta` subcommands, pretraining and fine-tuning share. Imports no framework.

    load_tokenizer("ckpt")   # RobertaTokenizerFast for byte-level BPE files,
                             # XLMRobertaTokenizerFast / CamembertTokenizerFast for SentencePiece ones,
                             # WordLevelTokenizer for a word- or character-level tokenizer.json
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["load_tokenizer", "tokenizer_class_for", "WordLevelTokenizer", "require_bpe"]


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


# v4's tokenizer class names (without "Fast") -> the fast class we load for them: (module, class)
TOKENIZER_CLASSES = {
    "RobertaTokenizer": ("tokenization_fast", "RobertaTokenizerFast"),
    "XLMRobertaTokenizer": ("tokenization_xlm_roberta_fast", "XLMRobertaTokenizerFast"),
    "CamembertTokenizer": ("tokenization_xlm_roberta_fast", "CamembertTokenizerFast"),
}
SENTENCEPIECE_FILE = "sentencepiece.bpe.model"


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{path} is not a JSON file: {e}") from None
    return data if isinstance(data, dict) else {}


def _class(name: str):
    import importlib

    module, attr = TOKENIZER_CLASSES[name]
    return getattr(importlib.import_module(f".{module}", __package__), attr)


def _sentencepiece_class(path: Path) -> str:
    """XLM-R's or CamemBERT's fast tokenizer for SentencePiece files: by config.json's model_type."""
    family = _read_json(path / "config.json").get("model_type")
    return "CamembertTokenizerFast" if family == "camembert" else "XLMRobertaTokenizerFast"


def tokenizer_class_for(path: str | os.PathLike) -> str:
    """The name of the class `load_tokenizer` makes for the local directory `path`, from its files
    alone (nothing is loaded): "RobertaTokenizerFast", "XLMRobertaTokenizerFast",
    "CamembertTokenizerFast" or "WordLevelTokenizer"; FileNotFoundError without tokenizer files."""
    path = Path(path)
    named = _read_json(path / "tokenizer_config.json").get("tokenizer_class")
    if isinstance(named, str) and named.removesuffix("Fast") in ("XLMRobertaTokenizer", "CamembertTokenizer"):
        return named.removesuffix("Fast") + "Fast"  # (RoBERTa's are found by their files)
    tokenizer_json = path / "tokenizer.json"
    if tokenizer_json.is_file():
        try:
            kind = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["type"]
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise ValueError(f"{tokenizer_json} is not a tokenizers file: {e}") from None
        if kind == "Unigram":
            return _sentencepiece_class(path)
        if kind != "BPE":
            return "WordLevelTokenizer"
    elif not ((path / "vocab.json").is_file() and (path / "merges.txt").is_file()):
        if (path / SENTENCEPIECE_FILE).is_file():
            return _sentencepiece_class(path)
        raise FileNotFoundError(
            f"{path} has no tokenizer files (tokenizer.json, vocab.json + merges.txt, or {SENTENCEPIECE_FILE}); "
            "copy them from the checkpoint the model was trained with"
        )
    return "RobertaTokenizerFast"


def load_tokenizer(path: str | os.PathLike, **options):
    """The tokenizer of a checkpoint (or tokenizer) directory, or of a Hub repo id through the
    Hugging Face cache (`options`: `roberta_core.hub.HUB_OPTIONS`, and the tokenizer's own
    keywords, `model_max_length=`, ..., which its `from_pretrained` checks).

    `tokenizer_config.json`'s `tokenizer_class` decides when it names v4's XLMRobertaTokenizer or
    CamembertTokenizer (with or without "Fast": the fast class is loaded, as v4's AutoTokenizer
    does). Else the files do: `RobertaTokenizerFast` for byte-level BPE files
    (`vocab.json` + `merges.txt`, or a BPE `tokenizer.json`); `XLMRobertaTokenizerFast` for a
    Unigram `tokenizer.json` or a `sentencepiece.bpe.model` alone (converted), or
    `CamembertTokenizerFast` when config.json's model_type is camembert; `WordLevelTokenizer`
    for a word- or character-level `tokenizer.json`. A path that is neither a directory nor a
    repo id, or a directory without tokenizer files, is refused with the files it needs."""
    from .hub import HUB_OPTIONS, is_hub_id, resolve_pretrained
    from .tokenizer_files import V4_LOADING_KEYWORDS

    options = {k: v for k, v in options.items() if k not in V4_LOADING_KEYWORDS}  # v4's, not kept
    # the others are the tokenizer's own (`model_max_length`, `add_prefix_space`, ...), as v4's AutoTokenizer
    settings = {k: v for k, v in options.items() if k not in HUB_OPTIONS}
    options = {k: v for k, v in options.items() if k in HUB_OPTIONS}
    if not Path(path).is_dir() and not (isinstance(path, str) and is_hub_id(path)):
        raise FileNotFoundError(f"{path}: no such checkpoint or tokenizer directory (nor a Hub repo id)")
    # A directory as it is (with `subfolder`); a repo id's tokenizer files fetched into the cache.
    path = resolve_pretrained(path, options, need=("tokenizer",))
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint or tokenizer directory")
    name = tokenizer_class_for(path)
    if name == "WordLevelTokenizer":
        if settings:
            raise TypeError(f"load_tokenizer() got unexpected keyword argument(s) {', '.join(map(repr, sorted(settings)))}"
                            " for a word-level tokenizer")
        config_file = path / "tokenizer_config.json"
        max_length = json.loads(config_file.read_text(encoding="utf-8")).get("model_max_length") if config_file.is_file() else None
        return WordLevelTokenizer(path / "tokenizer.json", max_length)
    return _class(name.removesuffix("Fast")).from_pretrained(path, **settings)


def require_bpe(tokenizer, path: str | os.PathLike, what: str):
    """`tokenizer` if it is a byte-level BPE or SentencePiece one (what batched encoding with
    offsets, truncation and `add_special_tokens` needs: pretraining, fine-tuning); else a
    ValueError naming `path`."""
    if isinstance(tokenizer, WordLevelTokenizer):
        raise ValueError(
            f"{path} holds a word- or character-level tokenizer; {what} needs a byte-level BPE one "
            "(vocab.json + merges.txt, or a BPE tokenizer.json)"
        )
    return tokenizer
