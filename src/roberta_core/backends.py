"""The backend contract: what a backend declares (one `Backend` entry below) and what its package
provides (the `Protocol`s). Every place that lists backends — `runtime`, the recipe, the
`roberta` command's `--backend`, `roberta parity` and the conformance suite, the benchmarks —
reads `BACKENDS`.

Adding a fourth backend means one new package that provides the modules below and one entry in
`BACKENDS`:

    <package>/__init__.py   the model classes, `<prefix>RobertaModel` ... (names in `weights.HEADS`)
    <package>/convert.py    `to_canonical`, `from_canonical`, `call_numpy`       (`ConvertModule`)
    <package>/training.py   `<prefix>Trainer`                                    (`Trainer`)
    <package>/adapter.py    `Adapter`, what `roberta parity` runs                (`ConformanceAdapter`)

Nothing here imports a framework: a backend is only named until it is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = [
    "Backend",
    "BACKENDS",
    "NAMES",
    "PREFERRED",
    "get",
    "model_class",
    "map_arrays",
    "generation_step_inputs",
    "first_token_only_allowed",
    "resolve_attn_implementation",
    "ConvertModule",
    "Trainer",
    "ConformanceAdapter",
]


@dataclass(frozen=True)
class Backend:
    """One backend, as the rest of the library knows it before importing it."""

    name: str  # "pt" | "tf" | "flax": the value of every `--backend` / `backend=` argument
    package: str  # the Python package: "roberta_pt"
    prefix: str  # class-name prefix: "" | "TF" | "Flax" ("TFRobertaForMaskedLM")
    frameworks: tuple[str, ...]  # modules that must be importable: ("jax", "flax")
    extra: str  # the pip extra that installs them: roberta3[<extra>]
    # `attn_implementation` values: the backend's own (first is the default), and the other
    # backends' names it accepts for the same path, so one setting serves every backend.
    attn_implementations: tuple[str, ...] = ()
    attn_aliases: Mapping[str, str] = field(default_factory=dict)
    # `roberta parity --device gpu` without --backends runs this backend only where it sees a GPU
    # (TensorFlow: the lent GPU machines have none, and its CPU build is the default install).
    gpu_optional: bool = False
    # Environment variables set (where unset) before a command imports the package.
    environment: Mapping[str, str] = field(default_factory=dict)

    def class_name(self, head_class: str) -> str:
        """`RobertaForMaskedLM` -> this backend's name for it (`TFRobertaForMaskedLM`)."""
        return self.prefix + head_class

    @property
    def framework(self) -> str:
        """The framework module named in messages (`torch`, `tensorflow`, `jax`)."""
        return self.frameworks[0]

    @property
    def trainer(self) -> str:
        """The trainer class name in `<package>.training`."""
        return self.prefix + "Trainer"


BACKENDS: dict[str, Backend] = {
    "pt": Backend(
        "pt", "roberta_pt", "", ("torch",), "torch",
        attn_implementations=("sdpa", "eager"), attn_aliases={"dot_product": "sdpa", "einsum": "eager"},
    ),
    "tf": Backend(
        # One attention path in TF (explicit einsums, which XLA fuses): every name takes it.
        "tf", "roberta_tf", "TF", ("tensorflow",), "tf",
        attn_implementations=("eager",), attn_aliases={"sdpa": "eager", "dot_product": "eager", "einsum": "eager"},
        gpu_optional=True,
        environment={"TF_CPP_MIN_LOG_LEVEL": "2"},  # TensorFlow's start-up notes are not for command users
    ),
    "flax": Backend(
        "flax", "roberta_flax", "Flax", ("jax", "flax"), "flax",
        attn_implementations=("dot_product", "einsum"), attn_aliases={"sdpa": "dot_product", "eager": "einsum"},
    ),
}
NAMES: tuple[str, ...] = tuple(BACKENDS)
# The order in which a command without --backend picks the first installed backend: Flax before
# TensorFlow, whose import alone takes seconds.
PREFERRED: tuple[str, ...] = ("pt", "flax", "tf")


def get(name: str) -> Backend:
    """The entry for `name`, or a ValueError listing the choices."""
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None


def model_class(name: str, head: str) -> type:
    """Backend `name`'s class for `head` (a key of `weights.HEADS`), from its package's exports;
    imports the package (and so its framework)."""
    from .weights import HEADS

    spec = get(name)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    package = importlib.import_module(spec.package)
    try:
        return getattr(package, spec.class_name(HEADS[head]))
    except AttributeError:
        raise ImportError(f"{spec.package} does not export {spec.class_name(HEADS[head])}") from None


def map_arrays(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """`leaf` applied to every array of an output field: an array, or nested tuples/lists of
    them (per-layer fields, caches), which come back as tuples."""
    if isinstance(value, (tuple, list)):
        return tuple(map_arrays(v, leaf) for v in value)
    return leaf(value)


def generation_step_inputs(input_ids: Any, past_key_values: Any, attention_mask: Any, use_cache: Any) -> dict:
    """v4's `prepare_inputs_for_generation` of every backend (peft's causal-LM wrapper reads it):
    the ids (B, T) a step runs on — with a cache, only those it has not seen — and the mask, which
    covers them all. Framework-free: it only slices and reads shapes."""
    if past_key_values is not None:
        input_ids = input_ids[:, past_key_values[0][0].shape[2]:]  # a layer's key: (B, heads, T_seen, D)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "past_key_values": past_key_values,
            "use_cache": use_cache}


def first_token_only_allowed(config: Any, *, returns_more: bool, cached: bool, cross: bool, training: bool) -> bool:
    """Whether every backend's `RobertaModel(first_token_only=True)` may compute the last layer for
    the first position only: not when the call returns every state or attention map
    (`returns_more`), has or keeps a cache, attends across (`cross`) or by relative position, is a
    decoder's, or trains (dropout would draw other masks than v4's). An `unpad` call may: its last
    layer's queries are each row's first real token, its keys and values the stream's."""
    return not (returns_more or cached or cross or training or config.is_decoder
                or config.position_embedding_type != "absolute")


def resolve_attn_implementation(backend: str, value: Optional[str]) -> str:
    """The one check of `attn_implementation` for every backend's models: None gives the backend's
    default, another backend's name its equivalent here; anything else is a ValueError."""
    spec = get(backend)
    if value is None:
        return spec.attn_implementations[0]
    resolved = spec.attn_aliases.get(value, value) if isinstance(value, str) else value
    if resolved not in spec.attn_implementations:
        raise ValueError(
            f"attn_implementation must be one of {spec.attn_implementations} (or the other backends' names "
            f"{tuple(spec.attn_aliases)}), got {value!r}"
        )
    return resolved


# ---------------------------------------------------------------------------- what a package provides


@runtime_checkable
class ConvertModule(Protocol):
    """`<package>.convert`: the model's parameters <-> the canonical NumPy dict (ARCHITECTURE §3)."""

    def to_canonical(self, model: Any) -> dict[str, np.ndarray]: ...

    def from_canonical(self, model: Any, state: Mapping[str, Any], *, allow_missing: bool = False) -> Any: ...

    def call_numpy(self, model: Any, inputs: Mapping[str, Any]) -> dict[str, Any]: ...


class Trainer(Protocol):
    """`<package>.training.<Prefix>Trainer(head, config, settings, *, state=None, seed=0, precision="auto")`:
    the recipe's optimisation step (AdamW, accumulation over micro-batches) on NumPy batches, and
    its state for checkpoints."""

    # One update from the micro-batches of a global batch; the loss averaged over `total_items`.
    def train_step(self, micro_batches: Sequence[Mapping[str, np.ndarray]], lr: float, total_items: int) -> float: ...

    def predict(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...  # evaluation-mode outputs

    def optimizer_state(self) -> dict[str, np.ndarray]: ...  # AdamW moments, canonical names

    def load_optimizer_state(self, state: Mapping[str, np.ndarray], step: int) -> None: ...

    def weights(self) -> dict[str, np.ndarray]: ...  # the model's canonical weights

    def save_pretrained(self, directory: Any) -> None: ...


class ConformanceAdapter(Protocol):
    """`<package>.adapter.Adapter(device)`: what the conformance runner (`roberta_core.parity`,
    `roberta parity`) asks of a backend; it relies on nothing else. `device` is "cpu" or "gpu"
    (RuntimeError when the framework sees no such device); `dtype` is "float32" or "bfloat16"."""

    name: str  # the backend's name in `BACKENDS`

    @staticmethod
    def sees_gpu() -> bool: ...  # whether the framework sees a GPU here

    def build(self, config: Any, head: str, dtype: str = "float32") -> Any: ...  # evaluation mode, on the device

    def load(self, model: Any, state: Mapping[str, np.ndarray]) -> None: ...  # canonical weights, every key the model owns

    # The backend's output mapping for NumPy inputs and flags (and a cache it returned before).
    def call(self, model: Any, inputs: Mapping[str, Any], past: Any = None, dtype: str = "float32") -> Any: ...

    def to_numpy(self, outputs: Any) -> dict[str, Any]: ...  # {field: float64 array, or tuples of them}

    # d objective(outputs) / d every parameter: {canonical key: float32 gradient, canonical layout}.
    def grads(self, model: Any, inputs: Mapping[str, Any], objective: Callable[[Any], Any]) -> dict[str, np.ndarray]: ...

    def weighted_sum(self, tensor: Any, weights: np.ndarray) -> Any: ...  # scalar sum(tensor * weights), differentiable
