"""`roberta pipeline TASK CKPT [INPUT ...] [--input FILE]`: any task pipeline from the command line,
one JSON line out per input (`roberta_core.pipeline`, loaded once for all the inputs)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from . import add_backend_argument

__all__ = ["read_inputs", "parse_options", "add_arguments", "run"]

_TEXT_TASKS = (
    "fill-mask", "token-classification", "ner", "feature-extraction", "sentence-embeddings", "zero-shot-classification",
)


def _value(text: str) -> Any:
    """A JSON value when `text` is one (`3`, `null`, `["a", "b"]`, `{"question": ...}`), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _item(task: str, value: Any) -> Any:
    """One pipeline input from an argument, a JSON line or a CSV row: a row of one `text` column
    is that text; a `choices` cell may hold a JSON list."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v not in (None, "")}
        if isinstance(value.get("choices"), str):
            value["choices"] = _value(value["choices"])
        if set(value) == {"text"} or (task in _TEXT_TASKS and "text" in value):
            return value["text"]
    return value


def read_inputs(task: str, texts: list[str], path: str | None) -> list[Any]:
    """The inputs: each TEXT argument (a JSON object for QA, pairs and choices), then the lines of
    a JSON lines file or the rows of a CSV/TSV file (columns named as the task's keys: text,
    text_pair, question, context, choices)."""
    items = [_item(task, _value(t) if t.lstrip().startswith(("{", "[")) else t) for t in texts]
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such input file")
        if file.suffix.lower() in (".csv", ".tsv"):
            with file.open(newline="", encoding="utf-8") as f:
                items += [_item(task, row) for row in csv.DictReader(f, delimiter="\t" if file.suffix.lower() == ".tsv" else ",")]
        else:
            for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        items.append(_item(task, json.loads(line)))
                    except ValueError as e:
                        raise ValueError(f"{file}:{n}: not a JSON value ({e})") from None
    if not items:
        raise ValueError("no inputs: give TEXT arguments or --input FILE (JSON lines, CSV or TSV)")
    return items


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """`--option key=value` pairs as keyword arguments, values read as JSON when they are."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--option takes NAME=VALUE (e.g. top_k=3), got {pair!r}")
        options[key] = _value(value)
    return options


def add_arguments(parser) -> None:
    from ..pipelines import ALIASES, TASKS

    parser.add_argument("task", metavar="TASK", choices=[*TASKS, *ALIASES], help=f"one of {', '.join([*TASKS, *ALIASES])}")
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (weights, config.json, tokenizer files)")
    parser.add_argument("texts", metavar="TEXT", nargs="*",
                        help='inputs; a JSON object for structured ones, e.g. \'{"question": "...", "context": "..."}\'')
    parser.add_argument("--input", metavar="FILE", default=None, help="more inputs: a JSON lines, CSV or TSV file")
    parser.add_argument("--option", metavar="NAME=VALUE", action="append", default=[],
                        help="a task option (top_k=3, aggregation_strategy=simple, doc_stride=64, ...); repeatable")
    add_backend_argument(parser)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows run at once (default: 8, sorted by length and unpadded; given, batches in input "
                             "order as v4's pipeline(batch_size=N), whose feature-extraction keeps the padded positions)")


def run(args) -> int:
    from ..pipelines import pipeline
    from ..pipelines.postprocess import to_python

    items = read_inputs(args.task, args.texts, args.input)
    pipe = pipeline(args.task, args.checkpoint, backend=args.backend, batch_size=args.batch_size, **parse_options(args.option))
    if args.task == "question-answering" and all(isinstance(i, dict) and {"question", "context"} <= set(i) for i in items):
        # v4's keywords (positional examples are its deprecated form, with a FutureWarning)
        results = pipe(question=[i["question"] for i in items], context=[i["context"] for i in items])
    else:
        results = pipe(items)  # one call for all the inputs, sorted into batches by length; results in input order
    if args.task in ("fill-mask", "question-answering") and len(items) == 1:
        results = [results]  # v4 unwraps a list of one; a file of one line still gets one line
    for result in results:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, default=to_python) + "\n")  # v4's np.float32 scores
    return 0
