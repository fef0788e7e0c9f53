"""`roberta export`: the front end of `roberta_core.export.export`."""

from __future__ import annotations

import argparse

from ..export import DEFAULT_INT8_RECIPE, DTYPES, FORMATS, INT8_RECIPES, QUANTIZATIONS, export
from ..weights import HEADS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="CKPT", help="checkpoint directory")
    parser.add_argument("dst", metavar="OUT", help="new export folder (must not exist unless --overwrite)")
    parser.add_argument("--to", choices=FORMATS, required=True,
                        help="onnx (from PyTorch, run by onnxruntime), stablehlo (from JAX, jax.export), "
                             "savedmodel (from TensorFlow, serving_default signature)")
    parser.add_argument("--head", choices=HEADS, default=None,
                        help="which model to export (default: the checkpoint's architecture)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="precision of the artefact, verified at its own bar: float32 (every format), "
                             "float16 (onnx), bfloat16 (stablehlo) (default: float32)")
    parser.add_argument("--no-pooler", dest="pooler", action="store_false", default=None,
                        help="bare model: leave out the pooler (v4's add_pooling_layer=False); a checkpoint "
                             "saved without pooler weights is exported without it anyway")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None,
                        help="onnx only: also write model.int8.onnx (onnxruntime dynamic quantization)")
    parser.add_argument("--int8-recipe", choices=INT8_RECIPES, default=DEFAULT_INT8_RECIPE,
                        help="with --quantize int8: per-channel (one scale per output column, embedding tables "
                             "fp32; the default), per-tensor (onnxruntime's defaults, smallest file), "
                             "keep-lm-head (per-channel, the LM head fp32)")
    parser.add_argument("--packed", action="store_true",
                        help="onnx only: a padding-free graph; it takes the same right-padded batch, computes on the "
                             "real tokens only, and gives token-level outputs as their rows (tokens, ...) in "
                             "row-major order (np.flatnonzero(attention_mask) maps them back); sequence-level "
                             "outputs stay (batch, ...). Not for multiple choice")
    parser.add_argument("--opset", type=int, default=None, metavar="N", help="onnx only: ONNX opset, 14..20 (default: 17)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder at OUT (once the new one is verified)")


def run(args: argparse.Namespace) -> int:
    result = export(args.src, args.dst, to=args.to, head=args.head, dtype=args.dtype, quantize=args.quantize,
                    opset=args.opset, int8_recipe=args.int8_recipe,
                    pooler=args.pooler, packed=args.packed, overwrite=args.overwrite)
    opset = f", opset {result.opset}" if result.opset else ""
    opset += "" if args.dtype == "float32" else f", {args.dtype}"
    opset += ", packed" if result.packed else ""
    print(f"wrote {result.path} ({result.format}{opset}, {HEADS[result.head]}: {', '.join(result.files)}); "
          f"verified against the float64 reference, worst relative difference {max(c.rel for c in result.checks):.3g}")
    if result.int8:
        agreement = result.int8["top1_agreement"]
        agreement = "n/a (no logits)" if agreement is None else f"{agreement:.4f} of {result.int8['top1_compared']}"
        print(f"int8 ({result.int8['recipe']}): {result.int8['file']}, {result.int8['size_ratio']:.2f} of the fp32 size, "
              f"top-1 agreement with fp32 {agreement}")
    return 0
