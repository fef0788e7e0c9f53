"""ONNX graphs side by side in one onnxruntime process: alternating timed calls and, with
`--profile`, where each graph's kernel time goes (summed by operator type).

    python -m benchmarks.ort_profile [--rounds 8] [--profile] [--batch 8 --length 128] LABEL=FILE.onnx ...

    # issue 18's int8 comparison (files made by `bash benchmarks/quick18.sh --cells int8`):
    python -m benchmarks.ort_profile --profile --rounds 6 \
        per-token=benchmarks/out/roberta-base/onnx-ours/model.int8-per-token.onnx \
        per-channel=benchmarks/out/roberta-base/onnx-ours/model.int8-per-channel.onnx \
        hf-per-tensor=benchmarks/out/roberta-base/onnx-hf/model.int8-per-tensor.onnx \
        hf-per-channel=benchmarks/out/roberta-base/onnx-hf/model.int8-per-channel.onnx

Every graph gets the same (batch, length) input ids from one seed (`<s>` first, no padding) and
an all-ones attention mask. Each round times every graph once, each timed call right after an
untimed call of the same session (onnxruntime's worker threads spin after a call: a timed call
straight after another session's would share the cores with that spin). The first LABEL is the
baseline of the `paired` column: the median over rounds of baseline time / this graph's time
(> 1: faster than the baseline), so a drift of a shared machine's speed cancels out.

`--profile` turns on onnxruntime's profiler (its own overhead is small but not nil: compare
timings from runs without it) and prints each graph's kernel milliseconds per run by operator.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import tempfile
import time

import numpy as np


def session(path: str, threads: int, profile_prefix: str | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    if profile_prefix:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def feed_for(sess, batch: int, length: int, vocab: int = 50_000) -> dict:
    ids = np.random.default_rng(0).integers(3, vocab, (batch, length)).astype(np.int64)
    ids[:, 0] = 0
    inputs = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            inputs[i.name] = ids
        elif i.name == "attention_mask":
            inputs[i.name] = np.ones_like(ids)
        else:
            raise SystemExit(f"{i.name}: only graphs taking input_ids and attention_mask are timed here")
    return inputs


def kernel_ms_by_op(profile_path: str) -> collections.Counter:
    """Milliseconds per run of each operator type's kernels in one onnxruntime profile."""
    with open(profile_path) as f:
        events = json.load(f)
    runs = max(1, sum(1 for e in events if e.get("name") == "model_run"))
    total: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            total[e["args"]["op_name"]] += e["dur"] / 1000 / runs
    return total


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("graphs", nargs="+", help="LABEL=FILE.onnx; the first is the baseline")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="also sum each graph's kernel time by operator")
    p.add_argument("--top", type=int, default=14, help="operators listed per graph with --profile")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    pairs = []
    for g in args.graphs:
        label, sep, path = g.partition("=")
        if not sep or not os.path.isfile(path):
            p.error(f"{g!r}: expected LABEL=FILE.onnx with an existing file")
        pairs.append((label, path))

    tmp = tempfile.mkdtemp(prefix="ort_profile_")
    sessions = {}
    for label, path in pairs:
        sess = session(path, args.threads, os.path.join(tmp, label) if args.profile else None)
        sessions[label] = (sess, feed_for(sess, args.batch, args.length))
    times = collections.defaultdict(list)
    for _ in range(args.rounds):
        for label, (sess, feed) in sessions.items():
            sess.run(None, feed)
            start = time.perf_counter()
            sess.run(None, feed)
            times[label].append(time.perf_counter() - start)

    base = pairs[0][0]
    print(f"{args.batch}x{args.length}, {args.threads} threads, {args.rounds} rounds")
    print("| graph | ms, median (min–max) | paired × " + base + " |")
    print("| --- | ---: | ---: |")
    for label, t in times.items():
        paired = statistics.median(b / x for b, x in zip(times[base], t))
        print(f"| {label} | {statistics.median(t) * 1000:,.0f} ({min(t) * 1000:,.0f}–{max(t) * 1000:,.0f}) "
              f"| {paired:.2f}× |")
    if args.profile:
        for label, (sess, _) in sessions.items():
            by_op = kernel_ms_by_op(sess.end_profiling())
            listed = ", ".join(f"{op} {ms:.1f}" for op, ms in by_op.most_common(args.top))
            print(f"{label}: kernels {sum(by_op.values()):,.1f} ms a run — {listed}")


if __name__ == "__main__":
    main()
