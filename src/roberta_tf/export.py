"""Export for serving: the TensorFlow model as a SavedModel with a `serving_default` signature.

The front end is `roberta_core.export` (`roberta export CKPT OUT --to savedmodel`), which verifies
what is written here against the float64 reference before installing it. The backends'
`export.py` are parallel texts: `export` writes a model's artefact into a folder, `load_exported`
reads one back as a function of NumPy inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorflow import keras

__all__ = ["FILE", "export", "load_exported"]

FILE = "saved_model"


def export(model: keras.Model, directory: str | os.PathLike, *, example: Mapping[str, np.ndarray],
           axes: Mapping[str, Sequence[str | None]]) -> Path:
    """Write `model` as the SavedModel folder `directory/saved_model` and return its path.

    The model's own export (`export_saved_model`) writes it: the `serving_default` signature takes
    int32 `input_ids`, `attention_mask` and `token_type_ids` of any batch and length ((batch,
    choices, length) for multiple choice) and returns the output fields by name. `example` and
    `axes` name the inputs and outputs the caller expects: each must be in the signature.
    """
    path = model.export_saved_model(Path(directory) / FILE)
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    takes, gives = set(signature.structured_input_signature[1]), set(signature.structured_outputs)
    lacking = [name for name in axes if name not in (takes if name in example else gives)]
    if lacking:
        raise ValueError(f"the SavedModel's serving_default signature lacks {', '.join(lacking)}")
    return path


def load_exported(path: str | os.PathLike) -> Callable[[Mapping[str, Any]], dict[str, np.ndarray]]:
    """The SavedModel at `path` (`tf.saved_model.load`, `serving_default` signature) as a function:
    NumPy inputs by name (cast to int32; token_type_ids zero when not given) -> the output fields
    by name, as NumPy arrays."""
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    wanted = list(signature.structured_input_signature[1])

    def run(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        unknown = sorted(set(inputs) - set(wanted))
        if unknown:
            raise ValueError(f"the exported model takes {', '.join(wanted)}; got also {', '.join(unknown)}")
        feed = {name: tf.constant(np.asarray(value, np.int32)) for name, value in inputs.items()}
        if "token_type_ids" in wanted and "token_type_ids" not in feed:
            feed["token_type_ids"] = tf.zeros_like(feed["input_ids"])
        return {name: value.numpy() for name, value in signature(**feed).items()}

    return run
