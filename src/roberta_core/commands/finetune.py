"""`roberta finetune`: the front end of fine-tuning (`roberta_core.app.finetune`)."""

from __future__ import annotations

import argparse

from ..app.finetune import COLUMNS, DOC_STRIDE, TASKS, finetune
from ..app.history import NO_PLOT
from ..app.recipe import BACKENDS
from . import checkpoint_directory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="a pretrained checkpoint directory or Hub repo id (tokenizer included)")
    parser.add_argument("data", metavar="DATA", help="'builtin', a .jsonl/.json/.csv/.tsv file, a directory with train.* and validation.* (or dev.*/test.*), "
                             "or a directory written by datasets' save_to_disk (needs roberta3[datasets])")
    parser.add_argument("--task", choices=tuple(TASKS), default="seqcls", help="the head to fine-tune (default: seqcls)")
    parser.add_argument("--backend", choices=BACKENDS, default="pt", help="framework that trains (default: pt)")
    parser.add_argument("--init", choices=("pretrained", "random"), default="pretrained", help="random: the same model, untrained (a control)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--accumulate", type=int, default=1, metavar="K", help="micro-batches per update")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default: 1e-4)")
    parser.add_argument("--max-len", type=int, metavar="T", help="tokens per example (default: the checkpoint's maximum)")
    parser.add_argument("--doc-stride", type=int, default=DOC_STRIDE, metavar="N",
                        help=f"qa: context tokens shared by consecutive windows (default: {DOC_STRIDE}, capped below the room the question leaves)")
    parser.add_argument("--eval-every", type=int, default=0, metavar="N", help="evaluate every N updates (default: every epoch)")
    parser.add_argument("--early-stopping", type=int, default=0, metavar="N", help="stop after N evaluations without improvement (default: off)")
    parser.add_argument("--label-all-tokens", action="store_true", help="tokcls: label every piece of a word, not only the first (B- as I-)")
    for name in COLUMNS:
        flag = name.replace("_", "-")
        parser.add_argument(f"--{flag}-column", dest=f"{name}_column", metavar="NAME", help=f"the data's column holding the {flag} (default: recognised)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--out", metavar="DIR", help="save the best fine-tuned model here, with history.csv/.jsonl (and history.png with roberta3[plot])")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous fine-tuning run in --out")


def run(args: argparse.Namespace) -> int:
    columns = {name: getattr(args, f"{name}_column") for name in COLUMNS if getattr(args, f"{name}_column")}
    scores = finetune(
        args.task, args.backend, checkpoint_directory(args.checkpoint), args.data, init=args.init, epochs=args.epochs, batch_size=args.batch_size,
        accumulate=args.accumulate, lr=args.lr, max_len=args.max_len, seed=args.seed, precision=args.precision,
        out=args.out, overwrite=args.overwrite, columns=columns, doc_stride=args.doc_stride, eval_every=args.eval_every,
        early_stopping=args.early_stopping, label_all_tokens=args.label_all_tokens,
    )
    for row in scores["history"]:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("step", "epoch") and isinstance(v, float))
        print(f"step {row['step']} (epoch {row['epoch']:g}): {shown}")
    metrics = ", ".join(f"{k} {scores[k]:.4f}" for k in ("exact_match", "f1", "precision", "recall", "matthews", "pearson", "spearman", "mse")
                        if k in scores)
    headline = (f"held-out accuracy {scores['accuracy']:.2%} on {scores['examples']} examples (majority-class baseline {scores['baseline']:.2%})"
                if "accuracy" in scores else f"held-out regression on {scores['examples']} examples")
    print(
        f"{headline}{'; ' + metrics if metrics else ''}; "
        f"best {scores['metric']} at step {scores['best_step']}{' (stopped early)' if scores['stopped_early'] else ''}; {scores['seconds']:.0f} s"
    )
    if args.out:
        print(f"saved the best model, history.csv and history.jsonl{', history.png' if scores.get('plotted') else ''} in {args.out}")
        if not scores.get("plotted"):
            print(NO_PLOT)
    return 0
