"""`roberta convert`: the front end of `roberta_core.conversion.convert`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..conversion import DTYPES, FORMATS, SOURCES, convert
from ..hub import is_hub_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="checkpoint directory or Hub repo id (with --from fairseq: model.pt or its folder)")
    parser.add_argument("dst", metavar="DST", help="new checkpoint directory (must not exist unless --overwrite)")
    parser.add_argument("--to", choices=FORMATS, default="safetensors", help="weight format to write (default: safetensors)")
    parser.add_argument("--from", dest="from_format", choices=SOURCES, default=None,
                        help="format to read where SRC holds several (its file or v4's sharded index); "
                        "'fairseq' imports model.pt + dict.txt. Only the plain weights are converted: variant "
                        "files (model.fp16.safetensors, ...) are neither converted nor copied")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="cast floating weights (default: keep)")
    parser.add_argument("--max-shard-size", default=None, metavar="SIZE", help="split the weights (any --to format) into v4's shards of at most SIZE, e.g. 2GB")
    parser.add_argument("--verify", action="store_true", default=None,
                        help="check the result in its framework against the source (default: where installed)")
    parser.add_argument("--no-verify", dest="verify", action="store_false", default=None, help="do not check the result")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at DST")
    parser.add_argument("--classification-head", default=None, metavar="NAME",
                        help="fairseq: which classification head to import when there are several")
    parser.add_argument("--gpt2-encoder", default=None, metavar="FILE", help="fairseq BPE models: GPT-2's encoder.json")
    parser.add_argument("--gpt2-merges", default=None, metavar="FILE", help="fairseq BPE models: GPT-2's vocab.bpe")
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None,
                        help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        src = args.src
        if args.from_format != "fairseq" and not Path(src).exists() and is_hub_id(src):
            from . import checkpoint_directory  # a repo id: its files from the Hugging Face cache

            src = checkpoint_directory(src, prefer=args.from_format or "safetensors")
        result = convert(
            src, args.dst, to=args.to, dtype=args.dtype, max_shard_size=args.max_shard_size,
            verify=args.verify, overwrite=args.overwrite, from_format=args.from_format,
            classification_head=args.classification_head, gpt2_encoder=args.gpt2_encoder,
            gpt2_merges=args.gpt2_merges, progress=args.progress,
        )
    except OSError as e:
        if isinstance(e, (FileNotFoundError, FileExistsError, NotADirectoryError)):
            raise
        print(f"roberta convert: error: {e.strerror if e.strerror else e}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    summary = f"wrote {result.path} ({result.format}, {result.parameters:,} parameters: {', '.join(result.files)})"
    if result.checks:
        models = result.checks[1:]
        summary += "; verified: weights read back identical"
        if models:
            summary += f", outputs agree (worst relative difference {max(c.rel for c in models):.3g})"
    print(summary)
    return 0
