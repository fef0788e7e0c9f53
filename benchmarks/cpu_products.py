"""roberta-base's float32 products, one at a time, on the CPU kernels a user can reach: PyTorch's
MKL (`F.linear`), oneDNN (`torch.ops.mkldnn._linear_pointwise`, unpacked and with prepacked
weights), MKL with prepacked weights (`torch.ops.mkl._mkl_linear`, what Inductor's `freezing`
calls) and onnxruntime's MLAS (a one-node `MatMul` + `Add` graph).

    python -m benchmarks.cpu_products [--rows 1024] [--rounds 5] [--threads 2]

One process; each round times every kernel on every shape in turn (each timed loop right after an
untimed call of the same kernel), so a drift of a shared machine's speed falls on all of them.
Prints GFLOP/s of the median per shape and kernel, and each kernel's largest difference from a
float64 product (a wrong kernel shows there, not in the timings). Shapes (K, N): the fused Q/K/V
(768, 2,304), the attention output (768, 768), the feed-forward (768, 3,072) and (3,072, 768),
the LM decoder (768, 50,265). Needs an x86 build of torch with MKL and oneDNN, and onnxruntime.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

SHAPES = ((768, 2304), (768, 768), (768, 3072), (3072, 768), (768, 50265))


def ort_linear(weight: np.ndarray, bias: np.ndarray, rows: int, threads: int):
    """An onnxruntime session computing x (rows, K) @ weight (K, N) + bias."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    K, N = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, N])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def kernels(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, threads: int) -> dict:
    """name -> a call computing x @ weight + bias, (M, N)."""
    import torch

    M = x.shape[0]
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(weight.T)), torch.from_numpy(bias)
    mkl_packed = torch.ops.mkl._mkl_reorder_linear_weight(wt, M)
    dnn_packed = torch.ops.mkldnn._reorder_linear_weight(wt, M)
    session = ort_linear(weight, bias, M, threads)
    return {
        "MKL F.linear": lambda: torch.nn.functional.linear(xt, wt, bt),
        "oneDNN": lambda: torch.ops.mkldnn._linear_pointwise(xt, wt, bt, "none", [], ""),
        "MKL packed": lambda: torch.ops.mkl._mkl_linear(xt, mkl_packed, wt, bt, M),
        "oneDNN packed": lambda: torch.ops.mkldnn._linear_pointwise(xt, dnn_packed, bt, "none", [], ""),
        "onnxruntime": lambda: session.run(None, {"x": x})[0],
    }


def main(argv=None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1024, help="M: tokens in the batch (8 x 128 = 1,024)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.rows < 1 or args.rounds < 1 or args.threads < 1:
        p.error("--rows, --rounds and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"M = {args.rows}, float32, {args.threads} threads, {args.rounds} rounds: GFLOP/s of the median "
          "(max abs difference from float64)")
    for K, N in SHAPES:
        x = rng.standard_normal((args.rows, K), dtype=np.float32)
        weight = rng.standard_normal((K, N), dtype=np.float32) * 0.02
        bias = rng.standard_normal(N).astype(np.float32)
        want = x.astype(np.float64) @ weight.astype(np.float64) + bias
        calls = kernels(x, weight, bias, args.threads)
        repeats = max(1, int(2e10 // (2 * args.rows * K * N)))  # about 20 GFLOP a timed loop
        times: dict[str, list[float]] = {name: [] for name in calls}
        with torch.no_grad():
            errors = {name: float(np.abs(np.asarray(f()) - want).max()) for name, f in calls.items()}
            for _ in range(args.rounds):
                for name, f in calls.items():
                    f()
                    start = time.perf_counter()
                    for _ in range(repeats):
                        f()
                    times[name].append((time.perf_counter() - start) / repeats)
        flops = 2 * args.rows * K * N
        row = ", ".join(f"{name} {flops / statistics.median(t) / 1e9:.0f} ({errors[name]:.0e})"
                        for name, t in times.items())
        print(f"({K}, {N}): {row}", flush=True)


if __name__ == "__main__":
    main()
