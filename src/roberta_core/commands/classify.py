"""`roberta classify CKPT TEXT [--pair TEXT]`: the labels a sequence-classification checkpoint gives."""

from __future__ import annotations

import os

import numpy as np

from .. import checkpoint, runtime, weights
from ..config import RobertaConfig
from ..validation import resolve_problem_type
from . import add_backend_argument, checkpoint_directory, encode, load_tokenizer, print_json, resolve_backend

__all__ = ["classify", "add_arguments", "run"]


def classify(path: str | os.PathLike, text: str, pair: str | None = None, *, backend: str | None = None) -> dict:
    """{"backend", "problem_type", "labels": [{"label", "score"}] best first}: probabilities
    (softmax, or per-label sigmoid for multi-label) or, for regression, the predicted values."""
    path = checkpoint_directory(path)
    config = RobertaConfig.from_pretrained(path)
    served = weights.heads_served(config, (k for k, _ in checkpoint.iter_state_dict(path)))
    if "sequence_classification" not in served:
        raise ValueError(
            f"{path} has no sequence-classification head (its weights serve: {', '.join(served) or 'no complete head'}); "
            "fine-tune one first (roberta finetune) or use fill-mask"
        )
    tokenizer = load_tokenizer(path)
    batch = encode(tokenizer, config, text, pair)
    backend = resolve_backend(backend)
    model = runtime.load_model(backend, "sequence_classification", path)
    logits = runtime.run_model(backend, model, batch)["logits"][0].astype(np.float64)  # (num_labels,)
    # Without labels v4's rule reads: the config's problem_type, else regression for one label,
    # else single-label (integer labels).
    problem = resolve_problem_type(config, labels_are_integers=True)
    if problem == "regression":
        scores = logits
    elif problem == "multi_label_classification":
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        e = np.exp(logits - logits.max())
        scores = e / e.sum()
    order = np.argsort(-scores, kind="stable")
    labels = [{"label": config.id2label[int(i)], "score": float(scores[i])} for i in order]
    return {"backend": backend, "problem_type": problem, "labels": labels}


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="sequence-classification checkpoint directory or Hub repo id")
    parser.add_argument("text", metavar="TEXT", help="text to classify")
    parser.add_argument("--pair", default=None, metavar="TEXT", help="second text of a pair (e.g. NLI hypothesis)")
    add_backend_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
    result = classify(args.checkpoint, args.text, args.pair, backend=args.backend)
    if args.json:
        print_json(result)
        return 0
    what = "value" if result["problem_type"] == "regression" else "score"
    for item in result["labels"]:
        print(f"{item['score']:.4f}  {item['label']}" if what == "score" else f"{item['label']}: {item['score']:.6g}")
    return 0
