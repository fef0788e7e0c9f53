"""from_pretrained / save_pretrained and the canonical conversion of the PyTorch backend."""

from __future__ import annotations

import json
import pickle
import warnings

import ml_dtypes
import numpy as np
import pytest
import torch

from roberta_core.weights import CheckpointKeyError, parameter_shapes
from roberta_pt import (
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
)
from roberta_pt.convert import from_canonical, to_canonical
from roberta_core.reference import forward as reference
from tests.helpers import assert_close, golden, padded_batch, random_state, tiny_config
from tests.roberta_pt.common import build

IDS = torch.tensor([[0, 5, 9, 2], [0, 7, 2, 1]])


def _equal_state(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("kwargs, files", [
    ({}, ["config.json", "model.safetensors"]),
    ({"format": "bin"}, ["config.json", "pytorch_model.bin"]),
    ({"safe_serialization": False}, ["config.json", "pytorch_model.bin"]),
    ({"max_shard_size": "4KB"}, None),
])
def test_save_and_load_round_trip_is_bit_exact(kwargs, files, tmp_path):
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config)
    model.save_pretrained(tmp_path, **kwargs)
    written = sorted(p.name for p in tmp_path.iterdir())
    if files is None:
        assert "model.safetensors.index.json" in written and sum(n.endswith(".safetensors") for n in written) > 1
    else:
        assert written == files
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["RobertaForSequenceClassification"]
    loaded = RobertaForSequenceClassification.from_pretrained(tmp_path, strict=True)
    _equal_state(to_canonical(loaded), state)


def test_save_format_the_backend_does_not_write(tmp_path):
    with pytest.raises(ValueError, match="'safetensors' or 'bin'"):
        build("model", tiny_config())[0].save_pretrained(tmp_path, format="h5")
    assert list(tmp_path.iterdir()) == []


def test_masked_lm_checkpoint_into_a_classifier(tmp_path):
    source = golden("masked_lm")
    with pytest.warns(UserWarning) as record:
        model = RobertaForSequenceClassification.from_pretrained(source, num_labels=4)
    text = "\n".join(str(w.message) for w in record)
    assert "unused" in text and "lm_head.dense.weight" in text
    assert "newly initialised" in text and "classifier.out_proj.weight" in text
    mlm = RobertaForMaskedLM.from_pretrained(source)
    canon, want = to_canonical(model), to_canonical(mlm)
    for key in parameter_shapes(model.config, "sequence_classification"):
        if key.startswith("roberta."):
            assert np.array_equal(canon[key], want[key]), key
    # New parameters get v4's initialisation, on a real device.
    assert model.classifier.out_proj.weight.shape == (4, 32) and not model.classifier.out_proj.weight.is_meta
    assert float(model.classifier.dense.bias.detach().abs().max()) == 0.0
    assert 0.005 < float(model.classifier.dense.weight.detach().std()) < 0.04  # normal(0, 0.02)
    with pytest.raises(CheckpointKeyError, match="strict=True"):
        RobertaForSequenceClassification.from_pretrained(source, strict=True)


def test_bare_model_checkpoint_into_a_head():
    with pytest.warns(UserWarning, match="newly initialised"):
        model = RobertaForTokenClassification.from_pretrained(golden("model"), num_labels=2)
    base = RobertaModel.from_pretrained(golden("model"))
    assert torch.equal(model.roberta.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight)
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=IDS).logits).all()


def test_num_labels_mismatch_is_an_error_unless_ignored(tmp_path):
    config = tiny_config(num_labels=3)
    build("sequence_classification", config)[0].save_pretrained(tmp_path)
    with pytest.raises(CheckpointKeyError, match=r"classifier.out_proj.weight \(3, 32\) != expected \(5, 32\)"):
        RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=5, ignore_mismatched_sizes=True)
    with torch.no_grad():
        assert model(input_ids=IDS).logits.shape == (2, 5)


def test_dtype_and_loaded_parameters_are_trainable(tmp_path):
    config = tiny_config()
    model, state = build("masked_lm", config)
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    assert RobertaForMaskedLM.from_pretrained(tmp_path).dtype == torch.float32  # v4: float32 unless asked
    auto = RobertaForMaskedLM.from_pretrained(tmp_path, dtype="auto", device="cpu")
    assert auto.dtype == torch.bfloat16 and auto.device.type == "cpu"
    # v4 4.57's "auto": the config's dtype where it names one (here float32 over bfloat16 weights,
    # as save_pretrained(state_dict=...) of other-dtype tensors writes), else the weights'
    model.float().save_pretrained(tmp_path / "sd", state_dict={k: v.to(torch.bfloat16) for k, v in model.state_dict().items()})
    assert json.loads((tmp_path / "sd" / "config.json").read_text())["dtype"] == "float32"
    assert RobertaForMaskedLM.from_pretrained(tmp_path / "sd", torch_dtype="auto").dtype == torch.float32
    written = json.loads((tmp_path / "sd" / "config.json").read_text())
    del written["dtype"]
    (tmp_path / "sd" / "config.json").write_text(json.dumps(written))
    assert RobertaForMaskedLM.from_pretrained(tmp_path / "sd", dtype="auto").dtype == torch.bfloat16
    half = RobertaForMaskedLM.from_pretrained(tmp_path, dtype=torch.float16)
    assert {p.dtype for p in half.parameters()} == {torch.float16}
    assert half.lm_head.decoder.weight is half.roberta.embeddings.word_embeddings.weight
    with pytest.raises(ValueError, match="dtype must be"):
        RobertaForMaskedLM.from_pretrained(tmp_path, dtype="int8")
    # One optimizer step on a loaded model: its memory is writable.
    loaded = RobertaForMaskedLM.from_pretrained(tmp_path).train()
    loss = loaded(input_ids=IDS, labels=IDS).loss
    loss.backward()
    before = loaded.lm_head.bias.detach().clone()
    torch.optim.SGD(loaded.parameters(), lr=0.1).step()
    assert not torch.equal(before, loaded.lm_head.bias)


def test_to_canonical_has_exactly_the_table_keys_and_shares_memory():
    for head in ("masked_lm", "multiple_choice"):
        config = tiny_config()
        model, state = build(head, config)
        canon = to_canonical(model)
        assert list(canon) == list(parameter_shapes(config, head))
        _equal_state(canon, state)
        assert np.shares_memory(canon["roberta.embeddings.word_embeddings.weight"],
                                model.roberta.embeddings.word_embeddings.weight.detach().numpy())
    bf = to_canonical(model.to(torch.bfloat16))
    assert bf["classifier.weight"].dtype == ml_dtypes.bfloat16
    assert np.array_equal(bf["classifier.weight"].astype(np.float32), model.classifier.weight.detach().float().numpy())


def test_loading_onto_meta_takes_the_arrays_without_copying():
    config = tiny_config()
    state = random_state(config, "masked_lm")
    pointers = {k: v.ctypes.data for k, v in state.items()}
    with torch.device("meta"):
        model = RobertaForMaskedLM(config)
    from_canonical(model, state, consume=True)
    assert state == {}
    model.tie_weights()
    for key, param in model.named_parameters():
        assert param.data_ptr() == pointers[key], key
    # The computed buffers (v4's position_ids, token_type_ids) left meta too, and the model computes
    # the float64 reference's logits (token types from the buffer: none passed).
    assert not any(b.is_meta for b in model.buffers())
    ids, mask = padded_batch(config)
    want = reference(config, random_state(config, "masked_lm"), "masked_lm", input_ids=ids, attention_mask=mask)
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(ids), torch.from_numpy(mask)).logits
    assert_close(got, want["logits"], atol=1e-5, what="logits of the model loaded onto meta")


def test_from_canonical_names_what_is_wrong():
    config = tiny_config()
    model = RobertaModel(config)
    state = random_state(config, "model")
    with pytest.raises(ValueError, match=r"owns no parameter\(s\) \['lm_head.bias'\]"):
        from_canonical(model, {**state, "lm_head.bias": np.zeros(100, np.float32)})
    missing = dict(state)
    del missing["pooler.dense.bias"]
    with pytest.raises(ValueError, match="lacks 1 parameter.*pooler.dense.bias"):
        from_canonical(model, missing)
    with pytest.raises(ValueError, match=r"pooler.dense.bias \(3,\) != expected \(32,\)"):
        from_canonical(model, {**state, "pooler.dense.bias": np.zeros(3, np.float32)})
    before = model.pooler.dense.bias.detach().clone()
    from_canonical(model, missing, allow_missing=True)  # what is absent keeps its value
    assert torch.equal(model.pooler.dense.bias, before)


def test_v4_keyword_names_the_weights_dtype_and_a_given_state_dict(tmp_path):
    """As v4 (Trainer and accelerate call so): `from_pretrained(pretrained_model_name_or_path=...)`,
    `save_pretrained(save_directory=..., state_dict=..., is_main_process=...)`; config.json records
    the weights' dtype and a loaded model's config holds it as a torch dtype."""
    model, _ = build("masked_lm", tiny_config())
    model.to(torch.bfloat16).save_pretrained(save_directory=tmp_path / "bf", is_main_process=True)
    assert json.loads((tmp_path / "bf" / "config.json").read_text())["dtype"] == "bfloat16"
    loaded = RobertaForMaskedLM.from_pretrained(pretrained_model_name_or_path=tmp_path / "bf", dtype="auto")
    assert loaded.dtype == loaded.config.dtype == loaded.config.torch_dtype == torch.bfloat16
    loaded = RobertaForMaskedLM.from_pretrained(tmp_path / "bf")  # float32 unless asked, as v4
    assert loaded.config.dtype == torch.float32
    loaded.save_pretrained(tmp_path / "f32")
    assert json.loads((tmp_path / "f32" / "config.json").read_text())["dtype"] == "float32"
    # a given state dict is what gets written (the model's own parameters stay as they are)
    state = {k: torch.full_like(v, 0.5) for k, v in loaded.state_dict().items()}
    loaded.save_pretrained(tmp_path / "given", state_dict=state)
    back = RobertaForMaskedLM.from_pretrained(tmp_path / "given")
    assert all(torch.equal(p, torch.full_like(p, 0.5)) for p in back.parameters())
    assert not all(torch.equal(p, torch.full_like(p, 0.5)) for p in loaded.parameters())
    with pytest.raises(ValueError, match="state_dict lacks 1 of this model's keys: lm_head.bias"):
        loaded.save_pretrained(tmp_path / "bad", state_dict={k: v for k, v in state.items() if k != "lm_head.bias"})
    assert not (tmp_path / "bad").exists()


def test_a_config_passed_to_from_pretrained_is_not_changed(tmp_path):
    """As v4 (it deep-copies the config it is given): loading records the dtype on the model's own
    config, never on the caller's, which other models may be built from."""
    from roberta_core import RobertaConfig

    model, _ = build("masked_lm", tiny_config())
    model.save_pretrained(tmp_path)
    given = RobertaConfig.from_pretrained(tmp_path)
    before = given.to_dict()
    loaded = RobertaForMaskedLM.from_pretrained(tmp_path, config=given, dtype=torch.float16)
    assert loaded.config.dtype == torch.float16 and loaded.config is not given
    assert given.to_dict() == before and given.dtype == torch.float32  # what config.json says (v4: a torch dtype)


def test_a_shape_mismatch_is_v4s_runtime_error_and_pickles(tmp_path):
    # v4 PyTorch raises RuntimeError("Error(s) in loading state_dict for <class>: ..."); ours is
    # also a CheckpointKeyError, and crosses a process boundary (multiprocessing pickles it).
    model, _ = build("sequence_classification", tiny_config(num_labels=3))
    model.save_pretrained(tmp_path)
    with pytest.raises(RuntimeError) as caught:
        RobertaForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    assert isinstance(caught.value, CheckpointKeyError)
    assert str(caught.value).startswith("Error(s) in loading state_dict for RobertaForSequenceClassification:\n\t"
                                        "size mismatch for classifier.out_proj.")
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is type(caught.value) and str(again) == str(caught.value)
