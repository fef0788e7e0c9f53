"""Benchmarks against transformers 4.57.6, in the same framework, on the same machine (issue 10).

    python -m benchmarks.run [--backends pt,tf,flax] [--cases mlm-8x128,varlen-8,...] [--quick] [--json out.json]
    python -m benchmarks.run --gpu [--dtypes bf16,fp32] ...      # the GPU variant (benchmarks/gpu.sh)

Every measurement runs in a fresh process (`benchmarks.worker`): ours under this venv, the
reference under `.bench-env` (`make bench-env`), so two frameworks never share a process. Both
load the same random roberta-base checkpoint (made once, cached under benchmarks/out/) and make
the same inputs from the same seed; a fingerprint of their outputs (a few logits at real
positions) is compared, so the table also says that they computed the same thing. Each process
warms up, then times `repeats` runs; rounds alternate ours and the reference, so a load that
comes and goes on a shared machine hits both sides alike. The headline is the speed ratio
(reference time / our time, > 1 is faster) measured in the same run: absolute times drift on
shared machines, ratios taken side by side hold.

`--interleaved` goes further where the machine's speed drifts within seconds (a host shared with
other VMs): both sides in one process of the reference venv (our `src` on its PYTHONPATH), each in
its own thread, taking turns, their timed calls alternating one by one (`benchmarks.worker`,
`impl: both`). The same library versions on both sides then; the process, allocator and thread
pools shared.

The hardware limit: each case's FLOPs are counted analytically (the matmuls: Q/K/V/O, the
feed-forward, attention scores and context, the LM head's dense and its H x V decoder, the
classifier; training counts the backward pass as twice the forward). "useful" FLOPs are the
work the case needs (real tokens only; in training the LM head only where there is a label);
"executed" FLOPs are what each side computes (the reference computes padding and the full LM
head). The machine's matmul rate is measured once per run (n x n products, best of several), and
each side's executed GFLOP/s is shown as a fraction of it.

Our options used by the cases (PyTorch names; TF and Flax mirror them): `unpad=True` on the
variable-length batches (no matmul on padding), `masked_positions_only=True` in the training step
(the LM head only at labelled positions, as fairseq).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from roberta_core import backends as registry

ROOT = Path(__file__).resolve().parents[1]
OURS_PYTHON = Path(sys.executable)
REFERENCE_PYTHON = ROOT / ".bench-env" / "bin" / "python"
CACHE = ROOT / "benchmarks" / "out"

# backend (a name in roberta_core.backends) -> the modes measured; the GPU image has no TensorFlow.
MODES = {"pt": ("sdpa", "eager"), "tf": ("eager", "function", "xla"), "flax": ("jit",)}
GPU_MODES = {"pt": ("sdpa", "compile"), "flax": ("jit",)}
# CPU modes measured only when --modes names them: torch.compile (inductor, a C++ compile per
# shape) and dynamic int8 (torch.ao, inference only; both sides quantized the same way).
EXTRA_MODES = {"pt": ("compile", "int8")}
assert set(MODES) | set(GPU_MODES) <= set(registry.NAMES), "MODES names a backend roberta_core.backends does not declare"


# ---------------------------------------------------------------------------- cases

@dataclass
class Case:
    """One workload: `task` mlm (MaskedLM logits), cls (sequence classification logits), train
    (MLM forward + backward + AdamW), load (from_pretrained), peak (matmul rate); `lengths` are the
    real lengths of the rows, padded to T = max(lengths)."""

    name: str
    task: str
    lengths: list[int] = field(default_factory=list)
    unpad: bool = False
    masked_only: bool = False
    seed: int = 0
    mask_fraction: float = 0.15
    dtypes: tuple[str, ...] = ("fp32",)  # the dtypes it runs in (the CPU runs fp32 only)
    modes: tuple[str, ...] | None = None  # None: every mode of the backend

    @property
    def T(self) -> int:
        return max(self.lengths) if self.lengths else 0

    def fitted(self, max_length: int) -> "Case":
        """The case with lengths cut to what a small preset serves (smoke runs)."""
        return replace(self, lengths=[min(n, max_length) for n in self.lengths])

    def spec(self) -> dict:
        return {"name": self.name, "task": self.task, "lengths": self.lengths, "T": self.T, "seed": self.seed,
                "mask_fraction": self.mask_fraction, "unpad": self.unpad, "masked_only": self.masked_only}


def variable_lengths(batch: int, low: int, high: int, seed: int = 0) -> list[int]:
    """Lengths drawn uniformly from [low, high] (a realistic spread of sentence/paragraph sizes)."""
    return np.random.default_rng(seed).integers(low, high + 1, size=batch).tolist()


CPU_CASES = {
    "mlm-8x128": Case("mlm-8x128", "mlm", [128] * 8),
    "mlm-1x512": Case("mlm-1x512", "mlm", [512]),
    "varlen-8": Case("varlen-8", "mlm", variable_lengths(8, 16, 256), unpad=True),
    "train-8x128": Case("train-8x128", "train", [128] * 8, masked_only=True),
    "cls-32x64": Case("cls-32x64", "cls", [64] * 32),
    "cls-varlen-8": Case("cls-varlen-8", "cls", variable_lengths(8, 16, 256), unpad=True),
    "load": Case("load", "load"),
    "convert": Case("convert", "convert"),
    "tokenizers": Case("tokenizers", "tokenizers"),
}

# Sized for one call of a few minutes: compiling (torch.compile, HF's best PyTorch mode) only for
# bf16 inference on the fixed and the variable-length batch; fp32 (TF32 off) on one shape.
GPU_CASES = {
    "gpu-mlm-64x128": Case("gpu-mlm-64x128", "mlm", [128] * 64, dtypes=("bf16", "fp32")),
    "gpu-mlm-16x512": Case("gpu-mlm-16x512", "mlm", [512] * 16, dtypes=("bf16",), modes=("sdpa", "jit")),
    "gpu-varlen-64": Case("gpu-varlen-64", "mlm", variable_lengths(64, 16, 512), unpad=True, dtypes=("bf16",)),
    "gpu-train-32x512": Case("gpu-train-32x512", "train", [512] * 32, masked_only=True, dtypes=("bf16",),
                             modes=("sdpa", "jit")),
}


# ---------------------------------------------------------------------------- FLOPs

def flops(config: dict, task: str, tokens: int, attention_pairs: int, head_rows: int, batch: int) -> float:
    """Matmul FLOPs (2 per multiply-add) of one forward (x3 for a training step).
    tokens: rows through the encoder; attention_pairs: sum over sequences of query x key
    positions; head_rows: rows through the LM head (mlm/train) — the classifier sees `batch` rows."""
    H, I, L, V = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"], config["vocab_size"]
    encoder = 2 * tokens * L * (4 * H * H + 2 * H * I) + 2 * 2 * L * H * attention_pairs
    if task == "cls":
        return encoder + 2 * batch * (H * H + H * config.get("num_labels", 2))
    forward = encoder + 2 * head_rows * (H * H + H * V)
    return 3 * forward if task == "train" else forward


def case_flops(config: dict, case: Case) -> dict:
    """Useful FLOPs and what each side executes."""
    real = sum(case.lengths)
    B, T = len(case.lengths), case.T
    labelled = real  # mlm: every real position has logits
    if case.task == "train":
        inner = [n - 2 for n in case.lengths]
        labelled = sum(max(1, int(round(case.mask_fraction * n))) for n in inner)
    useful = flops(config, case.task, real, sum(n * n for n in case.lengths), labelled, B)
    padded = flops(config, case.task, B * T, B * T * T, B * T, B)
    ours = flops(config, case.task, real if case.unpad else B * T,
                 sum(n * n for n in case.lengths) if case.unpad else B * T * T,
                 labelled if case.masked_only else (real if case.unpad else B * T), B)
    if case.task == "cls":
        # Our classification heads' last layer computes <s> only, its keys and values from every row
        # (unpadded: the real tokens): the query, output and feed-forward products of the other rows are
        # skipped, and the attention keeps B queries over their rows' T positions (scores on padding
        # included, unpadded: the keys are put back into their padded rows).
        H, I = config["hidden_size"], config["intermediate_size"]
        rows = real if case.unpad else B * T
        pairs = sum(n * n for n in case.lengths) if case.unpad else B * T * T
        ours -= 2 * (rows - B) * (2 * H * H + 2 * H * I) + 2 * 2 * H * (pairs - B * T)
    return {"useful": useful, "ref": padded, "ours": ours, "real_tokens": real, "padded_tokens": B * T}


# ---------------------------------------------------------------------------- checkpoints

def make_checkpoints(preset: str, directory: Path, flax: bool = False) -> dict:
    """A random MaskedLM and a sequence classification checkpoint of `preset` (v4's init: N(0, 0.02),
    LayerNorm 1/0), made once and reused; both heads share the encoder weights. With `flax`, the
    same weights also as flax_model.msgpack, which transformers' Flax classes read without torch."""
    from roberta_core import checkpoint
    from roberta_core.config import RobertaConfig
    from roberta_core.weights import HEADS, parameter_shapes

    config = RobertaConfig.from_preset(preset, num_labels=2)
    paths = {"mlm": directory / "masked_lm", "cls": directory / "sequence_classification"}
    made = all((p / "config.json").exists() and (p / "model.safetensors").exists() for p in paths.values())
    if made and (not flax or all((p / "flax_model.msgpack").exists() for p in paths.values())):
        return {"config": config.to_dict(), **{k: str(v) for k, v in paths.items()}}
    rng = np.random.default_rng(0)
    cache: dict[str, np.ndarray] = {}
    for kind, head in (("mlm", "masked_lm"), ("cls", "sequence_classification")):
        state = {}
        for key, shape in parameter_shapes(config, head).items():
            if key not in cache:
                if key.endswith("bias"):
                    cache[key] = np.zeros(shape, np.float32)
                elif "LayerNorm" in key or "layer_norm" in key:
                    cache[key] = np.ones(shape, np.float32)
                else:
                    cache[key] = (0.02 * rng.standard_normal(shape, dtype=np.float32))
            state[key] = cache[key]
        checkpoint.save_state_dict(state, paths[kind], format="safetensors", architecture=HEADS[head])
        if flax:  # beside it: save_state_dict leaves one format per folder, so written apart and moved in
            staging = directory / f".{kind}-msgpack"
            checkpoint.save_state_dict(state, staging, format="msgpack", architecture=HEADS[head])
            (staging / "flax_model.msgpack").replace(paths[kind] / "flax_model.msgpack")
            shutil.rmtree(staging)
        config.architectures = [HEADS[head]]
        config.save_pretrained(paths[kind])
    return {"config": config.to_dict(), **{k: str(v) for k, v in paths.items()}}


# ---------------------------------------------------------------------------- processes

@dataclass
class Side:
    """An implementation and the interpreter (and extra environment) that runs it."""

    impl: str  # ours | ref | both (--interleaved: the two in one process of the reference venv)
    python: Path
    env: dict = field(default_factory=dict)


def run_worker(side: Side, spec: dict, log) -> list[dict]:
    """One worker process; its RESULT lines, or one {'error': ...} per case when it failed."""
    spec = {**spec, "impl": side.impl}
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3", **side.env}
    start = time.perf_counter()
    proc = subprocess.run([str(side.python), "-m", "benchmarks.worker", json.dumps(spec)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    results = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    done = {r["case"] for r in results}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-6:]
        error = " | ".join(tail) or f"exit code {proc.returncode}"
        results += [{"case": c["name"], "error": error} for c in spec["cases"] if c["name"] not in done]
    log(f"  {spec['framework']}/{spec['mode']}/{spec['dtype']} {side.impl}: "
        f"{', '.join(r['case'] for r in results)} in {time.perf_counter() - start:.0f} s"
        + ("" if proc.returncode == 0 else f"  FAILED: {results[-1].get('error', '')[:300]}"))
    return results


# ---------------------------------------------------------------------------- report

def median_spread(times: list[float]) -> str:
    return f"{statistics.median(times):.3f} ({min(times):.3f}–{max(times):.3f})"


def fingerprint_diff(a: dict, b: dict) -> str:
    if "fingerprint" not in a or "fingerprint" not in b:
        return ""
    x, y = np.asarray(a["fingerprint"], np.float64), np.asarray(b["fingerprint"], np.float64)
    return f"{np.abs(x - y).max():.1e}" if x.shape == y.shape else "shape!"


def speed_table(rows: list[dict], peaks: dict) -> str:
    out = ["| case | backend · mode · dtype | ours s, median (min–max) | reference s, median (min–max) | "
           "**speed-up ref/ours** | of the minima | paired | useful tokens/s ours · ref | useful GFLOP/s ours · ref | "
           "executed % of peak ours · ref | outputs max abs Δ |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ours, ref, fl = r.get("ours", {}), r.get("ref", {}), r["flops"]
        peak = peaks.get(r["dtype"])

        def cell(side, key):
            res = {"ours": ours, "ref": ref}[side]
            if "times" not in res:
                return "failed" if "error" in res else "—"
            t = statistics.median(res["times"])
            if key == "s":
                return median_spread(res["times"])
            if key == "tok":
                return f"{fl['real_tokens'] / t:,.0f}"
            if key == "gf":
                return f"{fl['useful'] / t / 1e9:,.1f}"
            if key == "peak":
                return f"{100 * fl[side] / t / 1e9 / peak:.0f}%" if peak else "—"

        ratio = best = paired = ""
        if "times" in ours and "times" in ref:
            ratio = f"**{statistics.median(ref['times']) / statistics.median(ours['times']):.2f}×**"
            # On a shared machine the fastest run of each side is the one least disturbed.
            best = f"{min(ref['times']) / min(ours['times']):.2f}×"
            if len(ours["times"]) == len(ref["times"]):
                # The i-th runs of the two sides ran next to each other (one by one when interleaved,
                # round by round otherwise): a drift of the machine's speed cancels in their ratio.
                paired = f"{statistics.median(b / a for a, b in zip(ours['times'], ref['times'])):.2f}×"
        out.append(f"| {r['case']} | {r['framework']} · {r['mode']} · {r['dtype']} | {cell('ours', 's')} | "
                   f"{cell('ref', 's')} | {ratio} | {best} | {paired} | {cell('ours', 'tok')} · {cell('ref', 'tok')} | "
                   f"{cell('ours', 'gf')} · {cell('ref', 'gf')} | {cell('ours', 'peak')} · {cell('ref', 'peak')} | "
                   f"{fingerprint_diff(ours, ref)} |")
    return "\n".join(out)


def first_call_table(rows: list[dict]) -> str:
    """The first call of each process (tracing and compilation included) of the compiled modes."""
    out = ["| case | backend · mode · dtype | ours first call s, median | reference first call s, median | "
           "**ours / reference** |", "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        ours, ref = r.get("ours", {}).get("first_call_s"), r.get("ref", {}).get("first_call_s")
        if not ours or not ref or r["mode"] in ("eager", "sdpa"):
            continue
        a, b = statistics.median(ours), statistics.median(ref)
        out.append(f"| {r['case']} | {r['framework']} · {r['mode']} · {r['dtype']} | {a:.1f} | {b:.1f} | **{a / b:.2f}×** |")
    return "\n".join(out) if len(out) > 2 else ""


def load_table(rows: list[dict], checkpoint_mib: float) -> str:
    out = [f"| backend | implementation | from_pretrained s, median (min–max) | RSS after import MiB | peak RSS MiB | "
           f"above baseline / checkpoint ({checkpoint_mib:.0f} MiB) |",
           "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        for side in ("ours", "ref"):
            res = r.get(side, {})
            if "times" not in res:
                out.append(f"| {r['framework']} | {side} | failed | | | |")
                continue
            above = statistics.median([p - b for p, b in zip(res["peak"], res["baseline"])])
            out.append(f"| {r['framework']} | {side} | {median_spread(res['times'])} | "
                       f"{statistics.median(res['baseline']):.0f} | {statistics.median(res['peak']):.0f} | "
                       f"{above / checkpoint_mib:.2f}× |")
    return "\n".join(out)


# ---------------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=None, help=f"comma list of {', '.join(registry.NAMES)} "
                   f"(default {','.join(n for n in registry.NAMES if n in MODES)}; "
                   f"GPU {','.join(n for n in registry.NAMES if n in GPU_MODES)})")
    p.add_argument("--modes", default=None, help="comma list restricting the modes (e.g. sdpa,xla,jit); "
                   "the CPU-only pt modes compile and int8 run only when named here")
    p.add_argument("--cases", default=None, help=f"comma list (CPU: {', '.join(CPU_CASES)}; GPU: {', '.join(GPU_CASES)})")
    p.add_argument("--quick", action="store_true", help="1 warm-up, 2 repeats, 1 round, small tokenizer text")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per process (default 5; quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs per process (default 1)")
    p.add_argument("--rounds", type=int, default=None, help="ours/reference process pairs per measurement (default 2; quick 1)")
    p.add_argument("--json", default=None, help="write every result here (also written as it goes, .partial)")
    p.add_argument("--preset", default="roberta-base", help="model size (a RobertaConfig preset)")
    p.add_argument("--gpu", action="store_true", help="the GPU variant: cuda, bf16 and fp32, larger batches")
    p.add_argument("--dtypes", default=None, help="GPU dtypes (default bf16,fp32); CPU is fp32")
    p.add_argument("--device", default=None, help="torch/JAX device (default cuda with --gpu; cpu runs a smoke test)")
    p.add_argument("--ref-python", default=str(REFERENCE_PYTHON), help="interpreter of the reference")
    p.add_argument("--ref-flax-path", default=None,
                   help="PYTHONPATH for the Flax reference only (GPU image: transformers 4.57.6 wheels)")
    p.add_argument("--workdir", default=None, help="checkpoint cache (default benchmarks/out/<preset>)")
    p.add_argument("--plain", action="store_true",
                   help="measure ours without unpad / masked_positions_only (the v4 computation)")
    p.add_argument("--interleaved", action="store_true",
                   help="both sides in one process (the reference venv), their timed calls alternating")
    p.add_argument("--ours-src", default=None,
                   help="put this folder first on our side's PYTHONPATH (e.g. an export of an older src/ for a before/after)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = args.device or ("cuda" if args.gpu else "cpu")
    all_cases = GPU_CASES if args.gpu else CPU_CASES
    names = args.cases.split(",") if args.cases else list(all_cases)
    unknown = [n for n in names if n not in all_cases]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {', '.join(all_cases)}")
    cases = [all_cases[n] for n in names]
    if args.plain:
        cases = [replace(c, unpad=False, masked_only=False) for c in cases]
    measured = GPU_MODES if args.gpu else MODES
    backends = args.backends.split(",") if args.backends else [n for n in registry.NAMES if n in measured]
    unknown = [n for n in backends if n not in measured]
    if unknown:
        raise SystemExit(f"no {'GPU' if args.gpu else 'CPU'} benchmark for backend(s) {unknown}; choose from "
                         f"{', '.join(n for n in registry.NAMES if n in measured)}")
    dtypes = (args.dtypes or "bf16,fp32").split(",") if args.gpu else ["fp32"]
    warmup = args.warmup if args.warmup is not None else (2 if args.gpu else 1)
    repeats = args.repeats or (2 if args.quick else (10 if args.gpu else 5))
    rounds = args.rounds or (1 if args.quick or args.gpu else 2)
    ref_python = Path(args.ref_python)
    ours_path = ([args.ours_src] if args.ours_src else []) + ([str(ROOT / "src"), str(ROOT)] if args.gpu else [])
    sides = [Side("ours", OURS_PYTHON, {"PYTHONPATH": os.pathsep.join(ours_path)} if ours_path else {})]
    if ref_python.exists():
        sides.append(Side("ref", ref_python))
    else:
        print(f"reference interpreter missing ({ref_python}): run `make bench-env`; measuring our side only")
    plain_sides = sides  # the load measurements and the matmul peak: one side per process always
    if args.interleaved:
        if not ref_python.exists():
            raise SystemExit(f"--interleaved runs in the reference interpreter, which is missing ({ref_python})")
        sides = [Side("both", ref_python, {"PYTHONPATH": os.pathsep.join(ours_path + [str(ROOT / "src"), str(ROOT)])})]

    def sides_for(backend: str) -> list[Side]:
        """Ours and the reference; the GPU image's transformers has no Flax, so its Flax reference
        takes transformers 4.57.6 from --ref-flax-path."""
        if backend == "flax" and args.ref_flax_path:
            return [s if s.impl == "ours" else replace(s, env={**s.env, "PYTHONPATH": os.pathsep.join(
                [args.ref_flax_path] + ([s.env["PYTHONPATH"]] if s.impl == "both" else []))}) for s in sides]
        return sides

    results_path = Path(args.json) if args.json else None
    partial = Path(str(results_path) + ".partial") if results_path else None
    log_lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        log_lines.append(line)

    def record(entry: dict) -> None:
        if partial:
            with partial.open("a") as f:
                f.write(json.dumps(entry) + "\n")

    if partial and partial.exists():
        partial.unlink()
    uptime = os.getloadavg()
    started = datetime.datetime.now().isoformat(timespec="seconds")
    header = (f"{started}, {platform.node()}, {os.cpu_count()} CPUs, load average {uptime[0]:.1f}/{uptime[1]:.1f}/"
              f"{uptime[2]:.1f}; command: python -m benchmarks.run {' '.join(argv if argv is not None else sys.argv[1:])}")
    log(header)

    workdir = Path(args.workdir) if args.workdir else CACHE / args.preset
    ckpt = make_checkpoints(args.preset, workdir, flax="flax" in backends)
    config = ckpt["config"]
    max_length = config["max_position_embeddings"] - config["pad_token_id"] - 1
    cases = [c.fitted(max_length) for c in cases]
    checkpoint_mib = sum(f.stat().st_size for f in Path(ckpt["mlm"]).glob("*.safetensors")) / 2**20
    base_spec = {"checkpoint": ckpt["mlm"], "cls_checkpoint": ckpt["cls"], "vocab_size": config["vocab_size"],
                 "device": device, "warmup": warmup, "repeats": repeats}

    # The machine's matmul rate, per dtype, once.
    peaks = {}
    for dtype in dtypes:
        n = 8192 if device == "cuda" else 2048
        res = run_worker(plain_sides[0], {**base_spec, "framework": "pt", "mode": "peak", "dtype": dtype,
                                    "warmup": 2, "repeats": 10 if device == "cuda" else 5,
                                    "cases": [{"name": f"peak-{dtype}", "task": "peak", "n": n}]}, log)[0]
        peaks[dtype] = res.get("gflops")
        record({"peak": dtype, **res})
        log(f"matmul peak {dtype}: {peaks[dtype] or float('nan'):,.1f} GFLOP/s ({n}x{n}, best of the repeats)")

    model_cases = [c for c in cases if c.task in ("mlm", "cls", "train")]
    speed_rows, load_rows = [], []

    def merge(merged: dict, res: dict) -> None:
        if "times" in res:
            merged.setdefault("times", []).extend(res["times"])
            merged.setdefault("first_call_s", []).extend([res["first_call_s"]] if "first_call_s" in res else [])
            for key in ("fingerprint", "loss", "peak_gpu_mib"):
                if key in res:
                    merged[key] = res[key]
        else:
            merged.setdefault("error", res["error"])
    for backend in backends:
        modes = GPU_MODES[backend] if args.gpu else MODES[backend]
        if args.modes:
            extra = () if args.gpu else EXTRA_MODES.get(backend, ())
            modes = [m for m in (*modes, *extra) if m in args.modes.split(",")]
        # Mode by mode: the compiled modes (slow to start) come last.
        for mode in modes:
            for dtype in dtypes:
                selected = [c for c in model_cases if dtype in c.dtypes and (c.modes is None or mode in c.modes)
                            and not (args.gpu and mode == "compile" and dtype != "bf16")
                            and not (mode == "int8" and c.task == "train")]
                if not selected:
                    continue
                # CPU: one process per case (memory and caches start clean); GPU: one per mode, to
                # pay the interpreter, import and load once.
                groups = [selected] if args.gpu else [[c] for c in selected]
                for group in groups:
                    spec = {**base_spec, "framework": backend, "mode": mode, "dtype": dtype,
                            "cases": [c.spec() for c in group]}
                    collected = {c.name: {} for c in group}
                    for _ in range(rounds):
                        for side in sides_for(backend):
                            for res in run_worker(side, spec, log):
                                # an interleaved process names each result's side; when it failed, both
                                impls = [res["impl"]] if "impl" in res else (
                                    ["ours", "ref"] if side.impl == "both" else [side.impl])
                                record({"framework": backend, "mode": mode, "dtype": dtype, "impl": impls[0], **res})
                                for impl in impls:
                                    merge(collected[res["case"]].setdefault(impl, {}), res)
                    for c in group:
                        speed_rows.append({"case": c.name, "framework": backend, "mode": mode, "dtype": dtype,
                                           "flops": case_flops(config, c), **collected[c.name]})
        if any(c.task == "load" for c in cases):
            row = {"framework": backend}
            mode = (GPU_MODES if args.gpu else MODES)[backend][0]
            for _ in range(1 if args.quick else 3):
                for side in (plain_sides if args.interleaved else sides_for(backend)):
                    res = run_worker(side, {**base_spec, "framework": backend, "mode": mode, "dtype": "fp32",
                                            "device": "cpu", "cases": [{"name": "load", "task": "load"}]}, log)[0]
                    record({"framework": backend, "impl": side.impl, **res})
                    merged = row.setdefault(side.impl, {})
                    if "times" in res:
                        for key, value in (("times", res["times"][0]), ("baseline", res["baseline_mib"]),
                                           ("peak", res["peak_mib"])):
                            merged.setdefault(key, []).append(value)
            load_rows.append(row)

    sections = [header, "", f"Model: {args.preset}, random weights; matmul peak "
                + ", ".join(f"{d} {p:,.1f} GFLOP/s" for d, p in peaks.items() if p) + ".", ""]
    if speed_rows:
        sections += ["Speed-up is the reference's median time over ours (> 1: ours is faster); 'of the minima' is "
                     "the same ratio of the fastest runs; 'paired' the median of the ratios of the two sides' i-th "
                     "runs, which ran next to each other. Useful work counts "
                     "real tokens only (and, in training, the LM head only at labelled positions); executed work is "
                     "what each side computes.", "", speed_table(speed_rows, peaks), ""]
        first = first_call_table(speed_rows)
        if first:
            sections += ["First call of each process (tracing and compilation included; the warm-up, not timed above):",
                         "", first, ""]
        for r in speed_rows:
            if r["case"].startswith(("varlen", "gpu-varlen")):
                fl = r["flops"]
                lengths = next(c.lengths for c in cases if c.name == r["case"])
                sections.append(f"{r['case']}: lengths {lengths}; "
                                f"{fl['real_tokens']} real of {fl['padded_tokens']} padded tokens "
                                f"({100 * fl['real_tokens'] / fl['padded_tokens']:.0f}% useful).")
                break
        sections.append("")
    if load_rows:
        sections += ["from_pretrained (fresh process each; RSS = resident memory, baseline = after importing the "
                     "framework and the library):", "", load_table(load_rows, checkpoint_mib), ""]
    if any(c.task == "convert" for c in cases):
        log("convert: python -m benchmarks.convert_bench")
        proc = subprocess.run([str(OURS_PYTHON), "-m", "benchmarks.convert_bench", "--preset", args.preset],
                              cwd=ROOT, capture_output=True, text=True)
        text = proc.stdout.strip() or proc.stderr.strip()[-2000:]
        sections += ["Conversion (benchmarks.convert_bench):", "", "```", text, "```", ""]
        record({"case": "convert", "output": text})
    if any(c.task == "tokenizers" for c in cases):
        log("tokenizers: benchmarks.tokenizers_bench.run")
        from benchmarks import tokenizers_bench

        mb, reps = (1.0, 1) if args.quick else (10.0, 3)
        try:
            tok_rows = tokenizers_bench.run(mb=mb, repeats=reps, reference_python=ref_python)
            sections += [f"Tokenizers (benchmarks.tokenizers_bench, {mb:g} MB of CPython documentation):", "",
                         tokenizers_bench.format_table(tok_rows), ""]
            record({"case": "tokenizers", "rows": tok_rows})
        except (SystemExit, Exception) as exc:  # the shared tokenizer files may be absent
            sections += [f"Tokenizers: not measured ({exc})", ""]
    report = "\n".join(sections)
    print()
    print(report)
    if results_path:
        results_path.write_text(json.dumps({"header": header, "peaks": peaks, "speed": speed_rows, "load": load_rows,
                                            "report": report}, indent=1))
        partial.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
