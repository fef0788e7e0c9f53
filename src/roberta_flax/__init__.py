"""roberta_flax: RoBERTa in Flax (NNX) — the encoder and its seven heads with the API, names and
checkpoint layout of Hugging Face `transformers` v4 (ARCHITECTURE §4), and v4's class names of
the RoBERTa family (`FlaxXLMRobertaForMaskedLM`, `FlaxCamembertModel`,
`FlaxRobertaPreLayerNormForQuestionAnswering`, ...): the same classes with the member's
`model_type` (`roberta_core.family`); `jax.jit`, `nnx.remat`, sharding on a mesh, and value
checks under jit (`checked`)."""

from roberta_core.auto import auto_model_classes
from roberta_core.family import family_aliases

from .heads import (
    FlaxRobertaForCausalLM,
    FlaxRobertaForMaskedLM,
    FlaxRobertaForMultipleChoice,
    FlaxRobertaForQuestionAnswering,
    FlaxRobertaForSequenceClassification,
    FlaxRobertaForTokenClassification,
)
from .modeling import LOGICAL_AXIS_RULES, FlaxRobertaModel, FlaxRobertaPreTrainedModel, checked

_ROBERTA_CLASSES = [
    FlaxRobertaPreTrainedModel,
    FlaxRobertaModel,
    FlaxRobertaForCausalLM,
    FlaxRobertaForMaskedLM,
    FlaxRobertaForSequenceClassification,
    FlaxRobertaForMultipleChoice,
    FlaxRobertaForTokenClassification,
    FlaxRobertaForQuestionAnswering,
]
_FAMILY_CLASSES = family_aliases(_ROBERTA_CLASSES)
globals().update(_FAMILY_CLASSES)
# v4's Auto classes (FlaxAutoModelForMaskedLM, ...): the family member by config.json's model_type
_AUTO_CLASSES = auto_model_classes(globals(), "Flax")
globals().update(_AUTO_CLASSES)

__all__ = [cls.__name__ for cls in _ROBERTA_CLASSES] + list(_FAMILY_CLASSES) + list(_AUTO_CLASSES) + ["LOGICAL_AXIS_RULES", "checked"]
