"""The layers stay apart (issue 13 §4): `roberta_core` imports no framework and no backend at
module level and never the test suite (`conformance`), and `pip install .` installs the library
without the tests. Read from the source text (`ast`) and from pyproject.toml, so nothing here
depends on what happens to be imported in this process."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "roberta_core"
# What a NumPy-only command must never pay for: the frameworks and the backend packages.
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "jaxlib", "flax", "optax", "roberta_pt", "roberta_tf", "roberta_flax")
TESTS = ("conformance", "tests")


def _modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _imports(tree: ast.AST, *, module_level: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import; with `module_level`, only those that run when
    the module is imported (not inside a function body; class bodies and `if`/`try` blocks count)."""
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.lineno, child.module))
            visit(child)

    visit(tree)
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_no_framework_or_backend_at_module_level(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"line {line}: import {name}" for line, name in _imports(tree, module_level=True) if _top(name) in FRAMEWORKS]
    assert not bad, f"{path.relative_to(ROOT)} imports a framework or backend at module level (do it inside the function that needs it): {bad}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_never_the_test_suite(path):
    """Not even inside a function, nor by name through importlib (`cli.SUBCOMMANDS` maps names to
    modules): the tests are not installed, so the library would fail where it is installed."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"line {line}: import {name}" for line, name in _imports(tree, module_level=False) if _top(name) in TESTS]
    bad += [
        f"line {node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"(conformance|tests)(\.\w+)+", node.value)
    ]
    assert not bad, f"{path.relative_to(ROOT)} reaches into the test suite: {bad}"


def test_the_checks_see_what_they_look_for():
    """The two checks above on crafted sources: a module-level import is caught, one inside a
    function is allowed for frameworks (the tokenizers' `return_tensors`) but not for conformance."""
    source = (
        "import numpy as np\nimport torch.nn\nfrom jax import numpy as jnp\ntry:\n    import tensorflow\nexcept ImportError:\n    pass\n"
        "class A:\n    from flax import nnx\n"
        "def f():\n    import torch\n    from conformance.reference import forward\n"
        "MODULES = {'parity': 'conformance.parity'}\n"
    )
    tree = ast.parse(source)
    assert [n for _, n in _imports(tree, module_level=True)] == ["numpy", "torch.nn", "jax", "tensorflow", "flax"]
    assert [n for _, n in _imports(tree, module_level=False)][-2:] == ["torch", "conformance.reference"]


# ---------------------------------------------------------------------------- what pip installs


def _packaged() -> list[str]:
    """The packages `pip install .` installs, as setuptools computes them from pyproject.toml."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    from setuptools import find_namespace_packages, find_packages

    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = settings.get("packages")
    if isinstance(packages, list):
        return packages
    spec = packages["find"]  # pyproject's `find` looks for namespace packages unless told not to
    finder = find_namespace_packages if spec.get("namespaces", True) else find_packages
    found = []
    for folder in spec.get("where", ["."]):
        found += finder(str(ROOT / folder), include=spec.get("include", ("*",)), exclude=spec.get("exclude", ()))
    return found


def test_the_tests_are_not_installed():
    packages = _packaged()
    settings_text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert not [p for p in packages if _top(p) in TESTS], packages
    assert not re.search(r"^\s*conformance\s*=", settings_text, flags=re.M), "package-dir still maps conformance"


def test_every_library_package_is_installed():
    """Every folder of src/ with an `__init__.py` (subpackages such as `roberta_core.parity`
    included): `roberta parity` must work from an installed copy."""
    expected = sorted(
        ".".join(p.parent.relative_to(ROOT / "src").parts)
        for p in (ROOT / "src").rglob("__init__.py")
        if not any(part.endswith(".egg-info") for part in p.parts)
    )
    assert "roberta_core.parity" in expected
    assert sorted(set(_packaged()) & set(expected)) == expected
