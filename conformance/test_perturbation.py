"""The suite fails when a backend is wrong: one weight changed in one backend only, or one
backend's exact GELU swapped for its tanh approximation, is reported for that backend (against
the reference, and in every pair it belongs to) while the untouched backends still pass."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from roberta_core import backends
from roberta_core.parity import adapters, suite

pytestmark = pytest.mark.xdist_group("conformance")

def _runner_for(victim: str, **kwargs) -> suite.Runner:
    """A runner over every installed backend (the victim among them)."""
    for module in adapters.modules(victim):
        pytest.importorskip(module)
    return suite.Runner(adapters.get(adapters.installed_names()), **kwargs)


def _check_only_victim_fails(rows: list[suite.Row], victim: str, checks: tuple[str, ...]) -> None:
    by_backend = {r.backend: r for r in rows}
    failed = {check for check, _ in by_backend[victim].failures}
    assert set(checks) <= failed, by_backend[victim].failures
    for name, row in by_backend.items():
        if name == victim:
            continue
        assert {check for check, _ in row.failures} <= {"pair", "grad_pair"}, row.failures
        assert all(victim in message for _, message in row.failures), row.failures  # only pairs with the victim
    table = suite.format_table(rows)
    assert f"| {victim} |" in table and "FAIL" in table


@pytest.mark.parametrize("victim", backends.NAMES)
def test_one_perturbed_weight_in_one_backend_is_reported(victim):
    prep = suite.prepare(suite.builtin_cases(["masked_lm"])[0])
    key = "roberta.encoder.layer.1.attention.output.dense.weight"
    changed = prep.state[key].copy()
    changed[3, 7] += 0.01  # one of 1024 entries, by 5% of the weights' spread
    rows = _runner_for(victim, perturb={victim: {key: changed}}).check(prep, "float32")
    checks = ("fp32", "grad") + (("pair", "grad_pair") if len(adapters.installed_names()) > 1 else ())
    _check_only_victim_fails(rows, victim, checks)
    errors = {r.backend: r.errors["fp32"][0] for r in rows}
    assert errors[victim] > 10 * suite.BARS["fp32"]  # caught by a wide margin, not by rounding
    assert all(e < suite.BARS["fp32"] for n, e in errors.items() if n != victim)


@pytest.fixture
def fresh_jax_programs():
    """Flax compiles a model's eager call once per config and shapes, with the activation it
    found then: drop JAX's compiled programs before the patch (so it is traced in) and after
    it (so no later test reuses a program with the wrong activation)."""
    jax = pytest.importorskip("jax")
    jax.clear_caches()
    yield
    jax.clear_caches()


@pytest.mark.parametrize("victim", backends.NAMES)
def test_a_subtly_wrong_activation_is_reported(victim, monkeypatch, request):
    runner = _runner_for(victim)
    if victim == "flax":
        request.getfixturevalue("fresh_jax_programs")
    modeling = importlib.import_module(f"{backends.get(victim).package}.modeling")
    # The tanh approximation differs from the exact GELU by at most ~1e-3: a plausible slip.
    monkeypatch.setitem(modeling.ACT2FN, "gelu", modeling.ACT2FN["gelu_new"])
    prep = suite.prepare(suite.builtin_cases(["act_gelu"])[0])
    rows = runner.check(prep, "float32")
    _check_only_victim_fails(rows, victim, ("fp32", "pair") if len(adapters.installed_names()) > 1 else ("fp32",))
    assert np.isfinite([r.errors["fp32"][0] for r in rows]).all()
