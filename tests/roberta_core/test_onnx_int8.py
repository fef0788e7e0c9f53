"""The 'per-token' int8 recipe (`roberta_core.onnx_int8.per_token`) on small hand-built ONNX graphs.

Oracles: the recipe's formula written out in NumPy here (one scale per row from the row's own
minimum and maximum, one zero point, int8 weights one scale per column); the integer arithmetic
of every recipe's stored integers on a product built to overflow int16 where uint8 x int8 does; a known answer (one
token with a 100x range coarsens every other token's rounding under one scale per tensor, not
under one per token); exact fp32 dot products for the rescored logits.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

K, H, N, V = 48, 64, 40, 300


def _mlp(tmp_path, opset: int = 17, seed: int = 0):
    """x (B, T, K) -> MatMul W1 + b1 -> exact GELU (as torch.onnx writes it) -> MatMul W2 + b2 -> y."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(K, H)).astype(np.float32) / 7, rng.normal(size=(H, N)).astype(np.float32) / 8
    b1, b2 = rng.normal(size=H).astype(np.float32), rng.normal(size=N).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (b1, "b1"), (b2, "b2"),
                                                          (np.array(2 ** 0.5, np.float32), "sqrt2"),
                                                          (np.array(1.0, np.float32), "one"),
                                                          (np.array(0.5, np.float32), "half"))]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="/layer/intermediate/dense/MatMul"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="/layer/intermediate/dense/Add"),
        helper.make_node("Div", ["h1", "sqrt2"], ["g0"], name="/layer/intermediate/Div"),
        helper.make_node("Erf", ["g0"], ["g1"], name="/layer/intermediate/Erf"),
        helper.make_node("Add", ["g1", "one"], ["g2"], name="/layer/intermediate/Add"),
        helper.make_node("Mul", ["h1", "g2"], ["g3"], name="/layer/intermediate/Mul"),
        helper.make_node("Mul", ["g3", "half"], ["g4"], name="/layer/intermediate/Mul_1"),
        helper.make_node("MatMul", ["g4", "w2"], ["y0"], name="/layer/output/dense/MatMul"),
        helper.make_node("Add", ["y0", "b2"], ["y"], name="/layer/output/dense/Add"),
    ]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", K])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", N])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / f"mlp{opset}.onnx"
    onnx.save(model, str(path))
    return path, (w1, b1, w2, b2)


def _run(path, feeds):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _int8_rows(x, zero_point):
    """The recipe's activation rounding, written out: one scale per row from its own range."""
    scale = np.maximum(x.max(-1, keepdims=True) / (255 - zero_point), -x.min(-1, keepdims=True) / zero_point)
    q = np.clip(np.round(x / scale) + zero_point, 0, 255)
    return (q - zero_point) * scale


def _int8_columns(w):
    """One scale per column, as large as the column's largest value / 127 or its largest sum of two
    neighbouring rows' magnitudes / 128 (the recipe's bound; a pair rounded past it steps back, which
    `test_int8_weight_bounds_each_pair_...` checks: here at most one level at a rare value)."""
    a = np.abs(np.concatenate([w, np.zeros((len(w) % 2, w.shape[1]))]))
    scale = np.maximum(a.max(0) / 127, (a[0::2] + a[1::2]).max(0) / 128)
    return np.clip(np.round(w / scale), -127, 127) * scale


def _gelu(x):
    from math import erf

    return x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)))


@pytest.mark.parametrize("opset", [17, 18])
def test_per_token_graph_computes_the_recipes_formula(tmp_path, opset):
    import onnx

    from roberta_core.onnx_int8 import ZERO_POINT, ZERO_POINT_AFTER_GELU, per_token

    path, (w1, b1, w2, b2) = _mlp(tmp_path, opset)
    target = per_token(path, tmp_path / "int8.onnx")
    graph = onnx.load(target).graph
    assert sum(n.op_type == "MatMulIntegerToFloat" for n in graph.node) == 2
    assert not any(n.op_type == "MatMul" for n in graph.node)
    zero_points = {n.name.split("/int8")[0]: n.input[4] for n in graph.node if n.op_type == "MatMulIntegerToFloat"}
    assert zero_points == {"/layer/intermediate/dense/MatMul": f"int8/zero_point_{ZERO_POINT}",
                           "/layer/output/dense/MatMul": f"int8/zero_point_{ZERO_POINT_AFTER_GELU}"}

    x = np.random.default_rng(1).normal(size=(3, 7, K)).astype(np.float32)
    x[1, 2] *= 30  # a token with a wide range
    got, = _run(target, {"x": x})
    x64 = x.astype(np.float64)
    h = _gelu(_int8_rows(x64, ZERO_POINT) @ _int8_columns(w1.astype(np.float64)) + b1)
    want = _int8_rows(h, ZERO_POINT_AFTER_GELU) @ _int8_columns(w2.astype(np.float64)) + b2
    fp32 = _gelu(x64 @ w1 + b1) @ w2 + b2
    # The graph computes the written-out formula up to float32 arithmetic (a value at a rounding
    # boundary may land one level over): far closer to it than the int8 error itself.
    error = np.abs(want - fp32).max()
    assert np.abs(got - want).max() < 0.05 * error, (np.abs(got - want).max(), error)
    assert 0 < error < 0.05 * np.abs(fp32).max()


def test_per_token_keeps_the_tokens_that_one_wide_token_would_coarsen(tmp_path):
    # One scale per call ('per-channel', onnxruntime's dynamic activations) spends the 8 bits on
    # the wide token and rounds every other token to a few levels; one scale per token does not.
    from roberta_core.export import quantize_int8

    path, _ = _mlp(tmp_path)
    x = np.random.default_rng(2).normal(size=(2, 9, K)).astype(np.float32)
    x[0, 0] *= 100
    fp32, = _run(path, {"x": x})
    others = np.ones(x.shape[:2], bool)
    others[0, 0] = False
    errors = {}
    for recipe in ("per-channel", "per-token"):
        got, = _run(quantize_int8(path, tmp_path / f"{recipe}.onnx", recipe), {"x": x})
        errors[recipe] = np.linalg.norm((got - fp32)[others]) / np.linalg.norm(fp32[others])
    assert errors["per-token"] * 10 < errors["per-channel"], errors


@pytest.mark.parametrize("recipe", ["per-token", "per-channel"])
def test_quantize_int8_writes_atomically(tmp_path, recipe):
    """A failed quantization leaves the target as it was (absent, or the previous file) and no
    temporary file; a successful one replaces it whole."""
    from roberta_core.export import quantize_int8

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    target = tmp_path / "out" / "model.int8.onnx"
    with pytest.raises(Exception):
        quantize_int8(broken, target, recipe)
    assert not target.exists() and not any(target.parent.glob("*.tmp"))
    target.write_bytes(b"previous")
    with pytest.raises(Exception):
        quantize_int8(broken, target, recipe)
    assert target.read_bytes() == b"previous" and sorted(p.name for p in target.parent.iterdir()) == [target.name]
    path, _ = _mlp(tmp_path)
    assert quantize_int8(path, target, recipe) == target
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
    x = np.random.default_rng(4).normal(size=(2, 3, K)).astype(np.float32)
    (got,), (fp32,) = _run(target, {"x": x}), _run(path, {"x": x})
    assert np.abs(got - fp32).max() < 0.05 * np.abs(fp32).max()


@pytest.mark.parametrize("recipe", ["per-channel", "per-tensor", "keep-lm-head", "per-token"])
def test_int8_products_are_exact_where_uint8_times_int8_overflows(tmp_path, recipe):
    # x86 CPUs without VNNI (AVX2; AVX-512 without VNNI) add each two neighbouring uint8 x int8
    # products into a saturating int16: activations at 255 times weights at +-127 in rows 2i and
    # 2i+1 give 64,770, over 32,767, and onnxruntime's kernels there return clipped sums silently.
    # A known answer built to overflow: every activation positive (quantized up to 255), every
    # column's weights of one sign and one size (+-127 each under a plain per-column scale). Each
    # recipe must bound its int8 weights (|q[2i]| + |q[2i+1]| <= 128: 255 * 128 fits int16) and
    # compute the integer formula of its own stored integers. On a CPU with VNNI or AMX the
    # overflow cannot happen, so there only the bound tells.
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from roberta_core.export import quantize_int8
    from roberta_core.onnx_int8 import PAIR_BOUND, ZERO_POINT

    rng = np.random.default_rng(5)
    w = (np.sign(rng.normal(size=(1, N))) * rng.uniform(0.5, 1.0, size=(1, N)) * np.ones((K, 1))).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="/layer/attention/query/MatMul")],
                              "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", K])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", N])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "one.onnx"))
    target = quantize_int8(tmp_path / "one.onnx", tmp_path / "int8.onnx", recipe)

    stored = onnx.load(str(target)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in stored.initializer}
    products = [n for n in stored.node if n.op_type in ("MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")]
    assert len(products) == 1
    product = products[0]
    weight = product.input[1]
    assert inits[weight].dtype == np.int8
    if product.op_type == "MatMulInteger":  # onnxruntime's layout: W_quantized, W_scale, W_zero_point
        assert not np.any(inits[product.input[3]])
        scale = inits[weight.replace("_quantized", "_scale")]
    else:  # the per-token graph's MatMulIntegerToFloat (A, B, a_scale, b_scale, a_zero_point): zero point 0
        assert len(product.input) < 6 or product.input[5] == ""
        scale = inits[product.input[3]]
    integers = inits[weight].astype(np.float64)  # (K, N)
    pairs = np.abs(integers[0::2]) + np.abs(integers[1::2])
    assert pairs.max() == PAIR_BOUND, "|q[2i]| + |q[2i+1]| > 128 overflows int16 on CPUs without VNNI"
    np.testing.assert_allclose(integers * scale, w, atol=float(np.max(scale)) / 2 + 1e-7)

    x = rng.uniform(0.1, 3.0, size=(2, 5, K)).astype(np.float32)
    got, = _run(target, {"x": x})
    x64 = x.astype(np.float64)
    if recipe == "per-token":  # one scale per row, zero point 128
        row = np.maximum(x64.max(-1, keepdims=True) / (255 - ZERO_POINT), -x64.min(-1, keepdims=True) / ZERO_POINT)
        quantized = np.clip(np.round(x64 / row) + ZERO_POINT, 0, 255)
        want = ((quantized - ZERO_POINT) @ integers) * row * scale
    else:  # DynamicQuantizeLinear: one scale for the tensor, its range stretched to hold 0
        step = (max(x64.max(), 0) - min(x64.min(), 0)) / 255
        offset = np.clip(np.round(-min(x64.min(), 0) / step), 0, 255)
        quantized = np.clip(np.round(x64 / step) + offset, 0, 255)
        assert quantized.max() == 255
        want = ((quantized - offset) @ integers) * step * scale
    error = np.abs(want - x64 @ w).max()
    assert np.abs(got - want).max() < 0.05 * error + 1e-5 * np.abs(want).max(), (np.abs(got - want).max(), error)


def test_int8_weight_bounds_each_pair_and_rounds_to_nearest_otherwise():
    # Known answers: a column whose largest pair sums to 2 x its largest value needs a scale of
    # pair/128; one whose pairs stay small keeps max/127 (a plain per-column scale); every value
    # is within half a step of w, and no pair of neighbouring rows passes 128.
    from roberta_core.onnx_int8 import PAIR_BOUND, int8_weight

    w = np.zeros((6, 3), np.float32)
    w[:, 0] = [1.0, 1.0, 0.5, -0.25, 0.0, 0.1]  # pair (1, 1): scale 2/128
    w[:, 1] = [1.0, 0.0, 0.0, -0.5, 0.3, 0.0]  # pairs <= 1: scale 1/127
    w[:, 2] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # all zero: a tiny scale, zeros
    q, scale = int8_weight(w)
    np.testing.assert_allclose(scale[:2], [2 / 128, 1 / 127], rtol=1e-6)
    np.testing.assert_array_equal(q[:, 0], [64, 64, 32, -16, 0, 6])
    np.testing.assert_array_equal(q[:, 1], [127, 0, 0, -64, 38, 0])
    assert not q[:, 2].any()
    rng = np.random.default_rng(0)
    for per_column in (True, False):
        for k in (7, 64):  # an odd K pairs its last row with a zero
            w = rng.normal(size=(k, 33)).astype(np.float32) * rng.uniform(0.1, 3, size=33).astype(np.float32)
            q, scale = int8_weight(w, per_column=per_column)
            assert q.dtype == np.int8 and scale.shape == ((33,) if per_column else ())
            qq = np.concatenate([q, np.zeros((k % 2, 33), np.int8)]).astype(np.int32)
            assert (np.abs(qq[0::2]) + np.abs(qq[1::2])).max() <= PAIR_BOUND and np.abs(q).max() <= 127
            assert np.abs(q * scale - w).max() <= np.max(scale) * 0.5 + 1e-6
            assert (np.abs(q * scale - w) <= scale * 0.5 * (1 + 1e-5)).all()
    # the step back: a float32 scale rounded down takes this pair from 128 to 129; the one rounded up
    # the further (65 from 64.56) steps back
    w = np.array([[63.563499450683594], [64.56449890136719]], np.float32)
    q, scale = int8_weight(w)
    assert np.round(w[:, 0].astype(np.float64) / np.float64(scale[0])).tolist() == [64, 65]
    np.testing.assert_array_equal(q[:, 0], [64, 64])


def test_pair_bounded_weights_requantizes_from_the_fp32_weights_or_refuses(tmp_path):
    # onnxruntime's quantize_dynamic output: each W_quantized requantized from the fp32 W (a Gemm's
    # W_Transposed from W transposed); a weight with no fp32 original is an error.
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from roberta_core.export import quantize_int8
    from roberta_core.onnx_int8 import int8_weight, pair_bounded_weights

    rng = np.random.default_rng(1)
    w, g = rng.normal(size=(K, N)).astype(np.float32), rng.normal(size=(N, N)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Gemm", ["h2", "g"], ["y"], name="gemm", transB=1),
             helper.make_node("Reshape", ["h", "shape"], ["h2"], name="flat")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, K])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, N])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(g, "g"),
                               numpy_helper.from_array(np.array([4, N], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "f.onnx"))
    target = quantize_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", "per-channel")
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(target)).graph.initializer}
    for name, fp32 in (("w", w), ("g_Transposed", g.T)):
        want, scale = int8_weight(fp32)
        np.testing.assert_array_equal(stored[f"{name}_quantized"], want)
        np.testing.assert_array_equal(stored[f"{name}_scale"], scale)

    other = tmp_path / "other.onnx"  # the same graph with another weight: nothing to requantize from
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w[:, :5], "w"))
    onnx.save(model, str(other))
    with pytest.raises(ValueError, match="no fp32 weight of its shape"):
        pair_bounded_weights(other, target)


def _lm(tmp_path, tied: bool, seed: int = 3, vocab: int = V, boost: tuple[int, ...] = (), tie: bool = False):
    """ids -> Gather(E) -> x, LayerNorm -> h -> lm_head/decoder MatMul (E^T, or another weight) + bias;
    the ids in `boost` get a bias 200 above the others (every token's top logits are theirs). `tie`
    (untied): id 36 is a copy of id 5 (the same column and bias), both behind three others, so
    every token's 4th and 5th logits tie exactly, in two groups."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocab, H)).astype(np.float32)
    decoder = table.T.copy() if tied else rng.normal(size=(H, vocab)).astype(np.float32)
    bias = rng.normal(size=vocab).astype(np.float32) / 4
    bias[list(boost)] += 200  # a token's own logit (tied) is about H
    if tie:
        decoder[:, 36] = decoder[:, 5]
        bias[[35, 100, 130]] += [3000, 2000, 2000]
        bias[[5, 36]] = 1000
    inits = [numpy_helper.from_array(table, "word_embeddings.weight"), numpy_helper.from_array(decoder, "decoder.w"),
             numpy_helper.from_array(bias, "decoder.b"), numpy_helper.from_array(np.ones(H, np.float32), "ln.g"),
             numpy_helper.from_array(np.zeros(H, np.float32), "ln.b")]
    nodes = [
        helper.make_node("Gather", ["word_embeddings.weight", "input_ids"], ["x"], name="/embeddings/word_embeddings/Gather"),
        helper.make_node("LayerNormalization", ["x", "ln.g", "ln.b"], ["h"], axis=-1, name="/lm_head/layer_norm/LayerNormalization"),
        helper.make_node("MatMul", ["h", "decoder.w"], ["d"], name="/lm_head/decoder/MatMul"),
        helper.make_node("Add", ["d", "decoder.b"], ["logits"], name="/lm_head/decoder/Add"),
    ]
    graph = helper.make_graph(nodes, "lm", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "T"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", "T", vocab]),
                               helper.make_tensor_value_info("h", TensorProto.FLOAT, ["B", "T", H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"lm-{tied}.onnx"
    onnx.save(model, str(path))
    return path, decoder, bias


@pytest.mark.parametrize("tied, vocab, boost", [
    (True, V, ()), (False, V, ()),  # 300 = 10 groups of 30: the k best groups' maxima first
    (True, V, (31, 32, 33, 34)),  # the top k all in one group
    (True, V, (0, 61, 122, 299)),  # each in another group, the first and the last among them
    (True, 307, ()), (True, 307, (0, 100, 200, 306)),  # a prime vocabulary: one TopK over it all
    (False, V, "tie"),  # the 4th place tied across two groups: the lower id, as one TopK keeps
])
def test_the_decoders_top_k_logits_are_recomputed_in_fp32(tmp_path, tied, vocab, boost):
    import onnx

    from roberta_core.onnx_int8 import RESCORE_K, per_token

    tie = boost == "tie"
    path, decoder, bias = _lm(tmp_path, tied, vocab=vocab, boost=() if tie else boost, tie=tie)
    target = per_token(path, tmp_path / "int8.onnx")
    graph = onnx.load(target).graph
    assert [n.op_type for n in graph.node].count("DynamicQuantizeMatMul") == 1
    assert [n.op_type for n in graph.node].count("TopK") == (3 if vocab == V else 1)  # grouped: maxima, order, members
    assert not any(n.op_type == "Add" and n.name == "/lm_head/decoder/Add" for n in graph.node)  # bias fused
    # the tied table is read from the embeddings; an untied decoder keeps its own fp32 rows
    assert any(t.name.endswith("/fp32_rows") for t in graph.initializer) is (not tied)
    # the int8 logits before rescoring, as an output too
    model = onnx.load(target)
    model.graph.output.append(onnx.helper.make_tensor_value_info("/lm_head/decoder/MatMul/int8_logits",
                                                                 onnx.TensorProto.FLOAT, None))
    onnx.save(model, target)
    ids = np.random.default_rng(4).integers(0, vocab, size=(3, 11))
    logits, h, int8 = _run(target, {"input_ids": ids})
    exact = h.astype(np.float64) @ decoder + bias  # (B, T, V) fp32 decoder on the graph's own hidden state
    top = np.argsort(-int8, -1, kind="stable")[..., :RESCORE_K]  # the int8 top k (ties: the lower id first)
    np.testing.assert_allclose(np.take_along_axis(logits, top, -1), np.take_along_axis(exact, top, -1), rtol=1e-6)
    rest = np.ones(logits.shape, bool)
    np.put_along_axis(rest, top, False, -1)
    assert np.array_equal(logits[rest], int8[rest])  # the others stay int8: close to fp32, not equal
    assert 0 < np.abs(int8 - exact).max() < 0.05 * np.abs(exact).max()
    assert np.array_equal(logits.argmax(-1), exact.argmax(-1))
    if tie:
        assert (int8[..., 5] == int8[..., 36]).all() and (np.sort(top, -1) == [5, 35, 100, 130]).all()
    elif boost:
        assert np.array_equal(np.sort(top, -1), np.broadcast_to(sorted(boost), top.shape))


def test_without_rescoring_the_decoder_is_onnxruntimes_fused_per_channel_int8(tmp_path):
    # rescore_k=0: the projection as onnxruntime's own per-channel recipe computes it (the oracle:
    # quantize_int8 'per-channel' on the same graph), no TopK.
    import onnx

    from roberta_core.export import quantize_int8
    from roberta_core.onnx_int8 import per_token

    path, _, _ = _lm(tmp_path, tied=True)
    target = per_token(path, tmp_path / "int8.onnx", rescore_k=0)
    assert not any(n.op_type in ("TopK", "ScatterElements") for n in onnx.load(target).graph.node)
    ids = np.random.default_rng(5).integers(0, V, size=(2, 9))
    got, _ = _run(target, {"input_ids": ids})
    want, _ = _run(quantize_int8(path, tmp_path / "pc.onnx", "per-channel"), {"input_ids": ids})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
