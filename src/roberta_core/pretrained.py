"""The framework-neutral half of `from_pretrained` / `save_pretrained`, shared by every backend.

A backend's `from_pretrained(path, ...)` calls `load_pretrained` to get the config and the
canonical NumPy weights of its head (keys mapped, the load report checked), builds its module
and copies the arrays in. `save_pretrained` hands its canonical dict to `save_pretrained_files`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import checkpoint
from .config import RobertaConfig
from .weights import HEADS, LoadPlan, plan_load

__all__ = ["load_pretrained", "save_pretrained_files", "SAVE_FORMATS"]

# format name -> file written (the backend decides which ones it offers)
SAVE_FORMATS = ("safetensors", "bin", "h5", "msgpack")


def load_pretrained(
    path: str | os.PathLike,
    head: str,
    *,
    config: RobertaConfig | None = None,
    strict: bool = False,
    ignore_mismatched_sizes: bool = False,
    **config_overrides: Any,
) -> tuple[RobertaConfig, dict[str, np.ndarray], LoadPlan]:
    """Read a checkpoint directory (any of the four weight formats) for `head`.

    Returns the config (from `config.json` with `config_overrides` applied, unless `config`
    is given), the canonical arrays the head owns that the checkpoint holds, and the load plan
    (already checked: shape mismatches raise unless ignored; unknown/unused/missing keys warn,
    or raise under `strict`). Keys in `plan.missing` are for the backend to initialise.
    """
    path = Path(path)
    if config is None:
        config = RobertaConfig.from_pretrained(path, **config_overrides)
    elif config_overrides:
        config = config.copy(**config_overrides)
    state = checkpoint.load_state_dict(path)
    plan = plan_load(
        config, head, {k: v.shape for k, v in state.items()}, ignore_mismatched_sizes=ignore_mismatched_sizes
    )
    plan.check(strict=strict, source=str(path))
    return config, {target: state[src] for target, src in plan.mapping.items()}, plan


def save_pretrained_files(
    directory: str | os.PathLike,
    config: RobertaConfig,
    state: Mapping[str, np.ndarray],
    head: str,
    *,
    format: str = "safetensors",
    max_shard_size: int | str | None = None,
) -> Path:
    """Write `config.json` and the weights of `head` in `format` into `directory`.

    Every file is written atomically; the config records the PyTorch class name in
    `architectures`, as v4 does from every framework.
    """
    if format not in SAVE_FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(SAVE_FORMATS)}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    to_save = config.copy()
    to_save.architectures = [HEADS[head]]
    checkpoint.save_state_dict(
        dict(state), directory, format=format, architecture=HEADS[head], max_shard_size=max_shard_size
    )
    to_save.save_pretrained(directory)
    return directory
