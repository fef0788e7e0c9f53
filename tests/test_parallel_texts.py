"""The three backends stay parallel texts: `tools/check_parallel.py` passes on the tree, and it
fails when one backend alone reorders or renames a method (ARCHITECTURE.md, "Parallel texts")."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("check_parallel", ROOT / "tools" / "check_parallel.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check_parallel = _checker()


def _trio(tmp_path: Path, texts: dict[str, str], module: str = "heads.py") -> Path:
    for backend, text in texts.items():
        folder = tmp_path / "src" / f"roberta_{backend}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / module).write_text(text)
    return tmp_path


PT = '''
# ---------------------------------------------------------------------------- task models

class RobertaForMaskedLM(Base):
    def __init__(self, config): ...
    def get_output_embeddings(self): ...
    def forward(self, input_ids): ...
'''


def test_the_tree_is_parallel():
    problems = check_parallel.check(ROOT)
    assert problems == [], "\n".join(problems)


def test_an_aligned_trio_passes(tmp_path):
    tf = PT.replace("RobertaForMaskedLM", "TFRobertaForMaskedLM").replace("def forward", "def call")
    flax = PT.replace("RobertaForMaskedLM", "FlaxRobertaForMaskedLM").replace("def forward", "def __call__")
    assert check_parallel.check(_trio(tmp_path, {"pt": PT, "tf": tf, "flax": flax})) == []


def test_a_method_reordered_in_one_backend_fails(tmp_path):
    tf = PT.replace("RobertaForMaskedLM", "TFRobertaForMaskedLM").replace("def forward", "def call")
    flax = PT.replace("RobertaForMaskedLM", "FlaxRobertaForMaskedLM").replace(
        "    def get_output_embeddings(self): ...\n    def forward(self, input_ids): ...",
        "    def __call__(self, input_ids): ...\n    def get_output_embeddings(self): ...",
    )
    problems = check_parallel.check(_trio(tmp_path, {"pt": PT, "tf": tf, "flax": flax}))
    assert len(problems) == 1 and "another order" in problems[0] and "roberta_flax" in problems[0]


def test_a_section_renamed_in_one_backend_fails(tmp_path):
    tf = PT.replace("task models", "task layers")
    problems = check_parallel.check(_trio(tmp_path, {"pt": PT, "tf": tf, "flax": PT}))
    assert len(problems) == 1 and "section headers differ" in problems[0]


@pytest.mark.parametrize("backend", ["pt", "tf", "flax"])
def test_a_method_renamed_in_one_real_backend_fails(tmp_path, backend):
    """The real modeling.py trio, with one public method renamed in one backend only."""
    for b in ("pt", "tf", "flax"):
        (tmp_path / "src" / f"roberta_{b}").mkdir(parents=True)
        shutil.copy(ROOT / "src" / f"roberta_{b}" / "modeling.py", tmp_path / "src" / f"roberta_{b}" / "modeling.py")
    target = tmp_path / "src" / f"roberta_{backend}" / "modeling.py"
    text = target.read_text()
    assert "def resize_token_embeddings(" in text
    target.write_text(text.replace("def resize_token_embeddings(", "def resize_vocabulary("))
    problems = check_parallel.check(tmp_path)
    assert any("resize_token_embeddings" in p for p in problems), problems
