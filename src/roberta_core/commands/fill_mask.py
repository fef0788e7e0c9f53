"""`roberta fill-mask CKPT TEXT`: the most likely tokens at each `<mask>` of TEXT, in any backend."""

from __future__ import annotations

import os

import numpy as np

from .. import runtime
from ..config import RobertaConfig
from . import add_backend_argument, checkpoint_directory, encode, load_tokenizer, print_json, resolve_backend

__all__ = ["fill_mask", "add_arguments", "run"]


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _inner(tokenizer, ids: np.ndarray) -> np.ndarray:
    """`ids` without the `<s>` ... `</s>` around them (other special tokens, masks among them, stay)."""
    start = 1 if ids.size and ids[0] == tokenizer.bos_token_id else 0
    stop = ids.size - 1 if ids.size > start and ids[-1] == tokenizer.eos_token_id else ids.size
    return ids[start:stop]


def fill_mask(path: str | os.PathLike, text: str, *, backend: str | None = None, top_k: int = 5) -> dict:
    """Predictions for every `<mask>` in `text` by the masked-LM checkpoint at `path`.

    Returns {"backend", "masks": [{"position", "candidates": [{"score", "token", "token_str",
    "sequence"}, ...top_k]}], "best": text with every mask replaced by its most likely token}.
    `position` counts tokens, `<s>` included; `sequence` fills that one mask and leaves the others.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    path = checkpoint_directory(path)
    config = RobertaConfig.from_pretrained(path)
    tokenizer = load_tokenizer(path)
    if tokenizer.mask_token_id is None:
        raise ValueError(f"the tokenizer of {path} has no mask token (<mask>); fill-mask needs one")
    batch = encode(tokenizer, config, text)
    ids = batch["input_ids"][0]
    positions = np.flatnonzero(ids == tokenizer.mask_token_id)
    if positions.size == 0:
        raise ValueError(f"the text has no {tokenizer.mask_token}; put {tokenizer.mask_token} where a token should be predicted")
    backend = resolve_backend(backend)
    model = runtime.load_model(backend, "masked_lm", path)
    probs = _softmax(runtime.run_model(backend, model, batch)["logits"][0, positions])  # (masks, V)
    masks = []
    for position, p in zip(positions, probs):
        candidates = []
        for token in np.argsort(-p, kind="stable")[: min(top_k, p.size)]:
            filled = ids.copy()
            filled[position] = token
            candidates.append({
                "score": float(p[token]), "token": int(token), "token_str": tokenizer.decode([int(token)]),
                "sequence": tokenizer.decode(_inner(tokenizer, filled).tolist()),
            })
        masks.append({"position": int(position), "candidates": candidates})
    best = ids.copy()
    best[positions] = probs.argmax(axis=-1)
    return {"backend": backend, "masks": masks, "best": tokenizer.decode(_inner(tokenizer, best).tolist())}


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (weights, config.json, tokenizer files) or Hub repo id")
    parser.add_argument("text", metavar="TEXT", help="text with one or more <mask> tokens")
    add_backend_argument(parser)
    parser.add_argument("--top-k", type=int, default=5, help="candidates per mask (default: 5)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
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
