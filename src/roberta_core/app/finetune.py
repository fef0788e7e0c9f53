"""Fine-tuning a pretrained checkpoint on a task from JSON-lines, CSV/TSV or SQuAD JSON data, in any backend (the
`roberta finetune` command is its front end: `roberta_core.commands.finetune`). Framework-neutral:
the update itself is the backend's Trainer, the loop is `recipe.fit`.

Data, one JSON object per line, by task:

    seqcls           {"text": str, "text_pair": str (optional), "label": int | str}
    tokcls           {"tokens": [str, ...], "labels": [int | str, ...]}        (one label per word)
    qa               {"question": str, "context": str, "answers": {"text": [str], "answer_start": [int]}}
    multiple-choice  {"question": str, "choices": [str, ...], "label": int}

Other column names are mapped by `columns` (the command's `--text-column` ... flags), and the
common layouts are recognised without them: GLUE (`sentence`, `sentence1`+`sentence2`,
`question`+`sentence`, `premise`+`hypothesis`), CoNLL (`tokens`+`ner_tags`), SQuAD v1/v2 JSON
(`data[].paragraphs[].qas[]`) and SWAG (`sent1`, `sent2`, `ending0..3`, `label`). In CSV/TSV
files lists (tokens, tags, answers) are JSON text or, for tokens and tags, space-separated.

DATA is a directory holding `train.{jsonl,json,csv,tsv}` and `validation.*` (or `dev.*`/`test.*`),
a single file (one example in ten is held out), or `builtin`: the built-in task, which standard-
library package a docstring comes from (`roberta_core.app.corpus.package_task`). With the
optional `datasets` package (`pip install 'roberta3[datasets]'`), DATA may also be a directory
written by `Dataset.save_to_disk`/`DatasetDict.save_to_disk` or, from Python, a `datasets.Dataset`/
`DatasetDict`: a DatasetDict's `train` split trains and its `validation` (else `dev`, else `test`)
split evaluates; the column flags apply; a `ClassLabel` column keeps its ids and gives its names
to `id2label`/`label2id`.

Evaluation runs every epoch (or every `eval_every` updates) with the task's standard metrics
(`roberta_core.pipelines.metrics`) and the held-out loss; the best evaluation's model is the one
saved, and each evaluation is a row of `history.csv`/`history.jsonl` beside it, drawn as
`history.png` when matplotlib is installed (`roberta_core.app.history`).
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import tempfile
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

__all__ = ["TASKS", "read_task_data", "read_task_source", "read_dataset", "TaskSource", "TaskData", "finetune", "COLUMNS",
           "qa_windows", "evaluate", "eval_loss"]

# command-line task name -> head
TASKS = {
    "seqcls": "sequence_classification",
    "tokcls": "token_classification",
    "qa": "question_answering",
    "multiple-choice": "multiple_choice",
}
_HELDOUT_EVERY = 10
_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
_EVAL_NAMES = tuple(f"{stem}{s}" for stem in ("validation", "dev", "test") for s in _SUFFIXES)
# the canonical fields that --<name>-column maps
COLUMNS = ("text", "text_pair", "label", "tokens", "tags", "question", "context", "answers")
DOC_STRIDE = 128  # v4's run_qa.py default: tokens shared by consecutive windows of one context


# ---------------------------------------------------------------------------------------------
# 1. Reading examples


def read_jsonl(path: Path) -> list[dict]:
    """The objects of a JSON-lines file (blank lines skipped); errors name the line."""
    examples = []
    with open(path, encoding="utf-8-sig") as f:  # a byte-order mark (Windows editors, Excel) is no content
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


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV (or, by its suffix, TSV) file with a header line, as dicts of strings. A TSV
    has no quoting, as GLUE's files and v4's `_read_tsv` (quotechar None): a '"' is text."""
    tsv = path.suffix.lower() == ".tsv"
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if tsv else ",", quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
        if not reader.fieldnames:
            raise ValueError(f"{path}: a CSV/TSV file needs a header line naming its columns")
        return [dict(row) for row in reader]


def squad_examples(value: dict, path) -> list[dict]:
    """SQuAD v1/v2 JSON (`data[].paragraphs[].qas[]`) as one example per question; v2's
    unanswerable questions get empty answers."""
    examples = []
    for article in value["data"]:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                examples.append({"id": qa.get("id"), "question": qa["question"], "context": paragraph["context"],
                                 "answers": {"text": [a["text"] for a in answers], "answer_start": [int(a["answer_start"]) for a in answers]}})
    if not examples:
        raise ValueError(f"{path}: SQuAD JSON without any question")
    return examples


def read_examples(path: Path) -> list[dict]:
    """The examples of one file, by its suffix: .csv/.tsv, .json (SQuAD JSON, a JSON list, or
    JSON lines), anything else JSON lines."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return read_csv(path)
    if suffix == ".json":
        text = path.read_text(encoding="utf-8-sig")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return read_jsonl(path)
        if isinstance(value, dict) and isinstance(value.get("data"), list):
            return squad_examples(value, path)
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return value
        if isinstance(value, dict):
            return [value]
        raise ValueError(f"{path}: expected SQuAD JSON, a list of objects or JSON lines")
    return read_jsonl(path)


@dataclass
class TaskSource:
    """The examples of DATA before normalisation: training and held-out rows (dicts of the
    source's columns), the label names a Hugging Face dataset declares for its `ClassLabel`
    columns (column -> names in id order; {} for other sources) and a description for run.json."""

    train: list[dict]
    heldout: list[dict]
    class_names: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""


def read_task_data(data) -> tuple[list[dict], list[dict]]:
    """(training examples, held-out examples) of DATA (see the module docstring)."""
    source = read_task_source(data)
    return source.train, source.heldout


def _split(examples: list[dict]) -> tuple[list[dict], list[dict]]:
    # one example in ten held out, the same ones every run
    train = [e for i, e in enumerate(examples) if i % _HELDOUT_EVERY != _HELDOUT_EVERY - 1]
    heldout = [e for i, e in enumerate(examples) if i % _HELDOUT_EVERY == _HELDOUT_EVERY - 1]
    return train, heldout


def read_task_source(data) -> TaskSource:
    """The examples of DATA: 'builtin', a file, a directory of train/validation files, a
    directory written by `datasets`' `save_to_disk`, or a `datasets.Dataset`/`DatasetDict`
    object (see `read_dataset`)."""
    if is_dataset_object(data):
        return read_dataset(data, description=f"datasets.{type(data).__name__}")
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"task data must be 'builtin', a path or a datasets.Dataset/DatasetDict, got {type(data).__name__}")
    if data == "builtin":
        return TaskSource(corpus.package_task("train"), corpus.package_task("heldout"), description="builtin")
    path = Path(data)
    if path.is_dir() and is_saved_dataset(path):
        return read_dataset(_require_datasets().load_from_disk(str(path)), description=str(data))
    if path.is_dir():
        held = next((path / n for n in _EVAL_NAMES if (path / n).is_file()), None)
        first = next((path / f"train{s}" for s in _SUFFIXES if (path / f"train{s}").is_file()), None)
        if first is None or held is None:
            raise FileNotFoundError(
                f"{path} must hold train.jsonl (or .json/.csv/.tsv) and one of {', '.join(_EVAL_NAMES)}, "
                "or be a dataset saved by datasets' save_to_disk"
            )
        train, heldout = read_examples(first), read_examples(held)
    elif path.is_file():
        train, heldout = _split(read_examples(path))
    else:
        raise FileNotFoundError(f"task data {data} is neither 'builtin', a data file nor a directory")
    if not train or not heldout:
        raise ValueError(f"task data {data} needs training and held-out examples; got {len(train)} and {len(heldout)}")
    return TaskSource(train, heldout, description=str(data))


# ---------------------------------------------------------------------------------------------
# Hugging Face datasets (optional: `pip install 'roberta3[datasets]'`, imported only when read)

_DATASET_EVAL_SPLITS = ("validation", "dev", "test")


def _require_datasets():
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "reading a Hugging Face dataset needs the datasets package: pip install 'roberta3[datasets]'"
        ) from None
    return datasets


def is_dataset_object(data) -> bool:
    """Whether `data` is an in-memory `datasets.Dataset` or `DatasetDict` (checked by its module,
    so that plain paths never import `datasets`)."""
    return type(data).__module__.split(".")[0] == "datasets" and type(data).__name__ in ("Dataset", "DatasetDict")


def is_saved_dataset(path: Path) -> bool:
    """Whether directory `path` was written by `Dataset.save_to_disk` (state.json and
    dataset_info.json beside the Arrow files) or `DatasetDict.save_to_disk` (dataset_dict.json)."""
    return (path / "dataset_dict.json").is_file() or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file())


def _class_names(features) -> dict[str, list[str]]:
    """Column -> label names of the `ClassLabel` columns, and of sequences of `ClassLabel`
    (CoNLL's `ner_tags`), in id order."""
    datasets = _require_datasets()
    names = {}
    for column, feature in features.items():
        inner = feature
        while not isinstance(inner, datasets.ClassLabel):  # List / Sequence / [feature] wrappers
            if isinstance(inner, list) and len(inner) == 1:
                inner = inner[0]
            elif hasattr(inner, "feature"):
                inner = inner.feature
            else:
                break
        if isinstance(inner, datasets.ClassLabel) and inner.names:
            names[column] = list(inner.names)
    return names


def read_dataset(dataset, *, description: str = "datasets") -> TaskSource:
    """A `datasets.Dataset` (one example in ten held out, as for a single file) or `DatasetDict`
    (its `train` split, and `validation`, else `dev`, else `test` held out; one in ten of
    `train` when it has none of them) as rows, with the names of its `ClassLabel` columns."""
    datasets = _require_datasets()
    if isinstance(dataset, datasets.DatasetDict):
        if "train" not in dataset:
            raise ValueError(f"the DatasetDict has no 'train' split; it has {sorted(dataset)}")
        held = next((name for name in _DATASET_EVAL_SPLITS if name in dataset), None)
        train = dataset["train"].to_list()
        if held is None:
            train, heldout = _split(train)
        else:
            heldout = dataset[held].to_list()
        features = dataset["train"].features
    elif isinstance(dataset, datasets.Dataset):
        train, heldout = _split(dataset.to_list())
        features = dataset.features
    else:
        raise TypeError(f"expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")
    if not train or not heldout:
        raise ValueError(f"the dataset needs training and held-out examples; got {len(train)} and {len(heldout)}")
    return TaskSource(train, heldout, _class_names(features), description)


# which source columns, in order of preference, give each canonical field when no flag names one
_GUESSES = {
    "seqcls": {"text": ("text", "sentence1", "premise", "question1", "question", "sentence"),
               "text_pair": ("text_pair", "sentence2", "hypothesis", "question2", "sentence"), "label": ("label",)},
    "tokcls": {"tokens": ("tokens", "words"), "labels": ("labels", "ner_tags", "tags", "pos_tags")},
    "qa": {"question": ("question",), "context": ("context",), "answers": ("answers",)},
    "multiple-choice": {"question": ("question", "context", "sent1"), "label": ("label",)},
}


def _as_list(value, where: str, key: str):
    """A list field: itself, JSON text of a list, or (CSV) space-separated words."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"{where}: column for {key!r} is not a valid JSON list") from None
        else:
            value = text.split()
    return value


def _label_value(value):
    """CSV gives strings: a label that is an integer in text is the integer id, a decimal number
    a regression target (STS-B's "3.8")."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", value.strip()):
        return float(value)
    return value


def is_regression(examples: Sequence[dict]) -> bool:
    """Whether seqcls labels are regression targets: numbers, at least one written as a decimal
    (STS-B's "5.000" too; integer ids are classes)."""
    values = [e.get("label") for e in examples]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return bool(values) and numbers and any(isinstance(v, float) for v in values)


def _column_flags(columns: Mapping[str, str] | None) -> dict[str, str]:
    columns = dict(columns or {})
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown column field(s) {sorted(unknown)}; allowed: {', '.join(COLUMNS)}")
    if "tags" in columns:
        columns["labels"] = columns.pop("tags")
    return columns


def choose_columns(task: str, keys, columns: Mapping[str, str] | None = None) -> dict[str, str]:
    """Canonical field -> source column for data with columns `keys`: the column `columns`
    names (canonical field -> source column; `tags` is tokcls's `labels`), else the first of the
    common layouts' column names present."""
    columns = _column_flags(columns)
    chosen = {}
    for name, guesses in _GUESSES[task].items():
        if name in columns:
            if columns[name] not in keys:
                raise ValueError(f"--{name.replace('labels', 'tags').replace('_', '-')}-column {columns[name]!r} is not a column of the data; it has {sorted(keys)}")
            chosen[name] = columns[name]
            continue
        found = next((g for g in guesses if g in keys and g not in chosen.values()), None)
        if found is not None:
            chosen[name] = found
    if task == "seqcls" and "text_pair" in chosen and chosen.get("text") == chosen["text_pair"]:
        del chosen["text_pair"]
    return chosen


def _keys(examples: Sequence[dict]) -> set:
    return set().union(*(e.keys() for e in examples[:50]))


def normalize_examples(task: str, examples: Sequence[dict], columns: Mapping[str, str] | None = None) -> list[dict]:
    """Examples in the task's canonical fields (module docstring), taken from the columns that
    `columns` names (canonical field -> source column; `tags` is tokcls's `labels`) or else from
    the first of the common layouts' column names that the examples have."""
    _column_flags(columns)  # unknown names are refused even without rows
    if not examples:
        return []
    keys = _keys(examples)
    chosen = choose_columns(task, keys, columns)
    swag = task == "multiple-choice" and "choices" not in keys and "ending0" in keys
    out = []
    for n, e in enumerate(examples):
        where = f"example {n}"
        row = {name: e[source] for name, source in chosen.items() if source in e}
        if task == "seqcls":
            if row.get("text_pair") in ("", None):
                row.pop("text_pair", None)
            if "label" in row:
                row["label"] = _label_value(row["label"])
        elif task == "tokcls":
            for key in ("tokens", "labels"):
                if key in row:
                    row[key] = _as_list(row[key], where, key)
            if "labels" in row:
                row["labels"] = [_label_value(v) for v in row["labels"]]
        elif task == "qa":
            if isinstance(row.get("answers"), str):
                try:
                    row["answers"] = json.loads(row["answers"])
                except json.JSONDecodeError:
                    raise ValueError(f"{where}: the answers column is not valid JSON") from None
        else:
            if swag:
                endings = sorted((k for k in e if re.fullmatch(r"ending\d+", k)), key=lambda k: int(k[6:]))
                row["choices"] = [f"{e.get('sent2', '')} {e[k]}".strip() for k in endings]  # as run_swag.py pairs them
            elif "choices" in e:
                row["choices"] = _as_list(e["choices"], where, "choices")
            if "label" in row:
                row["label"] = _label_value(row["label"])
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# 2. Examples -> features (unpadded id lists) per task


def _field(example: Mapping, key: str, kind: type | tuple, where: str):
    if key not in example:
        raise ValueError(f"{where}: missing field {key!r}")
    if not isinstance(example[key], kind):
        raise TypeError(f"{where}: field {key!r} must be {getattr(kind, '__name__', kind)}, got {type(example[key]).__name__}")
    return example[key]


def label_names(examples: Sequence[dict], key: str, task: str) -> list:
    """The label set, sorted, as v4's scripts make it (`run_glue.py`'s `label_list.sort()`): ids
    0..L-1 number the distinct labels in sorted order, names (strings) or integers alike (star
    ratings 1..5 are 5 labels, not 6; an integer label never sizes the classifier by its value)."""
    values = set()
    for i, e in enumerate(examples):
        v = _field(e, key, (int, str, list), f"example {i}")
        values.update(v if isinstance(v, list) else [v])
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) or all(isinstance(v, str) for v in values):
        return sorted(values)
    raise TypeError(f"{task} labels must be all integers or all strings, got {sorted(map(repr, values))[:5]}")


def declared_label_names(task: str, source: TaskSource, columns: Mapping[str, str] | None = None) -> list[str] | None:
    """The label names the data declares for the column that gives seqcls/tokcls labels (a
    `datasets` `ClassLabel`, in id order), or None: the names are then found in the examples."""
    if task not in ("seqcls", "tokcls") or not source.class_names or not source.train:
        return None
    column = choose_columns(task, _keys(source.train), columns).get("labels" if task == "tokcls" else "label")
    return source.class_names.get(column)


def name_labels(task: str, examples: Sequence[dict], names: Sequence[str]) -> list[dict]:
    """`examples` with their integer label ids replaced by the declared `names` (id i is names[i]),
    so that encoding keeps the dataset's ids and id2label its names."""
    def named(value, where):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
            raise ValueError(
                f"{where}: label {value!r} is not a class id 0..{len(names) - 1} of the dataset's ClassLabel "
                f"({', '.join(map(str, names[:8]))}{', ...' if len(names) > 8 else ''}); an unlabelled split (label -1) cannot train or evaluate"
            )
        return names[value]

    key = "labels" if task == "tokcls" else "label"
    out = []
    for n, e in enumerate(examples):
        value = _field(e, key, (int, list), f"example {n}")
        out.append({**e, key: [named(v, f"example {n}") for v in value] if isinstance(value, list) else named(value, f"example {n}")})
    return out


@dataclass
class TaskData:
    """Encoded examples of one task: `features` hold unpadded lists per example."""

    task: str
    features: list[dict[str, Any]]
    num_labels: int
    labels: list = field(default_factory=list)


def encode_examples(task: str, examples: Sequence[dict], tokenizer, *, max_len: int, labels: Sequence | None,
                    doc_stride: int | None = None, label_all_tokens: bool = False) -> list[dict]:
    """Token ids (with <s> ... </s>) and targets of every example, truncated to `max_len`; for qa
    with a `doc_stride`, every window of the context instead (`qa_windows`). seqcls `labels`
    None: regression, the label a float target. tokcls labels a word's first piece, and with
    `label_all_tokens` its other pieces too (a B- tag's as the matching I- tag, as v4's run_ner.py);
    `word_starts` keeps the first pieces' positions, where evaluation scores the words."""
    index = {v: i for i, v in enumerate(labels or ())}

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
            if labels is None:
                target = float(_field(e, "label", (int, float), where))
            else:
                target = label_of(_field(e, "label", (int, str), where), where)
            features.append({"input_ids": list(enc["input_ids"]), "labels": target})
        elif task == "tokcls":
            words, tags = _field(e, "tokens", list, where), _field(e, "labels", list, where)
            if len(words) != len(tags):
                raise ValueError(f"{where}: {len(words)} tokens but {len(tags)} labels")
            first = [label_of(tag, where) for tag in tags]
            rest = [IGNORE_INDEX] * len(tags)
            if label_all_tokens:  # a B- tag's other pieces as the matching I- tag, as v4's run_ner.py
                inside = ["I-" + t[2:] if isinstance(t, str) and t.startswith("B-") else t for t in tags]
                rest = [label_of(i if i in index else t, where) for i, t in zip(inside, tags)]
            # As v4's run_ner.py: the words with is_split_into_words (each with its prefix space, the
            # first too), the first piece of a word carrying its label; a word of no pieces ('') drops out.
            enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_len)
            ids, targets, starts, previous = list(enc["input_ids"]), [], [], None
            for position, word in enumerate(enc.word_ids()):
                if word is None:
                    targets.append(IGNORE_INDEX)
                elif word != previous:
                    targets.append(first[word])
                    starts.append(position)
                else:
                    targets.append(rest[word])
                previous = word
            features.append({"input_ids": ids, "labels": targets, "word_starts": starts})
        elif task == "qa" and doc_stride is not None:
            features.extend(qa_windows(e, tokenizer, max_len, doc_stride, where, example=n))
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


def _qa_parts(e: Mapping, tokenizer, max_len: int, where: str):
    """What both QA encodings start from: the question's ids, the context's ids and character
    offsets, the context tokens a window holds (`max_len` less the question and 4 special
    tokens) and the first answer's character span (None without one)."""
    question, context = _field(e, "question", str, where), _field(e, "context", str, where)
    question = question.lstrip()  # as v4's run_qa.py: leading spaces would only waste the window
    answers = _field(e, "answers", dict, where)
    q = tokenizer(question, add_special_tokens=False)["input_ids"]
    c = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    room = max_len - len(q) - 4
    if room < 1:
        raise ValueError(f"{where}: the question takes {len(q)} tokens, leaving no room for the context in {max_len}")
    texts, starts = answers.get("text", []), answers.get("answer_start", [])
    answer = (int(starts[0]), int(starts[0]) + len(texts[0])) if texts and starts else None
    return q, list(c["input_ids"]), [tuple(o) for o in c["offset_mapping"]], room, answer


def _encode_qa(e: Mapping, tokenizer, max_len: int, where: str) -> dict:
    """`<s> question </s></s> context </s>` with the answer's first and last token positions
    (0, the `<s>`, when truncation cut the answer away, as v4's scripts do)."""
    q, context_ids, offsets, room, answer = _qa_parts(e, tokenizer, max_len, where)
    offsets = offsets[:room]
    ids = [tokenizer.bos_token_id, *q, tokenizer.eos_token_id, tokenizer.eos_token_id, *context_ids[:room], tokenizer.eos_token_id]
    start = end = 0
    if answer is not None:
        lo, hi = answer
        inside = [k for k, (a, b) in enumerate(offsets) if b > lo and a < hi]
        if inside:
            base = len(q) + 3
            start, end = base + inside[0], base + inside[-1]
    return {"input_ids": ids, "start_positions": start, "end_positions": end}


def qa_windows(e: Mapping, tokenizer, max_len: int, doc_stride: int, where: str, *, example: int = 0) -> list[dict]:
    """Every window `<s> question </s></s> context[k:k + room] </s>` of one example, consecutive
    windows sharing `doc_stride` context tokens (capped below the room), as v4's `run_qa.py`
    makes them. A window holding the whole first answer targets its first and last tokens, any
    other (0, 0), the `<s>`. Each window keeps `example` and `offsets` (character spans of its
    tokens in the context, None outside it) for the n-best decoding of `evaluate`."""
    q, ids, offsets, room, answer = _qa_parts(e, tokenizer, max_len, where)
    stride = min(doc_stride, room - 1)
    lo, hi = answer if answer is not None else (None, None)
    base = len(q) + 3
    windows, begin = [], 0
    while True:
        part = offsets[begin : begin + room]
        start = end = 0
        if lo is not None:
            inside = [k for k, (a, b) in enumerate(part) if b > lo and a < hi]
            # the answer counts only when the window holds all of it (v4: start and end inside)
            if inside and part[0][0] <= lo and part[-1][1] >= hi:
                start, end = base + inside[0], base + inside[-1]
        windows.append({
            "input_ids": [tokenizer.bos_token_id, *q, tokenizer.eos_token_id, tokenizer.eos_token_id, *ids[begin : begin + room], tokenizer.eos_token_id],
            "start_positions": start, "end_positions": end, "example": example,
            "offsets": [None] * base + part + [None],
        })
        if begin + room >= len(ids):
            return windows
        begin += room - stride


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
                batch[key] = np.asarray(values, dtype=np.float32 if isinstance(values[0], float) else np.int64)
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


def _is_bio(names: Sequence) -> bool:
    return bool(names) and all(isinstance(n, str) and (n == "O" or re.fullmatch(r"[BIES]-.+", n)) for n in names)


def main_metric(task: str, names: Sequence = ()) -> str:
    """The metric whose best value keeps a checkpoint: entity F1 for BIO/IOB2 tags, SQuAD F1,
    else accuracy."""
    if task == "qa":
        return "f1"
    if task == "seqcls" and names is None:
        return "pearson"
    if task == "tokcls" and _is_bio(names):
        return "f1"
    return "accuracy"


def qa_predictions(windows: Sequence[dict], outputs: Sequence[Mapping[str, np.ndarray]], contexts: Sequence[str], *,
                   top_k: int = 20, max_answer_len: int = 30, allow_null: bool = False) -> list[str]:
    """One answer text per example from the start/end logits of all its windows, as v4's
    `run_qa.py` decodes them (`postprocess_qa_predictions`): in each window the `top_k` starts and
    the `top_k` ends by logit make the spans (both ends inside the context, the end not before the
    start, at most `max_answer_len` tokens), each scored by its start logit plus its end logit,
    compared across windows as they are (no softmax per window); with `allow_null` (SQuAD v2) the
    empty answer where the smallest null score of the windows (`<s>`'s start plus end logits) is
    above the best span's score."""
    best: dict[int, tuple[float, str]] = {}
    null: dict[int, float] = {}
    for w, out in zip(windows, outputs):
        n, T, offsets = w["example"], len(w["input_ids"]), w["offsets"]
        start = np.asarray(out["start_logits"][:T], np.float64)
        end = np.asarray(out["end_logits"][:T], np.float64)
        null[n] = min(null.get(n, np.inf), float(start[0] + end[0]))
        for s in np.argsort(start)[::-1][:top_k]:
            for e in np.argsort(end)[::-1][:top_k]:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_len:
                    continue
                score = float(start[s] + end[e])
                if score > best.get(n, (-np.inf, ""))[0]:
                    best[n] = (score, contexts[n][offsets[s][0] : offsets[e][1]])
    answers = []
    for n in range(len(contexts)):
        score, text = best.get(n, (-np.inf, ""))
        answers.append("" if allow_null and null.get(n, -np.inf) > score else text)
    return answers


def _nll(logits, target: int) -> float:
    """-log softmax(logits)[target], in float64."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max()
    return float(top + np.log(np.exp(z - top).sum()) - z[target])


def eval_loss(task: str, features: Sequence[dict], outputs: Sequence[Mapping[str, np.ndarray]], regression: bool = False) -> float:
    """The training objective on held-out `features`, framework-neutral: the mean cross-entropy
    over examples (seqcls, multiple-choice), over labelled tokens (tokcls) or of the start and
    end positions over a window's real tokens (qa, halved as v4's sum of the two); the mean
    squared error for regression. Padding never counts, so it does not depend on batching."""
    if task == "qa":
        losses = []
        for f, out in zip(features, outputs):
            T = len(f["input_ids"])
            losses.append((_nll(out["start_logits"][:T], f["start_positions"]) + _nll(out["end_logits"][:T], f["end_positions"])) / 2)
        return float(np.mean(losses))
    if task == "tokcls":
        total, count = 0.0, 0
        for f, out in zip(features, outputs):
            for position, label in enumerate(f["labels"]):
                if label != IGNORE_INDEX:
                    total, count = total + _nll(out["logits"][position], label), count + 1
        return total / max(count, 1)
    if regression:
        return float(np.mean([(float(out["logits"][0]) - f["labels"]) ** 2 for f, out in zip(features, outputs)]))
    return float(np.mean([_nll(out["logits"], f["labels"]) for f, out in zip(features, outputs)]))


def evaluate(task: str, trainer, features: Sequence[dict], examples: Sequence[dict], names: Sequence, *,
             pad_id: int, max_len: int, batch_size: int) -> dict[str, float]:
    """The task's standard metrics on the held-out `features` (from `examples`):
    seqcls accuracy, F1 (binary for two labels, else macro) and Matthews correlation, or with
    `names` None (regression) Pearson, Spearman and the mean squared error; tokcls
    token accuracy and, for BIO/IOB2 tags, entity precision/recall/F1 (`O` not counted); qa
    SQuAD exact match and F1 in percent from the n-best decoding over every window of an
    example, and `accuracy` (exact matches as a fraction); multiple-choice accuracy. Every task
    also gets `eval_loss`, the training objective on the same features (`eval_loss`)."""
    from ..pipelines import metrics

    outputs, batches = [], []
    for i in range(0, len(features), batch_size):
        batch = collate(features[i : i + batch_size], pad_id, max_len)
        out = trainer.predict(batch)
        batches.append(batch)
        outputs += [{k: np.asarray(v[b]) for k, v in out.items()} for b in range(len(batch["input_ids"]))]
    loss = {"eval_loss": eval_loss(task, features, outputs, regression=task == "seqcls" and names is None)}
    if task == "qa":
        contexts = [e["context"] for e in examples]
        golds = [list(e["answers"].get("text", [])) for e in examples]
        allow_null = any(not g for g in golds)
        predicted = qa_predictions(features, outputs, contexts, allow_null=allow_null)
        scores = metrics.squad(predicted, golds)
        return {**scores, "accuracy": scores["exact_match"] / 100.0, **loss}
    if task == "tokcls":
        gold_tags, pred_tags, correct, counted = [], [], 0, 0
        for f, out in zip(features, outputs):
            labels = np.asarray(f["labels"])
            keep = np.asarray(f["word_starts"], dtype=np.int64) if "word_starts" in f else labels != IGNORE_INDEX
            predicted = out["logits"][: len(labels)].argmax(-1)[keep]
            correct, counted = correct + int((predicted == labels[keep]).sum()), counted + len(predicted)
            gold_tags.append([names[i] for i in labels[keep]])
            pred_tags.append([names[i] for i in predicted])
        scores = {"accuracy": correct / max(counted, 1)}
        if _is_bio(names):
            found = metrics.entity_scores(gold_tags, pred_tags)
            scores.update(precision=found["precision"], recall=found["recall"], f1=found["f1"])
        return {**scores, **loss}
    labels = np.asarray([f["labels"] for f in features])
    if task == "seqcls" and names is None:  # regression: the one logit is the prediction
        predicted = np.asarray([float(out["logits"][0]) for out in outputs])
        return {"pearson": metrics.pearson(labels, predicted), "spearman": metrics.spearman(labels, predicted),
                "mse": float(np.mean((labels - predicted) ** 2)), **loss}
    predicted = np.asarray([int(out["logits"].argmax(-1)) for out in outputs])
    scores = {"accuracy": metrics.accuracy(labels, predicted)}
    if task == "seqcls":
        binary = len(names) == 2
        scores["f1"] = metrics.f1(labels, predicted, average="binary" if binary else "macro")
        scores["matthews"] = metrics.matthews(labels, predicted)
    return {**scores, **loss}


# history.csv's first columns; the task's metrics follow, sorted
HISTORY_FIELDS = ("step", "epoch", "lr", "train_loss", "eval_loss")


def write_history(directory: Path, history: Sequence[dict], *, title: str = "") -> bool:
    """`history.csv` and `history.jsonl` (one row per evaluation) in `directory`, and
    `history.png` (training and held-out loss; the held-out metrics) when matplotlib is
    installed; returns whether the plot was drawn."""
    from .history import write_history as write

    metrics = sorted({k for row in history for k in row} - set(HISTORY_FIELDS))
    if "exact_match" in metrics:  # qa: EM and F1 in percent; accuracy is EM again, as a fraction
        metrics.remove("accuracy")
    return write(directory, history, first=HISTORY_FIELDS, losses=("train_loss", "eval_loss"), metrics=metrics, title=title)


class _EarlyStop(Exception):
    """Raised by the evaluation callback to end `fit` when the metric stopped improving."""


class _LossTracking:
    """The trainer, recording each update's loss (the evaluation rows' mean training loss)."""

    def __init__(self, trainer):
        self._trainer, self.losses = trainer, []

    def __getattr__(self, name):
        return getattr(self._trainer, name)

    def train_step(self, *args, **kwargs):
        loss = self._trainer.train_step(*args, **kwargs)
        self.losses.append(float(loss))
        return loss


# ---------------------------------------------------------------------------------------------
# 4. Fine-tuning


def finetune(
    task: str,
    backend: str,
    checkpoint: str | os.PathLike,
    data,
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
    columns: Mapping[str, str] | None = None,
    doc_stride: int = DOC_STRIDE,
    eval_every: int = 0,
    early_stopping: int = 0,
    label_all_tokens: bool = False,
) -> dict:
    """Fine-tune `checkpoint` (or, with init='random', a fresh model of its config) on `task`,
    evaluating every epoch (or every `eval_every` updates) and stopping after `early_stopping`
    evaluations without improvement (0: never); tokcls `label_all_tokens` trains every piece of a
    word (scored on words all the same). Returns the best evaluation's metrics (keys by
    task, see `evaluate`; `accuracy` except for regression), `metric` (the name of the one that chose it), the
    majority-class baseline, the time taken and `history` (one dict per evaluation). `data` is
    what `read_task_source` reads: 'builtin', a file or directory (a `save_to_disk` one too), or a
    `datasets.Dataset`/`DatasetDict`. `out`, when given, gets the best model, its tokenizer,
    run.json and history.csv/.jsonl (and history.png with matplotlib; `plotted` says whether)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if init not in ("pretrained", "random"):
        raise ValueError(f"init must be 'pretrained' or 'random', got {init!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("accumulate", accumulate), ("doc_stride", doc_stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
    for name, value in (("eval_every", eval_every), ("early_stopping", early_stopping)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 0 (0: off), got {value!r}")
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

    source = read_task_source(data)
    train_examples = normalize_examples(task, source.train, columns)
    held_examples = normalize_examples(task, source.heldout, columns)
    declared = declared_label_names(task, source, columns)
    if declared:  # a ClassLabel's ids and names, as the dataset numbers them
        train_examples, held_examples = name_labels(task, train_examples, declared), name_labels(task, held_examples, declared)
    regression = task == "seqcls" and is_regression(train_examples)
    names = label_names(train_examples, "labels" if task == "tokcls" else "label", task) if task in ("seqcls", "tokcls") and not regression else []
    names = None if regression else (declared or names)
    stride = doc_stride if task == "qa" else None
    train = encode_examples(task, train_examples, tokenizer, max_len=max_len, labels=names, doc_stride=stride, label_all_tokens=label_all_tokens)
    heldout = encode_examples(task, held_examples, tokenizer, max_len=max_len, labels=names, doc_stride=stride, label_all_tokens=label_all_tokens)
    overrides = {"num_labels": len(names)} if names else {}
    if regression:  # one output, mean squared error (v4's GLUE script for STS-B)
        overrides = {"num_labels": 1, "problem_type": "regression", "id2label": {0: "LABEL_0"}, "label2id": {"LABEL_0": 0}}
    if task == "qa":  # a start and an end logit per token, whatever the source checkpoint's labels (as v4)
        overrides = {"num_labels": 2, "id2label": {0: "LABEL_0", 1: "LABEL_1"}, "label2id": {"LABEL_0": 0, "LABEL_1": 1}}
    if names and isinstance(names[0], str):
        overrides.update(id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    config = config.copy(**overrides)
    state = None if init == "random" else load_pretrained(checkpoint, head, config=config)[1]

    per_epoch = math.ceil(len(train) / batch_size)
    steps = epochs * per_epoch
    settings = AdamW(peak_lr=lr, warmup=round(warmup_ratio * steps), steps=steps, weight_decay=weight_decay)
    trainer = _LossTracking(Trainer(head, config, settings, state=state, seed=seed, precision=precision))
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

    metric = main_metric(task, names)
    history: list[dict] = []
    best: dict = {}
    keep = tempfile.TemporaryDirectory(prefix="finetune-best-") if out is not None and trainer.process_index == 0 else None
    since = [0, 0]  # (losses counted, evaluations without improvement)

    def evaluation(step: int) -> None:
        scores = evaluate(task, trainer, heldout, held_examples, names, pad_id=tokenizer.pad_token_id, max_len=max_len, batch_size=batch_size)
        losses = trainer.losses[since[0] :]
        since[0] = len(trainer.losses)
        history.append({"step": step, "epoch": round(step / per_epoch, 4), "lr": settings.lr(max(step - 1, 0)),
                        "train_loss": float(np.mean(losses)) if losses else float("nan"), **scores})
        # a NaN (Pearson of constant predictions, as scipy gives it) is beaten by any number
        if not best or scores[metric] > best[metric] or (np.isnan(best[metric]) and not np.isnan(scores[metric])):
            best.clear()
            best.update(scores, step=step)
            since[1] = 0
            if keep is not None:  # the best model so far, for --out
                shutil.rmtree(Path(keep.name) / "model", ignore_errors=True)
                (Path(keep.name) / "model").mkdir()
                trainer.save_pretrained(Path(keep.name) / "model")
        else:
            since[1] += 1
            if early_stopping and since[1] >= early_stopping:
                raise _EarlyStop

    try:
        stopped_early = False
        try:
            fit(trainer, batches(), settings, head=head, accumulate=accumulate, progress=progress,
                evaluate=evaluation, eval_every=eval_every or per_epoch, description=f"finetune {task} [{backend}, {init}]")
        except _EarlyStop:
            stopped_early = True
        done = len(trainer.losses)
        if not stopped_early and (not history or history[-1]["step"] != done):
            try:
                evaluation(done)
            except _EarlyStop:
                pass
        held_batches = [collate(heldout[i : i + batch_size], tokenizer.pad_token_id, max_len) for i in range(0, len(heldout), batch_size)]
        scores = {
            **{k: v for k, v in best.items() if k != "step"},
            "metric": metric,
            "best_step": best["step"],
            "baseline": float("nan") if regression else majority_baseline(task, train, held_batches),
            "examples": len(held_examples),
            "steps": done,
            "loss": trainer.losses[-1] if trainer.losses else float("nan"),
            "stopped_early": stopped_early,
            "seconds": time.perf_counter() - began,
        }
        if out is not None and trainer.process_index == 0:
            out = Path(out)
            with atomic_dir(out, overwrite=out.exists()) as staging:  # the run's files appear together or not at all
                write_run_file(staging, {"task": task, "backend": backend, "checkpoint": str(checkpoint), "data": source.description,
                                         "init": init, **scores})
                for item in (Path(keep.name) / "model").iterdir():
                    shutil.copy2(item, staging / item.name)
                tokenizer.save_pretrained(staging)
                scores["plotted"] = write_history(staging, history, title=f"finetune {task} [{backend}]")
    finally:
        if keep is not None:
            keep.cleanup()
    return {**scores, "history": history}
