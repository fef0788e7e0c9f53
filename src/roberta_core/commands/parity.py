"""`roberta parity [CKPT_DIR]`: the conformance suite from the command line — every backend
against the float64 NumPy reference and against each other, as a table; exit status 1 when a
check fails. The work is the `conformance` package's (it ships with roberta3); this module only
reads the arguments and hands them over."""

from __future__ import annotations

import importlib

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", nargs="?", default=None, metavar="CKPT_DIR",
                        help="run every head this checkpoint serves (default: the built-in tiny cases)")
    parser.add_argument("--backends", default=None, metavar="LIST",
                        help="comma-separated subset of pt,tf,flax (default: every installed backend)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="where the backends run (default: cpu)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="float32: vs the reference and pairwise; bfloat16: vs the reference (default: float32)")
    parser.add_argument("--cases", default=None, metavar="LIST", help="comma-separated names of built-in cases (default: all)")


def _conformance():
    try:
        return importlib.import_module("conformance.backends"), importlib.import_module("conformance.suite")
    except ImportError as e:
        raise ImportError(
            f"roberta parity needs the conformance package that ships with roberta3 ({e}); "
            "reinstall roberta3, or run it from the repository root"
        ) from None


def run(args) -> int:
    backends, suite = _conformance()
    if args.backends is None:
        names = [n for n in backends.NAMES if backends.installed(n)]
        if not names:
            raise ImportError("no backend is installed; install one: pip install 'roberta3[torch]' (or [tf], [flax])")
    else:
        names = [n.strip() for n in args.backends.split(",") if n.strip()]
    adapters = backends.get(names, args.device)  # unknown or missing backends: a clear error there
    if args.checkpoint is not None:
        if args.cases is not None:
            raise ValueError("--cases selects built-in cases; it cannot be combined with a checkpoint")
        cases = suite.prepare_checkpoint(args.checkpoint)
    else:
        chosen = None if args.cases is None else [c.strip() for c in args.cases.split(",") if c.strip()]
        cases = [suite.prepare(case) for case in suite.builtin_cases(chosen)]
    rows = suite.Runner(adapters).run(cases, args.dtype)
    print(suite.format_table(rows))
    return 0 if rows and all(row.passed for row in rows) else 1
