"""roberta_pt: RoBERTa in PyTorch — the encoder and its seven heads with the API, names and
checkpoint layout of Hugging Face `transformers` v4 (ARCHITECTURE §4)."""

from .heads import (
    RobertaForCausalLM,
    RobertaForMaskedLM,
    RobertaForMultipleChoice,
    RobertaForQuestionAnswering,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
)
from .modeling import RobertaModel, RobertaPreTrainedModel

__all__ = [
    "RobertaPreTrainedModel",
    "RobertaModel",
    "RobertaForCausalLM",
    "RobertaForMaskedLM",
    "RobertaForSequenceClassification",
    "RobertaForMultipleChoice",
    "RobertaForTokenClassification",
    "RobertaForQuestionAnswering",
]
