"""PyTorch RoBERTa, in reading order: activations -> embeddings -> self-attention -> layer ->
encoder -> pooler -> the pretrained-model base -> RobertaModel.

The module tree and parameter names are those of Hugging Face `transformers` v4, so a module's
`named_parameters()` are the canonical keys of `roberta_core.weights` (ARCHITECTURE §3) and the same
checkpoints load. Shapes in comments: B batch, T query length, S key length (cache included),
H hidden size, h heads, D head size (H / h), V vocabulary.

This file is the master text of the three backends: `roberta_tf/modeling.py` and
`roberta_flax/modeling.py` have the same classes (with their prefix), order and comments. The
PyTorch machinery that is not the model (input checks under torch.compile, output pytrees, dtype
rules) lives in `_framework.py`, the padding-free machinery of `unpad=True` in `unpad.py`.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from typing import Any, Optional

import torch
import torch.nn.functional as F
import torch.utils._pytree as pytree  # registering a pytree node is only in torch.utils._pytree
from torch import nn
from torch.utils.checkpoint import checkpoint

from roberta_core import backends, family
from roberta_core.config import RobertaConfig, model_config, own_config
from roberta_core.generation import checkpoint_generation_config
from roberta_core.outputs import BaseModelOutputWithPastAndCrossAttentions, BaseModelOutputWithPoolingAndCrossAttentions
from roberta_core.pretrained import (
    load_pretrained,
    v4_pt_loading_info,
    pretrained_weights_file,
    push_model_to_hub,
    resolve_pretrained,
    save_pretrained_files,
    split_from_pretrained_kwargs,
)
from roberta_core.validation import check_forward_inputs, token_budget
from roberta_core.weights import check_vocab_resize

from ._framework import as_array, check_input_dtypes, check_values, resolve_device, resolve_dtype, shape_of
from .convert import _computed_buffers, from_canonical, to_canonical
from .peft_integration import PeftAdapterMixin, one_cache, pretrained_adapter
from .unpad import Packing, _nothing_masked, first_positions, first_rows, pack, packed_attention, packing_for, repad, unpad_rows

__all__ = [
    "ACT2FN",
    "ATTN_IMPLEMENTATIONS",
    "RobertaEmbeddings",
    "RobertaCache",
    "fused_attention",
    "explicit_attention",
    "RobertaSelfAttention",
    "RobertaSelfOutput",
    "RobertaAttention",
    "RobertaIntermediate",
    "RobertaOutput",
    "RobertaLayer",
    "RobertaEncoder",
    "RobertaPooler",
    "RobertaPreTrainedModel",
    "RobertaModel",
    # Re-exported from `_framework` and `unpad`, where they live.
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
ATTN_IMPLEMENTATIONS = backends.get("pt").attn_implementations
ATTN_ALIASES = dict(backends.get("pt").attn_aliases)


# ---------------------------------------------------------------------------- 1. activations

def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    # GPT-2's tanh approximation of GELU (v4's gelu_new and gelu_accurate).
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def _gelu_fast(x: torch.Tensor) -> torch.Tensor:
    # The same approximation with the constants folded the other way; rounds differently.
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _laplace(x: torch.Tensor, mu: float = 0.707107, sigma: float = 0.282095) -> torch.Tensor:
    # MEGA's bounded activation: the normal CDF around mu.
    return 0.5 * (1.0 + torch.erf((x - mu) / (sigma * math.sqrt(2.0))))


# Every name of roberta_core.config.ACTIVATIONS, with v4's formula for it.
ACT2FN = {
    "gelu": F.gelu,  # exact, erf-based
    "gelu_python": F.gelu,  # the same function; v4 spelled it out in Python
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": _gelu_fast,
    "gelu_accurate": _gelu_tanh,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "gelu_10": lambda x: torch.clamp(F.gelu(x), -10.0, 10.0),
    "relu": F.relu,
    "relu2": lambda x: torch.square(F.relu(x)),
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,  # slope 0.01, nn.LeakyReLU's default
    "silu": F.silu,
    "swish": F.silu,
    "mish": F.mish,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
    "laplace": _laplace,
}


class _Activation(nn.Module):
    """An ACT2FN function as a module, as v4's ACT2FN gives one: `intermediate.intermediate_act_fn`
    is then a submodule, so a forward hook on it (activation steering, statistics) sees its calls."""

    def __init__(self, name: str):
        super().__init__()
        self.name, self.fn = name, ACT2FN[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


# ---------------------------------------------------------------------------- 2. embeddings

def position_ids_from_input_ids(input_ids: torch.Tensor, padding_idx: int, past_length: int = 0) -> torch.Tensor:
    """RoBERTa's positions (fairseq's `make_positions`): real tokens count up from
    padding_idx + 1 (after `past_length` cached ones), padding tokens get padding_idx. (B, T) -> (B, T)"""
    real = input_ids.ne(padding_idx).int()
    return (torch.cumsum(real, dim=1).type_as(real) + past_length) * real + padding_idx


# v4's module-level name (`transformers.models.roberta.modeling_roberta.create_position_ids_from_input_ids`,
# whose third parameter is `past_key_values_length`); v4's test suite and user code import it from here.
def _create_position_ids_from_input_ids(
    input_ids: torch.Tensor, padding_idx: int, past_key_values_length: int = 0
) -> torch.Tensor:
    return position_ids_from_input_ids(input_ids, padding_idx, past_key_values_length).long()


create_position_ids_from_input_ids = _create_position_ids_from_input_ids


class RobertaEmbeddings(nn.Module):
    """Token ids (B, T) -> vectors (B, T, H): word + token type + absolute position embeddings,
    then LayerNorm and dropout. With relative position types the position table is still
    there (checkpoints hold it) but not added."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.padding_idx = config.pad_token_id
        self.position_embedding_type = config.position_embedding_type
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=self.padding_idx)
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=self.padding_idx
        )
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        # `LayerNorm`, not snake case: the name is part of every checkpoint's keys.
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self._register_buffers(config.max_position_embeddings)

    def _register_buffers(self, length: int, device: Optional[torch.device] = None) -> None:
        # v4's buffers, not in the state dict (persistent=False): `position_ids` (1, P) 0 .. P-1 and
        # `token_type_ids` (1, P) zeros, the token types of a call without them. A model built on the
        # meta device registers them again where its word table lands (`convert._computed_buffers`).
        self.register_buffer("position_ids", torch.arange(length, device=device)[None, :], persistent=False)
        self.register_buffer("token_type_ids", torch.zeros((1, length), dtype=torch.long, device=device),
                             persistent=False)

    def _position_ids(
        self, input_ids: Optional[torch.Tensor], inputs_embeds: Optional[torch.Tensor], past_length: int = 0
    ) -> torch.Tensor:
        """Positions when none are given: (B, T) from the padding in the ids, or (1, T) counting
        from the first position for embeddings (they do not say which tokens are padding)."""
        if input_ids is not None:
            return position_ids_from_input_ids(input_ids, self.padding_idx, past_length)
        T = inputs_embeds.shape[1]
        start = self.padding_idx + 1 + past_length
        return torch.arange(start, start + T, device=inputs_embeds.device)[None, :]  # (1, T)

    def _positions_of_embeds(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """v4's `create_position_ids_from_inputs_embeds`: (B, T) sequential positions from
        padding_idx + 1 (embeddings do not say which tokens are padding)."""
        return self._position_ids(None, inputs_embeds).expand(inputs_embeds.shape[:2])

    create_position_ids_from_inputs_embeds = _positions_of_embeds  # v4's method name

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        past_key_values_length: int = 0,
    ) -> torch.Tensor:
        if position_ids is None:
            position_ids = self._position_ids(input_ids, inputs_embeds, past_key_values_length)
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # (B, T, H)
        if token_type_ids is None:
            # Every token is of type 0: v4's `token_type_ids` buffer, (1, T) expanded to (B, T) (a
            # packed stream longer than the buffer takes zeros of its own).
            B, T = inputs_embeds.shape[:2]
            if T <= self.token_type_ids.shape[1]:
                token_type_ids = self.token_type_ids[:, :T].expand(B, T)
            else:
                token_type_ids = self.token_type_ids.new_zeros((B, T))
        token_type_embeddings = self.token_type_embeddings(token_type_ids)
        embeddings = inputs_embeds + token_type_embeddings
        if self.position_embedding_type == "absolute":
            embeddings = embeddings + self.position_embeddings(position_ids)
        embeddings = self.LayerNorm(embeddings)
        return self.dropout(embeddings)


# ---------------------------------------------------------------------------- 3. self-attention

_warned: set[str] = set()


def _warn_once(message: str) -> None:
    # Dynamo cannot trace warnings.warn: a compiled call stays silent, an eager one says it.
    if message not in _warned and not torch.compiler.is_compiling():
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


def fused_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: Optional[torch.Tensor],
    *,
    dropout_p: float = 0.0,
    is_causal: bool = False,
) -> torch.Tensor:
    """The fast attention core: PyTorch's fused kernels (flash, memory-efficient, or the C++
    math path). q (B, h, T, D), k/v (B, h, S, D), additive mask broadcastable to (B, h, T, S)
    or None -> context (B, h, T, D). A None mask lets the fastest kernels run."""
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal)


def explicit_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: Optional[torch.Tensor],
    *,
    dropout: nn.Module,
    head_mask: Optional[torch.Tensor] = None,
    position_scores: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The explicit attention core, for what the fused kernels cannot do: return the
    probabilities, scale them per head (`head_mask`), add relative-position scores.
    q (B, h, T, D), k/v (B, h, S, D) -> context (B, h, T, D), probabilities (B, h, T, S)."""
    scores = torch.matmul(query, key.transpose(-1, -2))  # (B, h, T, S)
    if position_scores is not None:
        scores = scores + position_scores
    scores = scores / math.sqrt(query.shape[-1])
    # Softmax in float32: half-precision scores plus the mask's large negative values lose
    # the small differences that decide the probabilities.
    scores = scores.float()
    if mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1).to(query.dtype)
    # Dropping whole keys to attend to, as in the original Transformer.
    probs = dropout(probs)
    if head_mask is not None:
        probs = probs * head_mask
    return torch.matmul(probs, value), probs


class _CacheLayer:
    """One layer's cached keys and values, each (B, h, S, D); None until the first update (v4's
    DynamicLayer: code reads `.keys` and `.values`)."""

    def __init__(self) -> None:
        self.keys: Optional[torch.Tensor] = None
        self.values: Optional[torch.Tensor] = None

    def get_seq_length(self) -> int:
        return 0 if self.keys is None or self.keys.numel() == 0 else self.keys.shape[-2]


class _DynamicCache:
    """The keys and values of one kind of attention (self or cross), one `_CacheLayer` per layer,
    growing along the positions: v4's DynamicCache, the methods its callers use."""

    def __init__(self, num_layers: int = 0):
        self.layers = [_CacheLayer() for _ in range(num_layers)]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, cache_kwargs: Optional[dict] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new keys and values (B, h, T, D) to layer `layer_idx`'s and return all it
        holds, (B, h, S, D). `cache_kwargs` (v4's) is accepted and unused."""
        while len(self.layers) <= layer_idx:
            self.layers.append(_CacheLayer())
        layer = self.layers[layer_idx]
        if layer.keys is None:
            layer.keys, layer.values = key_states, value_states
        else:
            layer.keys = torch.cat([layer.keys, key_states], dim=-2)
            layer.values = torch.cat([layer.values, value_states], dim=-2)
        return layer.keys, layer.values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.layers[layer_idx].get_seq_length() if layer_idx < len(self.layers) else 0

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, layer_idx: int) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        if layer_idx >= len(self.layers):
            raise KeyError(f"Cache only has {len(self.layers)} layers, attempted to access layer with index {layer_idx}")
        return self.layers[layer_idx].keys, self.layers[layer_idx].values

    def __iter__(self):
        return iter([(layer.keys, layer.values) for layer in self.layers])

    def to_legacy_cache(self) -> tuple[tuple[Optional[torch.Tensor], Optional[torch.Tensor]], ...]:
        return tuple((layer.keys, layer.values) for layer in self.layers)

    def _apply(self, fn) -> None:
        # `fn` on the keys and values of every layer that holds some.
        for layer in self.layers:
            if layer.get_seq_length() > 0:
                layer.keys, layer.values = fn(layer.keys), fn(layer.values)

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        self._apply(lambda x: x.index_select(0, beam_idx.to(x.device)))

    def crop(self, max_length: int) -> None:
        for layer in self.layers:
            length = layer.get_seq_length()
            keep = length - abs(max_length) if max_length < 0 else max_length
            if length > keep:
                layer.keys, layer.values = layer.keys[..., :keep, :], layer.values[..., :keep, :]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._apply(lambda x: x[indices, ...])

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._apply(lambda x: x.repeat_interleave(repeats, dim=0))

    def __repr__(self) -> str:
        return f"DynamicCache(layers={['DynamicLayer'] * len(self.layers)})".replace("'", "")


class RobertaCache:
    """The key/value cache a decoder returns with `use_cache=True`: v4's EncoderDecoderCache (what
    transformers 4.57 returns here), without importing transformers. `self_attention_cache` holds
    each layer's keys and values (B, h, S, D), growing with every step; `cross_attention_cache` the
    cross-attention's over the encoder's states, computed on the first step and reused
    (`is_updated[layer]` says they are there). Passed back as `past_key_values`, the model appends
    the new step's keys and values to it in place and returns this same object.

    What v4 code does with it works: `len(cache)` (layers), `cache[i]` and iteration give v4's
    (k, v, cross_k, cross_v) per layer, the cross pair None without cross-attention;
    `get_seq_length()`, `to_legacy_cache()` (as v4: 4 entries per layer when the cross cache has
    layers, else (k, v)), `from_legacy_cache`, `reorder_cache`, `crop`, `batch_select_indices`,
    `batch_repeat_interleave`. v4's RobertaForCausalLM takes it as `past_key_values` too (a cache
    whose `update` it calls for the self-attention); with cross-attention, give v4
    `EncoderDecoderCache.from_legacy_cache(cache.to_legacy_cache())` instead (v4 keeps the cross
    keys apart only in its own class)."""

    def __init__(self, self_attention_cache: Any = None, cross_attention_cache: Any = None):
        self.self_attention_cache = _DynamicCache() if self_attention_cache is None else self_attention_cache
        self.cross_attention_cache = _DynamicCache() if cross_attention_cache is None else cross_attention_cache
        self.is_updated = {i: self.cross_attention_cache.get_seq_length(i) > 0
                           for i in range(len(self.cross_attention_cache))}

    @classmethod
    def for_layers(cls, num_layers: int) -> "RobertaCache":
        """An empty cache of `num_layers` layers, self and cross (what a forward with
        `use_cache=True` and no cache makes, as v4's `DynamicCache(config=config)` pair)."""
        return cls(_DynamicCache(num_layers), _DynamicCache(num_layers))

    @classmethod
    def from_legacy_cache(cls, past_key_values: Any) -> "RobertaCache":
        """The cache of legacy tuples: (k, v) or (k, v, cross_k, cross_v) per layer, each
        (B, h, S, D); a cross pair of None is no cross-attention cache."""
        cache = cls()
        for i, entry in enumerate(past_key_values or ()):
            cache.self_attention_cache.update(entry[0], entry[1], i)
            if len(entry) > 2 and entry[2] is not None:
                cache.cross_attention_cache.update(entry[2], entry[3], i)
                cache.is_updated[i] = True
        return cache

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, cache_kwargs: Optional[dict] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The self-attention's update (what v4's model calls on a cache that is not its
        EncoderDecoderCache): append (B, h, T, D), return the layer's (B, h, S, D)."""
        return self.self_attention_cache.update(key_states, value_states, layer_idx, cache_kwargs)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Cached positions of the self-attention."""
        return self.self_attention_cache.get_seq_length(layer_idx)

    def __len__(self) -> int:
        return len(self.self_attention_cache)

    def _entry(self, i: int) -> tuple[Optional[torch.Tensor], ...]:
        cross = self.cross_attention_cache
        cross_kv = cross[i] if -len(cross) <= i < len(cross) else (None, None)
        return self.self_attention_cache[i] + tuple(cross_kv)

    def __getitem__(self, layer_idx: int | slice) -> tuple:
        """Layer `layer_idx`'s (k, v, cross_k, cross_v), as v4 (a KeyError past the last layer);
        a slice gives those of the layers it selects (legacy tuples)."""
        if isinstance(layer_idx, slice):
            return tuple(self._entry(i) for i in range(len(self))[layer_idx])
        if layer_idx >= len(self):
            raise KeyError(f"Cache only has {len(self)} layers, attempted to access layer with index {layer_idx}")
        return self._entry(layer_idx)

    def __iter__(self):
        return iter([self._entry(i) for i in range(len(self))])

    def to_legacy_cache(self) -> tuple[tuple[Optional[torch.Tensor], ...], ...]:
        own = self.self_attention_cache.to_legacy_cache()
        if len(self.cross_attention_cache) == 0:
            return own
        return tuple(s + c for s, c in zip(own, self.cross_attention_cache.to_legacy_cache()))

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        """Keep the batch rows `beam_idx` (B',) in this order (beam search)."""
        self.self_attention_cache.reorder_cache(beam_idx)
        self.cross_attention_cache.reorder_cache(beam_idx)

    def crop(self, maximum_length: int) -> None:
        """Keep the first `maximum_length` positions of the self-attention (negative: drop that
        many from the end); the cross-attention's stay whole, as v4."""
        self.self_attention_cache.crop(maximum_length)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the batch rows `indices`."""
        self.self_attention_cache.batch_select_indices(indices)
        self.cross_attention_cache.batch_select_indices(indices)

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat each batch row `repeats` times."""
        self.self_attention_cache.batch_repeat_interleave(repeats)
        self.cross_attention_cache.batch_repeat_interleave(repeats)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(self_attention_cache={self.self_attention_cache!r}, "
                f"cross_attention_cache={self.cross_attention_cache!r})")


def _register_cache_pytrees() -> None:
    """Make the cache classes torch pytree nodes (their tensors the leaves), so a compiled or
    exported forward may take and return them, as it did the legacy tuples."""

    def dynamic(cache: _DynamicCache) -> tuple[list, None]:
        return [(layer.keys, layer.values) for layer in cache.layers], None

    def dynamic_back(entries: list, _: None) -> _DynamicCache:
        cache = _DynamicCache(len(entries))
        for layer, (keys, values) in zip(cache.layers, entries):
            layer.keys, layer.values = keys, values
        return cache

    def roberta(cache: RobertaCache) -> tuple[list, tuple]:
        return [cache.self_attention_cache, cache.cross_attention_cache], tuple(sorted(cache.is_updated.items()))

    def roberta_back(parts: list, is_updated: tuple) -> RobertaCache:
        # Not through __init__, which reads the leaves (a tree_map may put any value there).
        cache = RobertaCache.__new__(RobertaCache)
        cache.self_attention_cache, cache.cross_attention_cache = parts
        cache.is_updated = dict(is_updated)
        return cache

    for cls, flatten, unflatten, names in ((_DynamicCache, dynamic, dynamic_back, None),
                                           (RobertaCache, roberta, roberta_back,
                                            ("self_attention_cache", "cross_attention_cache"))):
        if cls in pytree.SUPPORTED_NODES:
            continue

        def with_keys(cache: Any, flatten=flatten, names=names) -> tuple[list, Any]:
            children, context = flatten(cache)
            keys = [pytree.GetAttrKey(n) for n in names] if names else [pytree.SequenceKey(i) for i in range(len(children))]
            return list(zip(keys, children)), context

        pytree.register_pytree_node(cls, flatten, unflatten, serialized_type_name=f"{cls.__module__}.{cls.__name__}",
                                    flatten_with_keys_fn=with_keys)


_register_cache_pytrees()


def _is_cache(past_key_values: Any) -> bool:
    """Whether `past_key_values` is a cache object with v4's API (its `update` takes a layer's new
    keys and values): v4's DynamicCache or EncoderDecoderCache, v5's, a RobertaCache. The model
    writes into such a cache in place; legacy tuples are read."""
    return hasattr(past_key_values, "update") and not isinstance(past_key_values, (tuple, list, dict))


class _LayerCache:
    """One layer's view of the call's cache object (`_is_cache`): the encoder passes one to each
    layer as `past_key_values`, and the attention modules write their keys and values into it as
    v4's do into its Cache (so each module returns what v4's returns: its states and the attention
    probabilities, no cache). An encoder-decoder cache (`self_attention_cache`,
    `cross_attention_cache`, `is_updated`) keeps the cross-attention's keys and values from the
    first step; a plain cache (v4's DynamicCache) holds the self-attention's only, and the
    cross-attention computes its keys again each call (v4 would append them to the self-attention's
    layer). `read_only` (gradient checkpointing, which reruns a layer): the cached keys come first,
    the cache is not written."""

    def __init__(self, cache: Any, layer_idx: int, read_only: bool = False):
        self.cache, self.layer_idx, self.read_only = cache, layer_idx, read_only
        self.cross = all(hasattr(cache, a) for a in ("self_attention_cache", "cross_attention_cache", "is_updated"))

    def cross_past(self) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """The cross-attention's cached (key, value), each (B, h, S, D), once computed; else None."""
        if self.cross and self.cache.is_updated.get(self.layer_idx):
            layer = self.cache.cross_attention_cache.layers[self.layer_idx]
            return layer.keys, layer.values
        return None

    def update(
        self, key: torch.Tensor, value: torch.Tensor, cross: bool, cache_position: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this call's (key, value) (B, h, T, D) and return all the attention reads, cached
        positions first (B, h, S, D)."""
        i = self.layer_idx
        if cross:
            if self.cross and not self.read_only:
                key, value = self.cache.cross_attention_cache.update(key, value, i, {"cache_position": None})
                self.cache.is_updated[i] = True
            return key, value
        own = self.cache.self_attention_cache if self.cross else self.cache
        if self.read_only:
            layers = getattr(own, "layers", ())
            layer = layers[i] if i < len(layers) else None
            if layer is None or layer.keys is None or layer.keys.numel() == 0:
                return key, value
            return torch.cat([layer.keys, key], dim=-2), torch.cat([layer.values, value], dim=-2)
        return own.update(key, value, i, {"cache_position": cache_position})


class RobertaSelfAttention(nn.Module):
    """Multi-head attention of a sequence over itself (or, as cross-attention, over the
    encoder's states), with an optional key/value cache and relative position scores.
    (B, T, H) -> (B, T, H)."""

    def __init__(self, config: RobertaConfig, position_embedding_type: Optional[str] = None):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.position_embedding_type = position_embedding_type or config.position_embedding_type
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            # One vector per distance -(P-1) .. P-1, shared by all heads (Shaw et al.; Huang et al.).
            self.max_position_embeddings = config.max_position_embeddings
            self.distance_embedding = nn.Embedding(2 * config.max_position_embeddings - 1, self.head_dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, T, D)

    def _relative_scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Scores from the distance between query and key positions, (B, h, T, S). The queries
        are the last T of the S positions (the first S - T are cached)."""
        T, S = query.shape[2], key.shape[2]
        q_pos = torch.arange(S - T, S, device=query.device)[:, None]  # (T, 1)
        k_pos = torch.arange(S, device=query.device)[None, :]  # (1, S)
        distance = self.distance_embedding(q_pos - k_pos + self.max_position_embeddings - 1)  # (T, S, D)
        distance = distance.to(query.dtype)
        scores = torch.einsum("bhtd,tsd->bhts", query, distance)
        if self.position_embedding_type == "relative_key_query":
            scores = scores + torch.einsum("bhsd,tsd->bhts", key, distance)
        return scores

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        past_key_values: Optional[_LayerCache] = None,
        output_attentions: bool = False,
        cache_position: Optional[torch.Tensor] = None,
        *,
        use_fused: bool = True,
        is_causal: bool = False,
        packing: Optional[Packing] = None,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Returns the context (B, T, H) and the probabilities (B, h, T, S) when `output_attentions`
        (else None), as v4. `past_key_values`: the layer's view of the cache, whose cached keys and
        values come first and which takes this call's (key, value) (B, h, T, D). `cache_position` is
        v4's argument, passed to the cache's `update` as v4 does (the cache's length says where the
        new positions start). With `packing`
        the states are a packed stream (1, N, H) and each sequence attends over itself only; with
        `packing` and `encoder_hidden_states` (a first-only last layer), the source is the stream
        and the queries padded rows: keys and values go back into their padded rows, for the mask."""
        B, T, H = hidden_states.shape
        cross = encoder_hidden_states is not None
        cached = past_key_values.cross_past() if cross and past_key_values is not None else None
        # `query`, `key` and `value` are called as modules in every mode, training included: a
        # wrapper (LoRA, a quantised layer) or a forward hook on them must see every call.
        query = self._split_heads(self.query(hidden_states))  # (B, h, T, D)
        if cached is not None:
            # Cross-attention: the encoder's keys and values were computed on the first step.
            key, value = cached
        else:
            source = encoder_hidden_states if cross else hidden_states
            key, value = self.key(source), self.value(source)
            if packing is not None and cross:
                key, value = repad(key[0], packing), repad(value[0], packing)  # (1, N, H) -> (B, S, H)
            key, value = self._split_heads(key), self._split_heads(value)  # (B, h, S, D)
            if past_key_values is not None:
                # The cache takes this call's keys and values and gives back all it holds (v4's
                # `update`): in a decoder step the cached positions come first, (B, h, S, D).
                key, value = past_key_values.update(key, value, cross, cache_position)

        if packing is not None and not cross:
            dropout_p = self.dropout.p if self.training else 0.0
            context = packed_attention(query, key, value, packing, dropout_p=dropout_p, is_causal=is_causal)
            probs = None
        elif use_fused:
            dropout_p = self.dropout.p if self.training else 0.0
            context = fused_attention(query, key, value, attention_mask, dropout_p=dropout_p, is_causal=is_causal)
            probs = None
        else:
            position_scores = None
            if self.position_embedding_type != "absolute":
                position_scores = self._relative_scores(query, key)
            context, probs = explicit_attention(
                query, key, value, attention_mask,
                dropout=self.dropout, head_mask=head_mask, position_scores=position_scores,
            )
        # (B, T, h * D): H, unless heads were pruned (`RobertaAttention.prune_heads`)
        context = context.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim)
        return context, (probs if output_attentions else None)


# ---------------------------------------------------------------------------- 4. self-output

class RobertaSelfOutput(nn.Module):
    """Projects the attention context back and adds it to the block's input, then LayerNorm
    (post-LayerNorm; RoBERTa-PreLayerNorm normalised the input instead and has no LayerNorm here)."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = None if config.pre_layer_norm else nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.dense(hidden_states)) + input_tensor
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return hidden_states


# ---------------------------------------------------------------------------- 5. attention block

def _kept_rows(layer: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new linear layer holding `layer`'s weight at `index` along `dim` (0: output rows, with
    their biases; 1: input columns, the bias whole): v4's `prune_linear_layer`, dtype kept."""
    weight = layer.weight.index_select(dim, index)
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=layer.bias is not None,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if layer.bias is not None:
            new.bias.copy_(layer.bias if dim == 1 else layer.bias[index])
    return new


class RobertaAttention(nn.Module):
    """Self-attention (or cross-attention) followed by its output projection and residual. Under
    RoBERTa-PreLayerNorm its own LayerNorm normalises the input first (the queries' side only:
    the encoder's states of cross-attention are taken as they are); the residual adds the input
    as it came."""

    def __init__(self, config: RobertaConfig, position_embedding_type: Optional[str] = None):
        super().__init__()
        self.self = RobertaSelfAttention(config, position_embedding_type)
        self.output = RobertaSelfOutput(config)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.pre_layer_norm else None
        self.pruned_heads: set[int] = set()  # v4's: the heads removed, numbered as in the config

    def prune_heads(self, heads: Any) -> None:
        """Remove attention heads (v4's method): `heads` are numbered as in the config, those
        already pruned skipped. The query, key and value projections lose the heads' output rows
        (h * D -> h' * D), the output projection their input columns; every attention path then
        computes with the heads left."""
        attention = self.self
        heads = {int(h) for h in heads} - self.pruned_heads
        if not heads:
            return
        total = attention.num_heads + len(self.pruned_heads)
        if any(not 0 <= h < total for h in heads):
            raise ValueError(f"heads to prune must be in 0 .. {total - 1}, got {sorted(heads)}")
        # A head's position now: its number less the pruned heads before it.
        gone = {h - sum(p < h for p in self.pruned_heads) for h in heads}
        D = attention.head_dim
        keep = torch.tensor([i for i in range(attention.num_heads * D) if i // D not in gone],
                            dtype=torch.long, device=attention.query.weight.device)
        attention.query = _kept_rows(attention.query, keep, 0)
        attention.key = _kept_rows(attention.key, keep, 0)
        attention.value = _kept_rows(attention.value, keep, 0)
        self.output.dense = _kept_rows(self.output.dense, keep, 1)
        attention.num_heads -= len(heads)
        self.pruned_heads |= heads

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        past_key_values: Optional[_LayerCache] = None,
        output_attentions: bool = False,
        cache_position: Optional[torch.Tensor] = None,
        *,
        use_fused: bool = True,
        is_causal: bool = False,
        packing: Optional[Packing] = None,
        first_only: bool = False,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Returns the new states and the probabilities (None unless `output_attentions`), as v4.
        `first_only`: the first token's state only, (B, 1, H): its query attends over every
        position (the encoder's last layer when a head reads `<s>` alone). Under `packing` the
        states are the stream (1, N, H): each row's first real token queries its row's keys."""
        normed = hidden_states if self.LayerNorm is None else self.LayerNorm(hidden_states)
        # The states positional, the rest by name: v4's call, which forward pre-hooks expect.
        if first_only:
            # Attention of the first query over the block's own states: keys and values from all.
            first = (lambda x: x[:, :1]) if packing is None else (lambda x: first_rows(x, packing))
            context, probs = self.self(
                first(normed), attention_mask=attention_mask, head_mask=head_mask, encoder_hidden_states=normed,
                output_attentions=output_attentions, use_fused=use_fused, packing=packing,
            )
            return self.output(context, first(hidden_states)), probs
        context, probs = self.self(
            normed,
            attention_mask=attention_mask,
            head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states,
            past_key_values=past_key_values,
            output_attentions=output_attentions,
            cache_position=cache_position,
            use_fused=use_fused,
            is_causal=is_causal,
            packing=packing,
        )
        return self.output(context, hidden_states), probs


# ---------------------------------------------------------------------------- 6. intermediate

class RobertaIntermediate(nn.Module):
    """The feed-forward block's expansion: (B, T, H) -> (B, T, intermediate_size), then the
    activation; under RoBERTa-PreLayerNorm a LayerNorm of the input comes first."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.pre_layer_norm else None
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = _Activation(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return self.intermediate_act_fn(self.dense(hidden_states))


# ---------------------------------------------------------------------------- 7. output

class RobertaOutput(nn.Module):
    """The feed-forward block's projection back to H, with dropout, residual and LayerNorm (none
    under RoBERTa-PreLayerNorm, as in the self-output)."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = None if config.pre_layer_norm else nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.dense(hidden_states)) + input_tensor
        if self.LayerNorm is not None:
            hidden_states = self.LayerNorm(hidden_states)
        return hidden_states


# ---------------------------------------------------------------------------- 8. layer

class RobertaLayer(nn.Module):
    """One Transformer block: self-attention, cross-attention over the encoder's states (decoder
    with `add_cross_attention`), feed-forward. (B, T, H) -> (B, T, H)."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.attention = RobertaAttention(config)
        if config.add_cross_attention:
            if not config.is_decoder:
                raise ValueError("add_cross_attention=True needs a decoder: build the config with is_decoder=True")
            # v4: cross-attention positions are absolute whatever the config says.
            self.crossattention = RobertaAttention(config, position_embedding_type="absolute")
        self.intermediate = RobertaIntermediate(config)
        self.output = RobertaOutput(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        past_key_values: Optional[_LayerCache] = None,
        output_attentions: bool = False,
        cache_position: Optional[torch.Tensor] = None,
        *,
        use_fused: bool = True,
        is_causal: bool = False,
        packing: Optional[Packing] = None,
        first_only: bool = False,
    ) -> tuple[Optional[torch.Tensor], ...]:
        """Returns, as v4, the new states and the self-attention probabilities, then with
        cross-attention its probabilities (probabilities None unless asked). This layer's cache
        entry goes into `past_key_values`. `first_only`: the first token's new state only,
        (B, 1, H) (see RobertaAttention)."""
        attention_output, self_probs = self.attention(
            hidden_states,
            attention_mask=attention_mask,
            head_mask=head_mask,
            output_attentions=output_attentions,
            past_key_values=past_key_values,
            cache_position=cache_position,
            use_fused=use_fused,
            is_causal=is_causal,
            packing=packing,
            first_only=first_only,
        )
        outputs: tuple[Optional[torch.Tensor], ...] = (self_probs,)
        if encoder_hidden_states is not None:
            attention_output, cross_probs = self.crossattention(
                attention_output,
                attention_mask=encoder_attention_mask,
                head_mask=head_mask,
                encoder_hidden_states=encoder_hidden_states,
                past_key_values=past_key_values,
                output_attentions=output_attentions,
                cache_position=cache_position,
                use_fused=use_fused,
            )
            outputs = outputs + (cross_probs,)
        layer_output = self.output(self.intermediate(attention_output), attention_output)
        return (layer_output,) + outputs


# ---------------------------------------------------------------------------- 9. encoder

class RobertaEncoder(nn.Module):
    """The stack of layers. Collects, on request, every layer's input states and attention
    probabilities; fills the key/value cache; recomputes activations in the backward pass under
    gradient checkpointing."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.layer = nn.ModuleList([RobertaLayer(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        use_fused: bool = True,
        is_causal: bool = False,
        packing: Optional[Packing] = None,
        first_token_only: bool = False,
        cache_position: Optional[torch.Tensor] = None,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        """`past_key_values`: a cache object (`_is_cache`), which each layer fills in place and
        which is returned, or legacy tuples (one (k, v) or (k, v, cross_k, cross_v) per layer), read
        into a new RobertaCache; with `use_cache` and no cache, a new empty one (v4's encoder makes
        its EncoderDecoderCache so). The returned `past_key_values`: the cache, unless it was made
        here without `use_cache`.

        `first_token_only`: the last layer computes the first token's state only (the caller
        checked that nothing else is read): last_hidden_state (B, 1, H). Under `packing` that layer
        takes each row's first real token from the stream as its query, and the keys and values of
        the stream put back into their padded rows, under `attention_mask`, their padding mask."""
        checkpointing = self.gradient_checkpointing and self.training
        if checkpointing and use_cache:
            _warn_once("use_cache=True does not combine with gradient checkpointing in training; no cache is returned")
            use_cache = False
        cache = past_key_values
        if cache is not None and not _is_cache(cache):
            cache = RobertaCache.from_legacy_cache(cache)
        elif cache is None and use_cache:
            cache = RobertaCache.for_layers(len(self.layer))
        returned = cache if use_cache or _is_cache(past_key_values) else None
        all_hidden = [] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        all_cross = [] if output_attentions and encoder_hidden_states is not None else None
        for i, layer in enumerate(self.layer):
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            # A layer rerun in the backward pass must not append its keys twice: read only.
            layer_cache = None if cache is None else _LayerCache(cache, i, read_only=checkpointing)
            # v4's call: the first four positional (as gradient checkpointing passes them), the rest
            # by name, which forward pre-hooks on a layer expect.
            args = (hidden_states, attention_mask, None if head_mask is None else head_mask[i], encoder_hidden_states)
            kwargs = dict(
                encoder_attention_mask=encoder_attention_mask, past_key_values=layer_cache,
                output_attentions=output_attentions, cache_position=cache_position,
                use_fused=use_fused, is_causal=is_causal, packing=packing,
                first_only=first_token_only and i == len(self.layer) - 1,
            )
            if checkpointing:
                # Keep only the layer's input; rerun it (same dropout masks) in the backward pass.
                outputs = checkpoint(layer, *args, use_reentrant=False, **kwargs)
            else:
                outputs = layer(*args, **kwargs)
            hidden_states = outputs[0]
            if all_attentions is not None:
                all_attentions.append(outputs[1])
            if all_cross is not None:
                all_cross.append(outputs[2])
        if all_hidden is not None:
            all_hidden.append(hidden_states)
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states,
            hidden_states=None if all_hidden is None else tuple(all_hidden),
            past_key_values=returned,
            attentions=None if all_attentions is None else tuple(all_attentions),
            cross_attentions=None if all_cross is None else tuple(all_cross),
        )


# ---------------------------------------------------------------------------- 10. pooler

class RobertaPooler(nn.Module):
    """The sequence summary of BERT's next-sentence task: the first token's state (B, H) through
    dense + tanh. RoBERTa dropped that task; multiple choice still uses it."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()  # a module, as v4's: hooks on `pooler.activation` see its calls

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden_states[:, 0]))


# ---------------------------------------------------------------------------- 11. pretrained-model base

class RobertaPreTrainedModel(nn.Module, PeftAdapterMixin):
    """Base of RobertaModel and the six heads: weight initialisation as v4, checkpoint loading
    and saving, embeddings access and resizing, tying, gradient checkpointing.

    Subclasses set `head` (a key of `roberta_core.weights.HEADS`), build their modules in
    `__init__(config, *, attn_implementation=None)` from `self.config` (a family class's copy of
    `config`, `roberta_core.family.config_for_class`) and end it with `self.post_init()`.
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
    # Modules accelerate's device maps keep whole (v4's values; RobertaModel's below).
    _no_split_modules = ["RobertaEmbeddings", "RobertaSelfAttention", "RobertaSdpaSelfAttention"]
    # Parameters tied to others, which peft and accelerate skip (v4: None but on the LM heads).
    _tied_weights_keys: Optional[list[str]] = None
    # v4 4.57's values on RobertaPreTrainedModel (and PreTrainedModel's defaults), read by code
    # around a model (accelerate, peft, Trainer, generation).
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = False
    _can_compile_fullgraph = False
    _is_stateful = False
    _keep_in_fp32_modules: Optional[list[str]] = None
    _keep_in_fp32_modules_strict: Optional[list[str]] = None
    _skip_keys_device_placement: Optional[list[str]] = None
    # Regular expressions of keys left out of the loading report (`output_loading_info`) and of
    # the saved keys: none for RoBERTa.
    _keys_to_ignore_on_load_missing: Optional[list[str]] = None
    _keys_to_ignore_on_load_unexpected: Optional[list[str]] = None
    _keys_to_ignore_on_save: Optional[list[str]] = None
    is_parallelizable = False
    framework = "pt"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None):
        config = model_config(config)  # ours, or a v4 transformers config converted
        super().__init__()
        # A family class (`XLMRobertaForMaskedLM`, ...) sets its model_type; a Roberta* class keeps the config's.
        self.config = config = family.config_for_class(type(self), config)
        self.base_model_prefix = config.base_model_prefix
        # v4's model attribute: where from_pretrained read it (peft records it as an adapter's base model).
        self.name_or_path = config.name_or_path
        # The one check of every backend: None is the default, the other backends' names map here.
        self.attn_implementation = backends.resolve_attn_implementation(
            "pt", config._attn_implementation if attn_implementation is None else attn_implementation)
        config._attn_implementation = self.attn_implementation  # as v4's: the path the model runs
        self.warnings_issued: dict[str, bool] = {}  # v4's: the warnings given once per model

    def post_init(self) -> None:
        """Prune the heads the config names (the encoder itself: a head's was pruned when built),
        tie the LM decoder to the embeddings, then initialise every parameter as v4 does."""
        if self.config.pruned_heads and "roberta" not in self._modules:
            self.base_model._prune_heads(self.config.pruned_heads)
        # v4's backward compatibility: a config carrying `gradient_checkpointing=True` (older
        # transformers wrote it) turns it on, and the attribute is consumed (not saved again).
        if self.supports_gradient_checkpointing and getattr(self.config, "gradient_checkpointing", False):
            self.gradient_checkpointing_enable()
            try:
                delattr(self.config, "gradient_checkpointing")
            except AttributeError:
                pass
        self.tie_weights()
        # The encoder inside a head initialised itself when it was built; a tied parameter is
        # initialised once, by its owner.
        seen = {id(p) for m in self.children() if isinstance(m, RobertaPreTrainedModel) for p in m.parameters()}
        for module in self.modules():
            for name, param in module.named_parameters(recurse=False):
                if id(param) not in seen:
                    seen.add(id(param))
                    self._init_parameter(module, name, param)

    def _init_parameter(self, module: nn.Module, name: str, param: torch.Tensor) -> None:
        """v4's initialisation: normal(0, initializer_range) for linear and embedding weights
        (the padding row zero), zero biases, LayerNorm weight one and bias zero."""
        with torch.no_grad():
            if isinstance(module, nn.LayerNorm):
                param.fill_(1.0 if name == "weight" else 0.0)
            elif name == "bias":  # linear biases and lm_head.bias
                param.zero_()
            else:
                param.normal_(0.0, self.config.initializer_range)
                if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                    param[module.padding_idx].zero_()

    # ------------------------------------------------------------------ structure
    @property
    def base_model(self) -> "RobertaModel":
        """The encoder: the model itself for RobertaModel, `self.roberta` for a head."""
        return getattr(self, "roberta", self)

    @property
    def roberta_prelayernorm(self) -> "RobertaModel":
        """v4's name of a RoBERTa-PreLayerNorm head's encoder: `self.roberta` under another name
        (read-only; the parameters keep their canonical `roberta.` names). Only on PreLN heads."""
        if not self.config.pre_layer_norm or "roberta" not in self._modules:
            raise AttributeError(f"{type(self).__name__} has no roberta_prelayernorm: not a RoBERTa-PreLayerNorm head")
        return self._modules["roberta"]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @classmethod
    def can_generate(cls) -> bool:
        """Whether the class has `generate()` (v4's test: the causal LM alone)."""
        return callable(getattr(cls, "generate", None))

    def set_attn_implementation(self, attn_implementation: Optional[str]) -> None:
        """Switch the attention path of this model and the encoder inside it (v4's method)."""
        resolved = backends.resolve_attn_implementation("pt", attn_implementation)
        for module in self.modules():
            if isinstance(module, RobertaPreTrainedModel):
                module.attn_implementation = module.config._attn_implementation = resolved

    def get_memory_footprint(self, return_buffers: bool = True) -> int:
        """Bytes of the parameters, and of the buffers with `return_buffers` (v4's method)."""
        tensors = list(self.parameters()) + (list(self.buffers()) if return_buffers else [])
        return sum(t.nelement() * t.element_size() for t in tensors)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.word_embeddings

    def enable_input_require_grads(self) -> None:
        """Make the input embeddings' output require gradients, so gradient checkpointing has a
        graph to recompute while the embeddings are frozen (adapters; v4's method, a forward hook)."""

        def make_inputs_require_grads(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            output.requires_grad_(True)

        self._require_grads_hook = self.get_input_embeddings().register_forward_hook(make_inputs_require_grads)

    def disable_input_require_grads(self) -> None:
        """Remove the hook of `enable_input_require_grads`."""
        self._require_grads_hook.remove()

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Put `value` (any module: v4 takes any) in place of the word embeddings, as v4 does:
        nothing else changes (`config.vocab_size`, an LM decoder keeps the weight it had until the
        next `tie_weights()`). Input ids are checked against the new table's rows."""
        self.base_model.embeddings.word_embeddings = value

    def get_output_embeddings(self) -> Optional[nn.Linear]:
        """The LM decoder (V, H) of the LM heads; None elsewhere."""
        lm_head = getattr(self, "lm_head", None)
        return None if lm_head is None else lm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        """The LM heads' v4 method: `new_embeddings` becomes `lm_head.decoder`. Elsewhere v4's
        base method reads `self.lm_head`, an AttributeError on a model without one."""
        if "lm_head" not in self._modules:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute 'lm_head'")
        self.lm_head.decoder = new_embeddings

    def get_decoder(self) -> nn.Module:
        """v4's lookup of the decoder: `self.decoder`, else `self.model` (its `get_decoder()`),
        else the model itself (every RoBERTa class)."""
        if hasattr(self, "decoder"):
            return self.decoder
        if hasattr(self, "model"):
            inner = self.model
            return inner.get_decoder() if hasattr(inner, "get_decoder") and type(inner) is not type(self) else inner
        return self

    def set_decoder(self, decoder: nn.Module) -> None:
        """v4's setter mirroring `get_decoder`: nothing to set on a RoBERTa class."""
        if hasattr(self, "decoder"):
            self.decoder = decoder
        elif hasattr(self, "model"):
            inner = self.model
            if hasattr(inner, "set_decoder"):
                inner.set_decoder(decoder)
            else:
                self.model = decoder

    # ------------------------------------------------------------------ v4's helpers
    @property
    def dummy_inputs(self) -> dict[str, torch.Tensor]:
        """v4's: a (3, 5) batch of ids for tracing."""
        return {"input_ids": torch.tensor([[7, 6, 0, 0, 1], [1, 2, 3, 0, 0], [0, 0, 0, 4, 5]])}

    def estimate_tokens(self, input_dict: dict[str, Any]) -> int:
        """v4's: the elements of `input_dict["input_ids"]`; 0 (with a warning, once) without them."""
        if self.main_input_name in input_dict:
            return input_dict[self.main_input_name].numel()
        if "estimate_tokens" not in self.warnings_issued:
            warnings.warn("Could not estimate the number of tokens of the input, floating-point operations will "
                          "not be computed", stacklevel=2)
            self.warnings_issued["estimate_tokens"] = True
        return 0

    def floating_point_ops(self, input_dict: dict[str, Any], exclude_embeddings: bool = True) -> int:
        """v4's estimate of a training step's operations: 6 x tokens x parameters (the embedding
        tables left out with `exclude_embeddings`)."""
        return 6 * self.estimate_tokens(input_dict) * self.num_parameters(exclude_embeddings=exclude_embeddings)

    def invert_attention_mask(self, encoder_attention_mask: torch.Tensor) -> torch.Tensor:
        """v4's: a (B, S) or (B, T, S) mask of ones and zeros as an additive mask (B, 1, 1 or T, S)
        in the model's dtype: 0 where 1, the dtype's minimum where 0."""
        if encoder_attention_mask.dim() == 3:
            extended = encoder_attention_mask[:, None, :, :]
        elif encoder_attention_mask.dim() == 2:
            extended = encoder_attention_mask[:, None, None, :]
        else:
            raise ValueError(f"encoder_attention_mask must be 2-D or 3-D, got {tuple(encoder_attention_mask.shape)}")
        extended = extended.to(dtype=self.dtype)
        return (1.0 - extended) * torch.finfo(self.dtype).min

    def get_head_mask(
        self, head_mask: Optional[torch.Tensor], num_hidden_layers: int, is_attention_chunked: bool = False
    ) -> torch.Tensor | list[None]:
        """v4's: a head mask (h,) or (layers, h) as (layers, 1, h, 1, 1) in the model's dtype
        (one more trailing axis with `is_attention_chunked`); None: a None per layer."""
        if head_mask is None:
            return [None] * num_hidden_layers
        if head_mask.dim() == 1:
            head_mask = head_mask[None, None, :, None, None].expand(num_hidden_layers, -1, -1, -1, -1)
        elif head_mask.dim() == 2:
            head_mask = head_mask[:, None, :, None, None]  # a mask per layer
        if head_mask.dim() != 5:
            raise ValueError(f"head_mask must be (heads,), (layers, heads) or 5-D, got {head_mask.dim()} dimensions")
        head_mask = head_mask.to(dtype=self.dtype)
        return head_mask.unsqueeze(-1) if is_attention_chunked else head_mask

    def prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        """Remove attention heads, {layer: [heads]} (v4's method): the config's `pruned_heads`
        takes them (so a save records them, as v4's), then each layer's attention loses them."""
        # A config never set gives a fresh {} each time: set it. Layers as ints (JSON's are strings).
        pruned = {int(layer): list(heads) for layer, heads in self.config.pruned_heads.items()}
        for layer, heads in heads_to_prune.items():
            pruned[layer] = list(set(pruned.get(layer, [])) | set(heads))
        self.config.pruned_heads = pruned
        self.base_model._prune_heads(heads_to_prune)

    def _prune_heads(self, heads_to_prune: dict[Any, Any]) -> None:
        # Layer numbers may be strings (a config read from JSON).
        for layer, heads in heads_to_prune.items():
            self.base_model.encoder.layer[int(layer)].attention.prune_heads(heads)

    def tie_weights(self) -> None:
        """Make the LM decoder use the word embeddings (when `tie_word_embeddings`) and
        `lm_head.bias` as its bias: one parameter each, as in every RoBERTa checkpoint."""
        lm_head = getattr(self, "lm_head", None)
        if lm_head is None:
            return
        if self.config.tie_word_embeddings:
            lm_head.decoder.weight = self.get_input_embeddings().weight
        lm_head.decoder.bias = lm_head.bias

    def resize_token_embeddings(
        self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """Grow or shrink the vocabulary to `new_num_tokens` rows, keeping the rows both sizes
        share. New rows are the mean of the old ones (v4's `mean_resizing`; it keeps the
        softmax of the tied decoder from favouring them) or, with `mean_resizing=False`, drawn
        like fresh weights. The LM head's bias (and an untied decoder) follow. `pad_to_multiple_of`
        rounds the size up (v4's option); with neither size given, nothing changes (as v4)."""
        if pad_to_multiple_of is not None and (isinstance(pad_to_multiple_of, bool) or not isinstance(pad_to_multiple_of, int)):
            raise ValueError(  # v4's words (its test suite matches them)
                f"Asking to pad the embedding matrix to a multiple of `{pad_to_multiple_of}`, which is not and integer. "
                "Please make sure to pass an integer"
            )
        new_num_tokens = check_vocab_resize(self.config, new_num_tokens, pad_to_multiple_of)
        if new_num_tokens is None:
            return self.get_input_embeddings()
        old = self.get_input_embeddings()
        keep = min(old.num_embeddings, new_num_tokens)
        new = nn.Embedding(new_num_tokens, old.embedding_dim, padding_idx=old.padding_idx,
                           device=old.weight.device, dtype=old.weight.dtype)
        self._init_parameter(new, "weight", new.weight)
        with torch.no_grad():
            new.weight[:keep] = old.weight[:keep]
            if mean_resizing and new_num_tokens > keep:
                new.weight[keep:] = old.weight.float().mean(dim=0).to(old.weight.dtype)
        new.weight.requires_grad_(old.weight.requires_grad)
        self.base_model.embeddings.word_embeddings = new
        lm_head = getattr(self, "lm_head", None)
        if lm_head is not None:
            untied = not self.config.tie_word_embeddings
            # v4: a tied decoder's bias is padded with zeros; an untied LM head is resized on its
            # own, its new rows (and bias entries) the mean of the old ones under `mean_resizing`.
            fill = lm_head.bias.detach().float().mean().item() if untied and mean_resizing else 0.0
            lm_head.bias = nn.Parameter(_resized(lm_head.bias, new_num_tokens, fill=fill))
            if untied:
                old_decoder = lm_head.decoder.weight
                decoder = nn.Linear(old.embedding_dim, new_num_tokens, device=old.weight.device, dtype=old.weight.dtype)
                self._init_parameter(decoder, "weight", decoder.weight)
                with torch.no_grad():
                    decoder.weight[:keep] = old_decoder[:keep]
                    if mean_resizing and new_num_tokens > keep:
                        decoder.weight[keep:] = old_decoder.float().mean(dim=0).to(old_decoder.dtype)
                decoder.weight.requires_grad_(old_decoder.requires_grad)
                lm_head.decoder = decoder
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return new

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Number of parameters, each tied parameter counted once."""
        embeddings = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        return sum(
            p.numel()
            for p in self.parameters()
            if (p.requires_grad or not only_trainable) and not (exclude_embeddings and id(p) in embeddings)
        )

    def get_extended_attention_mask(
        self,
        attention_mask: torch.Tensor,
        input_shape: tuple[int, ...],
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> torch.Tensor:
        """v4's method: the additive mask (B, 1, 1 or T, S) of a padding mask (B, S) (causal too in
        a decoder; cached positions are the first S - T) or of a 3-D mask (B, T, S): 0 where a
        query attends, the dtype's minimum (default the model's) elsewhere. `device` (deprecated in
        v4) is unused: the mask's device is the result's."""
        if attention_mask.dim() not in (2, 3):
            raise ValueError(
                f"attention_mask must be (batch, length) or (batch, length, length), got {tuple(attention_mask.shape)}"
            )
        B, T = input_shape[:2]
        keep = self.base_model._keep_mask(attention_mask, B, T, attention_mask.shape[-1] - T, attention_mask.device)
        return _additive_mask(keep, self.dtype if dtype is None else dtype)

    # ------------------------------------------------------------------ gradient checkpointing
    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Optional[dict] = None) -> None:
        """Trade compute for memory in training: keep only each layer's input and recompute
        the layer in the backward pass. (v4's `gradient_checkpointing_kwargs` is accepted;
        the non-reentrant variant is always used.)"""
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
        device: Any = None,
        strict: bool = False,
        ignore_mismatched_sizes: bool = False,
        attn_implementation: Optional[str] = None,
        **kwargs: Any,
    ) -> "RobertaPreTrainedModel" | tuple["RobertaPreTrainedModel", dict[str, list]]:
        """Load a checkpoint directory (or a Hub repo id, through the Hugging Face cache) in any
        of the four weight formats (safetensors, sharded too; pytorch_model.bin; tf_model.h5;
        flax_model.msgpack), in evaluation mode.

        Another head's checkpoint loads too (a MaskedLM checkpoint into a classifier): the unused
        and the newly initialised keys are reported in one warning (an error under `strict`).
        A shape mismatch (e.g. `num_labels`) is an error unless `ignore_mismatched_sizes`: v4's
        RuntimeError ("Error(s) in loading state_dict for ...: size mismatch for ..."), which is
        also a `CheckpointKeyError` (`weights.StateDictSizeMismatchError`).
        `dtype`: None (float32, as v4), 'auto' (the checkpoint's), or a torch dtype.

        The file read is v4's choice: model.safetensors (or its sharded index), else
        pytorch_model.bin (or its index), then the TF and Flax files; `use_safetensors=False`
        skips safetensors, `use_safetensors=True` reads nothing else (OSError without it),
        `from_tf=True`/`from_flax=True` put tf_model.h5/flax_model.msgpack first, `variant='fp16'`
        reads v4's variant files (`model.fp16.safetensors`, `pytorch_model.fp16.bin`, their
        indexes) only: OSError when there are none.

        The other keywords sort as v4's: config fields (`num_labels=5`, `is_decoder=True`) change
        the config; the model's own arguments go to it (`add_pooling_layer=False` builds a
        RobertaModel without pooler, `torch_dtype` is v4's older name of `dtype`); loading options
        are honoured (`subfolder`; the Hub's `revision`, `cache_dir`, `local_files_only`, `token`
        for a repo id; `device_map` (see `_framework.resolve_device`); `output_loading_info=True`:
        returns (model, {"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"})) or
        accepted and never written into the config (`low_cpu_mem_usage`: loading already holds
        one copy). Any other keyword is a TypeError.

        The model is built on the meta device and takes the loaded arrays without copying them
        where dtype and device allow, so loading holds about one copy of the weights.
        """
        path = pretrained_model_name_or_path  # v4's parameter name
        state_dict = kwargs.pop("state_dict", None)
        if state_dict is not None and path is not None:  # v4's words
            raise ValueError("`state_dict` cannot be passed together with a model name or a `gguf_file`. "
                             "Use one of the two loading strategies.")
        if path is None:
            # v4's `from_pretrained(None, config=config, state_dict=sd)`: the weights come from the dict.
            return cls._from_state_dict(config, state_dict, dtype=dtype, device=device, strict=strict,
                                        attn_implementation=attn_implementation, **kwargs)
        # v4: a folder or repo holding a peft adapter loads the base model it names, then the adapter.
        adapter = pretrained_adapter(path, kwargs)
        path = path if adapter is None else adapter.base_model_name_or_path
        config = own_config(config)  # v4's transformers.RobertaConfig too
        init_keywords = [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "config")]
        overrides, model_kwargs, options = split_from_pretrained_kwargs(
            cls.__name__, kwargs, model_keywords=("torch_dtype", *init_keywords)
        )
        dtype = model_kwargs.pop("torch_dtype", dtype)  # v4's older spelling
        model_kwargs.pop("attn_implementation", None)  # the explicit argument above
        pooled = bool(model_kwargs["add_pooling_layer"]) if "add_pooling_layer" in model_kwargs else None
        device = resolve_device(device, options.get("device_map"))

        directory = resolve_pretrained(path, options, prefer="safetensors", config_given=config is not None,
                                       generation=cls.can_generate())
        weights_file = pretrained_weights_file(directory, options, prefer="safetensors")  # v4's choice of file
        if config is None:
            config, overrides = cls.config_class.from_pretrained(directory, **overrides), {}
        # The keys to load are those of the model this class builds: a family class sets its model_type first.
        # A shape mismatch is v4's RuntimeError ("Error(s) in loading state_dict for ...") and our CheckpointKeyError.
        config = family.config_for_class(cls, config)
        config, state, plan = load_pretrained(
            directory, cls.head, config=config, strict=strict,
            ignore_mismatched_sizes=ignore_mismatched_sizes, pooled=pooled, weights_file=weights_file,
            v4_mismatch_owner=cls.__name__, **overrides,
        )
        # As v4, whether the config was read or given: the folder or Hub id as given (not the
        # cache's folder), on the model's own copy.
        config.name_or_path = path
        dtype = resolve_dtype(dtype, state, config.dtype)
        with torch.device("meta"):
            model = cls(config, attn_implementation=attn_implementation, **model_kwargs)
        from_canonical(model, state, allow_missing=True, dtype=dtype, device=device, consume=True)
        model.tie_weights()
        model._materialize_missing(dtype, device)
        model.eval()
        model.config.dtype = next(model.parameters()).dtype  # as v4: the torch dtype the weights have
        if model.can_generate():
            model.generation_config = checkpoint_generation_config(directory, model.config)  # as v4
        if adapter is not None:
            adapter.load_into(model)
        if options.get("output_loading_info"):
            return model, model._loading_info(plan)
        return model

    @classmethod
    def _from_state_dict(
        cls, config: Any, state_dict: Optional[dict[str, torch.Tensor]], *, dtype: Any, device: Any,
        strict: bool, attn_implementation: Optional[str], **kwargs: Any,
    ) -> "RobertaPreTrainedModel" | tuple["RobertaPreTrainedModel", dict[str, list]]:
        """`from_pretrained(None, config=..., state_dict=...)` (v4's): the model `config` builds,
        with the dict's weights; keys may carry the encoder prefix or not, as v4 takes them (a bare
        model's dict into a head and back). Keys the model lacks are reported as unexpected,
        parameters the dict lacks keep v4's initialisation (missing)."""
        if state_dict is None or config is None:
            raise ValueError("from_pretrained(None, ...) needs `config=` and `state_dict=`: there is no folder to read")
        init_keywords = [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "config")]
        overrides, model_kwargs, options = split_from_pretrained_kwargs(
            cls.__name__, kwargs, model_keywords=("torch_dtype", *init_keywords)
        )
        dtype = model_kwargs.pop("torch_dtype", dtype)
        model_kwargs.pop("attn_implementation", None)
        if isinstance(config, (str, os.PathLike)):
            config = cls.config_class.from_pretrained(config, **overrides)
        else:
            config = own_config(config).copy(**overrides) if overrides else own_config(config)
        model = cls(config, attn_implementation=attn_implementation, **model_kwargs)
        own = model.state_dict()
        prefix = f"{model.base_model_prefix}."
        has_base = "roberta" in model._modules
        state = {}
        for key, value in state_dict.items():
            name = key
            if has_base and name not in own and f"roberta.{name}" in own:
                name = f"roberta.{name}"
            elif not has_base and name not in own and name.startswith(("roberta.", prefix)):
                name = name.split(".", 1)[1]
            state[name] = value
        unexpected = sorted(k for k in state if k not in own)
        result = model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        # the LM decoder's tied names: v4 reports them missing only when their owners are too
        tied = {"lm_head.decoder.bias"} if "lm_head.bias" in state else set()
        if model.config.tie_word_embeddings and "roberta.embeddings.word_embeddings.weight" in state:
            tied.add("lm_head.decoder.weight")
        missing = sorted(k for k in result.missing_keys if k not in tied)
        if strict and (missing or unexpected):
            raise RuntimeError(f"Error(s) in loading state_dict for {cls.__name__}: missing {missing}, unexpected {unexpected}")
        model.tie_weights()
        dtype = resolve_dtype(dtype, {k: as_array(v) for k, v in list(state_dict.items())[:1]}, config.dtype)
        model.to(device=resolve_device(device, options.get("device_map")), dtype=dtype)
        model.eval()
        model.name_or_path = model.config.name_or_path = ""
        if options.get("output_loading_info"):
            return model, {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": [],
                           "error_msgs": []}
        return model

    def _loading_info(self, plan: Any) -> dict[str, list]:
        """v4 PyTorch's `output_loading_info` for this model (`v4_pt_loading_info`). Keys keep
        their canonical `roberta.` names on every family class (the checkpoint reader gives a
        RoBERTa-PreLayerNorm file's `roberta_prelayernorm.` keys so), as the loader reads them."""
        shared: dict[int, list[str]] = {}
        for name, param in self.named_parameters(remove_duplicate=False):
            shared.setdefault(id(param), []).append(name)
        return v4_pt_loading_info(
            plan, list(self.state_dict()), prefix="roberta", has_base="roberta" in self._modules,
            tied_groups=[names for names in shared.values() if len(names) > 1],
            buffers=[name for name, _ in self.named_buffers()],
            ignore_missing=self._keys_to_ignore_on_load_missing,
            ignore_unexpected=self._keys_to_ignore_on_load_unexpected,
        )

    def _materialize_missing(self, dtype: torch.dtype, device: torch.device) -> None:
        """Give the parameters the checkpoint lacked (still on the meta device) real storage
        and v4's initialisation; a parameter shared by two modules stays shared."""
        made: dict[int, nn.Parameter] = {}
        for module in self.modules():
            for name, param in list(module.named_parameters(recurse=False)):
                if not param.is_meta:
                    continue
                if id(param) not in made:
                    made[id(param)] = nn.Parameter(torch.empty(param.shape, dtype=dtype, device=device))
                    self._init_parameter(module, name, made[id(param)])
                setattr(module, name, made[id(param)])
        _computed_buffers(self)  # v4's position_ids/token_type_ids, where the word table now is

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        format: Optional[str] = None,
        max_shard_size: int | str | None = None,
        safe_serialization: Optional[bool] = None,
        variant: Optional[str] = None,
        state_dict: Optional[dict[str, torch.Tensor]] = None,
        is_main_process: bool = True,
        push_to_hub: bool = False,
        **hub_kwargs: Any,
    ) -> None:
        """Write `config.json` and the weights, atomically: `format='safetensors'` (default,
        PyTorch names, metadata {'format': 'pt'}; sharded above `max_shard_size`) or 'bin'
        (`pytorch_model.bin`; v4's `safe_serialization=False` means the same), both sharded as v4
        shards them above `max_shard_size` (`pytorch_model-00001-of-00003.bin` +
        `pytorch_model.bin.index.json`); `variant='fp16'` writes v4's variant names
        (`model.fp16.safetensors`, `pytorch_model.fp16.bin`), leaving the other variants' files. The config records
        the weights' dtype, as v4's. v4's `state_dict` (what Trainer and accelerate pass: this
        model's keys, e.g. gathered from several processes) is written instead of the model's
        parameters; `is_main_process` is accepted (every file is written atomically, so processes
        writing the same folder cannot leave a mixed file)."""
        directory = save_directory  # v4's parameter name
        if format is None:
            format = "bin" if safe_serialization is False else "safetensors"
        if format not in ("safetensors", "bin"):
            raise ValueError(f"the PyTorch backend saves format 'safetensors' or 'bin', got {format!r}")
        if self._hf_peft_config_loaded:  # v4: a model carrying peft adapters saves the active adapter alone
            return self._save_adapter_pretrained(directory, format=format, state_dict=state_dict,
                                                 push_to_hub=push_to_hub, **hub_kwargs)
        state = to_canonical(self)
        if state_dict is not None:
            missing = [key for key in state if key not in state_dict]
            if missing:
                raise ValueError(f"state_dict lacks {len(missing)} of this model's keys: {', '.join(missing[:4])}")
            state = {key: as_array(state_dict[key]) for key in state}
        config = self.config.copy(dtype=str(next(self.parameters()).dtype).rpartition(".")[2])
        save_pretrained_files(
            directory, config, state, self.head, format=format, max_shard_size=max_shard_size, variant=variant,
            push_to_hub=push_to_hub, generation_config=getattr(self, "generation_config", None), **hub_kwargs,
        )

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """v4's `model.push_to_hub(repo_id)`: `save_pretrained` into a temporary folder, uploaded
        to the Hub in one commit (`roberta_core.pretrained.push_model_to_hub`; needs `[hub]`)."""
        return push_model_to_hub(self.save_pretrained, repo_id, **kwargs)


def _resized(vector: torch.Tensor, n: int, fill: float) -> torch.Tensor:
    """`vector` cut or padded with `fill` to length n (a new tensor)."""
    out = torch.full((n,), fill, dtype=vector.dtype, device=vector.device)
    keep = min(n, vector.shape[0])
    out[:keep] = vector.detach()[:keep]
    return out


# ---------------------------------------------------------------------------- 12. the encoder model

def _additive_mask(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where `keep`, the dtype's minimum elsewhere. Finite on purpose: a row with nothing to
    attend to (a padding query) gets uniform probabilities, never NaN."""
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


def _legacy_cache(past_key_values: Any) -> Optional[tuple[tuple[torch.Tensor, ...], ...]]:
    """`past_key_values` as legacy tuples: one (k, v) or (k, v, cross_k, cross_v) per layer, or
    None when nothing is cached. Also reads cache objects by their methods (transformers is not
    imported): `to_legacy_cache()` (v4), or v5's `self_attention_cache`/`cross_attention_cache` and
    `layers` (each with `.keys`, `.values`); the model reads so those it cannot write into (no
    `update`: `_is_cache`). Entries (k, v, None, None) are self-attention only."""
    if past_key_values is None:
        return None
    if hasattr(past_key_values, "to_legacy_cache"):
        past_key_values = past_key_values.to_legacy_cache()
    elif hasattr(past_key_values, "self_attention_cache"):
        own = _legacy_cache(past_key_values.self_attention_cache) or ()
        cross = _legacy_cache(past_key_values.cross_attention_cache) or ((),) * len(own)
        past_key_values = tuple(s + c for s, c in zip(own, cross))
    elif hasattr(past_key_values, "layers"):
        past_key_values = tuple((layer.keys, layer.values) for layer in past_key_values.layers)
    if not isinstance(past_key_values, (tuple, list)):
        return past_key_values  # refused with its reason by RobertaModel._past_length
    entries = tuple(
        tuple(t for t in entry if t is not None) if isinstance(entry, (tuple, list)) else entry
        for entry in past_key_values
    )
    # An empty cache (v4 builds one before the first step; its layers hold nothing yet): no past.
    return None if all(isinstance(e, tuple) and not e for e in entries) else entries


def _self_attention_entries(past_key_values: Any) -> tuple:
    """The self-attention's cached (key, value) per layer, each (B, h, P, D): the first two of each
    legacy entry, or a cache object's layers (`.layers`, or its `to_legacy_cache()`); () when a
    cache object holds nothing yet."""
    if not _is_cache(past_key_values):
        return tuple(entry[:2] for entry in past_key_values)
    if past_key_values.get_seq_length() == 0:
        return ()
    own = getattr(past_key_values, "self_attention_cache", past_key_values)
    if hasattr(own, "layers"):
        return tuple((layer.keys, layer.values) for layer in own.layers)
    return tuple(tuple(entry)[:2] for entry in own.to_legacy_cache())


class RobertaModel(RobertaPreTrainedModel):
    """The RoBERTa encoder (a decoder with `is_decoder`, plus cross-attention with
    `add_cross_attention`): ids (B, T) -> states (B, T, H) and, with the pooling layer, the
    pooled first token (B, H)."""

    head = "model"
    _no_split_modules = ["RobertaEmbeddings", "RobertaLayer"]

    def __init__(
        self, config: RobertaConfig, add_pooling_layer: bool = True, *, attn_implementation: Optional[str] = None
    ):
        super().__init__(config, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        self.embeddings = RobertaEmbeddings(config)
        self.encoder = RobertaEncoder(config)
        # RoBERTa-PreLayerNorm normalises the last layer's output once more (its layers' outputs
        # are not normalised); canonical `LayerNorm.*`, `roberta.LayerNorm.*` in a head.
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.pre_layer_norm else None
        self.pooler = RobertaPooler(config) if add_pooling_layer else None
        self.post_init()

    def _use_fused(self, output_attentions: bool, head_mask: Optional[torch.Tensor]) -> bool:
        """The fused kernel unless this call needs what only the explicit path does (v4's
        fallback, said once)."""
        if self.attn_implementation == "eager":
            return False
        if output_attentions or head_mask is not None or self.config.position_embedding_type != "absolute":
            _warn_once(
                "sdpa attention cannot return attention probabilities, apply head_mask or add relative "
                "position scores; using eager attention for such calls. Build the model with "
                "attn_implementation='eager' to silence this."
            )
            return False
        return True

    def _past_length(self, past_key_values: Any) -> int:
        """Cached positions, after checking the cache's layout: legacy tuples, one (k, v) or (k, v,
        cross_k, cross_v) per layer, or a cache object's self-attention layers (an empty one: 0),
        each (B, h, P, D)."""
        if past_key_values is None:
            return 0
        config = self.config
        if _is_cache(past_key_values):
            past_key_values = _self_attention_entries(past_key_values)
            if not past_key_values:
                return 0
        if not isinstance(past_key_values, (tuple, list)) or len(past_key_values) != config.num_hidden_layers:
            raise ValueError(
                f"past_key_values must hold one entry per layer ({config.num_hidden_layers}), "
                f"as returned with use_cache=True (or be a v4 DynamicCache/EncoderDecoderCache)"
            )
        sizes = (2, 4) if config.add_cross_attention else (2,)
        entry = past_key_values[0]
        if len(entry) not in sizes:
            raise ValueError(f"each past_key_values entry must be a tuple of {' or '.join(map(str, sizes))} tensors")
        shape = tuple(entry[0].shape)
        heads = self.encoder.layer[0].attention.self.num_heads  # fewer than the config's once pruned
        if len(shape) != 4 or (shape[1], shape[3]) != (heads, config.head_dim):
            raise ValueError(
                f"past_key_values tensors must have shape (batch, {heads}, cached, "
                f"{config.head_dim}), got {shape}"
            )
        return shape[2]

    def _packing(
        self, attention_mask: Optional[torch.Tensor], unpad: bool | int, use_fused: bool, past_key_values: Any,
        use_cache: bool, encoder_hidden_states: Optional[torch.Tensor],
    ) -> Optional[Packing]:
        """The packing of an `unpad` forward; None when nothing is padded, or when the call
        needs the padded layout (a cache, cross-attention, what only explicit attention does)."""
        square = attention_mask is not None and attention_mask.dim() == 3
        packing = None if square else packing_for(attention_mask, unpad)
        if square or packing is not None and (
            not use_fused or past_key_values is not None or use_cache or encoder_hidden_states is not None
        ):
            _warn_once(
                "unpad=True does not combine with a key/value cache, cross-attention, output_attentions, "
                "head_mask, relative positions or a 3-D attention_mask; such calls compute on the padded batch"
            )
            return None
        return packing

    def _first_token_only(
        self, output_attentions: bool, output_hidden_states: bool, past_key_values: Any, use_cache: bool,
        encoder_hidden_states: Optional[torch.Tensor], attention_mask: Optional[torch.Tensor],
    ) -> bool:
        """Whether a `first_token_only` call may skip the last layer's other positions
        (`backends.first_token_only_allowed`; training: any module in training mode, as
        Monte-Carlo dropout switches the dropouts alone), no 3-D attention_mask gives each query its
        own row, and no forward hook watches the model or a part of it (it might read the last states)."""
        if attention_mask is not None and attention_mask.dim() == 3:
            return False
        modules = list(self.modules())  # one walk for both questions (every call of a classification head)
        allowed = backends.first_token_only_allowed(
            self.config, returns_more=output_attentions or output_hidden_states,
            cached=past_key_values is not None or use_cache, cross=encoder_hidden_states is not None,
            training=any(m.training for m in modules),
        )
        hooks = (nn.modules.module._global_forward_hooks, nn.modules.module._global_forward_pre_hooks)
        return allowed and not any(hooks) and not any(m._forward_hooks or m._forward_pre_hooks for m in modules)

    def _keep_mask(
        self, attention_mask: Optional[torch.Tensor], batch: int, length: int, past_length: int, device: torch.device
    ) -> torch.Tensor:
        """Which keys each query may attend to, (B, 1, 1 or T, S) bool: the padding mask (B, S),
        in a decoder also causal; a 3-D mask (B, T, S) is taken as it is (v4 adds no causal mask to it)."""
        S = past_length + length
        if attention_mask is None:
            keep = torch.ones((batch, 1, 1, S), dtype=torch.bool, device=device)
        elif attention_mask.dim() == 3:
            return attention_mask.bool()[:, None]  # (B, 1, T, S)
        else:
            keep = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
        if self.config.is_decoder:
            q_pos = torch.arange(past_length, S, device=device)[:, None]
            k_pos = torch.arange(S, device=device)[None, :]
            keep = keep & (k_pos <= q_pos)  # (B, 1, T, S)
        return keep

    def _self_attention_mask(
        self,
        attention_mask: Optional[torch.Tensor],
        batch: int,
        length: int,
        past_length: int,
        dtype: torch.dtype,
        device: torch.device,
        use_fused: bool,
    ) -> tuple[Optional[torch.Tensor], bool]:
        """The additive mask (B, 1, 1 or T, S) of the self-attention and whether the fused kernel
        should apply the causal mask itself. (None, ...) when nothing is masked, so the fast kernels run."""
        causal = self.config.is_decoder and (attention_mask is None or attention_mask.dim() == 2)
        if _nothing_masked(attention_mask):
            if not causal or length == 1:
                return None, False  # one new token may see every cached one
            if use_fused and past_length == 0:
                return None, True
        return _additive_mask(self._keep_mask(attention_mask, batch, length, past_length, device), dtype), False

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        past_key_values: Any = None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        cache_position: Optional[torch.Tensor] = None,
        unpad: bool | int = False,
        first_token_only: bool = False,
        cache: Any = None,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions | tuple:
        """input_ids (B, T) or inputs_embeds (B, T, H); attention_mask (B, P + T) with P cached
        positions (1 = attend, 0 = padding), or (B, T, P + T), a row per query (v4's 3-D mask, taken
        as it is: no causal mask added; it computes on the padded batch). position_ids (B, T), (1, T)
        or (T,). past_key_values: as v4, a cache object — the RobertaCache returned with
        use_cache=True, v4's DynamicCache or EncoderDecoderCache (`_is_cache`) — which takes this
        call's keys and values in place and is returned (whatever `use_cache` says, as v4), or legacy
        tuples, one (k, v) or (k, v, cross_k, cross_v) per layer, each (B, h, P, D), read into a new
        RobertaCache when `use_cache` (as v4 reads them into an EncoderDecoderCache). A decoder with
        `use_cache` and no cache returns a new RobertaCache. `cache_position` (v4's) goes to the
        cache's `update`, as v4's RoBERTa passes it; positions come from the cache's length.
        Returns last_hidden_state (B, T, H), pooler_output (B, H), and on request hidden_states,
        attentions, cross_attentions, past_key_values; with `return_dict=False` v4's tuple
        (last_hidden_state, pooler_output (None without the pooler), then those present of
        past_key_values, hidden_states, attentions, cross_attentions).

        `unpad=True` computes on the real tokens only: they are packed into one stream (1, N, H)
        with their padded-batch positions, each sequence attends over itself, and the states are
        put back into (B, T, H) at the end, zeros at padding positions (v4 computes values there
        that nothing should read). The real positions get the same numbers as without it. It pays
        when a good part of the batch is padding; calls that need the padded layout (a cache,
        cross-attention, output_attentions, head_mask, relative positions) ignore it, with a warning.
        `unpad=N` (the token budget TF and Flax take for their static shapes) computes the same
        exact stream here, after checking that N holds the batch's real tokens (a ValueError if not).

        `first_token_only=True` (the sequence-classification and multiple-choice heads ask for it:
        they read `<s>` alone) computes the last layer for the first position only, its query
        attending over every position: last_hidden_state is then (B, 1, H), the pooler's input the
        same; under `unpad` the last layer's queries are each row's first real token (keys and values
        from the stream), zeros where the first position is padding. Calls that return more
        (`output_hidden_states`, `output_attentions`), a cache, cross-attention, relative positions,
        training, or a forward hook on the model compute every position as usual.

        `cache`: transformers 5.24's name for `past_key_values` (peft >= 0.22 passes a prefix under
        it when such a transformers is installed); give one or the other."""
        past_key_values = one_cache(past_key_values, cache)
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = config.use_return_dict if return_dict is None else return_dict
        # A cache only means something for a causal decoder (v4 ignores use_cache elsewhere).
        use_cache = (config.use_cache if use_cache is None else use_cache) and config.is_decoder

        if not _is_cache(past_key_values):  # a cache object is written in place, the rest read
            past_key_values = _legacy_cache(past_key_values)
        past_length = self._past_length(past_key_values)
        B, T = check_forward_inputs(
            config,
            input_ids=shape_of(input_ids), inputs_embeds=shape_of(inputs_embeds),
            attention_mask=shape_of(attention_mask), token_type_ids=shape_of(token_type_ids),
            position_ids=shape_of(position_ids), head_mask=shape_of(head_mask),
            encoder_hidden_states=shape_of(encoder_hidden_states),
            encoder_attention_mask=shape_of(encoder_attention_mask),
            past_length=past_length, mask_3d=True,
        )
        if past_length:
            cached_batch = _self_attention_entries(past_key_values)[0][0].shape[0]
            if cached_batch != B:
                raise ValueError(f"past_key_values hold a batch of {cached_batch}, the inputs {B}")
        attention_mask = check_input_dtypes(attention_mask, inputs_embeds)
        # Value checks before any embedding lookup runs (the lookups read the checked tensors:
        # under compilation the check is an operator they depend on).
        if input_ids is not None:
            # The word table's rows (`set_input_embeddings` may put in another size, as v4 allows).
            rows = getattr(self.embeddings.word_embeddings, "num_embeddings", config.vocab_size)
            input_ids = check_values("input_ids", input_ids, rows)
        if token_type_ids is not None:
            token_type_ids = check_values("token_type_ids", token_type_ids, config.type_vocab_size)
        if position_ids is not None:
            position_ids = check_values("position_ids", position_ids, config.max_position_embeddings)

        use_fused = self._use_fused(output_attentions, head_mask)
        packing = None
        if token_budget(unpad):
            packing = self._packing(
                attention_mask, unpad, use_fused, past_key_values, use_cache, encoder_hidden_states
            )
        if packing is None:
            # by keyword, as v4 calls its embeddings (a forward hook reads them from kwargs)
            embedding_output = self.embeddings(
                input_ids=input_ids, position_ids=position_ids, token_type_ids=token_type_ids,
                inputs_embeds=inputs_embeds, past_key_values_length=past_length,
            )
        else:
            # Positions come from the padded batch; then each input keeps its real tokens: (1, N, ...).
            if position_ids is None:
                position_ids = self.embeddings._position_ids(input_ids, inputs_embeds)

            def real(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
                return None if x is None else unpad_rows(x.expand(B, T, *x.shape[2:]), packing)[None]

            embedding_output = self.embeddings(
                input_ids=real(input_ids), position_ids=real(position_ids), token_type_ids=real(token_type_ids),
                inputs_embeds=real(inputs_embeds),
            )
        dtype, device = embedding_output.dtype, embedding_output.device

        first_only = bool(first_token_only) and self._first_token_only(
            output_attentions, output_hidden_states, past_key_values, use_cache, encoder_hidden_states, attention_mask
        )
        if packing is None:
            mask, is_causal = self._self_attention_mask(attention_mask, B, T, past_length, dtype, device, use_fused)
        else:
            mask, is_causal = None, config.is_decoder
            if first_only:
                # The last layer's keys, back in their padded rows (RobertaEncoder); the packed layers read no mask.
                mask, _ = self._self_attention_mask(attention_mask, B, T, past_length, dtype, device, use_fused)
        cross_mask = None
        if encoder_hidden_states is not None and not _nothing_masked(encoder_attention_mask):
            cross_mask = _additive_mask(encoder_attention_mask.bool()[:, None, None, :], dtype)  # (B, 1, 1, S)
        if head_mask is not None:
            if head_mask.dim() == 1:
                head_mask = head_mask.expand(config.num_hidden_layers, -1)  # the same heads in every layer
            head_mask = head_mask.to(dtype)[:, None, :, None, None]  # (layers, 1, h, 1, 1)

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
            packing=packing,
            first_token_only=first_only,
            cache_position=cache_position,
        )
        if self.LayerNorm is not None:
            # After the encoder collected `hidden_states` (v4: the last of them is not normalised),
            # and before repadding, so padding positions stay zeros under `unpad`.
            outputs.last_hidden_state = self.LayerNorm(outputs.last_hidden_state)
        if packing is not None and first_only:
            outputs.last_hidden_state = first_positions(outputs.last_hidden_state, packing)  # (B, 1, H)
        elif packing is not None:
            outputs.last_hidden_state = repad(outputs.last_hidden_state[0], packing)
            if outputs.hidden_states is not None:
                outputs.hidden_states = tuple(repad(h[0], packing) for h in outputs.hidden_states)
        outputs = BaseModelOutputWithPoolingAndCrossAttentions(outputs)  # the encoder's fields, and the pooled one
        if self.pooler is not None:
            outputs.pooler_output = self.pooler(outputs.last_hidden_state)
        if return_dict:
            return outputs
        # v4's tuple: the pooled slot stays (None without the pooler), the rest in the encoder's order.
        rest = (outputs.past_key_values, outputs.hidden_states, outputs.attentions, outputs.cross_attentions)
        return (outputs.last_hidden_state, outputs.pooler_output) + tuple(x for x in rest if x is not None)
