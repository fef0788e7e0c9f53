"""Where TF XLA's first training step spends its time (issue 18): the benchmark's train step
(`benchmarks.worker`, 8 x 128, AdamW) traced, lowered to HLO and compiled, ours or transformers'.

    python -m benchmarks.tf_xla_compile_profile ours|ref LAYERS VARIANT CHECKPOINT

Run `ours` under .venv, `ref` under .bench-env. VARIANT is a dash-joined list of switches:
rows (ours: masked_positions_only=M, the labelled rows' static count, as the benchmark now),
masked (ours: masked_positions_only=True: under XLA the head on all B * T rows), plain (ours
without it), ironly (stop after the lowering to HLO: no XLA compile or run), cprof (Python
profile of the tracing, then the lowering's seconds), nograppler / nofold (Grappler off or its
constant folding off), nomlir (tf.config.experimental.disable_mlir_bridge()). The experiments
on the old masked LM head (a `tf.switch_case` over three row budgets: onebudget, twobudget,
outside, lossonly, cgrad, recompute) are in this file at commit 62bbfbc, whose head they patch.
Prints one JSON line: HLO instruction count, the lowering
(`ir_s`), first and second call seconds. A small checkpoint with roberta-base's widths and the
full vocabulary, made once under .venv:

    python -c "import roberta_core.config as C; from pathlib import Path; from benchmarks.run import make_checkpoints
    C.PRESETS['base2'] = {**C.PRESETS['roberta-base'], 'num_hidden_layers': 2}
    make_checkpoints('base2', Path('benchmarks/out/base2'))"      # -> benchmarks/out/base2/masked_lm
"""
import json, os, sys, time, re, collections
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
impl, layers, variant = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ckdir = sys.argv[4]
if impl == "ref":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tensorflow as tf
if "nograppler" in variant:
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
if "nomlir" in variant:
    tf.config.experimental.disable_mlir_bridge()
if "nofold" in variant:
    tf.config.optimizer.set_experimental_options({"constant_folding": False})
from benchmarks.worker import make_inputs, tf_train_step
case = {"name": "t", "task": "train", "lengths": [128] * 8, "T": 128, "seed": 0, "mask_fraction": 0.15}
if impl == "ours":
    import keras, roberta_tf as lib
    import roberta_tf.heads as H
    model = lib.TFRobertaForMaskedLM.from_pretrained(ckdir)
    AdamW = keras.optimizers.AdamW
else:
    import tf_keras, transformers as lib
    lib.logging.set_verbosity_error()
    model = lib.TFRobertaForMaskedLM.from_pretrained(ckdir, from_pt=True)
    AdamW = tf_keras.optimizers.AdamW
arrays = make_inputs(case, model.config.vocab_size)
inputs = {k: tf.constant(v) for k, v in arrays.items()}
extra = {}
if impl == "ours" and "masked" in variant:
    extra["masked_positions_only"] = True
if impl == "ours" and "rows" in variant:  # the static number of labelled rows, as the benchmark now
    extra["masked_positions_only"] = int((arrays["labels"] != -100).sum())
training = "nodrop" not in variant
opt = AdamW(learning_rate=1e-5, weight_decay=0.01)
apply = lambda grads: opt.apply_gradients(zip(grads, model.trainable_variables))
if impl == "ours" and "noinnerjit" not in variant:
    apply = tf.function(apply, jit_compile=True)
if "noopt" in variant:
    apply = lambda grads: None
fn = tf.function(tf_train_step(model, apply, extra, training), jit_compile=True)
args = (inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
t = time.perf_counter()
try:
    if "cprof" in variant:
        import cProfile, pstats
        pr = cProfile.Profile(); pr.enable()
        conc = fn.get_concrete_function(*args)
        pr.disable(); print("trace s", round(time.perf_counter() - t, 1), flush=True)
        pstats.Stats(pr).sort_stats("tottime").print_stats(12)
        t2 = time.perf_counter()
    hlo = fn.experimental_get_compiler_ir(*args)(stage="hlo")
    if "cprof" in variant:
        print("lowering s", round(time.perf_counter() - t2, 1), flush=True)
    ops = collections.Counter(re.findall(r"= \S+ (\w[\w-]*)\(", hlo))
    n = sum(ops.values())
    top = ops.most_common(12)
    big = re.findall(r"(f32\[[\d,]+\])\S* constant\(", hlo)
    sizes = collections.Counter(b for b in big if b.count(",") >= 1)
    print("HLO chars", len(hlo), "2-D+ f32 constants", sizes.most_common(8), flush=True)
    zeros = re.findall(r"(f32\[[\d,]+\])\S* broadcast\(", hlo)
    print("broadcasts", collections.Counter(zeros).most_common(8), flush=True)
except Exception as e:
    hlo, n, top = "", -1, str(e)[-1500:]
t_ir = time.perf_counter() - t
first = second = -1
if "ironly" not in variant:
    t = time.perf_counter(); fn(*args).numpy(); first = time.perf_counter() - t
    t = time.perf_counter(); fn(*args).numpy(); second = time.perf_counter() - t
print(json.dumps({"impl": impl, "layers": layers, "variant": variant, "hlo_instructions": n, "ir_s": round(t_ir, 1),
                  "first_call_s": round(first, 1), "second_s": round(second, 2), "top": top,
                  "while": hlo.count(" while("), "conditional": hlo.count(" conditional(")}))
