"""The backends `roberta parity` can run, read from `roberta_core.backends`: which are installed,
and their conformance adapters (`<package>.adapter.Adapter`, one per backend, so the runner
speaks to PyTorch, TensorFlow and Flax the same way; the interface is
`roberta_core.backends.ConformanceAdapter`). A framework is imported only when its backend's
adapter is asked for.
"""

from __future__ import annotations

import importlib
from typing import Sequence

from .. import backends

NAMES = backends.NAMES
DEVICES = ("cpu", "gpu")


def adapter_class(name: str) -> type:
    """`<package>.adapter.Adapter` of backend `name` (imports the backend and its framework)."""
    return importlib.import_module(backends.get(name).package + ".adapter").Adapter


def modules(name: str) -> tuple[str, ...]:
    """What backend `name` needs to import: its frameworks, then its package."""
    spec = backends.get(name)
    return (*spec.frameworks, spec.package)


def installed(name: str) -> bool:
    """True when the backend's frameworks and package import."""
    try:
        for module in modules(name):
            importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return False
    return True


def installed_names() -> list[str]:
    """The backends installed here, in `backends.NAMES` order."""
    return [n for n in NAMES if installed(n)]


def sees_gpu(name: str) -> bool:
    """True when backend `name` is installed and its framework sees a GPU."""
    return installed(name) and adapter_class(name).sees_gpu()


def get(names: Sequence[str], device: str = "cpu") -> list:
    """Adapters for `names`, each of which must be installed."""
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    missing = [n for n in names if not installed(n)]
    if missing:
        needs = ", ".join(m for n in missing for m in modules(n))
        raise ImportError(f"backend(s) not installed or not importable: {', '.join(missing)} (needs {needs})")
    adapters = []
    for n in names:
        try:
            adapters.append(adapter_class(n)(device))
        except RuntimeError as e:  # the framework sees no device of that kind
            raise ValueError(f"--device {device}: {e}") from None
    return adapters
