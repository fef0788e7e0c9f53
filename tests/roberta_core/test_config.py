"""RobertaConfig: v4 defaults, presets, config.json round trips and validation."""

import json

import pytest

from roberta_core.config import ACTIVATIONS, PRESETS, RobertaConfig

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
    assert c.max_position_embeddings == 514 and c.dtype == "float32"
    out = tmp_path / "out"
    c.save_pretrained(out)
    written = json.loads((out / "config.json").read_text())
    for key, value in ROBERTA_BASE_JSON.items():
        assert written[key] == value, key
    assert RobertaConfig.from_pretrained(out) == c


def test_labels_round_trip_with_string_keys(tmp_path):
    c = RobertaConfig.from_preset("tiny", id2label={0: "neg", 1: "neu", 2: "pos"})
    assert c.num_labels == 3 and c.label2id == {"neg": 0, "neu": 1, "pos": 2}
    c.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["id2label"] == {"0": "neg", "1": "neu", "2": "pos"}
    back = RobertaConfig.from_pretrained(tmp_path)
    assert back.id2label == {0: "neg", 1: "neu", 2: "pos"}
    # num_labels given at load time replaces the stored labels, as in v4
    assert RobertaConfig.from_pretrained(tmp_path, num_labels=5).num_labels == 5


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
        (dict(num_labels=3, id2label={0: "a", 1: "b"}), ValueError, "disagrees with id2label"),
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
