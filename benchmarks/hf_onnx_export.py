"""transformers 4.57.6's RobertaForMaskedLM exported to ONNX as its users do: `torch.onnx.export` (the
TorchScript exporter, opset 17, dynamic batch and sequence axes, constant folding), eager attention.
Runs under `.bench-env` only (it imports transformers); started by `benchmarks.quick18`.

    .bench-env/bin/python -m benchmarks.hf_onnx_export CHECKPOINT OUT.onnx
"""

from __future__ import annotations

import sys
import warnings


def main(src: str, dst: str) -> None:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    model = transformers.RobertaForMaskedLM.from_pretrained(src, attn_implementation="eager").eval()
    # A padded example: a trace of an unpadded batch may drop the mask's branch.
    ids = torch.tensor([[0, 5, 6, 7, 2, 1], [0, 8, 9, 10, 11, 2]])
    mask = (ids != model.config.pad_token_id).long()
    axes = {"batch": 0, "sequence": 1}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask), dst, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=17, dynamo=False, do_constant_folding=True,
                          dynamic_axes={name: {i: a for a, i in axes.items()}
                                        for name in ("input_ids", "attention_mask", "logits")})
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: wrote {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
