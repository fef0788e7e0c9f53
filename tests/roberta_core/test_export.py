"""`roberta export` (`roberta_core.export`): the options it refuses before writing anything, the
verification that refuses a wrong artefact and installs nothing, a head the checkpoint lacks, and
the command end to end (an ONNX export of the bare model with its pooler, checked against the
float64 reference at a shape it was not verified at). Each format's own tests are the backends'
`test_export.py` (ONNX + int8: roberta_pt; StableHLO: roberta_flax; SavedModel: roberta_tf).
"""

from __future__ import annotations

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
    (dict(to="onnx", dtype="bfloat16"), "exports are verified at float32"),
    (dict(to="stablehlo", quantize="int8"), "applies to onnx only"),
    (dict(to="onnx", quantize="int4"), "choose one of int8"),
    (dict(to="onnx", opset=99), "opset must be an integer in 14..20"),
    (dict(to="savedmodel", opset=17), "opset applies to onnx only"),
    (dict(to="onnx", head="pooler"), "unknown head 'pooler'"),
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
