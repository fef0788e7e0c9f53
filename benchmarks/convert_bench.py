"""Checkpoint conversion: time and peak memory of PT (safetensors) -> h5 -> msgpack -> safetensors.

    python -m benchmarks.convert_bench [--preset roberta-base] [--workdir DIR] [--verify]

A MaskedLM checkpoint of the preset's size (roberta-base: 125M parameters, 499 MB in float32)
is generated at random, then each conversion runs in a fresh process under `/usr/bin/time -v`
(where it exists; otherwise the process reports its own `getrusage` peak), so every row is the
whole cost of one `roberta convert`: interpreter, imports, reading, writing. "baseline" is the
same process doing everything but the conversion (Python + NumPy + roberta_core imports); the
"copies" column is (peak RSS - baseline) / weights size, the number of copies of the weights the
conversion held at its worst. The last step's file is compared with the first, bit for bit.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from roberta_core import checkpoint
from roberta_core.config import RobertaConfig
from roberta_core.weights import parameter_shapes

TIME = Path("/usr/bin/time")

# The child: convert (or, for the baseline, only import), then print its own peak RSS and time.
CHILD = r"""
import resource, sys, time
start = time.perf_counter()
from roberta_core.conversion import convert
if sys.argv[1] != "baseline":
    convert(sys.argv[2], sys.argv[3], to=sys.argv[1], verify=sys.argv[4] == "1", progress=False, log=lambda line: None)
print("child", time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def make_checkpoint(directory: Path, preset: str) -> int:
    """A random float32 MaskedLM checkpoint (safetensors + config.json); returns the weights' bytes."""
    config = RobertaConfig.from_preset(preset)
    rng = np.random.default_rng(0)
    state = {
        key: (0.02 * rng.standard_normal(shape, dtype=np.float32))
        for key, shape in parameter_shapes(config, "masked_lm").items()
    }
    checkpoint.save_state_dict(state, directory, format="safetensors", architecture="RobertaForMaskedLM")
    config.save_pretrained(directory)
    return sum(v.nbytes for v in state.values())


def measure(to: str, src: Path | None, dst: Path | None, verify: bool) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one child process."""
    cmd = [sys.executable, "-c", CHILD, to, str(src), str(dst), "1" if verify else "0"]
    if TIME.exists():
        cmd = [str(TIME), "-v"] + cmd
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{proc.stderr[-3000:]}")
    if TIME.exists():
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    else:
        rss_kb = int(re.search(r"^child \S+ (\d+)$", proc.stderr, re.M).group(1))
    return wall, rss_kb / 1024


def same_weights(a: Path, b: Path) -> bool:
    left = dict(checkpoint.iter_state_dict(a))
    for key, array in checkpoint.iter_state_dict(b):
        if key not in left or left.pop(key).tobytes() != array.tobytes():
            return False
    return not left


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="roberta-base", help="model size (a RobertaConfig preset)")
    parser.add_argument("--workdir", default=None, help="where to put the checkpoints (default: a temp dir, removed)")
    parser.add_argument("--verify", action="store_true", help="also time each conversion with --verify")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="convert-bench-"))
    try:
        source = workdir / "pt"
        if source.exists():
            shutil.rmtree(source)
        nbytes = make_checkpoint(source, args.preset)
        mib = nbytes / 2**20
        base_time, base_rss = measure("baseline", None, None, False)
        rows = [("baseline (python + imports)", base_time, base_rss)]
        steps = [("safetensors -> h5", "pt", "tf", "h5"), ("h5 -> msgpack", "tf", "flax", "msgpack"),
                 ("msgpack -> safetensors", "flax", "pt2", "safetensors")]
        for label, src, dst, to in steps:
            shutil.rmtree(workdir / dst, ignore_errors=True)
            rows.append((label, *measure(to, workdir / src, workdir / dst, False)))
        if args.verify:
            for label, src, dst, to in steps:
                shutil.rmtree(workdir / dst, ignore_errors=True)
                rows.append((label + " --verify", *measure(to, workdir / src, workdir / dst, True)))
        exact = same_weights(source, workdir / "pt2")

        params = nbytes // 4
        print(f"preset {args.preset}: {params / 1e6:.1f}M parameters, {mib:.0f} MiB of float32 weights; "
              f"{os.cpu_count()} CPUs; peak RSS from {'/usr/bin/time -v' if TIME.exists() else 'getrusage'}")
        print(f"{'step':<36} {'time s':>7} {'peak RSS MiB':>13} {'copies':>7}")
        for label, seconds, rss in rows:
            copies = "" if label.startswith("baseline") else f"{(rss - base_rss) / mib:.2f}"
            print(f"{label:<36} {seconds:>7.2f} {rss:>13.0f} {copies:>7}")
        print(f"round trip safetensors -> h5 -> msgpack -> safetensors bit-exact: {exact}")
        return 0 if exact else 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
