"""`roberta parity`: every backend against the float64 NumPy reference (`roberta_core.reference`)
and against each other, from the command line. The package holds the whole check: the built-in
cases (`cases`), the runner and its bars (`suite`), and the backends' adapters (`adapters`,
`roberta_<b>.adapter`); the conformance tests (`conformance/`, not installed) run the same.

    roberta parity [CKPT_DIR] [--backends pt,tf,flax] [--device cpu|gpu] [--dtype float32|bfloat16]

Without a checkpoint it runs the built-in tiny cases (`cases`); with a checkpoint
directory it runs every head the checkpoint can serve on generated inputs. It prints a Markdown
table (case × backend, the worst error of each check, pass/fail) and exits 1 when a check fails,
2 on a usage error (unknown backend, backend not installed, no such directory).

The module follows the `roberta_core.cli` subcommand protocol (`add_arguments(parser)`,
`run(args) -> int`); `cli_main(argv)` runs it on its own. No framework is imported until a
backend is asked for.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from .. import backends as _backends

__all__ = ["HELP", "add_arguments", "run", "cli_main"]

HELP = "compare every backend with the float64 NumPy reference and with each other"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", nargs="?", metavar="CKPT_DIR",
                        help="a checkpoint directory (config.json + weights); default: the built-in tiny cases")
    parser.add_argument("--backends", default=None, metavar="LIST",
                        help=f"comma-separated subset of {','.join(_backends.NAMES)} (default: every installed one)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="gpu: PyTorch on CUDA and JAX on its GPU, TF32 off, JAX matmul precision 'highest'")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="float32: outputs, pairs and gradients at the fp32 bars; bfloat16: outputs at the bf16 bar")
    parser.add_argument("--cases", default=None, metavar="LIST", help="comma-separated names of built-in cases to run")
    parser.add_argument("--list", action="store_true", help="list the built-in cases and exit")


def run(args: argparse.Namespace) -> int:
    from . import adapters, suite

    if args.list:
        for case in suite.builtin_cases():
            print(f"{case['name']:36s} {case['head']:24s} checks: {', '.join(case.get('checks', ('fp32',)))}")
        return 0
    if args.backends:
        names = [n.strip() for n in args.backends.split(",") if n.strip()]
    else:
        names = adapters.installed_names()
        if args.device == "gpu":  # a backend optional on GPU (TensorFlow) runs only where it sees one
            names = [n for n in names if not _backends.get(n).gpu_optional or adapters.sees_gpu(n)]
        if not names:
            raise ImportError("no backend is installed: install roberta3[torch], [tf] or [flax]")
    chosen = adapters.get(names, device=args.device)
    if args.checkpoint:
        if args.cases:
            raise ValueError("--cases selects built-in cases; it cannot be combined with a checkpoint directory")
        path = Path(args.checkpoint)
        if not path.is_dir():
            raise NotADirectoryError(f"{path}: not a checkpoint directory")
        cases = suite.prepare_checkpoint(path)
        source = str(path)
    else:
        selected = args.cases.split(",") if args.cases else None
        cases = [suite.prepare(c) for c in suite.builtin_cases(selected)]
        source = "built-in tiny cases"
    start = time.perf_counter()
    rows = suite.Runner(chosen).run(cases, args.dtype, progress=lambda line: print(line, file=sys.stderr, flush=True))
    seconds = time.perf_counter() - start
    print(f"roberta parity: {source}; backends {', '.join(names)}; device {args.device}; dtype {args.dtype}\n")
    if not rows:
        print(f"no check ran: none of the selected cases is marked for {args.dtype}")
        return 1
    print(suite.format_table(rows))
    if any(c.pair_in_units_of_scale for c in cases):
        print("(a checkpoint's pair column is max |Δ| / max(1, max |x|): trained logits reach tens, "
              "where float32's own spacing is ~1e-6)")
    print(f"\n{len(cases)} cases in {seconds:.1f} s")
    return 0 if all(r.passed for r in rows) else 1


def cli_main(argv: Sequence[str] | None = None) -> int:
    """Run `roberta parity` with `argv` (without the program and subcommand names)."""
    parser = argparse.ArgumentParser(prog="roberta parity", description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, TypeError, ImportError, FileNotFoundError, NotADirectoryError) as e:
        print(f"roberta parity: error: {e}", file=sys.stderr)
        return 2
