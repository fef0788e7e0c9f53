"""Shared pieces of the TensorFlow tests: the seven classes by head, a model with random
canonical weights, and inputs per head."""

from __future__ import annotations

import numpy as np

import roberta_tf
from roberta_tf.convert import from_canonical
from tests.helpers import padded_batch, random_state

# The seven TFRoberta* classes by head (the package also exports v4's family names of them).
CLASSES = {
    cls.head: cls for cls in (getattr(roberta_tf, name) for name in roberta_tf.__all__[1:])
    # not the family's classes, nor the TFAutoModel* pickers
    if isinstance(cls, type) and issubclass(cls, roberta_tf.TFRobertaPreTrainedModel)
    and getattr(cls, "family_model_type", None) is None
}


def build(head: str, config, seed: int = 0, **kwargs):
    """The TF model of `head` holding `random_state(config, head, seed)`; returns (model, state)."""
    state = random_state(config, head, seed)
    return from_canonical(CLASSES[head](config, **kwargs), state), state


def inputs_for(config, head: str, lengths=(7, 5, 2), seed: int = 0, labels: bool = True) -> dict:
    """A right-padded batch for `head` ((B, C, T) for multiple choice) and, with `labels`, labels
    that exercise -100 and, for QA, positions beyond the sequence (clamped and ignored)."""
    ids, mask = padded_batch(config, lengths, seed=seed)
    B, T = ids.shape
    rng = np.random.default_rng(seed + 1)
    if head == "multiple_choice":
        ids, mask = np.stack([ids, ids[::-1]]), np.stack([mask, mask[::-1]])  # (2, 3, T)
    out = {"input_ids": ids, "attention_mask": mask}
    if not labels:
        return out
    if head in ("masked_lm", "causal_lm"):
        out["labels"] = np.where(mask == 1, ids, -100)
    elif head == "token_classification":
        out["labels"] = np.where(mask == 1, rng.integers(0, config.num_labels, (B, T)), -100)
    elif head == "sequence_classification":
        out["labels"] = rng.integers(0, config.num_labels, (B,))
    elif head == "multiple_choice":
        out["labels"] = np.array([0, 2])
    elif head == "question_answering":
        out["start_positions"] = np.array([1, 2, T + 5])  # past the end: clamped to T, ignored
        out["end_positions"] = np.array([3, -4, 5])  # negative: clamped to 0
    return out
