"""Export for serving: the PyTorch model as ONNX (`torch.onnx.export`), run by onnxruntime.

The front end is `roberta_core.export` (`roberta export CKPT OUT --to onnx`), which verifies what
is written here against the float64 reference before installing it. The backends' `export.py`
are parallel texts: `export` writes a model's artefact into a folder, `load_exported` reads one
back as a function of NumPy inputs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ._framework import as_tensor

__all__ = ["FILE", "DEFAULT_OPSET", "OPSETS", "export", "load_exported"]

FILE = "model.onnx"
# 17 is the first opset with LayerNormalization as one op; the TorchScript exporter writes up to 20.
DEFAULT_OPSET = 17
OPSETS = range(14, 21)


class _Serving(nn.Module):
    """The model as a function of positional tensors returning the named output fields in order:
    what the ONNX exporter traces."""

    def __init__(self, model: nn.Module, inputs: Sequence[str], outputs: Sequence[str]):
        super().__init__()
        self.model, self.inputs, self.outputs = model, tuple(inputs), tuple(outputs)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(**dict(zip(self.inputs, tensors)), return_dict=True)
        return tuple(out[name] for name in self.outputs)


def export(model: nn.Module, directory: str | os.PathLike, *, example: Mapping[str, np.ndarray],
           axes: Mapping[str, Sequence[str | None]], opset: int | None = None) -> Path:
    """Write `model` as `directory/model.onnx` and return its path.

    `example` is a padded batch of the inputs the graph takes, as int64 (`input_ids`,
    `attention_mask`: (batch, length), or (batch, choices, length) for multiple choice). `axes`
    names each input's and then each output field's axes (`("batch", "sequence", None)`: None is
    a fixed size); named axes are dynamic, and the outputs are the fields of `axes` that are not
    inputs, in that order. The position ids are computed inside the graph from the input ids
    (padding_idx + running count of real tokens), as the model does. `opset` (default 17) must be
    in 14..20.
    """
    opset = DEFAULT_OPSET if opset is None else opset
    if not isinstance(opset, int) or opset not in OPSETS:
        raise ValueError(f"opset must be an integer in {OPSETS.start}..{OPSETS.stop - 1}, got {opset!r}")
    mask = example.get("attention_mask")
    if mask is None or np.all(mask):
        # The trace records one branch: an example without padding would give a graph that ignores the mask.
        raise ValueError("the example batch must hold padding (an attention_mask with zeros)")
    inputs = list(example)
    outputs = [name for name in axes if name not in example]
    dynamic = {name: {i: a for i, a in enumerate(axes[name]) if a} for name in inputs + outputs}
    path = Path(directory) / FILE
    tensors = tuple(as_tensor(np.asarray(example[name], np.int64)) for name in inputs)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
        # The TorchScript exporter (dynamo=False): the dynamo one cannot lower the model's input-check op.
        torch.onnx.export(
            _Serving(model.eval(), inputs, outputs), tensors, str(path), input_names=inputs, output_names=outputs,
            dynamic_axes=dynamic, opset_version=opset, dynamo=False, do_constant_folding=True,
        )
    return path


def load_exported(path: str | os.PathLike) -> Callable[[Mapping[str, Any]], dict[str, np.ndarray]]:
    """An onnxruntime session of the ONNX file at `path` as a function: NumPy inputs by name (ints
    cast to int64; inputs the graph does not take are refused) -> the output fields by name."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    names = [o.name for o in session.get_outputs()]

    def run(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        unknown = sorted(set(inputs) - set(wanted))
        if unknown:
            raise ValueError(f"the exported model takes {', '.join(wanted)}; got also {', '.join(unknown)}")
        feed = {name: np.asarray(inputs[name], np.int64) for name in wanted}
        return dict(zip(names, session.run(names, feed)))

    return run

