"""The JAX/Flax machinery of the Flax backend, apart from the model text (`modeling.py`):
the outputs as pytrees, the value checks of ids and labels (eagerly, in a compiled eager call,
and under `jit` through `checkify`), the compiled eager call (`_compiled`), dtype resolution,
and the parameter builders (v4's initialisers, logical sharding axes, deferred initialisation
for `from_pretrained`). The other backends keep the same kind of machinery in their own
`_framework.py`.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from typing import Any, Callable, Mapping, Optional

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import checkify

from roberta_core.config import RobertaConfig
from roberta_core.outputs import OUTPUT_CLASSES
from roberta_core.pretrained import whole_model_device
from roberta_core.validation import IGNORE_INDEX, check_range, range_message

__all__ = [
    "LOGICAL_AXIS_RULES", "check_values", "checked", "shape_of", "resolve_dtype", "resolve_device",
    "V4_CALL_KEYWORDS", "linen_params", "nnx_params", "v4_model", "require_initialized", "v4_constructor",
    "LinenModule",
]

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
    numbers first (`_concrete_options`). v4's keywords `params`, `dropout_rng` and `train` make
    the call a pure function of them (`v4_model`).
    """
    signature = inspect.signature(call)

    @functools.wraps(call)
    def run(self: "FlaxRobertaPreTrainedModel", *args: Any, **kwargs: Any) -> Any:
        v4 = {name: kwargs.pop(name) for name in V4_CALL_KEYWORDS if name in kwargs}
        if v4.get("params") is None:
            require_initialized(self)
        if v4:
            # v4's functional call: the same call on a copy holding the given parameters and key.
            return run(v4_model(self, kwargs, **v4), *args, **kwargs)
        if jax.config.jax_disable_jit or jax.extend.core.get_opaque_trace_state(convention="nnx") != _EAGER_TRACE:
            return call(self, *args, **kwargs)
        graphdef, state = nnx.split(self)
        arguments = signature.bind(self, *args, **kwargs).arguments
        del arguments["self"]
        check_host_integers(self.config, arguments)
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


# ---------------------------------------------------------------------------- v4's functional call

# The keywords of v4 Flax's `__call__` that NNX models have no use for: the parameter tree, the
# key of dropout's masks and the train switch (v4: `model(**batch, params=p, dropout_rng=k, train=True)`).
V4_CALL_KEYWORDS = ("params", "dropout_rng", "train")


def _str_keys(tree: Mapping) -> dict:
    return {str(k): _str_keys(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def linen_params(model: nnx.Module) -> dict:
    """The model's parameters as v4 Flax's `params`: nested dicts of arrays keyed by module and
    parameter names (layers by their index as a string: `encoder/layer/0/attention/self/query/kernel`),
    `roberta` above the encoder of a head, none for the bare model. The arrays are the model's own
    (JAX arrays are immutable: changing the tree changes nothing in the model). A
    RoBERTa-PreLayerNorm head names that level `roberta_prelayernorm`, as v4 and its msgpack files do."""
    tree = _str_keys(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    prefix = getattr(model, "base_model_prefix", "roberta")
    if prefix != "roberta" and "roberta" in tree:  # in memory the encoder is `roberta` (ARCHITECTURE §3)
        tree = {prefix if k == "roberta" else k: v for k, v in tree.items()}
    return tree


def nnx_params(model: nnx.Module, params: Any) -> dict:
    """`params`, a v4-shaped tree (nested mappings of arrays, as `linen_params` gives; arrays may
    be traced), laid out as the model's NNX parameter state, after checking it holds every
    parameter of the model, no other, each with the model's shape (a ValueError listing what
    differs). The values are kept as they are: under `jax.grad` they stay the traced inputs."""
    missing, unexpected, mismatched = [], [], []

    def walk(own: dict, given: Any, path: str) -> dict:
        if not isinstance(given, Mapping):
            mismatched.append(f"{path or 'params'} is a {type(given).__name__}, expected a mapping of parameters")
            return {}
        names = {str(k): k for k in own}
        unexpected.extend(path + str(k) for k in given if str(k) not in names)
        given = {str(k): v for k, v in given.items()}
        out = {}
        for name, key in names.items():
            if name not in given:
                missing.append(path + name)
            elif isinstance(own[key], Mapping):
                out[key] = walk(own[key], given[name], f"{path}{name}/")
            elif isinstance(given[name], Mapping) or np.shape(given[name]) != np.shape(own[key]):
                got = "a mapping" if isinstance(given[name], Mapping) else tuple(np.shape(given[name]))
                mismatched.append(f"{path}{name} {got} != expected {tuple(np.shape(own[key]))}")
            else:
                out[key] = given[name]
        return out

    prefix = getattr(model, "base_model_prefix", "roberta")
    if prefix != "roberta" and isinstance(params, Mapping) and prefix in params:  # v4's PreLN level name
        params = {"roberta" if str(k) == prefix else k: v for k, v in params.items()}
    tree = walk(nnx.to_pure_dict(nnx.state(model, nnx.Param)), params, "")
    if missing or unexpected or mismatched:
        lines = [f"params do not match {type(model).__name__}'s parameters (model.params shows the tree it takes):"]
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")
                lines.append(f"{what} ({len(keys)}): {shown}")
        raise ValueError("\n".join(lines))
    return tree


def _reseeded(rest: nnx.State, key: Any) -> nnx.State:
    """The random streams of `rest` (dropout's) restarted from `key`: stream i draws from
    fold_in(key, i), its counter at 0. `key` is a typed key or v4's raw uint32 (2,) key."""
    key = jnp.asarray(key)
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.dtype != jnp.uint32 or key.ndim != 1:
            raise TypeError(f"dropout_rng must be a jax.random key, got an array of {key.dtype} {key.shape}")
        key = jax.random.wrap_key_data(key)
    flat, stream = [], 0
    for path, variable in nnx.to_flat_state(rest):
        value = variable.get_value()
        if isinstance(variable, nnx.RngKey):
            value, stream = jax.random.fold_in(key, stream), stream + 1
        elif isinstance(variable, nnx.RngCount):
            value = jnp.zeros_like(value)
        flat.append((path, value))
    return nnx.from_flat_state(flat)


def v4_model(
    model: nnx.Module, kwargs: dict[str, Any], params: Any = None, dropout_rng: Any = None, train: Optional[bool] = None
) -> nnx.Module:
    """The model a call with v4's keywords runs: a copy of `model` (merged from its graph) holding
    `params` and dropout streams seeded by `dropout_rng`, so the call is a pure function of them
    (under `jax.jit` and `jax.grad` too) and `model` itself is never changed. Sets the call's
    `deterministic` in `kwargs` from `train` (v4: dropout only with `train=True`, which needs a key)."""
    if train is not None and kwargs.get("deterministic") is not None:
        raise TypeError("give train= (v4) or deterministic= (NNX), not both")
    if kwargs.get("deterministic") is None:
        kwargs["deterministic"] = not train
    if not kwargs["deterministic"] and dropout_rng is None:
        raise ValueError("train=True turns dropout on: give its key as dropout_rng= (a jax.random key), as in v4")
    graphdef, own, rest = nnx.split(model, nnx.Param, ...)
    if params is not None:
        own = nnx.State(nnx_params(model, params))
    if dropout_rng is not None:
        rest = _reseeded(rest, dropout_rng)
    copy = nnx.merge(graphdef, own, rest)
    if params is not None and not getattr(copy, "_is_initialized", True):
        copy._is_initialized = True  # a model built with `_do_init=False`, given its parameters
    return copy


# ---------------------------------------------------------------------------- v4's construction and module

def require_initialized(model: Any) -> None:
    """v4's ValueError for a model built with `_do_init=False` whose parameters are used before
    it has any (`model.params = tree` gives it them; a call with `params=` needs none)."""
    if not getattr(model, "_is_initialized", True):
        raise ValueError(
            f"{type(model).__name__} was built with _do_init=False and has no parameters: call "
            "model.init_weights(rng, input_shape) and pass the tree as params= (or set model.params = tree)"
        )


def v4_constructor(init: Callable) -> Callable:
    """A model class's `__init__` that also takes v4 Flax's construction keywords:
    `input_shape` (the shape v4 traced to initialise; our parameters do not depend on it, it is
    kept as `model.input_shape`) and `_do_init` (False: the model is built without computing its
    parameters, as `from_pretrained` builds one before loading; `init_weights` then draws them,
    `model(..., params=tree)` runs on a tree, and `model.params` raises v4's ValueError until set)."""
    if getattr(init, "_v4_constructor", False):
        return init

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, input_shape: Any = (1, 1), _do_init: bool = True, **kwargs: Any) -> None:
        # v4's `model.key` (PRNGKey(seed)): the key `init_weights` redraws this model's values from,
        # read before building draws from `rngs` (a stream's base key, its counter not yet moved).
        key_data = _key_data(kwargs.get("rngs"), kwargs.get("seed"))
        if _do_init:
            init(self, *args, **kwargs)
        else:
            token = _deferring.set(True)
            try:
                init(self, *args, **kwargs)
            finally:
                _deferring.reset(token)
            self._is_initialized = False
        self.input_shape = tuple(input_shape)
        self._key_data = key_data

    __init__._v4_constructor = True
    return __init__


def _key_data(rngs: Any, seed: Any) -> Optional[tuple[int, ...]]:
    """The uint32 words of v4 Flax's `model.key`: `jax.random.PRNGKey(seed)` (seed 0 unless given),
    or the base key of `rngs`' "params" (else "default") stream; a tuple, kept as a static attribute
    (None when `rngs` holds a traced key: a model built under a JAX transform)."""
    stream = None
    if rngs is not None:
        stream = getattr(rngs, "params", None) if hasattr(rngs, "params") else getattr(rngs, "default", None)
    if stream is None:
        return tuple(int(w) for w in np.asarray(jax.random.PRNGKey(0 if seed is None else seed)).ravel())
    key = stream.key[...]
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if _is_traced(key):  # built under a transform: no concrete key to keep
        return None
    return tuple(int(w) for w in np.asarray(key).ravel())


# The positional parameters of v4 Flax's Linen modules (`model.module.apply(variables, *args)`):
# the bare model's and the causal LM's (its position ids third), the other heads' (no cross-attention).
_LINEN_ARGUMENTS = {
    "model": ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "encoder_hidden_states",
              "encoder_attention_mask", "init_cache", "deterministic", "output_attentions", "output_hidden_states",
              "return_dict"),
    "causal_lm": ("input_ids", "attention_mask", "position_ids", "token_type_ids", "head_mask", "encoder_hidden_states",
                  "encoder_attention_mask", "init_cache", "deterministic", "output_attentions", "output_hidden_states",
                  "return_dict"),
}
_LINEN_HEAD_ARGUMENTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "deterministic",
                         "output_attentions", "output_hidden_states", "return_dict")


def _params_key(rngs: Any) -> Any:
    """The key of parameter initialisation in Linen's `rngs`: a key, or {"params": key, ...}."""
    return rngs.get("params") if isinstance(rngs, Mapping) else rngs


class LinenModule:
    """v4 Flax's `model.module`: the model as a Linen-style pure function of a parameter tree.
    `apply({"params": tree}, input_ids, attention_mask, token_type_ids, position_ids, head_mask,
    deterministic=True, ...)` (v4's positional order per class: the causal LM takes position_ids
    third) is `model(..., params=tree, dropout_rng=rngs["dropout"], train=not deterministic)`, the
    same outputs; `init(rng, input_ids, ...)` is `{"params": model.init_weights(rng, shape)}`.
    Linen's `method=`, and the decoding cache (`init_cache=True`, a "cache" collection), are
    not taken: use the model's `init_cache` and `past_key_values`."""

    def __init__(self, model: Any):
        self.model = model

    @property
    def config(self) -> RobertaConfig:
        return self.model.config

    @property
    def dtype(self) -> Any:
        return self.model.dtype

    def _arguments(self, args: tuple, kwargs: dict) -> dict:
        names = _LINEN_ARGUMENTS.get(self.model.head, _LINEN_HEAD_ARGUMENTS)
        if len(args) > len(names):
            raise TypeError(f"{type(self.model).__name__}'s module takes at most {len(names)} positional inputs, "
                            f"got {len(args)}")
        arguments = dict(zip(names, args))
        both = sorted(set(arguments) & set(kwargs))
        if both:
            raise TypeError(f"{both} given both positionally and as keywords")
        arguments.update(kwargs)
        if arguments.pop("init_cache", False):
            raise NotImplementedError("module.apply(..., init_cache=True): use model.init_cache(batch, length)")
        return arguments

    def apply(self, variables: Mapping[str, Any], *args: Any, rngs: Any = None, method: Any = None,
              mutable: Any = False, **kwargs: Any) -> Any:
        if method is not None:
            raise NotImplementedError("module.apply(..., method=) is not taken: call the model's own methods")
        if not isinstance(variables, Mapping) or "params" not in variables:
            raise TypeError('module.apply takes the variables as {"params": tree} (v4: {"params": model.params})')
        if "cache" in variables:
            raise NotImplementedError('module.apply with a "cache" collection: give the cache as past_key_values=')
        arguments = self._arguments(args, kwargs)
        deterministic = arguments.pop("deterministic", True)
        dropout_rng = rngs.get("dropout") if isinstance(rngs, Mapping) else None
        outputs = self.model(**arguments, params=variables["params"], dropout_rng=dropout_rng,
                             train=not deterministic)
        return (outputs, {}) if mutable else outputs

    def init(self, rngs: Any, *args: Any, method: Any = None, **kwargs: Any) -> dict:
        if method is not None:
            raise NotImplementedError("module.init(..., method=) is not taken")
        arguments = self._arguments(args, kwargs)
        ids = arguments.get("input_ids")
        shape = tuple(np.shape(ids)) if ids is not None else (1, 1)
        return {"params": self.model.init_weights(_params_key(rngs), shape)}


def shape_of(array: Any) -> Optional[tuple[int, ...]]:
    return None if array is None else tuple(np.shape(array))


def check_embeds_dtype(inputs_embeds: Any) -> None:
    """Refuse `inputs_embeds` that are not floating point (integer or bool vectors are ids given
    in the wrong argument, or a caller's bug): a TypeError naming the dtypes allowed."""
    dtype = jnp.result_type(inputs_embeds)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"inputs_embeds must be a floating point array (float16, bfloat16, float32 or float64), got {dtype}; "
            "token ids go in input_ids"
        )


# The largest value of each id input (exclusive), as config fields: named in the refusal below.
_ID_LIMITS = {"input_ids": "vocab_size", "token_type_ids": "type_vocab_size", "position_ids": "max_position_embeddings"}


def check_host_integers(config: RobertaConfig, arguments: dict[str, Any]) -> None:
    """Refuse integer NumPy inputs that JAX would change on their way into a program: without
    `jax_enable_x64` an int64 array becomes int32 and wraps (2**32 + 5 would read row 5). Said
    while the values are still the caller's, in the eager checks' words for ids (`input_ids must
    be in 0..V-1`), and naming the integer range for other inputs (labels, positions)."""
    for name, value in arguments.items():
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.integer) or not value.size:
            continue
        target = np.dtype(jax.dtypes.canonicalize_dtype(value.dtype))
        if target == value.dtype:
            continue
        lo, hi, limits = int(value.min()), int(value.max()), np.iinfo(target)
        if limits.min <= lo and hi <= limits.max:
            continue
        if name in _ID_LIMITS:
            check_range(name, lo, hi, getattr(config, _ID_LIMITS[name]))
        raise ValueError(
            f"{name} must hold values within {target} ({limits.min}..{limits.max}), the integers JAX computes "
            f"with (jax_enable_x64 is off); got values from {lo} to {hi}"
        )


# ---------------------------------------------------------------------------- dtypes

_DTYPES = {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16, "float64": jnp.float64}


def resolve_dtype(dtype: Any, state: Optional[dict] = None) -> Any:
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


# ---------------------------------------------------------------------------- placement

_DEVICE_MAP_VALUES = "'cpu', 'auto', 'cuda' or 'gpu' (or 'cuda:N'), a GPU index, a jax.Device or {'': device}"


def _gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU backend at all
        return []


def resolve_device(device_map: Any) -> Optional[jax.Device]:
    """Where `from_pretrained` puts the weights, from v4's `device_map`: None when not given
    (JAX's default placement), 'auto' (JAX's default device: the GPU when there is one, else the
    CPU), 'cpu', 'cuda'/'gpu'/'cuda:N' or an int N (GPU N), a jax.Device, or `{"": device}`, the
    whole model on one device. The model is not split over devices: a map that places modules
    apart is refused, as is a GPU that JAX does not see."""
    if device_map is None:
        return None
    device_map = whole_model_device(device_map)
    if isinstance(device_map, jax.Device):
        return device_map
    index = None
    if isinstance(device_map, str):
        kind, _, number = device_map.partition(":")
        if kind == "auto" and not number:
            return jax.devices()[0]
        if kind == "cpu" and not number:
            return jax.devices("cpu")[0]
        if kind in ("cuda", "gpu") and (not number or number.isdigit()):
            index = int(number or 0)
    elif isinstance(device_map, int) and not isinstance(device_map, bool) and device_map >= 0:
        index = device_map
    if index is None:
        raise ValueError(f"device_map must be {_DEVICE_MAP_VALUES}; got {device_map!r}")
    gpus = _gpus()
    if not gpus:
        raise ValueError(
            f"device_map={device_map!r} asks for a GPU, but JAX sees none (its devices: "
            f"{', '.join(sorted({d.platform for d in jax.devices()}))}); use 'cpu' or 'auto'"
        )
    if index >= len(gpus):
        raise ValueError(f"device_map={device_map!r}: JAX sees {len(gpus)} GPU(s)")
    return gpus[index]


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


def _rngs(rngs: Optional[nnx.Rngs], seed: Optional[int] = None) -> nnx.Rngs:
    """The random streams for initialisation and dropout: `rngs` (NNX), or v4 Flax's `seed`
    (`FlaxRobertaForMaskedLM(config, seed=42)`; 0 unless given, v4's default)."""
    if rngs is not None and seed is not None:
        raise TypeError("give seed= (v4) or rngs= (NNX), not both")
    return rngs if rngs is not None else nnx.Rngs(0 if seed is None else seed)


# ---------------------------------------------------------------------------- dropout

def _flat_index(shape: tuple[int, ...]) -> jax.Array:
    """Each element's row-major index, uint32, built per axis so it stays elementwise (shardable)."""
    index, stride = jnp.zeros(shape, jnp.uint32), 1
    for axis in reversed(range(len(shape))):
        index = index + jax.lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride)
        stride *= shape[axis]
    return index


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> Optional[tuple[jax.Array, float]]:
    """Dropout's keep mask from a threefry key, four mask values per threefry block: each
    block's two 32-bit words give four 16-bit draws, and a value is kept when its draw is at
    least round(rate * 2**16). JAX's `bernoulli` spends a whole block (two words, XORed) on
    each value, which made the masks a tenth of a roberta-base training step on CPU. Returns
    (mask, the exact keep probability, 1 - threshold / 2**16, to scale by), or None where this
    does not apply (a key of another PRNG implementation, a rate within 2**-17 of 0 or 1, more
    than 2**32 blocks)."""
    if not (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and str(jax.random.key_impl(key)) == "threefry2x32"):
        return None
    threshold = round(rate * 2**16)
    if not 0 < threshold < 2**16:  # a rate within 2**-17 of 0 or 1: no 16-bit threshold keeps it
        return None
    *lead, last = shape if shape else (1,)
    blocks = (*lead, -(-last // 4))  # four values per block along the last axis
    if int(np.prod(blocks, dtype=np.int64)) >= 2**32:
        return None
    words = jax.random.key_data(key)
    high, low = jax.extend.random.threefry2x32_p.bind(
        words[0], words[1], jnp.zeros(blocks, jnp.uint32), _flat_index(blocks)
    )
    draws = jnp.stack([high & 0xFFFF, high >> 16, low & 0xFFFF, low >> 16], axis=-1)  # (*lead, L/4, 4)
    draws = draws.reshape(*lead, 4 * blocks[-1])[..., :last].reshape(shape)
    return draws >= threshold, 1.0 - threshold / 2**16


class Dropout(nnx.Dropout):
    """`nnx.Dropout` (same arguments, random stream and switches) whose mask costs a quarter of
    the random bits (`keep_mask`) when its key is threefry's, JAX's default; the kept values are
    scaled by the exact keep probability, so the expectation is the input's. Other keys, rates
    of 0 or 1, `broadcast_dims` and explicitly sharded inputs take `nnx.Dropout`'s own path."""

    def __call__(self, inputs: jax.Array, *, deterministic: Optional[bool] = None, rngs: Any = None) -> jax.Array:
        deterministic = self.deterministic if deterministic is None else deterministic
        stream = self.rngs if rngs is None else rngs
        # Explicitly sharded inputs (a mesh in their type) keep nnx.Dropout's sharded mask.
        explicit = not jax.typeof(inputs).sharding.mesh.empty
        if deterministic or not 0.0 < self.rate < 1.0 or self.broadcast_dims or stream is None or explicit:
            return super().__call__(inputs, deterministic=deterministic, rngs=rngs)
        if isinstance(stream, nnx.Rngs):
            key = stream[self.rng_collection]()
        elif isinstance(stream, nnx.RngStream):
            key = stream()
        else:
            key = stream
        fast = keep_mask(key, inputs.shape, self.rate) if isinstance(key, jax.Array) else None
        if fast is None:
            return super().__call__(inputs, deterministic=False, rngs=key)
        mask, keep = fast
        return jax.lax.select(mask, inputs / jnp.asarray(keep, inputs.dtype), jnp.zeros_like(inputs))


def _dropout(rate: float, *, rngs: nnx.Rngs) -> Dropout:
    return Dropout(rate, rngs=rngs)
