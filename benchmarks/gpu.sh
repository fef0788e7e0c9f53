#!/usr/bin/env bash
# The GPU benchmarks (issue 10) in one call on the lent H100/H200 machine: PyTorch and JAX (its
# image has no TensorFlow and no network), bf16 and fp32, larger batches. The runner is
# benchmarks/run.py --gpu: ours from src/ against transformers on the same weights and inputs.
#
# 1. Here, once (the reference for Flax needs transformers 4.57.6, the image has 5.x without
#    Flax; its pins want huggingface_hub < 1 and tokenizers <= 0.23.0):
#        bash benchmarks/gpu.sh --prepare        # wheels into benchmarks/out/wheels (gitignored)
# 2. On the device (tool `run`): command "bash benchmarks/gpu.sh", carry ["benchmarks/out/wheels"],
#    timeout_s 600 (it is sized to end in about 9.5 minutes: a machine start plus this call fit
#    the 15 device minutes of a session once). Results come back in $OUT: gpu_pt.{log,json},
#    gpu_flax.{log,json} (each also as .partial, one JSON line per measurement, should a half
#    run out of time), env.txt.
#
# The PyTorch reference is the image's transformers (5.x; RoBERTa's PyTorch code is the same
# model); the JAX one is transformers 4.57.6's Flax classes, installed into /tmp/hf457 and put
# first on the path of the reference's Flax processes only. fp32 runs with TF32 off (PyTorch) and
# matmul precision 'highest' (JAX), as ARCHITECTURE §5 asks. Each half has its own time limit, so a
# slow compile cannot cost the other half its result; PyTorch runs first.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=benchmarks/out/wheels

if [ "${1:-}" = "--prepare" ]; then
    mkdir -p "$WHEELS"
    exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEELS" transformers==4.57.6 huggingface_hub==0.36.2 tokenizers==0.22.2
fi

OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD/src:$PWD"

{
    date -u +"%Y-%m-%d %H:%M UTC"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
    python3 -c "import sys, torch, jax, flax, transformers; print('python', sys.version.split()[0], '| torch', torch.__version__, '| jax', jax.__version__, '| flax', flax.__version__, '| transformers (PT reference)', transformers.__version__)"
} 2>&1 | tee "$OUT/env.txt"

FLAX_REF=()
if ls "$WHEELS"/transformers-4.57.6-*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/hf457 \
        "$WHEELS"/*.whl && FLAX_REF=(--ref-flax-path /tmp/hf457)
    PYTHONPATH=/tmp/hf457 python3 -c "import transformers; print('Flax reference: transformers', transformers.__version__)" \
        2>&1 | tee -a "$OUT/env.txt"
else
    echo "no transformers 4.57.6 wheels in $WHEELS (run: bash benchmarks/gpu.sh --prepare, and carry the folder);" \
         "the Flax reference will fail" | tee -a "$OUT/env.txt"
fi

# gpu-mlm-16x512 is left out to fit one call; add it with --cases when there is time for it.
CASES=gpu-mlm-64x128,gpu-varlen-64,gpu-train-32x512
# PyTorch: sdpa in bf16 and fp32, then torch.compile (HF's best mode) on bf16 inference.
timeout 330 python3 -m benchmarks.run --gpu --backends pt --cases "$CASES" --ref-python python3 \
    --json "$OUT/gpu_pt.json" 2>&1 | tee "$OUT/gpu_pt.log"
# JAX: jit, bf16 and fp32.
timeout 240 python3 -m benchmarks.run --gpu --backends flax --cases "$CASES" --ref-python python3 "${FLAX_REF[@]}" \
    --json "$OUT/gpu_flax.json" 2>&1 | tee "$OUT/gpu_flax.log"
