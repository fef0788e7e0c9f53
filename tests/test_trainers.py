"""Every backend's trainer (`roberta_<b>.training`): gradient accumulation, and the framework's own
data parallelism over two workers, give the loss and the weights of one worker taking the whole
global batch at once; dropout is on while training. One test for the three backends — only how
each framework starts two workers differs (`SCALE_OUT`):

- pt: two processes under torchrun (DistributedDataParallel, gloo on CPU);
- tf: MirroredStrategy over 2 logical CPU devices (fixed when TensorFlow starts: a subprocess);
- flax: a mesh of 2 simulated XLA host devices (fixed when JAX starts: a subprocess).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from roberta_core import backends, runtime
from roberta_core.optim import load_backend
from tests.helpers import REPO, rel_err
from tests.roberta_core.training_case import STEPS, case, run

# backend -> (command after `python`, extra environment, the npz field counting the workers)
SCALE_OUT = {
    "pt": (["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "tests.roberta_core.training_case", "pt"], {}, "workers"),
    "tf": (["-m", "tests.roberta_core.training_case", "tf", "{out}", "--tf-devices", "2"], {}, "devices"),
    "flax": (["-m", "tests.roberta_core.training_case", "flax"],
             {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}, "devices"),
}

# One xdist worker per backend runs its tests: the module fixture trains once per backend.
BACKENDS = [
    pytest.param(
        name,
        marks=[
            pytest.mark.xdist_group(f"{name}-trainer"),
            pytest.mark.skipif(not runtime.available(name), reason=f"the {name} backend is not installed"),
        ],
        id=name,
    )
    for name in backends.NAMES
]


def make_trainer(backend: str, steps: int = STEPS, dropout: float = 0.0):
    config, state, settings, stream = case(steps=steps, dropout=dropout)
    options = {}
    if backend == "flax":  # one device, whatever this process sees
        import jax
        from jax.sharding import Mesh

        options["mesh"] = Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
    trainer = load_backend(backend)("masked_lm", config, settings, state=state, precision="fp32", **options)
    return trainer, settings, stream


@pytest.fixture(scope="module", params=BACKENDS)
def single(request):
    """One worker, one micro-batch per update: the reference."""
    backend = request.param
    trainer, settings, stream = make_trainer(backend)
    if backend == "tf" and trainer.strategy.num_replicas_in_sync != 1:
        pytest.skip(reason="this process already split its CPU into several logical devices")
    return backend, np.array(run(trainer, settings, stream)), trainer.weights()


def test_accumulation_equals_one_big_batch(single):
    backend, losses_one, weights_one = single
    trainer, settings, stream = make_trainer(backend)
    losses = np.array(run(trainer, settings, stream, accumulate=4))
    np.testing.assert_allclose(losses, losses_one, rtol=1e-5)
    for key, value in trainer.weights().items():
        assert rel_err(value, weights_one[key]) <= 1e-5, key


def test_two_workers_equal_one(single, tmp_path):
    backend, losses_one, weights_one = single
    out = tmp_path / "scale-out.npz"
    args, extra_env, counter = SCALE_OUT[backend]
    args = [a.format(out=out) for a in args] if "{out}" in args else [*args, str(out)]
    env = dict(os.environ, **extra_env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    got = np.load(out)
    assert int(got[counter]) == 2  # two workers took half the rows each
    np.testing.assert_allclose(got["losses"], losses_one, rtol=1e-5)
    for key, value in weights_one.items():
        assert rel_err(got[key], value) <= 1e-5, key


def test_dropout_is_on_while_training(single):
    """The first loss, before any update, differs from the dropout-free one only by dropout."""
    backend, losses_one, _ = single
    trainer, settings, stream = make_trainer(backend, steps=2, dropout=0.3)
    losses = run(trainer, settings, stream)
    assert np.isfinite(losses).all() and abs(losses[0] - losses_one[0]) > 1e-4, (losses, losses_one[:2])
