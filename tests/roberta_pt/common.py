"""What the PyTorch backend's tests share: building a head from random canonical weights and
running the float64 NumPy reference (roberta_core.reference) on the same inputs."""

from __future__ import annotations

import numpy as np
import torch

from roberta_core import reference
from roberta_pt import (
    RobertaForCausalLM,
    RobertaForMaskedLM,
    RobertaForMultipleChoice,
    RobertaForQuestionAnswering,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
)
from roberta_pt.convert import from_canonical
from tests.helpers import random_state

CLASSES = {
    "model": RobertaModel,
    "causal_lm": RobertaForCausalLM,
    "masked_lm": RobertaForMaskedLM,
    "sequence_classification": RobertaForSequenceClassification,
    "multiple_choice": RobertaForMultipleChoice,
    "token_classification": RobertaForTokenClassification,
    "question_answering": RobertaForQuestionAnswering,
}


def build(head: str, config, seed: int = 0, **kwargs):
    """(model in eval mode, canonical state): a PyTorch `head` model holding
    `random_state(config, head, seed)`."""
    state = random_state(config, head, seed)
    model = CLASSES[head](config, **kwargs)
    from_canonical(model, state)
    return model.eval(), state


def t(array):
    """NumPy -> torch, integers as int64."""
    array = np.asarray(array)
    return torch.from_numpy(array.astype(np.int64) if array.dtype.kind in "iu" else array)


def run_reference(config, state, head, **inputs):
    """The float64 reference on the same inputs (tensors converted to NumPy)."""
    def np_(x):
        if isinstance(x, torch.Tensor):
            return x.detach().double().numpy() if x.is_floating_point() else x.numpy()
        if isinstance(x, (tuple, list)):
            return type(x)(np_(v) for v in x)
        return x

    return reference.forward(config, state, head, **{k: np_(v) for k, v in inputs.items()})
