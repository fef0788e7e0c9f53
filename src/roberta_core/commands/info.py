"""`roberta info CKPT`: what a checkpoint is — the family member (model_type and v4's class name),
config summary, parameter count, the heads its weights serve, the weight formats and tokenizer
files present. NumPy only."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from .. import checkpoint, weights
from ..config import CONFIG_NAME, RobertaConfig, read_json_file
from ..pretrained import is_floating, nonfinite
from . import checkpoint_directory, print_json

__all__ = ["info", "add_arguments", "run"]

_FORMAT_OF = (
    (re.compile(r"model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json"), "safetensors"),
    (re.compile(r"pytorch_model(-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json"), "bin"),
    (re.compile(r"tf_model(-\d+-of-\d+)?\.h5|tf_model\.h5\.index\.json"), "h5"),
    (re.compile(r"flax_model(-\d+-of-\d+)?\.msgpack|flax_model\.msgpack\.index\.json"), "msgpack"),
)


def _formats(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for file in sorted(path.iterdir()):
        for pattern, name in _FORMAT_OF:
            if file.is_file() and pattern.fullmatch(file.name):
                found.setdefault(name, []).append(file.name)
    return found


def _tokenizer(path: Path) -> str | None:
    """One line on the tokenizer files; a file that cannot be read (not UTF-8, not JSON, nested
    absurdly deep, not a tokenizer) is reported, with the reason, rather than raised: `info`
    describes a checkpoint, whatever it holds."""
    if (path / "tokenizer.json").is_file():
        try:
            model = read_json_file(path / "tokenizer.json")["model"]
            return f"tokenizer.json ({model['type']}, {len(model.get('vocab') or {})} entries)"
        except ValueError as e:
            return f"tokenizer.json (unreadable: {_reason(e, path / 'tokenizer.json')})"
        except (KeyError, TypeError, AttributeError):
            return "tokenizer.json (unreadable: not a tokenizers model)"
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        try:
            vocab = read_json_file(path / "vocab.json")
        except ValueError as e:
            return f"vocab.json + merges.txt (vocab.json unreadable: {_reason(e, path / 'vocab.json')})"
        if not isinstance(vocab, dict):
            return "vocab.json + merges.txt (vocab.json unreadable: not a mapping of tokens to ids)"
        return f"vocab.json + merges.txt (byte-level BPE, {len(vocab)} entries)"
    if (path / "sentencepiece.bpe.model").is_file():  # XLM-R, CamemBERT without a tokenizer.json
        return "sentencepiece.bpe.model (SentencePiece)"
    return None


def _tokenizer_class(path: Path) -> str | None:
    """The class `load_tokenizer` makes for the files (None without readable tokenizer files)."""
    from ..auto_tokenizer import tokenizer_class_for

    try:
        return tokenizer_class_for(path)
    except (ValueError, OSError, RecursionError):
        return None


def _short(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _reason(error: ValueError, file: Path) -> str:
    """The error's text without the file name the summary line already gives."""
    text = str(error)
    return text[len(str(file)):].lstrip(": ") if text.startswith(str(file)) else text


def info(path: str | os.PathLike) -> dict:
    """A summary of the checkpoint directory (or Hub repo id) `path` (reads the preferred weights
    file, one tensor at a time)."""
    if not Path(path).is_dir():
        path = checkpoint_directory(path)
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint directory")
    if not (path / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint: it has no {CONFIG_NAME}")
    config = RobertaConfig.from_pretrained(path)
    weights_file = checkpoint.find_weights_file(path)
    shapes, dtypes, not_finite, not_float = {}, {}, [], []
    for key, array in checkpoint.iter_state_dict(weights_file):
        shapes[key] = tuple(array.shape)
        dtypes[array.dtype.name] = dtypes.get(array.dtype.name, 0) + array.size
        not_finite += nonfinite([(key, array)])
        if not is_floating(array.dtype) and not weights.is_buffer(key):
            not_float.append(f"{key} ({array.dtype.name})")
    try:
        head = weights.head_for_architecture(config.architectures[0]) if config.architectures else None
    except ValueError:
        head = None
    plan = weights.plan_load(config, head, shapes) if head is not None else None
    problems = plan.report().splitlines() if plan is not None else []
    if not_float:  # a backend's from_pretrained refuses these
        problems.append(f"not floating point ({len(not_float)}): {_short(not_float)}")
    if not_finite:
        problems.append(f"NaN or Inf values ({len(not_finite)}): {_short(not_finite)}")
    parameters = sum(
        math.prod(s) for k, s in shapes.items()
        if not (k in weights.TIED and weights.TIED[k] in shapes) and not k.endswith(("position_ids", "token_type_ids"))
    )
    return {
        "path": str(path),
        "architecture": config.architectures[0] if config.architectures else None,
        "model_type": config.model_type,
        # v4's class for these weights in this family member (the head the weights serve best)
        "family_class": weights.architecture_name(head or _best_head(config, shapes), config.model_type),
        "config": {k: getattr(config, k) for k in (
            "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "hidden_act",
            "vocab_size", "max_position_embeddings", "type_vocab_size", "position_embedding_type", "is_decoder",
            "layer_norm_eps")},
        "max_sequence_length": config.max_sequence_length,
        "labels": {str(i): v for i, v in config.id2label.items()} if any(k.startswith("classifier.") for k in shapes) else None,
        "parameters": parameters,
        "dtypes": dtypes,
        "heads": weights.heads_served(config, shapes),
        "weights_read": weights_file.name,
        "formats": _formats(path),
        "tokenizer": _tokenizer(path),
        "tokenizer_class": _tokenizer_class(path),
        "problems": problems,
    }


def _best_head(config: RobertaConfig, shapes: dict) -> str:
    """The head to name when config.json records no class: the one the keys show, else the bare model."""
    try:
        return weights.head_for_architecture(checkpoint.guess_architecture(shapes))
    except ValueError:
        return "model"


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory or Hub repo id")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    result = info(args.checkpoint)
    if args.json:
        print_json(result)
        return 0
    c = result["config"]
    print(f"checkpoint   {result['path']}")
    print(f"architecture {result['architecture'] or 'not recorded'}")
    print(f"model type   {result['model_type']} (v4 class {result['family_class']})")
    print(
        f"config       {c['num_hidden_layers']} layers, hidden {c['hidden_size']}, {c['num_attention_heads']} heads, "
        f"intermediate {c['intermediate_size']} ({c['hidden_act']}), vocab {c['vocab_size']}, "
        f"{c['max_position_embeddings']} positions (sequences up to {result['max_sequence_length']} tokens), "
        f"{c['type_vocab_size']} token type(s), {c['position_embedding_type']} positions"
        + (", decoder" if c["is_decoder"] else "")
    )
    if result["labels"]:
        print(f"labels       {', '.join(f'{i}: {v}' for i, v in result['labels'].items())}")
    dtypes = ", ".join(f"{name} {n:,}" for name, n in result["dtypes"].items())
    print(f"parameters   {result['parameters']:,} ({dtypes})")
    print(f"heads        {', '.join(result['heads']) or 'none complete'}")
    print(f"formats      {'; '.join(f'{k}: ' + ', '.join(v) for k, v in result['formats'].items())} (read {result['weights_read']})")
    print(f"tokenizer    {result['tokenizer'] or 'none (no tokenizer.json, vocab.json + merges.txt, sentencepiece.bpe.model)'}"
          + (f", loaded as {result['tokenizer_class']}" if result["tokenizer_class"] else ""))
    for line in result["problems"]:
        print(f"note         {line}")
    return 0
