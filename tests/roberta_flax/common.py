"""Shared pieces of the Flax tests: the head classes, models holding `random_state` weights, and
one jitted forward whose compilations every test file reuses (tiny configs, the (3, 7) batch
of `padded_batch`: few shapes, few compiles)."""

from __future__ import annotations

import jax
from flax import nnx

import roberta_flax as rf
from roberta_flax.convert import from_canonical
from tests.helpers import random_state

# fp32 comparisons at 1e-5 need full-precision matmuls where the backend would cut them (GPU).
jax.config.update("jax_default_matmul_precision", "highest")

CLASSES = {
    "model": rf.FlaxRobertaModel,
    "causal_lm": rf.FlaxRobertaForCausalLM,
    "masked_lm": rf.FlaxRobertaForMaskedLM,
    "sequence_classification": rf.FlaxRobertaForSequenceClassification,
    "multiple_choice": rf.FlaxRobertaForMultipleChoice,
    "token_classification": rf.FlaxRobertaForTokenClassification,
    "question_answering": rf.FlaxRobertaForQuestionAnswering,
}


def build(head: str, config, seed: int = 0, **kwargs):
    """(model, canonical state): a Flax `head` model holding `random_state(config, head, seed)`."""
    state = random_state(config, head, seed)
    return from_canonical(CLASSES[head](config, **kwargs), state), state


@nnx.jit(static_argnames="flags")
def forward(model, inputs: dict, flags: tuple = ()):
    """`model(**inputs, **dict(flags))` under jit; `flags` (pairs) are the static options."""
    return model(**inputs, **dict(flags))
