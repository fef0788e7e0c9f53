"""What the export tests of every backend share (`roberta_core.export`): a tiny checkpoint of a
head with random weights, padded batches of any shape, and the relative difference the float64
reference is compared by."""

from __future__ import annotations

import numpy as np

from roberta_core import checkpoint, weights
from tests.helpers import random_state, tiny_config


def make_checkpoint(folder, head: str, seed: int = 0, **overrides):
    """A tiny checkpoint of `head` with random weights (config.json + model.safetensors + a vocab
    file to travel along); returns (folder, config, canonical state)."""
    config = tiny_config(architectures=[weights.HEADS[head]], **overrides)
    state = random_state(config, head, seed)
    checkpoint.save_state_dict(state, folder, format="safetensors", architecture=weights.HEADS[head])
    config.save_pretrained(folder)
    (folder / "vocab.json").write_text('{"<s>": 0}\n')
    return folder, config, state


def batch(config, shape, pad: int, seed: int = 1):
    """int64 ids and mask of `shape` ((B, T) or (B, C, T)), the last `pad` tokens of the first
    sequence padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, config.vocab_size, size=shape)
    mask = np.ones_like(ids)
    if pad:
        ids[(0,) * (len(shape) - 1) + (slice(shape[-1] - pad, None),)] = config.pad_token_id
        mask[(0,) * (len(shape) - 1) + (slice(shape[-1] - pad, None),)] = 0
    return {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}


def relative(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))
