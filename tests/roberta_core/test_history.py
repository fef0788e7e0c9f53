"""The history of a run (issue 16): `history.csv`/`.jsonl` and `history.png` beside the model at
the end of `pretrain` and `finetune`, in every installed backend; `finetune` on a CSV file and on
a CoNLL-layout file (tokens + ner_tags) in each backend; the CSV alone, and one line saying so,
without matplotlib; a resumed pretraining run continuing its history where its checkpoint was;
the held-out loss against crafted logits whose cross-entropy is known (zeros: log of the classes).
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys

import numpy as np
import pytest

from roberta_core import runtime
from roberta_core.app import finetune as ft
from roberta_core.app import history
from roberta_core.app.recipe import pretrain
from roberta_core.cli import main
from tests.helpers import tiny_config
from tests.roberta_core.test_pretrain import WORDS, settings, write_corpus

pytestmark = pytest.mark.xdist_group("history")

# tf and flax compile their steps first: each of their runs is slower than PyTorch's
BACKENDS = [pytest.param(b, marks=[pytest.mark.skipif(not runtime.available(b), reason=f"the {b} backend is not installed")]
                         + ([pytest.mark.slow] if b != "pt" else []))
            for b in ("pt", "tf", "flax")]
PRETRAIN_COLUMNS = ["step", "lr", "train_loss", "eval_loss", "eval_accuracy", "eval_perplexity"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def no_matplotlib(monkeypatch) -> None:
    """Make every import of matplotlib fail, as where `roberta3[plot]` is not installed."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + [
            "matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg", "matplotlib.pyplot"]:
        monkeypatch.setitem(sys.modules, name, None)


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000, (path, len(data))  # a drawn figure, not an empty file


def read_csv(path) -> tuple[list[str], list[dict]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    write_corpus(path, 40)
    tiny_config().save_pretrained(path.parent)
    return path


def run_settings(corpus, backend="pt"):
    return settings(corpus, backend=backend, steps=4, save_every=2, eval_every=2)


@pytest.fixture(scope="module")
def pt_run(corpus, tmp_path_factory):
    """A 4-update PyTorch pretraining run evaluating every 2: the reference history, and the
    checkpoint the fine-tuning tests start from."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("runs") / "pt"
    result = pretrain(run_settings(corpus), out, progress=False, log=lambda *_: None)
    return out, result


# ------------------------------------------------------------------ the writer


def test_history_files_from_crafted_rows(tmp_path, monkeypatch):
    rows = [{"step": 1, "train_loss": 2.5, "lr": 1e-3}, {"step": 2, "train_loss": 2.0, "lr": 5e-4, "eval_loss": 2.25, "f1": 0.5}]
    assert history.write_history(tmp_path, rows, first=("step", "lr", "train_loss", "eval_loss"),
                                 losses=("train_loss", "eval_loss"), metrics=("f1",), title="crafted")
    columns, got = read_csv(tmp_path / "history.csv")
    assert columns == ["step", "lr", "train_loss", "eval_loss", "f1"]  # the first ones in order, the others sorted
    assert got[0] == {"step": "1", "lr": "0.001", "train_loss": "2.5", "eval_loss": "", "f1": ""}  # a value a row lacks is empty
    assert history.read_history(tmp_path) == rows  # typed, as written
    assert_png(tmp_path / "history.png")
    no_matplotlib(monkeypatch)
    other = tmp_path / "other"
    other.mkdir()
    assert history.write_history(other, rows, losses=("train_loss",)) is False
    assert sorted(p.name for p in other.iterdir()) == ["history.csv", "history.jsonl"]  # no PNG, no staging file


class Zeros:
    """A trainer whose predictions are all zero logits: every class equally likely, so the
    cross-entropy of any target is log(number of classes) (QA: log of the window's tokens)."""

    tokens = False  # tokcls: logits per token

    def predict(self, batch):
        shape = batch["input_ids"].shape
        return {"logits": np.zeros((*shape[:1], 3)) if len(shape) == 2 and not self.tokens else np.zeros((*shape, 3)),
                "start_logits": np.zeros(shape), "end_logits": np.zeros(shape)}


def test_held_out_loss_of_uniform_predictions_is_the_log_of_the_classes(pt_run):
    from roberta_core.auto_tokenizer import load_tokenizer

    tokenizer = load_tokenizer(pt_run[0])
    trainer = Zeros()

    def loss(task, examples, names, max_len=64, **kw):
        trainer.tokens = task == "tokcls"
        features = ft.encode_examples(task, examples, tokenizer, max_len=max_len, labels=names, **kw)
        scores = ft.evaluate(task, trainer, features, examples, names, pad_id=tokenizer.pad_token_id, max_len=max_len, batch_size=4)
        return scores["eval_loss"], features

    seqcls = [{"text": "the cat sat", "label": i % 3} for i in range(7)]
    assert loss("seqcls", seqcls, [0, 1, 2])[0] == pytest.approx(math.log(3))
    tokcls = [{"tokens": ["the", "cat", "sat"], "labels": ["O", "B-X", "I-X"]}] * 5
    assert loss("tokcls", tokcls, ["B-X", "I-X", "O"])[0] == pytest.approx(math.log(3))
    mc = [{"question": "the cat", "choices": ["sat", "ran", "flew"], "label": 1}] * 5
    trainer.predict = lambda batch: {"logits": np.zeros(batch["input_ids"].shape[:2])}  # one logit per choice
    assert loss("multiple-choice", mc, [])[0] == pytest.approx(math.log(3))
    trainer.predict = Zeros.predict.__get__(trainer)
    context = "the cat sat on the mat and then the dog ran over the river"
    qa = [{"question": "who?", "context": context, "answers": {"text": ["dog"], "answer_start": [context.index("dog")]}}]
    value, windows = loss("qa", qa, [], max_len=16, doc_stride=4)
    assert len(windows) > 1  # padding of the shorter windows must not count
    assert value == pytest.approx(np.mean([math.log(len(w["input_ids"])) for w in windows]))
    # regression: the mean squared error of the predictions (zeros) to the targets
    reg = [{"text": "the cat", "label": v} for v in (0.5, 1.5, 3.0)]
    trainer.predict = lambda batch: {"logits": np.zeros((len(batch["input_ids"]), 1))}
    assert loss("seqcls", reg, None)[0] == pytest.approx(np.mean([0.25, 2.25, 9.0]))


# ------------------------------------------------------------------ pretraining


@pytest.mark.parametrize("backend", BACKENDS)
def test_pretraining_writes_its_history_and_plot(corpus, pt_run, tmp_path, backend):
    if backend == "pt":
        out, result = pt_run
    else:
        out = tmp_path / backend
        result = pretrain(run_settings(corpus, backend), out, progress=False, log=lambda *_: None)
    assert result["plotted"]
    assert_png(out / "history.png")
    columns, rows = read_csv(out / "history.csv")
    assert columns == PRETRAIN_COLUMNS
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]  # one row per update
    assert [r["eval_loss"] != "" for r in rows] == [False, True, False, True]  # evaluations at 2 and 4 (the end)
    assert float(rows[-1]["eval_accuracy"]) == pytest.approx(result["accuracy"])
    assert float(rows[-1]["eval_perplexity"]) == pytest.approx(result["perplexity"])
    assert float(rows[-1]["eval_loss"]) == pytest.approx(math.log(result["perplexity"]))
    assert float(rows[-1]["train_loss"]) == pytest.approx(result["loss"])
    # warm-up of 1 update to lr 3e-3, then linear decay to 0 at update 4
    assert [float(r["lr"]) for r in rows] == pytest.approx([3e-3, 3e-3, 2e-3, 1e-3])


def test_pretraining_without_matplotlib_resumes_its_history(corpus, pt_run, tmp_path, monkeypatch):
    """Ctrl-C during update 3 of 4 and --resume: the history holds updates 1..4 once each, with
    the losses of the uninterrupted run; without matplotlib the CSV alone and one line saying so."""
    from roberta_pt.training import Trainer

    no_matplotlib(monkeypatch)
    step, calls = Trainer.train_step, []

    def interrupted_step(self, *args):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return step(self, *args)

    out, said = tmp_path / "run", []
    monkeypatch.setattr(Trainer, "train_step", interrupted_step)
    first = pretrain(run_settings(corpus), out, progress=False, log=said.append)
    monkeypatch.setattr(Trainer, "train_step", step)
    assert first["interrupted"] and [r["step"] for r in history.read_history(out)] == [1, 2, 3]
    second = pretrain({}, out, resume=True, progress=False, log=said.append)
    assert not second["plotted"] and not (out / "history.png").exists()
    assert said.count(history.NO_PLOT) == 1
    columns, rows = read_csv(out / "history.csv")
    _, want = read_csv(pt_run[0] / "history.csv")
    assert columns == PRETRAIN_COLUMNS and [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    np.testing.assert_allclose([float(r["train_loss"]) for r in rows], [float(r["train_loss"]) for r in want], rtol=1e-5)


# ------------------------------------------------------------------ fine-tuning: CSV and CoNLL in every backend


def write_glue_csv(path) -> None:
    pairs = [{"sentence": "the cat sat on the mat", "label": "cat"}, {"sentence": "a big dog ran over the river", "label": "dog"}]
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["sentence", "label"])
        writer.writeheader()
        writer.writerows(pairs * 10)


def write_conll(path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(20):
        tokens = list(rng.choice(WORDS, size=5))
        rows.append({"tokens": tokens, "ner_tags": ["B-ANIMAL" if w in ("cat", "dog", "bird") else "O" for w in tokens]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["csv", "conll"])
def test_finetune_on_csv_and_conll_writes_history_and_plot(pt_run, tmp_path, backend, layout, capsys):
    data = tmp_path / ("glue.csv" if layout == "csv" else "conll.jsonl")
    (write_glue_csv if layout == "csv" else write_conll)(data)
    task = "seqcls" if layout == "csv" else "tokcls"
    out = tmp_path / "ft"
    code = main(["finetune", str(pt_run[0]), str(data), "--task", task, "--backend", backend, "--epochs", "1",
                 "--batch-size", "6", "--eval-every", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert_png(out / "history.png")
    columns, rows = read_csv(out / "history.csv")
    metrics = ["accuracy", "f1", "matthews"] if layout == "csv" else ["accuracy", "f1", "precision", "recall"]
    assert columns == ["step", "epoch", "lr", "train_loss", "eval_loss", *metrics]
    assert [int(r["step"]) for r in rows] == [2, 3]  # 18 examples / 6: every 2 updates, and the end
    assert all(math.isfinite(float(r[c])) for r in rows for c in ("epoch", "lr", "train_loss", "eval_loss"))
    assert [json.loads(line)["step"] for line in (out / "history.jsonl").read_text().splitlines()] == [2, 3]
    assert (out / "model.safetensors").is_file()  # the best model, in the canonical format whatever the backend
    metric = "f1" if layout == "conll" else "accuracy"  # entity F1 for BIO tags
    best = max(rows, key=lambda r: float(r[metric]))  # the first of the best
    assert f"best {metric} at step {best['step']}" in printed


def test_finetune_without_matplotlib_writes_the_csv_alone(pt_run, tmp_path, monkeypatch, capsys):
    no_matplotlib(monkeypatch)
    write_glue_csv(tmp_path / "glue.csv")
    out = tmp_path / "ft"
    code = main(["finetune", str(pt_run[0]), str(tmp_path / "glue.csv"), "--epochs", "1", "--batch-size", "6", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and printed.count(history.NO_PLOT) == 1, printed
    assert (out / "history.csv").is_file() and not (out / "history.png").exists()
