"""The 'per-token' int8 recipe (`roberta_core.onnx_int8.per_token`) on small hand-built ONNX graphs.

Oracles: the recipe's formula written out in NumPy here (one scale per row from the row's own
minimum and maximum, one zero point, int8 weights one scale per column); a known answer (one
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
    scale = np.abs(w).max(0) / 127
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
