"""`roberta export --to stablehlo` (`roberta_flax.export`): the serialized `jax.export` function,
deserialized and called at shapes other than the ones it was verified at (one artefact for every
batch and length, the length bounded by the position table), and the shape checks that let a
symbolic dimension through.

Oracle: the float64 NumPy reference (`roberta_core.reference`) on the same inputs. One export,
module-scoped.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from roberta_core import reference
from roberta_core.export import BAR, export, load_exported
from roberta_core.validation import check_forward_inputs, max_length_for
from tests.helpers import tiny_config
from tests.roberta_core.export_case import batch, make_checkpoint, relative


@pytest.fixture(scope="module")
def stablehlo_export(tmp_path_factory):
    pytest.importorskip("jax")
    pytest.importorskip("flax")
    root = tmp_path_factory.mktemp("stablehlo")
    src, config, state = make_checkpoint(root / "ckpt", "question_answering")
    return export(src, root / "out", to="stablehlo", log=lambda line: None), config, state


@pytest.mark.parametrize("shape,pad", [((1, 23), 0), ((5, 4), 1)])
def test_stablehlo_deserializes_and_matches_the_reference_at_other_shapes(stablehlo_export, shape, pad):
    import jax

    result, config, state = stablehlo_export
    exported = jax.export.deserialize(bytearray((result.path / "model.stablehlo").read_bytes()))
    assert json.loads((result.path / "model.json").read_text())["inputs"] == ["input_ids", "attention_mask"]
    inputs = batch(config, shape, pad)
    got = exported.call(*(inputs[k].astype(np.int32) for k in ("input_ids", "attention_mask")))
    want = reference.forward(config, state, "question_answering", **inputs)
    assert sorted(got) == ["end_logits", "start_logits"]
    for name in ("start_logits", "end_logits"):
        assert got[name].shape == shape
        assert relative(got[name], want[name]) <= BAR


def test_stablehlo_is_polymorphic_in_batch_and_length_up_to_the_position_table(stablehlo_export):
    import jax

    result, config, _ = stablehlo_export
    exported = jax.export.deserialize(bytearray((result.path / "model.stablehlo").read_bytes()))
    assert [str(d) for d in exported.in_avals[0].shape] == ["batch", "sequence"]
    too_long = np.full((1, max_length_for(config) + 1), 5, np.int32)
    with pytest.raises(Exception):  # jax.export checks the constraint sequence <= 64 (its message names none)
        exported.call(too_long, np.ones_like(too_long))
    with pytest.raises(ValueError, match=f"sequence length {too_long.shape[1]} exceeds the {max_length_for(config)} tokens"):
        load_exported(result.path)({"input_ids": too_long, "attention_mask": np.ones_like(too_long)})


def test_shape_checks_accept_symbolic_dimensions():
    # The regression behind StableHLO export: the input checks turned every dimension into an int,
    # which a jax.export symbolic dimension refuses.
    jax = pytest.importorskip("jax")
    config = tiny_config()
    b, t = jax.export.symbolic_shape("b, t", constraints=[f"t <= {max_length_for(config)}"])
    assert check_forward_inputs(config, input_ids=(b, t), attention_mask=(b, t)) == (b, t)
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        check_forward_inputs(config, input_ids=(b, t), attention_mask=(b, 3))
