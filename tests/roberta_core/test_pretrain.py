"""`roberta pretrain` and `roberta finetune` end to end on a small corpus with the PyTorch backend:
the checkpoint directory every backend and `roberta fill-mask` load, a run interrupted by Ctrl-C
that resumes to the same weights as an uninterrupted one, the fine-tuning tasks, and every bad
input the issue lists."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roberta_core.config import RobertaConfig
from roberta_core.app import finetune as ft
from roberta_core.checkpoint import load_state_dict
from roberta_core.cli import main
from roberta_core.app.recipe import RUN_KEYS, latest_checkpoint, pretrain
from roberta_core.auto_tokenizer import load_tokenizer
from tests.helpers import tiny_config

pytest.importorskip("torch")

WORDS = ("the cat dog bird sat ran flew on under over a mat tree roof and then quickly slowly "
         "red blue green small big old young house garden river").split()

# One worker runs the whole module: its fixtures train once.
pytestmark = pytest.mark.xdist_group("pretrain")


def write_corpus(path, documents: int, seed: int = 0) -> None:
    """Sentences of random words, blank lines between documents."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(documents):
        sentences = [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 10)))).capitalize() + "." for _ in range(6)]
        docs.append(" ".join(sentences))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")


def settings(corpus, **overrides):
    s = dict(backend="pt", corpus=[str(corpus)], config=str(corpus.parent / "config.json"), tokenizer=None, vocab_size=None, steps=6,
             batch_tokens=4 * 64, accumulate=2, max_len=None, packing="full-sentences", lr=3e-3, warmup=1, seed=0,
             precision="fp32", save_every=2, eval_every=0)
    s.update(overrides)
    assert set(s) == set(RUN_KEYS)
    return s


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A text file of 40 documents, and beside it the tiny config with dropout off (dropout
    draws are not part of a checkpoint: with them, a resumed run differs in the last digits)."""
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    write_corpus(path, 40)
    tiny_config().save_pretrained(path.parent)
    return path


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "straight"
    result = pretrain(settings(corpus), out, progress=False, log=lambda *_: None)
    return out, result


def test_pretraining_writes_a_checkpoint_every_backend_loads(uninterrupted):
    out, result = uninterrupted
    assert result["step"] == 6 and not result["interrupted"]
    assert 0.0 <= result["accuracy"] <= 1.0 and result["masked_tokens"] > 0 and result["perplexity"] > 1.0
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "run.json"):
        assert (out / name).is_file(), name
    assert latest_checkpoint(out).name == "checkpoint-6"  # older checkpoints were removed
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == len(load_tokenizer(out)) <= 512 and config["architectures"] == ["RobertaForMaskedLM"]
    from roberta_core.commands.fill_mask import fill_mask

    filled = fill_mask(out, "The cat sat on the <mask>.", backend="pt", top_k=3)
    assert len(filled["masks"]) == 1 and len(filled["masks"][0]["candidates"]) == 3


def test_ctrl_c_saves_and_resume_ends_where_an_uninterrupted_run_ends(corpus, uninterrupted, tmp_path, monkeypatch):
    from roberta_pt.training import Trainer

    step = Trainer.train_step
    calls = []

    def interrupted_step(self, *args):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during update 3
        return step(self, *args)

    out = tmp_path / "run"
    monkeypatch.setattr(Trainer, "train_step", interrupted_step)
    first = pretrain(settings(corpus), out, progress=False, log=lambda *_: None)
    monkeypatch.setattr(Trainer, "train_step", step)
    assert first["interrupted"] and first["step"] == 3 and latest_checkpoint(out).name == "checkpoint-3"
    assert not (out / "model.safetensors").exists()  # no final model from an unfinished run
    with pytest.raises(FileExistsError, match="holds another run"):
        pretrain(settings(corpus), out, progress=False, log=lambda *_: None)
    # --resume takes the settings recorded in run.json, whatever is passed
    second = pretrain(settings(corpus, steps=99), out, resume=True, progress=False, log=lambda *_: None)
    assert second["step"] == 6 and not second["interrupted"]
    want, got = load_state_dict(uninterrupted[0]), load_state_dict(out)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "--steps must be an integer >= 1"),
        (["--batch-tokens", "32"], "cannot fit one sequence of 64 tokens"),
        (["--max-len", "65"], "--max-len must be in 3..64"),
        (["--vocab-size", "300"], "--vocab-size must be >= 512"),
        (["--config", "nowhere/config.json"], "nowhere"),
        # issue 17: accepted, or refused only after the run directory was made
        (["--steps", "1", "--save-every", "-3"], "--save-every must be an integer >= 0, got -3"),
        (["--steps", "1", "--eval-every", "-3"], "--eval-every must be an integer >= 0, got -3"),
        (["--steps", "1", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        (["--steps", "1", "--max-len", "0"], "--max-len must be in 3..64"),
        (["--steps", "1", "--corpus", "/nonexistent/text.txt"], "corpus file /nonexistent/text.txt does not exist"),
    ],
)
def test_pretrain_refuses_bad_settings_before_writing(corpus, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["pretrain", "--config", "tiny", "--corpus", str(corpus), "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_pretrain_refuses_a_corpus_too_small(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n   \n", encoding="utf-8")
    one = tmp_path / "one.txt"
    one.write_text("A single short document.\n", encoding="utf-8")
    assert main(["pretrain", "--config", "tiny", "--corpus", str(empty), "--out", str(tmp_path / "a")]) == 2
    assert "the corpus is empty" in capsys.readouterr().err
    assert main(["pretrain", "--config", "tiny", "--corpus", str(one), "--out", str(tmp_path / "b")]) == 2
    assert "needs at least 2 documents" in capsys.readouterr().err
    assert main(["pretrain", "--config", "tiny", "--corpus", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "c")]) == 2
    assert "missing.txt" in capsys.readouterr().err


# ------------------------------------------------------------------ fine-tuning


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_encodings_put_targets_on_the_right_tokens(uninterrupted):
    tokenizer = load_tokenizer(uninterrupted[0])
    qa = {"question": "Where did the cat sit?", "context": "Then the cat sat under the old tree quickly.",
          "answers": {"text": ["the old tree"], "answer_start": [24]}}
    (f,) = ft.encode_examples("qa", [qa], tokenizer, max_len=64, labels=[])
    span = tokenizer.decode(f["input_ids"][f["start_positions"] : f["end_positions"] + 1])
    assert span.strip() == "the old tree"
    short = len(tokenizer(qa["question"], add_special_tokens=False)["input_ids"]) + 4 + 2  # 2 context tokens
    (cut,) = ft.encode_examples("qa", [qa], tokenizer, max_len=short, labels=[])  # the answer truncated away
    assert cut["start_positions"] == cut["end_positions"] == 0 and len(cut["input_ids"]) == short
    words = {"tokens": ["Quickly", "the", "bird", "flew"], "labels": ["ADV", "DET", "N", "V"]}
    (t,) = ft.encode_examples("tokcls", [words], tokenizer, max_len=64, labels=["ADV", "DET", "N", "V"])
    labelled = [(tokenizer.decode([i]), lab) for i, lab in zip(t["input_ids"], t["labels"]) if lab != -100]
    assert [lab for _, lab in labelled] == [0, 1, 2, 3]  # one label per word, on its first piece
    # each word with its prefix space, the first too (v4's run_ner.py: add_prefix_space, is_split_into_words)
    assert "".join(tokenizer.decode([i]) for i in t["input_ids"][1:-1]) == " Quickly the bird flew"
    (m,) = ft.encode_examples("multiple-choice", [{"question": "Q?", "choices": ["a", "b c", "d"], "label": 2}], tokenizer, max_len=64, labels=[])
    batch = ft.collate([m, m], tokenizer.pad_token_id, 64)
    longest = max(len(row) for row in m["input_ids"])
    assert batch["input_ids"].shape == (2, 3, -(-longest // 8) * 8) and batch["labels"].tolist() == [2, 2]
    assert batch["attention_mask"][0, 1].sum() == len(m["input_ids"][1])


def test_finetuning_learns_an_easy_task_in_every_task_format(uninterrupted, tmp_path):
    rng = np.random.default_rng(0)
    # two texts, two labels: learnt in a few updates, whatever the pretraining
    pairs = [{"text": "the cat sat on the mat", "label": "cat"}, {"text": "a big dog ran over the river", "label": "dog"}]
    (tmp_path / "seq").mkdir()
    write_jsonl(tmp_path / "seq" / "train.jsonl", pairs * 16)
    write_jsonl(tmp_path / "seq" / "validation.jsonl", pairs * 3)
    scores = ft.finetune("seqcls", "pt", uninterrupted[0], str(tmp_path / "seq"), epochs=4, batch_size=8, lr=3e-3, progress=False)
    assert scores["examples"] == 6 and scores["baseline"] == 0.5 and scores["accuracy"] == 1.0, scores

    # the other heads: a short run each, scored on their own terms
    tok = [{"tokens": list(rng.choice(WORDS, size=5)), "labels": []} for _ in range(30)]
    for row in tok:
        row["labels"] = [int(w in ("cat", "dog", "bird")) for w in row["tokens"]]
    qa = [{"question": "Which animal?", "context": f"The {w} sat on the mat.", "answers": {"text": [w], "answer_start": [4]}}
          for w in rng.choice(["cat", "dog", "bird"], size=30)]
    mc = [{"question": "The cat sat on the", "choices": ["mat.", "river flew.", "quickly red."], "label": 0} for _ in range(30)]
    for task, data in (("tokcls", tok), ("qa", qa), ("multiple-choice", mc)):
        write_jsonl(tmp_path / f"{task}.jsonl", data)
        scores = ft.finetune(task, "pt", uninterrupted[0], str(tmp_path / f"{task}.jsonl"), epochs=2, batch_size=6, lr=3e-3, progress=False)
        assert scores["steps"] == 10 and 0.0 <= scores["accuracy"] <= 1.0 and np.isfinite(scores["loss"]), (task, scores)


@pytest.mark.parametrize(
    "task, rows, message",
    [
        ("seqcls", ['{"text": "a", "label": 0}', "{not json"], ":2: not valid JSON"),
        ("seqcls", ['{"text": "a"}'] * 10, "missing field 'label'"),
        ("seqcls", ['{"text": "a", "label": 0}'] * 9 + ['{"text": "b", "label": 7}'], "label 7 is not one of the training labels"),
        ("tokcls", ['{"tokens": ["a", "b"], "labels": [0]}'] * 10, "2 tokens but 1 labels"),
        ("multiple-choice", ['{"question": "q", "choices": ["a", "b"], "label": 2}'] * 10, "not a choice index 0..1"),
        ("seqcls", ['{"text": 5, "label": 0}'] * 10, "field 'text' must be str"),
    ],
)
def test_finetune_refuses_bad_data(uninterrupted, tmp_path, task, rows, message):
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises((ValueError, TypeError), match=message):
        ft.finetune(task, "pt", uninterrupted[0], str(tmp_path / "d.jsonl"), progress=False)


def test_finetune_refuses_bad_arguments(uninterrupted, tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        ft.finetune("ner", "pt", uninterrupted[0], "builtin")
    with pytest.raises(FileNotFoundError, match="neither 'builtin'"):
        ft.finetune("seqcls", "pt", uninterrupted[0], str(tmp_path / "none.jsonl"))
    with pytest.raises(ValueError, match="--batch-size 6 is not a multiple of --accumulate 4"):
        ft.finetune("seqcls", "pt", uninterrupted[0], "builtin", batch_size=6, accumulate=4)
    with pytest.raises(ValueError, match="--epochs must be an integer >= 1"):
        ft.finetune("seqcls", "pt", uninterrupted[0], "builtin", epochs=0)


# ------------------------------------------------------------------ issue 17: what refusals and failures leave


def test_pretrain_refusals_after_reading_the_corpus_leave_nothing(corpus, tmp_path, capsys):
    """An empty corpus (found only when reading it) wrote run.json; a batch larger than the corpus
    can fill grew until MemoryError. Both are refused, naming the range, and leave no directory."""
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n   \n", encoding="utf-8")
    assert main(["pretrain", "--config", "tiny", "--steps", "1", "--corpus", str(empty), "--out", str(tmp_path / "a")]) == 2
    assert "the corpus is empty" in capsys.readouterr().err and not (tmp_path / "a").exists()
    # 40 documents of ~50 words: a few dozen sequences of 64 tokens, far fewer than 2000
    out = tmp_path / "b"
    assert main(["pretrain", "--config", "tiny", "--steps", "1", "--corpus", str(corpus), "--batch-tokens", str(64 * 2000), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"--batch-tokens 128000 is more than the corpus fills: \d+ training sequences of 64 tokens; use --batch-tokens in 64\.\.\d+", err), err
    assert not out.exists() and list(tmp_path.iterdir()) == [empty]  # no staging folder either


def test_pretrain_disk_errors_are_reported_and_leave_nothing(corpus, tmp_path, capsys, monkeypatch):
    """A full disk during the set-up gave a traceback and a partial run directory; now a clear
    error, exit code 1, and the directory is not there (nor its staging folder)."""
    from roberta_core.app import recipe

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "data" / "train"))

    monkeypatch.setattr(recipe, "write_token_file", full)
    assert main(["pretrain", "--config", str(corpus.parent), "--corpus", str(corpus), "--steps", "1", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("roberta pretrain: error: No space left on device: ") and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_resume_honours_steps_and_refuses_other_settings(corpus, tmp_path, capsys):
    """`pretrain --resume --steps N` silently ignored N: now the run goes on to N updates in all
    (and run.json says so); a setting that cannot change on resume is refused by name."""
    out = tmp_path / "run"
    first = pretrain(settings(corpus, steps=2, save_every=1), out, progress=False, log=lambda *_: None)
    assert first["step"] == 2 and latest_checkpoint(out).name == "checkpoint-2"
    assert main(["pretrain", "--resume", "--out", str(out), "--lr", "1.0"]) == 2
    assert "--lr cannot change" in capsys.readouterr().err
    assert main(["pretrain", "--resume", "--out", str(out), "--steps", "1"]) == 2
    assert "has done 2 updates already; --steps with --resume must be more than 2, got 1" in capsys.readouterr().err
    assert main(["pretrain", "--resume", "--out", str(out), "--steps", "3"]) == 0
    assert latest_checkpoint(out).name == "checkpoint-3" and json.loads((out / "run.json").read_text())["steps"] == 3


def write_task(path, labels) -> None:
    write_jsonl(path, [{"text": f"the {w} sat on the mat", "label": label} for w, label in zip(WORDS * 4, labels)])


def test_finetune_refusals_and_failures_leave_no_output(uninterrupted, tmp_path, monkeypatch):
    """Refusals left an empty --out; a failed final save left a partial one. --out appears, whole,
    only when fine-tuning succeeded. Its refusal of an occupied --out offers only --overwrite
    (finetune has no --resume)."""
    write_task(tmp_path / "bad.jsonl", ["pos"] + [0, 1] * 10)  # a name among integer labels
    out = tmp_path / "ft"
    with pytest.raises(TypeError, match="all integers or all strings"):
        ft.finetune("seqcls", "pt", uninterrupted[0], str(tmp_path / "bad.jsonl"), out=out, progress=False)
    assert not out.exists()
    write_task(tmp_path / "good.jsonl", [0, 1] * 10)
    with pytest.raises(ValueError, match=r"--max-len must be in 3\.\.64 for this checkpoint, got 0"):
        ft.finetune("seqcls", "pt", uninterrupted[0], str(tmp_path / "good.jsonl"), max_len=0, out=out, progress=False)
    assert not out.exists()

    from roberta_pt.training import Trainer

    def full(self, directory):
        (Path(directory) / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Trainer, "save_pretrained", full)
    with pytest.raises(OSError, match="No space left"):
        ft.finetune("seqcls", "pt", uninterrupted[0], str(tmp_path / "good.jsonl"), epochs=1, out=out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "good.jsonl"]
    monkeypatch.undo()

    scores = ft.finetune("seqcls", "pt", uninterrupted[0], str(tmp_path / "good.jsonl"), epochs=1, out=out, progress=False)
    assert scores["steps"] == 2 and {"run.json", "model.safetensors", "config.json"} <= {p.name for p in out.iterdir()}
    with pytest.raises(FileExistsError) as refused:
        ft.finetune("seqcls", "pt", uninterrupted[0], str(tmp_path / "good.jsonl"), epochs=1, out=out, progress=False)
    assert "pass --overwrite to replace it" in str(refused.value) and "--resume" not in str(refused.value)


def test_torchrun_workers_leave_the_process_group_before_exit(tmp_path):
    """issue 17: rank 1 once aborted at exit (SIGABRT, "terminate called without an active
    exception"). A process group not left explicitly is torn down by C++ static destructors after
    the interpreter has finalised, in no set order; the trainer that joined the group now leaves
    it at exit. Each rank reports, from the last exit handler, whether it is still in a group."""
    from tests.helpers import REPO

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tests.roberta_core.training_case", "pt", str(tmp_path / "ddp.npz"), "--report-exit", str(tmp_path / "exit")]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(tmp_path / f"exit.{rank}").read_text() for rank in (0, 1)] == ["left", "left"]


def test_question_answering_fine_tuned_from_a_three_label_checkpoint_has_two_outputs(uninterrupted, tmp_path):
    """A start and an end logit per token whatever the source's labels: the saved config and the
    saved qa_outputs agree (num_labels 2, (2, H)), so v4 and every backend load the result."""
    import json
    import shutil

    from roberta_core.checkpoint import load_state_dict

    source = tmp_path / "three-labels"
    shutil.copytree(uninterrupted[0], source)
    config = json.loads((source / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    config["label2id"] = {"a": 0, "b": 1, "c": 2}
    (source / "config.json").write_text(json.dumps(config))
    qa = [{"question": "Which animal?", "context": f"The {w} sat on the mat.", "answers": {"text": [w], "answer_start": [4]}}
          for w in ["cat", "dog", "bird"] * 4]
    write_jsonl(tmp_path / "qa.jsonl", qa)
    out = tmp_path / "qa-out"
    ft.finetune("qa", "pt", str(source), str(tmp_path / "qa.jsonl"), out=str(out), epochs=1, batch_size=6, progress=False)
    saved = json.loads((out / "config.json").read_text())
    weights = load_state_dict(out)
    # two labels: v4's default id2label, which config.json leaves out as v4 writes it
    assert "id2label" not in saved and RobertaConfig.from_pretrained(out).num_labels == 2, saved.get("id2label")
    assert weights["qa_outputs.weight"].shape == (2, config["hidden_size"]) and weights["qa_outputs.bias"].shape == (2,)
