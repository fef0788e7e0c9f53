"""`roberta export`: the front end of `roberta_core.export.export`."""

from __future__ import annotations

import argparse

from ..export import DTYPES, FORMATS, QUANTIZATIONS, export
from ..weights import HEADS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="CKPT", help="checkpoint directory")
    parser.add_argument("dst", metavar="OUT", help="new export folder (must not exist unless --overwrite)")
    parser.add_argument("--to", choices=FORMATS, required=True,
                        help="onnx (from PyTorch, run by onnxruntime), stablehlo (from JAX, jax.export), "
                             "savedmodel (from TensorFlow, serving_default signature)")
    parser.add_argument("--head", choices=HEADS, default=None,
                        help="which model to export (default: the checkpoint's architecture)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="precision of the artefact (default: float32)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None,
                        help="onnx only: also write model.int8.onnx (onnxruntime dynamic quantization)")
    parser.add_argument("--opset", type=int, default=None, metavar="N", help="onnx only: ONNX opset, 14..20 (default: 17)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder at OUT (once the new one is verified)")


def run(args: argparse.Namespace) -> int:
    result = export(args.src, args.dst, to=args.to, head=args.head, dtype=args.dtype, quantize=args.quantize,
                    opset=args.opset, overwrite=args.overwrite)
    opset = f", opset {result.opset}" if result.opset else ""
    print(f"wrote {result.path} ({result.format}{opset}, {HEADS[result.head]}: {', '.join(result.files)}); "
          f"verified against the float64 reference, worst relative difference {max(c.rel for c in result.checks):.3g}")
    if result.int8:
        agreement = result.int8["top1_agreement"]
        agreement = "n/a (no logits)" if agreement is None else f"{agreement:.4f} of {result.int8['top1_compared']}"
        print(f"int8: {result.int8['file']}, {result.int8['size_ratio']:.2f} of the fp32 size, "
              f"top-1 agreement with fp32 {agreement}")
    return 0
