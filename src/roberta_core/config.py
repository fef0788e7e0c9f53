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
import sys
from pathlib import Path
from typing import Any, Mapping

from .fileio import atomic_write_text

__all__ = [
    "RobertaConfig", "PRESETS", "ACTIVATIONS", "POSITION_EMBEDDING_TYPES", "PROBLEM_TYPES",
    "parameter_count", "read_json_file", "MODEL_TYPES", "BASE_MODEL_PREFIXES", "own_config", "V4_CONFIG_FIELDS",
]

CONFIG_NAME = "config.json"

# The narrowest floating format a checkpoint stores (bfloat16/float16): a model whose parameters
# do not fit in physical memory even at this width cannot be built, loaded or converted here.
_MIN_BYTES_PER_PARAMETER = 2
# Where the platform cannot tell its physical memory (no sysconf, e.g. Windows): 1 TiB.
_FALLBACK_MEMORY_BYTES = 2**40
# Real config.json files nest 3 levels (task_specific_params, quantization_config), tokenizer.json
# 4; anything far deeper is a crafted file, refused before a recursive copy/compare/dump overflows
# the stack.
_MAX_JSON_DEPTH = 32
# The heads a config can build and what each adds to the encoder (see `parameter_count`).
_HEADS = (
    "model", "causal_lm", "masked_lm", "sequence_classification", "multiple_choice",
    "token_classification", "question_answering",
)

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

# The RoBERTa family: one architecture (PreLayerNorm moves the LayerNorms), v4's model_type names.
# Attributes every v4 `PretrainedConfig` has whatever the model, with v4's defaults: code written
# for v4 (its `pipeline()`, Trainer, peft) reads them from a model's config. RoBERTa does not use
# them; they are written to config.json only when set.
_V4_COMMON: dict[str, Any] = {
    "_commit_hash": None,
    "_name_or_path": "",
    "is_encoder_decoder": False,
    "tie_encoder_decoder": False,
    "cross_attention_hidden_size": None,
    "chunk_size_feed_forward": 0,
    "pruned_heads": {},
    "torchscript": False,
    "finetuning_task": None,
    "tokenizer_class": None,
    "prefix": None,
    "task_specific_params": None,
    "sep_token_id": None,
    "decoder_start_token_id": None,
    "use_bfloat16": False,
    "tf_legacy_loss": False,
    "dtype": None,  # the weights' dtype, as a backend records it (v4: a torch dtype, written as its name)
}

# What v4's bare `PretrainedConfig()` holds (its `to_dict()`, less `transformers_version`): v4 writes
# into config.json a field of this table only where the config's value differs from it or from the
# model class's default (`to_diff_dict`); every other field is always written.
_V4_BASE: dict[str, Any] = {
    **{k: v for k, v in _V4_COMMON.items() if k != "_commit_hash"},
    "add_cross_attention": False, "architectures": None, "bad_words_ids": None, "begin_suppress_tokens": None,
    "bos_token_id": None, "diversity_penalty": 0.0, "do_sample": False, "dtype": None, "early_stopping": False,
    "encoder_no_repeat_ngram_size": 0, "eos_token_id": None, "exponential_decay_length_penalty": None,
    "forced_bos_token_id": None, "forced_eos_token_id": None, "id2label": {0: "LABEL_0", 1: "LABEL_1"},
    "is_decoder": False, "label2id": {"LABEL_0": 0, "LABEL_1": 1}, "length_penalty": 1.0, "max_length": 20,
    "min_length": 0, "model_type": "", "no_repeat_ngram_size": 0, "num_beam_groups": 1, "num_beams": 1,
    "num_return_sequences": 1, "output_attentions": False, "output_hidden_states": False, "output_scores": False,
    "pad_token_id": None, "problem_type": None, "remove_invalid_values": False, "repetition_penalty": 1.0,
    "return_dict": True, "return_dict_in_generate": False, "suppress_tokens": None, "temperature": 1.0,
    "tie_word_embeddings": True, "top_k": 50, "top_p": 1.0, "typical_p": 1.0,
}
# The fields every v4 config has (`from_pretrained` keywords that set the config, as in v4).
V4_CONFIG_FIELDS = tuple(_V4_BASE)

# Bounds no real checkpoint comes near (the largest RoBERTa-family model, XLM-R XXL, has 48 layers),
# so that a config from the internet cannot make building a model hang.
MAX_LAYERS = 512
MAX_LABELS = 1_000_000

MODEL_TYPES = ("roberta", "xlm-roberta", "camembert", "roberta-prelayernorm")
BASE_MODEL_PREFIXES = {t: "roberta_prelayernorm" if t == "roberta-prelayernorm" else "roberta" for t in MODEL_TYPES}

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
    # v4's class attributes that code around a config reads: no renamed fields, no nested configs.
    attribute_map: dict[str, str] = {}
    sub_configs: dict[str, Any] = {}
    has_no_defaults_at_init = False
    # v4's `config._attn_implementation`: the attention path asked for (`attn_implementation=`) or, once a
    # PyTorch model is built from the config, the one it runs; not a field (never written to config.json).
    _attn_implementation: str | None = None

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("model_type", type(self).model_type)  # a family config class says its member
        if "attn_implementation" in kwargs:
            object.__setattr__(self, "_attn_implementation", kwargs.pop("attn_implementation"))
        if "_commit_hash" in kwargs:  # where a Hub snapshot was read (get_config_dict's); never written
            object.__setattr__(self, "_commit_hash", kwargs.pop("_commit_hash"))
        num_labels = kwargs.pop("num_labels", None)
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        # v4.56+ writes `dtype`; earlier releases wrote `torch_dtype`: read as `dtype`, as v4 does.
        torch_dtype = kwargs.pop("torch_dtype", None)
        if kwargs.get("dtype") is None and torch_dtype is not None:
            kwargs["dtype"] = torch_dtype
        if isinstance(kwargs.get("dtype"), str) and "torch" in sys.modules:
            # v4 (with torch): the torch dtype of that name ("float16" -> torch.float16), written back
            # as its name; torch is not imported here, only used when the program has it
            named = getattr(sys.modules["torch"], kwargs["dtype"], None)
            if type(named).__name__ == "dtype":
                kwargs["dtype"] = named
        values = dict(_DEFAULTS)
        values.update(kwargs)
        for key, value in values.items():
            object.__setattr__(self, key, value)
        self._extra_keys = [k for k in kwargs if k not in _DEFAULTS]
        # The sizes first: the label setter below checks the model's size with them.
        for name in _INT_FIELDS:
            _check_int(name, getattr(self, name), minimum=1)
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
            self.label2id = dict(label2id)  # as given, as v4 (its values are not checked against id2label)
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
        # Refused before the label dictionaries are built: 1e9 labels would fill memory here.
        _check_fits_in_memory(self, n)
        if n > MAX_LABELS:  # a small head, but its two label dictionaries alone would take gigabytes
            raise ValueError(f"num_labels must be at most {MAX_LABELS:,}, got {n:,}")
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
    def pre_layer_norm(self) -> bool:
        """True for RoBERTa-PreLayerNorm: LayerNorm before attention and feed-forward (on the
        residual branch), none after them, and one final LayerNorm after the last layer."""
        return self.model_type == "roberta-prelayernorm"

    @property
    def base_model_prefix(self) -> str:
        """The encoder's attribute name in the family member's checkpoint files (`roberta.` keys,
        `roberta/` TF scopes): `roberta_prelayernorm` for RoBERTa-PreLayerNorm, else `roberta`.
        In memory every backend and the canonical form say `roberta` (ARCHITECTURE §3)."""
        return BASE_MODEL_PREFIXES[self.model_type]

    @property
    def use_return_dict(self) -> bool:
        """v4's: outputs as ModelOutput objects, unless `return_dict=False` or `torchscript=True`
        (TorchScript traces tuples)."""
        return bool(self.return_dict) and not self.torchscript

    @property
    def name_or_path(self) -> str:
        """Where `from_pretrained` read this config (the folder or Hub id as given); '' otherwise."""
        return str(self._name_or_path)

    @name_or_path.setter
    def name_or_path(self, value: str | os.PathLike) -> None:
        self._name_or_path = str(value)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes never set: v4's generic PretrainedConfig fields, the
        # generation ones (`top_k`, `max_length`, ...) too (a copy, so a caller's change to a
        # default dict cannot leak into every config).
        for table in (_V4_COMMON, _V4_BASE):
            if name in table:
                return copy.deepcopy(table[name])
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise a clear error for any value a model cannot be built from."""
        for name in _INT_FIELDS:
            _check_int(name, getattr(self, name), minimum=1)
        if self.pad_token_id is None:
            # Position ids count from pad_token_id + 1 and padding rows get no gradient: RoBERTa
            # has no meaning without it (v4 would fail at the first forward call).
            raise ValueError(
                f"pad_token_id must be a token id in 0..{self.vocab_size - 1}, got None: RoBERTa's "
                "position ids start at pad_token_id + 1 (the published checkpoints use 1)"
            )
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
        # Before anything (weights.parameter_shapes, a backend) loops over layers or allocates.
        _check_fits_in_memory(self, self.num_labels)
        if self.num_hidden_layers > MAX_LAYERS:
            # each layer is a dozen modules to build and initialise: a config of 10**6 tiny layers
            # fits in memory yet takes hours to build
            raise ValueError(f"num_hidden_layers must be at most {MAX_LAYERS}, got {self.num_hidden_layers:,}")
        if self.num_labels > MAX_LABELS:
            raise ValueError(f"num_labels must be at most {MAX_LABELS:,}, got {self.num_labels:,} (id2label)")
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
        if self.model_type not in MODEL_TYPES:
            raise ValueError(
                f"config has model_type={self.model_type!r}; this library builds the RoBERTa family: "
                f"{', '.join(repr(t) for t in MODEL_TYPES)}"
            )
        if self.architectures is not None and not (
            isinstance(self.architectures, list) and all(isinstance(a, str) for a in self.architectures)
        ):
            raise TypeError(f"architectures must be a list of class names, got {self.architectures!r}")

    # ------------------------------------------------------------------ dict / json
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, return_unused_kwargs: bool = False, **overrides: Any
    ) -> "RobertaConfig" | tuple["RobertaConfig", dict[str, Any]]:
        """Build from a `config.json`-style mapping; `overrides` win over the mapping's values.
        As v4, an override that names no attribute of the config is not set:
        `return_unused_kwargs=True` returns `(config, {those overrides})`."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a config must be a JSON object (a mapping), got {type(data).__name__}")
        merged = dict(data)
        merged.setdefault("model_type", cls.model_type)
        known = set(_DEFAULTS) | set(_V4_BASE) | set(merged) | {"num_labels", "id2label", "label2id", "torch_dtype",
                                                                 "attn_implementation"}
        unused = {k: v for k, v in overrides.items() if k not in known}
        overrides = {k: v for k, v in overrides.items() if k in known}
        if "num_labels" in overrides and "id2label" not in overrides:
            # as v4's num_labels setter: the file's labels stay when they are that many
            labels = merged.get("id2label")
            if not isinstance(labels, Mapping) or len(labels) != overrides["num_labels"]:
                merged.pop("id2label", None)
                merged.pop("label2id", None)
        merged.update(overrides)
        config = cls(**merged)
        return (config, unused) if return_unused_kwargs else config

    def to_dict(self) -> dict[str, Any]:
        """All fields as a dict for JSON, the keys of v4's: RoBERTa's, every v4 config's (`top_k`,
        `torchscript`, ...), unknown keys from the source, and `_name_or_path`; `id2label` keyed
        by ints, as v4's."""
        out: dict[str, Any] = {}
        for key in _DEFAULTS:
            out[key] = copy.deepcopy(getattr(self, key))
        for key in _V4_BASE:  # every v4 config's fields, as v4's `to_dict` lists them
            if key not in out and key != "_name_or_path":
                out[key] = getattr(self, key)
        out["id2label"] = dict(self.id2label)  # int keys, as v4's (JSON writes them as strings)
        out["label2id"] = dict(self.label2id)
        for key in self._extra_keys:
            out[key] = copy.deepcopy(getattr(self, key))
        if out.get("dtype") is not None and not isinstance(out["dtype"], str):
            out["dtype"] = str(out["dtype"]).rpartition(".")[2]  # torch.float16 -> "float16", as v4 writes it
        out.setdefault("_name_or_path", self.name_or_path)
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """What v4 writes into config.json: every RoBERTa field, and each field every v4 config
        has (`is_decoder`, `id2label`, `dtype`, ...) only where it differs from v4's generic
        default or from this class's own; never `_name_or_path`."""
        own = RobertaConfig(model_type=self.model_type).to_dict()
        out = {}
        for key, value in self.to_dict().items():
            if key == "_name_or_path":
                continue
            if key not in _V4_BASE or value != _V4_BASE[key] or value != own.get(key, value):
                out[key] = value
        return out

    def to_json_string(self, use_diff: bool = True) -> str:
        """The config as JSON text, keys sorted: what v4 writes (`to_diff_dict`), or every field
        with `use_diff=False`."""
        return json.dumps(self.to_diff_dict() if use_diff else self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> None:
        """Write `to_json_string(use_diff)` to a file, atomically."""
        atomic_write_text(Path(json_file_path), self.to_json_string(use_diff))

    def update(self, config_dict: Mapping[str, Any]) -> None:
        """Set each field of `config_dict` (v4's `update`), then check the result; a result that
        fails the check is undone (the config is left as it was)."""
        saved = dict(self.__dict__)
        try:
            for key, value in dict(config_dict).items():
                setattr(self, key, value)
            self.validate()
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def update_from_string(self, update_str: str) -> None:
        """v4's `update_from_string`: `"n_embd=10,resid_pdrop=0.2,scale_attn_weights=false"`; each
        key must be a field already (ValueError otherwise) and its value is read as the field's
        type (bool from `true`/`false`/`1`/`0`, int, float, str)."""
        values: dict[str, Any] = {}
        for pair in update_str.split(","):
            key, sep, text = pair.partition("=")
            if not sep:
                raise ValueError(f"update_from_string: {pair!r} is not of the form key=value")
            try:
                old = getattr(self, key)
            except AttributeError:
                raise ValueError(f"key {key} isn't in the original config dict") from None
            if isinstance(old, bool):
                if text.lower() not in ("true", "1", "y", "yes", "false", "0", "n", "no"):
                    raise ValueError(f"can't parse {text!r} as a bool for config key {key}")
                value: Any = text.lower() in ("true", "1", "y", "yes")
            elif isinstance(old, (int, float, str)):
                try:
                    value = type(old)(text)
                except ValueError:
                    raise ValueError(f"can't parse {text!r} as {type(old).__name__} for config key {key}") from None
            else:
                raise TypeError(f"update_from_string: config key {key} holds a {type(old).__name__}; "
                                "only bool, int, float and str fields can be set from a string")
            values[key] = value
        self.update(values)

    def get_text_config(self, decoder: bool | None = None, encoder: bool | None = None) -> "RobertaConfig":
        """v4's accessor of a multimodal config's text part: a text model's config is its own
        (peft's prompt learning reads the layer and head counts from it)."""
        return self

    @property
    def torch_dtype(self) -> Any:
        """v4's older name of `dtype`."""
        return self.dtype

    @torch_dtype.setter
    def torch_dtype(self, value: Any) -> None:
        self.dtype = value

    def __iter__(self):
        # v4's `PretrainedConfig.__iter__`: the attribute names (code writes `"text_config" in config`)
        yield from self.to_dict()

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "RobertaConfig":
        """One of the named presets (`roberta-base`, `roberta-large`, `distilroberta-base`, `small`, `tiny`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> "RobertaConfig":
        """Read a `config.json` file; every error names the file (`read_json_file`)."""
        path = Path(path)
        try:
            data = read_json_file(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such config file") from None
        try:
            return cls.from_dict(data, **overrides)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{path}: {e}") from None

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *, return_unused_kwargs: bool = False,
        **overrides: Any,
    ) -> "RobertaConfig" | tuple["RobertaConfig", dict[str, Any]]:
        """Read `config.json` from a checkpoint directory (or a path to the file itself), or from
        a Hub repo id through the Hugging Face cache (`roberta_core.hub`), as v4 does: a name
        such as `roberta-base` is a Hub id here, never a preset (presets: `from_preset`). The
        Hub keywords (`revision`, `cache_dir`, `local_files_only`, `token`, `subfolder`, ...) say
        where to look; the other keywords override config fields, and as in v4 one that names no
        field is not set: `return_unused_kwargs=True` returns `(config, {those keywords})`."""
        from .hub import snapshot_commit

        p, overrides = _config_file(pretrained_model_name_or_path, overrides)
        config, unused = cls.from_json_file(p, return_unused_kwargs=True, **overrides)
        # As v4: the Hub revision a cached snapshot was read at; `name_or_path` stays '' (v4 sets it
        # only when a model is loaded: the model's `from_pretrained` does).
        config._commit_hash = snapshot_commit(p)
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def get_config_dict(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """v4's: `(the config.json mapping, the keywords left)` for a folder, file or Hub id, the
        Hub keywords taken as `from_pretrained` takes them; no config is built or checked."""
        from .hub import snapshot_commit

        p, rest = _config_file(pretrained_model_name_or_path, kwargs)
        data = read_json_file(p)
        if not isinstance(data, dict):
            raise TypeError(f"{p}: a config must be a JSON object (a mapping), got {type(data).__name__}")
        data["_commit_hash"] = snapshot_commit(p)  # as v4: None outside a Hub cache snapshot
        return data, rest

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> Path:
        """Write `config.json` into `save_directory` (created if needed), atomically, as v4 writes
        it (`to_diff_dict`). v4's `push_to_hub` and Hub keywords are not taken here (a model's or
        tokenizer's `push_to_hub` uploads its config with it)."""
        if kwargs:
            raise TypeError(f"save_pretrained() got unexpected keyword argument(s) {', '.join(map(repr, sorted(kwargs)))}")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / CONFIG_NAME
        self.to_json_file(target)
        return target

    # ------------------------------------------------------------------ python protocol
    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        if isinstance(getattr(type(self), key, None), property):  # name_or_path, num_labels, torch_dtype: not fields
            return
        if not key.startswith("_") and key not in _DEFAULTS and key not in ("id2label", "label2id"):
            extra = self.__dict__.get("_extra_keys")
            if extra is not None and key not in extra:
                extra.append(key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RobertaConfig) and self._fields() == other._fields()

    def __hash__(self) -> int:
        # Equal configs hash alike, so a config can sit in the static part of a compiled
        # function's key (JAX keys jit caches on the hashable NNX graph definition).
        return hash(self._fields())

    def _fields(self) -> str:
        """Every field as sorted JSON, not where the config was read from: what equality compares."""
        fields = self.to_dict()
        fields.pop("_name_or_path", None)
        return json.dumps(fields, sort_keys=True)

    def __repr__(self) -> str:
        return f"RobertaConfig {self.to_json_string()}"

    def copy(self, **overrides: Any) -> "RobertaConfig":
        """A deep copy, with `overrides` applied and validated (and where it was read from); an
        override may add a field the config did not have."""
        data = self.to_dict()
        added = {k: v for k, v in overrides.items() if k not in data and k not in ("num_labels", "torch_dtype")}
        data.update(added)  # a new field: from_dict would not set an unknown override
        new = type(self).from_dict(data, **{k: v for k, v in overrides.items() if k not in added})
        for name in ("_name_or_path", "_commit_hash", "_attn_implementation"):
            if name in self.__dict__:
                object.__setattr__(new, name, self.__dict__[name])
        return new


def _config_file(path: str | os.PathLike, keywords: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The config.json that `path` (a folder, the file itself, or a Hub repo id through the cache)
    names, and the keywords left once the Hub's (`revision`, `cache_dir`, `subfolder`, ...) are taken."""
    from .hub import hub_options, resolve_pretrained  # imports huggingface_hub only for a repo id

    options = hub_options(keywords)
    rest = {k: v for k, v in keywords.items() if k not in options}
    p = Path(path)
    if not (p.is_file() and not options.get("subfolder")):
        p = resolve_pretrained(path, options, need=("config",)) / CONFIG_NAME
    return p, rest


def model_config(config: Any) -> RobertaConfig:
    """The config a model's constructor keeps: this library's RobertaConfig itself (as v4, the
    model shares it), or a v4 `transformers` config (any object with `to_dict()`, e.g.
    `transformers.RobertaConfig(...)` built by code written for v4) converted through its dict;
    anything else is a TypeError naming what is accepted."""
    if isinstance(config, RobertaConfig):
        return config
    if callable(getattr(config, "to_dict", None)) and not isinstance(config, type):
        converted = RobertaConfig.from_dict(config.to_dict())
        implementation = getattr(config, "_attn_implementation", None)
        if isinstance(implementation, str):  # v4 keeps it out of to_dict()
            converted._attn_implementation = implementation
        return converted
    raise TypeError(f"config must be a roberta_core.RobertaConfig or a transformers config (an object with "
                    f"to_dict()), got {type(config).__name__}")


def own_config(config: Any) -> RobertaConfig | None:
    """A copy of `config` as this library's RobertaConfig, for a backend's
    `from_pretrained(config=...)` (as v4, loading never changes the caller's config): a v4
    `transformers` config (or any object with `to_dict()`) is converted through its dict; None
    stays None; anything else is a TypeError."""
    if config is None:
        return None
    if isinstance(config, RobertaConfig):
        return config.copy()
    if callable(getattr(config, "to_dict", None)):
        return RobertaConfig.from_dict(config.to_dict())
    if isinstance(config, (str, os.PathLike)):  # v4: a folder or Hub id whose config.json is read
        return RobertaConfig.from_pretrained(config)
    raise TypeError(f"config must be a roberta_core.RobertaConfig (or have to_dict()), a folder or a Hub id, "
                    f"got {type(config).__name__}")


def parameter_count(config: RobertaConfig, head: str | None = None) -> int:
    """The number of parameters of `head` built from `config` (tied aliases counted once), or
    with `head=None` of the largest head. Closed form: it never loops over layers, so it is
    safe on a config with 1e9 layers (`weights.parameter_shapes` gives the same totals key by key)."""
    return _parameter_count(config, head, config.num_labels)


def _parameter_count(config: RobertaConfig, head: str | None, num_labels: int) -> int:
    if head is not None and head not in _HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(_HEADS)}")
    H, I, V = config.hidden_size, config.intermediate_size, config.vocab_size
    P, L = config.max_position_embeddings, num_labels
    relative = config.position_embedding_type in ("relative_key", "relative_key_query")
    embeddings = (V + P + config.type_vocab_size) * H + 2 * H
    attention = 4 * (H * H + H) + 2 * H  # query, key, value, output dense; LayerNorm
    layer = attention + 2 * H * I + I + H + 2 * H  # + feed-forward in, out; LayerNorm
    if relative:
        layer += (2 * P - 1) * (H // config.num_attention_heads)  # distance embedding (self-attention only)
    if config.add_cross_attention:
        layer += attention
    encoder = embeddings + config.num_hidden_layers * layer
    if config.model_type == "roberta-prelayernorm":
        encoder += 2 * H  # the final LayerNorm (each layer has two LayerNorms either way)
    pooler = H * H + H
    lm_head = H * H + H + 2 * H + V + (0 if config.tie_word_embeddings else V * H)
    counts = {
        "model": encoder + pooler,
        "causal_lm": encoder + lm_head,
        "masked_lm": encoder + lm_head,
        "sequence_classification": encoder + H * H + H + L * H + L,
        "multiple_choice": encoder + pooler + H + 1,
        "token_classification": encoder + L * H + L,
        "question_answering": encoder + L * H + L,  # qa_outputs: num_labels outputs, as v4
    }
    return counts[head] if head is not None else max(counts.values())


def _physical_memory() -> int:
    """Bytes of physical memory on this machine (`_FALLBACK_MEMORY_BYTES` where unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_MEMORY_BYTES
    return total if total > 0 else _FALLBACK_MEMORY_BYTES


def _check_fits_in_memory(config: RobertaConfig, num_labels: int) -> None:
    """Refuse a model (with `num_labels` labels) whose parameters cannot fit in this machine's
    physical memory even as 16-bit floats: nothing can build, load or convert it, and a framework
    asked to would allocate until the OOM killer stops it (or, building abstractly, "succeed"
    absurdly). The size fields must be checked integers."""
    parameters = _parameter_count(config, None, num_labels)
    need = parameters * _MIN_BYTES_PER_PARAMETER
    memory = _physical_memory()
    if need > memory:
        sizes = ", ".join(f"{name}={getattr(config, name)}" for name in _INT_FIELDS if name != "num_attention_heads")
        raise ValueError(
            f"this configuration has {_count(parameters)} parameters ({sizes}, num_labels={num_labels}): "
            f"{_bytes(need)} even at "
            f"{_MIN_BYTES_PER_PARAMETER} bytes per parameter, more than this machine's {_bytes(memory)} "
            "of physical memory; check the sizes"
        )


def _bytes(n: int) -> str:
    if n >= 10**30:  # a crafted size: its digits say enough (and a float could not hold it)
        return f"about 10^{len(str(n)) - 1} bytes"
    for unit, size in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**30 else f"about 10^{len(str(n)) - 1}"


def read_json_file(path: str | os.PathLike) -> Any:
    """The JSON value in the UTF-8 file `path` (a byte-order mark is allowed). Raises ValueError
    naming the file for bytes that are not UTF-8, for malformed JSON (with its line and column),
    and for nesting deeper than any real config (instead of a RecursionError later)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); JSON files are "
            "UTF-8: re-save it as UTF-8"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested more deeply than Python can read") from None
    if _json_depth(data) > _MAX_JSON_DEPTH:
        raise ValueError(
            f"{path}: JSON nested more than {_MAX_JSON_DEPTH} levels deep; the files of a checkpoint nest a few"
        )
    return data


def _json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0) up to `_MAX_JSON_DEPTH` + 1, without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth + 1)
            if depth + 1 <= _MAX_JSON_DEPTH:  # deeper than the limit is refused anyway: stop looking
                stack.extend((child, depth + 1) for child in node)
    return deepest


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
