"""Keep the three backends parallel texts (ARCHITECTURE.md, "Parallel texts").

Each backend package (`roberta_pt`, `roberta_tf`, `roberta_flax`) has the same modules; in each
trio of same-named modules this checks, after normalising the framework's names away:

- the section headers (`# ------ 3. self-attention`), in order;
- the public top-level classes and functions, in order;
- each class's public methods (and `__init__`/`__call__`), in order.

Private helpers (`_name`) may differ: they are where a framework's own means live. So does all
of `_framework.py`, the module that holds each backend's framework machinery (only its presence
is checked). Any other difference fails the check unless `ALLOWED` below lists it with the reason. Run by
`make test` (tests/test_parallel_texts.py); `python tools/check_parallel.py --report` also prints
the share of lines that match between each pair once framework names are normalised.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("pt", "tf", "flax")  # the order of roberta_core.backends.BACKENDS
MODULES = ("modeling.py", "heads.py", "convert.py", "training.py", "unpad.py", "_framework.py", "adapter.py", "export.py")

# Framework machinery by definition: only its presence in every backend is checked.
PLUMBING = ("_framework.py",)

# The entry point of a layer has the framework's name; the checker calls it one thing.
ENTRY_POINTS = {"forward": "__call__", "call": "__call__"}

# What a backend has for reasons of its framework alone. (module, name): why.
# A name is a top-level `def`/`class` (prefix removed) or `Class.method`.
ALLOWED: dict[tuple[str, str], str] = {
    # Keras creates weights lazily in `build(input_shape)`; torch and NNX create them in __init__.
    ("*", "*.build"): "Keras layers create their weights in build()",
    # Keras' training loop asks the model for its loss and metrics by these hooks.
    ("modeling.py", "RobertaPreTrainedModel.compute_loss"): "Keras fit() hook",
    ("modeling.py", "RobertaPreTrainedModel.compute_metrics"): "Keras fit() hook",
    ("*", "*.hf_compute_loss"): "v4 TF name of the Keras loss hook",
    ("modeling.py", "RobertaPreTrainedModel._predictions"): "Keras fit() hook helper",
    ("modeling.py", "RobertaPreTrainedModel.prepare_tf_dataset"): "v4 TF's tf.data wrapper of a datasets.Dataset",
    ("modeling.py", "RobertaPreTrainedModel.serving_signature"): "TF SavedModel signature",
    ("modeling.py", "RobertaPreTrainedModel.input_signature"): "v4 TF's name of the serving signature",
    ("modeling.py", "RobertaPreTrainedModel.dummy_inputs"): "v4 TF's inputs that build a Keras model",
    ("modeling.py", "RobertaPreTrainedModel.export_saved_model"): "TF SavedModel export",
    ("modeling.py", "RobertaPreTrainedModel.serving_output"): "v4 TF's serving function's output step (SavedModel)",
    ("modeling.py", "RobertaPreTrainedModel.get_lm_head"): "v4 TF's LM head accessor (TFPreTrainedModel)",
    ("modeling.py", "RobertaPreTrainedModel.get_bias"): "v4 TF's LM head bias accessor (TFPreTrainedModel)",
    ("modeling.py", "RobertaPreTrainedModel.set_bias"): "v4 TF's LM head bias setter (TFPreTrainedModel)",
    ("modeling.py", "RobertaPreTrainedModel.export"): "Keras 3 model.export() (a SavedModel by the serving signature)",
    ("modeling.py", "RobertaPreTrainedModel.get_config"): "Keras .keras serialisation (save/load_model)",
    ("modeling.py", "RobertaPreTrainedModel.from_config"): "Keras .keras serialisation (save/load_model)",
    ("modeling.py", "RobertaModel.get_config"): "Keras .keras serialisation: add_pooling_layer",
    # NNX models are plain Python objects: sharding and jit checks are explicit methods.
    ("modeling.py", "RobertaPreTrainedModel.shard"): "JAX sharding over a Mesh",
    ("modeling.py", "RobertaPreTrainedModel.enable_jit_checks"): "JAX checks of traced values",
    ("modeling.py", "RobertaPreTrainedModel._deterministic"): "NNX dropout flag",
    ("modeling.py", "RobertaPreTrainedModel._concrete_options"): "JAX static options",
    ("modeling.py", "RobertaPreTrainedModel.check_values"): "JAX checks of traced values",
    ("modeling.py", "RobertaPreTrainedModel.params"): "v4 Flax's parameter tree (get/set) over NNX state",
    ("modeling.py", "RobertaPreTrainedModel.to_bf16"): "v4 Flax's casts of a parameter tree",
    ("modeling.py", "RobertaPreTrainedModel.to_fp16"): "v4 Flax's casts of a parameter tree",
    ("modeling.py", "RobertaPreTrainedModel.to_fp32"): "v4 Flax's casts of a parameter tree",
    # torch's `model.device`/`model.dtype` (Keras and NNX models have their own).
    ("modeling.py", "RobertaPreTrainedModel.device"): "torch device property",
    ("modeling.py", "RobertaPreTrainedModel.dtype"): "torch dtype property",
    # Keras wraps __call__ to route keyword arguments; torch and NNX call forward/__call__ directly.
    ("modeling.py", "RobertaPreTrainedModel.__call__"): "Keras call routing",
    ("modeling.py", "RobertaPreTrainedModel.post_init"): "torch weight initialisation pass",
    # TF has no fused attention kernel: every attn_implementation takes the explicit path.
    ("modeling.py", "fused_attention"): "no fused attention kernel in TF",
    # XLA drops in-graph assertions: TF's checked path before a jit_compile=True call.
    ("modeling.py", "RobertaPreTrainedModel.check_inputs"): "XLA keeps no value checks (TF)",
    # Under XLA a packed stream takes one of a few static sizes, each a branch of tf.switch_case.
    ("unpad.py", "run_packed"): "TF's static-size switch under XLA",
    # The trainer names Keras variables by canonical key (torch and NNX walk their own state).
    ("convert.py", "variables"): "Keras variables by canonical key, read by TF's trainer",
    ("modeling.py", "RobertaPreTrainedModel._init_parameter"): "torch weight initialisation pass",
    ("modeling.py", "RobertaPreTrainedModel._materialize_missing"): "meta-device / abstract build",
    # v4 PyTorch's PreTrainedModel methods that peft, accelerate and hooks-based code call; v4's
    # TF and Flax models have none of them (forward hooks, torch's attention switch and masks).
    ("modeling.py", "RobertaPreTrainedModel.enable_input_require_grads"): "v4 PyTorch: a forward hook on the embeddings",
    ("modeling.py", "RobertaPreTrainedModel.disable_input_require_grads"): "v4 PyTorch: removes that hook",
    ("modeling.py", "RobertaPreTrainedModel.get_memory_footprint"): "v4 PyTorch: bytes of parameters and buffers",
    ("modeling.py", "RobertaPreTrainedModel.set_attn_implementation"): "v4 PyTorch: switch sdpa/eager after loading",
    ("modeling.py", "RobertaPreTrainedModel.get_extended_attention_mask"): "v4 PyTorch's additive mask (2-D or 3-D)",
    # v4 PyTorch's decoder returns a Cache object (EncoderDecoderCache); v4's TF and Flax return tuples.
    ("modeling.py", "RobertaCache"): "v4 PyTorch's EncoderDecoderCache (TF/Flax v4: tuples)",
    ("modeling.py", "RobertaEmbeddings.weight"): "v4 TF's name of the word table (its embeddings layer's variable)",
    # More of v4 PyTorch's PreTrainedModel/ModuleUtilsMixin (v4's TF and Flax models lack them), and
    # head pruning: v4 prunes in PyTorch only (TF and Flax here refuse a config with pruned heads).
    ("modeling.py", "RobertaPreTrainedModel.set_output_embeddings"): "v4 PyTorch: swap the LM decoder",
    ("modeling.py", "RobertaPreTrainedModel.get_decoder"): "v4 PyTorch's accessor of the decoder stack",
    ("modeling.py", "RobertaPreTrainedModel.set_decoder"): "v4 PyTorch's setter of the decoder stack",
    ("modeling.py", "RobertaPreTrainedModel.estimate_tokens"): "v4 PyTorch's token count for floating_point_ops",
    ("modeling.py", "RobertaPreTrainedModel.floating_point_ops"): "v4 PyTorch's 6 × tokens × parameters",
    ("modeling.py", "RobertaPreTrainedModel.invert_attention_mask"): "v4 PyTorch's encoder mask helper",
    ("modeling.py", "RobertaPreTrainedModel.get_head_mask"): "v4 PyTorch's head-mask broadcasting",
    ("modeling.py", "RobertaPreTrainedModel.prune_heads"): "v4 PyTorch's head pruning",
    ("modeling.py", "RobertaAttention.prune_heads"): "v4 PyTorch's head pruning",
    # v4's TF and Flax surfaces of their own.
    ("modeling.py", "RobertaPreTrainedModel.serving"): "v4 TF's serving tf.function",
    ("modeling.py", "RobertaPreTrainedModel.module"): "v4 Flax's Linen-style module (apply/init)",
    ("modeling.py", "RobertaPreTrainedModel.init_weights"): "v4 Flax's init_weights(rng, input_shape, params)",
    ("modeling.py", "RobertaPreTrainedModel.key"): "v4 Flax's model.key (the PRNGKey its parameters were drawn from)",
    ("modeling.py", "RobertaPreTrainedModel.params_shape_tree"): "v4 Flax's ShapeDtypeStruct tree of the parameters",
    ("modeling.py", "RobertaPreTrainedModel.required_params"): "v4 Flax's set of parameter paths",
    ("modeling.py", "RobertaPreTrainedModel.enable_gradient_checkpointing"): "v4 Flax's name of gradient_checkpointing_enable",
    ("heads.py", "RobertaForCausalLM.init_cache"): "v4 Flax's preallocated cache tree (init_cache)",
}


# ---------------------------------------------------------------------------- reading a module


@dataclass
class Outline:
    """What the checker compares of one module."""

    sections: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # top-level defs and classes, in order
    methods: dict[str, list[str]] = field(default_factory=dict)  # class -> methods, in order
    comments: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # normalised code lines, for the report


_PREFIX = re.compile(r"\b(TF|Flax)(Roberta\w*|Trainer)\b")
_SECTION = re.compile(r"^# -{8,}\s*(.*)$")
# Framework words that say the same thing in each text.
_FRAMEWORK_WORDS = re.compile(
    r"\b(torch|tf|tensorflow|jax|jnp|nnx|flax|keras|nn|F|optax|lax|PyTorch|TensorFlow|Keras|Flax|JAX|NNX)\b"
)


def normalise(text: str) -> str:
    """A line with the framework's names replaced, so the three texts can be compared."""
    text = _PREFIX.sub(r"\2", text)
    text = _FRAMEWORK_WORDS.sub("FW", text)
    return " ".join(text.split())


def _name(node: ast.AST) -> str:
    name = _PREFIX.sub(r"\2", node.name)
    return ENTRY_POINTS.get(name, name)


def outline(path: Path) -> Outline:
    source = path.read_text(encoding="utf-8")
    out = Outline()
    for line in source.splitlines():
        stripped = line.strip()
        match = _SECTION.match(line)
        if match:
            out.sections.append(normalise(match.group(1)))
        elif stripped.startswith("#") and not stripped.startswith("#!"):
            out.comments.append(normalise(stripped))
        if stripped:
            out.lines.append(normalise(stripped))
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.names.append(_name(node))
        if isinstance(node, ast.ClassDef):
            out.methods[_name(node)] = [
                _name(item) for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            ]
    return out


# ---------------------------------------------------------------------------- comparing a trio


def _allowed(module: str, name: str) -> bool:
    cls = name.split(".")[0] + ".*" if "." in name else None
    method = "*." + name.split(".", 1)[1] if "." in name else None
    return any(
        (m, n) in ALLOWED for m in (module, "*") for n in (name, cls, method) if n is not None
    )


def _public(name: str) -> bool:
    return not name.startswith("_") or name in ("__init__", "__call__")


def _order_problems(module: str, what: str, sequences: dict[str, list[str]], qualify: str = "") -> list[str]:
    """Differences in order or membership between the backends' sequences of public names."""
    kept = {b: [n for n in seq if _public(n) and not _allowed(module, qualify + n)] for b, seq in sequences.items()}
    problems = []
    reference_backend = next(iter(kept))
    reference = kept[reference_backend]
    for backend, seq in kept.items():
        if backend == reference_backend or seq == reference:
            continue
        missing = [n for n in reference if n not in seq]
        extra = [n for n in seq if n not in reference]
        if missing or extra:
            problems.append(
                f"{module}: {what} of roberta_{backend} differ from roberta_{reference_backend}: "
                f"missing {missing}, extra {extra}"
            )
        else:
            diff = [d for d in difflib.ndiff(reference, seq) if d[:1] in "+-"]
            problems.append(f"{module}: {what} of roberta_{backend} are in another order than roberta_{reference_backend}: {diff}")
    return problems


def check_trio(module: str, paths: dict[str, Path]) -> list[str]:
    """Every difference in a trio of same-named modules that ALLOWED does not list."""
    if module in PLUMBING:
        return []
    outlines = {b: outline(p) for b, p in paths.items()}
    problems = []
    sections = {b: o.sections for b, o in outlines.items()}
    if len({tuple(s) for s in sections.values()}) > 1:
        problems.append(f"{module}: section headers differ: " + "; ".join(f"{b}: {s}" for b, s in sections.items()))
    problems += _order_problems(module, "top-level names", {b: o.names for b, o in outlines.items()})
    classes = [c for c in outlines[BACKENDS[0]].methods if all(c in o.methods for o in outlines.values())]
    for cls in classes:
        problems += _order_problems(
            module, f"methods of {cls}", {b: o.methods[cls] for b, o in outlines.items()}, qualify=cls + "."
        )
    return problems


def line_match(a: list[str], b: list[str]) -> float:
    """Share of lines two normalised texts have in common, in order (difflib's ratio)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def trios(root: Path = ROOT) -> dict[str, dict[str, Path]]:
    """module name -> {backend: path}, for each module that every backend has."""
    found = {}
    for module in MODULES:
        paths = {b: root / "src" / f"roberta_{b}" / module for b in BACKENDS}
        if all(p.exists() for p in paths.values()):
            found[module] = paths
        elif any(p.exists() for p in paths.values()):
            found[module] = {b: p for b, p in paths.items() if p.exists()}
    return found


def check(root: Path = ROOT) -> list[str]:
    problems = []
    for module, paths in trios(root).items():
        if len(paths) < len(BACKENDS):
            lacking = [b for b in BACKENDS if b not in paths]
            problems.append(f"{module}: present in {sorted(paths)} but not in {lacking}")
            continue
        problems += check_trio(module, paths)
    return problems


def report(root: Path = ROOT) -> str:
    rows = []
    for module, paths in trios(root).items():
        if len(paths) < len(BACKENDS):
            continue
        outlines = {b: outline(p) for b, p in paths.items()}
        sizes = ", ".join(f"{b} {len(p.read_text().splitlines())}" for b, p in paths.items())
        pairs = [(a, b) for i, a in enumerate(BACKENDS) for b in BACKENDS[i + 1:]]
        shares = ", ".join(f"{a}~{b} {line_match(outlines[a].lines, outlines[b].lines):.0%}" for a, b in pairs)
        rows.append(f"{module:<14} lines: {sizes}; matching lines: {shares}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this one)")
    parser.add_argument("--report", action="store_true", help="also print sizes and line-match shares")
    args = parser.parse_args(argv)
    if args.report:
        print(report(args.root))
    problems = check(args.root)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} difference(s) between the backends' parallel texts")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
