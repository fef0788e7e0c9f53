"""`roberta pretrain`: the front end of the pretraining recipe (`roberta_core.app.recipe`)."""

from __future__ import annotations

import argparse

from ..app.recipe import BACKENDS, MIN_VOCAB, RUN_KEYS, format_scores, pretrain
from ..data import FULL_SENTENCES, PACKINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default="pt", help="framework that trains (default: pt)")
    parser.add_argument("--corpus", nargs="+", default=["builtin"], metavar="builtin|PATH",
                        help="'builtin' (Python's own documentation) or UTF-8 text files, blank lines between documents")
    parser.add_argument("--config", default="small", metavar="tiny|small|PATH", help="a preset or a config.json (default: small)")
    parser.add_argument("--tokenizer", metavar="DIR", help="use this tokenizer instead of learning one from the corpus")
    parser.add_argument("--vocab-size", type=int, metavar="N", help=f"size of the learnt vocabulary (default: the config's, at least {MIN_VOCAB})")
    parser.add_argument("--steps", type=int, default=1000, metavar="N", help="optimizer updates (default: 1000)")
    parser.add_argument("--batch-tokens", type=int, default=4096, metavar="N", help="tokens per update, padding included (default: 4096)")
    parser.add_argument("--accumulate", type=int, default=1, metavar="K", help="micro-batches per update (gradient accumulation)")
    parser.add_argument("--max-len", type=int, metavar="T", help="tokens per packed sequence (default: the config's maximum)")
    parser.add_argument("--packing", choices=PACKINGS, default=FULL_SENTENCES, help="the paper's input format (default: full-sentences)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    parser.add_argument("--warmup", type=int, metavar="N", help="warm-up updates (default: 6%% of --steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="auto: bf16 where the device has it")
    parser.add_argument("--save-every", type=int, default=200, metavar="N", help="checkpoint every N updates (and at the end, and on Ctrl-C)")
    parser.add_argument("--eval-every", type=int, default=0, metavar="N", help="evaluate every N updates (default: at the end)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory: checkpoints and the final model")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in --out")


def run(args: argparse.Namespace) -> int:
    settings = {key: getattr(args, key) for key in RUN_KEYS}
    if settings["warmup"] is None and isinstance(args.steps, int):
        settings["warmup"] = max(1, round(0.06 * args.steps)) if args.steps > 0 else 0
    result = pretrain(settings, args.out, resume=args.resume, overwrite=args.overwrite)
    if result["interrupted"]:
        return 130
    print(format_scores(result))
    print(f"saved to {args.out} ({result['train_s']:.0f} s of training)")
    return 0
