"""RobertaConfig: v4 defaults, presets, config.json round trips and validation."""

import json
import math

import pytest

from roberta_core import config as config_module
from roberta_core import weights
from roberta_core.config import ACTIVATIONS, PRESETS, RobertaConfig, parameter_count

# transformers v4.57 RobertaConfig() defaults, from its documentation and source.
V4_DEFAULTS = dict(
    vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12,
    pad_token_id=1, bos_token_id=0, eos_token_id=2, position_embedding_type="absolute", use_cache=True,
    classifier_dropout=None, is_decoder=False, add_cross_attention=False, problem_type=None,
    tie_word_embeddings=True, num_labels=2,
)

# The config.json transformers 4.57.6 writes for the published roberta-base checkpoint.
ROBERTA_BASE_JSON = {
    "architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
    "classifier_dropout": None, "dtype": "float32", "eos_token_id": 2, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "model_type": "roberta",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1,
    "position_embedding_type": "absolute", "transformers_version": "4.57.6", "type_vocab_size": 1,
    "use_cache": True, "vocab_size": 50265,
}


def test_v4_defaults():
    c = RobertaConfig()
    for key, value in V4_DEFAULTS.items():
        assert getattr(c, key) == value, key
    assert c.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert c.label2id == {"LABEL_0": 0, "LABEL_1": 1}


# The model-independent fields every v4 PretrainedConfig has (configuration_utils.py of 4.57.6),
# which v4's pipelines, Trainer and peft read from a model's config.
V4_COMMON_DEFAULTS = {
    "name_or_path": "", "_commit_hash": None, "is_encoder_decoder": False, "tie_encoder_decoder": False,
    "cross_attention_hidden_size": None, "chunk_size_feed_forward": 0, "pruned_heads": {}, "torchscript": False,
    "finetuning_task": None, "tokenizer_class": None, "prefix": None, "task_specific_params": None,
    "sep_token_id": None, "decoder_start_token_id": None, "use_bfloat16": False, "tf_legacy_loss": False,
}


def test_v4_common_fields(tmp_path):
    c = RobertaConfig()
    for key, value in V4_COMMON_DEFAULTS.items():
        assert getattr(c, key) == value, key
    c.pruned_heads[0] = [1]  # a default is the caller's copy
    assert RobertaConfig().pruned_heads == {} and c.pruned_heads == {}
    assert not set(V4_COMMON_DEFAULTS) & set(json.loads(c.to_json_string()))  # unset: not written
    set_ = RobertaConfig(sep_token_id=2, task_specific_params={"fill-mask": {"top_k": 3}})
    set_.save_pretrained(tmp_path)
    back = RobertaConfig.from_pretrained(tmp_path)
    assert back.sep_token_id == 2 and back.task_specific_params == {"fill-mask": {"top_k": 3}}
    # v4: a config read alone has no name (a model's from_pretrained gives it one); a copy keeps it
    assert back.name_or_path == ""
    back.name_or_path = tmp_path
    assert back.copy(num_labels=3).name_or_path == str(tmp_path)
    with pytest.raises(AttributeError, match="no attribute 'not_a_field'"):
        c.not_a_field


# The keys of v4's `RobertaConfig().to_dict()` (4.57.6, printed by it, less `transformers_version`): code
# written for v4 reads any of them from a config (`config.top_k`, `config.to_dict()["torchscript"]`).
V4_TO_DICT_KEYS = {
    "return_dict", "output_hidden_states", "torchscript", "dtype", "pruned_heads", "tie_word_embeddings",
    "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder", "cross_attention_hidden_size",
    "add_cross_attention", "tie_encoder_decoder", "architectures", "finetuning_task", "id2label", "label2id",
    "task_specific_params", "problem_type", "tokenizer_class", "prefix", "bos_token_id", "pad_token_id",
    "eos_token_id", "sep_token_id", "decoder_start_token_id", "max_length", "min_length", "do_sample",
    "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p",
    "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
    "bad_words_ids", "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id",
    "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens",
    "begin_suppress_tokens", "_name_or_path", "vocab_size", "hidden_size", "num_hidden_layers",
    "num_attention_heads", "hidden_act", "intermediate_size", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range",
    "layer_norm_eps", "position_embedding_type", "use_cache", "classifier_dropout", "model_type",
    "output_attentions", "tf_legacy_loss", "use_bfloat16",
}


def test_to_dict_has_v4_keys_and_generation_defaults(tmp_path):
    c = RobertaConfig()
    assert set(c.to_dict()) == V4_TO_DICT_KEYS
    # v4's generation defaults on every config (4.57.6's PretrainedConfig)
    assert (c.top_k, c.max_length, c.num_beams, c.do_sample, c.temperature, c.top_p) == (50, 20, 1, False, 1.0, 1.0)
    assert "top_k" in c and "top_k" in list(c)
    # unchanged, they stay out of config.json; set, they are written and read back
    assert "top_k" not in json.loads(c.to_json_string())
    assert json.loads(c.to_json_string(use_diff=False))["top_k"] == 50
    c.top_k = 7
    c.save_pretrained(tmp_path)
    back = RobertaConfig.from_pretrained(tmp_path)
    assert back.top_k == 7 and back == c and back.to_dict() == {**c.to_dict(), "_name_or_path": ""}
    assert RobertaConfig.from_dict(c.to_dict()) == c


def test_update_from_string_as_v4():
    c = RobertaConfig()
    c.update_from_string("hidden_size=24,output_attentions=true,hidden_act=relu,layer_norm_eps=1e-3,top_k=3")
    assert (c.hidden_size, c.output_attentions, c.hidden_act, c.layer_norm_eps, c.top_k) == (24, True, "relu", 1e-3, 3)
    with pytest.raises(ValueError, match="key nokey isn't in the original config dict"):
        c.update_from_string("nokey=1")
    with pytest.raises(ValueError, match="as int for config key hidden_size"):
        c.update_from_string("hidden_size=big")
    with pytest.raises(ValueError, match="hidden_size"):  # checked as any update, and then undone
        c.update_from_string("top_k=9,hidden_size=17")
    assert (c.hidden_size, c.top_k) == (24, 3)


def test_presets_match_published_configs():
    c = RobertaConfig.from_preset("roberta-base")
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "layer_norm_eps"):
        assert getattr(c, key) == ROBERTA_BASE_JSON[key], key
    assert c.max_sequence_length == 512
    large = RobertaConfig.from_preset("roberta-large")
    assert (large.hidden_size, large.num_hidden_layers, large.num_attention_heads) == (1024, 24, 16)
    assert RobertaConfig.from_preset("distilroberta-base").num_hidden_layers == 6
    assert set(PRESETS) >= {"roberta-base", "roberta-large", "distilroberta-base", "tiny"}
    tiny = RobertaConfig.from_preset("tiny")
    assert tiny.hidden_size % tiny.num_attention_heads == 0 and tiny.intermediate_size != tiny.hidden_size


def test_reads_transformers_config_json_and_keeps_unknown_keys(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(ROBERTA_BASE_JSON))
    c = RobertaConfig.from_pretrained(tmp_path)
    assert c.max_position_embeddings == 514 and str(c.dtype).rpartition(".")[2] == "float32"
    out = tmp_path / "out"
    c.save_pretrained(out)
    written = json.loads((out / "config.json").read_text())
    for key, value in ROBERTA_BASE_JSON.items():
        assert written[key] == value, key
    assert RobertaConfig.from_pretrained(out) == c


# What transformers 4.57.6 writes for `RobertaConfig(**TINY_V4, **extra).save_pretrained(d)` (recorded from it,
# less its `transformers_version`): every RoBERTa field, and a field every v4 config has only where it
# differs from v4's generic default or the class's (`dtype` comes from a model's save, below).
TINY_V4 = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
TINY_V4_JSON = {
    "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "classifier_dropout": None, "eos_token_id": 2,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.02,
    "intermediate_size": 37, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "roberta",
    "num_attention_heads": 2, "num_hidden_layers": 2, "pad_token_id": 1, "position_embedding_type": "absolute",
    "type_vocab_size": 2, "use_cache": True, "vocab_size": 100,
}


@pytest.mark.parametrize("extra, added", [
    ({}, {}),
    (dict(num_labels=3, is_decoder=True), {
        "is_decoder": True, "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
        "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}}),
])
def test_config_json_holds_what_v4_writes(tmp_path, extra, added):
    c = RobertaConfig(**TINY_V4, **extra)
    c.save_pretrained(save_directory=tmp_path)
    text = (tmp_path / "config.json").read_text()
    assert json.loads(text) == {**TINY_V4_JSON, **added} == json.loads(json.dumps(c.to_diff_dict()))
    if "id2label" in c.to_diff_dict():  # v4's dicts key labels by int (JSON writes them as strings)
        assert all(isinstance(k, int) for k in c.to_diff_dict()["id2label"])
    assert text == c.to_json_string() and list(json.loads(text)) == sorted(json.loads(text))  # keys sorted, as v4
    assert RobertaConfig.from_pretrained(tmp_path) == c
    # every field on request, as v4's use_diff=False
    assert json.loads(c.to_json_string(use_diff=False))["output_hidden_states"] is False
    c.to_json_file(tmp_path / "full.json", use_diff=False)
    assert json.loads((tmp_path / "full.json").read_text())["return_dict"] is True


def test_overrides_that_name_no_field_are_returned_not_set(tmp_path):
    RobertaConfig(**TINY_V4).save_pretrained(tmp_path)
    # as v4: (config, {'foo': 1}), and foo is not an attribute (nor written to config.json)
    c, unused = RobertaConfig.from_pretrained(tmp_path, foo=1, hidden_size=64, num_labels=3, return_unused_kwargs=True)
    assert unused == {"foo": 1} and (c.hidden_size, c.num_labels) == (64, 3) and not hasattr(c, "foo")
    assert "foo" not in RobertaConfig.from_pretrained(pretrained_model_name_or_path=tmp_path, foo=1).to_dict()
    c, unused = RobertaConfig.from_dict({"hidden_size": 64, "num_attention_heads": 2}, bar=2, return_unused_kwargs=True)
    assert unused == {"bar": 2} and c.hidden_size == 64
    # a field the file itself holds stays a field, and copy() may add one
    assert RobertaConfig.from_dict({"custom": 1}, custom=2).custom == 2
    assert RobertaConfig().copy(custom=3).custom == 3


def test_dtype_torch_dtype_and_the_v4_accessors(tmp_path):
    # files of v4 before 4.56 say torch_dtype; v4 reads it as dtype and writes dtype
    c = RobertaConfig.from_dict({**TINY_V4, "torch_dtype": "bfloat16"})
    # a name, or torch's dtype of that name where the program has imported torch (v4 with torch)
    assert c.dtype is c.torch_dtype and str(c.dtype).rpartition(".")[2] == "bfloat16"
    assert json.loads(c.to_json_string())["dtype"] == "bfloat16" and "torch_dtype" not in c.to_dict()

    class FakeTorchDtype:  # a backend may record its framework's dtype object, written by its name
        def __str__(self):
            return "torch.float16"

    c.torch_dtype = FakeTorchDtype()
    assert json.loads(c.to_json_string())["dtype"] == "float16"
    assert RobertaConfig().dtype is None and "dtype" not in RobertaConfig().to_diff_dict()
    # peft's prompt learning asks a config for its text part, and whether it holds one
    assert c.get_text_config() is c and "text_config" not in c and "hidden_size" in c and "vocab_size" in list(c)
    c.update({"hidden_dropout_prob": 0.3, "new_field": 1})
    assert c.hidden_dropout_prob == 0.3 and c.new_field == 1
    with pytest.raises(ValueError, match="hidden_dropout_prob"):
        c.update({"hidden_dropout_prob": 3.0})


def test_labels_round_trip_with_string_keys(tmp_path):
    c = RobertaConfig.from_preset("tiny", id2label={0: "neg", 1: "neu", 2: "pos"})
    assert c.num_labels == 3 and c.label2id == {"neg": 0, "neu": 1, "pos": 2}
    c.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["id2label"] == {"0": "neg", "1": "neu", "2": "pos"}
    back = RobertaConfig.from_pretrained(tmp_path)
    assert back.id2label == {0: "neg", 1: "neu", 2: "pos"}
    # num_labels given at load time replaces the stored labels, as in v4 — unless they are that many
    assert RobertaConfig.from_pretrained(tmp_path, num_labels=5).num_labels == 5
    kept = RobertaConfig.from_pretrained(tmp_path, num_labels=3)
    assert kept.id2label == {0: "neg", 1: "neu", 2: "pos"} and kept.label2id == {"neg": 0, "neu": 1, "pos": 2}
    assert RobertaConfig.from_dict(c.to_dict(), num_labels=3).id2label == c.id2label


def test_v4_config_keywords_and_attn_implementation(tmp_path):
    # v4 sets any attribute every v4 config has (torchscript, max_length, ...) from a keyword
    RobertaConfig(**TINY_V4).save_pretrained(tmp_path)
    c, unused = RobertaConfig.from_pretrained(tmp_path, torchscript=True, max_length=30, finetuning_task="sst2",
                                              attn_implementation="eager", return_unused_kwargs=True)
    assert unused == {} and (c.torchscript, c.max_length, c.finetuning_task) == (True, 30, "sst2")
    # attn_implementation is v4's config._attn_implementation, never a field of config.json
    assert c._attn_implementation == "eager" and "attn_implementation" not in c.to_json_string()
    assert RobertaConfig()._attn_implementation is None and c.copy()._attn_implementation == "eager"
    assert json.loads(c.to_json_string())["max_length"] == 30


def test_num_labels_setter():
    c = RobertaConfig.from_preset("tiny")
    c.num_labels = 4
    assert c.id2label == {i: f"LABEL_{i}" for i in range(4)}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(hidden_size=30, num_attention_heads=4), ValueError, "not divisible by num_attention_heads"),
        (dict(hidden_act="gelu_wrong"), ValueError, "hidden_act='gelu_wrong' is not supported"),
        (dict(pad_token_id=100), ValueError, r"pad_token_id=100 is outside the vocabulary: allowed range is 0\.\.99"),
        (dict(num_hidden_layers=-1), ValueError, "num_hidden_layers must be >= 1"),
        (dict(hidden_size=32.0), TypeError, "hidden_size must be an integer"),
        (dict(position_embedding_type="rotary"), ValueError, "position_embedding_type='rotary'"),
        (dict(hidden_dropout_prob=1.5), ValueError, r"hidden_dropout_prob must be a probability in \[0, 1\)"),
        (dict(layer_norm_eps=0), ValueError, "layer_norm_eps must be a positive"),
        (dict(problem_type="ranking"), ValueError, "problem_type='ranking'"),
        (dict(max_position_embeddings=2), ValueError, "leaves no position for a token"),
        (dict(is_decoder="yes"), TypeError, "is_decoder must be true or false"),
        (dict(num_labels=0), ValueError, "num_labels must be a positive integer"),
        # a hostile config.json: fits in memory, yet building its label names or its layers would hang
        (dict(num_labels=1_000_001), ValueError, "num_labels must be at most 1,000,000"),
        (dict(num_hidden_layers=513), ValueError, "num_hidden_layers must be at most 512"),
        (dict(num_labels=3, id2label={0: "a", 1: "b"}), ValueError, "disagrees with id2label"),
        (dict(pad_token_id=None), ValueError, r"pad_token_id must be a token id in 0\.\.99, got None"),
    ],
)
def test_invalid_configs(kwargs, error, match):
    with pytest.raises(error, match=match):
        RobertaConfig.from_preset("tiny", **kwargs)


def test_every_activation_is_accepted():
    for act in ACTIVATIONS:
        assert RobertaConfig.from_preset("tiny", hidden_act=act).hidden_act == act


def test_bad_config_files(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        RobertaConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": "768"}))
    with pytest.raises(TypeError, match=r"config\.json: hidden_size must be an integer"):
        RobertaConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps([1, 2]))
    with pytest.raises(TypeError, match="must be a JSON object"):
        RobertaConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        RobertaConfig.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a checkpoint directory"):
        RobertaConfig.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown preset"):
        RobertaConfig.from_preset("roberta-huge")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    c = RobertaConfig.from_preset("tiny")
    c.save_pretrained(tmp_path)
    c.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


# ---------------------------------------------------------------------------- sizes


def table_count(config: RobertaConfig, head: str) -> int:
    """Parameters of `head` summed key by key from the weight table (the independent oracle)."""
    return sum(math.prod(shape) for shape in weights.parameter_shapes(config, head).values())


# The published configs of xlm-roberta-xl / -xxl (Goyal et al. 2021): 3.5B and 10.7B parameters.
XLM_R_XL = dict(vocab_size=250880, hidden_size=2560, num_hidden_layers=36, num_attention_heads=32,
                intermediate_size=10240, max_position_embeddings=514, type_vocab_size=1, model_type="xlm-roberta")
XLM_R_XXL = dict(XLM_R_XL, hidden_size=4096, num_hidden_layers=48, num_attention_heads=32, intermediate_size=16384)


def test_parameter_count_is_the_weight_tables_and_the_published_sizes():
    # Hugging Face's counts for the published masked-LM checkpoints.
    assert parameter_count(RobertaConfig.from_preset("roberta-base"), "masked_lm") == 124_697_433
    assert parameter_count(RobertaConfig.from_preset("roberta-large"), "masked_lm") == 355_412_057
    variants = [
        dict(), dict(position_embedding_type="relative_key_query"), dict(is_decoder=True, add_cross_attention=True),
        dict(tie_word_embeddings=False, num_labels=5),
    ]
    for overrides in variants:
        c = RobertaConfig.from_preset("tiny", **overrides)
        counts = {head: table_count(c, head) for head in weights.HEADS}
        for head, count in counts.items():
            assert parameter_count(c, head) == count, (overrides, head)
        assert parameter_count(c) == max(counts.values())


@pytest.mark.parametrize("field, value", [
    ("vocab_size", 10**12), ("hidden_size", 2**40), ("num_hidden_layers", 10**9), ("num_labels", 10**9),
    ("max_position_embeddings", 10**13), ("intermediate_size", 10**12),
])
def test_sizes_that_cannot_fit_in_memory_are_refused_with_the_count(field, value):
    tiny = RobertaConfig.from_preset("tiny")
    overrides = {field: value, **({"num_attention_heads": 1} if field == "hidden_size" else {})}
    with pytest.raises(ValueError, match=r"this configuration has [\d,]+ parameters .* more than this machine's") as info:
        RobertaConfig.from_preset("tiny", **overrides)
    assert f"{field}={value}" in str(info.value)
    # The count named is the model's: the tiny model's table, grown by what `field` adds per unit.
    count = int(str(info.value).split(" parameters")[0].rsplit(" ", 1)[1].replace(",", ""))
    if field == "vocab_size":  # a row of the word table and one LM bias per token
        assert count == table_count(tiny, "masked_lm") + (value - 100) * (32 + 1)
    if field == "num_hidden_layers":
        layer = sum(math.prod(s) for k, s in weights.parameter_shapes(tiny, "model").items() if ".layer.0." in k)
        assert count == table_count(tiny, "masked_lm") + (value - 2) * layer
    if field == "num_labels":  # the classification head's out_proj grows
        assert count == table_count(tiny, "sequence_classification") + (value - 2) * (32 + 1)


def test_a_label_count_that_cannot_fit_is_refused_before_its_names_are_built():
    c = RobertaConfig.from_preset("tiny")
    with pytest.raises(ValueError, match="num_labels=1000000000"):
        c.num_labels = 10**9
    assert c.num_labels == 2


def test_the_line_is_this_machines_physical_memory(monkeypatch):
    monkeypatch.setattr(config_module, "_physical_memory", lambda: 128 * 2**30)
    assert 3.4e9 < parameter_count(RobertaConfig(**XLM_R_XL)) < 3.6e9
    assert 10.6e9 < parameter_count(RobertaConfig(**XLM_R_XXL)) < 10.8e9
    monkeypatch.setattr(config_module, "_physical_memory", lambda: 16 * 2**30)
    RobertaConfig(**XLM_R_XL)  # 7 GB in bfloat16: fits a 16 GiB machine
    with pytest.raises(ValueError, match=r"has 10,7\d\d,\d{3},\d{3} parameters .*21.\d GB even at 2 bytes per parameter, "
                                         r"more than this machine's 17.2 GB"):
        RobertaConfig(**XLM_R_XXL)
    # Where the platform cannot tell, the line is 1 TiB.
    monkeypatch.undo()

    def no_sysconf(name):
        raise ValueError(f"unrecognized configuration name {name!r}")

    monkeypatch.setattr(config_module.os, "sysconf", no_sysconf)
    assert config_module._physical_memory() == 2**40


# ---------------------------------------------------------------------------- config.json bytes


def test_config_files_that_are_not_utf8_json_are_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes('{"hidden_act": "gélu"}'.encode("latin-1"))  # é is the one byte 0xe9 in Latin-1
    with pytest.raises(ValueError, match=r"config\.json is not UTF-8 text \(byte 0xe9 at offset 17\)"):
        RobertaConfig.from_pretrained(tmp_path)
    path.write_text('{\n  "hidden_size": 32,\n  oops\n}\n')
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON: Expecting property name .* at line 3, column 3"):
        RobertaConfig.from_pretrained(tmp_path)
    path.write_text("[" * 200_000 + "]" * 200_000)  # deeper than the parser's recursion
    with pytest.raises(ValueError, match=r"config\.json: JSON nested more deeply than Python can read"):
        RobertaConfig.from_pretrained(tmp_path)
    path.write_text(json.dumps({"extra": json.loads("[" * 40 + "]" * 40)}))  # parses, then would overflow copies
    with pytest.raises(ValueError, match=r"config\.json: JSON nested more than 32 levels deep"):
        RobertaConfig.from_pretrained(tmp_path)
    # A byte-order mark (some editors write one) is not an error.
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(PRESETS["tiny"]).encode())
    assert RobertaConfig.from_pretrained(tmp_path).hidden_size == 32


def test_dtype_names_are_torch_dtypes_where_torch_is_imported():
    # v4 (with torch): RobertaConfig(torch_dtype="float16").dtype is torch.float16, written back as "float16"
    torch = pytest.importorskip("torch")
    c = RobertaConfig(torch_dtype="float16")
    assert c.dtype is torch.float16 and c.torch_dtype is torch.float16
    assert c.to_dict()["dtype"] == "float16" and json.loads(c.to_json_string())["dtype"] == "float16"
    assert RobertaConfig(dtype="bfloat16").dtype is torch.bfloat16 and c.copy() == c
    assert RobertaConfig(dtype="auto").dtype == "auto"  # not a torch dtype: kept as given


# ---------------------------------------------------------------------------- v4's ConfigTester


def test_v4_config_tester_details():
    # v4 4.57.6's PretrainedConfig: torchscript turns ModelOutputs into tuples (use_return_dict False),
    # label2id is kept as given ({"label": "0"} in v4's check_config_arguments_init), and the class
    # attributes code around a config reads.
    assert RobertaConfig().use_return_dict is True
    assert RobertaConfig(return_dict=False).use_return_dict is False
    assert RobertaConfig(torchscript=True).use_return_dict is False
    assert RobertaConfig(id2label={0: "label"}, label2id={"label": "0"}).label2id == {"label": "0"}
    assert RobertaConfig.attribute_map == {} and RobertaConfig.sub_configs == {}
    assert RobertaConfig.has_no_defaults_at_init is False


def test_get_config_dict_reads_without_building(tmp_path):
    RobertaConfig(hidden_size=48, num_attention_heads=4).save_pretrained(tmp_path)
    data, rest = RobertaConfig.get_config_dict(tmp_path, revision="main", foo=1)
    # v4: the file's mapping plus `_commit_hash` (None outside a Hub cache), the Hub keywords taken
    assert data == dict(json.loads((tmp_path / "config.json").read_text()), _commit_hash=None)
    assert rest == {"foo": 1}
    snapshot = tmp_path / "models--a--b" / "snapshots" / ("c" * 40)
    RobertaConfig().save_pretrained(snapshot)
    data, _ = RobertaConfig.get_config_dict(snapshot)
    assert data["_commit_hash"] == "c" * 40
    # v4: a config built from that mapping keeps the commit and never writes it
    config = RobertaConfig.from_dict(data)
    assert config._commit_hash == "c" * 40 and "_commit_hash" not in config.to_json_string()
