"""The one table of RoBERTa parameter names, shapes and per-framework naming rules.

Canonical names are the Hugging Face PyTorch `state_dict` keys of each head class
(`roberta.encoder.layer.0.attention.self.query.weight`; the bare `RobertaModel` has no
`roberta.` prefix), with linear weights laid out `(out, in)`. Everything that knows a name
lives here, as tables read by generic code:

- the rows `(name template, kind, shape, condition)` of every parameter, in module order, and
  `KINDS`: per kind, the TF and Flax leaf names and whether TF/Flax store it transposed;
- `parameter_shapes(config, head)`: the keys a head owns and their shapes;
- `TIED`: keys that are views of other keys (the LM decoder and the word embeddings);
- `plan_load(...)`: the generic mapper from a checkpoint's keys to a head's keys — legacy
  aliases, the `roberta.` prefix, unused and missing keys, shape mismatches, unknown keys;
- `to_tf_name`/`from_tf_name`, `to_flax_path`/`from_flax_path`, `is_transposed`: how the
  TensorFlow (h5) and Flax (msgpack) files name and lay out the same parameters.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping, Optional, Sequence

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
    "StateDictSizeMismatchError",
    "is_buffer",
    "is_transposed",
    "to_tf_name",
    "from_tf_name",
    "to_flax_path",
    "from_flax_path",
    "PREFIX",
    "FAMILY",
    "family_of_architecture",
    "architecture_name",
    "from_file_key",
    "to_file_key",
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


class StateDictSizeMismatchError(CheckpointKeyError, RuntimeError):
    """Shapes of a checkpoint differ from the model's (not ignored): a CheckpointKeyError (a
    ValueError) and, as v4's PyTorch `from_pretrained` raises it, a RuntimeError, whose message
    opens with v4's "Error(s) in loading state_dict for <class>:" and its "size mismatch for" lines
    (`LoadPlan.check(v4_mismatch_owner="RobertaForMaskedLM")`)."""

    @staticmethod
    def v4_lines(owner: str, mismatched: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]]) -> str:
        def size(shape):
            return f"torch.Size([{', '.join(str(n) for n in shape)}])"

        lines = [f"size mismatch for {key}: copying a param with shape {size(got)} from checkpoint, the shape in "
                 f"current model is {size(want)}." for key, got, want in mismatched]
        lines.append("You may consider adding `ignore_mismatched_sizes=True` in the model `from_pretrained` method.")
        return f"Error(s) in loading state_dict for {owner}:\n\t" + "\n\t".join(lines)


# model_type -> the class-name stem of that family member in v4 (`XLMRobertaForMaskedLM`, ...).
FAMILY: dict[str, str] = {
    "roberta": "Roberta",
    "xlm-roberta": "XLMRoberta",
    "camembert": "Camembert",
    "roberta-prelayernorm": "RobertaPreLayerNorm",
}
_FAMILY_STEM = re.compile(r"^(TF|Flax)?(XLMRoberta|Camembert|RobertaPreLayerNorm|Roberta)(?=Model$|For)")


def family_of_architecture(name: str) -> Optional[str]:
    """'TFXLMRobertaForMaskedLM' -> 'xlm-roberta'; None for a name outside the family."""
    found = _FAMILY_STEM.match(name)
    return {v: k for k, v in FAMILY.items()}[found.group(2)] if found else None


def architecture_name(head: str, model_type: str = "roberta", framework: str = "") -> str:
    """('masked_lm', 'xlm-roberta', 'TF') -> 'TFXLMRobertaForMaskedLM': v4's class name of a head of
    a family member; `framework` is '', 'TF' or 'Flax'."""
    _check_head(head)
    if model_type not in FAMILY:
        raise ValueError(f"unknown model_type {model_type!r}; the family is {', '.join(FAMILY)}")
    return framework + FAMILY[model_type] + HEADS[head][len("Roberta"):]


def head_for_architecture(name: str) -> str:
    """'RobertaForMaskedLM' / 'TFRobertaForMaskedLM' / 'FlaxXLMRobertaForMaskedLM' -> 'masked_lm'
    (any family member's class name: XLMRoberta, Camembert, RobertaPreLayerNorm)."""
    bare = _FAMILY_STEM.sub("Roberta", name)
    if bare not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; RoBERTa heads are {', '.join(HEADS.values())}")
    return ARCHITECTURES[bare]


def architecture_for_head(head: str) -> str:
    _check_head(head)
    return HEADS[head]


def _check_head(head: str) -> None:
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")


# ---------------------------------------------------------------------------- the table

# Every parameter a RoBERTa head can own: (canonical name template, kind, shape, when). `{i}` is the
# layer index; a shape names config sizes by letter (`_dimensions`); `when` names the config or
# head condition under which the parameter exists (`_CONDITIONS`), None for always. Encoder rows
# are written without the `roberta.` prefix (the bare RobertaModel's names); rows are in module
# order, which is the order of `parameter_shapes`.
_EMBEDDING_ROWS = (
    ("embeddings.word_embeddings.weight", "word_embedding", ("V", "H"), None),
    ("embeddings.position_embeddings.weight", "embedding", ("P", "H"), None),
    ("embeddings.token_type_embeddings.weight", "embedding", ("T", "H"), None),
    ("embeddings.LayerNorm.weight", "layernorm_weight", ("H",), None),
    ("embeddings.LayerNorm.bias", "layernorm_bias", ("H",), None),
)
_LAYER_ROWS = (
    ("encoder.layer.{i}.attention.self.query.weight", "linear_weight", ("H", "H"), None),
    ("encoder.layer.{i}.attention.self.query.bias", "linear_bias", ("H",), None),
    ("encoder.layer.{i}.attention.self.key.weight", "linear_weight", ("H", "H"), None),
    ("encoder.layer.{i}.attention.self.key.bias", "linear_bias", ("H",), None),
    ("encoder.layer.{i}.attention.self.value.weight", "linear_weight", ("H", "H"), None),
    ("encoder.layer.{i}.attention.self.value.bias", "linear_bias", ("H",), None),
    ("encoder.layer.{i}.attention.self.distance_embedding.weight", "embedding", ("R", "D"), "relative"),
    ("encoder.layer.{i}.attention.output.dense.weight", "linear_weight", ("H", "H"), None),
    ("encoder.layer.{i}.attention.output.dense.bias", "linear_bias", ("H",), None),
    ("encoder.layer.{i}.attention.output.LayerNorm.weight", "layernorm_weight", ("H",), "postln"),
    ("encoder.layer.{i}.attention.output.LayerNorm.bias", "layernorm_bias", ("H",), "postln"),
    # RoBERTa-PreLayerNorm: the attention's LayerNorm normalises its input, on the residual branch.
    ("encoder.layer.{i}.attention.LayerNorm.weight", "layernorm_weight", ("H",), "preln"),
    ("encoder.layer.{i}.attention.LayerNorm.bias", "layernorm_bias", ("H",), "preln"),
    # v4 builds cross-attention with absolute positions: it has no distance_embedding.
    ("encoder.layer.{i}.crossattention.self.query.weight", "linear_weight", ("H", "H"), "cross"),
    ("encoder.layer.{i}.crossattention.self.query.bias", "linear_bias", ("H",), "cross"),
    ("encoder.layer.{i}.crossattention.self.key.weight", "linear_weight", ("H", "H"), "cross"),
    ("encoder.layer.{i}.crossattention.self.key.bias", "linear_bias", ("H",), "cross"),
    ("encoder.layer.{i}.crossattention.self.value.weight", "linear_weight", ("H", "H"), "cross"),
    ("encoder.layer.{i}.crossattention.self.value.bias", "linear_bias", ("H",), "cross"),
    ("encoder.layer.{i}.crossattention.output.dense.weight", "linear_weight", ("H", "H"), "cross"),
    ("encoder.layer.{i}.crossattention.output.dense.bias", "linear_bias", ("H",), "cross"),
    ("encoder.layer.{i}.crossattention.output.LayerNorm.weight", "layernorm_weight", ("H",), "cross_postln"),
    ("encoder.layer.{i}.crossattention.output.LayerNorm.bias", "layernorm_bias", ("H",), "cross_postln"),
    ("encoder.layer.{i}.crossattention.LayerNorm.weight", "layernorm_weight", ("H",), "cross_preln"),
    ("encoder.layer.{i}.crossattention.LayerNorm.bias", "layernorm_bias", ("H",), "cross_preln"),
    ("encoder.layer.{i}.intermediate.LayerNorm.weight", "layernorm_weight", ("H",), "preln"),
    ("encoder.layer.{i}.intermediate.LayerNorm.bias", "layernorm_bias", ("H",), "preln"),
    ("encoder.layer.{i}.intermediate.dense.weight", "linear_weight", ("I", "H"), None),
    ("encoder.layer.{i}.intermediate.dense.bias", "linear_bias", ("I",), None),
    ("encoder.layer.{i}.output.dense.weight", "linear_weight", ("H", "I"), None),
    ("encoder.layer.{i}.output.dense.bias", "linear_bias", ("H",), None),
    ("encoder.layer.{i}.output.LayerNorm.weight", "layernorm_weight", ("H",), "postln"),
    ("encoder.layer.{i}.output.LayerNorm.bias", "layernorm_bias", ("H",), "postln"),
)
# RoBERTa-PreLayerNorm normalises the last layer's output once more (v4: RobertaPreLayerNormModel.LayerNorm).
_FINAL_NORM_ROWS = (
    ("LayerNorm.weight", "layernorm_weight", ("H",), "preln"),
    ("LayerNorm.bias", "layernorm_bias", ("H",), "preln"),
)
_POOLER_ROWS = (
    ("pooler.dense.weight", "linear_weight", ("H", "H"), "pooled"),
    ("pooler.dense.bias", "linear_bias", ("H",), "pooled"),
)
_LM_HEAD_ROWS = (
    ("lm_head.dense.weight", "linear_weight", ("H", "H"), None),
    ("lm_head.dense.bias", "linear_bias", ("H",), None),
    ("lm_head.layer_norm.weight", "layernorm_weight", ("H",), None),
    ("lm_head.layer_norm.bias", "layernorm_bias", ("H",), None),
    ("lm_head.bias", "vector", ("V",), None),
    ("lm_head.decoder.weight", "linear_weight", ("V", "H"), "untied"),
)
# The task head's own rows, after the encoder's.
_HEAD_ROWS: dict[str, tuple] = {
    "model": (),
    "causal_lm": _LM_HEAD_ROWS,
    "masked_lm": _LM_HEAD_ROWS,
    "sequence_classification": (
        ("classifier.dense.weight", "linear_weight", ("H", "H"), None),
        ("classifier.dense.bias", "linear_bias", ("H",), None),
        ("classifier.out_proj.weight", "linear_weight", ("L", "H"), None),
        ("classifier.out_proj.bias", "linear_bias", ("L",), None),
    ),
    "multiple_choice": (
        ("classifier.weight", "linear_weight", (1, "H"), None),
        ("classifier.bias", "linear_bias", (1,), None),
    ),
    "token_classification": (
        ("classifier.weight", "linear_weight", ("L", "H"), None),
        ("classifier.bias", "linear_bias", ("L",), None),
    ),
    # v4 builds `qa_outputs` with num_labels outputs (its forward then needs 2: start, end).
    "question_answering": (
        ("qa_outputs.weight", "linear_weight", ("L", "H"), None),
        ("qa_outputs.bias", "linear_bias", ("L",), None),
    ),
}
# Names checkpoints carry that no head owns: the tied decoder's bias (a view of lm_head.bias).
_ALIAS_ROWS = (("lm_head.decoder.bias", "linear_bias", ("V",), None),)

# Heads whose encoder keeps the pooler (v4: add_pooling_layer=True only for these two).
_POOLED_HEADS = ("model", "multiple_choice")

# when -> predicate(config, head). Under `everything` (all_known_shapes) the head's own conditions
# (pooled, untied) count as true: some head could own those keys.
_CONDITIONS = {
    "relative": lambda config, head: config.position_embedding_type in ("relative_key", "relative_key_query"),
    "cross": lambda config, head: bool(config.add_cross_attention),
    "preln": lambda config, head: config.pre_layer_norm,
    "postln": lambda config, head: not config.pre_layer_norm,
    "cross_preln": lambda config, head: bool(config.add_cross_attention) and config.pre_layer_norm,
    "cross_postln": lambda config, head: bool(config.add_cross_attention) and not config.pre_layer_norm,
    "pooled": lambda config, head: head in _POOLED_HEADS,
    "untied": lambda config, head: not config.tie_word_embeddings,
}


def _dimensions(config: RobertaConfig) -> dict[str, int]:
    """The letters the table's shapes use."""
    return {
        "H": config.hidden_size,
        "I": config.intermediate_size,
        "V": config.vocab_size,
        "P": config.max_position_embeddings,
        "T": config.type_vocab_size,
        "R": 2 * config.max_position_embeddings - 1,  # relative distances -(P-1)..P-1
        "D": config.head_dim,
        "L": config.num_labels,
    }


def _expand(rows, config: RobertaConfig, head: str, everything: bool, **fields) -> dict[str, tuple[int, ...]]:
    """Name -> shape for the rows whose condition holds; `everything` (all_known_shapes) also takes
    the rows that depend on the head (pooler, untied decoder). `fields` fill the templates ({i})."""
    dims = _dimensions(config)
    shapes = {}
    for template, _, shape, when in rows:
        if when is None or (everything and when in ("pooled", "untied")) or _CONDITIONS[when](config, head):
            shapes[template.format(**fields)] = tuple(d if isinstance(d, int) else dims[d] for d in shape)
    return shapes


def pruned_width(config: RobertaConfig, layer: int) -> int:
    """The width of layer `layer`'s self-attention (heads kept × head size) under v4's
    `config.pruned_heads` ({layer: [head, ...]}, keys ints or, from JSON, strings)."""
    pruned = config.pruned_heads or {}
    heads = set()
    for key in (layer, str(layer), layer - config.num_hidden_layers, str(layer - config.num_hidden_layers)):
        heads.update(pruned.get(key, ()))  # v4 takes a negative layer too (-1: the last)
    return (config.num_attention_heads - len(heads)) * config.head_dim


def _encoder_shapes(config: RobertaConfig, head: str, everything: bool = False) -> dict[str, tuple[int, ...]]:
    """Encoder keys without the `roberta.` prefix, in module order."""
    shapes = _expand(_EMBEDDING_ROWS, config, head, everything)
    for i in range(config.num_hidden_layers):
        layer = _expand(_LAYER_ROWS, config, head, everything, i=i)
        kept = pruned_width(config, i)
        if kept != config.hidden_size:  # v4's pruned heads: the self-attention keeps `kept` of its columns
            for name in ("query", "key", "value"):
                layer[f"encoder.layer.{i}.attention.self.{name}.weight"] = (kept, config.hidden_size)
                layer[f"encoder.layer.{i}.attention.self.{name}.bias"] = (kept,)
            layer[f"encoder.layer.{i}.attention.output.dense.weight"] = (config.hidden_size, kept)
        shapes.update(layer)
    shapes.update(_expand(_FINAL_NORM_ROWS, config, head, everything))
    shapes.update(_expand(_POOLER_ROWS, config, head, everything))
    return shapes


def parameter_shapes(
    config: RobertaConfig, head: str, *, pooled: Optional[bool] = None
) -> dict[str, tuple[int, ...]]:
    """Canonical key -> shape for every parameter `head` owns (tied aliases excluded), in module order.
    `pooled` says whether the encoder has its pooler (v4's `add_pooling_layer`); None: the head's default."""
    _check_head(head)
    encoder = _encoder_shapes(config, head)
    if pooled is not None and pooled != _CONDITIONS["pooled"](config, head):
        pooler = _expand(_POOLER_ROWS, config, "model", False)
        encoder = {k: v for k, v in encoder.items() if k not in pooler}
        if pooled:
            encoder.update(pooler)
    if head == "model":
        return encoder
    shapes = {PREFIX + k: v for k, v in encoder.items()}
    shapes.update(_expand(_HEAD_ROWS[head], config, head, False))
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
    known = {PREFIX + k: v for k, v in _encoder_shapes(config, "model", everything=True).items()}
    for head in HEADS:
        known.update(_expand(_HEAD_ROWS[head], config, head, True))
    known.update(_expand(_ALIAS_ROWS, config, "masked_lm", True))
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
    return key.startswith(("embeddings.", "encoder.", "pooler.", "LayerNorm."))


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
            # v4's words for the ignored ones (code written for v4 looks for "the shapes did not match")
            verb = ("newly initialized because the shapes did not match (ignore_mismatched_sizes=True)"
                    if self.ignored_mismatched else "shape mismatch")
            lines.append(f"{verb} ({len(self.mismatched)}): {shown}")
        return "\n".join(lines)

    def check(self, *, strict: bool = False, source: str = "checkpoint", v4_mismatch_owner: str | None = None) -> None:
        """Raise for what is always an error (shape mismatches not ignored: a CheckpointKeyError;
        with `v4_mismatch_owner`, the model's class name, a StateDictSizeMismatchError opening with
        v4's PyTorch words) and, under `strict`, for unknown, unused or missing keys; otherwise warn
        once with the full report."""
        if self.mismatched and not self.ignored_mismatched:
            ours = (f"{source}: shapes do not match the config for {HEADS[self.head]}:\n{self.report()}\n"
                    "Pass ignore_mismatched_sizes=True to re-initialise those parameters instead.")
            if v4_mismatch_owner is None:
                raise CheckpointKeyError(ours)
            raise StateDictSizeMismatchError(
                f"{StateDictSizeMismatchError.v4_lines(v4_mismatch_owner, self.mismatched)}\n{ours}")
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
    pooled: Optional[bool] = None,
) -> LoadPlan:
    """Map a checkpoint's keys (any head's, with or without the `roberta.` prefix, legacy
    `gamma`/`beta`, tied aliases present or absent) onto the keys `head` owns (`pooled`: as
    `parameter_shapes`; a pooler the model lacks is reported unused)."""
    expected = parameter_shapes(config, head, pooled=pooled)
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


@dataclass(frozen=True)
class Kind:
    """How TensorFlow (h5) and Flax (msgpack) name and lay out one kind of parameter: the canonical
    last name part (`weight`/`bias`), the TF variable's and the Flax leaf's last name part, and
    whether TF and Flax store the array transposed (linear weights are (in, out) there).
    `tf_read` are other TF leaves read as this kind (transformers versions named embeddings both ways)."""

    param: str
    tf: str
    flax: str
    transposed: bool = False
    tf_read: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    "linear_weight": Kind("weight", "kernel", "kernel", transposed=True),
    "linear_bias": Kind("bias", "bias", "bias"),
    "layernorm_weight": Kind("weight", "gamma", "scale"),
    "layernorm_bias": Kind("bias", "beta", "bias"),
    "word_embedding": Kind("weight", "weight", "embedding", tf_read=("embeddings",)),
    "embedding": Kind("weight", "embeddings", "embedding", tf_read=("weight",)),
    "vector": Kind("bias", "bias", "bias"),  # lm_head.bias: a parameter of the head module itself
}

_ROWS = (*_EMBEDDING_ROWS, *_LAYER_ROWS, *_FINAL_NORM_ROWS, *_POOLER_ROWS, *_ALIAS_ROWS,
         *dict.fromkeys(row for rows in _HEAD_ROWS.values() for row in rows))
# One pattern for every template (prefixed where it is an encoder name): the group that matches names the kind.
_TEMPLATE_KIND = {f"k{n}": kind for n, (_, kind, _, _) in enumerate(_ROWS)}
_TEMPLATES = re.compile("|".join(
    f"(?P<k{n}>{re.escape(_with_prefix(template)).replace(re.escape('{i}'), '[0-9]+')})"
    for n, (template, _, _, _) in enumerate(_ROWS)))

# Names outside the table (another model's key, a typo) still map, so that `plan_load` can report
# them: by the kind their module's last name part implies, as for the table's own names.
_MODULE_KINDS = {
    "word_embeddings": {"weight": "word_embedding"},
    **{m: {"weight": "embedding"} for m in ("position_embeddings", "token_type_embeddings", "distance_embedding")},
    **{m: {"weight": "layernorm_weight", "bias": "layernorm_bias"} for m in ("LayerNorm", "layer_norm")},
}
_OTHER_MODULE_KINDS = {"weight": "linear_weight", "bias": "linear_bias"}


def _module_and_param(canonical: str) -> tuple[str, str]:
    module, _, param = canonical.rpartition(".")
    return module, param


@lru_cache(maxsize=4096)  # a model has a few hundred names; loaders ask for each several times
def _kind(canonical: str) -> str:
    """The kind of a canonical key (with or without the `roberta.` prefix): from the table, else
    from its module's name; a name with neither raises CheckpointKeyError."""
    full = _with_prefix(canonical)
    found = _TEMPLATES.fullmatch(full)
    if found:
        return _TEMPLATE_KIND[found.lastgroup]
    module, param = _module_and_param(full)
    kind = _MODULE_KINDS.get(module.rpartition(".")[2], _OTHER_MODULE_KINDS).get(param) if module else None
    if kind is None:
        raise CheckpointKeyError(f"{canonical!r} is not a RoBERTa parameter name")
    return kind


def _from_leaf(module: str, leaf: str, framework: str, what: str) -> str:
    """The canonical key whose kind names its `framework` ('tf'/'flax') leaf `leaf` under `module`."""
    for kind, rule in KINDS.items():
        if getattr(rule, framework) == leaf or (framework == "tf" and leaf in rule.tf_read):
            canonical = f"{module}.{rule.param}"
            with contextlib.suppress(CheckpointKeyError):
                if _kind(canonical) == kind:
                    return canonical
    raise CheckpointKeyError(what)


def is_transposed(canonical: str) -> bool:
    """True where TF and Flax store the array transposed: linear weights are (in, out) there."""
    return KINDS[_kind(canonical)].transposed


def to_tf_name(canonical: str) -> str:
    """'roberta.encoder.layer.0.attention.self.query.weight' ->
    'roberta/encoder/layer_._0/attention/self/query/kernel' (v4 TF names, without the
    model-class scope and the ':0' suffix). Encoder keys always get the `roberta/` scope."""
    full = _with_prefix(canonical)
    module, _ = _module_and_param(full)
    path = re.sub(r"/layer/(\d+)", r"/layer_._\1", module.replace(".", "/"))
    return f"{path}/{KINDS[_kind(full)].tf}"


def from_tf_name(name: str) -> str:
    """Inverse of `to_tf_name`; accepts a leading model-class scope (`tf_roberta_for_masked_lm/`)
    and the ':0' suffix. Returns the prefixed canonical key."""
    name = re.sub(r":\d+$", "", name)
    parts = name.split("/")
    for start in range(len(parts)):
        if parts[start] in ("roberta", "roberta_prelayernorm", "lm_head", "classifier", "qa_outputs"):
            parts = parts[start:]
            parts[0] = "roberta" if parts[0] == "roberta_prelayernorm" else parts[0]
            break
    else:
        raise CheckpointKeyError(f"TF weight {name!r} is not under roberta/, lm_head/, classifier/ or qa_outputs/")
    module = ".".join(parts[:-1]).replace("layer_._", "layer.")
    return _from_leaf(module, parts[-1], "tf", f"TF weight {name!r}: unknown variable name {parts[-1]!r}")


def to_flax_path(canonical: str) -> tuple[str, ...]:
    """'roberta.embeddings.LayerNorm.weight' -> ('roberta', 'embeddings', 'LayerNorm', 'scale')
    (v4 Flax/Linen tree paths; NNX state paths are the same). Encoder keys get the 'roberta' level;
    a bare Flax RobertaModel tree drops it (the caller strips it)."""
    full = _with_prefix(canonical)
    module, _ = _module_and_param(full)
    return (*module.split("."), KINDS[_kind(full)].flax)


def from_flax_path(path: Sequence[str]) -> str:
    """Inverse of `to_flax_path`. A path without the 'roberta' level (a bare model tree) maps to
    the prefixed key as well."""
    parts = [str(p) for p in path]
    if parts and parts[0] == "roberta_prelayernorm":
        parts[0] = "roberta"  # a RoBERTa-PreLayerNorm file's encoder level (ARCHITECTURE §3)
    module = ".".join(parts[:-1])
    if _is_encoder_key(module + ".x"):
        module = PREFIX + module
    return _from_leaf(module, parts[-1], "flax", f"Flax parameter {'/'.join(parts)!r}: unknown leaf {parts[-1]!r}")


# ---------------------------------------------------------------------------- family members' file names


def from_file_key(key: str) -> str:
    """A checkpoint file's key -> canonical: a RoBERTa-PreLayerNorm file names its encoder
    `roberta_prelayernorm.`; in memory every family member says `roberta.` (ARCHITECTURE §3)."""
    return "roberta." + key[len("roberta_prelayernorm."):] if key.startswith("roberta_prelayernorm.") else key


def to_file_key(key: str, base_model_prefix: str = "roberta") -> str:
    """Canonical -> the key a family member's file uses (`config.base_model_prefix`)."""
    if base_model_prefix != "roberta" and key.startswith(PREFIX):
        return f"{base_model_prefix}.{key[len(PREFIX):]}"
    return key


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


def check_vocab_resize(config: RobertaConfig, new_num_tokens: object, pad_to_multiple_of: object = None) -> int | None:
    """The one argument check of every backend's `resize_token_embeddings`: a positive integer
    that keeps the special tokens the config names, rounded up to a multiple of
    `pad_to_multiple_of` (v4's option; without `new_num_tokens` it rounds the current size).
    Returns the new size, or None when both are None (v4: nothing to resize)."""
    if pad_to_multiple_of is not None:
        if isinstance(pad_to_multiple_of, bool) or not isinstance(pad_to_multiple_of, int):
            raise ValueError(f"Asking to pad the embedding matrix to a multiple of `{pad_to_multiple_of}`, which is "
                             "not and integer. Please make sure to pass an integer")  # v4's words
        if pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of must be a positive integer, got {pad_to_multiple_of!r}")
        if new_num_tokens is None:
            new_num_tokens = config.vocab_size
    elif new_num_tokens is None:
        return None
    if isinstance(new_num_tokens, bool) or not isinstance(new_num_tokens, int) or new_num_tokens < 1:
        raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        token = getattr(config, name)
        if token is not None and token >= new_num_tokens:
            raise ValueError(f"new_num_tokens={new_num_tokens} would drop {name}={token}; keep at least {token + 1}")
    if pad_to_multiple_of is not None:
        new_num_tokens = -(-new_num_tokens // pad_to_multiple_of) * pad_to_multiple_of
    return new_num_tokens
