"""The PyTorch LM head's decoder on CPU: MKL's product (`F.linear`) against oneDNN's kernel
(`roberta_pt._framework.vocabulary_projection`), alone and inside the calls that use it.

    python -m benchmarks.lm_decoder [--rounds 12] [--cases product,mlm-8x128,mlm-1x512,fill-mask,generate]

One process, roberta-base (random weights, benchmarks/out/roberta-base, made by benchmarks.run
if absent); each round times every case with the decoder on MKL and then on oneDNN (the order
alternating from round to round), so a slow spell of a shared machine falls on both alike. The
table gives each side's median and minimum and the median of the per-round ratios (MKL / oneDNN,
> 1 is faster). Outputs of the two sides are compared once per case (max abs difference).

Cases: `product` the (M, 768) x (768, 50,265) product alone at M = 1, 8, 128, 1,024; `mlm-8x128`
and `mlm-1x512` the MaskedLM forward (every position's logits); `fill-mask` the MaskedLM forward
with `masked_positions_only` on 8 x 128 with one mask a row (what the fill-mask pipeline runs);
`generate` a causal LM of roberta-base's size (the MaskedLM's weights with `is_decoder=True`),
greedy, 32 new tokens after a 16-token prompt, batch 1 and 4.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import roberta_pt
import roberta_pt._framework as framework
from benchmarks.run import CACHE, make_checkpoints

CASES = ("product", "mlm-8x128", "mlm-1x512", "fill-mask", "generate")


AVAILABLE = framework._onednn_linear  # the import's probe


def _kernel(onednn: bool) -> None:
    if onednn and not AVAILABLE:
        raise SystemExit("oneDNN's linear kernel is not usable here (not x86, or this torch build lacks it)")
    framework._onednn_linear = onednn


def _calls() -> dict:
    """name -> a function of no argument returning a tensor (inference mode inside)."""
    paths = make_checkpoints("roberta-base", CACHE / "roberta-base")
    mlm = roberta_pt.RobertaForMaskedLM.from_pretrained(paths["mlm"]).eval()
    rng = np.random.default_rng(0)
    calls = {}

    def infer(fn):
        def run():
            with torch.inference_mode():
                return fn()
        return run

    if "product" in ARGS.cases:
        weight, bias = mlm.lm_head.decoder.weight.detach(), mlm.lm_head.bias.detach()
        decoder = torch.nn.Linear(weight.shape[1], weight.shape[0])
        decoder.weight, decoder.bias = torch.nn.Parameter(weight), torch.nn.Parameter(bias)
        for rows in (1, 8, 128, 1024):
            x = torch.randn(rows, weight.shape[1])
            repeats = max(1, 128 // rows)
            calls[f"product M={rows} (x{repeats})"] = infer(
                lambda x=x, repeats=repeats: [framework.vocabulary_projection(decoder, x) for _ in range(repeats)][-1])
    for B, T in ((8, 128), (1, 512)):
        if f"mlm-{B}x{T}" in ARGS.cases:
            ids = torch.from_numpy(rng.integers(3, 50000, (B, T)))
            ids[:, 0] = 0
            calls[f"mlm-{B}x{T}"] = infer(lambda ids=ids: mlm(input_ids=ids).logits)
    if "fill-mask" in ARGS.cases:
        ids = torch.from_numpy(rng.integers(3, 50000, (8, 128)))
        labels = torch.full_like(ids, -100)
        labels[torch.arange(8), torch.from_numpy(rng.integers(1, 127, 8))] = 5
        calls["fill-mask 8x128, 8 masks"] = infer(
            lambda: mlm(input_ids=ids, labels=labels, masked_positions_only=True).logits)
    if "generate" in ARGS.cases:
        config = mlm.config.__class__.from_dict({**mlm.config.to_dict(), "is_decoder": True})
        clm = roberta_pt.RobertaForCausalLM(config).eval()
        clm.load_state_dict(mlm.state_dict())
        for B in (1, 4):
            prompt = torch.from_numpy(rng.integers(3, 50000, (B, 16)))
            calls[f"generate B={B}, 32 new"] = infer(
                lambda prompt=prompt: clm.generate(prompt, max_new_tokens=32, eos_token_id=[]).float())
    return calls


def main() -> None:
    calls = _calls()
    outputs = {}
    for name, call in calls.items():  # warm-up, and the two sides' outputs
        outputs[name] = []
        for onednn in (False, True):
            _kernel(onednn)
            outputs[name].append(call())
    times = {name: {False: [], True: []} for name in calls}
    for r in range(ARGS.rounds):
        for name, call in calls.items():
            for onednn in ((False, True) if r % 2 == 0 else (True, False)):
                _kernel(onednn)
                start = time.perf_counter()
                call()
                times[name][onednn].append(time.perf_counter() - start)
    framework._onednn_linear = AVAILABLE
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {ARGS.rounds} rounds\n")
    print("| call | MKL ms, median (min) | oneDNN ms, median (min) | **MKL / oneDNN**, median of rounds | outputs max abs Δ |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, sides in times.items():
        mkl, dnn = sides[False], sides[True]
        ratio = statistics.median(a / b for a, b in zip(mkl, dnn))
        a, b = outputs[name]
        delta = float((a.float() - b.float()).abs().max())
        print(f"| {name} | {1e3 * statistics.median(mkl):,.1f} ({1e3 * min(mkl):,.1f}) | "
              f"{1e3 * statistics.median(dnn):,.1f} ({1e3 * min(dnn):,.1f}) | **{ratio:.2f}×** | {delta:.1e} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ARGS = parser.parse_args()
    ARGS.cases = ARGS.cases.split(",")
    unknown = sorted(set(ARGS.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    main()
