"""roberta_pt.training.Trainer: gradient accumulation and DistributedDataParallel (2 processes
under torchrun, gloo on CPU) give the loss and the weights of one worker taking the whole
global batch at once."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from roberta_core.optim import load_backend
from tests.helpers import REPO, rel_err
from tests.roberta_core.training_case import STEPS, case, run

# One worker runs the whole module: its fixtures train once.
pytestmark = pytest.mark.xdist_group("pt-trainer")


@pytest.fixture(scope="module")
def single():
    """One process, one micro-batch per update: the reference."""
    config, state, settings, stream = case(steps=STEPS)
    trainer = load_backend("pt")("masked_lm", config, settings, state=state, precision="fp32")
    return np.array(run(trainer, settings, stream)), trainer.weights()


def test_accumulation_equals_one_big_batch(single):
    config, state, settings, stream = case(steps=STEPS)
    trainer = load_backend("pt")("masked_lm", config, settings, state=state, precision="fp32")
    losses = np.array(run(trainer, settings, stream, accumulate=4))
    np.testing.assert_allclose(losses, single[0], rtol=1e-5)
    for key, value in trainer.weights().items():
        assert rel_err(value, single[1][key]) <= 1e-5, key


def test_two_torchrun_processes_equal_one(single, tmp_path):
    out = tmp_path / "ddp.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tests.roberta_core.training_case", "pt", str(out)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    got = np.load(out)
    assert int(got["workers"]) == 2  # two processes took half the rows each
    np.testing.assert_allclose(got["losses"], single[0], rtol=1e-5)
    for key, value in single[1].items():
        assert rel_err(got[key], value) <= 1e-5, key


def test_dropout_is_on_while_training(single):
    """The first loss, before any update, differs from the dropout-free one only by dropout."""
    config, state, settings, stream = case(steps=2, dropout=0.3)
    t = load_backend("pt")("masked_lm", config, settings, state=state, precision="fp32")
    losses = run(t, settings, stream)
    assert np.isfinite(losses).all() and abs(losses[0] - single[0][0]) > 1e-4, (losses, single[0][:2])
