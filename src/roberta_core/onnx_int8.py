"""The 'per-token' int8 recipe of `export.quantize_int8`: a rewrite of the fp32 ONNX graph.

onnxruntime's dynamic quantization gives each activation one scale per call (per tensor): a token
whose values span a wide range coarsens every other token's. On a briefly trained checkpoint,
whose masked-token predictions are often near-ties, that flips 2.5% of the top-1 predictions
(benchmarks/RESULTS.md, "int8 accuracy"). This recipe quantizes activations per token instead:

    s[t]  = max(max_k x[t, k] / (255 - Z), -min_k x[t, k] / Z)     one scale per row (token)
    q[t]  = clip(round(x[t] / s[t]) + Z, 0, 255)                    uint8, one zero point Z
    y[t]  = s[t] * ((q[t] - Z) @ Wq) * w_scale + bias               Wq int8, one scale per column

One zero point for the whole tensor (Z = 128 for LayerNorm outputs, which straddle zero; Z = 32
after GELU, whose outputs are >= -0.17) keeps the int8 product a single
`com.microsoft.MatMulIntegerToFloat` with no per-row correction; the per-row scale is one `Mul`
after it. The scale follows each row's own minimum and maximum, so Z only spends precision, it
never clips.

With a masked-LM head, the vocabulary projection (a third of roberta-base's FLOPs at 128 tokens a
row) stays onnxruntime's fused per-channel int8, and its top `RESCORE_K` logits per token are then
recomputed in fp32 from the hidden state and the fp32 word-embedding table the graph already holds
(RoBERTa ties the decoder to it; an untied decoder keeps an fp32 copy): the argmax is then the fp32
decoder's whenever its winner is among the int8 top k. The LM head's dense layer (768 x 768) stays
fp32, and so does every Gemm in this recipe: the (N, H) LM head of a packed graph (computed on the
real tokens only, exact) and a classification head's layers on the pooled (B, H) rows
(onnxruntime's `quantize_dynamic`, behind the other recipes, turns a Gemm into an int8 MatMul).

Every int8 weight's scale also keeps |q[2i, n]| + |q[2i+1, n]| <= 128 for each two neighbouring
rows (`int8_weight`), not only |q| <= 127: x86 CPUs without VNNI (AVX2, AVX-512 without VNNI)
multiply uint8 activations by int8 weights with `vpmaddubsw`, which adds the products of rows 2i and
2i+1 into a saturating int16, and 255 * (127 + 127) does not fit; onnxruntime's uint8-by-int8
kernels there return clipped sums without a word (on a random 768-wide product, 10% of the
output's range off instead of 1.5%). With the bound, 255 * 128 fits, and every CPU computes the
same exact sums with its fastest kernels (VNNI and AMX accumulate in int32 anyway). The bound costs
a scale about 1.4x coarser (half a bit) on Gaussian columns and on the demo's trained weights
(1.05-1.43x a matrix), less on heavy-tailed ones; the alternatives cost more: 7-bit weights
(onnxruntime's `reduce_range`) a whole bit, and uint8 weights, exact everywhere, run onnxruntime's
slow 16-bit kernels on VNNI and AMX CPUs since onnxruntime 1.25.
`pair_bounded_weights` does the same to onnxruntime's `quantize_dynamic` output.

Needs `onnx` and onnxruntime's contrib ops (`pip install 'roberta3[export]'`)."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

__all__ = ["per_token", "int8_weight", "pair_bounded_weights", "RESCORE_K", "ZERO_POINT", "ZERO_POINT_AFTER_GELU",
           "PAIR_BOUND"]

# int8 top-k logits recomputed in fp32: on the demo's 6,927 held-out masked tokens the top 2 missed
# one fp32 winner that the top 4 found; the top 8 found no more (benchmarks/RESULTS.md)
RESCORE_K = 4
ZERO_POINT = 128  # inputs that straddle zero (LayerNorm outputs, attention context)
ZERO_POINT_AFTER_GELU = 32  # GELU's outputs are >= -0.17: most of the 8 bits for the positive side
# the most |q[2i]| + |q[2i+1]| may reach in a column of int8 weights (module docstring):
# 255 * 128 = 32,640 fits the int16 that CPUs without VNNI add two neighbouring products into
PAIR_BOUND = 128
_MS = "com.microsoft"


def int8_weight(w: np.ndarray, per_column: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights q (K, N) and their scale, (N,) (`per_column`) or (), for the fp32
    weight `w` (K, N) of a product `x @ w` with uint8 activations x: w ~ q * scale, |q| <= 127, and
    |q[2i]| + |q[2i+1]| <= PAIR_BOUND in every column (module docstring)."""
    w = np.asarray(w, np.float32)
    if w.ndim != 2:
        raise ValueError(f"int8_weight takes a (K, N) weight, got shape {w.shape}")
    k = w.shape[0]
    even = np.concatenate([w, np.zeros((k % 2, w.shape[1]), np.float32)]).astype(np.float64)  # (K + K % 2, N)
    a = np.abs(even)
    axis = 0 if per_column else None
    scale = np.maximum(np.maximum(a.max(axis) / 127.0, (a[0::2] + a[1::2]).max(axis) / PAIR_BOUND),
                       np.finfo(np.float32).tiny).astype(np.float32)
    exact = even / scale.astype(np.float64)
    q = np.clip(np.round(exact), -127, 127)
    # with the float32 scale rounded down, a pair at the bound can round to 129 (both up): the one
    # rounded up the further steps back toward zero
    first, second = q[0::2], q[1::2]  # views into q
    over = np.abs(first) + np.abs(second) > PAIR_BOUND
    first_further = np.abs(first) - np.abs(exact[0::2]) >= np.abs(second) - np.abs(exact[1::2])
    first -= np.sign(first) * (over & first_further)
    second -= np.sign(second) * (over & ~first_further)
    return q[:k].astype(np.int8), scale


def pair_bounded_weights(source: str | os.PathLike, quantized: str | os.PathLike) -> str | os.PathLike:
    """Requantize in place, with `int8_weight`, the int8 weights that onnxruntime's
    `quantize_dynamic` wrote into the ONNX file `quantized` from the fp32 file `source` (its own use
    the whole int8 range, which overflows on CPUs without VNNI), at the same granularity (one scale
    per column or per tensor). Each weight `W_quantized` of a `MatMulInteger`, with `W_scale` and a
    zero `W_zero_point`, is requantized from the fp32 initializer `W` of `source` (`W_Transposed`:
    from `W` transposed, as onnxruntime writes a Gemm's); one that cannot be traced there is an
    error, and nothing is written. Returns `quantized`."""
    import onnx
    from onnx import TensorProto, numpy_helper

    originals = {t.name: t for t in onnx.load(str(source)).graph.initializer}
    model = onnx.load(str(quantized))
    inits = {t.name: t for t in model.graph.initializer}
    done: set[str] = set()
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in inits or node.input[1] in done:
            continue
        weight = inits[node.input[1]]
        if weight.data_type != TensorProto.INT8:
            continue
        name = node.input[1].removesuffix("_quantized")
        scale, zero_point = inits.get(f"{name}_scale"), inits.get(f"{name}_zero_point")
        fp32, transposed = originals.get(name), False
        if fp32 is None and re.search(r"_Transposed(_\d+)?$", name):  # a Gemm's transB weight (_n: a name clash)
            fp32, transposed = originals.get(re.sub(r"_Transposed(_\d+)?$", "", name)), True
        if fp32 is not None:
            fp32 = numpy_helper.to_array(fp32)
            fp32 = fp32.T if transposed else fp32
        if name == node.input[1] or scale is None or zero_point is None or fp32 is None or \
                fp32.shape != tuple(weight.dims) or fp32.ndim != 2 or list(scale.dims) not in ([], [fp32.shape[1]]):
            raise ValueError(f"int8 weight {node.input[1]!r} of {node.name!r}: no fp32 weight of its shape in "
                             f"{source} to requantize it from")
        if np.any(numpy_helper.to_array(zero_point)):
            raise ValueError(f"int8 weight {node.input[1]!r} of {node.name!r} is not symmetric (zero point 0)")
        q, s = int8_weight(fp32, per_column=len(scale.dims) == 1)
        weight.CopyFrom(numpy_helper.from_array(q, weight.name))
        scale.CopyFrom(numpy_helper.from_array(s.reshape(tuple(scale.dims)), scale.name))
        done.add(node.input[1])
    onnx.save(model, str(quantized))
    return quantized


def _after_gelu(name: str, producers: dict[str, Any], depth: int = 4) -> bool:
    """Whether tensor `name` is computed from an `Erf` within `depth` nodes (the exact GELU as
    exported: x * 0.5 * (1 + erf(x / sqrt 2)))."""
    frontier = [name]
    for _ in range(depth):
        nodes = [producers[n] for n in frontier if n in producers]
        if any(node.op_type in ("Erf", "Gelu") for node in nodes):
            return True
        frontier = [i for node in nodes for i in node.input]
    return False


def per_token(source: str, target: str, rescore_k: int = RESCORE_K) -> str:
    """Write the per-token int8 rewrite (module docstring) of the fp32 ONNX graph `source` to
    `target`: every MatMul with a constant 2-D weight but the LM head's becomes per-token int8; a
    masked-LM decoder becomes per-channel int8 with its top `rescore_k` logits recomputed in fp32
    (0: not rescored). The LM head is found by the exporter's node names (`.../lm_head/dense/...`,
    `.../lm_head/decoder/...`, as torch.onnx writes them for ours and transformers' models).
    Returns `target`."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError("the 'per-token' int8 recipe needs onnx; install it with `pip install 'roberta3[export]'`") from None

    model = onnx.shape_inference.infer_shapes(onnx.load(str(source)))
    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    consts = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    shapes = {v.name: v for v in list(graph.value_info) + list(graph.input) + list(graph.output)}

    nodes: list[Any] = []  # the int8 nodes of the MatMul being replaced
    added: dict[str, Any] = {}
    value_info: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        if name not in added:
            added[name] = numpy_helper.from_array(np.asarray(array), name)
        return name

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def reduce(op: str, x: str, name: str) -> str:  # over the last axis, kept: (..., 1)
        if opset >= 18:
            return node(op, [x, const("int8/axis_last", np.array([-1], np.int64))], name, keepdims=1)
        return node(op, [x], name, axes=[-1], keepdims=1)

    def typed_like(name: str, like: str, elem_type: int) -> None:
        # onnxruntime fuses bias + residual + LayerNorm only where it knows the shapes
        if like in shapes and shapes[like].type.HasField("tensor_type"):
            t = onnx.TypeProto()
            t.CopyFrom(shapes[like].type)
            t.tensor_type.elem_type = elem_type
            value_info.append(onnx.ValueInfoProto(name=name, type=t))

    def weight_of(matmul: Any) -> np.ndarray | None:
        w = consts.get(matmul.input[1])
        if w is None:
            return None
        w = numpy_helper.to_array(w)
        return w if w.ndim == 2 and w.dtype == np.float32 else None

    quantized: dict[tuple[str, int], tuple[str, str]] = {}  # (input, Z) -> (q, row scale)

    def quantize_rows(x: str, zero_point: int, tag: str) -> tuple[str, str]:
        if (x, zero_point) not in quantized:
            hi = node("Mul", [reduce("ReduceMax", x, f"{tag}/int8_max"),
                              const(f"int8/hi_{zero_point}", np.array(1.0 / (255 - zero_point), np.float32))],
                      f"{tag}/int8_hi")
            lo = node("Mul", [reduce("ReduceMin", x, f"{tag}/int8_min"),
                              const(f"int8/lo_{zero_point}", np.array(-1.0 / zero_point, np.float32))],
                      f"{tag}/int8_lo")
            scale = node("Max", [hi, lo, const("int8/tiny", np.array(np.finfo(np.float32).tiny, np.float32))],
                         f"{tag}/int8_row_scale")  # (..., 1)
            q = node("QuantizeLinear", [node("Div", [x, scale], f"{tag}/int8_scaled"),
                                        const("int8/one", np.array(1.0, np.float32)),
                                        const(f"int8/zero_point_{zero_point}", np.array(zero_point, np.uint8))],
                     f"{tag}/int8_q")
            typed_like(q, x, TensorProto.UINT8)
            quantized[(x, zero_point)] = (q, scale)
        return quantized[(x, zero_point)]

    def top_k_ids(logits: str, vocab: int, tag: str) -> str:
        """`{tag}/ids`: the indices (..., k) of the k largest of `logits` (..., vocab), k = rescore_k.

        onnxruntime's TopK over 50,265 logits a token took 60 of 480 ms (roberta-base 8x128). Where
        the vocabulary splits into G groups of S (8 <= S <= 32), each group's maximum is taken first
        (one streaming pass) and TopK runs on the G maxima, then on the k*S values of the k best
        groups: the same k, since every one of the k largest lies in a group whose maximum is among
        the k largest maxima. Other vocabulary sizes keep one TopK (a prefix view would cost a copy)."""
        k = const("int8/rescore_k", np.array([rescore_k], np.int64))
        size = next((s for s in range(32, 7, -1) if vocab % s == 0 and vocab // s >= rescore_k), None)
        if size is None:
            node("TopK", [logits, k], f"{tag}/values", axis=-1)
            nodes[-1].output.append(f"{tag}/ids")
            return f"{tag}/ids"
        groups = vocab // size
        rows = node("Reshape", [logits, const(f"{tag}/rows_shape", np.array([-1, vocab], np.int64))], f"{tag}/rows2")
        grouped = node("Reshape", [rows, const(f"{tag}/grouped_shape", np.array([-1, groups, size], np.int64))],
                       f"{tag}/grouped")  # (R, G, S)
        maxima = node("Reshape", [reduce("ReduceMax", grouped, f"{tag}/group_max3"),
                                  const(f"{tag}/maxima_shape", np.array([-1, groups], np.int64))], f"{tag}/group_max")
        node("TopK", [maxima, k], f"{tag}/group_values", axis=-1)
        nodes[-1].output.append(f"{tag}/best_groups")  # (R, k) the k groups with the largest maxima
        # in vocabulary order, so that a tie at the k-th place keeps the lower id, as one TopK does
        node("TopK", [f"{tag}/best_groups", k], f"{tag}/groups", axis=-1, largest=0)
        nodes[-1].output.append(f"{tag}/group_order")
        first = node("Mul", [f"{tag}/groups", const(f"{tag}/size", np.array(size, np.int64))], f"{tag}/group_first")
        members = node("Add", [node("Unsqueeze", [first, const("int8/axis_last", np.array([-1], np.int64))],
                                    f"{tag}/group_first1"),
                               const(f"{tag}/offsets", np.arange(size, dtype=np.int64))], f"{tag}/members3")
        members = node("Reshape", [members, const(f"{tag}/members_shape", np.array([0, rescore_k * size], np.int64))],
                       f"{tag}/members")  # (R, k*S) their vocabulary indices
        node("TopK", [node("GatherElements", [rows, members], f"{tag}/member_values", axis=1), k],
             f"{tag}/values", axis=-1)
        nodes[-1].output.append(f"{tag}/best")  # (R, k) positions among the members
        lead = node("Slice", [node("Shape", [logits], f"{tag}/logits_shape"), const("int8/zero1", np.array([0], np.int64)),
                              const("int8/axis_last", np.array([-1], np.int64))], f"{tag}/lead")
        return node("Reshape", [node("GatherElements", [members, f"{tag}/best"], f"{tag}/ids2", axis=1),
                                node("Concat", [lead, k], f"{tag}/ids_shape", axis=0)], f"{tag}/ids")

    dropped: set[str] = set()  # the bias Add folded into the decoder's int8 kernel, by its output (names may be empty)

    def decoder(mm: Any, w: np.ndarray, wq: np.ndarray, w_scale: np.ndarray) -> None:
        """The vocabulary projection: onnxruntime's fused dynamic int8 (one activation scale per
        call, one weight scale per column, the bias inside), then its top k rescored in fp32."""
        add = next((c for c in consumers.get(mm.output[0], []) if c.op_type == "Add"), None)
        bias = next((i for i in (add.input if add is not None else []) if i in consts), None)
        if bias is not None and tuple(consts[bias].dims) != (w.shape[1],):
            bias = None
        out = add.output[0] if bias is not None else mm.output[0]
        if bias is not None:
            dropped.add(add.output[0])
        logits = f"{mm.name}/int8_logits" if rescore_k else out
        nodes.append(helper.make_node(
            "DynamicQuantizeMatMul",
            [mm.input[0], const(f"{mm.name}/int8_weight", wq), const(f"{mm.name}/int8_w_scale", w_scale), "",
             bias or ""], [logits], name=f"{mm.name}/int8", domain=_MS))
        if not rescore_k:
            return
        typed_like(logits, out, TensorProto.FLOAT)
        table = _embedding_table(graph, consts, w)
        if table is None:  # an untied decoder: an fp32 copy (V, H) of it
            table = const(f"{mm.name}/fp32_rows", np.ascontiguousarray(w.T))
        tag, last = f"{mm.name}/rescore", const("int8/axis_last", np.array([-1], np.int64))
        top_k_ids(logits, w.shape[1], tag)  # (..., k) the int8 top k
        rows = node("Gather", [table, f"{tag}/ids"], f"{tag}/rows")  # (..., k, H)
        hidden = node("Unsqueeze", [mm.input[0], last], f"{tag}/hidden")  # (..., H, 1)
        exact = node("Squeeze", [node("MatMul", [rows, hidden], f"{tag}/dots"), last], f"{tag}/fp32")  # (..., k)
        if bias is not None:
            exact = node("Add", [exact, node("Gather", [bias, f"{tag}/ids"], f"{tag}/bias")], f"{tag}/exact")
        nodes.append(helper.make_node("ScatterElements", [logits, f"{tag}/ids", exact], [out], axis=-1,
                                      name=f"{tag}/scatter"))

    ordered: list[Any] = []  # the graph's nodes, each replaced MatMul by its int8 nodes in its place
    for mm in graph.node:
        if mm.output and mm.output[0] in dropped:
            continue
        lm_dense = "lm_head/" in mm.name and "lm_head/decoder" not in mm.name
        w = weight_of(mm) if mm.op_type == "MatMul" and not lm_dense else None
        if w is None:
            ordered.append(mm)  # not a weight product, or the LM head's dense layer (0.5% of the FLOPs): fp32
            continue
        wq, w_scale = int8_weight(w)  # (K, N) int8, (N,)
        if "lm_head/decoder" in mm.name:
            decoder(mm, w, wq, w_scale)
        else:
            zero_point = ZERO_POINT_AFTER_GELU if _after_gelu(mm.input[0], producers) else ZERO_POINT
            q, row_scale = quantize_rows(mm.input[0], zero_point, mm.name)
            product = node("MatMulIntegerToFloat",
                           [q, const(f"{mm.name}/int8_weight", wq), "int8/one",
                            const(f"{mm.name}/int8_w_scale", w_scale),
                            const(f"int8/zero_point_{zero_point}", np.array(zero_point, np.uint8))],
                           f"{mm.name}/int8_product", domain=_MS)
            typed_like(product, mm.output[0], TensorProto.FLOAT)
            nodes.append(helper.make_node("Mul", [product, row_scale], [mm.output[0]], name=f"{mm.name}/int8_rows"))
        ordered.extend(nodes)
        nodes.clear()

    used = {i for n in ordered for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(ordered)
    del graph.initializer[:]
    graph.initializer.extend(kept + [t for name, t in added.items() if name in used])
    graph.value_info.extend(value_info)
    if not any(o.domain == _MS for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS, 1))
    onnx.save(model, str(target))
    return str(target)


def _embedding_table(graph: Any, consts: dict[str, Any], decoder_weight: np.ndarray) -> str | None:
    """The name of the constant (V, H) table a Gather reads that equals the decoder's (H, V) weight
    transposed (RoBERTa ties them), or None."""
    from onnx import numpy_helper

    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in consts:
            table = consts[node.input[0]]
            if tuple(table.dims) == decoder_weight.shape[::-1] and \
                    np.array_equal(numpy_helper.to_array(table), decoder_weight.T):
                return node.input[0]
    return None
