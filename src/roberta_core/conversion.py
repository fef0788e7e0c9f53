"""Convert a checkpoint directory between the four weight formats, or import a fairseq one.

    roberta_core.convert("ckpt", "ckpt-tf", to="h5")             # Python
    roberta convert ckpt ckpt-tf --to h5                          # shell

The weights go through the canonical NumPy dict (`roberta_core.checkpoint` reads one tensor at a
time and each writer holds at most one more copy), so a conversion needs NumPy only and about two
copies of the weights in memory. `config.json` and the tokenizer files are copied beside them.
Every member of the RoBERTa family converts (`config.model_type` kept; a RoBERTa-PreLayerNorm
result names its encoder `roberta_prelayernorm` as v4's files do; every other file of the source,
`sentencepiece.bpe.model` and `tokenizer.json` of XLM-R and CamemBERT included, travels along).
A source may be one file or v4's shards of any format (`model.safetensors.index.json`,
`pytorch_model.bin.index.json`, `tf_model.h5.index.json`, `flax_model.msgpack.index.json`), and
`max_shard_size` shards the result in any of the four. v4's variant files (`model.fp16.safetensors`,
`model.safetensors.index.fp16.json`, `model.fp16-00001-of-00002.safetensors`, ...) are another set
of weights: a conversion converts the plain weights only, and never copies a variant's files along
(v4 converts no variant either); a note names the variants left out.

The result is built in a staging folder beside DST (`fileio.atomic_dir`) and renamed into place
when complete (and, if asked, verified): a failure — bad input, a full or read-only disk, a failed
check — leaves no partial checkpoint, and an existing DST is replaced only under `overwrite`, never
lost before its replacement is in place. Without `overwrite` the install never replaces anything:
of two conversions racing to one DST, one installs and the other fails with FileExistsError.
Staging folders left by a killed conversion are removed by the next one to the same DST.
Verification (`verify`) re-reads the written weights and compares them bit for bit, then runs a
probe batch through every head the checkpoint serves in the source's framework and the result's
(PyTorch for safetensors/bin, TensorFlow for h5, Flax for msgpack; the float64 NumPy reference,
`roberta_core.reference`, for a fairseq source) and reports the worst difference. A source that no
head loads fully cannot be model-checked: it is refused under `verify` rather than reported verified.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import ml_dtypes
import numpy as np

from . import backends, checkpoint, runtime, weights
from .checkpoint import _sharded
from .config import CONFIG_NAME, RobertaConfig
from .fileio import atomic_dir, current_umask
from .pretrained import check_floating, nonfinite, warn_nonfinite

__all__ = ["convert", "Conversion", "Check", "FORMATS", "SOURCES", "DTYPES"]

FORMATS = tuple(checkpoint.FORMATS)  # safetensors, bin, h5, msgpack
SOURCES = FORMATS + ("fairseq",)
DTYPES = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16), "float16": np.dtype(np.float16)}
# The framework each format belongs to, where verification loads it.
NATIVE_BACKEND = {"safetensors": "pt", "bin": "pt", "h5": "tf", "msgpack": "flax"}

# The file and the shard index of each format -> the format ('pytorch_model.bin.index.json' -> 'bin').
_FORMAT_OF = {name: fmt for fmt, file in checkpoint.FORMATS.items() for name in (file, _sharded.index_name(file))}
_PROGRESS_AFTER_S = 1.0  # the bar appears only for conversions that take longer than this


def _is_weights_file(name: str) -> bool:
    """Whether a file of this name holds weights: any format's file, index or shard, plain or of
    any variant. Such a file never travels along as a "tokenizer file"."""
    return checkpoint.is_weights_file(name) or checkpoint.variant_of(name) is not None


@dataclass
class Check:
    """One verification result: `what` was compared, worst absolute and relative difference."""

    what: str
    max_abs: float
    rel: float
    bar: float

    @property
    def ok(self) -> bool:
        return self.rel <= self.bar

    def __str__(self) -> str:
        return f"{self.what}: max |diff| {self.max_abs:.3g}, relative {self.rel:.3g} (bar {self.bar:g})"


@dataclass
class Conversion:
    """What `convert` wrote: the checkpoint folder, its weight format, the files in it, the
    number of parameters, and the verification results (None when not verified)."""

    path: Path
    format: str
    files: list[str]
    parameters: int
    checks: list[Check] | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- the source


@dataclass
class _Source:
    """A checkpoint to convert: where its weights are, its config, the files that travel along."""

    path: Path
    format: str  # one of SOURCES
    weights: Path | None  # the weights file (None for fairseq: imported in memory)
    config: RobertaConfig
    config_text: str | None  # config.json as found (copied verbatim unless the dtype changes)
    extra_files: dict[str, Path | str]  # name -> file to copy, or text to write
    variants: list[str] = field(default_factory=list)  # v4 variants whose weights are left out ('fp16')
    outside: list[str] = field(default_factory=list)  # symlinks to files outside the checkpoint, not copied


def _inside_checkpoint(path: Path, src: Path) -> bool:
    """Whether a file beside the weights is the checkpoint's own: not a symlink, or one that
    resolves inside `src` or, for a Hugging Face cache snapshot (`.../snapshots/<commit>/`), into
    that repo's `blobs/`. A downloaded folder's `tokenizer.json -> ~/.ssh/id_rsa` is not copied
    into the output (which may be pushed to the Hub)."""
    if not path.is_symlink():
        return True
    target = path.resolve()
    roots = [src.resolve()]
    if src.resolve().parent.name == "snapshots":
        roots.append(src.resolve().parent.parent / "blobs")
    return any(target.is_relative_to(root) for root in roots)


def _open_source(src: Path, from_format: str | None, fairseq_options: dict[str, Any]) -> tuple[_Source, Any]:
    """Find and check the source; returns it and, for fairseq, the import (config + arrays)."""
    if from_format == "fairseq":
        from . import fairseq

        imported = fairseq.import_checkpoint(src, **fairseq_options)
        source = _Source(src, "fairseq", None, imported.config, None, dict(imported.tokenizer_files))
        return source, imported
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such checkpoint directory")
    if not src.is_dir():
        hint = " (a fairseq checkpoint? pass --from fairseq)" if src.suffix in (".pt", ".pth") else ""
        raise NotADirectoryError(
            f"{src} is a file; SRC must be a checkpoint directory (config.json + weights){hint}"
        )
    variants = sorted({v for p in src.iterdir() if (v := checkpoint.variant_of(p.name)) is not None})
    only_variants = (
        f" (it holds the {', '.join(variants)} variant's weights only: a conversion converts the plain weights, "
        "not variant files like model.fp16.safetensors)" if variants else ""
    )
    try:
        weights_file = checkpoint.find_weights_file(src, formats=[from_format] if from_format else [])
    except FileNotFoundError:
        weights_file = None
    if from_format is None and weights_file is None:
        raise FileNotFoundError(
            f"{src} is not a checkpoint: it holds none of {', '.join(checkpoint.WEIGHTS_FILES)}"
            + (" (a fairseq checkpoint? pass --from fairseq)" if any(src.glob("*.pt")) else only_variants)
        )
    if from_format is not None and (weights_file is None or _FORMAT_OF[weights_file.name] != from_format):
        file = checkpoint.FORMATS[from_format]
        raise FileNotFoundError(
            f"{src}: --from {from_format} but there is no {file} or {_sharded.index_name(file)}"
            + (only_variants if weights_file is None else "")
        )
    if not (src / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{src} is not a checkpoint: it has weights but no {CONFIG_NAME}")
    config = RobertaConfig.from_json_file(src / CONFIG_NAME)
    beside = [p for p in sorted(src.iterdir())
              if p.is_file() and p.name != CONFIG_NAME and not p.name.startswith(".") and not _is_weights_file(p.name)]
    extra = {p.name: p for p in beside if _inside_checkpoint(p, src)}
    outside = [p.name for p in beside if p.name not in extra]
    source = _Source(src, _FORMAT_OF[weights_file.name], weights_file, config,
                     (src / CONFIG_NAME).read_text(encoding="utf-8"), extra, variants, outside)
    return source, None


def _read_weights(source: _Source, imported: Any, dtype: np.dtype | None, bar) -> tuple[dict[str, np.ndarray], bool]:
    """The canonical arrays of the source, cast to `dtype` one tensor at a time (floats only),
    and whether the source or the result holds half-precision floats."""
    items: Iterator[tuple[str, np.ndarray]]
    if imported is not None:  # taken out one by one, so a cast never keeps the original alive
        items = ((key, imported.state.pop(key)) for key in list(imported.state))
    else:
        items = checkpoint.iter_state_dict(source.weights)
    state: dict[str, np.ndarray] = {}
    half = dtype in (DTYPES["bfloat16"], DTYPES["float16"])
    for key, array in items:
        half = half or array.dtype in (DTYPES["bfloat16"], DTYPES["float16"])
        if dtype is not None and array.dtype != dtype and (array.dtype.kind == "f" or array.dtype.name == "bfloat16"):
            array = array.astype(dtype)
        state[key] = array
        bar.update(array.nbytes)
    return state, half


def _source_name(source: _Source) -> str:
    return str(source.weights or source.path)


def _check_weights(source: _Source, state: dict[str, np.ndarray]) -> weights.LoadPlan:
    """The load plan of the head the weights belong to; raises when they are no RoBERTa's, do not
    fit the config, or are not floating point."""
    config = source.config
    if not state:
        raise ValueError(f"{_source_name(source)} holds no weights: there is nothing to convert")
    try:
        head = weights.head_for_architecture((config.architectures or [])[0])
    except (IndexError, ValueError):
        head = weights.head_for_architecture(checkpoint.guess_architecture(state))
    plan = weights.plan_load(config, head, {k: v.shape for k, v in state.items()})
    if plan.unknown:
        raise ValueError(
            f"{_source_name(source)} is not a RoBERTa checkpoint: no RoBERTa head owns "
            f"{', '.join(plan.unknown[:8])}{' ...' if len(plan.unknown) > 8 else ''}"
        )
    if plan.mismatched:
        shown = ", ".join(f"{k} {s} != {e}" for k, s, e in plan.mismatched[:4])
        raise ValueError(f"{source.path}: weights do not fit its {CONFIG_NAME}: {shown}")
    check_floating(((k, v) for k, v in state.items() if not weights.is_buffer(k)), _source_name(source))
    return plan


def _check_verifiable(source: _Source, plan: weights.LoadPlan, heads: list[str]) -> None:
    """Under `verify`, refuse a source whose model check would check nothing: no head loads it
    fully (a weight is missing), so no probe could run without newly initialised parameters."""
    if heads:
        return
    lacking = ", ".join(plan.missing[:8]) + (f", ... ({len(plan.missing) - 8} more)" if len(plan.missing) > 8 else "")
    raise ValueError(
        f"{_source_name(source)}: no RoBERTa head loads these weights fully ({weights.HEADS[plan.head]} lacks "
        f"{len(plan.missing)}: {lacking}), so the result's outputs cannot be checked against the source's; "
        "pass verify=False (--no-verify) to convert it unchecked"
    )


# ---------------------------------------------------------------------------- the destination


def _looks_like_checkpoint(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file() or any(_is_weights_file(p.name) for p in path.iterdir())


def _check_destination(src: Path, dst: Path, overwrite: bool) -> None:
    if not dst.exists() and not dst.is_symlink():
        return
    if not overwrite:
        raise FileExistsError(f"{dst} exists; pass overwrite=True (--overwrite) to replace it")
    if dst.is_symlink() or not dst.is_dir():
        raise FileExistsError(f"{dst} exists and is not a checkpoint directory; refusing to replace it")
    if not _looks_like_checkpoint(dst):
        raise FileExistsError(
            f"{dst} is a directory but not a checkpoint (no {CONFIG_NAME}, no weights); refusing to replace it"
        )
    if dst.resolve() in src.resolve().parents:
        raise ValueError(f"{src} lies inside {dst}; replacing {dst} would delete the source")


def _finish_files(folder: Path) -> None:
    """Give the files the permissions a plain `open` would (temporary files are created private);
    `atomic_dir` fsyncs them and sets the folder's own on install."""
    umask = current_umask()
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


# ---------------------------------------------------------------------------- verification


def _probe_inputs(config: RobertaConfig, head: str) -> dict[str, np.ndarray]:
    """Two sequences, the second padded, of ordinary (non-special) ids: (B, T), or (B, 2, T) for
    multiple choice."""
    rng = np.random.default_rng(0)
    T = min(12, config.max_sequence_length)
    low = min(4, config.vocab_size - 1)
    ids = rng.integers(low, config.vocab_size, size=(2, T))
    ids[:, 0] = config.bos_token_id if config.bos_token_id is not None else ids[:, 0]
    mask = np.ones_like(ids)
    if config.pad_token_id is not None and T > 3:
        ids[1, T - 3:] = config.pad_token_id
        mask[1, T - 3:] = 0
    if head == "multiple_choice":
        ids, mask = np.stack([ids, ids[::-1]], axis=1), np.stack([mask, mask[::-1]], axis=1)
    return {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)}


_MAIN_OUTPUTS = ("logits", "start_logits", "end_logits", "last_hidden_state", "pooler_output")


def _compare(what: str, got: dict[str, Any], ref: dict[str, Any], bar: float) -> Check:
    fields = [k for k in _MAIN_OUTPUTS if k in ref]
    missing = [k for k in fields if k not in got]
    if missing:
        raise ValueError(f"{what}: the result gives no {', '.join(missing)}")
    g = np.concatenate([np.asarray(got[k], np.float64).ravel() for k in fields])
    r = np.concatenate([np.asarray(ref[k], np.float64).ravel() for k in fields])
    diff = np.abs(g - r)
    norm = float(np.linalg.norm(r)) or 1.0
    return Check(what, float(diff.max()) if diff.size else 0.0, float(np.linalg.norm(g - r)) / norm, bar)


def _verify_models(source: _Source, imported_state, result: Path, to: str, heads: list[str], bar: float, log) -> list[Check]:
    src_backend = NATIVE_BACKEND.get(source.format, "reference")
    dst_backend = NATIVE_BACKEND[to]
    if src_backend == "reference":
        from .reference import forward  # the library's float64 reference (NumPy only)
    checks = []
    for head in heads:
        inputs = _probe_inputs(source.config, head)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unused-key reports (e.g. lm_head.* into a bare encoder)
            if src_backend == "reference":
                ref = forward(source.config, imported_state, head, **inputs)
            else:
                ref = runtime.run_model(src_backend, runtime.load_model(src_backend, head, source.path), inputs)
            got = runtime.run_model(dst_backend, runtime.load_model(dst_backend, head, result), inputs)
        check = _compare(f"{weights.HEADS[head]}: {src_backend} ({source.format}) vs {dst_backend} ({to})", got, ref, bar)
        log(f"  {check}")
        checks.append(check)
    return checks


def _verify_weights(state: dict[str, np.ndarray], result: Path) -> Check:
    """Re-read the written weights; every array must equal what was written, bit for bit."""
    seen = set()
    for key, array in checkpoint.iter_state_dict(result):
        seen.add(key)
        want = state.get(key)
        if want is None:
            raise ValueError(f"verification: the written file holds {key!r}, which was not written")
        if array.dtype != want.dtype or array.shape != want.shape or array.tobytes() != want.tobytes():
            raise ValueError(f"verification: {key} reads back different from what was written")
    # TF and Flax files store a tied alias once, as its source.
    lost = [k for k in state if k not in seen and not (k in weights.TIED and weights.TIED[k] in state)]
    if lost:
        raise ValueError(f"verification: the written file lacks {', '.join(lost[:8])}")
    return Check(f"weights ({len(seen)} arrays) read back", 0.0, 0.0, 0.0)


def _verification_backends(source_format: str, to: str) -> list[str]:
    """The backends a check of `source_format` -> `to` loads (a fairseq source is checked against the NumPy reference)."""
    return sorted({NATIVE_BACKEND[f] for f in (source_format, to) if f in NATIVE_BACKEND})


# ---------------------------------------------------------------------------- convert


def _check_options(to, dtype, from_format, max_shard_size) -> np.dtype | None:
    if to not in FORMATS:
        raise ValueError(f"unknown target format {to!r}; choose one of {', '.join(FORMATS)}")
    if from_format is not None and from_format not in SOURCES:
        raise ValueError(f"unknown source format {from_format!r}; choose one of {', '.join(SOURCES)}")
    if dtype is not None and str(dtype) not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if max_shard_size is not None:
        checkpoint.parse_size(max_shard_size)
    return None if dtype is None else DTYPES[str(dtype)]


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    to: str = "safetensors",
    dtype: str | None = None,
    max_shard_size: int | str | None = None,
    verify: bool | None = None,
    overwrite: bool = False,
    from_format: str | None = None,
    classification_head: str | None = None,
    gpt2_encoder: str | os.PathLike | None = None,
    gpt2_merges: str | os.PathLike | None = None,
    progress: bool | None = None,
    log=None,
) -> Conversion:
    """Convert the checkpoint directory `src` into a new checkpoint directory `dst`.

    to:             'safetensors' | 'bin' | 'h5' | 'msgpack'
    dtype:          None (keep) | 'float32' | 'bfloat16' | 'float16' (floating arrays only)
    max_shard_size: e.g. '2GB': split the weights (any format) into v4's shards of at most this
                    size (`tf_model-00001-of-00003.h5` + `tf_model.h5.index.json`, ...)
    verify:         True: check the result (needs the frameworks); None: check where they are
                    installed; False: do not
    overwrite:      replace an existing checkpoint at `dst` (only after the new one is complete)
    from_format:    read this format of `src` ('safetensors', 'bin', 'h5', 'msgpack') where it
                    holds several (its file or v4's sharded index; variant files such as
                    `model.fp16.safetensors` are never converted nor copied), or 'fairseq' to
                    import `model.pt` + `dict.txt` (then
                    `classification_head`, `gpt2_encoder`, `gpt2_merges` as in
                    `roberta_core.fairseq.import_checkpoint`)
    progress:       show a progress bar (None: on a terminal, for conversions that take a while)
    log:            callable taking one line of text (default: stderr)
    """
    target_dtype = _check_options(to, dtype, from_format, max_shard_size)
    log = log or (lambda line: print(line, file=sys.stderr))
    src, dst = Path(src), Path(dst)
    fairseq_options = {k: v for k, v in dict(
        classification_head=classification_head, gpt2_encoder=gpt2_encoder, gpt2_merges=gpt2_merges).items() if v is not None}
    if fairseq_options and from_format != "fairseq":
        raise ValueError(f"{', '.join(fairseq_options)} apply to --from fairseq only")
    _check_destination(src, dst, overwrite)
    source, imported = _open_source(src, from_format, fairseq_options)
    needed = _verification_backends(source.format, to)
    missing = [b for b in needed if not runtime.available(b)]
    if verify and missing:
        raise ImportError(
            f"verify=True needs the {', '.join(missing)} backend(s), which are not installed; "
            f"install them (pip install 'roberta3[{','.join(backends.get(b).extra for b in missing)}]') or pass verify=False"
        )
    notes = []
    if source.outside:
        notes.append(f"not copied: {', '.join(source.outside)} (symlinks to files outside the checkpoint)")
    if source.variants:
        notes.append(f"left out the {', '.join(source.variants)} variant's weights: only the plain "
                     f"weights ({source.weights.name}) are converted")
    if verify is None:
        verify = not missing
        if missing:
            notes.append(f"not verified: the {', '.join(missing)} backend(s) are not installed")

    total = sum(p.stat().st_size for p in _weight_files(source)) if source.weights else None
    try:
        with atomic_dir(dst, overwrite=overwrite) as staging, _progress_bar(progress, total, f"{source.format} -> {to}") as bar:
            state, half = _read_weights(source, imported, target_dtype, bar)
            plan = _check_weights(source, state)
            head = plan.head
            # Converted as they are. The checkpoint readers name NaN/Inf tensors in a warning; a
            # fairseq import is named here. A failed model check names them again (its diff is NaN).
            bad_values = nonfinite(state.items()) if verify or imported is not None else []
            if imported is not None:
                warn_nonfinite(bad_values, _source_name(source))
            heads = _heads_to_probe(source.config, state)
            if verify:
                _check_verifiable(source, plan, heads)
            _check_free_space(staging, state, source)
            bar.set_description(f"writing {checkpoint.FORMATS[to]}")
            try:
                checkpoint.save_state_dict(
                    state, staging, format=to, max_shard_size=max_shard_size,
                    architecture=weights.architecture_name(head, source.config.model_type),
                    base_model_prefix=source.config.base_model_prefix,
                )
            except Exception as e:  # a library's own error type around a failed write (safetensors' SafetensorError)
                code = re.search(r"os error (\d+)", str(e))
                if code is None or isinstance(e, OSError):
                    raise
                raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from e
            _write_config(source, staging / CONFIG_NAME, target_dtype)
            for name, item in source.extra_files.items():
                if isinstance(item, Path):
                    shutil.copyfile(item, staging / name)
                else:
                    (staging / name).write_text(item, encoding="utf-8")
            _finish_files(staging)
            bar.close()
            parameters = int(sum(v.size for k, v in state.items() if k not in weights.TIED))
            checks = None
            if verify:
                log(f"verifying {dst.name} ...")
                checks = [_verify_weights(state, staging)]
                log(f"  {checks[0].what}: identical")
                reference_state = state if source.format == "fairseq" else None
                del state  # the frameworks load their own copies
                checks += _verify_models(source, reference_state, staging, to, heads, 2e-2 if half else 1e-5, log)
                failed = [c for c in checks if not c.ok]
                if failed:
                    why = ""
                    if bad_values and any(not np.isfinite(c.max_abs) for c in failed):
                        why = (f"; the outputs are not finite because the source's weights hold NaN or Inf in "
                               f"{', '.join(bad_values[:8])}{' ...' if len(bad_values) > 8 else ''}")
                    raise ValueError("verification failed, nothing written: " + "; ".join(map(str, failed)) + why)
            files = sorted(p.name for p in staging.iterdir())
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EDQUOT):
            raise type(e)(e.errno, f"cannot write {dst}: {e.strerror or e}; nothing was written, {src} is untouched") from e
        raise
    return Conversion(dst, to, files, parameters, checks, notes)


def _check_free_space(folder: Path, state: dict[str, np.ndarray], source: _Source) -> None:
    """Refuse up front when the weights cannot fit: some writers (HDF5) do not survive a full disk
    gracefully, and nothing should be started that cannot finish."""
    need = sum(v.nbytes for v in state.values()) + sum(
        p.stat().st_size if isinstance(p, Path) else len(p) for p in source.extra_files.values()) + 2**20
    free = shutil.disk_usage(folder).free
    if free < need:
        raise OSError(errno.ENOSPC, f"No space left on device: the result needs about {need / 2**20:.1f} MiB, "
                                    f"{free / 2**20:.1f} MiB are free")


def _heads_to_probe(config: RobertaConfig, state: dict[str, np.ndarray]) -> list[str]:
    """Every head whose parameters the weights hold; the causal LM only for a decoder config (it
    shares the masked LM's parameters, and running an encoder causally checks nothing new)."""
    return [h for h in weights.heads_served(config, state) if h != "causal_lm" or config.is_decoder]


def _weight_files(source: _Source) -> list[Path]:
    """The files the weights are read from: the file, or every shard a sharded index names (the
    index checked as `_sharded.shard_files` checks it; a missing shard fails when it is read)."""
    if source.weights.name.endswith(".index.json"):
        return [source.path / name for name in _sharded.shard_files(source.weights) if (source.path / name).is_file()]
    return [source.weights]


def _write_config(source: _Source, target: Path, dtype: np.dtype | None) -> None:
    """config.json as found (byte for byte) unless the dtype changes; then with its dtype fields updated."""
    if source.config_text is not None and dtype is None:
        target.write_text(source.config_text, encoding="utf-8")
        return
    data = json.loads(source.config_text) if source.config_text is not None else source.config.to_dict()
    if dtype is not None:
        data["dtype"] = dtype.name
        if "torch_dtype" in data:
            data["torch_dtype"] = dtype.name
    target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _progress_bar(enabled: bool | None, total: int | None, description: str):
    from tqdm import tqdm

    bar = tqdm(
        total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
        delay=_PROGRESS_AFTER_S, disable=(not sys.stderr.isatty()) if enabled is None else not enabled,
    )
    try:
        yield bar
    finally:
        bar.close()
