"""`roberta demo` (what `make demo` runs): the front end of `roberta_core.app.demo`."""

from __future__ import annotations

import argparse

from ..app.demo import FINETUNE, PRETRAIN, demo
from ..app.recipe import BACKENDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="pt", help="framework that trains (default: pt)")
    parser.add_argument("--out", default="demo-run", metavar="DIR", help="where everything is written (default: demo-run)")
    parser.add_argument("--steps", type=int, default=PRETRAIN["steps"], help=f"pretraining updates (default: {PRETRAIN['steps']})")
    parser.add_argument("--finetune-epochs", type=int, default=FINETUNE["epochs"], metavar="N",
                        help=f"fine-tuning epochs (default: {FINETUNE['epochs']})")
    parser.add_argument("--no-parity", action="store_true", help="skip the conversion and parity step")


def run(args: argparse.Namespace) -> int:
    return demo(args.backend, args.out, steps=args.steps, finetune_epochs=args.finetune_epochs, parity=not args.no_parity)
