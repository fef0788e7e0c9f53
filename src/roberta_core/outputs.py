"""Model outputs with the field names of `transformers` v4, shared by every backend.

An output is an ordered mapping that leaves out fields that are None, with attribute access
(`out.logits`), key access (`out["logits"]`) and index access over the present fields in
declaration order (`out[0]`, `out.to_tuple()`), as in v4; as in v4, item assignment may add
other keys (`out["input_ids"] = ...`), which follow the fields. The classes hold whatever array type
the backend produces; they import no framework. Backends register them with their tree
utilities (torch pytree, JAX pytree) so they pass through `torch.compile`, `jax.jit` and
`tf.function`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable

__all__ = [
    "ModelOutput",
    "BaseModelOutputWithPoolingAndCrossAttentions",
    "BaseModelOutputWithPastAndCrossAttentions",
    "CausalLMOutputWithCrossAttentions",
    "MaskedLMOutput",
    "SequenceClassifierOutput",
    "MultipleChoiceModelOutput",
    "TokenClassifierOutput",
    "QuestionAnsweringModelOutput",
    "GenerateDecoderOnlyOutput",
    "OUTPUT_CLASSES",
]


class ModelOutput(OrderedDict):
    """Base of every output class; subclasses list their fields in `fields`."""

    fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()
        if len(args) > 1:
            raise TypeError(f"{type(self).__name__} takes at most one positional argument (a mapping or pairs)")
        unknown = set(kwargs) - set(self.fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}; fields are {self.fields}")
        items: Iterable[tuple[str, Any]] = ()
        if args:
            # tf.nest and other tree utilities rebuild a mapping from (key, value) pairs; as in v4,
            # such a mapping may hold keys beyond the fields (see __setitem__).
            items = args[0].items() if hasattr(args[0], "items") else args[0]
        values = dict(items)
        values.update(kwargs)
        for name in self.fields:
            if values.get(name) is not None:
                super().__setitem__(name, values[name])
        for name, value in values.items():
            if name not in self.fields:
                self[name] = value

    def __getattr__(self, name: str) -> Any:
        if name in type(self).fields:
            return self.get(name)
        if not name.startswith("__") and name in self:
            return super().__getitem__(name)  # a key added by item assignment
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).fields or name in self:
            self[name] = value
        else:
            super().__setattr__(name, value)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"{type(self).__name__} keys are strings, got {key!r}")
        if key not in self.fields:
            # v4 lets item assignment add any key (its fill-mask pipeline stores `input_ids` in the
            # model's output); such keys follow the fields and are attributes too.
            super().__setitem__(key, value)
            return
        if value is None:
            self.pop(key, None)
            return
        # Keep declaration order whatever the order of assignment; added keys stay last.
        position = self.fields.index(key)
        rest = {k: v for k, v in self.items() if k not in self.fields or self.fields.index(k) > position}
        for k in rest:
            super().__delitem__(k)
        super().__setitem__(key, value)
        for k, v in rest.items():
            super().__setitem__(k, v)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self, cache: bool = True) -> tuple[Any, ...]:
        """The present fields, in declaration order (v4's `return_dict=False` form); `cache=False`
        leaves `past_key_values` out, as v4's TF tuples always do and its Flax ones unless the call
        was given a cache (v4 PyTorch keeps it)."""
        return tuple(value for name, value in self.items() if cache or name != "past_key_values")

    def __reduce__(self):
        return (type(self), (dict(self),))


class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    """Encoder output. last_hidden_state (B, T, H); pooler_output (B, H); hidden_states: one
    (B, T, H) per layer plus the embeddings; attentions/cross_attentions: one (B, heads, T, S) per
    layer; past_key_values: per layer (key, value) each (B, heads, T_total, D), plus the
    cross-attention pair in decoder mode."""

    fields = (
        "last_hidden_state",
        "pooler_output",
        "hidden_states",
        "past_key_values",
        "attentions",
        "cross_attentions",
    )


class BaseModelOutputWithPastAndCrossAttentions(ModelOutput):
    """What the encoder (`RobertaEncoder`) returns, as v4: the fields of
    `BaseModelOutputWithPoolingAndCrossAttentions` less the pooled state."""

    fields = ("last_hidden_state", "past_key_values", "hidden_states", "attentions", "cross_attentions")


class CausalLMOutputWithCrossAttentions(ModelOutput):
    """Causal LM output. logits (B, T, V); loss: scalar, next-token cross-entropy."""

    fields = ("loss", "logits", "past_key_values", "hidden_states", "attentions", "cross_attentions")


class MaskedLMOutput(ModelOutput):
    """Masked LM output. logits (B, T, V); loss: scalar, cross-entropy ignoring -100."""

    fields = ("loss", "logits", "hidden_states", "attentions")


class SequenceClassifierOutput(ModelOutput):
    """Sequence classification output. logits (B, num_labels)."""

    fields = ("loss", "logits", "hidden_states", "attentions")


class MultipleChoiceModelOutput(ModelOutput):
    """Multiple choice output. logits (B, num_choices)."""

    fields = ("loss", "logits", "hidden_states", "attentions")


class TokenClassifierOutput(ModelOutput):
    """Token classification output. logits (B, T, num_labels)."""

    fields = ("loss", "logits", "hidden_states", "attentions")


class QuestionAnsweringModelOutput(ModelOutput):
    """Extractive QA output. start_logits, end_logits (B, T); loss: mean of the start and end losses."""

    fields = ("loss", "start_logits", "end_logits", "hidden_states", "attentions")


class GenerateDecoderOnlyOutput(ModelOutput):
    """What `generate(..., return_dict_in_generate=True)` returns, as v4. sequences (B, T + new);
    scores / logits: one (B, V) per new token, the processed scores the choice was made from
    (with `output_scores`) and the raw logits (with `output_logits`)."""

    fields = ("sequences", "scores", "logits", "attentions", "hidden_states", "past_key_values")


OUTPUT_CLASSES = (
    BaseModelOutputWithPoolingAndCrossAttentions,
    BaseModelOutputWithPastAndCrossAttentions,
    CausalLMOutputWithCrossAttentions,
    MaskedLMOutput,
    SequenceClassifierOutput,
    MultipleChoiceModelOutput,
    TokenClassifierOutput,
    QuestionAnsweringModelOutput,
    GenerateDecoderOnlyOutput,
)
