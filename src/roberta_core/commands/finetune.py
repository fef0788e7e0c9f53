"""`roberta finetune`: the front end of fine-tuning (`roberta_core.app.finetune`)."""

from __future__ import annotations

import argparse

from ..app.finetune import TASKS, finetune
from ..app.recipe import BACKENDS
from . import checkpoint_directory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="a pretrained checkpoint directory or Hub repo id (tokenizer included)")
    parser.add_argument("data", metavar="DATA", help="'builtin', a .jsonl file, or a directory with train.jsonl and validation.jsonl")
    parser.add_argument("--task", choices=tuple(TASKS), default="seqcls", help="the head to fine-tune (default: seqcls)")
    parser.add_argument("--backend", choices=BACKENDS, default="pt", help="framework that trains (default: pt)")
    parser.add_argument("--init", choices=("pretrained", "random"), default="pretrained", help="random: the same model, untrained (a control)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--accumulate", type=int, default=1, metavar="K", help="micro-batches per update")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default: 1e-4)")
    parser.add_argument("--max-len", type=int, metavar="T", help="tokens per example (default: the checkpoint's maximum)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--out", metavar="DIR", help="save the fine-tuned model here")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous fine-tuning run in --out")


def run(args: argparse.Namespace) -> int:
    scores = finetune(
        args.task, args.backend, checkpoint_directory(args.checkpoint), args.data, init=args.init, epochs=args.epochs, batch_size=args.batch_size,
        accumulate=args.accumulate, lr=args.lr, max_len=args.max_len, seed=args.seed, precision=args.precision,
        out=args.out, overwrite=args.overwrite,
    )
    print(
        f"held-out accuracy {scores['accuracy']:.2%} on {scores['examples']} examples "
        f"(majority-class baseline {scores['baseline']:.2%}); {scores['seconds']:.0f} s"
    )
    return 0
