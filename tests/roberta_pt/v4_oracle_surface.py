"""Side-by-side checks of the PyTorch models' v4 surface against transformers 4.x itself (dev-only:
CI's environment has transformers 5, which differs; `tests/roberta_pt/test_v4_model_surface.py`
holds the same behaviours as v4's recorded values). Run in the reference environment:
`python tools/compare_pt_surface_v4.py` (it uses `.bench-env`, transformers 4.57.6)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import tiny_config
from tests.roberta_pt.common import build
from tests.roberta_pt.test_v4_model_surface import IDS, LOADING_CASES, MASK, PRUNE, _quiet, _saved
from roberta_pt import RobertaForMaskedLM


def _v4():
    """transformers 4.x when importable, else skip (v4 is the spec; v5 differs)."""
    transformers = pytest.importorskip("transformers")
    if not transformers.__version__.startswith("4."):
        pytest.skip(f"needs transformers 4.x, found {transformers.__version__}")
    return transformers


@pytest.mark.filterwarnings("ignore:RobertaForCausalLM attends both ways")
@pytest.mark.parametrize("source, cls, kwargs", [(s, c, k) for s, c, k, _ in LOADING_CASES])
def test_output_loading_info_against_transformers(tmp_path, source, cls, kwargs):
    transformers = _v4()
    path = _saved(tmp_path, source)
    _, ours = _quiet(cls.from_pretrained, path, output_loading_info=True, **kwargs)
    _, theirs = _quiet(getattr(transformers, cls.__name__).from_pretrained, path, output_loading_info=True, **kwargs)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert list(ours[key]) == list(theirs[key]), key


def test_v4_helpers_against_transformers():
    transformers = _v4()
    ours, state = build("sequence_classification", tiny_config())
    theirs = transformers.RobertaForSequenceClassification(transformers.RobertaConfig(**tiny_config().to_dict())).eval()
    inputs = {"input_ids": IDS}
    assert ours.floating_point_ops(inputs) == theirs.floating_point_ops(inputs)
    torch.testing.assert_close(ours.invert_attention_mask(MASK), theirs.invert_attention_mask(MASK))
    torch.testing.assert_close(ours.get_head_mask(torch.ones(4), 2), theirs.get_head_mask(torch.ones(4), 2))


@pytest.mark.filterwarnings("ignore:sdpa attention cannot")
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_pruning_matches_transformers(attn, tmp_path):
    transformers = _v4()
    path = _saved(tmp_path, "masked_lm")
    ours = _quiet(RobertaForMaskedLM.from_pretrained, path, attn_implementation=attn)
    theirs = transformers.RobertaForMaskedLM.from_pretrained(path, attn_implementation=attn).eval()
    for model in (ours, theirs):
        model.prune_heads(PRUNE)
        model.prune_heads({0: [3]})
    assert ours.config.pruned_heads == theirs.config.pruned_heads
    with torch.no_grad():
        expected = theirs(IDS, MASK).logits
        torch.testing.assert_close(ours(IDS, MASK).logits, expected, rtol=0, atol=1e-6)
        # unpad: each sequence's attention alone, sums in another order (as without pruning)
        torch.testing.assert_close(ours(IDS, MASK, unpad=True).logits[MASK.bool()], expected[MASK.bool()],
                                   rtol=1e-5, atol=1e-5)
    ours.save_pretrained(tmp_path / "pruned")  # v4 loads our pruned save
    loaded = transformers.RobertaForMaskedLM.from_pretrained(tmp_path / "pruned", attn_implementation=attn).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS, MASK).logits, expected, rtol=0, atol=1e-6)


