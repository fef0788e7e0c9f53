"""The backend contract: what a backend declares (one `Backend` entry below) and what its package
provides (the `Protocol`s). Every place that lists backends — `runtime`, the recipe, the
`roberta` command's `--backend`, the conformance suite, the benchmarks — reads `BACKENDS`.

Adding a fourth backend means one new package that provides the modules below and one entry in
`BACKENDS`. Nothing here imports a framework: a backend is only named until it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = [
    "Backend",
    "BACKENDS",
    "NAMES",
    "get",
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
    ),
    "flax": Backend(
        "flax", "roberta_flax", "Flax", ("jax", "flax"), "flax",
        attn_implementations=("dot_product", "einsum"), attn_aliases={"sdpa": "dot_product", "eager": "einsum"},
    ),
}
NAMES: tuple[str, ...] = tuple(BACKENDS)


def get(name: str) -> Backend:
    """The entry for `name`, or a ValueError listing the choices."""
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None


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
    """`<package>.convert`: the model's parameters <-> the canonical NumPy dict (DESIGN §3)."""

    def to_canonical(self, model: Any) -> dict[str, np.ndarray]: ...

    def from_canonical(self, model: Any, state: Mapping[str, Any], *, allow_missing: bool = False,
                       consume: bool = False) -> Any: ...

    def call_numpy(self, model: Any, inputs: Mapping[str, Any]) -> dict[str, Any]: ...


class Trainer(Protocol):
    """`<package>.training.<Prefix>Trainer`: one optimisation step of the recipe (AdamW, schedule,
    accumulation) on NumPy batches, and its state for checkpoints."""

    def step(self, batches: Sequence[Mapping[str, np.ndarray]]) -> float: ...


class ConformanceAdapter(Protocol):
    """What the conformance runner and `roberta parity` ask of a backend (`<package>.adapter`)."""

    name: str

    def build(self, config: Any, head: str, dtype: str = "float32") -> Any: ...

    def load(self, model: Any, state: Mapping[str, np.ndarray]) -> None: ...

    def call(self, model: Any, inputs: Mapping[str, Any], past: Any = None, dtype: str = "float32") -> Any: ...

    def to_numpy(self, outputs: Any) -> dict[str, Any]: ...

    def grads(self, model: Any, inputs: Mapping[str, Any], objective: Any) -> dict[str, np.ndarray]: ...


def iter_backends() -> Iterator[Backend]:
    """Every declared backend, in the order of `BACKENDS`."""
    return iter(BACKENDS.values())
