"""Code written for `transformers` v4 runs unchanged on the PyTorch backend (issue 14):
`from_pretrained`'s keywords as v4 sorts them, `add_pooling_layer=False`, the QA head's
`num_labels`, and the submodules users wrap or hook (peft LoRA, forward hooks, dynamic
quantisation) called in training as in evaluation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from torch import nn

from roberta_core.weights import CheckpointKeyError
from roberta_pt import RobertaForMaskedLM, RobertaForQuestionAnswering, RobertaForSequenceClassification, RobertaModel
from roberta_pt.convert import to_canonical
from tests.helpers import tiny_config
from tests.roberta_pt.common import build, run_reference

IDS = torch.tensor([[0, 5, 9, 2, 1], [0, 7, 11, 13, 2]])
MASK = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])


def _saved(tmp_path, head, config=None, name="ckpt"):
    """A checkpoint of `head` (random weights) saved under tmp_path/name; returns (dir, state)."""
    model, state = build(head, config or tiny_config())
    model.save_pretrained(tmp_path / name)
    return tmp_path / name, state


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------- from_pretrained's keywords

def test_unknown_keyword_is_a_type_error_and_nothing_reaches_config_json(tmp_path):
    path, _ = _saved(tmp_path, "sequence_classification")
    with pytest.raises(TypeError, match="'foo_bar'"):
        RobertaForSequenceClassification.from_pretrained(path, foo_bar=3)
    # A head takes no add_pooling_layer (v4: TypeError from its __init__).
    with pytest.raises(TypeError, match="add_pooling_layer"):
        RobertaForSequenceClassification.from_pretrained(path, add_pooling_layer=False)
    # v4's loading options are accepted and never written into the config.
    options = dict(device_map="cpu", low_cpu_mem_usage=True, trust_remote_code=False, revision="main",
                   cache_dir=str(tmp_path / "cache"), local_files_only=True, token=None, from_tf=False)
    model = RobertaForSequenceClassification.from_pretrained(path, **options)
    model.save_pretrained(tmp_path / "again")
    written = json.loads((tmp_path / "again" / "config.json").read_text())
    assert not set(options) & set(written)
    assert not any(hasattr(model.config, k) for k in options)


def test_config_fields_go_to_the_config_and_model_arguments_to_the_model(tmp_path):
    path, _ = _saved(tmp_path, "model")
    model = RobertaModel.from_pretrained(path, output_hidden_states=True, torch_dtype=torch.float64,
                                         attn_implementation="eager")
    assert model.config.output_hidden_states is True and model.dtype == torch.float64
    assert model.attn_implementation == "eager"
    assert len(model(IDS).hidden_states) == model.config.num_hidden_layers + 1


def test_subfolder(tmp_path):
    path, state = _saved(tmp_path, "model", name="repo/encoder")
    model = RobertaModel.from_pretrained(tmp_path / "repo", subfolder="encoder")
    assert all(np.array_equal(to_canonical(model)[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match="subfolder"):
        RobertaModel.from_pretrained(tmp_path / "repo", subfolder="../repo/encoder")


def test_output_loading_info_lists_what_v4_lists(tmp_path):
    path, _ = _saved(tmp_path, "masked_lm")
    model, info = _quiet(RobertaForSequenceClassification.from_pretrained, path, output_loading_info=True)
    assert isinstance(model, RobertaForSequenceClassification) and not model.training
    assert set(info) == {"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"}
    # The MLM head's keys are unused; the classifier's are new; nothing else.
    assert sorted(info["missing_keys"]) == sorted(
        f"classifier.{m}.{p}" for m in ("dense", "out_proj") for p in ("weight", "bias"))
    assert info["unexpected_keys"] and all(k.startswith("lm_head.") for k in info["unexpected_keys"])
    assert info["mismatched_keys"] == [] and info["error_msgs"] == []

    cls_path, _ = _saved(tmp_path, "sequence_classification", tiny_config(num_labels=3), name="cls3")
    _, info = _quiet(RobertaForSequenceClassification.from_pretrained, cls_path, num_labels=5,
                     ignore_mismatched_sizes=True, output_loading_info=True)
    assert sorted(info["mismatched_keys"]) == ["classifier.out_proj.bias", "classifier.out_proj.weight"]
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def test_device_map(tmp_path):
    path, _ = _saved(tmp_path, "model")
    auto = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for device_map, expected in [("cpu", "cpu"), (torch.device("cpu"), "cpu"), ({"": "cpu"}, "cpu"),
                                 ("auto", auto.type)]:
        model = RobertaModel.from_pretrained(path, device_map=device_map)
        assert {p.device.type for p in model.parameters()} == {expected}, device_map
    for bad, match in [("nowhere", "device_map must be"), ({"encoder": "cpu"}, "one device"),
                       (-1, "device_map must be"), (1.5, "device_map must be")]:
        with pytest.raises(ValueError, match=match):
            RobertaModel.from_pretrained(path, device_map=bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="GPU"):
            RobertaModel.from_pretrained(path, device_map="cuda")
        with pytest.raises(ValueError, match="GPU"):
            RobertaModel.from_pretrained(path, device_map=0)
    with pytest.raises(ValueError, match="disagree"):
        RobertaModel.from_pretrained(path, device="meta", device_map="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_device_map_places_on_the_gpu(tmp_path):
    path, _ = _saved(tmp_path, "sequence_classification")
    for device_map in ("cuda", "auto", 0, "cuda:0", {"": 0}):
        model = RobertaForSequenceClassification.from_pretrained(path, device_map=device_map)
        assert {p.device.type for p in model.parameters()} == {"cuda"}
    cpu = RobertaForSequenceClassification.from_pretrained(path)
    torch.testing.assert_close(model(IDS.cuda(), MASK.cuda()).logits.cpu(), cpu(IDS, MASK).logits,
                               rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- add_pooling_layer=False

def test_add_pooling_layer_false_builds_no_pooler_and_reports_its_keys_unused(tmp_path):
    config = tiny_config()
    path, state = _saved(tmp_path, "model", config)
    with pytest.warns(UserWarning, match=r"unused by RobertaModel \(2\): pooler\.dense"):
        model = RobertaModel.from_pretrained(path, add_pooling_layer=False)
    assert model.pooler is None
    out = model(IDS, MASK)
    assert out.pooler_output is None
    ref = run_reference(config, state, "model", input_ids=IDS, attention_mask=MASK)
    np.testing.assert_allclose(out.last_hidden_state.detach().numpy(), ref["last_hidden_state"], rtol=1e-4, atol=1e-5)
    with pytest.raises(CheckpointKeyError, match="pooler"):
        RobertaModel.from_pretrained(path, add_pooling_layer=False, strict=True)
    # Its save holds no pooler (as v4's), and loads back into a pooler-less model exactly.
    model.save_pretrained(tmp_path / "no_pooler")
    saved = load_file(tmp_path / "no_pooler" / "model.safetensors")
    assert set(saved) == set(state) - {"pooler.dense.weight", "pooler.dense.bias"}
    again = RobertaModel.from_pretrained(tmp_path / "no_pooler", add_pooling_layer=False, strict=True)
    assert again.pooler is None


def test_add_pooling_layer_false_on_a_pooler_less_checkpoint_is_silent(tmp_path):
    path, _ = _saved(tmp_path, "masked_lm")  # roberta.* without pooler, lm_head.*
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = RobertaModel.from_pretrained(path, add_pooling_layer=False)
    text = "\n".join(str(w.message) for w in caught)
    assert "pooler" not in text and "lm_head" in text  # nothing reported missing, the LM head unused
    assert model.pooler is None


# ---------------------------------------------------------------------------- the QA head's num_labels

def test_question_answering_has_num_labels_outputs_as_v4(tmp_path):
    config = tiny_config(num_labels=3)
    model = RobertaForQuestionAnswering(config)
    assert tuple(model.qa_outputs.weight.shape) == (3, config.hidden_size)
    with pytest.raises(ValueError, match="num_labels == 2.*num_labels=3"):
        model(IDS)
    # Its save is one v4 can load: the config's num_labels is the weight's row count.
    model.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    weights = load_file(tmp_path / "model.safetensors")
    assert len(written["id2label"]) == weights["qa_outputs.weight"].shape[0] == weights["qa_outputs.bias"].shape[0] == 3
    back = RobertaForQuestionAnswering.from_pretrained(tmp_path, strict=True)
    np.testing.assert_array_equal(back.qa_outputs.weight.detach().numpy(), model.qa_outputs.weight.detach().numpy())


def test_question_answering_with_two_labels_loads_and_runs_as_before(tmp_path):
    config = tiny_config()
    path, state = _saved(tmp_path, "question_answering", config)
    model = RobertaForQuestionAnswering.from_pretrained(path, strict=True)
    out = model(IDS, MASK)
    ref = run_reference(config, state, "question_answering", input_ids=IDS, attention_mask=MASK)
    np.testing.assert_allclose(out.start_logits.detach().numpy(), ref["start_logits"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.end_logits.detach().numpy(), ref["end_logits"], rtol=1e-4, atol=1e-5)
    # A checkpoint of the MaskedLM head into QA with num_labels=3 builds a 3-row head (then refuses to run).
    mlm, _ = _saved(tmp_path, "masked_lm", name="mlm")
    qa3 = _quiet(RobertaForQuestionAnswering.from_pretrained, mlm, num_labels=3)
    assert tuple(qa3.qa_outputs.weight.shape) == (3, config.hidden_size)
