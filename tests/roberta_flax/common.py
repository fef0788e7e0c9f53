"""Shared pieces of the Flax tests: the head classes, models holding `random_state` weights, and
one jitted forward whose compilations every test file reuses (tiny configs, the (3, 7) batch
of `padded_batch`: few shapes, few compiles)."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

import roberta_flax as rf
from roberta_flax.convert import from_canonical
from tests.helpers import padded_batch, random_state, tiny_config

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


def head_config(head: str, **overrides):
    """tiny, with 3 labels (QA: 2, a start and an end score); the causal LM is a decoder."""
    num_labels = 2 if head == "question_answering" else 3
    return tiny_config(**{"num_labels": num_labels, "is_decoder": head == "causal_lm", **overrides})


def head_inputs(config, head: str) -> dict:
    """The (3, 7) padded batch with labels for `head` (multiple choice: 2 choices of it)."""
    ids, mask = padded_batch(config)
    rng = np.random.default_rng(7)
    B, T = ids.shape
    if head == "multiple_choice":
        return dict(input_ids=np.stack([ids, ids[::-1]], 1), attention_mask=np.stack([mask, mask[::-1]], 1),
                    labels=np.array([0, 1, 1]))
    inputs = dict(input_ids=ids, attention_mask=mask)
    if head in ("masked_lm", "causal_lm"):
        inputs["labels"] = np.where(rng.random((B, T)) < 0.5, ids, -100)
    elif head == "token_classification":
        inputs["labels"] = np.where(mask == 1, rng.integers(0, 3, (B, T)), -100)
    elif head == "sequence_classification":
        inputs["labels"] = np.array([2, 0, 1])
    elif head == "question_answering":
        inputs["start_positions"], inputs["end_positions"] = np.array([1, 3, 9]), np.array([4, 3, 0])
    return inputs


def main_output(head: str) -> tuple[str, ...]:
    """The output fields that carry a head's result."""
    if head == "model":
        return ("last_hidden_state", "pooler_output")
    return ("start_logits", "end_logits") if head == "question_answering" else ("logits",)
