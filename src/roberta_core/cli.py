"""The `roberta` command: one argparse front end over `roberta_core.commands`.

Each subcommand is a module of `roberta_core.commands` with `add_arguments(parser)` and
`run(args) -> int`; the work itself is the library's or the application's (`roberta_core.app`).
Those modules import no framework at import time: a backend is imported only when a subcommand
needs it, so `roberta --help` and NumPy-only subcommands work without torch, TensorFlow or JAX.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("roberta_core.commands.demo", "the main job on a built-in default (what `make demo` runs)"),
    "pretrain": ("roberta_core.commands.pretrain", "pretrain a masked LM the RoBERTa way: BPE, FULL-SENTENCES, dynamic masking"),
    "finetune": ("roberta_core.commands.finetune", "fine-tune a checkpoint on a task (JSON lines, or the built-in one)"),
    "convert": ("roberta_core.commands.convert", "convert a checkpoint between safetensors, bin, h5 and msgpack, or import fairseq"),
    "export": ("roberta_core.commands.export", "export a checkpoint to ONNX (+int8), StableHLO or a SavedModel, verified"),
    "fill-mask": ("roberta_core.commands.fill_mask", "predict the tokens at each <mask> of a text"),
    "tokenize": ("roberta_core.commands.tokenize_text", "show the tokens and ids of a text"),
    "classify": ("roberta_core.commands.classify", "label a text (or pair) with a sequence-classification checkpoint"),
    "pipeline": ("roberta_core.commands.pipeline", "run a task pipeline (fill-mask, ner, question-answering, ...) over texts or a file"),
    "info": ("roberta_core.commands.info", "summarise a checkpoint: config, parameters, heads, formats, tokenizer"),
    "parity": ("roberta_core.commands.parity", "check every backend against the float64 reference and each other"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roberta", description="One RoBERTa, three frameworks: PyTorch, TensorFlow and Flax."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, ImportError) as e:
        print(f"roberta {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the system refused a write or read (full disk, read-only or missing folder): no traceback
        where = f": {e.filename}" if e.filename else ""
        print(f"roberta {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
