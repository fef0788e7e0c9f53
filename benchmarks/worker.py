"""One benchmark process: load one model of one implementation in one framework, time the cases
it is given, print one JSON line per case. Started by `benchmarks.run`, never imported by it.

    python -m benchmarks.worker '<json spec>'

The same file runs under our venv (`impl: ours` -> roberta_pt / roberta_tf / roberta_flax) and
under the reference venv (`impl: ref` -> transformers), so it imports nothing of ours at module
level, only NumPy; each framework is imported inside its own section. Inputs are made here from
the seed with NumPy, so both sides see the same ids, masks and labels; the weights come from the
same checkpoint directory.

Spec: impl, framework (pt | tf | flax | ort), mode (pt: eager | sdpa | compile | int8; tf: eager |
function | xla; flax: jit; ort: fp32), dtype (fp32 | bf16), device (cpu | cuda), checkpoint (MaskedLM checkpoint dir),
cls_checkpoint (sequence classification dir), warmup, repeats, and cases: a list of
{name, task (mlm | cls | train | load | peak), lengths (real length per row), T, seed, mask_fraction,
unpad, masked_only}. `unpad` and `masked_only` are our options (ignored for the reference).
PyTorch `int8` is `torch.ao.quantization.quantize_dynamic` of every nn.Linear (qint8 weights,
activations quantized per call) of the sdpa model, inference only. `ort` times ONNX files in
onnxruntime instead of a model: `files` maps a label to an .onnx path; every file gets a session in
the one process and the timed runs go round the files in turn, so a load that comes and goes hits
them alike; one RESULT per (case, file), its `impl` the label.

`impl: both` (`benchmarks.run --interleaved`; the reference venv with our `src` on PYTHONPATH) runs
ours and the reference in one process, each in its own thread, taking turns (`_Turns`): only one
computes at a time, and their timed calls alternate, ours, reference, ours, ... so a slow spell of
a shared machine falls on both sides alike. Each RESULT then says its `impl`.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time

import numpy as np

PAD, BOS, EOS, MASK = 1, 0, 2, 50264


# ---------------------------------------------------------------------------- inputs

def make_inputs(case: dict, vocab_size: int) -> dict:
    """ids (B, T) right-padded with <pad>, each row `<s> ... </s>` of its length; mask (B, T);
    for training, 15% of the real non-special tokens replaced by <mask> with labels, -100 elsewhere."""
    rng = np.random.default_rng(case.get("seed", 0))
    lengths, T = case["lengths"], case["T"]
    B = len(lengths)
    ids = np.full((B, T), PAD, dtype=np.int64)
    mask = np.zeros((B, T), dtype=np.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(4, min(vocab_size, MASK), size=n)
        ids[b, 0], ids[b, n - 1] = BOS, EOS
        mask[b, :n] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    if case["task"] == "train":
        labels = np.full((B, T), -100, dtype=np.int64)
        for b, n in enumerate(lengths):
            inner = np.arange(1, n - 1)
            chosen = rng.choice(inner, size=max(1, int(round(case.get("mask_fraction", 0.15) * len(inner)))), replace=False)
            labels[b, chosen] = ids[b, chosen]
            ids[b, chosen] = min(MASK, vocab_size - 1)
        out["labels"] = labels
    return out


def fingerprint(logits: np.ndarray, mask: np.ndarray) -> list:
    """A small, comparable slice of the outputs at real positions: per row, the first two and the
    last real position, the first 16 logits. (Padding positions are not compared: unpadded
    models do not compute them.)"""
    if logits.ndim == 2:  # (B, L) classification
        return logits.astype(np.float64).round(6).tolist()
    rows = []
    for b in range(logits.shape[0]):
        n = int(mask[b].sum())
        for t in sorted({0, 1, n - 1}):
            rows.append(logits[b, t, :16].astype(np.float64).round(6).tolist())
    return rows


class _Turns:
    """Two threads taking turns (`impl: both`): only the one whose turn it is runs; `hand_over`
    gives the turn to the other and waits for it to come back; `done` gives it up for good."""

    def __init__(self, names: tuple[str, str]):
        self.names, self.turn, self.finished = names, names[0], set()
        self.cond = threading.Condition()

    def wait(self, me: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me)

    def hand_over(self, me: str) -> None:
        with self.cond:
            other = self.names[1 - self.names.index(me)]
            if other not in self.finished:
                self.turn = other
                self.cond.notify_all()
                self.cond.wait_for(lambda: self.turn == me)

    def done(self, me: str) -> None:
        with self.cond:
            self.finished.add(me)
            self.turn = self.names[1 - self.names.index(me)]
            self.cond.notify_all()


_turns: _Turns | None = None  # set by `impl: both`
_local = threading.local()  # per thread: impl, and the last first call's seconds for `report`


def timed(step, sync, warmup: int, repeats: int):
    """Run `step` warmup + repeats times; seconds of each timed run and the last output. The
    first call's seconds (tracing and compilation included) go into the next `report`. With
    `impl: both`, each timed run waits for the other side's turn first."""
    out = None
    for i in range(warmup):
        start = time.perf_counter()
        out = step()
        sync(out)
        if i == 0:
            _local.first_call = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        if _turns is not None:
            _turns.hand_over(_local.impl)
        start = time.perf_counter()
        out = step()
        sync(out)
        times.append(time.perf_counter() - start)
    return times, out


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- PyTorch

def pt_library(impl: str):
    if impl == "ours":
        import roberta_pt as lib
    else:
        import transformers as lib
        lib.logging.set_verbosity_error()
    return lib


def pt_loader(spec: dict, task: str):
    """A function that loads the model for `task` (the library and class are imported now, so a
    load measurement counts from_pretrained alone)."""
    import torch

    lib = pt_library(spec["impl"])
    cls = getattr(lib, "RobertaForSequenceClassification" if task == "cls" else "RobertaForMaskedLM")
    path = spec["cls_checkpoint"] if task == "cls" else spec["checkpoint"]
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[spec["dtype"]]
    if task == "train":
        dtype = torch.float32  # mixed precision trains float32 weights under autocast
    kwargs = {"attn_implementation": "eager" if spec["mode"] == "eager" else "sdpa"}
    if spec["impl"] == "ref" and int(lib.__version__.split(".")[0]) < 5:
        kwargs["torch_dtype"] = dtype
    else:
        kwargs["dtype"] = dtype
    return lambda: cls.from_pretrained(path, **kwargs).to(spec["device"])


def pt_run(spec: dict) -> None:
    import torch

    device = torch.device(spec["device"])
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (ARCHITECTURE §5)
        torch.backends.cudnn.allow_tf32 = False

    def sync(_):
        if device.type == "cuda":
            torch.cuda.synchronize()

    models = {}
    for case in spec["cases"]:
        task = case["task"]
        if task == "peak":
            report(case, peak_pt(spec, case))
            continue
        if task == "load":
            report(case, load_measure(pt_loader(spec, "load")))
            continue
        kind = "cls" if task == "cls" else "mlm"
        if kind not in models:
            models[kind] = pt_loader(spec, kind)()
            if spec["mode"] == "int8":
                models[kind] = torch.ao.quantization.quantize_dynamic(models[kind].eval(), {torch.nn.Linear},
                                                                      dtype=torch.qint8)
        model = models[kind]
        vocab = model.config.vocab_size
        inputs = {k: torch.from_numpy(v).to(device) for k, v in make_inputs(case, vocab).items()}
        ours = spec["impl"] == "ours"
        extra = {}
        if ours and case.get("unpad"):
            extra["unpad"] = True
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        if task == "train":
            model.train()
            if ours and case.get("masked_only"):
                extra["masked_positions_only"] = True
            forward = torch.compile(model) if spec["mode"] == "compile" else model
            # The optimizer transformers' Trainer uses by default (fused AdamW), on both sides.
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01, fused=True)
            autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec["dtype"] == "bf16")

            def step():
                with autocast:
                    loss = forward(**inputs, **extra).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                return loss

            times, loss = timed(step, sync, spec["warmup"], spec["repeats"])
            result = {"times": times, "loss": float(loss)}
            del optimizer
            models.pop(kind)  # trained weights are not the checkpoint's any more
        else:
            model.eval()
            call = inputs if task == "cls" else {k: inputs[k] for k in ("input_ids", "attention_mask")}
            forward = torch.compile(model) if spec["mode"] == "compile" else model

            def step():
                with torch.inference_mode():
                    return forward(**call, **extra).logits

            times, logits = timed(step, sync, spec["warmup"], spec["repeats"])
            mask = make_inputs(case, vocab)["attention_mask"]
            result = {"times": times, "fingerprint": fingerprint(logits.float().cpu().numpy(), mask)}
        if device.type == "cuda":
            result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
        report(case, result)


def peak_pt(spec: dict, case: dict) -> dict:
    """This machine's matmul rate: the best of `repeats` n x n products in the spec's dtype."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[spec["dtype"]]
    n = case.get("n", 2048)
    a = torch.randn(n, n, device=spec["device"]).to(dtype)
    b = torch.randn(n, n, device=spec["device"]).to(dtype)
    sync = (lambda _: torch.cuda.synchronize()) if spec["device"] == "cuda" else (lambda _: None)
    times, _ = timed(lambda: a @ b, sync, spec["warmup"], spec["repeats"])
    return {"times": times, "gflops": 2 * n**3 / min(times) / 1e9}


def load_measure(load) -> dict:
    """from_pretrained's seconds and peak RSS above the process's baseline (framework imported)."""
    baseline = peak_rss_mib()
    start = time.perf_counter()
    model = load()
    seconds = time.perf_counter() - start
    del model
    return {"times": [seconds], "baseline_mib": baseline, "peak_mib": peak_rss_mib()}


# ---------------------------------------------------------------------------- TensorFlow

def tf_train_step(model, apply, extra: dict, training: bool = True):
    """The benchmark's TF MLM training step: loss, gradients, `apply(grads)`; returns the loss.
    (`benchmarks.tf_xla_compile_profile` compiles the same step.)"""
    import tensorflow as tf

    def train_step(ids, mask, labels):
        with tf.GradientTape() as tape:
            out = model(input_ids=ids, attention_mask=mask, labels=labels, training=training, **extra)
            loss = tf.reduce_mean(out.loss)
        grads = tape.gradient(loss, model.trainable_variables)
        apply(grads)
        return loss

    return train_step


def tf_run(spec: dict) -> None:
    if spec["impl"] == "ref":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"  # transformers' TF classes are Keras 2 (tf-keras)
    import tensorflow as tf

    if spec["impl"] == "ours":
        import keras

        import roberta_tf as lib

        AdamW = keras.optimizers.AdamW
    else:
        import tf_keras
        import transformers as lib

        lib.logging.set_verbosity_error()
        AdamW = tf_keras.optimizers.AdamW

    classes = {"cls": lib.TFRobertaForSequenceClassification, "mlm": lib.TFRobertaForMaskedLM}

    def load(kind):
        path = spec["cls_checkpoint"] if kind == "cls" else spec["checkpoint"]
        if spec["impl"] == "ref":
            # transformers 4.57.6's TF loader iterates a `safe_open` for PyTorch safetensors, which
            # safetensors does not allow; its from_pt route reads the same file into a dict.
            return classes[kind].from_pretrained(path, from_pt=True)
        return classes[kind].from_pretrained(path)

    def wrap(fn):
        if spec["mode"] == "eager":
            return fn
        return tf.function(fn, jit_compile=spec["mode"] == "xla")

    models = {}
    for case in spec["cases"]:
        task = case["task"]
        if task == "load":
            report(case, load_measure(lambda: load("mlm")))
            continue
        kind = "cls" if task == "cls" else "mlm"
        if kind not in models:
            models[kind] = load(kind)
        model = models[kind]
        arrays = make_inputs(case, model.config.vocab_size)
        inputs = {k: tf.constant(v) for k, v in arrays.items()}
        # Under XLA one static stream size (the real tokens), one encoder to compile, as Flax's jit below.
        budget = int(arrays["attention_mask"].sum()) if spec["mode"] == "xla" else True
        extra = {"unpad": budget} if spec["impl"] == "ours" and case.get("unpad") else {}
        if task == "train":
            if spec["impl"] == "ours" and case.get("masked_only"):
                # Under XLA shapes are static: the number of labelled rows, as Flax's jit below.
                labelled = int((arrays["labels"] != -100).sum())
                extra["masked_positions_only"] = labelled if spec["mode"] == "xla" else True
            optimizer = AdamW(learning_rate=1e-5, weight_decay=0.01)
            apply = lambda grads: optimizer.apply_gradients(zip(grads, model.trainable_variables))  # noqa: E731
            if spec["impl"] == "ours":
                # tf_keras' optimizers compile their update with XLA by default (jit_compile=True);
                # Keras 3's run it op by op: compile ours the same way, so AdamW costs both sides alike.
                apply = tf.function(apply, jit_compile=True)

            step_fn = wrap(tf_train_step(model, apply, extra))
            times, loss = timed(lambda: step_fn(inputs["input_ids"], inputs["attention_mask"], inputs["labels"]),
                                lambda out: out.numpy(), spec["warmup"], spec["repeats"])
            report(case, {"times": times, "loss": float(loss.numpy())})
            models.pop(kind)
            continue
        forward = wrap(lambda ids, mask: model(input_ids=ids, attention_mask=mask, training=False, **extra).logits)
        times, logits = timed(lambda: forward(inputs["input_ids"], inputs["attention_mask"]),
                              lambda out: out.numpy(), spec["warmup"], spec["repeats"])
        report(case, {"times": times, "fingerprint": fingerprint(np.asarray(logits, np.float32), arrays["attention_mask"])})


# ---------------------------------------------------------------------------- Flax / JAX

def flax_run(spec: dict) -> None:
    import jax
    import jax.numpy as jnp
    import optax

    if spec["dtype"] == "fp32":
        jax.config.update("jax_default_matmul_precision", "highest")  # no TF32 on GPU
    dtype = {"fp32": jnp.float32, "bf16": jnp.bfloat16}[spec["dtype"]]
    sync = jax.block_until_ready
    ours = spec["impl"] == "ours"

    def masked_mean_ce(logits, labels):
        keep = labels != -100
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        picked = jnp.take_along_axis(logp, jnp.where(keep, labels, 0)[..., None], axis=-1)[..., 0]
        return -jnp.sum(jnp.where(keep, picked, 0.0)) / jnp.maximum(keep.sum(), 1)

    if ours:
        from flax import nnx

        import roberta_flax as lib

        classes = {"cls": lib.FlaxRobertaForSequenceClassification, "mlm": lib.FlaxRobertaForMaskedLM}

        def load(kind, train=False):
            path = spec["cls_checkpoint"] if kind == "cls" else spec["checkpoint"]
            return classes[kind].from_pretrained(path, dtype=None if train else dtype)

        def inference(model, extra):
            graphdef, state = nnx.split(model)
            fn = jax.jit(lambda state, ids, mask: nnx.merge(graphdef, state)(ids, mask, **extra).logits)
            return lambda ids, mask: fn(state, ids, mask)

        def trainer(model, extra):
            model.train()
            optimizer = nnx.Optimizer(model, optax.adamw(1e-5, weight_decay=0.01), wrt=nnx.Param)

            @nnx.jit
            def step(model, optimizer, ids, mask, labels):
                def loss_fn(model):
                    return model(ids, mask, labels=labels, deterministic=False, **extra).loss
                loss, grads = nnx.value_and_grad(loss_fn)(model)
                optimizer.update(model, grads)
                return loss

            return lambda ids, mask, labels: step(model, optimizer, ids, mask, labels)
    else:
        import transformers as lib

        lib.logging.set_verbosity_error()

        classes = {"cls": lib.FlaxRobertaForSequenceClassification, "mlm": lib.FlaxRobertaForMaskedLM}

        def load(kind, train=False):
            path = spec["cls_checkpoint"] if kind == "cls" else spec["checkpoint"]
            from_pt = not os.path.exists(os.path.join(path, "flax_model.msgpack"))  # else torch converts
            model = classes[kind].from_pretrained(path, from_pt=from_pt, dtype=jnp.float32 if train else dtype)
            if not train and spec["dtype"] == "bf16":
                model.params = model.to_bf16(model.params)
            return model

        def inference(model, extra):
            fn = jax.jit(lambda params, ids, mask: model(ids, mask, params=params, train=False).logits)
            return lambda ids, mask: fn(model.params, ids, mask)

        def trainer(model, extra):
            tx = optax.adamw(1e-5, weight_decay=0.01)
            state = {"params": model.params, "opt": tx.init(model.params), "rng": jax.random.PRNGKey(0)}

            @jax.jit
            def step(state, ids, mask, labels):
                rng, dropout_rng = jax.random.split(state["rng"])

                def loss_fn(params):
                    logits = model(ids, mask, params=params, dropout_rng=dropout_rng, train=True).logits
                    return masked_mean_ce(logits, labels)

                loss, grads = jax.value_and_grad(loss_fn)(state["params"])
                updates, opt = tx.update(grads, state["opt"], state["params"])
                return {"params": optax.apply_updates(state["params"], updates), "opt": opt, "rng": rng}, loss

            def run(ids, mask, labels):
                new, loss = step(state, ids, mask, labels)
                state.update(new)
                return loss

            return run

    models = {}
    for case in spec["cases"]:
        task = case["task"]
        if task == "load":
            report(case, load_measure(lambda: load("mlm")))
            continue
        kind = "cls" if task == "cls" else "mlm"
        arrays = make_inputs(case, spec["vocab_size"])
        # Under jit the packed sizes must be static: ours takes them as ints (token budget, rows).
        extra = {"unpad": int(arrays["attention_mask"].sum())} if ours and case.get("unpad") else {}
        if task == "train":
            if ours and case.get("masked_only"):
                extra["masked_positions_only"] = int((arrays["labels"] != -100).sum())
            model = load(kind, train=True)
            step = trainer(model, extra)
            times, loss = timed(lambda: step(*(jnp.asarray(arrays[k]) for k in ("input_ids", "attention_mask", "labels"))),
                                sync, spec["warmup"], spec["repeats"])
            report(case, {"times": times, "loss": float(loss)})
            continue
        if kind not in models:
            models[kind] = load(kind)
        model = models[kind]
        forward = inference(model, extra)
        ids, mask = jnp.asarray(arrays["input_ids"]), jnp.asarray(arrays["attention_mask"])
        times, logits = timed(lambda: forward(ids, mask), sync, spec["warmup"], spec["repeats"])
        report(case, {"times": times, "fingerprint": fingerprint(np.asarray(logits, np.float32), arrays["attention_mask"])})


# ---------------------------------------------------------------------------- main

# ---------------------------------------------------------------------------- ONNX Runtime

def ort_run(spec: dict) -> None:
    """Time each ONNX file of `spec["files"]` (label -> path) on each case, round-robin. A packed
    graph's logits (N, V) (a label ending in "packed") are put back at their padded positions
    for the fingerprint (its first 16 columns only: the timed call returns the packed rows, as a
    server would use them)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if spec.get("threads"):
        options.intra_op_num_threads = int(spec["threads"])
    sessions = {label: onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                for label, path in spec["files"].items()}
    for case in spec["cases"]:
        arrays = make_inputs(case, spec["vocab_size"])
        feed = {k: arrays[k] for k in ("input_ids", "attention_mask")}
        outputs = {}
        for label, session in sessions.items():
            for _ in range(spec["warmup"]):
                outputs[label] = session.run(["logits"], feed)[0]
        times = {label: [] for label in sessions}
        # The files in turn, so that a slow spell of the machine falls on all of them; each timed
        # call right after an untimed one of the same file: a session's worker threads spin-wait
        # after each call, and the untimed call takes the previous file's spinning threads' cost.
        for _ in range(spec["repeats"]):
            for label, session in sessions.items():
                session.run(["logits"], feed)
                start = time.perf_counter()
                outputs[label] = session.run(["logits"], feed)[0]
                times[label].append(time.perf_counter() - start)
        real = arrays["attention_mask"] != 0
        for label in sessions:
            logits = outputs[label]
            if label.endswith("packed"):
                if logits.shape[0] != int(real.sum()):
                    raise ValueError(f"{label}: {logits.shape[0]} rows for {int(real.sum())} real tokens")
                rows = np.zeros(real.shape + (min(16, logits.shape[-1]),), logits.dtype)
                rows[real] = logits[:, :16]
                logits = rows
            report(case, {"impl": label, "times": times[label], "fingerprint": fingerprint(logits, arrays["attention_mask"])})


def report(case: dict, result: dict) -> None:
    result.setdefault("peak_rss_mib", peak_rss_mib())
    first = getattr(_local, "first_call", None)
    if first is not None and "times" in result:
        result.setdefault("first_call_s", first)
        _local.first_call = None
    if _turns is not None:
        result["impl"] = _local.impl
    print("RESULT " + json.dumps({"case": case["name"], **result}), flush=True)


def main() -> None:
    global _turns
    spec = json.loads(sys.argv[1])
    run = {"pt": pt_run, "tf": tf_run, "flax": flax_run, "ort": ort_run}[spec["framework"]]
    if spec.get("impl") != "both":
        run(spec)
        return
    if spec["framework"] == "tf":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"  # transformers' `tf.keras`; ours imports Keras 3 as `keras`
    _turns = _Turns(("ours", "ref"))
    failures = []

    def side(impl: str) -> None:
        _local.impl = impl
        _turns.wait(impl)
        try:
            run({**spec, "impl": impl})
        except BaseException as error:  # reported after both threads ended
            failures.append(f"{impl}: {error!r}")
        finally:
            _turns.done(impl)

    threads = [threading.Thread(target=side, args=(impl,)) for impl in _turns.names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit("; ".join(failures))


if __name__ == "__main__":
    main()
