"""roberta_core.app.recipe without a framework: the schedule, the weight-decay rule, the scores, the
output-directory policy, atomic checkpoints, Ctrl-C, and the loop (driven by a NumPy trainer
that records what it was asked to do). Expected values are computed by hand here."""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest

from roberta_core.app.finetune import label_names
from roberta_core.data import split_batch
from roberta_core.app.recipe import (
    AdamW,
    decays,
    deferred_interrupt,
    fit,
    latest_checkpoint,
    load_checkpoint_state,
    loss_items,
    masked_lm_scores,
    prepare_output,
    save_checkpoint,
)


def test_schedule_warms_up_then_decays_linearly():
    s = AdamW(peak_lr=1.0, warmup=2, steps=6)
    # warm-up 1/2, 2/2; then (6 - step) / (6 - 2)
    assert [s.lr(i) for i in range(6)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert AdamW(peak_lr=2.0, warmup=0, steps=2).lr(0) == 2.0
    assert (s.betas, s.eps, s.weight_decay) == ((0.9, 0.98), 1e-6, 0.01)  # the paper's Table 9


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps must be an integer >= 1"),
        (dict(steps=2.5), "steps must be an integer >= 1"),
        (dict(warmup=11), "warmup must be an integer in 0..steps=10"),
        (dict(warmup=-1), "warmup"),
        (dict(peak_lr=0.0), "learning rate must be a positive number"),
        (dict(peak_lr=float("nan")), "learning rate"),
    ],
)
def test_schedule_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdamW(**{**dict(peak_lr=1e-3, warmup=1, steps=10), **kwargs})


def test_weight_decay_skips_biases_and_layer_norms():
    assert decays("roberta.encoder.layer.0.attention.self.query.weight")
    assert decays("roberta.embeddings.word_embeddings.weight")
    assert decays("classifier.out_proj.weight")
    for name in ("roberta.encoder.layer.0.output.dense.bias", "lm_head.bias", "lm_head.layer_norm.weight",
                 "roberta.embeddings.LayerNorm.weight", "roberta.encoder.layer.1.attention.output.LayerNorm.bias"):
        assert not decays(name), name


def test_masked_lm_scores_by_hand():
    logits = np.array([[[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]]])  # (1, 2, 3)
    labels = np.array([[0, 1]])
    nll, correct, n = masked_lm_scores(logits, labels)
    by_hand = -(2 - math.log(math.exp(2) + 2)) - (1 - math.log(1 + math.e + math.exp(3)))
    assert n == 2 and correct == 1 and nll == pytest.approx(by_hand, rel=1e-12)
    assert masked_lm_scores(logits, np.array([[-100, -100]])) == (0.0, 0, 0)


def test_loss_items_count_labelled_tokens_or_rows():
    batch = {"input_ids": np.zeros((3, 4)), "labels": np.array([[1, -100, 2, -100], [-100] * 4, [5, 5, 5, -100]])}
    assert loss_items("masked_lm", batch) == 5 and loss_items("token_classification", batch) == 5
    assert loss_items("sequence_classification", {"input_ids": np.zeros((3, 4)), "labels": np.zeros(3)}) == 3


# ------------------------------------------------------------------ output directories and checkpoints


def test_output_directory_policy(tmp_path):
    out = tmp_path / "run"
    assert prepare_output(out, resume=False, overwrite=False) is None and out.is_dir()  # new
    assert prepare_output(out, resume=False, overwrite=False) is None  # empty is fine
    (out / "run.json").write_text(json.dumps({"steps": 3}))
    (out / "checkpoint-2").mkdir()
    with pytest.raises(FileExistsError, match="holds another run; pass --resume .* or --overwrite"):
        prepare_output(out, resume=False, overwrite=False)
    assert prepare_output(out, resume=True, overwrite=False) == {"steps": 3}
    with pytest.raises(ValueError, match="not both"):
        prepare_output(out, resume=True, overwrite=True)
    assert prepare_output(out, resume=False, overwrite=True) is None and list(out.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        prepare_output(out, resume=True, overwrite=False)
    (out / "notes.txt").write_text("mine")  # not a run: never deleted, even with --overwrite
    with pytest.raises(FileExistsError, match="something else"):
        prepare_output(out, resume=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(NotADirectoryError):
        prepare_output(out / "notes.txt", resume=False, overwrite=False)


class NumpyTrainer:
    """A stand-in for a backend Trainer: one weight vector, 'gradient' = the micro-batch's mean
    label, recorded calls. Fails on request, to test what failures leave behind."""

    process_index, process_count = 0, 1

    def __init__(self, fail_save=False, interrupt_at=None):
        self.w = np.zeros(3, dtype=np.float32)
        self.calls = []
        self.fail_save, self.interrupt_at = fail_save, interrupt_at

    def train_step(self, micro_batches, lr, total_items):
        self.calls.append(([len(m["input_ids"]) for m in micro_batches], lr, total_items))
        if self.interrupt_at == len(self.calls):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of an update
        self.w += lr
        return float(len(self.calls))

    def optimizer_state(self):
        return {"exp_avg.w": self.w * 2}

    def save_pretrained(self, directory):
        np.save(directory / "w.npy", self.w)
        if self.fail_save:
            raise OSError("disk full")


def test_checkpoints_are_atomic_and_only_the_newest_stays(tmp_path):
    t = NumpyTrainer()
    first = save_checkpoint(tmp_path, t, step=2)
    t.w += 1
    second = save_checkpoint(tmp_path, t, step=4, state={"note": "x"})
    assert not first.exists() and latest_checkpoint(tmp_path) == second
    state, moments = load_checkpoint_state(second)
    assert state == {"step": 4, "note": "x"} and (moments["exp_avg.w"] == 2 * t.w).all()
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, NumpyTrainer(fail_save=True), step=6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]  # nothing half-written
    (tmp_path / "checkpoint-9").mkdir()  # a directory without its state file is not complete
    assert latest_checkpoint(tmp_path) == second
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_first_ctrl_c_is_deferred_second_interrupts():
    # The handler before (Python's default, or SIG_IGN when the tests run as a background job) comes back.
    before = signal.getsignal(signal.SIGINT)
    with deferred_interrupt() as interrupted:
        assert not interrupted()
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupted()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def batches_of(rows: int):
    k = 0
    while True:
        labels = np.full((rows, 4), -100)
        labels[:, k % 4] = 7  # one labelled token per row
        yield {"input_ids": np.full((rows, 4), k), "attention_mask": np.ones((rows, 4), dtype=np.int64), "labels": labels}
        k += 1


def test_fit_splits_batches_saves_evaluates_and_stops_on_ctrl_c():
    settings = AdamW(peak_lr=1.0, warmup=1, steps=6)
    saved, evaluated = [], []
    t = NumpyTrainer()
    result = fit(t, batches_of(8), settings, head="masked_lm", accumulate=4, save=saved.append, save_every=4,
                 evaluate=evaluated.append, eval_every=2, progress=False)
    assert [c[0] for c in t.calls] == [[2, 2, 2, 2]] * 6  # 4 micro-batches of 2 rows
    assert [c[2] for c in t.calls] == [8] * 6  # loss items of the whole batch
    assert [c[1] for c in t.calls] == [settings.lr(i) for i in range(6)]
    assert saved == [4, 6] and evaluated == [2, 4]  # the last update is evaluated by the caller
    assert (result.step, result.loss, result.interrupted) == (6, 6.0, False)

    # resuming at update 3 continues the schedule there
    t = NumpyTrainer()
    fit(t, batches_of(2), settings, head="masked_lm", start_step=3, progress=False)
    assert [c[1] for c in t.calls] == [settings.lr(i) for i in range(3, 6)]

    # Ctrl-C during update 2: the update completes, a checkpoint is saved, the loop stops
    saved = []
    t = NumpyTrainer(interrupt_at=2)
    result = fit(t, batches_of(2), settings, head="masked_lm", save=saved.append, save_every=100, progress=False)
    assert (result.step, result.interrupted, saved, len(t.calls)) == (2, True, [2], 2)


def test_fit_rejects_a_batch_that_does_not_split():
    with pytest.raises(ValueError, match="cannot be split into 3 equal parts"):
        fit(NumpyTrainer(), batches_of(8), AdamW(peak_lr=1.0, warmup=0, steps=1), head="masked_lm", accumulate=3, progress=False)


def test_fit_stops_on_a_non_finite_loss():
    class Diverging(NumpyTrainer):
        def train_step(self, *args):
            return float("nan")

    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(Diverging(), batches_of(2), AdamW(peak_lr=1.0, warmup=0, steps=3), head="masked_lm", progress=False)


def test_split_batch_shares_weight_the_mean_losses_exactly():
    # the rule every Trainer applies: sum over micro-batches of mean * items / total == global mean
    batch = next(batches_of(6))
    batch["labels"][:2] = -100  # two rows without a label
    per_token = np.arange(batch["labels"].size, dtype=np.float64).reshape(batch["labels"].shape)
    keep = batch["labels"] != -100
    total = loss_items("masked_lm", batch)
    weighted = 0.0
    for micro, values in zip(split_batch(batch, 3), np.split(per_token, 3)):
        m = micro["labels"] != -100
        mean = values[m].mean() if m.any() else 0.0
        weighted += mean * loss_items("masked_lm", micro) / total
    assert weighted == pytest.approx(per_token[keep].mean(), rel=1e-12)


# ------------------------------------------------------------------ issue 17: the application's refusals


def test_labels_are_numbered_in_sorted_order_as_v4s_run_glue():
    """v4's run_glue.py numbers the distinct labels in sorted order (`label_list.sort()`), integers as
    names: star ratings 1..5 are 5 classes, and a label of 1e9 is one class, not a 1e9-wide classifier."""
    rows = lambda *labels: [{"label": v} for v in labels]
    assert label_names(rows(2, 0, 1, 0), "label", "seqcls") == [0, 1, 2]
    assert label_names(rows(5, 1, 3, 2, 4), "label", "seqcls") == [1, 2, 3, 4, 5]
    assert label_names(rows(0, 10**9), "label", "seqcls") == [0, 10**9]
    assert label_names(rows(-1, 1), "label", "seqcls") == [-1, 1]
    assert label_names(rows("pos", "neg"), "label", "seqcls") == ["neg", "pos"]
    assert label_names([{"labels": [0, 1, 500]}], "labels", "tokcls") == [0, 1, 500]
    with pytest.raises(TypeError, match="all integers or all strings"):
        label_names(rows(0, "pos"), "label", "seqcls")


@pytest.mark.parametrize("pretrained, random, verdict, code", [
    (0.51, 0.34, "pretrained beats random initialisation (51.00% > 34.00%)", 0),
    (0.40, 0.40, "pretrained does NOT beat random initialisation: both 40.00%", 1),
    (0.30, 0.40, "pretrained does NOT beat random initialisation (30.00% < 40.00%)", 1),
])
def test_the_demo_says_what_fine_tuning_found(tmp_path, monkeypatch, capsys, pretrained, random, verdict, code):
    """The demo's last verdict is the comparison as it came out (a tie is a tie, not a win), and
    the exit code follows it. Pretraining and fine-tuning are stand-ins: only the report is tested."""
    from roberta_core.app import demo, finetune

    monkeypatch.setattr(demo.builtin_corpus, "builtin_documents", lambda split: ["A short document."])
    monkeypatch.setattr(demo, "pretrain", lambda *a, **k: dict(
        accuracy=0.5, unigram_accuracy=0.2, perplexity=9.0, unigram_perplexity=90.0, masked_tokens=100,
        tokenizer_s=0.0, train_s=0.0, data_s=0.0, eval_s=0.0))
    monkeypatch.setattr(demo, "load_tokenizer", lambda path: None)
    monkeypatch.setattr(demo, "_masked_sentences", lambda tokenizer: [])
    accuracy = {"pretrained": pretrained, "random": random}
    monkeypatch.setattr(finetune, "finetune", lambda *a, init, **k: dict(accuracy=accuracy[init], examples=10, seconds=0.0, baseline=0.2))
    assert demo.demo("pt", tmp_path / "demo", steps=10, finetune_epochs=1, parity=False) == code
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert verdict in lines
