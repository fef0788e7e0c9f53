"""roberta_tf.training.TFTrainer: gradient accumulation and MirroredStrategy over 2 logical TF
CPU devices give the loss and the weights of one replica taking the whole global batch at once."""

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
pytestmark = pytest.mark.xdist_group("tf-trainer")


def trainer():
    config, state, settings, stream = case(steps=STEPS)
    return load_backend("tf")("masked_lm", config, settings, state=state, precision="fp32"), settings, stream


@pytest.fixture(scope="module")
def single():
    """One replica, one micro-batch per update: the reference."""
    t, settings, stream = trainer()
    if t.strategy.num_replicas_in_sync != 1:
        pytest.skip(reason="this process already split its CPU into several logical devices")
    return np.array(run(t, settings, stream)), t.weights()


def test_accumulation_equals_one_big_batch(single):
    t, settings, stream = trainer()
    losses = np.array(run(t, settings, stream, accumulate=4))
    np.testing.assert_allclose(losses, single[0], rtol=1e-5)
    for key, value in t.weights().items():
        assert rel_err(value, single[1][key]) <= 1e-5, key


def test_two_logical_devices_equal_one(single, tmp_path):
    """A subprocess, as TensorFlow fixes its logical devices when it starts."""
    out = tmp_path / "mirrored.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "tests.roberta_core.training_case", "tf", str(out), "--tf-devices", "2"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    got = np.load(out)
    assert int(got["devices"]) == 2  # MirroredStrategy ran two replicas
    np.testing.assert_allclose(got["losses"], single[0], rtol=1e-5)
    for key, value in single[1].items():
        assert rel_err(got[key], value) <= 1e-5, key


def test_dropout_is_on_while_training(single):
    """The first loss, before any update, differs from the dropout-free one only by dropout."""
    config, state, settings, stream = case(steps=2, dropout=0.3)
    t = load_backend("tf")("masked_lm", config, settings, state=state, precision="fp32")
    losses = run(t, settings, stream)
    assert np.isfinite(losses).all() and abs(losses[0] - single[0][0]) > 1e-4, (losses, single[0][:2])
