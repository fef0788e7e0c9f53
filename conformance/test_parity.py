"""`roberta parity` (`roberta_core.parity.cli_main`): the table, the exit status, the usage errors."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from roberta_core import backends
from roberta_core.parity import adapters, cli_main
from tests.helpers import golden

pytestmark = pytest.mark.xdist_group("conformance")

@pytest.fixture
def one_backend() -> str:
    installed = adapters.installed_names()
    if not installed:
        pytest.skip("no backend installed")
    return installed[0]


def test_lists_the_builtin_cases(capsys):
    assert cli_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "model_padded" in out and "question_answering_all_ignored" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backends", "pt,mxnet"], "unknown backend(s) mxnet"),
        (["--cases", "no_such_case"], "unknown case(s) no_such_case"),
        (["/no/such/checkpoint"], "not a checkpoint directory"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys):
    assert cli_main(argv) == 2
    assert message in capsys.readouterr().err


def test_passing_run_prints_the_table_and_exits_0(one_backend, capsys):
    assert cli_main(["--backends", one_backend, "--cases", "act_relu,masked_lm_all_ignored"]) == 0
    out = capsys.readouterr().out
    assert f"| act_relu | {one_backend} |" in out and "| masked_lm_all_ignored |" in out
    assert "2/2 passed" in out and "FAIL" not in out


def test_a_failure_exits_1(one_backend, monkeypatch, capsys):
    modeling = importlib.import_module(f"{backends.get(one_backend).package}.modeling")
    monkeypatch.setitem(modeling.ACT2FN, "relu", modeling.ACT2FN["gelu"])  # a backend with a broken relu
    assert cli_main(["--backends", one_backend, "--cases", "act_relu"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "Failures:" in out and "0/1 passed" in out


def test_a_checkpoint_directory_runs_every_head_it_serves(one_backend, capsys):
    path = golden("masked_lm")
    assert cli_main([str(path), "--backends", one_backend]) == 0
    out = capsys.readouterr().out
    assert "masked_lm:masked_lm" in out and "masked_lm:causal_lm" in out  # an LM checkpoint serves both LM heads


def test_gpu_requested_without_a_gpu_is_a_usage_error(capsys):
    torch = pytest.importorskip("torch")
    pytest.importorskip("roberta_pt")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert cli_main(["--backends", "pt", "--device", "gpu", "--cases", "act_relu"]) == 2
    assert "PyTorch sees no CUDA device" in capsys.readouterr().err


def test_the_pair_bar_of_a_trained_checkpoint_counts_in_units_of_its_scale():
    from roberta_core.parity.suite import BARS, max_abs, max_abs_in_units_of_scale

    want = np.array([20.0, -0.5], dtype=np.float32)
    rounding = want + np.array([1.5e-5, 0.0], dtype=np.float32)  # a few float32 steps at 20
    assert max_abs(rounding, want) > BARS["pair"]
    assert max_abs_in_units_of_scale(rounding, want) <= BARS["pair"]
    wrong = want + np.array([0.01, 0.0], dtype=np.float32)
    assert max_abs_in_units_of_scale(wrong, want) > BARS["pair"]
    small = np.array([0.5, -0.25]), np.array([0.5 + 2e-5, -0.25])  # within ±1: plain max |Δ|
    assert max_abs_in_units_of_scale(*small) == max_abs(*small)
