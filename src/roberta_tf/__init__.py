"""roberta_tf: RoBERTa in TensorFlow with Keras 3 — the encoder and its seven heads with the API,
names and checkpoint layout of Hugging Face `transformers` v4 (ARCHITECTURE §4), as `keras.Model`s,
and v4's class names of the RoBERTa family (`TFXLMRobertaForMaskedLM`, `TFCamembertModel`,
`TFRobertaPreLayerNormForQuestionAnswering`, ...): the same classes with the member's `model_type`
(`roberta_core.family`).

Needs Keras 3 running on TensorFlow (TF 2.16+ ships it as `tf.keras`; `transformers` v4's TF
code needed the frozen Keras 2, `tf-keras`).
"""

import os as _os

_backend = _os.environ.get("KERAS_BACKEND", "tensorflow")
if _backend != "tensorflow":
    raise ImportError(
        f"roberta_tf needs Keras' TensorFlow backend, but KERAS_BACKEND={_backend!r}; unset it or set "
        "KERAS_BACKEND=tensorflow (use roberta_pt or roberta_flax for PyTorch or JAX)"
    )

import keras as _keras  # noqa: E402

if not _keras.__version__.startswith("3.") or _keras.config.backend() != "tensorflow":
    raise ImportError(
        f"roberta_tf needs Keras 3 with the TensorFlow backend; found Keras {_keras.__version__} with the "
        f"{_keras.config.backend()!r} backend (see ~/.keras/keras.json or KERAS_BACKEND)"
    )

from roberta_core.auto import auto_model_classes  # noqa: E402
from roberta_core.family import family_aliases  # noqa: E402

from .heads import (  # noqa: E402
    TFRobertaForCausalLM,
    TFRobertaForMaskedLM,
    TFRobertaForMultipleChoice,
    TFRobertaForQuestionAnswering,
    TFRobertaForSequenceClassification,
    TFRobertaForTokenClassification,
)
from .modeling import TFRobertaModel, TFRobertaPreTrainedModel  # noqa: E402

_ROBERTA_CLASSES = [
    TFRobertaPreTrainedModel,
    TFRobertaModel,
    TFRobertaForCausalLM,
    TFRobertaForMaskedLM,
    TFRobertaForSequenceClassification,
    TFRobertaForMultipleChoice,
    TFRobertaForTokenClassification,
    TFRobertaForQuestionAnswering,
]
_FAMILY_CLASSES = family_aliases(_ROBERTA_CLASSES)
for _cls in _FAMILY_CLASSES.values():
    # Keras' `.keras` files name the class: `load_model` finds it registered, as the TFRoberta* ones.
    _keras.saving.register_keras_serializable(package="roberta_tf")(_cls)
globals().update(_FAMILY_CLASSES)
# v4's Auto classes (TFAutoModelForMaskedLM, ...): the family member by config.json's model_type
_AUTO_CLASSES = auto_model_classes(globals(), "TF")
globals().update(_AUTO_CLASSES)

__all__ = [cls.__name__ for cls in _ROBERTA_CLASSES] + list(_FAMILY_CLASSES) + list(_AUTO_CLASSES)
