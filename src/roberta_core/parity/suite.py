"""The conformance runner: turns a case (a row of `cases.CASES`, or a head a checkpoint
serves) into weights and inputs, runs the float64 reference and each installed backend, and
compares every output field.

Checks and bars (ARCHITECTURE §5):
    fp32   each backend vs the reference: ‖Δ‖/‖ref‖ ≤ 1e-5 for every output field
    pair   backend vs backend, fp32: max |Δ| ≤ 1e-5 for every output field (on a trained
           checkpoint, max |Δ| / max(1, max |x|): see `Prepared.pair_in_units_of_scale`)
    bf16   each backend in bfloat16 vs the reference: ‖Δ‖/‖ref‖ ≤ 2e-2 for every output field
    grad   each backend's gradient of the loss (or of a fixed random weighting of the outputs,
           where a head has no loss) along random directions in parameter space vs central
           differences of the float64 reference: ‖Δ‖/‖ref‖ ≤ 1e-4 (a lone backend is checked too)
    grad_pair  the gradient wrt every parameter, backend vs backend: ‖Δ‖/‖g‖ ≤ 1e-4 (with a floor
           for parameters whose true gradient is zero, see `gradient_errors`)

Imports no framework: backends are reached through their adapters (`adapters`, `roberta_<b>.adapter`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .. import reference
from ..config import RobertaConfig
from ..weights import parameter_shapes
from .cases import CASES

BARS = {"fp32": 1e-5, "pair": 1e-5, "bf16": 2e-2, "grad": 1e-4, "grad_pair": 1e-4}
FD_STEP = 1e-5  # central differences of the float64 reference: truncation ~1e-10, rounding ~1e-11
FD_DIRECTIONS = 3
GRAD_FLOOR = 1e-2  # see gradient_errors


# ---------------------------------------------------------------------------- preparing a case


@dataclass
class Prepared:
    """One case made concrete: config, float32 canonical weights, the inputs of one full forward."""

    name: str
    head: str
    config: RobertaConfig
    state: dict[str, np.ndarray]
    inputs: dict[str, Any]  # keyword arguments of the forward call (NumPy arrays and flags)
    chunks: tuple[int, ...] | None = None  # decode in pieces of these lengths, feeding the cache back
    probe: dict[str, np.ndarray] | None = None  # objective sum(probe[f] * out[f]) when there is no loss
    checks: tuple[str, ...] = ("fp32",)
    seed: int = 0
    # A trained checkpoint's logits reach tens, where float32's spacing alone is ~1e-6: its pair
    # bar counts in units of the larger output's magnitude, max |Δ| / max(1, max |x|) (the same
    # 1e-5 for outputs within ±1, as the built-in cases' random weights give).
    pair_in_units_of_scale: bool = False


def random_state(config: RobertaConfig, head: str, seed: int, scale: float = 0.2) -> dict[str, np.ndarray]:
    """float32 canonical weights: LayerNorm weights near 1, everything else N(0, scale), so a wrong
    transposition, a dropped term or a swapped tensor shows in the outputs."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in parameter_shapes(config, head).items():
        if ("LayerNorm" in key or "layer_norm" in key) and key.endswith(".weight"):
            state[key] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            state[key] = (scale * rng.standard_normal(shape)).astype(np.float32)
    return state


def tiny(overrides: Mapping[str, Any] | None = None) -> RobertaConfig:
    """The `tiny` preset with dropout off, plus `overrides`."""
    base = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    base.update(overrides or {})
    return RobertaConfig.from_preset("tiny", **base)


def _ids_and_mask(config, lengths: Sequence[int], T: int, padding: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """(rows, T) ids starting with <s>, real tokens from 4 (no special ids), pad_token_id elsewhere."""
    ids = np.full((len(lengths), T), config.pad_token_id, dtype=np.int64)
    mask = np.zeros((len(lengths), T), dtype=np.int64)
    for row, n in enumerate(lengths):
        span = slice(0, n) if padding == "right" else slice(T - n, T)
        ids[row, span] = rng.integers(4, config.vocab_size, size=n)
        if n:
            ids[row, span.start] = config.bos_token_id
        mask[row, span] = 1
    return ids, mask


def _labels(kind: str, head: str, config, mask: np.ndarray, rng, num_choices: int | None) -> dict[str, np.ndarray]:
    """Labels of `kind` for a batch whose (rows, T) attention mask is `mask`."""
    B, T = mask.shape
    L = config.num_labels
    if kind == "tokens":  # about half the real tokens labelled, padding always ignored
        classes = config.vocab_size if head in ("masked_lm", "causal_lm") else L
        labels = rng.integers(0, classes, size=(B, T))
        keep = (rng.random((B, T)) < 0.5) & (mask == 1)
        keep[:, 1] = mask[:, 1] == 1  # at least one labelled token a causal shift keeps
        return {"labels": np.where(keep, labels, reference.IGNORE_INDEX)}
    if kind == "tokens_ignored":
        return {"labels": np.full((B, T), reference.IGNORE_INDEX, dtype=np.int64)}
    if kind == "classes":
        return {"labels": rng.integers(0, L, size=B)}
    if kind == "regression":
        return {"labels": rng.standard_normal((B,) if L == 1 else (B, L)).astype(np.float32)}
    if kind == "multi_label":
        return {"labels": (rng.random((B, L)) < 0.5).astype(np.float32)}
    if kind == "choices":
        return {"labels": rng.integers(0, num_choices, size=B)}
    if kind == "spans":  # in range; past the end (clamped to T, ignored); negative (clamped to 0)
        start = np.resize(np.array([1, T + 5, -2]), B)
        end = np.resize(np.array([3, 2, 1]), B)
        return {"start_positions": start, "end_positions": end}
    if kind == "spans_ignored":
        return {"start_positions": np.full(B, T + 1), "end_positions": np.full(B, T)}
    raise ValueError(f"unknown labels kind {kind!r}")


def prepare(case: Mapping[str, Any]) -> Prepared:
    """Weights and inputs for a row of the cases table."""
    head = case["head"]
    config = tiny(case.get("config"))
    seed = case.get("seed", 0)
    rng = np.random.default_rng(seed + 1000)  # inputs; the weights use `seed` itself
    lengths = case.get("lengths", (7, 5, 2))
    T = case.get("pad_to") or max(max(lengths), 1)
    ids, mask = _ids_and_mask(config, lengths, T, case.get("padding", "right"), rng)
    rows = len(lengths)
    H = config.hidden_size
    inputs: dict[str, Any] = {}
    if case.get("embeds"):
        inputs["inputs_embeds"] = (0.5 * rng.standard_normal((rows, T, H))).astype(np.float32)
    else:
        inputs["input_ids"] = ids
    if case.get("mask", True):
        inputs["attention_mask"] = mask
    if case.get("token_types"):
        inputs["token_type_ids"] = rng.integers(0, config.type_vocab_size, size=(rows, T))
    if case.get("positions"):
        low = config.pad_token_id + 1
        inputs["position_ids"] = rng.integers(low, config.max_position_embeddings, size=(rows, T))
    if case.get("head_mask"):
        shape = (config.num_attention_heads,)
        if case["head_mask"] == "per_layer":
            shape = (config.num_hidden_layers,) + shape
        hm = rng.uniform(0.2, 1.0, size=shape)
        hm.reshape(-1, shape[-1])[:, 1] = 0.0  # one head switched off in every layer
        inputs["head_mask"] = hm.astype(np.float32)
    if case.get("encoder"):
        S = max(case["encoder"])
        inputs["encoder_hidden_states"] = rng.standard_normal((rows, S, H)).astype(np.float32)
        inputs["encoder_attention_mask"] = (np.arange(S)[None, :] < np.array(case["encoder"])[:, None]).astype(np.int64)
    choices = case.get("choices")
    if choices:  # (B*C, ...) -> (B, C, ...)
        inputs = {k: v.reshape((rows // choices, choices) + v.shape[1:]) for k, v in inputs.items()}
    if case.get("labels"):
        label_mask = mask[::choices] if choices else mask
        inputs.update(_labels(case["labels"], head, config, label_mask, rng, choices))
    for flag, name in (("attentions", "output_attentions"), ("hidden", "output_hidden_states"), ("use_cache", "use_cache")):
        if flag in case:
            inputs[name] = case[flag]
    chunks = case.get("chunks")
    if chunks:
        if sum(chunks) != T or "labels" in case or "input_ids" not in inputs:
            raise ValueError(f"{case['name']}: chunks must add up to the length {T}, with input_ids and no labels")
        inputs["use_cache"] = True
    probe = None
    if "labels" not in case and "grad" in case.get("checks", ()):
        probe = _probe(head, config, mask, rng)
    return Prepared(
        name=case["name"], head=head, config=config, state=random_state(config, head, seed), inputs=inputs,
        chunks=tuple(chunks) if chunks else None, probe=probe, checks=tuple(case.get("checks", ("fp32",))), seed=seed,
    )


def _probe(head: str, config, mask: np.ndarray, rng) -> dict[str, np.ndarray]:
    """Fixed random weights that turn the head's outputs into a scalar, zero at padded positions
    (so padding rows of the embedding tables get no gradient, whatever a backend's convention)."""
    B, T = mask.shape
    if head == "model":
        return {
            "last_hidden_state": (rng.standard_normal((B, T, config.hidden_size)) * mask[..., None]).astype(np.float32),
            "pooler_output": rng.standard_normal((B, config.hidden_size)).astype(np.float32),
        }
    raise ValueError(f"a gradient case for head {head!r} needs labels")


def prepare_checkpoint(path: str | Path, *, seed: int = 0) -> list[Prepared]:
    """One case per head the checkpoint serves: its own config and weights, generated inputs
    (a ragged padded batch, labels for the head's loss)."""
    from .. import checkpoint
    from ..weights import heads_served, plan_load

    path = Path(path)
    config = RobertaConfig.from_pretrained(path)
    config = config.copy(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    full = checkpoint.load_state_dict(path)
    served = heads_served(config, full)
    if not served:
        raise ValueError(f"{path}: the checkpoint holds no complete RoBERTa head")
    limit = min(16, config.max_sequence_length)
    prepared = []
    for head in served:
        plan = plan_load(config, head, {k: v.shape for k, v in full.items()})
        state = {target: np.asarray(full[src], dtype=np.float32) for target, src in plan.mapping.items()}
        rng = np.random.default_rng(seed)
        lengths = (limit, max(1, limit // 2), max(1, limit // 4))
        ids, mask = _ids_and_mask(config, lengths, limit, "right", rng)
        inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        problem = reference.problem_type_of(config, np.zeros(1, dtype=np.int64))
        label_kind = {
            "masked_lm": "tokens", "causal_lm": "tokens", "token_classification": "tokens",
            "sequence_classification": {"regression": "regression", "multi_label_classification": "multi_label"}.get(problem, "classes"),
            "multiple_choice": "choices", "question_answering": "spans",
        }.get(head)
        if head == "multiple_choice":
            inputs = {k: v[None] for k, v in inputs.items()}  # one question, three choices
        if label_kind:
            label_mask = mask[:1] if head == "multiple_choice" else mask
            inputs.update(_labels(label_kind, head, config, label_mask, rng, len(lengths)))
        prepared.append(Prepared(name=f"{path.name}:{head}", head=head, config=config, state=state, inputs=inputs,
                                 checks=("fp32", "bf16"), pair_in_units_of_scale=True))
    return prepared


def builtin_cases(names: Iterable[str] | None = None) -> list[dict]:
    """Rows of the cases table, all or the named ones (unknown names are an error)."""
    if names is None:
        return list(CASES)
    by_name = {c["name"]: c for c in CASES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in names]


# ---------------------------------------------------------------------------- the reference side


def chunked_inputs(prep: Prepared) -> list[dict[str, Any]]:
    """The keyword arguments of each decoding step (without past_key_values, which the caller
    feeds back): the new tokens and the mask of everything seen so far."""
    steps, start = [], 0
    for size in prep.chunks:
        stop = start + size
        step = {k: v for k, v in prep.inputs.items() if k not in ("input_ids", "attention_mask", "labels")}
        step["input_ids"] = prep.inputs["input_ids"][:, start:stop]
        if "attention_mask" in prep.inputs:
            step["attention_mask"] = prep.inputs["attention_mask"][:, :stop]
        steps.append(step)
        start = stop
    return steps


def merge_chunks(outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The logits of every step side by side, and the cache after the last step."""
    return {"logits": np.concatenate([o["logits"] for o in outputs], axis=1),
            "past_key_values": outputs[-1]["past_key_values"]}


def reference_outputs(prep: Prepared) -> dict[str, Any]:
    """float64 outputs of one full forward; for a chunked case only the fields the chunks are
    compared on (logits, final cache)."""
    out = reference.forward(prep.config, prep.state, prep.head, **prep.inputs)
    if prep.chunks:
        out = {"logits": out["logits"], "past_key_values": out["past_key_values"]}
    return out


def objective(prep: Prepared, outputs: Mapping[str, Any]) -> Any:
    """The scalar whose gradient is compared: the loss, or the probe's weighted sum of outputs."""
    if prep.probe is None:
        return outputs["loss"]
    return sum((np.asarray(outputs[f], dtype=np.float64) * w).sum() for f, w in prep.probe.items())


PADDING_ROWS = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight")


def directions(prep: Prepared, count: int = FD_DIRECTIONS) -> list[dict[str, np.ndarray]]:
    """Random directions in parameter space (one N(0, 1) array per parameter), zero on the
    padding rows (pad_token_id) of the word and position tables: v4 PyTorch keeps those rows
    frozen (nn.Embedding padding_idx), so their gradient is a convention the backends must share
    (the pairwise check compares it) rather than the derivative the reference differentiates."""
    rng = np.random.default_rng(prep.seed + 2000)
    dirs = []
    for _ in range(count):
        d = {k: rng.standard_normal(v.shape) for k, v in prep.state.items()}
        for key in d:
            if key.removeprefix("roberta.") in PADDING_ROWS:
                d[key][prep.config.pad_token_id] = 0.0
        dirs.append(d)
    return dirs


def finite_differences(prep: Prepared, dirs: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
    """d objective / d step along each direction, by central differences of the float64 reference."""
    base = {k: v.astype(np.float64) for k, v in prep.state.items()}
    result = []
    for d in dirs:
        plus = objective(prep, reference.forward(prep.config, {k: base[k] + FD_STEP * d[k] for k in base}, prep.head, **prep.inputs))
        minus = objective(prep, reference.forward(prep.config, {k: base[k] - FD_STEP * d[k] for k in base}, prep.head, **prep.inputs))
        result.append((plus - minus) / (2 * FD_STEP))
    return np.array(result)


# ---------------------------------------------------------------------------- comparing


def flatten(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """{'hidden_states': (a, b)} -> {'hidden_states.0': a, 'hidden_states.1': b}; nested caches too."""
    flat: dict[str, np.ndarray] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                walk(f"{prefix}.{i}", item)
        else:
            flat[prefix] = np.asarray(value, dtype=np.float64)

    for name, value in outputs.items():
        walk(name, value)
    return flat


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """‖got − want‖ / ‖want‖ (‖got − want‖ when want is zero); inf on a shape mismatch or NaN."""
    if got.shape != want.shape:
        return float("inf")
    diff = float(np.linalg.norm(got - want))
    denom = float(np.linalg.norm(want))
    err = diff / denom if denom > 0 else diff
    return float("inf") if not np.isfinite(err) else err


def max_abs(got: np.ndarray, want: np.ndarray) -> float:
    if got.shape != want.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    err = float(np.max(np.abs(got - want)))
    return float("inf") if not np.isfinite(err) else err


def max_abs_in_units_of_scale(got: np.ndarray, want: np.ndarray) -> float:
    """max |Δ| / max(1, max |got|, max |want|): `max_abs` for outputs within ±1."""
    err = max_abs(got, want)
    if got.size == 0 or not np.isfinite(err):
        return err
    return err / max(1.0, float(np.max(np.abs(got))), float(np.max(np.abs(want))))


def compare(got: Mapping[str, Any], want: Mapping[str, Any], metric) -> dict[str, float]:
    """metric per flattened field; a field missing on either side scores inf."""
    g, w = flatten(got), flatten(want)
    return {k: (metric(g[k], w[k]) if k in g and k in w else float("inf")) for k in sorted(set(g) | set(w))}


def gradient_errors(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per parameter ‖Δ‖ / max(‖g‖, GRAD_FLOOR · ‖g of all parameters‖): relative error, with a
    floor for parameters whose true gradient is zero (softmax ignores a constant shift, so the
    attention key bias and the QA output bias get none: what a backend returns there is rounding
    noise)."""
    g = {k: np.asarray(v, dtype=np.float64) for k, v in got.items()}
    w = {k: np.asarray(v, dtype=np.float64) for k, v in want.items()}
    total = float(np.sqrt(sum(float((v**2).sum()) for v in w.values())))
    errors = {}
    for key in sorted(set(g) | set(w)):
        if key not in g or key not in w or g[key].shape != w[key].shape:
            errors[key] = float("inf")
            continue
        denom = max(float(np.linalg.norm(w[key])), GRAD_FLOOR * total)
        err = float(np.linalg.norm(g[key] - w[key])) / denom if denom > 0 else 0.0
        errors[key] = err if np.isfinite(err) else float("inf")
    return errors


def worst(errors: Mapping[str, float]) -> tuple[float, str]:
    """(largest error, its field)."""
    if not errors:
        return 0.0, ""
    key = max(errors, key=lambda k: errors[k])
    return errors[key], key


# ---------------------------------------------------------------------------- running


@dataclass
class Row:
    """One line of the table: a case on a backend and the worst error of each check run."""

    case: str
    backend: str
    errors: dict[str, tuple[float, str]] = field(default_factory=dict)  # check -> (worst error, where)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (check, message)

    @property
    def passed(self) -> bool:
        return not self.failures

    def record(self, check: str, value: float, where: str) -> None:
        previous = self.errors.get(check)
        if previous is None or not value <= previous[0]:
            self.errors[check] = (value, where)
        if not value <= BARS[check]:
            self.failures.append((check, f"{where}: {value:.3g} > {BARS[check]:g}"))

    def guard(self, check: str, fn: Callable[[], None]) -> None:
        """Run one check; an exception is a failure of that check, reported with its message."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn()
        except Exception as e:  # noqa: BLE001 - any backend error is a conformance failure to report
            first = str(e).splitlines()[0][:300] if str(e) else ""
            self.errors[check] = (float("inf"), type(e).__name__)
            self.failures.append((check, f"raised {type(e).__name__}: {first}"))


class Runner:
    """Runs cases on backends; each backend's outputs, gradients and the finite differences are
    computed once per case and dtype and kept, so later checks (pairwise) reuse them.
    `perturb` maps a backend name to replacement weights for that backend only."""

    def __init__(self, backends: Sequence[Any], *, perturb: Mapping[str, Mapping[str, np.ndarray]] | None = None):
        self.backends = list(backends)
        self.perturb = dict(perturb or {})
        self._memo: dict[tuple, Any] = {}

    def _once(self, key: tuple, fn: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def state(self, prep: Prepared, backend) -> dict[str, np.ndarray]:
        return {**prep.state, **self.perturb.get(backend.name, {})}

    def model(self, prep: Prepared, backend, dtype: str):
        """The backend's model for this config, head and dtype (built once), holding prep's weights."""
        key = ("model", prep.config.to_json_string(), prep.head, backend.name, dtype)
        # Each model has its own copy of the config: a labelled call may record its labels'
        # problem type there (v4's PyTorch class does), and every case with this config shares
        # the model, so each case resets it.
        model = self._once(key, lambda: backend.build(prep.config.copy(), prep.head, dtype=dtype))
        backend.load(model, self.state(prep, backend))
        model.config.problem_type = prep.config.problem_type
        return model

    def outputs(self, prep: Prepared, backend, dtype: str) -> dict[str, Any]:
        """The backend's outputs as float64 NumPy, chunked cases decoded step by step."""

        def compute():
            model = self.model(prep, backend, dtype)
            if not prep.chunks:
                return backend.to_numpy(backend.call(model, prep.inputs, dtype=dtype))
            outputs, past = [], None
            for step in chunked_inputs(prep):
                native = backend.call(model, step, past=past, dtype=dtype)
                past = native["past_key_values"]
                outputs.append(backend.to_numpy(native))
            return merge_chunks(outputs)

        return self._once(("out", prep.name, backend.name, dtype), compute)

    def gradients(self, prep: Prepared, backend) -> dict[str, np.ndarray]:
        def compute():
            model = self.model(prep, backend, "float32")
            return backend.grads(model, prep.inputs, lambda out: self._objective(prep, out, backend))

        return self._once(("grad", prep.name, backend.name), compute)

    @staticmethod
    def _objective(prep: Prepared, outputs: Mapping[str, Any], backend) -> Any:
        """`objective` on the backend's own tensors (so the framework differentiates it)."""
        if prep.probe is None:
            return outputs["loss"]
        return sum(backend.weighted_sum(outputs[f], w) for f, w in prep.probe.items())

    def reference(self, prep: Prepared) -> dict[str, Any]:
        return self._once(("ref", prep.name), lambda: reference_outputs(prep))

    def finite_differences(self, prep: Prepared) -> tuple[list, np.ndarray]:
        def compute():
            dirs = directions(prep)
            return dirs, finite_differences(prep, dirs)

        return self._once(("fd", prep.name), compute)

    # ------------------------------------------------------------------ checks
    def check(
        self, prep: Prepared, dtype: str = "float32", *, single: bool = True, pairs: bool = True,
        only: Sequence[str] | None = None,
    ) -> list[Row]:
        """The checks `dtype` selects for `prep`: in float32 each backend vs the reference
        (`single`: outputs and gradients) and backend vs backend (`pairs`); in bfloat16 each
        backend vs the reference, for cases marked 'bf16'. `only` limits the backends by name.
        One row per backend that ran a check."""
        chosen = [b for b in self.backends if only is None or b.name in only]
        rows = {b.name: Row(prep.name, b.name) for b in chosen}
        if dtype == "bfloat16":
            if "bf16" in prep.checks:
                for b in chosen:
                    rows[b.name].guard("bf16", lambda b=b: rows[b.name].record(
                        "bf16", *worst(compare(self.outputs(prep, b, dtype), self.reference(prep), rel_err))))
            return [r for r in rows.values() if r.errors]
        grad = "grad" in prep.checks
        ran, ran_grad = [], []  # backends whose forward / gradient ran without an exception
        for b in chosen:
            row = rows[b.name]
            if _attempt(row, "fp32", lambda b=b: self.outputs(prep, b, dtype)):
                ran.append(b)
                if single:
                    row.record("fp32", *worst(compare(self.outputs(prep, b, dtype), self.reference(prep), rel_err)))
            if grad and _attempt(row, "grad", lambda b=b: self.gradients(prep, b)):
                ran_grad.append(b)
                if single:
                    dirs, fd = self.finite_differences(prep)
                    g = self.gradients(prep, b)
                    along = np.array([sum(float((g[k].astype(np.float64) * d[k]).sum()) for k in d) for d in dirs])
                    row.record("grad", rel_err(along, fd), "along random directions vs reference")
        if pairs:
            for i, a in enumerate(ran):
                for c in ran[i + 1:]:
                    measure = max_abs_in_units_of_scale if prep.pair_in_units_of_scale else max_abs
                    value, where = worst(compare(self.outputs(prep, a, dtype), self.outputs(prep, c, dtype), measure))
                    rows[a.name].record("pair", value, f"vs {c.name} {where}")
                    rows[c.name].record("pair", value, f"vs {a.name} {where}")
            for i, a in enumerate(ran_grad):
                for c in ran_grad[i + 1:]:
                    value, where = worst(gradient_errors(self.gradients(prep, a), self.gradients(prep, c)))
                    rows[a.name].record("grad_pair", value, f"vs {c.name} d/d {where}")
                    rows[c.name].record("grad_pair", value, f"vs {a.name} d/d {where}")
        return [r for r in rows.values() if r.errors]

    def run(self, cases: Sequence[Prepared], dtype: str = "float32", progress: Callable[[str], None] | None = None) -> list[Row]:
        """Every case's checks; `progress` gets one line per case as it finishes."""
        rows: list[Row] = []
        for prep in cases:
            start = time.perf_counter()
            done = self.check(prep, dtype)
            rows.extend(done)
            if progress is not None:
                verdict = "pass" if all(r.passed for r in done) else "FAIL"
                progress(f"{prep.name}: {verdict if done else 'no check'} ({time.perf_counter() - start:.1f} s)")
        return rows


def _attempt(row: Row, check: str, fn: Callable[[], Any]) -> bool:
    """Run `fn` under `row.guard`; True when it did not raise."""
    before = len(row.failures)
    row.guard(check, fn)
    return len(row.failures) == before


# ---------------------------------------------------------------------------- the table

COLUMNS = (
    ("fp32", "vs ref (rel)"), ("pair", "vs other (abs)"), ("grad", "grad vs ref (rel)"),
    ("grad_pair", "grad vs other (rel)"), ("bf16", "bf16 vs ref (rel)"),
)


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table: case × backend, the worst error of each check, pass/fail; then the bars
    and every failure with the field it happened in."""
    used = [(c, title) for c, title in COLUMNS if any(c in r.errors for r in rows)]
    header = ["case", "backend"] + [title for _, title in used] + ["result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r.case, r.backend]
        cells += [f"{r.errors[c][0]:.2e}" if c in r.errors else "-" for c, _ in used]
        cells.append("pass" if r.passed else "FAIL")
        lines.append("| " + " | ".join(cells) + " |")
    bars = ", ".join(f"{k} ≤ {v:g}" for k, v in BARS.items())
    lines.append(f"\n{sum(r.passed for r in rows)}/{len(rows)} passed (bars: {bars})")
    failures = [f"- {r.case} [{r.backend}] {check}: {msg}" for r in rows for check, msg in r.failures]
    if failures:
        lines += ["", "Failures:", *failures]
    return "\n".join(lines)
