"""`roberta tokenize CKPT TEXT`: the tokens and ids a checkpoint's tokenizer makes of a text (NumPy only)."""

from __future__ import annotations

from . import load_tokenizer, print_json

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint or tokenizer directory, or Hub repo id")
    parser.add_argument("text", metavar="TEXT", help="text to tokenize")
    parser.add_argument("--pair", default=None, metavar="TEXT", help="second text of a pair")
    parser.add_argument("--json", action="store_true", help="print ids and tokens as JSON")


def run(args) -> int:
    tokenizer = load_tokenizer(args.checkpoint)
    encoding = tokenizer(args.text, args.pair) if args.pair is not None else tokenizer(args.text)
    ids = list(encoding["input_ids"])
    tokens = tokenizer.convert_ids_to_tokens(ids)
    if args.json:
        print_json({"input_ids": ids, "tokens": tokens})
        return 0
    width = max(len(str(i)) for i in ids) if ids else 1
    for i, token in zip(ids, tokens):
        print(f"{i:>{width}}  {token}")
    print(f"{len(ids)} tokens")
    return 0
