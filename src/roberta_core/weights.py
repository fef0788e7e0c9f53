"""The one table of RoBERTa parameter names, shapes and per-framework naming rules.

Canonical names are the Hugging Face PyTorch `state_dict` keys of each head class
(`roberta.encoder.layer.0.attention.self.query.weight`; the bare `RobertaModel` has no
`roberta.` prefix), with linear weights laid out `(out, in)`. Everything that knows a name
lives here:

- `parameter_shapes(config, head)`: the keys a head owns and their shapes;
- `TIED`: keys that are views of other keys (the LM decoder and the word embeddings);
- `plan_load(...)`: the generic mapper from a checkpoint's keys to a head's keys — legacy
  aliases, the `roberta.` prefix, unused and missing keys, shape mismatches, unknown keys;
- `to_tf_name`/`from_tf_name`, `to_flax_path`/`from_flax_path`, `is_transposed`: how the
  TensorFlow (h5) and Flax (msgpack) files name and lay out the same parameters.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from .config import RobertaConfig

__all__ = [
    "HEADS",
    "ARCHITECTURES",
    "TIED",
    "parameter_shapes",
    "all_known_shapes",
    "head_for_architecture",
    "architecture_for_head",
    "heads_served",
    "plan_load",
    "LoadPlan",
    "CheckpointKeyError",
    "is_buffer",
    "is_transposed",
    "to_tf_name",
    "from_tf_name",
    "to_flax_path",
    "from_flax_path",
    "PREFIX",
    "check_state",
    "check_vocab_resize",
]

PREFIX = "roberta."

# head key -> class name (PyTorch; TF and Flax add their prefix)
HEADS: dict[str, str] = {
    "model": "RobertaModel",
    "causal_lm": "RobertaForCausalLM",
    "masked_lm": "RobertaForMaskedLM",
    "sequence_classification": "RobertaForSequenceClassification",
    "multiple_choice": "RobertaForMultipleChoice",
    "token_classification": "RobertaForTokenClassification",
    "question_answering": "RobertaForQuestionAnswering",
}
ARCHITECTURES: dict[str, str] = {v: k for k, v in HEADS.items()}

# Heads whose encoder keeps the pooler (v4: add_pooling_layer=True only for these two).
_POOLED_HEADS = ("model", "multiple_choice")

# alias -> the key it is a view of, for heads with an LM decoder tied to the word embeddings.
TIED: dict[str, str] = {
    "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
    "lm_head.decoder.bias": "lm_head.bias",
}

# Buffers some checkpoints carry (older transformers saved them); never parameters.
_BUFFERS = re.compile(r"^(roberta\.)?embeddings\.(position_ids|token_type_ids)$")


def is_buffer(key: str) -> bool:
    """True for the `position_ids`/`token_type_ids` buffers older checkpoints carry."""
    return _BUFFERS.match(key) is not None


class CheckpointKeyError(ValueError):
    """A checkpoint's keys do not fit the head: unknown keys, missing keys under strict, shape mismatches."""


def head_for_architecture(name: str) -> str:
    """'RobertaForMaskedLM' / 'TFRobertaForMaskedLM' / 'FlaxRobertaForMaskedLM' -> 'masked_lm'."""
    bare = re.sub(r"^(TF|Flax)", "", name)
    if bare not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; RoBERTa heads are {', '.join(HEADS.values())}")
    return ARCHITECTURES[bare]


def architecture_for_head(head: str) -> str:
    _check_head(head)
    return HEADS[head]


def _check_head(head: str) -> None:
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")


# ---------------------------------------------------------------------------- shapes


def _encoder_shapes(config: RobertaConfig, with_pooler: bool) -> dict[str, tuple[int, ...]]:
    """Encoder keys without the `roberta.` prefix, in module order."""
    H, I, D = config.hidden_size, config.intermediate_size, config.head_dim
    relative = config.position_embedding_type in ("relative_key", "relative_key_query")
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (config.vocab_size, H),
        "embeddings.position_embeddings.weight": (config.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
    }

    def attention(prefix: str, relative: bool) -> None:
        for proj in ("query", "key", "value"):
            shapes[f"{prefix}.self.{proj}.weight"] = (H, H)
            shapes[f"{prefix}.self.{proj}.bias"] = (H,)
        if relative:
            shapes[f"{prefix}.self.distance_embedding.weight"] = (2 * config.max_position_embeddings - 1, D)
        shapes[f"{prefix}.output.dense.weight"] = (H, H)
        shapes[f"{prefix}.output.dense.bias"] = (H,)
        shapes[f"{prefix}.output.LayerNorm.weight"] = (H,)
        shapes[f"{prefix}.output.LayerNorm.bias"] = (H,)

    for i in range(config.num_hidden_layers):
        layer = f"encoder.layer.{i}"
        attention(f"{layer}.attention", relative)
        if config.add_cross_attention:
            # v4 builds cross-attention with absolute positions: it has no distance_embedding.
            attention(f"{layer}.crossattention", False)
        shapes[f"{layer}.intermediate.dense.weight"] = (I, H)
        shapes[f"{layer}.intermediate.dense.bias"] = (I,)
        shapes[f"{layer}.output.dense.weight"] = (H, I)
        shapes[f"{layer}.output.dense.bias"] = (H,)
        shapes[f"{layer}.output.LayerNorm.weight"] = (H,)
        shapes[f"{layer}.output.LayerNorm.bias"] = (H,)
    if with_pooler:
        shapes["pooler.dense.weight"] = (H, H)
        shapes["pooler.dense.bias"] = (H,)
    return shapes


def _head_shapes(config: RobertaConfig, head: str) -> dict[str, tuple[int, ...]]:
    H, L, V = config.hidden_size, config.num_labels, config.vocab_size
    if head in ("masked_lm", "causal_lm"):
        shapes = {
            "lm_head.dense.weight": (H, H),
            "lm_head.dense.bias": (H,),
            "lm_head.layer_norm.weight": (H,),
            "lm_head.layer_norm.bias": (H,),
            "lm_head.bias": (V,),
        }
        if not config.tie_word_embeddings:
            shapes["lm_head.decoder.weight"] = (V, H)
        return shapes
    if head == "sequence_classification":
        return {
            "classifier.dense.weight": (H, H),
            "classifier.dense.bias": (H,),
            "classifier.out_proj.weight": (L, H),
            "classifier.out_proj.bias": (L,),
        }
    if head == "multiple_choice":
        return {"classifier.weight": (1, H), "classifier.bias": (1,)}
    if head == "token_classification":
        return {"classifier.weight": (L, H), "classifier.bias": (L,)}
    if head == "question_answering":
        return {"qa_outputs.weight": (2, H), "qa_outputs.bias": (2,)}
    return {}


def parameter_shapes(config: RobertaConfig, head: str) -> dict[str, tuple[int, ...]]:
    """Canonical key -> shape for every parameter `head` owns (tied aliases excluded), in module order."""
    _check_head(head)
    encoder = _encoder_shapes(config, with_pooler=head in _POOLED_HEADS)
    if head == "model":
        return encoder
    shapes = {PREFIX + k: v for k, v in encoder.items()}
    shapes.update(_head_shapes(config, head))
    return shapes


def tied_keys(config: RobertaConfig, head: str) -> dict[str, str]:
    """alias -> source for the tied parameters of `head` (empty for heads without an LM decoder)."""
    if head not in ("masked_lm", "causal_lm"):
        return {}
    if config.tie_word_embeddings:
        return dict(TIED)
    return {"lm_head.decoder.bias": "lm_head.bias"}


def all_known_shapes(config: RobertaConfig) -> dict[str, tuple[int, ...]]:
    """Every key some RoBERTa head could own under this config, with the `roberta.` prefix;
    the pooler and the untied decoder included. Used to tell 'unused' from 'unknown'."""
    known = {PREFIX + k: v for k, v in _encoder_shapes(config, with_pooler=True).items()}
    for head in HEADS:
        known.update(_head_shapes(config, head))
    known["lm_head.decoder.weight"] = (config.vocab_size, config.hidden_size)
    known["lm_head.decoder.bias"] = (config.vocab_size,)
    # Classification heads of other label counts are still RoBERTa keys: compare them by name only.
    return known


def heads_served(config: RobertaConfig, keys: Iterable[str]) -> list[str]:
    """Heads whose every owned key is present in `keys` (after prefix normalisation)."""
    present = {_with_prefix(_legacy_alias(k)) for k in keys}
    served = []
    for head in HEADS:
        owned = {_with_prefix(k) for k in parameter_shapes(config, head)}
        if owned <= present:
            served.append(head)
    return served


# ---------------------------------------------------------------------------- load planning


def _legacy_alias(key: str) -> str:
    """Old BERT-style names: LayerNorm `gamma`/`beta` are `weight`/`bias`."""
    if key.endswith(".gamma"):
        return key[: -len(".gamma")] + ".weight"
    if key.endswith(".beta"):
        return key[: -len(".beta")] + ".bias"
    return key


def _is_encoder_key(key: str) -> bool:
    return key.startswith(("embeddings.", "encoder.", "pooler."))


def _with_prefix(key: str) -> str:
    return PREFIX + key if _is_encoder_key(key) else key


@dataclass
class LoadPlan:
    """How a checkpoint's keys map onto a head.

    `mapping` is target key -> source key for every parameter that loads. `missing` are the
    head's keys the checkpoint lacks (newly initialised), `unused` are RoBERTa keys the head does
    not own (e.g. `lm_head.*` into a classifier), `unknown` are keys no RoBERTa head owns (a typo,
    another architecture), `mismatched` are (key, checkpoint shape, expected shape).
    """

    head: str
    mapping: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    ignored_mismatched: bool = False

    def report(self) -> str:
        """A human-readable summary; empty when everything loaded one to one."""
        lines = []
        if self.unknown:
            lines.append(f"keys no RoBERTa head owns ({len(self.unknown)}): {_short(self.unknown)}")
        if self.unused:
            lines.append(f"unused by {HEADS[self.head]} ({len(self.unused)}): {_short(self.unused)}")
        if self.missing:
            lines.append(f"newly initialised, not in the checkpoint ({len(self.missing)}): {_short(self.missing)}")
        if self.mismatched:
            shown = ", ".join(f"{k} {tuple(s)} != expected {tuple(e)}" for k, s, e in self.mismatched[:8])
            verb = "newly initialised (ignore_mismatched_sizes=True)" if self.ignored_mismatched else "shape mismatch"
            lines.append(f"{verb} ({len(self.mismatched)}): {shown}")
        return "\n".join(lines)

    def check(self, *, strict: bool = False, source: str = "checkpoint") -> None:
        """Raise for what is always an error (shape mismatches not ignored) and, under `strict`,
        for unknown, unused or missing keys; otherwise warn once with the full report."""
        if self.mismatched and not self.ignored_mismatched:
            raise CheckpointKeyError(
                f"{source}: shapes do not match the config for {HEADS[self.head]}:\n{self.report()}\n"
                "Pass ignore_mismatched_sizes=True to re-initialise those parameters instead."
            )
        text = self.report()
        if not text:
            return
        if strict and (self.unknown or self.unused or self.missing):
            raise CheckpointKeyError(f"{source} does not match {HEADS[self.head]} exactly (strict=True):\n{text}")
        warnings.warn(f"Loading {source} into {HEADS[self.head]}:\n{text}", stacklevel=3)


def _short(keys: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def plan_load(
    config: RobertaConfig,
    head: str,
    source_shapes: Mapping[str, Sequence[int]],
    *,
    ignore_mismatched_sizes: bool = False,
) -> LoadPlan:
    """Map a checkpoint's keys (any head's, with or without the `roberta.` prefix, legacy
    `gamma`/`beta`, tied aliases present or absent) onto the keys `head` owns."""
    expected = parameter_shapes(config, head)
    tied = tied_keys(config, head)
    known = all_known_shapes(config)
    plan = LoadPlan(head=head, ignored_mismatched=ignore_mismatched_sizes)

    # Target key (with prefix) -> source key, first spelling wins.
    by_full: dict[str, str] = {}
    for src in source_shapes:
        if is_buffer(src):
            continue
        full = _with_prefix(_legacy_alias(src))
        if full in by_full:
            raise CheckpointKeyError(f"checkpoint holds {by_full[full]!r} and {src!r}, two spellings of one parameter")
        by_full[full] = src

    strip = head == "model"
    for full, src in by_full.items():
        target = full[len(PREFIX):] if strip and full.startswith(PREFIX) else full
        if target in expected:
            got, want = tuple(source_shapes[src]), expected[target]
            if got != want:
                plan.mismatched.append((target, got, want))
            else:
                plan.mapping[target] = src
        elif full in tied or target in tied:
            continue  # a view of another key: loaded through its source
        elif full in known or re.fullmatch(r"classifier\..*|qa_outputs\..*", full):
            plan.unused.append(src)
        else:
            plan.unknown.append(src)
    for target in expected:
        if target not in plan.mapping and not any(m[0] == target for m in plan.mismatched):
            # An untied decoder weight may come from the embeddings of a tied checkpoint.
            plan.missing.append(target)
    return plan


# ---------------------------------------------------------------------------- framework rules

_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings", "distance_embedding")


def _module_and_param(canonical: str) -> tuple[str, str]:
    module, _, param = canonical.rpartition(".")
    return module, param


def _kind(canonical: str) -> str:
    """'embedding', 'layernorm', 'linear' or 'bias_vector' (lm_head.bias) for a canonical key."""
    module, param = _module_and_param(canonical)
    leaf = module.rpartition(".")[2]
    if canonical == "lm_head.bias":
        return "bias_vector"
    if leaf in _EMBEDDINGS:
        return "embedding"
    if leaf in ("LayerNorm", "layer_norm"):
        return "layernorm"
    if param in ("weight", "bias"):
        return "linear"
    raise CheckpointKeyError(f"{canonical!r} is not a RoBERTa parameter name")


def is_transposed(canonical: str) -> bool:
    """True where TF and Flax store the array transposed: linear weights are (in, out) there."""
    return _kind(canonical) == "linear" and canonical.endswith(".weight")


def to_tf_name(canonical: str) -> str:
    """'roberta.encoder.layer.0.attention.self.query.weight' ->
    'roberta/encoder/layer_._0/attention/self/query/kernel' (v4 TF names, without the
    model-class scope and the ':0' suffix). Encoder keys always get the `roberta/` scope."""
    full = _with_prefix(canonical)
    kind = _kind(full)
    module, param = _module_and_param(full)
    path = re.sub(r"/layer/(\d+)", r"/layer_._\1", module.replace(".", "/"))
    if kind == "bias_vector":
        return "lm_head/bias"
    if kind == "embedding":
        leaf = module.rpartition(".")[2]
        return f"{path}/{'weight' if leaf == 'word_embeddings' else 'embeddings'}"
    if kind == "layernorm":
        return f"{path}/{'gamma' if param == 'weight' else 'beta'}"
    return f"{path}/{'kernel' if param == 'weight' else 'bias'}"


def from_tf_name(name: str) -> str:
    """Inverse of `to_tf_name`; accepts a leading model-class scope (`tf_roberta_for_masked_lm/`)
    and the ':0' suffix. Returns the prefixed canonical key."""
    name = re.sub(r":\d+$", "", name)
    parts = name.split("/")
    for start in range(len(parts)):
        if parts[start] in ("roberta", "lm_head", "classifier", "qa_outputs"):
            parts = parts[start:]
            break
    else:
        raise CheckpointKeyError(f"TF weight {name!r} is not under roberta/, lm_head/, classifier/ or qa_outputs/")
    leaf = parts[-1]
    module = ".".join(parts[:-1]).replace("layer_._", "layer.")
    if parts == ["lm_head", "bias"]:
        return "lm_head.bias"
    mod_leaf = module.rpartition(".")[2]
    if mod_leaf in _EMBEDDINGS:
        param = "weight"
    elif leaf in ("gamma", "kernel"):
        param = "weight"
    elif leaf in ("beta", "bias"):
        param = "bias"
    else:
        raise CheckpointKeyError(f"TF weight {name!r}: unknown variable name {leaf!r}")
    canonical = f"{module}.{param}"
    _kind(canonical)  # raises on names that are no RoBERTa parameter
    return canonical


def to_flax_path(canonical: str) -> tuple[str, ...]:
    """'roberta.embeddings.LayerNorm.weight' -> ('roberta', 'embeddings', 'LayerNorm', 'scale')
    (v4 Flax/Linen tree paths; NNX state paths are the same). Encoder keys get the 'roberta' level;
    a bare Flax RobertaModel tree drops it (the caller strips it)."""
    full = _with_prefix(canonical)
    kind = _kind(full)
    module, param = _module_and_param(full)
    parts = tuple(module.split("."))
    if kind == "bias_vector":
        return ("lm_head", "bias")
    if kind == "embedding":
        return parts + ("embedding",)
    if kind == "layernorm":
        return parts + ("scale" if param == "weight" else "bias",)
    return parts + ("kernel" if param == "weight" else "bias",)


def from_flax_path(path: Sequence[str]) -> str:
    """Inverse of `to_flax_path`. A path without the 'roberta' level (a bare model tree) maps to
    the prefixed key as well."""
    parts = [str(p) for p in path]
    if parts == ["lm_head", "bias"]:
        return "lm_head.bias"
    leaf = parts[-1]
    module = ".".join(parts[:-1])
    if _is_encoder_key(module + ".x"):
        module = PREFIX + module
    mod_leaf = module.rpartition(".")[2]
    if leaf == "embedding" and mod_leaf in _EMBEDDINGS:
        param = "weight"
    elif leaf in ("scale", "kernel"):
        param = "weight"
    elif leaf == "bias":
        param = "bias"
    else:
        raise CheckpointKeyError(f"Flax parameter {'/'.join(parts)!r}: unknown leaf {leaf!r}")
    canonical = f"{module}.{param}"
    _kind(canonical)
    return canonical


# ---------------------------------------------------------------------------- checks every backend shares


def check_state(
    owner: str, head: str, expected: Mapping[str, tuple[int, ...]], state: Mapping[str, object], *, allow_missing: bool
) -> None:
    """The one check before a backend loads canonical arrays into a model (`convert.from_canonical`):
    every key of `state` is one the model owns (`expected`, from `parameter_shapes(config, head)`),
    with its shape; every owned key is present unless `allow_missing`. `owner` is the class name
    that the error messages cite."""
    unknown = [k for k in state if k not in expected]
    if unknown:
        raise ValueError(
            f"{owner} owns no parameter(s) {unknown}; its keys are those of parameter_shapes(config, {head!r})"
        )
    missing = [k for k in expected if k not in state]
    if missing and not allow_missing:
        raise ValueError(f"state lacks {len(missing)} parameter(s) of {owner}: {missing}")
    wrong = [(k, tuple(getattr(v, "shape", ())), expected[k]) for k, v in state.items()]
    wrong = [(k, got, want) for k, got, want in wrong if got != tuple(want)]
    if wrong:
        listed = ", ".join(f"{k} {got} != expected {want}" for k, got, want in wrong)
        raise ValueError(f"shape mismatch loading {owner}: {listed}")


def check_vocab_resize(config: RobertaConfig, new_num_tokens: object) -> int:
    """The one argument check of every backend's `resize_token_embeddings`: a positive integer
    that keeps the special tokens the config names. Returns it."""
    if isinstance(new_num_tokens, bool) or not isinstance(new_num_tokens, int) or new_num_tokens < 1:
        raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        token = getattr(config, name)
        if token is not None and token >= new_num_tokens:
            raise ValueError(f"new_num_tokens={new_num_tokens} would drop {name}={token}; keep at least {token + 1}")
    return new_num_tokens
