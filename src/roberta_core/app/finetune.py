"""Fine-tuning a pretrained checkpoint on a task from JSON-lines data, in any backend (the
`roberta finetune` command is its front end: `roberta_core.commands.finetune`). Framework-neutral:
the update itself is the backend's Trainer, the loop is `recipe.fit`.

Data, one JSON object per line, by task:

    seqcls           {"text": str, "text_pair": str (optional), "label": int | str}
    tokcls           {"tokens": [str, ...], "labels": [int | str, ...]}        (one label per word)
    qa               {"question": str, "context": str, "answers": {"text": [str], "answer_start": [int]}}
    multiple-choice  {"question": str, "choices": [str, ...], "label": int}

DATA is a directory holding `train.jsonl` and `validation.jsonl` (or `dev.jsonl`/`test.jsonl`),
a single file (one line in ten is held out), or `builtin`: the built-in task, which standard-
library package a docstring comes from (`roberta_core.app.corpus.package_task`).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..auto_tokenizer import load_tokenizer, require_bpe
from ..config import RobertaConfig
from ..fileio import atomic_dir
from ..optim import AdamW, load_backend
from ..pretrained import load_pretrained
from ..validation import IGNORE_INDEX
from . import corpus
from .recipe import check_output, fit, write_run_file

__all__ = ["TASKS", "read_task_data", "TaskData", "finetune"]

# command-line task name -> head
TASKS = {
    "seqcls": "sequence_classification",
    "tokcls": "token_classification",
    "qa": "question_answering",
    "multiple-choice": "multiple_choice",
}
_HELDOUT_EVERY = 10
# Integer labels are ids 0..L-1 with L at most twice the distinct ids seen in training (or this):
# a few classes may be absent from the training split, an id of 1e9 may not size the classifier.
MIN_LABEL_IDS = 64
_EVAL_NAMES = ("validation.jsonl", "dev.jsonl", "test.jsonl")


# ---------------------------------------------------------------------------------------------
# 1. Reading examples


def read_jsonl(path: Path) -> list[dict]:
    """The objects of a JSON-lines file (blank lines skipped); errors name the line."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not valid JSON ({e.msg})") from None
            if not isinstance(value, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
            examples.append(value)
    return examples


def read_task_data(data: str) -> tuple[list[dict], list[dict]]:
    """(training examples, held-out examples) of DATA (see the module docstring)."""
    if data == "builtin":
        return corpus.package_task("train"), corpus.package_task("heldout")
    path = Path(data)
    if path.is_dir():
        held = next((path / n for n in _EVAL_NAMES if (path / n).is_file()), None)
        if not (path / "train.jsonl").is_file() or held is None:
            raise FileNotFoundError(f"{path} must hold train.jsonl and one of {', '.join(_EVAL_NAMES)}")
        train, heldout = read_jsonl(path / "train.jsonl"), read_jsonl(held)
    elif path.is_file():
        examples = read_jsonl(path)
        train = [e for i, e in enumerate(examples) if i % _HELDOUT_EVERY != _HELDOUT_EVERY - 1]
        heldout = [e for i, e in enumerate(examples) if i % _HELDOUT_EVERY == _HELDOUT_EVERY - 1]
    else:
        raise FileNotFoundError(f"task data {data} is neither 'builtin', a .jsonl file nor a directory")
    if not train or not heldout:
        raise ValueError(f"task data {data} needs training and held-out examples; got {len(train)} and {len(heldout)}")
    return train, heldout


# ---------------------------------------------------------------------------------------------
# 2. Examples -> features (unpadded id lists) per task


def _field(example: Mapping, key: str, kind: type | tuple, where: str):
    if key not in example:
        raise ValueError(f"{where}: missing field {key!r}")
    if not isinstance(example[key], kind):
        raise TypeError(f"{where}: field {key!r} must be {getattr(kind, '__name__', kind)}, got {type(example[key]).__name__}")
    return example[key]


def label_names(examples: Sequence[dict], key: str, task: str) -> list:
    """The label set, sorted, as v4's scripts make it: strings (names) are numbered in sorted
    order; integers must already be dense ids 0..L-1 and stay themselves. A few ids may be
    missing from the training examples, but not most of them: an id far beyond the number of
    distinct labels is refused, since it would size the classifier (and its memory) by the id."""
    values = set()
    for i, e in enumerate(examples):
        v = _field(e, key, (int, str, list), f"example {i}")
        values.update(v if isinstance(v, list) else [v])
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if min(values) < 0:
            raise ValueError(f"{task} label ids must be in 0..L-1, got {min(values)}; give dense ids or label names (strings)")
        bound = max(2 * len(values), MIN_LABEL_IDS)
        if max(values) >= bound:
            raise ValueError(
                f"{task} label ids must be dense, 0..L-1: the training examples hold {len(values)} distinct id(s) but the "
                f"id {max(values)}; ids may go up to {bound - 1} here. Number the labels 0..{len(values) - 1}, "
                "or give them as names (strings)"
            )
        return list(range(max(values) + 1))
    if all(isinstance(v, str) for v in values):
        return sorted(values)
    raise TypeError(f"{task} labels must be all integers or all strings, got {sorted(map(repr, values))[:5]}")


@dataclass
class TaskData:
    """Encoded examples of one task: `features` hold unpadded lists per example."""

    task: str
    features: list[dict[str, Any]]
    num_labels: int
    labels: list = field(default_factory=list)


def encode_examples(task: str, examples: Sequence[dict], tokenizer, *, max_len: int, labels: Sequence) -> list[dict]:
    """Token ids (with <s> ... </s>) and targets of every example, truncated to `max_len`."""
    index = {v: i for i, v in enumerate(labels)}

    def label_of(value, where):
        if value not in index:
            raise ValueError(f"{where}: label {value!r} is not one of the training labels {list(labels)[:10]}")
        return index[value]

    features = []
    for n, e in enumerate(examples):
        where = f"example {n}"
        if task == "seqcls":
            pair = e.get("text_pair")
            enc = tokenizer(_field(e, "text", str, where), pair, truncation=True, max_length=max_len)
            features.append({"input_ids": list(enc["input_ids"]), "labels": label_of(_field(e, "label", (int, str), where), where)})
        elif task == "tokcls":
            words, tags = _field(e, "tokens", list, where), _field(e, "labels", list, where)
            if len(words) != len(tags):
                raise ValueError(f"{where}: {len(words)} tokens but {len(tags)} labels")
            ids, targets = [tokenizer.bos_token_id], [IGNORE_INDEX]
            for k, (word, tag) in enumerate(zip(words, tags)):
                pieces = tokenizer(word if k == 0 else " " + word, add_special_tokens=False)["input_ids"]
                ids += pieces
                targets += [label_of(tag, where)] + [IGNORE_INDEX] * (len(pieces) - 1)  # the first piece carries the label
            ids, targets = ids[: max_len - 1] + [tokenizer.eos_token_id], targets[: max_len - 1] + [IGNORE_INDEX]
            features.append({"input_ids": ids, "labels": targets})
        elif task == "qa":
            features.append(_encode_qa(e, tokenizer, max_len, where))
        else:
            choices = _field(e, "choices", list, where)
            question = e.get("question", e.get("context", ""))
            enc = [tokenizer(question, c, truncation=True, max_length=max_len)["input_ids"] for c in choices]
            label = _field(e, "label", int, where)
            if not 0 <= label < len(choices):
                raise ValueError(f"{where}: label {label} is not a choice index 0..{len(choices) - 1}")
            features.append({"input_ids": [list(x) for x in enc], "labels": label})
    return features


def _encode_qa(e: Mapping, tokenizer, max_len: int, where: str) -> dict:
    """`<s> question </s></s> context </s>` with the answer's first and last token positions
    (0, the `<s>`, when truncation cut the answer away, as v4's scripts do)."""
    question, context = _field(e, "question", str, where), _field(e, "context", str, where)
    answers = _field(e, "answers", dict, where)
    q = tokenizer(question, add_special_tokens=False)["input_ids"]
    c = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    room = max_len - len(q) - 4
    if room < 1:
        raise ValueError(f"{where}: the question takes {len(q)} tokens, leaving no room for the context in {max_len}")
    offsets = [tuple(o) for o in c["offset_mapping"][:room]]
    ids = [tokenizer.bos_token_id, *q, tokenizer.eos_token_id, tokenizer.eos_token_id, *c["input_ids"][:room], tokenizer.eos_token_id]
    start = end = 0
    texts, starts = answers.get("text", []), answers.get("answer_start", [])
    if texts and starts:
        lo, hi = int(starts[0]), int(starts[0]) + len(texts[0])
        inside = [k for k, (a, b) in enumerate(offsets) if b > lo and a < hi]
        if inside:
            base = len(q) + 3
            start, end = base + inside[0], base + inside[-1]
    return {"input_ids": ids, "start_positions": start, "end_positions": end}


def collate(features: Sequence[dict], pad_id: int, max_len: int) -> dict[str, np.ndarray]:
    """Pad a list of features to their longest sequence (a multiple of 8, at most max_len)."""
    def longest(ids):
        return max(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)

    T = min(-(-max(longest(f["input_ids"]) for f in features) // 8) * 8, max_len)
    mc = isinstance(features[0]["input_ids"][0], list)
    shape = (len(features), len(features[0]["input_ids"]), T) if mc else (len(features), T)
    ids = np.full(shape, pad_id, dtype=np.int64)
    mask = np.zeros(shape, dtype=np.int64)
    for b, f in enumerate(features):
        rows = f["input_ids"] if mc else [f["input_ids"]]
        for c, row in enumerate(rows):
            (ids[b, c] if mc else ids[b])[: len(row)] = row
            (mask[b, c] if mc else mask[b])[: len(row)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in ("labels", "start_positions", "end_positions"):
        if key in features[0]:
            values = [f[key] for f in features]
            if isinstance(values[0], list):  # token labels: pad with -100
                padded = np.full((len(features), T), IGNORE_INDEX, dtype=np.int64)
                for b, v in enumerate(values):
                    padded[b, : len(v)] = v
                batch[key] = padded
            else:
                batch[key] = np.asarray(values, dtype=np.int64)
    return batch


# ---------------------------------------------------------------------------------------------
# 3. Accuracy per task


def accuracy(task: str, outputs: Mapping[str, np.ndarray], batch: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """(correct, counted): argmax label for seqcls and multiple-choice; labelled tokens for
    tokcls; exact (start, end) span for qa."""
    if task == "qa":
        hit = (outputs["start_logits"].argmax(-1) == batch["start_positions"]) & (outputs["end_logits"].argmax(-1) == batch["end_positions"])
        return int(hit.sum()), hit.size
    predicted, labels = outputs["logits"].argmax(-1), batch["labels"]
    keep = labels != IGNORE_INDEX
    return int((predicted[keep] == labels[keep]).sum()), int(keep.sum())


def majority_baseline(task: str, train: Sequence[dict], heldout_batches: Sequence[dict]) -> float:
    """Accuracy of always answering the most frequent training label (qa: the first
    position of the most frequent answer start; multiple choice: the most frequent index)."""
    key = "start_positions" if task == "qa" else "labels"
    flat = np.concatenate([np.ravel(f[key]) for f in train]) if task == "tokcls" else np.asarray([f[key] for f in train])
    flat = flat[flat != IGNORE_INDEX]
    top = np.bincount(flat).argmax()
    held = np.concatenate([np.ravel(b[key]) for b in heldout_batches])
    if task == "qa":
        ends = np.concatenate([b["end_positions"] for b in heldout_batches])
        top_end = np.bincount(np.asarray([f["end_positions"] for f in train])).argmax()
        return float(((held == top) & (ends == top_end)).mean())
    held = held[held != IGNORE_INDEX]
    return float((held == top).mean())


# ---------------------------------------------------------------------------------------------
# 4. Fine-tuning


def finetune(
    task: str,
    backend: str,
    checkpoint: str | os.PathLike,
    data: str,
    *,
    init: str = "pretrained",
    epochs: int = 3,
    batch_size: int = 16,
    accumulate: int = 1,
    lr: float = 1e-4,
    warmup_ratio: float = 0.06,
    weight_decay: float = 0.1,
    max_len: int | None = None,
    seed: int = 0,
    precision: str = "auto",
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Fine-tune `checkpoint` (or, with init='random', a fresh model of its config) on `task`;
    returns held-out accuracy, the majority-class baseline and the time taken."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if init not in ("pretrained", "random"):
        raise ValueError(f"init must be 'pretrained' or 'random', got {init!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("accumulate", accumulate)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
    if batch_size % accumulate:
        raise ValueError(f"--batch-size {batch_size} is not a multiple of --accumulate {accumulate}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be an integer >= 0, got {seed!r}")
    head = TASKS[task]
    began = time.perf_counter()
    if out is not None:  # checked now, written only at the end: a refusal or a failure leaves nothing
        check_output(out, resume=False, overwrite=overwrite, resumable=False)
    Trainer = load_backend(backend)
    tokenizer = require_bpe(load_tokenizer(checkpoint), checkpoint, "fine-tuning")
    config = RobertaConfig.from_pretrained(checkpoint)
    max_len = config.max_sequence_length if max_len is None else max_len
    if isinstance(max_len, bool) or not isinstance(max_len, int) or not 3 <= max_len <= config.max_sequence_length:
        raise ValueError(f"--max-len must be in 3..{config.max_sequence_length} for this checkpoint, got {max_len!r}")

    train_examples, held_examples = read_task_data(data)
    names = label_names(train_examples, "labels" if task == "tokcls" else "label", task) if task in ("seqcls", "tokcls") else []
    train = encode_examples(task, train_examples, tokenizer, max_len=max_len, labels=names)
    heldout = encode_examples(task, held_examples, tokenizer, max_len=max_len, labels=names)
    overrides = {"num_labels": len(names)} if names else {}
    if task == "qa":  # a start and an end logit per token, whatever the source checkpoint's labels (as v4)
        overrides = {"num_labels": 2, "id2label": {0: "LABEL_0", 1: "LABEL_1"}, "label2id": {"LABEL_0": 0, "LABEL_1": 1}}
    if names and isinstance(names[0], str):
        overrides.update(id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    config = config.copy(**overrides)
    state = None if init == "random" else load_pretrained(checkpoint, head, config=config)[1]

    steps = epochs * math.ceil(len(train) / batch_size)
    settings = AdamW(peak_lr=lr, warmup=round(warmup_ratio * steps), steps=steps, weight_decay=weight_decay)
    trainer = Trainer(head, config, settings, state=state, seed=seed, precision=precision)
    if batch_size % (accumulate * trainer.process_count):
        raise ValueError(f"--batch-size {batch_size} must be a multiple of --accumulate × workers = {accumulate * trainer.process_count}")

    def batches() -> Iterator[dict]:
        # fixed-size batches, epoch after epoch in a fresh seeded order
        order, epoch = [], 0
        while True:
            while len(order) < batch_size:
                order += list(np.random.default_rng([seed, epoch]).permutation(len(train)))
                epoch += 1
            chosen, order = order[:batch_size], order[batch_size:]
            yield collate([train[i] for i in chosen], tokenizer.pad_token_id, max_len)

    result = fit(trainer, batches(), settings, head=head, accumulate=accumulate, progress=progress, description=f"finetune {task} [{backend}, {init}]")
    held_batches = [collate(heldout[i : i + batch_size], tokenizer.pad_token_id, max_len) for i in range(0, len(heldout), batch_size)]
    correct = counted = 0
    for batch in held_batches:
        c, n = accuracy(task, trainer.predict(batch), batch)
        correct, counted = correct + c, counted + n
    scores = {
        "accuracy": correct / max(counted, 1),
        "baseline": majority_baseline(task, train, held_batches),
        "examples": len(heldout),
        "steps": result.step,
        "loss": result.loss,
        "seconds": time.perf_counter() - began,
    }
    if out is not None and trainer.process_index == 0:
        out = Path(out)
        with atomic_dir(out, overwrite=out.exists()) as staging:  # the run's files appear together or not at all
            write_run_file(staging, {"task": task, "backend": backend, "checkpoint": str(checkpoint), "data": data, "init": init, **scores})
            trainer.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    return scores
