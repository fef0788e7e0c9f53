"""The PreTrainedModel surface of v4 (transformers 4.57.6) on the PyTorch backend: the loading
report of `output_loading_info`, `set_input_embeddings`, v4's helper methods and class flags, and
head pruning (`prune_heads`, a config's `pruned_heads`). Expected values are v4's, as literals
recorded from transformers 4.57.6; where a transformers 4.x is importable the same cases are also
compared with it directly (skipped otherwise: the test environment has transformers 5)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from roberta_pt import (
    RobertaForCausalLM,
    RobertaForMaskedLM,
    RobertaForMultipleChoice,
    RobertaForSequenceClassification,
    RobertaModel,
)
from tests.helpers import tiny_config
from tests.roberta_pt.common import build

IDS = torch.tensor([[0, 5, 9, 2, 1, 1], [0, 7, 11, 13, 17, 2]])
MASK = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
HEAD_OF = {RobertaModel: "model", RobertaForMaskedLM: "masked_lm", RobertaForCausalLM: "causal_lm",
           RobertaForSequenceClassification: "sequence_classification", RobertaForMultipleChoice: "multiple_choice"}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _saved(tmp_path, head, name=None, **config):
    model, _ = build(head, tiny_config(**config))
    model.save_pretrained(tmp_path / (name or head))
    return tmp_path / (name or head)


# ---------------------------------------------------------------------------- output_loading_info

POOLER = ["pooler.dense.bias", "pooler.dense.weight"]
LM_HEAD = ["lm_head.bias", "lm_head.dense.bias", "lm_head.dense.weight", "lm_head.layer_norm.bias",
           "lm_head.layer_norm.weight"]
# (checkpoint head, class, from_pretrained keywords) -> (missing_keys, unexpected_keys):
# transformers 4.57.6 gives these lists, in this order.
LOADING_CASES = [
    ("model", RobertaForMaskedLM, {},
     (["lm_head.bias", "lm_head.decoder.bias", "lm_head.dense.bias", "lm_head.dense.weight",
       "lm_head.layer_norm.bias", "lm_head.layer_norm.weight"], POOLER)),
    ("model", RobertaForSequenceClassification, {},
     (["classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight"],
      POOLER)),
    ("masked_lm", RobertaForMultipleChoice, {},
     (["classifier.bias", "classifier.weight", "roberta.pooler.dense.bias", "roberta.pooler.dense.weight"], LM_HEAD)),
    ("multiple_choice", RobertaModel, {"add_pooling_layer": False},
     ([], ["classifier.bias", "classifier.weight", "pooler.dense.bias", "pooler.dense.weight"])),
    ("masked_lm", RobertaModel, {}, (POOLER, LM_HEAD)),
    ("masked_lm", RobertaForCausalLM, {"is_decoder": True}, ([], [])),
    ("causal_lm", RobertaForMaskedLM, {}, ([], [])),
    ("sequence_classification", RobertaForMaskedLM, {},
     (["lm_head.bias", "lm_head.decoder.bias", "lm_head.dense.bias", "lm_head.dense.weight",
       "lm_head.layer_norm.bias", "lm_head.layer_norm.weight"],
      ["classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight"])),
    ("model", RobertaModel, {}, ([], [])),
]


@pytest.mark.filterwarnings("ignore:RobertaForCausalLM attends both ways")
@pytest.mark.parametrize("source, cls, kwargs, expected", LOADING_CASES,
                         ids=[f"{s}->{c.__name__}{'-' + '-'.join(k) if k else ''}" for s, c, k, _ in LOADING_CASES])
def test_output_loading_info_is_v4s(tmp_path, source, cls, kwargs, expected):
    path = _saved(tmp_path, source)
    _, info = _quiet(cls.from_pretrained, path, output_loading_info=True, **kwargs)
    assert (info["missing_keys"], info["unexpected_keys"]) == expected
    assert info["mismatched_keys"] == [] and info["error_msgs"] == []


def test_output_loading_info_untied_decoder_and_mismatches(tmp_path):
    path = _saved(tmp_path, "model")
    _, info = _quiet(RobertaForMaskedLM.from_pretrained, path, tie_word_embeddings=False, output_loading_info=True)
    # transformers 4.57.6 gives: the untied decoder's weight missing too.
    assert info["missing_keys"] == ["lm_head.bias", "lm_head.decoder.bias", "lm_head.decoder.weight",
                                    "lm_head.dense.bias", "lm_head.dense.weight", "lm_head.layer_norm.bias",
                                    "lm_head.layer_norm.weight"]
    path = _saved(tmp_path, "sequence_classification", name="cls3", num_labels=3)
    _, info = _quiet(RobertaForSequenceClassification.from_pretrained, path, num_labels=5,
                     ignore_mismatched_sizes=True, output_loading_info=True)
    assert sorted(info["mismatched_keys"]) == ["classifier.out_proj.bias", "classifier.out_proj.weight"]
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


# ---------------------------------------------------------------------------- set_input_embeddings

def test_set_input_embeddings_only_swaps_the_module():
    model, _ = build("masked_lm", tiny_config())
    decoder_weight = model.lm_head.decoder.weight
    table = nn.Embedding(120, 32, padding_idx=1)
    model.set_input_embeddings(table)
    # transformers 4.57.6 gives: vocab_size 100, the decoder keeps its (100, 32) weight, untied from the new table.
    assert model.get_input_embeddings() is table and model.config.vocab_size == 100
    assert model.lm_head.decoder.weight is decoder_weight and tuple(decoder_weight.shape) == (100, 32)
    ids = IDS.clone()
    ids[0, 1] = 110  # a row of the new table: v4 runs it
    with torch.no_grad():
        assert model(ids, MASK).logits.shape == (2, 6, 100)
    with pytest.raises(ValueError, match="input_ids"):
        model(torch.tensor([[0, 120, 2]]))  # past the table
    model.tie_weights()  # an explicit tie follows the new table, as v4's
    assert model.lm_head.decoder.weight is table.weight


def test_set_input_embeddings_takes_any_module():
    class Table(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(100, 32))

        def forward(self, ids):
            return nn.functional.embedding(ids, self.weight)

    model, _ = build("sequence_classification", tiny_config())
    table = Table()
    model.set_input_embeddings(table)  # transformers 4.57.6 accepts it
    assert model.get_input_embeddings() is table
    with torch.no_grad():
        assert model(IDS, MASK).logits.shape == (2, 2)


# ---------------------------------------------------------------------------- v4's helpers and flags

def test_v4_class_flags():
    # transformers 4.57.6's values on RobertaPreTrainedModel (PreTrainedModel's defaults besides _supports_sdpa).
    for cls in (RobertaModel, RobertaForMaskedLM, RobertaForSequenceClassification):
        assert cls._supports_sdpa is True and cls._supports_flash_attn is False and cls._supports_flex_attn is False
        assert cls._supports_attention_backend is False and cls._can_compile_fullgraph is False
        assert cls._keys_to_ignore_on_load_missing is None and cls._keys_to_ignore_on_load_unexpected is None
        assert cls._keys_to_ignore_on_save is None and cls._keep_in_fp32_modules is None
        assert cls.is_parallelizable is False and cls.framework == "pt"


def test_v4_helper_methods():
    model, _ = build("sequence_classification", tiny_config())
    assert model.warnings_issued == {} and model.framework == "pt"
    # transformers 4.57.6 gives DUMMY_INPUTS.
    assert torch.equal(model.dummy_inputs["input_ids"], torch.tensor([[7, 6, 0, 0, 1], [1, 2, 3, 0, 0], [0, 0, 0, 4, 5]]))
    # transformers 4.57.6 gives 885840 (6 x 10 tokens x 14764 parameters outside the embeddings).
    assert model.floating_point_ops({"input_ids": torch.zeros(2, 5, dtype=torch.long)}) == 885840
    assert model.estimate_tokens({"input_ids": IDS}) == 12
    with pytest.warns(UserWarning, match="estimate the number of tokens"):
        assert model.estimate_tokens({"inputs_embeds": torch.zeros(1, 2, 32)}) == 0
    assert model.warnings_issued == {"estimate_tokens": True}
    # invert_attention_mask: (B, 1, 1, S), 0 where 1, float32's minimum where 0.
    inverted = model.invert_attention_mask(MASK)
    assert inverted.shape == (2, 1, 1, 6) and inverted.dtype == torch.float32
    assert inverted[0, 0, 0].tolist() == [0.0] * 4 + [torch.finfo(torch.float32).min] * 2
    assert model.invert_attention_mask(torch.ones(2, 3, 6)).shape == (2, 1, 3, 6)
    # get_head_mask: a None per layer, else (layers, 1, h, 1, 1).
    assert model.get_head_mask(None, 2) == [None, None]
    assert model.get_head_mask(torch.ones(4), 2).shape == (2, 1, 4, 1, 1)
    assert model.get_head_mask(torch.ones(2, 4), 2).shape == (2, 1, 4, 1, 1)
    assert model.get_head_mask(torch.ones(4), 2, is_attention_chunked=True).shape == (2, 1, 4, 1, 1, 1)
    # get_decoder: the model itself on every RoBERTa class (transformers 4.57.6).
    assert model.get_decoder() is model
    # set_output_embeddings: the LM heads' decoder; v4's base method raises elsewhere.
    with pytest.raises(AttributeError, match="lm_head"):
        model.set_output_embeddings(nn.Linear(32, 100))
    lm, _ = build("masked_lm", tiny_config())
    decoder = nn.Linear(32, 100)
    lm.set_output_embeddings(decoder)
    assert lm.get_output_embeddings() is decoder and lm.lm_head.decoder is decoder


# ---------------------------------------------------------------------------- head pruning

PRUNE = {0: [1, 2], 1: [0]}


def _head_mask(pruned: dict[int, list[int]]) -> torch.Tensor:
    mask = torch.ones(2, 4)
    for layer, heads in pruned.items():
        mask[layer, heads] = 0.0
    return mask


@pytest.mark.filterwarnings("ignore:sdpa attention cannot")
@pytest.mark.filterwarnings("ignore:unpad=True does not combine")  # output_attentions: the padded batch
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("head", ["model", "masked_lm", "sequence_classification"])
def test_pruned_heads_compute_as_masked_heads(head, attn):
    # A pruned head contributes nothing: the same numbers as the whole model with that head masked
    # (head_mask 0 zeroes its probabilities), on every attention path.
    model, _ = build(head, tiny_config(), attn_implementation=attn)
    with torch.no_grad():
        reference = model(IDS, MASK, head_mask=_head_mask(PRUNE))[0]
    model.prune_heads(PRUNE)
    layer = model.base_model.encoder.layer
    assert layer[0].attention.self.num_heads == 2 and layer[1].attention.self.num_heads == 3
    assert layer[0].attention.self.query.weight.shape == (16, 32) and layer[0].attention.output.dense.weight.shape == (32, 16)
    assert layer[0].attention.pruned_heads == {1, 2}
    keep = MASK.bool() if reference.dim() == 3 and reference.shape[1] == 6 else slice(None)
    with torch.no_grad():
        for kwargs in ({}, {"unpad": True}, {"output_attentions": True}):
            out = model(IDS, MASK, **kwargs)
            torch.testing.assert_close(out[0][keep], reference[keep], rtol=1e-4, atol=1e-5)  # sums in another order
        attentions = model(IDS, MASK, output_attentions=True).attentions
    assert [a.shape[1] for a in attentions] == [2, 3]


def test_prune_heads_updates_the_config_and_renumbers_as_v4():
    model, _ = build("sequence_classification", tiny_config())
    model.prune_heads(PRUNE)
    model.prune_heads({0: [3], 1: [0]})  # numbered as in the config; head 0 of layer 1 already gone
    # transformers 4.57.6 gives {0: [1, 2, 3], 1: [0]}
    assert {k: sorted(v) for k, v in model.config.pruned_heads.items()} == {0: [1, 2, 3], 1: [0]}
    assert model.roberta.encoder.layer[0].attention.self.num_heads == 1
    assert model.roberta.encoder.layer[1].attention.self.num_heads == 3
    with torch.no_grad():
        reference = model(IDS, MASK).logits
    # A model built from the pruned config (as v4 does at init: JSON's string layer keys too) has the same shapes.
    config = tiny_config()
    config.pruned_heads = {"0": [1, 2, 3], "1": [0]}
    again = RobertaForSequenceClassification(config).eval()
    again.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(again(IDS, MASK).logits, reference)
    with pytest.raises(ValueError, match="heads to prune"):
        model.prune_heads({1: [4]})


def test_pruned_decoder_caches_with_its_head_counts():
    model, _ = build("causal_lm", tiny_config(is_decoder=True))
    model.prune_heads(PRUNE)
    ids = torch.tensor([[0, 5, 9, 2, 7, 8]])
    with torch.no_grad():
        whole = model(ids).logits
        first = model(ids[:, :4], use_cache=True)
        assert first.past_key_values[0][0].shape[1] == 2 and first.past_key_values[1][0].shape[1] == 3
        step = model(ids[:, 4:], past_key_values=first.past_key_values).logits
    torch.testing.assert_close(step, whole[:, 4:], rtol=1e-5, atol=1e-5)


def test_a_pruned_checkpoint_loads_as_in_v4(tmp_path):
    # v4 prunes a model built from a config with `pruned_heads` before loading, so a pruned save
    # loads back (ours and v4's: the same keys and shapes, see test_pruning_matches_transformers)
    model, _ = build("masked_lm", tiny_config())
    model.prune_heads(PRUNE)
    with torch.no_grad():
        expected = model(IDS, MASK).logits
    model.save_pretrained(tmp_path)
    loaded = _quiet(RobertaForMaskedLM.from_pretrained, tmp_path)
    assert {int(k): sorted(v) for k, v in loaded.config.pruned_heads.items()} == {0: [1, 2], 1: [0]}
    assert loaded.roberta.encoder.layer[0].attention.self.query.weight.shape == (16, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS, MASK).logits, expected, rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["tf", "flax"])
def test_other_backends_refuse_pruned_heads_clearly(backend):
    # v4 prunes in PyTorch only; a TF/Flax model of a pruned config would not fit its checkpoint
    module = pytest.importorskip({"tf": "roberta_tf", "flax": "roberta_flax"}[backend])
    config = tiny_config()
    config.pruned_heads = {"0": [1]}
    cls = module.TFRobertaForMaskedLM if backend == "tf" else module.FlaxRobertaForMaskedLM
    with pytest.raises(NotImplementedError, match=r"pruned attention heads runs in PyTorch only"):
        cls(config)
