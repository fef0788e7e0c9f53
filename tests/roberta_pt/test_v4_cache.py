"""v4's key/value cache objects and the embeddings' buffers.

transformers 4.57.6 returns an EncoderDecoderCache from a decoder called with use_cache=True and
fills a Cache object passed as `past_key_values` in place, returning that same object. Ours returns
a `RobertaCache` with the same API and fills any object with v4's Cache API (duck-typed: `update`).

Expected numbers come from the float64 reference (`roberta_core.reference`) or from the forward
without a cache. Expected structure is v4.57.6's, recorded with the oracle environment
(`PYTHONPATH=src .bench-env/bin/python`, transformers 4.57.6) on the tiny config
(`roberta_core.parity.suite.tiny`, 2 layers, 4 heads of 8):

    cfg = tiny(dict(is_decoder=True)); v4 = transformers.RobertaForCausalLM(transformers.RobertaConfig(**cfg.to_dict()))
    pk = v4(ids, use_cache=True).past_key_values          # ids (2, 7)
    type(pk).__name__, len(pk), len(pk[0])                  # EncoderDecoderCache 2 4
    [None if t is None else tuple(t.shape) for t in pk[0]]  # [(2, 4, 7, 8), (2, 4, 7, 8), None, None]
    pk.to_legacy_cache()[0][2:], pk.is_updated             # (None, None) {0: False, 1: False}
    pk.get_seq_length(5); pk[5]                            # 0; KeyError
    c = DynamicCache(); v4(ids, past_key_values=c, use_cache=True).past_key_values is c  # True (also use_cache=False)
    v4(ids[:, 4:], past_key_values=<tuple of (k, v)>, use_cache=True).past_key_values   # an EncoderDecoderCache
    with add_cross_attention: pk[0] (2, 4, 7, 8) x2, (2, 4, 5, 8) x2; is_updated {0: True, 1: True};
        the next step keeps the same cross key tensor (`cross_attention_cache.layers[0].keys is k0`)
    pk.crop(5); pk.reorder_cache(tensor([1, 0, 1])); pk.batch_select_indices(tensor([0, 2])); pk.crop(-2)
        # seq 5, batch 3, batch 2, seq 3 (cross entries reordered and selected too, not cropped)
    v4.generate(ids, max_new_tokens=3, return_dict_in_generate=True).past_key_values  # DynamicCache, (k, v)
        per layer over prompt + new - 1 positions
    embeddings buffers: position_ids (1, 66) int64 arange, token_type_ids (1, 66) int64 zeros, neither
        in state_dict(); token_type_embeddings is called with (B, T) int64 zeros when token_type_ids is None

Our cache and v4's, on the same weights, were also exchanged both ways there: v4's
RobertaForCausalLM continues from a RobertaCache (it calls its `update`) and ours from v4's
EncoderDecoderCache, DynamicCache and legacy tuples, with logits equal to the full forward.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from roberta_pt import RobertaForCausalLM, RobertaModel
from roberta_pt.adapter import Adapter
from roberta_pt.convert import call_numpy
from roberta_pt.modeling import RobertaCache
from tests.helpers import tiny_config
from tests.roberta_pt.common import build, run_reference

IDS = torch.tensor([[0, 5, 9, 13, 17, 21, 2], [0, 7, 11, 23, 29, 31, 37]])
SOURCE = torch.from_numpy(np.random.default_rng(4).standard_normal((2, 5, 32)).astype(np.float32))


def _decoder(cross: bool = False):
    config = tiny_config(is_decoder=True, add_cross_attention=cross)
    model, state = build("causal_lm", config)
    extra = {"encoder_hidden_states": SOURCE} if cross else {}
    return model, config, state, extra


def _close(got, want, tol=1e-5):
    np.testing.assert_allclose(got.detach().numpy(), np.asarray(want), rtol=1e-4, atol=tol)


# ---------------------------------------------------------------------------- a returned cache

@pytest.mark.parametrize("cross", [False, True])
def test_a_decoder_returns_a_robertacache_shaped_as_v4s(cross):
    model, config, state, extra = _decoder(cross)
    with torch.no_grad():
        pk = model(IDS, use_cache=True, **extra).past_key_values
    ref = run_reference(config, state, "causal_lm", input_ids=IDS, use_cache=True, **extra)["past_key_values"]
    assert isinstance(pk, RobertaCache) and len(pk) == config.num_hidden_layers
    assert pk.get_seq_length() == pk.get_seq_length(1) == 7 and pk.get_seq_length(5) == 0
    entries = list(pk)
    assert [len(e) for e in entries] == [4, 4] and all(len(pk[i]) == 4 for i in range(2))
    legacy = pk.to_legacy_cache()
    assert [len(e) for e in legacy] == [4, 4]
    for i, want in enumerate(ref):
        for got in (pk[i], entries[i], legacy[i]):
            _close(got[0], want[0])
            _close(got[1], want[1])
            if cross:
                assert got[2].shape == (2, 4, 5, 8)
                _close(got[2], want[2])
                _close(got[3], want[3])
            else:
                assert got[2] is None and got[3] is None  # v4: the empty cross-attention layers
    assert pk.is_updated == {0: cross, 1: cross}
    with pytest.raises(KeyError):
        pk[2]


def test_return_dict_false_carries_the_cache_object():
    model, _, _, _ = _decoder()
    with torch.no_grad():
        tup = model(IDS, use_cache=True, return_dict=False)
        plain = model(IDS, use_cache=False).logits
    assert len(tup) == 2 and isinstance(tup[1], RobertaCache) and tup[1].get_seq_length() == 7
    torch.testing.assert_close(tup[0], plain)


# ---------------------------------------------------------------------------- decoding with it

@pytest.mark.parametrize("cross", [False, True])
def test_the_returned_cache_is_filled_in_place_step_after_step(cross):
    model, _, _, extra = _decoder(cross)
    with torch.no_grad():
        full = model(IDS, use_cache=False, **extra).logits
        first = model(IDS[:, :4], use_cache=True, **extra)
        pk = first.past_key_values
        cross_keys = pk.cross_attention_cache.layers[0].keys
        second = model(IDS[:, 4:6], past_key_values=pk, use_cache=True, **extra)
        third = model(IDS[:, 6:], past_key_values=pk, use_cache=True, **extra)
    assert second.past_key_values is pk and third.past_key_values is pk and pk.get_seq_length() == 7
    torch.testing.assert_close(torch.cat([first.logits, second.logits, third.logits], 1), full, rtol=1e-5, atol=1e-5)
    # Cross-attention's keys: computed on the first step, then reused (the same tensor, as v4).
    if cross:
        assert cross_keys is not None and pk.cross_attention_cache.layers[0].keys is cross_keys
    else:
        assert pk[0][2] is None and pk.is_updated == {0: False, 1: False}


class _StandInDynamicCache:
    """v4's DynamicCache API, as the model uses it (a stand-in: transformers is not v4 here)."""

    def __init__(self):
        self.layers = []

    def update(self, key, value, layer_idx, cache_kwargs=None):
        while len(self.layers) <= layer_idx:
            self.layers.append(type("Layer", (), {"keys": None, "values": None})())
        layer = self.layers[layer_idx]
        layer.keys = key if layer.keys is None else torch.cat([layer.keys, key], -2)
        layer.values = value if layer.values is None else torch.cat([layer.values, value], -2)
        return layer.keys, layer.values

    def get_seq_length(self, layer_idx=0):
        return self.layers[layer_idx].keys.shape[-2] if layer_idx < len(self.layers) else 0


class _StandInEncoderDecoderCache:
    """v4's EncoderDecoderCache API, as the model uses it."""

    def __init__(self):
        self.self_attention_cache, self.cross_attention_cache = _StandInDynamicCache(), _StandInDynamicCache()
        self.is_updated = {}

    def update(self, *args, **kwargs):  # v4's EncoderDecoderCache has the Cache base's method
        raise AssertionError("an encoder-decoder cache is updated through its two caches")

    def get_seq_length(self, layer_idx=0):
        return self.self_attention_cache.get_seq_length(layer_idx)


def _caches():
    made = {"RobertaCache": RobertaCache, "DynamicCache-like": _StandInDynamicCache,
            "EncoderDecoderCache-like": _StandInEncoderDecoderCache}
    try:  # the installed transformers (v5 here) has the same Cache API
        import transformers

        made["transformers.DynamicCache"] = transformers.DynamicCache
        made["transformers.EncoderDecoderCache"] = lambda: transformers.EncoderDecoderCache(
            transformers.DynamicCache(), transformers.DynamicCache())
    except ImportError:
        pass
    return made


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("kind", list(_caches()))
def test_a_passed_cache_object_is_filled_in_place_and_returned(kind, cross):
    model, config, state, extra = _decoder(cross)
    cache = _caches()[kind]()
    with torch.no_grad():
        full = model(IDS, use_cache=False, **extra).logits
        first = model(IDS[:, :4], past_key_values=cache, use_cache=True, **extra)
        second = model(IDS[:, 4:], past_key_values=cache, use_cache=True, **extra)
    assert first.past_key_values is cache and second.past_key_values is cache
    assert cache.get_seq_length() == 7
    torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), full, rtol=1e-5, atol=1e-5)
    ref = run_reference(config, state, "causal_lm", input_ids=IDS, use_cache=True, **extra)["past_key_values"]
    own = getattr(cache, "self_attention_cache", cache)
    for layer, want in zip(own.layers, ref):
        _close(layer.keys, want[0])
        _close(layer.values, want[1])
    if cross and hasattr(cache, "cross_attention_cache"):
        assert cache.is_updated == {0: True, 1: True}
        for layer, want in zip(cache.cross_attention_cache.layers, ref):
            _close(layer.keys, want[2])
    elif cross:
        # A plain cache holds the self-attention's keys only (v4 would append the cross-attention's
        # to the same layer and attend over both): the cross keys are computed again each step.
        assert all(layer.keys.shape[-2] == 7 for layer in own.layers)


def test_use_cache_false_still_fills_a_passed_cache_object():
    # v4: the attention modules update whatever cache they are given, and the model returns it.
    model, _, _, _ = _decoder()
    cache = RobertaCache()
    with torch.no_grad():
        out = model(IDS, past_key_values=cache, use_cache=False)
    assert out.past_key_values is cache and cache.get_seq_length() == 7


def test_legacy_tuples_still_work_and_come_back_as_a_robertacache():
    model, config, state, _ = _decoder()
    with torch.no_grad():
        full = model(IDS, use_cache=False).logits
        legacy = tuple(entry[:2] for entry in model(IDS[:, :4], use_cache=True).past_key_values)
        out = model(IDS[:, 4:], past_key_values=legacy, use_cache=True)  # v4: an EncoderDecoderCache
        read_only = model(IDS[:, 4:], past_key_values=legacy, use_cache=False)
        padded = model(IDS[:, 4:], past_key_values=[e + (None, None) for e in legacy], use_cache=True)
    assert isinstance(out.past_key_values, RobertaCache) and out.past_key_values.get_seq_length() == 7
    assert read_only.past_key_values is None
    for got in (out.logits, read_only.logits, padded.logits):
        torch.testing.assert_close(got, full[:, 4:], rtol=1e-5, atol=1e-5)
    # The tuples themselves are not touched.
    assert all(k.shape[2] == 4 for k, _ in legacy)


def test_a_prefix_cache_on_an_encoder_is_filled_as_v4_does():
    # peft's prefix tuning hands the encoder a DynamicCache holding P positions; v4 appends the
    # inputs' keys to it (P + T) and returns it. Expected states: the reference with that prefix.
    config = tiny_config()
    model, state = build("model", config)
    g = torch.Generator().manual_seed(2)
    prefix = [tuple(torch.randn(2, 4, 3, 8, generator=g) for _ in range(2)) for _ in range(2)]
    cache = _StandInDynamicCache()
    for i, (k, v) in enumerate(prefix):
        cache.update(k, v, i)
    mask = torch.ones(2, 10, dtype=torch.long)
    with torch.no_grad():
        out = model(IDS, mask, past_key_values=cache)
    ref = run_reference(config, state, "model", input_ids=IDS, attention_mask=mask, past_key_values=prefix)
    _close(out.last_hidden_state, ref["last_hidden_state"])
    assert out.past_key_values is cache and cache.get_seq_length() == 10


# ---------------------------------------------------------------------------- its methods

def test_crop_reorder_select_and_repeat_act_on_every_layer():
    # Expected: the same operations on the tensors of a snapshot taken before.
    model, _, _, extra = _decoder(cross=True)
    with torch.no_grad():
        pk = model(IDS, use_cache=True, **extra).past_key_values
    before = [tuple(t.clone() for t in entry) for entry in pk]
    pk.crop(5)  # the self-attention only, as v4
    assert pk.get_seq_length() == 5 and pk[0][2].shape[2] == 5 and pk[1][3].shape[2] == 5
    beams = torch.tensor([1, 0, 1])
    pk.reorder_cache(beams)
    for entry, old in zip(pk, before):
        torch.testing.assert_close(entry[0], old[0][beams, :, :5], rtol=0, atol=0)
        torch.testing.assert_close(entry[2], old[2][beams], rtol=0, atol=0)
    pk.batch_select_indices(torch.tensor([0, 2]))
    assert pk[0][0].shape == (2, 4, 5, 8) and pk[0][2].shape[0] == 2
    pk.crop(-2)  # negative: that many positions off the end
    assert pk.get_seq_length() == 3
    pk.batch_repeat_interleave(2)
    torch.testing.assert_close(pk[1][1], before[1][1][[1, 1, 1, 1], :, :3], rtol=0, atol=0)


def test_from_legacy_cache_round_trips():
    model, _, _, extra = _decoder(cross=True)
    with torch.no_grad():
        pk = model(IDS, use_cache=True, **extra).past_key_values
    again = RobertaCache.from_legacy_cache(pk.to_legacy_cache())
    assert again.is_updated == {0: True, 1: True} and again.get_seq_length() == 7
    assert all(a is b for x, y in zip(pk, again) for a, b in zip(x, y))
    two = RobertaCache.from_legacy_cache(tuple(entry[:2] for entry in pk))
    assert [len(e) for e in two.to_legacy_cache()] == [2, 2] and two[0][2] is None  # v4: no cross layers
    assert len(RobertaCache()) == 0 and RobertaCache().get_seq_length() == 0


def test_the_cache_is_a_pytree_whose_leaves_map_to_anything():
    import torch.utils._pytree as pytree

    model, _, _, extra = _decoder(cross=True)
    with torch.no_grad():
        pk = model(IDS, use_cache=True, **extra).past_key_values
    doubled = pytree.tree_map(lambda t: t * 2, pk)
    assert isinstance(doubled, RobertaCache) and doubled.is_updated == pk.is_updated
    assert all(torch.equal(a * 2, b) for x, y in zip(pk, doubled) for a, b in zip(x, y))
    # A map to non-tensors (shapes, flags) rebuilds the object without reading its leaves.
    shapes = pytree.tree_map(lambda t: tuple(t.shape), pk)
    assert shapes.self_attention_cache.layers[0].keys == tuple(pk[0][0].shape)


def test_a_malformed_cache_object_is_refused():
    model, _, _, _ = _decoder()
    cache = _StandInDynamicCache()
    cache.update(torch.zeros(2, 4, 3, 8), torch.zeros(2, 4, 3, 8), 0)  # one layer of two
    with pytest.raises(ValueError, match="one entry per layer"):
        model(IDS, past_key_values=cache)
    with torch.no_grad():
        pk = model(IDS[:, :3], use_cache=True).past_key_values
    with pytest.raises(ValueError, match="a batch of 2, the inputs 1"):
        model(IDS[:1, 3:], past_key_values=pk)
    assert pk.get_seq_length() == 3  # refused before anything was written


# ---------------------------------------------------------------------------- around the model

def test_generate_returns_v4s_dynamic_cache_of_the_self_attention():
    # v4's generate fills a DynamicCache: (k, v) per layer over prompt + new - 1 positions.
    # Expected keys: the reference over those positions, with the position ids generate passes
    # (v4.57's attention_mask.cumsum(-1) - 1: 0, 1, ... on an unpadded prompt).
    model, config, state, _ = _decoder()
    with torch.no_grad():
        out = model.generate(IDS[:, :4], max_new_tokens=3, eos_token_id=[], return_dict_in_generate=True)
    pk = out.past_key_values
    assert len(pk) == 2 and [len(e) for e in pk] == [2, 2] and pk.get_seq_length() == 6
    seen = out.sequences[:, :6]
    ref = run_reference(config, state, "causal_lm", input_ids=seen, position_ids=torch.arange(6)[None].expand(2, 6),
                        use_cache=True)["past_key_values"]
    for got, want in zip(pk, ref):
        _close(got[0], want[0])


def test_gradient_checkpointing_reads_a_passed_cache_without_writing_it():
    # A checkpointed layer runs again in the backward pass: it must not append its keys twice.
    # Expected logits: the same training-mode call without checkpointing (dropout is off).
    model, _, _, _ = _decoder()
    with torch.no_grad():
        prefix = tuple(entry[:2] for entry in model(IDS[:, :3], use_cache=True).past_key_values)
    model.train()
    plain = model(IDS[:, 3:], past_key_values=RobertaCache.from_legacy_cache(prefix)).logits
    model.gradient_checkpointing_enable()
    cache = RobertaCache.from_legacy_cache(prefix)
    with warnings.catch_warnings():  # said once per process: "no cache is returned"
        warnings.simplefilter("ignore")
        out = model(IDS[:, 3:], past_key_values=cache, use_cache=True)
    out.logits.sum().backward()
    torch.testing.assert_close(out.logits, plain, rtol=1e-5, atol=1e-5)
    assert cache.get_seq_length() == 3


def test_conformance_adapter_and_call_numpy_give_legacy_arrays():
    model, config, state, _ = _decoder()
    ref = run_reference(config, state, "causal_lm", input_ids=IDS, use_cache=True)["past_key_values"]
    with torch.no_grad():
        adapted = Adapter().to_numpy(model(IDS, use_cache=True))["past_key_values"]
    plain = call_numpy(model, {"input_ids": IDS.numpy(), "use_cache": True})["past_key_values"]
    for got in (adapted, plain):
        assert isinstance(got, tuple) and [len(e) for e in got] == [2, 2]  # the empty cross pair left out
        for entry, want in zip(got, ref):
            np.testing.assert_allclose(entry[0], want[0], rtol=1e-4, atol=1e-5)


def test_compiled_and_exported_decoding_take_and_return_the_cache():
    model, _, _, _ = _decoder()
    with torch.no_grad():
        full = model(IDS, use_cache=False).logits
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        first = compiled(IDS[:, :4], use_cache=True)
        pk = first.past_key_values
        second = compiled(IDS[:, 4:], past_key_values=pk, use_cache=True)
    assert isinstance(pk, RobertaCache) and second.past_key_values is pk and pk.get_seq_length() == 7
    torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), full, rtol=1e-5, atol=1e-5)
    program = torch.export.export(model, (), {"input_ids": IDS[:, :4], "use_cache": True})
    with torch.no_grad():
        exported = program.module()(input_ids=IDS[:, :4], use_cache=True).past_key_values
    assert isinstance(exported, RobertaCache)
    for got, want in zip(exported, first.past_key_values):
        torch.testing.assert_close(got[0], want[0][:, :, :4])
    torch.compiler.reset()


# ---------------------------------------------------------------------------- embeddings' buffers

def test_embeddings_hold_v4s_non_persistent_buffers(tmp_path):
    config = tiny_config()
    model, _ = build("model", config)
    emb = model.embeddings
    assert emb.position_ids.dtype == emb.token_type_ids.dtype == torch.int64
    assert torch.equal(emb.position_ids, torch.arange(66)[None]) and torch.equal(emb.token_type_ids, torch.zeros(1, 66))
    assert not any(k.endswith(("position_ids", "token_type_ids")) for k in model.state_dict())
    # Built on the meta device by from_pretrained: the buffers hold their values all the same.
    model.save_pretrained(tmp_path)
    loaded = RobertaModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.embeddings.position_ids, emb.position_ids)
    assert torch.equal(loaded.embeddings.token_type_ids, emb.token_type_ids)
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS).last_hidden_state, model(IDS).last_hidden_state)


def test_missing_token_type_ids_are_the_buffer_through_the_embedding_module():
    # v4 calls token_type_embeddings with the buffer's zeros (B, T) when none are given, so a hook
    # on it (or a wrapper) sees the call. Expected states: those with explicit zeros.
    model, _ = build("model", tiny_config())
    seen = []
    handle = model.embeddings.token_type_embeddings.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    with torch.no_grad():
        implicit = model(IDS).last_hidden_state
        explicit = model(IDS, token_type_ids=torch.zeros_like(IDS)).last_hidden_state
    handle.remove()
    assert seen[0].shape == (2, 7) and seen[0].dtype == torch.int64 and not seen[0].any()
    torch.testing.assert_close(implicit, explicit, rtol=0, atol=0)
    # A packed stream longer than the buffer (unpad over a large batch) takes zeros of its own.
    long_batch = IDS.repeat(12, 1)  # 168 real tokens > 66 positions
    with torch.no_grad():
        packed = model(long_batch, torch.ones_like(long_batch), unpad=True).last_hidden_state
    torch.testing.assert_close(packed[:2], implicit, rtol=1e-5, atol=1e-5)


def test_a_packed_onnx_graph_serves_more_tokens_than_the_buffer_holds(tmp_path):
    # The packed graph's stream is N real tokens, N unbounded by max_position_embeddings (66 here):
    # the token types must not come from the (1, 66) buffer. Expected: the padded eager forward.
    pytest.importorskip("onnxruntime")
    from roberta_pt import export

    model, _ = build("masked_lm", tiny_config())
    ids = np.array([[0, 5, 9, 2, 1], [0, 7, 11, 13, 2]])
    axes = {"input_ids": ("batch", "sequence"), "attention_mask": ("batch", "sequence"), "logits": ("tokens", None)}
    path = export.export(model, tmp_path, example={"input_ids": ids, "attention_mask": (ids != 1).astype(np.int64)},
                         axes=axes, packed=True)
    big = np.tile(np.array([[0, *range(3, 60), 2]]), (4, 1))  # 4 x 59 = 236 real tokens
    got = export.load_exported(path)({"input_ids": big, "attention_mask": np.ones_like(big)})["logits"]
    with torch.no_grad():
        want = model(torch.from_numpy(big)).logits.reshape(-1, 100).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
