"""TensorFlow and Keras machinery: tf.function and XLA give the eager numbers, gradient
checkpointing gives the plain gradients, `fit` trains with the head's loss from a tf.data
pipeline, and an exported SavedModel gives the same logits for any batch and length; v4's
`save_pretrained(saved_model=True)`, Keras 3's `export`, `.keras` files and `tf.saved_model.save`
serve, TFLite converts with builtin ops, and a LoRA wrapper of `query` trains (issue 14)."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from roberta_core import reference
from roberta_core.outputs import SequenceClassifierOutput
from tests.helpers import assert_close, padded_batch, tiny_config

from .common import CLASSES, build, inputs_for


def test_tf_function_and_xla_give_the_eager_numbers():
    config = tiny_config(is_decoder=True, position_embedding_type="relative_key")
    model, _ = build("causal_lm", config, seed=1)
    inputs = inputs_for(config, "causal_lm")
    eager = model(**inputs)

    def call(input_ids, attention_mask, labels):
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

    graph = tf.function(call)(**inputs)
    xla = tf.function(call, jit_compile=True)(**inputs)
    for got in (graph, xla):  # the output class passes through tf.function as itself
        assert type(got) is type(eager) and list(got) == list(eager) == ["loss", "logits"]
        assert_close(got.logits, eager.logits, what="logits")
        assert_close(got.loss, eager.loss, what="loss")


def test_gradient_checkpointing_gives_the_plain_gradients_with_dropout_on():
    config = tiny_config(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)
    model, _ = build("masked_lm", config, seed=2)
    inputs = inputs_for(config, "masked_lm")
    seeds = [d.seed_generator for d in model._flatten_layers() if isinstance(d, keras.layers.Dropout) and d.rate > 0]
    start = [s.state.numpy() for s in seeds]

    def loss_and_gradients():
        for seed, value in zip(seeds, start):  # the same dropout masks for both runs
            seed.state.assign(value)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(**inputs, training=True).loss)
        return float(loss), tape.gradient(loss, model.trainable_weights)

    loss, plain = loss_and_gradients()
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    checkpointed_loss, checkpointed = loss_and_gradients()
    model.gradient_checkpointing_disable()
    assert checkpointed_loss == loss
    eval_loss = float(tf.reduce_mean(model(**inputs).loss))
    assert eval_loss != loss  # dropout was on: the masks the rerun replays matter
    for p, c, w in zip(plain, checkpointed, model.trainable_weights):
        assert_close(tf.convert_to_tensor(c), tf.convert_to_tensor(p), atol=1e-6, what=w.path)


def test_eager_kernels_match_the_library_formulas_values_and_gradients():
    """LayerNorm and GELU with their gradients written out (used eagerly in float32) against the
    float64 NumPy reference for the values and TF's autodiff of the library ops, in float64, for
    the gradients."""
    from roberta_tf._framework import gelu_eager, layer_norm_eager

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 5, 16)) * 3 + 7).astype(np.float32)  # an offset mean: centring matters
    gamma, beta = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    upstream = rng.standard_normal(x.shape)

    def value_and_grads(fn, args, dtype):
        args = [tf.constant(a, dtype) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(args)
            y = fn(*args)
            loss = tf.reduce_sum(y * tf.constant(upstream, dtype))
        return y.numpy(), [g.numpy() for g in tape.gradient(loss, args)]

    got, got_grads = value_and_grads(lambda x, g, b: layer_norm_eager(x, g, b, 1e-5), (x, gamma, beta), tf.float32)
    _, want_grads = value_and_grads(lambda x, g, b: keras.ops.layer_normalization(x, g, b, epsilon=1e-5),
                                    (x, gamma, beta), tf.float64)
    assert_close(got, reference.layer_norm(x.astype(np.float64), gamma, beta, 1e-5), atol=1e-5, what="layer norm")
    for name, g, w in zip(("dx", "dgamma", "dbeta"), got_grads, want_grads):
        assert np.linalg.norm(g - w) <= 1e-5 * np.linalg.norm(w), name

    h = rng.standard_normal((4, 32)).astype(np.float32) * 4  # tails where Φ saturates
    upstream = rng.standard_normal(h.shape)
    got, (got_grad,) = value_and_grads(gelu_eager, (h,), tf.float32)
    _, (want_grad,) = value_and_grads(lambda t: tf.nn.gelu(t, approximate=False), (h,), tf.float64)
    assert_close(got, reference.ACT2FN["gelu"](h.astype(np.float64)), atol=1e-5, what="gelu")
    assert np.linalg.norm(got_grad - want_grad) <= 1e-5 * np.linalg.norm(want_grad)


@pytest.mark.parametrize("shape", [(6, 16), (3, 5, 16), (2, 3, 4, 16)])
@pytest.mark.parametrize("variant", ["bias", "no bias", "activation", "keras lora"])
def test_eager_dense_gives_keras_dense_values_and_gradients(shape, variant):
    """`Dense` (eagerly in float32: one 2-D product on static shapes) against the float64 NumPy
    product for the values and Keras' own Dense, traced in a graph, for the gradients of the
    input and every weight (Keras' LoRA included: its kernel is kernel + A @ B)."""
    from roberta_tf._framework import Dense

    rng = np.random.default_rng(1)
    kwargs = {"use_bias": variant != "no bias", "activation": "tanh" if variant == "activation" else None}
    ours, theirs = Dense(8, **kwargs), keras.layers.Dense(8, **kwargs)
    for layer in (ours, theirs):
        layer.build((None, 16))
        if variant == "keras lora":
            layer.enable_lora(2)
    for a, b in zip(ours.weights, theirs.weights):
        value = rng.standard_normal(a.shape).astype(np.float32)
        a.assign(value)
        b.assign(value)
    x = tf.constant(rng.standard_normal(shape).astype(np.float32))
    upstream = tf.constant(rng.standard_normal((*shape[:-1], 8)).astype(np.float32))

    def value_and_grads(layer, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * upstream)
        return y, tape.gradient(loss, [x, *layer.trainable_weights])

    got, got_grads = value_and_grads(ours, x)
    want, want_grads = tf.function(lambda x: value_and_grads(theirs, x))(x)
    w = {v.path.split("/")[-1]: v.numpy().astype(np.float64) for v in ours.weights}
    kernel = w["kernel"] + (w["lora_kernel_a"] @ w["lora_kernel_b"] * ours.lora_alpha / ours.lora_rank
                            if variant == "keras lora" else 0)
    product = x.numpy().astype(np.float64) @ kernel + w.get("bias", 0)
    assert_close(got, np.tanh(product) if variant == "activation" else product, atol=1e-5, what="dense")
    assert_close(got, want, atol=1e-5, what="against Keras' Dense")
    assert len(got_grads) == len(want_grads) == 1 + len(ours.trainable_weights)
    for g, h in zip(got_grads, want_grads):
        assert_close(tf.convert_to_tensor(g), tf.convert_to_tensor(h), atol=1e-5, what="gradient")


def test_eager_training_gradients_equal_the_graphs():
    """Eagerly (the written-out kernels) and in a graph (Keras' and TF's ops, autodiff): one loss
    and gradients, every weight (dropout off: the tiny config's rates are 0)."""
    config = tiny_config()
    model, _ = build("masked_lm", config, seed=3)
    inputs = {k: tf.constant(v) for k, v in inputs_for(config, "masked_lm").items()}

    def loss_and_gradients():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(**inputs, training=True).loss)
        return loss, tape.gradient(loss, model.trainable_weights)

    eager_loss, eager = loss_and_gradients()
    graph_loss, graph = tf.function(loss_and_gradients)()
    assert_close(eager_loss, graph_loss, atol=1e-6, what="loss")
    for e, g, w in zip(eager, graph, model.trainable_weights):
        e, g = tf.convert_to_tensor(e).numpy(), tf.convert_to_tensor(g).numpy()
        # plus a floor for the key bias, whose gradient is zero but for rounding (softmax ignores it)
        assert np.linalg.norm(e - g) <= 1e-5 * np.linalg.norm(g) + 1e-7, w.path


def test_eager_dropout_drops_at_its_rate_scales_the_rest_and_replays_from_its_seed():
    from roberta_tf._framework import Dropout

    layer = Dropout(0.3, seed=1)
    x = tf.constant(np.random.default_rng(0).uniform(1, 2, size=(50, 400)), tf.float32)
    start = layer.seed_generator.state.numpy()
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    dx = tape.gradient(y, x).numpy()
    y = y.numpy()
    dropped = y == 0
    assert abs(dropped.mean() - 0.3) < 0.02  # 20,000 draws: the standard deviation is 0.003
    np.testing.assert_allclose(y[~dropped], x.numpy()[~dropped] / 0.7, rtol=1e-6)  # kept, scaled by 1/(1 - rate)
    np.testing.assert_allclose(dx, np.where(dropped, 0.0, 1 / 0.7), rtol=1e-6)  # the gradient is the mask
    layer.seed_generator.state.assign(start)  # rewound (as a checkpointed layer's rerun): the same mask
    np.testing.assert_array_equal(layer(x, training=True).numpy(), y)
    assert not np.array_equal(layer(x, training=True).numpy(), y)  # the generator moved on
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())  # not training: the identity
    graph = tf.function(lambda t: layer(t, training=True))(x).numpy()  # in a graph: Keras' own dropout
    assert abs((graph == 0).mean() - 0.3) < 0.02


def test_fit_for_one_epoch_lowers_the_loss_with_the_heads_own_loss():
    config = tiny_config(num_labels=2)
    keras.utils.set_random_seed(0)
    model = CLASSES["token_classification"](config)
    rng = np.random.default_rng(0)
    ids = rng.integers(4, config.vocab_size, size=(128, 8))
    ids[:, 0] = config.bos_token_id
    labels = np.where(ids == config.bos_token_id, -100, ids % 2)  # learnable from the token alone
    data = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": labels}).batch(16)
    before = float(tf.reduce_mean(model(input_ids=ids, labels=labels).loss))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    after = float(tf.reduce_mean(model(input_ids=ids, labels=labels).loss))
    assert np.isfinite(history.history["loss"][0])
    assert after < 0.85 * before


def test_evaluate_and_predict_with_labels_as_y():
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config, seed=3)
    ids, mask = padded_batch(config, lengths=(7, 5, 2, 6))
    labels = np.array([0, 2, 1, 2])
    data = tf.data.Dataset.from_tensor_slices(({"input_ids": ids, "attention_mask": mask}, labels)).batch(2)
    ref = reference.forward(config, state, "sequence_classification", input_ids=ids, attention_mask=mask, labels=labels)
    # No loss given to compile: the head's own loss against y.
    model.compile()
    assert_close(model.evaluate(data, verbose=0), ref["loss"], what="head loss from y")
    # A Keras loss and metric: they see the logits.
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    result = model.evaluate(data, verbose=0, return_dict=True)
    assert_close(result["loss"], ref["loss"], what="compiled loss")
    assert result["accuracy"] == np.mean(ref["logits"].argmax(-1) == labels)
    predicted = model.predict(data, verbose=0)
    assert isinstance(predicted, SequenceClassifierOutput)
    assert_close(predicted.logits, ref["logits"], what="predict")


def test_a_dict_of_inputs_equals_keyword_arguments():
    config = tiny_config()
    model, _ = build("question_answering", config)
    inputs = inputs_for(config, "question_answering")
    by_dict, by_kwargs = model(dict(inputs)), model(**inputs)
    for name in ("loss", "start_logits", "end_logits"):
        np.testing.assert_array_equal(by_dict[name], by_kwargs[name])


@pytest.mark.parametrize("head", ["sequence_classification", "multiple_choice", "causal_lm"])
def test_saved_model_serves_any_batch_and_length(tmp_path, head):
    config = tiny_config(is_decoder=head == "causal_lm")  # a decoder's cache is no signature output
    model, _ = build(head, config, seed=4)
    target = model.export_saved_model(tmp_path / "served")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]  # nothing left beside it
    serve = tf.saved_model.load(str(target)).signatures["serving_default"]
    for lengths in ((7, 5, 2), (3, 9, 4, 1)):
        inputs = inputs_for(config, head, lengths=lengths, labels=False)
        inputs["token_type_ids"] = np.zeros_like(inputs["input_ids"])
        served = serve(**{k: tf.constant(v, tf.int32) for k, v in inputs.items()})
        assert_close(served["logits"], model(**inputs).logits, what=f"served {lengths}")
    if head == "sequence_classification":
        bad = {k: tf.constant(v, tf.int32) for k, v in inputs.items()}
        bad["input_ids"] = tf.tensor_scatter_nd_update(bad["input_ids"], [[0, 1]], [config.vocab_size])
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_ids must be in 0\.\.99"):
            serve(**bad)
        bad["input_ids"] = tf.constant(inputs["input_ids"], tf.int32)
        bad["attention_mask"] = bad["attention_mask"][:, :3]
        with pytest.raises(tf.errors.InvalidArgumentError, match="attention_mask must have shape"):
            serve(**bad)


# ---------------------------------------------------------------------------- v4 deployment, Keras 3 saving (issue 14)

def _served_inputs(config, head: str, lengths=(7, 5, 2)) -> dict:
    inputs = inputs_for(config, head, lengths=lengths, labels=False)
    inputs["token_type_ids"] = np.zeros_like(inputs["input_ids"])
    return inputs


@pytest.mark.parametrize("head", sorted(CLASSES))
def test_get_config_and_from_config_rebuild_every_head(head):
    config = tiny_config(is_decoder=head == "causal_lm", num_labels=2 if head == "question_answering" else 3)
    model = CLASSES[head](config, dtype="bfloat16")
    described = model.get_config()
    assert described["config"] == config.to_dict()
    rebuilt = type(model).from_config(described)
    assert type(rebuilt) is type(model) and rebuilt.config.to_dict() == config.to_dict()
    assert rebuilt.dtype_policy.name == "bfloat16" and rebuilt.name == model.name
    assert [w.path for w in rebuilt.weights] == [w.path for w in model.weights]
    if head == "model":
        bare = CLASSES["model"].from_config(CLASSES["model"](config, add_pooling_layer=False).get_config())
        assert bare.pooler is None


@pytest.mark.parametrize("head", ["model", "masked_lm", "multiple_choice"])
def test_keras_file_round_trip_gives_identical_outputs(tmp_path, head):
    config = tiny_config()
    model, state = build(head, config, seed=6)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert type(again) is type(model)
    inputs = inputs_for(config, head, labels=False)
    before, after = model(**inputs), again(**inputs)
    assert list(after) == list(before)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    ref = reference.forward(config, state, head, **inputs)
    field = "last_hidden_state" if head == "model" else "logits"
    assert_close(after[field], ref[field], what=f"reloaded {field} vs reference")
    if head == "masked_lm":  # still one variable for the table and the tied decoder
        assert again.lm_head.decoder is again.roberta.embeddings.word_embeddings


def test_every_saved_model_route_has_a_serving_default(tmp_path):
    # v4's save_pretrained(saved_model=True), Keras 3's model.export and tf.saved_model.save.
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config, seed=7)
    model.save_pretrained(tmp_path / "v4", saved_model=True)
    assert sorted(p.name for p in (tmp_path / "v4").iterdir()) == ["config.json", "saved_model", "tf_model.h5"]
    model.export(tmp_path / "exported")
    tf.saved_model.save(model, str(tmp_path / "tf"))
    inputs = _served_inputs(config, "sequence_classification")
    ref = reference.forward(config, state, "sequence_classification", **inputs)
    for folder in (tmp_path / "v4" / "saved_model" / "1", tmp_path / "exported", tmp_path / "tf"):
        serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
        assert sorted(serve.structured_input_signature[1]) == ["attention_mask", "input_ids", "token_type_ids"]
        served = serve(**{k: tf.constant(v, tf.int32) for k, v in inputs.items()})
        assert list(served) == ["logits"]
        assert_close(served["logits"], ref["logits"], what=f"served by {folder.name}")


@pytest.mark.parametrize("route", ["export_saved_model", "tf.saved_model.save"])
def test_tflite_converts_with_builtin_ops_and_runs(tmp_path, route):
    # tf.saved_model.save of a Keras 3 model: TFLite kept its weights as resource variables it
    # never initialised (VAR_HANDLE / READ_VARIABLE ops, NaN logits) until the model tracked its
    # tf.Variables for SavedModels as Keras' ExportArchive does.
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config, seed=8)
    target = tmp_path / "served"
    if route == "export_saved_model":
        model.export_saved_model(target)
    else:
        tf.saved_model.save(model, str(target))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(target), signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex (select TF) ops
    flatbuffer = converter.convert()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    assert not {op["op_name"] for op in interpreter._get_ops_details()} & {"VAR_HANDLE", "READ_VARIABLE"}
    run = interpreter.get_signature_runner("serving_default")
    for lengths in ((7, 5, 2), (4, 9)):
        inputs = _served_inputs(config, "sequence_classification", lengths)
        ref = reference.forward(config, state, "sequence_classification", **inputs)
        got = run(**{k: v.astype(np.int32) for k, v in inputs.items()})
        assert_close(got["logits"], ref["logits"], what=f"TFLite {lengths}")


class _LoRADense(keras.layers.Layer):
    """A user's LoRA wrapper of a Dense: the frozen layer plus x A B (alpha / rank), A and B given."""

    def __init__(self, base: keras.layers.Dense, a: np.ndarray, b: np.ndarray, alpha: float, **kwargs):
        super().__init__(**kwargs)
        self.base = base
        self.base.trainable = False
        self.scale = alpha / a.shape[1]
        self.lora_a = self.add_weight(shape=a.shape, initializer=keras.initializers.Constant(a), name="lora_a")
        self.lora_b = self.add_weight(shape=b.shape, initializer=keras.initializers.Constant(b), name="lora_b")

    def call(self, x):
        return self.base(x) + tf.matmul(tf.matmul(x, self.lora_a), self.lora_b) * self.scale


def test_a_lora_wrapper_of_query_and_keras_lora_on_value_are_trained():
    config = tiny_config(num_labels=3)
    model, state = build("sequence_classification", config, seed=9)
    rng = np.random.default_rng(0)
    H, rank, alpha = config.hidden_size, 4, 8.0
    lora = {}
    for i, layer in enumerate(model.roberta.encoder.layer):
        attention = layer.attention.self
        a, b = rng.normal(0, 0.2, (H, rank)), rng.normal(0, 0.2, (rank, H))
        attention.query = _LoRADense(attention.query, a, b, alpha, name="query")  # replaced after build
        lora[f"roberta.encoder.layer.{i}.attention.self.query.weight"] = attention.query
        attention.value.enable_lora(rank, lora_alpha=alpha)  # Keras' own LoRA Dense
        attention.value.lora_kernel_b.assign(rng.normal(0, 0.2, (rank, H)))  # B starts at 0: give A a gradient
        lora[f"roberta.encoder.layer.{i}.attention.self.value.weight"] = attention.value

    def merged_state() -> dict:
        """The checkpoint with each LoRA delta added by hand: W (out, in) + scale (A B)^T."""
        out = dict(state)
        for key, module in lora.items():
            if isinstance(module, _LoRADense):
                a, b, scale = module.lora_a.numpy(), module.lora_b.numpy(), module.scale
            else:
                a, b, scale = module.lora_kernel_a.numpy(), module.lora_kernel_b.numpy(), alpha / rank
            out[key] = state[key] + scale * (a.astype(np.float64) @ b).T
        return out

    inputs = inputs_for(config, "sequence_classification")
    trainable = model.trainable_weights
    adapters = [w for w in trainable if "lora" in w.path]
    assert len(adapters) == 4 * config.num_hidden_layers
    assert not any(w.path.endswith(("query/kernel", "value/kernel")) for w in trainable)  # frozen
    with tf.GradientTape() as tape:
        out = model(**inputs, training=True)
    ref = reference.forward(config, merged_state(), "sequence_classification", **inputs)
    assert_close(out.logits, ref["logits"], what="logits with the LoRA deltas")
    assert_close(np.mean(out.loss), ref["loss"], what="loss with the LoRA deltas")
    grads = tape.gradient(out.loss, adapters)  # of their sum: any positive multiple of the loss will do here
    assert all(g is not None and float(tf.norm(g)) > 0 for g in grads), [w.path for w, g in zip(adapters, grads)]
    keras.optimizers.SGD(0.1).apply(grads, adapters)
    after = model(**inputs)
    ref = reference.forward(config, merged_state(), "sequence_classification", **inputs)
    assert_close(after.logits, ref["logits"], what="logits after a step")
    assert float(tf.reduce_mean(after.loss)) < float(tf.reduce_mean(out.loss))


def test_prepare_tf_dataset_gives_fit_the_features_and_labels():
    # v4 TF's `model.prepare_tf_dataset(hf_dataset, batch_size, shuffle, tokenizer)`: the model's
    # input columns as features (text columns dropped), `label` renamed `labels` as Keras' y,
    # rows padded by the tokenizer; evaluate then gives the head's loss over the whole set.
    datasets = pytest.importorskip("datasets")
    from roberta_core import RobertaTokenizerFast
    from tests.helpers import SHARED

    if not (SHARED / "data" / "roberta-base-tokenizer").is_dir():
        pytest.skip("roberta-base tokenizer files absent (../shared/data)")
    tokenizer = RobertaTokenizerFast.from_pretrained(SHARED / "data" / "roberta-base-tokenizer")
    config = tiny_config(num_labels=3)  # pad_token_id 1, as roberta-base's
    model, state = build("sequence_classification", config, seed=3)
    lengths = (7, 5, 2, 6)
    ids, mask = padded_batch(config, lengths=lengths)
    labels = np.array([0, 2, 1, 2])
    rows = {"text": ["a", "b", "c", "d"], "input_ids": [r[:n].tolist() for r, n in zip(ids, lengths)],
            "label": labels.tolist()}
    data = model.prepare_tf_dataset(datasets.Dataset.from_dict(rows), batch_size=2, shuffle=False, tokenizer=tokenizer)
    features, y = next(iter(data))
    assert sorted(features) == ["attention_mask", "input_ids"] and y.numpy().tolist() == [0, 2]
    assert features["input_ids"].numpy().tolist() == ids[:2].tolist()  # padded to the batch's longest row
    ref = reference.forward(config, state, "sequence_classification", input_ids=ids, attention_mask=mask, labels=labels)
    model.compile()
    assert_close(model.evaluate(data, verbose=0), ref["loss"], what="head loss over the prepared batches")
    # Without a tokenizer the rows are stacked as they are; one feature column comes as a tensor (v4).
    same = datasets.Dataset.from_dict({"input_ids": ids.tolist(), "label": labels.tolist()})
    alone, y = next(iter(model.prepare_tf_dataset(same, batch_size=4, shuffle=False)))
    assert alone.numpy().tolist() == ids.tolist() and y.numpy().tolist() == labels.tolist()
    with pytest.raises(TypeError, match="datasets.Dataset"):
        model.prepare_tf_dataset(rows)


@pytest.mark.parametrize("head", ["masked_lm", "multiple_choice"])
def test_dummy_inputs_and_input_signature_as_v4(head):
    # v4 TF code builds a model with `model(model.dummy_inputs)` and serves by `input_signature`.
    model, _ = build(head, tiny_config())
    rank = 3 if head == "multiple_choice" else 2
    assert sorted(model.input_signature) == ["attention_mask", "input_ids", "token_type_ids"]
    assert all(spec.shape.rank == rank and spec.dtype == tf.int32 for spec in model.input_signature.values())
    dummies = model.dummy_inputs
    assert dummies["input_ids"].shape == (1, 2, 2)[:rank] and not dummies["token_type_ids"].numpy().any()
    out = model(dummies)
    assert out.logits.shape[0] == 1 and np.isfinite(out.logits.numpy()).all()
