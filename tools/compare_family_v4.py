"""Our RoBERTa-family classes against transformers 4.57.6's, both ways (dev-only; never run by `make test`).

1. In .bench-env (transformers 4.57.6): tiny random XLMRoberta / Camembert / RobertaPreLayerNorm
   ForMaskedLM and ForSequenceClassification models are built with PyTorch, `save_pretrained` to
   WORK/<model>/ (model.safetensors; tf_model.h5 and flax_model.msgpack from v4's TF and Flax classes
   where v4 has them — it has no Flax CamemBERT), and their PyTorch outputs recorded (io.npz).
2. In .venv (ours): each folder is loaded with each backend's family class (`roberta_pt.XLMRobertaForMaskedLM`,
   `roberta_tf.TFXLMRobertaForMaskedLM`, `roberta_flax.FlaxXLMRobertaForMaskedLM`, ...), which reads its own
   framework's v4 file; outputs are compared with v4's; each model is saved back with `save_pretrained` in
   its own format (WORK/<model>-ours-<backend>/).
3. In .bench-env again: v4's class of that framework loads each folder we wrote (missing/unexpected keys
   reported) and its outputs are compared with the recorded ones.

    .venv/bin/python tools/compare_family_v4.py [--work /tmp/family_v4]

prints one Markdown table (max |Δ| of the logits on a padded batch; fp32 everywhere).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # v4's TF models are Keras 2 models
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OURS_PYTHON = REPO / ".venv" / "bin" / "python"
V4_PYTHON = REPO / ".bench-env" / "bin" / "python"

TINY = dict(
    vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
    max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
    eos_token_id=2, hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)
# v4 stem -> (config class, has Flax classes in v4)
MEMBERS = {"XLMRoberta": ("XLMRobertaConfig", True), "Camembert": ("CamembertConfig", False),
           "RobertaPreLayerNorm": ("RobertaPreLayerNormConfig", True)}
HEADS = {"ForMaskedLM": {}, "ForSequenceClassification": {"num_labels": 3}}
PREFIX = {"pt": "", "tf": "TF", "flax": "Flax"}
OWN_FORMAT = {"pt": "safetensors", "tf": "h5", "flax": "msgpack"}
OWN_FILE = {"pt": "model.safetensors", "tf": "tf_model.h5", "flax": "flax_model.msgpack"}


def models():
    return [(stem, head) for stem in MEMBERS for head in HEADS]


def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    lengths, T = (9, 5, 2), 9
    ids = np.full((3, T), TINY["pad_token_id"], dtype=np.int64)
    mask = np.zeros((3, T), dtype=np.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(3, TINY["vocab_size"], size=n)
        ids[b, 0], ids[b, n - 1] = TINY["bos_token_id"], TINY["eos_token_id"]
        mask[b, :n] = 1
    return ids, mask


# ---------------------------------------------------------------------------- step 1 and 3: transformers 4.57.6


def _v4_run(fw: str, model, ids, mask) -> np.ndarray:
    if fw == "pt":
        import torch

        with torch.no_grad():
            return model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    if fw == "tf":
        return np.asarray(model(input_ids=ids, attention_mask=mask, training=False).logits)
    return np.asarray(model(input_ids=ids, attention_mask=mask).logits)


def v4_make(work: Path) -> None:
    import torch
    import transformers

    assert transformers.__version__ == "4.57.6", transformers.__version__
    ids, mask = batch()
    for seed, (stem, head) in enumerate(models()):
        config_name, has_flax = MEMBERS[stem]
        config = getattr(transformers, config_name)(**TINY, **HEADS[head])
        torch.manual_seed(seed)
        model = getattr(transformers, stem + head)(config).eval()
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                noise = torch.randn(p.shape, generator=gen)
                p.copy_(1.0 + 0.1 * noise if name.endswith(("LayerNorm.weight", "layer_norm.weight")) else 0.2 * noise)
        out = work / (stem + head)
        shutil.rmtree(out, ignore_errors=True)
        model.save_pretrained(out)
        io = {"input_ids": ids, "attention_mask": mask, "pt_logits": _v4_run("pt", model, ids, mask)}
        for fw in ("tf", "flax") if has_flax else ("tf",):
            other = getattr(transformers, PREFIX[fw] + stem + head).from_pretrained(out, from_pt=True)
            tmp = work / "tmp"
            other.save_pretrained(tmp)
            shutil.copy(tmp / OWN_FILE[fw], out / OWN_FILE[fw])
            shutil.rmtree(tmp)
            io[f"{fw}_logits"] = _v4_run(fw, other, ids, mask)
        np.savez(out / "io.npz", **io)


def v4_load_ours(work: Path) -> None:
    import transformers

    rows = []
    for stem, head in models():
        io = np.load(work / (stem + head) / "io.npz")
        for fw in PREFIX:
            folder = work / f"{stem + head}-ours-{fw}"
            if not folder.is_dir():
                continue
            cls = getattr(transformers, PREFIX[fw] + stem + head, None)
            if cls is None:
                rows.append(dict(model=stem + head, backend=fw, v4_class=PREFIX[fw] + stem + head, max_abs=None,
                                 problems="v4 has no such class"))
                continue
            if fw == "flax":  # Flax's from_pretrained has no output_loading_info
                model, info = cls.from_pretrained(folder), {}
            else:
                model, info = cls.from_pretrained(folder, output_loading_info=True)
            got = _v4_run(fw, model, io["input_ids"], io["attention_mask"])
            problems = "; ".join(f"{k}: {v}" for k, v in info.items() if v and k != "error_msgs") or "none"
            config = json.loads((folder / "config.json").read_text())
            rows.append(dict(model=stem + head, backend=fw, v4_class=cls.__name__,
                             max_abs=float(np.abs(got - io["pt_logits"]).max()), problems=problems,
                             saved_as=f"{config.get('model_type')} {config.get('architectures')}"))
    (work / "v4_load_ours.json").write_text(json.dumps(rows, indent=1))


# ---------------------------------------------------------------------------- step 2: ours


def ours(work: Path) -> None:
    import importlib
    import warnings

    from roberta_core import backends, runtime

    rows = []
    for stem, head in models():
        src = work / (stem + head)
        io = np.load(src / "io.npz")
        for fw in PREFIX:
            if not runtime.available(fw):
                continue
            module = importlib.import_module(backends.get(fw).package)
            name = PREFIX[fw] + stem + head
            cls = getattr(module, name)
            # Each backend reads its own framework's v4 file (CamemBERT has no Flax file in v4: safetensors).
            folder = src if (src / OWN_FILE[fw]).is_file() else None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = cls.from_pretrained(folder or src)
            got = runtime.run_model(fw, model, {"input_ids": io["input_ids"], "attention_mask": io["attention_mask"]})
            ref_key = f"{fw}_logits" if f"{fw}_logits" in io else "pt_logits"
            dst = work / f"{stem + head}-ours-{fw}"
            shutil.rmtree(dst, ignore_errors=True)
            model.save_pretrained(dst, format=OWN_FORMAT[fw])
            rows.append(dict(
                model=stem + head, backend=fw, our_class=name,
                read=OWN_FILE[fw] if (src / OWN_FILE[fw]).is_file() else "model.safetensors",
                model_type=model.config.model_type,
                vs_v4_pt=float(np.abs(got["logits"] - io["pt_logits"]).max()),
                vs_v4_same_fw=float(np.abs(got["logits"] - io[ref_key]).max()),
                warnings=len([w for w in caught if "weights" in str(w.message).lower()]),
            ))
    (work / "ours.json").write_text(json.dumps(rows, indent=1))


# ---------------------------------------------------------------------------- driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/family_v4", help="folder for the checkpoints (replaced)")
    parser.add_argument("--step", choices=("v4_make", "ours", "v4_load_ours"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work)
    if args.step:
        {"v4_make": v4_make, "ours": ours, "v4_load_ours": v4_load_ours}[args.step](work)
        return 0
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for python, step in ((V4_PYTHON, "v4_make"), (OURS_PYTHON, "ours"), (V4_PYTHON, "v4_load_ours")):
        subprocess.run([str(python), __file__, "--work", str(work), "--step", step], check=True, env=env,
                       stderr=subprocess.DEVNULL if step != "ours" else None)
    ours_rows = json.loads((work / "ours.json").read_text())
    back = {(r["model"], r["backend"]): r for r in json.loads((work / "v4_load_ours.json").read_text())}
    print("| v4 model | backend | our class | read (v4's file) | model_type | max abs vs v4 PyTorch | vs v4 same framework "
          "| v4 loads ours: class | max abs | missing/unexpected | saved config |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    worst = 0.0
    for r in ours_rows:
        b = back.get((r["model"], r["backend"]), {})
        worst = max(worst, r["vs_v4_pt"], r["vs_v4_same_fw"], b.get("max_abs") or 0.0)
        back_diff = "-" if b.get("max_abs") is None else f"{b['max_abs']:.3g}"
        print(f"| {r['model']} | {r['backend']} | {r['our_class']} | {r['read']} | {r['model_type']} | {r['vs_v4_pt']:.3g} "
              f"| {r['vs_v4_same_fw']:.3g} | {b.get('v4_class', '-')} | {back_diff} | {b.get('problems', '-')} "
              f"| {b.get('saved_as', '-')} |")
    print(f"\nworst max |Δ| {worst:.3g}")
    problems = [b for b in back.values() if b["problems"] not in ("none", "v4 has no such class")]
    return 0 if worst <= 1e-5 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
