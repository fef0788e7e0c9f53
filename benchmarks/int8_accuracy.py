"""int8 accuracy on trained checkpoints (issue 18): does dynamic int8 keep the masked-token predictions?

    python -m benchmarks.int8_accuracy [--demo demo-run/pretrain] [--no-sapiens] [--json out.json]
                                       [--variants 0.5:data,0.5:probe,0.85:data:lm+ffn,0:-:lm+ffn]

For each trained MaskedLM checkpoint — the demo's pretraining run (`make demo`; its held-out split
with the run's own evaluation masks, `recipe.EVAL_SEED`) and the two Sapiens fairseq RoBERTa models
(`sapiens==1.0.5`'s VH and VL checkpoints, imported with `convert --from fairseq`, found with
`importlib.util.find_spec` and never imported; masked residues of a fixed set of antibody
sequences) — it runs the same masked batches through

- PyTorch fp32 (`roberta_pt`) and PyTorch int8 (`torch.ao.quantization.quantize_dynamic` of every
  `nn.Linear`, qint8 weights, activations quantized per call): its default (one scale per weight
  tensor) and per-channel (`per_channel_dynamic_qconfig`, one scale per output row);
- the ONNX export (`roberta_core.export`, verified against the float64 reference) in onnxruntime
  at fp32 and its int8 graphs (`export.quantize_int8`): every recipe of `export.INT8_RECIPES`
  (the default, 'per-channel', is what `roberta export --quantize int8` writes);

and, with `--variants`, experimental int8 graphs of the same export (per-channel, as the default
recipe): `ALPHA:CAL[:KEEP]` applies SmoothQuant (`benchmarks.int8_smoothquant`, alpha ALPHA; 0 = no
smoothing) calibrated on CAL — 'data' (the demo's training split, 16 batches; for Sapiens the
unmasked sequences) or 'probe' (the export's own probe batches: random ids, what `roberta export`
has without a user's text) — and leaves KEEP fp32: 'lm' (the LM head's two MatMuls) or 'lm+ffn'
(those and every feed-forward's second MatMul, the most sensitive nodes measured one at a time)
or 'lm+ffn0' (the LM head and the first layer's second feed-forward MatMul);
each variant's title says the share of matmul FLOPs it leaves fp32 at roberta-base sizes.
`--sensitivity ALPHA` instead measures, on the demo, one MatMul at a time int8 and a greedy search
of the MatMuls to keep fp32.

It reports, at the masked positions only: the top-1 agreement of each int8 run with its own fp32
run, and the masked-token accuracy (prediction == the original token) of every run; and how close
fp32's own top two are (the share of predictions whose lead over the runner-up is under 1 point
of probability: those are the ones a small perturbation flips). Timing-free: the numbers do not
depend on the machine's load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# A fixed set of antibody variable domains (public therapeutic sequences) and the sapiens README's
# own examples: the VH model sees the heavy chains, the VL model the light chains.
HEAVY = [
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS",
    "EVQLVESGGGLVQPGRSLRLSCAASGFTFDDYAMHWVRQAPGKGLEWVSAITWNSGHIDYADSVEGRFTISRDNAKNSLYLQMNSLRAEDTAVYYCAKVSYLSTASSLDYWGQGTLVTVSS",
    "QVQLQQPGAELVKPGASVKMSCKASGYTFTSYNMHWVKQTPGRGLEWIGAIYPGNGDTSYNQKFKGKATLTADKSSSTAYMQLSSLTSEDSAVYYCARSTYYGGDWYFNVWGAGTTVTVSA",
    "EVQLVESGGGLVQPGGSLRLSCAASGYTFTNYGMNWVRQAPGKGLEWVGWINTYTGEPTYAADFKRRFTFSLDTSKSTAYLQMNSLRAEDTAVYYCAKYPHYYGSSHWYFDVWGQGTLVTVSS",
    "QVQLVQSGVEVKKPGASVKVSCKASGYTFTNYYMYWVRQAPGQGLEWMGGINPSNGGTNFNEKFKNRVTLTTDSSTTTAYMELKSLQFDDTAVYYCARRDYRFDMGFDYWGQGTTVTVSS",
    "QVQLVESGGGVVQPGRSLRLDCKASGITFSNSGMHWVRQAPGKGLEWVAVIWYDGSKRYYADSVKGRFTISRDNSKNTLFLQMNSLRAEDTAVYYCATNDDYWGQGTLVTVSS",
]
LIGHT = [
    "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK",
    "DIQMTQSPSSLSASVGDRVTITCRASQGIRNYLAWYQQKPGKAPKLLIYAASTLQSGVPSRFSGSGSGTDFTLTISSLQPEDVATYYCQRYNRAPYTFGQGTKVEIK",
    "QIVLSQSPAILSASPGEKVTMTCRASSSVSYIHWFQQKPGSSPKPWIYATSNLASGVPVRFSGSGSGTSYSLTISRVEAEDAATYYCQQWTSNPPTFGGGTKLEIK",
    "DIQMTQSPSSLSASVGDRVTITCSASQDISNYLNWYQQKPGKAPKVLIYFTSSLHSGVPSRFSGSGSGTDFTLTISSLQPEDFATYYCQQYSTVPWTFGQGTKVEIK",
    "EIVLTQSPATLSLSPGERATLSCRASKGVSTSGYSYLHWYQQKPGQAPRLLIYLASYLESGVPARFSGSGSGTDFTLTISSLEPEDFAVYYCQHSRDLPLTFGGGTKVEIK",
    "EIVLTQSPATLSLSPGERATLSCRASQSVSSYLAWYQQKPGQAPRLLIYDASNRATGIPARFSGSGSGTDFTLTISSLEPEDFAVYYCQQRSNWPRTFGQGTKVEIK",
]
SAPIENS_DRAWS = 10  # independent 15% maskings of each sequence


# ---------------------------------------------------------------------------- masked batches


def _demo_data(ckpt: Path):
    """The demo run's data (`recipe.PretrainData`, rebuilt as its run.json says) and its batch size in tokens."""
    from roberta_core.app import recipe
    from roberta_core.auto_tokenizer import load_tokenizer

    run = json.loads((ckpt / "run.json").read_text())
    config = recipe.resolve_config(str(ckpt))
    max_len = config.max_sequence_length if run.get("max_len") is None else run["max_len"]
    data = recipe.PretrainData.build(run["corpus"], load_tokenizer(ckpt), ckpt / "data", max_len=max_len,
                                     packing=run.get("packing", recipe.FULL_SENTENCES))
    return data, max(max_len, run["batch_tokens"] // run.get("accumulate", 1))


def demo_batches(ckpt: Path) -> list[dict[str, np.ndarray]]:
    """The demo run's held-out batches with the masks its own evaluation uses (`EVAL_SEED`)."""
    from roberta_core.app import recipe

    data, batch_tokens = _demo_data(ckpt)
    return list(data.batches("heldout", batch_tokens=batch_tokens, seed=recipe.EVAL_SEED).epoch(0))


def protein_batches(ckpt: Path, sequences: list[str], draws: int = SAPIENS_DRAWS) -> list[dict[str, np.ndarray]]:
    """Each sequence `draws` times, 15% of its residues (at least one) replaced by <mask>, the
    original residue as the label; one batch per draw, right-padded."""
    from roberta_core.auto_tokenizer import load_tokenizer

    tok = load_tokenizer(ckpt)
    encoded = [np.asarray(tok(s)["input_ids"], np.int64) for s in sequences]
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(draws):
        T = max(len(e) for e in encoded)
        ids = np.full((len(encoded), T), tok.pad_token_id, np.int64)
        labels = np.full_like(ids, -100)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encoded):
            ids[row, : len(e)], mask[row, : len(e)] = e, 1
            inner = np.arange(1, len(e) - 1)  # not <s> or </s>
            chosen = rng.choice(inner, size=max(1, round(0.15 * inner.size)), replace=False)
            labels[row, chosen] = e[chosen]
            ids[row, chosen] = tok.mask_token_id
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return batches


def calibration_batches(ckpt: Path, sequences: list[str] | None, count: int = 16) -> dict[str, list[dict]]:
    """SmoothQuant's calibration batches by source: 'data' — the demo run's training split, masked
    as its training masks it (its first `count` batches; never the held-out split measured) or,
    for Sapiens, the sequences unmasked (one batch); 'probe' — the export's probe batches (random ids)."""
    from roberta_core.config import RobertaConfig
    from roberta_core.export import probe_batches

    if sequences is None:
        data, batch_tokens = _demo_data(ckpt)
        data_batches = []
        for batch in data.batches("train", batch_tokens=batch_tokens, seed=1).epoch(0):
            data_batches.append({k: batch[k] for k in ("input_ids", "attention_mask")})
            if len(data_batches) == count:
                break
    else:
        unmasked = protein_batches(ckpt, sequences, draws=1)[0]
        labels = unmasked.pop("labels")
        unmasked["input_ids"] = np.where(labels != -100, labels, unmasked["input_ids"])
        data_batches = [{k: unmasked[k] for k in ("input_ids", "attention_mask")}]
    return {"data": data_batches, "probe": probe_batches(RobertaConfig.from_pretrained(ckpt), "masked_lm")}


# ---------------------------------------------------------------------------- the four runs


def pt_runs(ckpt: Path) -> dict:
    """PyTorch fp32, and torch.ao dynamic int8 of every nn.Linear (the LM head's decoder included),
    per tensor (torch's default) and per channel."""
    import torch
    from torch import nn
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    from roberta_pt import RobertaForMaskedLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load = lambda: RobertaForMaskedLM.from_pretrained(ckpt).eval()  # noqa: E731
        models = {"pt_fp32": load(),
                  "pt_int8": quantize_dynamic(load(), {nn.Linear}, dtype=torch.qint8),
                  "pt_int8_pc": quantize_dynamic(load(), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)}

    def runner(model):
        def run(batch):
            with torch.inference_mode():
                return model(input_ids=torch.from_numpy(batch["input_ids"]),
                             attention_mask=torch.from_numpy(batch["attention_mask"])).logits.float().numpy()
        return run

    return {key: runner(model) for key, model in models.items()}


def onnx_runs(ckpt: Path, work: Path, variants: list[str] = (), calibration: dict | None = None) -> dict:
    """onnxruntime on the verified fp32 export and on its int8 graph by every recipe, and by every
    experimental variant (`variant_graph`; `calibration`: batches by source name)."""
    import roberta_pt.export
    from roberta_core import export as export_module

    out = work / ("onnx-" + ckpt.name)
    export_module.export(ckpt, out, to="onnx", head="masked_lm", overwrite=True, log=lambda line: None)
    runs = {"onnx_fp32": export_module.load_exported(out)}
    for recipe in export_module.INT8_RECIPES:
        target = export_module.quantize_int8(out / "model.onnx", work / f"{ckpt.name}.{recipe}.onnx", recipe)
        runs[f"onnx_int8_{recipe}"] = roberta_pt.export.load_exported(target)
    for variant in variants:
        target = variant_graph(out / "model.onnx", work / f"{ckpt.name}.{variant.replace(':', '_')}.onnx",
                               variant, calibration or {})
        runs[f"onnx_int8_{variant}"] = roberta_pt.export.load_exported(target)
    return {key: (lambda batch, fn=fn: fn({k: batch[k] for k in ("input_ids", "attention_mask")})["logits"])
            for key, fn in runs.items()}


# ---------------------------------------------------------------------------- experimental variants

KEEPS = {"": lambda name: False,
         "lm": lambda name: "lm_head/" in name,
         "lm+ffn": lambda name: "lm_head/" in name or ("/output/dense/" in name and "/attention/" not in name),
         "lm+ffn0": lambda name: "lm_head/" in name or "/layer.0/output/dense/" in name}


def parse_variant(variant: str) -> tuple[float, str, str]:
    """'ALPHA:CAL[:KEEP]' -> (alpha, calibration source, keep)."""
    parts = variant.split(":")
    if len(parts) not in (2, 3) or parts[1] not in ("data", "probe", "-") or (parts[2:] or [""])[0] not in KEEPS:
        raise ValueError(f"variant {variant!r}: expected ALPHA:CAL[:KEEP], CAL data|probe|-, KEEP "
                         f"{'|'.join(k for k in KEEPS if k)}")
    alpha = float(parts[0])
    if not 0.0 <= alpha < 1.0 or (alpha > 0 and parts[1] == "-"):
        raise ValueError(f"variant {variant!r}: ALPHA in [0, 1) (0: no smoothing), and a calibration when > 0")
    return alpha, parts[1], (parts[2:] or [""])[0]


def variant_graph(fp32: Path, target: Path, variant: str, calibration: dict) -> Path:
    """The int8 graph of one experimental variant: SmoothQuant (if alpha > 0) of the fp32 graph,
    then onnxruntime's per-channel dynamic quantization of every MatMul but those KEEP leaves fp32."""
    import onnx

    from benchmarks.int8_smoothquant import smooth

    alpha, source, keep = parse_variant(variant)
    if alpha > 0:
        fp32 = smooth(fp32, target.with_suffix(".smooth.onnx"), calibration[source], alpha=alpha)
    names = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node if n.op_type == "MatMul"]
    return quantize_per_channel(fp32, target, exclude=[n for n in names if KEEPS[keep](n)])


def quantize_per_channel(fp32: Path, target: Path, exclude: list[str] = (), only: list[str] | None = None) -> Path:
    """onnxruntime's per-channel dynamic int8 of the MatMuls of `fp32` (all, or `only`), but `exclude`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from roberta_core.export import _quiet_root_logger
    from roberta_core.onnx_int8 import pair_bounded_weights

    options = {} if only is None else {"nodes_to_quantize": list(only)}
    with warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=list(exclude), **options)
    return pair_bounded_weights(fp32, target)  # as `quantize_int8`: exact on CPUs without VNNI


def sensitivity(ckpt: Path, work: Path, alpha: float, steps: int = 6) -> None:
    """On the demo: the top-1 agreement with one MatMul at a time int8 (per channel, after
    SmoothQuant with `alpha` calibrated on the training split, if > 0), then a greedy search
    that keeps fp32, one at a time, the MatMul whose exclusion agrees best, until 99% or `steps`.
    The search is scored on the held-out tokens it reports: an upper bound, not a recipe."""
    import onnx

    import roberta_pt.export
    from benchmarks.int8_smoothquant import smooth
    from roberta_core import export as export_module

    batches = demo_batches(ckpt)
    out = work / "onnx-sensitivity"
    export_module.export(ckpt, out, to="onnx", head="masked_lm", overwrite=True, log=lambda line: None)
    fp32 = out / "model.onnx"
    if alpha > 0:
        fp32 = smooth(fp32, work / "sensitivity.smooth.onnx", calibration_batches(ckpt, None)["data"], alpha=alpha)
    graph = onnx.load(str(fp32)).graph
    weights = {i.name for i in graph.initializer}
    names = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    reference = roberta_pt.export.load_exported(fp32)
    inputs = [{k: b[k] for k in ("input_ids", "attention_mask")} for b in batches]
    masked = [b["labels"] != -100 for b in batches]
    want = np.concatenate([reference(x)["logits"][m].argmax(-1) for x, m in zip(inputs, masked)])

    def agreement(target: Path) -> float:
        run = roberta_pt.export.load_exported(target)
        got = np.concatenate([run(x)["logits"][m].argmax(-1) for x, m in zip(inputs, masked)])
        return float(np.mean(got == want))

    target = work / "sensitivity.int8.onnx"
    print(f"alpha {alpha:g}: every MatMul int8: {agreement(quantize_per_channel(fp32, target)):.2%}")
    for name in names:
        print(f"  only {name} int8: {agreement(quantize_per_channel(fp32, target, only=[name])):.2%}", flush=True)
    kept: list[str] = []
    while len(kept) < min(steps, len(names)):
        score, name = max((agreement(quantize_per_channel(fp32, target, exclude=kept + [n])), n)
                          for n in names if n not in kept)
        kept.append(name)
        print(f"  greedy: {len(kept)} fp32 (+ {name}): {score:.2%}", flush=True)
        if score >= 0.99:
            break


def fp32_share(keep: str, layers: int = 12, hidden: int = 768, intermediate: int = 3072, vocab: int = 50265,
               tokens: int = 128) -> float:
    """The share of a MaskedLM forward's matmul FLOPs (every MatMul: the projections, the two
    attention products, the LM head) that KEEP leaves fp32, at roberta-base sizes by default."""
    per_layer = 4 * hidden * hidden + 2 * hidden * intermediate + 2 * tokens * hidden
    lm = hidden * hidden + hidden * vocab
    total = layers * per_layer + lm
    kept = {"": 0, "lm": lm, "lm+ffn": lm + layers * hidden * intermediate, "lm+ffn0": lm + hidden * intermediate}[keep]
    return kept / total


def variant_title(variant: str) -> str:
    alpha, source, keep = parse_variant(variant)
    calibrated = "training text" if source == "data" else "probe ids"
    what = f"SmoothQuant α={alpha:g} ({calibrated})" if alpha else "no smoothing"
    return f"int8 {what}, {'fp32: ' + keep if keep else 'all int8'} ({fp32_share(keep):.0%} FLOPs fp32)"


# ---------------------------------------------------------------------------- measurement


def measure(name: str, batches: list[dict[str, np.ndarray]], runs: dict) -> dict:
    """Top-1 at the masked positions of every run; agreement of each int8 run with its framework's
    fp32 run; the share of fp32 predictions within 1 point of probability of the runner-up."""
    predictions = {k: [] for k in runs}
    labels, margins = [], []
    for batch in batches:
        keep = batch["labels"] != -100
        labels.append(batch["labels"][keep])
        for key, run in runs.items():
            logits = run(batch)[keep]
            predictions[key].append(logits.argmax(-1))
            if key == "pt_fp32":
                p = np.exp(logits - logits.max(-1, keepdims=True))
                top2 = np.sort(p / p.sum(-1, keepdims=True), -1)[:, -2:]
                margins.append(top2[:, 1] - top2[:, 0])
    labels = np.concatenate(labels)
    top = {k: np.concatenate(v) for k, v in predictions.items()}
    clear = np.concatenate(margins) >= 0.01
    row = {"model": name, "masked_tokens": int(labels.size),
           "near_ties": float(np.mean(np.concatenate(margins) < 0.01))}
    for key in runs:
        row[f"accuracy_{key}"] = float(np.mean(top[key] == labels))
        if "_int8" in key:
            same = top[key] == top[key.split("_int8")[0] + "_fp32"]
            row[f"agreement_{key}"] = float(np.mean(same))
            row[f"agreement_clear_{key}"] = float(np.mean(same[clear]))  # fp32's lead >= 1 point
    return row


def table(rows: list[dict], variants: list[str] = ()) -> str:
    from roberta_core.export import INT8_RECIPES

    runs = [("onnx_int8_" + r, f"ONNX Runtime int8 {r}") for r in INT8_RECIPES]
    runs += [("onnx_int8_" + v, "ONNX Runtime " + variant_title(v)) for v in variants]
    runs += [("pt_int8", "PyTorch int8 (torch.ao default)"), ("pt_int8_pc", "PyTorch int8 per-channel")]
    out = ["| checkpoint | masked tokens | fp32 near-ties | fp32 accuracy (PT · ORT) | "
           + " | ".join(f"{title}: agreement · accuracy" for _, title in runs) + " |",
           "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in runs) + " |"]
    for r in rows:
        out.append(f"| {r['model']} | {r['masked_tokens']:,} | {r['near_ties']:.1%} | "
                   f"{r['accuracy_pt_fp32']:.2%} · {r['accuracy_onnx_fp32']:.2%} | "
                   + " | ".join(f"**{r['agreement_' + key]:.2%}** · {r['accuracy_' + key]:.2%}" for key, _ in runs) + " |")
    return "\n".join(out)


def sapiens_checkpoints(work: Path) -> list[tuple[str, Path, list[str]]]:
    spec = importlib.util.find_spec("sapiens")  # never imported: it imports fairseq
    if spec is None or spec.origin is None:
        print("sapiens==1.0.5 is not installed (pip install --no-deps sapiens==1.0.5): skipped", file=sys.stderr)
        return []
    from roberta_core.conversion import convert

    models = Path(spec.origin).parent / "models" / "v1"
    found = []
    for chain, sequences in (("vh", HEAVY), ("vl", LIGHT)):
        dst = work / f"sapiens-{chain}"
        convert(models / f"checkpoint_{chain}.pt", dst, from_format="fairseq", verify=False, overwrite=True,
                progress=False, log=lambda line: None)
        found.append((f"sapiens {chain.upper()} (fairseq, {len(sequences)} sequences × {SAPIENS_DRAWS} maskings)",
                      dst, sequences))
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", default=str(ROOT / "demo-run" / "pretrain"), help="the demo's pretraining checkpoint")
    p.add_argument("--no-sapiens", action="store_true", help="only the demo checkpoint")
    p.add_argument("--json", default=None, help="write the rows here")
    p.add_argument("--variants", default="", help="experimental int8 graphs, ALPHA:CAL[:KEEP],... (module docstring)")
    p.add_argument("--sensitivity", type=float, default=None, metavar="ALPHA",
                   help="instead: the demo's agreement with one MatMul at a time int8, and a greedy search of "
                        "the MatMuls to keep fp32 (SmoothQuant ALPHA first if > 0)")
    args = p.parse_args(argv)
    if args.sensitivity is not None:
        with tempfile.TemporaryDirectory() as tmp:
            sensitivity(Path(args.demo), Path(tmp), args.sensitivity)
        return 0
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        parse_variant(v)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = []
        demo = Path(args.demo)
        if (demo / "model.safetensors").is_file() or any(demo.glob("*.safetensors")):
            models.append((f"demo ({demo.relative_to(ROOT) if demo.is_relative_to(ROOT) else demo}, held-out split)",
                           demo, None))
        else:
            print(f"{demo}: no checkpoint (run `make demo`): skipped", file=sys.stderr)
        if not args.no_sapiens:
            models += sapiens_checkpoints(work)
        for name, ckpt, sequences in models:
            batches = demo_batches(ckpt) if sequences is None else protein_batches(ckpt, sequences)
            calibration = calibration_batches(ckpt, sequences) if variants else {}
            row = measure(name, batches, {**pt_runs(ckpt), **onnx_runs(ckpt, work, variants, calibration)})
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(table(rows, variants))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
