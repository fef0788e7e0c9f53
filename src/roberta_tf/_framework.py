"""TensorFlow / Keras machinery that the model text uses but is not the model: the output
classes as Keras tree nodes, sublayers a user may replace after build (a LoRA wrapper), input
checks that work eagerly, in a graph and (where they can) under XLA, dtype policies, the Keras
initialisers of v4's weights, variable replacement, `device_map` placement, the deferred creation
of variables from a checkpoint, and the SavedModel export.

The same module name in every backend (`roberta_pt/_framework.py`, `roberta_flax/_framework.py`)
holds that backend's equivalent, so `modeling.py`, `heads.py`, `convert.py` and `training.py`
read as parallel texts.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import keras
import numpy as np
import optree
import tensorflow as tf

# no public API: Keras 3 keeps the variables a `StatelessScope(initialize_variables=False)` left
# uninitialised in a process-wide list, and offers no public way to initialise or forget some of them.
from keras.src.backend.common import global_state as _keras_global_state

# no public API: whether the graph being traced is compiled by XLA (where shapes are static and
# assertions are compiled away) is known only to TF's control-flow utilities.
from tensorflow.python.ops import control_flow_util as _control_flow_util

from roberta_core.config import RobertaConfig
from roberta_core.outputs import OUTPUT_CLASSES
from roberta_core.pretrained import whole_model_device
from roberta_core.validation import IGNORE_INDEX, check_range, max_length_for, range_message

__all__ = [
    "register_outputs",
    "ReplaceableSublayers",
    "check_values",
    "check_input_dtypes",
    "shape_of",
    "is_dynamic",
    "check_dynamic_shapes",
    "as_tensor",
    "in_xla",
    "dims",
    "resolve_dtype",
    "resolve_device",
    "replace_variable",
    "deferred_variables",
    "initialize_deferred",
    "is_deferred",
    "write_saved_model",
    "eager_float32",
    "layer_norm_eager",
    "gelu_eager",
    "LayerNormalization",
    "Dropout",
]


# ---------------------------------------------------------------------------- outputs as pytrees

def register_outputs() -> None:
    """Make the `roberta_core.outputs` classes nodes of Keras' tree utilities (optree, namespace
    'keras'), so `predict` concatenates them batch by batch. `tf.nest` needs nothing: they are
    mappings, rebuilt from (key, value) pairs."""
    for cls in OUTPUT_CLASSES:
        try:
            optree.register_pytree_node(
                cls,
                lambda out: (list(out.values()), list(out.keys()), list(out.keys())),
                lambda keys, values, cls=cls: cls(zip(keys, values)),
                namespace="keras",
            )
        except ValueError:
            pass  # already registered (a re-imported module)


# ---------------------------------------------------------------------------- replaceable sublayers

class ReplaceableSublayers:
    """Mixin of the model's Keras layers and models: a built layer's sublayer (`query`, a
    `dense`, the classifier) may be replaced by a layer that wraps or stands in for it (a LoRA
    Dense, a quantised layer), as Keras 2 layers allowed, and the replacement is what the call
    runs and what `trainable_weights` lists. Keras 3 refuses any new state on a built layer; here
    the new layer takes the old one's place in the layer's tracking, and any other new state
    after build is still refused."""

    def __setattr__(self, name: str, value: Any) -> None:
        tracker = self.__dict__.get("_tracker")
        old = self.__dict__.get(name)
        if (
            tracker is not None and tracker.locked and value is not old
            and isinstance(old, keras.layers.Layer) and isinstance(value, keras.layers.Layer)
            and tracker.is_in_store("layers", old) and not tracker.is_in_store("layers", value)
        ):
            # no public API: Keras' tracker swaps one tracked layer for another (its lock guards
            # additions only); the tracking below then finds the new layer already stored.
            tracker.replace_tracked_value("layers", old, value)
        super().__setattr__(name, value)


# ---------------------------------------------------------------------------- input checks

class ValueRangeError(ValueError, tf.errors.InvalidArgumentError):
    """An id (or label) out of its table's range, found eagerly: the shared ValueError, and also
    TensorFlow's InvalidArgumentError, what v4 TF raises for it (its embeddings' bounds check, a
    `tf.debugging` assertion) and what a graph-mode call here raises."""

    def __init__(self, *args: Any):
        # (message), or TensorFlow's (node_def, op, message, ...) when its error handling rebuilds one
        node_def, op, message = (None, None, args[0]) if len(args) == 1 else args[:3]
        tf.errors.InvalidArgumentError.__init__(self, node_def, op, message)
        self.args = (message,)

    def __str__(self) -> str:
        return self.message


def check_values(name: str, values: tf.Tensor, upper: int, *, lower: int = 0, allow_ignore: bool = False) -> tf.Tensor:
    """Fail fast when integer `values` (ids, token types, labels) leave [lower, upper): on a GPU
    `tf.gather` returns zeros for an index out of range instead of failing.

    Eagerly this reads min and max to the host and raises the shared ValueError (a
    `ValueRangeError`, also TensorFlow's InvalidArgumentError as v4 TF raises). Inside
    `tf.function` it is a graph assertion (InvalidArgumentError) with the same message, and the
    returned tensor depends on it, so no lookup runs first. XLA (`jit_compile=True`) compiles
    assertions away: there, check the inputs with an eager or plain `tf.function` call first
    (`model.check_inputs`). With `allow_ignore`, -100 is allowed too. Returns `values`.
    """
    if values.dtype.is_floating or values.dtype.is_complex or values.dtype == tf.bool:
        raise TypeError(f"{name} must be an integer tensor, got {values.dtype.name}")
    checked = values
    if allow_ignore:
        # The min is over the other values.
        checked = tf.where(values == IGNORE_INDEX, tf.cast(lower, values.dtype), values)
    if tf.executing_eagerly():
        lo, hi = tf.reduce_min(checked), tf.reduce_max(checked)
        try:
            check_range(name, int(lo), int(hi), upper, lower=lower, allow_ignore=allow_ignore)
        except ValueError as error:
            raise ValueRangeError(str(error)) from None
        return values
    message = range_message(name, upper, lower, allow_ignore)
    checks = [
        tf.debugging.assert_greater_equal(checked, tf.cast(lower, checked.dtype), message=message),
        tf.debugging.assert_less(checked, tf.cast(upper, checked.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(values)


def check_input_dtypes(
    attention_mask: Optional[tf.Tensor], inputs_embeds: Optional[tf.Tensor]
) -> Optional[tf.Tensor]:
    """The dtypes of the inputs that are not ids: `inputs_embeds` must be floating (a TypeError
    naming it otherwise); `attention_mask` may be integer, floating or bool (as v4 TF, which casts
    it), returned as given. A complex or string mask is a TypeError."""
    if inputs_embeds is not None and not inputs_embeds.dtype.is_floating:
        raise TypeError(
            f"inputs_embeds must be a floating tensor (float16, bfloat16, float32 or float64), "
            f"got {inputs_embeds.dtype.name}; pass token ids as input_ids"
        )
    if attention_mask is not None and not (
        attention_mask.dtype.is_integer or attention_mask.dtype.is_floating or attention_mask.dtype == tf.bool
    ):
        raise TypeError(f"attention_mask must be an integer, floating or bool tensor, got {attention_mask.dtype.name}")
    return attention_mask


def shape_of(tensor: Optional[tf.Tensor]) -> Optional[tuple[int, ...]]:
    """The static shape for the core's checks. A dimension known only at run time (a serving
    signature of any batch and length) reads as 1; `check_dynamic_shapes` covers it."""
    return None if tensor is None else tuple(1 if d is None else d for d in tensor.shape)


def is_dynamic(*tensors: Optional[tf.Tensor]) -> bool:
    """True when a shape of `tensors` is known only at run time."""
    return any(t is not None and not t.shape.is_fully_defined() for t in tensors)


def check_dynamic_shapes(config: RobertaConfig, inputs: tf.Tensor, attention_mask: Optional[tf.Tensor],
                         token_type_ids: Optional[tf.Tensor], past_length: Any) -> list:
    """The shape checks `check_forward_inputs` cannot make on dimensions known only at run
    time (a serving signature of any batch and length), as graph assertions."""
    B, T = tf.shape(inputs)[0], tf.shape(inputs)[1]
    limit = max_length_for(config)
    checks = [tf.debugging.assert_less_equal(
        past_length + T, limit,
        message=f"sequence length (cached + new) exceeds the {limit} tokens this model's position table serves "
                f"(max_position_embeddings={config.max_position_embeddings}); truncate the input",
    )]
    if attention_mask is not None:
        checks.append(tf.debugging.assert_equal(
            tf.shape(attention_mask), tf.stack([B, past_length + T]),
            message="attention_mask must have shape (batch, cached + new length) to match the inputs",
        ))
    if token_type_ids is not None:
        checks.append(tf.debugging.assert_equal(
            tf.shape(token_type_ids), tf.stack([B, T]), message="token_type_ids must have the shape of the inputs",
        ))
    return checks


def as_tensor(value: Any) -> Any:
    """NumPy arrays and (nested) lists of numbers as tensors; anything else (tensors, flags,
    None, a cache's tuples) as given."""
    return tf.convert_to_tensor(value) if isinstance(value, (np.ndarray, np.generic, list)) else value


# ---------------------------------------------------------------------------- graphs and XLA

def in_xla() -> bool:
    """True while tracing for XLA (`tf.function(jit_compile=True)`), where shapes are static."""
    return _control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def dims(x: tf.Tensor) -> list:
    """The shape of `x`, static sizes as ints and the others as scalar tensors."""
    if x.shape.is_fully_defined():
        return x.shape.as_list()
    dynamic = tf.shape(x)
    return [dynamic[i] if d is None else d for i, d in enumerate(x.shape)]


# ---------------------------------------------------------------------------- initialisers

def _normal(config: RobertaConfig, zero_row: Optional[int] = None):
    """v4's weight initialisation: normal(0, initializer_range); an embedding's padding row zero."""
    normal = keras.initializers.RandomNormal(stddev=config.initializer_range)
    if zero_row is None:
        return normal

    def init(shape, dtype=None):
        table = normal(shape, dtype)
        return tf.tensor_scatter_nd_update(table, [[zero_row]], tf.zeros((1, shape[1]), table.dtype))

    return init


def _dense(config: RobertaConfig, units: int, name: str, dtype: Any, use_bias: bool = True) -> keras.layers.Dense:
    return Dense(
        units, use_bias=use_bias, kernel_initializer=_normal(config), bias_initializer="zeros", dtype=dtype, name=name
    )


def _embedding(config: RobertaConfig, rows: int, dim: int, name: str, dtype: Any,
               padding_idx: Optional[int] = None) -> keras.layers.Embedding:
    return Embedding(
        rows, dim, embeddings_initializer=_normal(config, padding_idx), dtype=dtype, name=name
    )


def _layer_norm(config: RobertaConfig, name: str, dtype: Any) -> keras.layers.LayerNormalization:
    return LayerNormalization(epsilon=config.layer_norm_eps, dtype=dtype, name=name)


def _dropout(rate: float, dtype: Any) -> keras.layers.Dropout:
    return Dropout(rate, dtype=dtype)


# ---------------------------------------------------------------------------- eager kernels
#
# Run op by op (eager training under a GradientTape), every TF op is a kernel launch and a pass
# over memory, and the tape differentiates a formula op by op: Keras' LayerNormalization takes
# ~15 ops forward and back, its Dropout a stateless_dropout whose gradient re-selects through
# zeros, its Dense a `tf.tensordot` with a dozen small shape ops. The four below compute the same
# values in fewer ops and passes, LayerNorm and GELU with the gradient written out.
# Only eagerly and in float32: in a graph, grappler and XLA fuse the library formulas anyway
# (and match fused kernels by their shape), and half-precision policies keep Keras' upcasting.

def eager_float32(x: tf.Tensor) -> bool:
    """True when `x` is computed op by op in float32 (where the kernels below are used)."""
    return tf.executing_eagerly() and x.dtype == tf.float32


def layer_norm_eager(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float) -> tf.Tensor:
    """LayerNorm over the last axis with its gradient written out: (..., H) -> (..., H)."""

    @tf.custom_gradient
    def norm(x, gamma, beta):
        centred = x - tf.reduce_mean(x, axis=-1, keepdims=True)
        inv = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True) + epsilon)  # (..., 1)
        xhat = centred * inv

        def grad(g):
            rows = list(range(len(x.shape) - 1))
            dxhat = g * gamma
            # d/dx of (x - mean) * rsqrt(var + eps): project out the mean and the xhat direction.
            dx = inv * (dxhat - tf.reduce_mean(dxhat, axis=-1, keepdims=True)
                        - xhat * tf.reduce_mean(dxhat * xhat, axis=-1, keepdims=True))
            return dx, tf.reduce_sum(g * xhat, axis=rows), tf.reduce_sum(g, axis=rows)

        return xhat * gamma + beta, grad

    return norm(x, gamma, beta)


def gelu_eager(x: tf.Tensor) -> tf.Tensor:
    """Exact (erf) GELU with its gradient Φ(x) + x·φ(x) written out."""

    @tf.custom_gradient
    def gelu(x):
        cdf = 0.5 * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))  # Φ(x)

        def grad(g):
            return g * (cdf + x * ((1.0 / math.sqrt(2.0 * math.pi)) * tf.exp(-0.5 * tf.square(x))))

        return x * cdf, grad

    return gelu(x)


@keras.saving.register_keras_serializable(package="roberta_tf")
class Dense(keras.layers.Dense):
    """Keras' Dense (same weights, names and config); eagerly in float32 on a static shape it is
    one 2-D product and a bias add. Keras' `ops.matmul` goes through `tf.tensordot`, whose shape
    bookkeeping (a dozen small ops and Python calls per layer) costs a roberta-base forward in
    eager mode several percent; the product itself is the same."""

    def call(self, inputs, training=None):
        if eager_float32(inputs) and inputs.shape.rank >= 2 and inputs.shape.is_fully_defined():
            kernel = tf.convert_to_tensor(self.kernel)  # with Keras' LoRA enabled, kernel + A @ B
            if kernel.dtype == tf.float32:
                shape = inputs.shape.as_list()
                x = tf.matmul(tf.reshape(inputs, (-1, shape[-1])) if len(shape) > 2 else inputs, kernel)
                if self.bias is not None:
                    x = tf.nn.bias_add(x, tf.convert_to_tensor(self.bias))
                if len(shape) > 2:
                    x = tf.reshape(x, shape[:-1] + [self.units])
                return x if self.activation is None else self.activation(x)
        return super().call(inputs, training=training)


@keras.saving.register_keras_serializable(package="roberta_tf")
class Embedding(keras.layers.Embedding):
    """Keras' Embedding (same weights, names and config), its table also under v4 TF's name:
    `weight` (v4 code reads `model.get_input_embeddings().weight`)."""

    @property
    def weight(self):
        return self.embeddings


@keras.saving.register_keras_serializable(package="roberta_tf")
class LayerNormalization(keras.layers.LayerNormalization):
    """Keras' LayerNormalization (same weights, names and config); eagerly in float32 over the
    last axis it runs `layer_norm_eager`."""

    def call(self, inputs):
        axis = list(self.axis) if isinstance(self.axis, (list, tuple)) else [self.axis]
        if eager_float32(inputs) and self.center and self.scale and not self.rms_scaling \
                and axis in ([-1], [len(inputs.shape) - 1]):
            return layer_norm_eager(inputs, tf.convert_to_tensor(self.gamma), tf.convert_to_tensor(self.beta),
                                    self.epsilon)
        return super().call(inputs)


@keras.saving.register_keras_serializable(package="roberta_tf")
class Dropout(keras.layers.Dropout):
    """Keras' Dropout, drawing from the layer's own seed generator as Keras does (so a checkpointed
    layer's rerun, which rewinds the generator, replays the same mask); eagerly in float32 the
    mask is one uniform draw and one multiply, whose gradient is one multiply."""

    def call(self, inputs, training=False):
        if training and 0.0 < self.rate < 1.0 and self.noise_shape is None and eager_float32(inputs):
            uniform = tf.random.stateless_uniform(tf.shape(inputs), seed=self.seed_generator.next(), dtype=inputs.dtype)
            keep = tf.cast(uniform >= self.rate, inputs.dtype) * (1.0 / (1.0 - self.rate))
            return inputs * keep
        return super().call(inputs, training=training)


# ---------------------------------------------------------------------------- dtypes and variables

DTYPES = ("float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16")


def resolve_dtype(dtype: Any, state: Mapping[str, np.ndarray]) -> str:
    """`from_pretrained`'s dtype as a Keras dtype policy: None is float32 (as v4), 'auto' the
    checkpoint's own; Keras' mixed policies compute in half precision on float32 variables."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, keras.DTypePolicy):
        return dtype.name
    if isinstance(dtype, tf.DType):
        dtype = dtype.name
    if dtype == "auto":
        return next((str(np.asarray(a).dtype) for a in state.values()), "float32")
    if dtype in DTYPES:
        return dtype
    raise ValueError(f"dtype must be a tf floating dtype, 'auto' or one of {', '.join(DTYPES)}; got {dtype!r}")


_DEVICE_MAP_VALUES = "'cpu', 'auto', 'gpu', 'cuda', 'cuda:N', 'gpu:N', '/GPU:N', a GPU index or {'': device}"


def resolve_device(device_map: Any) -> Optional[str]:
    """Where `from_pretrained` makes the variables, from v4's `device_map`: None or 'auto' leave
    TensorFlow's own placement (the first GPU when there is one), 'cpu' the CPU, 'cuda'/'gpu',
    'cuda:1', '/GPU:1' or an int GPU index that GPU; `{"": device}` is the whole model on one
    device. The model is not split over devices: a map that places modules apart is refused, as
    is a GPU TensorFlow does not see. Returns a TF device name, or None for the default."""
    if device_map is None:
        return None
    device_map = whole_model_device(device_map)
    if isinstance(device_map, bool) or not isinstance(device_map, (str, int)):
        raise ValueError(f"device_map must be {_DEVICE_MAP_VALUES}; got {device_map!r}")
    if device_map == "auto":
        return None
    if isinstance(device_map, str) and device_map.lower() in ("cpu", "/cpu:0", "cpu:0"):
        return "/CPU:0"
    index: Any = device_map
    if isinstance(device_map, str):
        kind, _, number = device_map.lower().lstrip("/").replace("device:", "").partition(":")
        if kind not in ("cuda", "gpu") or not (number == "" or number.isdigit()):
            raise ValueError(f"device_map must be {_DEVICE_MAP_VALUES}; got {device_map!r}")
        index = int(number or 0)
    if index < 0:
        raise ValueError(f"device_map must be {_DEVICE_MAP_VALUES}; got {device_map!r}")
    gpus = tf.config.list_logical_devices("GPU")
    if index >= len(gpus):
        raise ValueError(
            f"device_map={device_map!r} asks for GPU {index}, but TensorFlow sees {len(gpus)} GPU(s) "
            "(use 'cpu' or 'auto')"
        )
    return f"/GPU:{index}"


def replace_variable(layer: keras.layers.Layer, attribute: str, value: Any) -> None:
    """Give `layer.<attribute>` a new variable holding `value`: TF variables have a fixed shape,
    so resizing a table means a new one (a compiled `fit` must be compiled again)."""
    old = getattr(layer, attribute)
    # no public API: a built Keras layer locks its variable tracker; replacing a variable means
    # untracking the old one and unlocking the tracker for the new one.
    layer._untrack_variable(old)
    layer._tracker.unlock()
    new = layer.add_weight(
        shape=value.shape, dtype=old.dtype, trainable=old.trainable, name=old.name,
        initializer=lambda shape, dtype=None: tf.cast(value, dtype),
    )
    setattr(layer, attribute, new)
    layer._tracker.lock()


def _pending() -> list:
    """Keras' process-wide list of the variables a stateless scope left uninitialised."""
    return _keras_global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)


@contextlib.contextmanager
def deferred_variables() -> Iterator[None]:
    """The span of a load into a model built under `keras.StatelessScope(initialize_variables=False)`
    (its variables created without values, given them by `initialize_deferred`: no random weights
    drawn only to be overwritten). Leaves no state behind when it fails: Keras keeps such
    variables in a process-wide list until they are initialised, and a failure in between (an
    array that cannot become a weight, a bad argument) left them there, some initialised, which
    broke every later model build in the process ("Variable seed_generator... is already
    initialized"). On any error the variables made inside are dropped from that list."""
    start = len(_pending())
    try:
        yield
    except BaseException:
        del _pending()[start:]
        raise


def is_deferred(variable: keras.Variable) -> bool:
    """True for a variable created by `deferred_variables` and not yet given a value."""
    return variable._value is None  # no public API: Keras says only by raising on a read


def initialize_deferred(model: keras.Model, initializers: Mapping[int, Callable]) -> None:
    """Give every variable of `model` still without a value (see `deferred_variables`) its value,
    in creation order: `initializers[id(variable)]() -> tensor` where given, else its own
    initialiser. Keras' list of pending variables loses this model's variables whether or not
    this succeeds (a model that failed to load is dropped by its caller; its variables must not
    break the next build)."""
    own = {id(v) for v in model.variables}  # the weights and the dropout layers' seed states
    try:
        for variable in [v for v in _pending() if id(v) in own]:
            if not is_deferred(variable):
                continue
            init = initializers.get(id(variable))
            if init is not None:
                # no public API: Keras initialises a deferred variable from its `_initializer`.
                variable._initializer = lambda shape, dtype, init=init: init()
            variable._deferred_initialize()
    finally:
        _pending()[:] = [v for v in _pending() if id(v) not in own]


# ---------------------------------------------------------------------------- SavedModel export

def write_saved_model(model: keras.Model, directory: str | os.PathLike, serve: Callable,
                      signatures: Any = None) -> Path:
    """Write `model` as a TensorFlow SavedModel whose `serve` endpoint, also its `serving_default`
    signature, is the `tf.function` `serve` (with its input signature), atomically: written beside
    `directory`, then renamed (an existing one is replaced). With `signatures` (v4's
    `save_pretrained(..., signatures=...)`: a function or a {name: function} dict) TensorFlow's
    saver writes those instead."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        if signatures is not None:
            tf.saved_model.save(model, str(staging), signatures=signatures)
        else:
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serve", serve)  # the first endpoint is also `serving_default`
            archive.write_out(str(staging), verbose=False)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old)
        else:
            os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
