"""The built-in corpus every Python installation has: the language reference topics of
`pydoc_data.topics` and the docstrings of the standard library's own source files (about
2.3 MB of English on CPython 3.11), plus a fine-tuning task made from the same docstrings.

Documents are made deterministically (sorted by name) and the held-out part is chosen by a
checksum of each document's name, so it stays the same whichever files a Python ships.
Sources are read with `ast`, never imported: no module's import-time side effects run.
"""

from __future__ import annotations

import ast
import functools
import sysconfig
import zlib
from pathlib import Path
from typing import Iterator

__all__ = ["SPLITS", "PACKAGE_LABELS", "builtin_documents", "package_task"]

SPLITS = ("train", "heldout", "all")
HELDOUT_PERCENT = 5  # of the documents, for masked-token accuracy and perplexity
TASK_TEST_PERCENT = 20  # of the task's examples
# The task: from which of these packages does a docstring come? (each has 140+ docstrings)
PACKAGE_LABELS = ("asyncio", "email", "importlib", "logging", "multiprocessing", "unittest", "xml", "http")
_MIN_TASK_WORDS = 4  # "Return self." says nothing about where it lives


def _percentile(name: str) -> int:
    """A stable number 0..99 for `name` (crc32, unlike hash(), is the same in every process)."""
    return zlib.crc32(name.encode("utf-8")) % 100


@functools.lru_cache(maxsize=1)
def _stdlib_docstrings() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(module name, its docstrings in source order) for each .py file of the standard
    library, tests and installed packages left out; sorted by module name."""
    root = Path(sysconfig.get_paths()["stdlib"])
    modules = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if parts[0] in ("site-packages", "dist-packages") or parts[0].startswith("config-"):
            continue
        if any(p in ("test", "tests", "__pycache__") or p.startswith("test_") for p in parts):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):  # a file for another Python version: not English anyway
            continue
        docs = tuple(
            doc
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and (doc := ast.get_docstring(node))
        )
        if docs:
            modules.append((".".join(parts).removesuffix(".py").removesuffix(".__init__"), docs))
    return tuple(sorted(modules))


def _documents() -> Iterator[tuple[str, str]]:
    """(name, text) of every document: one per reference topic, one per module."""
    from pydoc_data.topics import topics

    for name in sorted(topics):
        yield f"topic:{name}", topics[name].strip()
    for module, docs in _stdlib_docstrings():
        yield f"module:{module}", "\n\n".join(docs)


def builtin_documents(split: str = "train") -> Iterator[str]:
    """The texts of the built-in corpus: `train` (95% of the documents), `heldout` (the other
    5%, for evaluation) or `all`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    for name, text in _documents():
        heldout = _percentile(name) < HELDOUT_PERCENT
        if split == "all" or heldout == (split == "heldout"):
            yield text


def package_task(split: str = "train") -> list[dict]:
    """The built-in fine-tuning task: `{"text": docstring, "label": i}` where
    `PACKAGE_LABELS[i]` is the standard-library package the docstring comes from.
    `train` is 80% of the examples, `heldout` the other 20%."""
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown split {split!r}; choose train or heldout")
    examples, seen = [], set()
    for module, docs in _stdlib_docstrings():
        package = module.split(".")[0]
        if package not in PACKAGE_LABELS:
            continue
        for doc in docs:
            # split by the text itself, and once per text: a docstring written twice in the
            # library (there are some) can never land on both sides
            heldout = _percentile(doc) < TASK_TEST_PERCENT
            if len(doc.split()) >= _MIN_TASK_WORDS and heldout == (split == "heldout") and doc not in seen:
                seen.add(doc)
                examples.append({"text": doc, "label": PACKAGE_LABELS.index(package)})
    return examples
