"""Flax (NNX) RoBERTa, in reading order: activations -> embeddings -> self-attention -> layer ->
encoder -> pooler -> the pretrained-model base -> FlaxRobertaModel.

The module tree and parameter paths are those of Hugging Face `transformers` v4's Flax (Linen)
models, so the NNX state paths (`encoder/layer/0/attention/self/query/kernel`) are the keys of
`flax_model.msgpack` files and map to the canonical keys through `roberta_core.weights`
(ARCHITECTURE §3). Shapes in comments: B batch, T query length, S key length (cache included),
H hidden size, h heads, D head size (H / h), V vocabulary.

A parallel text of `roberta_pt/modeling.py` (the master text): same classes (with the `Flax`
prefix), order and comments. What only JAX has: `deterministic=` and `nnx.Rngs` for dropout,
`dtype` (computation) and `param_dtype`, logical sharding axes on the kernels
(`LOGICAL_AXIS_RULES`, `shard()`), a preallocated cache for `generate()` (`cache_index`), and
value checks under `jit` through `checkify` (`enable_jit_checks()` and `checked()`). The JAX
machinery that is not the model (compiled eager calls, value checks, parameter builders) lives
in `_framework.py`, the padding-free machinery of `unpad=` in `unpad.py`.

fp32 numerics: on GPU and TPU, XLA multiplies float32 matrices in reduced precision unless told
otherwise; `jax.config.update("jax_default_matmul_precision", "highest")` holds the 1e-5 bars
against PyTorch and the float64 reference (CPU computes float32 in full anyway).
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import warnings
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import checkify

from roberta_core import backends, family
from roberta_core.config import RobertaConfig, model_config, own_config
from roberta_core.generation import checkpoint_generation_config
from roberta_core.outputs import BaseModelOutputWithPastAndCrossAttentions, BaseModelOutputWithPoolingAndCrossAttentions
from roberta_core.pretrained import (
    load_pretrained,
    loading_info,
    pretrained_weights_file,
    push_model_to_hub,
    resolve_pretrained,
    save_pretrained_files,
    split_from_pretrained_kwargs,
)
from roberta_core.validation import check_forward_inputs, token_budget
from roberta_core.weights import PREFIX, check_vocab_resize, from_flax_path

from ._framework import (
    LOGICAL_AXIS_RULES,
    LinenModule,
    _axes,
    _compiled,
    _Deferred,
    _deferring,
    _dense,
    _dropout,
    _embed,
    _is_traced,
    _layer_norm,
    _rngs,
    check_embeds_dtype,
    check_values,
    checked,
    linen_params,
    nnx_params,
    require_initialized,
    resolve_device,
    resolve_dtype,
    shape_of,
    v4_constructor,
    v4_model,
)
from .convert import from_canonical, to_canonical
from .unpad import (
    Packing,
    _nothing_masked,
    first_positions,
    first_rows,
    pack,
    packed_attention,
    _packing_budget,
    packing_for,
    repad,
    unpad_rows,
)

__all__ = [
    "ACT2FN",
    "ATTN_IMPLEMENTATIONS",
    "FlaxRobertaEmbeddings",
    "fused_attention",
    "explicit_attention",
    "FlaxRobertaSelfAttention",
    "FlaxRobertaSelfOutput",
    "FlaxRobertaAttention",
    "FlaxRobertaIntermediate",
    "FlaxRobertaOutput",
    "FlaxRobertaLayer",
    "FlaxRobertaEncoder",
    "FlaxRobertaPooler",
    "FlaxRobertaPreTrainedModel",
    "FlaxRobertaModel",
    # Re-exported from `_framework` and `unpad`, where they live.
    "LOGICAL_AXIS_RULES",
    "checked",
    "check_values",
    "shape_of",
    "Packing",
    "pack",
    "unpad_rows",
    "repad",
    "packed_attention",
    "packing_for",
]

# The backend's attention paths (first the default) and the other backends' names for them, so
# one setting serves every backend: from the backend contract, `roberta_core.backends`.
ATTN_IMPLEMENTATIONS = backends.get("flax").attn_implementations
ATTN_ALIASES = dict(backends.get("flax").attn_aliases)


# ---------------------------------------------------------------------------- 1. activations

def _gelu_tanh(x: jax.Array) -> jax.Array:
    # GPT-2's tanh approximation of GELU (v4's gelu_new and gelu_accurate).
    return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * jnp.power(x, 3.0))))


def _gelu_fast(x: jax.Array) -> jax.Array:
    # The same approximation with the constants folded the other way; rounds differently.
    return 0.5 * x * (1.0 + jnp.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _laplace(x: jax.Array, mu: float = 0.707107, sigma: float = 0.282095) -> jax.Array:
    # MEGA's bounded activation: the normal CDF around mu.
    return 0.5 * (1.0 + jax.lax.erf((x - mu) / (sigma * math.sqrt(2.0))))


# `jax.nn.gelu` defaults to the tanh approximation; RoBERTa's gelu is the exact, erf-based one.
_gelu = functools.partial(jax.nn.gelu, approximate=False)

# Every name of roberta_core.config.ACTIVATIONS, with v4's formula for it.
ACT2FN: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": _gelu,  # exact, erf-based
    "gelu_python": _gelu,  # the same function; v4 spelled it out in Python
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_fast": _gelu_fast,
    "gelu_accurate": _gelu_tanh,
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "gelu_10": lambda x: jnp.clip(_gelu(x), -10.0, 10.0),
    "relu": jax.nn.relu,
    "relu2": lambda x: jnp.square(jax.nn.relu(x)),
    "relu6": jax.nn.relu6,
    "leaky_relu": functools.partial(jax.nn.leaky_relu, negative_slope=0.01),  # PyTorch's default slope
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda x: x,
    "laplace": _laplace,
}


# ---------------------------------------------------------------------------- 2. embeddings

def position_ids_from_input_ids(input_ids: jax.Array, padding_idx: int, past_length: Any = 0) -> jax.Array:
    """RoBERTa's positions (fairseq's `make_positions`): real tokens count up from
    padding_idx + 1 (after `past_length` cached ones), padding tokens get padding_idx. (B, T) -> (B, T)"""
    real = (input_ids != padding_idx).astype(jnp.int32)
    return (jnp.cumsum(real, axis=1) + past_length) * real + padding_idx


def _lookup(table: nnx.Embed, ids: jax.Array, padding_idx: int) -> jax.Array:
    """Rows of `table` for `ids`; as with PyTorch's `padding_idx`, the lookups of the padding
    row pass no gradient to it (it keeps its value in training)."""
    rows = table(ids)
    return jnp.where((ids == padding_idx)[..., None], jax.lax.stop_gradient(rows), rows)


class FlaxRobertaEmbeddings(nnx.Module):
    """Token ids (B, T) -> vectors (B, T, H): word + token type + absolute position embeddings,
    then LayerNorm and dropout. With relative position types the position table is still
    there (checkpoints hold it) but not added."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        self.padding_idx = config.pad_token_id
        self.position_embedding_type = config.position_embedding_type
        self.dtype = dtype
        H = config.hidden_size
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.word_embeddings = _embed(
            config, config.vocab_size, H, ("vocab", "embed"), padding_idx=self.padding_idx, **kw
        )
        self.position_embeddings = _embed(
            config, config.max_position_embeddings, H, (None, "embed"), padding_idx=self.padding_idx, **kw
        )
        self.token_type_embeddings = _embed(config, config.type_vocab_size, H, (None, "embed"), **kw)
        # `LayerNorm`, not snake case: the name is part of every checkpoint's keys.
        self.LayerNorm = _layer_norm(config, **kw)
        self.dropout = _dropout(config.hidden_dropout_prob, rngs=rngs)

    def _position_ids(
        self, input_ids: Optional[jax.Array], inputs_embeds: Optional[jax.Array], past_length: Any = 0
    ) -> jax.Array:
        """Positions when none are given: (B, T) from the padding in the ids, or (1, T) counting
        from the first position for embeddings (they do not say which tokens are padding)."""
        if input_ids is not None:
            return position_ids_from_input_ids(input_ids, self.padding_idx, past_length)
        T = inputs_embeds.shape[1]
        return (self.padding_idx + 1 + past_length + jnp.arange(T))[None, :]  # (1, T)

    def __call__(
        self,
        input_ids: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        position_ids: Optional[jax.Array] = None,
        inputs_embeds: Optional[jax.Array] = None,
        past_length: Any = 0,
        deterministic: bool = True,
    ) -> jax.Array:
        if position_ids is None:
            position_ids = self._position_ids(input_ids, inputs_embeds, past_length)
        if inputs_embeds is None:
            inputs_embeds = _lookup(self.word_embeddings, input_ids, self.padding_idx)  # (B, T, H)
        if token_type_ids is None:
            # Every token is of type 0: add row 0 of the table (a one-row table is still added).
            token_type_embeddings = self.token_type_embeddings.embedding[0].astype(self.dtype)
        else:
            token_type_embeddings = self.token_type_embeddings(token_type_ids)
        embeddings = inputs_embeds.astype(self.dtype) + token_type_embeddings
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + _lookup(self.position_embeddings, position_ids, self.padding_idx)
        embeddings = self.LayerNorm(embeddings)
        return self.dropout(embeddings, deterministic=deterministic)


# ---------------------------------------------------------------------------- 3. self-attention

_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


def fused_attention(
    query: jax.Array, key: jax.Array, value: jax.Array, mask: Optional[jax.Array], *, is_causal: bool = False
) -> jax.Array:
    """The fast attention core: `jax.nn.dot_product_attention` (cuDNN's fused kernel on GPU,
    XLA elsewhere). q (B, h, T, D), k/v (B, h, S, D), boolean mask broadcastable to
    (B, h, T, S) or None -> context (B, T, h, D). A None mask lets the fastest kernels run."""
    # JAX's layout puts the heads after the positions: (B, T, h, D).
    q, k, v = (x.swapaxes(1, 2) for x in (query, key, value))
    return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=is_causal)


def explicit_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    mask: Optional[jax.Array],
    *,
    dropout: Callable[[jax.Array], jax.Array],
    head_mask: Optional[jax.Array] = None,
    position_scores: Optional[jax.Array] = None,
) -> tuple[jax.Array, jax.Array]:
    """The explicit attention core, for what the fused kernels cannot do: return the
    probabilities, scale them per head (`head_mask`), add relative-position scores, drop out.
    q (B, h, T, D), k/v (B, h, S, D) -> context (B, T, h, D), probabilities (B, h, T, S)."""
    scores = jnp.einsum("bhtd,bhsd->bhts", query, key)  # (B, h, T, S)
    if position_scores is not None:
        scores = scores + position_scores
    scores = scores / math.sqrt(query.shape[-1])
    # Softmax in float32: half-precision scores plus the mask's large negative values lose
    # the small differences that decide the probabilities.
    scores = scores.astype(jnp.float32)
    if mask is not None:
        # The dtype's minimum, finite on purpose: a row with nothing to attend to (a padding
        # query) gets uniform probabilities, never NaN.
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(query.dtype)
    # Dropping whole keys to attend to, as in the original Transformer.
    probs = dropout(probs)
    if head_mask is not None:
        probs = probs * head_mask
    return jnp.einsum("bhts,bhsd->bthd", probs, value), probs


class FlaxRobertaSelfAttention(nnx.Module):
    """Multi-head attention of a sequence over itself (or, as cross-attention, over the
    encoder's states), with an optional key/value cache and relative position scores.
    (B, T, H) -> (B, T, H)."""

    def __init__(
        self, config: RobertaConfig, position_embedding_type: Optional[str] = None, *,
        dtype: Any, param_dtype: Any, rngs: nnx.Rngs,
    ):
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        H = config.hidden_size
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.query = _dense(config, H, H, ("embed", "heads"), **kw)
        self.key = _dense(config, H, H, ("embed", "heads"), **kw)
        self.value = _dense(config, H, H, ("embed", "heads"), **kw)
        self.dropout = _dropout(config.attention_probs_dropout_prob, rngs=rngs)
        self.position_embedding_type = position_embedding_type or config.position_embedding_type
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            # One vector per distance -(P-1) .. P-1, shared by all heads (Shaw et al.; Huang et al.).
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = _embed(
                config, 2 * config.max_position_embeddings - 1, self.head_dim, (None, None), **kw
            )

    def _split_heads(self, x: jax.Array) -> jax.Array:
        B, T, _ = x.shape
        return x.reshape(B, T, self.num_heads, self.head_dim).swapaxes(1, 2)  # (B, h, T, D)

    def _relative_scores(self, query: jax.Array, key: jax.Array, query_offset: Any) -> jax.Array:
        """Scores from the distance between query and key positions, (B, h, T, S). Query t sits
        at position query_offset + t (after the cached ones), key s at position s."""
        T, S = query.shape[2], key.shape[2]
        q_pos = (query_offset + jnp.arange(T))[:, None]  # (T, 1)
        k_pos = jnp.arange(S)[None, :]  # (1, S)
        distance = self.distance_embedding(q_pos - k_pos + self.max_position_embeddings - 1)  # (T, S, D)
        distance = distance.astype(query.dtype)
        scores = jnp.einsum("bhtd,tsd->bhts", query, distance)
        if self.position_embedding_type == "relative_key_query":
            scores = scores + jnp.einsum("bhsd,tsd->bhts", key, distance)
        return scores

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        encoder_hidden_states: Optional[jax.Array] = None,
        past_key_value: Optional[tuple[jax.Array, jax.Array]] = None,
        output_attentions: bool = False,
        use_fused: bool = True,
        is_causal: bool = False,
        cache_index: Any = None,
        deterministic: bool = True,
        packing: Optional[Packing] = None,
    ) -> tuple[jax.Array, Optional[jax.Array], tuple[jax.Array, jax.Array]]:
        """Returns the context (B, T, H), the probabilities (B, h, T, S) when `output_attentions`
        (else None), and this call's (key, value) (B, h, S, D) for the cache. With `cache_index`,
        `past_key_value` is a preallocated (B, h, S_max, D) pair and this call's keys and values
        are written at that slot (generate's fixed-size cache) instead of appended. With
        `packing` the states are a packed stream (1, N, H) and each sequence attends over itself
        only; with `packing` and `encoder_hidden_states` (a first-only last layer), the source is
        the stream and the queries padded rows: keys and values go back into their padded rows,
        for the mask."""
        B, T, H = hidden_states.shape
        query = self._split_heads(self.query(hidden_states))  # (B, h, T, D)
        if encoder_hidden_states is not None and past_key_value is not None:
            # Cross-attention: the encoder's keys and values were computed on the first step.
            key, value = past_key_value
        else:
            source = hidden_states if encoder_hidden_states is None else encoder_hidden_states
            key, value = self.key(source), self.value(source)
            if packing is not None and encoder_hidden_states is not None:
                key, value = repad(key[0], packing), repad(value[0], packing)  # (1, N, H) -> (B, S, H)
            key, value = self._split_heads(key), self._split_heads(value)  # (B, h, S, D)
            if past_key_value is not None:
                key = _extend_cache(past_key_value[0], key, cache_index)
                value = _extend_cache(past_key_value[1], value, cache_index)

        if packing is not None and encoder_hidden_states is None:
            # Not fused only when dropout must drop probabilities: the explicit core does that.
            dropout = None if use_fused else functools.partial(self.dropout, deterministic=deterministic)
            context = packed_attention(query, key, value, packing, is_causal=is_causal, dropout=dropout)
            probs = None
        elif use_fused:
            context = fused_attention(query, key, value, attention_mask, is_causal=is_causal)
            probs = None
        else:
            position_scores = None
            if self.position_embedding_type != "absolute":
                offset = key.shape[2] - T if cache_index is None else cache_index
                position_scores = self._relative_scores(query, key, offset)
            context, probs = explicit_attention(
                query, key, value, attention_mask,
                dropout=functools.partial(self.dropout, deterministic=deterministic),
                head_mask=head_mask, position_scores=position_scores,
            )
        context = context.reshape(B, T, H)  # (B, T, H)
        return context, (probs if output_attentions else None), (key, value)


def _extend_cache(past: jax.Array, new: jax.Array, cache_index: Any) -> jax.Array:
    """The cached keys (or values) (B, h, P, D) with this call's (B, h, T, D): appended, or
    written at `cache_index` into a preallocated buffer (shapes stay fixed inside a loop)."""
    if cache_index is None:
        return jnp.concatenate([past, new.astype(past.dtype)], axis=2)
    return jax.lax.dynamic_update_slice_in_dim(past, new.astype(past.dtype), cache_index, axis=2)


# ---------------------------------------------------------------------------- 4. self-output

class FlaxRobertaSelfOutput(nnx.Module):
    """Projects the attention context back and adds it to the block's input, then LayerNorm
    (post-LayerNorm; RoBERTa-PreLayerNorm normalised the input instead and has no LayerNorm here)."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dense = _dense(config, config.hidden_size, config.hidden_size, ("heads", "embed"), **kw)
        self.LayerNorm = None if config.pre_layer_norm else _layer_norm(config, **kw)
        self.dropout = _dropout(config.hidden_dropout_prob, rngs=rngs)

    def __call__(self, hidden_states: jax.Array, input_tensor: jax.Array, deterministic: bool = True) -> jax.Array:
        hidden_states = self.dropout(self.dense(hidden_states), deterministic=deterministic) + input_tensor
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return hidden_states


# ---------------------------------------------------------------------------- 5. attention block

class FlaxRobertaAttention(nnx.Module):
    """Self-attention (or cross-attention) followed by its output projection and residual. Under
    RoBERTa-PreLayerNorm its own LayerNorm normalises the input first (the queries' side only:
    the encoder's states of cross-attention are taken as they are); the residual adds the input
    as it came."""

    def __init__(
        self, config: RobertaConfig, position_embedding_type: Optional[str] = None, *,
        dtype: Any, param_dtype: Any, rngs: nnx.Rngs,
    ):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.self = FlaxRobertaSelfAttention(config, position_embedding_type, **kw)
        self.output = FlaxRobertaSelfOutput(config, **kw)
        self.LayerNorm = _layer_norm(config, **kw) if config.pre_layer_norm else None

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        encoder_hidden_states: Optional[jax.Array] = None,
        past_key_value: Optional[tuple[jax.Array, jax.Array]] = None,
        output_attentions: bool = False,
        use_fused: bool = True,
        is_causal: bool = False,
        cache_index: Any = None,
        deterministic: bool = True,
        packing: Optional[Packing] = None,
        first_only: bool = False,
    ) -> tuple[jax.Array, Optional[jax.Array], tuple[jax.Array, jax.Array]]:
        """`first_only`: the first token's state only, (B, 1, H): its query attends over every
        position (the encoder's last layer when a head reads `<s>` alone). Under `packing` the
        states are the stream (1, N, H): each row's first real token queries its row's keys."""
        normed = hidden_states if self.LayerNorm is None else self.LayerNorm(hidden_states)
        if first_only:
            # Attention of the first query over the block's own states: keys and values from all.
            first = (lambda x: x[:, :1]) if packing is None else (lambda x: first_rows(x, packing))
            context, probs, present = self.self(
                first(normed), attention_mask, head_mask, normed, None, output_attentions, use_fused, False, None,
                deterministic, packing,
            )
            return self.output(context, first(hidden_states), deterministic), probs, present
        context, probs, present = self.self(
            normed, attention_mask, head_mask, encoder_hidden_states, past_key_value,
            output_attentions, use_fused, is_causal, cache_index, deterministic, packing,
        )
        return self.output(context, hidden_states, deterministic), probs, present


# ---------------------------------------------------------------------------- 6. intermediate

class FlaxRobertaIntermediate(nnx.Module):
    """The feed-forward block's expansion: (B, T, H) -> (B, T, intermediate_size), then the
    activation; under RoBERTa-PreLayerNorm a LayerNorm of the input comes first."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.LayerNorm = _layer_norm(config, **kw) if config.pre_layer_norm else None
        self.dense = _dense(config, config.hidden_size, config.intermediate_size, ("embed", "mlp"), **kw)
        self.hidden_act = config.hidden_act

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return ACT2FN[self.hidden_act](self.dense(hidden_states))


# ---------------------------------------------------------------------------- 7. output

class FlaxRobertaOutput(nnx.Module):
    """The feed-forward block's projection back to H, with dropout, residual and LayerNorm (none
    under RoBERTa-PreLayerNorm, as in the self-output)."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dense = _dense(config, config.intermediate_size, config.hidden_size, ("mlp", "embed"), **kw)
        self.LayerNorm = None if config.pre_layer_norm else _layer_norm(config, **kw)
        self.dropout = _dropout(config.hidden_dropout_prob, rngs=rngs)

    def __call__(self, hidden_states: jax.Array, input_tensor: jax.Array, deterministic: bool = True) -> jax.Array:
        hidden_states = self.dropout(self.dense(hidden_states), deterministic=deterministic) + input_tensor
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return hidden_states


# ---------------------------------------------------------------------------- 8. layer

class FlaxRobertaLayer(nnx.Module):
    """One Transformer block: self-attention, cross-attention over the encoder's states (decoder
    with `add_cross_attention`), feed-forward. (B, T, H) -> (B, T, H)."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.attention = FlaxRobertaAttention(config, **kw)
        if config.add_cross_attention:
            if not config.is_decoder:
                raise ValueError("add_cross_attention=True needs a decoder: build the config with is_decoder=True")
            # v4: cross-attention positions are absolute whatever the config says.
            self.crossattention = FlaxRobertaAttention(config, position_embedding_type="absolute", **kw)
        self.intermediate = FlaxRobertaIntermediate(config, **kw)
        self.output = FlaxRobertaOutput(config, **kw)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        encoder_hidden_states: Optional[jax.Array] = None,
        encoder_attention_mask: Optional[jax.Array] = None,
        past_key_value: Optional[tuple[jax.Array, ...]] = None,
        cache_index: Any = None,
        packing: Optional[Packing] = None,
        *,
        output_attentions: bool = False,
        use_fused: bool = True,
        is_causal: bool = False,
        deterministic: bool = True,
        first_only: bool = False,
    ) -> tuple[jax.Array, tuple[jax.Array, ...], Optional[jax.Array], Optional[jax.Array]]:
        """Returns the new states, this layer's cache entry ((k, v), or (k, v, cross_k, cross_v)
        with cross-attention) and the self/cross attention probabilities (None unless asked).
        `first_only`: the first token's new state only, (B, 1, H) (see FlaxRobertaAttention)."""
        self_past = past_key_value[:2] if past_key_value is not None else None
        attention_output, self_probs, present = self.attention(
            hidden_states, attention_mask, head_mask, None, self_past,
            output_attentions, use_fused, is_causal, cache_index, deterministic, packing, first_only,
        )
        cross_probs = None
        if encoder_hidden_states is not None:
            cross_past = past_key_value[2:] if past_key_value is not None and len(past_key_value) == 4 else None
            attention_output, cross_probs, cross_present = self.crossattention(
                attention_output, encoder_attention_mask, head_mask, encoder_hidden_states, cross_past,
                output_attentions, use_fused, False, None, deterministic,
            )
            present = present + cross_present
        layer_output = self.output(self.intermediate(attention_output), attention_output, deterministic)
        return layer_output, present, self_probs, cross_probs


# ---------------------------------------------------------------------------- 9. encoder

class FlaxRobertaEncoder(nnx.Module):
    """The stack of layers. Collects, on request, every layer's input states, attention
    probabilities and cache entry; recomputes activations in the backward pass under gradient
    checkpointing (`nnx.remat`)."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        self.layer = nnx.List([
            FlaxRobertaLayer(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
            for _ in range(config.num_hidden_layers)
        ])
        self.gradient_checkpointing = False

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        encoder_hidden_states: Optional[jax.Array] = None,
        encoder_attention_mask: Optional[jax.Array] = None,
        past_key_values: Optional[tuple[tuple[jax.Array, ...], ...]] = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        use_fused: bool = True,
        is_causal: bool = False,
        cache_index: Any = None,
        deterministic: bool = True,
        packing: Optional[Packing] = None,
        first_token_only: bool = False,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        """`first_token_only`: the last layer computes the first token's state only (the caller
        checked that nothing else is read): last_hidden_state (B, 1, H). Under `packing` that layer
        takes each row's first real token from the stream as its query, and the keys and values of
        the stream put back into their padded rows, under `attention_mask`, their padding mask."""
        all_hidden = [] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        all_cross = [] if output_attentions and encoder_hidden_states is not None else None
        presents = [] if use_cache else None
        def run(layer: FlaxRobertaLayer, *args: Any, first_only: bool = False) -> tuple:
            # The flags are Python values that pick the code path: bound here, not traced.
            return layer(
                *args, output_attentions=output_attentions, use_fused=use_fused, is_causal=is_causal,
                deterministic=deterministic, first_only=first_only,
            )

        step = run
        if self.gradient_checkpointing:
            # Keep only each layer's input; rerun the layer (same dropout masks) in the backward pass.
            # Tree mode: the layer passes through as a pytree, so this also works inside a
            # plain `jax.grad` over a merged model (graph mode would refuse to update its variables).
            step = nnx.remat(run, graph=False)
        for i, layer in enumerate(self.layer):
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            # The last layer of a `first_token_only` call (never in training) runs as it is.
            last = first_token_only and i == len(self.layer) - 1
            hidden_states, present, probs, cross = (functools.partial(run, first_only=True) if last else step)(
                layer, hidden_states, attention_mask, None if head_mask is None else head_mask[i],
                encoder_hidden_states, encoder_attention_mask,
                None if past_key_values is None else past_key_values[i], cache_index, packing,
            )
            if presents is not None:
                presents.append(present)
            if all_attentions is not None:
                all_attentions.append(probs)
            if all_cross is not None:
                all_cross.append(cross)
        if all_hidden is not None:
            all_hidden.append(hidden_states)
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states,
            hidden_states=None if all_hidden is None else tuple(all_hidden),
            past_key_values=None if presents is None else tuple(presents),
            attentions=None if all_attentions is None else tuple(all_attentions),
            cross_attentions=None if all_cross is None else tuple(all_cross),
        )


# ---------------------------------------------------------------------------- 10. pooler

class FlaxRobertaPooler(nnx.Module):
    """The sequence summary of BERT's next-sentence task: the first token's state (B, H) through
    dense + tanh. RoBERTa dropped that task; multiple choice still uses it."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        self.dense = _dense(
            config, config.hidden_size, config.hidden_size, dtype=dtype, param_dtype=param_dtype, rngs=rngs
        )

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return jnp.tanh(self.dense(hidden_states[:, 0]))


# ---------------------------------------------------------------------------- 11. pretrained-model base

class FlaxRobertaPreTrainedModel(nnx.Module):
    """Base of the encoder and the seven heads: weight initialisation as v4, checkpoint loading
    and saving, embeddings access and resizing, tying, gradient checkpointing, and the JAX
    extras: train/eval mode, sharding, value checks under jit.

    Subclasses set `head` (a key of `roberta_core.weights.HEADS`) and build their modules in
    `__init__(config, *, dtype=jnp.float32, param_dtype=None, attn_implementation=None, rngs=None, seed=None)`
    after calling this `__init__`, from `self.config` (a family class's copy of `config`,
    `roberta_core.family.config_for_class`). Models are built in evaluation mode (dropout off, as v4's
    Flax `deterministic=True`); `model.train()` turns dropout on, `model.eval()` off again, and
    `deterministic=` on a call overrides the mode for that call.

    v4 Flax code runs as it is: `model.params` is v4's parameter tree (get and set), and every
    model's `__call__` also takes v4's `params=None, dropout_rng=None, train=False`: with any of
    them the call is a pure function of `params` (the model's own when None) and `dropout_rng`,
    made on a copy of the model (the model is never changed; `jax.jit` and `jax.grad` over
    `params` work, as in v4's `TrainState.create(apply_fn=model.__call__, params=model.params,
    ...)` scripts); dropout is on only with `train=True`, which needs `dropout_rng`.
    """

    head: str = ""
    # v4's attribute name of the encoder in a head: "roberta_prelayernorm" on the RoBERTa-PreLayerNorm
    # classes (set in `__init__.py`) and on any model built with that config (`__init__`).
    base_model_prefix = "roberta"
    # v4's class attributes that code around a model reads (Trainer, pipelines, peft).
    main_input_name = "input_ids"
    config_class = RobertaConfig  # a family class's: v4's XLMRobertaConfig, ... (roberta_core.family)
    supports_gradient_checkpointing = True
    generation_config = None  # v4's: a causal LM's GenerationConfig (roberta_core.generation); None on the other heads
    framework = "flax"  # v4's: which framework the model is ("pt", "tf", "flax")

    def __init__(
        self, config: RobertaConfig, *, dtype: Any = jnp.float32, param_dtype: Any = None,
        attn_implementation: Optional[str] = None,
    ):
        config = model_config(config)  # ours, or a v4 transformers config converted
        # A family class (`FlaxXLMRobertaForMaskedLM`, ...) sets its model_type; a Roberta* class keeps the config's.
        self.config = config = family.config_for_class(type(self), config)
        if config.pruned_heads:  # v4 prunes attention heads in PyTorch only
            raise NotImplementedError(
                f"config.pruned_heads={config.pruned_heads}: a model with pruned attention heads runs in PyTorch "
                "only (roberta_pt, v4's prune_heads); Flax builds every head"
            )
        self.base_model_prefix = config.base_model_prefix
        # v4's model attribute: where from_pretrained read it (peft records it as an adapter's base model).
        self.name_or_path = config.name_or_path
        self.dtype = resolve_dtype(dtype)  # computation
        self.param_dtype = self.dtype if param_dtype is None else resolve_dtype(param_dtype)
        # The one check of every backend: None is the default, the other backends' names map here.
        self.attn_implementation = backends.resolve_attn_implementation("flax", attn_implementation)
        # Flipped by nnx's `model.train()` / `model.eval()`, which set every `deterministic` attribute.
        self.deterministic = True
        self.jit_checks = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every model class also takes v4 Flax's `input_shape=` and `_do_init=` (`v4_constructor`).
        if "__init__" in cls.__dict__:
            cls.__init__ = v4_constructor(cls.__dict__["__init__"])

    def __setattr__(self, name: str, value: Any) -> None:
        # `params` is a property (v4's tree): NNX's own attribute setting would store the tree
        # as a new attribute instead of loading it.
        if name == "params":
            type(self).params.fset(self, value)
        else:
            super().__setattr__(name, value)

    def _deterministic(self, deterministic: Optional[bool]) -> bool:
        """A call's dropout switch: the argument, else the model's train/eval mode."""
        return self.deterministic if deterministic is None else bool(deterministic)

    def check_values(self, name: str, values: jax.Array, upper: int, **kwargs: Any) -> None:
        """`check_values` with this model's jit-check switch."""
        check_values(name, values, upper, in_jit=self.jit_checks, **kwargs)

    def _concrete_options(self, arguments: dict[str, Any]) -> None:
        """Turn the options that size arrays from the inputs' values into the static numbers
        a compiled call is specialised to, while the values are known (`_compiled`): `unpad`
        becomes the token budget (False when nothing is padded), checked against the mask."""
        if arguments.get("unpad", False) is not False:
            arguments["unpad"] = _packing_budget(arguments.get("attention_mask"), arguments["unpad"]) or False

    # ------------------------------------------------------------------ structure
    @property
    def base_model(self) -> "FlaxRobertaModel":
        """The encoder: the model itself for FlaxRobertaModel, `self.roberta` for a head."""
        return getattr(self, "roberta", self)

    @property
    def roberta_prelayernorm(self) -> "FlaxRobertaModel":
        """v4's name of a RoBERTa-PreLayerNorm head's encoder: `self.roberta` under another name
        (read-only; the parameters keep their canonical `roberta.` names). Only on PreLN heads."""
        encoder = vars(self).get("roberta")
        if not self.config.pre_layer_norm or encoder is None:
            raise AttributeError(f"{type(self).__name__} has no roberta_prelayernorm: not a RoBERTa-PreLayerNorm head")
        return encoder

    @classmethod
    def can_generate(cls) -> bool:
        """Whether the class has `generate()` (v4's test: the causal LM alone)."""
        return callable(getattr(cls, "generate", None))

    def get_input_embeddings(self) -> nnx.Embed:
        return self.base_model.embeddings.word_embeddings

    def set_input_embeddings(self, value: nnx.Embed) -> None:
        if not isinstance(value, nnx.Embed) or value.features != self.config.hidden_size:
            raise ValueError(f"input embeddings must be an nnx.Embed of dimension {self.config.hidden_size}")
        self.base_model.embeddings.word_embeddings = value
        self.config.vocab_size = value.num_embeddings

    def get_output_embeddings(self) -> Optional[nnx.Module]:
        """The LM decoder: the word embeddings when tied (the decoder is their transpose), the
        untied decoder (H, V) otherwise; None for heads without an LM decoder."""
        lm_head = getattr(self, "lm_head", None)
        if lm_head is None:
            return None
        return self.get_input_embeddings() if self.config.tie_word_embeddings else lm_head.decoder

    def tie_weights(self) -> None:
        """Kept for v4's API. In Flax the tie is structural: a tied LM head multiplies by the word
        embedding table itself (`nnx.Embed.attend`) and owns no decoder kernel, and
        `lm_head.bias` is its only bias, so there is nothing to re-tie after a change."""

    def resize_token_embeddings(
        self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None, mean_resizing: bool = True
    ) -> nnx.Embed:
        """Grow or shrink the vocabulary to `new_num_tokens` rows, keeping the rows both sizes
        share. New rows are the mean of the old ones (v4's `mean_resizing`; it keeps the
        softmax of the tied decoder from favouring them) or, with `mean_resizing=False`, drawn
        like fresh weights. The LM head's bias (and an untied decoder) follow. `pad_to_multiple_of`
        rounds the size up (v4's option); with neither size given, nothing changes (as v4)."""
        new_num_tokens = check_vocab_resize(self.config, new_num_tokens, pad_to_multiple_of)
        if new_num_tokens is None:
            return self.get_input_embeddings()
        old = self.get_input_embeddings()
        keep = min(old.num_embeddings, new_num_tokens)
        rngs = nnx.Rngs(new_num_tokens)
        new = _embed(
            self.config, new_num_tokens, old.features, ("vocab", "embed"), padding_idx=self.config.pad_token_id,
            dtype=old.dtype, param_dtype=old.param_dtype, rngs=rngs,
        )
        table = new.embedding[...].at[:keep].set(old.embedding[:keep])
        if mean_resizing and new_num_tokens > keep:
            mean = old.embedding[...].astype(jnp.float32).mean(axis=0).astype(table.dtype)
            table = table.at[keep:].set(mean)
        new.embedding[...] = table
        self.base_model.embeddings.word_embeddings = new
        lm_head = getattr(self, "lm_head", None)
        if lm_head is not None:
            lm_head.bias = nnx.Param(_resized(lm_head.bias[...], new_num_tokens, fill=0.0), **_axes("vocab"))
            if not self.config.tie_word_embeddings:
                decoder = _dense(
                    self.config, old.features, new_num_tokens, ("embed", "vocab"), use_bias=False,
                    dtype=lm_head.decoder.dtype, param_dtype=lm_head.decoder.param_dtype, rngs=rngs,
                )
                decoder.kernel[...] = decoder.kernel[...].at[:, :keep].set(lm_head.decoder.kernel[:, :keep])
                lm_head.decoder = decoder
        self.config.vocab_size = new_num_tokens
        return new

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Number of parameters, each tied parameter counted once (in Flax a tied decoder owns
        no kernel). Every nnx.Param is trainable, so `only_trainable` changes nothing."""
        total = 0
        for path, param in nnx.to_flat_state(nnx.state(self, nnx.Param)):
            if exclude_embeddings and path[-1] == "embedding":
                continue
            total += int(np.prod(param.shape))
        return total

    # ------------------------------------------------------------------ gradient checkpointing
    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Optional[dict] = None) -> None:
        """Trade compute for memory in training: keep only each layer's input and recompute
        the layer in the backward pass (`nnx.remat`). (v4's `gradient_checkpointing_kwargs` is
        accepted and unused.)"""
        self.base_model.encoder.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.base_model.encoder.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.base_model.encoder.gradient_checkpointing

    def enable_gradient_checkpointing(self) -> None:
        """v4 Flax's name of `gradient_checkpointing_enable()`."""
        self.gradient_checkpointing_enable()

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        config: Optional[RobertaConfig] = None,
        dtype: Any = None,
        param_dtype: Any = None,
        strict: bool = False,
        ignore_mismatched_sizes: bool = False,
        attn_implementation: Optional[str] = None,
        rngs: Optional[nnx.Rngs] = None,
        **kwargs: Any,
    ) -> "FlaxRobertaPreTrainedModel" | tuple["FlaxRobertaPreTrainedModel", dict[str, list]]:
        """Load a checkpoint directory in any of the four weight formats (safetensors, sharded
        too; pytorch_model.bin; tf_model.h5; flax_model.msgpack), in evaluation mode.

        Another head's checkpoint loads too (a MaskedLM checkpoint into a classifier): the unused
        and the newly initialised keys are reported in one warning (an error under `strict`).
        A shape mismatch (e.g. `num_labels`) is an error unless `ignore_mismatched_sizes`.
        `dtype` (computation): None (float32, as v4), 'auto' (the checkpoint's), or a JAX dtype;
        `param_dtype` (storage) defaults to `dtype`. `rngs` seeds the newly initialised
        parameters and dropout.

        The file read is v4 Flax's choice: flax_model.msgpack (or its sharded index), else
        model.safetensors (or its index), then pytorch_model.bin and tf_model.h5;
        `use_safetensors` and `variant` (the PyTorch variant files, `model.fp16.safetensors`:
        OSError when there are none) as in the PyTorch backend.

        The other keywords sort as v4's: config fields (`num_labels=5`, `is_decoder=True`) change
        the config; the model's own arguments go to it (`add_pooling_layer=False` builds a
        FlaxRobertaModel without pooler, `seed` is v4 Flax's `rngs=nnx.Rngs(seed)`); loading options
        are honoured (`subfolder`, `device_map` (see `_framework.resolve_device`),
        `output_loading_info=True`: returns (model, {"missing_keys", "unexpected_keys",
        "mismatched_keys", "error_msgs"}); v4's `_do_init=False`: returns (model, params), the
        model then used as one built with `_do_init=False`: `model(..., params=params)`; v4's
        `input_shape=(1, 8)` is kept as `model.input_shape`) or
        accepted and never written into the config (`low_cpu_mem_usage`: loading already holds one
        copy; the Hub's `revision`, `cache_dir`, `local_files_only`, `token`, unused for a local
        directory). Any other keyword is a TypeError.
        """
        path = pretrained_model_name_or_path  # v4's parameter name
        config = own_config(config)
        # v4's `_do_init=False` returns (model, params): the model is whole here either way.
        do_init = kwargs.pop("_do_init", True)
        init_keywords = [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "config")]
        overrides, model_kwargs, options = split_from_pretrained_kwargs(
            cls.__name__, kwargs, model_keywords=("seed", "input_shape", *init_keywords)
        )
        if "seed" in model_kwargs:  # v4 Flax's seed of the initialisation
            if rngs is not None:
                raise TypeError("give seed= (v4) or rngs= (NNX), not both")
            rngs = nnx.Rngs(model_kwargs.pop("seed"))
        pooled = bool(model_kwargs["add_pooling_layer"]) if "add_pooling_layer" in model_kwargs else None
        device = resolve_device(options.get("device_map"))

        directory = resolve_pretrained(path, options, prefer="msgpack", config_given=config is not None,
                                       generation=cls.can_generate())
        weights_file = pretrained_weights_file(directory, options, prefer="msgpack")  # v4's choice of file
        if config is None:
            config, overrides = cls.config_class.from_pretrained(directory, **overrides), {}
        # The keys to load are those of the model this class builds: a family class sets its model_type first.
        config, state, plan = load_pretrained(
            directory, cls.head, config=family.config_for_class(cls, config), strict=strict,
            ignore_mismatched_sizes=ignore_mismatched_sizes, pooled=pooled, weights_file=weights_file, **overrides,
        )
        # As v4, whether the config was read or given: the folder or Hub id as given (not the
        # cache's folder), on the model's own copy.
        config.name_or_path = path
        dtype = resolve_dtype(dtype, state)
        # Built with deferred initialisation: the checkpoint's arrays become the parameters (no
        # copy where layout and dtype allow), and only the keys it lacks are initialised.
        token = _deferring.set(True)
        try:
            model = cls(
                config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation, rngs=rngs,
                **model_kwargs,
            )
        finally:
            _deferring.reset(token)
        from_canonical(model, state, allow_missing=True, consume=True)
        model._materialize_missing()
        if device is not None:
            nnx.update(model, jax.device_put(nnx.state(model), device))
        model.eval()
        if model.can_generate():
            model.generation_config = checkpoint_generation_config(directory, model.config)  # as v4
        if not do_init:  # v4: the parameters are returned and the model holds none (model.params raises)
            params = model.params
            model._is_initialized = False
            return model, params
        if options.get("output_loading_info"):
            return model, loading_info(plan)
        return model

    def _materialize_missing(self) -> None:
        """Give the parameters the checkpoint lacked (still deferred) v4's initialisation, from
        the random keys they were built with (the values an eagerly built model has)."""
        for _, param in nnx.to_flat_state(nnx.state(self, nnx.Param)):
            value = param.get_value()
            if isinstance(value, _Deferred):
                param.set_value(value.materialize())

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        format: Optional[str] = None,
        max_shard_size: int | str | None = None,
        safe_serialization: Optional[bool] = None,
        variant: Optional[str] = None,
        push_to_hub: bool = False,
        params: Any = None,
        **hub_kwargs: Any,
    ) -> None:
        """Write `config.json` and the weights, atomically: `format='msgpack'` (default, as v4's
        Flax classes save: `flax_model.msgpack`, the tree v4's Flax models read) or 'safetensors'
        (PyTorch names, metadata {'format': 'pt'}; v4's `safe_serialization=True` means the
        same), both sharded as v4 shards them above `max_shard_size`
        (`flax_model-00001-of-00003.msgpack` + `flax_model.msgpack.index.json`). `variant='fp16'`
        writes v4 PyTorch's variant names (`model.fp16.safetensors`); v4 Flax writes no variant and
        names none of flax_model.msgpack: a ValueError there. `params`: v4's parameter tree (`model.params`'s layout, e.g. a training
        loop's state) to write instead of the model's own; the model is unchanged."""
        directory = save_directory  # v4's parameter name
        if params is None:
            require_initialized(self)
            state = to_canonical(self)
        else:
            state = self._given_params_state(params)
        if format is None:
            format = "safetensors" if safe_serialization else "msgpack"
        if format not in ("safetensors", "msgpack"):
            raise ValueError(f"the Flax backend saves format 'safetensors' or 'msgpack', got {format!r}")
        save_pretrained_files(
            directory, self.config, state, self.head, format=format, max_shard_size=max_shard_size, variant=variant,
            push_to_hub=push_to_hub, generation_config=getattr(self, "generation_config", None), **hub_kwargs,
        )

    def _given_params_state(self, params: Any) -> dict[str, np.ndarray]:
        """The canonical state of a v4 params tree given to `save_pretrained`. As v4 writes the tree
        it is given, a tree lacking some parameters (a partial checkpoint) is written without them
        (`from_pretrained` then initialises them, `init_weights(..., params=)` fills them); a key the
        model has not, or a wrong shape, is nnx_params' ValueError."""
        own = linen_params(self)

        def fill(own: dict, given: Any, path: tuple) -> tuple[dict, list]:
            given = {str(k): v for k, v in given.items()} if isinstance(given, Mapping) else {}
            out, absent = {}, []
            for name, value in own.items():
                if isinstance(value, dict):
                    out[name], more = fill(value, given.get(name, {}), path + (name,))
                    absent += more
                elif name in given:
                    out[name] = given[name]
                else:  # a placeholder of the parameter's shape, left out of what is written
                    out[name], absent = jnp.zeros(np.shape(value), value.dtype), absent + [path + (name,)]
            for name, value in given.items():  # keys the model has not: nnx_params reports them
                out.setdefault(name, value)
            return out, absent

        tree, absent = fill(own, params, ())
        state = to_canonical(v4_model(self, {}, params=tree))
        bare = self.head == "model"
        for path in absent:
            key = from_flax_path(path)
            state.pop(key.removeprefix(PREFIX) if bare else key, None)
        return state

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """v4's `model.push_to_hub(repo_id)`: `save_pretrained` into a temporary folder, uploaded
        to the Hub in one commit (`roberta_core.pretrained.push_model_to_hub`; needs `[hub]`)."""
        return push_model_to_hub(self.save_pretrained, repo_id, **kwargs)

    # ------------------------------------------------------------------ JAX only
    def enable_jit_checks(self, enabled: bool = True) -> None:
        """Check ids, token types, positions and labels inside `jit` too, as `checkify` checks.
        The jitted function must then be wrapped with `roberta_flax.checked` (which raises the
        ValueError); eager calls are always checked. Part of the model's static structure, so
        turning it on or off retraces."""
        self.set_attributes(jit_checks=enabled)

    def shard(self, mesh: jax.sharding.Mesh, rules: tuple = LOGICAL_AXIS_RULES) -> "FlaxRobertaPreTrainedModel":
        """Place the parameters on `mesh` by their logical axes and `rules` (default: tensor
        parallel over the mesh axis 'model'); returns the model. Inputs sharded over a 'data'
        axis then run data parallel too: `jit` propagates the shardings."""
        state = nnx.state(self)
        with nnx.logical_axis_rules(rules):
            shardings = nnx.get_named_sharding(state, mesh)
        nnx.update(self, jax.device_put(state, shardings))
        return self

    # v4 Flax's functional API, on top of NNX: `model.params`, and `model(..., params=,
    # dropout_rng=, train=)` (`_framework.v4_model`).
    @property
    def module(self) -> LinenModule:
        """v4 Flax's `model.module`: `model.module.apply({"params": tree}, input_ids, attention_mask,
        token_type_ids, position_ids, head_mask, deterministic=True)` gives what
        `model(..., params=tree)` gives (`_framework.LinenModule`; the causal LM takes position_ids
        third, as v4's module); `model.module.init(rng, input_ids)` gives {"params": tree}."""
        return LinenModule(self)

    def init_weights(self, rng: Any, input_shape: tuple = (1, 1), params: Any = None) -> dict:
        """v4 Flax's: a fresh parameter tree (`model.params`' layout) drawn from `rng` (a
        `jax.random` key), the values `M(config, seed=...)` draws from the same key
        (`init_weights(jax.random.PRNGKey(0), ...)` is `M(config, seed=0).params`, as v4's).
        `input_shape` is v4's and changes nothing here. With `params`, a tree missing some
        parameters (a partial checkpoint), the missing ones are filled from the fresh tree.
        The model itself is unchanged (use `model.params = tree`)."""
        kwargs = {"add_pooling_layer": self.pooler is not None} if self.head == "model" else {}
        fresh = type(self)(
            self.config, dtype=self.dtype, param_dtype=self.param_dtype, attn_implementation=self.attn_implementation,
            rngs=nnx.Rngs(rng), **kwargs,
        ).params
        if params is None:
            return fresh

        def fill(own: dict, given: Any) -> dict:
            given = {str(k): v for k, v in given.items()}
            return {k: (fill(v, given.get(k, {})) if isinstance(v, dict) else given.get(k, v)) for k, v in own.items()}

        return fill(fresh, params)

    @property
    def key(self) -> jax.Array:
        """v4 Flax's `model.key`: the random key (`jax.random.PRNGKey(seed)`, seed 0 unless given;
        with `rngs=`, its params/default stream's key) this model's parameters were drawn from:
        `init_weights(model.key, model.input_shape)` is the tree a fresh model of this class holds."""
        data = getattr(self, "_key_data", None)
        return jax.random.PRNGKey(0) if data is None else jnp.asarray(data, dtype=jnp.uint32)

    @property
    def params_shape_tree(self) -> dict:
        """v4 Flax's `model.params_shape_tree`: `model.params`' tree with a `jax.ShapeDtypeStruct`
        for each parameter (also for a model built with `_do_init=False`, which holds no values)."""
        return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(np.shape(leaf), leaf.dtype), linen_params(self))

    @property
    def required_params(self) -> set:
        """v4 Flax's `model.required_params`: the set of every parameter's path in `model.params`,
        as `flax.traverse_util.flatten_dict` names them (tuples of keys)."""
        def paths(tree: dict, prefix: tuple) -> list:
            return [p for k, v in tree.items()
                    for p in (paths(v, prefix + (k,)) if isinstance(v, dict) else [prefix + (k,)])]

        return set(paths(linen_params(self), ()))

    @property
    def params(self) -> dict:
        """The parameters as v4 Flax's tree: `{"roberta": {"embeddings": {"word_embeddings":
        {"embedding": (V, H)}, ...}, "encoder": {"layer": {"0": ...}}}, "classifier": ...}` (the
        bare model has no `roberta` level), kernels (in, out) as in `flax_model.msgpack`. A
        wrapped submodule's parameters are in it too (`nnx.LoRA` on `query`: its `lora_a`,
        `lora_b` and `base_module`). Give it to `model(..., params=tree)`, `jax.grad` and optax."""
        require_initialized(self)
        return linen_params(self)

    @params.setter
    def params(self, tree: Any) -> None:
        """Load a tree shaped as `model.params` (every parameter, no other, the same shapes: a
        ValueError lists what differs). Arrays keep their dtype (v4: `model.params = tree`) and
        each parameter its placement."""
        values = nnx_params(self, tree)

        def place(old: jax.Array, new: Any) -> jax.Array:
            new = jnp.asarray(new)
            if not jnp.issubdtype(new.dtype, jnp.floating):
                raise TypeError(f"params must hold floating point arrays, got {new.dtype}")
            return jax.device_put(new, old.sharding) if getattr(old, "committed", False) else new

        nnx.update(self, nnx.State(jax.tree.map(place, nnx.to_pure_dict(nnx.state(self, nnx.Param)), values)))
        if not getattr(self, "_is_initialized", True):
            self._is_initialized = True  # built with `_do_init=False`: it has its parameters now (v4 refuses the set)

    def to_bf16(self, params: Any, mask: Any = None) -> Any:
        """v4 Flax's cast of a params tree's floating leaves to bfloat16 (only where `mask`, a tree
        of booleans shaped as `params`, is True); returns the new tree, the model is unchanged."""
        return _cast_floating(params, jnp.bfloat16, mask)

    def to_fp16(self, params: Any, mask: Any = None) -> Any:
        """v4 Flax's cast to float16 (see `to_bf16`)."""
        return _cast_floating(params, jnp.float16, mask)

    def to_fp32(self, params: Any, mask: Any = None) -> Any:
        """v4 Flax's cast to float32 (see `to_bf16`)."""
        return _cast_floating(params, jnp.float32, mask)


def _cast_floating(params: Any, dtype: Any, mask: Any) -> Any:
    """`params` with its floating leaves cast to `dtype` (where `mask` is True, when given)."""
    def cast(leaf: Any, selected: bool = True) -> Any:
        leaf = jnp.asarray(leaf)
        return leaf.astype(dtype) if selected and jnp.issubdtype(leaf.dtype, jnp.floating) else leaf

    return jax.tree.map(cast, params) if mask is None else jax.tree.map(cast, params, mask)


def _resized(vector: jax.Array, n: int, fill: float) -> jax.Array:
    """`vector` cut or padded with `fill` to length n."""
    keep = min(n, vector.shape[0])
    return jnp.full((n,), fill, dtype=vector.dtype).at[:keep].set(vector[:keep])


# ---------------------------------------------------------------------------- 12. the encoder model

class FlaxRobertaModel(FlaxRobertaPreTrainedModel):
    """The RoBERTa encoder (a decoder with `is_decoder`, plus cross-attention with
    `add_cross_attention`): ids (B, T) -> states (B, T, H) and, with the pooling layer, the
    pooled first token (B, H)."""

    head = "model"

    def __init__(
        self, config: RobertaConfig, add_pooling_layer: bool = True, *, dtype: Any = jnp.float32,
        param_dtype: Any = None, attn_implementation: Optional[str] = None, rngs: Optional[nnx.Rngs] = None,
        seed: Optional[int] = None,
    ):
        super().__init__(config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation)
        config = self.config  # a family alias's (its model_type)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=_rngs(rngs, seed))
        self.embeddings = FlaxRobertaEmbeddings(config, **kw)
        self.encoder = FlaxRobertaEncoder(config, **kw)
        if config.pre_layer_norm:
            # RoBERTa-PreLayerNorm normalises the last layer's output (v4: `LayerNorm`, a key of its own).
            self.LayerNorm = _layer_norm(config, **kw)
        self.pooler = FlaxRobertaPooler(config, **kw) if add_pooling_layer else None

    def _use_fused(self, output_attentions: bool, head_mask: Optional[jax.Array]) -> bool:
        """The fused kernel unless this call needs what only the explicit path does. Silent, as
        v4 Flax (whose attention is always the explicit one): the values are the same either way."""
        if self.attn_implementation == "einsum":
            return False
        return not (output_attentions or head_mask is not None or self.config.position_embedding_type != "absolute")

    def _past_length(self, past_key_values: Any) -> int:
        """Cached positions, after checking the cache's layout: one (k, v) or (k, v, cross_k,
        cross_v) per layer, each (B, h, P, D)."""
        if past_key_values is None:
            return 0
        config = self.config
        if not isinstance(past_key_values, (tuple, list)) or len(past_key_values) != config.num_hidden_layers:
            raise ValueError(
                f"past_key_values must hold one entry per layer ({config.num_hidden_layers}), "
                f"as returned with use_cache=True"
            )
        sizes = (2, 4) if config.add_cross_attention else (2,)
        entry = past_key_values[0]
        if len(entry) not in sizes:
            raise ValueError(f"each past_key_values entry must be a tuple of {' or '.join(map(str, sizes))} arrays")
        shape = tuple(entry[0].shape)
        if len(shape) != 4 or (shape[1], shape[3]) != (config.num_attention_heads, config.head_dim):
            raise ValueError(
                f"past_key_values arrays must have shape (batch, {config.num_attention_heads}, cached, "
                f"{config.head_dim}), got {shape}"
            )
        return shape[2]

    def _packing(
        self, attention_mask: Optional[jax.Array], unpad: bool | int, use_fused: bool, past_key_values: Any,
        use_cache: bool, encoder_hidden_states: Optional[jax.Array],
    ) -> Optional[Packing]:
        """The packing of an `unpad` forward; None when nothing is padded, or when the call
        needs the padded layout (a cache, cross-attention, what only explicit attention does)."""
        budget = _packing_budget(attention_mask, unpad)
        if not budget:  # None, or 0 slots (no real token at all): the padded batch
            return None
        if not use_fused or past_key_values is not None or use_cache or encoder_hidden_states is not None:
            _warn_once(
                "unpad does not combine with a key/value cache, cross-attention, output_attentions, "
                "head_mask or relative positions; such calls compute on the padded batch"
            )
            return None
        packing = pack(attention_mask, budget)
        if self.jit_checks and _is_traced(packing.fits):
            message = f"unpad={budget} slots cannot hold the {{real}} real tokens of this batch"
            checkify.check(packing.fits, message, real=packing.cu_seqlens[-1])
        return packing

    def _first_token_only(
        self, output_attentions: bool, output_hidden_states: bool, past_key_values: Any, use_cache: bool,
        encoder_hidden_states: Optional[jax.Array], deterministic: bool,
    ) -> bool:
        """Whether a `first_token_only` call may skip the last layer's other positions
        (`backends.first_token_only_allowed`; training: not `deterministic`)."""
        return backends.first_token_only_allowed(
            self.config, returns_more=output_attentions or output_hidden_states,
            cached=past_key_values is not None or use_cache, cross=encoder_hidden_states is not None,
            training=not deterministic,
        )

    def _self_attention_mask(
        self,
        attention_mask: Optional[jax.Array],
        batch: int,
        length: int,
        key_length: int,
        query_offset: Any,
        use_fused: bool,
        fixed_cache: bool,
    ) -> tuple[Optional[jax.Array], bool]:
        """The boolean mask (B, 1, 1 or T, S) of the self-attention and whether the fast path
        should apply the causal mask itself. (None, ...) when nothing is masked, so the fast
        kernels run. Query t sits at position query_offset + t, key s at s."""
        causal = self.config.is_decoder
        if _nothing_masked(attention_mask):
            if not causal or (length == 1 and not fixed_cache):
                return None, False  # one new token may see every cached one
            if use_fused and key_length == length:
                return None, True
        if attention_mask is None:
            keep = jnp.ones((batch, 1, 1, key_length), dtype=bool)
        else:
            keep = jnp.asarray(attention_mask).astype(bool)[:, None, None, :]  # (B, 1, 1, S)
        if causal:
            # A preallocated cache also holds the slots after the query: causality hides them.
            q_pos = (query_offset + jnp.arange(length))[:, None]
            k_pos = jnp.arange(key_length)[None, :]
            keep = keep & (k_pos <= q_pos)  # (B, 1, T, S)
        return keep, False

    @_compiled
    def __call__(
        self,
        input_ids: Optional[jax.Array] = None,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        position_ids: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        inputs_embeds: Optional[jax.Array] = None,
        encoder_hidden_states: Optional[jax.Array] = None,
        encoder_attention_mask: Optional[jax.Array] = None,
        past_key_values: Optional[tuple[tuple[jax.Array, ...], ...]] = None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        deterministic: Optional[bool] = None,
        cache_index: Any = None,
        unpad: bool | int = False,
        first_token_only: bool = False,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions | tuple:
        """input_ids (B, T) or inputs_embeds (B, T, H); attention_mask (B, P + T) with P cached
        positions (1 = attend, 0 = padding). Returns last_hidden_state (B, T, H), pooler_output
        (B, H), and on request hidden_states, attentions, cross_attentions, past_key_values; with
        `return_dict=False` v4 Flax's tuple, which holds the cache only when given one (`init_cache`'s).

        `cache_index` (generate's fixed-size cache, traceable): `past_key_values` are then
        preallocated buffers of S slots, `attention_mask` is (B, S), this call's tokens occupy
        slots cache_index .. cache_index + T - 1, and `position_ids` must be given.

        `unpad=True` computes on the real tokens only: they are packed into one stream (1, N, H)
        with their padded-batch positions, each sequence attends over itself, and the states are
        put back into (B, T, H) at the end, zeros at padding positions (v4 computes values there
        that nothing should read). The real positions get the same numbers as without it. It pays
        when a good part of the batch is padding; calls that need the padded layout (a cache,
        cross-attention, output_attentions, head_mask, relative positions) ignore it, with a
        warning. Shapes are static under `jit`, where the stream's size N cannot come from the
        mask's values: give it, `unpad=N` (an int >= the batch's real tokens; eagerly True rounds
        them up to a multiple of 64). A budget too small gives NaN states, never
        numbers that miss part of a sequence (with `enable_jit_checks()`, a ValueError).

        `first_token_only=True` (the sequence-classification and multiple-choice heads ask for it:
        they read `<s>` alone) computes the last layer for the first position only, its query
        attending over every position: last_hidden_state is then (B, 1, H), the pooler's input the
        same; under `unpad` the last layer's queries are each row's first real token (keys and values
        from the stream), zeros where the first position is padding. Calls that return more
        (`output_hidden_states`, `output_attentions`), a cache, cross-attention, relative positions
        or training (not `deterministic`) compute every position as usual.

        Ids are checked against their tables before any lookup (a ValueError naming the range).
        JAX holds integers as int32 unless `jax_enable_x64` is on: an eager call checks NumPy
        int64 inputs before that cast (2**32 + 5 is refused, not read as 5); under the caller's
        own `jit` JAX casts them first, so give int32 arrays there. `inputs_embeds` must be
        floating point (a TypeError otherwise).
        """
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.use_return_dict if return_dict is None else return_dict
        # A cache only means something for a causal decoder (v4 ignores use_cache elsewhere).
        use_cache = (config.use_cache if use_cache is None else use_cache) and config.is_decoder
        deterministic = self._deterministic(deterministic)

        past_length = self._past_length(past_key_values)
        fixed_cache = cache_index is not None
        if fixed_cache and (past_key_values is None or position_ids is None):
            raise ValueError("cache_index needs the preallocated past_key_values and the position_ids")
        new_tokens = input_ids if input_ids is not None else inputs_embeds
        B, T = check_forward_inputs(
            config,
            input_ids=shape_of(input_ids), inputs_embeds=shape_of(inputs_embeds),
            attention_mask=shape_of(attention_mask), token_type_ids=shape_of(token_type_ids),
            position_ids=shape_of(position_ids), head_mask=shape_of(head_mask),
            encoder_hidden_states=shape_of(encoder_hidden_states),
            encoder_attention_mask=shape_of(encoder_attention_mask),
            # Against a preallocated cache of S slots the inputs are checked as its last T.
            past_length=past_length - new_tokens.shape[1] if fixed_cache and new_tokens is not None else past_length,
        )
        if past_key_values is not None and past_key_values[0][0].shape[0] != B:
            raise ValueError(f"past_key_values hold a batch of {past_key_values[0][0].shape[0]}, the inputs {B}")
        # Value checks before any embedding lookup runs.
        if input_ids is not None:
            self.check_values("input_ids", input_ids, config.vocab_size)
        if token_type_ids is not None:
            self.check_values("token_type_ids", token_type_ids, config.type_vocab_size)
        if position_ids is not None:
            self.check_values("position_ids", position_ids, config.max_position_embeddings)
        if inputs_embeds is not None:
            check_embeds_dtype(inputs_embeds)

        query_offset = cache_index if fixed_cache else past_length
        key_length = past_length if fixed_cache else past_length + T
        use_fused = self._use_fused(output_attentions, head_mask)
        packing = None
        if token_budget(unpad):
            packing = self._packing(
                attention_mask, unpad, use_fused, past_key_values, use_cache, encoder_hidden_states
            )
        # jax.nn.dot_product_attention has no dropout: training with attention dropout takes the
        # explicit path (packed attention drops out through the explicit core).
        use_fused = use_fused and (deterministic or config.attention_probs_dropout_prob == 0.0)
        first_only = first_token_only and self._first_token_only(
            output_attentions, output_hidden_states, past_key_values, use_cache, encoder_hidden_states, deterministic,
        )
        if packing is None:
            embedding_output = self.embeddings(
                input_ids, token_type_ids, position_ids, inputs_embeds, query_offset, deterministic
            )
            mask, is_causal = self._self_attention_mask(
                attention_mask, B, T, key_length, query_offset, use_fused, fixed_cache
            )
        else:
            # Positions come from the padded batch; then each input keeps its real tokens: (1, N, ...).
            if position_ids is None:
                position_ids = self.embeddings._position_ids(input_ids, inputs_embeds)

            def real(x: Optional[jax.Array]) -> Optional[jax.Array]:
                return None if x is None else unpad_rows(jnp.broadcast_to(x, (B, T, *jnp.shape(x)[2:])), packing)[None]

            embedding_output = self.embeddings(
                real(input_ids), real(token_type_ids), real(position_ids), real(inputs_embeds), 0, deterministic
            )
            mask, is_causal = None, config.is_decoder
            if first_only:
                # The last layer's keys, back in their padded rows (FlaxRobertaEncoder); the packed layers read no mask.
                mask, _ = self._self_attention_mask(
                    attention_mask, B, T, key_length, query_offset, use_fused, fixed_cache
                )
        cross_mask = None
        if encoder_hidden_states is not None and not _nothing_masked(encoder_attention_mask):
            cross_mask = jnp.asarray(encoder_attention_mask).astype(bool)[:, None, None, :]  # (B, 1, 1, S)
        if head_mask is not None:
            head_mask = jnp.asarray(head_mask, dtype=self.dtype)
            if head_mask.ndim == 1:  # the same heads in every layer
                head_mask = jnp.broadcast_to(head_mask, (config.num_hidden_layers, head_mask.shape[0]))
            head_mask = head_mask[:, None, :, None, None]  # (layers, 1, h, 1, 1)

        outputs = self.encoder(
            embedding_output,
            attention_mask=mask,
            head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=cross_mask,
            past_key_values=past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            use_fused=use_fused,
            is_causal=is_causal,
            cache_index=cache_index,
            deterministic=deterministic,
            packing=packing,
            first_token_only=first_only,
        )
        if config.pre_layer_norm:
            # After the encoder, as v4: `hidden_states` (the encoder's) end before it, the
            # last_hidden_state is after it. On the packed stream, so padding stays zeros.
            outputs.last_hidden_state = self.LayerNorm(outputs.last_hidden_state)
        if packing is not None:

            def restore(states: jax.Array) -> jax.Array:
                # (1, N, H) -> (B, T, H); all NaN when a budget given under jit was too small.
                return jnp.where(packing.fits, repad(states[0], packing), jnp.nan)

            if first_only:
                outputs.last_hidden_state = first_positions(outputs.last_hidden_state, packing)  # (B, 1, H)
            else:
                outputs.last_hidden_state = restore(outputs.last_hidden_state)
            if outputs.hidden_states is not None:
                outputs.hidden_states = tuple(restore(h) for h in outputs.hidden_states)
        outputs = BaseModelOutputWithPoolingAndCrossAttentions(outputs)  # the encoder's fields, and the pooled one
        if self.pooler is not None:
            outputs.pooler_output = self.pooler(outputs.last_hidden_state)
        return outputs if return_dict else outputs.to_tuple(cache=past_key_values is not None)
