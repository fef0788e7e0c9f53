"""roberta_flax: RoBERTa in Flax (NNX) — the encoder and its seven heads with the API, names and
checkpoint layout of Hugging Face `transformers` v4 (ARCHITECTURE §4); `jax.jit`, `nnx.remat`,
sharding on a mesh, and value checks under jit (`checked`)."""

from .heads import (
    FlaxRobertaForCausalLM,
    FlaxRobertaForMaskedLM,
    FlaxRobertaForMultipleChoice,
    FlaxRobertaForQuestionAnswering,
    FlaxRobertaForSequenceClassification,
    FlaxRobertaForTokenClassification,
)
from .modeling import LOGICAL_AXIS_RULES, FlaxRobertaModel, FlaxRobertaPreTrainedModel, checked

__all__ = [
    "FlaxRobertaPreTrainedModel",
    "FlaxRobertaModel",
    "FlaxRobertaForCausalLM",
    "FlaxRobertaForMaskedLM",
    "FlaxRobertaForSequenceClassification",
    "FlaxRobertaForMultipleChoice",
    "FlaxRobertaForTokenClassification",
    "FlaxRobertaForQuestionAnswering",
    "LOGICAL_AXIS_RULES",
    "checked",
]
