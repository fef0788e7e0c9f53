"""TensorFlow (Keras 3) RoBERTa heads, in reading order: the losses, the two head layers (LM
and classification), then the six task models on top of `TFRobertaModel`, with `generate()` on
the causal LM. Each model checks its inputs and labels before it computes (clear errors, the
same words in every backend).

Layer names are v4's (`roberta`, `lm_head`, `classifier`, `qa_outputs`, `dropout`), so v4
checkpoints load one to one. Shapes: B batch, C choices, T length, H hidden size,
V vocabulary, L labels. A parallel text of `roberta_pt/heads.py` (the master); what Keras adds
is `hf_compute_loss`, each head's loss against labels given to `fit` as `y`.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

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

from ._framework import ReplaceableSublayers, _dense, _dropout, _layer_norm, check_values, dims, in_xla, shape_of
from .modeling import ACT2FN, TFRobertaModel, TFRobertaPooler, TFRobertaPreTrainedModel
from .unpad import Packing, _true_first, pack, packing_for, repad, run_packed, unpad_rows

__all__ = [
    "masked_lm_loss",
    "causal_lm_loss",
    "sequence_classification_loss",
    "multiple_choice_loss",
    "token_classification_loss",
    "question_answering_loss",
    "TFRobertaLMHead",
    "TFRobertaClassificationHead",
    "TFRobertaForCausalLM",
    "TFRobertaForMaskedLM",
    "TFRobertaForSequenceClassification",
    "TFRobertaForMultipleChoice",
    "TFRobertaForTokenClassification",
    "TFRobertaForQuestionAnswering",
]


# ---------------------------------------------------------------------------- losses
# Shapes as v4's TF heads return them: (1,) for the token-level heads (the mean over the labelled
# tokens), (B,) per example for sequence classification, multiple choice and QA. Their mean is
# the scalar PyTorch's and Flax's heads return (what Keras' `fit` and our trainer minimise): an
# example whose label is ignored (-100, a QA position outside the sequence) contributes 0, and the
# others are scaled by B / (examples kept), which is 1 when none is ignored (v4's values exactly).

def _token_losses(logits: tf.Tensor, targets: tf.Tensor, ignore_index: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """Cross-entropy of each row, 0 where the target is `ignore_index`, and how many rows are kept
    (at least 1). logits (N, K), targets (N,) -> (N,), scalar. Computed in float32 whatever the
    logits' dtype."""
    targets = tf.cast(targets, tf.int32)
    keep = tf.not_equal(targets, tf.cast(ignore_index, tf.int32))
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(keep, targets, 0), logits=tf.cast(logits, tf.float32)
    )
    return tf.where(keep, losses, 0.0), tf.maximum(tf.reduce_sum(tf.cast(keep, tf.float32)), 1.0)


def _cross_entropy_per_example(logits: tf.Tensor, targets: tf.Tensor, ignore_index: Any = IGNORE_INDEX) -> tf.Tensor:
    """The rows' cross-entropies scaled by N / (rows kept), so that their mean is `cross_entropy`
    (see above). logits (N, K), targets (N,) -> (N,)."""
    losses, kept = _token_losses(logits, targets, ignore_index)
    return losses * (tf.cast(tf.size(losses), tf.float32) / kept)


def cross_entropy(logits: tf.Tensor, targets: tf.Tensor, ignore_index: Any = IGNORE_INDEX) -> tf.Tensor:
    """Mean cross-entropy over the targets that are not `ignore_index`; 0 (not NaN, as a plain
    mean would give) when every target is ignored or there is none. logits (N, K), targets (N,) -> scalar."""
    losses, kept = _token_losses(logits, targets, ignore_index)
    return tf.reduce_sum(losses) / kept


def masked_lm_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Masked LM: cross-entropy over the positions whose label is not -100. (B, T, V), (B, T) -> (1,)."""
    return tf.reshape(cross_entropy(tf.reshape(logits, (-1, tf.shape(logits)[-1])), tf.reshape(labels, (-1,))), (1,))


def causal_lm_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Causal LM: the logits at position t predict the label at t + 1 (labels are the inputs,
    not shifted by the caller); -100 is ignored. (B, T, V), (B, T) -> (1,)."""
    return masked_lm_loss(logits[:, :-1], labels[:, 1:])


def sequence_classification_loss(logits: tf.Tensor, labels: tf.Tensor, problem_type: str) -> tf.Tensor:
    """Per example, by problem type: 'regression' squared error (mean over the labels),
    'single_label_classification' cross-entropy (-100 ignored, see above), 'multi_label_classification'
    binary cross-entropy with logits (mean over the labels). logits (B, L) -> (B,)."""
    logits32 = tf.cast(logits, tf.float32)
    if problem_type == "regression":
        targets = tf.reshape(tf.cast(labels, tf.float32), tf.shape(logits32))
        return tf.reduce_mean(tf.square(logits32 - targets), axis=-1)
    if problem_type == "single_label_classification":
        return _cross_entropy_per_example(logits, tf.reshape(labels, (-1,)))
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits32)
    return tf.reduce_mean(bce, axis=-1)


def multiple_choice_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy over the choices, per example. logits (B, C), labels (B,) -> (B,)."""
    return _cross_entropy_per_example(logits, labels)


def token_classification_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy per token, -100 ignored, averaged. (B, T, L), (B, T) -> (1,)."""
    return masked_lm_loss(logits, labels)


def question_answering_loss(
    start_logits: tf.Tensor, end_logits: tf.Tensor, start_positions: tf.Tensor, end_positions: tf.Tensor
) -> tf.Tensor:
    """Per example, the mean of the start and end cross-entropies. Positions outside the sequence
    are clamped to T, which is ignored (an answer truncated away teaches nothing; see above).
    (B, T) logits, (B,) positions -> (B,)."""
    T = tf.shape(start_logits)[1]
    start = tf.clip_by_value(tf.reshape(tf.cast(start_positions, tf.int32), (-1,)), 0, T)
    end = tf.clip_by_value(tf.reshape(tf.cast(end_positions, tf.int32), (-1,)), 0, T)
    starts = _cross_entropy_per_example(start_logits, start, ignore_index=T)
    return (starts + _cross_entropy_per_example(end_logits, end, ignore_index=T)) / 2


def _logits_of(outputs: Mapping[str, Any] | tf.Tensor) -> tf.Tensor:
    """v4 TF's `hf_compute_loss(labels, logits)` took the logits; ours also takes the outputs."""
    return outputs["logits"] if isinstance(outputs, Mapping) else outputs


def _check_labels(head: str, config: RobertaConfig, labels: tf.Tensor, batch: int, length: int,
                  num_choices: Optional[int] = None) -> tuple[Optional[str], tf.Tensor]:
    """Shape, kind and range of `labels` for `head` (checked after the encoder, which checked the
    inputs and knows B and T); the problem type for sequence classification, and the labels
    (under the range assertion, in a graph)."""
    labels = tf.convert_to_tensor(labels)
    problem = check_labels(
        head, config, shape_of(labels), batch=batch, length=length,
        labels_are_integers=labels.dtype.is_integer, num_choices=num_choices,
    )
    upper = {
        "masked_lm": config.vocab_size,
        "causal_lm": config.vocab_size,
        "token_classification": config.num_labels,
        "multiple_choice": num_choices,
        "sequence_classification": config.num_labels if problem == "single_label_classification" else None,
    }.get(head)
    if upper is not None:
        labels = check_values("labels", labels, upper, allow_ignore=True)
    return problem, labels


def _reads_first_token(part: Any, stock: type) -> bool:
    """Whether `part` (a head's classifier, a model's pooler) is the stock layer, which reads the
    `<s>` state alone: then the encoder's last layer may compute that position only. A replaced
    part may read every position."""
    return type(part) is stock


def _per_token(head: Callable[[tf.Tensor], tf.Tensor], hidden: tf.Tensor, packing: Optional[Packing]) -> tf.Tensor:
    """A token-level head on the states (B, T, H) -> (B, T, ...); under `unpad`, on the real
    tokens only, zeros at padding (the LM decoder is a third of the model's work)."""
    if packing is None:
        return head(hidden)
    return run_packed(lambda p: repad(head(unpad_rows(hidden, p)), p), packing)


# ---------------------------------------------------------------------------- head modules

class TFRobertaLMHead(ReplaceableSublayers, keras.layers.Layer):
    """States (B, T, H) -> vocabulary logits (B, T, V): dense -> gelu -> LayerNorm -> decoder.
    The decoder's weight is the word embedding table (tied by the model; `input_embeddings`
    is that layer) and its bias is `lm_head.bias`, the name checkpoints use."""

    def __init__(self, config: RobertaConfig, input_embeddings: keras.layers.Embedding, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = _dense(config, config.hidden_size, "dense", self.dtype_policy)
        self.layer_norm = _layer_norm(config, "layer_norm", self.dtype_policy)
        if config.tie_word_embeddings:
            self.decoder = input_embeddings
        else:
            self.decoder = _dense(config, config.vocab_size, "decoder", self.dtype_policy, use_bias=False)

    def build(self, input_shape=None):
        H = self.config.hidden_size
        self.dense.build((None, None, H))
        self.layer_norm.build((None, None, H))
        if not self.config.tie_word_embeddings:
            self.decoder.build((None, None, H))
        self.bias = self.add_weight(shape=(self.config.vocab_size,), initializer="zeros", name="bias")

    def call(self, features: tf.Tensor) -> tf.Tensor:
        x = ACT2FN["gelu"](self.dense(features))  # exact GELU whatever hidden_act says, as v4
        x = self.layer_norm(x)
        if not isinstance(self.decoder, keras.layers.Embedding):
            return self.decoder(x) + tf.cast(self.bias, x.dtype)
        # A 2-D matmul against the table (V, H): the gradient of an einsum over '...' would
        # materialise a (..., V, H) tensor (B x T x 50265 x 768 floats at roberta-base).
        shape = dims(x)
        table = tf.cast(self.decoder.embeddings, x.dtype)
        logits = tf.matmul(tf.reshape(x, (-1, shape[-1])), table, transpose_b=True)  # (rows, V)
        logits = tf.nn.bias_add(logits, tf.cast(self.bias, x.dtype))
        return tf.reshape(logits, [*shape[:-1], table.shape[0]])


class TFRobertaClassificationHead(ReplaceableSublayers, keras.layers.Layer):
    """Sentence-level classifier on the `<s>` token: (B, T, H) -> (B, L) through dropout ->
    dense -> tanh -> dropout -> out_proj."""

    def __init__(self, config: RobertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = _dense(config, config.hidden_size, "dense", self.dtype_policy)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = _dropout(dropout, self.dtype_policy)
        self.out_proj = _dense(config, config.num_labels, "out_proj", self.dtype_policy)

    def build(self, input_shape=None):
        self.dense.build((None, self.config.hidden_size))
        self.out_proj.build((None, self.config.hidden_size))

    def call(self, features: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = self.dropout(features[:, 0], training=training)  # <s>, RoBERTa's [CLS]
        x = tf.tanh(self.dense(x))
        return self.out_proj(self.dropout(x, training=training))


# ---------------------------------------------------------------------------- task models

def _filter_logits(logits: tf.Tensor, top_k: Optional[int], top_p: Optional[float]) -> tf.Tensor:
    """Keep the `top_k` most likely tokens, then the smallest set whose probability reaches
    `top_p` (at least one); the rest get -inf. (B, V) -> (B, V)"""
    if top_k and top_k < logits.shape[-1]:  # 0 or None: no top-k filter, as v4
        kth = tf.math.top_k(logits, top_k).values[:, -1:]  # (B, 1)
        logits = tf.where(logits < kth, float("-inf"), logits)
    if top_p is not None and top_p < 1.0:
        order = tf.argsort(logits, axis=-1, direction="DESCENDING")
        probs = tf.nn.softmax(tf.gather(logits, order, batch_dims=1), axis=-1)
        before = tf.cumsum(probs, axis=-1, exclusive=True)  # mass of the more likely tokens
        drop = tf.gather(before >= top_p, tf.argsort(order, axis=-1), batch_dims=1)  # back to vocabulary order
        logits = tf.where(drop, float("-inf"), logits)
    return logits


def _bad_words(value: Any, eos: Sequence[int], vocab_size: int) -> list[list[int]]:
    """v4's checks of `bad_words_ids` (a list of lists of token ids), less the entries that are
    one end-of-sequence token (v4 drops them)."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(e, (list, tuple)) and len(e) for e in value):
        raise ValueError(f"`bad_words_ids` has to be a non-empty list of lists of token ids, but is {value}.")
    value = [[int(i) if isinstance(i, (int, np.integer)) and not isinstance(i, bool) else i for i in e] for e in value]
    if any(not isinstance(i, int) or not 0 <= i < vocab_size for e in value for i in e):
        raise ValueError(f"Each list in `bad_words_ids` has to be a list of token ids in [0, {vocab_size}), "
                         f"but is {value}.")
    return [e for e in value if not (len(e) == 1 and e[0] in eos)]


def _ban_bad_words(logits: tf.Tensor, history: tf.Tensor, length: tf.Tensor, bad_words: list[list[int]]) -> tf.Tensor:
    """v4's NoBadWordsLogitsProcessor: -inf for each bad word's last token in the rows whose
    tokens so far (`history[:, :length]`, a fixed-size buffer) end with the word's other tokens.
    logits (B, V) -> (B, V)."""
    banned = tf.zeros_like(logits, dtype=tf.bool)
    for word in bad_words:
        prefix, last = word[:-1], word[-1]
        match = tf.ones_like(logits[:, 0], dtype=tf.bool)
        if prefix:
            k = len(prefix)
            at = length - k + tf.range(k)
            tail = tf.gather(history, tf.maximum(at, 0), axis=1)  # (B, k)
            match = tf.reduce_all(tf.equal(tail, tf.constant(prefix, history.dtype)[None, :]), axis=1) & (length >= k)
        banned = banned | (match[:, None] & tf.equal(tf.range(tf.shape(logits)[1]), last)[None, :])
    return tf.where(banned, tf.constant(float("-inf"), logits.dtype), logits)


@keras.saving.register_keras_serializable(package="roberta_tf")
class TFRobertaForCausalLM(TFRobertaPreTrainedModel):
    """Left-to-right language model (build with `is_decoder=True`): logits (B, T, V), the
    next-token loss, a key/value cache, and `generate()`."""

    head = "causal_lm"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None, **kwargs):
        super().__init__(config, attn_implementation=attn_implementation, **kwargs)
        config = self.config  # a family class's (its model_type set)
        if not config.is_decoder:
            warnings.warn("TFRobertaForCausalLM attends both ways unless the config has is_decoder=True", stacklevel=2)
        self.roberta = TFRobertaModel(
            config, add_pooling_layer=False, attn_implementation=self.attn_implementation, dtype=self.dtype_policy,
            name="roberta",
        )
        self.lm_head = TFRobertaLMHead(
            config, self.roberta.embeddings.word_embeddings, dtype=self.dtype_policy, name="lm_head"
        )
        self.generation_config = GenerationConfig.from_model_config(self.config)  # v4's; from_pretrained reads the file's
        self.build()

    def build(self, input_shape=None):
        self.lm_head.build()

    def hf_compute_loss(self, labels: tf.Tensor, outputs: Mapping[str, Any] | tf.Tensor) -> tf.Tensor:
        logits = _logits_of(outputs)
        _, labels = _check_labels(self.head, self.config, labels, *shape_of(logits)[:2])
        return causal_lm_loss(logits, labels)

    def call(
        self,
        input_ids: Optional[tf.Tensor] = None,
        attention_mask: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        inputs_embeds: Optional[tf.Tensor] = None,
        encoder_hidden_states: Optional[tf.Tensor] = None,
        encoder_attention_mask: Optional[tf.Tensor] = None,
        labels: Optional[tf.Tensor] = None,
        past_key_values: Optional[tuple[tuple[tf.Tensor, ...], ...]] = None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        training: bool = False,
        unpad: bool | int = False,
    ) -> CausalLMOutputWithCrossAttentions | tuple:
        """labels (B, T): the input ids themselves (shifted inside), -100 to ignore. `unpad`: see
        TFRobertaModel; the logits at padding positions are then zeros (not computed)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if labels is not None:
            use_cache = False  # training: no cache to keep (v4)
        outputs = self.roberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values, use_cache=use_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            training=training, unpad=unpad,
        )
        # With a cache the mask also covers the cached positions: the head then runs on every row.
        packing = packing_for(attention_mask, unpad if past_key_values is None else False)
        out = CausalLMOutputWithCrossAttentions(
            logits=_per_token(self.lm_head, outputs.last_hidden_state, packing),
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )
        if labels is not None:
            out.loss = self.hf_compute_loss(labels, out)
        return out if return_dict else out.to_tuple(cache=False)  # no cache in the tuple, as v4 TF

    def prepare_inputs_for_generation(
        self,
        input_ids: tf.Tensor,
        past_key_values: Any = None,
        attention_mask: Optional[tf.Tensor] = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """v4's inputs of one step of a generation loop (`generation_step_inputs`)."""
        return generation_step_inputs(input_ids, past_key_values, attention_mask, kwargs.get("use_cache"))

    def generate(
        self,
        inputs: Any = None,
        attention_mask: Any = None,
        max_new_tokens: Optional[int] = None,
        do_sample: Optional[bool] = None,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        eos_token_id: Optional[int | Sequence[int]] = None,
        pad_token_id: Optional[int] = None,
        seed: Optional[int | Sequence[int]] = None,
        max_length: Optional[int] = None,
        num_beams: Optional[int] = None,
        output_scores: Optional[bool] = None,
        return_dict_in_generate: Optional[bool] = None,
        generation_config: Any = None,
        input_ids: Any = None,
        token_type_ids: Any = None,
        num_return_sequences: Optional[int] = None,
        **kwargs: Any,
    ) -> tf.Tensor | GenerateDecoderOnlyOutput:
        """Continue each prompt by up to `max_new_tokens` tokens (v4's `max_length`, which counts
        the prompt, is 20 unless either is given): greedy (argmax), or sampled with `temperature`,
        `top_k`, `top_p`, seeded by `seed`: v4 TF's two ints `[a, b]` of TF's stateless random ops,
        which seed every step's draw as in v4 (the same pair each step, so the steps' draws are
        correlated, v4's sequences), or an int n: step s then draws with [n, s], independent steps
        (v4 takes no int). input_ids (B, T),
        with padding on either side marked by attention_mask (B, T). A row that emits `eos_token_id`
        (default the config's; an empty list never stops) is finished and then filled with
        `pad_token_id`; generation ends when every row is finished. Returns (B, T + new) ids: the
        prompts as given, then the new tokens; with `return_dict_in_generate`, v4's output (its
        TFGreedySearchDecoderOnlyOutput / TFSampleDecoderOnlyOutput): `.sequences`, and with
        `output_scores` `.scores`, one (B, V) per new token, the scores the token was chosen from
        (the logits; when sampling, after temperature, top-k and top-p). Beam search is not
        implemented: `num_beams` must be 1. A setting not given comes from `generation_config`,
        then `self.generation_config` (v4's defaults: top-k 50 when sampling).

        Each row gets the tokens it would get alone: the prompts are moved right-aligned (their
        padding first) before decoding, so positions and relative distances are those of the
        unpadded prompt.

        The loop is a `tf.while_loop` over a cache of fixed length, so
        `tf.function(model.generate, jit_compile=True)` compiles the whole generation with XLA
        (a compiled generate always returns T + max_new_tokens columns, padded after eos, and
        max_new_tokens scores, zeros after every row stopped).

        v4's keywords: `inputs` (v4's name of the prompt ids; or `input_ids=`; neither: one sequence
        started from `bos_token_id`, as v4), `num_return_sequences`
        (when sampling, each prompt repeated that many times; greedy: 1), `token_type_ids` (taken and,
        as v4 TF's generate, not passed to the model). `use_cache`, `early_stopping` and v4's other
        settings that change no token here are accepted; `bad_words_ids` as v4 (each list's last
        token banned where the tokens before it end with the rest); v4 settings not implemented
        (`no_repeat_ngram_size`, `output_hidden_states`, ...) are a NotImplementedError naming them
        unless at v4's default.
        """
        # (not converted by autograph when generate is traced: it mangles the keyword-only call)
        extra = tf.autograph.experimental.do_not_convert(generate_keywords)(kwargs, taken=("bad_words_ids",))
        if inputs is not None and input_ids is not None:
            raise ValueError("`inputs` were passed alongside `input_ids`, which is not allowed: give one of them")
        input_ids = inputs if inputs is not None else input_ids
        if input_ids is None:
            # v4: no prompt starts one sequence from the BOS token (generation config, then model config).
            bos = next((c.bos_token_id for c in (generation_config, self.generation_config, self.config)
                        if getattr(c, "bos_token_id", None) is not None), None)
            if bos is None:
                raise ValueError("`bos_token_id` has to be defined when no `input_ids` are provided.")
            input_ids = tf.fill((1, 1), tf.constant(bos, tf.int32))
        settings = generation_settings(
            self.generation_config, self.config, max_new_tokens=max_new_tokens, do_sample=do_sample,
            temperature=temperature, top_k=top_k, top_p=top_p, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            max_length=max_length, num_beams=num_beams, generation_config=generation_config,
            output_scores=output_scores, return_dict_in_generate=return_dict_in_generate,
            unsupported=("min_new_tokens", "repetition_penalty"),
            num_return_sequences=num_return_sequences, implemented=("num_return_sequences", "bad_words_ids"),
            **extra,
        )
        max_new_tokens, max_length, do_sample, temperature, top_k, top_p = (
            settings[k] for k in ("max_new_tokens", "max_length", "do_sample", "temperature", "top_k", "top_p"))
        eos_token_id, pad_token_id = settings["eos_token_id"], settings["pad_token_id"]
        output_scores, return_dict_in_generate = settings["output_scores"], settings["return_dict_in_generate"]
        config = self.config
        if not config.is_decoder:
            raise ValueError("generate() needs a causal decoder: load or build the model with is_decoder=True")
        input_ids = tf.convert_to_tensor(input_ids)
        attention_mask = None if attention_mask is None else tf.convert_to_tensor(attention_mask)
        copies = int(settings["num_return_sequences"])
        if copies < 1:
            raise ValueError(f"num_return_sequences must be >= 1, got {copies}")
        if copies > 1:  # v4's _expand_inputs_for_generation
            input_ids = tf.repeat(input_ids, copies, axis=0)
            attention_mask = None if attention_mask is None else tf.repeat(attention_mask, copies, axis=0)
        if attention_mask is not None and attention_mask.dtype == tf.bool:
            attention_mask = tf.cast(attention_mask, tf.int32)  # True = attend, as the model's calls take it
        _, T = check_forward_inputs(config, input_ids=shape_of(input_ids), attention_mask=shape_of(attention_mask))
        max_new_tokens = new_token_count(T, max_new_tokens, max_length)
        check_generation_args(
            max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, do_sample=do_sample
        )
        limit = max_length_for(config)
        if T + max_new_tokens > limit:
            raise ValueError(
                f"prompt length {T} + max_new_tokens {max_new_tokens} exceeds the {limit} positions this model serves"
            )
        input_ids = check_values("input_ids", input_ids, config.vocab_size)
        eos = config.eos_token_id if eos_token_id is None else eos_token_id
        eos_ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)  # None: never stops, as v4
        eos = tf.constant(eos_ids, shape=[len(eos_ids)], dtype=tf.int32)
        pad = config.pad_token_id if pad_token_id is None else pad_token_id
        bad_words = _bad_words(settings["bad_words_ids"], eos_ids, config.vocab_size)
        N = max_new_tokens
        key, stride = None, 1  # step s draws with key + [0, stride * s]
        if do_sample:
            if seed is None:
                key = tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)
            elif isinstance(seed, int):
                key = tf.constant([seed, 0], tf.int64)
            else:  # v4 TF's seed: two integers, the same for every step (its `_sample`)
                key, stride = tf.cast(tf.reshape(tf.convert_to_tensor(seed), [-1]), tf.int64), 0
                if key.shape[0] != 2:
                    raise ValueError(f"seed must be an int or two ints [a, b] (v4 TF), got {seed!r}")

        def pick(logits: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            """The step's token and the scores it was chosen from (B, V)."""
            if not do_sample:
                return tf.argmax(logits, axis=-1, output_type=tf.int32), logits
            logits = _filter_logits(logits / temperature, top_k, top_p)
            step_key = key + tf.stack([tf.constant(0, tf.int64), stride * tf.cast(step, tf.int64)])
            if in_xla():  # XLA's stateless sampler takes int32 seeds only (and draws with its own generator)
                step_key = tf.cast(step_key, tf.int32)
            return tf.random.stateless_categorical(logits, 1, seed=step_key, dtype=tf.int32)[:, 0], logits

        ids = tf.cast(input_ids, tf.int32)
        mask = tf.ones_like(ids) if attention_mask is None else tf.cast(tf.not_equal(attention_mask, 0), tf.int32)
        # Right-align every prompt (a stable sort puts the padding first, keeps token order).
        order = tf.argsort(mask, axis=1, stable=True)
        ids = tf.gather(ids, order, batch_dims=1)
        mask = tf.gather(mask, order, batch_dims=1)
        # Positions count real tokens only; padding gets padding_idx (it is masked anyway).
        position_ids = tf.cumsum(mask, axis=1) * mask + config.pad_token_id

        out = self(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True)
        # The cache keeps one length (XLA compiles a loop whose shapes never change): N - 1 empty
        # slots on the left, pushed out one per step by the new token's keys and values. Each
        # new token thus sits right after the ones before it, as in a growing cache.
        empty_slots = [[0, 0], [0, 0], [N - 1, 0], [0, 0]]
        cache = tuple(tuple(tf.pad(t, empty_slots) for t in entry) for entry in out.past_key_values)
        cache_mask = tf.pad(mask, [[0, 0], [N - 1, 0]])
        position = tf.reduce_max(position_ids, axis=1, keepdims=True) + 1  # (B, 1)
        logits = tf.cast(out.logits[:, -1], tf.float32)  # (B, V)
        tokens = tf.fill(tf.stack([tf.shape(ids)[0], N]), pad)  # (B, N)
        finished = tf.zeros_like(ids[:, 0], dtype=tf.bool)
        keep_scores = bool(return_dict_in_generate and output_scores)
        # The scores of every step (B, N, V), written one step at a time (the loop's shapes are fixed).
        scores = tf.zeros(tf.stack([tf.shape(ids)[0], N, config.vocab_size]) if keep_scores else [0], tf.float32)

        def record(step, logits, tokens, finished, scores):
            if bad_words:
                logits = _ban_bad_words(logits, tf.concat([ids, tokens], axis=1), T + step, bad_words)
            token, step_scores = pick(logits, step)
            token = tf.where(finished, pad, token)
            at_step = tf.range(N)[None, :] == step
            tokens = tf.where(at_step, token[:, None], tokens)
            if keep_scores:
                scores = tf.where(at_step[:, :, None], step_scores[:, None, :], scores)
            return token, tokens, finished | tf.reduce_any(token[:, None] == eos[None, :], axis=1), scores

        def decode(step, logits, cache, cache_mask, position, tokens, finished, scores):
            token, tokens, finished, scores = record(step, logits, tokens, finished, scores)
            cache_mask = tf.concat([cache_mask, tf.ones_like(cache_mask[:, :1])], axis=1)
            out = self(input_ids=token[:, None], attention_mask=cache_mask, position_ids=position,
                       past_key_values=cache, use_cache=True)
            cache = tuple(tuple(t[:, :, 1:] for t in entry) for entry in out.past_key_values)
            logits = tf.cast(out.logits[:, -1], tf.float32)
            return step + 1, logits, cache, cache_mask[:, 1:], position + 1, tokens, finished, scores

        def unfinished(step, logits, cache, cache_mask, position, tokens, finished, scores):
            return (step < N - 1) & ~tf.reduce_all(finished)

        step, logits, _, _, _, tokens, finished, scores = tf.while_loop(
            unfinished, decode, (tf.constant(0), logits, cache, cache_mask, position, tokens, finished, scores)
        )
        made = N
        if tf.executing_eagerly() and bool(tf.reduce_all(finished)):
            made = int(step)
            tokens = tokens[:, :made]  # every row stopped early: no columns of padding only
        else:
            _, tokens, _, scores = record(step, logits, tokens, finished, scores)  # the last token needs no model step
            if tf.executing_eagerly():
                made = int(step) + 1
        sequences = tf.concat([input_ids, tf.cast(tokens, input_ids.dtype)], axis=1)
        if not return_dict_in_generate:
            return sequences
        return GenerateDecoderOnlyOutput(
            sequences=sequences, scores=tuple(scores[:, i] for i in range(made)) if keep_scores else None
        )


@keras.saving.register_keras_serializable(package="roberta_tf")
class TFRobertaForMaskedLM(TFRobertaPreTrainedModel):
    """RoBERTa's pretraining objective: logits (B, T, V) for every position; the loss over the
    positions whose label is not -100."""

    head = "masked_lm"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None, **kwargs):
        super().__init__(config, attn_implementation=attn_implementation, **kwargs)
        config = self.config  # a family class's (its model_type set)
        if config.is_decoder:
            warnings.warn("TFRobertaForMaskedLM should attend both ways: build it with is_decoder=False", stacklevel=2)
        self.roberta = TFRobertaModel(
            config, add_pooling_layer=False, attn_implementation=self.attn_implementation, dtype=self.dtype_policy,
            name="roberta",
        )
        self.lm_head = TFRobertaLMHead(
            config, self.roberta.embeddings.word_embeddings, dtype=self.dtype_policy, name="lm_head"
        )
        self.build()

    def build(self, input_shape=None):
        self.lm_head.build()

    def hf_compute_loss(self, labels: tf.Tensor, outputs: Mapping[str, Any] | tf.Tensor) -> tf.Tensor:
        logits = _logits_of(outputs)
        _, labels = _check_labels(self.head, self.config, labels, *shape_of(logits)[:2])
        return masked_lm_loss(logits, labels)

    def call(
        self,
        input_ids: Optional[tf.Tensor] = None,
        attention_mask: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        inputs_embeds: Optional[tf.Tensor] = None,
        encoder_hidden_states: Optional[tf.Tensor] = None,
        encoder_attention_mask: Optional[tf.Tensor] = None,
        labels: Optional[tf.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        training: bool = False,
        unpad: bool | int = False,
        masked_positions_only: bool = False,
    ) -> MaskedLMOutput | tuple:
        """labels (B, T): the original ids at masked positions, -100 elsewhere.

        `unpad`: see TFRobertaModel; the logits at padding positions are then zeros (not computed).
        `masked_positions_only` (training, as fairseq): the LM head runs only where labels are not
        -100, and `logits` are those rows, (M, V) in row-major order of the positions. The
        decoder (H x V) is about a third of the forward's work, and MLM labels 15% of the tokens:
        the loss and its gradients are the same, for much less work. Needs labels. Under XLA
        shapes are static: give M itself, `masked_positions_only=M` (a Python int >= the labelled
        positions; the rows after theirs are zeros; too few rows give a NaN loss, never a loss over
        some of the labels; eagerly, an error); True there runs the head on all B * T rows,
        labelled first, and returns the M labelled ones (the same loss, without the saving: one
        shape per size compiles in seconds, where a branch per size took minutes)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        rows = masked_rows(labels is not None, masked_positions_only)
        outputs = self.roberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training, unpad=unpad,
        )
        hidden = outputs.last_hidden_state
        out = MaskedLMOutput(hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        if rows is not None:
            _, labels = _check_labels(self.head, self.config, labels, *shape_of(hidden)[:2])
            out.logits, loss = self._labelled_logits(hidden, labels, rows)
            out.loss = tf.reshape(loss, (1,))
        else:
            out.logits = _per_token(self.lm_head, hidden, packing_for(attention_mask, unpad))
            if labels is not None:
                out.loss = self.hf_compute_loss(labels, out)
        return out if return_dict else out.to_tuple()

    def _labelled_logits(self, hidden: tf.Tensor, labels: tf.Tensor, rows: bool | int) -> tuple[tf.Tensor, tf.Tensor]:
        """The LM head at the labelled positions only, as a packed stream of them: logits (M, V)
        and their loss, or (rows, V) for an int `rows` (zeros after the labelled ones). (B, T, H),
        (B, T) -> (M or rows, V), scalar."""
        labelled = tf.not_equal(labels, IGNORE_INDEX)
        if rows is True and not in_xla():
            packing = pack(labelled)  # the exact stream: dynamic shapes
            logits = self.lm_head(unpad_rows(hidden, packing))  # (M, V)
            return logits, cross_entropy(logits, unpad_rows(labels, packing))
        # One static size (XLA): the labelled positions first, then the others, labelled -100.
        flat = tf.reshape(labelled, [-1])
        total = tf.size(flat)
        count = tf.reduce_sum(tf.cast(flat, tf.int32))
        index = _true_first(flat, count)  # (B * T,): labelled first, each in order
        if rows is not True:  # exactly `rows` rows: cut, or lengthened with position 0 (zeroed below)
            index = tf.pad(index, [[0, tf.maximum(0, rows - total)]])[:rows]
        logits = self.lm_head(tf.gather(tf.reshape(hidden, [-1, dims(hidden)[-1]]), index))  # (rows, V)
        first = tf.range(tf.shape(index)[0]) < count  # the labelled rows
        loss = cross_entropy(logits, tf.where(first, tf.gather(tf.reshape(labels, [-1]), index), IGNORE_INDEX))
        if rows is True:
            return tf.boolean_mask(logits, first), loss  # (M, V)
        if tf.executing_eagerly() and int(count) > rows:
            raise ValueError(f"masked_positions_only={rows} rows cannot hold the {int(count)} labelled positions")
        loss = tf.where(count <= rows, loss, tf.constant(float("nan"), loss.dtype))
        return tf.where(first[:, None], logits, tf.zeros_like(logits)), loss


@keras.saving.register_keras_serializable(package="roberta_tf")
class TFRobertaForSequenceClassification(TFRobertaPreTrainedModel):
    """Classification or regression of the whole sequence from `<s>`: logits (B, L). The loss
    follows `config.problem_type`, or v4's rule when it is None (one label: regression; integer
    labels: single-label; float labels: multi-label)."""

    head = "sequence_classification"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None, **kwargs):
        super().__init__(config, attn_implementation=attn_implementation, **kwargs)
        config = self.config  # a family class's (its model_type set)
        self.num_labels = config.num_labels
        self.roberta = TFRobertaModel(
            config, add_pooling_layer=False, attn_implementation=self.attn_implementation, dtype=self.dtype_policy,
            name="roberta",
        )
        self.classifier = TFRobertaClassificationHead(config, dtype=self.dtype_policy, name="classifier")
        self.build()

    def build(self, input_shape=None):
        self.classifier.build()

    def hf_compute_loss(self, labels: tf.Tensor, outputs: Mapping[str, Any] | tf.Tensor) -> tf.Tensor:
        logits = _logits_of(outputs)
        problem, labels = _check_labels(self.head, self.config, labels, *shape_of(logits)[:2])
        return sequence_classification_loss(logits, labels, problem)

    def call(
        self,
        input_ids: Optional[tf.Tensor] = None,
        attention_mask: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        inputs_embeds: Optional[tf.Tensor] = None,
        labels: Optional[tf.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        training: bool = False,
        unpad: bool | int = False,
    ) -> SequenceClassifierOutput | tuple:
        """labels: (B,) class ids, (B,) or (B, L) regression targets, or (B, L) 0/1 multi-label
        targets. `unpad`: see TFRobertaModel (the `<s>` state is a real token's)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.roberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training, unpad=unpad,
            first_token_only=_reads_first_token(self.classifier, TFRobertaClassificationHead),
        )
        out = SequenceClassifierOutput(
            logits=self.classifier(outputs.last_hidden_state, training=training),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        if labels is not None:
            out.loss = self.hf_compute_loss(labels, out)
        return out if return_dict else out.to_tuple()


@keras.saving.register_keras_serializable(package="roberta_tf")
class TFRobertaForMultipleChoice(TFRobertaPreTrainedModel):
    """Scores C candidate sequences per example: inputs (B, C, T) are flattened to (B * C, T),
    each pooled `<s>` state gets one score, logits (B, C)."""

    head = "multiple_choice"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None, **kwargs):
        super().__init__(config, attn_implementation=attn_implementation, **kwargs)
        config = self.config  # a family class's (its model_type set)
        self.roberta = TFRobertaModel(
            config, attn_implementation=self.attn_implementation, dtype=self.dtype_policy, name="roberta"
        )
        self.dropout = _dropout(config.hidden_dropout_prob, self.dtype_policy)
        self.classifier = _dense(config, 1, "classifier", self.dtype_policy)
        self.build()

    def build(self, input_shape=None):
        self.classifier.build((None, self.config.hidden_size))

    def hf_compute_loss(self, labels: tf.Tensor, outputs: Mapping[str, Any] | tf.Tensor) -> tf.Tensor:
        logits = _logits_of(outputs)
        B, C = shape_of(logits)
        _, labels = _check_labels(self.head, self.config, labels, B, 1, num_choices=C)
        return multiple_choice_loss(logits, labels)

    def call(
        self,
        input_ids: Optional[tf.Tensor] = None,
        attention_mask: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        inputs_embeds: Optional[tf.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        labels: Optional[tf.Tensor] = None,  # after the inputs, as v4 TF's positional order
        training: bool = False,
        unpad: bool | int = False,
    ) -> MultipleChoiceModelOutput | tuple:
        """input_ids (B, C, T) or inputs_embeds (B, C, T, H); the other inputs (B, C, T);
        labels (B,): the index of the right choice. (v4's argument order in this framework:
        attention_mask before token_type_ids, unlike PyTorch's.) `unpad`: see TFRobertaModel
        (choices are often short: it pays)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if input_ids is not None and input_ids.shape.rank != 3:
            raise ValueError(f"input_ids must have shape (batch, choices, length), got {tuple(input_ids.shape)}")
        if inputs_embeds is not None and inputs_embeds.shape.rank != 4:
            raise ValueError(
                f"inputs_embeds must have shape (batch, choices, length, hidden_size), got {tuple(inputs_embeds.shape)}"
            )
        if input_ids is None and inputs_embeds is None:
            raise ValueError(
                "give input_ids (batch, choices, length) or inputs_embeds (batch, choices, length, hidden_size)"
            )
        inputs = input_ids if input_ids is not None else inputs_embeds
        B, C, T = shape_of(inputs)[:3]

        def flat(x: Optional[tf.Tensor], name: str) -> Optional[tf.Tensor]:
            # (B, C, T, ...) -> (B * C, T, ...): every choice is a sequence of its own.
            if x is None:
                return None
            if shape_of(x)[:3] != (B, C, T):
                raise ValueError(
                    f"{name} must have shape ({B}, {C}, {T}) in front, like the inputs, got {tuple(x.shape)}"
                )
            return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))

        outputs = self.roberta(
            flat(input_ids, "input_ids"), attention_mask=flat(attention_mask, "attention_mask"),
            token_type_ids=flat(token_type_ids, "token_type_ids"), position_ids=flat(position_ids, "position_ids"),
            head_mask=head_mask, inputs_embeds=flat(inputs_embeds, "inputs_embeds"),
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            training=training, unpad=unpad, first_token_only=_reads_first_token(self.roberta.pooler, TFRobertaPooler),
        )
        pooled = self.dropout(outputs.pooler_output, training=training)
        out = MultipleChoiceModelOutput(
            logits=tf.reshape(self.classifier(pooled), (-1, tf.shape(inputs)[1])),  # (B, C)
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        if labels is not None:
            out.loss = self.hf_compute_loss(labels, out)
        return out if return_dict else out.to_tuple()


@keras.saving.register_keras_serializable(package="roberta_tf")
class TFRobertaForTokenClassification(TFRobertaPreTrainedModel):
    """A label per token (named entities, parts of speech): logits (B, T, L)."""

    head = "token_classification"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None, **kwargs):
        super().__init__(config, attn_implementation=attn_implementation, **kwargs)
        config = self.config  # a family class's (its model_type set)
        self.num_labels = config.num_labels
        self.roberta = TFRobertaModel(
            config, add_pooling_layer=False, attn_implementation=self.attn_implementation, dtype=self.dtype_policy,
            name="roberta",
        )
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = _dropout(dropout, self.dtype_policy)
        self.classifier = _dense(config, config.num_labels, "classifier", self.dtype_policy)
        self.build()

    def build(self, input_shape=None):
        self.classifier.build((None, None, self.config.hidden_size))

    def hf_compute_loss(self, labels: tf.Tensor, outputs: Mapping[str, Any] | tf.Tensor) -> tf.Tensor:
        logits = _logits_of(outputs)
        _, labels = _check_labels(self.head, self.config, labels, *shape_of(logits)[:2])
        return token_classification_loss(logits, labels)

    def call(
        self,
        input_ids: Optional[tf.Tensor] = None,
        attention_mask: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        inputs_embeds: Optional[tf.Tensor] = None,
        labels: Optional[tf.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        training: bool = False,
        unpad: bool | int = False,
    ) -> TokenClassifierOutput | tuple:
        """labels (B, T): class ids, -100 for positions to ignore (padding, word pieces). `unpad`:
        see TFRobertaModel; the logits at padding positions are then zeros."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.roberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training, unpad=unpad,
        )
        out = TokenClassifierOutput(
            logits=_per_token(lambda x: self.classifier(self.dropout(x, training=training)), outputs.last_hidden_state,
                              packing_for(attention_mask, unpad)),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        if labels is not None:
            out.loss = self.hf_compute_loss(labels, out)
        return out if return_dict else out.to_tuple()


@keras.saving.register_keras_serializable(package="roberta_tf")
class TFRobertaForQuestionAnswering(TFRobertaPreTrainedModel):
    """Extractive question answering: a start and an end score per token, (B, T) each."""

    head = "question_answering"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None, **kwargs):
        super().__init__(config, attn_implementation=attn_implementation, **kwargs)
        config = self.config  # a family class's (its model_type set)
        self.roberta = TFRobertaModel(
            config, add_pooling_layer=False, attn_implementation=self.attn_implementation, dtype=self.dtype_policy,
            name="roberta",
        )
        self.num_labels = config.num_labels  # v4's attribute
        # num_labels outputs, as v4 (its checkpoints must load); the call needs two.
        self.qa_outputs = _dense(config, config.num_labels, "qa_outputs", self.dtype_policy)
        self.build()

    def build(self, input_shape=None):
        self.qa_outputs.build((None, None, self.config.hidden_size))

    def hf_compute_loss(self, labels: Mapping[str, tf.Tensor], outputs: Mapping[str, Any] | tuple) -> tf.Tensor:
        """labels: {'start_positions': (B,), 'end_positions': (B,)} (or v4's 'start_position' /
        'end_position'); outputs: ours, or v4's (start_logits, end_logits)."""
        if isinstance(outputs, Mapping):
            outputs = (outputs["start_logits"], outputs["end_logits"])
        batch, length = shape_of(outputs[0])
        # v4's own call named them 'start_position' / 'end_position'.
        given = [labels[name] if name in labels else labels[name[:-1]] for name in ("start_positions", "end_positions")]
        positions = [_check_labels(self.head, self.config, p, batch, length)[1] for p in given]
        return question_answering_loss(*outputs, *positions)

    def call(
        self,
        input_ids: Optional[tf.Tensor] = None,
        attention_mask: Optional[tf.Tensor] = None,
        token_type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        head_mask: Optional[tf.Tensor] = None,
        inputs_embeds: Optional[tf.Tensor] = None,
        start_positions: Optional[tf.Tensor] = None,
        end_positions: Optional[tf.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        training: bool = False,
        unpad: bool | int = False,
    ) -> QuestionAnsweringModelOutput | tuple:
        """start_positions, end_positions (B,): token indices of the answer span (the loss needs both).
        `unpad`: see TFRobertaModel; padding positions then get the dtype's minimum as logits, so
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
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, training=training, unpad=unpad,
        )
        packing = packing_for(attention_mask, unpad)
        logits = _per_token(self.qa_outputs, outputs.last_hidden_state, packing)  # (B, T, 2)
        if packing is not None:
            logits = tf.where(packing.mask[..., None], logits, tf.constant(logits.dtype.min, logits.dtype))
        out = QuestionAnsweringModelOutput(
            start_logits=logits[..., 0],
            end_logits=logits[..., 1],
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        if start_positions is not None:
            out.loss = self.hf_compute_loss({"start_positions": start_positions, "end_positions": end_positions}, out)
        return out if return_dict else out.to_tuple()
