"""A float64 NumPy RoBERTa: the oracle every backend is compared with (by `roberta parity`, the
conformance tests and `roberta convert`'s model check).

Written from the definitions (Liu et al. 2019; Vaswani et al. 2017; Shaw et al. 2018 and
Huang et al. 2020 for relative positions; Xiong et al. 2020 for the pre-LayerNorm placement of
RoBERTa-PreLayerNorm; ARCHITECTURE §3-§4) and from nothing else:
it imports no framework and no backend, and not `roberta_core` beyond the config type and the
canonical key names. Dropout is off (the reference is the evaluation-mode model).

    from roberta_core.reference import forward
    out = forward(config, state, "masked_lm", input_ids=ids, attention_mask=mask, labels=labels)
    out["logits"]  # (B, T, V) float64

`state` is the canonical dict (`roberta_core.weights.parameter_shapes` names, linear weights
(out, in) as in PyTorch; tied aliases may be present or absent). The result is a plain dict
with the v4 output field names of the head; fields that v4 would leave None are absent.
Sequences of per-layer arrays (`hidden_states`, `attentions`, `cross_attentions`,
`past_key_values`) are tuples, as in v4.

Every member of the family is this one model (`config.model_type`): XLM-RoBERTa and CamemBERT are
RoBERTa with other vocabularies; RoBERTa-PreLayerNorm (`config.pre_layer_norm`) normalises each
block's input instead of its output and adds a final LayerNorm after the last layer.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .config import RobertaConfig

__all__ = ["ACT2FN", "IGNORE_INDEX", "forward", "cross_entropy", "softmax", "layer_norm", "HEAD_FIELDS"]

IGNORE_INDEX = -100
NEG = np.finfo(np.float64).min  # additive mask value: the dtype's minimum, as every backend uses

# head -> output fields in v4 order (the reference returns the present ones, in this order)
HEAD_FIELDS: dict[str, tuple[str, ...]] = {
    "model": ("last_hidden_state", "pooler_output", "hidden_states", "past_key_values", "attentions", "cross_attentions"),
    "causal_lm": ("loss", "logits", "past_key_values", "hidden_states", "attentions", "cross_attentions"),
    "masked_lm": ("loss", "logits", "hidden_states", "attentions"),
    "sequence_classification": ("loss", "logits", "hidden_states", "attentions"),
    "multiple_choice": ("loss", "logits", "hidden_states", "attentions"),
    "token_classification": ("loss", "logits", "hidden_states", "attentions"),
    "question_answering": ("loss", "start_logits", "end_logits", "hidden_states", "attentions"),
}


# ---------------------------------------------------------------------------- activations

_erf = np.vectorize(math.erf, otypes=[np.float64])  # exact erf, element by element


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _laplace(x, mu=0.707107, sigma=0.282095):
    return 0.5 * (1.0 + _erf((x - mu) / (sigma * math.sqrt(2.0))))


# Every name in roberta_core.config.ACTIVATIONS. The tanh forms of GELU (gelu_new, gelu_pytorch_tanh,
# gelu_fast, gelu_accurate) are one function written with different constant layouts.
ACT2FN = {
    "gelu": _gelu,
    "gelu_python": _gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": lambda x: 0.5 * x * (1.0 + np.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))),
    "gelu_accurate": _gelu_tanh,
    "quick_gelu": lambda x: x * _sigmoid(1.702 * x),
    "gelu_10": lambda x: np.clip(_gelu(x), -10.0, 10.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "relu2": lambda x: np.maximum(x, 0.0) ** 2,
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "linear": lambda x: x,
    "laplace": _laplace,
}


# ---------------------------------------------------------------------------- building blocks


def linear(x, p: "_Params", name: str):
    """x @ W.T + b with the canonical (out, in) weight of module `name`."""
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def layer_norm(x, weight, bias, eps: float):
    """Normalise the last axis (population variance), then scale and shift."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def softmax(x, axis: int = -1):
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


class _Params:
    """Canonical weights as float64, looked up without the `roberta.` prefix (encoder keys
    `embeddings.*`, `encoder.*`, `pooler.*` and head keys never collide)."""

    def __init__(self, state: Mapping[str, Any]):
        self.arrays = {k.removeprefix("roberta."): np.asarray(v, dtype=np.float64) for k, v in state.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise KeyError(f"the state has no parameter {name!r} (with or without the 'roberta.' prefix)") from None


# ---------------------------------------------------------------------------- embeddings


def position_ids_from(config: RobertaConfig, input_ids, batch: int, length: int, past_length: int):
    """RoBERTa's positions: counted over non-pad tokens from padding_idx + 1; pads get padding_idx.
    From inputs_embeds (no ids to see the padding in) they are sequential."""
    pad = config.pad_token_id
    if input_ids is not None:
        real = (input_ids != pad).astype(np.int64)  # (B, T)
        return pad + (np.cumsum(real, axis=1) + past_length) * real
    return np.broadcast_to(pad + 1 + past_length + np.arange(length), (batch, length))


def embeddings(config, p: _Params, input_ids, inputs_embeds, token_type_ids, position_ids, past_length):
    """Word (or given) embeddings + token type + absolute position -> LayerNorm. (B, T, H)"""
    if inputs_embeds is None:
        inputs_embeds = p["embeddings.word_embeddings.weight"][input_ids]
    B, T = inputs_embeds.shape[:2]
    if token_type_ids is None:
        token_type_ids = np.zeros((B, T), dtype=np.int64)
    x = inputs_embeds + p["embeddings.token_type_embeddings.weight"][token_type_ids]
    if config.position_embedding_type == "absolute":
        if position_ids is None:
            position_ids = position_ids_from(config, input_ids, B, T, past_length)
        x = x + p["embeddings.position_embeddings.weight"][np.broadcast_to(position_ids, (B, T))]
    return layer_norm(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], config.layer_norm_eps)


# ---------------------------------------------------------------------------- attention


def split_heads(x, heads: int):
    """(B, T, H) -> (B, heads, T, D)"""
    B, T, H = x.shape
    return x.reshape(B, T, heads, H // heads).transpose(0, 2, 1, 3)


def attention(
    config, p: _Params, prefix: str, x, allowed, *, layer_head_mask=None, source=None, past=None, relative=False,
    past_length=0,
):
    """One attention block (self-attention, or cross-attention over `source`) with its output
    projection, residual and LayerNorm: after the residual sum (post-LN, RoBERTa), or on the block's
    input only, the residual left unnormalised (`config.pre_layer_norm`; `source` is never normalised).

    x (B, T, H); allowed (B, 1, T or 1, S) boolean: which keys each query may see; past: cached
    (k, v) to extend (self) or to reuse (cross); relative: add the distance terms of
    `relative_key` / `relative_key_query` (self-attention only). Returns (output (B, T, H),
    probs (B, heads, T, S), (k, v) each (B, heads, S, D)).
    """
    heads, D = config.num_attention_heads, config.head_dim
    pre = config.pre_layer_norm
    h = layer_norm(x, p[f"{prefix}.LayerNorm.weight"], p[f"{prefix}.LayerNorm.bias"], config.layer_norm_eps) if pre else x
    q = split_heads(linear(h, p, f"{prefix}.self.query"), heads)  # (B, h, T, D)
    if source is not None and past is not None:
        k, v = past  # cross-attention keys depend only on the encoder states: computed once
    else:
        kv_in = h if source is None else source
        k = split_heads(linear(kv_in, p, f"{prefix}.self.key"), heads)  # (B, h, S, D)
        v = split_heads(linear(kv_in, p, f"{prefix}.self.value"), heads)
        if past is not None:
            k = np.concatenate([past[0], k], axis=2)
            v = np.concatenate([past[1], v], axis=2)
    scores = q @ k.transpose(0, 1, 3, 2)  # (B, h, T, S)
    if relative:
        T, S = q.shape[2], k.shape[2]
        # Query i sits at position past_length + i; key j at position j.
        distance = (past_length + np.arange(T))[:, None] - np.arange(S)[None, :]  # (T, S)
        E = p[f"{prefix}.self.distance_embedding.weight"][distance + config.max_position_embeddings - 1]  # (T, S, D)
        scores = scores + np.einsum("bhld,lrd->bhlr", q, E)
        if config.position_embedding_type == "relative_key_query":
            scores = scores + np.einsum("bhrd,lrd->bhlr", k, E)
    scores = scores / math.sqrt(D)
    scores = scores + np.where(allowed, 0.0, NEG)
    probs = softmax(scores)
    if layer_head_mask is not None:
        probs = probs * layer_head_mask[None, :, None, None]
    ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)  # (B, T, H)
    out = linear(ctx, p, f"{prefix}.output.dense")
    if pre:
        return out + x, probs, (k, v)
    out = layer_norm(
        out + x, p[f"{prefix}.output.LayerNorm.weight"], p[f"{prefix}.output.LayerNorm.bias"],
        config.layer_norm_eps,
    )
    return out, probs, (k, v)


def self_attention_mask(config, attention_mask, batch: int, length: int, past_length: int):
    """Boolean (B, 1, T, S): padding (keys whose mask is 0 are hidden) and, in decoder mode,
    causality (query i at position past_length + i sees keys up to that position)."""
    S = past_length + length
    keys = np.ones((batch, S), dtype=bool) if attention_mask is None else np.asarray(attention_mask) != 0
    allowed = np.broadcast_to(keys[:, None, None, :], (batch, 1, length, S))
    if config.is_decoder:
        causal = np.arange(S)[None, :] <= (past_length + np.arange(length))[:, None]  # (T, S)
        allowed = allowed & causal[None, None]
    return allowed


# ---------------------------------------------------------------------------- encoder


def encoder_layer(config, p: _Params, i: int, x, allowed, layer_head_mask, source, source_allowed, past, past_length):
    """Self-attention, optional cross-attention, feed-forward. Returns (x, self probs, cross probs, cache)."""
    layer = f"encoder.layer.{i}"
    relative = config.position_embedding_type != "absolute"
    self_past = None if past is None else past[:2]
    x, probs, kv = attention(
        config, p, f"{layer}.attention", x, allowed, layer_head_mask=layer_head_mask, past=self_past,
        relative=relative, past_length=past_length,
    )
    cache: tuple = kv
    cross_probs = None
    if source is not None:
        cross_past = None if past is None or len(past) < 4 else past[2:]
        # Cross-attention always uses absolute positions (v4 builds it with position_embedding_type="absolute").
        x, cross_probs, cross_kv = attention(
            config, p, f"{layer}.crossattention", x, source_allowed, layer_head_mask=layer_head_mask,
            source=source, past=cross_past,
        )
        cache = cache + cross_kv
    eps = config.layer_norm_eps
    if config.pre_layer_norm:  # normalise the feed-forward's input; the residual stays unnormalised
        h = layer_norm(x, p[f"{layer}.intermediate.LayerNorm.weight"], p[f"{layer}.intermediate.LayerNorm.bias"], eps)
    else:
        h = x
    h = ACT2FN[config.hidden_act](linear(h, p, f"{layer}.intermediate.dense"))
    h = linear(h, p, f"{layer}.output.dense")
    if config.pre_layer_norm:
        x = h + x
    else:
        x = layer_norm(h + x, p[f"{layer}.output.LayerNorm.weight"], p[f"{layer}.output.LayerNorm.bias"], eps)
    return x, probs, cross_probs, cache


def roberta(
    config, p: _Params, *, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
    head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
    past_key_values=None, use_cache=False, output_attentions=False, output_hidden_states=False, pooler=False,
):
    """The encoder (RobertaModel). Returns a dict of the base model's fields.

    RoBERTa-PreLayerNorm normalises the last layer's output once more (v4's `RobertaPreLayerNormModel.LayerNorm`):
    `last_hidden_state` and the pooler see it normalised, while `hidden_states[-1]` (the encoder's list) is
    the output before that LayerNorm, as in v4."""
    past_length = 0 if past_key_values is None else past_key_values[0][0].shape[2]
    x = embeddings(config, p, input_ids, inputs_embeds, token_type_ids, position_ids, past_length)
    B, T = x.shape[:2]
    allowed = self_attention_mask(config, attention_mask, B, T, past_length)
    source_allowed = None
    if encoder_hidden_states is not None:
        S = encoder_hidden_states.shape[1]
        enc_keys = np.ones((B, S), bool) if encoder_attention_mask is None else np.asarray(encoder_attention_mask) != 0
        source_allowed = enc_keys[:, None, None, :]
    if head_mask is not None:
        head_mask = np.asarray(head_mask, dtype=np.float64)
        if head_mask.ndim == 1:  # one mask for every layer
            head_mask = np.broadcast_to(head_mask, (config.num_hidden_layers, config.num_attention_heads))
    hidden, attns, cross, caches = [], [], [], []
    for i in range(config.num_hidden_layers):
        hidden.append(x)
        x, probs, cross_probs, cache = encoder_layer(
            config, p, i, x, allowed, None if head_mask is None else head_mask[i],
            encoder_hidden_states, source_allowed, None if past_key_values is None else past_key_values[i], past_length,
        )
        attns.append(probs)
        cross.append(cross_probs)
        caches.append(cache)
    hidden.append(x)
    if config.pre_layer_norm:
        x = layer_norm(x, p["LayerNorm.weight"], p["LayerNorm.bias"], config.layer_norm_eps)
    out: dict[str, Any] = {"last_hidden_state": x}
    if pooler:
        out["pooler_output"] = np.tanh(linear(x[:, 0], p, "pooler.dense"))
    if output_hidden_states:
        out["hidden_states"] = tuple(hidden)
    if use_cache:
        out["past_key_values"] = tuple(caches)
    if output_attentions:
        out["attentions"] = tuple(attns)
        if encoder_hidden_states is not None:
            out["cross_attentions"] = tuple(cross)
    return out


# ---------------------------------------------------------------------------- losses


def cross_entropy(logits, labels, ignore_index: int = IGNORE_INDEX):
    """Mean cross-entropy over the rows whose label is not `ignore_index`; 0 when every label is.
    logits (N, K), labels (N,)."""
    labels = np.asarray(labels).reshape(-1)
    logits = logits.reshape(labels.shape[0], -1)
    keep = labels != ignore_index
    if not keep.any():
        return np.float64(0.0)
    z = logits[keep]
    m = z.max(-1, keepdims=True)
    logsumexp = (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[:, 0]
    return np.mean(logsumexp - z[np.arange(z.shape[0]), labels[keep]])


def bce_with_logits(logits, targets):
    """Mean binary cross-entropy of sigmoid(logits) against 0/1 (or soft) targets."""
    t = np.asarray(targets, dtype=np.float64)
    return np.mean(np.maximum(logits, 0.0) - logits * t + np.log1p(np.exp(-np.abs(logits))))


def problem_type_of(config: RobertaConfig, labels) -> str:
    """The config's problem_type, else regression for one label, single-label for integer labels,
    multi-label otherwise (v4's rule)."""
    if config.problem_type is not None:
        return config.problem_type
    if config.num_labels == 1:
        return "regression"
    return "single_label_classification" if np.issubdtype(np.asarray(labels).dtype, np.integer) else "multi_label_classification"


def sequence_classification_loss(config, logits, labels):
    problem = problem_type_of(config, labels)
    if problem == "regression":
        y = np.asarray(labels, dtype=np.float64)
        if config.num_labels == 1:
            return np.mean((logits.reshape(-1) - y.reshape(-1)) ** 2)
        return np.mean((logits - y) ** 2)
    if problem == "single_label_classification":
        return cross_entropy(logits, labels)
    return bce_with_logits(logits, labels)


def question_answering_loss(start_logits, end_logits, start_positions, end_positions):
    """Positions clamped to [0, T]; T (past the end) is ignored; the mean of the two losses."""
    T = start_logits.shape[1]
    start = np.clip(np.asarray(start_positions).reshape(-1), 0, T)
    end = np.clip(np.asarray(end_positions).reshape(-1), 0, T)
    return (cross_entropy(start_logits, start, ignore_index=T) + cross_entropy(end_logits, end, ignore_index=T)) / 2


# ---------------------------------------------------------------------------- heads


def lm_head(config, p: _Params, x):
    """dense -> exact GELU -> LayerNorm -> decoder (tied to the word embeddings unless untied). (B, T, V)"""
    h = ACT2FN["gelu"](linear(x, p, "lm_head.dense"))
    h = layer_norm(h, p["lm_head.layer_norm.weight"], p["lm_head.layer_norm.bias"], config.layer_norm_eps)
    decoder = p["lm_head.decoder.weight"] if not config.tie_word_embeddings else p["embeddings.word_embeddings.weight"]
    return h @ decoder.T + p["lm_head.bias"]


def _flatten_choices(value, trailing: int):
    """(B, C, ...) -> (B*C, ...) keeping `trailing` axes."""
    if value is None:
        return None
    value = np.asarray(value)
    return value.reshape((-1,) + value.shape[value.ndim - trailing:])


def forward(
    config: RobertaConfig,
    state: Mapping[str, Any],
    head: str = "model",
    *,
    input_ids=None,
    attention_mask=None,
    token_type_ids=None,
    position_ids=None,
    head_mask=None,
    inputs_embeds=None,
    encoder_hidden_states=None,
    encoder_attention_mask=None,
    labels=None,
    start_positions=None,
    end_positions=None,
    past_key_values: Sequence[Sequence[np.ndarray]] | None = None,
    use_cache: bool | None = None,
    output_attentions: bool | None = None,
    output_hidden_states: bool | None = None,
) -> dict[str, Any]:
    """Run `head` (a key of roberta_core.weights.HEADS) on NumPy inputs; float64 outputs with v4 names.

    Defaults follow v4: output_attentions/output_hidden_states from the config; use_cache from the
    config in decoder mode and off otherwise (and off for the causal LM when labels are given).
    Multiple choice inputs are (B, C, T) (inputs_embeds (B, C, T, H)).
    """
    if head not in HEAD_FIELDS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEAD_FIELDS)}")
    p = _Params(state)
    if output_attentions is None:
        output_attentions = config.output_attentions
    if output_hidden_states is None:
        output_hidden_states = config.output_hidden_states
    if not config.is_decoder or (head == "causal_lm" and labels is not None):
        use_cache = False
    elif use_cache is None:
        use_cache = config.use_cache
    as_f64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    inputs = dict(
        input_ids=None if input_ids is None else np.asarray(input_ids),
        attention_mask=attention_mask,
        token_type_ids=None if token_type_ids is None else np.asarray(token_type_ids),
        position_ids=None if position_ids is None else np.asarray(position_ids),
        head_mask=head_mask,
        inputs_embeds=as_f64(inputs_embeds),
        encoder_hidden_states=as_f64(encoder_hidden_states),
        encoder_attention_mask=encoder_attention_mask,
        past_key_values=None if past_key_values is None else [[as_f64(t) for t in layer] for layer in past_key_values],
        use_cache=use_cache,
        output_attentions=output_attentions,
        output_hidden_states=output_hidden_states,
    )
    if head == "multiple_choice":
        num_choices = (inputs["input_ids"] if input_ids is not None else inputs["inputs_embeds"]).shape[1]
        for name in ("input_ids", "attention_mask", "token_type_ids", "position_ids"):
            inputs[name] = _flatten_choices(inputs[name], 1)
        inputs["inputs_embeds"] = _flatten_choices(inputs["inputs_embeds"], 2)

    base = roberta(config, p, pooler=head in ("model", "multiple_choice"), **inputs)
    x = base["last_hidden_state"]
    out: dict[str, Any] = {}
    if head == "model":
        out = base
    elif head in ("causal_lm", "masked_lm"):
        out["logits"] = lm_head(config, p, x)
        if labels is not None:
            labels = np.asarray(labels)
            if head == "causal_lm":  # predict token t + 1 from the tokens up to t
                out["loss"] = cross_entropy(out["logits"][:, :-1], labels[:, 1:])
            else:
                out["loss"] = cross_entropy(out["logits"], labels)
    elif head == "sequence_classification":
        h = np.tanh(linear(x[:, 0], p, "classifier.dense"))  # the <s> token
        out["logits"] = linear(h, p, "classifier.out_proj")  # (B, L)
        if labels is not None:
            out["loss"] = sequence_classification_loss(config, out["logits"], labels)
    elif head == "multiple_choice":
        out["logits"] = linear(base["pooler_output"], p, "classifier").reshape(-1, num_choices)  # (B, C)
        if labels is not None:
            out["loss"] = cross_entropy(out["logits"], labels)
    elif head == "token_classification":
        out["logits"] = linear(x, p, "classifier")  # (B, T, L)
        if labels is not None:
            out["loss"] = cross_entropy(out["logits"], labels)
    else:  # question_answering
        both = linear(x, p, "qa_outputs")  # (B, T, 2)
        out["start_logits"], out["end_logits"] = both[..., 0], both[..., 1]
        if start_positions is not None and end_positions is not None:
            out["loss"] = question_answering_loss(out["start_logits"], out["end_logits"], start_positions, end_positions)
    if head != "model":
        for name in ("past_key_values", "hidden_states", "attentions", "cross_attentions"):
            if name in base and name in HEAD_FIELDS[head]:
                out[name] = base[name]
    return {name: out[name] for name in HEAD_FIELDS[head] if name in out}
