"""Checkpoints: the golden fixtures of transformers 4.57.6 from every weight format,
save/load round trips (safetensors, sharded, v4's tf_model.h5), other heads' checkpoints,
strictness, dtypes; v4's from_pretrained keywords (subfolder, output_loading_info, device_map,
add_pooling_layer) and the QA head's num_labels."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import tensorflow as tf

import roberta_tf.convert

from roberta_core import reference
from roberta_core.checkpoint import load_state_dict
from roberta_core.weights import CheckpointKeyError
from tests.helpers import assert_close, golden, padded_batch, tiny_config

from .common import CLASSES, build

WEIGHTS = ("model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack")
FIELDS = {
    "model": ("last_hidden_state", "pooler_output"),
    "masked_lm": ("logits",),
    "sequence_classification": ("logits",),
}


@pytest.mark.parametrize("head", list(FIELDS))
def test_golden_fixtures_reproduce_from_every_format(tmp_path, head):
    source = golden(head)
    io = np.load(source / "io.npz")
    for weights in WEIGHTS:
        folder = tmp_path / weights
        folder.mkdir()
        shutil.copy(source / "config.json", folder)
        shutil.copy(source / weights, folder)
        model = CLASSES[head].from_pretrained(folder, strict=True)
        out = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"])
        for field in FIELDS[head]:
            assert_close(out[field], io[f"pt_{field}"], what=f"{weights} {field} vs transformers PyTorch")
            assert_close(out[field], io[f"tf_{field}"], what=f"{weights} {field} vs transformers TF")


@pytest.mark.parametrize("format, files", [  # a causal LM writes its generation_config.json too, as v4
    ("safetensors", ["config.json", "generation_config.json", "model.safetensors"]),
    ("h5", ["config.json", "generation_config.json", "tf_model.h5"]),
])
def test_save_and_load_round_trip_bit_exact(tmp_path, format, files):
    config = tiny_config(is_decoder=True)
    model, state = build("causal_lm", config)
    model.save_pretrained(tmp_path, format=format)
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    on_disk = load_state_dict(tmp_path)
    for key, value in state.items():
        np.testing.assert_array_equal(on_disk[key], value, err_msg=key)
    again = CLASSES["causal_lm"].from_pretrained(tmp_path, strict=True)
    ids, mask = padded_batch(config)
    inputs = dict(input_ids=ids, attention_mask=mask)
    np.testing.assert_array_equal(again(**inputs).logits, model(**inputs).logits)


def test_sharded_safetensors_and_v4_spelling(tmp_path):
    config = tiny_config()
    model, state = build("token_classification", config)
    model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB", safe_serialization=True)
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert len(list((tmp_path / "sharded").glob("model-*-of-*.safetensors"))) > 1
    again = CLASSES["token_classification"].from_pretrained(tmp_path / "sharded", strict=True)
    ids, _ = padded_batch(config)
    np.testing.assert_array_equal(again(input_ids=ids).logits, model(input_ids=ids).logits)
    model.save_pretrained(tmp_path / "v4")  # v4 TF's default format (safe_serialization=False)
    assert sorted(p.name for p in (tmp_path / "v4").iterdir()) == ["config.json", "tf_model.h5"]
    with pytest.raises(ValueError, match="saves format 'safetensors' or 'h5', got 'bin'"):
        model.save_pretrained(tmp_path / "bin", format="bin")
    assert not (tmp_path / "bin").exists()


def test_another_heads_checkpoint_loads_with_a_report(tmp_path):
    config = tiny_config()
    mlm, state = build("masked_lm", config)
    mlm.save_pretrained(tmp_path)
    report = r"(?s)unused by RobertaForSequenceClassification.*lm_head.*newly initialised.*classifier"
    with pytest.warns(UserWarning, match=report):
        classifier = CLASSES["sequence_classification"].from_pretrained(tmp_path, num_labels=4)
    assert classifier.config.num_labels == 4
    words = classifier.get_input_embeddings().embeddings.numpy()
    np.testing.assert_array_equal(words, state["roberta.embeddings.word_embeddings.weight"])
    with pytest.raises(CheckpointKeyError, match="strict=True"):
        CLASSES["sequence_classification"].from_pretrained(tmp_path, strict=True)


def test_mismatched_sizes_are_an_error_unless_ignored(tmp_path):
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    model.save_pretrained(tmp_path)
    with pytest.raises(CheckpointKeyError, match="classifier.out_proj.weight"):
        CLASSES["sequence_classification"].from_pretrained(tmp_path, num_labels=5)
    with pytest.warns(UserWarning, match="ignore_mismatched_sizes"):
        resized = CLASSES["sequence_classification"].from_pretrained(
            tmp_path, num_labels=5, ignore_mismatched_sizes=True
        )
    ids, _ = padded_batch(resized.config)
    assert resized(input_ids=ids).logits.shape == (3, 5)


def test_dtypes_and_bad_options(tmp_path):
    config = tiny_config()
    model, _ = build("model", config, dtype="bfloat16")
    model.save_pretrained(tmp_path)
    assert {str(v.dtype) for v in load_state_dict(tmp_path).values()} == {"bfloat16"}
    assert CLASSES["model"].from_pretrained(tmp_path, dtype="auto").compute_dtype == "bfloat16"
    assert CLASSES["model"].from_pretrained(tmp_path).compute_dtype == "float32"  # None: float32, as v4
    with pytest.raises(ValueError, match="dtype must be"):
        CLASSES["model"].from_pretrained(tmp_path, dtype="int8")
    with pytest.raises(ValueError, match="attn_implementation must be one of"):
        CLASSES["model"].from_pretrained(tmp_path, attn_implementation="flash")
    # The other backends' names take TF's one path, so one setting serves every backend.
    assert CLASSES["model"].from_pretrained(tmp_path, attn_implementation="sdpa").attn_implementation == "eager"


def _assert_builds_and_loads(tmp_path, config):
    """A model builds, and a good checkpoint loads and computes what was saved."""
    model, _ = build("masked_lm", config, seed=5)
    model.save_pretrained(tmp_path / "good")
    again = CLASSES["masked_lm"].from_pretrained(tmp_path / "good")
    ids, mask = padded_batch(config)
    np.testing.assert_array_equal(again(input_ids=ids, attention_mask=mask).logits,
                                  model(input_ids=ids, attention_mask=mask).logits)


def test_a_failed_load_leaves_no_state_behind(tmp_path):
    # Issue 17: an h5 with a string dataset made the load fail half-way through creating the
    # variables, and every later model build in the process failed ("... is already initialized").
    config = tiny_config()
    model, _ = build("masked_lm", config)
    model.save_pretrained(tmp_path / "bad", format="h5")
    with h5py.File(tmp_path / "bad" / "tf_model.h5", "r+") as f:
        names = []
        f.visititems(lambda name, node: names.append(name) if isinstance(node, h5py.Dataset) else None)
        for name in [n for n in names if n.endswith("embeddings/LayerNorm/gamma:0")]:
            del f[name]
            f.create_dataset(name, data=np.array([b"x"] * config.hidden_size, dtype="S8"))
    # Refused by the reader or by the conversion: either way, naming the weight.
    with pytest.raises((TypeError, ValueError), match=r"embeddings[./]LayerNorm[./]"):
        CLASSES["masked_lm"].from_pretrained(tmp_path / "bad")
    _assert_builds_and_loads(tmp_path, config)


def test_from_canonical_refuses_an_array_of_strings_before_changing_anything():
    config = tiny_config()
    model, state = build("masked_lm", config)
    key = "roberta.embeddings.LayerNorm.weight"
    bad = {"lm_head.bias": np.zeros(config.vocab_size, np.float32), key: np.array([b"x"] * config.hidden_size)}
    with pytest.raises(TypeError, match=r"^roberta\.embeddings\.LayerNorm\.weight must hold numbers to load into "
                                        r"TFRobertaForMaskedLM, got dtype \|S1$"):
        roberta_tf.convert.from_canonical(model, bad, allow_missing=True)
    np.testing.assert_array_equal(model.lm_head.bias.numpy(), state["lm_head.bias"])  # nothing assigned


def test_a_failure_while_creating_variables_leaves_no_state_behind(tmp_path, monkeypatch):
    # The same, for a failure inside Keras' creation of the variables from the arrays.
    config = tiny_config()
    model, _ = build("masked_lm", config)
    model.save_pretrained(tmp_path / "ckpt")
    value = roberta_tf.convert._value

    def failing(variable, key, array, adopt=False):
        if key.endswith("layer.1.output.dense.weight"):
            raise MemoryError("no memory for this array")
        return value(variable, key, array, adopt)

    monkeypatch.setattr(roberta_tf.convert, "_value", failing)
    with pytest.raises(MemoryError, match="no memory for this array"):
        CLASSES["masked_lm"].from_pretrained(tmp_path / "ckpt")
    monkeypatch.setattr(roberta_tf.convert, "_value", value)
    _assert_builds_and_loads(tmp_path, config)


# ---------------------------------------------------------------------------- v4's keyword contract (issue 14)

def test_from_pretrained_sorts_its_keywords_as_v4(tmp_path):
    config = tiny_config()
    model, _ = build("masked_lm", config)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = CLASSES["masked_lm"].from_pretrained(
        tmp_path / "ckpt", hidden_dropout_prob=0.3,  # a config field: to the config
        low_cpu_mem_usage=True, revision="main", cache_dir=str(tmp_path / "cache"), local_files_only=True,
        token=None, trust_remote_code=False, device_map="cpu",  # loading options: accepted
    )
    assert loaded.config.hidden_dropout_prob == 0.3
    loaded.save_pretrained(tmp_path / "again")
    written = json.loads((tmp_path / "again" / "config.json").read_text())
    assert written["hidden_dropout_prob"] == 0.3
    for option in ("low_cpu_mem_usage", "revision", "cache_dir", "local_files_only", "token", "trust_remote_code",
                   "device_map"):
        assert option not in written, option
    with pytest.raises(TypeError, match=r"TFRobertaForMaskedLM\.from_pretrained\(\) got unexpected keyword "
                                        r"argument\(s\) 'foo_bar'"):
        CLASSES["masked_lm"].from_pretrained(tmp_path / "ckpt", foo_bar=3)
    # add_pooling_layer is the bare model's argument: a head refuses it, as v4's __init__ does.
    with pytest.raises(TypeError, match="'add_pooling_layer'"):
        CLASSES["masked_lm"].from_pretrained(tmp_path / "ckpt", add_pooling_layer=False)


def test_subfolder_and_output_loading_info(tmp_path):
    config = tiny_config()
    mlm, state = build("masked_lm", config)
    mlm.save_pretrained(tmp_path / "repo" / "mlm")
    with pytest.warns(UserWarning, match="newly initialised"):
        classifier, info = CLASSES["sequence_classification"].from_pretrained(
            tmp_path / "repo", subfolder="mlm", output_loading_info=True, num_labels=3
        )
    # The classifier's keys are new; the LM head's are the checkpoint's keys it did not use.
    assert sorted(info["missing_keys"]) == sorted([
        "classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias",
    ])
    assert sorted(info["unexpected_keys"]) == sorted([
        "lm_head.dense.weight", "lm_head.dense.bias", "lm_head.layer_norm.weight", "lm_head.layer_norm.bias",
        "lm_head.bias",
    ])
    assert info["mismatched_keys"] == [] and info["error_msgs"] == []
    words = classifier.get_input_embeddings().embeddings.numpy()
    np.testing.assert_array_equal(words, state["roberta.embeddings.word_embeddings.weight"])
    with pytest.raises(ValueError, match="subfolder must be a relative path inside"):
        CLASSES["masked_lm"].from_pretrained(tmp_path / "repo", subfolder="../repo/mlm")
    _, info = CLASSES["masked_lm"].from_pretrained(tmp_path / "repo/mlm", output_loading_info=True, strict=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}


def test_add_pooling_layer_false_builds_no_pooler_and_leaves_the_checkpoints_unused(tmp_path):
    source = golden("model")  # a v4 RobertaModel checkpoint, pooler included
    io = np.load(source / "io.npz")
    with pytest.warns(UserWarning, match=r"unused by RobertaModel \(2\): pooler\.dense\.bias, pooler\.dense\.weight"):
        model, info = CLASSES["model"].from_pretrained(source, add_pooling_layer=False, output_loading_info=True)
    assert model.pooler is None
    assert sorted(info["unexpected_keys"]) == ["pooler.dense.bias", "pooler.dense.weight"]
    assert info["missing_keys"] == []
    assert not any("pooler" in w.path for w in model.weights)
    out = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"])
    assert out.pooler_output is None
    assert_close(out.last_hidden_state, io["pt_last_hidden_state"], what="last_hidden_state vs transformers")
    # Saved without a pooler; read back exactly (strict: nothing unused, nothing new).
    model.save_pretrained(tmp_path)
    assert not any("pooler" in key for key in load_state_dict(tmp_path))
    again = CLASSES["model"].from_pretrained(tmp_path, add_pooling_layer=False, strict=True)
    assert again.pooler is None
    assert (again.get_config()["add_pooling_layer"], model.get_config()["add_pooling_layer"]) == (False, False)


def test_device_map(tmp_path):
    config = tiny_config()
    model, _ = build("model", config)
    model.save_pretrained(tmp_path)
    on_cpu = CLASSES["model"].from_pretrained(tmp_path, device_map="cpu")
    assert all("CPU" in w.value.device for w in on_cpu.weights)
    CLASSES["model"].from_pretrained(tmp_path, device_map="auto")
    CLASSES["model"].from_pretrained(tmp_path, device_map={"": "cpu"})
    with pytest.raises(ValueError, match="splitting it across devices is not supported"):
        CLASSES["model"].from_pretrained(tmp_path, device_map={"encoder": "cpu", "pooler": 0})
    with pytest.raises(ValueError, match="device_map must be"):
        CLASSES["model"].from_pretrained(tmp_path, device_map="tpu")
    if tf.config.list_logical_devices("GPU"):
        on_gpu = CLASSES["model"].from_pretrained(tmp_path, device_map="cuda")
        assert all("GPU:0" in w.value.device for w in on_gpu.weights)
    else:
        with pytest.raises(ValueError, match=r"asks for GPU 0, but TensorFlow sees 0 GPU\(s\)"):
            CLASSES["model"].from_pretrained(tmp_path, device_map="cuda")


def test_question_answering_has_num_labels_outputs_as_v4(tmp_path):
    config = tiny_config(num_labels=3)
    model, state = build("question_answering", config)
    assert tuple(model.qa_outputs.kernel.shape) == (config.hidden_size, 3)
    inputs = {"input_ids": padded_batch(config)[0]}
    with pytest.raises(ValueError, match=r"needs config\.num_labels == 2, got num_labels=3"):
        model(**inputs)
    # What a fine-tune from a 3-label checkpoint saves: a config and weights that agree.
    model.save_pretrained(tmp_path / "three")
    written = json.loads((tmp_path / "three" / "config.json").read_text())
    assert len(written["id2label"]) == 3  # v4 writes num_labels as the id2label it spans
    assert load_state_dict(tmp_path / "three")["qa_outputs.weight"].shape == (3, config.hidden_size)
    # A v4-style QA checkpoint (2 labels) loads and scores as the float64 reference.
    config2 = tiny_config()
    model2, state2 = build("question_answering", config2, seed=3)
    model2.save_pretrained(tmp_path / "two")
    again = CLASSES["question_answering"].from_pretrained(tmp_path / "two", strict=True)
    ids, mask = padded_batch(config2)
    ref = reference.forward(config2, state2, "question_answering", input_ids=ids, attention_mask=mask)
    out = again(input_ids=ids, attention_mask=mask)
    assert_close(out.start_logits, ref["start_logits"], what="start_logits")
    assert_close(out.end_logits, ref["end_logits"], what="end_logits")


def test_an_untied_decoder_saves_as_safetensors_by_default(tmp_path):
    # tf_model.h5 (v4 TF's layout) has no slot for a decoder of its own: the default falls back
    # to model.safetensors with a warning; asking for h5 is refused.
    config = tiny_config(tie_word_embeddings=False)
    model, state = build("masked_lm", config)
    assert not np.array_equal(state["lm_head.decoder.weight"], state["roberta.embeddings.word_embeddings.weight"])
    with pytest.warns(UserWarning, match="untied LM decoder"):
        model.save_pretrained(tmp_path / "default")
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == ["config.json", "model.safetensors"]
    on_disk = load_state_dict(tmp_path / "default")
    np.testing.assert_array_equal(on_disk["lm_head.decoder.weight"], state["lm_head.decoder.weight"])
    with pytest.raises(ValueError, match="tf_model.h5"):
        model.save_pretrained(tmp_path / "h5", format="h5")
