"""`roberta parity`: the front end of the conformance suite in the library (`roberta_core.parity`),
which keeps its options next to the runner so `roberta_core.parity.cli_main(argv)` runs alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import parity
from ..hub import is_hub_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parity.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.checkpoint and not Path(args.checkpoint).exists() and is_hub_id(args.checkpoint):
        from . import checkpoint_directory  # a Hub repo id: its files from the Hugging Face cache

        args.checkpoint = str(checkpoint_directory(args.checkpoint))
    return parity.run(args)
