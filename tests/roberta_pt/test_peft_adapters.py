"""v4's `PeftAdapterMixin` on the PyTorch models (`roberta_pt.peft_integration`): adapters injected
into the model itself (`add_adapter`, `load_adapter`, `set_adapter`, `disable_adapters`, ...),
saved as peft saves them, and loaded by `from_pretrained` of an adapter folder or Hub repo.

Oracles are independent of the code under test: peft's own wrapper (`get_peft_model`,
`PeftModel.save_pretrained` / `from_pretrained`) on an identical base, a fresh copy of the base
model, and the files and tensors written."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open

peft = pytest.importorskip("peft", reason="the adapter methods need peft (the [peft] extra)")

from roberta_pt import RobertaForCausalLM, RobertaForSequenceClassification  # noqa: E402
from tests.helpers import tiny_config  # noqa: E402
from tests.roberta_core.test_hub import hf_home  # noqa: E402,F401  (the offline Hugging Face cache fixture)
from tests.roberta_pt.common import build  # noqa: E402

IDS = torch.tensor([[0, 5, 9, 2, 1], [0, 7, 11, 13, 2]])
MASK = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
CONFIG = tiny_config(num_labels=3)
ADAPTER_FILES = ["adapter_config.json", "adapter_model.safetensors"]


def _lora(**overrides):
    """LoRA on query/value (the usual RoBERTa recipe), r=4, alpha=8, no dropout (outputs are compared)."""
    return peft.LoraConfig(**{"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["query", "value"],
                              **overrides})


def _base(head="sequence_classification", seed=0):
    """The same random base model each call (same seed: an identical copy)."""
    return build(head, CONFIG, seed=seed)[0]


def _draw_lora(model, seed=1):
    """peft starts lora_B at zero (no delta): draw every LoRA matrix so the adapter changes the logits."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


def _logits(model):
    """The logits in evaluation mode (layers peft adds start in training mode, as any new module)."""
    model.eval()
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).logits.numpy()


def _close(a, b):
    # The same computation up to the last bits: the base model's fused query/key/value path and the
    # separate calls a wrapped query takes differ there, and so do torch's CPU kernels for a weight
    # that requires grad and one that does not (a frozen loaded adapter, a trainable added one).
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _adapted(name="default", seed=1, **lora):
    """A base model with one LoRA adapter added by `add_adapter` and drawn."""
    model = _base()
    model.add_adapter(_lora(**lora), adapter_name=name)
    _draw_lora(model, seed)
    return model


def _saved_base(tmp_path):
    """The base saved and read back, so its `name_or_path` (recorded in adapters) is a real folder."""
    _base().save_pretrained(tmp_path / "base")
    return tmp_path / "base"


# ---------------------------------------------------------------------------- add_adapter, enable/disable


def test_add_adapter_computes_what_peft_get_peft_model_computes():
    ours = _adapted()
    wrapped = peft.get_peft_model(_base(), _lora())
    ours_lora = {n: p for n, p in ours.named_parameters() if "lora_" in n}
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_" in name:
                param.copy_(ours_lora[name.removeprefix("base_model.model.")])
    _close(_logits(ours), _logits(wrapped))
    assert not np.allclose(_logits(ours), _logits(_base()), atol=1e-3)  # the adapter does something
    # v4's state: the flag, peft's config dict, the new adapter active and alone trainable.
    assert ours._hf_peft_config_loaded and list(ours.peft_config) == ["default"]
    assert ours.active_adapters() == ["default"]
    trainable = {n for n, p in ours.named_parameters() if p.requires_grad}
    assert trainable == set(ours_lora) and len(trainable) == 2 * 2 * CONFIG.num_hidden_layers
    # peft's state dict of the wrapper is ours (without peft's prefix).
    expected = peft.get_peft_model_state_dict(wrapped)
    got = ours.get_adapter_state_dict()
    assert set(got) == {k.removeprefix("base_model.model.") for k in expected}
    for key, value in expected.items():
        assert torch.equal(got[key.removeprefix("base_model.model.")], value)


@pytest.mark.parametrize("head", ["masked_lm", "causal_lm"])
def test_all_linear_leaves_the_lm_decoder_out_as_v4(head):
    # Recorded from transformers 4.57.6 + peft 0.21.2 (`add_adapter(LoraConfig(target_modules="all-linear"))`
    # on the tiny MaskedLM and CausalLM): every linear layer of each layer, the LM head's dense, not
    # its decoder (v4 leaves out the output embeddings); the config then holds the resolved names.
    model = build(head, tiny_config(is_decoder=head == "causal_lm"))[0]
    model.add_adapter(peft.LoraConfig(target_modules="all-linear"))
    per_layer = ["attention.output.dense", "attention.self.key", "attention.self.query", "attention.self.value",
                 "intermediate.dense", "output.dense"]
    expected = {"lm_head.dense"} | {f"roberta.encoder.layer.{i}.{n}" for i in range(2) for n in per_layer}
    assert set(model.peft_config["default"].target_modules) == expected
    assert {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A." in n} == expected


def test_disable_adapters_gives_the_base_model_and_enable_brings_the_adapter_back():
    model = _adapted()
    adapted = _logits(model)
    model.disable_adapters()
    _close(_logits(model), _logits(_base()))
    model.enable_adapters()
    _close(_logits(model), adapted)


def test_disable_and_enable_switch_a_modules_to_save_copy_too():
    # A classifier trained with the adapter (peft's modules_to_save copy) steps aside with it, and
    # comes back with it (v4 re-enables the LoRA layers alone).
    model = _adapted(modules_to_save=["classifier"])
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "modules_to_save" in name:
                param.add_(0.5)
    adapted = _logits(model)
    model.disable_adapters()
    _close(_logits(model), _logits(_base()))
    model.enable_adapters()
    _close(_logits(model), adapted)


def test_set_adapter_switches_between_adapters_and_delete_adapter_removes_them():
    model = _adapted("a", seed=1)
    model.add_adapter(_lora(), adapter_name="b")
    assert model.active_adapters() == ["b"] and list(model.peft_config) == ["a", "b"]
    _draw_lora(model, seed=2)
    only = {}
    for name in ("a", "b"):
        model.set_adapter(name)
        assert model.active_adapters() == [name]
        alone = _base()
        alone.load_adapter(adapter_state_dict=model.get_adapter_state_dict(name), peft_config=_lora())
        only[name] = _logits(alone)
        _close(_logits(model), only[name])
    assert not np.allclose(only["a"], only["b"], atol=1e-3)
    model.set_adapter(["a", "b"])
    assert model.active_adapters() == ["a", "b"]

    model.set_adapter("a")
    model.delete_adapter("b")
    assert list(model.peft_config) == ["a"] and model.active_adapters() == ["a"]
    _close(_logits(model), only["a"])
    model.delete_adapter(["a"])
    # No adapter left: v4's flag is down, peft_config gone, the model computes as the base.
    assert not model._hf_peft_config_loaded and not hasattr(model, "peft_config")
    _close(_logits(model), _logits(_base()))
    with pytest.raises(ValueError, match="No adapter loaded"):
        model.active_adapters()


# ---------------------------------------------------------------------------- v4's errors


def test_methods_that_need_an_adapter_raise_v4s_error_without_one():
    model = _base()
    for call in (lambda: model.set_adapter("default"), model.disable_adapters, model.enable_adapters,
                 model.active_adapters, model.get_adapter_state_dict, lambda: model.delete_adapter("default")):
        with pytest.raises(ValueError, match="No adapter loaded. Please load an adapter first."):
            call()
    assert not model._hf_peft_config_loaded and not hasattr(model, "peft_config")


def test_names_and_arguments_are_checked_as_v4_checks_them(tmp_path):
    model = _adapted()
    with pytest.raises(ValueError, match="Adapter with name default already exists"):
        model.add_adapter(_lora())
    with pytest.raises(ValueError, match="Adapter with name default already exists"):
        model.load_adapter(adapter_state_dict={}, peft_config=_lora())
    with pytest.raises(ValueError, match=r"Adapter with name other not found.*\['default'\]"):
        model.set_adapter("other")
    with pytest.raises(ValueError, match="could not be found: other"):
        model.set_adapter(["default", "other"])
    with pytest.raises(ValueError, match="not present and cannot be deleted: other"):
        model.delete_adapter("other")
    with pytest.raises(TypeError, match="should be an instance of PeftConfig"):
        model.add_adapter({"r": 4}, adapter_name="dict")
    assert list(model.peft_config) == ["default"]

    fresh = _base()
    with pytest.raises(ValueError, match="either pass a `peft_model_id` or a `peft_config` and `adapter_state_dict`"):
        fresh.load_adapter()
    with pytest.raises(ValueError, match="adapter model file not found in None"):
        fresh.load_adapter(adapter_state_dict=model.get_adapter_state_dict())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="adapter model file not found in"):
        fresh.load_adapter(tmp_path / "empty")
    with pytest.raises(TypeError, match="unexpected adapter_kwargs 'foo'"):
        fresh.load_adapter(tmp_path / "empty", adapter_kwargs={"foo": 1})
    assert not fresh._hf_peft_config_loaded

    model.add_adapter(_lora(), adapter_name="second")
    model.set_adapter(["default", "second"])
    with pytest.raises(ValueError, match="Multiple active adapters detected"):
        model.save_pretrained(tmp_path / "two")


def test_a_failed_load_leaves_the_model_without_the_adapter():
    # Weights of another rank: peft's load fails on the shapes; the half-made adapter is removed.
    state = _adapted(r=8).get_adapter_state_dict()
    model = _base()
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.load_adapter(adapter_state_dict=state, peft_config=_lora())
    assert not model._hf_peft_config_loaded and not hasattr(model, "peft_config")
    _close(_logits(model), _logits(_base()))
    model.load_adapter(adapter_state_dict=state, peft_config=_lora(r=8))  # the name is free again
    assert model.active_adapters() == ["default"]


# ---------------------------------------------------------------------------- files


def test_save_pretrained_writes_the_adapter_alone_as_peft_does(tmp_path):
    base = _saved_base(tmp_path)
    ours = RobertaForSequenceClassification.from_pretrained(base)
    ours.add_adapter(_lora())
    _draw_lora(ours)
    ours.save_pretrained(tmp_path / "ours")
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ADAPTER_FILES  # no config.json, no base weights

    # peft's own save of the same adapter on the same base.
    wrapped = peft.get_peft_model(RobertaForSequenceClassification.from_pretrained(base), _lora())
    with torch.no_grad():
        ours_lora = dict(ours.named_parameters())
        for name, param in wrapped.named_parameters():
            if "lora_" in name:
                param.copy_(ours_lora[name.removeprefix("base_model.model.")])
    wrapped.save_pretrained(tmp_path / "peft")
    with safe_open(tmp_path / "ours" / "adapter_model.safetensors", "pt") as f, \
            safe_open(tmp_path / "peft" / "adapter_model.safetensors", "pt") as g:
        assert f.metadata() == {"format": "pt"} and set(f.keys()) == set(g.keys())
        assert all(k.startswith("base_model.model.roberta.encoder.layer.") for k in f.keys())
        for key in f.keys():
            assert torch.equal(f.get_tensor(key), g.get_tensor(key)), key
    saved, theirs = (json.loads((tmp_path / d / "adapter_config.json").read_text()) for d in ("ours", "peft"))
    assert saved["base_model_name_or_path"] == theirs["base_model_name_or_path"] == str(base)
    assert set(saved) == set(theirs) and saved["peft_type"] == "LORA"
    assert set(saved["target_modules"]) == {"query", "value"}
    # Besides the base: PeftModel saves in inference mode, and names a class outside transformers in
    # auto_mapping (v4 saves its config as it is, auto_mapping None for its own classes, as here).
    differ = ("inference_mode", "auto_mapping")
    assert {k: v for k, v in saved.items() if k not in differ} == {k: v for k, v in theirs.items() if k not in differ}

    # peft reads our files back onto a fresh base: the same logits.
    loaded = peft.PeftModel.from_pretrained(RobertaForSequenceClassification.from_pretrained(base), tmp_path / "ours")
    _close(_logits(loaded), _logits(ours))


def test_save_then_load_adapter_and_from_pretrained_round_trip_exactly(tmp_path):
    base = _saved_base(tmp_path)
    ours = RobertaForSequenceClassification.from_pretrained(base)
    ours.add_adapter(_lora(), adapter_name="mine")
    _draw_lora(ours)
    ours.save_pretrained(tmp_path / "adapter")
    expected = ours.get_adapter_state_dict()

    by_load = _base()
    by_load.load_adapter(tmp_path / "adapter", adapter_name="loaded")
    assert list(by_load.peft_config) == ["loaded"] and by_load.active_adapters() == ["loaded"]
    got = by_load.get_adapter_state_dict()
    assert set(got) == set(expected) and all(torch.equal(got[k], expected[k]) for k in expected)
    _close(_logits(by_load), _logits(ours))
    # v4's default: the loaded adapter is frozen and the model in evaluation mode; is_trainable=True trains it.
    assert not any(p.requires_grad for p in by_load.parameters()) and not by_load.training
    trainable = _base().train()
    trainable.load_adapter(tmp_path / "adapter", is_trainable=True)
    assert {n for n, p in trainable.named_parameters() if p.requires_grad} == {
        n for n in dict(trainable.named_parameters()) if "lora_" in n} and trainable.training

    # from_pretrained of the adapter folder: the base its config names, then the adapter.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unused or missing keys on either step
        by_name = RobertaForSequenceClassification.from_pretrained(tmp_path / "adapter", adapter_name="x")
    assert by_name._hf_peft_config_loaded and by_name.active_adapters() == ["x"]
    assert by_name.name_or_path == str(base) and by_name.config.name_or_path == str(base)
    _close(_logits(by_name), _logits(ours))
    got = by_name.get_adapter_state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_safe_serialization_false_writes_adapter_model_bin_and_replaces_the_other_file(tmp_path):
    model = _adapted()
    model.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path, safe_serialization=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_config.json", "adapter_model.bin"]
    on_disk = torch.load(tmp_path / "adapter_model.bin", weights_only=True)
    expected = model.get_adapter_state_dict()
    assert set(on_disk) == {"base_model.model." + k for k in expected}
    fresh = _base()
    fresh.load_adapter(tmp_path)
    _close(_logits(fresh), _logits(model))
    model.save_pretrained(tmp_path)  # and back: the .bin goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ADAPTER_FILES


def test_an_adapter_saved_by_peft_loads_with_load_adapter(tmp_path):
    wrapped = peft.get_peft_model(_base(), _lora())
    _draw_lora(wrapped, seed=5)
    wrapped.save_pretrained(tmp_path / "peft")
    model = _base()
    model.load_adapter(tmp_path / "peft")
    _close(_logits(model), _logits(wrapped))


def test_a_causal_lm_saves_its_generation_config_with_the_adapter(tmp_path):
    # v4 writes generation_config.json beside the adapter files (the adapter path skips config.json only).
    model = build("causal_lm", tiny_config(is_decoder=True))[0]
    model.add_adapter(_lora(task_type="CAUSAL_LM"))
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [*ADAPTER_FILES, "generation_config.json"]
    assert isinstance(model, RobertaForCausalLM)


# ---------------------------------------------------------------------------- the Hub


@pytest.fixture
def offline_cache(hf_home):
    """An empty HF_HOME, offline (nothing may reach the network); returns its folder."""
    return hf_home


def _cache_adapter_and_base(home, tmp_path, base_name="tiny-org/base"):
    """The base in the cache as tiny-org/base, and an adapter naming `base_name` as tiny-org/lora;
    returns the adapted model the adapter was saved from."""
    from tests.roberta_core.test_hub import COMMIT, cache_repo, folder_files

    base = _saved_base(tmp_path)
    cache_repo(home, "tiny-org/base", COMMIT, folder_files(base))
    model = _adapted()
    model.peft_config["default"].base_model_name_or_path = base_name
    model.save_pretrained(tmp_path / "lora")
    cache_repo(home, "tiny-org/lora", COMMIT, folder_files(tmp_path / "lora"))
    return model


def test_adapters_load_by_hub_repo_id(offline_cache, tmp_path):
    model = _cache_adapter_and_base(offline_cache, tmp_path)
    fresh = _base()
    fresh.load_adapter("tiny-org/lora")
    _close(_logits(fresh), _logits(model))
    by_name = RobertaForSequenceClassification.from_pretrained("tiny-org/lora")
    assert by_name.name_or_path == "tiny-org/base" and by_name.active_adapters() == ["default"]
    _close(_logits(by_name), _logits(model))
    # A plain model repo is no adapter: from_pretrained loads it as it always did.
    assert not RobertaForSequenceClassification.from_pretrained("tiny-org/base")._hf_peft_config_loaded
    with pytest.raises(FileNotFoundError, match="not in the Hugging Face cache"):
        _base().load_adapter("tiny-org/absent")


def test_a_hub_adapter_naming_a_local_base_is_refused(offline_cache, tmp_path):
    _cache_adapter_and_base(offline_cache, tmp_path, base_name=str(tmp_path / "base"))
    with pytest.raises(ValueError, match="names its base model by a local path"):
        RobertaForSequenceClassification.from_pretrained("tiny-org/lora")


def test_a_hub_adapter_naming_a_relative_local_folder_is_refused(offline_cache, tmp_path, monkeypatch):
    # "localbase" is a valid repo id, but a folder of that name in the working directory would be
    # what from_pretrained reads: a downloaded adapter must not pick a local folder.
    _cache_adapter_and_base(offline_cache, tmp_path, base_name="localbase")
    monkeypatch.chdir(tmp_path)
    _base().save_pretrained(tmp_path / "localbase")
    with pytest.raises(ValueError, match="names its base model by a local path"):
        RobertaForSequenceClassification.from_pretrained("tiny-org/lora")


def _edit_config(folder, **changes):
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))
    return config


def test_an_adapter_files_config_is_held_to_its_weights(tmp_path):
    model = _adapted()
    model.save_pretrained(tmp_path / "lora")
    written = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    # A rank, a pattern that would backtrack for hours, and layers peft would build from the config
    # alone: what is built is what the weights hold (rank 4 on the query and value projections).
    hostile = _edit_config(tmp_path / "lora", r=2**18, target_modules="(.|.)*Z", rank_pattern={"(.|.)*Z": 2**18})
    fresh = _base()
    fresh.load_adapter(str(tmp_path / "lora"))
    _close(_logits(fresh), _logits(model))
    shapes = {tuple(p.shape) for n, p in fresh.named_parameters() if "lora_A" in n}
    assert shapes == {(4, CONFIG.hidden_size)}
    assert sum("lora_A" in n for n, _ in fresh.named_parameters()) == 2 * CONFIG.num_hidden_layers
    # The config is kept as the file says (saving writes it back unchanged).
    assert fresh.peft_config["default"].r == hostile["r"]
    fresh.save_pretrained(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "adapter_config.json").read_text())
    assert again["r"] == 2**18 and again["target_modules"] == "(.|.)*Z"
    assert {k: v for k, v in again.items() if k not in ("r", "target_modules", "rank_pattern", "inference_mode")} == \
        {k: v for k, v in written.items() if k not in ("r", "target_modules", "rank_pattern", "inference_mode")}

    _edit_config(tmp_path / "lora", r=4, target_modules=["query", "value"], rank_pattern={},
                 layer_replication=[[0, 2], [0, 2]] * 100)
    with pytest.raises(ValueError, match="layer_replication"):
        _base().load_adapter(str(tmp_path / "lora"))
    _edit_config(tmp_path / "lora", layer_replication=None, alpha_pattern={"(a|a)*b": 4})
    with pytest.raises(ValueError, match="alpha_pattern keys must be module names"):
        _base().load_adapter(str(tmp_path / "lora"))
    assert not _base()._hf_peft_config_loaded


def test_a_failed_adapter_save_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    import roberta_pt.peft_integration as integration

    _adapted(r=2).save_pretrained(tmp_path / "lora")
    before = {p.name: p.read_bytes() for p in (tmp_path / "lora").iterdir()}
    model = _adapted(r=8)

    def full_disk(state, path, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(integration, "write_safetensors", full_disk)
    with pytest.raises(OSError, match="No space left"):
        model.save_pretrained(tmp_path / "lora")
    assert {p.name: p.read_bytes() for p in (tmp_path / "lora").iterdir()} == before  # no new config, no temp file
    fresh = _base()
    fresh.load_adapter(str(tmp_path / "lora"))  # the old adapter still loads
    assert {tuple(p.shape) for n, p in fresh.named_parameters() if "lora_A" in n} == {(2, CONFIG.hidden_size)}


def test_load_adapter_fetches_the_adapters_two_files_only(monkeypatch, tmp_path):
    pytest.importorskip("huggingface_hub")
    from tests.roberta_core.test_hub import folder_files, serve_online

    model = _adapted()
    model.save_pretrained(tmp_path / "lora")
    asked, seen = serve_online(monkeypatch, {**folder_files(tmp_path / "lora"), "adapter_model.bin": b"x",
                                             "config.json": b"{}", "README.md": b""})
    fresh = _base()
    fresh.load_adapter("tiny-org/lora", revision="v2", token="hf_x", adapter_kwargs={"cache_dir": tmp_path / "c"})
    assert asked == ["adapter_config.json", "adapter_model.safetensors"]
    assert set(seen) == {("tiny-org/lora", None, "v2", "hf_x", False)}
    _close(_logits(fresh), _logits(model))


# ---------------------------------------------------------------------------- without peft


def test_without_peft_the_adapter_methods_name_the_extra(monkeypatch, tmp_path):
    model = _adapted()
    model.save_pretrained(tmp_path / "lora")
    base = _saved_base(tmp_path)
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` fails as if it were not installed
    fresh = _base()
    for call in (lambda: fresh.add_adapter(None), lambda: fresh.load_adapter(tmp_path / "lora"), fresh.active_adapters):
        with pytest.raises(ImportError, match=r"pip install 'roberta3\[peft\]'"):
            call()
    with pytest.raises(ImportError, match=r"roberta3\[peft\]"):
        RobertaForSequenceClassification.from_pretrained(tmp_path / "lora")
    # Models load as before: nothing imports peft on the way.
    assert not RobertaForSequenceClassification.from_pretrained(base)._hf_peft_config_loaded
