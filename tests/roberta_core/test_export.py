"""`roberta export` (`roberta_core.export`): the options it refuses before writing anything, the
verification that refuses a wrong artefact and installs nothing, a head the checkpoint lacks, and
the command end to end (an ONNX export of the bare model with its pooler, checked against the
float64 reference at a shape it was not verified at). Each format's own tests are the backends'
`test_export.py` (ONNX + int8: roberta_pt; StableHLO: roberta_flax; SavedModel: roberta_tf).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from roberta_core import cli, export as export_module, reference
from roberta_core.export import BAR, export
from tests.roberta_core.export_case import batch, make_checkpoint, relative


def test_a_wrong_artefact_is_refused_and_nothing_is_installed(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import roberta_pt.export

    src, _, _ = make_checkpoint(tmp_path / "ckpt", "sequence_classification")
    real = roberta_pt.export.load_exported

    def off_by_a_little(path):
        run = real(path)
        return lambda inputs: {k: v * (1 + 1e-3) for k, v in run(inputs).items()}

    monkeypatch.setattr(roberta_pt.export, "load_exported", off_by_a_little)
    with pytest.raises(ValueError, match="verification failed, nothing written"):
        export(src, tmp_path / "out", to="onnx", log=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


@pytest.mark.parametrize("options,message", [
    (dict(to="tflite"), "unknown export format 'tflite'; choose one of onnx, stablehlo, savedmodel"),
    (dict(to="onnx", dtype="bfloat16"), "applies to stablehlo only, not to 'onnx'; onnx exports are verified at float32, float16"),
    (dict(to="stablehlo", dtype="float16"), "applies to onnx only, not to 'stablehlo'"),
    (dict(to="savedmodel", dtype="bfloat16"), "savedmodel exports are verified at float32"),
    (dict(to="onnx", dtype="float64"), "unknown dtype 'float64'; choose one of float32 .onnx/stablehlo/savedmodel., "
                                       "float16 .onnx., bfloat16 .stablehlo."),
    (dict(to="onnx", dtype="float16", quantize="int8"), "cannot be combined with dtype='float16'"),
    (dict(to="onnx", head="masked_lm", pooler=False), "pooler applies to the bare model"),
    (dict(to="stablehlo", quantize="int8"), "applies to onnx only"),
    (dict(to="onnx", quantize="int4"), "choose one of int8"),
    (dict(to="onnx", opset=99), "opset must be an integer in 14..20"),
    (dict(to="savedmodel", opset=17), "opset applies to onnx only"),
    (dict(to="onnx", head="pooler"), "unknown head 'pooler'"),
    (dict(to="stablehlo", packed=True), r"packed=True \(a padding-free graph\) applies to onnx only, not to 'stablehlo'"),
    (dict(to="savedmodel", packed=True), "applies to onnx only, not to 'savedmodel'"),
    (dict(to="onnx", head="multiple_choice", packed=True), "packed=True does not apply to multiple choice"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, options, message):
    src, _, _ = make_checkpoint(tmp_path / "ckpt", "masked_lm")
    with pytest.raises(ValueError, match=message):
        export(src, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_a_head_the_checkpoint_lacks_is_refused(tmp_path):
    pytest.importorskip("torch")
    src, _, _ = make_checkpoint(tmp_path / "ckpt", "model")
    with pytest.raises(ValueError, match="holds no weights for the 'question_answering' head"):
        export(src, tmp_path / "out", to="onnx", head="question_answering")
    assert not (tmp_path / "out").exists()


def test_the_command_exports_and_reports(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    src, config, state = make_checkpoint(tmp_path / "ckpt", "model")
    code = cli.main(["export", str(src), str(tmp_path / "out"), "--to", "onnx", "--opset", "18"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "onnx, opset 18, RobertaModel" in out and "verified against the float64 reference" in out
    inputs = batch(config, (3, 7), pad=3)
    got = export_module.load_exported(tmp_path / "out")(inputs)
    want = reference.forward(config, state, "model", **inputs)
    assert sorted(got) == ["last_hidden_state", "pooler_output"]
    for name in got:
        assert relative(got[name], want[name]) <= BAR
    # An existing OUT is refused (exit 2, the usual error line) unless --overwrite.
    code = cli.main(["export", str(src), str(tmp_path / "out"), "--to", "onnx"])
    assert code == 2 and "exists" in capsys.readouterr().err
    code = cli.main(["export", str(src), str(tmp_path / "x"), "--to", "savedmodel", "--quantize", "int8"])
    assert code == 2 and "applies to onnx only" in capsys.readouterr().err


def test_the_command_exports_a_packed_graph(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    src, config, state = make_checkpoint(tmp_path / "ckpt", "masked_lm")
    code = cli.main(["export", str(src), str(tmp_path / "out"), "--to", "onnx", "--packed"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "onnx, opset 17, packed, RobertaForMaskedLM" in out
    meta = json.loads((tmp_path / "out" / "export.json").read_text())
    assert meta["packed"] is True and meta["outputs"] == {"logits": ["tokens", None]}
    # The real tokens' rows, in row-major order: np.flatnonzero(mask) says where each sits.
    inputs = batch(config, (3, 7), pad=3)
    got = export_module.load_exported(tmp_path / "out")(inputs)["logits"]
    want = reference.forward(config, state, "masked_lm", **inputs)["logits"]
    where = np.flatnonzero(inputs["attention_mask"])
    assert got.shape == (where.size, config.vocab_size)
    assert relative(got, want.reshape(-1, config.vocab_size)[where]) <= BAR
    code = cli.main(["export", str(src), str(tmp_path / "x"), "--to", "stablehlo", "--packed"])
    assert code == 2 and "applies to onnx only" in capsys.readouterr().err


# ---------------------------------------------------------------------------- without a pooler, other dtypes


def _no_pooler_checkpoint(folder):
    """A bare model saved as v4 saves `RobertaModel(config, add_pooling_layer=False)`: no pooler.* keys."""
    from roberta_core import checkpoint, weights

    src, config, state = make_checkpoint(folder, "model")
    for f in src.glob("*.safetensors"):
        f.unlink()
    state = {k: v for k, v in state.items() if not k.startswith("pooler.")}
    checkpoint.save_state_dict(state, src, format="safetensors", architecture=weights.HEADS["model"])
    return src, config, state


def test_a_bare_model_saved_without_its_pooler_exports_its_last_hidden_state(tmp_path):
    # v4's add_pooling_layer=False checkpoints were refused ("holds no weights ... pooler.dense").
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    src, config, state = _no_pooler_checkpoint(tmp_path / "ckpt")
    result = export(src, tmp_path / "out", to="onnx", log=lambda line: None)
    inputs = batch(config, (3, 9), pad=4)
    got = export_module.load_exported(result.path)(inputs)
    assert sorted(got) == ["last_hidden_state"]
    # Oracle: the reference's encoder output (its pooler needs weights: any stand in, it is not compared).
    hidden = config.hidden_size
    with_pooler = {**state, "pooler.dense.weight": np.eye(hidden, dtype=np.float32),
                   "pooler.dense.bias": np.zeros(hidden, np.float32)}
    want = reference.forward(config, with_pooler, "model", **inputs)["last_hidden_state"]
    assert relative(got["last_hidden_state"], want) <= BAR
    meta = json.loads((result.path / "export.json").read_text())
    assert list(meta["outputs"]) == ["last_hidden_state"]
    # Asking for the pooler it lacks is refused, naming the missing weight.
    with pytest.raises(ValueError, match="holds no weights for the 'model' head .*pooler.dense"):
        export(src, tmp_path / "again", to="onnx", pooler=True)


def test_no_pooler_leaves_out_the_pooler_of_a_checkpoint_that_has_one(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    src, config, state = make_checkpoint(tmp_path / "ckpt", "model")
    assert cli.main(["export", str(src), str(tmp_path / "out"), "--to", "onnx", "--no-pooler"]) == 0
    inputs = batch(config, (2, 5), pad=1)
    got = export_module.load_exported(tmp_path / "out")(inputs)
    assert sorted(got) == ["last_hidden_state"]
    want = reference.forward(config, state, "model", **inputs)["last_hidden_state"]
    assert relative(got["last_hidden_state"], want) <= BAR


def test_onnx_float16_computes_in_half_precision_within_its_bar(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import onnx

    from roberta_core.export import DTYPE_BARS

    src, config, state = make_checkpoint(tmp_path / "ckpt", "masked_lm")
    result = export(src, tmp_path / "out", to="onnx", dtype="float16", log=lambda line: None)
    graph = onnx.load(str(result.artefact)).graph
    weights = [t for t in graph.initializer if len(t.dims) == 2]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert [i.type.tensor_type.elem_type for i in graph.input] == [onnx.TensorProto.INT64] * 2
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    inputs = batch(config, (4, 21), pad=8)  # a shape it was not verified at
    got = export_module.load_exported(result.path)(inputs)["logits"]
    want = reference.forward(config, state, "masked_lm", **inputs)["logits"]
    # Half precision: within its bar, and not the fp32 graph (which would be ~1e-7 away).
    assert 1e-5 < relative(got, want) <= DTYPE_BARS["float16"]
    meta = json.loads((result.path / "export.json").read_text())
    assert meta["dtype"] == "float16" and meta["verification"]["bar"] == DTYPE_BARS["float16"]
    # Both the fp32 graph (bar 1e-5) and its float16 conversion were checked before installing.
    assert [c["bar"] for c in meta["verification"]["checks"]] == [1e-5, 1e-5, 5e-3, 5e-3]


def test_stablehlo_bfloat16_within_its_bar(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("flax")
    from roberta_core.export import DTYPE_BARS

    src, config, state = make_checkpoint(tmp_path / "ckpt", "sequence_classification")
    result = export(src, tmp_path / "out", to="stablehlo", dtype="bfloat16", log=lambda line: None)
    inputs = batch(config, (3, 13), pad=5)
    got = export_module.load_exported(result.path)(inputs)["logits"]
    assert got.dtype.name == "bfloat16"
    want = reference.forward(config, state, "sequence_classification", **inputs)["logits"]
    assert 1e-5 < relative(got, want) <= DTYPE_BARS["bfloat16"]
    assert json.loads((result.path / "export.json").read_text())["dtype"] == "bfloat16"
