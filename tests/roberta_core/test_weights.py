"""The canonical weights table: names and shapes per head, load planning, framework name rules."""

import warnings

import numpy as np
import pytest

from roberta_core.config import RobertaConfig
from roberta_core.weights import (
    HEADS,
    CheckpointKeyError,
    from_flax_path,
    from_tf_name,
    head_for_architecture,
    heads_served,
    is_transposed,
    parameter_shapes,
    plan_load,
    tied_keys,
    to_flax_path,
    to_tf_name,
)
from tests.helpers import tiny_config


def roberta_base_param_count(head: str) -> int:
    """Published parameter counts of roberta-base (transformers' num_parameters()): the encoder
    with pooler is 124,645,632; the MLM head adds dense+LN+bias (decoder tied)."""
    return {"model": 124_645_632, "masked_lm": 124_697_433}[head]


@pytest.mark.parametrize("head", ["model", "masked_lm"])
def test_roberta_base_parameter_counts(head):
    shapes = parameter_shapes(RobertaConfig.from_preset("roberta-base"), head)
    assert sum(int(np.prod(s)) for s in shapes.values()) == roberta_base_param_count(head)


def test_head_keys_follow_transformers_names():
    c = tiny_config(num_labels=3)
    assert "embeddings.word_embeddings.weight" in parameter_shapes(c, "model")
    assert "pooler.dense.weight" in parameter_shapes(c, "model")
    mlm = parameter_shapes(c, "masked_lm")
    assert "roberta.pooler.dense.weight" not in mlm  # v4 builds the MLM encoder without pooler
    assert "lm_head.decoder.weight" not in mlm  # tied to the word embeddings
    assert mlm["lm_head.bias"] == (100,)
    assert parameter_shapes(c, "sequence_classification")["classifier.out_proj.weight"] == (3, 32)
    assert parameter_shapes(c, "multiple_choice")["classifier.weight"] == (1, 32)
    assert "roberta.pooler.dense.weight" in parameter_shapes(c, "multiple_choice")
    assert parameter_shapes(c, "token_classification")["classifier.weight"] == (3, 32)
    # v4: nn.Linear(hidden_size, num_labels) (issue 14; its forward needs num_labels == 2)
    assert parameter_shapes(c, "question_answering")["qa_outputs.weight"] == (3, 32)
    assert parameter_shapes(tiny_config(), "question_answering")["qa_outputs.weight"] == (2, 32)
    # add_pooling_layer=False: a bare model without the pooler (issue 14)
    assert "pooler.dense.weight" not in parameter_shapes(c, "model", pooled=False)
    assert parameter_shapes(c, "model")["encoder.layer.1.intermediate.dense.weight"] == (37, 32)
    rel = parameter_shapes(tiny_config(position_embedding_type="relative_key"), "model")
    assert rel["encoder.layer.0.attention.self.distance_embedding.weight"] == (2 * 66 - 1, 8)
    cross = parameter_shapes(tiny_config(is_decoder=True, add_cross_attention=True), "causal_lm")
    assert "roberta.encoder.layer.0.crossattention.self.query.weight" in cross
    untied = parameter_shapes(tiny_config(tie_word_embeddings=False), "masked_lm")
    assert untied["lm_head.decoder.weight"] == (100, 32)


def test_architecture_names():
    assert head_for_architecture("TFRobertaForMaskedLM") == "masked_lm"
    assert head_for_architecture("FlaxRobertaModel") == "model"
    with pytest.raises(ValueError, match="unknown architecture 'BertModel'"):
        head_for_architecture("BertModel")


def shapes_of(config, head, **extra):
    return {**parameter_shapes(config, head), **extra}


def test_plan_mlm_checkpoint_into_classifier():
    c = tiny_config(num_labels=3)
    source = shapes_of(c, "masked_lm", **{"roberta.pooler.dense.weight": (32, 32), "lm_head.decoder.weight": (100, 32)})
    plan = plan_load(c, "sequence_classification", source)
    assert set(plan.missing) == {"classifier.dense.weight", "classifier.dense.bias",
                                 "classifier.out_proj.weight", "classifier.out_proj.bias"}
    assert "roberta.pooler.dense.weight" in plan.unused and "lm_head.bias" in plan.unused
    assert "lm_head.decoder.weight" in plan.unused
    assert not plan.unknown and not plan.mismatched
    with pytest.warns(UserWarning, match="newly initialised"):
        plan.check()
    with pytest.raises(CheckpointKeyError, match="strict=True"):
        plan.check(strict=True)


def test_plan_bare_model_checkpoint_into_head_and_back():
    c = tiny_config()
    plan = plan_load(c, "masked_lm", parameter_shapes(c, "model"))
    assert plan.mapping["roberta.embeddings.word_embeddings.weight"] == "embeddings.word_embeddings.weight"
    assert set(plan.missing) == {k for k in parameter_shapes(c, "masked_lm") if k.startswith("lm_head")}
    plan = plan_load(c, "model", parameter_shapes(c, "masked_lm"))
    assert plan.mapping["embeddings.word_embeddings.weight"] == "roberta.embeddings.word_embeddings.weight"


def test_plan_legacy_gamma_beta_and_buffers():
    c = tiny_config()
    source = {}
    for k, s in parameter_shapes(c, "masked_lm").items():
        if k.endswith("LayerNorm.weight"):
            k = k[: -len("weight")] + "gamma"
        source[k] = s
    source["roberta.embeddings.position_ids"] = (1, 66)
    plan = plan_load(c, "masked_lm", source)
    assert not plan.missing and not plan.unknown and not plan.unused
    assert plan.mapping["roberta.embeddings.LayerNorm.weight"] == "roberta.embeddings.LayerNorm.gamma"


def test_plan_unknown_keys_and_mismatches():
    c = tiny_config()
    source = shapes_of(c, "masked_lm", **{"roberta.encoder.layer.0.attention.self.qeury.weight": (32, 32),
                                          "bert.pooler.dense.weight": (32, 32)})
    plan = plan_load(c, "masked_lm", source)
    assert sorted(plan.unknown) == ["bert.pooler.dense.weight", "roberta.encoder.layer.0.attention.self.qeury.weight"]
    with pytest.warns(UserWarning, match="keys no RoBERTa head owns"):
        plan.check()
    with pytest.raises(CheckpointKeyError, match="qeury"):
        plan.check(strict=True)

    c3 = tiny_config(num_labels=3)
    source = shapes_of(tiny_config(num_labels=2), "sequence_classification")
    plan = plan_load(c3, "sequence_classification", source)
    assert plan.mismatched == [("classifier.out_proj.weight", (2, 32), (3, 32)), ("classifier.out_proj.bias", (2,), (3,))]
    with pytest.raises(CheckpointKeyError, match=r"classifier.out_proj.weight \(2, 32\) != expected \(3, 32\)"):
        plan.check()
    plan = plan_load(c3, "sequence_classification", source, ignore_mismatched_sizes=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan.check()
    assert any("ignore_mismatched_sizes=True" in str(w.message) for w in caught)


def test_plan_two_spellings_of_one_key_is_an_error():
    c = tiny_config()
    source = shapes_of(c, "masked_lm", **{"embeddings.word_embeddings.weight": (100, 32)})
    with pytest.raises(CheckpointKeyError, match="two spellings"):
        plan_load(c, "masked_lm", source)


def test_heads_served():
    c = tiny_config()
    assert heads_served(c, parameter_shapes(c, "masked_lm")) == ["causal_lm", "masked_lm"]
    assert "model" in heads_served(c, parameter_shapes(c, "model"))


# Names as transformers v4 writes them (TF h5 variable names, Flax param paths), for one key of
# every kind: linear kernel, bias, LayerNorm, each embedding, LM head bias.
TF_NAMES = {
    "roberta.embeddings.word_embeddings.weight": "roberta/embeddings/word_embeddings/weight",
    "roberta.embeddings.position_embeddings.weight": "roberta/embeddings/position_embeddings/embeddings",
    "roberta.embeddings.token_type_embeddings.weight": "roberta/embeddings/token_type_embeddings/embeddings",
    "roberta.embeddings.LayerNorm.weight": "roberta/embeddings/LayerNorm/gamma",
    "roberta.encoder.layer.1.attention.self.query.weight": "roberta/encoder/layer_._1/attention/self/query/kernel",
    "roberta.encoder.layer.1.output.LayerNorm.bias": "roberta/encoder/layer_._1/output/LayerNorm/beta",
    "lm_head.bias": "lm_head/bias",
    "lm_head.layer_norm.weight": "lm_head/layer_norm/gamma",
    "classifier.out_proj.weight": "classifier/out_proj/kernel",
    "qa_outputs.bias": "qa_outputs/bias",
}
FLAX_PATHS = {
    "roberta.embeddings.word_embeddings.weight": ("roberta", "embeddings", "word_embeddings", "embedding"),
    "roberta.embeddings.LayerNorm.weight": ("roberta", "embeddings", "LayerNorm", "scale"),
    "roberta.encoder.layer.1.attention.self.query.weight": ("roberta", "encoder", "layer", "1", "attention", "self", "query", "kernel"),
    "lm_head.bias": ("lm_head", "bias"),
    "lm_head.layer_norm.bias": ("lm_head", "layer_norm", "bias"),
    "classifier.dense.weight": ("classifier", "dense", "kernel"),
}


@pytest.mark.parametrize("canonical, tf", TF_NAMES.items())
def test_tf_names(canonical, tf):
    assert to_tf_name(canonical) == tf
    assert from_tf_name(f"tf_roberta_for_masked_lm/{tf}:0") == canonical
    assert from_tf_name(tf) == canonical


@pytest.mark.parametrize("canonical, path", FLAX_PATHS.items())
def test_flax_paths(canonical, path):
    assert to_flax_path(canonical) == path
    assert from_flax_path(path) == canonical


def test_bare_model_flax_tree_maps_to_prefixed_key():
    assert from_flax_path(("encoder", "layer", "0", "output", "dense", "kernel")) == "roberta.encoder.layer.0.output.dense.weight"


def test_transposition_rule_covers_every_key():
    c = tiny_config(position_embedding_type="relative_key_query", is_decoder=True, add_cross_attention=True)
    for head in HEADS:
        for key, shape in parameter_shapes(c, head).items():
            assert is_transposed(key) == (len(shape) == 2 and "embeddings" not in key and "distance_embedding" not in key)
            assert from_tf_name(to_tf_name(key)) == (key if not key.startswith(("embeddings", "encoder", "pooler")) else "roberta." + key)
            assert from_flax_path(to_flax_path(key)).endswith(key)


def test_unknown_framework_names_are_errors():
    with pytest.raises(CheckpointKeyError, match="not under roberta/"):
        from_tf_name("bert/embeddings/word_embeddings/weight:0")
    with pytest.raises(CheckpointKeyError, match="unknown leaf"):
        from_flax_path(("roberta", "embeddings", "LayerNorm", "gamma2"))


# A decoder with cross-attention and relative positions: every optional row of the table is present.
FULL = dict(position_embedding_type="relative_key_query", is_decoder=True, add_cross_attention=True, num_labels=3)


@pytest.mark.parametrize("head", HEADS)
def test_every_key_round_trips_through_tf_and_flax_names(head):
    c = tiny_config(**FULL)
    keys = list(parameter_shapes(c, head)) + list(tied_keys(c, head))
    tf_names, flax_paths = set(), set()
    for key in keys:
        full = key if head != "model" else "roberta." + key
        tf = to_tf_name(key)
        assert from_tf_name(tf) == full
        assert from_tf_name(f"tf_roberta_for_causal_lm/{tf}:0") == full
        path = to_flax_path(key)
        assert from_flax_path(path) == full
        if path[0] == "roberta":  # a bare Flax RobertaModel tree has no 'roberta' level
            assert from_flax_path(path[1:]) == full
        tf_names.add(tf)
        flax_paths.add(path)
    assert len(tf_names) == len(flax_paths) == len(keys)  # no two keys share a name


def test_parameter_shapes_match_the_published_layout():
    """Counts and shapes written from the transformers v4 RoBERTa modules (2 layers, H=32, I=37,
    V=100, P=66, 4 heads of 8): embeddings 5 tensors; a layer has self-attention q/k/v (weight and
    bias) + output dense + LayerNorm = 10, plus a relative distance table = 11, cross-attention 10,
    intermediate 2, output dense + LayerNorm 4; the pooler 2; LM head dense, layer_norm, bias 5;
    classifier 4 (dense + out_proj) or 2."""
    c = tiny_config(**FULL)
    encoder = 5 + 2 * (11 + 10 + 2 + 4)
    expected_counts = {"model": encoder + 2, "causal_lm": encoder + 5, "masked_lm": encoder + 5,
                       "sequence_classification": encoder + 4, "multiple_choice": encoder + 2 + 2,
                       "token_classification": encoder + 2, "question_answering": encoder + 2}
    assert {h: len(parameter_shapes(c, h)) for h in HEADS} == expected_counts
    shapes = parameter_shapes(c, "causal_lm")
    assert shapes["roberta.embeddings.position_embeddings.weight"] == (66, 32)
    assert shapes["roberta.embeddings.token_type_embeddings.weight"] == (1, 32)
    assert shapes["roberta.encoder.layer.1.attention.self.distance_embedding.weight"] == (2 * 66 - 1, 32 // 4)
    assert "roberta.encoder.layer.1.crossattention.self.distance_embedding.weight" not in shapes
    assert shapes["roberta.encoder.layer.1.crossattention.self.value.weight"] == (32, 32)
    assert shapes["roberta.encoder.layer.0.intermediate.dense.weight"] == (37, 32)
    assert shapes["roberta.encoder.layer.0.output.dense.weight"] == (32, 37)
    assert shapes["lm_head.bias"] == (100,)
    assert parameter_shapes(c, "sequence_classification")["classifier.out_proj.weight"] == (3, 32)
    assert parameter_shapes(c, "multiple_choice")["classifier.weight"] == (1, 32)
    # The parameter count from the architecture: embeddings, per layer, pooler.
    H, I, V, P, R, D = 32, 37, 100, 66, 131, 8
    attention = 3 * (H * H + H) + (H * H + H) + 2 * H
    layer = attention + R * D + attention + (I * H + I) + (H * I + H) + 2 * H
    model = V * H + P * H + H + 2 * H + 2 * layer + (H * H + H)
    assert sum(int(np.prod(s)) for s in parameter_shapes(c, "model").values()) == model
    untied = parameter_shapes(tiny_config(tie_word_embeddings=False), "masked_lm")
    assert untied["lm_head.decoder.weight"] == (100, 32) and len(untied) == 5 + 2 * 16 + 6


def test_names_outside_the_table_follow_the_same_rules():
    """A foreign or misspelt key still maps (plan_load reports it) by its module's kind."""
    assert to_tf_name("roberta.encoder.layer.0.attention.self.qeury.weight") == (
        "roberta/encoder/layer_._0/attention/self/qeury/kernel")
    assert is_transposed("bert.pooler.dense.weight")
    assert to_flax_path("roberta.encoder.layer.0.extra.LayerNorm.weight")[-1] == "scale"
    with pytest.raises(CheckpointKeyError, match="'foo.bar' is not a RoBERTa parameter name"):
        to_tf_name("foo.bar")
    with pytest.raises(CheckpointKeyError, match="unknown variable name 'gamma'"):
        from_tf_name("roberta/embeddings/word_embeddings/gamma:0")
    # Both spellings transformers versions used for an embedding table's TF variable.
    for tf, key in (("word_embeddings/embeddings", "word_embeddings.weight"),
                    ("position_embeddings/weight", "position_embeddings.weight")):
        assert from_tf_name(f"roberta/embeddings/{tf}:0") == f"roberta.embeddings.{key}"


def test_v4s_words_and_negative_pruned_layers():
    from roberta_core import weights

    config = tiny_config(pruned_heads={-1: [0], "0": [1]})
    # v4 prunes layer -1 (the last) and "0" (JSON's string keys): the widths follow
    last = config.num_hidden_layers - 1
    assert weights.pruned_width(config, last) == weights.pruned_width(config, 0) == config.hidden_size - config.head_dim
    # v4 4.57.6's message for a non-integer pad_to_multiple_of
    with pytest.raises(ValueError, match=r"Asking to pad the embedding matrix to a multiple of `8.0`, which is not and integer"):
        weights.check_vocab_resize(config, 120, pad_to_multiple_of=8.0)
    plan = weights.LoadPlan("sequence_classification", mismatched=[("classifier.out_proj.weight", (2, 32), (42, 32))])
    plan.ignored_mismatched = True
    assert "the shapes did not match" in plan.report()  # v4's test_load_with_mismatched_shapes looks for it
