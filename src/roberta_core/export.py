"""Export a checkpoint for serving: ONNX (from PyTorch), StableHLO (from JAX), SavedModel (from TF).

    roberta_core.export.export("ckpt", "ckpt-onnx", to="onnx", quantize="int8")   # Python
    roberta export ckpt ckpt-onnx --to onnx --quantize int8                         # shell

The framework that writes each format loads the checkpoint and writes the artefact (its
`<backend>.export.export`); the artefact is then run where it will be served (onnxruntime,
`jax.export.deserialize(...).call`, `tf.saved_model.load(...).signatures["serving_default"]`, through
`<backend>.export.load_exported`) on two padded batches of different (batch, length) and compared
with the float64 NumPy reference (`roberta_core.reference`): relative difference ≤ 1e-5 at fp32
(ARCHITECTURE §5), the bar of `convert --verify`; `dtype="float16"` (ONNX: the verified fp32
graph converted) is held to 5e-3, `dtype="bfloat16"` (StableHLO) to 2e-2 (`DTYPE_BARS`).
Everything is built in a staging folder beside OUT (`fileio.atomic_dir`) and installed only once
verified: a failed check leaves nothing.

OUT holds the artefact (`model.onnx` | `model.stablehlo` with `model.json` | `saved_model/`),
`export.json` (format, head, dtype, opset, the inputs' and outputs' names and axes, the checks),
`config.json` and the tokenizer files. `quantize="int8"` (ONNX only) adds `model.int8.onnx`,
onnxruntime's dynamic quantization of the verified fp32 graph (int8 weights of every MatMul, one
scale per output column, bounded so that CPUs without VNNI compute them exactly; activations
quantized per call; `int8_recipe` picks another of `INT8_RECIPES`); it cannot meet the fp32 bar,
so it is checked by running it on the same batches, and `export.json` records its size and its
top-1 agreement with fp32.

Inputs are `input_ids` and `attention_mask` (int64 for ONNX, int32 for StableHLO and the
SavedModel, which also takes `token_type_ids`), (batch, length), or (batch, choices, length) for
multiple choice; the position ids are computed inside every artefact from the input ids
(padding_idx + running count of real tokens), as RoBERTa does. Outputs have v4's names:
`last_hidden_state` (+ `pooler_output`, unless the checkpoint has no pooler or `pooler=False`:
v4's `add_pooling_layer=False`), `logits`, or `start_logits` and `end_logits`.

`packed=True` (ONNX) writes a padding-free graph: the same right-padded inputs, the matmuls on the
N real tokens only, token-level outputs as the real tokens' rows (N, ...) in row-major order
(axis "tokens"), sequence-level ones per row; it is verified against `ref[mask]`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from . import __version__, backends, checkpoint, runtime, weights
from .config import CONFIG_NAME, RobertaConfig
from .conversion import Check
from .fileio import atomic_dir, atomic_path
from .tokenizer_files import (
    ADDED_TOKENS_FILE,
    MERGES_FILE,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    VOCAB_FILE,
)

__all__ = ["export", "load_exported", "Export", "FORMATS", "DTYPES", "DTYPE_FORMATS", "DTYPE_BARS", "QUANTIZATIONS",
           "BAR", "METADATA_FILE", "INT8_FILE", "INT8_RECIPES", "DEFAULT_INT8_RECIPE", "output_axes",
           "probe_batches", "packed_fields", "check_packed_mask", "verify", "quantize_int8", "to_float16", "top1_agreement"]

# format -> the backend that writes it
FORMATS: dict[str, str] = {"onnx": "pt", "stablehlo": "flax", "savedmodel": "tf"}
DTYPES = ("float32", "float16", "bfloat16")
# dtype -> the formats whose artefact computes in it, and the bar its outputs must meet against the
# float64 reference (relative). fp16 (10-bit mantissa, 2^-11 ≈ 5e-4 per rounding) measures
# ~1e-3 on the tests' models; bf16 (7-bit, 2^-8 ≈ 4e-3) takes the parity suite's bf16 bar.
DTYPE_FORMATS = {"float32": ("onnx", "stablehlo", "savedmodel"), "float16": ("onnx",), "bfloat16": ("stablehlo",)}
QUANTIZATIONS = ("int8",)
BAR = 1e-5  # relative difference to the float64 reference at fp32 (ARCHITECTURE §5)
DTYPE_BARS = {"float32": BAR, "float16": 5e-3, "bfloat16": 2e-2}
METADATA_FILE = "export.json"
INT8_FILE = "model.int8.onnx"
_TOKENIZER_FILES = (VOCAB_FILE, MERGES_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE,
                    ADDED_TOKENS_FILE)
_OUTPUTS = ("last_hidden_state", "pooler_output", "logits", "start_logits", "end_logits")


@dataclass
class Export:
    """What `export` wrote: the folder, the format, the head, the artefact inside it, the files,
    the verification at fp32 (one Check per probe batch), the opset (ONNX), and for an int8
    export its file, sizes and agreement with fp32 (as in `export.json`); `packed`: a padding-free
    ONNX graph (token-level outputs are the real tokens' rows)."""

    path: Path
    format: str
    head: str
    artefact: Path
    files: list[str]
    checks: list[Check]
    opset: int | None = None
    int8: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    packed: bool = False


# ---------------------------------------------------------------------------- inputs and outputs


def output_axes(head: str, fields: list[str], packed: bool = False) -> dict[str, tuple[str | None, ...]]:
    """The axes of the inputs and of the output `fields` of `head`, by name: "batch", "choices"
    and "sequence" vary from call to call, None is a fixed size (hidden size, vocabulary, labels).
    `packed`: token-level outputs are the real tokens' rows, their first axis "tokens" (N)."""
    if head not in weights.HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(weights.HEADS)}")
    ids = ("batch", "choices", "sequence") if head == "multiple_choice" else ("batch", "sequence")
    tokens = ("tokens",) if packed else ("batch", "sequence")
    per_token = (*tokens, None)
    logits = {"sequence_classification": ("batch", None), "multiple_choice": ("batch", "choices")}.get(head, per_token)
    known = {"last_hidden_state": per_token, "pooler_output": ("batch", None), "logits": logits,
             "start_logits": tokens, "end_logits": tokens}
    return {"input_ids": ids, "attention_mask": ids, **{name: known[name] for name in fields}}


def probe_batches(config: RobertaConfig, head: str, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Two batches of ordinary (non-special) ids at different shapes, (2, 11) and (3, 6) ((2, 2, 11)
    and (3, 3, 6) for multiple choice), the last sequence of each padded at its end (right
    padding, what packed graphs expect): int64 `input_ids` and `attention_mask`. The first is the
    example an export traces."""
    rng = np.random.default_rng(seed)
    low = min(4, config.vocab_size - 1)
    batches = []
    for batch, length in ((2, 11), (3, 6)):
        length = min(length, config.max_sequence_length)
        ids = rng.integers(low, config.vocab_size, size=(batch, length))
        if config.bos_token_id is not None:
            ids[:, 0] = config.bos_token_id
        mask = np.ones_like(ids)
        pad = max(1, length // 3) if length > 1 else 0
        if pad:
            ids[-1, length - pad:] = config.pad_token_id if config.pad_token_id is not None else 1
            mask[-1, length - pad:] = 0
        if head == "multiple_choice":  # 2 then 3 choices: the choices axis varies too
            order = [slice(None), slice(None, None, -1), slice(None)][: 2 + len(batches)]
            ids, mask = np.stack([ids[o] for o in order], axis=1), np.stack([mask[o] for o in order], axis=1)
        batches.append({"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)})
    return batches


def packed_fields(outputs: Mapping[str, np.ndarray], attention_mask: np.ndarray,
                  axes: Mapping[str, tuple[str | None, ...]]) -> dict[str, np.ndarray]:
    """Padded outputs as a packed graph gives them: each field whose `axes` start with "tokens"
    keeps the real tokens' rows, `x[attention_mask != 0]` ((B, T, ...) -> (N, ...)); the others
    as they are. `np.flatnonzero(attention_mask)` says where each packed row sits in (B * T)."""
    real = np.asarray(attention_mask) != 0
    return {name: (np.asarray(x)[real] if axes.get(name, ())[:1] == ("tokens",) else x)
            for name, x in outputs.items()}


# ---------------------------------------------------------------------------- verification


def verify(run: Callable[[Mapping[str, np.ndarray]], Mapping[str, Any]], config: RobertaConfig,
           state: Mapping[str, np.ndarray], head: str, batches: list[dict[str, np.ndarray]],
           fields: list[str], what: str, bar: float = BAR, packed: bool = False) -> list[Check]:
    """Run the artefact (`run`: NumPy inputs -> outputs by name) on each batch and compare every
    output field with the float64 reference: one Check per batch (worst |diff| and ‖diff‖/‖ref‖).
    `packed`: the artefact's token-level fields are the real tokens' rows, compared with the
    reference's `ref[name][mask]`."""
    from .reference import forward  # NumPy only

    checks = []
    for inputs in batches:
        got = run(inputs)
        ref = forward(config, state, head, **inputs)
        if packed:
            ref = packed_fields(ref, inputs["attention_mask"], output_axes(head, fields, packed=True))
        missing = [name for name in fields if name not in got]
        if missing:
            raise ValueError(f"{what}: the artefact gives no {', '.join(missing)}")
        for name in fields:
            if np.shape(got[name]) != np.shape(ref[name]):
                raise ValueError(f"{what}: {name} has shape {np.shape(got[name])}, the reference {np.shape(ref[name])}")
        g = np.concatenate([np.asarray(got[name], np.float64).ravel() for name in fields])
        r = np.concatenate([np.asarray(ref[name], np.float64).ravel() for name in fields])
        diff = np.abs(g - r)
        norm = float(np.linalg.norm(r)) or 1.0
        max_abs = float(diff.max()) if diff.size and np.all(np.isfinite(g)) else float("inf")
        rel = float(np.linalg.norm(g - r)) / norm if np.all(np.isfinite(g)) else float("inf")
        checks.append(Check(f"{what} at {tuple(inputs['input_ids'].shape)}", max_abs, rel, bar))
    return checks


# ---------------------------------------------------------------------------- int8


# The int8 recipes of `quantize_int8` (onnxruntime.quantization.quantize_dynamic's options). A
# trained model's masked-token predictions are often near-ties (the demo's: a tenth of its held-out
# predictions lead the runner-up by under 0.25 points of probability), so what moves the argmax is
# measured (benchmarks/int8_accuracy.py, RESULTS.md): one scale per weight tensor costs the most
# (one outlier row coarsens every row), then 8-bit embedding tables (a lookup, no speed to win).
INT8_RECIPES: dict[str, dict[str, Any]] = {
    # the default: one scale per output column of each MatMul weight; the embedding tables fp32
    "per-channel": {"per_channel": True, "op_types_to_quantize": ["MatMul"]},
    # onnxruntime's defaults: one scale per tensor, the embedding tables 8-bit too (smallest file)
    "per-tensor": {"per_channel": False, "op_types_to_quantize": ["MatMul", "Gather"]},
    # per-channel, and the LM head (its dense and its vocabulary projection) kept fp32
    "keep-lm-head": {"per_channel": True, "op_types_to_quantize": ["MatMul"], "exclude": ("lm_head/",)},
    # activations quantized per token, weights per column; the vocabulary projection per-channel
    # with its top logits recomputed in fp32 (`roberta_core.onnx_int8`): the closest to fp32's
    # predictions, slower than 'per-channel' (a graph rewrite, not quantize_dynamic)
    "per-token": {"per_token": True},
}
DEFAULT_INT8_RECIPE = "per-channel"


def quantize_int8(source: str | os.PathLike, target: str | os.PathLike, recipe: str = DEFAULT_INT8_RECIPE) -> Path:
    """onnxruntime's dynamic quantization of the ONNX file `source` into `target`: int8 weights of
    every MatMul with a constant weight (`recipe`: one scale per output column, 'per-channel', the
    default; one per tensor, 'per-tensor', which also stores the embedding tables as uint8;
    'keep-lm-head': per-channel with the LM head left fp32), activations quantized at run time
    (uint8, one scale per tensor per call); 'per-token': activations one scale per token and the
    LM decoder's top logits rescored in fp32 (`roberta_core.onnx_int8`). Every recipe bounds each
    two neighbouring int8 weights of a column to |q| + |q'| <= 128 (`onnx_int8.int8_weight`):
    onnxruntime's uint8-by-int8 kernels overflow int16 beyond it on x86 CPUs without VNNI.
    Written atomically: a failed quantization leaves no `target`. Returns `target`."""
    if recipe not in INT8_RECIPES:
        raise ValueError(f"unknown int8 recipe {recipe!r}; choose one of {', '.join(INT8_RECIPES)}")
    from .onnx_int8 import pair_bounded_weights, per_token

    if INT8_RECIPES[recipe].get("per_token"):
        with atomic_path(Path(target)) as tmp:
            per_token(source, tmp)
        return Path(target)
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ImportError("int8 export needs onnxruntime; install it with `pip install 'roberta3[export]'`") from None
    options = dict(INT8_RECIPES[recipe])
    exclude = options.pop("exclude", ())
    if exclude:
        import onnx

        graph = onnx.load(str(source), load_external_data=False).graph
        options["nodes_to_exclude"] = [n.name for n in graph.node if any(part in n.name for part in exclude)]
    with warnings.catch_warnings(), _quiet_root_logger(), atomic_path(Path(target)) as tmp:
        warnings.simplefilter("ignore")
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, **options)
        pair_bounded_weights(source, tmp)  # its own overflow on CPUs without VNNI
    return Path(target)


def to_float16(path: str | os.PathLike) -> Path:
    """Rewrite the fp32 ONNX file at `path` in float16 (onnxruntime's `float16` tool: weights and
    compute in fp16, constants clamped to its range so the mask's large negative stays finite; the
    int64 inputs and float32 outputs kept, so callers feed and read it as before). Returns `path`."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")  # its notes on constants clamped to the fp16 range
        half = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    onnx.save(half, str(path))
    return Path(path)


@contextlib.contextmanager
def _quiet_root_logger():
    """Drop warnings sent to the root logger meanwhile (onnxruntime logs its advice to pre-process
    the graph there), without configuring logging for the caller: with no handler on the root
    logger, `logging.warning` would install one for good."""
    root, handler = logging.getLogger(), logging.NullHandler()
    previous = root.manager.disable
    root.addHandler(handler)
    logging.disable(max(previous, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(previous)
        root.removeHandler(handler)


def top1_agreement(fp32: Mapping[str, np.ndarray], int8: Mapping[str, np.ndarray],
                   attention_mask: np.ndarray, packed: bool = False) -> tuple[int, int]:
    """(agreeing, compared) argmax predictions of two runs' logits: per real token for
    token-level logits (B, T, V), per row otherwise; start/end logits over each sequence's real
    positions. (0, 0) for the bare model (no logits). `packed`: the runs are a packed graph's
    (token-level logits (N, V), start/end logits (N,) of the real tokens)."""
    agree = total = 0
    real = np.asarray(attention_mask) != 0
    for name in ("logits", "start_logits", "end_logits"):
        if name not in fp32:
            continue
        a, b = np.asarray(fp32[name]), np.asarray(int8[name])
        if packed and name != "logits":  # (N,) -> (B, T), padding never the answer
            a, b = (np.where(real, 0.0, -np.inf).astype(np.float64) for _ in range(2))
            a[real], b[real] = fp32[name], int8[name]
        if name == "logits" and a.ndim == 3:  # (B, T, V): one prediction per real token
            keep = real.reshape(a.shape[:2])
            a, b = a.argmax(-1)[keep], b.argmax(-1)[keep]
        elif name != "logits":  # (B, T): the predicted position among the real tokens
            a = np.where(real, a, -np.inf).argmax(-1)
            b = np.where(real, b, -np.inf).argmax(-1)
        else:  # (B, labels) or (B, choices)
            a, b = a.argmax(-1), b.argmax(-1)
        agree += int(np.sum(a == b))
        total += int(a.size)
    return agree, total


def _int8(staging: Path, fp32_file: Path, batches: list[dict[str, np.ndarray]], fields: list[str],
          backend_export: Any, recipe: str, packed: bool = False) -> dict[str, Any]:
    """Quantize the verified fp32 graph with `recipe`, run both on `batches`, and say how far apart
    they are; refuse an int8 graph that does not run or gives non-finite outputs."""
    target = quantize_int8(fp32_file, staging / INT8_FILE, recipe)
    fp32, int8 = backend_export.load_exported(fp32_file), backend_export.load_exported(target)
    agree = total = 0
    diff2 = ref2 = 0.0
    for inputs in batches:
        a, b = fp32(inputs), int8(inputs)
        for name in fields:
            if np.shape(b[name]) != np.shape(a[name]) or not np.all(np.isfinite(b[name])):
                raise ValueError(f"int8 check failed, nothing written: {name} at {inputs['input_ids'].shape} "
                                 "is not finite or has the wrong shape")
            diff2 += float(np.sum((np.asarray(b[name], np.float64) - a[name]) ** 2))
            ref2 += float(np.sum(np.asarray(a[name], np.float64) ** 2))
        n, m = top1_agreement(a, b, inputs["attention_mask"], packed)
        agree, total = agree + n, total + m
    return {
        "file": INT8_FILE, "bytes": target.stat().st_size, "fp32_bytes": fp32_file.stat().st_size,
        "size_ratio": target.stat().st_size / fp32_file.stat().st_size,
        "top1_agreement": agree / total if total else None, "top1_compared": total,
        "rel": (diff2 / ref2) ** 0.5 if ref2 else 0.0,
        "method": ("roberta_core.onnx_int8.per_token" if INT8_RECIPES[recipe].get("per_token")
                   else "onnxruntime.quantization.quantize_dynamic") + ", int8 weights with |q[2i]| + |q[2i+1]| <= 128",
        "recipe": recipe,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in INT8_RECIPES[recipe].items()},
    }


# ---------------------------------------------------------------------------- export


def _check_options(to, dtype, quantize, opset, int8_recipe=DEFAULT_INT8_RECIPE, packed=False) -> None:
    if to not in FORMATS:
        raise ValueError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}")
    if not isinstance(packed, bool):
        raise TypeError(f"packed must be True or False, got {packed!r}")
    if packed and to != "onnx":
        raise ValueError(f"packed=True (a padding-free graph) applies to onnx only, not to {to!r}")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        allowed = ", ".join(f"{d} ({'/'.join(f)})" for d, f in DTYPE_FORMATS.items())
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {allowed}")
    if to in FORMATS and to not in DTYPE_FORMATS[dtype]:
        raise ValueError(f"dtype {dtype!r} applies to {' and '.join(DTYPE_FORMATS[dtype])} only, not to {to!r}; "
                         f"{to} exports are verified at " + ", ".join(d for d, f in DTYPE_FORMATS.items() if to in f))
    if quantize is not None and dtype != "float32":
        raise ValueError(f"quantize={quantize!r} quantizes the float32 graph; it cannot be combined with dtype={dtype!r}")
    if quantize is not None:
        if quantize not in QUANTIZATIONS:
            raise ValueError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
        if to != "onnx":
            raise ValueError(f"quantize={quantize!r} applies to onnx only, not to {to!r}")
    if int8_recipe not in INT8_RECIPES:
        raise ValueError(f"unknown int8 recipe {int8_recipe!r}; choose one of {', '.join(INT8_RECIPES)}")
    if opset is not None:
        if to != "onnx":
            raise ValueError(f"opset applies to onnx only, not to {to!r}")
        if isinstance(opset, bool) or not isinstance(opset, int) or not 14 <= opset <= 20:
            raise ValueError(f"opset must be an integer in 14..20, got {opset!r}")


def _head_of(config: RobertaConfig, head: str | None) -> str:
    if head is not None:
        if head not in weights.HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {', '.join(weights.HEADS)}")
        return head
    for name in config.architectures or ():
        if name in weights.ARCHITECTURES:
            return weights.ARCHITECTURES[name]
    return "model"


def export(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    to: str,
    head: str | None = None,
    dtype: str = "float32",
    quantize: str | None = None,
    opset: int | None = None,
    int8_recipe: str = DEFAULT_INT8_RECIPE,
    pooler: bool | None = None,
    packed: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> Export:
    """Export the checkpoint directory `src` as the folder `dst`, verified before it is installed.

    to:        'onnx' (PyTorch's `torch.onnx.export`, TorchScript exporter, opset 17 unless
               `opset` in 14..20) | 'stablehlo' (`jax.export`, symbolic batch and length) |
               'savedmodel' (TensorFlow, `serving_default` signature)
    head:      a key of `weights.HEADS` (default: the config's architecture, else 'model')
    dtype:     the precision the artefact computes in and is verified at: 'float32' (every format,
               bar 1e-5), 'float16' (onnx: the verified fp32 graph converted by onnxruntime's
               float16 tool, int64 inputs and float32 outputs kept; bar 5e-3), 'bfloat16'
               (stablehlo: the Flax model in bfloat16, weights and compute; bar 2e-2)
    quantize:  'int8' (onnx only): also write `model.int8.onnx` (onnxruntime dynamic quantization)
    int8_recipe: which weights are 8-bit and how they are scaled (`INT8_RECIPES`; default
               'per-channel')
    pooler:    bare model only: None exports the pooler (`pooler_output`) when the checkpoint has
               its weights, False leaves it out (v4's `add_pooling_layer=False`), True requires it
    packed:    onnx only: a padding-free graph. It takes the same right-padded batch but computes
               on the N real tokens only; token-level outputs (`last_hidden_state`, token-level
               `logits`, `start_logits`/`end_logits`) are their rows, (N, ...) in row-major order
               (`padded[attention_mask != 0]`; `np.flatnonzero(attention_mask)` maps them back),
               sequence-level ones (`pooler_output`, sequence classification `logits`) stay (B, ...).
               Not for multiple choice or decoders.
    overwrite: replace an existing `dst` (only once the new one is complete and verified)
    log:       callable taking one line of text (default: stderr)
    Raises ValueError (nothing written) when a check fails.
    """
    _check_options(to, dtype, quantize, opset, int8_recipe, packed)
    if pooler is not None and not isinstance(pooler, bool):
        raise TypeError(f"pooler must be None, True or False, got {pooler!r}")
    log = log or (lambda line: print(line, file=sys.stderr))
    src, dst = Path(src), Path(dst)
    config = RobertaConfig.from_pretrained(src)
    head = _head_of(config, head)
    if packed and head == "multiple_choice":
        raise ValueError("packed=True does not apply to multiple choice (its choices are scored from padded "
                         "(batch, choices, length) rows); export it without packed")
    if packed and config.is_decoder:
        raise ValueError("packed=True exports an encoder; this checkpoint is a decoder (is_decoder=True): "
                         "export it without packed")
    backend = FORMATS[to]
    runtime.require(backend)
    if to == "onnx" and any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxruntime")):
        raise ImportError("ONNX export needs onnx and onnxruntime; install them with `pip install 'roberta3[export]'`")
    backend_export = importlib.import_module(backends.get(backend).package + ".export")
    state = checkpoint.load_state_dict(src)
    batches = probe_batches(config, head)
    from .reference import forward

    # bfloat16 is the model's own (Flax computes in it); float16 converts the verified fp32 graph.
    load_options: dict[str, Any] = {"dtype": dtype} if dtype == "bfloat16" else {}
    if pooler is not None and head != "model":
        raise ValueError(f"pooler applies to the bare model (head 'model') only, not to {head!r}")
    pooled = head != "model" or ("pooler.dense.weight" in state if pooler is None else pooler)
    if not pooled:
        # v4's add_pooling_layer=False (checkpoints saved without a pooler): last_hidden_state
        # only. The reference always computes a pooler: zero weights stand in, their output unused.
        load_options["add_pooling_layer"] = False
        hidden = config.hidden_size
        state = {**state, "pooler.dense.weight": np.zeros((hidden, hidden), np.float32),
                 "pooler.dense.bias": np.zeros(hidden, np.float32)}
    try:
        reference_fields = forward(config, state, head, **batches[0])
    except KeyError as e:
        raise ValueError(f"{src} holds no weights for the {head!r} head ({e.args[0]}); choose another --head") from None
    fields = [name for name in _OUTPUTS if name in reference_fields and (pooled or name != "pooler_output")]
    axes = output_axes(head, fields, packed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unused-key reports (lm_head.* into a bare encoder)
        model = runtime.load_model(backend, head, src, **load_options)
    with atomic_dir(dst, overwrite=overwrite) as staging:
        options = {"opset": opset, "packed": packed} if to == "onnx" else {}
        log(f"exporting {weights.HEADS[head]} as {to}{' (packed)' if packed else ''} "
            f"({backends.get(backend).package}) ...")
        artefact = backend_export.export(model, staging, example=batches[0], axes=axes, **options)
        del model
        what = f"{weights.HEADS[head]} {to}" + (" packed" if packed else "")
        bar = DTYPE_BARS["bfloat16" if dtype == "bfloat16" else "float32"]
        checks = verify(backend_export.load_exported(artefact), config, state, head, batches, fields,
                        what + (" bfloat16" if dtype == "bfloat16" else ""), bar, packed)
        _check(checks, log)
        if dtype == "float16":  # the fp32 graph met its bar: convert it, and check the conversion
            to_float16(artefact)
            half = verify(backend_export.load_exported(artefact), config, state, head, batches, fields,
                          what + " float16", DTYPE_BARS["float16"], packed)
            _check(half, log)
            checks += half
        int8 = (_int8(staging, artefact, batches, fields, backend_export, int8_recipe, packed)
                if quantize == "int8" else None)
        if int8 is not None:
            log(f"  int8: {int8['bytes']:,} bytes ({int8['size_ratio']:.2f} of fp32), top-1 agreement "
                f"{int8['top1_agreement'] if int8['top1_agreement'] is None else format(int8['top1_agreement'], '.4f')}")
        used_opset = (opset or backend_export.DEFAULT_OPSET) if to == "onnx" else None
        _write_metadata(staging, to, head, artefact, axes, used_opset, checks, int8, dtype, packed)
        for name in (CONFIG_NAME, *_TOKENIZER_FILES):
            if (src / name).is_file():
                shutil.copyfile(src / name, staging / name)
        files = sorted(p.name for p in staging.iterdir())
    return Export(dst, to, head, dst / artefact.name, files, checks, used_opset, int8, packed=packed)


def _check(checks: list[Check], log: Callable[[str], None]) -> None:
    """Log the checks; raise when one failed (the staging folder is then removed)."""
    for check in checks:
        log(f"  {check}")
    failed = [c for c in checks if not c.ok]
    if failed:
        raise ValueError("verification failed, nothing written: " + "; ".join(map(str, failed)))


def _write_metadata(staging: Path, to: str, head: str, artefact: Path, axes, opset, checks, int8, dtype,
                    packed=False) -> None:
    inputs = {name: list(axes[name]) for name in ("input_ids", "attention_mask")}
    meta = {
        "format": to, "file": artefact.name, "head": head, "architecture": weights.HEADS[head], "dtype": dtype,
        "opset": opset, "packed": packed, "producer": f"roberta3 {__version__}",
        "inputs": inputs, "outputs": {name: list(a) for name, a in axes.items() if name not in inputs},
        "input_dtype": "int64" if to == "onnx" else "int32",
        "verification": {"against": "roberta_core.reference (float64)", "bar": DTYPE_BARS[dtype],
                         "checks": [{"what": c.what, "max_abs": c.max_abs, "rel": c.rel, "bar": c.bar} for c in checks]},
        "int8": int8,
    }
    (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_exported(path: str | os.PathLike, *, int8: bool = False) -> Callable[[Mapping[str, Any]], dict[str, np.ndarray]]:
    """The artefact of an export folder (`export.json` says its format and file), or `int8=True`
    its int8 graph, as a function: NumPy inputs by name -> output fields by name (NumPy)."""
    path = Path(path)
    meta_file = path / METADATA_FILE
    if not meta_file.is_file():
        raise FileNotFoundError(f"{path}: no {METADATA_FILE}; not a folder written by `roberta export`")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    to = meta.get("format")
    if to not in FORMATS:
        raise ValueError(f"{meta_file}: unknown format {to!r}; expected one of {', '.join(FORMATS)}")
    file = meta["file"]
    if int8:
        if not meta.get("int8"):
            raise ValueError(f"{path} holds no int8 graph (export it with quantize='int8')")
        file = meta["int8"]["file"]
    runtime.require(FORMATS[to])
    module = importlib.import_module(backends.get(FORMATS[to]).package + ".export")
    run = module.load_exported(path / file)
    if not meta.get("packed"):
        return run

    def run_packed(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        check_packed_mask(inputs.get("attention_mask"))
        return run(inputs)

    return run_packed


def check_packed_mask(attention_mask: Any) -> None:
    """What a packed graph needs of its batch, checked before it runs (the graph itself cannot
    say): an attention mask (batch, length) of 0/1, every row right-padded (its real tokens
    first) with one real token at least. ValueError naming the first row that is not."""
    if attention_mask is None:
        raise ValueError("a packed graph needs the attention_mask (batch, length): it says which tokens are real")
    mask = np.asarray(attention_mask)
    if mask.ndim != 2 or not np.isin(mask, (0, 1)).all():
        raise ValueError(f"attention_mask must be (batch, length) of 0 and 1, got shape {mask.shape}")
    lengths = mask.sum(axis=1)
    for row, (real, n) in enumerate(zip(mask, lengths)):
        if n == 0:
            raise ValueError(f"row {row} of the batch has no real token; a packed graph needs one at least per row")
        if not real[:n].all():
            raise ValueError(f"row {row} is not right-padded (its mask is {real.tolist()}); a packed graph takes "
                             "each row's real tokens first, then padding (the tokenizer's default, padding_side='right')")
