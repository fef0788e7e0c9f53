"""`roberta pretrain`: the front end of the pretraining recipe (`roberta_core.app.recipe`)."""

from __future__ import annotations

import argparse

from ..app.recipe import BACKENDS, MIN_VOCAB, RUN_KEYS, format_scores, pretrain
from ..data import FULL_SENTENCES, PACKINGS


# The defaults of a fresh run. A resumed run takes its settings from run.json: giving one of these
# with --resume is refused (it would be ignored), except --steps, which sets the run's new length.
DEFAULTS = dict(
    backend="pt", corpus=["builtin"], config="small", tokenizer=None, vocab_size=None, steps=1000, batch_tokens=4096,
    accumulate=1, max_len=None, packing=FULL_SENTENCES, lr=1e-3, warmup=None, seed=0, precision="auto", save_every=200,
    eval_every=0,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Options default to None here (DEFAULTS fills them in) so that `run` sees which were given.
    parser.add_argument("--backend", choices=BACKENDS, help="framework that trains (default: pt)")
    parser.add_argument("--corpus", nargs="+", metavar="builtin|PATH",
                        help="'builtin' (Python's own documentation, the default) or UTF-8 text files, blank lines between documents")
    parser.add_argument("--config", metavar="tiny|small|PATH", help="a preset or a config.json (default: small)")
    parser.add_argument("--tokenizer", metavar="DIR", help="use this tokenizer instead of learning one from the corpus")
    parser.add_argument("--vocab-size", type=int, metavar="N", help=f"size of the learnt vocabulary (default: the config's, at least {MIN_VOCAB})")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="optimizer updates (default: 1000); with --resume, the updates the run goes on to, in all")
    parser.add_argument("--batch-tokens", type=int, metavar="N", help="tokens per update, padding included (default: 4096)")
    parser.add_argument("--accumulate", type=int, metavar="K", help="micro-batches per update (gradient accumulation)")
    parser.add_argument("--max-len", type=int, metavar="T", help="tokens per packed sequence (default: the config's maximum)")
    parser.add_argument("--packing", choices=PACKINGS, help="the paper's input format (default: full-sentences)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: 1e-3)")
    parser.add_argument("--warmup", type=int, metavar="N", help="warm-up updates (default: 6%% of --steps)")
    parser.add_argument("--seed", type=int, help="seed of the initial weights, the data order and the masks (default: 0)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="auto (the default): bf16 where the device has it")
    parser.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N updates (and at the end, and on Ctrl-C; default: 200)")
    parser.add_argument("--eval-every", type=int, metavar="N", help="evaluate every N updates (default: at the end only)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory: checkpoints, the final model, history.csv (and history.png with roberta3[plot])")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in --out")


def run(args: argparse.Namespace) -> int:
    given = [key for key in RUN_KEYS if getattr(args, key) is not None]
    if args.resume:
        fixed = [key for key in given if key != "steps"]
        if fixed:
            options = ", ".join("--" + key.replace("_", "-") for key in fixed)
            raise ValueError(f"--resume continues the run with the settings in its run.json; {options} cannot change (only --steps can)")
        result = pretrain({}, args.out, resume=True, overwrite=args.overwrite, steps=args.steps)
    else:
        settings = {key: DEFAULTS[key] if getattr(args, key) is None else getattr(args, key) for key in RUN_KEYS}
        if settings["warmup"] is None and isinstance(settings["steps"], int):
            settings["warmup"] = max(1, round(0.06 * settings["steps"])) if settings["steps"] > 0 else 0
        result = pretrain(settings, args.out, overwrite=args.overwrite)
    if result["interrupted"]:
        return 130
    print(format_scores(result))
    history = "history.csv, history.png" if result.get("plotted") else "history.csv"
    print(f"saved to {args.out} ({result['train_s']:.0f} s of training; {history})")
    return 0
