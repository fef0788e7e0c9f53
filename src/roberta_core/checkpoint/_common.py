"""What every checkpoint format module shares: the file names, the errors, the dtypes a weights
file may carry, the writers' argument check, and the head guess from a state dict's keys."""

from __future__ import annotations

from typing import Any, Mapping

import ml_dtypes  # registers bfloat16 & co. with NumPy (safetensors' numpy API needs the name)
import numpy as np

from .. import weights
from ..config import BASE_MODEL_PREFIXES as _PREFIX_OF_TYPE

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TF_H5 = "tf_model.h5"
FLAX_MSGPACK = "flax_model.msgpack"
# v4's indexes of the other sharded formats (`<file>.index.json`)
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"
TF_H5_INDEX = "tf_model.h5.index.json"
FLAX_MSGPACK_INDEX = "flax_model.msgpack.index.json"


# The encoder's name in the family's files (`RobertaConfig.base_model_prefix`): the safetensors/bin
# key prefix, the TF layer, the Flax level. In memory every member says `roberta` (ARCHITECTURE §3).
BASE_MODEL_PREFIXES: tuple[str, ...] = tuple(dict.fromkeys(_PREFIX_OF_TYPE.values()))


class CheckpointFormatError(ValueError):
    """A weights file is truncated, corrupt, hostile, of an unsupported kind, or names unknown parameters."""


class UnsafePickleError(CheckpointFormatError):
    """A `pytorch_model.bin` pickle references a global that is not a tensor-rebuild function."""


# Every dtype a weights file may carry, by the name NumPy/Flax/safetensors use.
DTYPES: dict[str, np.dtype] = {
    np.dtype(t).name: np.dtype(t)
    for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
        np.float16, np.float32, np.float64, np.complex64, np.complex128,
        ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2,
    )
}


def check_state(state: Mapping[str, Any]) -> None:
    """Writers take str keys and numeric NumPy arrays only."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a mapping of str -> numpy.ndarray, got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"state keys must be str, got {key!r} ({type(key).__name__})")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"state[{key!r}] must be a numpy.ndarray, got {type(value).__name__}")
        if value.dtype.name not in DTYPES:
            raise TypeError(f"state[{key!r}] has dtype {value.dtype}; allowed: {', '.join(DTYPES)}")


def empty_aligned(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary: XLA and
    TensorFlow adopt such memory as a CPU tensor without copying it (torch adopts any)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def guess_architecture(state: Mapping[str, np.ndarray]) -> str:
    """The PyTorch class whose state dict this is, from its keys (causal and masked LM share keys:
    pass `architecture` to tell them apart)."""
    keys = set(state)
    if any(k.startswith(("embeddings.", "encoder.", "pooler.")) for k in keys):
        head = "model"
    elif any(k.startswith("lm_head.") for k in keys):
        head = "masked_lm"
    elif "classifier.dense.weight" in keys:
        head = "sequence_classification"
    elif "classifier.weight" in keys:
        head = "multiple_choice" if "roberta.pooler.dense.weight" in keys else "token_classification"
    elif "qa_outputs.weight" in keys:
        head = "question_answering"
    else:
        raise ValueError("cannot tell which RoBERTa class these weights belong to; pass architecture='RobertaFor...'")
    return weights.HEADS[head]
