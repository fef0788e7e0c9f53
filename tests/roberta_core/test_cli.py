"""The `roberta` command: `--help` of every subcommand, and `convert`, `fill-mask`, `tokenize`,
`classify` and `info` on real checkpoints, with errors that say what to do (exit status 2).

Oracles: the roberta-base ids of "Hello world" as Hugging Face's documentation prints them, the
sapiens README's infilled sequence, the float64 reference for classification, and the golden
safetensors file read by the safetensors library itself for parameter counts."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil

import numpy as np
import pytest

from roberta_core import cli, runtime
from roberta_core.weights import HEADS
from tests.helpers import golden, shared_data


def roberta(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `roberta ARGV...` in-process: (exit status, stdout, stderr)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as e:  # argparse: --help, usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


MINE = ("convert", "fill-mask", "tokenize", "classify", "info", "parity")


def test_every_subcommand_has_help(capsys):
    code, out, _ = roberta(capsys, "--help")
    assert code == 0
    for name in MINE:
        assert name in out
    for name in cli.SUBCOMMANDS:
        code, out, _ = roberta(capsys, name, "--help")
        assert code == 0 and out.startswith(f"usage: roberta {name}"), name
    code, out, _ = roberta(capsys, "convert", "--help")
    for option in ("--to {safetensors,bin,h5,msgpack}", "--from {safetensors,bin,h5,msgpack,fairseq}",
                   "--dtype {float32,bfloat16,float16}", "--max-shard-size", "--verify", "--no-verify", "--overwrite"):
        assert option in out, option


def test_no_subcommand_prints_help_and_fails(capsys):
    code, out, _ = roberta(capsys)
    assert code == 2 and "COMMAND" in out


def test_tokenize_roberta_base(capsys):
    tokenizer = shared_data("roberta-base-tokenizer")
    code, out, _ = roberta(capsys, "tokenize", str(tokenizer), "Hello world", "--json")
    assert code == 0
    # transformers' RobertaTokenizer documentation: tokenizer("Hello world")["input_ids"] == [0, 31414, 232, 2]
    assert json.loads(out) == {"input_ids": [0, 31414, 232, 2], "tokens": ["<s>", "Hello", "Ġworld", "</s>"]}
    code, out, _ = roberta(capsys, "tokenize", str(tokenizer), "Hello world", "--pair", "Hi")
    assert code == 0 and out.split()[:2] == ["0", "<s>"] and out.rstrip().endswith("7 tokens")


def test_info_summarises_a_checkpoint(capsys):
    from safetensors import safe_open

    path = golden("masked_lm")
    with safe_open(str(path / "model.safetensors"), framework="numpy") as f:
        count = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    code, out, _ = roberta(capsys, "info", str(path), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["parameters"] == count
    assert summary["architecture"] == "RobertaForMaskedLM" and "masked_lm" in summary["heads"]
    assert summary["formats"] == {"safetensors": ["model.safetensors"], "bin": ["pytorch_model.bin"],
                                  "h5": ["tf_model.h5"], "msgpack": ["flax_model.msgpack"]}
    assert summary["config"]["num_hidden_layers"] == 2 and summary["tokenizer"] is None
    code, out, _ = roberta(capsys, "info", str(path))
    assert code == 0 and f"parameters   {count:,} (float32 {count:,})" in out
    code, _, err = roberta(capsys, "info", str(path / "missing"))
    assert code == 2 and "no such checkpoint directory" in err


def test_convert_command_and_its_errors(capsys, tmp_path):
    src = golden("masked_lm")
    code, out, _ = roberta(capsys, "convert", str(src), str(tmp_path / "h5"), "--to", "h5", "--from", "safetensors", "--no-verify")
    assert code == 0 and re.match(r"wrote .*h5 \(h5, 20,206 parameters: config.json, io.npz, tf_model.h5\)", out)
    code, _, err = roberta(capsys, "convert", str(src), str(tmp_path / "h5"), "--to", "msgpack", "--no-verify")
    assert code == 2 and "exists; pass overwrite=True (--overwrite) to replace it" in err
    code, _, err = roberta(capsys, "convert", str(src), str(tmp_path / "x"), "--to", "onnx")
    assert code == 2 and "invalid choice: 'onnx'" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = roberta(capsys, "convert", str(empty), str(tmp_path / "x"))
    assert code == 2 and "is not a checkpoint" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "h5"]


needs_pt = pytest.mark.skipif(not runtime.available("pt"), reason="the pt backend is not installed")


def sapiens_checkpoint() -> str:
    spec = importlib.util.find_spec("sapiens")
    if spec is None or spec.origin is None:
        pytest.skip("sapiens==1.0.5 is not installed (`make venv` installs it with --no-deps)")
    return str(spec.origin.rsplit("/", 1)[0] + "/models/v1/checkpoint_vh.pt")


@needs_pt
def test_fill_mask_on_an_imported_fairseq_model(capsys, tmp_path):
    model = sapiens_checkpoint()
    code, out, _ = roberta(capsys, "convert", model, str(tmp_path / "vh"), "--from", "fairseq", "--no-verify")
    assert code == 0, out
    # The sapiens README: predict_masked('**QLV*SGVEV...', 'H') == 'QVQLVQSGVEV...' (* marks a residue to infill).
    masked = "**QLV*SGVEVKKPGASVKVSCKASGYTFTNYYMYWVRQAPGQGLEWMGGINPSNGGTNFNEKFKNRVTLTTDSSTTTAYMELKSLQFDDTAVYYCARRDYRFDMGFDYWGQGTTVTVSS"
    filled = "QVQLVQSGVEVKKPGASVKVSCKASGYTFTNYYMYWVRQAPGQGLEWMGGINPSNGGTNFNEKFKNRVTLTTDSSTTTAYMELKSLQFDDTAVYYCARRDYRFDMGFDYWGQGTTVTVSS"
    code, out, _ = roberta(capsys, "fill-mask", str(tmp_path / "vh"), masked.replace("*", "<mask>"), "--backend", "pt", "--top-k", "2")
    assert code == 0
    assert out.rstrip().endswith(f"best: {filled}")
    assert out.count("mask ") == 3 and len(re.findall(r"^  0\.\d{4}  ", out, flags=re.M)) == 6
    code, out, _ = roberta(capsys, "tokenize", str(tmp_path / "vh"), "QV<mask>", "--json")
    assert json.loads(out)["tokens"] == ["<s>", "Q", "V", "<mask>", "</s>"]


@needs_pt
def test_fill_mask_errors_say_what_to_do(capsys, tmp_path):
    tokenizer = shared_data("roberta-base-tokenizer")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(golden("masked_lm"), ckpt)
    code, _, err = roberta(capsys, "fill-mask", str(ckpt), "Paris is <mask>.")
    assert code == 2 and "has no tokenizer files" in err
    # roberta-base's tokenizer with a 100-token model: ids beyond the model's vocabulary.
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(tokenizer / name, ckpt / name)
    code, _, err = roberta(capsys, "fill-mask", str(ckpt), "Paris is the capital of <mask>.")
    assert code == 2 and "outside the model's vocabulary of 100; the tokenizer files do not belong" in err
    ckpt = word_level_checkpoint(tmp_path, "masked_lm", mask=True)  # ids 4..98 for w4..w98, <mask> 99
    code, _, err = roberta(capsys, "fill-mask", str(ckpt), "w5 w6 w7")
    assert code == 2 and "the text has no <mask>; put <mask> where a token should be predicted" in err
    code, _, err = roberta(capsys, "fill-mask", str(ckpt), "<mask> " + "w5 " * 80)
    assert code == 2 and "the input is 83 tokens long; this model reads at most 64" in err
    code, _, err = roberta(capsys, "fill-mask", str(ckpt), "w5 <mask>", "--top-k", "0")
    assert code == 2 and "top_k must be a positive integer, got 0" in err
    code, _, err = roberta(capsys, "fill-mask", str(ckpt), "w5 <mask>", "--backend", "mxnet")
    assert code == 2 and "invalid choice: 'mxnet'" in err
    code, out, _ = roberta(capsys, "fill-mask", str(ckpt), "w5 <mask> w7", "--backend", "pt", "--top-k", "3")
    assert code == 0 and out.startswith("mask 1 of 1 (token 2):") and len(out.splitlines()) == 4
    no_mask = word_level_checkpoint(tmp_path / "plain", "masked_lm")
    code, _, err = roberta(capsys, "fill-mask", str(no_mask), "w5 <mask>")
    assert code == 2 and "has no mask token" in err


@needs_pt
def test_fill_mask_with_a_byte_level_bpe_tokenizer_matches_the_reference(capsys, tmp_path):
    from roberta_core import reference
    from roberta_core import checkpoint
    from roberta_core.tokenization_base import bytes_to_unicode
    from tests.helpers import random_state, tiny_config

    # 4 specials, the 256 byte symbols, <mask>: a byte-level BPE without merges reads characters.
    symbols = ["<s>", "<pad>", "</s>", "<unk>", *bytes_to_unicode().values(), "<mask>"]
    config = tiny_config(vocab_size=len(symbols), architectures=["RobertaForMaskedLM"])
    state = random_state(config, "masked_lm", seed=5)
    ckpt = tmp_path / "bpe"
    checkpoint.save_state_dict(state, ckpt, format="safetensors", architecture="RobertaForMaskedLM")
    config.save_pretrained(ckpt)
    (ckpt / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}))
    (ckpt / "merges.txt").write_text("#version: 0.2\n")
    code, out, _ = roberta(capsys, "fill-mask", str(ckpt), "ab <mask>c", "--backend", "pt", "--top-k", "4", "--json")
    assert code == 0
    result = json.loads(out)
    index = {s: i for i, s in enumerate(symbols)}
    ids = np.array([[0, index["a"], index["b"], index["<mask>"], index["c"], 2]])  # <mask> takes the space before it
    row = reference.forward(config, state, "masked_lm", input_ids=ids)["logits"][0, 3]
    probs = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
    (mask,) = result["masks"]
    assert mask["position"] == 3
    assert [c["token"] for c in mask["candidates"]] == list(np.argsort(-probs)[:4])
    np.testing.assert_allclose([c["score"] for c in mask["candidates"]], np.sort(probs)[::-1][:4], rtol=0, atol=1e-6)
    byte_of = {v: k for k, v in bytes_to_unicode().items()}
    for c in mask["candidates"]:  # each candidate fills the mask: its byte (or special token) between "ab" and "c"
        symbol = symbols[c["token"]]
        filling = bytes([byte_of[symbol]]).decode("utf-8", errors="replace") if symbol in byte_of else symbol
        assert c["sequence"] == f"ab{filling}c", (symbol, c["sequence"])


def word_level_checkpoint(tmp_path, head: str, mask: bool = False):
    """The golden checkpoint of `head` with a word-level tokenizer: 'w4' .. 'w99' are ids 4..99
    (with `mask`, id 99 is `<mask>` instead)."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors

    ckpt = tmp_path / head
    shutil.copytree(golden(head), ckpt)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{f"w{i}": i for i in range(4, 99)}}
    vocab["<mask>" if mask else "w99"] = 99
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    if mask:
        tokenizer.add_special_tokens([AddedToken("<mask>", special=True, normalized=False)])
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer.save(str(ckpt / "tokenizer.json"))
    return ckpt


@needs_pt
def test_classify_gives_the_reference_probabilities(capsys, tmp_path):
    from roberta_core import reference
    from roberta_core.checkpoint import load_state_dict
    from roberta_core.config import RobertaConfig

    ckpt = word_level_checkpoint(tmp_path, "sequence_classification")
    code, out, _ = roberta(capsys, "classify", str(ckpt), "w5 w17 w42", "--pair", "w9", "--backend", "pt", "--json")
    assert code == 0
    result = json.loads(out)
    config = RobertaConfig.from_pretrained(ckpt)
    ids = np.array([[0, 5, 17, 42, 2, 2, 9, 2]])
    logits = reference.forward(config, load_state_dict(ckpt / "model.safetensors"), "sequence_classification", input_ids=ids)["logits"][0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    want = sorted(((config.id2label[i], p) for i, p in enumerate(probs)), key=lambda x: -x[1])
    assert [item["label"] for item in result["labels"]] == [label for label, _ in want]
    np.testing.assert_allclose([item["score"] for item in result["labels"]], [p for _, p in want], rtol=0, atol=1e-6)
    assert result["problem_type"] == "single_label_classification"
    code, out, _ = roberta(capsys, "classify", str(ckpt), "w5 w17 w42", "--backend", "pt")
    assert code == 0 and len(out.splitlines()) == config.num_labels and "LABEL_" in out

    mlm = word_level_checkpoint(tmp_path, "masked_lm")
    code, _, err = roberta(capsys, "classify", str(mlm), "w5", "--backend", "pt")
    assert code == 2 and "has no sequence-classification head (its weights serve: causal_lm, masked_lm)" in err


def test_subcommands_import_no_framework_until_they_run():
    """`roberta --help`, tokenize and info must work without torch, TensorFlow or JAX."""
    import subprocess
    import sys

    code = (
        "import sys; from roberta_core import cli; cli.build_parser(); "
        "import roberta_core.conversion, roberta_core.fairseq, roberta_core.commands.info, roberta_core.commands.tokenize_text; "
        "bad = [m for m in ('torch', 'tensorflow', 'jax', 'flax', 'keras', 'roberta_pt', 'roberta_tf', 'roberta_flax') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(HEADS)  # the weights table is importable alongside


@needs_pt
def test_parity_prints_the_table_and_fails_on_a_wrong_backend(capsys, monkeypatch):
    from roberta_core.parity import adapters
    from roberta_pt.adapter import Adapter
    code, out, _ = roberta(capsys, "parity", "--backends", "pt", "--cases", "act_gelu,model_no_padding")
    assert code == 0, out
    assert re.search(r"^\| act_gelu \| pt \| [0-9.e-]+ \| pass \|$", out, flags=re.M) and "2/2 passed" in out

    class Skewed(Adapter):
        """PyTorch with every weight 1% off: the suite must notice."""

        def load(self, model, state):
            super().load(model, {k: v * np.float32(1.01) for k, v in state.items()})

    monkeypatch.setattr(adapters, "get", lambda names, device="cpu": [Skewed(device)])
    code, out, _ = roberta(capsys, "parity", "--backends", "pt", "--cases", "act_gelu")
    assert code == 1 and "| act_gelu | pt |" in out and "FAIL" in out

    code, _, err = roberta(capsys, "parity", str(golden("masked_lm")), "--cases", "act_gelu")
    assert code == 2 and "--cases selects built-in cases" in err
    code, _, err = roberta(capsys, "parity", "--cases", "no_such_case", "--backends", "pt")
    assert code == 2 and "unknown case(s) no_such_case" in err
