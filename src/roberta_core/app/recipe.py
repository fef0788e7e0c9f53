"""The RoBERTa recipe, framework-neutral (Liu et al., 2019): a byte-level BPE vocabulary trained
on the corpus, FULL-SENTENCES packing, dynamic masking, masked-LM pretraining with the paper's
AdamW settings, held-out evaluation next to the unigram baseline, resumable checkpoints (the
`roberta pretrain` command is its front end: `roberta_core.commands.pretrain`).

The training step itself lives in each backend, three parallel texts with one interface:

    Trainer(head, config, settings: AdamW, *, state=None, seed=0, precision="auto")
        # (TFTrainer, FlaxTrainer): builds the model from `seed`, then loads canonical `state`
        .process_index, .process_count      # this process among the data-parallel workers
        .train_step(micro_batches, lr, total_items) -> float  # one update; the global mean loss
        .predict(batch) -> dict[str, np.ndarray]               # the head's outputs, dropout off
        .optimizer_state() -> dict[str, np.ndarray]            # AdamW moments, canonical names
        .load_optimizer_state(state, step)
        .weights() -> dict[str, np.ndarray]                    # canonical weights
        .save_pretrained(directory)

This module imports a backend only when asked (`load_backend`), never at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..auto_tokenizer import load_tokenizer, require_bpe
from ..backends import NAMES
from ..checkpoint import read_safetensors, write_safetensors
from ..config import PRESETS, RobertaConfig
from ..data import (
    FULL_SENTENCES,
    PACKINGS,
    MaskedLMBatches,
    TokenFile,
    encode_documents,
    pack_sentences,
    read_documents,
    split_batch,
    unigram_counts,
    write_token_file,
)
from ..fileio import atomic_dir, atomic_write_text
from ..optim import TOKEN_LEVEL_HEADS, AdamW, decays, load_backend, loss_items
from ..pretrained import load_pretrained
from ..validation import IGNORE_INDEX
from . import corpus as builtin_corpus
from .history import NO_PLOT, RecordingTrainer, read_history, write_history

BACKENDS = NAMES  # the backends that can train: every declared one

__all__ = [
    "AdamW",
    "decays",
    "BACKENDS",
    "load_backend",
    "loss_items",
    "masked_lm_scores",
    "check_output",
    "prepare_output",
    "save_checkpoint",
    "latest_checkpoint",
    "fit",
    "corpus_documents",
    "train_tokenizer",
    "PretrainData",
    "evaluate_masked_lm",
    "pretrain",
]

def masked_lm_scores(logits: np.ndarray, labels: np.ndarray) -> tuple[float, int, int]:
    """(summed negative log-likelihood, correct argmax predictions, scored tokens) over the
    positions whose label is not -100, in float64."""
    keep = labels != IGNORE_INDEX
    z = np.asarray(logits, dtype=np.float64)[keep]  # (N, V)
    target = labels[keep]
    if target.size == 0:
        return 0.0, 0, 0
    z -= z.max(axis=-1, keepdims=True)
    nll = np.log(np.exp(z).sum(axis=-1)) - z[np.arange(target.size), target]
    return float(nll.sum()), int((z.argmax(axis=-1) == target).sum()), int(target.size)


# ---------------------------------------------------------------------------------------------
# 4. Output directories and checkpoints

RUN_FILE = "run.json"  # the settings of the run that owns an output directory
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
_CHECKPOINT = "checkpoint-"


def check_output(out: str | os.PathLike, *, resume: bool, overwrite: bool, resumable: bool = True) -> dict | None:
    """Check that `out` may take a run, writing nothing. Returns the settings of the run to
    resume, or None for a fresh run. A directory holding a run is refused unless `resume`
    (continue it; only where `resumable`) or `overwrite` (replace it); one holding anything else
    is always refused."""
    out = Path(out)
    if resume and overwrite:
        raise ValueError("give --resume or --overwrite, not both")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output directory {out} is a file")
    held = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if resume:
        if not (out / RUN_FILE).is_file():
            raise FileNotFoundError(f"nothing to resume: {out} holds no run ({RUN_FILE} is missing)")
        try:
            return json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{out / RUN_FILE} is not a run file: {e}") from None
    if held and RUN_FILE not in held:  # never delete what another program wrote
        raise FileExistsError(f"output directory {out} holds {len(held)} file(s) of something else; choose a new or empty directory")
    if held and not overwrite:
        how = "pass --resume to continue it or --overwrite to replace it" if resumable else "pass --overwrite to replace it"
        raise FileExistsError(f"output directory {out} holds another run; {how}")
    return None


def prepare_output(out: str | os.PathLike, *, resume: bool, overwrite: bool) -> dict | None:
    """`check_output`, then make `out` ready for a fresh run: created, or emptied of the run it
    held (under `overwrite`). Returns the settings of the run to resume, or None."""
    recorded = check_output(out, resume=resume, overwrite=overwrite)
    out = Path(out)
    if recorded is None:
        if out.exists() and any(out.iterdir()):
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    return recorded


@contextlib.contextmanager
def staged_output(out: str | os.PathLike) -> Iterator[Path]:
    """A fresh run's directory, built in a staging folder beside `out` and moved into place when
    the block succeeds (`fileio.atomic_dir`): a refusal, a full or read-only disk or Ctrl-C during
    the set-up leaves `out` as it was. `out` must have passed `check_output`: a run it holds is
    replaced only once the new one is complete."""
    out = Path(out)
    with atomic_dir(out, overwrite=out.exists()) as staging:
        yield staging


def write_run_file(out: Path, settings: Mapping[str, Any]) -> None:
    atomic_write_text(out / RUN_FILE, json.dumps(dict(settings), indent=2, sort_keys=True) + "\n")


def save_checkpoint(out: Path, trainer, *, step: int, tokenizer=None, state: Mapping[str, Any] = ()) -> Path:
    """Write `out/checkpoint-{step}`: the model (a checkpoint directory every backend and
    `roberta fill-mask` load, tokenizer included), the optimizer moments and the loop state.
    Written in a staging folder and renamed into place (`fileio.atomic_dir`), then older
    checkpoints are removed: an interruption at any moment leaves the previous checkpoint intact."""
    target = out / f"{_CHECKPOINT}{step}"
    with atomic_dir(target, overwrite=target.exists()) as tmp:
        trainer.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        write_safetensors(trainer.optimizer_state(), tmp / OPTIMIZER_FILE)
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **dict(state)}, indent=2) + "\n")
    for old in out.glob(f"{_CHECKPOINT}*"):
        if old != target and old.name[len(_CHECKPOINT) :].isdigit():
            shutil.rmtree(old)
    return target


def latest_checkpoint(out: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in `out` (temporary directories are never complete)."""
    done = [p for p in Path(out).glob(f"{_CHECKPOINT}*") if p.name[len(_CHECKPOINT) :].isdigit() and (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(p.name[len(_CHECKPOINT) :]), default=None)


def load_checkpoint_state(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(loop state, optimizer moments) of a checkpoint written by `save_checkpoint`."""
    return json.loads((path / STATE_FILE).read_text()), dict(read_safetensors(path / OPTIMIZER_FILE))


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Inside, the first Ctrl-C only raises a flag (the loop saves and stops at the end of the
    update in progress); a second one interrupts at once. Yields `interrupted() -> bool`."""
    hits = []

    def handler(signum, frame):
        if hits:
            raise KeyboardInterrupt
        hits.append(signum)
        print("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort)", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        yield lambda: False
        return
    try:
        yield lambda: bool(hits)
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------------------------
# 5. The loop, shared by pretraining and fine-tuning


@dataclass
class FitResult:
    step: int  # updates done in all
    loss: float  # of the last update
    seconds: float  # spent in this call
    interrupted: bool


def fit(
    trainer,
    batches: Iterator[dict[str, np.ndarray]],
    settings: AdamW,
    *,
    head: str,
    start_step: int = 0,
    accumulate: int = 1,
    save: Callable[[int], Any] | None = None,
    save_every: int = 0,
    evaluate: Callable[[int], Any] | None = None,
    eval_every: int = 0,
    progress: bool = True,
    description: str = "train",
) -> FitResult:
    """Run updates `start_step`..`settings.steps - 1`, one global batch from `batches` each.

    Each process takes its share of the batch's rows, cut into `accumulate` micro-batches; the
    loss of each micro-batch is weighted by its share of the global batch's loss items. Saves
    every `save_every` updates, at the end, and when Ctrl-C asks to stop; evaluates every
    `eval_every` updates. Shows a progress bar with loss and tokens/s (process 0 only).
    """
    from tqdm.auto import tqdm

    main = trainer.process_index == 0
    bar = tqdm(total=settings.steps, initial=start_step, desc=description, unit="step", disable=not (progress and main), dynamic_ncols=True)
    done, loss, began, tokens, stopped = start_step, float("nan"), time.perf_counter(), 0, False
    with deferred_interrupt() as interrupted:
        while done < settings.steps and not stopped:
            batch = next(batches)
            total = loss_items(head, batch)
            mine = split_batch(batch, trainer.process_count)[trainer.process_index]
            loss = trainer.train_step(split_batch(mine, accumulate), settings.lr(done), total)
            if not math.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss} at update {done + 1}; lower the learning rate")
            tokens += int(batch["attention_mask"].sum())
            rate = tokens / max(time.perf_counter() - began, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{settings.lr(done):.2e}", tok_s=f"{rate:,.0f}", refresh=False)
            done += 1
            if evaluate is not None and eval_every and done % eval_every == 0 and done < settings.steps:
                evaluate(done)
            stopped = interrupted()
            if save is not None and (stopped or done == settings.steps or (save_every and done % save_every == 0)):
                save(done)
    bar.close()
    return FitResult(step=done, loss=loss, seconds=time.perf_counter() - began, interrupted=stopped)


# ---------------------------------------------------------------------------------------------
# 6. Pretraining data: documents, the tokenizer, token files

HELDOUT_EVERY = 20  # of a user's corpus, documents 1, 21, 41, ... are held out (5%)
MIN_VOCAB = 512  # a byte-level BPE needs the 256 bytes, the specials, and some merges
EVAL_SEED = 1234  # held-out masks are the same at every evaluation and in every backend


def corpus_documents(corpus: Sequence[str], split: str) -> Iterator[str]:
    """Documents of the `train` or `heldout` part of `corpus`: ['builtin'] or text files."""
    if list(corpus) == ["builtin"]:
        yield from builtin_corpus.builtin_documents(split)
        return
    for i, doc in enumerate(read_documents(corpus)):
        if (i % HELDOUT_EVERY == 1) == (split == "heldout"):
            yield doc


def train_tokenizer(documents: Iterable[str], vocab_size: int, directory: Path):
    """A byte-level BPE vocabulary of `vocab_size` learnt from `documents`, saved in `directory`.
    The special tokens take ids 0..4 (<s>, <pad>, </s>, <unk>, <mask>), the 256 bytes follow."""
    from ..tokenization_base import bytes_to_unicode
    from ..tokenization_fast import RobertaTokenizerFast

    seed = ["<s>", "<pad>", "</s>", "<unk>", *sorted(bytes_to_unicode().values()), "<mask>"]
    base = RobertaTokenizerFast(vocab={token: i for i, token in enumerate(seed)}, merges=[])
    tokenizer = base.train_new_from_iterator(documents, vocab_size=vocab_size, min_frequency=2)
    tokenizer.save_pretrained(directory)
    return tokenizer


@dataclass
class PretrainData:
    """The token files of a run and what masking needs to know about the vocabulary."""

    train: TokenFile
    heldout: TokenFile
    max_len: int
    pad_id: int
    mask_token_id: int
    special_ids: tuple[int, ...]
    vocab_size: int

    @classmethod
    def build(cls, corpus: Sequence[str], tokenizer, directory: Path, *, max_len: int, packing: str = FULL_SENTENCES) -> "PretrainData":
        """Tokenize, pack and write `directory/train` and `directory/heldout` (skipped when
        they exist: a resumed run reuses them)."""

        def encode(texts: list[str]) -> list[list[int]]:
            return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]

        files = {}
        for split in ("train", "heldout"):
            if not (directory / split).exists():
                docs = encode_documents(corpus_documents(corpus, split), encode)
                seqs = pack_sentences(docs, max_len, bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id, mode=packing)
                write_token_file(seqs, directory / split, vocab_size=len(tokenizer))
            files[split] = TokenFile(directory / split)
            if len(files[split]) == 0:
                raise ValueError(
                    f"the corpus has no {split} text: it needs at least 2 documents (one in {HELDOUT_EVERY} is held out "
                    "for evaluation; blank lines separate documents)"
                )
        return cls(
            train=files["train"],
            heldout=files["heldout"],
            max_len=max_len,
            pad_id=tokenizer.pad_token_id,
            mask_token_id=tokenizer.mask_token_id,
            special_ids=tuple(sorted(set(tokenizer.all_special_ids))),
            vocab_size=len(tokenizer),
        )

    def batches(self, split: str, *, batch_tokens: int, seed: int, packing: str = FULL_SENTENCES) -> MaskedLMBatches:
        return MaskedLMBatches(
            self.train if split == "train" else self.heldout,
            batch_tokens=batch_tokens,
            max_len=self.max_len,
            pad_id=self.pad_id,
            mask_token_id=self.mask_token_id,
            special_ids=self.special_ids,
            vocab_size=self.vocab_size,
            mode=packing,
            seed=seed,
            shuffle=split == "train",
        )


# ---------------------------------------------------------------------------------------------
# 7. Evaluation: masked-token accuracy and perplexity, next to the unigram baseline


def evaluate_masked_lm(trainer, data: PretrainData, *, batch_tokens: int) -> dict[str, float]:
    """Masked-token accuracy and perplexity on the held-out part (fixed masks), and the unigram
    baseline: always predicting the training text's most frequent token, and the perplexity of
    its unigram distribution."""
    counts = unigram_counts(data.train, data.special_ids)
    top = int(counts.argmax())
    log_p = np.log(np.maximum(counts, 1) / counts.sum())  # unseen tokens count once
    nll = correct = n = 0
    unigram_nll = unigram_correct = 0.0
    for batch in data.batches("heldout", batch_tokens=batch_tokens, seed=EVAL_SEED).epoch(0):
        labels = batch["labels"]
        s, c, k = masked_lm_scores(trainer.predict(batch)["logits"], labels)
        nll, correct, n = nll + s, correct + c, n + k
        target = labels[labels != IGNORE_INDEX]
        unigram_correct += float((target == top).sum())
        unigram_nll -= float(log_p[target].sum())
    return {
        "accuracy": correct / max(n, 1),
        "perplexity": math.exp(nll / max(n, 1)),
        "unigram_accuracy": unigram_correct / max(n, 1),
        "unigram_perplexity": math.exp(unigram_nll / max(n, 1)),
        "masked_tokens": n,
    }


def format_scores(scores: Mapping[str, float]) -> str:
    return (
        f"masked-token accuracy {scores['accuracy']:.2%} (unigram baseline {scores['unigram_accuracy']:.2%}), "
        f"perplexity {scores['perplexity']:.1f} (unigram {scores['unigram_perplexity']:.1f}) "
        f"on {scores['masked_tokens']:,} held-out masked tokens"
    )


# ---------------------------------------------------------------------------------------------
# 8. Pretraining, end to end

# history.csv's columns (eval_* only on the rows of updates that evaluated)
PRETRAIN_HISTORY = ("step", "lr", "train_loss", "eval_loss", "eval_accuracy", "eval_perplexity")

# The settings a run records in run.json (and a resumed run takes from there).
RUN_KEYS = (
    "backend", "corpus", "config", "tokenizer", "vocab_size", "steps", "batch_tokens", "accumulate", "max_len",
    "packing", "lr", "warmup", "seed", "precision", "save_every", "eval_every",
)


def resolve_config(name: str) -> RobertaConfig:
    """A preset name or a config.json / checkpoint directory path."""
    if name in PRESETS:
        return RobertaConfig.from_preset(name)
    return RobertaConfig.from_pretrained(name)


def pretrain(
    settings: Mapping[str, Any],
    out: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    steps: int | None = None,
    progress: bool = True,
    log=print,
) -> dict:
    """Pretrain a RobertaForMaskedLM as `roberta pretrain` does; returns the final scores and
    timings. `settings` holds RUN_KEYS; a resumed run takes them from `out/run.json` instead,
    except `steps`, which (when given) sets the updates the resumed run goes on to, in all.

    Everything that can be checked is checked before anything is written. A fresh run is set up
    (run.json, the vocabulary, the token files, the model) in a staging folder that becomes `out`
    only once the set-up succeeded, so a refusal or a failure leaves nothing behind.

    `out/history.csv` (and `.jsonl`) gets one row per update, rewritten at each checkpoint, and
    `history.png` is drawn at the end when matplotlib is installed (`plotted` in the result;
    without it `log` says so once)."""
    out = Path(out)
    recorded = check_output(out, resume=resume, overwrite=overwrite)
    if recorded is not None:
        settings = dict(recorded)
        if steps is not None and steps != settings.get("steps"):
            settings = _resume_to(out, settings, steps)
    elif steps is not None:
        raise ValueError("steps= sets the length of a resumed run; for a fresh run give it in settings")
    settings = dict(settings)
    config, max_len = check_settings(settings)
    if recorded is not None and settings["steps"] != recorded.get("steps"):
        write_run_file(out, settings)  # the run's new length, for the next resumption too
    Trainer = load_backend(settings["backend"])
    tokenizer = None
    if settings["tokenizer"]:
        tokenizer = require_bpe(load_tokenizer(settings["tokenizer"]), settings["tokenizer"], "pretraining")
    timings: dict[str, float] = {}

    if recorded is None:
        with staged_output(out) as staging:
            write_run_file(staging, settings)
            tokenizer, data, trainer = _set_up(settings, config, max_len, staging, Trainer, tokenizer, timings, log)
            last = None
        # the same token files, read from their final place
        data = dataclasses.replace(data, train=TokenFile(out / "data" / "train"), heldout=TokenFile(out / "data" / "heldout"))
    else:
        if tokenizer is None:
            tokenizer = load_tokenizer(out / "tokenizer")
        last = latest_checkpoint(out)
        tokenizer, data, trainer = _set_up(settings, config, max_len, out, Trainer, tokenizer, timings, log, checkpoint=last)

    train = data.batches("train", batch_tokens=settings["batch_tokens"], seed=settings["seed"], packing=settings["packing"])
    optim = AdamW(peak_lr=settings["lr"], warmup=settings["warmup"], steps=settings["steps"])
    start = 0
    if last is not None:
        state, moments = load_checkpoint_state(last)
        start = int(state["step"])
        trainer.load_optimizer_state(moments, start)
        log(f"resuming from {last} (update {start} of {optim.steps})")
    main = trainer.process_index == 0
    eval_tokens = max(max_len, settings["batch_tokens"] // settings["accumulate"])
    # history.csv: one row per update (loss, learning rate), held-out scores on the rows of the
    # updates that evaluated; a resumed run keeps the rows up to its checkpoint
    rows = [row for row in read_history(out) if row.get("step", 0) <= start] if last is not None else []

    def record(loss: float, lr: float) -> None:
        rows.append({"step": (rows[-1]["step"] if rows else start) + 1, "lr": lr, "train_loss": loss})

    def save(step: int) -> None:
        if main:
            save_checkpoint(out, trainer, step=step, tokenizer=tokenizer)
            write_history(out, rows, first=PRETRAIN_HISTORY, plot=False)

    def evaluate(step: int) -> dict:
        scores = evaluate_masked_lm(trainer, data, batch_tokens=eval_tokens)
        row = next((r for r in reversed(rows) if r["step"] == step), None)
        if row is None:
            rows.append(row := {"step": step})
        row.update(eval_loss=math.log(scores["perplexity"]), eval_accuracy=scores["accuracy"], eval_perplexity=scores["perplexity"])
        if main:
            log(f"update {step}: {format_scores(scores)}")
        return scores

    result = fit(
        RecordingTrainer(trainer, record),
        train.stream(start),
        optim,
        head="masked_lm",
        start_step=start,
        accumulate=settings["accumulate"],
        save=save,
        save_every=settings["save_every"],
        evaluate=evaluate,
        eval_every=settings["eval_every"],
        progress=progress,
        description=f"pretrain [{settings['backend']}]",
    )
    timings["train_s"] = result.seconds
    if result.interrupted:
        log(f"stopped at update {result.step}; resume with: roberta pretrain --resume --out {out}")
        return {"step": result.step, "interrupted": True, **timings}
    began = time.perf_counter()
    scores = evaluate(result.step)
    timings["eval_s"] = time.perf_counter() - began
    plotted = False
    if main:  # the final model at the top of `out`: a checkpoint directory like any other
        trainer.save_pretrained(out)
        tokenizer.save_pretrained(out)
        plotted = write_history(out, rows, first=PRETRAIN_HISTORY, losses=("train_loss", "eval_loss"), metrics=("eval_accuracy",),
                                title=f"pretrain [{settings['backend']}]")
        if not plotted:
            log(NO_PLOT)
    return {"step": result.step, "loss": result.loss, "interrupted": False, "plotted": plotted, **scores, **timings}


def _set_up(settings, config, max_len, directory: Path, Trainer, tokenizer, timings, log, checkpoint: Path | None = None):
    """(tokenizer, data, trainer) of a run in `directory`: the vocabulary (given, or learnt from
    the training part of the corpus), the token files (made once), the batch size checked against
    the corpus and the workers, the model (fresh, or from `checkpoint`)."""
    began = time.perf_counter()
    if tokenizer is None:
        vocab = settings["vocab_size"] or max(config.vocab_size, MIN_VOCAB)
        if next(corpus_documents(settings["corpus"], "train"), None) is None:
            raise ValueError("the corpus is empty: no document to learn a vocabulary from")
        log(f"learning a byte-level BPE vocabulary of {vocab} tokens from the corpus ...")
        tokenizer = train_tokenizer(corpus_documents(settings["corpus"], "train"), vocab, directory / "tokenizer")
    timings["tokenizer_s"] = time.perf_counter() - began
    config = config.copy(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )

    began = time.perf_counter()
    data = PretrainData.build(settings["corpus"], tokenizer, directory / "data", max_len=max_len, packing=settings["packing"])
    timings["data_s"] = time.perf_counter() - began
    log(
        f"corpus: {data.train.num_tokens:,} training tokens in {len(data.train):,} sequences of <= {max_len}, "
        f"{data.heldout.num_tokens:,} held-out tokens; vocabulary {len(tokenizer)}"
    )
    # checked before the model is built: an impossible batch costs no memory
    train = data.batches("train", batch_tokens=settings["batch_tokens"], seed=settings["seed"], packing=settings["packing"])
    if train.batch_tokens > train.max_batch_tokens:
        raise ValueError(
            f"--batch-tokens {train.batch_tokens} is more than the corpus fills: {len(data.train):,} training sequences "
            f"of {max_len} tokens; use --batch-tokens in {max_len}..{train.max_batch_tokens}"
        )
    state = None if checkpoint is None else load_pretrained(checkpoint, "masked_lm", config=config)[1]
    optim = AdamW(peak_lr=settings["lr"], warmup=settings["warmup"], steps=settings["steps"])
    trainer = Trainer("masked_lm", config, optim, state=state, seed=settings["seed"], precision=settings["precision"])
    _check_rows(train, trainer, settings["accumulate"])
    return tokenizer, data, trainer


def _resume_to(out: Path, settings: dict, steps: int) -> dict:
    """The recorded settings of the run in `out` going on to `steps` updates in all (the
    learning rate then decays towards update `steps`)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"--steps must be an integer >= 1, got {steps!r}")
    last = latest_checkpoint(out)
    done = 0 if last is None else int(load_checkpoint_state(last)[0]["step"])
    if steps <= done:
        raise ValueError(f"the run in {out} has done {done} updates already; --steps with --resume must be more than {done}, got {steps}")
    if settings.get("warmup", 0) > steps:
        raise ValueError(f"the run warms up over {settings['warmup']} updates; --steps with --resume must be at least that, got {steps}")
    return {**settings, "steps": steps}


def check_settings(s: Mapping[str, Any]) -> tuple[RobertaConfig, int]:
    """Refuse settings that cannot work before any work is done (nothing is written before this
    passes); returns the model config and the sequence length."""
    missing = [k for k in RUN_KEYS if k not in s]
    if missing:
        raise ValueError(f"pretraining settings lack {', '.join(missing)}")
    if s["backend"] not in BACKENDS:
        raise ValueError(f"unknown backend {s['backend']!r}; choose one of {', '.join(BACKENDS)}")
    for key in ("steps", "batch_tokens", "accumulate"):
        if isinstance(s[key], bool) or not isinstance(s[key], int) or s[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be an integer >= 1, got {s[key]!r}")
    for key in ("seed", "save_every", "eval_every"):
        if isinstance(s[key], bool) or not isinstance(s[key], int) or s[key] < 0:
            raise ValueError(f"--{key.replace('_', '-')} must be an integer >= 0, got {s[key]!r}")
    if s["packing"] not in PACKINGS:
        raise ValueError(f"unknown packing {s['packing']!r}; choose one of {', '.join(PACKINGS)}")
    if s["vocab_size"] is not None and (isinstance(s["vocab_size"], bool) or not isinstance(s["vocab_size"], int) or s["vocab_size"] < MIN_VOCAB):
        raise ValueError(f"--vocab-size must be >= {MIN_VOCAB} for a byte-level BPE (an integer), got {s['vocab_size']!r}")
    _check_corpus(s["corpus"])
    AdamW(peak_lr=s["lr"], warmup=s["warmup"], steps=s["steps"])
    config = resolve_config(s["config"])
    max_len = config.max_sequence_length if s["max_len"] is None else s["max_len"]
    if isinstance(max_len, bool) or not isinstance(max_len, int) or not 3 <= max_len <= config.max_sequence_length:
        raise ValueError(f"--max-len must be in 3..{config.max_sequence_length} for this config, got {max_len!r}")
    if s["batch_tokens"] < max_len:
        raise ValueError(f"--batch-tokens {s['batch_tokens']} cannot fit one sequence of {max_len} tokens; use at least {max_len}")
    return config, max_len


def _check_corpus(corpus: Sequence[str]) -> None:
    """`['builtin']`, or text files that exist (read later, after the output is set up)."""
    if isinstance(corpus, (str, os.PathLike)) or not list(corpus):
        raise ValueError(f"--corpus must be a list: ['builtin'] or text files, got {corpus!r}")
    if list(corpus) == ["builtin"]:
        return
    for path in corpus:
        if path == "builtin":
            raise ValueError("--corpus builtin cannot be mixed with files")
        if not Path(path).is_file():
            raise FileNotFoundError(f"corpus file {path} does not exist or is not a file")


def _check_rows(batches: MaskedLMBatches, trainer, accumulate: int) -> None:
    parts = accumulate * trainer.process_count
    if batches.mode == FULL_SENTENCES and batches.rows % parts:
        raise ValueError(
            f"a batch of {batches.rows} sequences ({batches.batch_tokens} tokens / {batches.max_len}) cannot be "
            f"split into {accumulate} micro-batch(es) on each of {trainer.process_count} worker(s); "
            f"use --batch-tokens a multiple of {parts * batches.max_len}"
        )
