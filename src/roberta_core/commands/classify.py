"""`roberta classify CKPT TEXT [--pair TEXT]`: the labels a sequence-classification checkpoint gives.
A shortcut of `roberta pipeline text-classification`: the model runs through the
text-classification pipeline (`roberta_core.pipeline`), and `--jsonl` prints exactly what
`roberta pipeline text-classification CKPT '{"text": TEXT, "text_pair": PAIR}'` prints (v4's
pipeline output: the best label); the default display and `--json` keep this command's own
layout (every label, best first, with the problem type)."""

from __future__ import annotations

import os

from .. import checkpoint, weights
from ..config import RobertaConfig
from ..validation import resolve_problem_type
from . import add_backend_argument, checkpoint_directory, encode, load_tokenizer, print_json
from .fill_mask import pipeline_arguments

__all__ = ["classify", "add_arguments", "run"]

# this command's scores by problem type (v4's classification rule without labels); the pipeline's
# own default differs for one label without a problem type (a sigmoid there, the value here)
_FUNCTION = {"regression": "none", "multi_label_classification": "sigmoid", "single_label_classification": "softmax"}


def _check_head(path) -> None:
    config = RobertaConfig.from_pretrained(path)
    served = weights.heads_served(config, (k for k, _ in checkpoint.iter_state_dict(path)))
    if "sequence_classification" not in served:
        raise ValueError(
            f"{path} has no sequence-classification head (its weights serve: {', '.join(served) or 'no complete head'}); "
            "fine-tune one first (roberta finetune) or use fill-mask"
        )


def classify(path: str | os.PathLike, text: str, pair: str | None = None, *, backend: str | None = None) -> dict:
    """{"backend", "problem_type", "labels": [{"label", "score"}] best first}: probabilities
    (softmax, or per-label sigmoid for multi-label) or, for regression, the predicted values;
    computed by the text-classification pipeline with every label (`top_k=None`)."""
    from ..pipelines import pipeline

    path = checkpoint_directory(path)
    _check_head(path)
    config = RobertaConfig.from_pretrained(path)
    tokenizer = load_tokenizer(path)
    encode(tokenizer, config, text, pair)  # checked before a model is loaded, with this command's messages
    # Without labels v4's rule reads: the config's problem_type, else regression for one label,
    # else single-label (integer labels).
    problem = resolve_problem_type(config, labels_are_integers=True)
    pipe = pipeline("text-classification", path, tokenizer=tokenizer, backend=backend)
    labels = pipe(text if pair is None else {"text": text, "text_pair": pair}, top_k=None, function_to_apply=_FUNCTION[problem])
    return {"backend": pipe.backend, "problem_type": problem, "labels": labels}


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="sequence-classification checkpoint directory or Hub repo id")
    parser.add_argument("text", metavar="TEXT", help="text to classify")
    parser.add_argument("--pair", default=None, metavar="TEXT", help="second text of a pair (e.g. NLI hypothesis)")
    add_backend_argument(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the result as JSON (every label, the problem type)")
    output.add_argument("--jsonl", action="store_true",
                        help="print what `roberta pipeline text-classification` prints: v4's pipeline output, one JSON line")


def run(args) -> int:
    if args.jsonl:
        from . import pipeline as pipeline_command

        path = checkpoint_directory(args.checkpoint)
        _check_head(path)
        item = {"text": args.text} if args.pair is None else {"text": args.text, "text_pair": args.pair}
        return pipeline_command.run(pipeline_arguments("text-classification", str(path), item, args.backend, {}))
    result = classify(args.checkpoint, args.text, args.pair, backend=args.backend)
    if args.json:
        print_json(result)
        return 0
    what = "value" if result["problem_type"] == "regression" else "score"
    for item in result["labels"]:
        print(f"{item['score']:.4f}  {item['label']}" if what == "score" else f"{item['label']}: {item['score']:.6g}")
    return 0
