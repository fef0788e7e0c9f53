"""`roberta parity`: the front end of the conformance suite in the library (`roberta_core.parity`),
which keeps its options next to the runner so `roberta_core.parity.cli_main(argv)` runs alone."""

from __future__ import annotations

import argparse

from .. import parity


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parity.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return parity.run(args)
