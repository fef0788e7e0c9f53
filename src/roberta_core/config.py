"""RobertaConfig: the hyper-parameters of a RoBERTa model, read from and written to the
`config.json` files that Hugging Face `transformers` v4 writes.

Every field of v4's `RobertaConfig` (and the `PretrainedConfig` fields RoBERTa uses) exists
with v4's default. Keys this class does not know (`transformers_version`, `dtype`, `_name_or_path`,
...) are kept as attributes and written back, so a round trip loses nothing.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from .fileio import atomic_write_text

__all__ = ["RobertaConfig", "PRESETS", "ACTIVATIONS", "POSITION_EMBEDDING_TYPES", "PROBLEM_TYPES"]

CONFIG_NAME = "config.json"

# Activation names `transformers` v4 accepts for `hidden_act`; every backend implements all of them.
ACTIVATIONS = (
    "gelu",  # exact, erf-based
    "gelu_python",  # the same function, v4 wrote it in Python
    "gelu_new",  # tanh approximation (GPT-2)
    "gelu_pytorch_tanh",  # tanh approximation, PyTorch's formula
    "gelu_fast",  # tanh approximation, another constant layout
    "gelu_accurate",
    "quick_gelu",  # x * sigmoid(1.702 x)
    "gelu_10",  # exact gelu clipped to [-10, 10]
    "relu",
    "relu2",
    "relu6",
    "leaky_relu",
    "silu",
    "swish",
    "mish",
    "tanh",
    "sigmoid",
    "linear",
    "laplace",
)
POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")

# v4 defaults. Order is the order `to_dict` writes.
_DEFAULTS: dict[str, Any] = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "position_embedding_type": "absolute",
    "use_cache": True,
    "classifier_dropout": None,
    "is_decoder": False,
    "add_cross_attention": False,
    "problem_type": None,
    "tie_word_embeddings": True,
    "architectures": None,
    "output_attentions": False,
    "output_hidden_states": False,
    "return_dict": True,
    "model_type": "roberta",
}

_INT_FIELDS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "max_position_embeddings", "type_vocab_size",
)
_TOKEN_FIELDS = ("pad_token_id", "bos_token_id", "eos_token_id")
_PROB_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob")
_BOOL_FIELDS = (
    "use_cache", "is_decoder", "add_cross_attention", "tie_word_embeddings",
    "output_attentions", "output_hidden_states", "return_dict",
)

# The published checkpoints differ from the class defaults: 514 positions (512 tokens after the
# padding offset), a single token type, and LayerNorm eps 1e-5.
PRESETS: dict[str, dict[str, Any]] = {
    "roberta-base": dict(
        vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
        architectures=["RobertaForMaskedLM"],
    ),
    "roberta-large": dict(
        vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
        intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
        architectures=["RobertaForMaskedLM"],
    ),
    "distilroberta-base": dict(
        vocab_size=50265, hidden_size=768, num_hidden_layers=6, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
        architectures=["RobertaForMaskedLM"],
    ),
    # A model for the pretraining recipe on CPU: 128 tokens, 4 layers of 256.
    "small": dict(
        vocab_size=8192, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=1024, max_position_embeddings=130, type_vocab_size=1, layer_norm_eps=1e-5,
    ),
    # For tests: non-square matrices everywhere a transposition could hide (intermediate 37).
    "tiny": dict(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5,
    ),
}


class RobertaConfig:
    """Hyper-parameters of a RoBERTa model (encoder, heads, decoder mode).

    Construct with keyword arguments (v4 names and defaults), from a preset
    (`RobertaConfig.from_preset("roberta-base")`), or from a checkpoint directory
    (`RobertaConfig.from_pretrained(dir)`). Invalid values raise `ValueError`/`TypeError`
    naming the field and the allowed range.
    """

    model_type = "roberta"

    def __init__(self, **kwargs: Any):
        num_labels = kwargs.pop("num_labels", None)
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        # v4.56+ writes `dtype`; earlier releases wrote `torch_dtype`. Keep whichever came.
        values = dict(_DEFAULTS)
        values.update(kwargs)
        for key, value in values.items():
            object.__setattr__(self, key, value)
        self._extra_keys = [k for k in kwargs if k not in _DEFAULTS]
        if id2label is not None:
            self.id2label = _int_keys(id2label, "id2label")
            if num_labels is not None and int(num_labels) != len(self.id2label):
                raise ValueError(
                    f"num_labels={num_labels} disagrees with id2label, which has "
                    f"{len(self.id2label)} entries; give one of them or make them agree"
                )
        else:
            self.num_labels = 2 if num_labels is None else num_labels
        if label2id is not None:
            self.label2id = {str(k): int(v) for k, v in dict(label2id).items()}
        else:
            self.label2id = {v: k for k, v in self.id2label.items()}
        self.validate()

    # ------------------------------------------------------------------ labels
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"num_labels must be a positive integer, got {n!r}")
        old = getattr(self, "id2label", None)
        if old is None or len(old) != n:
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
            self.label2id = {v: k for k, v in self.id2label.items()}

    # ------------------------------------------------------------------ derived
    @property
    def head_dim(self) -> int:
        """Size of one attention head: hidden_size / num_attention_heads."""
        return self.hidden_size // self.num_attention_heads

    @property
    def max_sequence_length(self) -> int:
        """Longest sequence the position table can serve: positions start after padding_idx."""
        return self.max_position_embeddings - self.pad_token_id - 1

    @property
    def use_return_dict(self) -> bool:
        return bool(self.return_dict)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise a clear error for any value a model cannot be built from."""
        for name in _INT_FIELDS:
            _check_int(name, getattr(self, name), minimum=1)
        for name in _TOKEN_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            _check_int(name, value, minimum=0)
            if value >= self.vocab_size:
                raise ValueError(
                    f"{name}={value} is outside the vocabulary: allowed range is "
                    f"0..{self.vocab_size - 1} (vocab_size={self.vocab_size})"
                )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads="
                f"{self.num_attention_heads}; choose a head count that divides it"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act={self.hidden_act!r} is not supported; choose one of {', '.join(ACTIVATIONS)}")
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"position_embedding_type={self.position_embedding_type!r} is not supported; "
                f"choose one of {', '.join(POSITION_EMBEDDING_TYPES)}"
            )
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(
                f"problem_type={self.problem_type!r} is not supported; choose one of "
                f"{', '.join(repr(p) for p in PROBLEM_TYPES)}"
            )
        for name in _PROB_FIELDS:
            _check_prob(name, getattr(self, name))
        if self.classifier_dropout is not None:
            _check_prob("classifier_dropout", self.classifier_dropout)
        for name in ("initializer_range", "layer_norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.pad_token_id is not None and self.max_position_embeddings <= self.pad_token_id + 1:
            raise ValueError(
                f"max_position_embeddings={self.max_position_embeddings} leaves no position for a token: "
                f"positions start at pad_token_id + 1 = {self.pad_token_id + 1}; it must be at least "
                f"{self.pad_token_id + 2}"
            )
        if self.architectures is not None and not (
            isinstance(self.architectures, list) and all(isinstance(a, str) for a in self.architectures)
        ):
            raise TypeError(f"architectures must be a list of class names, got {self.architectures!r}")

    # ------------------------------------------------------------------ dict / json
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> "RobertaConfig":
        """Build from a `config.json`-style mapping; `overrides` win over the mapping's values."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a config must be a JSON object (a mapping), got {type(data).__name__}")
        merged = dict(data)
        model_type = merged.get("model_type", "roberta")
        if model_type not in ("roberta", "xlm-roberta", "camembert"):
            raise ValueError(
                f"config has model_type={model_type!r}; this library builds RoBERTa models (model_type 'roberta')"
            )
        merged.pop("model_type", None)
        if "num_labels" in overrides:
            merged.pop("id2label", None)
            merged.pop("label2id", None)
        merged.update(overrides)
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-ready dict, unknown keys from the source included."""
        out: dict[str, Any] = {}
        for key in _DEFAULTS:
            out[key] = copy.deepcopy(getattr(self, key))
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = dict(self.label2id)
        for key in self._extra_keys:
            out[key] = copy.deepcopy(getattr(self, key))
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "RobertaConfig":
        """One of the named presets (`roberta-base`, `roberta-large`, `distilroberta-base`, `small`, `tiny`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> "RobertaConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such config file") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        try:
            return cls.from_dict(data, **overrides)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{path}: {e}") from None

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides: Any) -> "RobertaConfig":
        """Read `config.json` from a checkpoint directory (or a path to the file itself),
        or build a named preset when `path` is a preset name."""
        p = Path(path)
        if p.is_dir():
            return cls.from_json_file(p / CONFIG_NAME, **overrides)
        if p.is_file():
            return cls.from_json_file(p, **overrides)
        if str(path) in PRESETS:
            return cls.from_preset(str(path), **overrides)
        raise FileNotFoundError(
            f"{path}: not a checkpoint directory, a config.json file, or a preset ({', '.join(PRESETS)})"
        )

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write `config.json` into `directory` (created if needed), atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / CONFIG_NAME
        atomic_write_text(target, self.to_json_string())
        return target

    # ------------------------------------------------------------------ python protocol
    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        if not key.startswith("_") and key not in _DEFAULTS and key not in ("num_labels", "id2label", "label2id"):
            extra = self.__dict__.get("_extra_keys")
            if extra is not None and key not in extra:
                extra.append(key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RobertaConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        # Equal configs hash alike, so a config can sit in the static part of a compiled
        # function's key (JAX keys jit caches on the hashable NNX graph definition).
        return hash(self.to_json_string())

    def __repr__(self) -> str:
        return f"RobertaConfig {self.to_json_string()}"

    def copy(self, **overrides: Any) -> "RobertaConfig":
        """A deep copy, with `overrides` applied and validated."""
        return type(self).from_dict(self.to_dict(), **overrides)


def _int_keys(mapping: Mapping[Any, Any], name: str) -> dict[int, str]:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{name} must be a mapping from label index to name, got {type(mapping).__name__}")
    out = {}
    for k, v in mapping.items():
        try:
            out[int(k)] = v
        except (TypeError, ValueError):
            raise TypeError(f"{name} keys must be label indices (integers), got {k!r}") from None
    if sorted(out) != list(range(len(out))):
        raise ValueError(f"{name} keys must be 0..{len(out) - 1}, got {sorted(out)}")
    return out


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_prob(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")
