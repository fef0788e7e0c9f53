# `make demo` runs the main job, `make test` the tests; each does its own set-up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv clean bench-env bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The CPU build of torch 2.13.0 is taken first (on these machines it lies on local disk;
# an unpinned torch would pull a multi-GB CUDA build), then the project with every backend.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[all,dev]"
	$(PY) -m pip install -q --no-deps "sapiens==1.0.5"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/roberta demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup

# Reference venv (dev-only, never used by tests or CI): transformers 4.57.6, the last release with
# TF and Flax RoBERTa, for tests/fixtures/make_golden.py and the benchmarks. Its TF models need
# Keras 2 (`tf-keras`, run with TF_USE_LEGACY_KERAS=1). tf-keras declares a dependency on the full
# `tensorflow` wheel; the CPU build `tensorflow-cpu` of the same minor provides the same module,
# so tf-keras is installed with --no-deps on top of it.
BENCH       ?= .bench-env
BENCH_STAMP := $(BENCH)/.installed

$(BENCH_STAMP):
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install -q --upgrade pip
	$(BENCH)/bin/python -m pip install -q "torch==2.13.0"
	$(BENCH)/bin/python -m pip install -q "transformers==4.57.6" "tensorflow-cpu==2.21.0" \
		"jax==0.10.2" "jaxlib==0.10.2" "flax==0.12.8" safetensors h5py msgpack numpy ml-dtypes \
		tokenizers psutil onnx
	$(BENCH)/bin/python -m pip install -q --no-deps "tf-keras==2.21.0"
	touch $(BENCH_STAMP)

bench-env: $(BENCH_STAMP)

# The benchmarks against the reference (benchmarks/run.py; benchmarks/RESULTS.md has the tables).
bench: $(STAMP) $(BENCH_STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
