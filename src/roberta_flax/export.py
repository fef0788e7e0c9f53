"""Export for serving: the Flax NNX model as StableHLO (`jax.export`), serialized to a file.

The front end is `roberta_core.export` (`roberta export CKPT OUT --to stablehlo`), which verifies
what is written here against the float64 reference before installing it. The backends'
`export.py` are parallel texts: `export` writes a model's artefact into a folder, `load_exported`
reads one back as a function of NumPy inputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from roberta_core.validation import max_length_for

__all__ = ["FILE", "export", "load_exported"]

FILE = "model.stablehlo"


def export(model: nnx.Module, directory: str | os.PathLike, *, example: Mapping[str, np.ndarray],
           axes: Mapping[str, Sequence[str | None]]) -> Path:
    """Write `model` as `directory/model.stablehlo` (`jax.export`'s serialization) and return its
    path; `model.json` beside it names the positional inputs and the longest length served.

    `example` gives the inputs the function takes, by name, as int32 (`input_ids`,
    `attention_mask`: (batch, length), or (batch, choices, length) for multiple choice); `axes`
    names each input's and then each output field's axes. The named input axes are symbolic
    (`jax.export.symbolic_shape`), the length bounded by the position table, so one artefact
    serves every batch and length; the outputs are the fields of `axes` that are not inputs. The
    weights are constants of the exported function.
    """
    inputs = list(example)
    outputs = [name for name in axes if name not in example]
    names = sorted({a for name in inputs for a in axes[name] if a})
    sizes = ", ".join(names)
    max_length = max_length_for(model.config)
    constraints = [f"sequence <= {max_length}"] if "sequence" in names else []
    symbols = dict(zip(names, jax.export.symbolic_shape(sizes, constraints=constraints)))
    specs = [jax.ShapeDtypeStruct(tuple(symbols[a] if a else n for a, n in zip(axes[name], example[name].shape)),
                                  jnp.int32) for name in inputs]
    graphdef, state = nnx.split(model)

    def serve(*arrays: jax.Array) -> dict[str, jax.Array]:
        out = nnx.merge(graphdef, state)(**dict(zip(inputs, arrays)))
        return {name: out[name] for name in outputs}

    exported = jax.export.export(jax.jit(serve))(*specs)
    path = Path(directory) / FILE
    path.write_bytes(exported.serialize())
    _write_signature(path, inputs, max_length)
    return path


def load_exported(path: str | os.PathLike) -> Callable[[Mapping[str, Any]], dict[str, np.ndarray]]:
    """The serialized function at `path` (`jax.export.deserialize`) as a function: NumPy inputs by
    name (cast to int32) -> the output fields by name, as NumPy arrays."""
    path = Path(path)
    exported = jax.export.deserialize(bytearray(path.read_bytes()))
    wanted, max_length = _read_signature(path)

    def run(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        unknown = sorted(set(inputs) - set(wanted))
        if unknown:
            raise ValueError(f"the exported model takes {', '.join(wanted)}; got also {', '.join(unknown)}")
        length = np.shape(inputs["input_ids"])[-1]
        if length > max_length:
            raise ValueError(f"sequence length {length} exceeds the {max_length} tokens the exported model serves")
        out = exported.call(*(np.asarray(inputs[name], np.int32) for name in wanted))
        return {name: np.asarray(value) for name, value in out.items()}

    return run


def _write_signature(path: Path, inputs: Sequence[str], max_length: int) -> None:
    # A serialized function takes positional arguments: their names travel beside it, with the
    # length bound (jax.export's own error for a longer input names no dimension).
    signature = {"inputs": list(inputs), "max_sequence_length": max_length}
    path.with_suffix(".json").write_text(json.dumps(signature) + "\n", encoding="utf-8")


def _read_signature(path: Path) -> tuple[list[str], int]:
    signature = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    return list(signature["inputs"]), int(signature["max_sequence_length"])
