"""The backend contract (`roberta_core.backends`, issue 13 §2): every declared backend's package
provides what the `Protocol`s say, and every place that lists backends reads the one table."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect

import pytest

from roberta_core import backends, runtime
from roberta_core.weights import HEADS


def _installed(spec: backends.Backend) -> None:
    """Skip, saying why, where the backend's frameworks are not installed."""
    missing = [m for m in spec.frameworks if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the {spec.name!r} backend needs {', '.join(missing)}, not installed here")


def _protocol_members(protocol: type) -> list[str]:
    """The public methods a Protocol declares, in declaration order."""
    return [n for n, v in vars(protocol).items() if not n.startswith("_") and (callable(v) or isinstance(v, staticmethod))]


def _parameters(function) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


@pytest.mark.parametrize("name", backends.NAMES)
def test_convert_module_provides_the_conversions(name):
    spec = backends.get(name)
    _installed(spec)
    convert = importlib.import_module(f"{spec.package}.convert")
    for member in _protocol_members(backends.ConvertModule):
        assert callable(getattr(convert, member, None)), f"{spec.package}.convert has no {member}"
    assert "allow_missing" in inspect.signature(convert.from_canonical).parameters
    assert isinstance(convert, backends.ConvertModule)


@pytest.mark.parametrize("name", backends.NAMES)
def test_training_module_provides_the_trainer(name):
    spec = backends.get(name)
    _installed(spec)
    training = importlib.import_module(f"{spec.package}.training")
    trainer = getattr(training, spec.trainer, None)
    assert inspect.isclass(trainer), f"{spec.package}.training has no class {spec.trainer}"
    for member in _protocol_members(backends.Trainer):
        method = getattr(trainer, member, None)
        assert callable(method), f"{spec.trainer} has no {member}"
        assert _parameters(method) == _parameters(getattr(backends.Trainer, member)), member


@pytest.mark.parametrize("name", backends.NAMES)
def test_adapter_module_provides_the_conformance_adapter(name):
    """Same class name, same methods with the same parameters, in every backend (parallel texts)."""
    spec = backends.get(name)
    _installed(spec)
    adapter = importlib.import_module(f"{spec.package}.adapter").Adapter
    assert adapter.name == name
    for member in _protocol_members(backends.ConformanceAdapter):
        method = getattr(adapter, member, None)
        assert callable(method), f"{spec.package}.adapter.Adapter has no {member}"
        assert _parameters(method) == _parameters(getattr(backends.ConformanceAdapter, member)), member
    assert isinstance(adapter.sees_gpu(), bool)


@pytest.mark.parametrize("name", backends.NAMES)
def test_package_exports_every_head_under_its_prefix(name):
    spec = backends.get(name)
    _installed(spec)
    for head, class_name in HEADS.items():
        cls = backends.model_class(name, head)
        assert cls.__name__ == spec.prefix + class_name


def test_the_table_itself():
    assert backends.NAMES == tuple(backends.BACKENDS) and all(b.name == n for n, b in backends.BACKENDS.items())
    assert sorted(backends.PREFERRED) == sorted(backends.NAMES)
    for spec in backends.BACKENDS.values():
        assert spec.package == f"roberta_{spec.name}" and spec.frameworks and spec.attn_implementations
    with pytest.raises(ValueError, match=r"unknown backend 'mxnet'; choose one of pt, tf, flax"):
        backends.get("mxnet")
    with pytest.raises(ValueError, match="unknown head 'ner'"):
        backends.model_class("pt", "ner")


def test_every_registry_reads_the_table():
    """No second list: the runtime's tuple table is gone, and `--backend`, `roberta parity` and
    the resolution of the default read `backends`."""
    from roberta_core.commands import add_backend_argument, resolve_backend
    from roberta_core.parity import adapters

    assert not hasattr(runtime, "BACKENDS")
    parser = argparse.ArgumentParser()
    add_backend_argument(parser)
    assert tuple(parser._option_string_actions["--backend"].choices) == backends.NAMES
    assert adapters.NAMES is backends.NAMES
    installed = [b for b in backends.PREFERRED if runtime.available(b)]
    if installed:
        assert resolve_backend(None) == installed[0]
    with pytest.raises(ValueError, match="unknown backend 'mxnet'"):
        runtime.available("mxnet")


def test_a_backend_declared_without_its_framework_is_reported_as_missing(monkeypatch):
    """A fourth backend is one entry: declared but not installed, every reader says so clearly."""
    from roberta_core.parity import adapters

    fake = backends.Backend("mx", "roberta_mx", "MX", ("no_such_framework_mx",), "mx", attn_implementations=("eager",))
    monkeypatch.setitem(backends.BACKENDS, "mx", fake)
    monkeypatch.setattr(adapters, "NAMES", (*backends.NAMES, "mx"))
    assert not runtime.available("mx")
    with pytest.raises(ImportError, match=r"needs no_such_framework_mx.*roberta3\[mx\]"):
        runtime.require("mx")
    assert not adapters.installed("mx")
    with pytest.raises(ImportError, match=r"not installed or not importable: mx \(needs no_such_framework_mx, roberta_mx\)"):
        adapters.get(["mx"])
