"""Fine-tuning on Hugging Face `datasets` input (issue 16): a `Dataset`/`DatasetDict` passed to
the Python API and a directory written by `save_to_disk` given to `roberta finetune` as DATA. A
`ClassLabel` keeps its ids and gives its names to `id2label`/`label2id` (the oracle: the
dataset's own `features`), a DatasetDict trains on `train` and evaluates on `validation`, the
column flags apply, and without the optional package the error names the extra. The data is
built here from the built-in task (which standard-library package a docstring comes from)."""

from __future__ import annotations

import json
import sys

import pytest

from roberta_core.app import finetune as ft
from roberta_core.app.corpus import PACKAGE_LABELS, package_task
from roberta_core.app.recipe import pretrain
from roberta_core.cli import main
from tests.helpers import tiny_config
from tests.roberta_core.test_pretrain import WORDS, settings, write_corpus

pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

pytestmark = pytest.mark.xdist_group("finetune-datasets")

# Not sorted: a reader that renumbered the labels alphabetically would give other ids.
NAMES = list(reversed(PACKAGE_LABELS))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    write_corpus(path, 40)
    tiny_config().save_pretrained(path.parent)
    out = tmp_path_factory.mktemp("runs") / "pretrained"
    pretrain(settings(path, steps=2, save_every=0), out, progress=False, log=lambda *_: None)
    return out


def package_split(split: str, n: int, text_column: str = "text") -> "datasets.Dataset":
    """`n` examples of the built-in task as a Dataset whose label is a ClassLabel of NAMES
    (the package name's id in NAMES, not in PACKAGE_LABELS)."""
    rows = package_task(split)[:n]
    features = datasets.Features({text_column: datasets.Value("string"), "label": datasets.ClassLabel(names=NAMES)})
    return datasets.Dataset.from_dict({text_column: [r["text"] for r in rows],
                                       "label": [NAMES.index(PACKAGE_LABELS[r["label"]]) for r in rows]}, features=features)


def package_dict(text_column: str = "text") -> "datasets.DatasetDict":
    return datasets.DatasetDict({"train": package_split("train", 24, text_column), "validation": package_split("heldout", 8, text_column)})


def test_a_saved_dataset_dict_through_the_command_keeps_the_class_label_names(checkpoint, tmp_path, capsys):
    package_dict("docstring").save_to_disk(str(tmp_path / "saved"))
    out = tmp_path / "ft"
    code = main(["finetune", str(checkpoint), str(tmp_path / "saved"), "--text-column", "docstring", "--epochs", "1",
                 "--batch-size", "8", "--max-len", "32", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "on 8 examples" in printed  # the validation split, not one in ten of train
    config = json.loads((out / "config.json").read_text())
    # the oracle: the dataset's own ClassLabel, id i named names[i]
    names = datasets.load_from_disk(str(tmp_path / "saved"))["train"].features["label"].names
    assert config["id2label"] == {str(i): name for i, name in enumerate(names)}
    assert config["label2id"] == {name: i for i, name in enumerate(names)}
    assert [int(r.split(",")[0]) for r in (out / "history.csv").read_text().splitlines()[1:]] == [3]  # 24 / 8 updates, one epoch
    assert json.loads((out / "run.json").read_text())["data"] == str(tmp_path / "saved")


def test_dataset_objects_through_the_api(checkpoint, tmp_path):
    out = tmp_path / "ft"
    scores = ft.finetune("seqcls", "pt", checkpoint, package_dict(), epochs=1, batch_size=8, max_len=32, out=out, progress=False)
    assert scores["examples"] == 8 and scores["steps"] == 3
    assert json.loads((out / "config.json").read_text())["id2label"] == {str(i): n for i, n in enumerate(NAMES)}
    # a lone Dataset: one example in ten held out, as a single file
    scores = ft.finetune("seqcls", "pt", checkpoint, package_split("train", 30), epochs=1, batch_size=9, max_len=32, progress=False)
    assert scores["examples"] == 3 and scores["steps"] == 3
    # a saved lone Dataset is read as well
    package_split("train", 20).save_to_disk(str(tmp_path / "one"))
    assert [len(part) for part in ft.read_task_data(str(tmp_path / "one"))] == [18, 2]


def test_a_sequence_of_class_labels_names_the_tags(checkpoint, tmp_path):
    """CoNLL as the Hub has it: `ner_tags` a sequence of ClassLabel ids, named in the features."""
    import numpy as np

    tags = ["O", "B-ANIMAL", "I-ANIMAL"]  # CoNLL's order: O first, not sorted
    rng = np.random.default_rng(0)
    rows = {"tokens": [], "ner_tags": []}
    for _ in range(24):
        words = list(rng.choice(WORDS, size=5))
        rows["tokens"].append(words)
        rows["ner_tags"].append([1 if w in ("cat", "dog", "bird") else 0 for w in words])
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=tags))})
    data = datasets.Dataset.from_dict(rows, features=features).train_test_split(test_size=6, shuffle=False)
    assert set(data) == {"train", "test"}  # no validation split: test evaluates
    out = tmp_path / "ner"
    scores = ft.finetune("tokcls", "pt", checkpoint, data, epochs=1, batch_size=6, out=out, progress=False)
    assert scores["examples"] == 6 and scores["metric"] == "f1"  # the names are BIO tags: entity F1
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "O", "1": "B-ANIMAL", "2": "I-ANIMAL"}


def test_an_unlabelled_split_and_a_missing_package_are_explained(checkpoint, tmp_path, monkeypatch):
    test = package_split("heldout", 8)
    unlabelled = test.map(lambda row: {"label": -1})  # GLUE's test splits: label -1
    data = datasets.DatasetDict({"train": package_split("train", 16), "validation": unlabelled})
    with pytest.raises(ValueError, match=r"example 0: label -1 is not a class id 0\.\.7 of the dataset's ClassLabel"):
        ft.finetune("seqcls", "pt", checkpoint, data, epochs=1, batch_size=8, max_len=32, progress=False)
    with pytest.raises(ValueError, match=r"the DatasetDict has no 'train' split; it has \['validation'\]"):
        ft.read_task_data(datasets.DatasetDict({"validation": test}))
    package_dict().save_to_disk(str(tmp_path / "saved"))
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the extra were not installed
    with pytest.raises(ImportError, match=r"pip install 'roberta3\[datasets\]'"):
        ft.read_task_data(str(tmp_path / "saved"))
    # plain files never need the package
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": "a b", "label": i % 2}) + "\n" for i in range(20)))
    assert [len(part) for part in ft.read_task_data(str(tmp_path / "d.jsonl"))] == [18, 2]
