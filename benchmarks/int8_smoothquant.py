"""SmoothQuant for the ONNX export's dynamic int8 graph (Xiao et al. 2022, arXiv:2211.10438): a
dev module of the int8 experiment (issue 18, `python -m benchmarks.int8_accuracy --variants ...`),
not part of the library: on the demo checkpoint it does not reach the 99% top-1 agreement goal
(RESULTS.md), so no export recipe uses it.

    smooth("model.onnx", "model.smooth.onnx", calibration_batches, alpha=0.5)   # fp32, same outputs

onnxruntime's dynamic int8 MatMul quantizes its activation with one scale per tensor per call
(`DynamicQuantizeLinear`): a few input channels with large values coarsen every other channel.
SmoothQuant moves that range into the weight, which is quantized per output column and minds it
much less: for each input channel j of a MatMul `X @ W`,

    s_j = max|X_j| ** alpha / max|W_j,:| ** (1 - alpha),    X @ W = (X / s) @ (diag(s) W)

with max|X_j| measured by running the fp32 graph on calibration batches. MatMuls that read the same
tensor (query, key, value) share one s. The division by s is applied where it costs least, and
the result is exact in fp32:

- folded into the LayerNormalization that produces X when X feeds nothing else (the LM head's
  decoder: its layer_norm's gamma and beta divided by s; under RoBERTa-PreLayerNorm every
  LayerNorm before a MatMul, so there only the GELU output gets a Mul);
- folded into the value projection's output columns (weight and bias) for the attention output
  projection, whose input is softmax(QK^T) @ V with the heads concatenated back: attention is
  linear in V, and channel j of its output is column j of V;
- otherwise one elementwise `Mul` by 1/s on the MatMul's input (the LayerNorm outputs that also
  feed the residual, the GELU output into the feed-forward's second MatMul): O(tokens × width),
  three per post-LayerNorm layer (roberta-base: 2·768 + 3072 multiplies per token and layer,
  0.04% of its matmul FLOPs).

NumPy, onnx and onnxruntime (which runs the calibration), imported inside functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["DEFAULT_ALPHA", "smooth", "activation_maxima", "check_calibration"]

DEFAULT_ALPHA = 0.5
_INPUTS = ("input_ids", "attention_mask")


def check_calibration(batches: Any) -> list[dict[str, np.ndarray]]:
    """The calibration batches as a list of {'input_ids', 'attention_mask'} int64 arrays of the same
    shape (batch, length) or (batch, choices, length); ValueError/TypeError naming what is wrong."""
    if isinstance(batches, Mapping) or isinstance(batches, (str, bytes, os.PathLike)):
        raise TypeError("calibration must be a list of batches (dicts with 'input_ids' and 'attention_mask'), "
                        f"got {type(batches).__name__}")
    try:
        batches = list(batches)
    except TypeError:
        raise TypeError("calibration must be a list of batches (dicts with 'input_ids' and 'attention_mask'), "
                        f"got {type(batches).__name__}") from None
    if not batches:
        raise ValueError("calibration needs at least one batch")
    out = []
    for i, batch in enumerate(batches):
        if not isinstance(batch, Mapping) or "input_ids" not in batch:
            raise TypeError(f"calibration batch {i} must be a dict with 'input_ids' (and optionally "
                            f"'attention_mask'), got {type(batch).__name__}")
        ids = np.asarray(batch["input_ids"])
        if ids.dtype.kind not in "iu" or ids.ndim not in (2, 3) or ids.size == 0:
            raise ValueError(f"calibration batch {i}: input_ids must be a non-empty integer array of shape "
                             f"(batch, length) or (batch, choices, length), got {ids.dtype} {ids.shape}")
        mask = np.asarray(batch.get("attention_mask", np.ones_like(ids)))
        if mask.shape != ids.shape:
            raise ValueError(f"calibration batch {i}: attention_mask has shape {mask.shape}, input_ids {ids.shape}")
        out.append({"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)})
    return out


# ---------------------------------------------------------------------------- the graph


def _graph_index(graph):
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return inits, producer, consumers


def _smoothable(graph, inits) -> dict[str, list]:
    """MatMuls with a constant 2-D weight as second input, grouped by their (shared) first input."""
    groups: dict[str, list] = {}
    for n in graph.node:
        if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2:
            groups.setdefault(n.input[0], []).append(n)
    return groups


def activation_maxima(model, tensors: list[str], batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """max |x| per last-axis channel of each of the graph's `tensors` over the calibration batches
    (onnxruntime on `model` with those tensors made graph outputs), float64 (channels,)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor as named
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {i.name for i in session.get_inputs()}
    maxima: dict[str, np.ndarray] = {}
    for batch in batches:
        values = session.run(tensors, {k: v for k, v in batch.items() if k in feeds})
        for name, value in zip(tensors, values):
            value = np.abs(np.asarray(value, np.float64)).reshape(-1, value.shape[-1]).max(0)
            maxima[name] = value if name not in maxima else np.maximum(maxima[name], value)
    return maxima


def _scales(x_max: np.ndarray, w_max: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant's per-channel s; 1 where either maximum is 0 (a dead channel: nothing to move)."""
    ok = (x_max > 0) & (w_max > 0)
    s = np.ones_like(x_max)
    s[ok] = x_max[ok] ** alpha / w_max[ok] ** (1.0 - alpha)
    return s


def _value_projection(name: str, inits, producer):
    """For the attention output projection's input (softmax(QK^T) @ V, heads merged back by
    Transpose/Reshape), the value projection's (MatMul, bias Add) nodes, else None."""
    node = producer.get(name)
    while node is not None and node.op_type in ("Reshape", "Transpose"):
        node = producer.get(node.input[0])
    if node is None or node.op_type != "MatMul" or any(i in inits for i in node.input):
        return None
    node = producer.get(node.input[1])  # V, split into heads
    while node is not None and node.op_type in ("Reshape", "Transpose"):
        node = producer.get(node.input[0])
    if node is None or node.op_type != "Add":
        return None
    bias = [i for i in node.input if i in inits]
    matmul = [producer.get(i) for i in node.input if i not in inits]
    if len(bias) != 1 or len(matmul) != 1 or matmul[0] is None or matmul[0].op_type != "MatMul" \
            or matmul[0].input[1] not in inits:
        return None
    return matmul[0], node, bias[0]


def smooth(source: str | os.PathLike, target: str | os.PathLike, calibration: Any, *,
           alpha: float = DEFAULT_ALPHA, check: bool = True) -> Path:
    """Write the fp32 ONNX graph `source` with SmoothQuant applied to every MatMul with a constant
    weight (module docstring) to `target`: the same outputs in exact arithmetic, activations with
    their per-channel range balanced against the weights' for int8. `calibration`: batches of
    {'input_ids', 'attention_mask'} (`check_calibration`) the scales are measured on; `alpha` in
    (0, 1): the share of the activation's range moved into the weight. `check` runs both graphs on
    the calibration batches and refuses (ValueError) a smoothed graph that differs by more than
    1e-4 relative. Returns `target`."""
    import onnx
    from onnx import numpy_helper

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    batches = check_calibration(calibration)
    model = onnx.load(str(source))
    graph = model.graph
    inits, producer, consumers = _graph_index(graph)
    groups = _smoothable(graph, inits)
    x_max = activation_maxima(model, list(groups), batches)
    weights = {name: numpy_helper.to_array(t).astype(np.float64) for name, t in inits.items()}
    replaced: dict[str, np.ndarray] = {}

    def weight(name):
        return replaced.get(name, weights[name])

    new_nodes: dict[str, Any] = {}  # Mul inserted before the first consumer, by input tensor
    for x, matmuls in groups.items():
        w_max = np.max([np.abs(weight(m.input[1])).max(1) for m in matmuls], axis=0)
        if w_max.shape != x_max[x].shape:
            continue  # not a channel-wise product (a broadcast weight): leave it
        s = _scales(x_max[x], w_max, alpha)
        for m in matmuls:
            replaced[m.input[1]] = weight(m.input[1]) * s[:, None]
        readers = [r for r in consumers.get(x, []) if r.op_type != "Shape"]  # a shape does not see the values
        ln = producer.get(x)
        value = _value_projection(x, inits, producer)
        if ln is not None and ln.op_type == "LayerNormalization" and all(r in matmuls for r in readers) \
                and len(ln.input) == 3 and all(i in inits for i in ln.input[1:]):
            for name in ln.input[1:]:  # gamma, beta
                replaced[name] = weight(name) / s
        elif value is not None and all(r in matmuls for r in readers) \
                and sum(r.op_type != "Shape" for r in consumers.get(value[1].output[0], [])) == 1:
            v_matmul, _, v_bias = value
            replaced[v_matmul.input[1]] = weight(v_matmul.input[1]) / s[None, :]
            replaced[v_bias] = weight(v_bias) / s
        else:
            inv = f"{x}.smooth_inv_scale"
            graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inv))
            out = f"{x}.smoothed"
            new_nodes[x] = onnx.helper.make_node("Mul", [x, inv], [out], name=f"{x}.smooth/Mul")
            for m in matmuls:
                m.input[0] = out
    for name, value in replaced.items():
        inits[name].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
    if new_nodes:  # each Mul goes right before the first node that reads it (topological order)
        nodes = list(graph.node)
        ordered = []
        for n in nodes:
            for i in n.input:
                if i.endswith(".smoothed") and i[: -len(".smoothed")] in new_nodes:
                    ordered.append(new_nodes.pop(i[: -len(".smoothed")]))
            ordered.append(n)
        del graph.node[:]
        graph.node.extend(ordered)
    target = Path(target)
    onnx.save(model, str(target))
    if check:
        _check_same(Path(source), target, batches)
    return target


def _check_same(source: Path, target: Path, batches: list[dict[str, np.ndarray]], bar: float = 1e-4) -> None:
    import onnxruntime as ort

    a = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    feeds = {i.name for i in a.get_inputs()}
    for batch in batches:
        inputs = {k: v for k, v in batch.items() if k in feeds}
        for x, y in zip(a.run(None, inputs), b.run(None, inputs)):
            x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
            rel = np.linalg.norm(x - y) / (np.linalg.norm(x) or 1.0)
            if not rel <= bar:
                raise ValueError(f"SmoothQuant changed the fp32 graph's outputs by {rel:.2e} relative "
                                 f"(bar {bar:g}): not written")
