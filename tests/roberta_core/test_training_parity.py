"""The training step written three times has one meaning: from the same initial weights and the
same batches (dropout off), PyTorch, TensorFlow and Flax give the same loss curve (the issue's
bar: 1e-3 relative over 20 updates), the same weights after it, and a checkpoint of one backend's
optimizer resumes in another. Each backend is the others' independent reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from roberta_core import backends, runtime
from roberta_core.optim import load_backend
from tests.helpers import rel_err
from tests.roberta_core.training_case import case, run

BACKENDS = [b for b in backends.NAMES if runtime.available(b)]
HALF = 10

# One worker runs the whole module (its fixture trains once); two backends are needed to compare.
pytestmark = [
    pytest.mark.xdist_group("training-parity"),
    pytest.mark.skipif(len(BACKENDS) < 2, reason="needs two installed backends to compare"),
]


@pytest.fixture(scope="module")
def curves():
    """backend -> (20 losses, final weights, (weights, optimizer moments) after 10 updates)."""
    out = {}
    for name in BACKENDS:
        config, state, settings, stream = case()
        trainer = load_backend(name)("masked_lm", config, settings, state=state, precision="fp32")
        first = run(trainer, settings, stream, stop=HALF)
        snapshot = (trainer.weights(), trainer.optimizer_state())
        losses = first + run(trainer, settings, stream, start=HALF)
        out[name] = (np.array(losses), trainer.weights(), snapshot)
    return out


def test_training_moves_the_loss(curves):
    for name, (losses, _, _) in curves.items():
        assert losses[-5:].mean() < losses[0] - 0.4, f"{name}: the loss did not fall: {losses.round(3)}"


@pytest.mark.parametrize("a, b", list(itertools.combinations(BACKENDS, 2)))
def test_loss_curves_and_weights_agree(curves, a, b):
    la, wa, _ = curves[a]
    lb, wb, _ = curves[b]
    worst = float(np.max(np.abs(la - lb) / np.abs(la)))
    assert worst <= 1e-3, f"{a} vs {b}: loss curves differ by {worst:.2e} relative\n{la}\n{lb}"
    for key in wa:
        assert rel_err(wb[key], wa[key]) <= 1e-3, f"{a} vs {b}: {key} after 20 updates"


@pytest.mark.parametrize("name", BACKENDS)
def test_a_checkpoint_of_another_backend_resumes(curves, name):
    """Weights and AdamW moments (canonical names and layout) of the backend before `name` in
    the list, taken after 10 updates, continue in `name` exactly as `name`'s own run did."""
    source = BACKENDS[BACKENDS.index(name) - 1]
    weights, moments = curves[source][2]
    config, _, settings, stream = case(start=HALF)
    trainer = load_backend(name)("masked_lm", config, settings, state=weights, precision="fp32")
    trainer.load_optimizer_state(moments, HALF)
    resumed = np.array(run(trainer, settings, stream, start=HALF))
    own = curves[name][0][HALF:]
    assert np.max(np.abs(resumed - own) / own) <= 1e-3, f"{source} -> {name}:\n{resumed}\n{own}"
