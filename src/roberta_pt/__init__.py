"""roberta_pt: RoBERTa in PyTorch — the encoder and its seven heads with the API, names and
checkpoint layout of Hugging Face `transformers` v4 (ARCHITECTURE §4), and v4's class names of
the RoBERTa family (`XLMRobertaForMaskedLM`, `CamembertModel`, `RobertaPreLayerNormForQuestionAnswering`,
...): the same classes with the member's `model_type` (`roberta_core.family`)."""

from roberta_core.auto import auto_model_classes
from roberta_core.family import family_aliases

from .heads import (
    RobertaForCausalLM,
    RobertaForMaskedLM,
    RobertaForMultipleChoice,
    RobertaForQuestionAnswering,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
)
from .modeling import RobertaModel, RobertaPreTrainedModel

_ROBERTA_CLASSES = [
    RobertaPreTrainedModel,
    RobertaModel,
    RobertaForCausalLM,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaForMultipleChoice,
    RobertaForTokenClassification,
    RobertaForQuestionAnswering,
]
_FAMILY_CLASSES = family_aliases(_ROBERTA_CLASSES)
globals().update(_FAMILY_CLASSES)
# v4's Auto classes (AutoModelForMaskedLM, ...): the family member by config.json's model_type
_AUTO_CLASSES = auto_model_classes(globals(), "")
globals().update(_AUTO_CLASSES)

__all__ = [cls.__name__ for cls in _ROBERTA_CLASSES] + list(_FAMILY_CLASSES) + list(_AUTO_CLASSES)
