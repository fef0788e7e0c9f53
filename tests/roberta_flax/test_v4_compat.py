"""Code written for `transformers` v4 runs unchanged on the Flax backend (issue 14):
`from_pretrained`'s keywords as v4 sorts them, `add_pooling_layer=False`, the QA head's
`num_labels`, v4 Flax's functional API on top of NNX (`model.params`, `model(..., params=,
dropout_rng=, train=)`, a `TrainState` fine-tuning script) and a wrapped `query` (`nnx.LoRA`)
honoured in training."""

from __future__ import annotations

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.serialization import msgpack_restore
from flax.training import train_state
from safetensors.numpy import load_file

from roberta_core import reference
from roberta_core.weights import CheckpointKeyError
from roberta_flax import (
    FlaxRobertaForMaskedLM,
    FlaxRobertaForQuestionAnswering,
    FlaxRobertaForSequenceClassification,
    FlaxRobertaModel,
)
from roberta_flax.convert import from_canonical, to_canonical
from tests.helpers import assert_close, golden, padded_batch, random_state, tiny_config
from tests.roberta_flax.common import build

IDS = np.array([[0, 5, 9, 2, 1], [0, 7, 11, 13, 2]])
MASK = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
QUERY = "roberta.encoder.layer.0.attention.self.query.weight"


def _saved(tmp_path, head, config=None, name="ckpt"):
    """A checkpoint of `head` (random weights) saved under tmp_path/name; returns (dir, state)."""
    model, state = build(head, config or tiny_config())
    model.save_pretrained(tmp_path / name)
    return tmp_path / name, state


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _leaves(tree, prefix=()):
    """{path tuple: leaf} of a nested mapping."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_leaves(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def _nnx_tree(state: nnx.State) -> dict:
    """An NNX state (gradients) as v4's tree: str keys."""
    def str_keys(tree):
        return {str(k): str_keys(v) if isinstance(v, dict) else v for k, v in tree.items()}

    return str_keys(nnx.to_pure_dict(state))


# ---------------------------------------------------------------------------- from_pretrained's keywords

def test_unknown_keyword_is_a_type_error_and_nothing_reaches_config_json(tmp_path):
    path, _ = _saved(tmp_path, "sequence_classification")
    with pytest.raises(TypeError, match="'foo_bar'"):
        FlaxRobertaForSequenceClassification.from_pretrained(path, foo_bar=3)
    # A head takes no add_pooling_layer (v4: TypeError from its __init__).
    with pytest.raises(TypeError, match="add_pooling_layer"):
        FlaxRobertaForSequenceClassification.from_pretrained(path, add_pooling_layer=False)
    with pytest.raises(TypeError, match="seed= .* or rngs="):
        FlaxRobertaForSequenceClassification.from_pretrained(path, seed=1, rngs=nnx.Rngs(1))
    # v4's loading options are accepted and never written into the config.
    options = dict(device_map="cpu", low_cpu_mem_usage=True, trust_remote_code=False, revision="main",
                   cache_dir=str(tmp_path / "cache"), local_files_only=True, token=None, from_pt=False)
    model = FlaxRobertaForSequenceClassification.from_pretrained(path, **options)
    model.save_pretrained(tmp_path / "again")
    written = json.loads((tmp_path / "again" / "config.json").read_text())
    assert not set(options) & set(written)
    assert not any(hasattr(model.config, k) for k in options)


def test_config_fields_go_to_the_config_and_model_arguments_to_the_model(tmp_path):
    path, state = _saved(tmp_path, "model")
    model = FlaxRobertaModel.from_pretrained(path, output_hidden_states=True, dtype="bfloat16",
                                             attn_implementation="eager", seed=3)
    assert model.config.output_hidden_states is True and model.dtype == jnp.bfloat16
    assert model.attn_implementation == "einsum"  # PyTorch's name maps to this backend's
    assert len(model(IDS).hidden_states) == model.config.num_hidden_layers + 1
    # `seed` (v4 Flax) seeds what the checkpoint lacks: the classifier of a head on an encoder checkpoint.
    heads = [_quiet(FlaxRobertaForSequenceClassification.from_pretrained, path, seed=s) for s in (3, 3, 4)]
    kernels = [np.asarray(m.classifier.out_proj.kernel[...]) for m in heads]
    assert np.array_equal(kernels[0], kernels[1]) and not np.array_equal(kernels[0], kernels[2])
    # v4's `_do_init=False` gives (model, params); the params run the model as v4 code passes them.
    model, params = FlaxRobertaModel.from_pretrained(path, _do_init=False)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(model.params_shape_tree)
    with pytest.raises(ValueError, match="_do_init=False"):  # v4: the model holds no parameters
        model.params
    got = model(IDS, params=params).last_hidden_state
    assert_close(got, reference.forward(model.config, state, "model", input_ids=np.asarray(IDS))["last_hidden_state"],
                 what="_do_init=False params")


def test_subfolder(tmp_path):
    path, state = _saved(tmp_path, "model", name="repo/encoder")
    model = FlaxRobertaModel.from_pretrained(tmp_path / "repo", subfolder="encoder")
    assert all(np.array_equal(to_canonical(model)[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match="subfolder"):
        FlaxRobertaModel.from_pretrained(tmp_path / "repo", subfolder="../repo/encoder")


def test_output_loading_info_lists_what_v4_lists(tmp_path):
    path, _ = _saved(tmp_path, "masked_lm")
    model, info = _quiet(FlaxRobertaForSequenceClassification.from_pretrained, path, output_loading_info=True)
    assert isinstance(model, FlaxRobertaForSequenceClassification) and model.deterministic
    assert set(info) == {"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"}
    # The MLM head's keys are unused; the classifier's are new; nothing else.
    assert sorted(info["missing_keys"]) == sorted(
        f"classifier.{m}.{p}" for m in ("dense", "out_proj") for p in ("weight", "bias"))
    assert info["unexpected_keys"] and all(k.startswith("lm_head.") for k in info["unexpected_keys"])
    assert info["mismatched_keys"] == [] and info["error_msgs"] == []

    cls_path, _ = _saved(tmp_path, "sequence_classification", tiny_config(num_labels=3), name="cls3")
    _, info = _quiet(FlaxRobertaForSequenceClassification.from_pretrained, cls_path, num_labels=5,
                     ignore_mismatched_sizes=True, output_loading_info=True)
    assert sorted(info["mismatched_keys"]) == ["classifier.out_proj.bias", "classifier.out_proj.weight"]
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def _platforms(model) -> set[str]:
    return {d.platform for p in jax.tree.leaves(nnx.state(model, nnx.Param)) for d in p.devices()}


def test_device_map(tmp_path):
    path, _ = _saved(tmp_path, "model")
    gpu = any(d.platform == "gpu" for d in jax.devices())
    cpu = jax.devices("cpu")[0]
    for device_map, expected in [("cpu", "cpu"), (cpu, "cpu"), ({"": "cpu"}, "cpu"),
                                 ("auto", "gpu" if gpu else "cpu")]:
        model = FlaxRobertaModel.from_pretrained(path, device_map=device_map)
        assert _platforms(model) == {expected}, device_map
    for bad, match in [("nowhere", "device_map must be"), ({"encoder": "cpu"}, "one device"),
                       (-1, "device_map must be"), (1.5, "device_map must be"), ("cpu:1", "device_map must be")]:
        with pytest.raises(ValueError, match=match):
            FlaxRobertaModel.from_pretrained(path, device_map=bad)
    if not gpu:
        for device_map in ("cuda", 0, "gpu:0"):
            with pytest.raises(ValueError, match="asks for a GPU, but JAX sees none"):
                FlaxRobertaModel.from_pretrained(path, device_map=device_map)


@pytest.mark.skipif(not any(d.platform == "gpu" for d in jax.devices()), reason="needs a GPU")
def test_device_map_places_on_the_gpu(tmp_path):
    path, _ = _saved(tmp_path, "sequence_classification")
    for device_map in ("cuda", "auto", 0, "cuda:0", {"": 0}):
        model = FlaxRobertaForSequenceClassification.from_pretrained(path, device_map=device_map)
        assert _platforms(model) == {"gpu"}
    cpu = FlaxRobertaForSequenceClassification.from_pretrained(path, device_map="cpu")
    assert _platforms(cpu) == {"cpu"}
    np.testing.assert_allclose(np.asarray(model(IDS, MASK).logits), np.asarray(cpu(IDS, MASK).logits),
                               rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- add_pooling_layer=False

def test_add_pooling_layer_false_builds_no_pooler_and_reports_its_keys_unused(tmp_path):
    config = tiny_config()
    path, state = _saved(tmp_path, "model", config)
    with pytest.warns(UserWarning, match=r"unused by RobertaModel \(2\): pooler\.dense"):
        model = FlaxRobertaModel.from_pretrained(path, add_pooling_layer=False)
    assert model.pooler is None and "pooler" not in model.params
    out = model(IDS, MASK)
    assert out.pooler_output is None
    ref = reference.forward(config, state, "model", input_ids=IDS, attention_mask=MASK)
    assert_close(out.last_hidden_state, ref["last_hidden_state"], atol=1e-5, what="states vs reference")
    with pytest.raises(CheckpointKeyError, match="pooler"):
        FlaxRobertaModel.from_pretrained(path, add_pooling_layer=False, strict=True)
    # Its save holds no pooler (as v4's), and loads back into a pooler-less model exactly.
    model.save_pretrained(tmp_path / "no_pooler", safe_serialization=True)
    saved = load_file(tmp_path / "no_pooler" / "model.safetensors")
    assert set(saved) == set(state) - {"pooler.dense.weight", "pooler.dense.bias"}
    again = FlaxRobertaModel.from_pretrained(tmp_path / "no_pooler", add_pooling_layer=False, strict=True)
    assert again.pooler is None


def test_add_pooling_layer_false_on_a_pooler_less_checkpoint_is_silent(tmp_path):
    path, _ = _saved(tmp_path, "masked_lm")  # roberta.* without pooler, lm_head.*
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = FlaxRobertaModel.from_pretrained(path, add_pooling_layer=False)
    text = "\n".join(str(w.message) for w in caught)
    assert "pooler" not in text and "lm_head" in text  # nothing reported missing, the LM head unused
    assert model.pooler is None


# ---------------------------------------------------------------------------- the QA head's num_labels

def test_question_answering_has_num_labels_outputs_as_v4(tmp_path):
    config = tiny_config(num_labels=3)
    model = FlaxRobertaForQuestionAnswering(config)
    assert tuple(model.qa_outputs.kernel.shape) == (config.hidden_size, 3)
    with pytest.raises(ValueError, match="num_labels == 2.*num_labels=3"):
        model(IDS)
    # Its save is one v4 can load: the config's num_labels is the weight's row count.
    model.save_pretrained(tmp_path, safe_serialization=True)
    written = json.loads((tmp_path / "config.json").read_text())
    weights = load_file(tmp_path / "model.safetensors")
    assert len(written["id2label"]) == weights["qa_outputs.weight"].shape[0] == weights["qa_outputs.bias"].shape[0] == 3
    back = FlaxRobertaForQuestionAnswering.from_pretrained(tmp_path, strict=True)
    np.testing.assert_array_equal(np.asarray(back.qa_outputs.kernel[...]), np.asarray(model.qa_outputs.kernel[...]))


def test_question_answering_with_two_labels_loads_and_runs_as_before(tmp_path):
    config = tiny_config()
    path, state = _saved(tmp_path, "question_answering", config)
    model = FlaxRobertaForQuestionAnswering.from_pretrained(path, strict=True)
    out = model(IDS, MASK)
    ref = reference.forward(config, state, "question_answering", input_ids=IDS, attention_mask=MASK)
    assert_close(out.start_logits, ref["start_logits"], atol=1e-5, what="start logits")
    assert_close(out.end_logits, ref["end_logits"], atol=1e-5, what="end logits")
    # A checkpoint of the MaskedLM head into QA with num_labels=3 builds a 3-row head (then refuses to run).
    mlm, _ = _saved(tmp_path, "masked_lm", name="mlm")
    qa3 = _quiet(FlaxRobertaForQuestionAnswering.from_pretrained, mlm, num_labels=3)
    assert tuple(qa3.qa_outputs.kernel.shape) == (config.hidden_size, 3)


# ---------------------------------------------------------------------------- v4's params tree

@pytest.mark.parametrize("head, cls", [("model", FlaxRobertaModel), ("masked_lm", FlaxRobertaForMaskedLM)])
def test_params_is_the_tree_transformers_flax_writes(head, cls):
    """`model.params` has exactly the paths, shapes and values of the `flax_model.msgpack` that
    transformers 4.57.6's Flax model wrote (its own `params`), and setting that tree loads it."""
    source = golden(head)
    v4_tree = msgpack_restore((source / "flax_model.msgpack").read_bytes())
    model = cls.from_pretrained(source)
    ours = _leaves(model.params)
    theirs = _leaves(v4_tree)
    assert set(ours) == set(theirs)
    for path, value in theirs.items():
        np.testing.assert_array_equal(np.asarray(ours[path]), value, err_msg="/".join(path))
    assert ("roberta",) != next(iter(ours))[:1] or head != "model"  # the bare model has no roberta level

    # Setting v4's tree (here: its values doubled) is what the model computes with.
    io = np.load(source / "io.npz")
    fresh = cls(model.config, rngs=nnx.Rngs(5))
    fresh.params = v4_tree
    out = fresh(input_ids=io["input_ids"], attention_mask=io["attention_mask"])
    field = "last_hidden_state" if head == "model" else "logits"
    assert_close(out[field], io[f"flax_{field}"], atol=1e-5, what=f"{field} vs transformers Flax")


def test_params_setter_checks_keys_shapes_and_kinds():
    config = tiny_config(num_labels=3)
    model, _ = build("sequence_classification", config)
    tree = model.params
    missing = {**tree, "classifier": {"dense": tree["classifier"]["dense"]}}
    with pytest.raises(ValueError, match=r"missing \(1\): classifier/out_proj$"):
        model.params = missing
    with pytest.raises(ValueError, match=r"unexpected \(1\): extra"):
        model.params = {**tree, "extra": {"kernel": np.zeros(3)}}
    wrong = jax.tree.map(lambda x: x, tree)
    wrong["classifier"]["out_proj"]["kernel"] = np.zeros((config.hidden_size, 5), np.float32)
    with pytest.raises(ValueError, match=r"classifier/out_proj/kernel \(32, 5\) != expected \(32, 3\)"):
        model.params = wrong
    ints = jax.tree.map(lambda x: np.zeros(x.shape, np.int32), tree)
    with pytest.raises(TypeError, match="floating point"):
        model.params = ints
    # Nothing was changed by the refused trees.
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(model.params), jax.tree.leaves(tree)))


def test_call_with_params_is_a_pure_function_of_them():
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config)
    other, other_state = build("sequence_classification", config, seed=1)
    ids, mask = padded_batch(config)
    ref = reference.forward(config, state, "sequence_classification", input_ids=ids, attention_mask=mask)
    other_ref = reference.forward(config, other_state, "sequence_classification", input_ids=ids, attention_mask=mask)
    params = other.params
    assert_close(model(ids, mask, params=params).logits, other_ref["logits"], what="eager, given params")
    logits = jax.jit(lambda p: model(input_ids=ids, attention_mask=mask, params=p).logits)(params)
    assert_close(logits, other_ref["logits"], what="under jit, given params")
    # The model itself is unchanged: its own parameters still compute its own outputs.
    assert_close(model(ids, mask).logits, ref["logits"], what="the model after the calls")
    with pytest.raises(ValueError, match="params do not match"):
        model(ids, params={"roberta": params["roberta"]})


def test_train_switches_dropout_with_dropout_rng():
    config = tiny_config(num_labels=3, hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3)
    model, state = build("sequence_classification", config)
    ids, mask = padded_batch(config)
    ref = reference.forward(config, state, "sequence_classification", input_ids=ids, attention_mask=mask)
    key = jax.random.PRNGKey(0)
    # train=False (v4's default): no dropout whatever the key.
    assert_close(model(ids, mask, params=model.params, dropout_rng=key).logits, ref["logits"], what="train=False")
    one = model(ids, mask, dropout_rng=key, train=True).logits
    again = jax.jit(lambda k: model(input_ids=ids, attention_mask=mask, dropout_rng=k, train=True).logits)(key)
    other = model(ids, mask, dropout_rng=jax.random.PRNGKey(1), train=True).logits
    np.testing.assert_allclose(np.asarray(again), np.asarray(one), rtol=1e-5, atol=1e-6)  # the key decides
    assert np.abs(np.asarray(one) - ref["logits"]).max() > 1e-3  # dropout is on
    assert np.abs(np.asarray(other) - np.asarray(one)).max() > 1e-3
    assert_close(model(ids, mask).logits, ref["logits"], what="the model's own mode is untouched")
    with pytest.raises(ValueError, match="dropout_rng"):
        model(ids, train=True)
    with pytest.raises(TypeError, match="not both"):
        model(ids, train=True, dropout_rng=key, deterministic=True)


def _classification_batch(config):
    ids, mask = padded_batch(config, lengths=(7, 5, 2, 6))
    return dict(input_ids=ids.astype(np.int32), attention_mask=mask.astype(np.int32),
                labels=np.array([2, 0, 1, 1], np.int32))


def test_v4_fine_tuning_script_runs_end_to_end(tmp_path):
    """transformers' `run_glue_flax.py` pattern, unchanged: a TrainState over `model.params`,
    a jitted train_step taking the gradient through `state.apply_fn(..., params=, dropout_rng=,
    train=True)`."""
    config = tiny_config(num_labels=3, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    model, _ = build("sequence_classification", config)
    batch = _classification_batch(config)

    def loss_fn_of(state, batch, dropout_rng, train):
        targets = batch.pop("labels")

        def loss_fn(params):
            logits = state.apply_fn(**batch, params=params, dropout_rng=dropout_rng, train=train)[0]
            return optax.softmax_cross_entropy(logits, jax.nn.one_hot(targets, config.num_labels)).mean()

        return loss_fn

    def train_step(state, batch, dropout_rng):
        dropout_rng, new_dropout_rng = jax.random.split(dropout_rng)
        loss, grad = jax.value_and_grad(loss_fn_of(state, batch, dropout_rng, True))(state.params)
        return state.apply_gradients(grads=grad), loss, new_dropout_rng

    state = train_state.TrainState.create(apply_fn=model.__call__, params=model.params, tx=optax.adamw(3e-3))
    p_train_step = jax.jit(train_step)
    rng = jax.random.PRNGKey(0)
    losses = []
    for _ in range(8):
        state, loss, rng = p_train_step(state, dict(batch), rng)
        losses.append(float(loss))
    assert np.mean(losses[-3:]) < 0.75 * losses[0], losses  # falling, through dropout's noise

    # One step's gradient, dropout off, equals the NNX-native gradient of the same loss.
    fresh, _ = build("sequence_classification", config)
    start = train_state.TrainState.create(apply_fn=fresh.__call__, params=fresh.params, tx=optax.adamw(3e-3))
    v4_grad = jax.jit(jax.grad(loss_fn_of(start, dict(batch), rng, False)))(start.params)
    inputs = {k: v for k, v in batch.items() if k != "labels"}

    def nnx_loss(m):
        logits = m(**inputs, deterministic=True).logits
        return optax.softmax_cross_entropy(logits, jax.nn.one_hot(batch["labels"], config.num_labels)).mean()

    nnx_grad = _nnx_tree(nnx.grad(nnx_loss)(fresh))
    assert set(_leaves(v4_grad)) == set(_leaves(nnx_grad))
    for path, g in _leaves(nnx_grad).items():
        assert_close(_leaves(v4_grad)[path], np.asarray(g), atol=1e-5, what="/".join(path))
    assert any(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(v4_grad))

    # The trained tree goes back into the model (v4: model.params = state.params) and saves.
    model.params = state.params
    assert_close(model(**inputs).logits, state.apply_fn(**inputs, params=state.params)[0], what="set params")
    model.save_pretrained(tmp_path)
    back = FlaxRobertaForSequenceClassification.from_pretrained(tmp_path, strict=True)
    assert_close(back(**inputs).logits, model(**inputs).logits, what="saved and loaded")


# ---------------------------------------------------------------------------- wrapped submodules in training

def _with_lora(config, rank=2):
    """A classifier whose layer-0 `query` is wrapped in `nnx.LoRA` (B set non-zero: with B = 0,
    as initialised, A's gradient is zero), and the canonical state with the LoRA delta merged by
    hand into the query weight (out, in): W + (A @ B).T."""
    model, state = build("sequence_classification", config)
    attention = model.roberta.encoder.layer[0].attention.self
    H = config.hidden_size
    lora = nnx.LoRA(H, rank, H, base_module=attention.query, rngs=nnx.Rngs(1))
    lora.lora_b[...] = 0.3 * jax.random.normal(jax.random.PRNGKey(2), (rank, H))
    attention.query = lora
    merged = dict(state)
    delta = np.asarray(lora.lora_a[...], np.float64) @ np.asarray(lora.lora_b[...], np.float64)  # (in, out)
    merged[QUERY] = (state[QUERY].astype(np.float64) + delta.T).astype(np.float32)
    return model, merged


def test_nnx_lora_on_query_is_honoured_in_training():
    config = tiny_config(num_labels=3)
    model, merged = _with_lora(config)
    batch = _classification_batch(config)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    ref = reference.forward(config, merged, "sequence_classification", **inputs)
    # The forward, in evaluation and in training mode (dropout is 0), goes through the LoRA query.
    assert_close(model(**inputs).logits, ref["logits"], what="eval with LoRA")
    assert_close(model(**inputs, deterministic=False).logits, ref["logits"], what="train mode with LoRA")
    assert_close(model(**inputs, params=model.params, dropout_rng=jax.random.PRNGKey(0), train=True).logits,
                 ref["logits"], what="v4 call with LoRA")
    lora_params = model.params["roberta"]["encoder"]["layer"]["0"]["attention"]["self"]["query"]
    assert set(lora_params) == {"base_module", "lora_a", "lora_b"}

    # NNX-native training of the LoRA parameters only: both matrices get gradients, the loss falls.
    def loss_fn(m):
        return m(**batch, deterministic=False).loss

    grads = nnx.grad(loss_fn, argnums=nnx.DiffState(0, nnx.LoRAParam))(model)
    flat = {"/".join(map(str, p)): np.asarray(v) for p, v in _leaves(_nnx_tree(grads)).items()}
    assert sorted(flat) == ["roberta/encoder/layer/0/attention/self/query/lora_a",
                            "roberta/encoder/layer/0/attention/self/query/lora_b"]
    assert all(np.abs(g).max() > 1e-6 for g in flat.values())
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.LoRAParam)
    base = np.asarray(model.roberta.encoder.layer[0].attention.self.query.base_module.kernel[...])
    first = float(loss_fn(model))

    @nnx.jit
    def step(model, optimizer):
        loss, g = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, nnx.LoRAParam))(model)
        optimizer.update(model, g)
        return loss

    for _ in range(10):
        step(model, optimizer)
    assert float(loss_fn(model)) < first
    np.testing.assert_array_equal(  # the frozen base weight did not move
        np.asarray(model.roberta.encoder.layer[0].attention.self.query.base_module.kernel[...]), base)

    # The v4 path: jax.grad over model.params reaches lora_a and lora_b too.
    v4_grads = jax.grad(lambda p: model(**batch, params=p).loss)(model.params)
    query = v4_grads["roberta"]["encoder"]["layer"]["0"]["attention"]["self"]["query"]
    assert np.abs(np.asarray(query["lora_a"])).max() > 1e-6 and np.abs(np.asarray(query["lora_b"])).max() > 1e-6


def test_a_replaced_query_linear_is_used():
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config)
    H = config.hidden_size
    replaced = nnx.Linear(H, H, rngs=nnx.Rngs(9))
    model.roberta.encoder.layer[0].attention.self.query = replaced
    changed = dict(state)
    changed[QUERY] = np.asarray(replaced.kernel[...]).T
    changed[QUERY.replace("weight", "bias")] = np.asarray(replaced.bias[...])
    batch = _classification_batch(config)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    ref = reference.forward(config, changed, "sequence_classification", **inputs)
    assert_close(model(**inputs, deterministic=False).logits, ref["logits"], what="replaced query")
    grads = nnx.grad(lambda m: m(**batch, deterministic=False).loss)(model)
    assert np.abs(np.asarray(grads["roberta"]["encoder"]["layer"][0]["attention"]["self"]["query"]["kernel"])).max() > 0


def test_the_constructor_takes_v4s_seed():
    # v4 Flax code builds fresh models as `FlaxRobertaForMaskedLM(config, seed=42, dtype=...)`.
    from roberta_flax import FlaxRobertaForMaskedLM, FlaxRobertaModel

    config = tiny_config()
    params = lambda model: jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))  # noqa: E731
    by_seed, by_rngs = FlaxRobertaForMaskedLM(config, seed=3), FlaxRobertaForMaskedLM(config, rngs=nnx.Rngs(3))
    assert all(np.array_equal(a, b) for a, b in zip(params(by_seed), params(by_rngs)))
    default, zero = FlaxRobertaModel(config), FlaxRobertaModel(config, seed=0)  # v4's default seed is 0
    assert all(np.array_equal(a, b) for a, b in zip(params(default), params(zero)))
    other = FlaxRobertaModel(config, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(params(other), params(zero)))
    with pytest.raises(TypeError, match="seed= .* or rngs="):
        FlaxRobertaForMaskedLM(config, seed=1, rngs=nnx.Rngs(1))


def test_to_bf16_fp16_fp32_cast_a_params_tree_as_v4():
    # v4 Flax: `model.params = model.to_bf16(model.params)` (optionally under a mask of booleans).
    from roberta_flax import FlaxRobertaModel

    model = FlaxRobertaModel(tiny_config())
    params = model.params
    half = model.to_bf16(params)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(half)} == {jnp.dtype(jnp.bfloat16)}
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(model.params)} == {jnp.dtype(jnp.float32)}  # unchanged
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(model.to_fp32(half))} == {jnp.dtype(jnp.float32)}
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(model.to_fp16(params))} == {jnp.dtype(jnp.float16)}
    # A mask casts only where it is True: here every kernel, not the biases or LayerNorm scales.
    mask = jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "kernel", params)
    masked = model.to_bf16(params, mask)
    for (path, leaf), keep in zip(jax.tree_util.tree_leaves_with_path(masked), jax.tree_util.tree_leaves(mask)):
        assert leaf.dtype == (jnp.bfloat16 if keep else jnp.float32), path
    model.params = half  # as v4: the model then holds bfloat16 weights
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(model.params)} == {jnp.dtype(jnp.bfloat16)}



def test_tuples_hold_the_cache_only_when_given_one_as_v4_flax():
    """v4 Flax's encoder builds its `return_dict=False` tuple from the states, hidden states and
    attentions (`FlaxRobertaEncoder`), and its model puts a cache in element 1 only when the call
    was given one (`init_cache`'s): a causal LM's tuple is (logits, [hidden_states], ...) by
    default; with a cache given, (logits, cache, ...). The output object keeps the cache."""
    model, _ = build("causal_lm", tiny_config(is_decoder=True))
    ids = np.array([[0, 9, 17, 23]], np.int32)
    full = model(ids, use_cache=True, output_hidden_states=True)
    assert full.past_key_values is not None
    plain = model(ids, use_cache=True, return_dict=False)
    assert len(plain) == 1 and np.array_equal(plain[0], full.logits)
    states = model(ids, use_cache=True, output_hidden_states=True, return_dict=False)
    assert len(states) == 2 and len(states[1]) == model.config.num_hidden_layers + 1
    np.testing.assert_array_equal(states[1][-1], full.hidden_states[-1])
    step = model(ids[:, -1:], past_key_values=model(ids[:, :-1], use_cache=True).past_key_values, return_dict=False)
    assert len(step) == 2 and len(step[1]) == model.config.num_hidden_layers  # (logits, cache)
    bare, _ = build("model", tiny_config(is_decoder=True))
    assert len(bare(ids, use_cache=True, return_dict=False)) == 2  # sequence, pooled
