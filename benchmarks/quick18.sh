#!/usr/bin/env bash
# Issue 18's speed columns on roberta-base (benchmarks/quick18.py): ONNX Runtime fp32/int8 on our
# export and transformers', PyTorch torch.compile and int8, against transformers' PyTorch sdpa fp32,
# on mlm-8x128 and varlen-8. About 6 minutes on 2 quiet cores (the first run also exports and
# verifies, cached under benchmarks/out/roberta-base/onnx-*). Needs .venv and .bench-env (with
# onnx: `make bench-env`, or `.bench-env/bin/python -m pip install onnx`). Extra arguments go to
# the script (--preset tiny for a smoke run, --json FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m benchmarks.quick18 "$@"
