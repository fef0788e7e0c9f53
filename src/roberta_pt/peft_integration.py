"""v4's `PeftAdapterMixin` on the PyTorch models: peft adapters (LoRA, IA³, LoHa, ...) injected into
the model itself, without a `peft.PeftModel` wrapper, as `transformers` v4 offers them on every
`PreTrainedModel`:

    model.add_adapter(LoraConfig(target_modules=["query", "value"]))   # a fresh adapter, active
    model.load_adapter("me/roberta-lora", adapter_name="lora")         # a folder or a Hub repo id
    model.set_adapter("lora"); model.disable_adapters(); model.enable_adapters()
    model.active_adapters(); model.get_adapter_state_dict(); model.delete_adapter("lora")
    model.save_pretrained(d)       # with adapters: adapter_config.json + adapter_model.safetensors only
    RobertaForSequenceClassification.from_pretrained(d)   # d holds an adapter: its base, then the adapter

Everything that touches the adapter layers goes through peft's public functions
(`inject_adapter_in_model`, `set_peft_model_state_dict`, `get_peft_model_state_dict`,
`BaseTunerLayer`, `PeftConfig.from_pretrained`), so the layers, the state-dict keys and the files
are peft's own and interchange with `peft.PeftModel` and with v4. The files are found by our
resolver (`roberta_core.hub.resolve_adapter`: a directory, or only the adapter's two files of a Hub
repo) and the weights read by our checkpoint readers (safetensors, and `.bin` through the
restricted unpickler), never by peft's downloader or `torch.load`.

peft is the optional `[peft]` extra: it is imported by these methods only, and a missing peft is an
ImportError naming the extra when one of them is called.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import importlib.util
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch

from roberta_core import checkpoint, fileio, hub
from roberta_core.generation import GENERATION_CONFIG_NAME
from roberta_core.pretrained import save_repo_id
from roberta_core.checkpoint.safetensors_io import write_safetensors
from roberta_core.checkpoint.torch_bin import write_torch_bin

from ._framework import as_array, as_tensor

__all__ = ["PeftAdapterMixin", "MIN_PEFT_VERSION", "pretrained_adapter"]

# The oldest peft whose public functions these methods use (`inject_adapter_in_model(...,
# low_cpu_mem_usage=)`, `set_peft_model_state_dict(..., low_cpu_mem_usage=)`): the `[dev]` extra's floor.
MIN_PEFT_VERSION = (0, 13, 0)

# peft prefixes every key of a saved adapter with this (its PeftModel's path to the base model);
# v4 writes it too and strips it when loading.
PEFT_PREFIX = "base_model.model."

# from_pretrained's keywords that also say where a Hub adapter is fetched from (v4 passes these to
# `find_adapter_config_file`; `revision` and `subfolder` are the base model's, the adapter's come
# from `adapter_kwargs`).
_ADAPTER_LOOKUP_OPTIONS = ("cache_dir", "force_download", "local_files_only", "token", "use_auth_token")


def _require_peft() -> Any:
    """The peft module, or an ImportError naming the extra that installs it."""
    try:
        import peft
    except ImportError:
        raise ImportError(
            "peft adapters (add_adapter, load_adapter, set_adapter, ...; from_pretrained of an adapter folder or "
            "repo) need the peft library: pip install 'roberta3[peft]'"
        ) from None
    found = tuple(int(part) for part in re.findall(r"\d+", peft.__version__)[:3])
    if found < MIN_PEFT_VERSION:
        raise ImportError(
            f"peft {peft.__version__} is too old for the adapter methods; they need peft >= "
            f"{'.'.join(map(str, MIN_PEFT_VERSION))}: pip install -U 'roberta3[peft]'"
        )
    return peft


def _peft_installed() -> bool:
    """Whether peft can be imported, without importing it (from_pretrained asks on every call)."""
    return importlib.util.find_spec("peft") is not None


def peft_cache_keyword() -> str:
    """The keyword peft passes and reads a model's cache under: `past_key_values`, or `cache` where
    peft >= 0.22 runs beside transformers >= 5.24 (which renamed the argument). peft's prefix tuning
    gives its prefix to the forward under this name, and its prompt learning looks for the cache
    in the inputs of each generation step under it, so those steps name it the same way. Read from
    peft itself when it is loaded (it alone wraps our generation steps), never by importing it."""
    utils = sys.modules.get("peft.import_utils")
    name = getattr(utils, "get_transformers_cache_name", None)
    return name() if callable(name) else "past_key_values"


def one_cache(past_key_values: Any, cache: Any) -> Any:
    """The cache given as `past_key_values` or as `cache` (transformers 5.24's name for it, which
    peft >= 0.22 passes with such a transformers installed): the two are one argument."""
    if cache is None:
        return past_key_values
    if past_key_values is not None and past_key_values is not cache:
        raise ValueError("give past_key_values or cache (its newer name), not both")
    return cache


def _adapter_layer_classes(peft: Any) -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(the tuner layers, the auxiliary wrappers peft puts around `modules_to_save` and trainable
    tokens). Older peft has `ModulesToSaveWrapper` alone, as v4 names it."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils import other

    auxiliary = getattr(other, "AuxiliaryTrainingWrapper", None) or other.ModulesToSaveWrapper
    return (BaseTunerLayer,), (auxiliary,)


class PeftAdapterMixin:
    """v4's adapter methods (`transformers.integrations.PeftAdapterMixin`), mixed into
    `RobertaPreTrainedModel`. Once an adapter is on the model, `_hf_peft_config_loaded` is True and
    `peft_config` maps each adapter's name to its `peft.PeftConfig` (peft sets that attribute; v4's
    Trainer and peft read both); with the last adapter deleted both go back to none.

    Where v4 raises, these raise the same errors with v4's messages: an adapter name that exists
    already, an unknown name, a method that needs an adapter when none is loaded."""

    # v4's flag: True while the model carries at least one adapter (an instance attribute then).
    _hf_peft_config_loaded = False

    # ------------------------------------------------------------------ adding and loading
    def add_adapter(self, adapter_config: Any, adapter_name: Optional[str] = None) -> None:
        """Inject a fresh adapter (`adapter_config`: a non-prompt-learning `peft.PeftConfig`,
        e.g. `LoraConfig`) under `adapter_name` (default "default") and make it the active one,
        trainable; peft freezes the base model's parameters, as for `get_peft_model`. The config
        records this model's `name_or_path` as its `base_model_name_or_path`."""
        peft = _require_peft()
        adapter_name = adapter_name or "default"
        if self._hf_peft_config_loaded and adapter_name in self.peft_config:
            raise ValueError(f"Adapter with name {adapter_name} already exists. Please use a different name.")
        # Checked before the model changes (v4 sets its flag first, and a wrong type left it set).
        if not isinstance(adapter_config, peft.PeftConfig):
            raise TypeError(f"adapter_config should be an instance of PeftConfig. Got {type(adapter_config)} instead.")
        # As peft's get_peft_model records it: where this model was loaded from ("" if built from a config).
        adapter_config.base_model_name_or_path = self.__dict__.get("name_or_path", None)
        _resolve_all_linear(self, adapter_config)
        self._inject_adapter(peft, adapter_config, adapter_name)
        self.set_adapter(adapter_name)

    def load_adapter(
        self,
        peft_model_id: Optional[str | os.PathLike] = None,
        adapter_name: Optional[str] = None,
        revision: Optional[str] = None,
        token: Optional[Union[str, bool]] = None,
        device_map: Any = "auto",
        max_memory: Any = None,
        offload_folder: Any = None,
        offload_index: Any = None,
        peft_config: Any = None,
        adapter_state_dict: Optional[Mapping[str, torch.Tensor]] = None,
        low_cpu_mem_usage: bool = False,
        is_trainable: bool = False,
        adapter_kwargs: Optional[dict[str, Any]] = None,
    ) -> None:
        """Load a saved adapter into this model under `adapter_name` (default "default").

        `peft_model_id` is a folder or a Hub repo id holding adapter_config.json and
        adapter_model.safetensors (or adapter_model.bin), fetched through the Hugging Face cache:
        `revision`, `token`, and in `adapter_kwargs` the other Hub keywords (`subfolder`,
        `cache_dir`, `local_files_only`, `force_download`; a `revision` or `token` there wins, as
        in v4), `device` (where the weights go; default the model's) and `key_mapping` (regex ->
        replacement applied to each key, v4's). Or give the adapter directly: `peft_config` (a
        `PeftConfig`, or its dict) and `adapter_state_dict` (peft's keys, with or without
        "base_model.model."); with `peft_model_id` too, its config file is replaced by `peft_config`.

        The adapter is frozen and the model put in evaluation mode unless `is_trainable`. Like
        v4, the first adapter loaded stays the active one: `set_adapter` switches. Keys of the file
        the model does not have, or adapter weights the file lacks, are named in one warning.
        `device_map`, `max_memory`, `offload_folder`, `offload_index` are accepted for v4's
        signature: the model is never split or offloaded, so there is nothing to re-dispatch.
        Files are read before the model changes; if injecting or loading fails, the adapter is removed.
        """
        peft = _require_peft()
        adapter_name = adapter_name if adapter_name is not None else "default"
        adapter_kwargs = dict(adapter_kwargs or {})
        key_mapping = adapter_kwargs.pop("key_mapping", None)
        if self._hf_peft_config_loaded and adapter_name in self.peft_config:
            raise ValueError(f"Adapter with name {adapter_name} already exists. Please use a different name.")
        if peft_model_id is None and (adapter_state_dict is None and peft_config is None):
            raise ValueError(
                "You should either pass a `peft_model_id` or a `peft_config` and `adapter_state_dict` to load an adapter."
            )
        device = adapter_kwargs.pop("device") if "device" in adapter_kwargs else self.device
        if revision is not None and adapter_kwargs.setdefault("revision", revision) != revision:
            warnings.warn(
                "You passed a `revision` argument both in `adapter_kwargs` and as a standalone argument. "
                "The one in `adapter_kwargs` will be used.",
                stacklevel=2,
            )
        token = adapter_kwargs.pop("token", token)
        unknown = sorted(set(adapter_kwargs) - set(hub.HUB_OPTIONS))
        if unknown:
            raise TypeError(
                f"load_adapter() got unexpected adapter_kwargs {', '.join(map(repr, unknown))}; it takes the Hub "
                f"keywords ({', '.join(hub.HUB_OPTIONS)}), device and key_mapping"
            )
        options = {**adapter_kwargs, **({"token": token} if token is not None else {})}

        folder = None
        if peft_model_id is not None:
            folder = hub.resolve_adapter(peft_model_id, options, weights=True, required=True)
        # No adapter there, or a state dict without its config (v4 then looks for a config file in None).
        if folder is None and (peft_model_id is not None or peft_config is None):
            raise ValueError(
                f"adapter model file not found in {peft_model_id}. Make sure you are passing the correct path to the "
                "adapter model."
            )
        if peft_config is None:
            peft_config = _read_peft_config(peft, folder)
            peft_config.inference_mode = not is_trainable
        elif isinstance(peft_config, Mapping):
            peft_config = peft.PeftConfig.from_peft_type(**peft_config)
        elif not isinstance(peft_config, peft.PeftConfig):
            raise TypeError(f"peft_config should be a PeftConfig or its dict, got {type(peft_config).__name__}")
        if folder is not None:
            adapter_state_dict = _read_adapter_weights(folder, device)
        elif not isinstance(adapter_state_dict, Mapping):
            raise TypeError(
                f"adapter_state_dict should be a dict of name -> tensor, got {type(adapter_state_dict).__name__}"
            )
        state = self._from_adapter_file_keys(adapter_state_dict, key_mapping)
        origin = os.fspath(peft_model_id) if peft_model_id is not None else "state_dict"
        # An adapter folder's config is data from wherever the folder came from: peft builds what
        # the file's weights bound (`_bounded_by_the_file`), and the config as written is kept.
        built = peft_config if folder is None else _bounded_by_the_file(peft_config, state, folder / hub.ADAPTER_CONFIG_FILE)

        load_kwargs = {"low_cpu_mem_usage": True} if low_cpu_mem_usage else {}
        self._inject_adapter(peft, built, adapter_name, **load_kwargs)
        self.peft_config[adapter_name] = peft_config
        try:
            result = peft.set_peft_model_state_dict(self, state, adapter_name, **load_kwargs)
        except BaseException:
            self._remove_adapter(adapter_name, peft_config)
            raise
        self._warn_incompatible_keys(result, adapter_name, origin)
        if peft_config.inference_mode:
            self.eval()

    def _inject_adapter(self, peft: Any, peft_config: Any, adapter_name: str, **load_kwargs: Any) -> None:
        """peft's `inject_adapter_in_model`, then v4's flag; if peft fails part-way, whatever it
        added under `adapter_name` is removed, so the model is left as it was."""
        try:
            peft.inject_adapter_in_model(peft_config, self, adapter_name, **load_kwargs)
        except BaseException:
            self._remove_adapter(adapter_name, peft_config)
            raise
        self._hf_peft_config_loaded = True

    def _remove_adapter(self, adapter_name: str, peft_config: Any) -> None:
        """Take `adapter_name` out of every adapter layer and out of `peft_config` (a failed
        injection or load, or `delete_adapter`); the flag follows what is left."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # peft's "active adapter deleted, now ...": the caller's choice
            _delete_from_layers(self, adapter_name, peft_config)
        configs = self.__dict__.get("peft_config")
        if isinstance(configs, dict):
            configs.pop(adapter_name, None)
            if not configs:
                del self.peft_config
        self._hf_peft_config_loaded = bool(self.__dict__.get("peft_config"))

    def _warn_incompatible_keys(self, result: Any, adapter_name: str, origin: str) -> None:
        """v4's one message: keys the model does not have, and this adapter's LoRA weights the file
        lacked (the base model's keys are always 'missing' from an adapter file, so not those)."""
        message = ""
        unexpected = list(getattr(result, "unexpected_keys", None) or [])
        if unexpected:
            message = (
                f"Loading adapter weights from {origin} led to unexpected keys not found in the model: "
                f"{', '.join(unexpected)}. "
            )
        missing = [k for k in getattr(result, "missing_keys", None) or [] if "lora_" in k and adapter_name in k]
        if missing:
            message += f"Loading adapter weights from {origin} led to missing keys in the model: {', '.join(missing)}"
        if message:
            warnings.warn(message, stacklevel=3)

    # ------------------------------------------------------------------ choosing adapters
    def set_adapter(self, adapter_name: Union[list[str], str]) -> None:
        """Make `adapter_name` (or each name of a list) the active adapter(s), the others
        inactive; the active ones become trainable (peft's `set_adapter` of each layer)."""
        peft = _require_peft()
        if not self._hf_peft_config_loaded:
            raise ValueError("No adapter loaded. Please load an adapter first.")
        elif isinstance(adapter_name, list):
            missing = set(adapter_name) - set(self.peft_config)
            if len(missing) > 0:
                raise ValueError(
                    f"Following adapter(s) could not be found: {', '.join(missing)}. Make sure you are passing the "
                    f"correct adapter name(s). current loaded adapters are: {list(self.peft_config.keys())}"
                )
        elif adapter_name not in self.peft_config:
            raise ValueError(
                f"Adapter with name {adapter_name} not found. Please pass the correct adapter name among "
                f"{list(self.peft_config.keys())}"
            )
        tuner_layers, auxiliary = _adapter_layer_classes(peft)
        found = False
        for module in self.modules():
            if isinstance(module, tuner_layers + auxiliary):
                module.set_adapter(adapter_name)
                found = True
        if not found:
            raise ValueError(
                "Did not succeeded in setting the adapter. Please make sure you are using a model that supports adapters."
            )

    def disable_adapters(self) -> None:
        """Run the base model alone: every adapter layer (and peft's `modules_to_save` copies)
        steps aside until `enable_adapters`."""
        self._enable_adapter_layers(False)

    def enable_adapters(self) -> None:
        """Undo `disable_adapters`: the active adapters take part in the forward pass again."""
        self._enable_adapter_layers(True)

    def _enable_adapter_layers(self, enabled: bool) -> None:
        # v4 re-enables the tuner layers alone, leaving a disabled `modules_to_save` copy (a
        # classifier trained with the adapter) switched off; both are switched here, both ways.
        peft = _require_peft()
        if not self._hf_peft_config_loaded:
            raise ValueError("No adapter loaded. Please load an adapter first.")
        tuner_layers, auxiliary = _adapter_layer_classes(peft)
        for module in self.modules():
            if isinstance(module, tuner_layers + auxiliary):
                module.enable_adapters(enabled=enabled)

    def active_adapters(self) -> list[str]:
        """The names of the active adapters (several after `set_adapter([...])`)."""
        peft = _require_peft()
        if not self._hf_peft_config_loaded:
            raise ValueError("No adapter loaded. Please load an adapter first.")
        tuner_layers, auxiliary = _adapter_layer_classes(peft)
        # The tuner layers first; an adapter of `modules_to_save` alone has only the wrappers.
        for classes in (tuner_layers, auxiliary):
            for module in self.modules():
                if isinstance(module, classes):
                    active = module.active_adapter
                    return [active] if isinstance(active, str) else list(active)
        return []

    # ------------------------------------------------------------------ state and removal
    def get_adapter_state_dict(self, adapter_name: Optional[str] = None, state_dict: Optional[dict] = None) -> dict:
        """The weights of one adapter (default: the first active one), under peft's keys without
        the adapter's name (`...query.lora_A.weight`), as `peft.get_peft_model_state_dict` gives
        them. `state_dict`: the model's full state dict to take them from (v4's, for gathered or
        sharded models), else `self.state_dict()`."""
        peft = _require_peft()
        if not self._hf_peft_config_loaded:
            raise ValueError("No adapter loaded. Please load an adapter first.")
        if adapter_name is None:
            adapter_name = self.active_adapters()[0]
        adapter_state = peft.get_peft_model_state_dict(self, state_dict=state_dict, adapter_name=adapter_name)
        return {self._to_adapter_file_key(k): v for k, v in adapter_state.items()}

    def delete_adapter(self, adapter_names: Union[list[str], str]) -> None:
        """Remove the named adapter(s) from every layer and from `peft_config`; with none left the
        model carries no adapter (`_hf_peft_config_loaded` False, no `peft_config`), and computes
        as the base model (peft leaves its empty wrappers in place)."""
        _require_peft()
        if not self._hf_peft_config_loaded:
            raise ValueError("No adapter loaded. Please load an adapter first.")
        if isinstance(adapter_names, str):
            adapter_names = [adapter_names]
        missing = [name for name in adapter_names if name not in self.peft_config]
        if missing:
            raise ValueError(f"The following adapter(s) are not present and cannot be deleted: {', '.join(missing)}")
        for name in adapter_names:
            _delete_from_layers(self, name, self.peft_config[name])
            self.peft_config.pop(name, None)
        if not self.peft_config:
            del self.peft_config
            self._hf_peft_config_loaded = False

    # ------------------------------------------------------------------ files
    def _save_adapter_pretrained(
        self,
        directory: str | os.PathLike,
        *,
        format: str,
        state_dict: Optional[dict[str, torch.Tensor]],
        push_to_hub: bool = False,
        **hub_kwargs: Any,
    ) -> None:
        """`save_pretrained` of a model carrying adapters, as v4's: the active adapter alone, as
        peft writes it (adapter_config.json; adapter_model.safetensors with metadata {"format":
        "pt"}, or adapter_model.bin for `format='bin'`; keys prefixed "base_model.model."), no
        config.json and no base weights; a causal LM's generation_config.json beside them, as v4.
        A weights file of the other format left by an earlier save is removed (a reader prefers
        safetensors). Several active adapters are an error: save them one at a time."""
        repo_id = save_repo_id(directory, push_to_hub, hub_kwargs)
        active = self.active_adapters()
        if len(active) > 1:
            raise ValueError(
                "Multiple active adapters detected, saving multiple active adapters is not supported yet. You can save "
                "adapters separately one by one by iteratively calling `model.set_adapter(adapter_name)` then "
                "`model.save_pretrained(...)`"
            )
        adapter_state = self.get_adapter_state_dict(adapter_name=active[0], state_dict=state_dict)
        arrays = {PEFT_PREFIX + key: as_array(value) for key, value in adapter_state.items()}
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        written, stale = hub.ADAPTER_WEIGHTS_FILES if format == "safetensors" else hub.ADAPTER_WEIGHTS_FILES[::-1]
        # One group: each file goes to a temporary name first, and none is renamed into place until
        # all are written, so a failed save leaves the folder's adapter as it was (a new config
        # beside old weights would not load). The configs are written by their own writers (peft's
        # for adapter_config.json) into a staging folder and taken from there.
        with tempfile.TemporaryDirectory(dir=directory, prefix=".adapter-") as staging:
            staging = Path(staging)
            self.peft_config[active[0]].save_pretrained(str(staging))
            if getattr(self, "generation_config", None) is not None:  # v4 writes it with the adapter too
                self.generation_config.save_pretrained(staging)
            with contextlib.ExitStack() as group:
                weights = group.enter_context(fileio.atomic_path(directory / written))
                (write_safetensors if format == "safetensors" else write_torch_bin)(arrays, weights)
                for name in (hub.ADAPTER_CONFIG_FILE, GENERATION_CONFIG_NAME):
                    if (staging / name).is_file():
                        temp = group.enter_context(fileio.atomic_path(directory / name))
                        temp.write_bytes((staging / name).read_bytes())
        if (directory / stale).is_file():
            (directory / stale).unlink()
        if push_to_hub:
            hub.push_to_hub(directory, repo_id, **hub_kwargs)

    # RoBERTa-PreLayerNorm: v4 names its encoder `roberta_prelayernorm`, ours is `roberta` under
    # that alias; adapter files carry v4's names so they move between the two.
    def _to_adapter_file_key(self, key: str) -> str:
        prefix = self.config.base_model_prefix
        if prefix != "roberta" and key.startswith("roberta."):
            return f"{prefix}.{key[len('roberta.'):]}"
        return key

    def _from_adapter_file_keys(
        self, state: Mapping[str, torch.Tensor], key_mapping: Optional[Mapping[str, str]]
    ) -> dict[str, torch.Tensor]:
        """An adapter file's keys as this model names them: peft's "base_model.model." dropped (as
        v4), then the first of `key_mapping`'s patterns that matches applied, then the encoder's
        family name mapped to `roberta.`."""
        prefix = f"{self.config.base_model_prefix}."
        out = {}
        for key, value in state.items():
            if not isinstance(key, str):
                raise TypeError(f"adapter state dict keys must be str, got {key!r}")
            new = key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key
            for pattern, replacement in (key_mapping or {}).items():
                new, n = re.subn(pattern, replacement, new)
                if n:
                    break
            if prefix != "roberta." and new.startswith(prefix):
                new = "roberta." + new[len(prefix):]
            out[new] = value
        return out


def _resolve_all_linear(model: torch.nn.Module, config: Any) -> None:
    """`target_modules="all-linear"` as peft resolves it for a transformers model: every linear
    layer (an adapter layer already there counts as its linear layer, its own parts do not), less
    the output embeddings (the LM decoder). peft leaves the decoder out only for a transformers
    `PreTrainedModel`, which ours is not, so the names are given to it resolved, as v4's config then
    holds them. (A `peft.get_peft_model` call resolves on its own and includes the decoder.)"""
    targets = getattr(config, "target_modules", None)
    if not (isinstance(targets, str) and targets.lower() == "all-linear"):
        return
    tuner_layers, _ = _adapter_layer_classes(_require_peft())
    output = model.get_output_embeddings()
    names, inside_adapters = set(), set()
    for name, module in model.named_modules():
        if isinstance(module, tuner_layers):
            inside_adapters.update(f"{name}.{sub}" for sub, _ in module.named_modules() if sub)
            if "Linear" in type(module).__name__:
                names.add(name)
        elif isinstance(module, torch.nn.Linear) and module is not output:
            names.add(name)
    config.target_modules = names - inside_adapters


def _delete_from_layers(model: Any, adapter_name: str, peft_config: Any) -> None:
    """peft's `delete_adapter` of every layer (and, peft >= 0.18, of the `modules_to_save`
    wrappers: older peft cannot remove those, v4 says so in a warning, and so is it here)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    try:
        from peft.functional import delete_adapter
    except ImportError:  # peft < 0.18: the tuner layers one by one
        kept = False
        for module in model.modules():
            if isinstance(module, BaseTunerLayer):
                module.delete_adapter(adapter_name)
            kept = kept or type(module).__name__ == "ModulesToSaveWrapper"
        if kept:
            warnings.warn(
                "The deleted adapter contains modules_to_save, which could not be deleted. For this to work, PEFT "
                "version >= 0.18.0 is required.",
                stacklevel=3,
            )
        return
    # The prefix keeps peft from treating the adapter's own submodules (`lora_A`, ...) as layers.
    peft_type = getattr(peft_config.peft_type, "value", peft_config.peft_type)
    delete_adapter(model, adapter_name=adapter_name, prefix=f"{str(peft_type).lower()}_")


def _read_peft_config(peft: Any, folder: Path) -> Any:
    """`PeftConfig.from_pretrained` of a local adapter folder (its file came from a user or the
    Hub: a file that is not a peft config is a ValueError naming it)."""
    path = folder / hub.ADAPTER_CONFIG_FILE
    try:
        return peft.PeftConfig.from_pretrained(str(folder))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a peft adapter config ({type(e).__name__}: {e})") from None


# A name pattern (peft matches `alpha_pattern`'s keys as regular expressions) that is a plain
# module name or suffix: letters, digits, `_` and dots, matched in linear time.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.]+")


def _bounded_by_the_file(config: Any, state: Mapping[str, torch.Tensor], path: Path) -> Any:
    """The config peft builds a loaded adapter from: `config` held to what the weights in `state`
    (this model's names) hold. Read as written, a downloaded adapter_config.json could have peft
    allocate any rank `r` on every module its `target_modules` pattern matches (roberta-base at
    r = 2**20: about 150 GB), run patterns that backtrack for hours (`"(.|.)*Z"`), or copy the
    encoder's layers thousands of times (`layer_replication`). So: `layer_replication` is refused,
    and for LoRA the targets are the modules the file has weights for (names, not patterns), each
    at the rank of its weights there, and `alpha_pattern` keys must be plain names. What is
    loaded is what v4 loads from a file whose config agrees with its weights. Other adapter
    types (IA³, LoHa, ...) are built from the config as it is, `layer_replication` aside."""
    if getattr(config, "layer_replication", None):
        raise ValueError(
            f"{path}: layer_replication ({config.layer_replication!r}) is not loaded from an adapter file (it copies "
            "the model's layers); build that adapter with add_adapter(config) and load its weights with "
            "load_adapter(adapter_state_dict=..., peft_config=...)"
        )
    if str(getattr(config.peft_type, "value", config.peft_type)) != "LORA":
        return config
    ranks: dict[str, int] = {}
    for key, value in state.items():
        module, marker, _ = key.partition(".lora_A.")
        if not marker and key.endswith(".lora_embedding_A"):
            module, marker = key[: -len(".lora_embedding_A")], ".lora_embedding_A"
        if marker and getattr(value, "ndim", 0) >= 2:
            ranks[module] = int(value.shape[0])  # lora_A: (r, in, ...); lora_embedding_A: (r, vocabulary)
    if not ranks:
        raise ValueError(f"{path}: a LoRA adapter config, but its weights file holds no lora_A weights")
    strange = [k for k in (getattr(config, "alpha_pattern", None) or {}) if not _PLAIN_NAME.fullmatch(str(k))]
    if strange:
        raise ValueError(
            f"{path}: alpha_pattern keys must be module names (letters, digits, '_' and '.') to be loaded from a "
            f"file, got {strange[:3]!r}"
        )
    built = copy.deepcopy(config)
    common = collections.Counter(ranks.values()).most_common(1)[0][0]
    built.r = common
    built.rank_pattern = {re.escape(name): r for name, r in ranks.items() if r != common}
    built.target_modules = sorted(ranks)
    for field in ("exclude_modules", "layers_to_transform", "layers_pattern"):
        if hasattr(built, field):
            setattr(built, field, None)
    return built


def _read_adapter_weights(folder: Path, device: Any) -> dict[str, torch.Tensor]:
    """The adapter weights of a folder (adapter_model.safetensors, else adapter_model.bin) as
    tensors on `device`, read by our checkpoint readers: a hostile or broken file is a
    CheckpointFormatError naming it, and nothing in a `.bin` is ever executed."""
    for name in hub.ADAPTER_WEIGHTS_FILES:
        path = folder / name
        if path.is_file():
            break
    else:
        raise FileNotFoundError(f"{folder}: no adapter weights; looked for {', '.join(hub.ADAPTER_WEIGHTS_FILES)}")
    return {key: as_tensor(array).to(device) for key, array in checkpoint.iter_state_dict(path)}


class _PretrainedAdapter:
    """What `from_pretrained` needs of an adapter folder or repo: the base model it names, and
    how to load the adapter onto the model built from that base."""

    def __init__(self, folder: Path, base: str, adapter_name: str, adapter_kwargs: Mapping[str, Any]):
        self.folder = folder
        self.base_model_name_or_path = base
        self.adapter_name = adapter_name
        self.adapter_kwargs = dict(adapter_kwargs)

    def load_into(self, model: PeftAdapterMixin) -> None:
        """`model.load_adapter` of the (already resolved) local folder, under the name asked for."""
        model.load_adapter(str(self.folder), adapter_name=self.adapter_name, adapter_kwargs=self.adapter_kwargs)


def pretrained_adapter(path: str | os.PathLike, kwargs: dict[str, Any]) -> Optional[_PretrainedAdapter]:
    """v4's first step of `from_pretrained(path, **kwargs)`: whether `path` is a peft adapter (a
    folder, or a Hub repo, holding adapter_config.json), and if so the base model it names.

    Takes `adapter_name` and `adapter_kwargs` out of `kwargs` (v4's keywords for the adapter).
    The adapter is looked for as v4 does: with from_pretrained's `cache_dir`, `force_download`,
    `local_files_only` and `token`, and the Hub keywords in `adapter_kwargs` (its `revision`,
    `subfolder`); from_pretrained's own `revision` and `subfolder` stay the base model's. Its files
    are fetched now. A Hub repo is asked for adapter_config.json only where peft is installed (as
    v4); a local folder is always looked at, so that an adapter folder without peft is an
    ImportError naming the extra rather than a missing config.json. A Hub adapter must name its
    base by repo id: a local path there is refused, not read."""
    adapter_name = kwargs.pop("adapter_name", None) or "default"
    adapter_kwargs = dict(kwargs.pop("adapter_kwargs", None) or {})
    lookup = {key: kwargs[key] for key in _ADAPTER_LOOKUP_OPTIONS if key in kwargs}
    lookup.update({key: value for key, value in adapter_kwargs.items() if key in hub.HUB_OPTIONS})
    local = Path(os.fspath(path)).is_dir()
    if not _peft_installed():
        if not local:
            return None
        folder = hub.resolve_adapter(path, lookup, weights=False)
        if folder is not None and not (folder / hub.CONFIG_FILE).is_file():
            _require_peft()  # the ImportError naming the extra
        return None  # a model folder that also holds an adapter config loads as a model, as v4 without peft
    folder = hub.resolve_adapter(path, lookup, weights=True)
    if folder is None:
        return None
    config_file = folder / hub.ADAPTER_CONFIG_FILE
    try:
        base = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{config_file}: not a peft adapter config ({type(e).__name__}: {e})") from None
    if not isinstance(base, str) or not base:
        raise ValueError(
            f"{config_file}: the adapter names no base model (base_model_name_or_path is {base!r}); load the base "
            "model with from_pretrained, then the adapter with model.load_adapter(...)"
        )
    if not local and (not hub.is_hub_id(base) or os.path.lexists(base)):
        raise ValueError(
            f"{os.fspath(path)}: the Hub adapter names its base model by a local path ({base!r}), which is not read "
            "for a downloaded adapter; load the base model with from_pretrained, then model.load_adapter(...)"
        )
    # The files are local now: only how to load them is left for load_adapter.
    load_kwargs = {key: value for key, value in adapter_kwargs.items() if key in ("device", "key_mapping")}
    return _PretrainedAdapter(folder, base, adapter_name, load_kwargs)
