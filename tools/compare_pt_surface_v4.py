"""Dev-only: run tests/roberta_pt/v4_oracle_surface.py (our PyTorch models beside transformers 4.x)
in the reference environment. `make bench-env` first; then `python tools/compare_pt_surface_v4.py`.
The bench env has transformers 4.57.6 and torch; pytest and our other dependencies come from `.venv`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".bench-env" / "bin" / "python"
VENV_SITE = next((ROOT / ".venv" / "lib").glob("python*/site-packages"), None)

if __name__ == "__main__":
    if not BENCH.exists() or VENV_SITE is None:
        sys.exit("needs .bench-env (make bench-env) and .venv (make venv)")
    code = (f"import sys; sys.path.append({str(VENV_SITE)!r}); sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'src')!r}]; "
            "import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', "
            "'tests/roberta_pt/v4_oracle_surface.py']))")
    sys.exit(subprocess.call([str(BENCH), "-c", code], cwd=ROOT, env={**os.environ, "USE_TF": "0"}))
