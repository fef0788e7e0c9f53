"""The framework-neutral half of `from_pretrained` / `save_pretrained`, shared by every backend.

A backend's `from_pretrained(path, ...)` calls `load_pretrained` to get the config and the
canonical NumPy weights of its head (keys mapped, the load report checked), builds its module
and copies the arrays in. `save_pretrained` hands its canonical dict to `save_pretrained_files`.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import ml_dtypes
import numpy as np

from . import checkpoint, hub
from .config import V4_CONFIG_FIELDS, RobertaConfig
from .weights import LoadPlan, architecture_name, plan_load

__all__ = [
    "LOAD_OPTIONS", "CONFIG_KEYWORDS", "split_from_pretrained_kwargs", "whole_model_device", "loading_info", "v4_pt_loading_info", "push_model_to_hub", "resolve_pretrained",
    "pretrained_weights_file",
    "load_pretrained", "save_pretrained_files", "save_repo_id", "push_pretrained_to_hub", "SAVE_FORMATS", "check_floating", "is_floating", "nonfinite",
    "warn_nonfinite",
]

# format name -> file written (the backend decides which ones it offers)
SAVE_FORMATS = ("safetensors", "bin", "h5", "msgpack")


# ---------------------------------------------------------------------------- from_pretrained's keywords

# v4's `from_pretrained` keywords that say how to load, not what the model is. Each backend honours
# those that mean something for it (`device_map`, `subfolder`, `output_loading_info`; the Hub's
# `revision`, `cache_dir`, `local_files_only`, `token` once a name is resolved through the cache)
# and accepts the rest, as v4 does, without writing any of them into the config.
LOAD_OPTIONS: frozenset[str] = frozenset({
    "revision", "cache_dir", "local_files_only", "token", "use_auth_token", "subfolder", "force_download",
    "resume_download", "proxies", "mirror", "variant", "use_safetensors", "trust_remote_code",
    "device_map", "low_cpu_mem_usage", "output_loading_info", "from_tf", "from_flax", "from_pt",
    "_fast_init", "offload_folder", "offload_state_dict", "max_memory", "weights_only", "key_mapping",
    "code_revision", "_from_auto", "_from_pipeline", "tp_plan", "adapter_kwargs", "offload_buffers", "use_kernels",
    "state_dict", "quantization_config",
})
# Loading options that ask for what no backend here does: accepted as None (v4's default) only.
LOAD_OPTIONS_NONE_ONLY = {"state_dict": "weights from a state dict in memory (load the model, then "
                                        "load_state_dict)", "quantization_config": "quantization while loading"}

# Keywords that are config fields: they change the config the model is built from (v4 routes a
# keyword to the config when the config has that attribute: RoBERTa's fields and every v4 config's,
# `torchscript`, `finetuning_task`, `max_length`, ...).
CONFIG_KEYWORDS: frozenset[str] = (frozenset(RobertaConfig().to_dict()) | frozenset(V4_CONFIG_FIELDS)
                                   | {"num_labels", "id2label", "label2id"}) - {"_name_or_path", "_commit_hash"}


def split_from_pretrained_kwargs(
    owner: str, kwargs: Mapping[str, Any], *, model_keywords: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Sort the extra keywords of `<owner>.from_pretrained(path, **kwargs)` as v4 does:
    (config overrides, keywords for the model's `__init__` (`model_keywords`, e.g.
    `add_pooling_layer`), loading options (`LOAD_OPTIONS`)). Any other keyword is a `TypeError`
    naming it — never written into the config."""
    overrides, model, options = {}, {}, {}
    model_keywords = set(model_keywords)
    unknown = []
    for key, value in kwargs.items():
        if key in model_keywords:
            model[key] = value
        elif key in LOAD_OPTIONS:
            if key in LOAD_OPTIONS_NONE_ONLY and value is not None:
                raise TypeError(f"{owner}.from_pretrained({key}=...) is not supported: {LOAD_OPTIONS_NONE_ONLY[key]} "
                                f"is not done here; pass {key}=None or leave it out")
            options[key] = value
        elif key in CONFIG_KEYWORDS:
            overrides[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise TypeError(
            f"{owner}.from_pretrained() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}: "
            "not a config field, a model argument or a loading option"
        )
    return overrides, model, options


def whole_model_device(device_map: Any) -> Any:
    """v4's `device_map` for a model kept whole on one device: `{"": device}` gives that device,
    anything else is returned as it is for the backend to read. A map that places modules on
    different devices is refused: no backend splits a model."""
    if isinstance(device_map, dict):
        if set(device_map) != {""}:
            raise ValueError(
                f"device_map places the whole model on one device ({{'': device}}); splitting it across "
                f"devices is not supported, got keys {sorted(device_map)[:4]}"
            )
        return device_map[""]
    return device_map


# A backend's weights formats in v4's order of preference (named by the format `prefer` gives):
# PyTorch safetensors then bin; TF safetensors then h5; Flax msgpack then safetensors. The other
# formats follow (read by every backend, which v4 refuses without from_tf=/from_flax=/from_pt=).
_BACKEND_FORMATS = {"safetensors": ("safetensors", "bin"), "h5": ("safetensors", "h5"), "msgpack": ("msgpack", "safetensors")}


def _weights_query(prefer: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """`checkpoint.weights_files`' arguments for a backend's `from_pretrained(**options)`, as v4
    reads them: `from_tf=True` puts tf_model.h5 first, `from_flax=True` flax_model.msgpack,
    `from_pt=True` (TF) pytorch_model.bin; `variant`, `use_safetensors` as v4's."""
    options = options or {}
    first = [fmt for flag, fmt in (("from_tf", "h5"), ("from_flax", "msgpack"), ("from_pt", "bin")) if options.get(flag)]
    if prefer == "msgpack":  # v4 Flax reads flax_model.msgpack, then safetensors, before from_pt's file
        first = [f for f in first if f != "bin"]
    formats = list(dict.fromkeys([*first, *_BACKEND_FORMATS.get(prefer, (prefer,))]))
    query = {"formats": formats, "variant": options.get("variant"), "use_safetensors": options.get("use_safetensors")}
    if prefer == "h5" and query["use_safetensors"]:
        # v4 TF reads with use_safetensors=True what its own order gives — from_pt's
        # pytorch_model.bin, safetensors, tf_model.h5 — and no other format (none: an OSError).
        query.update(use_safetensors=None, only=True)
    return query


def pretrained_weights_file(directory: str | os.PathLike, options: Mapping[str, Any] | None = None, *,
                            prefer: str = "safetensors") -> Path:
    """The weights file a backend's `from_pretrained(directory, **options)` reads, as v4 picks it
    (`_weights_query`); none: FileNotFoundError (an OSError) in v4's words."""
    query = _weights_query(prefer, options)
    return checkpoint.find_weights_file(directory, query.pop("formats"), **query)


def resolve_pretrained(
    path: str | os.PathLike, options: Mapping[str, Any] | None = None, *, prefer: str = "safetensors",
    config_given: bool = False, generation: bool = False,
) -> Path:
    """The local checkpoint directory a backend's `from_pretrained(path, **options)` reads: `path`
    itself (with `subfolder`) when it is a directory, else the Hub repo id `path` fetched into the
    Hugging Face cache — config.json and the weights, the first the repo has of the files
    `pretrained_weights_file` would pick (the backend's formats, `variant`, `use_safetensors`,
    `from_*`), a sharded index with its shards (`hub.resolve_pretrained`, which reads the Hub
    keywords among `options`: `revision`, `cache_dir`, `local_files_only`, `token`).
    `config_given`: the caller passed `config=`, so a repo without config.json loads, as in v4.
    `generation`: fetch generation_config.json too where the repo has one (a causal LM's, as v4)."""
    want = ("generation",) if generation else ()  # a causal LM's generation_config.json, when the repo has one
    query = _weights_query(prefer, options)
    order = checkpoint.weights_files(query.pop("formats"), **query)
    if config_given:
        return hub.resolve_pretrained(path, options, need=("weights",), want=("config", *want), prefer=prefer, order=order)
    return hub.resolve_pretrained(path, options, need=("config", "weights"), want=want, prefer=prefer, order=order)


def loading_info(plan: LoadPlan) -> dict[str, list]:
    """v4's `output_loading_info` dict from a load plan: keys newly initialised, checkpoint keys
    not loaded, keys whose shapes differed (re-initialised under `ignore_mismatched_sizes`)."""
    return {
        "missing_keys": list(plan.missing),
        "unexpected_keys": list(plan.unused) + list(plan.unknown),
        "mismatched_keys": [key for key, _, _ in plan.mismatched],
        "error_msgs": [],
    }


def _v4_renamed(key: str) -> str:
    """v4 PyTorch's `_fix_state_dict_key_on_load`: LayerNorm `gamma`/`beta` are `weight`/`bias`."""
    for old, new in (("LayerNorm.beta", "LayerNorm.bias"), ("LayerNorm.gamma", "LayerNorm.weight")):
        if key.endswith(old):
            return key.replace(old, new)
    return key


def v4_pt_loading_info(
    plan: LoadPlan,
    model_keys: Iterable[str],
    *,
    prefix: str,
    has_base: bool,
    tied_groups: Iterable[Iterable[str]] = (),
    buffers: Iterable[str] = (),
    ignore_missing: Iterable[str] | None = None,
    ignore_unexpected: Iterable[str] | None = None,
    rename: Callable[[str], str] = lambda key: key,
) -> dict[str, list]:
    """v4 PyTorch's `output_loading_info` (transformers 4.57's `_load_pretrained_model`), computed
    from the checkpoint's keys (`plan.checkpoint_keys`, which `load_pretrained` records) and the
    model's: `model_keys`, its state dict's keys (tied aliases included) in v4's names; `prefix`,
    its `base_model_prefix`; `has_base`, whether it holds the encoder under that name (a head).

    As v4: the checkpoint's keys renamed (`gamma`/`beta`; the prefix added for a head loading an
    encoder's checkpoint, removed for an encoder loading a head's, whose other keys are not read);
    missing keys the model's that the checkpoint lacks, sorted, less those tied to a key that
    loads (`tied_groups`: names sharing one parameter); unexpected keys the checkpoint's the model
    lacks, sorted, with a head's own keys when an encoder loads them, less the model's `buffers`,
    and without the prefix a head added; then `ignore_missing`/`ignore_unexpected` (v4's
    `_keys_to_ignore_on_load_*` regular expressions). `rename` maps a canonical key to v4's name
    (`plan.mismatched`'s)."""
    original = list(getattr(plan, "checkpoint_keys", ()))
    dotted = f"{prefix}."
    has_prefix_module = any(key.startswith(prefix) for key in original)  # v4 tests the bare prefix
    task_from_base = not has_prefix_module and has_base
    base_from_task = has_prefix_module and not has_base
    renamed = []
    for key in original:
        key = _v4_renamed(key)
        if task_from_base:
            key = dotted + key
        elif base_from_task:
            if not key.startswith(dotted):
                continue
            key = key[len(dotted):]
        renamed.append(key)
    expected, found = set(model_keys), set(renamed)
    missing = sorted(expected - found)
    unexpected = found - expected
    if base_from_task:
        unexpected.update(key for key in original if not key.startswith(dotted))
    unexpected = sorted(unexpected - set(buffers))
    for group in tied_groups:
        group = set(group)
        lacking = [key for key in missing if key in group]
        if 0 < len(lacking) < len(group):  # loaded through another name of the same parameter
            missing = [key for key in missing if key not in lacking]
    if ignore_missing:
        pattern = re.compile("|".join(f"({p})" for p in ignore_missing))
        missing = [key for key in missing if pattern.search(key) is None]
    if ignore_unexpected:
        pattern = re.compile("|".join(f"({p})" for p in ignore_unexpected))
        unexpected = [key for key in unexpected if pattern.search(key) is None]
    if task_from_base:
        unexpected = [key.removeprefix(dotted) for key in unexpected]
    return {
        "missing_keys": missing,
        "unexpected_keys": unexpected,
        "mismatched_keys": [rename(key) for key, _, _ in plan.mismatched],
        "error_msgs": [],
    }


def load_pretrained(
    path: str | os.PathLike,
    head: str,
    *,
    config: RobertaConfig | None = None,
    strict: bool = False,
    ignore_mismatched_sizes: bool = False,
    pooled: bool | None = None,
    weights_file: str | os.PathLike | None = None,
    v4_mismatch_owner: str | None = None,
    **config_overrides: Any,
) -> tuple[RobertaConfig, dict[str, np.ndarray], LoadPlan]:
    """Read a checkpoint directory (any of the four weight formats) for `head`.

    Returns the config (from `config.json` with `config_overrides` applied, unless `config`
    is given), the canonical arrays the head owns that the checkpoint holds, and the load plan
    (already checked: shape mismatches raise unless ignored; unknown/unused/missing keys warn,
    or raise under `strict`). Keys in `plan.missing` are for the backend to initialise.
    `pooled=False` is a bare model built without its pooler (`add_pooling_layer=False`): the
    checkpoint's pooler is reported unused, not loaded. `weights_file`: the file to read (a
    backend's `pretrained_weights_file`), else `checkpoint.find_weights_file(path)`'s.
    `v4_mismatch_owner`: the model's class name for a shape mismatch raised in v4 PyTorch's words
    (`weights.StateDictSizeMismatchError`, also a RuntimeError).
    """
    path = Path(path)
    if config is None:
        config = RobertaConfig.from_pretrained(path, **config_overrides)
    elif config_overrides:
        config = config.copy(**config_overrides)
    state = checkpoint.load_state_dict(path if weights_file is None else weights_file)
    plan = plan_load(
        config, head, {k: v.shape for k, v in state.items()}, ignore_mismatched_sizes=ignore_mismatched_sizes,
        pooled=pooled,
    )
    plan.checkpoint_keys = list(state)  # the file's own names, for v4's loading report (`v4_pt_loading_info`)
    plan.check(strict=strict, source=str(path), v4_mismatch_owner=v4_mismatch_owner)
    loaded = {target: state[src] for target, src in plan.mapping.items()}
    # Before a backend copies them into its (float) parameters, which would cast silently. (NaN
    # and Inf values load: the reader has named those tensors in one warning.)
    check_floating(((plan.mapping[k], v) for k, v in loaded.items()), str(path))
    return config, loaded, plan


# ---------------------------------------------------------------------------- weight values


def is_floating(dtype: np.dtype) -> bool:
    """float16/32/64 and the ml_dtypes floats (bfloat16, float8_*: kind 'V' to NumPy)."""
    if dtype.kind == "f":
        return True
    if dtype.kind != "V":  # ints, bools, complex (which ml_dtypes.finfo would accept)
        return False
    try:
        ml_dtypes.finfo(dtype)
    except (TypeError, ValueError):
        return False
    return True


def check_floating(items: Iterable[tuple[str, np.ndarray]], source: str) -> None:
    """Refuse parameters stored as integers, booleans or complex numbers: every RoBERTa parameter is
    a float, and copying an int32 table into a float model would turn a broken file into a model
    that runs. `items` are (name in the file, array) pairs."""
    for name, array in items:
        if not is_floating(array.dtype):
            raise TypeError(
                f"{source}: parameter {name} is stored as {array.dtype.name}; RoBERTa parameters are "
                "floating point (float32, float16, bfloat16, float64): the file is not a model's weights"
            )


def nonfinite(items: Iterable[tuple[str, np.ndarray]]) -> list[str]:
    """The names of the floating arrays among `items` that hold a NaN or an infinity."""
    bad = []
    for name, array in items:
        if not is_floating(array.dtype) or array.size == 0:
            continue
        if array.dtype == np.float64:  # finite float64 values can sum to inf: test each one
            finite = bool(np.isfinite(array).all())
        else:  # a float64 sum of narrower floats is finite exactly when every value is: no mask array
            finite = math.isfinite(float(array.sum(dtype=np.float64)))
        if not finite:
            bad.append(name)
    return bad


def warn_nonfinite(names: list[str], source: str) -> None:
    """One warning naming every parameter of `source` that holds NaN or Inf (a diverged run, a bad
    cast): the model loads, but its outputs will be NaN wherever those values reach. (The checkpoint
    readers warn so for every file they read; this is for arrays from elsewhere, a fairseq import.)"""
    if names:
        shown = ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else "")
        warnings.warn(f"{source}: {len(names)} tensor(s) hold NaN or Inf values: {shown}", stacklevel=3)


def save_repo_id(directory: str | os.PathLike, push_to_hub: bool, hub_kwargs: dict[str, Any]) -> str:
    """The repo a `save_pretrained(directory, push_to_hub=..., **hub_kwargs)` uploads to (v4's
    `repo_id`, default the directory's name; taken out of `hub_kwargs`), after checking, before
    anything is written, that `hub_kwargs` are v4's Hub keywords and only come with `push_to_hub`."""
    unknown = set(hub_kwargs) - {"repo_id", "token", "private", "commit_message", "revision", "create_pr"}
    if unknown:
        raise TypeError(f"save_pretrained() got unexpected keyword argument(s) {', '.join(map(repr, sorted(unknown)))}")
    if hub_kwargs and not push_to_hub:
        raise ValueError(f"{', '.join(sorted(hub_kwargs))} only apply with push_to_hub=True")
    repo_id = hub_kwargs.pop("repo_id", None) or Path(directory).resolve().name
    if push_to_hub and not hub.is_hub_id(repo_id):
        raise ValueError(f"push_to_hub needs repo_id='name' or 'org/name', got {repo_id!r}")
    return repo_id


def save_pretrained_files(
    directory: str | os.PathLike,
    config: RobertaConfig,
    state: Mapping[str, np.ndarray],
    head: str,
    *,
    format: str = "safetensors",
    max_shard_size: int | str | None = None,
    variant: str | None = None,
    push_to_hub: bool = False,
    then: Callable[[Path], Any] | None = None,
    generation_config: Any = None,
    **hub_kwargs: Any,
) -> Path:
    """Write `config.json` and the weights of `head` in `format` into `directory`: one file, or
    v4's shards of that format above `max_shard_size`; v4's `variant` names
    (`model.fp16.safetensors`; safetensors and bin only), another variant's files left in place.

    Every file is written atomically; the config records the PyTorch class name of the family
    member (`config.model_type`: `XLMRobertaForMaskedLM`, ...) in `architectures`, as v4 does from
    every framework, and the weights name the encoder as that member's files do
    (`config.base_model_prefix`: `roberta_prelayernorm.` keys for RoBERTa-PreLayerNorm). `push_to_hub=True` then uploads the
    directory (`hub.push_to_hub`; `hub_kwargs`: v4's `repo_id` (default: the directory's name),
    `token`, `private`, `commit_message`, `revision`, `create_pr`). `then(directory)`, if given,
    runs after the files are written and before the upload (TF adds its SavedModel there).
    `generation_config` (a causal LM's `GenerationConfig`) is written beside config.json.
    """
    repo_id = save_repo_id(directory, push_to_hub, hub_kwargs)
    if format not in SAVE_FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(SAVE_FORMATS)}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    to_save = config.copy()
    architecture = architecture_name(head, config.model_type)
    to_save.architectures = [architecture]
    checkpoint.save_state_dict(
        dict(state), directory, format=format, architecture=architecture, max_shard_size=max_shard_size,
        base_model_prefix=config.base_model_prefix, variant=variant,
    )
    to_save.save_pretrained(directory)
    if generation_config is not None:  # a causal LM's `generation_config.json`, as v4 writes it
        generation_config.save_pretrained(directory)
    if then is not None:  # what a backend adds to the folder (TF's SavedModel), before an upload
        then(directory)
    if push_to_hub:
        hub.push_to_hub(directory, repo_id, **hub_kwargs)
    return directory


def push_pretrained_to_hub(save: Callable[[Path], Any], repo_id: str, **hub_kwargs: Any) -> Any:
    """v4's `model.push_to_hub(repo_id)` (and a tokenizer's): `save(folder)` writes the files into
    a temporary folder, which is uploaded in one commit (`hub.push_to_hub`; `hub_kwargs`: `token`,
    `private`, `commit_message`, `revision`, `create_pr`). The repo id and the token are checked
    before anything is written. A backend's method is `push_pretrained_to_hub(self.save_pretrained, repo_id, ...)`."""
    if not isinstance(repo_id, str) or not hub.is_hub_id(repo_id):
        raise ValueError(f"repo_id must be a Hub repo id ('name' or 'org/name'), got {repo_id!r}")
    hub_kwargs["token"] = hub.upload_token(repo_id, hub_kwargs.get("token"))
    with tempfile.TemporaryDirectory(prefix="roberta-push-") as folder:
        save(Path(folder))
        return hub.push_to_hub(folder, repo_id, **hub_kwargs)


_HUB_KEYWORDS = ("token", "private", "commit_message", "revision", "create_pr")


def push_model_to_hub(save_pretrained: Callable[..., Any], repo_id: str, **kwargs: Any) -> Any:
    """Every backend's `model.push_to_hub(repo_id, **kwargs)`, as v4: the Hub's keywords (`token`,
    `private`, `commit_message`, `revision`, `create_pr`) go to the upload, the rest to
    `save_pretrained` (`format`, `max_shard_size`, `safe_serialization`, ...), which writes into a
    temporary folder uploaded in one commit."""
    hub_kwargs = {k: kwargs.pop(k) for k in _HUB_KEYWORDS if k in kwargs}
    return push_pretrained_to_hub(lambda folder: save_pretrained(folder, **kwargs), repo_id, **hub_kwargs)
