"""`roberta demo` (what `make demo` runs): the RoBERTa recipe end to end on a corpus every machine
has, in a few minutes on two CPU cores.

1. the corpus: Python's own documentation (`roberta_core.app.corpus`), 5% of the documents held out;
2. a byte-level BPE vocabulary learnt from it;
3. a small RoBERTa pretrained with FULL-SENTENCES packing, dynamic masking and the paper's AdamW;
4. held-out masked-token accuracy next to the unigram baseline (the bar: at least twice it);
5. fill-mask on sentences of the held-out text;
6. fine-tuning on the built-in task (which package a docstring comes from), from the pretrained
   weights and from random ones (the bar: pretrained wins);
7. the checkpoint converted to TensorFlow (h5) and Flax (msgpack), verified, and the parity
   table of every backend against the float64 reference.

Everything is written under --out (default `demo-run/`), which a later demo replaces.
"""

from __future__ import annotations

import re
import shutil
import time
import warnings
from pathlib import Path

from ..auto_tokenizer import load_tokenizer
from ..config import RobertaConfig
from ..data import split_sentences
from . import corpus as builtin_corpus
from .recipe import RUN_KEYS, format_scores, pretrain

# The demo's model: 2 layers of 64, a vocabulary of 2048, sequences of 64 tokens. On two CPU cores
# many small updates teach more than a few large ones: in the same time 128 wide did no better.
# Measured on 2 quiet cores: 3000 updates gave 2.1x the unigram baseline, 8000 (about 4 minutes)
# give 2.4x in PyTorch and TF. Fine-tuning: at a high learning rate (5e-4) a classifier from
# random weights does as well as one from these pretrained ones (at this size a random encoder's
# near-uniform attention is a bag of words, which suits the task, and a high rate erases what
# pretraining learnt); at a fine-tuning rate nearer the paper's, pretrained weights win clearly
# (1e-4, 15 epochs: 51% vs 34% in PyTorch, 38% vs 25% in TF; majority class 20%).
MODEL = dict(
    vocab_size=2048, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
    max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5,
)
PRETRAIN = dict(steps=8000, batch_tokens=1024, lr=3e-3, warmup=300)
FINETUNE = dict(epochs=15, batch_size=16, lr=1e-4, weight_decay=0.01, max_len=64)
MARKER = ".roberta-demo"  # the demo owns a directory holding this file


def _claim(out: Path) -> None:
    """Use `out` for the demo: new, empty, or a previous demo's (replaced); never anything else."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise FileExistsError(f"{out} holds files that are not a demo's; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `roberta demo`; the next demo replaces this directory\n")


def compare_initialisations(pretrained: float, random: float) -> tuple[bool, str]:
    """(whether the bar is met, the sentence saying so): pretrained weights must give a strictly
    higher held-out accuracy than random ones; a tie is said as a tie, not as a win."""
    if pretrained > random:
        return True, f"pretrained beats random initialisation ({pretrained:.2%} > {random:.2%})"
    if pretrained == random:
        return False, f"pretrained does NOT beat random initialisation: both {pretrained:.2%}"
    return False, f"pretrained does NOT beat random initialisation ({pretrained:.2%} < {random:.2%})"


def _masked_sentences(tokenizer, count: int = 3) -> list[tuple[str, str]]:
    """(sentence with one word masked, the word) from held-out documents: plain one-line
    sentences of 8-16 words whose masked word (the first of 4+ letters after the third word) is
    a single token."""
    found = []
    for doc in builtin_corpus.builtin_documents("heldout"):
        for sentence in split_sentences(doc):
            sentence = sentence.strip()
            words = sentence.split(" ")
            if "\n" in sentence or not 8 <= len(words) <= 16 or not re.fullmatch(r"[A-Za-z ,.'()-]+", sentence):
                continue
            for i, word in enumerate(words[3:-1], 3):
                if len(word) >= 4 and word.isalpha() and len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1:
                    found.append((" ".join(words[:i] + [tokenizer.mask_token] + words[i + 1 :]), word))
                    break
            if len(found) == count:
                return found
    return found


def demo(backend: str = "pt", out: str | Path = "demo-run", *, steps: int = PRETRAIN["steps"],
         finetune_epochs: int = FINETUNE["epochs"], parity: bool = True) -> int:
    """Run the demo (the steps of the module docstring), printing as it goes; 0 when every bar is
    met (pretrained at least twice the unigram baseline, pretrained fine-tuning beats random
    initialisation, conversions and parity agree), else 1."""
    from ..commands.fill_mask import fill_mask
    from .finetune import finetune

    began = time.perf_counter()
    out = Path(out)
    _claim(out)
    times: dict[str, float] = {}

    def say(text: str = "") -> None:
        print(text, flush=True)

    say(f"roberta demo: the RoBERTa recipe on Python's own documentation, backend {backend}\n")
    t = time.perf_counter()
    train_docs = list(builtin_corpus.builtin_documents("train"))
    held_docs = list(builtin_corpus.builtin_documents("heldout"))
    size = sum(len(d.encode()) for d in train_docs + held_docs)
    say(f"[1/7] corpus: {size / 1e6:.2f} MB of English in {len(train_docs) + len(held_docs)} documents "
        f"(pydoc topics + standard-library docstrings), {len(held_docs)} held out")
    times["corpus"] = time.perf_counter() - t

    config_path = out / "model-config"
    RobertaConfig(**MODEL).save_pretrained(config_path)
    settings = dict(
        backend=backend, corpus=["builtin"], config=str(config_path), tokenizer=None, vocab_size=MODEL["vocab_size"],
        accumulate=1, max_len=None, packing="full-sentences", seed=0, precision="auto", save_every=500, eval_every=0,
        **{**PRETRAIN, "steps": steps, "warmup": min(PRETRAIN["warmup"], max(1, steps // 20))},
    )
    assert set(settings) == set(RUN_KEYS)
    say(f"[2/7] + [3/7] byte-level BPE vocabulary, then pretraining a {MODEL['num_hidden_layers']}-layer, "
        f"{MODEL['hidden_size']}-wide RoBERTa for {settings['steps']} updates of {settings['batch_tokens']} tokens")
    ckpt = out / "pretrain"
    scores = pretrain(settings, ckpt, log=lambda line: say("      " + line))
    times["tokenizer"], times["pretraining"] = scores["tokenizer_s"], scores["train_s"] + scores["data_s"] + scores["eval_s"]
    ratio = scores["accuracy"] / max(scores["unigram_accuracy"], 1e-9)
    pretrained_ok = ratio >= 2.0
    say(f"[4/7] {format_scores(scores)}")
    say(f"      accuracy / unigram baseline = {ratio:.2f} ({'meets' if pretrained_ok else 'MISSES'} the bar of 2)")

    t = time.perf_counter()
    say("[5/7] fill-mask on held-out sentences:")
    tokenizer = load_tokenizer(ckpt)
    for text, word in _masked_sentences(tokenizer):
        result = fill_mask(ckpt, text, backend=backend, top_k=3)
        # a token that is only a space shows as ' ', not as an empty string
        guesses = ", ".join(f"{c['token_str'].strip() or c['token_str']!r} {c['score']:.2f}" for c in result["masks"][0]["candidates"])
        say(f"      {text}\n        -> {guesses}   (the text has {word!r})")
    times["fill-mask"] = time.perf_counter() - t

    t = time.perf_counter()
    task = dict(FINETUNE, epochs=finetune_epochs)
    say(f"[6/7] fine-tuning on the built-in task: which of {len(builtin_corpus.PACKAGE_LABELS)} packages a docstring "
        f"comes from ({', '.join(builtin_corpus.PACKAGE_LABELS)})")
    with warnings.catch_warnings():
        # the expected one: the LM head is left out and a classifier is new
        warnings.filterwarnings("ignore", message="Loading .* into")
        tuned = {init: finetune("seqcls", backend, ckpt, "builtin", init=init, **task) for init in ("pretrained", "random")}
    for init, s in tuned.items():
        say(f"      from {init + ' weights:':20s} held-out accuracy {s['accuracy']:.2%} on {s['examples']} docstrings "
            f"({s['seconds']:.0f} s; majority class {s['baseline']:.2%})")
    finetune_ok, verdict = compare_initialisations(tuned["pretrained"]["accuracy"], tuned["random"]["accuracy"])
    say(f"      {verdict}")
    times["fine-tuning"] = time.perf_counter() - t

    parity_ok = True
    if parity:
        t = time.perf_counter()
        parity_ok = _convert_and_compare(ckpt, out, say)
        times["conversion + parity"] = time.perf_counter() - t

    total = time.perf_counter() - began
    say("\ntime: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + f"; total {total / 60:.1f} min")
    return 0 if pretrained_ok and finetune_ok and parity_ok else 1


def _convert_and_compare(ckpt: Path, out: Path, say) -> bool:
    """[7/7] the checkpoint in TensorFlow's and Flax's formats, each verified by loading it in
    its framework, then the conformance suite's parity table on the checkpoint."""
    from .. import backends, runtime
    from ..conversion import convert

    missing = [b for b in backends.NAMES if not runtime.available(b)]
    if missing:
        say(f"[7/7] conversion and parity skipped: the {', '.join(missing)} backend(s) are not installed")
        return True
    say("[7/7] the checkpoint in every framework's format, verified, and the parity table")
    ok = True
    for to, framework in (("h5", "TensorFlow"), ("msgpack", "Flax")):
        result = convert(ckpt, out / f"pretrain-{to}", to=to, verify=True, overwrite=True, progress=False, log=lambda line: None)
        worst = max((c.rel for c in result.checks or []), default=float("nan"))
        ok &= all(c.ok for c in result.checks or [])
        say(f"      {framework:10s} {result.path}: {', '.join(result.files)}; worst relative difference {worst:.1e}")
    from ..parity import cli_main

    say("")
    ok &= cli_main([str(out / "pretrain-msgpack")]) == 0
    return ok
