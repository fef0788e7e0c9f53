"""Export for serving: the PyTorch model as ONNX (`torch.onnx.export`), run by onnxruntime.

The front end is `roberta_core.export` (`roberta export CKPT OUT --to onnx`), which verifies what
is written here against the float64 reference before installing it. The backends' `export.py`
are parallel texts: `export` writes a model's artefact into a folder, `load_exported` reads one
back as a function of NumPy inputs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ._framework import as_tensor
from .modeling import _additive_mask
from .unpad import pack, unpad_rows

__all__ = ["FILE", "DEFAULT_OPSET", "OPSETS", "export", "load_exported"]

FILE = "model.onnx"
# 17 is the first opset with LayerNormalization as one op; the TorchScript exporter writes up to 20.
DEFAULT_OPSET = 17
OPSETS = range(14, 21)


class _Serving(nn.Module):
    """The model as a function of positional tensors returning the named output fields in order:
    what the ONNX exporter traces."""

    def __init__(self, model: nn.Module, inputs: Sequence[str], outputs: Sequence[str]):
        super().__init__()
        self.model, self.inputs, self.outputs = model, tuple(inputs), tuple(outputs)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(**dict(zip(self.inputs, tensors)), return_dict=True)
        return tuple(out[name] for name in self.outputs)


class _Packed(nn.Module):
    """The model as a padding-free graph (`export(..., packed=True)`): it takes the padded batch
    (B, T) but runs its matmuls on the N real tokens only, and returns the named output fields in
    order.

    Token-level fields are the real tokens' rows, (N, ...) in row-major order of their padded
    positions (`x[attention_mask.astype(bool)]` of the padded output); sequence-level fields
    (`pooler_output`, sequence classification `logits`) stay (B, ...), from each row's first real
    token, which is v4's position 0 when the batch is right-padded (the tokenizer's default). Every
    row needs one real token at least.

    Inside: the positions of the padded ids (as the model computes them), the real tokens gathered
    into one stream (1, N), then the model's own embeddings, encoder and head modules on it, as an
    `unpad=True` forward does. Under the tracer each layer's attention puts its queries, keys and
    values back into their padded rows for one masked call (`unpad.packed_attention`'s 'padded'
    strategy: B x T x T scores, as the padded graph, and a graph that holds for any lengths); a
    block-diagonal mask over the stream would compute N x N scores, 8x the padded ones on a full
    8 x 128 batch, and measured 1.6x slower there. Sequence classification's last layer computes
    the B first real tokens only (`first_token_only`: their queries over their rows' keys).
    """

    def __init__(self, model: nn.Module, outputs: Sequence[str]):
        super().__init__()
        head = getattr(model, "head", "")
        if head == "multiple_choice":
            raise ValueError("packed=True does not apply to multiple choice (its choices are scored from "
                             "padded rows of (batch, choices, length)); export it with packed=False")
        if head not in ("model", "masked_lm", "causal_lm", "sequence_classification", "token_classification",
                        "question_answering"):
            raise ValueError(f"packed=True exports a RobertaModel or one of its heads, got {type(model).__name__}")
        config = model.config
        if config.is_decoder:
            raise ValueError("packed=True exports an encoder; a decoder (config.is_decoder=True) attends causally "
                             "with a key/value cache: export it with packed=False")
        if config.position_embedding_type != "absolute":
            raise ValueError(f"packed=True needs absolute position embeddings (positions come from the padded "
                             f"batch); this model has {config.position_embedding_type!r}: export it with packed=False")
        self.model, self.head, self.outputs = model, head, tuple(outputs)
        self.base = model if head == "model" else model.roberta

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        base, model = self.base, self.model
        # Where the real tokens sit (the lengths it also counts are constants to the tracer, unused by
        # the traced attention); positions from the padded ids, then each input's real tokens (1, N).
        packing = pack(attention_mask)
        positions = base.embeddings._position_ids(input_ids, None)  # (B, T)
        ids, pos = (unpad_rows(x, packing)[None] for x in (input_ids, positions))
        # Token types given as zeros of the stream's own length: the buffer the embeddings would
        # slice is max_position_embeddings long, and the trace keeps one branch for every N.
        hidden = base.embeddings(ids, torch.zeros_like(ids), pos, None)  # (1, N, H)
        # Sequence classification reads each row's first real token alone: the last layer computes
        # those B rows only (`first_token_only`; keys and values from the stream, under the padding mask).
        first_only = self.head == "sequence_classification"
        mask = _additive_mask(attention_mask.bool()[:, None, None, :], hidden.dtype) if first_only else None
        hidden = base.encoder(hidden, mask, use_fused=True, packing=packing, first_token_only=first_only).last_hidden_state
        if base.LayerNorm is not None:  # RoBERTa-PreLayerNorm's final LayerNorm
            hidden = base.LayerNorm(hidden)
        if first_only:
            fields = {"logits": model.classifier(hidden)}  # (B, L)
            return tuple(fields[name] for name in self.outputs)
        hidden = hidden[0]  # (N, H)
        # Each row's first real token in the stream: the running count of real tokens before its row.
        first = hidden.index_select(0, packing.cu_seqlens[:-1].long())[:, None]  # (B, 1, H)
        fields: dict[str, torch.Tensor] = {}
        if self.head == "model":
            fields["last_hidden_state"] = hidden
            if base.pooler is not None:
                fields["pooler_output"] = base.pooler(first)
        elif self.head in ("masked_lm", "causal_lm"):
            fields["logits"] = model.lm_head(hidden)  # (N, V)
        elif self.head == "token_classification":
            fields["logits"] = model.classifier(model.dropout(hidden))  # (N, L)
        else:  # question_answering
            logits = model.qa_outputs(hidden)  # (N, 2)
            fields["start_logits"], fields["end_logits"] = logits[:, 0].contiguous(), logits[:, 1].contiguous()
        return tuple(fields[name] for name in self.outputs)


def export(model: nn.Module, directory: str | os.PathLike, *, example: Mapping[str, np.ndarray],
           axes: Mapping[str, Sequence[str | None]], opset: int | None = None, packed: bool = False) -> Path:
    """Write `model` as `directory/model.onnx` and return its path.

    `example` is a padded batch of the inputs the graph takes, as int64 (`input_ids`,
    `attention_mask`: (batch, length), or (batch, choices, length) for multiple choice). `axes`
    names each input's and then each output field's axes (`("batch", "sequence", None)`: None is
    a fixed size); named axes are dynamic, and the outputs are the fields of `axes` that are not
    inputs, in that order. The position ids are computed inside the graph from the input ids
    (padding_idx + running count of real tokens), as the model does. `opset` (default 17) must be
    in 14..20.

    `packed=True` writes a padding-free graph (`_Packed`): the same padded inputs, computed on
    the real tokens only; token-level outputs are the real tokens' rows (N, ...) in row-major
    order (`axes` names their first axis "tokens"), sequence-level ones stay (B, ...). It expects
    right-padded batches (the tokenizer's default). Multiple choice and decoders are refused.
    """
    if not isinstance(packed, bool):
        raise TypeError(f"packed must be True or False, got {packed!r}")
    opset = DEFAULT_OPSET if opset is None else opset
    if not isinstance(opset, int) or opset not in OPSETS:
        raise ValueError(f"opset must be an integer in {OPSETS.start}..{OPSETS.stop - 1}, got {opset!r}")
    mask = example.get("attention_mask")
    if mask is None or np.all(mask):
        # The trace records one branch: an example without padding would give a graph that ignores the mask.
        raise ValueError("the example batch must hold padding (an attention_mask with zeros)")
    inputs = list(example)
    outputs = [name for name in axes if name not in example]
    dynamic = {name: {i: a for i, a in enumerate(axes[name]) if a} for name in inputs + outputs}
    path = Path(directory) / FILE
    if packed and inputs != ["input_ids", "attention_mask"]:
        raise ValueError(f"a packed graph takes input_ids and attention_mask, got {', '.join(inputs)}")
    traced = _Packed(model.eval(), outputs) if packed else _Serving(model.eval(), inputs, outputs)
    tensors = tuple(as_tensor(np.asarray(example[name], np.int64)) for name in inputs)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
        # The TorchScript exporter (dynamo=False): the dynamo one cannot lower the model's input-check op.
        torch.onnx.export(
            traced, tensors, str(path), input_names=inputs, output_names=outputs,
            dynamic_axes=dynamic, opset_version=opset, dynamo=False, do_constant_folding=True,
        )
    return path


def load_exported(path: str | os.PathLike) -> Callable[[Mapping[str, Any]], dict[str, np.ndarray]]:
    """An onnxruntime session of the ONNX file at `path` as a function: NumPy inputs by name (ints
    cast to int64; inputs the graph does not take are refused) -> the output fields by name."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    names = [o.name for o in session.get_outputs()]

    def run(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        unknown = sorted(set(inputs) - set(wanted))
        if unknown:
            raise ValueError(f"the exported model takes {', '.join(wanted)}; got also {', '.join(unknown)}")
        feed = {name: np.asarray(inputs[name], np.int64) for name in wanted}
        return dict(zip(names, session.run(names, feed)))

    return run

