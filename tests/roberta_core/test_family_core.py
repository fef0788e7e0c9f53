"""The RoBERTa family in the core (issue 15): the float64 reference computes RoBERTa-PreLayerNorm,
checkpoint files of every family member round-trip with their members' names, v4's files load.

Expected values come from outside the code under test: a PreLN forward written here by hand in
NumPy from the state dict, and outputs recorded by transformers 4.57.6 (tests/fixtures/family/).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from roberta_core import checkpoint, cli, conversion, hub, pretrained, reference, runtime
from roberta_core.commands.info import info
from roberta_core.config import RobertaConfig
from tests.helpers import FIXTURES, padded_batch, random_state, tiny_config, with_tied

PRELN = dict(model_type="roberta-prelayernorm")


# ---------------------------------------------------------------------------- a PreLN forward by hand


def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _hand_preln(config, state, ids, mask):
    """RoBERTa-PreLayerNorm's bare model, from Xiong et al. 2020 and v4's module order, written
    without the reference: (last_hidden_state, encoder output before the final LayerNorm, pooled)."""
    s = {k: np.asarray(v, np.float64) for k, v in state.items()}
    eps, pad, n_heads = config.layer_norm_eps, config.pad_token_id, config.num_attention_heads
    real = (ids != pad).astype(np.int64)
    pos = pad + np.cumsum(real, axis=1) * real
    x = (s["embeddings.word_embeddings.weight"][ids] + s["embeddings.position_embeddings.weight"][pos]
         + s["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)])
    x = _ln(x, s["embeddings.LayerNorm.weight"], s["embeddings.LayerNorm.bias"], eps)
    B, T, H = x.shape
    D = H // n_heads
    lin = lambda v, name: v @ s[name + ".weight"].T + s[name + ".bias"]  # noqa: E731
    for i in range(config.num_hidden_layers):
        L = f"encoder.layer.{i}"
        h = _ln(x, s[f"{L}.attention.LayerNorm.weight"], s[f"{L}.attention.LayerNorm.bias"], eps)
        q, k, v = (lin(h, f"{L}.attention.self.{n}").reshape(B, T, n_heads, D) for n in ("query", "key", "value"))
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(D)
        scores = np.where(mask[:, None, None, :] == 1, scores, -1e30)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(B, T, H)
        x = x + lin(ctx, f"{L}.attention.output.dense")
        f = _ln(x, s[f"{L}.intermediate.LayerNorm.weight"], s[f"{L}.intermediate.LayerNorm.bias"], eps)
        x = x + lin(_gelu(lin(f, f"{L}.intermediate.dense")), f"{L}.output.dense")
    before = x
    x = _ln(x, s["LayerNorm.weight"], s["LayerNorm.bias"], eps)
    pooled = np.tanh(lin(x[:, 0], "pooler.dense"))
    return x, before, pooled


def test_reference_preln_matches_a_hand_written_forward():
    config = tiny_config(**PRELN)
    state = random_state(config, "model", seed=3)
    ids, mask = padded_batch(config, lengths=(7, 4, 1))
    want, before, pooled = _hand_preln(config, state, ids, mask)
    out = reference.forward(config, state, "model", input_ids=ids, attention_mask=mask, output_hidden_states=True)
    real = mask.astype(bool)  # padded positions are not compared (their values are arbitrary)
    np.testing.assert_allclose(out["last_hidden_state"][real], want[real], rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["pooler_output"], pooled, rtol=0, atol=1e-10)
    # v4: the encoder's list ends BEFORE the final LayerNorm; last_hidden_state is after it.
    assert len(out["hidden_states"]) == config.num_hidden_layers + 1
    np.testing.assert_allclose(out["hidden_states"][-1][real], before[real], rtol=0, atol=1e-10)
    assert not np.allclose(out["hidden_states"][-1][real], out["last_hidden_state"][real])


def test_reference_preln_heads_read_the_normalised_output():
    """The token-level heads run on last_hidden_state (after the final LayerNorm)."""
    config = tiny_config(**PRELN, num_labels=3)
    ids, mask = padded_batch(config, lengths=(6, 3))

    def lin(s, x, name):
        return x @ np.float64(s[name + ".weight"]).T + s[name + ".bias"]

    reads = {
        "token_classification": lambda s, x: lin(s, x, "classifier"),
        "sequence_classification": lambda s, x: lin(s, np.tanh(lin(s, x[:, 0], "classifier.dense")), "classifier.out_proj"),
        "question_answering": lambda s, x: lin(s, x, "qa_outputs")[..., 0],
    }
    for head, read in reads.items():
        state = random_state(config, head, seed=5)
        base = {k.removeprefix("roberta."): v for k, v in state.items() if k.startswith("roberta.")}
        base.update({"pooler.dense.weight": np.zeros((32, 32)), "pooler.dense.bias": np.zeros(32)})  # unused here
        x, _, _ = _hand_preln(config, base, ids, mask)
        out = reference.forward(config, state, head, input_ids=ids, attention_mask=mask)
        got = out["start_logits"] if head == "question_answering" else out["logits"]
        np.testing.assert_allclose(got, read(state, x), rtol=0, atol=1e-9, err_msg=head)


def test_reference_preln_differs_from_postln():
    """The same weights under the two placements give different outputs (the flag is read)."""
    pre = tiny_config(**PRELN)
    post = tiny_config()
    state = random_state(pre, "model", seed=1)
    for i in range(pre.num_hidden_layers):  # give the post-LN model the LayerNorms it needs
        for part in ("attention.output", "output"):
            state[f"encoder.layer.{i}.{part}.LayerNorm.weight"] = np.ones(32, np.float32)
            state[f"encoder.layer.{i}.{part}.LayerNorm.bias"] = np.zeros(32, np.float32)
    ids, mask = padded_batch(pre)
    a = reference.forward(pre, state, "model", input_ids=ids, attention_mask=mask)["last_hidden_state"]
    b = reference.forward(post, state, "model", input_ids=ids, attention_mask=mask)["last_hidden_state"]
    assert np.abs(a - b).max() > 1e-2


def test_reference_preln_decoder_cache_equals_full_pass():
    """Decoder mode with a cache: the last token's logits equal a full pass's (PreLN keys come from
    the normalised input, so a wrong cache would show)."""
    config = tiny_config(**PRELN, is_decoder=True)
    state = with_tied(config, "causal_lm", random_state(config, "causal_lm", seed=2))
    ids, _ = padded_batch(config, lengths=(6,))
    full = reference.forward(config, state, "causal_lm", input_ids=ids, use_cache=False)["logits"]
    first = reference.forward(config, state, "causal_lm", input_ids=ids[:, :5], use_cache=True)
    step = reference.forward(config, state, "causal_lm", input_ids=ids[:, 5:], past_key_values=first["past_key_values"],
                             use_cache=True)
    np.testing.assert_allclose(step["logits"][:, -1], full[:, -1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("model_type", ["xlm-roberta", "camembert"])
def test_reference_xlmr_and_camembert_are_roberta(model_type):
    config = tiny_config(model_type=model_type)
    state = random_state(config, "model", seed=4)
    ids, mask = padded_batch(config)
    got = reference.forward(config, state, "model", input_ids=ids, attention_mask=mask)
    want = reference.forward(tiny_config(), state, "model", input_ids=ids, attention_mask=mask)
    np.testing.assert_array_equal(got["last_hidden_state"], want["last_hidden_state"])


# ---------------------------------------------------------------------------- checkpoint files of the family

FAMILY = FIXTURES / "family"
FORMATS = ("safetensors", "sharded", "bin", "h5", "msgpack")


def _save(state, folder, fmt, **kwargs):
    if fmt == "sharded":
        return checkpoint.save_state_dict(state, folder, format="safetensors", max_shard_size="4KB", **kwargs)
    return checkpoint.save_state_dict(state, folder, format=fmt, **kwargs)


def _file_names(folder: Path, fmt: str) -> set[str]:
    """The names the file itself holds, read without the library's readers."""
    if fmt in ("safetensors", "sharded"):
        from safetensors import safe_open

        names = set()
        for f in folder.glob("*.safetensors"):
            with safe_open(str(f), framework="numpy") as st:
                names |= set(st.keys())
        return names
    if fmt == "bin":
        import zipfile

        with zipfile.ZipFile(folder / "pytorch_model.bin") as z:
            pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
            text = z.read(pkl).decode("latin-1")
        return {w for w in ("roberta.", "roberta_prelayernorm.") if w in text}
    if fmt == "h5":
        import h5py

        with h5py.File(folder / "tf_model.h5") as f:
            return {n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]}
    import msgpack

    with open(folder / "flax_model.msgpack", "rb") as f:
        return set(msgpack.unpackb(f.read(), ext_hook=lambda code, data: None, strict_map_key=False))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model_type", ["roberta-prelayernorm", "xlm-roberta", "camembert"])
def test_family_round_trip_through_every_format(tmp_path, model_type, fmt):
    """save_pretrained_files -> load_pretrained keeps keys, values, model_type and v4's class name;
    the file itself names the encoder as the member's v4 files do."""
    config = tiny_config(model_type=model_type)
    state = random_state(config, "masked_lm", seed=7)
    if fmt == "sharded":
        pretrained.save_pretrained_files(tmp_path, config, state, "masked_lm", max_shard_size="4KB")
        assert (tmp_path / "model.safetensors.index.json").is_file()
    else:
        pretrained.save_pretrained_files(tmp_path, config, state, "masked_lm", format=fmt)
    back = RobertaConfig.from_pretrained(tmp_path)
    assert back.model_type == model_type
    stem = {"roberta-prelayernorm": "RobertaPreLayerNorm", "xlm-roberta": "XLMRoberta", "camembert": "Camembert"}
    assert back.architectures == [stem[model_type] + "ForMaskedLM"]
    loaded = checkpoint.load_state_dict(tmp_path)
    assert set(loaded) == set(state)  # canonical `roberta.` keys whatever the member
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key], err_msg=key)
    member = "roberta_prelayernorm" if model_type == "roberta-prelayernorm" else "roberta"
    names = _file_names(tmp_path, fmt)
    if fmt in ("safetensors", "sharded"):
        assert any(n.startswith(member + ".") for n in names)
        assert not any(n.startswith("roberta.") for n in names) or member == "roberta"
    elif fmt == "bin":
        assert member + "." in names and (member == "roberta" or "roberta." not in names)
    else:
        assert member in names and (member == "roberta" or "roberta" not in names)


@pytest.mark.parametrize("fmt", FORMATS)
def test_preln_bare_model_round_trip(tmp_path, fmt):
    """The bare PreLN model has no prefix in PyTorch files; its final LayerNorm is `LayerNorm.*`."""
    config = tiny_config(**PRELN)
    state = random_state(config, "model", seed=8)
    assert "LayerNorm.weight" in state
    _save(state, tmp_path, fmt, base_model_prefix="roberta_prelayernorm")
    loaded = checkpoint.load_state_dict(tmp_path)
    assert set(loaded) == set(state)
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key], err_msg=key)


def test_h5_scope_of_family_classes(tmp_path):
    """The TF file's outer scope is Keras' name of v4's TF class of the member."""
    import h5py

    config = tiny_config(model_type="xlm-roberta")
    pretrained.save_pretrained_files(tmp_path, config, random_state(config, "masked_lm"), "masked_lm", format="h5")
    with h5py.File(tmp_path / "tf_model.h5") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["roberta"].attrs["weight_names"]]
    assert names[0].startswith("tfxlm_roberta_for_masked_lm/roberta/")
    pre = tiny_config(**PRELN)
    checkpoint.save_state_dict(random_state(pre, "sequence_classification"), tmp_path, format="h5",
                               base_model_prefix="roberta_prelayernorm")
    with h5py.File(tmp_path / "tf_model.h5") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["roberta_prelayernorm"].attrs["weight_names"]]
    assert names[0].startswith("tf_roberta_pre_layer_norm_for_sequence_classification/roberta_prelayernorm/")


def test_save_state_dict_checks_base_model_prefix(tmp_path):
    state = random_state(tiny_config(), "masked_lm")
    with pytest.raises(ValueError, match="base_model_prefix must be one of"):
        checkpoint.save_state_dict(state, tmp_path, base_model_prefix="bert")
    with pytest.raises(ValueError, match="names its encoder 'roberta'"):
        checkpoint.save_state_dict(state, tmp_path, architecture="XLMRobertaForMaskedLM", base_model_prefix="roberta_prelayernorm")
    # the architecture implies the prefix
    checkpoint.save_state_dict(state, tmp_path, architecture="RobertaPreLayerNormForMaskedLM")
    assert _file_names(tmp_path, "safetensors") >= {"roberta_prelayernorm.embeddings.word_embeddings.weight"}


# ---------------------------------------------------------------------------- files written by transformers 4.57.6


def _v4_outputs(folder: str, head: str, weights_file: str):
    path = FAMILY / folder
    io = np.load(path / "io.npz")
    config = RobertaConfig.from_pretrained(path)
    state = checkpoint.load_state_dict(path / weights_file)
    out = reference.forward(config, state, head, input_ids=io["input_ids"], attention_mask=io["attention_mask"],
                            output_hidden_states=True)
    return config, state, io, out


@pytest.mark.parametrize("weights_file", ["model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"])
def test_v4_preln_masked_lm_files_load_and_match_v4(weights_file):
    config, state, io, out = _v4_outputs("preln_masked_lm", "masked_lm", weights_file)
    assert config.model_type == "roberta-prelayernorm" and config.pre_layer_norm
    assert "roberta.LayerNorm.weight" in state and "roberta.encoder.layer.1.intermediate.LayerNorm.bias" in state
    assert not any(k.startswith("roberta_prelayernorm.") for k in state)
    assert not any("output.LayerNorm" in k for k in state)
    real = io["attention_mask"].astype(bool)
    np.testing.assert_allclose(out["logits"][real], io["pt_logits"][real], rtol=0, atol=2e-5)
    np.testing.assert_allclose(out["hidden_states"][-1][real], io["pt_hidden_last"][real], rtol=0, atol=2e-5)


@pytest.mark.parametrize("weights_file", ["model.safetensors", "tf_model.h5"])
def test_v4_preln_bare_model_files_load_and_match_v4(weights_file):
    config, state, io, out = _v4_outputs("preln_model", "model", weights_file)
    assert "LayerNorm.weight" in state and "pooler.dense.weight" in state
    assert not any(k.startswith(("roberta.", "roberta_prelayernorm.")) for k in state)
    real = io["attention_mask"].astype(bool)
    np.testing.assert_allclose(out["last_hidden_state"][real], io["pt_last_hidden_state"][real], rtol=0, atol=2e-5)
    np.testing.assert_allclose(out["pooler_output"], io["pt_pooler_output"], rtol=0, atol=2e-5)


def test_v4_xlmr_file_keeps_model_type_and_matches_v4():
    config, state, io, out = _v4_outputs("xlmr_sequence_classification", "sequence_classification", "model.safetensors")
    assert config.model_type == "xlm-roberta" and not config.pre_layer_norm
    assert config.architectures == ["XLMRobertaForSequenceClassification"]
    np.testing.assert_allclose(out["logits"], io["pt_logits"], rtol=0, atol=2e-5)


# ---------------------------------------------------------------------------- convert, info, the Hub's file list


# The files a v4 XLM-R / CamemBERT tokenizer folder holds (contents are stand-ins: they are copied, not read).
_TOKENIZER_SIDE_FILES = {
    "sentencepiece.bpe.model": b"\x0a\x03sp\x00binary stand-in",
    "tokenizer.json": b'{"model": {"type": "Unigram", "vocab": [["<s>", 0.0]]}}',
    "tokenizer_config.json": b'{"tokenizer_class": "XLMRobertaTokenizer"}',
    "special_tokens_map.json": b'{"mask_token": "<mask>"}',
}


def test_convert_keeps_the_member_and_copies_every_tokenizer_file(tmp_path):
    config = tiny_config(model_type="roberta-prelayernorm")
    state = random_state(config, "masked_lm", seed=9)
    src = tmp_path / "src"
    pretrained.save_pretrained_files(src, config, state, "masked_lm")
    for name, data in _TOKENIZER_SIDE_FILES.items():
        (src / name).write_bytes(data)
    for to in ("bin", "h5", "msgpack"):
        dst = tmp_path / to
        conversion.convert(src, dst, to=to, verify=False, log=lambda line: None)
        assert RobertaConfig.from_pretrained(dst).model_type == "roberta-prelayernorm"
        for name, data in _TOKENIZER_SIDE_FILES.items():
            assert (dst / name).read_bytes() == data, name
        assert "roberta_prelayernorm" in "".join(sorted(_file_names(dst, to)))
        loaded = checkpoint.load_state_dict(dst)
        for key in state:
            np.testing.assert_array_equal(loaded[key], state[key], err_msg=f"{to}: {key}")


@pytest.mark.parametrize("to", ["bin", "h5", "msgpack"])
def test_convert_verify_checks_a_preln_model(tmp_path, to):
    """--verify loads the source (PyTorch) and the result (its format's framework) as
    RoBERTa-PreLayerNorm and compares their outputs."""
    backend = conversion.NATIVE_BACKEND[to]
    if not (runtime.available("pt") and runtime.available(backend)):
        pytest.skip(f"needs the pt and {backend} backends")
    config = tiny_config(model_type="roberta-prelayernorm", num_labels=3)
    src = tmp_path / "src"
    pretrained.save_pretrained_files(src, config, random_state(config, "sequence_classification", seed=10),
                                     "sequence_classification")
    result = conversion.convert(src, tmp_path / "dst", to=to, verify=True, log=lambda line: None)
    assert len(result.checks) >= 2 and all(c.ok for c in result.checks)  # weights read back, then the model
    assert any("SequenceClassification" in c.what for c in result.checks)


def test_info_names_the_member(tmp_path, capsys):
    config = tiny_config(model_type="xlm-roberta")
    pretrained.save_pretrained_files(tmp_path, config, random_state(config, "masked_lm"), "masked_lm")
    summary = info(tmp_path)
    assert summary["model_type"] == "xlm-roberta"
    assert summary["family_class"] == "XLMRobertaForMaskedLM"
    assert cli.main(["info", str(FAMILY / "preln_model")]) == 0
    out = capsys.readouterr().out
    assert "roberta-prelayernorm" in out and "RobertaPreLayerNormModel" in out


# ---------------------------------------------------------------------------- parity covers the family


def test_parity_cases_cover_the_family():
    """`roberta parity` (and conformance/) run XLM-R, CamemBERT and PreLN cases; PreLN on every head."""
    from roberta_core.parity.cases import CASES
    from roberta_core.weights import HEADS

    types = {}
    for case in CASES:
        types.setdefault(case.get("config", {}).get("model_type", "roberta"), set()).add(case["head"])
    assert {"xlm-roberta", "camembert", "roberta-prelayernorm"} <= set(types)
    assert types["roberta-prelayernorm"] == set(HEADS)


def test_family_config_classes_as_v4(tmp_path):
    # v4's XLMRobertaConfig / CamembertConfig / RobertaPreLayerNormConfig: RoBERTa's fields, the member's model_type
    from roberta_core import CamembertConfig, RobertaPreLayerNormConfig, XLMRobertaConfig

    for cls, model_type in ((XLMRobertaConfig, "xlm-roberta"), (CamembertConfig, "camembert"),
                            (RobertaPreLayerNormConfig, "roberta-prelayernorm")):
        config = cls(vocab_size=100, hidden_size=32, num_attention_heads=4)
        assert isinstance(config, RobertaConfig) and config.model_type == model_type == cls.model_type
        config.save_pretrained(tmp_path / model_type)
        back = cls.from_pretrained(tmp_path / model_type)
        assert type(back) is cls and back == config and type(back.copy()) is cls
        assert RobertaConfig.from_pretrained(tmp_path / model_type).model_type == model_type
