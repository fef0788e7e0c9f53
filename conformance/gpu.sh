#!/usr/bin/env bash
# The conformance suite on a GPU, in one call: `roberta parity --device gpu` in fp32 (TF32 off,
# JAX matmul precision 'highest') and in bf16, for PyTorch on CUDA and JAX/Flax on its GPU.
#
# Written for the lent GPU machine (see /work/.library/device/README.md): its image has PyTorch,
# JAX and Flax but no TensorFlow and no network, and the repository arrives as a copy of the
# working tree (no virtual environment), so the library runs from the source tree. Run from the
# repository root, e.g. through the device tool:
#
#     bash conformance/gpu.sh            (timeout_s 600 leaves room for a rerun)
#
# A missing or too old Python package there can travel as wheels in .whl/ (carry ".whl"): they
# are installed first into /tmp/site. Tables go to stdout and, when $OUT is set, to
# $OUT/gpu_float32.md and $OUT/gpu_bfloat16.md. Exit status: 0 when every check passed.
set -u -o pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # PyTorch and JAX share the card in one process
export TF_CPP_MIN_LOG_LEVEL=2

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
date -u +"%Y-%m-%d %H:%M UTC"
"$PY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0])
for name in ("numpy", "torch", "jax", "jaxlib", "flax", "tensorflow"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as e:  # noqa: BLE001
        print(name, "absent", f"({type(e).__name__})")
try:
    import torch
    print("torch cuda:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception:
    pass
try:
    import jax
    print("jax devices:", jax.devices())
except Exception as e:  # noqa: BLE001
    print("jax devices: none", e)
EOF

# bf16 first (8 cases); each run is bounded so that the other one's table still comes back.
status=0
for run in "bfloat16 150" "float32 360"; do
    set -- $run
    dtype=$1 limit=$2
    echo
    echo "== roberta parity --device gpu --dtype $dtype   (at most $limit s)"
    log=${OUT:+$OUT/gpu_$dtype.md}
    timeout "$limit" "$PY" -m roberta_core.parity --device gpu --dtype "$dtype" 2>&1 | tee ${log:-/dev/null}
    rc=${PIPESTATUS[0]}
    echo "exit status: $rc"
    [ "$rc" -eq 0 ] || status=1
done
exit $status
