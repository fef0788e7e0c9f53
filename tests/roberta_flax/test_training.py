"""Training: gradients through the functional API (nnx.split + jax.grad) equal PyTorch's, are
unchanged by gradient checkpointing (nnx.remat), by the fast paths (`unpad`,
`masked_positions_only`) and by sharding the model data- and tensor-parallel over a mesh; an
optax train step with dropout learns."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from roberta_flax.convert import to_canonical
from tests.helpers import REPO, assert_close, padded_batch, tiny_config
from tests.roberta_flax.common import CLASSES, build

# One layer shows every property and halves the compile time; every dimension the mesh's
# 'model' axis splits (vocabulary 100, heads 4, MLP 40) divides by 2, the batch of 4 by 4.
CONFIG = dict(num_hidden_layers=1, intermediate_size=40)
LENGTHS = (7, 5, 2, 6)


def batch(config):
    ids, mask = padded_batch(config, lengths=LENGTHS)
    labels = np.where((np.random.default_rng(3).random(ids.shape) < 0.5) & (mask == 1), ids, -100)
    return dict(input_ids=ids, attention_mask=mask, labels=labels)


def loss_logits_grads(model, inputs, **options):
    """(loss, logits, gradients as a canonical dict) by jax.grad over the parameter state."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params):
        out = nnx.merge(graphdef, params, rest)(**inputs, **options)
        return out.loss, out.logits

    (value, logits), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    return float(value), np.asarray(logits), to_canonical(nnx.merge(graphdef, grads, rest))


@pytest.fixture(scope="module")
def plain():
    config = tiny_config(**CONFIG)
    model, state = build("masked_lm", config)
    inputs = batch(config)
    return model, state, inputs, loss_logits_grads(model, inputs)


def test_remat_gradients_equal_plain_gradients(plain):
    model, _, inputs, (loss, _, grads) = plain
    remat, _ = build("masked_lm", model.config)
    remat.gradient_checkpointing_enable()
    graphdef, params, rest = nnx.split(remat, nnx.Param, ...)
    jaxpr = str(jax.make_jaxpr(lambda p: nnx.merge(graphdef, p, rest)(**inputs).loss)(params))
    assert jaxpr.count("remat") >= model.config.num_hidden_layers  # every layer is checkpointed
    remat_loss, _, remat_grads = loss_logits_grads(remat, inputs)
    assert remat_loss == pytest.approx(loss, abs=1e-6)
    for key, g in grads.items():
        assert_close(remat_grads[key], g, atol=1e-6, what=key)


def test_unpad_and_masked_positions_only_keep_the_gradients(plain):
    """Both fast paths at once, with unused slots and rows to spare: the padded loss, logits
    (the labelled rows, then zeros) and gradients."""
    model, _, inputs, (loss, logits, grads) = plain
    real, labelled = int(inputs["attention_mask"].sum()), int((inputs["labels"] != -100).sum())
    fast_loss, rows, fast_grads = loss_logits_grads(model, inputs, unpad=real + 2, masked_positions_only=labelled + 2)
    assert fast_loss == pytest.approx(loss, rel=1e-6)
    assert_close(rows[:labelled], logits[inputs["labels"] != -100], what="labelled rows")
    assert not rows[labelled:].any()  # the rows to spare are zeros
    for key, g in grads.items():
        assert_close(fast_grads[key], g, atol=1e-5, what=key)


def test_gradients_match_pytorch(plain):
    torch = pytest.importorskip("torch")
    roberta_pt = pytest.importorskip("roberta_pt")
    from roberta_pt.convert import from_canonical as pt_from_canonical

    model, state, inputs, (loss, _, grads) = plain
    pt_model = pt_from_canonical(roberta_pt.RobertaForMaskedLM(model.config), state).eval()
    pt_loss = pt_model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).loss
    pt_loss.backward()
    assert loss == pytest.approx(pt_loss.item(), abs=1e-5)
    pt_grads = dict(pt_model.named_parameters())
    for key, g in grads.items():
        assert_close(g, pt_grads[key].grad.numpy(), atol=1e-5, what=key)


SHARDED = r'''
import sys
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from roberta_flax import FlaxRobertaForMaskedLM
from roberta_flax.convert import from_canonical
from tests.helpers import assert_close, tiny_config
from tests.roberta_flax.test_training import CONFIG, loss_logits_grads

assert len(jax.devices()) == 8, jax.devices()
given = np.load(sys.argv[1])
state = {k[6:]: given[k] for k in given if k.startswith("state:")}
mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "model"))
model = from_canonical(FlaxRobertaForMaskedLM(tiny_config(**CONFIG)), state).shard(mesh)
layer = model.roberta.encoder.layer[0]
assert layer.attention.self.query.kernel[...].sharding.spec == P(None, "model")  # heads split
assert layer.output.dense.kernel[...].sharding.spec == P("model", None)  # MLP split
assert model.roberta.embeddings.word_embeddings.embedding[...].sharding.spec == P("model", None)  # vocabulary split
data = NamedSharding(mesh, P("data"))  # the batch split
inputs = {k: jax.device_put(given[k], data) for k in ("input_ids", "attention_mask", "labels")}
loss, logits, grads = loss_logits_grads(model, inputs)
assert_close(loss, given["loss"], atol=1e-6, what="loss")
assert_close(logits, given["logits"], atol=1e-5, what="logits")
for key, g in grads.items():
    assert_close(g, given["grad:" + key], atol=1e-6, what=key)
print("sharded equals single-device")
'''


def test_sharded_forward_and_gradients_equal_single_device(plain, tmp_path):
    """On a 4 x 2 mesh of simulated CPU devices (a subprocess: JAX fixes the device count when
    it starts), the sharded model's loss, logits and gradients equal this process's."""
    _, state, inputs, (loss, logits, grads) = plain
    given = tmp_path / "single_device.npz"
    np.savez(
        given, loss=loss, logits=logits, **inputs,
        **{f"state:{k}": v for k, v in state.items()}, **{f"grad:{k}": v for k, v in grads.items()},
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", SHARDED, str(given)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sharded equals single-device" in done.stdout


def test_optax_train_step_with_dropout_learns():
    config = tiny_config(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, **CONFIG)
    # rbg keys: dropout's random bits compile faster on CPU than threefry's.
    model = CLASSES["masked_lm"](config, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    model.train()
    optimizer = nnx.Optimizer(model, optax.adamw(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, inputs):
        loss, grads = nnx.value_and_grad(lambda m: m(**inputs).loss)(model)
        optimizer.update(model, grads)
        return loss

    inputs = batch(config)
    drawn = int(model.roberta.embeddings.dropout.rngs.count[...])
    losses = [float(step(model, optimizer, inputs)) for _ in range(12)]
    assert int(model.roberta.embeddings.dropout.rngs.count[...]) == drawn + 12  # dropout drew a mask each step
    assert losses[-1] < 0.5 * losses[0], losses


def test_query_is_called_as_a_module_in_training():
    """ARCHITECTURE §4: `attention.self.query` (like every projection) runs as its own module in every
    mode, training with gradients included, so a wrapper put in its place (LoRA, a forward
    hook, a quantizer) sees the call and changes the result. The wrapper here records each
    call and scales the projection's output; the loss and the gradient of the wrapped kernel
    must follow."""
    calls = []

    class Hooked(nnx.Module):
        def __init__(self, inner: nnx.Linear, scale: float):
            self.inner, self.scale = inner, scale

        def __call__(self, x):
            calls.append(x.shape)
            return self.inner(x) * self.scale

    config = tiny_config(**CONFIG, attention_probs_dropout_prob=0.1, hidden_dropout_prob=0.1)
    inputs = batch(config)

    def train_loss(scale):
        model, _ = build("masked_lm", config, rngs=nnx.Rngs(3))
        model.train()
        attention = model.roberta.encoder.layer[0].attention.self
        if scale is not None:
            attention.query = Hooked(attention.query, scale)
        loss, grads = nnx.value_and_grad(lambda m: m(**inputs).loss)(model)
        return float(loss), grads.roberta.encoder.layer[0].attention.self.query

    plain, _ = train_loss(None)
    assert not calls
    same, grads = train_loss(1.0)
    assert calls and calls[0][-1] == config.hidden_size  # called with the layer's states (..., H)
    assert same == pytest.approx(plain, rel=1e-6)  # an identity hook changes nothing
    assert float(np.abs(np.asarray(grads.inner.kernel[...])).sum()) > 0  # gradients flow through it
    zeroed, _ = train_loss(0.0)
    assert abs(zeroed - plain) > 1e-4  # and what it returns is what the attention uses


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_dropout_masks_from_threefry_words_are_fair_and_unbiased(rate):
    """Dropout with a threefry key (JAX's default) takes four 16-bit draws from each threefry
    block (`_framework.keep_mask`). Checked on 2**21 values against the rate, not against the
    code: the dropped fraction is within 5 standard deviations of round(rate * 2**16) / 2**16,
    in every one of the four draw positions of a block; neighbouring values (lags 1-8, inside
    and across blocks, and a row apart) are uncorrelated; kept values are x / keep, so the mean is the input's;
    the same key replays the same mask (gradient checkpointing's rerun), another key does not;
    an rbg key, or a rate no 16-bit threshold keeps, gets `nnx.Dropout`'s own mask, value for value."""
    from roberta_flax._framework import Dropout

    n = 2**21
    x = jax.random.uniform(jax.random.key(7), (8, 2, n // 16), minval=0.5, maxval=1.5)
    out = np.asarray(Dropout(rate, rngs=nnx.Rngs(0))(x, deterministic=False, rngs=jax.random.key(1)))
    threshold = round(rate * 2**16)
    p, keep = threshold / 2**16, 1 - threshold / 2**16
    dropped = (out == 0).reshape(-1)
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(dropped.mean() - p) < 5 * sigma, (dropped.mean(), p)
    for position in range(4):
        part = dropped[position::4]
        assert abs(part.mean() - p) < 5 * np.sqrt(p * (1 - p) / part.size), position
    centred = dropped - dropped.mean()
    for lag in (*range(1, 9), n // 16):  # and the same place in the next row
        corr = (centred[:-lag] * centred[lag:]).mean() / centred.var()
        assert abs(corr) < 5 / np.sqrt(n), (lag, corr)
    kept = out != 0
    np.testing.assert_allclose(out[kept], np.asarray(x)[kept] / keep, rtol=1e-6)
    # Each output's variance about its input is x**2 * p / keep, E[x**2] = 13/12 here.
    assert abs(out.mean() - float(np.asarray(x).mean())) < 5 * np.sqrt(13 / 12 * p / keep / n)

    again = np.asarray(Dropout(rate)(x, deterministic=False, rngs=jax.random.key(1)))
    other = np.asarray(Dropout(rate)(x, deterministic=False, rngs=jax.random.key(2)))
    np.testing.assert_array_equal(again, out)
    assert (other != out).mean() > p / 2

    tiny = 2.0**-18
    np.testing.assert_array_equal(
        np.asarray(Dropout(tiny)(x, deterministic=False, rngs=jax.random.key(1))),
        np.asarray(nnx.Dropout(tiny)(x, deterministic=False, rngs=jax.random.key(1))),
    )
    rbg = jax.random.key(1, impl="rbg")
    np.testing.assert_array_equal(
        np.asarray(Dropout(rate)(x, deterministic=False, rngs=rbg)),
        np.asarray(nnx.Dropout(rate)(x, deterministic=False, rngs=rbg)),
    )
