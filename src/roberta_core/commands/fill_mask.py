"""`roberta fill-mask CKPT TEXT`: the most likely tokens at each `<mask>` of TEXT, in any backend.
A shortcut of `roberta pipeline fill-mask`: the model runs through the fill-mask pipeline
(`roberta_core.pipeline`), and `--jsonl` prints exactly what `roberta pipeline fill-mask CKPT
TEXT --option top_k=K` prints (v4's pipeline output); the default display and `--json` keep
this command's own layout (positions, and the text with every mask filled)."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from ..config import RobertaConfig
from . import add_backend_argument, checkpoint_directory, encode, load_tokenizer, print_json

__all__ = ["fill_mask", "pipeline_arguments", "add_arguments", "run"]


def _inner(tokenizer, ids: np.ndarray) -> np.ndarray:
    """`ids` without the `<s>` ... `</s>` around them (other special tokens, masks among them, stay)."""
    start = 1 if ids.size and ids[0] == tokenizer.bos_token_id else 0
    stop = ids.size - 1 if ids.size > start and ids[-1] == tokenizer.eos_token_id else ids.size
    return ids[start:stop]


def fill_mask(path: str | os.PathLike, text: str, *, backend: str | None = None, top_k: int = 5) -> dict:
    """Predictions for every `<mask>` in `text` by the masked-LM checkpoint at `path`, computed by
    the fill-mask pipeline.

    Returns {"backend", "masks": [{"position", "candidates": [{"score", "token", "token_str",
    "sequence"}, ...top_k]}], "best": text with every mask replaced by its most likely token}.
    `position` counts tokens, `<s>` included; `sequence` fills that one mask and leaves the others
    (the pipeline's, for several masks, keeps `<s>` and `</s>` as v4's does).
    """
    from ..pipelines import pipeline

    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    path = checkpoint_directory(path)
    config = RobertaConfig.from_pretrained(path)
    tokenizer = load_tokenizer(path)
    if tokenizer.mask_token_id is None:
        raise ValueError(f"the tokenizer of {path} has no mask token (<mask>); fill-mask needs one")
    # checked here, before a model is loaded, with this command's messages
    ids = encode(tokenizer, config, text)["input_ids"][0]
    positions = np.flatnonzero(ids == tokenizer.mask_token_id)
    if positions.size == 0:
        raise ValueError(f"the text has no {tokenizer.mask_token}; put {tokenizer.mask_token} where a token should be predicted")
    pipe = pipeline("fill-mask", path, tokenizer=tokenizer, backend=backend)
    found = pipe(text, top_k=top_k)
    per_mask = [found] if positions.size == 1 else found  # v4: one list for one mask, a list per mask for several
    masks = []
    best = ids.copy()
    for position, candidates in zip(positions, per_mask):
        listed = []
        for c in candidates:
            filled = ids.copy()
            filled[position] = c["token"]
            listed.append({"score": c["score"], "token": c["token"], "token_str": c["token_str"],
                           "sequence": tokenizer.decode(_inner(tokenizer, filled).tolist())})
        masks.append({"position": int(position), "candidates": listed})
        best[position] = candidates[0]["token"]
    return {"backend": pipe.backend, "masks": masks, "best": tokenizer.decode(_inner(tokenizer, best).tolist())}


def pipeline_arguments(task: str, checkpoint: str, item: dict, backend: str | None, options: dict) -> argparse.Namespace:
    """The arguments of `roberta pipeline TASK CHECKPOINT ITEM --option k=v ...` for one input
    (as a JSON object, so that a text which looks like JSON stays a text)."""
    return argparse.Namespace(task=task, checkpoint=checkpoint, texts=[json.dumps(item, ensure_ascii=False)], input=None,
                              option=[f"{k}={json.dumps(v)}" for k, v in options.items()], backend=backend, batch_size=None)


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (weights, config.json, tokenizer files) or Hub repo id")
    parser.add_argument("text", metavar="TEXT", help="text with one or more <mask> tokens")
    add_backend_argument(parser)
    parser.add_argument("--top-k", type=int, default=5, help="candidates per mask (default: 5)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the result as JSON (positions and the best filling included)")
    output.add_argument("--jsonl", action="store_true", help="print what `roberta pipeline fill-mask` prints: v4's pipeline output, one JSON line")


def run(args) -> int:
    if args.jsonl:
        from . import pipeline as pipeline_command

        if isinstance(args.top_k, bool) or args.top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {args.top_k!r}")
        return pipeline_command.run(pipeline_arguments("fill-mask", str(checkpoint_directory(args.checkpoint)), {"text": args.text},
                                                       args.backend, {"top_k": args.top_k}))
    result = fill_mask(args.checkpoint, args.text, backend=args.backend, top_k=args.top_k)
    if args.json:
        print_json(result)
        return 0
    for n, mask in enumerate(result["masks"], 1):
        print(f"mask {n} of {len(result['masks'])} (token {mask['position']}):")
        width = max(len(repr(c["token_str"])) for c in mask["candidates"])
        for c in mask["candidates"]:
            print(f"  {c['score']:.4f}  {c['token_str']!r:<{width}}  {c['sequence']}")
    if len(result["masks"]) > 1:
        print(f"best: {result['best']}")
    return 0
