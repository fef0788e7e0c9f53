"""Issue 18's speed columns in one command: ONNX Runtime (fp32 and int8, our export and transformers'),
PyTorch compiled and int8, against transformers 4.57.6's PyTorch on the same weights and inputs.

    python -m benchmarks.quick18 [--preset roberta-base] [--repeats 3] [--json out.json]
    bash benchmarks/quick18.sh          # the same, with the venv's interpreter; ~6 minutes on 2 cores

Cases: `mlm-8x128` and the variable-length batch `varlen-8` of `benchmarks.run` (the same
workload as its cells: MaskedLM logits of every position, the same ids from the same seed).
Cells, each its own process except the ONNX files, which share one onnxruntime process and take
their timed runs in turn (each right after an untimed run of the same file):

- PyTorch, transformers (`.bench-env`): sdpa fp32 — the baseline every ratio is taken against —
  and torch.ao dynamic int8;
- PyTorch, ours: sdpa fp32 (the default; `unpad=True` on varlen-8, no compute on padding),
  `torch.compile` (inductor), torch.ao dynamic int8 (every nn.Linear, as the reference's);
- onnxruntime (all the machine's cores): our export (`roberta_core.export`, verified against the
  float64 reference on this preset before it is timed) at fp32 and int8 (`quantize_int8`, the
  default 'per-channel' recipe, onnxruntime's defaults 'per-tensor', and 'per-token'); transformers' model
  exported by `torch.onnx.export` in `.bench-env` (`benchmarks.hf_onnx_export`) at fp32 and
  int8 by the same two recipes. ONNX Runtime computes the padding (it has no unpadded path);
- onnxruntime on our packed export (`export(..., packed=True)`: the same padded batch in, only
  the real tokens computed, logits (N, V) of the real tokens out) at fp32 and int8 per-channel
  and per-token.

Exports are cached under benchmarks/out/<preset>/onnx-*. The last column compares a few logits
of each cell with the baseline's, at real positions only (a packed graph's rows are put back at
their padded positions for it; int8 differs by its rounding, by design). `--cells a,b` runs only
the cells whose name contains one of the substrings (and the baseline), e.g.
`--cells packed` or `--cells "int8 per-channel"`. Timings from a shared machine are noise: run it
on a quiet one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import run as bench

CASES = ("mlm-8x128", "varlen-8")
BASELINE = ("ref", "pt", "sdpa")


ORT_LABELS = ("ours fp32", "ours int8 per-channel", "ours int8 per-tensor", "ours int8 per-token", "transformers fp32",
              "transformers int8 per-channel", "transformers int8 per-tensor", "ours fp32 packed",
              "ours int8 per-channel packed", "ours int8 per-token packed")


def exports(ckpt: str, workdir: Path, ref_python: Path, log, fresh: bool = False,
            want=lambda label: True) -> dict[str, str]:
    """label -> .onnx path: ours (verified) and transformers', fp32 and the two int8 recipes of
    onnxruntime's quantize_dynamic (ours also 'per-token'), and our packed export (verified) at
    fp32 and int8 per-channel and per-token; only the labels `want` keeps, made once and reused
    unless `fresh`."""
    import shutil

    from roberta_core.export import export, quantize_int8

    if fresh:
        for name in ("onnx-ours", "onnx-hf", "onnx-ours-packed"):
            shutil.rmtree(workdir / name, ignore_errors=True)
    files = {}
    for folder, packed in (("onnx-ours", False), ("onnx-ours-packed", True)):
        suffix = " packed" if packed else ""
        if not any(want(label) for label in ORT_LABELS if label.startswith("ours") and label.endswith(" packed") == packed):
            continue
        ours = workdir / folder
        if not (ours / "model.onnx").is_file():
            start = time.perf_counter()
            result = export(ckpt, ours, to="onnx", head="masked_lm", packed=packed, overwrite=True, log=log)
            log(f"  our{suffix} export verified against the float64 reference (worst relative "
                f"{max(c.rel for c in result.checks):.2g}) in {time.perf_counter() - start:.0f} s")
        files[f"ours fp32{suffix}"] = ours / "model.onnx"
        for recipe in ("per-channel", "per-token") if packed else ():
            if want(f"ours int8 {recipe} packed"):
                target = ours / f"model.int8-{recipe}.onnx"
                if not target.is_file():
                    quantize_int8(ours / "model.onnx", target, recipe)
                files[f"ours int8 {recipe} packed"] = target
    hf = workdir / "onnx-hf" / "model.onnx"
    if not any(want(label) for label in ORT_LABELS if label.startswith("transformers")):
        hf = None
    elif not hf.is_file():
        hf.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([str(ref_python), "-m", "benchmarks.hf_onnx_export", ckpt, str(hf)], cwd=bench.ROOT,
                              capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            log(f"  transformers' export failed (is onnx in .bench-env? `make bench-env` installs it): "
                f"{proc.stderr.strip().splitlines()[-1:]}")
            hf = None
        else:
            log("  " + proc.stdout.strip())
    if hf is not None:
        files["transformers fp32"] = hf
    for label, source in (("ours", files.get("ours fp32")), ("transformers", hf)):
        if source is None:
            continue
        for recipe in ("per-channel", "per-tensor") + (("per-token",) if label == "ours" else ()):
            if not want(f"{label} int8 {recipe}"):
                continue
            target = source.parent / f"model.int8-{recipe}.onnx"
            if not target.is_file():
                quantize_int8(source, target, recipe)
            files[f"{label} int8 {recipe}"] = target
    return {label: str(path) for label, path in files.items() if want(label)}


def run_ort(spec: dict, log) -> list[dict]:
    """`benchmarks.worker.ort_run` in its own process (as `benchmarks.run.run_worker`); its RESULT
    lines, or one {'error': ...} per case when it failed."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps({**spec, "framework": "ort"})],
                          cwd=bench.ROOT, env=env, capture_output=True, text=True)
    results = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0:
        error = " | ".join(proc.stderr.strip().splitlines()[-6:]) or f"exit code {proc.returncode}"
        done = {(r["case"], r.get("impl")) for r in results}
        results += [{"case": c["name"], "impl": label, "error": error} for c in spec["cases"]
                    for label in spec["files"] if (c["name"], label) not in done]
        log(f"  ort FAILED: {error[:300]}")
    else:
        log(f"  ort: {len(spec['files'])} files x {len(spec['cases'])} cases in {time.perf_counter() - start:.0f} s")
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="roberta-base", help="model size (tiny for a smoke run)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per cell (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per cell (default 1)")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile cell")
    p.add_argument("--fresh", action="store_true", help="export again (after a change to the export code)")
    p.add_argument("--json", default=None, help="write every result here")
    p.add_argument("--ref-python", default=str(bench.REFERENCE_PYTHON), help="interpreter of the reference")
    p.add_argument("--cells", default=None, metavar="A,B",
                   help="run only the cells whose name contains one of these comma-separated substrings "
                        "(case-insensitive; the baseline always runs), e.g. 'packed' or 'ONNX Runtime'")
    args = p.parse_args(argv)
    chosen = [c.strip().lower() for c in args.cells.split(",") if c.strip()] if args.cells else None

    def want(name: str) -> bool:
        return chosen is None or any(c in name.lower() for c in chosen)
    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    load = os.getloadavg()
    header = (f"{datetime.datetime.now().isoformat(timespec='seconds')}, {platform.node()}, {os.cpu_count()} CPUs, "
              f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; command: python -m benchmarks.quick18 "
              + " ".join(argv if argv is not None else sys.argv[1:]))
    log(header)
    ref_python = Path(args.ref_python)
    workdir = bench.CACHE / args.preset
    ckpt = bench.make_checkpoints(args.preset, workdir)
    config = ckpt["config"]
    max_length = config["max_position_embeddings"] - config["pad_token_id"] - 1
    cases = [bench.CPU_CASES[name].fitted(max_length) for name in CASES]
    base = {"checkpoint": ckpt["mlm"], "cls_checkpoint": ckpt["cls"], "vocab_size": config["vocab_size"],
            "device": "cpu", "dtype": "fp32", "warmup": args.warmup, "repeats": args.repeats,
            "cases": [c.spec() for c in cases]}
    names = {("ref", "pt", "sdpa"): "transformers · PyTorch sdpa fp32 (baseline)",
             ("ref", "pt", "int8"): "transformers · PyTorch int8 (torch.ao dynamic)",
             ("ours", "pt", "sdpa"): "ours · PyTorch sdpa fp32 (default; unpad on varlen)",
             ("ours", "pt", "compile"): "ours · PyTorch torch.compile fp32 (unpad on varlen)",
             ("ours", "pt", "int8"): "ours · PyTorch int8 (torch.ao dynamic; unpad on varlen)"}
    log("exports:")
    files = exports(ckpt["mlm"], workdir, ref_python, log, fresh=args.fresh,
                    want=lambda label: want(f"{label} · ONNX Runtime"))

    results: dict[tuple[str, str, str], dict[str, dict]] = {}
    ours, ref = bench.Side("ours", bench.OURS_PYTHON), bench.Side("ref", ref_python)
    cells = [(ref, "sdpa"), (ours, "sdpa")] + ([] if args.no_compile else [(ours, "compile")])
    cells += [(ours, "int8"), (ref, "int8")]
    for side, mode in cells:
        if side.impl == "ref" and not ref_python.exists():
            continue
        if (side.impl, "pt", mode) != BASELINE and not want(names[(side.impl, "pt", mode)]):
            continue
        for res in bench.run_worker(side, {**base, "framework": "pt", "mode": mode}, log):
            results.setdefault((side.impl, "pt", mode), {})[res["case"]] = res
    if files:
        for res in run_ort({**base, "framework": "ort", "mode": "fp32", "files": files,
                            "threads": os.cpu_count()}, log):
            label = res.get("impl", "?")
            results.setdefault((label, "ort", "fp32" if "fp32" in label else "int8"), {})[res["case"]] = res
    table = ["| case | cell | s, median (min–max) | **× transformers PT sdpa fp32** | × ORT fp32 on transformers' "
             "export | logits max abs Δ vs baseline |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for case in cases:
        baseline = results.get(BASELINE, {}).get(case.name, {})
        ort_ref = results.get(("transformers fp32", "ort", "fp32"), {}).get(case.name, {})
        for key, by_case in results.items():
            res = by_case.get(case.name, {})
            name = names.get(key, f"{key[0]} · ONNX Runtime")
            if "times" not in res:
                table.append(f"| {case.name} | {name} | failed: {str(res.get('error', ''))[:80]} | | | |")
                continue
            t = statistics.median(res["times"])
            ratio = lambda other: f"{statistics.median(other['times']) / t:.2f}×" if "times" in other else "—"  # noqa: E731
            table.append(f"| {case.name} | {name} | {bench.median_spread(res['times'])} | **{ratio(baseline)}** | "
                         f"{ratio(ort_ref)} | {bench.fingerprint_diff(res, baseline) or '—'} |")
    lengths = next(c.lengths for c in cases if c.name == "varlen-8")
    report = "\n".join([header, "", f"Model: {args.preset}, random weights; {args.repeats} timed runs after "
                        f"{args.warmup} warm-up per cell; varlen-8 lengths {lengths} ({sum(lengths)} real of "
                        f"{len(lengths) * max(lengths)} padded tokens).", "", *table, ""])
    print()
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "files": files, "report": report,
                                               "results": [{"impl": k[0], "framework": k[1], "mode": k[2], **v}
                                                           for k, v in results.items()]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
