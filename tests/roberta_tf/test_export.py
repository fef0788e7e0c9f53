"""`roberta export --to savedmodel` (`roberta_tf.export`): the SavedModel loaded with
`tf.saved_model.load` and called through its `serving_default` signature at shapes other than the
ones it was verified at, padding included.

Oracle: the float64 NumPy reference (`roberta_core.reference`) on the same inputs. One export,
module-scoped.
"""

from __future__ import annotations

import pytest

from roberta_core import reference
from roberta_core.export import BAR, export
from tests.roberta_core.export_case import batch, make_checkpoint, relative


@pytest.fixture(scope="module")
def savedmodel_export(tmp_path_factory):
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("savedmodel")
    src, config, state = make_checkpoint(root / "ckpt", "sequence_classification", num_labels=3)
    return export(src, root / "out", to="savedmodel", log=lambda line: None), config, state


@pytest.mark.parametrize("shape,pad", [((1, 19), 0), ((4, 5), 2)])
def test_savedmodel_serving_default_matches_the_reference_at_other_shapes(savedmodel_export, shape, pad):
    import tensorflow as tf

    result, config, state = savedmodel_export
    serve = tf.saved_model.load(str(result.path / "saved_model")).signatures["serving_default"]
    inputs = batch(config, shape, pad)
    got = serve(input_ids=tf.constant(inputs["input_ids"], tf.int32),
                attention_mask=tf.constant(inputs["attention_mask"], tf.int32),
                token_type_ids=tf.zeros(shape, tf.int32))
    want = reference.forward(config, state, "sequence_classification", **inputs)
    assert got["logits"].shape == (shape[0], 3)
    assert relative(got["logits"].numpy(), want["logits"]) <= BAR
