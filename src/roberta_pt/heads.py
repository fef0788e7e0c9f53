"""PyTorch RoBERTa heads, in reading order: the losses, the two head modules (LM and
classification), then the six task models on top of `RobertaModel`, with `generate()` on
the causal LM. Each model checks its inputs before it computes and its labels before the loss
(clear errors, the same words in every backend).

Module and parameter names are v4's (`roberta`, `lm_head`, `classifier`, `qa_outputs`,
`dropout`), so v4 checkpoints load one to one. Shapes: B batch, C choices, T length,
H hidden size, V vocabulary, L labels. Master text of `roberta_tf/heads.py` and
`roberta_flax/heads.py`.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from roberta_core.backends import generation_step_inputs
from roberta_core.config import RobertaConfig
from roberta_core.generation import GenerationConfig, generate_keywords, generation_settings, repeated_ngram_bans
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

from ._framework import check_values, shape_of, vocabulary_projection
from .modeling import RobertaCache, RobertaModel, RobertaPooler, RobertaPreTrainedModel
from .peft_integration import one_cache, peft_cache_keyword
from .unpad import Packing, packing_for, repad, unpad_rows

__all__ = [
    "cross_entropy",
    "masked_lm_loss",
    "causal_lm_loss",
    "sequence_classification_loss",
    "multiple_choice_loss",
    "token_classification_loss",
    "question_answering_loss",
    "RobertaLMHead",
    "RobertaClassificationHead",
    "RobertaForCausalLM",
    "RobertaForMaskedLM",
    "RobertaForSequenceClassification",
    "RobertaForMultipleChoice",
    "RobertaForTokenClassification",
    "RobertaForQuestionAnswering",
]


# ---------------------------------------------------------------------------- losses

def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX, num_items: Any = None
) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not `ignore_index`; 0 (not NaN, as a plain
    mean would give) when every target is ignored. logits (N, K), targets (N,) -> scalar.
    Computed in float32 whatever the logits' dtype. `num_items`: divide the sum by it instead
    (v4's `num_items_in_batch`: the count over all the micro-batches of an accumulated step)."""
    total = F.cross_entropy(logits.float(), targets.long(), ignore_index=ignore_index, reduction="sum")
    if num_items is not None:
        return total / (num_items.to(total.device) if torch.is_tensor(num_items) else num_items)
    count = (targets != ignore_index).sum()
    return total / count.clamp(min=1)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Masked LM: cross-entropy over the positions whose label is not -100. (B, T, V), (B, T) -> scalar."""
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, num_items_in_batch: Any = None,
    ignore_index: int = IGNORE_INDEX, shift_labels: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Causal LM: the logits at position t predict the label at t + 1 (labels are the inputs,
    not shifted by the caller); -100 is ignored. (B, T, V), (B, T) -> scalar. The keywords are
    v4's loss keywords (Trainer passes `num_items_in_batch`; `shift_labels` (B, T): the targets
    already shifted, used as they are)."""
    if shift_labels is None:
        logits, shift_labels = logits[:, :-1], labels[:, 1:]
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), shift_labels.reshape(-1), ignore_index,
                         num_items_in_batch)


def sequence_classification_loss(logits: torch.Tensor, labels: torch.Tensor, problem_type: str) -> torch.Tensor:
    """By problem type: 'regression' mean squared error (one label: logits and labels squeezed),
    'single_label_classification' cross-entropy (-100 ignored), 'multi_label_classification'
    mean binary cross-entropy with logits over every (example, label). logits (B, L) -> scalar."""
    if problem_type == "regression":
        if logits.shape[-1] == 1:
            return F.mse_loss(logits.float().squeeze(), labels.float().squeeze())
        return F.mse_loss(logits.float(), labels.float())
    if problem_type == "single_label_classification":
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def multiple_choice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the choices. logits (B, C), labels (B,) -> scalar."""
    return cross_entropy(logits, labels)


def token_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per token, -100 ignored. (B, T, L), (B, T) -> scalar."""
    return masked_lm_loss(logits, labels)


def question_answering_loss(
    start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor, end_positions: torch.Tensor
) -> torch.Tensor:
    """Mean of the start and end cross-entropies. Positions outside the sequence are clamped to
    T, which is ignored (an answer truncated away teaches nothing). (B, T) logits, (B,) positions."""
    T = start_logits.shape[1]
    start = start_positions.reshape(-1).clamp(0, T)
    end = end_positions.reshape(-1).clamp(0, T)
    return (cross_entropy(start_logits, start, ignore_index=T) + cross_entropy(end_logits, end, ignore_index=T)) / 2


def _check_labels(head: str, config: RobertaConfig, labels: torch.Tensor, batch: int, length: int,
                  num_choices: Optional[int] = None) -> tuple[Optional[str], torch.Tensor]:
    """Shape, kind and range of `labels` for `head` (checked after the encoder, which checked the
    inputs and knows B and T); the problem type for sequence classification, and the labels
    (carrying the range check, under compilation)."""
    problem = check_labels(
        head, config, tuple(labels.shape), batch=batch, length=length,
        labels_are_integers=not labels.is_floating_point(), num_choices=num_choices,
    )
    upper = {
        "masked_lm": config.vocab_size,
        "causal_lm": config.vocab_size,
        "token_classification": config.num_labels,
        "multiple_choice": num_choices,
        "sequence_classification": config.num_labels if problem == "single_label_classification" else None,
    }.get(head)
    if upper is not None:
        labels = check_values("labels", labels, upper, allow_ignore=True, index=False)
    return problem, labels


def _reads_first_token(part: nn.Module, stock: type) -> bool:
    """Whether `part` (a head's classifier, a model's pooler) is the stock layer, which reads the
    `<s>` state alone: then the encoder's last layer may compute that position only. A replaced
    part, or one a hook watches, may read every position."""
    return type(part) is stock and not any(m._forward_hooks or m._forward_pre_hooks for m in part.modules())


def _per_token(head: nn.Module, hidden: torch.Tensor, packing: Optional[Packing]) -> torch.Tensor:
    """A token-level head on the states (B, T, H) -> (B, T, ...); under `unpad`, on the real
    tokens only, zeros at padding (the LM decoder is a third of the model's work)."""
    if packing is None:
        return head(hidden)
    return repad(head(unpad_rows(hidden, packing)), packing)


# ---------------------------------------------------------------------------- head modules

class RobertaLMHead(nn.Module):
    """States (B, T, H) -> vocabulary logits (B, T, V): dense -> gelu -> LayerNorm -> decoder.
    The decoder's weight is the word embedding table (tied by the model) and its bias is
    `lm_head.bias`, the name checkpoints use."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.dense(features))  # exact GELU whatever hidden_act says, as v4
        x = self.layer_norm(x)
        if torch.jit.is_scripting():
            return self.decoder(x)
        return vocabulary_projection(self.decoder, x)  # self.decoder(x), on CPU by the faster kernel


class RobertaClassificationHead(nn.Module):
    """Sentence-level classifier on the `<s>` token: (B, T, H) -> (B, L) through dropout ->
    dense -> tanh -> dropout -> out_proj."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features[:, 0])  # <s>, RoBERTa's [CLS]
        x = torch.tanh(self.dense(x))
        return self.out_proj(self.dropout(x))


# ---------------------------------------------------------------------------- task models

def _filter_logits(logits: torch.Tensor, top_k: Optional[int], top_p: Optional[float]) -> torch.Tensor:
    """Keep the `top_k` most likely tokens, then the smallest set whose probability reaches
    `top_p` (at least one); the rest get -inf. (B, V) -> (B, V)"""
    if top_k and top_k < logits.shape[-1]:  # 0 or None: no top-k filter, as v4
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the more likely tokens
        drop_sorted = before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _ban_repeated_ngrams(scores: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """v4's NoRepeatNGramLogitsProcessor: each token that would complete an n-gram already in
    the row's ids (B, S) gets -inf (`repeated_ngram_bans`). (B, V) -> (B, V)"""
    banned = torch.zeros_like(scores, dtype=torch.bool)
    for row, tokens in enumerate(repeated_ngram_bans(ids.tolist(), n)):
        banned[row, list(tokens)] = True
    return scores.masked_fill(banned, float("-inf"))


def _ban_bad_words(scores: torch.Tensor, ids: torch.Tensor, bad_words_ids: Sequence[Sequence[int]]) -> torch.Tensor:
    """v4's NoBadWordsLogitsProcessor: a one-token entry is never chosen; a longer one's last
    token gets -inf in a row whose ids (B, S) end with the entry's other tokens. (B, V) -> (B, V)"""
    banned = torch.zeros_like(scores, dtype=torch.bool)
    rows = ids.tolist()
    for entry in bad_words_ids:
        prefix, last = list(entry[:-1]), entry[-1]
        for r, row in enumerate(rows):
            if not prefix or row[len(row) - len(prefix):] == prefix:
                banned[r, last] = True
    return scores.masked_fill(banned, float("-inf"))


def _bad_words(value: Any, eos: Sequence[int], vocab_size: int) -> list[list[int]]:
    """v4's checks of `bad_words_ids` (a list of lists of token ids), less the entries that are
    one end-of-sequence token (v4 drops them)."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(e, (list, tuple)) and e for e in value):
        raise ValueError(f"`bad_words_ids` has to be a non-empty list of lists of token ids, but is {value}.")
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < vocab_size for e in value for i in e):
        raise ValueError(f"Each list in `bad_words_ids` has to be a list of token ids in [0, {vocab_size}), "
                         f"but is {value}.")
    return [list(e) for e in value if not (len(e) == 1 and e[0] in eos)]


class RobertaForCausalLM(RobertaPreTrainedModel):
    """Left-to-right language model (build with `is_decoder=True`): logits (B, T, V), the
    next-token loss, a key/value cache, and `generate()`."""

    head = "causal_lm"
    # v4's list: the decoder shares the word embeddings (and lm_head.bias); peft reads it
    _tied_weights_keys = ["lm_head.decoder.weight", "lm_head.decoder.bias"]
    # v4's Trainer passes `num_items_in_batch` to a model that takes loss keywords (v4's causal LM
    # does, through **kwargs; its other RoBERTa heads do not): the loss is then the sum over that count.
    accepts_loss_kwargs = True

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None):
        super().__init__(config, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        if not config.is_decoder:
            warnings.warn(
                f"{type(self).__name__} attends both ways unless the config has is_decoder=True", stacklevel=2
            )
        self.roberta = RobertaModel(self.config, add_pooling_layer=False, attn_implementation=self.attn_implementation)
        self.lm_head = RobertaLMHead(config)
        self.generation_config = GenerationConfig.from_model_config(self.config)  # v4's; from_pretrained reads the file's
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        past_key_values: Any = None,
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        cache_position: Optional[torch.Tensor] = None,
        unpad: bool | int = False,
        cache: Any = None,
        **loss_kwargs: Any,
    ) -> CausalLMOutputWithCrossAttentions | tuple:
        """labels (B, T): the input ids themselves (shifted inside), -100 to ignore. `unpad`: see
        RobertaModel; the logits at padding positions are then zeros (not computed).
        `past_key_values`: see RobertaModel (a cache object is filled in place and returned; with
        `use_cache` and none, a new RobertaCache). `cache_position`: v4's, passed on to the cache
        (the positions come from `position_ids` or the cache). `loss_kwargs`: v4's loss keywords
        `num_items_in_batch`, `ignore_index`, `shift_labels` (see `causal_lm_loss`); keywords, as
        v4 takes them (Trainer reads a forward's named parameters with "label" in them as labels).
        `cache`: see RobertaModel (transformers 5.24's name for `past_key_values`)."""
        past_key_values = one_cache(past_key_values, cache)
        unknown = sorted(set(loss_kwargs) - {"num_items_in_batch", "ignore_index", "shift_labels"})
        if unknown:
            raise TypeError(f"{type(self).__name__}.forward() got unexpected keyword argument(s) {', '.join(unknown)}")
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if labels is not None:
            use_cache = False  # training: no cache to keep (v4)
        outputs = self.roberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values, use_cache=use_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            cache_position=cache_position, unpad=unpad,
        )
        if labels is not None:
            _, labels = _check_labels(self.head, self.config, labels, *outputs.last_hidden_state.shape[:2])
        # With a cache the mask also covers the cached positions: the head then runs on every row.
        packing = packing_for(attention_mask, unpad if past_key_values is None else False)
        logits = _per_token(self.lm_head, outputs.last_hidden_state, packing)
        out = CausalLMOutputWithCrossAttentions(
            loss=None if labels is None else causal_lm_loss(logits, labels, **loss_kwargs),
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            cross_attentions=outputs.cross_attentions,
        )
        return out if return_dict else out.to_tuple()

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.Tensor,
        past_key_values: Any = None,
        attention_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """v4's inputs of one step of a generation loop, which `generate` calls each step (peft's
        prompt learning wraps it): the ids not yet seen — `cache_position` (B, new), as v4, else
        those past the cache — the mask over them all, and v4.57's position ids
        `attention_mask.cumsum(-1) - 1` (padding at 1), which v4's generation loop passes: they
        count from 0, not from RoBERTa's padding_idx + 1 as a forward call without them does.
        `inputs_embeds` (v4's): used instead of the ids while nothing is cached yet (the first step
        of `generate(inputs_embeds=...)`); the ids are then only those generated (v4's slicing:
        the last `cache_position` ones when the positions run past the ids)."""
        cache_position = kwargs.get("cache_position")
        if cache_position is not None:
            n = cache_position.shape[0]
            if inputs_embeds is not None or (n and int(cache_position[-1]) >= input_ids.shape[1]):
                input_ids = input_ids[:, input_ids.shape[1] - min(n, input_ids.shape[1]):]
            elif input_ids.shape[1] != n:
                input_ids = input_ids[:, cache_position]
            inputs = generation_step_inputs(input_ids, None, attention_mask, kwargs.get("use_cache"))
            inputs.update(past_key_values=past_key_values, cache_position=cache_position)
        else:
            inputs = generation_step_inputs(input_ids, past_key_values, attention_mask, kwargs.get("use_cache"))
        empty_cache = past_key_values is None or (hasattr(past_key_values, "get_seq_length")
                                                  and past_key_values.get_seq_length() == 0)
        if inputs_embeds is not None and empty_cache:
            inputs["inputs_embeds"], inputs["input_ids"] = inputs_embeds, None
        if attention_mask is not None and kwargs.get("position_ids") is None:
            width = (inputs["input_ids"] if inputs["input_ids"] is not None else inputs["inputs_embeds"]).shape[1]
            positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
            inputs["position_ids"] = positions[:, -width:]
        # Under the name peft's prompt learning looks for it (`cache` with peft >= 0.22 and
        # transformers >= 5.24): the forward takes either.
        inputs[peft_cache_keyword()] = inputs.pop("past_key_values", None)
        return inputs

    @torch.no_grad()
    def generate(
        self,
        inputs: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        max_new_tokens: Optional[int] = None,
        do_sample: Optional[bool] = None,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        eos_token_id: Optional[int | Sequence[int]] = None,
        pad_token_id: Optional[int] = None,
        seed: Optional[int] = None,
        max_length: Optional[int] = None,
        min_new_tokens: Optional[int] = None,
        repetition_penalty: Optional[float] = None,
        num_beams: Optional[int] = None,
        output_scores: Optional[bool] = None,
        output_logits: Optional[bool] = None,
        return_dict_in_generate: Optional[bool] = None,
        generation_config: Any = None,
        input_ids: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        num_return_sequences: Optional[int] = None,
        no_repeat_ngram_size: Optional[int] = None,
        stopping_criteria: Any = None,
        output_hidden_states: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        **kwargs: Any,
    ) -> torch.Tensor | GenerateDecoderOnlyOutput:
        """Continue each prompt as v4's `generate` does: greedy (argmax), or sampled with
        `temperature`, `top_k` (50 unless given, as v4), `top_p` (seeded by `seed`); each setting
        not given comes from `generation_config` (a `GenerationConfig`, v4's, or a mapping), then
        `self.generation_config`. Length: `max_new_tokens`, else `max_length` counting the prompt,
        else 20 new tokens (v4's PyTorch default); `min_new_tokens` keeps the end-of-sequence token out until then;
        `repetition_penalty` (v4's: a seen token's logit divided by it, or multiplied when
        negative). input_ids (B, T), with padding on either side marked by attention_mask (B, T).
        A row that emits `eos_token_id` (default the config's; an empty list never stops) is
        finished and then filled with `pad_token_id`; generation ends when every row is finished.
        Returns (B, T + new) ids — the prompts as given, then the new tokens — or, with
        `return_dict_in_generate`, v4's output: `sequences`, and one (B, V) per step in `scores`
        (`output_scores`: the scores the choice was made from) and `logits` (`output_logits`), and
        `past_key_values`: as v4's, a DynamicCache-like cache of (k, v) per layer (B, h, S, D) over
        every position but the last token's (the RobertaCache's `self_attention_cache`).

        Each step runs `prepare_inputs_for_generation` and the model, as v4's loop (so v4.57's
        position ids, and peft's prompt tuning, apply). Right-padded prompts are first moved
        right-aligned (their padding first), so each row continues its own last token. Beam
        search is not implemented: `num_beams` must be 1.

        v4's keywords: `inputs` (v4's name of the prompt ids; or `input_ids=`), `token_type_ids`
        (B, T) (each new token takes its row's last type, as v4), `num_return_sequences` (when
        sampling, each prompt repeated that many times; greedy: 1), `no_repeat_ngram_size` (v4's
        NoRepeatNGramLogitsProcessor: a token that would repeat an n-gram of the ids so far gets
        -inf), `stopping_criteria` (v4's StoppingCriteria or callables `(ids, scores) -> bool (B,)`:
        a row is finished once one is true of it; `scores` as v4 passes them: the step scores kept,
        else None), and with `return_dict_in_generate`, `output_hidden_states` / `output_attentions`:
        one tuple per step of the model's per-layer tensors. `use_cache` (default the generation
        config's, else True): False runs every step on every position and returns no cache, as v4;
        `inputs_embeds` (B, T, H): the prompt as embeddings (with `input_ids` too, those are returned
        first; without, only the new tokens), `past_key_values`: a previous call's cache to continue
        from (its positions are not run again); with no prompt, one `bos_token_id` per row (v4).
        `bad_words_ids` (v4's NoBadWordsLogitsProcessor) and `remove_invalid_values` (nan -> 0,
        infinities -> the dtype's extremes) as v4. A config that is not a decoder generates as v4's
        does: the prompt attends both ways, each new token over the cache. `early_stopping`,
        `synced_gpus` and v4's other settings that change no token here are accepted; v4 settings
        not implemented are a NotImplementedError naming them unless at v4's default.
        """
        # v4's model keywords that steer the loop: the cache (or none: each step runs on every
        # position), a prompt given as embeddings, a cache to continue from (a previous call's).
        use_cache = kwargs.pop("use_cache", None)
        inputs_embeds = kwargs.pop("inputs_embeds", None)
        past_key_values = kwargs.pop("past_key_values", None)
        extra = generate_keywords(kwargs, taken=("bad_words_ids", "remove_invalid_values"))
        if inputs is not None and input_ids is not None:
            raise ValueError("`inputs` were passed alongside `input_ids`, which is not allowed: give one of them")
        input_ids = inputs if inputs is not None else input_ids
        config = self.config
        settings = generation_settings(
            self.generation_config, config, max_new_tokens=max_new_tokens, do_sample=do_sample,
            temperature=temperature, top_k=top_k, top_p=top_p, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            max_length=max_length, min_new_tokens=min_new_tokens, repetition_penalty=repetition_penalty,
            num_beams=num_beams, output_scores=output_scores, output_logits=output_logits,
            return_dict_in_generate=return_dict_in_generate, generation_config=generation_config,
            num_return_sequences=num_return_sequences, no_repeat_ngram_size=no_repeat_ngram_size,
            implemented=("num_return_sequences", "no_repeat_ngram_size", "bad_words_ids", "remove_invalid_values"),
            **extra,
        )
        if use_cache is None:  # v4: the call's, else the generation config given, else the model's (default True)
            use_cache = next((getattr(c, "use_cache") for c in (generation_config, self.generation_config)
                              if getattr(c, "use_cache", None) is not None), True)
        use_cache = bool(use_cache)
        if input_ids is None:  # v4: the prompt is the embeddings (no ids), else one bos token per row
            batch = next((t.shape[0] for t in (inputs_embeds, attention_mask, token_type_ids) if t is not None), 1)
            if inputs_embeds is not None:
                input_ids = torch.ones((batch, 0), dtype=torch.long, device=inputs_embeds.device)
            else:
                if settings["bos_token_id"] is None:
                    raise ValueError("`bos_token_id` has to be defined when no `input_ids` are provided.")
                input_ids = torch.full((batch, 1), int(settings["bos_token_id"]), dtype=torch.long, device=self.device)
        do_sample = bool(settings["do_sample"])
        copies, ngram = int(settings["num_return_sequences"]), int(settings["no_repeat_ngram_size"] or 0)
        if copies < 1 or ngram < 0:
            raise ValueError(f"num_return_sequences must be >= 1 and no_repeat_ngram_size >= 0, got {copies}, {ngram}")
        keep_dict = bool(settings["return_dict_in_generate"])
        want_hidden, want_attentions = bool(output_hidden_states), bool(output_attentions)
        criteria = [] if stopping_criteria is None else list(stopping_criteria)
        if copies > 1:  # v4's _expand_inputs_for_generation
            input_ids = input_ids.repeat_interleave(copies, dim=0)
            attention_mask = None if attention_mask is None else attention_mask.repeat_interleave(copies, dim=0)
            token_type_ids = None if token_type_ids is None else token_type_ids.repeat_interleave(copies, dim=0)
            inputs_embeds = None if inputs_embeds is None else inputs_embeds.repeat_interleave(copies, dim=0)
        T = input_ids.shape[1]  # the ids given (returned before the new tokens); the prompt may be embeddings
        B, P = check_forward_inputs(
            config, input_ids=None if inputs_embeds is not None else tuple(input_ids.shape),
            inputs_embeds=shape_of(inputs_embeds), attention_mask=shape_of(attention_mask),
        )
        if inputs_embeds is not None and T not in (0, P):
            raise ValueError(f"input_ids ({T} tokens) and inputs_embeds ({P} positions) must describe the same prompt")
        limit = max_length_for(config)
        max_new_tokens = new_token_count(T, settings["max_new_tokens"], settings["max_length"],
                                         default_counts_prompt=False, limit=limit)  # v4's PyTorch default: 20 new
        temperature, top_k, top_p = settings["temperature"], settings["top_k"], settings["top_p"]
        check_generation_args(
            max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, do_sample=do_sample,
            min_new_tokens=settings["min_new_tokens"], repetition_penalty=settings["repetition_penalty"],
        )
        if P + max_new_tokens > limit:
            raise ValueError(
                f"prompt length {P} + max_new_tokens {max_new_tokens} exceeds the {limit} positions this model serves"
            )
        input_ids = check_values("input_ids", input_ids, config.vocab_size)
        eos = settings["eos_token_id"]
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        eos = torch.tensor(eos, dtype=torch.long, device=input_ids.device)
        pad = config.pad_token_id if settings["pad_token_id"] is None else settings["pad_token_id"]
        min_new, penalty = settings["min_new_tokens"] or 0, settings["repetition_penalty"]
        bad_words = _bad_words(settings["bad_words_ids"], eos.tolist(), config.vocab_size)
        remove_invalid = bool(settings["remove_invalid_values"])
        generator = None
        if do_sample and seed is not None:
            generator = torch.Generator(device=input_ids.device).manual_seed(seed)

        if attention_mask is None:
            attention_mask = torch.ones((B, P), dtype=torch.long, device=input_ids.device)
        # Right-align every prompt (a stable sort puts the padding first, keeps token order).
        order = torch.sort(attention_mask.ne(0).int(), dim=1, stable=True).indices
        ids = torch.gather(input_ids, 1, order) if T else input_ids
        mask = torch.gather(attention_mask.ne(0).long(), 1, order)
        types = None if token_type_ids is None else torch.gather(token_type_ids, 1, order)
        embeds = None
        if inputs_embeds is not None:
            embeds = torch.gather(inputs_embeds, 1, order[..., None].expand(-1, -1, inputs_embeds.shape[-1]))

        # A cache to continue from (v4: the positions it holds are not run again); none without use_cache.
        past = None
        if use_cache:
            if past_key_values is None:
                # A decoder makes its own on the first step (peft's prompt learning, which wraps
                # prepare_inputs_for_generation, reads no cache as the first step); a model that is not
                # a decoder is given one, which it fills in place, as v4's generate does.
                past = None if config.is_decoder else RobertaCache.for_layers(config.num_hidden_layers)
            else:
                past = past_key_values if hasattr(past_key_values, "get_seq_length") else \
                    RobertaCache.from_legacy_cache(past_key_values)
        cached = 0 if past is None else past.get_seq_length()
        scores, raw, hidden, attentions = [], [], [], []
        finished = torch.zeros(B, dtype=torch.bool, device=ids.device)
        for step in range(max_new_tokens):
            L = mask.shape[1]
            start = (cached if step == 0 else L - 1) if use_cache else 0
            cache_position = torch.arange(start, L, device=ids.device)
            step_embeds = None
            if embeds is not None and step == 0:
                step_embeds = embeds
            elif embeds is not None and not use_cache and T == 0:  # no ids for the prompt: its embeddings again
                step_embeds = torch.cat([embeds, self.get_input_embeddings()(ids)], dim=1)
            inputs = self.prepare_inputs_for_generation(
                ids, past_key_values=past, attention_mask=mask, use_cache=use_cache, cache_position=cache_position,
                inputs_embeds=step_embeds,
            )
            if types is not None:
                inputs["token_type_ids"] = types[:, start:]
            out = self(**inputs, return_dict=True, output_hidden_states=want_hidden and keep_dict,
                       output_attentions=want_attentions and keep_dict)
            past = out.past_key_values if use_cache else None
            hidden.append(out.hidden_states)
            attentions.append(out.attentions)
            logits = out.logits[:, -1].float()  # (B, V)
            step_scores = logits
            if penalty is not None and penalty != 1.0:
                seen = torch.gather(step_scores, 1, ids)  # (B, T + step)
                seen = torch.where(seen < 0, seen * penalty, seen / penalty)
                step_scores = step_scores.scatter(1, ids, seen)
            if ngram > 0 and ids.shape[1] + 1 >= ngram:
                step_scores = _ban_repeated_ngrams(step_scores, ids, ngram)
            if bad_words:
                step_scores = _ban_bad_words(step_scores, ids, bad_words)
            if step < min_new and eos.numel():
                step_scores = step_scores.index_fill(1, eos, float("-inf"))
            if remove_invalid:  # v4's InfNanRemoveLogitsProcessor: nan -> 0, +-inf -> the dtype's extremes
                step_scores = torch.nan_to_num(step_scores, nan=0.0)
            if do_sample:
                step_scores = _filter_logits(step_scores / temperature, top_k, top_p)
                token = torch.multinomial(torch.softmax(step_scores, dim=-1), 1, generator=generator)[:, 0]
            else:
                token = step_scores.argmax(dim=-1)
            scores.append(step_scores)
            raw.append(logits)
            token = torch.where(finished, torch.full_like(token, pad), token)
            ids = torch.cat([ids, token[:, None].to(ids.dtype)], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            if types is not None:
                types = torch.cat([types, types[:, -1:]], dim=1)
            finished = finished | torch.isin(token, eos)
            if criteria:  # v4 calls them on the ids as given so far and the scores it keeps
                so_far = torch.cat([input_ids, ids[:, T:].to(input_ids.dtype)], dim=1)
                kept = tuple(scores) if keep_dict and settings["output_scores"] else None
                for criterion in criteria:
                    finished = finished | torch.as_tensor(criterion(so_far, kept), device=ids.device).bool()
            if bool(finished.all()):
                break
        sequences = torch.cat([input_ids, ids[:, T:].to(input_ids.dtype)], dim=1)
        if not keep_dict:
            return sequences
        return GenerateDecoderOnlyOutput(
            sequences=sequences, scores=tuple(scores) if settings["output_scores"] else None,
            logits=tuple(raw) if settings["output_logits"] else None,
            hidden_states=tuple(hidden) if want_hidden else None,
            attentions=tuple(attentions) if want_attentions else None,
            # v4's generate fills a DynamicCache (no cross-attention runs here): the self-attention's.
            past_key_values=getattr(past, "self_attention_cache", past),
        )


class RobertaForMaskedLM(RobertaPreTrainedModel):
    """RoBERTa's pretraining objective: logits (B, T, V) for every position; the loss over the
    positions whose label is not -100."""

    head = "masked_lm"
    _tied_weights_keys = ["lm_head.decoder.weight", "lm_head.decoder.bias"]  # v4's (peft reads it)

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None):
        super().__init__(config, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        if config.is_decoder:
            warnings.warn(
                f"{type(self).__name__} should attend both ways: build it with is_decoder=False", stacklevel=2
            )
        self.roberta = RobertaModel(self.config, add_pooling_layer=False, attn_implementation=self.attn_implementation)
        self.lm_head = RobertaLMHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        unpad: bool | int = False,
        masked_positions_only: bool | int = False,
    ) -> MaskedLMOutput | tuple:
        """labels (B, T): the original ids at masked positions, -100 elsewhere.

        `unpad`: see RobertaModel; the logits at padding positions are then zeros (not computed).
        `masked_positions_only` (training, as fairseq): the LM head runs only where labels are not
        -100, and `logits` are those rows, (M, V) in row-major order of the positions. The
        decoder (H x V) is about a third of the forward's work, and MLM labels 15% of the tokens:
        the loss and its gradients are the same, for much less work. Needs labels. An int M
        (>= the labelled positions) gives M rows, zeros after the labelled ones: a static shape
        (torch.compile, as XLA in the other backends); too few rows are an error eagerly and a
        NaN loss under compilation, never a loss over some of the labels."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        rows = masked_rows(labels is not None, masked_positions_only)
        outputs = self.roberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True, unpad=unpad,
        )
        if labels is not None:
            _, labels = _check_labels(self.head, self.config, labels, *outputs.last_hidden_state.shape[:2])
        hidden = outputs.last_hidden_state
        if rows is not None:
            logits, loss = self._labelled_logits(hidden, labels, rows)
        else:
            logits = _per_token(self.lm_head, hidden, packing_for(attention_mask, unpad))
            loss = None if labels is None else masked_lm_loss(logits, labels)
        out = MaskedLMOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()

    def _labelled_logits(self, hidden: torch.Tensor, labels: torch.Tensor, rows: bool | int) -> tuple[torch.Tensor, torch.Tensor]:
        """The LM head at the labelled positions only, as a packed stream of them: logits (M, V)
        and their loss, or (rows, V) for an int `rows` (zeros after the labelled ones). (B, T, H),
        (B, T) -> (M or rows, V), scalar."""
        flat = labels.reshape(-1)
        labelled = flat.ne(IGNORE_INDEX)
        states = hidden.reshape(-1, hidden.shape[-1])
        if rows is True:
            index = labelled.nonzero().squeeze(1)  # one host sync, for the count
            logits = self.lm_head(states.index_select(0, index))  # (M, V)
            return logits, cross_entropy(logits, flat.index_select(0, index))
        # A static size: the labelled positions, then index B * T, a zero state labelled -100.
        total = flat.shape[0]
        index = torch.nonzero_static(labelled, size=rows, fill_value=total).squeeze(1)  # (rows,)
        logits = self.lm_head(F.pad(states, (0, 0, 0, 1)).index_select(0, index))
        loss = cross_entropy(logits, F.pad(flat, (0, 1), value=IGNORE_INDEX).index_select(0, index))
        count = labelled.sum()
        if not torch.compiler.is_compiling() and int(count) > rows:
            raise ValueError(f"masked_positions_only={rows} rows cannot hold the {int(count)} labelled positions")
        loss = torch.where(count <= rows, loss, torch.full_like(loss, float("nan")))
        return logits.masked_fill((index == total)[:, None], 0), loss


class RobertaForSequenceClassification(RobertaPreTrainedModel):
    """Classification or regression of the whole sequence from `<s>`: logits (B, L). The loss
    follows `config.problem_type`, or v4's rule when it is None (one label: regression; integer
    labels: single-label; float labels: multi-label)."""

    head = "sequence_classification"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None):
        super().__init__(config, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(self.config, add_pooling_layer=False, attn_implementation=self.attn_implementation)
        self.classifier = RobertaClassificationHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        past_key_values: Any = None,
        unpad: bool | int = False,
        cache: Any = None,
    ) -> SequenceClassifierOutput | tuple:
        """labels: (B,) class ids, (B,) or (B, L) regression targets, or (B, L) 0/1 multi-label
        targets. `unpad`: see RobertaModel (the `<s>` state is a real token's). `past_key_values`:
        a prefix of P key/value positions per layer (peft's prefix tuning; the mask is then (B, P + T));
        `cache`: its newer name (see RobertaModel)."""
        past_key_values = one_cache(past_key_values, cache)
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.roberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, past_key_values=past_key_values,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            unpad=unpad,
            first_token_only=_reads_first_token(self.classifier, RobertaClassificationHead),
        )
        problem = None
        if labels is not None:
            problem, labels = _check_labels(self.head, self.config, labels, *outputs.last_hidden_state.shape[:2])
            if self.config.problem_type is None:
                # As v4's PyTorch class: the first labels seen fix the problem type, which a save keeps.
                self.config.problem_type = problem
        logits = self.classifier(outputs.last_hidden_state)
        out = SequenceClassifierOutput(
            loss=None if labels is None else sequence_classification_loss(logits, labels, problem),
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


class RobertaForMultipleChoice(RobertaPreTrainedModel):
    """Scores C candidate sequences per example: inputs (B, C, T) are flattened to (B * C, T),
    each pooled `<s>` state gets one score, logits (B, C)."""

    head = "multiple_choice"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None):
        super().__init__(config, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        self.roberta = RobertaModel(self.config, attn_implementation=self.attn_implementation)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        unpad: bool | int = False,
    ) -> MultipleChoiceModelOutput | tuple:
        """input_ids (B, C, T) or inputs_embeds (B, C, T, H); the other inputs (B, C, T);
        labels (B,): the index of the right choice. (v4's argument order: token_type_ids
        before attention_mask.) `unpad`: see RobertaModel (choices are often short: it pays)."""
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        if input_ids is not None and input_ids.dim() != 3:
            raise ValueError(f"input_ids must have shape (batch, choices, length), got {tuple(input_ids.shape)}")
        if inputs_embeds is not None and inputs_embeds.dim() != 4:
            raise ValueError(
                f"inputs_embeds must have shape (batch, choices, length, hidden_size), got {tuple(inputs_embeds.shape)}"
            )
        if input_ids is None and inputs_embeds is None:
            raise ValueError(
                "give input_ids (batch, choices, length) or inputs_embeds (batch, choices, length, hidden_size)"
            )
        B, C, T = (input_ids if input_ids is not None else inputs_embeds).shape[:3]

        def flat(x: Optional[torch.Tensor], name: str) -> Optional[torch.Tensor]:
            # (B, C, T, ...) -> (B * C, T, ...): every choice is a sequence of its own.
            if x is None:
                return None
            if tuple(x.shape[:3]) != (B, C, T):
                raise ValueError(f"{name} must have leading shape ({B}, {C}, {T}) like the inputs, got {tuple(x.shape)}")
            return x.reshape(B * C, *x.shape[2:])

        if labels is not None:
            _, labels = _check_labels(self.head, self.config, labels, B, T, num_choices=C)
        outputs = self.roberta(
            flat(input_ids, "input_ids"), attention_mask=flat(attention_mask, "attention_mask"),
            token_type_ids=flat(token_type_ids, "token_type_ids"), position_ids=flat(position_ids, "position_ids"),
            head_mask=head_mask, inputs_embeds=flat(inputs_embeds, "inputs_embeds"),
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            unpad=unpad, first_token_only=_reads_first_token(self.roberta.pooler, RobertaPooler),
        )
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(B, C)  # (B, C)
        out = MultipleChoiceModelOutput(
            loss=None if labels is None else multiple_choice_loss(logits, labels),
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


class RobertaForTokenClassification(RobertaPreTrainedModel):
    """A label per token (named entities, parts of speech): logits (B, T, L)."""

    head = "token_classification"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None):
        super().__init__(config, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(self.config, add_pooling_layer=False, attn_implementation=self.attn_implementation)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        past_key_values: Any = None,
        unpad: bool | int = False,
        cache: Any = None,
    ) -> TokenClassifierOutput | tuple:
        """labels (B, T): class ids, -100 for positions to ignore (padding, word pieces). `unpad`:
        see RobertaModel; the logits at padding positions are then zeros. `past_key_values`: as
        RobertaForSequenceClassification's. `cache`: its newer name (see RobertaModel)."""
        past_key_values = one_cache(past_key_values, cache)
        return_dict = self.config.use_return_dict if return_dict is None else return_dict
        outputs = self.roberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, past_key_values=past_key_values,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            unpad=unpad,
        )
        if labels is not None:
            _, labels = _check_labels(self.head, self.config, labels, *outputs.last_hidden_state.shape[:2])
        # With a prefix the mask also covers the prefix positions: the head then runs on every row.
        logits = _per_token(lambda x: self.classifier(self.dropout(x)), outputs.last_hidden_state,
                            packing_for(attention_mask, unpad if past_key_values is None else False))
        out = TokenClassifierOutput(
            loss=None if labels is None else token_classification_loss(logits, labels),
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


class RobertaForQuestionAnswering(RobertaPreTrainedModel):
    """Extractive question answering: a start and an end score per token, (B, T) each."""

    head = "question_answering"

    def __init__(self, config: RobertaConfig, *, attn_implementation: Optional[str] = None):
        super().__init__(config, attn_implementation=attn_implementation)
        config = self.config  # a family class's (its model_type set)
        self.roberta = RobertaModel(self.config, add_pooling_layer=False, attn_implementation=self.attn_implementation)
        self.num_labels = config.num_labels  # v4's attribute
        # num_labels outputs, as v4 (its checkpoints must load); the forward needs two.
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        start_positions: Optional[torch.Tensor] = None,
        end_positions: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        past_key_values: Any = None,
        unpad: bool | int = False,
        cache: Any = None,
    ) -> QuestionAnsweringModelOutput | tuple:
        """start_positions, end_positions (B,): token indices of the answer span (the loss needs both).
        `unpad`: see RobertaModel; padding positions then get the dtype's minimum as logits, so
        that neither the loss nor an argmax sees them (v4 scores padding like any position, which
        changes its loss a little; without padding the two agree). `past_key_values`: as
        RobertaForSequenceClassification's. `cache`: its newer name (see RobertaModel)."""
        past_key_values = one_cache(past_key_values, cache)
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
            head_mask=head_mask, inputs_embeds=inputs_embeds, past_key_values=past_key_values,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            unpad=unpad,
        )
        if start_positions is not None:
            for positions in (start_positions, end_positions):
                _check_labels(self.head, self.config, positions, *outputs.last_hidden_state.shape[:2])
        packing = packing_for(attention_mask, unpad if past_key_values is None else False)
        logits = _per_token(self.qa_outputs, outputs.last_hidden_state, packing)  # (B, T, 2)
        if packing is not None:
            logits = logits.masked_fill(~packing.mask[..., None], torch.finfo(logits.dtype).min)
        start_logits, end_logits = logits[..., 0].contiguous(), logits[..., 1].contiguous()
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
