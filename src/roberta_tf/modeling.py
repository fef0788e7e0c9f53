"""TensorFlow (Keras 3) RoBERTa, in reading order: activations -> embeddings -> self-attention ->
layer -> encoder -> pooler -> the pretrained-model base -> TFRobertaModel.

Layers are `keras.layers.Layer`s whose `call` uses TF ops, with their weights made in `build`;
the models are `keras.Model`s, so `compile`/`fit`/`predict` work. Every call runs eagerly, under
`tf.function` and under `tf.function(jit_compile=True)` (XLA). The layer tree mirrors the
PyTorch one attribute for attribute (`model.roberta.encoder.layer[0].attention.self.query`), so
`convert.py` maps it onto the canonical keys of `roberta_core.weights` (ARCHITECTURE §3). Shapes in
comments: B batch, T query length, S key length (cache included), H hidden size, h heads,
D head size (H / h), V vocabulary.

A parallel text of `roberta_pt/modeling.py` (the master): same classes with the `TF` prefix,
same order and comments, adapted only where the framework differs. The TensorFlow machinery
that is not the model (input checks in graphs and under XLA, Keras initialisers, dtype policies,
deferred variables, SavedModel export) lives in `_framework.py`, the padding-free machinery of
`unpad=True` in `unpad.py`.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf

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
from roberta_core.weights import check_vocab_resize

from . import _framework
from ._framework import (
    ReplaceableSublayers,
    _dense,
    _dropout,
    _embedding,
    _layer_norm,
    _normal,
    as_tensor,
    check_dynamic_shapes,
    check_input_dtypes,
    check_values,
    dims,
    eager_float32,
    gelu_eager,
    is_dynamic,
    replace_variable,
    resolve_device,
    resolve_dtype,
    shape_of,
)
from .convert import from_canonical, to_canonical
from .unpad import Packing, first_positions, first_rows, pack, packed_attention, packing_for, repad, run_packed, unpad_rows

__all__ = [
    "ACT2FN",
    "ATTN_IMPLEMENTATIONS",
    "TFRobertaEmbeddings",
    "explicit_attention",
    "TFRobertaSelfAttention",
    "TFRobertaSelfOutput",
    "TFRobertaAttention",
    "TFRobertaIntermediate",
    "TFRobertaOutput",
    "TFRobertaLayer",
    "TFRobertaEncoder",
    "TFRobertaPooler",
    "TFRobertaPreTrainedModel",
    "TFRobertaModel",
    # Re-exported from `_framework` and `unpad`, where they live.
    "check_values",
    "shape_of",
    "Packing",
    "pack",
    "run_packed",
    "unpad_rows",
    "repad",
    "packed_attention",
    "packing_for",
]

# The backend's attention paths (first the default) and the other backends' names for them, so
# one setting serves every backend: from the backend contract, `roberta_core.backends`. TF has
# one path (explicit attention, which XLA compiles and fuses): every name takes it.
ATTN_IMPLEMENTATIONS = backends.get("tf").attn_implementations
ATTN_ALIASES = dict(backends.get("tf").attn_aliases)

_framework.register_outputs()


# ---------------------------------------------------------------------------- 1. activations

def _gelu(x: tf.Tensor) -> tf.Tensor:
    if eager_float32(x):  # op by op: the gradient written out (_framework's eager kernels)
        return gelu_eager(x)
    return tf.nn.gelu(x, approximate=False)  # exact, erf-based


def _gelu_tanh(x: tf.Tensor) -> tf.Tensor:
    # GPT-2's tanh approximation of GELU (v4's gelu_new and gelu_accurate).
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3.0))))


def _gelu_fast(x: tf.Tensor) -> tf.Tensor:
    # The same approximation with the constants folded the other way; rounds differently.
    return 0.5 * x * (1.0 + tf.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _laplace(x: tf.Tensor, mu: float = 0.707107, sigma: float = 0.282095) -> tf.Tensor:
    # MEGA's bounded activation: the normal CDF around mu.
    return 0.5 * (1.0 + tf.math.erf((x - mu) / (sigma * math.sqrt(2.0))))


# Every name of roberta_core.config.ACTIVATIONS, with v4's formula for it.
ACT2FN = {
    "gelu": _gelu,
    "gelu_python": _gelu,  # the same function; v4 spelled it out in Python
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True),
    "gelu_fast": _gelu_fast,
    "gelu_accurate": _gelu_tanh,
    "quick_gelu": lambda x: x * tf.sigmoid(1.702 * x),
    "gelu_10": lambda x: tf.clip_by_value(_gelu(x), -10.0, 10.0),
    "relu": tf.nn.relu,
    "relu2": lambda x: tf.square(tf.nn.relu(x)),
    "relu6": tf.nn.relu6,
    "leaky_relu": lambda x: tf.nn.leaky_relu(x, alpha=0.01),  # slope 0.01, as PyTorch's default
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "mish": lambda x: x * tf.tanh(tf.math.softplus(x)),
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "linear": tf.identity,
    "laplace": _laplace,
}


# ---------------------------------------------------------------------------- 2. embeddings

def position_ids_from_input_ids(input_ids: tf.Tensor, padding_idx: int, past_length: Any = 0) -> tf.Tensor:
    """RoBERTa's positions (fairseq's `make_positions`): real tokens count up from
    padding_idx + 1 (after `past_length` cached ones), padding tokens get padding_idx. (B, T) -> (B, T)"""
    real = tf.cast(tf.not_equal(input_ids, padding_idx), tf.int32)
    return (tf.cumsum(real, axis=1) + past_length) * real + padding_idx


def _lookup(table: keras.layers.Embedding, ids: tf.Tensor, padding_idx: int) -> tf.Tensor:
    """Rows of `table` for `ids`; as with PyTorch's `padding_idx`, the lookups of the padding
    row pass no gradient to it, so training never moves the vector padding tokens read."""
    rows = table(ids)
    # expand_dims, not `[..., None]`: TFLite's builtin strided slice takes no new axis on a bool
    # tensor (a converted SavedModel would need the Flex delegate for it).
    return tf.where(tf.expand_dims(tf.equal(ids, padding_idx), -1), tf.stop_gradient(rows), rows)


class TFRobertaEmbeddings(ReplaceableSublayers, keras.layers.Layer):
    """Token ids (B, T) -> vectors (B, T, H): word + token type + absolute position embeddings,
    then LayerNorm and dropout. With relative position types the position table is still
    there (checkpoints hold it) but not added."""

    def __init__(self, config: RobertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.padding_idx = config.pad_token_id
        self.position_embedding_type = config.position_embedding_type
        H = config.hidden_size
        self.word_embeddings = _embedding(
            config, config.vocab_size, H, "word_embeddings", self.dtype_policy, self.padding_idx
        )
        self.position_embeddings = _embedding(
            config, config.max_position_embeddings, H, "position_embeddings", self.dtype_policy, self.padding_idx
        )
        self.token_type_embeddings = _embedding(
            config, config.type_vocab_size, H, "token_type_embeddings", self.dtype_policy
        )
        # `LayerNorm`, not snake case: the name is part of every checkpoint's keys.
        self.LayerNorm = _layer_norm(config, "LayerNorm", self.dtype_policy)
        self.dropout = _dropout(config.hidden_dropout_prob, self.dtype_policy)

    @property
    def weight(self):
        """The word embedding table (V, H), under v4 TF's name (`model.roberta.embeddings.weight`)."""
        return self.word_embeddings.embeddings

    def build(self, input_shape=None):
        for table in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings):
            table.build()
        self.LayerNorm.build((None, None, self.config.hidden_size))

    def _position_ids(
        self, input_ids: Optional[tf.Tensor], inputs_embeds: Optional[tf.Tensor], past_length: Any = 0
    ) -> tf.Tensor:
        """Positions when none are given: (B, T) from the padding in the ids, or (1, T) counting
        from the first position for embeddings (they do not say which tokens are padding)."""
        if input_ids is not None:
            return position_ids_from_input_ids(input_ids, self.padding_idx, past_length)
        T = tf.shape(inputs_embeds)[1]
        start = self.padding_idx + 1 + past_length
        return tf.range(start, start + T)[None, :]  # (1, T)

    def call(
        self,
        input_ids: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        inputs_embeds: Optional[tf.Tensor] = None,
        past_length: Any = 0,
        training: bool = False,
    ) -> tf.Tensor:
        if position_ids is None:
            position_ids = self._position_ids(input_ids, inputs_embeds, past_length)
        if inputs_embeds is None:
            inputs_embeds = _lookup(self.word_embeddings, input_ids, self.padding_idx)  # (B, T, H)
        if token_type_ids is None:
            # Every token is of type 0: add row 0 of the table (a one-row table is still added).
            token_type_embeddings = tf.cast(self.token_type_embeddings.embeddings[0], inputs_embeds.dtype)
        else:
            token_type_embeddings = self.token_type_embeddings(token_type_ids)
        embeddings = inputs_embeds + token_type_embeddings
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + _lookup(self.position_embeddings, position_ids, self.padding_idx)
        embeddings = self.LayerNorm(embeddings)
        return self.dropout(embeddings, training=training)


# ---------------------------------------------------------------------------- 3. self-attention

_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


# TF has no fused attention kernel (PyTorch's `fused_attention` is SDPA, Flax's
# `jax.nn.dot_product_attention`): every call takes the explicit path, which XLA fuses. Batched
# matmuls with a transposed operand rather than einsums: eagerly, forward and back, 10.7 against
# 12.5 ms per product at roberta-base 8×128 (XLA compiles either to the same dot).


def explicit_attention(
    query: tf.Tensor,
    key: tf.Tensor,
    value: tf.Tensor,
    mask: Optional[tf.Tensor],
    *,
    dropout: Optional[keras.layers.Layer] = None,
    training: bool = False,
    head_mask: Optional[tf.Tensor] = None,
    position_scores: Optional[tf.Tensor] = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The explicit attention core (TF's only one: batched matmuls that XLA compiles and fuses): return
    the probabilities, scale them per head (`head_mask`), add relative-position scores.
    q (B, h, T, D), k/v (B, h, S, D) -> context (B, h, T, D), probabilities (B, h, T, S)."""
    scores = tf.matmul(query, key, transpose_b=True)  # (B, h, T, S)
    if position_scores is not None:
        scores = scores + position_scores
    scores = scores / math.sqrt(query.shape[-1])
    # Softmax in float32: half-precision scores plus the mask's large negative values lose
    # the small differences that decide the probabilities.
    scores = tf.cast(scores, tf.float32)
    if mask is not None:
        scores = scores + tf.cast(mask, tf.float32)  # Keras may have cast it to a half policy's dtype
    probs = tf.cast(tf.nn.softmax(scores, axis=-1), query.dtype)
    if dropout is not None:
        # Dropping whole keys to attend to, as in the original Transformer.
        probs = dropout(probs, training=training)
    if head_mask is not None:
        probs = probs * head_mask
    return tf.matmul(probs, value), probs  # (B, h, T, D)


class TFRobertaSelfAttention(ReplaceableSublayers, keras.layers.Layer):
    """Multi-head attention of a sequence over itself (or, as cross-attention, over the
    encoder's states), with an optional key/value cache and relative position scores.
    (B, T, H) -> (B, T, H)."""

    def __init__(self, config: RobertaConfig, position_embedding_type: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        H = config.hidden_size
        self.query = _dense(config, H, "query", self.dtype_policy)
        self.key = _dense(config, H, "key", self.dtype_policy)
        self.value = _dense(config, H, "value", self.dtype_policy)
        self.dropout = _dropout(config.attention_probs_dropout_prob, self.dtype_policy)
        self.position_embedding_type = position_embedding_type or config.position_embedding_type
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            # One vector per distance -(P-1) .. P-1, shared by all heads (Shaw et al.; Huang et al.).
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = _embedding(
                config, 2 * config.max_position_embeddings - 1, self.head_dim, "distance_embedding", self.dtype_policy
            )

    def build(self, input_shape=None):
        for dense in (self.query, self.key, self.value):
            dense.build((None, None, self.config.hidden_size))
        if self.position_embedding_type != "absolute":
            self.distance_embedding.build()

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        B, T = dims(x)[:2]  # ints eagerly: a reshape to static sizes is one op, not four
        return tf.transpose(tf.reshape(x, (B, T, self.num_heads, self.head_dim)), (0, 2, 1, 3))  # (B, h, T, D)

    def _relative_scores(self, query: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
        """Scores from the distance between query and key positions, (B, h, T, S). The queries
        are the last T of the S positions (the first S - T are cached)."""
        T, S = tf.shape(query)[2], tf.shape(key)[2]
        q_pos = tf.range(S - T, S)[:, None]  # (T, 1)
        k_pos = tf.range(S)[None, :]  # (1, S)
        distance = self.distance_embedding(q_pos - k_pos + self.max_position_embeddings - 1)  # (T, S, D)
        distance = tf.cast(distance, query.dtype)
        scores = tf.einsum("bhtd,tsd->bhts", query, distance)
        if self.position_embedding_type == "relative_key_query":
            scores = scores + tf.einsum("bhsd,tsd->bhts", key, distance)
        return scores

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        encoder_hidden_states: Optional[tf.Tensor] = None,
        past_key_value: Optional[tuple[tf.Tensor, tf.Tensor]] = None,
        output_attentions: bool = False,
        training: bool = False,
        is_causal: bool = False,
        packing: Optional[Packing] = None,
    ) -> tuple[tf.Tensor, Optional[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
        """Returns the context (B, T, H), the probabilities (B, h, T, S) when `output_attentions`
        (else None), and this call's (key, value) (B, h, S, D) for the cache. With `packing` the
        states are a packed stream (1, N, H) and each sequence attends over itself only (causally
        with `is_causal`; the padded path has causality in its mask); with `packing` and
        `encoder_hidden_states` (a first-only last layer), the source is the stream and the queries
        padded rows: keys and values go back into their padded rows, for the mask."""
        B, T = dims(hidden_states)[:2]
        # `query`, `key` and `value` are called as layers in every mode, training included: a
        # wrapper (LoRA, a quantised layer) or a hook on their `call` must see every call.
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
            if past_key_value is not None:  # a decoder step: the cached positions come first
                key = tf.concat([tf.cast(past_key_value[0], key.dtype), key], axis=2)  # (B, h, S, D)
                value = tf.concat([tf.cast(past_key_value[1], value.dtype), value], axis=2)

        if packing is not None and encoder_hidden_states is None:
            context = packed_attention(
                query, key, value, packing, dropout=self.dropout, training=training, is_causal=is_causal
            )
            probs = None
        else:
            position_scores = None
            if self.position_embedding_type != "absolute":
                position_scores = self._relative_scores(query, key)
            context, probs = explicit_attention(
                query, key, value, attention_mask,
                dropout=self.dropout, training=training, head_mask=head_mask, position_scores=position_scores,
            )
        context = tf.reshape(tf.transpose(context, (0, 2, 1, 3)), (B, T, self.config.hidden_size))  # (B, T, H)
        return context, (probs if output_attentions else None), (key, value)


# ---------------------------------------------------------------------------- 4. self-output

class TFRobertaSelfOutput(ReplaceableSublayers, keras.layers.Layer):
    """Projects the attention context back and adds it to the block's input, then LayerNorm
    (post-LayerNorm; RoBERTa-PreLayerNorm normalised the input instead and has no LayerNorm here)."""

    def __init__(self, config: RobertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = _dense(config, config.hidden_size, "dense", self.dtype_policy)
        self.LayerNorm = None if config.pre_layer_norm else _layer_norm(config, "LayerNorm", self.dtype_policy)
        self.dropout = _dropout(config.hidden_dropout_prob, self.dtype_policy)

    def build(self, input_shape=None):
        self.dense.build((None, None, self.config.hidden_size))
        if self.LayerNorm is not None:
            self.LayerNorm.build((None, None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor, input_tensor: tf.Tensor, training: bool = False) -> tf.Tensor:
        hidden_states = self.dropout(self.dense(hidden_states), training=training) + input_tensor
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return hidden_states


# ---------------------------------------------------------------------------- 5. attention block

class TFRobertaAttention(ReplaceableSublayers, keras.layers.Layer):
    """Self-attention (or cross-attention) followed by its output projection and residual. Under
    RoBERTa-PreLayerNorm its own LayerNorm normalises the input first (the queries' side only:
    the encoder's states of cross-attention are taken as they are); the residual adds the input
    as it came."""

    def __init__(self, config: RobertaConfig, position_embedding_type: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.self = TFRobertaSelfAttention(config, position_embedding_type, dtype=self.dtype_policy, name="self")
        # PyTorch's `output`: Keras layers own a read-only `output` property (convert.py maps the name).
        self.dense_output = TFRobertaSelfOutput(config, dtype=self.dtype_policy, name="output")
        self.LayerNorm = _layer_norm(config, "LayerNorm", self.dtype_policy) if config.pre_layer_norm else None

    def build(self, input_shape=None):
        self.self.build()
        self.dense_output.build()
        if self.LayerNorm is not None:
            self.LayerNorm.build((None, None, self.config.hidden_size))

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        encoder_hidden_states: Optional[tf.Tensor] = None,
        past_key_value: Optional[tuple[tf.Tensor, tf.Tensor]] = None,
        output_attentions: bool = False,
        training: bool = False,
        is_causal: bool = False,
        packing: Optional[Packing] = None,
        first_only: bool = False,
    ) -> tuple[tf.Tensor, Optional[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
        """`first_only`: the first token's state only, (B, 1, H): its query attends over every
        position (the encoder's last layer when a head reads `<s>` alone). Under `packing` the
        states are the stream (1, N, H): each row's first real token queries its row's keys."""
        normed = hidden_states if self.LayerNorm is None else self.LayerNorm(hidden_states)
        if first_only:
            # Attention of the first query over the block's own states: keys and values from all.
            first = (lambda x: x[:, :1]) if packing is None else (lambda x: first_rows(x, packing))
            context, probs, present = self.self(
                first(normed), attention_mask=attention_mask, head_mask=head_mask, encoder_hidden_states=normed,
                output_attentions=output_attentions, training=training, packing=packing,
            )
            return self.dense_output(context, first(hidden_states), training=training), probs, present
        context, probs, present = self.self(
            normed, attention_mask=attention_mask, head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states, past_key_value=past_key_value,
            output_attentions=output_attentions, training=training, is_causal=is_causal, packing=packing,
        )
        return self.dense_output(context, hidden_states, training=training), probs, present


# ---------------------------------------------------------------------------- 6. intermediate

class TFRobertaIntermediate(ReplaceableSublayers, keras.layers.Layer):
    """The feed-forward block's expansion: (B, T, H) -> (B, T, intermediate_size), then the
    activation; under RoBERTa-PreLayerNorm a LayerNorm of the input comes first."""

    def __init__(self, config: RobertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.LayerNorm = _layer_norm(config, "LayerNorm", self.dtype_policy) if config.pre_layer_norm else None
        self.dense = _dense(config, config.intermediate_size, "dense", self.dtype_policy)
        self.intermediate_act_fn = ACT2FN[config.hidden_act]

    def build(self, input_shape=None):
        if self.LayerNorm is not None:
            self.LayerNorm.build((None, None, self.config.hidden_size))
        self.dense.build((None, None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return self.intermediate_act_fn(self.dense(hidden_states))


# ---------------------------------------------------------------------------- 7. output

class TFRobertaOutput(ReplaceableSublayers, keras.layers.Layer):
    """The feed-forward block's projection back to H, with dropout, residual and LayerNorm (none
    under RoBERTa-PreLayerNorm, as in the self-output)."""

    def __init__(self, config: RobertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = _dense(config, config.hidden_size, "dense", self.dtype_policy)
        self.LayerNorm = None if config.pre_layer_norm else _layer_norm(config, "LayerNorm", self.dtype_policy)
        self.dropout = _dropout(config.hidden_dropout_prob, self.dtype_policy)

    def build(self, input_shape=None):
        self.dense.build((None, None, self.config.intermediate_size))
        if self.LayerNorm is not None:
            self.LayerNorm.build((None, None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor, input_tensor: tf.Tensor, training: bool = False) -> tf.Tensor:
        hidden_states = self.dropout(self.dense(hidden_states), training=training) + input_tensor
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return hidden_states


# ---------------------------------------------------------------------------- 8. layer

class TFRobertaLayer(ReplaceableSublayers, keras.layers.Layer):
    """One Transformer block: self-attention, cross-attention over the encoder's states (decoder
    with `add_cross_attention`), feed-forward. (B, T, H) -> (B, T, H)."""

    def __init__(self, config: RobertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.attention = TFRobertaAttention(config, dtype=self.dtype_policy, name="attention")
        self.crossattention = None
        if config.add_cross_attention:
            if not config.is_decoder:
                raise ValueError("add_cross_attention=True needs a decoder: build the config with is_decoder=True")
            # v4: cross-attention positions are absolute whatever the config says.
            self.crossattention = TFRobertaAttention(
                config, position_embedding_type="absolute", dtype=self.dtype_policy, name="crossattention"
            )
        self.intermediate = TFRobertaIntermediate(config, dtype=self.dtype_policy, name="intermediate")
        self.dense_output = TFRobertaOutput(config, dtype=self.dtype_policy, name="output")  # PyTorch's `output`

    def build(self, input_shape=None):
        for block in (self.attention, self.crossattention, self.intermediate, self.dense_output):
            if block is not None:
                block.build()

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        encoder_hidden_states: Optional[tf.Tensor] = None,
        encoder_attention_mask: Optional[tf.Tensor] = None,
        past_key_value: Optional[tuple[tf.Tensor, ...]] = None,
        output_attentions: bool = False,
        training: bool = False,
        is_causal: bool = False,
        packing: Optional[Packing] = None,
        first_only: bool = False,
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, ...], Optional[tf.Tensor], Optional[tf.Tensor]]:
        """Returns the new states, this layer's cache entry ((k, v), or (k, v, cross_k, cross_v)
        with cross-attention) and the self/cross attention probabilities (None unless asked).
        `first_only`: the first token's new state only, (B, 1, H) (see TFRobertaAttention)."""
        self_past = tuple(past_key_value[:2]) if past_key_value is not None else None
        attention_output, self_probs, present = self.attention(
            hidden_states, attention_mask=attention_mask, head_mask=head_mask, past_key_value=self_past,
            output_attentions=output_attentions, training=training, is_causal=is_causal, packing=packing,
            first_only=first_only,
        )
        cross_probs = None
        if encoder_hidden_states is not None:
            cross_past = tuple(past_key_value[2:]) if past_key_value is not None and len(past_key_value) == 4 else None
            attention_output, cross_probs, cross_present = self.crossattention(
                attention_output, attention_mask=encoder_attention_mask, head_mask=head_mask,
                encoder_hidden_states=encoder_hidden_states, past_key_value=cross_past,
                output_attentions=output_attentions, training=training,
            )
            present = present + cross_present
        layer_output = self.dense_output(self.intermediate(attention_output), attention_output, training=training)
        return layer_output, present, self_probs, cross_probs


# ---------------------------------------------------------------------------- 9. encoder

class TFRobertaEncoder(ReplaceableSublayers, keras.layers.Layer):
    """The stack of layers. Collects, on request, every layer's input states, attention
    probabilities and cache entry; recomputes activations in the backward pass under gradient
    checkpointing."""

    def __init__(self, config: RobertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.layer = [
            TFRobertaLayer(config, dtype=self.dtype_policy, name=f"layer_._{i}")
            for i in range(config.num_hidden_layers)
        ]
        self.gradient_checkpointing = False

    def build(self, input_shape=None):
        for layer in self.layer:
            layer.build()

    def call(
        self,
        hidden_states: tf.Tensor,
        attention_mask: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        encoder_hidden_states: Optional[tf.Tensor] = None,
        encoder_attention_mask: Optional[tf.Tensor] = None,
        past_key_values: Optional[tuple[tuple[tf.Tensor, ...], ...]] = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        training: bool = False,
        is_causal: bool = False,
        packing: Optional[Packing] = None,
        first_token_only: bool = False,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        """`first_token_only`: the last layer computes the first token's state only (the caller
        checked that nothing else is read): last_hidden_state (B, 1, H). Under `packing` that layer
        takes each row's first real token from the stream as its query, and the keys and values of
        the stream put back into their padded rows, under `attention_mask`, their padding mask."""
        checkpointing = self.gradient_checkpointing and training
        if checkpointing and use_cache:
            _warn_once("use_cache=True does not combine with gradient checkpointing in training; no cache is returned")
            use_cache = False
        all_hidden = [] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        all_cross = [] if output_attentions and encoder_hidden_states is not None else None
        presents = [] if use_cache else None
        for i, layer in enumerate(self.layer):
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            last = first_token_only and i == len(self.layer) - 1
            kwargs = dict(
                attention_mask=attention_mask, head_mask=None if head_mask is None else head_mask[i],
                encoder_attention_mask=encoder_attention_mask,
                past_key_value=None if past_key_values is None else past_key_values[i],
                output_attentions=output_attentions, training=training, is_causal=is_causal, packing=packing,
            )
            if checkpointing:
                # Keep only the layer's input; rerun it (same dropout masks) in the backward pass.
                hidden_states, present, probs, cross = _checkpointed(
                    layer, hidden_states, encoder_hidden_states, kwargs
                )
            else:
                hidden_states, present, probs, cross = layer(
                    hidden_states, encoder_hidden_states=encoder_hidden_states, **kwargs,
                    first_only=last,
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


def _checkpointed(layer: TFRobertaLayer, hidden_states: tf.Tensor, encoder_hidden_states: Optional[tf.Tensor],
                  kwargs: dict) -> tuple:
    """`layer(...)` under `tf.recompute_grad`: only the inputs are kept for the backward pass,
    which runs the layer again. Dropout draws from seed generators that advance on every call,
    so each run first rewinds them to where they stood: the rerun replays the same masks."""
    # no public API: Keras 3 lists a layer's nested layers only through `_flatten_layers`.
    seeds = [d.seed_generator for d in layer._flatten_layers() if isinstance(d, keras.layers.Dropout) and d.rate > 0]
    start = [tf.identity(s.state.value) for s in seeds]

    def run(*inputs: tf.Tensor) -> tuple[tf.Tensor, ...]:
        for seed, value in zip(seeds, start):
            seed.state.assign(value)
        source = inputs[1] if len(inputs) > 1 else None
        states, _, probs, cross = layer(inputs[0], encoder_hidden_states=source, **kwargs)
        # recompute_grad passes tensors only: the absent attentions are left out, then put back.
        return (states,) + tuple(t for t in (probs, cross) if t is not None)

    inputs = (hidden_states,) if encoder_hidden_states is None else (hidden_states, encoder_hidden_states)
    outputs = tf.recompute_grad(run)(*inputs)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    states = outputs.pop(0)
    probs = outputs.pop(0) if kwargs["output_attentions"] else None
    cross = outputs.pop(0) if kwargs["output_attentions"] and encoder_hidden_states is not None else None
    return states, None, probs, cross


# ---------------------------------------------------------------------------- 10. pooler

class TFRobertaPooler(ReplaceableSublayers, keras.layers.Layer):
    """The sequence summary of BERT's next-sentence task: the first token's state (B, H) through
    dense + tanh. RoBERTa dropped that task; multiple choice still uses it."""

    def __init__(self, config: RobertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = _dense(config, config.hidden_size, "dense", self.dtype_policy)

    def build(self, input_shape=None):
        self.dense.build((None, self.config.hidden_size))

    def call(self, hidden_states: tf.Tensor) -> tf.Tensor:
        return tf.tanh(self.dense(hidden_states[:, 0]))


# ---------------------------------------------------------------------------- 11. pretrained-model base

class TFRobertaPreTrainedModel(ReplaceableSublayers, keras.Model):
    """Base of the encoder and the seven heads: weight initialisation as v4, checkpoint loading
    and saving, embeddings access and resizing, tying, gradient checkpointing, and the Keras
    hooks (`fit` with the head's own loss, a SavedModel for serving).

    Subclasses set `head` (a key of `roberta_core.weights.HEADS`), build their layers in
    `__init__(config, *, attn_implementation=None, **keras_kwargs)` and build from `self.config`
    (a family class's copy of `config`, `roberta_core.family.config_for_class`), ending with
    `self.build()`. Keras kwargs are `name` and `dtype` (a dtype policy such as 'bfloat16').
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
    framework = "tf"  # v4's: which framework the model is ("pt", "tf", "flax")

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None, **kwargs):
        config = model_config(config)  # ours, or a v4 transformers config converted
        # The one check of every backend: None is the default, the other backends' names map here.
        attn_implementation = backends.resolve_attn_implementation("tf", attn_implementation)
        super().__init__(**kwargs)
        # A family class (`TFXLMRobertaForMaskedLM`, ...) sets its model_type; a TFRoberta* class keeps the config's.
        self.config = config = family.config_for_class(type(self), config)
        if config.pruned_heads:  # v4 prunes attention heads in PyTorch only
            raise NotImplementedError(
                f"config.pruned_heads={config.pruned_heads}: a model with pruned attention heads runs in PyTorch "
                "only (roberta_pt, v4's prune_heads); TensorFlow builds every head"
            )
        self.base_model_prefix = config.base_model_prefix
        # v4's model attribute: where from_pretrained read it (peft records it as an adapter's base model).
        self.name_or_path = config.name_or_path
        self.attn_implementation = attn_implementation
        # no public API: Keras converts call arguments itself unless told not to (see __call__).
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

    def __call__(self, *args, **kwargs):
        # Keras' fit/predict (and v4 users) pass every input in one dict: spread it out.
        if args and isinstance(args[0], Mapping):
            kwargs = {**args[0], **kwargs}
            args = args[1:]
        elif args and _input_sequence(args[0]):
            # v4's input_processing: `model([ids, mask])` / `model((ids, mask, token_type_ids))`
            # give the call's inputs in the order of its parameters.
            if len(args) > 1:
                raise TypeError("give the inputs in one list or tuple, or as separate arguments, not both")
            # v4's input_processing: every parameter in order, `training` in its place too (a tuple
            # built from the signature's defaults, as v4's test_loss_computation builds one, works).
            names = [n for n in inspect.signature(self.call).parameters if n != "self"]
            if len(args[0]) > len(names):
                raise ValueError(f"{type(self).__name__} takes at most {len(names)} inputs, got {len(args[0])}")
            given = {n: v for n, v in zip(names, args[0]) if v is not None}  # None: the default
            both = sorted(set(given) & set(kwargs))
            if both:
                raise TypeError(f"{both} given both in the input list and as keywords")
            kwargs, args = {**given, **kwargs}, ()
        # Converted here, not by Keras: it leaves lists alone and casts float labels to a half policy.
        args = tuple(as_tensor(a) for a in args)
        # Static sizes (a NumPy integer such as `mask.sum()` too) stay Python numbers, not tensors.
        kept = ("past_key_values", "unpad", "masked_positions_only")
        kwargs = {k: v if k in kept else as_tensor(v) for k, v in kwargs.items()}
        for name in ("attention_mask", "encoder_attention_mask"):
            # A bool mask (True = attend) means what v4 TF made of it: 1 and 0.
            if isinstance(kwargs.get(name), tf.Tensor) and kwargs[name].dtype == tf.bool:
                kwargs[name] = tf.cast(kwargs[name], tf.int32)
        try:
            return super().__call__(*args, **kwargs)
        except (ValueError, TypeError) as error:
            # Keras re-raises an error from `call` as a new one with the call's arguments appended;
            # bad input reads clearer as our message alone (the original is the context). No public
            # API: Keras marks the re-raised error only with `_keras_call_info_injected`.
            original = error.__context__ if getattr(error, "_keras_call_info_injected", False) else None
            if type(original) is type(error):
                raise original from None
            raise

    def check_inputs(self, input_ids: Any = None, token_type_ids: Any = None, position_ids: Any = None) -> None:
        """Check the values of ids (B, T) ((B, C, T) for multiple choice) against this model's
        tables: a ValueError naming the input and its allowed range, as an eager call raises.
        For inputs headed to a `tf.function(jit_compile=True)` call, where XLA compiles the
        model's assertions away and an out-of-range id gives finite garbage: call it eagerly,
        outside the compiled function, on the same inputs."""
        config = self.config
        for name, value, upper in (
            ("input_ids", input_ids, config.vocab_size),
            ("token_type_ids", token_type_ids, config.type_vocab_size),
            ("position_ids", position_ids, config.max_position_embeddings),
        ):
            if value is not None:
                check_values(name, tf.convert_to_tensor(value), upper)

    def __dir__(self) -> list[str]:
        # Keras' `.keras` saver and loader walk `dir(model)`: `base_model` is the model itself (or
        # another name of `roberta`, as `roberta_prelayernorm` is), and the loader, which marks an
        # object seen only after its children, would follow it forever. The weights are found
        # under their own names.
        return [name for name in super().__dir__() if name not in ("base_model", "roberta_prelayernorm")]

    # ------------------------------------------------------------------ structure
    @property
    def base_model(self) -> "TFRobertaModel":
        """The encoder: the model itself for TFRobertaModel, `self.roberta` for a head."""
        return getattr(self, "roberta", self)

    @property
    def roberta_prelayernorm(self) -> "TFRobertaModel":
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

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.base_model.embeddings.word_embeddings

    def set_input_embeddings(self, value: Any) -> None:
        """Replace the word embedding table with `value`, an array or variable (V, H)."""
        value = tf.convert_to_tensor(value)
        if value.shape.rank != 2 or value.shape[1] != self.config.hidden_size:
            raise ValueError(
                f"input embeddings must have shape (vocab_size, {self.config.hidden_size}), got {value.shape}"
            )
        table = self.get_input_embeddings()
        replace_variable(table, "_embeddings", value)
        table.input_dim = value.shape[0]
        self.config.vocab_size = value.shape[0]
        self.tie_weights()

    def get_output_embeddings(self) -> Optional[keras.layers.Layer]:
        """The LM decoder of the LM heads (the word embeddings when tied); None elsewhere."""
        lm_head = getattr(self, "lm_head", None)
        return None if lm_head is None else lm_head.decoder

    def get_lm_head(self) -> Optional[keras.layers.Layer]:
        """v4 TF's: the LM head layer of the MaskedLM and CausalLM heads (`lm_head`); None elsewhere."""
        return getattr(self, "lm_head", None)

    def get_bias(self) -> Optional[dict[str, Any]]:
        """v4 TF's: the LM head's output bias as {"bias": variable (V,)}; None without an LM head."""
        lm_head = self.get_lm_head()
        return None if lm_head is None else {"bias": lm_head.bias}

    def set_bias(self, value: Mapping[str, Any]) -> None:
        """v4 TF's: set the LM head's output bias from {"bias": (V,)} (a new size sets the
        config's vocab_size, as v4)."""
        lm_head = self.get_lm_head()
        if lm_head is None:
            raise AttributeError(f"{type(self).__name__} has no LM head, so no bias to set")
        bias = tf.convert_to_tensor(value["bias"])
        if bias.shape.rank != 1:
            raise ValueError(f"the LM head's bias must have shape (vocab_size,), got {bias.shape}")
        if bias.shape == lm_head.bias.shape:
            lm_head.bias.assign(tf.cast(bias, lm_head.bias.dtype))
        else:
            replace_variable(lm_head, "bias", bias)
            self.config.vocab_size = int(bias.shape[0])

    def tie_weights(self) -> None:
        """Make the LM decoder use the word embeddings (when `tie_word_embeddings`); its bias
        is `lm_head.bias` by construction. One variable each, as in every RoBERTa checkpoint."""
        lm_head = getattr(self, "lm_head", None)
        if lm_head is not None and self.config.tie_word_embeddings:
            lm_head.decoder = self.get_input_embeddings()

    def resize_token_embeddings(
        self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None, mean_resizing: bool = True
    ) -> keras.layers.Embedding:
        """Grow or shrink the vocabulary to `new_num_tokens` rows, keeping the rows both sizes
        share. New rows are the mean of the old ones (v4's `mean_resizing`; it keeps the
        softmax of the tied decoder from favouring them) or, with `mean_resizing=False`, drawn
        like fresh weights. The LM head's bias (and an untied decoder) follow. `pad_to_multiple_of`
        rounds the size up (v4's option); with neither size given, nothing changes (as v4)."""
        new_num_tokens = check_vocab_resize(self.config, new_num_tokens, pad_to_multiple_of)
        if new_num_tokens is None:
            return self.get_input_embeddings()
        table = self.get_input_embeddings()
        old = tf.convert_to_tensor(table.embeddings)
        keep = min(old.shape[0], new_num_tokens)
        fresh = _normal(self.config)((new_num_tokens - keep, old.shape[1]), old.dtype)
        if mean_resizing and new_num_tokens > keep:
            fresh = tf.broadcast_to(tf.cast(tf.reduce_mean(tf.cast(old, tf.float32), axis=0), old.dtype), fresh.shape)
        replace_variable(table, "_embeddings", tf.concat([old[:keep], fresh], axis=0))
        table.input_dim = new_num_tokens
        lm_head = getattr(self, "lm_head", None)
        if lm_head is not None:
            replace_variable(lm_head, "bias", _resized(lm_head.bias, new_num_tokens, fill=0.0))
            if not self.config.tie_word_embeddings:
                kernel = tf.convert_to_tensor(lm_head.decoder.kernel)  # (H, V)
                fresh = _normal(self.config)((kernel.shape[0], new_num_tokens - keep), kernel.dtype)
                replace_variable(lm_head.decoder, "_kernel", tf.concat([kernel[:, :keep], fresh], axis=1))
                lm_head.decoder.units = new_num_tokens
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return table

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Number of parameters, each tied parameter counted once."""
        # no public API: Keras 3 lists a model's nested layers only through `_flatten_layers`.
        embeddings = {
            id(layer.embeddings) for layer in self._flatten_layers() if isinstance(layer, keras.layers.Embedding)
        }
        weights = self.trainable_weights if only_trainable else self.weights
        return sum(
            int(np.prod(w.shape)) for w in weights if not (exclude_embeddings and id(w) in embeddings)
        )

    # ------------------------------------------------------------------ gradient checkpointing
    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Optional[dict] = None) -> None:
        """Trade compute for memory in training: keep only each layer's input and recompute
        the layer in the backward pass (`tf.recompute_grad`). (v4's
        `gradient_checkpointing_kwargs` is accepted and has nothing to choose here.)"""
        self.base_model.encoder.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.base_model.encoder.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.base_model.encoder.gradient_checkpointing

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        config: Optional[RobertaConfig] = None,
        dtype: Any = None,
        strict: bool = False,
        ignore_mismatched_sizes: bool = False,
        attn_implementation: Optional[str] = None,
        **kwargs: Any,
    ) -> "TFRobertaPreTrainedModel" | tuple["TFRobertaPreTrainedModel", dict[str, list]]:
        """Load a checkpoint directory in any of the four weight formats (safetensors, sharded
        too; pytorch_model.bin; tf_model.h5, v4's Keras 2 layout included; flax_model.msgpack).
        Keras models have no mode: dropout is off unless a call passes `training=True`.

        Another head's checkpoint loads too (a MaskedLM checkpoint into a classifier): the unused
        and the newly initialised keys are reported in one warning (an error under `strict`).
        A shape mismatch (e.g. `num_labels`) is an error unless `ignore_mismatched_sizes`.
        `dtype`: None (float32, as v4), 'auto' (the checkpoint's), a tf dtype or a Keras dtype
        policy name ('mixed_bfloat16').

        The file read is v4 TF's choice: model.safetensors (or its sharded index), else tf_model.h5
        (or its index), then pytorch_model.bin and flax_model.msgpack; `from_pt=True` puts
        pytorch_model.bin first, `use_safetensors` and `variant` (the PyTorch variant files,
        `model.fp16.safetensors`: OSError when there are none) as in the PyTorch backend.

        The other keywords sort as v4's: config fields (`num_labels=5`, `is_decoder=True`) change
        the config; the model's own arguments go to it (`add_pooling_layer=False` builds a
        TFRobertaModel without pooler); loading options are honoured (`subfolder`, `device_map`
        (see `_framework.resolve_device`), `output_loading_info=True`: returns (model,
        {"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"})) or accepted and
        never written into the config (`low_cpu_mem_usage`: loading already holds one copy; the
        Hub's `revision`, `cache_dir`, `local_files_only`, `token`, unused for a local
        directory). Any other keyword is a TypeError.
        """
        path = pretrained_model_name_or_path  # v4's parameter name
        config = own_config(config)
        init_keywords = [
            name for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in ("self", "config") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        overrides, model_kwargs, options = split_from_pretrained_kwargs(
            cls.__name__, kwargs, model_keywords=init_keywords
        )
        model_kwargs.pop("attn_implementation", None)  # the explicit argument above
        pooled = bool(model_kwargs["add_pooling_layer"]) if "add_pooling_layer" in model_kwargs else None
        device = resolve_device(options.get("device_map"))

        directory = resolve_pretrained(path, options, prefer="h5", config_given=config is not None,
                                       generation=cls.can_generate())
        weights_file = pretrained_weights_file(directory, options, prefer="h5")  # v4's choice of file
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
        # Built without values, then each variable made from its array: one copy of the weights.
        # A failure anywhere in between (an array that cannot be a weight) leaves no Keras state.
        # Variables are made (on `device`, when asked) by `from_canonical`, not by the constructor.
        with tf.device(device), _framework.deferred_variables():
            with keras.StatelessScope(initialize_variables=False):
                model = cls(
                    config, attn_implementation=attn_implementation, dtype=resolve_dtype(dtype, state), **model_kwargs
                )
            from_canonical(model, state, allow_missing=True, consume=True)
        if model.can_generate():
            model.generation_config = checkpoint_generation_config(directory, model.config)  # as v4
        if options.get("output_loading_info"):
            return model, loading_info(plan)
        return model

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        format: Optional[str] = None,
        max_shard_size: int | str | None = None,
        safe_serialization: Optional[bool] = None,
        variant: Optional[str] = None,
        saved_model: bool = False,
        version: int = 1,
        signatures: Any = None,
        push_to_hub: bool = False,
        **hub_kwargs: Any,
    ) -> None:
        """Write `config.json` and the weights, atomically: `format='h5'` (default, as v4's TF
        classes save: `tf_model.h5` in v4's Keras 2 layout, which `transformers` 4.57's TF classes
        read) or 'safetensors' (PyTorch names, metadata {'format': 'pt'}; v4's
        `safe_serialization=True` means the same), both sharded as v4 shards them above
        `max_shard_size` (`tf_model-00001-of-00003.h5` + `tf_model.h5.index.json`). `variant='fp16'`
        writes v4 PyTorch's variant names (`model.fp16.safetensors`, which v4's PyTorch classes read
        with `variant=`); v4 TF writes no variant and names none of tf_model.h5: a ValueError there.
        An LM head with an untied decoder (`tie_word_embeddings=False`, which v4 TF cannot build)
        does not fit tf_model.h5: by default it is written as safetensors, with a warning.

        `saved_model=True` also writes a TensorFlow SavedModel for serving in
        `directory/saved_model/<version>`, as v4 did: its `serving_default` signature is
        `export_saved_model`'s (input_ids, attention_mask, token_type_ids -> the output fields),
        or v4's `signatures` (a `tf.function` with an input signature, or a {name: function} dict)."""
        directory = save_directory  # v4's parameter name
        if format is None:
            format = "safetensors" if safe_serialization else "h5"
            if format == "h5" and self.get_output_embeddings() is not None and not self.config.tie_word_embeddings:
                # v4 TF's tf_model.h5 has no slot for a decoder of its own (v4 TF ties it always)
                warnings.warn("an untied LM decoder does not fit tf_model.h5: writing model.safetensors", stacklevel=2)
                format = "safetensors"
        if format not in ("safetensors", "h5"):
            raise ValueError(f"the TensorFlow backend saves format 'safetensors' or 'h5', got {format!r}")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ValueError(f"version must be an integer >= 0 (the SavedModel's folder name), got {version!r}")
        def write_saved_model(directory: Path) -> None:  # before an upload: the SavedModel goes too
            _framework.write_saved_model(self, directory / "saved_model" / str(version), self._serving_function(), signatures)

        save_pretrained_files(
            directory, self.config, to_canonical(self), self.head, format=format, max_shard_size=max_shard_size, variant=variant,
            push_to_hub=push_to_hub, then=write_saved_model if saved_model else None,
            generation_config=getattr(self, "generation_config", None), **hub_kwargs,
        )

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """v4's `model.push_to_hub(repo_id)`: `save_pretrained` into a temporary folder, uploaded
        to the Hub in one commit (`roberta_core.pretrained.push_model_to_hub`; needs `[hub]`)."""
        return push_model_to_hub(self.save_pretrained, repo_id, **kwargs)

    # ------------------------------------------------------------------ Keras: saving, fit and serving
    def get_config(self) -> dict[str, Any]:
        """Keras' serialisation of the model (`model.save('m.keras')`, `keras.models.load_model`,
        `keras.models.clone_model`): the RoBERTa config as `RobertaConfig.to_dict()`, the attention
        path and Keras' own fields (name, trainable, dtype policy). The weights travel beside it."""
        return {
            "config": self.config.to_dict(),
            "attn_implementation": self.attn_implementation,
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config: Any, custom_objects: Any = None, **kwargs: Any) -> "TFRobertaPreTrainedModel":
        """A model with fresh weights, from any of three things:

        - v4's `M.from_config(config, **kwargs)`: a RobertaConfig (or an object with `to_dict()`,
          such as a `transformers` config, as `from_pretrained(config=...)` takes), the keywords
          going to the model (`name=`, `dtype=`, `attn_implementation=`);
        - v4's `M.from_config(config_dict, **kwargs)`: a dict of config fields, the keywords
          overriding them (`num_labels=5`);
        - Keras' own: the dict `get_config()` returns, {"config": {...}, "name": ..., "dtype": ...}
          (`keras.models.load_model`, `clone_model`; the weights are loaded after)."""
        if isinstance(config, Mapping) and isinstance(config.get("config"), Mapping):
            config = {**config, **kwargs}
            roberta_config = RobertaConfig.from_dict(config.pop("config"))
            dtype = config.pop("dtype", None)
            if isinstance(dtype, Mapping):
                dtype = keras.dtype_policies.deserialize(dtype)
            return cls(roberta_config, dtype=dtype, **config)
        if isinstance(config, Mapping):  # v4: config fields, the keywords overriding them
            return cls(cls.config_class.from_dict(config, **kwargs))
        if not isinstance(config, RobertaConfig):
            config = own_config(config)  # a v4 `transformers` config, through its dict
        return cls(config, **kwargs)

    def _predictions(self, outputs: Mapping[str, Any]) -> Any:
        """What a compiled Keras loss or metric compares with `y`: the logits ((start, end) for QA)."""
        if "start_logits" in outputs:
            return outputs["start_logits"], outputs["end_logits"]
        return outputs["logits"] if "logits" in outputs else outputs["last_hidden_state"]

    def hf_compute_loss(self, labels: Any, outputs: Any) -> tf.Tensor:
        """The head's own loss of `outputs` (or v4's argument, the logits) against `labels` (v4 TF's
        name for it), shaped as v4's: (1,) for the token-level heads, (B,) for the others."""
        raise NotImplementedError(f"{type(self).__name__} has no loss of its own; give compile() a loss")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' loss hook for `fit`/`evaluate`. With labels among the inputs, the head's own
        loss (as v4 TF users trained); with labels as `y` and no loss given to `compile`, the
        head's loss against `y`; otherwise the compiled loss on the logits. The head's loss
        ignores `sample_weight` (v4 did too): mark ignored positions with -100 instead."""
        # no public API: whether `compile` got a loss (`_compile_loss`) and the summing of layer
        # losses (`_aggregate_additional_loss`) are what Keras' own `compute_loss` reads.
        if "loss" in y_pred:
            loss = y_pred["loss"]
        elif y is not None and self._compile_loss is None:
            loss = self.hf_compute_loss(_unwrapped_labels(y), y_pred)
        else:
            return super().compute_loss(x, y, self._predictions(y_pred), sample_weight, training)
        loss = tf.reduce_mean(loss)  # the heads' losses are per example or (1,), as v4's
        for extra in self.losses:
            loss = loss + self._aggregate_additional_loss(extra)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None and isinstance(x, Mapping):
            # Labels inside the input dict (no separate y): the metrics read them from there, as
            # v4 TF's train_step does.
            y = {k: v for k, v in x.items() if k in ("labels", "start_positions", "end_positions")} or None
        y, sample_weight = _unwrapped_labels(y), _unwrapped_labels(sample_weight)  # Keras shapes weights as y
        if isinstance(y, Mapping) and "start_positions" in y:  # QA's two positions against its two logits
            y = (y["start_positions"], y["end_positions"])
            if isinstance(sample_weight, Mapping):
                sample_weight = (sample_weight["start_positions"], sample_weight["end_positions"])
        predictions = self._predictions(y_pred)
        if isinstance(predictions, tuple) and isinstance(y, (tuple, list)) and self._flat_metrics():
            # QA compiled with one flat list of metrics (`metrics=["accuracy"]`, which v4's Keras 2
            # applied to each of the two outputs): Keras 3 wants one list per output, so the two
            # outputs are measured together, start and end rows stacked (the mean of the two).
            y, predictions = tf.concat(list(y), axis=0), tf.concat(list(predictions), axis=0)
            if sample_weight is not None:
                if not isinstance(sample_weight, (tuple, list)):
                    sample_weight = (sample_weight, sample_weight)
                sample_weight = tf.concat(list(sample_weight), axis=0)
        return super().compute_metrics(x, y, predictions, sample_weight)

    def _flat_metrics(self) -> bool:
        """Whether `compile` got its metrics as one flat list (not one per output, nor a dict)."""
        # no public API: Keras keeps what `compile` was given as `_compile_metrics._user_metrics`.
        compiled = getattr(self, "_compile_metrics", None)
        given = [getattr(compiled, "_user_metrics", None), getattr(compiled, "_user_weighted_metrics", None)]
        given = [m for m in given if m]
        return bool(given) and all(
            isinstance(m, (list, tuple)) and not any(isinstance(e, (list, tuple, Mapping)) for e in m) for m in given
        )

    def prepare_tf_dataset(
        self, dataset: Any, batch_size: int = 8, shuffle: bool = True, tokenizer: Any = None,
        collate_fn: Any = None, collate_fn_args: Optional[dict] = None, drop_remainder: Optional[bool] = None,
        prefetch: bool = True,
    ) -> tf.data.Dataset:
        """v4 TF's wrapper of a Hugging Face `datasets.Dataset` (the `[datasets]` extra) as the
        batches `fit` takes: (features, labels), the features being the columns `call` takes and
        the labels `labels` (`label`/`label_ids` renamed, as v4's collators do) or QA's
        `start_positions`/`end_positions`; one column alone comes as a tensor, not a dict (as in
        v4). Rows are padded by `tokenizer.pad`, or stacked as they are without a tokenizer,
        unless `collate_fn(features, **collate_fn_args)` is given. `drop_remainder` defaults to
        `shuffle`."""
        import datasets

        if not isinstance(dataset, datasets.Dataset):
            raise TypeError(f"prepare_tf_dataset takes a datasets.Dataset, got {type(dataset).__name__}")
        if not len(dataset):
            raise ValueError("prepare_tf_dataset: the dataset has no rows")
        if collate_fn is None:
            collate_fn = functools.partial(_collate_like_v4, tokenizer)
        collate_fn_args = dict(collate_fn_args or {})
        inputs = list(inspect.signature(self.call).parameters)
        label_names = [n for n in inputs if "label" in n or n in ("start_positions", "end_positions")]
        dataset = dataset.remove_columns(
            [c for c in dataset.column_names if c not in inputs and c not in ("label", "label_ids")]
        )
        # The columns as the collator leaves them (it may rename or add some): from a sample batch.
        sample = collate_fn([dataset[i] for i in range(min(2, len(dataset)))], **collate_fn_args)
        features = [c for c in sample if c in inputs and c not in label_names]
        labels = [c for c in sample if c in label_names]
        return dataset.to_tf_dataset(
            columns=features[0] if len(features) == 1 else features,
            label_cols=(labels[0] if len(labels) == 1 else labels) or None,
            batch_size=batch_size, shuffle=shuffle,
            drop_remainder=shuffle if drop_remainder is None else drop_remainder,
            collate_fn=collate_fn, collate_fn_args=collate_fn_args, prefetch=prefetch,
        )

    def serving_output(self, output: Any) -> Any:
        """v4 TF's last step of its serving function: the fields the config does not ask for
        (hidden_states, attentions, past_key_values, cross_attentions) dropped, and the tuples of
        per-layer tensors stacked into one tensor where their shapes allow. Returns the output."""
        if not isinstance(output, Mapping):
            return output
        config = self.config
        for key in list(output.keys()):
            if (
                (key.endswith("hidden_states") and not config.output_hidden_states)
                or (key == "cross_attentions" and not (config.output_attentions and config.add_cross_attention))
                or (key.endswith("attentions") and not config.output_attentions)
                or (key == "past_key_values" and not config.use_cache)
            ):
                output[key] = None
            elif isinstance(output[key], (tuple, list)):
                try:
                    output[key] = tf.convert_to_tensor(output[key])
                except (ValueError, TypeError, tf.errors.InvalidArgumentError):
                    pass  # tensors of different shapes stay a tuple, as v4
        return output

    def serving_signature(self) -> dict[str, tf.TensorSpec]:
        """The inputs of the exported model: int32 input_ids, attention_mask, token_type_ids of
        any batch and length ((batch, choices, length) for multiple choice)."""
        rank = 3 if self.head == "multiple_choice" else 2
        return {
            name: tf.TensorSpec([None] * rank, tf.int32, name=name)
            for name in ("input_ids", "attention_mask", "token_type_ids")
        }

    @property
    def input_signature(self) -> dict[str, tf.TensorSpec]:
        """v4 TF's name of `serving_signature()`."""
        return self.serving_signature()

    @property
    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        """v4 TF's inputs that build a model (`model(model.dummy_inputs)`): ones of shape (1, 2)
        ((1, 2, 2) for multiple choice) for each input of the signature, token types zero; with
        `add_cross_attention`, `encoder_hidden_states` ones (1, 2, H) too (as v4)."""
        dummies = {}
        for name, spec in self.serving_signature().items():
            shape = [1] + [2] * (len(spec.shape) - 1)
            dummies[name] = (tf.zeros if name == "token_type_ids" else tf.ones)(shape, spec.dtype)
        if self.config.add_cross_attention and "encoder_hidden_states" in inspect.signature(self.call).parameters:
            # as v4: a model with cross-attention is built with encoder states too
            dummies["encoder_hidden_states"] = tf.ones((1, 2, self.config.hidden_size), tf.float32)
        return dummies

    @tf.function
    def serving(self, inputs: Mapping[str, tf.Tensor]) -> Any:
        """v4 TF's serving function: a `tf.function` of one dict of inputs (the names of
        `input_signature`: input_ids, attention_mask, token_type_ids; the last two may be left
        out), traced per input signature as v4's (`model.serving.get_concrete_function(
        model.input_signature)` gives v4's int32 serving signature; int64 inputs trace another).
        Returns `serving_output` of the call: the output object without the fields the config
        does not ask for ({'logits'} for a classifier; a causal LM's cache stacked into one tensor
        (layers, 2, B, heads, T, head_dim), as v4)."""
        output = self.serving_output(self(dict(inputs)))
        if isinstance(output, Mapping):
            for key in list(output.keys()):  # a traced function returns tensors: a cache left a tuple is dropped
                if not isinstance(output[key], tf.Tensor):
                    output[key] = None
        return output

    def _serving_function(self) -> tf.types.experimental.GenericFunction:
        """The SavedModel's serving endpoint: a `tf.function` over `serving_signature()`
        (named arguments) returning the output fields (logits, ...) by name."""

        def serve(input_ids, attention_mask, token_type_ids):
            outputs = self(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            # A signature returns named tensors: a decoder's cache (nested tuples) is left out.
            return {name: value for name, value in outputs.items() if isinstance(value, tf.Tensor)}

        return tf.function(serve, input_signature=list(self.serving_signature().values()))

    def _trackable_children(self, save_type: str = "checkpoint", **kwargs: Any) -> dict:
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "savedmodel":
            # TFLite's converter freezes the variables a SavedModel's functions read where the object
            # graph reaches them as tf.Variables; Keras 3 holds them inside its own variables, which
            # it misses, keeping resource variables it never initialises (`tf.saved_model.save` of
            # any Keras 3 model converts to NaN logits). Keras' ExportArchive tracks the tf.Variables
            # themselves; so does this child.
            holder = tf.Module()
            holder.tf_variables = [variable.value for variable in self.variables]
            children["_tf_variables"] = holder
        return children

    @property
    def _default_save_signature(self) -> tf.types.experimental.GenericFunction:
        # What `tf.saved_model.save(model, path)` exports as `serving_default` when given no
        # signatures (TensorFlow's saver looks for this attribute; Keras' own reads shapes of a
        # first call, and would type the ids as floats).
        return self._serving_function()

    def export_saved_model(self, directory: str | os.PathLike) -> Path:
        """Write a TensorFlow SavedModel for serving (TF Serving, `tf.saved_model.load`): its
        `serving_default` signature (also the endpoint `serve`, as Keras' `export` writes) takes
        the int32 inputs of `serving_signature()` and returns the output fields (logits, ...) by
        name. `model.export(directory)`, `save_pretrained(..., saved_model=True)` and
        `tf.saved_model.save(model, directory)` write the same signature, and
        `tf.lite.TFLiteConverter.from_saved_model(directory)` converts it with TFLite's builtin ops
        (no Flex delegate). The directory appears whole or not at all (written beside it, then
        renamed; an existing one is replaced)."""
        return _framework.write_saved_model(self, Path(directory), self._serving_function())

    def export(self, filepath: str | os.PathLike, format: str = "tf_saved_model", verbose: Optional[bool] = None,
               input_signature: Any = None, **kwargs: Any) -> Any:
        """Keras 3's `model.export`. A TF SavedModel without an `input_signature` is
        `export_saved_model(filepath)` (the serving signature of named int32 inputs); other
        formats and explicit signatures go to Keras, with `serving_signature()` as the input
        when none is given (one dict argument)."""
        if format == "tf_saved_model" and input_signature is None and not kwargs:
            return self.export_saved_model(filepath)
        if input_signature is None:
            input_signature = [self.serving_signature()]
        return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)


def _unwrapped_labels(y: Any) -> Any:
    """`fit`'s y as the heads' losses and the metrics take it: a dict of one label column
    (`{"labels": ...}`, as v4 TF users pass it) is that column; QA's dict of the two positions
    stays a dict (v4's singular names renamed)."""
    if not isinstance(y, Mapping):
        return y
    y = {{"start_position": "start_positions", "end_position": "end_positions"}.get(k, k): v for k, v in y.items()}
    if "start_positions" in y:
        return y
    return next(iter(y.values())) if len(y) == 1 else y


def _input_sequence(value: Any) -> bool:
    """Whether a call's first argument is v4's list or tuple of inputs (`[ids, mask]`): a list or
    tuple of arrays, None or Python bools (flags such as `return_dict`, as v4 takes them) holding
    at least one array; not nested Python lists of ids."""
    def array(v: Any) -> bool:
        return hasattr(v, "shape") and hasattr(v, "dtype")

    return (
        isinstance(value, (list, tuple)) and any(array(v) for v in value)
        and all(v is None or type(v) is bool or array(v) for v in value)
    )


def _resized(vector: Any, n: int, fill: float) -> tf.Tensor:
    """`vector` cut or padded with `fill` to length n (a new tensor)."""
    vector = tf.convert_to_tensor(vector)
    keep = min(n, vector.shape[0])
    return tf.concat([vector[:keep], tf.fill([n - keep], tf.cast(fill, vector.dtype))], axis=0)


# ---------------------------------------------------------------------------- 12. the encoder model

def _expand_mask(keep: tf.Tensor) -> tf.Tensor:
    """A key mask (B, S) as (B, 1, 1, S). With reshape, not `[:, None, None, :]`: TFLite's builtin
    strided slice takes no new axes on a bool tensor (a converted model would need Flex ops)."""
    return tf.reshape(keep, tf.stack([tf.shape(keep)[0], 1, 1, tf.shape(keep)[1]]))


def _additive_mask(keep: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """0 where `keep`, the minimum of the compute dtype elsewhere, as float32 (the softmax runs
    in float32). Finite on purpose: a row with nothing to attend to (a padding query) gets
    uniform probabilities, never NaN."""
    return tf.where(keep, 0.0, tf.constant(dtype.min, tf.float32))


@keras.saving.register_keras_serializable(package="roberta_tf")
class TFRobertaModel(TFRobertaPreTrainedModel):
    """The RoBERTa encoder (a decoder with `is_decoder`, plus cross-attention with
    `add_cross_attention`): ids (B, T) -> states (B, T, H) and, with the pooling layer, the
    pooled first token (B, H). RoBERTa-PreLayerNorm normalises the last layer's output once more
    (`LayerNorm`) before the pooler."""

    head = "model"

    def __init__(self, config: RobertaConfig, add_pooling_layer: bool = True, *,
                 attn_implementation: Optional[str] = None, **kwargs):
        super().__init__(config, attn_implementation=attn_implementation, **kwargs)
        config = self.config  # a family class's (its model_type set)
        self.embeddings = TFRobertaEmbeddings(config, dtype=self.dtype_policy, name="embeddings")
        self.encoder = TFRobertaEncoder(config, dtype=self.dtype_policy, name="encoder")
        # RoBERTa-PreLayerNorm normalises the last layer's output once more (its layers' outputs
        # are not normalised); canonical `LayerNorm.*`, `roberta.LayerNorm.*` in a head.
        self.LayerNorm = _layer_norm(config, "LayerNorm", self.dtype_policy) if config.pre_layer_norm else None
        self.pooler = TFRobertaPooler(config, dtype=self.dtype_policy, name="pooler") if add_pooling_layer else None
        self.build()

    def build(self, input_shape=None):
        for part in (self.embeddings, self.encoder, self.pooler):
            if part is not None:
                part.build()
        if self.LayerNorm is not None:
            self.LayerNorm.build((None, None, self.config.hidden_size))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "add_pooling_layer": self.pooler is not None}

    def _final_norm(self, last_hidden_state: tf.Tensor) -> tf.Tensor:
        """RoBERTa-PreLayerNorm's LayerNorm of the last layer's output (as v4, `hidden_states`
        keep the states before it, `last_hidden_state` is after it); the states as they are else."""
        return last_hidden_state if self.LayerNorm is None else self.LayerNorm(last_hidden_state)

    def _use_fused(self, output_attentions: bool, head_mask: Optional[tf.Tensor]) -> bool:
        """The fused kernel unless this call needs what only the explicit path does: never here,
        as TF has no fused attention kernel (XLA fuses the explicit matmuls)."""
        return False

    def _past_length(self, past_key_values: Any) -> Any:
        """Cached positions, after checking the cache's layout: one (k, v) or (k, v, cross_k,
        cross_v) per layer, each (B, h, P, D). A tensor when P is known only at run time."""
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
            raise ValueError(f"each past_key_values entry must be a tuple of {' or '.join(map(str, sizes))} tensors")
        shape = tuple(entry[0].shape)
        if len(shape) != 4 or (shape[1], shape[3]) != (config.num_attention_heads, config.head_dim):
            raise ValueError(
                f"past_key_values tensors must have shape (batch, {config.num_attention_heads}, cached, "
                f"{config.head_dim}), got {shape}"
            )
        return shape[2] if shape[2] is not None else tf.shape(entry[0])[2]

    def _packing(
        self, attention_mask: Optional[tf.Tensor], unpad: bool | int, output_attentions: bool,
        head_mask: Optional[tf.Tensor], past_key_values: Any, use_cache: bool,
        encoder_hidden_states: Optional[tf.Tensor],
    ) -> Optional[Packing]:
        """The packing of an `unpad` call; None when nothing is padded, or when the call
        needs the padded layout (a cache, cross-attention, attention probabilities, head_mask,
        relative positions)."""
        packing = packing_for(attention_mask, unpad)
        if packing is not None and (
            output_attentions or head_mask is not None or self.config.position_embedding_type != "absolute"
            or past_key_values is not None or use_cache or encoder_hidden_states is not None
        ):
            _warn_once(
                "unpad does not combine with a key/value cache, cross-attention, output_attentions, "
                "head_mask or relative positions; such calls compute on the padded batch"
            )
            return None
        return packing

    def _first_token_only(
        self, output_attentions: bool, output_hidden_states: bool, past_key_values: Any, use_cache: bool,
        encoder_hidden_states: Optional[tf.Tensor], training: Any,
    ) -> bool:
        """Whether a `first_token_only` call may skip the last layer's other positions
        (`backends.first_token_only_allowed`; `training` a tensor counts as training)."""
        return backends.first_token_only_allowed(
            self.config, returns_more=output_attentions or output_hidden_states,
            cached=past_key_values is not None or use_cache, cross=encoder_hidden_states is not None,
            training=not (training is None or training is False),
        )

    def _self_attention_mask(self, attention_mask: Optional[tf.Tensor], batch: Any, length: Any,
                             past_length: Any) -> tf.Tensor:
        """The additive mask (B, 1, 1 or T, S) of the self-attention: padding, and causality
        in decoder mode."""
        S = past_length + length
        if attention_mask is None:
            keep = tf.ones(tf.stack([batch, 1, 1, S]), dtype=tf.bool)
        else:
            keep = _expand_mask(tf.not_equal(attention_mask, 0))  # (B, 1, 1, S)
        if self.config.is_decoder:
            q_pos = tf.range(past_length, S)[:, None]
            k_pos = tf.range(S)[None, :]
            keep = keep & (k_pos <= q_pos)  # (B, 1, T, S)
        return _additive_mask(keep, tf.as_dtype(self.compute_dtype))

    def call(
        self,
        input_ids: Optional[tf.Tensor] = None,
        attention_mask: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        inputs_embeds: Optional[tf.Tensor] = None,
        encoder_hidden_states: Optional[tf.Tensor] = None,
        encoder_attention_mask: Optional[tf.Tensor] = None,
        past_key_values: Optional[tuple[tuple[tf.Tensor, ...], ...]] = None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        training: bool = False,
        unpad: bool | int = False,
        first_token_only: bool = False,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions | tuple:
        """input_ids (B, T) or inputs_embeds (B, T, H); attention_mask (B, P + T) with P cached
        positions (1 = attend, 0 = padding). Returns last_hidden_state (B, T, H), pooler_output
        (B, H), and on request hidden_states, attentions, cross_attentions, past_key_values; with
        `return_dict=False` v4 TF's tuple, which never holds the cache (its encoder leaves it out).

        `unpad=True` computes on the real tokens only: they are packed into one stream (1, N, H)
        with their padded-batch positions, each sequence attends over itself, and the states are
        put back into (B, T, H) at the end, zeros at padding positions (v4 computes values there
        that nothing should read). The real positions get the same numbers as without it. It pays
        when a good part of the batch is padding; calls that need the padded layout (a cache,
        cross-attention, output_attentions, head_mask, relative positions) ignore it, with a warning.
        Under XLA the stream has the smallest of a few static sizes that holds the real tokens
        (`unpad._BUDGETS`): each is compiled, so the first call compiles longer, and a gradient
        through them much longer (to train with True, prefer `tf.function` without XLA, where
        the stream has its exact size). `unpad=N` (a token budget: an int >= the batch's real
        tokens) gives one static size instead, min(N, B * T) slots, in every mode: one encoder
        to compile; the slots after the real tokens compute padding positions, then dropped.
        A budget too small is a ValueError eagerly, a failed assertion in `tf.function`, and NaN
        outputs under XLA, never numbers that miss part of a sequence.

        `first_token_only=True` (the sequence-classification and multiple-choice heads ask for it:
        they read `<s>` alone) computes the last layer for the first position only, its query
        attending over every position: last_hidden_state is then (B, 1, H), the pooler's input the
        same; under `unpad` the last layer's queries are each row's first real token (keys and values
        from the stream), zeros where the first position is padding. Calls that return more
        (`output_hidden_states`, `output_attentions`), a cache, cross-attention, relative positions
        or training compute every position as usual.

        Ids out of range (input_ids, token_type_ids, position_ids) raise a ValueError eagerly and
        fail a graph assertion with the same words inside `tf.function`. Under XLA
        (`tf.function(jit_compile=True)`) assertions are compiled away and an out-of-range id
        reads a row of zeros or garbage without an error: check such inputs first with
        `model.check_inputs(input_ids=..., ...)`, an eager call outside the compiled function."""
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.use_return_dict if return_dict is None else return_dict
        # A cache only means something for a causal decoder (v4 ignores use_cache elsewhere).
        use_cache = (config.use_cache if use_cache is None else use_cache) and config.is_decoder

        past_length = self._past_length(past_key_values)
        check_input_dtypes(attention_mask, inputs_embeds)
        check_forward_inputs(
            config,
            input_ids=shape_of(input_ids), inputs_embeds=shape_of(inputs_embeds),
            attention_mask=shape_of(attention_mask), token_type_ids=shape_of(token_type_ids),
            position_ids=shape_of(position_ids), head_mask=shape_of(head_mask),
            encoder_hidden_states=shape_of(encoder_hidden_states),
            encoder_attention_mask=shape_of(encoder_attention_mask),
            past_length=past_length if isinstance(past_length, int) else 0,
        )
        inputs = input_ids if input_ids is not None else inputs_embeds
        B, T = tf.shape(inputs)[0], tf.shape(inputs)[1]
        checks = []
        if is_dynamic(inputs, attention_mask, token_type_ids) or not isinstance(past_length, int):
            checks = check_dynamic_shapes(config, inputs, attention_mask, token_type_ids, past_length)
        if past_key_values is not None:
            cached = past_key_values[0][0].shape[0]
            if cached is not None and inputs.shape[0] is not None and cached != inputs.shape[0]:
                raise ValueError(f"past_key_values hold a batch of {cached}, the inputs {inputs.shape[0]}")
        # Value checks before any embedding lookup runs.
        with tf.control_dependencies(checks):
            if input_ids is not None:
                input_ids = check_values("input_ids", input_ids, config.vocab_size)
            if token_type_ids is not None:
                token_type_ids = check_values("token_type_ids", token_type_ids, config.type_vocab_size)
            if position_ids is not None:
                position_ids = check_values("position_ids", position_ids, config.max_position_embeddings)

        packing = None
        if token_budget(unpad):
            packing = self._packing(
                attention_mask, unpad, output_attentions, head_mask, past_key_values, use_cache,
                encoder_hidden_states,
            )
        first_only = first_token_only and self._first_token_only(
            output_attentions, output_hidden_states, past_key_values, use_cache, encoder_hidden_states, training,
        )
        if packing is not None:
            # Positions come from the padded batch; then each input keeps its real tokens: (1, N, ...).
            if position_ids is None:
                position_ids = self.embeddings._position_ids(input_ids, inputs_embeds)
            rows = dims(inputs)[:2]

            def forward(packing: Packing) -> BaseModelOutputWithPoolingAndCrossAttentions:
                # One function of the packing: under XLA, one branch per stream size.
                def real(x: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
                    return None if x is None else unpad_rows(tf.broadcast_to(x, [*rows, *dims(x)[2:]]), packing)[None]

                embedding_output = self.embeddings(
                    real(input_ids), token_type_ids=real(token_type_ids), position_ids=real(position_ids),
                    inputs_embeds=real(inputs_embeds), training=training,
                )
                # Under `first_only`, the last layer's keys back in their padded rows (TFRobertaEncoder);
                # the packed layers read no mask.
                mask = self._self_attention_mask(attention_mask, B, T, 0) if first_only else None
                outputs = self.encoder(
                    embedding_output, attention_mask=mask, output_hidden_states=output_hidden_states,
                    training=training, is_causal=config.is_decoder, packing=packing, first_token_only=first_only,
                )
                if first_only:
                    outputs.last_hidden_state = first_positions(self._final_norm(outputs.last_hidden_state), packing)
                    return outputs
                # On the stream, so that padding positions stay zeros after repad.
                outputs.last_hidden_state = repad(self._final_norm(outputs.last_hidden_state)[0], packing)
                if outputs.hidden_states is not None:
                    outputs.hidden_states = tuple(repad(h[0], packing) for h in outputs.hidden_states)
                return outputs

            outputs = run_packed(forward, packing)
        else:
            embedding_output = self.embeddings(
                input_ids, token_type_ids=token_type_ids, position_ids=position_ids, inputs_embeds=inputs_embeds,
                past_length=past_length, training=training,
            )
            dtype = embedding_output.dtype

            mask = self._self_attention_mask(attention_mask, B, T, past_length)
            cross_mask = None
            if encoder_hidden_states is not None and encoder_attention_mask is not None:
                keep = _expand_mask(tf.not_equal(encoder_attention_mask, 0))
                cross_mask = _additive_mask(keep, dtype)  # (B, 1, 1, S)
            if head_mask is not None:
                head_mask = tf.cast(head_mask, dtype)
                if head_mask.shape.rank == 1:
                    head_mask = tf.broadcast_to(head_mask, (config.num_hidden_layers, config.num_attention_heads))
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
                training=training,
                first_token_only=first_only,
            )
            outputs.last_hidden_state = self._final_norm(outputs.last_hidden_state)
        outputs = BaseModelOutputWithPoolingAndCrossAttentions(outputs)  # the encoder's fields, and the pooled one
        if self.pooler is not None:
            outputs.pooler_output = self.pooler(outputs.last_hidden_state)
        return outputs if return_dict else outputs.to_tuple(cache=False)


def _collate_like_v4(tokenizer: Any, rows: list[dict], **options: Any) -> dict[str, np.ndarray]:
    """v4's default collators for `prepare_tf_dataset`: `label`/`label_ids` become `labels`, then
    `tokenizer.pad(rows, **options)` (DataCollatorWithPadding) or, without a tokenizer, each
    column stacked as it is (DefaultDataCollator)."""
    rows = [{("labels" if k in ("label", "label_ids") else k): v for k, v in row.items()} for row in rows]
    if tokenizer is not None:
        return dict(tokenizer.pad(rows, return_tensors="np", **options))
    return {k: np.asarray([row[k] for row in rows]) for k in rows[0]}
