"""The conformance suite under pytest: every case of `roberta_core.parity.cases` on every installed
backend, against the float64 reference (fp32 outputs, gradients, bf16), then backend against
backend. A backend that is not installed is skipped, never counted as passed.

All tests share one runner (and one xdist worker), so each backend computes a case once for
the reference test and the pairwise test.
"""

from __future__ import annotations

import pytest

from roberta_core.parity import adapters, suite
from roberta_core.parity.cases import CASES

pytestmark = pytest.mark.xdist_group("conformance")

CASE_IDS = [c["name"] for c in CASES]


@pytest.fixture(scope="session")
def conformance_runner() -> suite.Runner:
    """A runner over every installed backend."""
    return suite.Runner(adapters.get(adapters.installed_names()))


@pytest.fixture(scope="session")
def prepared():
    cache: dict[str, suite.Prepared] = {}

    def get(case: dict) -> suite.Prepared:
        if case["name"] not in cache:
            cache[case["name"]] = suite.prepare(case)
        return cache[case["name"]]

    return get


@pytest.mark.parametrize("backend", adapters.NAMES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backend_matches_reference(case, backend, conformance_runner, prepared):
    for module in adapters.modules(backend):
        pytest.importorskip(module)
    prep = prepared(case)
    rows = conformance_runner.check(prep, "float32", pairs=False, only=[backend])
    if "bf16" in prep.checks:
        rows += conformance_runner.check(prep, "bfloat16", only=[backend])
    assert rows, f"no check ran for {backend}"
    failures = [f"{check}: {msg}" for r in rows for check, msg in r.failures]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backends_agree(case, conformance_runner, prepared):
    if len(conformance_runner.backends) < 2:
        pytest.skip("fewer than two backends installed: nothing to compare pairwise")
    rows = conformance_runner.check(prepared(case), "float32", single=False)
    assert len(rows) == len(conformance_runner.backends)
    failures = [f"[{r.backend}] {check}: {msg}" for r in rows for check, msg in r.failures]
    assert not failures, "\n".join(failures)
