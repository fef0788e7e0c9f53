"""v4's Auto classes: `AutoConfig` and `AutoTokenizer` (roberta_core) and each backend's
`AutoModel*` (`TFAutoModel*`, `FlaxAutoModel*`) pick the family member's class by config.json's
`model_type`, as v4's do; a model type outside the family is refused naming the ones we load."""

from __future__ import annotations

import pytest

from roberta_core import (AutoConfig, AutoTokenizer, CamembertConfig, RobertaConfig, RobertaTokenizer,
                          RobertaTokenizerFast, XLMRobertaConfig)
from roberta_core.auto import AUTO_HEADS
from tests.helpers import shared_data

SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def test_auto_config_picks_the_family_members_class(tmp_path):
    for config_class in (RobertaConfig, XLMRobertaConfig, CamembertConfig):
        config_class(**SMALL).save_pretrained(tmp_path / config_class.model_type)
        loaded = AutoConfig.from_pretrained(tmp_path / config_class.model_type, num_labels=4)
        assert type(loaded) is config_class and loaded.num_labels == 4 and loaded.hidden_size == 32
    assert type(AutoConfig.for_model("camembert", hidden_size=48, num_attention_heads=4)) is CamembertConfig
    with pytest.raises(ValueError, match="'bert' is not a member of the RoBERTa family.*'xlm-roberta'"):
        AutoConfig.for_model("bert")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="'bert' is not a member"):
        AutoConfig.from_pretrained(tmp_path / "bert")
    with pytest.raises(EnvironmentError, match="from_pretrained"):
        AutoConfig()


def test_auto_tokenizer_fast_by_default_slow_on_request():
    folder = shared_data("roberta-base-tokenizer")
    if not folder.is_dir():
        pytest.skip(f"the roberta-base tokenizer files are not here ({folder}; a fresh clone has no ../shared)")
    fast = AutoTokenizer.from_pretrained(folder)
    slow = AutoTokenizer.from_pretrained(folder, use_fast=False)
    assert type(fast) is RobertaTokenizerFast and type(slow) is RobertaTokenizer
    # v4 4.57.6 (AutoTokenizer on roberta-base): "hello world" -> [0, 42891, 232, 2], both classes
    assert fast("hello world")["input_ids"] == slow("hello world")["input_ids"] == [0, 42891, 232, 2]


@pytest.mark.parametrize("backend,module,prefix", [("roberta_pt", "torch", ""), ("roberta_tf", "tensorflow", "TF"),
                                                   ("roberta_flax", "flax", "Flax")])
def test_backend_auto_models_pick_the_family_member(tmp_path, backend, module, prefix):
    pytest.importorskip(module)
    import importlib

    package = importlib.import_module(backend)
    for auto in AUTO_HEADS:
        assert hasattr(package, prefix + auto), prefix + auto
    getattr(package, f"{prefix}XLMRobertaForMaskedLM")(XLMRobertaConfig(**SMALL)).save_pretrained(tmp_path)
    model = getattr(package, f"{prefix}AutoModelForMaskedLM").from_pretrained(tmp_path)
    assert type(model).__name__ == f"{prefix}XLMRobertaForMaskedLM" and type(model.config) is XLMRobertaConfig
    with pytest.warns(UserWarning):  # the MLM head unused, the classifier new: reported as v4 does
        model = getattr(package, f"{prefix}AutoModelForSequenceClassification").from_pretrained(tmp_path, num_labels=3)
    assert type(model).__name__ == f"{prefix}XLMRobertaForSequenceClassification" and model.config.num_labels == 3
    model = getattr(package, f"{prefix}AutoModel").from_config(RobertaConfig(**SMALL))
    assert type(model).__name__ == f"{prefix}RobertaModel"
    with pytest.raises(EnvironmentError, match="from_pretrained"):
        getattr(package, f"{prefix}AutoModel")()
