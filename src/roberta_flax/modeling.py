"""Flax (NNX) RoBERTa, in reading order: activations -> embeddings -> self-attention -> layer ->
encoder -> pooler -> the pretrained-model base -> FlaxRobertaModel.

The module tree and parameter paths are those of Hugging Face `transformers` v4's Flax (Linen)
models, so the NNX state paths (`encoder/layer/0/attention/self/query/kernel`) are the keys of
`flax_model.msgpack` files and map to the canonical keys through `roberta_core.weights`
(DESIGN §3). Shapes in comments: B batch, T query length, S key length (cache included),
H hidden size, h heads, D head size (H / h), V vocabulary.

A parallel text of `roberta_pt/modeling.py` (the master text): same classes (with the `Flax`
prefix), order and comments. What only JAX has: `deterministic=` and `nnx.Rngs` for dropout,
`dtype` (computation) and `param_dtype`, logical sharding axes on the kernels
(`LOGICAL_AXIS_RULES`, `shard()`), a preallocated cache for `generate()` (`cache_index`), and
value checks under `jit` through `checkify` (`enable_jit_checks()` and `checked()`).

fp32 numerics: on GPU and TPU, XLA multiplies float32 matrices in reduced precision unless told
otherwise; `jax.config.update("jax_default_matmul_precision", "highest")` holds the 1e-5 bars
against PyTorch and the float64 reference (CPU computes float32 in full anyway).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import os
import warnings
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import checkify

from roberta_core.config import RobertaConfig
from roberta_core.outputs import OUTPUT_CLASSES, BaseModelOutputWithPoolingAndCrossAttentions
from roberta_core.pretrained import load_pretrained, save_pretrained_files
from roberta_core.validation import IGNORE_INDEX, check_forward_inputs, check_range, range_message

from .convert import from_canonical, to_canonical

__all__ = [
    "ACT2FN",
    "ATTN_IMPLEMENTATIONS",
    "LOGICAL_AXIS_RULES",
    "checked",
    "FlaxRobertaEmbeddings",
    "Packing",
    "pack",
    "unpad_rows",
    "repad",
    "packed_attention",
    "FlaxRobertaSelfAttention",
    "FlaxRobertaSelfOutput",
    "FlaxRobertaAttention",
    "FlaxRobertaIntermediate",
    "FlaxRobertaOutput",
    "FlaxRobertaLayer",
    "FlaxRobertaEncoder",
    "FlaxRobertaPooler",
    "FlaxRobertaPreTrainedModel",
    "packing_for",
    "FlaxRobertaModel",
]

ATTN_IMPLEMENTATIONS = ("dot_product", "einsum")
# The PyTorch backend's names, so one setting serves every backend: its fused kernel and its
# explicit path.
ATTN_ALIASES = {"sdpa": "dot_product", "eager": "einsum"}

# Logical axis -> mesh axis: Megatron-style tensor parallelism over a 'model' mesh axis
# (vocabulary rows, attention heads and the MLP's inner dimension are split; the hidden
# dimension is not), data parallelism by sharding the inputs' batch over a 'data' axis.
LOGICAL_AXIS_RULES = (("vocab", "model"), ("heads", "model"), ("mlp", "model"), ("embed", None))


# ---------------------------------------------------------------------------- outputs as pytrees

def _register_outputs() -> None:
    """Make the `roberta_core.outputs` classes JAX pytree nodes, so a jitted function may
    return them (the fields present become the leaves, their names the keys)."""
    for cls in OUTPUT_CLASSES:
        jax.tree_util.register_pytree_with_keys(
            cls,
            lambda out: ([(jax.tree_util.DictKey(k), v) for k, v in out.items()], tuple(out.keys())),
            lambda keys, values, cls=cls: cls(zip(keys, values)),
            lambda out: (list(out.values()), tuple(out.keys())),
        )


_register_outputs()


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


# ---------------------------------------------------------------------------- input checks

def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


class _Range:
    """A value check of a compiled eager call (`_compiled`), made when the call returns: the
    min and max of `name` (arrays, outputs of the program) and the range they must keep
    (static, part of the program's output structure, so a cached program still knows it)."""

    def __init__(self, lo: Any, hi: Any, rule: tuple[str, int, int, bool]):
        self.lo, self.hi, self.rule = lo, hi, rule

    def check(self) -> None:
        name, upper, lower, allow_ignore = self.rule
        check_range(name, int(self.lo), int(self.hi), upper, lower=lower, allow_ignore=allow_ignore)


jax.tree_util.register_pytree_node(_Range, lambda r: ((r.lo, r.hi), r.rule), lambda rule, lo_hi: _Range(*lo_hi, rule))

# While `_compiled` traces a call: the value checks to make when the program has run.
_deferred_checks: contextvars.ContextVar[Optional[list[_Range]]] = contextvars.ContextVar(
    "roberta_flax_deferred_checks", default=None
)


def check_values(
    name: str, values: jax.Array, upper: int, *, lower: int = 0, allow_ignore: bool = False, in_jit: bool = False
) -> None:
    """Fail fast when integer `values` (ids, token types, labels) leave [lower, upper).

    Eagerly this is one host transfer for min and max, before any lookup runs (in a compiled
    eager call, `_compiled`, the min and max are outputs of the program, checked when it ends).
    Under `jit` the values are unknown: with `in_jit` (a model's `enable_jit_checks()`) it is a
    `checkify` check with the same message, which the caller turns into a ValueError by
    wrapping the jitted function with `checked`; without it, nothing is checked (an
    out-of-range id then reads a NaN row, JAX's fill value). With `allow_ignore`, -100 is
    allowed too.
    """
    if not jnp.issubdtype(values.dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer array, got {values.dtype}")
    if _is_traced(values):
        deferred = _deferred_checks.get()
        if (in_jit or deferred is not None) and values.size:
            kept = jnp.where(values == IGNORE_INDEX, lower, values) if allow_ignore else values
            lo, hi = jnp.min(kept), jnp.max(kept)
            if in_jit:
                message = range_message(name, upper, lower, allow_ignore)
                checkify.check((lo >= lower) & (hi < upper), message + "; got values from {lo} to {hi}", lo=lo, hi=hi)
            else:
                deferred.append(_Range(lo, hi, (name, upper, lower, allow_ignore)))
        return
    values = np.asarray(values)
    if allow_ignore:
        values = np.where(values == IGNORE_INDEX, lower, values)  # the min is over the other values
    if values.size:
        check_range(name, int(values.min()), int(values.max()), upper, lower=lower, allow_ignore=allow_ignore)


def checked(fn: Callable) -> Callable:
    """Wrap a (jitted) function that calls a model with `enable_jit_checks()` on, so that ids
    or labels out of range raise the same ValueError under `jit` as eagerly:

        model.enable_jit_checks()
        graphdef, state = nnx.split(model)
        forward = checked(jax.jit(lambda state, ids: nnx.merge(graphdef, state)(ids).logits))
        forward(state, ids)  # ValueError: input_ids must be in 0..99; got values from 0 to 120

    (`checkify` passes the model through as a pytree: use the functional form above or
    `nnx.jit(..., graph=False)`; graph-mode `nnx.jit` refuses to run inside it.)
    """
    functional = checkify.checkify(fn, errors=checkify.user_checks)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        error, out = functional(*args, **kwargs)
        message = error.get()
        if message is not None:
            raise ValueError(message.removesuffix(" (`check` failed)"))
        return out

    return run


# JAX's tracing state outside any transformation, as NNX reads it to tell which variables a
# function may update.
_EAGER_TRACE = jax.extend.core.get_opaque_trace_state(convention="nnx")


def _compiled(call: Callable) -> Callable:
    """The models' `__call__` on concrete arrays (eager use) as one compiled program, cached per
    model structure, config, input shapes and options, instead of op by op (eagerly JAX compiles
    every distinct operation once, then dispatches about a thousand of them per forward).

    The same function runs, with the same meaning: shape errors and warnings come while it is
    traced; ids and labels out of range raise the eager ValueError (the program returns their
    min and max, checked when it ends); dropout's random streams advance as eagerly. Under a
    transformation (`jit`, `grad`, `vmap`, `nnx.remat`, a model merged inside `jit` ...) and
    with `jax.disable_jit()` the call runs as written, traced by the caller. Options that size
    arrays from the inputs' values (`unpad=True`, `masked_positions_only=True`) become static
    numbers first (`_concrete_options`).
    """
    signature = inspect.signature(call)

    @functools.wraps(call)
    def run(self: "FlaxRobertaPreTrainedModel", *args: Any, **kwargs: Any) -> Any:
        if jax.config.jax_disable_jit or jax.extend.core.get_opaque_trace_state(convention="nnx") != _EAGER_TRACE:
            return call(self, *args, **kwargs)
        graphdef, state = nnx.split(self)
        arguments = signature.bind(self, *args, **kwargs).arguments
        del arguments["self"]
        self._concrete_options(arguments)
        leaves, treedef = jax.tree.flatten(arguments)
        # Arrays are the program's inputs; everything else (flags, sizes) is part of its key.
        # (None, a static marking an input, is never a leaf.)
        dynamic = [isinstance(x, (jax.Array, np.ndarray)) for x in leaves]
        statics = tuple(None if d else x for x, d in zip(leaves, dynamic))
        arrays = [x for x, d in zip(leaves, dynamic) if d]
        # The config's text too: it is mutable, and JAX may tell the programs of one model apart
        # by comparing its (same) config object.
        key = (call, self.config.to_json_string(), treedef, statics)
        out, rng_state, ranges = _compiled_call(key, graphdef, state, arrays)
        for check in jax.device_get(ranges):
            check.check()
        nnx.update(self, rng_state)
        return out

    return run


@functools.partial(jax.jit, static_argnums=(0, 1))
def _compiled_call(
    key: tuple, graphdef: nnx.GraphDef, state: nnx.State, arrays: list
) -> tuple[Any, nnx.State, list[_Range]]:
    """`_compiled`'s program: the call's outputs, the random streams after it, and the value
    checks to make. `key`: the raw call, the config's text, the arguments' structure and their
    static values (None where an array goes)."""
    call, _, treedef, statics = key
    model = nnx.merge(graphdef, state)
    model.set_attributes(jit_checks=False)  # checked through `_deferred_checks` instead
    given = iter(arrays)
    arguments = treedef.unflatten([next(given) if x is None else x for x in statics])
    token = _deferred_checks.set([])
    try:
        out = call(model, **arguments)
        return out, nnx.state(model, nnx.RngState), _deferred_checks.get()
    finally:
        _deferred_checks.reset(token)


def shape_of(array: Any) -> Optional[tuple[int, ...]]:
    return None if array is None else tuple(np.shape(array))


# ---------------------------------------------------------------------------- parameter builders

def _axes(*names: Optional[str]) -> dict[str, Any]:
    """Logical sharding axes of a parameter. Not applied when the model is built (it is built
    whole on one device); `shard()` places the parameters on a mesh by these names."""
    return {"out_sharding": names, "eager_sharding": False}


class _Deferred(jax.ShapeDtypeStruct):
    """The shape and dtype of a parameter whose value is not computed yet, with the initializer
    and random key that compute it (`materialize()`): the value a model built for
    `from_pretrained` holds until the checkpoint's array replaces it."""

    def __init__(self, init: Callable, key: Optional[jax.Array], shape: tuple[int, ...], dtype: Any):
        super().__init__(shape, dtype)
        self.init, self.key = init, key

    def materialize(self) -> jax.Array:
        return self.init(self.key, self.shape, self.dtype)


_deferring = contextvars.ContextVar("roberta_flax_deferring", default=False)


def _deferrable(init: Callable) -> Callable:
    """The initializer `init`, deferred while `from_pretrained` builds a model: the parameter
    then holds a `_Deferred` (no random numbers drawn for weights the checkpoint overwrites)."""

    def initialise(key: Optional[jax.Array], shape: tuple[int, ...], dtype: Any = jnp.float32) -> Any:
        return _Deferred(init, key, shape, dtype) if _deferring.get() else init(key, shape, dtype)

    return initialise


def _normal(config: RobertaConfig, zero_row: Optional[int] = None) -> Callable:
    """v4's initializer of weights: normal(0, initializer_range); the embeddings' padding row zero."""
    normal = nnx.initializers.normal(config.initializer_range)
    if zero_row is None:
        return _deferrable(normal)
    return _deferrable(lambda key, shape, dtype: normal(key, shape, dtype).at[zero_row].set(0))


_zeros, _ones = _deferrable(nnx.initializers.zeros), _deferrable(nnx.initializers.ones)


def _dense(
    config: RobertaConfig, features_in: int, features_out: int, axes: tuple = (None, None), *,
    use_bias: bool = True, dtype: Any, param_dtype: Any, rngs: nnx.Rngs,
) -> nnx.Linear:
    """A linear layer initialised as v4 (normal(0, initializer_range) kernel (in, out), zero bias)."""
    return nnx.Linear(
        features_in, features_out, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype,
        kernel_init=_normal(config), bias_init=_zeros,
        kernel_metadata=_axes(*axes), bias_metadata=_axes(axes[1]), rngs=rngs,
    )


def _embed(
    config: RobertaConfig, rows: int, features: int, axes: tuple, *, padding_idx: Optional[int] = None,
    dtype: Any, param_dtype: Any, rngs: nnx.Rngs,
) -> nnx.Embed:
    """An embedding table initialised as v4: normal(0, initializer_range), the padding row zero."""
    return nnx.Embed(
        rows, features, dtype=dtype, param_dtype=param_dtype, embedding_init=_normal(config, padding_idx),
        embedding_metadata=_axes(*axes), rngs=rngs,
    )


def _layer_norm(config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm with the config's eps and the two-pass variance (E[(x - mean)^2], as PyTorch),
    not Flax's default one-pass E[x^2] - mean^2, which cancels badly for large activations."""
    return nnx.LayerNorm(
        config.hidden_size, epsilon=config.layer_norm_eps, use_fast_variance=False, dtype=dtype,
        param_dtype=param_dtype, scale_init=_ones, bias_init=_zeros,
        scale_metadata=_axes("embed"), bias_metadata=_axes("embed"), rngs=rngs,
    )


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
        self.dropout = nnx.Dropout(config.hidden_dropout_prob, rngs=rngs)

    def position_ids(
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
            position_ids = self.position_ids(input_ids, inputs_embeds, past_length)
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


def dot_product_attention(
    query: jax.Array, key: jax.Array, value: jax.Array, mask: Optional[jax.Array], *, is_causal: bool = False
) -> jax.Array:
    """The fast attention core: `jax.nn.dot_product_attention` (cuDNN's fused kernel on GPU,
    XLA elsewhere). q (B, h, T, D), k/v (B, h, S, D), boolean mask broadcastable to
    (B, h, T, S) or None -> context (B, T, h, D). A None mask lets the fastest kernels run."""
    # JAX's layout puts the heads after the positions: (B, T, h, D).
    q, k, v = (x.swapaxes(1, 2) for x in (query, key, value))
    return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=is_causal)


def einsum_attention(
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


class Packing(NamedTuple):
    """Where the real tokens of a padded batch (B, T) sit in the packed stream (N,) that an
    unpadded forward computes on. N is a static token budget (shapes are static under `jit`):
    the real tokens fill the first slots, row by row, in order; the slots after them are unused
    (they hold token 0 and compute values nothing reads). `index` (N,): flat position b * T + t
    of each slot's token, B * T for unused slots; `slot` (B, T): each position's slot, N at
    padding; `cu_seqlens` (B + 1,) int32: the running sum of the rows' real tokens from 0;
    `mask` (B, T) bool: the attention mask; `fits` (): whether every real token got a slot (a
    budget given under `jit` may be too small: the outputs are then NaN, see `pack`)."""

    index: jax.Array
    slot: jax.Array
    cu_seqlens: jax.Array
    mask: jax.Array
    fits: jax.Array


def pack(attention_mask: jax.Array, budget: int) -> Packing:
    """The packing of a (B, T) attention mask (1 = real token) into a stream of `budget` slots.
    Traceable: nothing is read back to the host. Tokens beyond the budget get no slot; the model
    then returns NaN rather than numbers that miss part of a sequence (with `enable_jit_checks()`
    it is a checkify error)."""
    mask = jnp.asarray(attention_mask).astype(bool)
    B, T = mask.shape
    lengths = mask.sum(axis=1, dtype=jnp.int32)  # (B,)
    cu_seqlens = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(lengths, dtype=jnp.int32)])
    flat = mask.reshape(-1)
    rank = jnp.cumsum(flat, dtype=jnp.int32) - 1  # each real token's place in the stream
    slot = jnp.where(flat & (rank < budget), rank, budget).reshape(B, T)
    index = jnp.nonzero(flat, size=budget, fill_value=B * T)[0].astype(jnp.int32)
    return Packing(index, slot, cu_seqlens, mask, cu_seqlens[-1] <= budget)


def unpad_rows(x: jax.Array, packing: Packing) -> jax.Array:
    """(B, T, ...) -> (N, ...): the real tokens' rows, in order; zeros in unused slots."""
    return jnp.take(x.reshape(-1, *x.shape[2:]), packing.index, axis=0, mode="fill", fill_value=0)


def repad(x: jax.Array, packing: Packing) -> jax.Array:
    """(N, ...) -> (B, T, ...): back to the padded layout, zeros at padding positions (the inverse
    of `unpad_rows`)."""
    return jnp.take(x, packing.slot, axis=0, mode="fill", fill_value=0)


def packed_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    packing: Packing,
    *,
    is_causal: bool = False,
    dropout: Optional[Callable[[jax.Array], jax.Array]] = None,
    strategy: Optional[str] = None,
) -> jax.Array:
    """Attention of each sequence over itself in a packed stream: q/k/v (1, h, N, D) -> context
    (1, N, h, D); no score between two sequences counts. `dropout` (training) drops
    probabilities through the einsum core; otherwise the fused one runs.

    Strategies (`strategy=None` takes the one that computes fewer scores; both shapes are
    static): 'padded', the sequences put back into their padded rows (B, T) for one masked call
    (B * T * T scores; the matmuls before and after still skip padding), and 'segments', one call
    over the stream with a block-diagonal mask of segment ids (N * N scores: many short
    sequences in a long padded batch).
    """
    (B, T), N = packing.mask.shape, query.shape[2]
    if strategy is None:
        strategy = "segments" if N * N < B * T * T else "padded"
    if strategy == "segments":
        segment = packing.index // T  # the row of each slot; B for unused slots (they see each other)
        keep = (segment[:, None] == segment[None, :])[None, None]  # (1, 1, N, N)
        if is_causal:
            keep = keep & jnp.tril(jnp.ones((N, N), bool))
        rows = (query, key, value)
    elif strategy == "padded":
        keep = packing.mask[:, None, None, :]  # (B, 1, 1, T)
        if is_causal:
            keep = keep & jnp.tril(jnp.ones((T, T), bool))
        # (1, h, N, D) -> (B, h, T, D)
        rows = tuple(repad(x[0].swapaxes(0, 1), packing).swapaxes(1, 2) for x in (query, key, value))
    else:
        raise ValueError(f"packed_attention strategy must be 'padded', 'segments' or None, got {strategy!r}")
    if dropout is None:
        context = dot_product_attention(*rows, keep)
    else:
        context, _ = einsum_attention(*rows, keep, dropout=dropout)
    if strategy == "padded":
        context = unpad_rows(context, packing)[None]  # (B, T, h, D) -> (1, N, h, D)
    return context


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
        self.dropout = nnx.Dropout(config.attention_probs_dropout_prob, rngs=rngs)
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
        use_fast: bool = True,
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
        only."""
        B, T, H = hidden_states.shape
        query = self._split_heads(self.query(hidden_states))  # (B, h, T, D)
        if encoder_hidden_states is not None and past_key_value is not None:
            # Cross-attention: the encoder's keys and values were computed on the first step.
            key, value = past_key_value
        else:
            source = hidden_states if encoder_hidden_states is None else encoder_hidden_states
            key = self._split_heads(self.key(source))  # (B, h, S, D)
            value = self._split_heads(self.value(source))
            if past_key_value is not None:
                key = _extend_cache(past_key_value[0], key, cache_index)
                value = _extend_cache(past_key_value[1], value, cache_index)

        if packing is not None:
            # Not fast only when dropout must drop probabilities: the einsum core does that.
            dropout = None if use_fast else functools.partial(self.dropout, deterministic=deterministic)
            context = packed_attention(query, key, value, packing, is_causal=is_causal, dropout=dropout)
            probs = None
        elif use_fast:
            context = dot_product_attention(query, key, value, attention_mask, is_causal=is_causal)
            probs = None
        else:
            position_scores = None
            if self.position_embedding_type != "absolute":
                offset = key.shape[2] - T if cache_index is None else cache_index
                position_scores = self._relative_scores(query, key, offset)
            context, probs = einsum_attention(
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
    """Projects the attention context back and adds it to the block's input (post-LayerNorm)."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dense = _dense(config, config.hidden_size, config.hidden_size, ("heads", "embed"), **kw)
        self.LayerNorm = _layer_norm(config, **kw)
        self.dropout = nnx.Dropout(config.hidden_dropout_prob, rngs=rngs)

    def __call__(self, hidden_states: jax.Array, input_tensor: jax.Array, deterministic: bool = True) -> jax.Array:
        hidden_states = self.dropout(self.dense(hidden_states), deterministic=deterministic)
        return self.LayerNorm(hidden_states + input_tensor)


# ---------------------------------------------------------------------------- 5. attention block

class FlaxRobertaAttention(nnx.Module):
    """Self-attention (or cross-attention) followed by its output projection and residual."""

    def __init__(
        self, config: RobertaConfig, position_embedding_type: Optional[str] = None, *,
        dtype: Any, param_dtype: Any, rngs: nnx.Rngs,
    ):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.self = FlaxRobertaSelfAttention(config, position_embedding_type, **kw)
        self.output = FlaxRobertaSelfOutput(config, **kw)

    def __call__(
        self,
        hidden_states: jax.Array,
        attention_mask: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        encoder_hidden_states: Optional[jax.Array] = None,
        past_key_value: Optional[tuple[jax.Array, jax.Array]] = None,
        output_attentions: bool = False,
        use_fast: bool = True,
        is_causal: bool = False,
        cache_index: Any = None,
        deterministic: bool = True,
        packing: Optional[Packing] = None,
    ) -> tuple[jax.Array, Optional[jax.Array], tuple[jax.Array, jax.Array]]:
        context, probs, present = self.self(
            hidden_states, attention_mask, head_mask, encoder_hidden_states, past_key_value,
            output_attentions, use_fast, is_causal, cache_index, deterministic, packing,
        )
        return self.output(context, hidden_states, deterministic), probs, present


# ---------------------------------------------------------------------------- 6. intermediate

class FlaxRobertaIntermediate(nnx.Module):
    """The feed-forward block's expansion: (B, T, H) -> (B, T, intermediate_size), then the activation."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        self.dense = _dense(
            config, config.hidden_size, config.intermediate_size, ("embed", "mlp"),
            dtype=dtype, param_dtype=param_dtype, rngs=rngs,
        )
        self.hidden_act = config.hidden_act

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return ACT2FN[self.hidden_act](self.dense(hidden_states))


# ---------------------------------------------------------------------------- 7. output

class FlaxRobertaOutput(nnx.Module):
    """The feed-forward block's projection back to H, with dropout, residual and LayerNorm."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dense = _dense(config, config.intermediate_size, config.hidden_size, ("mlp", "embed"), **kw)
        self.LayerNorm = _layer_norm(config, **kw)
        self.dropout = nnx.Dropout(config.hidden_dropout_prob, rngs=rngs)

    def __call__(self, hidden_states: jax.Array, input_tensor: jax.Array, deterministic: bool = True) -> jax.Array:
        hidden_states = self.dropout(self.dense(hidden_states), deterministic=deterministic)
        return self.LayerNorm(hidden_states + input_tensor)


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
        use_fast: bool = True,
        is_causal: bool = False,
        deterministic: bool = True,
    ) -> tuple[jax.Array, tuple[jax.Array, ...], Optional[jax.Array], Optional[jax.Array]]:
        """Returns the new states, this layer's cache entry ((k, v), or (k, v, cross_k, cross_v)
        with cross-attention) and the self/cross attention probabilities (None unless asked)."""
        self_past = past_key_value[:2] if past_key_value is not None else None
        attention_output, self_probs, present = self.attention(
            hidden_states, attention_mask, head_mask, None, self_past,
            output_attentions, use_fast, is_causal, cache_index, deterministic, packing,
        )
        cross_probs = None
        if encoder_hidden_states is not None:
            cross_past = past_key_value[2:] if past_key_value is not None and len(past_key_value) == 4 else None
            attention_output, cross_probs, cross_present = self.crossattention(
                attention_output, encoder_attention_mask, head_mask, encoder_hidden_states, cross_past,
                output_attentions, use_fast, False, None, deterministic,
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
        use_fast: bool = True,
        is_causal: bool = False,
        cache_index: Any = None,
        deterministic: bool = True,
        packing: Optional[Packing] = None,
    ) -> BaseModelOutputWithPoolingAndCrossAttentions:
        all_hidden = [] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        all_cross = [] if output_attentions and encoder_hidden_states is not None else None
        presents = [] if use_cache else None
        def run(layer: FlaxRobertaLayer, *args: Any) -> tuple:
            # The flags are Python values that pick the code path: bound here, not traced.
            return layer(
                *args, output_attentions=output_attentions, use_fast=use_fast, is_causal=is_causal,
                deterministic=deterministic,
            )

        if self.gradient_checkpointing:
            # Keep only each layer's input; rerun the layer (same dropout masks) in the backward pass.
            # Tree mode: the layer passes through as a pytree, so this also works inside a
            # plain `jax.grad` over a merged model (graph mode would refuse to update its variables).
            run = nnx.remat(run, graph=False)
        for i, layer in enumerate(self.layer):
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            hidden_states, present, probs, cross = run(
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
        return BaseModelOutputWithPoolingAndCrossAttentions(
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

_DTYPES = {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16, "float64": jnp.float64}


def _resolve_dtype(dtype: Any, state: Optional[dict] = None) -> Any:
    """A dtype argument: None is float32 (as v4), 'auto' the checkpoint's own, else a floating
    JAX/NumPy dtype or its name."""
    if dtype is None:
        return jnp.dtype(jnp.float32)
    if isinstance(dtype, str) and dtype == "auto":
        if state is None:
            raise ValueError("dtype='auto' means the checkpoint's dtype; it needs from_pretrained")
        return next((jnp.dtype(a.dtype) for a in state.values()), jnp.dtype(jnp.float32))
    if isinstance(dtype, str) and dtype not in _DTYPES:
        raise ValueError(f"dtype must be a JAX floating dtype, 'auto' or one of {', '.join(_DTYPES)}; got {dtype!r}")
    try:
        resolved = jnp.dtype(_DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype)
    except TypeError:
        raise TypeError(f"dtype must be a JAX floating dtype, got {dtype!r}") from None
    if not jnp.issubdtype(resolved, jnp.floating):
        raise TypeError(f"dtype must be a floating point type, got {resolved}")
    return resolved


def _rngs(rngs: Optional[nnx.Rngs]) -> nnx.Rngs:
    """The random streams for initialisation and dropout; seed 0 unless given (v4 Flax's default)."""
    return nnx.Rngs(0) if rngs is None else rngs


class FlaxRobertaPreTrainedModel(nnx.Module):
    """Base of the encoder and the seven heads: weight initialisation as v4, checkpoint loading
    and saving, embeddings access and resizing, tying, gradient checkpointing, and the JAX
    extras: train/eval mode, sharding, value checks under jit.

    Subclasses set `head` (a key of `roberta_core.weights.HEADS`) and build their modules in
    `__init__(config, *, dtype=jnp.float32, param_dtype=None, attn_implementation=None, rngs=None)`
    after calling this `__init__`. Models are built in evaluation mode (dropout off, as v4's
    Flax `deterministic=True`); `model.train()` turns dropout on, `model.eval()` off again, and
    `deterministic=` on a call overrides the mode for that call.
    """

    head: str = ""
    base_model_prefix = "roberta"

    def __init__(
        self, config: RobertaConfig, *, dtype: Any = jnp.float32, param_dtype: Any = None,
        attn_implementation: Optional[str] = None,
    ):
        if not isinstance(config, RobertaConfig):
            raise TypeError(f"config must be a roberta_core.RobertaConfig, got {type(config).__name__}")
        attn_implementation = ATTN_ALIASES.get(attn_implementation, attn_implementation or "dot_product")
        if attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(
                f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS} (or PyTorch's names "
                f"{tuple(ATTN_ALIASES)}), got {attn_implementation!r}"
            )
        self.config = config
        self.dtype = _resolve_dtype(dtype)  # computation
        self.param_dtype = self.dtype if param_dtype is None else _resolve_dtype(param_dtype)
        self.attn_implementation = attn_implementation
        # Flipped by nnx's `model.train()` / `model.eval()`, which set every `deterministic` attribute.
        self.deterministic = True
        self.jit_checks = False

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
            arguments["unpad"] = packing_budget(arguments.get("attention_mask"), arguments["unpad"]) or False

    # ------------------------------------------------------------------ structure
    @property
    def base_model(self) -> "FlaxRobertaModel":
        """The encoder: the model itself for FlaxRobertaModel, `self.roberta` for a head."""
        return getattr(self, self.base_model_prefix, self)

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

    def resize_token_embeddings(self, new_num_tokens: int, mean_resizing: bool = True) -> nnx.Embed:
        """Grow or shrink the vocabulary to `new_num_tokens` rows, keeping the rows both sizes
        share. New rows are the mean of the old ones (v4's `mean_resizing`; it keeps the
        softmax of the tied decoder from favouring them) or, with `mean_resizing=False`, drawn
        like fresh weights. The LM head's bias (and an untied decoder) follow."""
        if isinstance(new_num_tokens, bool) or not isinstance(new_num_tokens, int) or new_num_tokens < 1:
            raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            token = getattr(self.config, name)
            if token is not None and token >= new_num_tokens:
                raise ValueError(
                    f"new_num_tokens={new_num_tokens} would drop {name}={token}; keep at least {token + 1}"
                )
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

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        config: Optional[RobertaConfig] = None,
        dtype: Any = None,
        param_dtype: Any = None,
        strict: bool = False,
        ignore_mismatched_sizes: bool = False,
        attn_implementation: Optional[str] = None,
        rngs: Optional[nnx.Rngs] = None,
        **config_overrides: Any,
    ) -> "FlaxRobertaPreTrainedModel":
        """Load a checkpoint directory in any of the four weight formats (safetensors, sharded
        too; pytorch_model.bin; tf_model.h5; flax_model.msgpack), in evaluation mode.

        Another head's checkpoint loads too (a MaskedLM checkpoint into a classifier): the unused
        and the newly initialised keys are reported in one warning (an error under `strict`).
        A shape mismatch (e.g. `num_labels`) is an error unless `ignore_mismatched_sizes`.
        `dtype` (computation): None (float32, as v4), 'auto' (the checkpoint's), or a JAX dtype;
        `param_dtype` (storage) defaults to `dtype`. `rngs` seeds the newly initialised
        parameters and dropout. `config_overrides` change config fields (`num_labels=5`,
        `is_decoder=True`).
        """
        config, state, _ = load_pretrained(
            path, cls.head, config=config, strict=strict,
            ignore_mismatched_sizes=ignore_mismatched_sizes, **config_overrides,
        )
        dtype = _resolve_dtype(dtype, state)
        # Built with deferred initialisation: the checkpoint's arrays become the parameters (no
        # copy where layout and dtype allow), and only the keys it lacks are initialised.
        token = _deferring.set(True)
        try:
            model = cls(
                config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation, rngs=rngs
            )
        finally:
            _deferring.reset(token)
        from_canonical(model, state, allow_missing=True, consume=True)
        model._materialize_missing()
        model.eval()
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
        directory: str | os.PathLike,
        *,
        format: Optional[str] = None,
        max_shard_size: int | str | None = None,
        safe_serialization: Optional[bool] = None,
    ) -> None:
        """Write `config.json` and the weights, atomically: `format='safetensors'` (default,
        PyTorch names, metadata {'format': 'pt'}; sharded above `max_shard_size`) or 'msgpack'
        (`flax_model.msgpack`, the tree v4's Flax models read; v4's `safe_serialization=False`
        means the same)."""
        if format is None:
            format = "msgpack" if safe_serialization is False else "safetensors"
        if format not in ("safetensors", "msgpack"):
            raise ValueError(f"the Flax backend saves format 'safetensors' or 'msgpack', got {format!r}")
        save_pretrained_files(
            directory, self.config, to_canonical(self), self.head, format=format, max_shard_size=max_shard_size
        )

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


def _resized(vector: jax.Array, n: int, fill: float) -> jax.Array:
    """`vector` cut or padded with `fill` to length n."""
    keep = min(n, vector.shape[0])
    return jnp.full((n,), fill, dtype=vector.dtype).at[:keep].set(vector[:keep])


# ---------------------------------------------------------------------------- 12. the encoder model

def _nothing_masked(mask: Optional[jax.Array]) -> bool:
    """True when `mask` keeps every position. Under jit the values are unknown: the mask is
    then applied as given (no data-dependent branch)."""
    return mask is None or (not _is_traced(mask) and bool(np.all(np.asarray(mask))))


# `unpad=True` rounds the packed stream up to a multiple of this many slots: a few budgets (few
# compilations) for a little work on unused slots.
PACK_MULTIPLE = 64


def packing_budget(attention_mask: Optional[jax.Array], unpad: bool | int) -> Optional[int]:
    """The static number of slots of an `unpad` call's packed stream; None when it computes on
    the padded batch (`unpad=False`, or nothing is padded). `unpad=True` takes the real tokens
    rounded up to a multiple of PACK_MULTIPLE, which needs the mask's values: under `jit` give
    the budget itself, `unpad=N` (a Python int, at least the batch's real tokens)."""
    if isinstance(unpad, (bool, np.bool_)) or unpad is None:
        if not unpad:
            return None
        unpad = True
    elif not isinstance(unpad, (int, np.integer)) or unpad < 1:
        raise ValueError(f"unpad must be True, False or the token budget (a positive int), got {unpad!r}")
    if _nothing_masked(attention_mask):
        return None
    size = int(np.prod(np.shape(attention_mask)))
    if _is_traced(attention_mask):
        if unpad is True:
            raise ValueError(
                "unpad=True sizes the packed stream from the attention mask's values, unknown under jit: give "
                "the token budget instead, unpad=N with N a Python int >= the real tokens of the batch"
            )
        return min(int(unpad), size)
    real = int(np.count_nonzero(np.asarray(attention_mask)))
    if unpad is True:
        return min(-(-real // PACK_MULTIPLE) * PACK_MULTIPLE, size)
    if real > unpad:
        raise ValueError(f"unpad={unpad} slots cannot hold the {real} real tokens of this batch")
    return min(int(unpad), size)


def packing_for(attention_mask: Optional[jax.Array], unpad: bool | int) -> Optional[Packing]:
    """The packing of an `unpad` call, None when it does not unpad or nothing is padded."""
    budget = packing_budget(attention_mask, unpad)
    return None if budget is None else pack(attention_mask, budget)


class FlaxRobertaModel(FlaxRobertaPreTrainedModel):
    """The RoBERTa encoder (a decoder with `is_decoder`, plus cross-attention with
    `add_cross_attention`): ids (B, T) -> states (B, T, H) and, with the pooling layer, the
    pooled first token (B, H)."""

    head = "model"

    def __init__(
        self, config: RobertaConfig, add_pooling_layer: bool = True, *, dtype: Any = jnp.float32,
        param_dtype: Any = None, attn_implementation: Optional[str] = None, rngs: Optional[nnx.Rngs] = None,
    ):
        super().__init__(config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=_rngs(rngs))
        self.embeddings = FlaxRobertaEmbeddings(config, **kw)
        self.encoder = FlaxRobertaEncoder(config, **kw)
        self.pooler = FlaxRobertaPooler(config, **kw) if add_pooling_layer else None

    def _needs_einsum(self, output_attentions: bool, head_mask: Optional[jax.Array]) -> bool:
        """Whether this call needs what only the einsum path does (v4's fallback, said once)."""
        if self.attn_implementation == "einsum":
            return True
        if output_attentions or head_mask is not None or self.config.position_embedding_type != "absolute":
            _warn_once(
                "dot_product attention cannot return attention probabilities, apply head_mask or add relative "
                "position scores; using einsum attention for such calls. Build the model with "
                "attn_implementation='einsum' to silence this."
            )
            return True
        return False

    def _use_fast(self, output_attentions: bool, head_mask: Optional[jax.Array], deterministic: bool) -> bool:
        """jax.nn.dot_product_attention unless this call needs what only the einsum path does.
        It has no dropout either: training with attention dropout takes the einsum path too."""
        if self._needs_einsum(output_attentions, head_mask):
            return False
        return deterministic or self.config.attention_probs_dropout_prob == 0.0

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
        self, attention_mask: Optional[jax.Array], unpad: bool | int, needs_einsum: bool, past_key_values: Any,
        use_cache: bool, encoder_hidden_states: Optional[jax.Array],
    ) -> Optional[Packing]:
        """The packing of an `unpad` forward; None when nothing is padded, or when the call
        needs the padded layout (a cache, cross-attention, what only einsum attention does)."""
        budget = packing_budget(attention_mask, unpad)
        if budget is None:
            return None
        if needs_einsum or past_key_values is not None or use_cache or encoder_hidden_states is not None:
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

    def _self_attention_mask(
        self,
        attention_mask: Optional[jax.Array],
        batch: int,
        length: int,
        key_length: int,
        query_offset: Any,
        use_fast: bool,
        fixed_cache: bool,
    ) -> tuple[Optional[jax.Array], bool]:
        """The boolean mask (B, 1, 1 or T, S) of the self-attention and whether the fast path
        should apply the causal mask itself. (None, ...) when nothing is masked, so the fast
        kernels run. Query t sits at position query_offset + t, key s at s."""
        causal = self.config.is_decoder
        if _nothing_masked(attention_mask):
            if not causal or (length == 1 and not fixed_cache):
                return None, False  # one new token may see every cached one
            if use_fast and key_length == length:
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
    ) -> BaseModelOutputWithPoolingAndCrossAttentions | tuple:
        """input_ids (B, T) or inputs_embeds (B, T, H); attention_mask (B, P + T) with P cached
        positions (1 = attend, 0 = padding). Returns last_hidden_state (B, T, H), pooler_output
        (B, H), and on request hidden_states, attentions, cross_attentions, past_key_values.

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
        them up to a multiple of PACK_MULTIPLE). A budget too small gives NaN states, never
        numbers that miss part of a sequence (with `enable_jit_checks()`, a ValueError).
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

        query_offset = cache_index if fixed_cache else past_length
        key_length = past_length if fixed_cache else past_length + T
        use_fast = self._use_fast(output_attentions, head_mask, deterministic)
        packing = None
        if unpad:
            packing = self._packing(
                attention_mask, unpad, self._needs_einsum(output_attentions, head_mask), past_key_values, use_cache,
                encoder_hidden_states,
            )
        if packing is None:
            embedding_output = self.embeddings(
                input_ids, token_type_ids, position_ids, inputs_embeds, query_offset, deterministic
            )
            mask, is_causal = self._self_attention_mask(
                attention_mask, B, T, key_length, query_offset, use_fast, fixed_cache
            )
        else:
            # Positions come from the padded batch; then each input keeps its real tokens: (1, N, ...).
            if position_ids is None:
                position_ids = self.embeddings.position_ids(input_ids, inputs_embeds)

            def real(x: Optional[jax.Array]) -> Optional[jax.Array]:
                return None if x is None else unpad_rows(jnp.broadcast_to(x, (B, T, *jnp.shape(x)[2:])), packing)[None]

            embedding_output = self.embeddings(
                real(input_ids), real(token_type_ids), real(position_ids), real(inputs_embeds), 0, deterministic
            )
            mask, is_causal = None, config.is_decoder
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
            use_fast=use_fast,
            is_causal=is_causal,
            cache_index=cache_index,
            deterministic=deterministic,
            packing=packing,
        )
        if packing is not None:

            def restore(states: jax.Array) -> jax.Array:
                # (1, N, H) -> (B, T, H); all NaN when a budget given under jit was too small.
                return jnp.where(packing.fits, repad(states[0], packing), jnp.nan)

            outputs.last_hidden_state = restore(outputs.last_hidden_state)
            if outputs.hidden_states is not None:
                outputs.hidden_states = tuple(restore(h) for h in outputs.hidden_states)
        if self.pooler is not None:
            outputs.pooler_output = self.pooler(outputs.last_hidden_state)
        return outputs if return_dict else outputs.to_tuple()
