"""roberta_core.fairseq: fairseq RoBERTa checkpoints (`model.pt` + `dict.txt`) into the canonical
layout, and the real `sapiens` models reproducing what their package publishes.

Oracles: a NumPy transcription of fairseq's RoBERTa forward (post-LayerNorm encoder, scaled
queries, learned positions offset by the padding index, tied LM head) run on the fairseq-named
weights, against the float64 reference on the imported canonical weights; fairseq's published
naming; and, for sapiens, the numbers and sequences in the wheel's README (its METADATA).
Synthetic checkpoints are written by torch.save itself, in both the zip and the legacy format.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from roberta_core import checkpoint, fairseq, runtime
from roberta_core.checkpoint import CheckpointFormatError, UnsafePickleError
from roberta_core.commands.fill_mask import fill_mask
from roberta_core.conversion import convert

H, LAYERS, HEADS, FFN, POSITIONS = 32, 2, 4, 37, 66
AMINO = list("ACDEFGHIKLMNPQRSTVWY")


def fairseq_args(**overrides) -> argparse.Namespace:
    values = dict(
        arch="roberta_base", task="masked_lm", encoder_layers=LAYERS, encoder_embed_dim=H,
        encoder_ffn_embed_dim=FFN, encoder_attention_heads=HEADS, activation_fn="gelu",
        pooler_activation_fn="tanh", dropout=0.1, attention_dropout=0.1, pooler_dropout=0.0,
        max_positions=POSITIONS - 2, untie_weights_roberta=False, encoder_layers_to_keep=None,
    )
    values.update(overrides)
    return argparse.Namespace(**values)


def fairseq_state(vocab: int, prefix: str = "decoder", seed: int = 0, classification_heads=()) -> dict[str, np.ndarray]:
    """Random weights under fairseq 0.9's names (the sapiens era), LM head tied."""
    rng = np.random.default_rng(seed)
    P = f"{prefix}.sentence_encoder."
    shapes = {P + "embed_tokens.weight": (vocab, H), P + "embed_positions.weight": (POSITIONS, H),
              P + "emb_layer_norm.weight": (H,), P + "emb_layer_norm.bias": (H,)}
    for i in range(LAYERS):
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{P}layers.{i}.self_attn.{proj}.weight"] = (H, H)
            shapes[f"{P}layers.{i}.self_attn.{proj}.bias"] = (H,)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            shapes[f"{P}layers.{i}.{norm}.weight"] = (H,)
            shapes[f"{P}layers.{i}.{norm}.bias"] = (H,)
        shapes.update({f"{P}layers.{i}.fc1.weight": (FFN, H), f"{P}layers.{i}.fc1.bias": (FFN,),
                       f"{P}layers.{i}.fc2.weight": (H, FFN), f"{P}layers.{i}.fc2.bias": (H,)})
    shapes.update({f"{prefix}.lm_head.dense.weight": (H, H), f"{prefix}.lm_head.dense.bias": (H,),
                   f"{prefix}.lm_head.layer_norm.weight": (H,), f"{prefix}.lm_head.layer_norm.bias": (H,),
                   f"{prefix}.lm_head.bias": (vocab,)})
    for name, labels in classification_heads:
        shapes.update({f"classification_heads.{name}.dense.weight": (H, H), f"classification_heads.{name}.dense.bias": (H,),
                       f"classification_heads.{name}.out_proj.weight": (labels, H),
                       f"classification_heads.{name}.out_proj.bias": (labels,)})
    state = {}
    for key, shape in shapes.items():
        base = 1.0 if "norm" in key and key.endswith(".weight") else 0.0
        state[key] = (base + 0.2 * rng.standard_normal(shape)).astype(np.float32)
    state[P + "embed_positions.weight"][1] = 0  # the padding row
    return state


def write_checkpoint(folder: Path, state, args, *, legacy: bool, symbols=AMINO, tie=True, extra=None) -> Path:
    """model.pt written by torch.save as fairseq wrote it (args, model, optimizer history, extra
    state), with dict.txt beside it."""
    torch = pytest.importorskip("torch", reason="torch.save writes the synthetic fairseq checkpoints")
    folder.mkdir(parents=True, exist_ok=True)
    model = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    prefix = next(k for k in state if k.endswith("embed_tokens.weight")).split(".")[0]
    if tie:
        model[f"{prefix}.lm_head.weight"] = model[f"{prefix}.sentence_encoder.embed_tokens.weight"]  # one tensor
    model[f"{prefix}.sentence_encoder.version"] = torch.tensor([2.0])
    obj = {"args": args, "model": model, "optimizer_history": [{"num_updates": 10}],
           "extra_state": {"epoch": 3, "val_loss": torch.tensor(1.5, dtype=torch.float64)},
           "last_optimizer_state": {"state": {0: {"momentum_buffer": torch.zeros(7)}}}, **(extra or {})}
    torch.save(obj, folder / "model.pt", _use_new_zipfile_serialization=not legacy)
    (folder / "dict.txt").write_text("".join(f"{s} {100 - i}\n" for i, s in enumerate(symbols)))
    return folder / "model.pt"


def vocab_size(symbols=AMINO) -> int:
    return 4 + len(symbols) + 1


# ---------------------------------------------------------------------------- fairseq's forward, in NumPy


def _ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def fairseq_logits(state, ids, prefix="decoder"):
    """fairseq 0.9 RobertaModel.forward(ids) for an unpadded batch, float64, on fairseq names."""
    s = {k: v.astype(np.float64) for k, v in state.items()}
    P = f"{prefix}.sentence_encoder."
    lin = lambda x, name: x @ s[name + ".weight"].T + s[name + ".bias"]  # noqa: E731
    positions = np.cumsum(ids != 1, axis=1) * (ids != 1) + 1  # utils.make_positions, padding_idx 1
    x = s[P + "embed_tokens.weight"][ids] + s[P + "embed_positions.weight"][positions]
    x = _ln(x, s[P + "emb_layer_norm.weight"], s[P + "emb_layer_norm.bias"])
    B, T, _ = x.shape
    d = H // HEADS
    for i in range(LAYERS):
        L = f"{P}layers.{i}."
        split = lambda t: t.reshape(B, T, HEADS, d).transpose(0, 2, 1, 3)  # noqa: E731
        q = split(lin(x, L + "self_attn.q_proj") * d ** -0.5)
        k, v = split(lin(x, L + "self_attn.k_proj")), split(lin(x, L + "self_attn.v_proj"))
        scores = q @ k.transpose(0, 1, 3, 2)
        p = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (p / p.sum(-1, keepdims=True)) @ v
        x = _ln(x + lin(attn.transpose(0, 2, 1, 3).reshape(B, T, H), L + "self_attn.out_proj"),
                s[L + "self_attn_layer_norm.weight"], s[L + "self_attn_layer_norm.bias"])
        x = _ln(x + lin(_gelu(lin(x, L + "fc1")), L + "fc2"), s[L + "final_layer_norm.weight"], s[L + "final_layer_norm.bias"])
    x = _ln(_gelu(lin(x, f"{prefix}.lm_head.dense")), s[f"{prefix}.lm_head.layer_norm.weight"], s[f"{prefix}.lm_head.layer_norm.bias"])
    return x @ s[P + "embed_tokens.weight"].T + s[f"{prefix}.lm_head.bias"]


# ---------------------------------------------------------------------------- the import


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-pickle", "zip"])
@pytest.mark.parametrize("prefix", ["decoder", "encoder"], ids=["fairseq-0.9-names", "fairseq-0.10-names"])
def test_import_renames_and_computes_what_fairseq_computes(tmp_path, legacy, prefix):
    from roberta_core import reference
    state = fairseq_state(vocab_size(), prefix=prefix)
    path = write_checkpoint(tmp_path, state, fairseq_args(), legacy=legacy)
    imported = fairseq.import_checkpoint(path)
    P = f"{prefix}.sentence_encoder."
    # fairseq -> Hugging Face names, as transformers' own conversion script maps them.
    expected = {
        "roberta.embeddings.word_embeddings.weight": P + "embed_tokens.weight",
        "roberta.embeddings.position_embeddings.weight": P + "embed_positions.weight",
        "roberta.embeddings.LayerNorm.bias": P + "emb_layer_norm.bias",
        "roberta.encoder.layer.1.attention.self.query.weight": P + "layers.1.self_attn.q_proj.weight",
        "roberta.encoder.layer.1.attention.self.key.bias": P + "layers.1.self_attn.k_proj.bias",
        "roberta.encoder.layer.0.attention.self.value.weight": P + "layers.0.self_attn.v_proj.weight",
        "roberta.encoder.layer.0.attention.output.dense.weight": P + "layers.0.self_attn.out_proj.weight",
        "roberta.encoder.layer.0.attention.output.LayerNorm.weight": P + "layers.0.self_attn_layer_norm.weight",
        "roberta.encoder.layer.1.intermediate.dense.weight": P + "layers.1.fc1.weight",
        "roberta.encoder.layer.1.output.dense.bias": P + "layers.1.fc2.bias",
        "roberta.encoder.layer.1.output.LayerNorm.bias": P + "layers.1.final_layer_norm.bias",
        "lm_head.dense.weight": f"{prefix}.lm_head.dense.weight",
        "lm_head.layer_norm.weight": f"{prefix}.lm_head.layer_norm.weight",
        "lm_head.bias": f"{prefix}.lm_head.bias",
    }
    for ours, theirs in expected.items():
        assert imported.state[ours].tobytes() == state[theirs].tobytes(), ours
    token_types = imported.state["roberta.embeddings.token_type_embeddings.weight"]
    assert token_types.shape == (1, H) and not token_types.any()
    assert "lm_head.decoder.weight" not in imported.state  # tied to the word embeddings
    c = imported.config
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (25, H, LAYERS, HEADS, FFN)
    assert (c.max_position_embeddings, c.type_vocab_size, c.layer_norm_eps, c.pad_token_id) == (POSITIONS, 1, 1e-5, 1)
    assert c.tie_word_embeddings and c.architectures == ["RobertaForMaskedLM"]
    assert imported.symbols == ["<s>", "<pad>", "</s>", "<unk>", *AMINO, "<mask>"]

    ids = np.array([[0, 7, 12, 4, 23, 24, 9, 2], [0, 5, 5, 24, 17, 20, 11, 2]])
    got = reference.forward(c, imported.state, "masked_lm", input_ids=ids)["logits"]
    np.testing.assert_allclose(got, fairseq_logits(state, ids, prefix), rtol=0, atol=1e-9)


def test_untied_classification_and_in_proj_layouts(tmp_path):
    state = fairseq_state(vocab_size(), classification_heads=[("mnli", 3)])
    state["decoder.lm_head.weight"] = np.random.default_rng(1).standard_normal((vocab_size(), H)).astype(np.float32)
    # fairseq < 0.7 kept q, k, v as one (3H, H) in_proj.
    P = "decoder.sentence_encoder.layers.0.self_attn."
    q, k, v = (state.pop(f"{P}{p}_proj.weight") for p in "qkv")
    state[P + "in_proj_weight"] = np.concatenate([q, k, v])
    qb, kb, vb = (state.pop(f"{P}{p}_proj.bias") for p in "qkv")
    state[P + "in_proj_bias"] = np.concatenate([qb, kb, vb])
    path = write_checkpoint(tmp_path, state, fairseq_args(untie_weights_roberta=True), legacy=True, tie=False)
    imported = fairseq.import_checkpoint(path)
    assert not imported.config.tie_word_embeddings
    assert imported.state["lm_head.decoder.weight"].tobytes() == state["decoder.lm_head.weight"].tobytes()
    assert imported.config.num_labels == 3 and imported.config.architectures == ["RobertaForSequenceClassification"]
    assert imported.state["classifier.out_proj.weight"].tobytes() == state["classification_heads.mnli.out_proj.weight"].tobytes()
    assert imported.state["roberta.encoder.layer.0.attention.self.key.weight"].tobytes() == k.tobytes()
    assert imported.state["roberta.encoder.layer.0.attention.self.value.bias"].tobytes() == vb.tobytes()


def test_several_classification_heads_need_a_choice(tmp_path):
    state = fairseq_state(vocab_size(), classification_heads=[("mnli", 3), ("sst2", 2)])
    path = write_checkpoint(tmp_path, state, fairseq_args(), legacy=False)
    with pytest.raises(ValueError, match=r"2 classification heads \(mnli, sst2\); choose one with classification_head"):
        fairseq.import_checkpoint(path)
    with pytest.raises(ValueError, match="classification_head='qnli' is not in the checkpoint; it has mnli, sst2"):
        fairseq.import_checkpoint(path, classification_head="qnli")
    imported = fairseq.import_checkpoint(path, classification_head="sst2")
    assert imported.state["classifier.dense.bias"].tobytes() == state["classification_heads.sst2.dense.bias"].tobytes()


def test_converted_checkpoint_has_a_tokenizer_that_reads_text_as_fairseq_did(tmp_path):
    path = write_checkpoint(tmp_path / "fs", fairseq_state(vocab_size()), fairseq_args(), legacy=True)
    result = convert(path, tmp_path / "ckpt", from_format="fairseq", to="safetensors", verify=False)
    assert sorted(result.files) == ["config.json", "model.safetensors", "special_tokens_map.json",
                                    "tokenizer.json", "tokenizer_config.json"]
    from roberta_core.commands import load_tokenizer

    tokenizer = load_tokenizer(tmp_path / "ckpt")
    index = {s: i + 4 for i, s in enumerate(AMINO)}  # dict.txt order after the four specials
    for text in ("QVQ<mask>V", "Q V Q <mask> V"):  # fairseq read space-separated symbols
        assert tokenizer(text)["input_ids"] == [0, index["Q"], index["V"], index["Q"], 24, index["V"], 2]
    assert tokenizer("QB")["input_ids"] == [0, index["Q"], 3, 2]  # unknown residue -> <unk>
    assert tokenizer.decode([0, index["Q"], index["V"], 2], skip_special_tokens=True) == "QV"


def test_word_and_gpt2_bpe_dictionaries(tmp_path):
    words = ["hello", "world", "the"]
    path = write_checkpoint(tmp_path / "words", fairseq_state(vocab_size(words)), fairseq_args(), legacy=True, symbols=words)
    convert(path, tmp_path / "words-ckpt", from_format="fairseq", verify=False)
    from roberta_core.commands import load_tokenizer

    assert load_tokenizer(tmp_path / "words-ckpt")("hello the world")["input_ids"] == [0, 4, 6, 5, 2]

    bpe = ["262", "995", "50256"]  # GPT-2 BPE ids, as roberta.base's dict.txt holds them
    path = write_checkpoint(tmp_path / "bpe", fairseq_state(vocab_size(bpe)), fairseq_args(), legacy=True, symbols=bpe)
    with pytest.warns(UserWarning, match="GPT-2 BPE ids; without gpt2_encoder/gpt2_merges"):
        imported = fairseq.import_checkpoint(path)
    assert imported.tokenizer_files == {}
    encoder = tmp_path / "encoder.json"
    encoder.write_text(json.dumps({"Ġthe": 262, "Ġworld": 995, "<|endoftext|>": 50256}))
    merges = tmp_path / "vocab.bpe"
    merges.write_text("#version: 0.2\nĠ t\n")
    imported = fairseq.import_checkpoint(path, gpt2_encoder=encoder, gpt2_merges=merges)
    vocab = json.loads(imported.tokenizer_files["vocab.json"])
    assert vocab == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "Ġthe": 4, "Ġworld": 5, "<|endoftext|>": 6, "<mask>": 7}
    assert imported.tokenizer_files["merges.txt"] == merges.read_text()


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, message", [
    (dict(arch="transformer_lm"), "arch='transformer_lm' is not supported"),
    (dict(activation_fn="relu"), "activation_fn='relu' is not supported"),
    (dict(no_token_positional_embeddings=True), "no_token_positional_embeddings=True is not supported"),
    (dict(encoder_layers_to_keep="0"), "encoder_layers_to_keep='0' is not supported"),
    (dict(encoder_layers=3), "args.encoder_layers=3 but the weights hold 2 layers"),
    (dict(encoder_attention_heads=5), "hidden_size=32 is not divisible by num_attention_heads=5"),
    (dict(encoder_attention_heads=None), "args lack encoder_attention_heads"),
])
def test_unexpected_architecture_arguments_are_named(tmp_path, change, message):
    path = write_checkpoint(tmp_path, fairseq_state(vocab_size()), fairseq_args(**change), legacy=True)
    with pytest.raises(ValueError, match=re.escape(message)):
        fairseq.import_checkpoint(path)


def test_pre_layernorm_and_foreign_parameters_are_refused(tmp_path):
    state = fairseq_state(vocab_size(), prefix="encoder")
    for key in [k for k in state if "emb_layer_norm" in k]:  # fairseq 0.10+ names
        state[key.replace("emb_layer_norm", "layernorm_embedding")] = state.pop(key)
    path = write_checkpoint(tmp_path / "preln", state, fairseq_args(encoder_normalize_before=True), legacy=False)
    with pytest.raises(ValueError, match="encoder_normalize_before=True is not supported"):
        fairseq.import_checkpoint(path)
    state = fairseq_state(vocab_size(), classification_heads=[("mnli", 3)])
    path = write_checkpoint(tmp_path / "pooler", state, fairseq_args(pooler_activation_fn="relu"), legacy=True)
    with pytest.raises(ValueError, match="pooler_activation_fn='relu' is not supported"):
        fairseq.import_checkpoint(path)
    state = fairseq_state(vocab_size())
    state["decoder.sentence_encoder.layers.0.adapter.down.weight"] = np.zeros((4, H), np.float32)
    path = write_checkpoint(tmp_path / "adapter", state, fairseq_args(), legacy=True)
    with pytest.raises(ValueError, match="parameters a RoBERTa does not have: decoder.sentence_encoder.layers.0.adapter"):
        fairseq.import_checkpoint(path)


def test_the_pickle_may_hold_argparse_namespace_and_nothing_else(tmp_path):
    path = write_checkpoint(tmp_path, fairseq_state(vocab_size()), fairseq_args(), legacy=True,
                            extra={"saved_on": datetime.date(2020, 1, 1)})
    with pytest.raises(UnsafePickleError, match="datetime.date"):
        fairseq.import_checkpoint(path)
    # The plain state-dict reader of pytorch_model.bin files does not take a Namespace either.
    zipped = write_checkpoint(tmp_path / "zip", fairseq_state(vocab_size()), fairseq_args(), legacy=False)
    with pytest.raises(UnsafePickleError, match="argparse.Namespace"):
        checkpoint.load_state_dict(zipped)


def test_broken_files_and_dictionaries_are_named(tmp_path):
    path = write_checkpoint(tmp_path, fairseq_state(vocab_size()), fairseq_args(), legacy=True)
    data = path.read_bytes()
    truncated = tmp_path / "cut" / "model.pt"
    truncated.parent.mkdir()
    truncated.write_bytes(data[: len(data) // 2])
    shutil.copyfile(tmp_path / "dict.txt", truncated.parent / "dict.txt")
    with pytest.raises(CheckpointFormatError, match="truncated or corrupt"):
        fairseq.import_checkpoint(truncated)
    not_fairseq = tmp_path / "sd" / "model.pt"
    checkpoint.write_torch_bin({"x": np.zeros(2, np.float32)}, not_fairseq)
    with pytest.raises(CheckpointFormatError, match="not a fairseq checkpoint"):
        fairseq.read_checkpoint(not_fairseq)

    (tmp_path / "dict.txt").write_text("".join(f"{s} 1\n" for s in AMINO[:-1]))
    with pytest.raises(ValueError, match="gives 24 symbols .* embeddings have 25 rows; the dictionary does not belong"):
        fairseq.import_checkpoint(path)
    (tmp_path / "dict.txt").write_text("A 1\nA 2\n")
    with pytest.raises(ValueError, match="dict.txt:2: duplicate symbol 'A'"):
        fairseq.import_checkpoint(path)
    (tmp_path / "dict.txt").write_text("A\n")
    with pytest.raises(ValueError, match=r"dict.txt:1: expected '<symbol> <count>'"):
        fairseq.import_checkpoint(path)
    (tmp_path / "dict.txt").unlink()
    with pytest.raises(FileNotFoundError, match="no dict.txt beside model.pt"):
        fairseq.import_checkpoint(path)
    two = tmp_path / "two"
    two.mkdir()
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        shutil.copyfile(path, two / name)
    with pytest.raises(FileNotFoundError, match="expected one fairseq checkpoint .* found checkpoint_best.pt, checkpoint_last.pt"):
        fairseq.import_checkpoint(two)


# ---------------------------------------------------------------------------- the real sapiens models


def sapiens_models() -> Path:
    spec = importlib.util.find_spec("sapiens")  # never imported: it imports fairseq
    if spec is None or spec.origin is None:
        pytest.skip("sapiens==1.0.5 is not installed (`make venv` installs it with --no-deps)")
    return Path(spec.origin).parent / "models" / "v1"


def published() -> dict:
    """The examples of the sapiens README (its wheel METADATA): infilling input/output, the residue
    scores of the first five positions, and the residue-embedding shape."""
    text = importlib.metadata.metadata("sapiens").get_payload()
    infill = re.search(r"predict_masked\(\s*'([^']+)',\s*'H'\s*\)\s*print\(best\)\s*# (\w+)", text)
    scores = re.findall(r"^# (\d)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\.\.\.", text, flags=re.M)
    columns = re.search(r"^#\s+(A)\s+(C)\s+(D)\s+(E)\s+\.\.\.", text, flags=re.M)
    embed = re.search(r"predict_residue_embedding\(\s*'([^']+)',\s*'H',\s*layer=None\s*\).*?# \((\d+), (\d+), (\d+)\)", text, re.S)
    assert infill and len(scores) == 5 and columns and embed, "the sapiens README no longer has its examples"
    return {
        "masked": infill.group(1), "filled": infill.group(2),
        "columns": list(columns.groups()), "scores": np.array([[float(v) for v in row[1:]] for row in scores]),
        "embed_sequence": embed.group(1), "embed_shape": tuple(int(embed.group(i)) for i in (2, 3, 4)),
    }


@pytest.fixture(scope="module")
def sapiens_vh(tmp_path_factory):
    """VH imported through `--from fairseq`, then converted to each backend's native format."""
    models = sapiens_models()
    root = tmp_path_factory.mktemp("sapiens")
    convert(models / "checkpoint_vh.pt", root / "pt", from_format="fairseq", verify=False)
    convert(root / "pt", root / "tf", to="h5", verify=False)
    convert(root / "tf", root / "flax", to="msgpack", verify=False)
    return root


@pytest.mark.parametrize("backend", ["pt", "tf", "flax"])
def test_sapiens_vh_reproduces_the_published_infilling_and_scores(sapiens_vh, backend):
    if not runtime.available(backend):
        pytest.skip(f"the {backend} backend is not installed")
    ref = published()
    text = re.sub(r"[*X]", "<mask>", ref["masked"])  # sapiens marks residues to infill with * or X
    result = fill_mask(sapiens_vh / backend, text, backend=backend, top_k=25)
    assert result["best"] == ref["filled"]
    # Published: softmax over the whole vocabulary, rows = residues (0 and 1 masked), to 6 decimals.
    first_two = np.array([[next(c["score"] for c in mask["candidates"] if c["token_str"] == a) for a in ref["columns"]]
                          for mask in result["masks"][:2]])
    np.testing.assert_allclose(first_two, ref["scores"][:2], rtol=0, atol=1e-6)
    # Rows 2..4 are scores of unmasked residues: the full output of the same forward pass.
    from roberta_core.commands import encode, load_tokenizer
    from roberta_core.config import RobertaConfig

    config = RobertaConfig.from_pretrained(sapiens_vh / backend)
    tokenizer = load_tokenizer(sapiens_vh / backend)
    model = runtime.load_model(backend, "masked_lm", sapiens_vh / backend)
    logits = runtime.run_model(backend, model, encode(tokenizer, config, text))["logits"][0, 1:-1].astype(np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    columns = [tokenizer(a)["input_ids"][1] for a in ref["columns"]]
    np.testing.assert_allclose(probs[:5][:, columns], ref["scores"], rtol=0, atol=1e-6)


def test_sapiens_vh_residue_embeddings_have_the_published_shape(sapiens_vh):
    if not runtime.available("pt"):
        pytest.skip("the pt backend is not installed")
    from roberta_core.commands import encode, load_tokenizer
    from roberta_core.config import RobertaConfig

    ref = published()
    config = RobertaConfig.from_pretrained(sapiens_vh / "pt")
    batch = encode(load_tokenizer(sapiens_vh / "pt"), config, ref["embed_sequence"])
    with pytest.warns(UserWarning, match="unused by RobertaModel"):  # the LM head stays behind
        model = runtime.load_model("pt", "model", sapiens_vh / "pt")
    out = runtime.run_model("pt", model, {**batch, "output_hidden_states": True})
    states = np.stack([h[0, 1:-1] for h in out["hidden_states"]])  # sapiens strips <s> and </s>
    assert states.shape == ref["embed_shape"]


def test_sapiens_vl_imports_and_predicts_what_the_reference_computes(tmp_path):
    """No numbers are published for the light-chain model: its import is checked against the
    float64 reference run on the same canonical weights."""
    from roberta_core import reference
    if not runtime.available("pt"):
        pytest.skip("the pt backend is not installed")
    models = sapiens_models()
    convert(models / "checkpoint_vl.pt", tmp_path / "vl", from_format="fairseq", verify=False)
    light = "DIQMTQSPSSLSASVGDRVTITC<mask>ASQSISSYLNWYQQKPGKAPKLLIYAASSLQSGVPSRFSGSGSGTDFTLTISSLQPEDFATYYCQQSYSTP<mask>TFGQGTKVEIK"
    result = fill_mask(tmp_path / "vl", light, backend="pt", top_k=3)
    imported = fairseq.import_checkpoint(models / "checkpoint_vl.pt")
    pieces = re.findall(r"<mask>|.", light)  # dict.txt symbols are single residues
    ids = np.array([[0] + [imported.symbols.index(p) for p in pieces] + [2]])
    logits = reference.forward(imported.config, imported.state, "masked_lm", input_ids=ids)["logits"][0]
    for mask in result["masks"]:
        row = logits[mask["position"]]
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        assert [c["token"] for c in mask["candidates"]] == list(np.argsort(-probs)[:3])
        np.testing.assert_allclose([c["score"] for c in mask["candidates"]], np.sort(probs)[::-1][:3], rtol=0, atol=1e-5)
