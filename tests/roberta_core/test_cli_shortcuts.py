"""`roberta fill-mask` and `roberta classify` as shortcuts of `roberta pipeline fill-mask` /
`text-classification` (issue 16): with `--jsonl` their output is the pipeline command's, byte for
byte, on the same checkpoint and inputs; their own layouts (`--json`, the default display) carry
the pipeline's tokens, labels and scores, which the float64 reference checks independently."""

from __future__ import annotations

import json

import numpy as np
import pytest

from roberta_core import reference, runtime
from roberta_core.checkpoint import load_state_dict
from roberta_core.config import RobertaConfig
from tests.roberta_core.test_cli import roberta, word_level_checkpoint

pytestmark = pytest.mark.skipif(not runtime.available("pt"), reason="the pt backend is not installed")


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("text", ["w5 <mask> w7", "w5 <mask> w7 <mask> w9"])
def test_fill_mask_shortcut_prints_what_the_pipeline_command_prints(capsys, tmp_path, text):
    ckpt = word_level_checkpoint(tmp_path, "masked_lm", mask=True)  # ids 4..98 for w4..w98, <mask> 99
    code, short, _ = roberta(capsys, "fill-mask", str(ckpt), text, "--top-k", "3", "--backend", "pt", "--jsonl")
    assert code == 0
    code, piped, _ = roberta(capsys, "pipeline", "fill-mask", str(ckpt), text, "--option", "top_k=3", "--backend", "pt")
    assert code == 0 and short == piped and len(short.splitlines()) == 1
    # the command's own layout holds the same candidates, and they are the reference's
    code, out, _ = roberta(capsys, "fill-mask", str(ckpt), text, "--top-k", "3", "--backend", "pt", "--json")
    legacy = json.loads(out)
    found = json.loads(piped)
    per_mask = [found] if text.count("<mask>") == 1 else found
    assert [[c["token"] for c in m["candidates"]] for m in legacy["masks"]] == [[c["token"] for c in m] for m in per_mask]
    assert [[c["score"] for c in m["candidates"]] for m in legacy["masks"]] == [[c["score"] for c in m] for m in per_mask]
    ids = np.array([[0, *(99 if w == "<mask>" else int(w[1:]) for w in text.split()), 2]])
    config = RobertaConfig.from_pretrained(ckpt)
    logits = reference.forward(config, load_state_dict(ckpt / "model.safetensors"), "masked_lm", input_ids=ids)["logits"][0]
    positions = np.flatnonzero(ids[0] == 99)
    assert [m["position"] for m in legacy["masks"]] == list(positions)
    for mask, position in zip(legacy["masks"], positions):
        probs = softmax(logits[position])
        assert [c["token"] for c in mask["candidates"]] == list(np.argsort(-probs, kind="stable")[:3])
        np.testing.assert_allclose([c["score"] for c in mask["candidates"]], np.sort(probs)[::-1][:3], rtol=0, atol=1e-6)
    best = text.split()
    for mask, position in zip(legacy["masks"], positions):
        best[position - 1] = f"w{mask['candidates'][0]['token']}"
    assert legacy["best"] == " ".join(best)


def test_classify_shortcut_prints_what_the_pipeline_command_prints(capsys, tmp_path):
    ckpt = word_level_checkpoint(tmp_path, "sequence_classification")
    code, short, _ = roberta(capsys, "classify", str(ckpt), "w5 w17 w42", "--pair", "w9", "--backend", "pt", "--jsonl")
    assert code == 0
    pair = json.dumps({"text": "w5 w17 w42", "text_pair": "w9"})
    code, piped, _ = roberta(capsys, "pipeline", "text-classification", str(ckpt), pair, "--backend", "pt")
    assert code == 0 and short == piped
    # a text that reads as JSON stays a text through the shortcut
    code, short, _ = roberta(capsys, "classify", str(ckpt), "[5]", "--backend", "pt", "--jsonl")
    code, piped, _ = roberta(capsys, "pipeline", "text-classification", str(ckpt), '{"text": "[5]"}', "--backend", "pt")
    assert code == 0 and short == piped
    # every label, best first, in the command's own layout: the pipeline's with top_k=None
    code, out, _ = roberta(capsys, "classify", str(ckpt), "w5 w17 w42", "--pair", "w9", "--backend", "pt", "--json")
    legacy = json.loads(out)
    code, piped, _ = roberta(capsys, "pipeline", "text-classification", str(ckpt), pair, "--option", "top_k=null", "--backend", "pt")
    assert legacy["labels"] == json.loads(piped) and legacy["backend"] == "pt"
    (best,) = roberta(capsys, "classify", str(ckpt), "w5 w17 w42", "--pair", "w9", "--backend", "pt", "--jsonl")[1].splitlines()
    assert json.loads(best) == legacy["labels"][0]  # v4's default: the best label alone
    # the head is checked before a model loads, in both layouts
    mlm = word_level_checkpoint(tmp_path / "mlm", "masked_lm")
    for flag in ("--json", "--jsonl"):
        code, _, err = roberta(capsys, "classify", str(mlm), "w5", "--backend", "pt", flag)
        assert code == 2 and "has no sequence-classification head" in err


def test_shortcut_output_flags_exclude_each_other(capsys, tmp_path):
    ckpt = word_level_checkpoint(tmp_path, "masked_lm", mask=True)
    code, _, err = roberta(capsys, "fill-mask", str(ckpt), "w5 <mask>", "--json", "--jsonl")
    assert code == 2 and "not allowed with argument" in err
