"""The RoBERTa family in TensorFlow (issue 15): v4's class names of XLM-RoBERTa, CamemBERT and
RoBERTa-PreLayerNorm build their model_type and match the float64 reference on the same canonical
weights; RoBERTa-PreLayerNorm on every path (unpad, the key/value cache and generate,
cross-attention, gradient checkpointing) and through save_pretrained / from_pretrained."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import tensorflow as tf

import roberta_tf
from roberta_core import reference
from roberta_core.checkpoint import load_state_dict
from roberta_core.weights import architecture_name, parameter_shapes, to_tf_name
from roberta_tf.convert import from_canonical, to_canonical, variables
from tests.helpers import FIXTURES as FIXTURE_ROOT
from tests.helpers import ALL_HEADS, assert_close, padded_batch, random_state, rel_err, tiny_config

from .common import CLASSES, inputs_for

MEMBERS = ("xlm-roberta", "camembert", "roberta-prelayernorm")
PRELN = "roberta-prelayernorm"
FIXTURE_DIR = FIXTURE_ROOT / "family"
LIST_FIELDS = ("hidden_states", "past_key_values")


def config_for(head, **overrides):
    """tiny (a plain RoBERTa config: the family class sets model_type), 3 labels (QA: 2); the
    causal LM is a decoder."""
    return tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm", **overrides)


def preln(head="masked_lm", seed=0, **overrides):
    """A TFRobertaPreLayerNorm* model of `head` with random canonical weights; (model, state)."""
    config = config_for(head, model_type=PRELN, **overrides)
    state = random_state(config, head, seed)
    return from_canonical(getattr(roberta_tf, architecture_name(head, PRELN, "TF"))(config), state), state


def assert_matches(out, ref, bar=1e-5):
    """Every field of the reference, within `bar` relative error (ARCHITECTURE §5)."""
    for name, want in ref.items():
        if name in LIST_FIELDS:
            got, want = tf.nest.flatten(out[name]), tf.nest.flatten(want)
            assert len(got) == len(want), name
            for i, (g, w) in enumerate(zip(got, want)):
                assert rel_err(np.asarray(g), w) <= bar, f"{name}[{i}]"
        else:
            got = np.mean(out[name]) if name == "loss" else np.asarray(out[name])  # v4 TF's loss shapes
            assert rel_err(got, want) <= bar, f"{name}: {rel_err(got, want):.2e}"


def _real(x, mask):
    return np.asarray(x)[np.asarray(mask) == 1]


# ---------------------------------------------------------------------------- the classes


@pytest.mark.parametrize("member", MEMBERS)
@pytest.mark.parametrize("head", ALL_HEADS)
def test_family_class_builds_its_model_type_and_matches_the_reference(member, head):
    name = architecture_name(head, member, "TF")  # v4's name, e.g. TFXLMRobertaForMaskedLM
    assert name in roberta_tf.__all__
    cls = getattr(roberta_tf, name)
    assert cls.__name__ == name and issubclass(cls, CLASSES[head])
    config = config_for(head)  # model_type 'roberta': the class sets its own
    model = cls(config)
    assert model.config.model_type == member and config.model_type == "roberta"
    prefix = "roberta_prelayernorm" if member == PRELN else "roberta"
    assert cls.base_model_prefix == model.base_model_prefix == prefix
    state = random_state(model.config, head, seed=2)
    assert set(to_canonical(model)) == set(state)
    from_canonical(model, state)
    inputs = inputs_for(model.config, head)
    out = model(**inputs, output_hidden_states=True)
    ref = reference.forward(model.config, state, head, **inputs, output_hidden_states=True)
    if head in ("model", "multiple_choice"):
        assert "pooler_output" in ref or head == "multiple_choice"
    assert_matches(out, ref)


def test_preln_parameters_have_the_canonical_and_tf_names():
    model, _ = preln("causal_lm", add_cross_attention=True)
    keys = set(to_canonical(model))
    assert {"roberta.LayerNorm.weight", "roberta.encoder.layer.0.attention.LayerNorm.bias",
            "roberta.encoder.layer.0.intermediate.LayerNorm.weight",
            "roberta.encoder.layer.1.crossattention.LayerNorm.weight"} <= keys
    assert not any(k.endswith(("output.LayerNorm.weight", "output.LayerNorm.bias")) for k in keys)
    assert keys == set(parameter_shapes(model.config, "causal_lm"))
    for key, variable in variables(model).items():  # the LayerNorms' Keras paths are v4's TF names
        if "LayerNorm" in key:
            assert variable.path == to_tf_name(key), key
    bare = roberta_tf.TFRobertaPreLayerNormModel(tiny_config())
    assert {"LayerNorm.weight", "LayerNorm.bias"} <= set(to_canonical(bare))


def test_roberta_prelayernorm_attribute_is_the_encoder_of_preln_heads_only():
    model, _ = preln("masked_lm")
    assert model.roberta_prelayernorm is model.roberta is model.base_model
    assert "roberta_prelayernorm" not in dir(model)  # Keras' .keras saver walks dir()
    # Not a second registration: every weight once, under `roberta/`.
    assert len({id(w) for w in model.weights}) == len(model.weights)
    assert all(not w.path.startswith("roberta_prelayernorm") for w in model.weights)
    plain = roberta_tf.TFRobertaForMaskedLM(tiny_config())
    bare = roberta_tf.TFRobertaPreLayerNormModel(tiny_config())
    assert not hasattr(plain, "roberta_prelayernorm") and not hasattr(bare, "roberta_prelayernorm")
    assert bare.base_model is bare


def test_a_roberta_class_keeps_the_configs_model_type():
    for member in MEMBERS:
        model = roberta_tf.TFRobertaForMaskedLM(tiny_config(model_type=member))
        assert model.config.model_type == member
        assert model.base_model_prefix == ("roberta_prelayernorm" if member == PRELN else "roberta")
    assert roberta_tf.TFRobertaForMaskedLM.base_model_prefix == "roberta"


# ---------------------------------------------------------------------------- PreLN maths


def test_preln_states_before_and_after_the_final_layer_norm():
    model, state = preln("model", seed=1)
    ids, mask = padded_batch(model.config)
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    ref = reference.forward(model.config, state, "model", input_ids=ids, attention_mask=mask,
                            output_hidden_states=True)
    # v4: the encoder's last state is before the final LayerNorm, last_hidden_state after it.
    assert rel_err(out.hidden_states[-1].numpy(), out.last_hidden_state.numpy()) > 0.1
    assert rel_err(out.hidden_states[-1].numpy(), ref["hidden_states"][-1]) <= 1e-5
    assert rel_err(out.last_hidden_state.numpy(), ref["last_hidden_state"]) <= 1e-5
    assert rel_err(out.pooler_output.numpy(), ref["pooler_output"]) <= 1e-5


def test_preln_differs_from_postln_on_the_same_shared_weights():
    # The PreLN model is not the post-LN one renamed: on the weights both have, outputs differ.
    model, state = preln("masked_lm", seed=5)
    post = roberta_tf.TFRobertaForMaskedLM(tiny_config())
    shared = {k: v for k, v in state.items() if k in set(to_canonical(post))}
    from_canonical(post, shared, allow_missing=True)
    ids, mask = padded_batch(model.config)
    a, b = model(input_ids=ids, attention_mask=mask).logits, post(input_ids=ids, attention_mask=mask).logits
    assert rel_err(a.numpy(), b.numpy()) > 0.05


@pytest.mark.parametrize("head", ("model", "masked_lm", "causal_lm", "token_classification"))
def test_preln_unpad_equals_padded(head):
    model, state = preln(head, seed=3)
    ids, mask = padded_batch(model.config, lengths=(6, 2, 4))
    options = dict(use_cache=False) if head == "causal_lm" else {}  # a cache needs the padded layout
    padded = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, **options)
    packed = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, unpad=True, **options)
    field = "last_hidden_state" if head == "model" else "logits"
    got = packed[field].numpy()
    assert_close(_real(got, mask), _real(padded[field].numpy(), mask), what=field)
    assert (got[mask == 0] == 0).all(), "padding positions are zeros"
    for g, p in zip(packed.hidden_states, padded.hidden_states):
        assert_close(_real(g.numpy(), mask), _real(p.numpy(), mask), what="hidden_states")
    ref = reference.forward(model.config, state, head, input_ids=ids, attention_mask=mask)
    assert rel_err(_real(got, mask), _real(ref[field], mask)) <= 1e-5


def test_preln_cache_steps_equal_the_full_forward_and_generate_equals_recompute():
    model, state = preln("causal_lm", seed=4)
    ids, _ = padded_batch(model.config, lengths=(7, 7))
    full = model(input_ids=ids).logits.numpy()
    first = model(input_ids=ids[:, :4], use_cache=True)
    cache, steps = first.past_key_values, [first.logits.numpy()]
    for t in range(4, 7):
        step = model(input_ids=ids[:, t:t + 1], past_key_values=cache, use_cache=True)
        cache = step.past_key_values
        steps.append(step.logits.numpy())
    assert_close(np.concatenate(steps, axis=1), full, what="cached steps vs full forward")
    assert rel_err(full, reference.forward(model.config, state, "causal_lm", input_ids=ids)["logits"]) <= 1e-5
    # Greedy generate (cached) equals an argmax loop over full forwards (recomputed each step).
    prompt = ids[:, :3]
    out = model.generate(prompt, max_new_tokens=5, eos_token_id=[]).numpy()
    want = prompt
    for _ in range(5):
        logits = model(input_ids=want).logits.numpy()[:, -1]
        want = np.concatenate([want, logits.argmax(-1)[:, None]], axis=1)
    np.testing.assert_array_equal(out, want)


def test_preln_cross_attention_matches_the_reference():
    model, state = preln("causal_lm", seed=6, add_cross_attention=True)
    ids, mask = padded_batch(model.config, lengths=(5, 3))
    rng = np.random.default_rng(0)
    source = rng.normal(size=(2, 4, model.config.hidden_size)).astype(np.float32)
    source_mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    inputs = dict(input_ids=ids, attention_mask=mask, encoder_hidden_states=source,
                  encoder_attention_mask=source_mask)
    out = model(**inputs, output_hidden_states=True)
    assert_matches(out, reference.forward(model.config, state, "causal_lm", **inputs, output_hidden_states=True))


def test_preln_gradient_checkpointing_gives_the_same_gradients():
    model, _ = preln("masked_lm", seed=7)
    ids, mask = padded_batch(model.config)
    labels = np.where(mask == 1, ids, -100)

    def grads():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(input_ids=ids, attention_mask=mask, labels=labels, training=True).loss)
        return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_variables)]

    plain = grads()
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    for a, b in zip(grads(), plain):
        assert_close(a, b, atol=1e-6, what="gradient under checkpointing")
    names = [w.path for w, g in zip(model.trainable_variables, plain) if np.abs(g).sum() > 0]
    assert "roberta/LayerNorm/gamma" in names and "roberta/encoder/layer_._0/attention/LayerNorm/gamma" in names


# ---------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("member", MEMBERS)
def test_save_and_load_round_trip_keeps_the_family_member(tmp_path, member):
    head = "sequence_classification"
    cls = getattr(roberta_tf, architecture_name(head, member, "TF"))
    model = cls(config_for(head))
    state = random_state(model.config, head, seed=8)
    from_canonical(model, state)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == member
    assert saved["architectures"] == [architecture_name(head, member)]  # v4's PyTorch class name
    inputs = inputs_for(model.config, head, labels=False)
    want = model(**inputs).logits.numpy()
    for loader in (cls, CLASSES[head]):  # the family class, and TFRoberta* reading the config
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # every weight loads: nothing unused or new
            loaded = loader.from_pretrained(tmp_path)
        assert loaded.config.model_type == member
        np.testing.assert_array_equal(loaded(**inputs).logits.numpy(), want)
        weights = to_canonical(loaded)
        for key, value in state.items():
            np.testing.assert_array_equal(weights[key], value, err_msg=key)


@pytest.mark.parametrize("format", ("safetensors", "h5"))
def test_preln_checkpoint_files_name_the_encoder_roberta_prelayernorm(tmp_path, format):
    model, state = preln("masked_lm", seed=9)
    model.save_pretrained(tmp_path, format=format)
    if format == "safetensors":
        from safetensors import safe_open

        with safe_open(tmp_path / "model.safetensors", "np") as f:
            names = list(f.keys())
        assert "roberta_prelayernorm.LayerNorm.weight" in names
        assert "roberta_prelayernorm.encoder.layer.0.attention.LayerNorm.weight" in names
    else:
        import h5py

        names = []
        with h5py.File(tmp_path / "tf_model.h5", "r") as f:
            f.visit(names.append)
        assert any("roberta_prelayernorm/LayerNorm/gamma" in n for n in names), names[:5]
    assert not any(n.startswith("roberta.") for n in names)
    assert set(load_state_dict(tmp_path)) >= set(state)  # read back under the canonical names
    loaded = roberta_tf.TFRobertaForMaskedLM.from_pretrained(tmp_path)
    assert loaded.config.pre_layer_norm and loaded.roberta_prelayernorm is loaded.roberta
    ids, mask = padded_batch(model.config)
    np.testing.assert_array_equal(loaded(input_ids=ids, attention_mask=mask).logits.numpy(),
                                  model(input_ids=ids, attention_mask=mask).logits.numpy())


FIXTURES = {  # tests/fixtures/family: checkpoints and outputs of transformers 4.57.6 (make_family.py)
    "preln_masked_lm": ("masked_lm", PRELN), "preln_model": ("model", PRELN),
    "xlmr_sequence_classification": ("sequence_classification", "xlm-roberta"),
}


@pytest.mark.parametrize("folder", list(FIXTURES))
def test_v4_family_checkpoints_reproduce_v4s_outputs_from_every_format(tmp_path, folder):
    import shutil

    head, member = FIXTURES[folder]
    source = FIXTURE_DIR / folder
    io = np.load(source / "io.npz")
    fields = [name[3:] for name in io.files if name.startswith("pt_")]
    formats = [p.name for p in source.iterdir() if p.name.endswith((".safetensors", ".bin", ".h5", ".msgpack"))]
    family_class = getattr(roberta_tf, architecture_name(head, member, "TF"))
    for n, weights in enumerate(sorted(formats)):
        only = tmp_path / weights
        only.mkdir()
        shutil.copy(source / "config.json", only)
        shutil.copy(source / weights, only)
        # v4's family class from every format; the TFRoberta* class (reading model_type) from one.
        for cls in (family_class, CLASSES[head]) if n == 0 else (family_class,):
            model = cls.from_pretrained(only, strict=True)
            assert model.config.model_type == member
            out = model(input_ids=io["input_ids"], attention_mask=io["attention_mask"], output_hidden_states=True)
            for field in fields:
                got = out.hidden_states[-1] if field == "hidden_last" else out[field]
                assert_close(got, io[f"pt_{field}"], what=f"{cls.__name__} from {weights}: {field} vs transformers")


def test_a_family_class_loads_a_roberta_checkpoint_as_its_member(tmp_path):
    config = tiny_config()
    model = roberta_tf.TFRobertaForMaskedLM(config)
    model.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xlmr = roberta_tf.TFXLMRobertaForMaskedLM.from_pretrained(tmp_path)  # same architecture: all loads
    assert xlmr.config.model_type == "xlm-roberta"
    ids, mask = padded_batch(config)
    np.testing.assert_array_equal(xlmr(input_ids=ids, attention_mask=mask).logits.numpy(),
                                  model(input_ids=ids, attention_mask=mask).logits.numpy())
    # PreLN has other LayerNorms: v4 builds PreLN and reports the unused and the new keys.
    with pytest.warns(UserWarning, match="LayerNorm"):
        moved = roberta_tf.TFRobertaPreLayerNormForMaskedLM.from_pretrained(tmp_path)
    assert moved.config.pre_layer_norm and "roberta.LayerNorm.weight" in to_canonical(moved)


def test_preln_keras_file_and_saved_model_export_match_the_reference(tmp_path):
    import keras

    from roberta_tf.export import export, load_exported

    model, state = preln("sequence_classification", seed=10)
    ids, mask = padded_batch(model.config, lengths=(6, 3))
    want = reference.forward(model.config, state, "sequence_classification", input_ids=ids, attention_mask=mask)
    # `.keras`: the family class is registered, the encoder saved once under its own name.
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    assert type(again) is type(model) and again.config.model_type == PRELN
    assert rel_err(again(input_ids=ids, attention_mask=mask).logits.numpy(), want["logits"]) <= 1e-5
    # The serving artefact (SavedModel, `roberta export --to savedmodel`).
    path = export(model, tmp_path / "out", example={"input_ids": ids, "attention_mask": mask},
                  axes={"input_ids": ("batch", "sequence"), "logits": ("batch", None)})
    got = load_exported(path)({"input_ids": ids, "attention_mask": mask})
    assert rel_err(got["logits"], want["logits"]) <= 1e-5


def test_preln_training_step_starts_from_the_reference_loss_and_moves_every_layer_norm():
    from roberta_core.optim import AdamW
    from roberta_tf.training import TFTrainer

    model, state = preln("masked_lm", seed=11)
    ids, mask = padded_batch(model.config, lengths=(6, 4))
    labels = np.where((mask == 1) & (np.arange(ids.shape[1]) % 2 == 1), ids, -100)
    want = reference.forward(model.config, state, "masked_lm", input_ids=ids, attention_mask=mask, labels=labels)
    # The trainer's LM head runs on the labelled rows only (masked_positions_only): same loss.
    fast = model(input_ids=ids, attention_mask=mask, labels=labels, masked_positions_only=True).loss
    assert abs(float(tf.reduce_mean(fast)) - want["loss"]) <= 1e-5 * want["loss"]
    trainer = TFTrainer("masked_lm", model.config, AdamW(peak_lr=1e-2, warmup=0, steps=10), state=state)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    loss = trainer.train_step([batch], lr=1e-2, total_items=int((labels != -100).sum()))
    assert abs(loss - want["loss"]) <= 1e-5 * want["loss"]
    after = trainer.weights()
    for key in ("roberta.LayerNorm.weight", "roberta.encoder.layer.1.attention.LayerNorm.bias",
                "roberta.encoder.layer.0.intermediate.LayerNorm.weight"):
        assert not np.array_equal(after[key], state[key]), f"{key} did not move"
