"""Flax (NNX) RoBERTa heads, in reading order: the losses, the two head modules (LM and
classification), then the six task models on top of `FlaxRobertaModel`, with `generate()` on
the causal LM. Each model checks its inputs and labels before it computes (clear errors, the
same words in every backend).

Module and parameter names are v4's (`roberta`, `lm_head`, `classifier`, `qa_outputs`,
`dropout`), so v4 checkpoints load one to one. Shapes: B batch, C choices, T length,
H hidden size, V vocabulary, L labels. A parallel text of `roberta_pt/heads.py`.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import checkify

from roberta_core.backends import generation_step_inputs
from roberta_core.config import RobertaConfig
from roberta_core.generation import GenerationConfig, generate_keywords, generation_settings
from roberta_core.outputs import (
    CausalLMOutputWithCrossAttentions,
    GenerateDecoderOnlyOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from roberta_core.validation import (
    IGNORE_INDEX,
    check_forward_inputs,
    check_generation_args,
    check_labels,
    masked_rows,
    max_length_for,
    new_token_count,
)

from ._framework import (
    _axes, _compiled, _dense, _dropout, _is_traced, _layer_norm, _rngs, _zeros, check_values, shape_of, v4_model,
)
from .modeling import FlaxRobertaModel, FlaxRobertaPooler, FlaxRobertaPreTrainedModel, _gelu
from .unpad import Packing, packing_for, repad, unpad_rows

__all__ = [
    "masked_lm_loss",
    "causal_lm_loss",
    "sequence_classification_loss",
    "multiple_choice_loss",
    "token_classification_loss",
    "question_answering_loss",
    "FlaxRobertaLMHead",
    "FlaxRobertaClassificationHead",
    "FlaxRobertaForCausalLM",
    "FlaxRobertaForMaskedLM",
    "FlaxRobertaForSequenceClassification",
    "FlaxRobertaForMultipleChoice",
    "FlaxRobertaForTokenClassification",
    "FlaxRobertaForQuestionAnswering",
]


# ---------------------------------------------------------------------------- losses

def cross_entropy(logits: jax.Array, targets: jax.Array, ignore_index: int = IGNORE_INDEX) -> jax.Array:
    """Mean cross-entropy over the targets that are not `ignore_index`; 0 (not NaN, as a plain
    mean would give) when every target is ignored. logits (N, K), targets (N,) -> scalar.
    Computed in float32 whatever the logits' dtype."""
    keep = targets != ignore_index
    # An ignored target may lie outside 0..K-1 (-100, or T for QA): look up class 0 instead.
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), jnp.where(keep, targets, 0))
    return jnp.sum(jnp.where(keep, losses, 0.0)) / jnp.maximum(jnp.sum(keep), 1)


def masked_lm_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Masked LM: cross-entropy over the positions whose label is not -100. (B, T, V), (B, T) -> scalar."""
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def causal_lm_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Causal LM: the logits at position t predict the label at t + 1 (labels are the inputs,
    not shifted by the caller); -100 is ignored. (B, T, V), (B, T) -> scalar."""
    return masked_lm_loss(logits[:, :-1], labels[:, 1:])


def sequence_classification_loss(logits: jax.Array, labels: jax.Array, problem_type: str) -> jax.Array:
    """By problem type: 'regression' mean squared error (one label: logits and labels squeezed),
    'single_label_classification' cross-entropy (-100 ignored), 'multi_label_classification'
    mean binary cross-entropy with logits over every (example, label). logits (B, L) -> scalar."""
    logits = logits.astype(jnp.float32)
    if problem_type == "regression":
        if logits.shape[-1] == 1:
            return jnp.mean(jnp.square(logits.squeeze() - labels.astype(jnp.float32).squeeze()))
        return jnp.mean(jnp.square(logits - labels.astype(jnp.float32)))
    if problem_type == "single_label_classification":
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32)))


def multiple_choice_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy over the choices. logits (B, C), labels (B,) -> scalar."""
    return cross_entropy(logits, labels)


def token_classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy per token, -100 ignored. (B, T, L), (B, T) -> scalar."""
    return masked_lm_loss(logits, labels)


def question_answering_loss(
    start_logits: jax.Array, end_logits: jax.Array, start_positions: jax.Array, end_positions: jax.Array
) -> jax.Array:
    """Mean of the start and end cross-entropies. Positions outside the sequence are clamped to
    T, which is ignored (an answer truncated away teaches nothing). (B, T) logits, (B,) positions."""
    T = start_logits.shape[1]
    start = jnp.clip(start_positions.reshape(-1), 0, T)
    end = jnp.clip(end_positions.reshape(-1), 0, T)
    return (cross_entropy(start_logits, start, ignore_index=T) + cross_entropy(end_logits, end, ignore_index=T)) / 2


def _check_labels(model: FlaxRobertaPreTrainedModel, labels: jax.Array, batch: int, length: int,
                  num_choices: Optional[int] = None) -> Optional[str]:
    """Shape, kind and range of `labels` for the model's head (checked after the encoder, which
    checked the inputs and knows B and T); the problem type for sequence classification."""
    head, config = model.head, model.config
    labels_are_integers = jnp.issubdtype(labels.dtype, jnp.integer)
    problem = check_labels(
        head, config, shape_of(labels), batch=batch, length=length,
        labels_are_integers=labels_are_integers, num_choices=num_choices,
    )
    upper = {
        "masked_lm": config.vocab_size,
        "causal_lm": config.vocab_size,
        "token_classification": config.num_labels,
        "multiple_choice": num_choices,
        "sequence_classification": config.num_labels if problem == "single_label_classification" else None,
    }.get(head)
    if upper is not None:
        model.check_values("labels", labels, upper, allow_ignore=True)
    return problem


def _reads_first_token(part: Any, stock: type) -> bool:
    """Whether `part` (a head's classifier, a model's pooler) is the stock layer, which reads the
    `<s>` state alone: then the encoder's last layer may compute that position only. A replaced
    part may read every position."""
    return type(part) is stock


def _per_token(head: Callable[[jax.Array], jax.Array], hidden: jax.Array, packing: Optional[Packing]) -> jax.Array:
    """A token-level head on the states (B, T, H) -> (B, T, ...); under `unpad`, on the real
    tokens only, zeros at padding (the LM decoder is a third of the model's work)."""
    if packing is None:
        return head(hidden)
    return repad(head(unpad_rows(hidden, packing)), packing)


def _labelled_budget(labels: Optional[jax.Array], masked_positions_only: bool | int) -> Optional[int]:
    """The static number of rows of a `masked_positions_only` call: the labelled positions when
    their values are known (True), else the given int (True under jit cannot size the rows)."""
    masked_positions_only = masked_rows(labels is not None, masked_positions_only)
    if masked_positions_only is None:
        return None
    if _is_traced(labels):
        if masked_positions_only is True:
            raise ValueError(
                "masked_positions_only=True sizes the logits from the labels' values, unknown under jit: give the "
                "number of rows instead, masked_positions_only=M with M a Python int >= the labelled positions"
            )
        return int(masked_positions_only)
    labelled = int(np.count_nonzero(np.asarray(labels) != IGNORE_INDEX))
    if masked_positions_only is True:
        return labelled
    if labelled > masked_positions_only:
        raise ValueError(
            f"masked_positions_only={masked_positions_only} rows cannot hold the {labelled} labelled positions"
        )
    return int(masked_positions_only)


# ---------------------------------------------------------------------------- head modules

class FlaxRobertaLMHead(nnx.Module):
    """States (B, T, H) -> vocabulary logits (B, T, V): dense -> gelu -> LayerNorm -> decoder.
    Tied (the default), the decoder is the word embedding table, passed in by the model (the
    head owns no copy, as v4's Flax tree has none); its bias is `lm_head.bias`, the name
    checkpoints use."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dtype = dtype
        self.dense = _dense(config, config.hidden_size, config.hidden_size, **kw)
        self.layer_norm = _layer_norm(config, **kw)
        self.decoder = None if config.tie_word_embeddings else _dense(
            config, config.hidden_size, config.vocab_size, ("embed", "vocab"), use_bias=False, **kw
        )
        self.bias = nnx.Param(_zeros(None, (config.vocab_size,), param_dtype), **_axes("vocab"))

    def __call__(self, features: jax.Array, word_embeddings: nnx.Embed) -> jax.Array:
        x = _gelu(self.dense(features))  # exact GELU whatever hidden_act says, as v4
        x = self.layer_norm(x)
        x = word_embeddings.attend(x) if self.decoder is None else self.decoder(x)  # (B, T, V)
        return x + self.bias[...].astype(self.dtype)


class FlaxRobertaClassificationHead(nnx.Module):
    """Sentence-level classifier on the `<s>` token: (B, T, H) -> (B, L) through dropout ->
    dense -> tanh -> dropout -> out_proj."""

    def __init__(self, config: RobertaConfig, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dense = _dense(config, config.hidden_size, config.hidden_size, **kw)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = _dropout(dropout, rngs=rngs)
        self.out_proj = _dense(config, config.hidden_size, config.num_labels, **kw)

    def __call__(self, features: jax.Array, deterministic: bool = True) -> jax.Array:
        x = self.dropout(features[:, 0], deterministic=deterministic)  # <s>, RoBERTa's [CLS]
        x = jnp.tanh(self.dense(x))
        return self.out_proj(self.dropout(x, deterministic=deterministic))


# ---------------------------------------------------------------------------- task models

def _filter_logits(logits: jax.Array, top_k: Optional[int], top_p: Optional[float]) -> jax.Array:
    """Keep the `top_k` most likely tokens, then the smallest set whose probability reaches
    `top_p` (at least one); the rest get -inf. (B, V) -> (B, V)"""
    if top_k and top_k < logits.shape[-1]:  # 0 or None: no top-k filter, as v4
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]  # (B, 1)
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p is not None and top_p < 1.0:
        order = jnp.argsort(-logits, axis=-1)  # most likely first
        probs = jax.nn.softmax(jnp.take_along_axis(logits, order, axis=-1), axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs  # mass of the more likely tokens
        drop = jnp.take_along_axis(before >= top_p, jnp.argsort(order, axis=-1), axis=-1)
        logits = jnp.where(drop, -jnp.inf, logits)
    return logits


# v4 Flax's logits processors that generate() applies (v4's FlaxMinLengthLogitsProcessor,
# FlaxForcedBOSTokenLogitsProcessor, FlaxForcedEOSTokenLogitsProcessor), by their generation settings.
_FLAX_PROCESSORS = ("min_length", "forced_bos_token_id", "forced_eos_token_id")


def _single_id(token: Any) -> Optional[int]:
    """A forced token id (v4's processors force one id; a one-element list is taken as it)."""
    if token is None:
        return None
    if isinstance(token, (list, tuple)):
        if len(token) != 1:
            raise ValueError(f"a forced token must be one id, got {token!r}")
        token = token[0]
    return int(token)


def _to_v4_cache(cache: tuple, index: Any) -> dict[str, Any]:
    """Our preallocated cache ((k, v) (B, h, S, D) per layer) as v4 Flax's cache tree, at `index`."""
    index = jnp.asarray(index, jnp.int32)
    return {"roberta": {"encoder": {"layer": {
        str(i): {"attention": {"self": {"cache_index": index, "cached_key": jnp.swapaxes(k, 1, 2),
                                        "cached_value": jnp.swapaxes(v, 1, 2)}}}
        for i, (k, v, *_) in enumerate(cache)
    }}}}


def _from_v4_cache(tree: Mapping) -> tuple[tuple, Any]:
    """v4 Flax's cache tree (`init_cache`) as our preallocated cache and its index."""
    layers = tree["roberta"]["encoder"]["layer"]
    selves = [layers[str(i)]["attention"]["self"] for i in range(len(layers))]
    cache = tuple((jnp.swapaxes(s["cached_key"], 1, 2), jnp.swapaxes(s["cached_value"], 1, 2)) for s in selves)
    return cache, selves[0]["cache_index"]


class FlaxRobertaForCausalLM(FlaxRobertaPreTrainedModel):
    """Left-to-right language model (build with `is_decoder=True`): logits (B, T, V), the
    next-token loss, a key/value cache, and `generate()`."""

    head = "causal_lm"

    def __init__(
        self, config: RobertaConfig, *, dtype: Any = jnp.float32, param_dtype: Any = None,
        attn_implementation: Optional[str] = None, rngs: Optional[nnx.Rngs] = None,
        seed: Optional[int] = None,
    ):
        super().__init__(config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        if not config.is_decoder:
            warnings.warn(
                f"{type(self).__name__} attends both ways unless the config has is_decoder=True", stacklevel=2
            )
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=_rngs(rngs, seed))
        self.roberta = FlaxRobertaModel(
            self.config, add_pooling_layer=False, attn_implementation=attn_implementation, **kw
        )
        self.lm_head = FlaxRobertaLMHead(config, **kw)
        self.generation_config = GenerationConfig.from_model_config(self.config)  # v4's; from_pretrained reads the file's

    @_compiled
    def __call__(
        self,
        input_ids: Optional[jax.Array] = None,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        position_ids: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        inputs_embeds: Optional[jax.Array] = None,
        encoder_hidden_states: Optional[jax.Array] = None,
        encoder_attention_mask: Optional[jax.Array] = None,
        labels: Optional[jax.Array] = None,
        past_key_values: Optional[tuple[tuple[jax.Array, ...], ...]] = None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        deterministic: Optional[bool] = None,
        cache_index: Any = None,
        unpad: bool | int = False,
    ) -> CausalLMOutputWithCrossAttentions | tuple:
        """labels (B, T): the input ids themselves (shifted inside), -100 to ignore.
        `cache_index`: generate()'s preallocated cache (see FlaxRobertaModel). `unpad`: see
        FlaxRobertaModel; the logits at padding positions are then zeros (not computed).
        `past_key_values` may also be v4 Flax's cache (`init_cache`): the call then writes at its
        index, `attention_mask` (B, max_length) covers every slot (all ones when not given), and
        the output's `past_key_values` is that cache updated, as v4's."""
        v4_cache = isinstance(past_key_values, Mapping)
        if v4_cache:
            if cache_index is not None:
                raise ValueError("give cache_index with our tuple cache, not with v4's cache (it holds its index)")
            past_key_values, cache_index = _from_v4_cache(past_key_values)
            ids = input_ids if input_ids is not None else inputs_embeds
            if attention_mask is None:
                attention_mask = jnp.ones(past_key_values[0][0].shape[:1] + past_key_values[0][0].shape[2:3], jnp.int32)
            if position_ids is None and input_ids is not None:  # v4 Flax's default: from the ids
                real = (input_ids != self.config.pad_token_id).astype(jnp.int32)
                position_ids = jnp.cumsum(real, axis=1) * real + self.config.pad_token_id
            elif position_ids is None:
                position_ids = jnp.broadcast_to(jnp.arange(ids.shape[1]) + cache_index, ids.shape[:2])
            use_cache = True
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if labels is not None:
            use_cache = False  # training: no cache to keep (v4)
        outputs = self.roberta(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            encoder_hidden_states, encoder_attention_mask, past_key_values, use_cache,
            output_attentions, output_hidden_states, return_dict=True,
            deterministic=self._deterministic(deterministic), cache_index=cache_index, unpad=unpad,
        )
        if labels is not None:
            _check_labels(self, labels, *outputs.last_hidden_state.shape[:2])
        # With a cache the mask also covers the cached positions: the head then runs on every row.
        packing = packing_for(attention_mask, unpad if past_key_values is None else False)
        lm_head = functools.partial(self.lm_head, word_embeddings=self.get_input_embeddings())
        logits = _per_token(lm_head, outputs.last_hidden_state, packing)
        cache = outputs.past_key_values
        if v4_cache:
            cache = _to_v4_cache(cache, cache_index + (input_ids if input_ids is not None else inputs_embeds).shape[1])
        out = CausalLMOutputWithCrossAttentions(
            loss=None if labels is None else causal_lm_loss(logits, labels),
            logits=logits,
            past_key_values=cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )
        return out if return_dict else out.to_tuple(cache=past_key_values is not None)  # as v4 Flax

    def init_cache(self, batch_size: int, max_length: int) -> dict[str, Any]:
        """v4 Flax's empty cache for a decoding loop of `max_length` positions: its tree
        (`roberta/encoder/layer/<i>/attention/self/` `cached_key`, `cached_value` (B, max_length,
        h, D), `cache_index`), which this model's call takes as `past_key_values` and returns updated."""
        config = self.config
        empty = jnp.zeros((batch_size, config.num_attention_heads, max_length, config.head_dim), self.dtype)
        return _to_v4_cache(tuple((empty, empty) for _ in range(config.num_hidden_layers)), 0)

    def prepare_inputs_for_generation(
        self,
        input_ids: jax.Array,
        max_length: Optional[int] = None,
        attention_mask: Optional[jax.Array] = None,
        past_key_values: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """With `max_length`, v4 Flax's first step of a decoding loop: `past_key_values` a new
        `init_cache(B, max_length)`, `attention_mask` extended with ones to max_length, and
        `position_ids` (`attention_mask.cumsum(-1) - 1`, 1 at padding as v4 PyTorch's, or 0 .. T-1
        without a mask). Without it,
        the inputs of one step of our loop over a growing tuple cache (`generation_step_inputs`,
        as the PyTorch and TF models')."""
        if max_length is None:
            return generation_step_inputs(input_ids, past_key_values, attention_mask, kwargs.get("use_cache"))
        B, T = input_ids.shape
        extended = jnp.ones((B, max_length), jnp.int32)
        if attention_mask is not None:
            mask = jnp.asarray(attention_mask)  # padding at 1 (v4 Flax's -1 is out of range here; masked anyway)
            position_ids = jnp.where(mask != 0, jnp.cumsum(mask, axis=-1) - 1, 1)
            extended = jax.lax.dynamic_update_slice(extended, jnp.asarray(attention_mask, jnp.int32), (0, 0))
        else:
            position_ids = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32)[None, :], (B, T))
        return {"past_key_values": self.init_cache(B, max_length), "attention_mask": extended,
                "position_ids": position_ids}

    def generate(
        self,
        input_ids: jax.Array,
        attention_mask: Optional[jax.Array] = None,
        max_new_tokens: Optional[int] = None,
        do_sample: Optional[bool] = None,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        eos_token_id: Optional[int | Sequence[int]] = None,
        pad_token_id: Optional[int] = None,
        seed: Optional[int] = None,
        max_length: Optional[int] = None,
        prng_key: Optional[jax.Array] = None,
        params: Any = None,
        num_beams: Optional[int] = None,
        generation_config: Any = None,
        num_return_sequences: Optional[int] = None,
        **kwargs: Any,
    ) -> GenerateDecoderOnlyOutput:
        """Continue each prompt by up to `max_new_tokens` tokens (v4's `max_length`, which counts
        the prompt, is 20 unless either is given): greedy (argmax), or sampled with `temperature`,
        `top_k`, `top_p` (keyed by v4's `prng_key`, or by `seed`; default key 0, as v4). input_ids
        (B, T), with padding on either side marked by attention_mask (B, T). A row that emits
        `eos_token_id` (default the config's; an empty list never stops) is finished and then filled
        with `pad_token_id`; generation ends when every row is finished. `params`: v4's parameter
        tree (`model.params`'s layout) to generate with instead of the model's own. Returns, as v4
        Flax's FlaxGreedySearchOutput / FlaxSampleOutput, an output whose `.sequences` (B, T + new)
        are the prompts as given, then the new tokens (`roberta_core`'s GenerateDecoderOnlyOutput).
        `num_beams` > 1 (beam search) is not implemented. A setting not given comes from
        `generation_config`, then `self.generation_config` (v4's defaults: top-k 50 when sampling).

        Positions are v4 Flax's (`prepare_inputs_for_generation`): `attention_mask.cumsum(-1) - 1`,
        counting from 0 (not from RoBERTa's padding_idx + 1 of a forward call), each new token the
        one after. Each row gets the tokens it would get alone: the prompts are moved right-aligned
        (their padding first) before decoding. A sampled step draws with the first half of the
        split key and carries the second, as v4's loop. The whole decoding is one compiled
        `jax.lax.while_loop` over a preallocated cache, with dropout off. Called inside the caller's
        own `jit`, the number of steps is unknown when the result is built: `.sequences` then always
        has T + max_new_tokens columns (pad after every row finished, as v4 always does).

        v4's keywords: `num_return_sequences` (greedy: 1; when sampling, v4 Flax returns one
        sequence per prompt whatever its value, and so does this), `use_cache`, `early_stopping`,
        `trace`, `output_hidden_states` / `output_attentions` (v4 Flax's output has no such fields)
        and v4's other settings that change no token here are accepted; v4 settings not implemented
        (`no_repeat_ngram_size`, ...) are a NotImplementedError naming them unless at v4's default.
        """
        processors = generate_keywords(
            {k: v for k, v in kwargs.items() if k not in ("output_hidden_states", "output_attentions")},
            taken=_FLAX_PROCESSORS,
        )
        settings = generation_settings(
            self.generation_config, self.config, max_new_tokens=max_new_tokens, do_sample=do_sample,
            temperature=temperature, top_k=top_k, top_p=top_p, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            max_length=max_length, num_beams=num_beams, generation_config=generation_config,
            unsupported=("min_new_tokens", "repetition_penalty"),
            num_return_sequences=num_return_sequences, implemented=("num_return_sequences", *_FLAX_PROCESSORS),
            **processors,
        )
        max_new_tokens, max_length, do_sample, temperature, top_k, top_p = (
            settings[k] for k in ("max_new_tokens", "max_length", "do_sample", "temperature", "top_k", "top_p"))
        eos_token_id, pad_token_id = settings["eos_token_id"], settings["pad_token_id"]
        min_length, forced_bos, forced_eos = (settings[k] for k in _FLAX_PROCESSORS)
        if prng_key is not None and seed is not None:
            raise TypeError("give prng_key= (v4) or seed=, not both")
        config = self.config
        if not config.is_decoder:
            raise ValueError("generate() needs a causal decoder: load or build the model with is_decoder=True")
        B, T = check_forward_inputs(config, input_ids=shape_of(input_ids), attention_mask=shape_of(attention_mask))
        max_new_tokens = new_token_count(T, max_new_tokens, max_length)
        check_generation_args(
            max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, do_sample=do_sample
        )
        if min_length is not None and min_length > T + max_new_tokens:  # v4 Flax's check
            raise ValueError(
                f"Unfeasable length constraints: the minimum length ({min_length}) is larger than the maximum "
                f"length ({T + max_new_tokens})"
            )
        limit = max_length_for(config)
        if T + max_new_tokens > limit:
            raise ValueError(
                f"prompt length {T} + max_new_tokens {max_new_tokens} exceeds the {limit} positions this model serves"
            )
        # Checked before JAX holds them: an int64 id would wrap when cast to int32.
        check_values("input_ids", input_ids if isinstance(input_ids, jax.Array) else np.asarray(input_ids),
                     config.vocab_size)
        input_ids = jnp.asarray(input_ids)
        eos = config.eos_token_id if eos_token_id is None else eos_token_id
        eos = jnp.asarray([eos] if isinstance(eos, int) else list(eos), dtype=jnp.int32)
        pad = config.pad_token_id if pad_token_id is None else pad_token_id
        if attention_mask is None:
            attention_mask = jnp.ones_like(input_ids)

        # v4's `params=`: a copy of the model holding them (the model itself is unchanged).
        graphdef, state = nnx.split(self if params is None else v4_model(self, {}, params=params))
        key = prng_key if prng_key is not None else jax.random.key(0 if seed is None else seed)
        tokens, steps = self._decode(
            graphdef, state, input_ids, jnp.asarray(attention_mask), eos, jnp.asarray(pad, input_ids.dtype),
            key, jnp.asarray(temperature, jnp.float32),
            max_new_tokens=max_new_tokens, do_sample=do_sample, top_k=top_k, top_p=top_p,
            min_length=min_length if min_length and min_length > 0 else None,
            forced_bos=_single_id(forced_bos), forced_eos=_single_id(forced_eos),
        )
        if not _is_traced(steps):
            tokens = tokens[:, : int(steps)]
        return GenerateDecoderOnlyOutput(sequences=jnp.concatenate([input_ids, tokens], axis=1))

    @staticmethod
    @functools.partial(jax.jit, static_argnums=0, static_argnames=(
        "max_new_tokens", "do_sample", "top_k", "top_p", "min_length", "forced_bos", "forced_eos"))
    def _decode(
        graphdef: nnx.GraphDef, state: nnx.State, input_ids: jax.Array, attention_mask: jax.Array, eos: jax.Array,
        pad: jax.Array, key: jax.Array, temperature: jax.Array, *,
        max_new_tokens: int, do_sample: bool, top_k: Optional[int], top_p: Optional[float],
        min_length: Optional[int] = None, forced_bos: Optional[int] = None, forced_eos: Optional[int] = None,
    ) -> tuple[jax.Array, jax.Array]:
        """generate()'s compiled loop, private (one program per model structure and static
        option). Returns the new tokens (B, max_new_tokens), pad after a row's eos and after the
        last step, and the number of steps taken. v4 Flax's logits processors, by the length
        `cur_len` the sequence has when the token is chosen (the prompt's T, then T + 1, ...):
        `min_length` (eos scores -inf while cur_len < min_length), `forced_bos` (only that token at
        cur_len 1), `forced_eos` (only that token at cur_len T + max_new_tokens - 1, v4's
        max_length - 1); then, when sampling, temperature, top-k and top-p."""
        model = nnx.merge(graphdef, state)
        model.set_attributes(jit_checks=False)  # generate() checked the ids eagerly
        config = model.config
        B, T = input_ids.shape
        S = T + max_new_tokens
        # Right-align every prompt (a stable sort puts the padding first, keeps token order).
        real = (attention_mask != 0).astype(jnp.int32)
        order = jnp.argsort(real, axis=1, stable=True)
        ids = jnp.take_along_axis(input_ids, order, axis=1)
        # The mask of every cache slot: the prompt's, then the new tokens (always attended).
        mask = jnp.concatenate(
            [jnp.take_along_axis(real, order, axis=1), jnp.ones((B, max_new_tokens), jnp.int32)], axis=1
        )
        # v4 Flax's positions: attention_mask.cumsum(-1) - 1, from 0; padding (masked) gets 1.
        positions = jnp.where(mask != 0, jnp.cumsum(mask, axis=1) - 1, 1)  # (B, S)
        empty = jnp.zeros((B, config.num_attention_heads, S, config.head_dim), model.dtype)
        cache = tuple((empty, empty) for _ in range(config.num_hidden_layers))

        def step_logits(step_ids: jax.Array, slot: Any, cache: tuple) -> tuple[jax.Array, tuple]:
            out = model(
                input_ids=step_ids, attention_mask=mask, past_key_values=cache, use_cache=True, deterministic=True,
                position_ids=jax.lax.dynamic_slice_in_dim(positions, slot, step_ids.shape[1], axis=1),
                cache_index=slot,
            )
            return out.logits[:, -1].astype(jnp.float32), out.past_key_values  # (B, V)

        def only(logits: jax.Array, token: int, when: jax.Array) -> jax.Array:
            forced = jnp.full_like(logits, -jnp.inf).at[:, token].set(0)
            return jnp.where(when, forced, logits)

        def pick(logits: jax.Array, key: jax.Array, finished: jax.Array, cur_len: Any) -> jax.Array:
            if min_length is not None:
                logits = jnp.where((cur_len < min_length) & jnp.isin(jnp.arange(logits.shape[-1]), eos),
                                   -jnp.inf, logits)
            if forced_bos is not None:
                logits = only(logits, forced_bos, cur_len == 1)
            if forced_eos is not None:
                logits = only(logits, forced_eos, cur_len == S - 1)
            if do_sample:
                token = jax.random.categorical(key, _filter_logits(logits / temperature, top_k, top_p), axis=-1)
            else:
                token = jnp.argmax(logits, axis=-1)
            return jnp.where(finished, pad, token.astype(pad.dtype))

        logits, cache = step_logits(ids, 0, cache)
        sub, key = jax.random.split(key)  # v4: draw with the first half, carry the second
        token = pick(logits, sub, jnp.zeros((B,), bool), T)
        tokens = jnp.full((B, max_new_tokens), pad).at[:, 0].set(token)

        def unfinished(carry: tuple) -> jax.Array:
            made, _, finished, _, _ = carry
            return (made < max_new_tokens) & ~jnp.all(finished)

        def next_token(carry: tuple) -> tuple:
            made, tokens, finished, cache, key = carry
            # Feed the last token made; it sits in cache slot T + made - 1.
            logits, cache = step_logits(tokens[:, made - 1][:, None], T + made - 1, cache)
            sub, key = jax.random.split(key)
            token = pick(logits, sub, finished, T + made)
            return made + 1, tokens.at[:, made].set(token), finished | jnp.isin(token, eos), cache, key

        made, tokens, *_ = jax.lax.while_loop(unfinished, next_token, (1, tokens, jnp.isin(token, eos), cache, key))
        return tokens, made


class FlaxRobertaForMaskedLM(FlaxRobertaPreTrainedModel):
    """RoBERTa's pretraining objective: logits (B, T, V) for every position; the loss over the
    positions whose label is not -100."""

    head = "masked_lm"

    def __init__(
        self, config: RobertaConfig, *, dtype: Any = jnp.float32, param_dtype: Any = None,
        attn_implementation: Optional[str] = None, rngs: Optional[nnx.Rngs] = None,
        seed: Optional[int] = None,
    ):
        super().__init__(config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        if config.is_decoder:
            warnings.warn(
                f"{type(self).__name__} should attend both ways: build it with is_decoder=False", stacklevel=2
            )
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=_rngs(rngs, seed))
        self.roberta = FlaxRobertaModel(
            self.config, add_pooling_layer=False, attn_implementation=attn_implementation, **kw
        )
        self.lm_head = FlaxRobertaLMHead(config, **kw)

    def _concrete_options(self, arguments: dict[str, Any]) -> None:
        """Also `masked_positions_only` becomes the number of rows (True: of labelled positions)."""
        super()._concrete_options(arguments)
        rows = arguments.get("masked_positions_only", False)
        if rows is not False and arguments.get("labels") is not None:
            arguments["masked_positions_only"] = _labelled_budget(arguments["labels"], rows)

    @_compiled
    def __call__(
        self,
        input_ids: Optional[jax.Array] = None,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        position_ids: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        inputs_embeds: Optional[jax.Array] = None,
        encoder_hidden_states: Optional[jax.Array] = None,
        encoder_attention_mask: Optional[jax.Array] = None,
        labels: Optional[jax.Array] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        deterministic: Optional[bool] = None,
        unpad: bool | int = False,
        masked_positions_only: bool | int = False,
    ) -> MaskedLMOutput | tuple:
        """labels (B, T): the original ids at masked positions, -100 elsewhere.

        `unpad`: see FlaxRobertaModel; the logits at padding positions are then zeros (not computed).
        `masked_positions_only` (training, as fairseq): the LM head runs only where labels are not
        -100, and `logits` are those rows, (M, V) in row-major order of the positions. The
        decoder (H x V) is about a third of the forward's work, and MLM labels 15% of the tokens:
        the loss and its gradients are the same, for much less work. Needs labels. Shapes are
        static under `jit`: there give M itself, `masked_positions_only=M` (an int >= the labelled
        positions; the rows after theirs are zeros; too few rows give a NaN loss, never a loss
        over some of the labels); eagerly True takes M from the labels."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        rows = _labelled_budget(labels, masked_positions_only)
        outputs = self.roberta(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            encoder_hidden_states, encoder_attention_mask,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            deterministic=self._deterministic(deterministic), unpad=unpad,
        )
        if labels is not None:
            _check_labels(self, labels, *outputs.last_hidden_state.shape[:2])
        hidden = outputs.last_hidden_state
        lm_head = functools.partial(self.lm_head, word_embeddings=self.get_input_embeddings())
        if rows is not None:
            logits, loss = self._labelled_logits(hidden, labels, rows)
        else:
            logits = _per_token(lm_head, hidden, packing_for(attention_mask, unpad))
            loss = None if labels is None else masked_lm_loss(logits, labels)
        out = MaskedLMOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


    def _labelled_logits(self, hidden: jax.Array, labels: jax.Array, rows: int) -> tuple[jax.Array, jax.Array]:
        """The LM head at the labelled positions only, as a packed stream of them: (rows, V)
        logits, zeros after the labelled ones, and their loss. (B, T, H), (B, T) -> (rows, V), scalar."""
        lm_head = functools.partial(self.lm_head, word_embeddings=self.get_input_embeddings())
        # The labelled positions, then index B * T: a zero state labelled -100.
        flat = jnp.asarray(labels).reshape(-1)
        labelled = flat != IGNORE_INDEX
        index = jnp.nonzero(labelled, size=rows, fill_value=flat.shape[0])[0]
        states = jnp.take(hidden.reshape(-1, hidden.shape[-1]), index, axis=0, mode="fill", fill_value=0)
        logits = jnp.where((index < flat.shape[0])[:, None], lm_head(states), 0)
        loss = cross_entropy(logits, jnp.take(flat, index, mode="fill", fill_value=IGNORE_INDEX))
        fits = jnp.sum(labelled) <= rows
        if self.jit_checks and _is_traced(fits):
            checkify.check(fits, f"masked_positions_only={rows} rows cannot hold the {{n}} labelled positions",
                           n=jnp.sum(labelled))
        return logits, jnp.where(fits, loss, jnp.nan)

class FlaxRobertaForSequenceClassification(FlaxRobertaPreTrainedModel):
    """Classification or regression of the whole sequence from `<s>`: logits (B, L). The loss
    follows `config.problem_type`, or v4's rule when it is None (one label: regression; integer
    labels: single-label; float labels: multi-label)."""

    head = "sequence_classification"

    def __init__(
        self, config: RobertaConfig, *, dtype: Any = jnp.float32, param_dtype: Any = None,
        attn_implementation: Optional[str] = None, rngs: Optional[nnx.Rngs] = None,
        seed: Optional[int] = None,
    ):
        super().__init__(config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        self.num_labels = config.num_labels
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=_rngs(rngs, seed))
        self.roberta = FlaxRobertaModel(
            self.config, add_pooling_layer=False, attn_implementation=attn_implementation, **kw
        )
        self.classifier = FlaxRobertaClassificationHead(config, **kw)

    @_compiled
    def __call__(
        self,
        input_ids: Optional[jax.Array] = None,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        position_ids: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        inputs_embeds: Optional[jax.Array] = None,
        labels: Optional[jax.Array] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        deterministic: Optional[bool] = None,
        unpad: bool | int = False,
    ) -> SequenceClassifierOutput | tuple:
        """labels: (B,) class ids, (B,) or (B, L) regression targets, or (B, L) 0/1 multi-label
        targets. `unpad`: see FlaxRobertaModel (the `<s>` state is a real token's)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        deterministic = self._deterministic(deterministic)
        outputs = self.roberta(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            deterministic=deterministic, unpad=unpad,
            first_token_only=_reads_first_token(self.classifier, FlaxRobertaClassificationHead),
        )
        problem = None
        if labels is not None:
            problem = _check_labels(self, labels, *outputs.last_hidden_state.shape[:2])
        logits = self.classifier(outputs.last_hidden_state, deterministic)
        out = SequenceClassifierOutput(
            loss=None if labels is None else sequence_classification_loss(logits, labels, problem),
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


class FlaxRobertaForMultipleChoice(FlaxRobertaPreTrainedModel):
    """Scores C candidate sequences per example: inputs (B, C, T) are flattened to (B * C, T),
    each pooled `<s>` state gets one score, logits (B, C)."""

    head = "multiple_choice"

    def __init__(
        self, config: RobertaConfig, *, dtype: Any = jnp.float32, param_dtype: Any = None,
        attn_implementation: Optional[str] = None, rngs: Optional[nnx.Rngs] = None,
        seed: Optional[int] = None,
    ):
        super().__init__(config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        rngs = _rngs(rngs, seed)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=rngs)
        self.roberta = FlaxRobertaModel(self.config, attn_implementation=attn_implementation, **kw)
        self.dropout = _dropout(config.hidden_dropout_prob, rngs=rngs)
        self.classifier = _dense(config, config.hidden_size, 1, **kw)

    @_compiled
    def __call__(
        self,
        input_ids: Optional[jax.Array] = None,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        position_ids: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        inputs_embeds: Optional[jax.Array] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        labels: Optional[jax.Array] = None,  # after the inputs, as v4 Flax's positional order
        deterministic: Optional[bool] = None,
        unpad: bool | int = False,
    ) -> MultipleChoiceModelOutput | tuple:
        """input_ids (B, C, T) or inputs_embeds (B, C, T, H); the other inputs (B, C, T);
        labels (B,): the index of the right choice. (v4's argument order in this framework:
        attention_mask before token_type_ids, unlike PyTorch's.) `unpad`: see FlaxRobertaModel
        (choices are often short: it pays; the budget counts the real tokens of every choice)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        deterministic = self._deterministic(deterministic)
        if input_ids is not None and jnp.ndim(input_ids) != 3:
            raise ValueError(f"input_ids must have shape (batch, choices, length), got {shape_of(input_ids)}")
        if inputs_embeds is not None and jnp.ndim(inputs_embeds) != 4:
            raise ValueError(
                f"inputs_embeds must have shape (batch, choices, length, hidden_size), got {shape_of(inputs_embeds)}"
            )
        if input_ids is None and inputs_embeds is None:
            raise ValueError(
                "give input_ids (batch, choices, length) or inputs_embeds (batch, choices, length, hidden_size)"
            )
        B, C, T = shape_of(input_ids if input_ids is not None else inputs_embeds)[:3]

        def flat(x: Optional[jax.Array], name: str) -> Optional[jax.Array]:
            # (B, C, T, ...) -> (B * C, T, ...): every choice is a sequence of its own.
            if x is None:
                return None
            if shape_of(x)[:3] != (B, C, T):
                raise ValueError(f"{name} must have leading shape ({B}, {C}, {T}) like the inputs, got {shape_of(x)}")
            return jnp.reshape(x, (B * C, *shape_of(x)[2:]))

        if labels is not None:
            _check_labels(self, labels, B, T, num_choices=C)
        outputs = self.roberta(
            flat(input_ids, "input_ids"), flat(attention_mask, "attention_mask"),
            flat(token_type_ids, "token_type_ids"), flat(position_ids, "position_ids"), head_mask,
            flat(inputs_embeds, "inputs_embeds"),
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            deterministic=deterministic, unpad=unpad,
            first_token_only=_reads_first_token(self.roberta.pooler, FlaxRobertaPooler),
        )
        pooled = self.dropout(outputs.pooler_output, deterministic=deterministic)
        logits = self.classifier(pooled).reshape(B, C)  # (B, C)
        out = MultipleChoiceModelOutput(
            loss=None if labels is None else multiple_choice_loss(logits, labels),
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


class FlaxRobertaForTokenClassification(FlaxRobertaPreTrainedModel):
    """A label per token (named entities, parts of speech): logits (B, T, L)."""

    head = "token_classification"

    def __init__(
        self, config: RobertaConfig, *, dtype: Any = jnp.float32, param_dtype: Any = None,
        attn_implementation: Optional[str] = None, rngs: Optional[nnx.Rngs] = None,
        seed: Optional[int] = None,
    ):
        super().__init__(config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        self.num_labels = config.num_labels
        rngs = _rngs(rngs, seed)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=rngs)
        self.roberta = FlaxRobertaModel(
            self.config, add_pooling_layer=False, attn_implementation=attn_implementation, **kw
        )
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = _dropout(dropout, rngs=rngs)
        self.classifier = _dense(config, config.hidden_size, config.num_labels, **kw)

    @_compiled
    def __call__(
        self,
        input_ids: Optional[jax.Array] = None,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        position_ids: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        inputs_embeds: Optional[jax.Array] = None,
        labels: Optional[jax.Array] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        deterministic: Optional[bool] = None,
        unpad: bool | int = False,
    ) -> TokenClassifierOutput | tuple:
        """labels (B, T): class ids, -100 for positions to ignore (padding, word pieces). `unpad`:
        see FlaxRobertaModel; the logits at padding positions are then zeros."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        deterministic = self._deterministic(deterministic)
        outputs = self.roberta(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            deterministic=deterministic, unpad=unpad,
        )
        if labels is not None:
            _check_labels(self, labels, *outputs.last_hidden_state.shape[:2])
        logits = _per_token(lambda x: self.classifier(self.dropout(x, deterministic=deterministic)),
                            outputs.last_hidden_state, packing_for(attention_mask, unpad))
        out = TokenClassifierOutput(
            loss=None if labels is None else token_classification_loss(logits, labels),
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


class FlaxRobertaForQuestionAnswering(FlaxRobertaPreTrainedModel):
    """Extractive question answering: a start and an end score per token, (B, T) each."""

    head = "question_answering"

    def __init__(
        self, config: RobertaConfig, *, dtype: Any = jnp.float32, param_dtype: Any = None,
        attn_implementation: Optional[str] = None, rngs: Optional[nnx.Rngs] = None,
        seed: Optional[int] = None,
    ):
        super().__init__(config, dtype=dtype, param_dtype=param_dtype, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype, rngs=_rngs(rngs, seed))
        self.roberta = FlaxRobertaModel(
            self.config, add_pooling_layer=False, attn_implementation=attn_implementation, **kw
        )
        self.num_labels = config.num_labels  # v4's attribute
        # num_labels outputs, as v4 (its checkpoints must load); the forward needs two.
        self.qa_outputs = _dense(config, config.hidden_size, config.num_labels, **kw)

    @_compiled
    def __call__(
        self,
        input_ids: Optional[jax.Array] = None,
        attention_mask: Optional[jax.Array] = None,
        token_type_ids: Optional[jax.Array] = None,
        position_ids: Optional[jax.Array] = None,
        head_mask: Optional[jax.Array] = None,
        inputs_embeds: Optional[jax.Array] = None,
        start_positions: Optional[jax.Array] = None,
        end_positions: Optional[jax.Array] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        deterministic: Optional[bool] = None,
        unpad: bool | int = False,
    ) -> QuestionAnsweringModelOutput | tuple:
        """start_positions, end_positions (B,): token indices of the answer span (the loss needs both).
        `unpad`: see FlaxRobertaModel; padding positions then get the dtype's minimum as logits, so
        that neither the loss nor an argmax sees them (v4 scores padding like any position, which
        changes its loss a little; without padding the two agree)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if self.config.num_labels != 2:
            raise ValueError(
                f"{type(self).__name__} scores a start and an end per token: it needs config.num_labels == 2, "
                f"got num_labels={self.config.num_labels}"
            )
        if start_positions is None or end_positions is None:
            start_positions = end_positions = None  # as v4: a loss needs both; one alone is not used
        outputs = self.roberta(
            input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            deterministic=self._deterministic(deterministic), unpad=unpad,
        )
        if start_positions is not None:
            for positions in (start_positions, end_positions):
                _check_labels(self, positions, *outputs.last_hidden_state.shape[:2])
        packing = packing_for(attention_mask, unpad)
        logits = _per_token(self.qa_outputs, outputs.last_hidden_state, packing)  # (B, T, 2)
        if packing is not None:
            logits = jnp.where(packing.mask[..., None], logits, jnp.finfo(logits.dtype).min)
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None:
            loss = question_answering_loss(start_logits, end_logits, start_positions, end_positions)
        out = QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()
