"""`GenerationConfig`: the settings of `generate()` that v4 keeps beside a causal LM's config
(`model.generation_config`, `generation_config.json`), with v4's names and defaults. Framework-free;
every backend's causal LM holds one and reads its call's settings through `resolve`."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Mapping

from .config import RobertaConfig, read_json_file
from .fileio import atomic_write_text

__all__ = [
    "GenerationConfig", "GENERATION_CONFIG_NAME", "generation_settings", "generate_keywords", "repeated_ngram_bans",
    "checkpoint_generation_config",
]

GENERATION_CONFIG_NAME = "generation_config.json"

# v4's `GenerationConfig()` defaults of the settings our generate() reads (transformers/generation/
# configuration_utils.py): max_length counts the prompt; top_k 50 applies when sampling.
_DEFAULTS: dict[str, Any] = {
    "max_length": 20,
    "max_new_tokens": None,
    "min_new_tokens": None,
    "do_sample": False,
    "num_beams": 1,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "repetition_penalty": 1.0,
    "bos_token_id": None,
    "eos_token_id": None,
    "pad_token_id": None,
    "output_scores": False,
    "output_logits": False,
    "return_dict_in_generate": False,
}
# v4 GenerationConfig fields that change the tokens, with v4's defaults: set to anything else (in a
# generation config given or the model's), generate() raises unless the backend names the field in
# `implemented=` (PyTorch: no_repeat_ngram_size, num_return_sequences, bad_words_ids, ...; Flax:
# min_length and the forced tokens; see each backend's generate).
_UNIMPLEMENTED: dict[str, Any] = {
    "min_length": 0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "num_return_sequences": 1,
    "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "min_p": None, "top_h": None,
    "forced_bos_token_id": None, "forced_eos_token_id": None, "bad_words_ids": None, "force_words_ids": None,
    "suppress_tokens": None, "begin_suppress_tokens": None, "sequence_bias": None, "constraints": None,
    "exponential_decay_length_penalty": None, "renormalize_logits": False, "remove_invalid_values": False,
    "num_beam_groups": 1, "diversity_penalty": 0.0, "penalty_alpha": None, "guidance_scale": None,
    "dola_layers": None, "watermarking_config": None, "stop_strings": None, "prompt_lookup_num_tokens": None,
}
# v4 generate() keywords (GenerationConfig fields and generate()'s own parameters) that change no
# token at these values, which no backend takes by name: accepted at them (None is always accepted,
# as v4 takes `key=None` for any model keyword), a NotImplementedError naming them otherwise.
_INERT: dict[str, Any] = {
    "logits_processor": (), "prefix_allowed_tokens_fn": None, "assistant_model": None, "streamer": None,
    "negative_prompt_ids": None, "negative_prompt_attention_mask": None, "custom_generate": None,
    "assistant_tokenizer": None, "tokenizer": None, "max_time": None, "cache_implementation": None,
    "cache_config": None, "prefill_chunk_size": None, "encoder_repetition_penalty": 1.0, "token_healing": False,
    "decoder_start_token_id": None, "is_assistant": False, "compile_config": None, "low_memory": None,
    "assistant_early_exit": None, "max_matching_ngram_size": None, "output_attentions": False,
    "output_hidden_states": False, "stopping_criteria": (),
}
# v4 generate() keywords that change no token whatever their value here (a single process, no beam
# search, one cache): accepted and ignored. `early_stopping`/`length_penalty` act in beam search only.
_IGNORED = (
    "use_cache", "early_stopping", "length_penalty", "synced_gpus", "use_model_defaults", "return_legacy_cache",
    "disable_compile", "num_assistant_tokens", "num_assistant_tokens_schedule", "assistant_confidence_threshold",
    "assistant_lookbehind", "target_lookbehind", "trace",
)
# Every field of v4 4.57's `GenerationConfig()` with its default: each is an attribute of ours (code
# written for v4 reads `generation_config.num_return_sequences`, `.use_cache`, ...); a field left at
# this default is not written to generation_config.json.
_V4_FIELDS: dict[str, Any] = {
    **_UNIMPLEMENTED, **{k: v for k, v in _INERT.items() if k not in ("logits_processor", "stopping_criteria",
                                                                      "prefix_allowed_tokens_fn", "assistant_model",
                                                                      "streamer", "negative_prompt_ids",
                                                                      "negative_prompt_attention_mask", "custom_generate",
                                                                      "assistant_tokenizer", "tokenizer")},
    "use_cache": True, "early_stopping": False, "length_penalty": 1.0, "return_legacy_cache": None,
    "num_assistant_tokens": 20, "num_assistant_tokens_schedule": "constant", "assistant_confidence_threshold": 0.4,
    "assistant_lookbehind": 10, "target_lookbehind": 10, "disable_compile": False,
    **_DEFAULTS, "output_logits": None,
}
for _key in ("compile_config", "top_h"):  # not among v4 4.57's written fields
    del _V4_FIELDS[_key]
# the model config's fields a generation config starts from (v4's `from_model_config`)
_FROM_MODEL = ("bos_token_id", "eos_token_id", "pad_token_id")


def _reader(source: Any) -> Any:
    """`read(key, default)` over a generation config given as v4's GenerationConfig, any object
    with its attribute names, or a mapping."""
    return source.get if isinstance(source, Mapping) else lambda key, default=None: getattr(source, key, default)


class GenerationConfig:
    """Settings of `generate()`: v4's names and defaults (`max_length=20` counting the prompt,
    `max_new_tokens`, `min_new_tokens`, `do_sample`, `temperature`, `top_k=50`, `top_p`,
    `repetition_penalty`, `num_beams`, the token ids, `output_scores`, `return_dict_in_generate`).
    Other keys a v4 file holds are kept and written back."""

    def __init__(self, **kwargs: Any):
        self._from_model_config = bool(kwargs.pop("_from_model_config", False))
        kwargs.pop("transformers_version", None)  # v4 writes its own; ours never claims one
        for key, value in {**_V4_FIELDS, **kwargs}.items():
            setattr(self, key, value)
        self.validate()

    def validate(self) -> None:
        """v4's hard checks of a generation config (its softer ones only log there): lengths."""
        for key in ("max_new_tokens", "max_length"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"`{key}` must be greater than 0, but is {value}.")
        for key in ("min_new_tokens", "min_length"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"`{key}` must be a non-negative integer, but is {value}.")

    def update(self, **kwargs: Any) -> dict[str, Any]:
        """v4's: set the keywords that name a field, check the result, return the others."""
        unused = {key: value for key, value in kwargs.items() if not hasattr(self, key)}
        saved = dict(vars(self))
        for key, value in kwargs.items():
            if key not in unused:
                setattr(self, key, value)
        try:
            self.validate()
        except ValueError:
            vars(self).clear()
            vars(self).update(saved)
            raise
        return unused

    @classmethod
    def from_dict(cls, config_dict: Mapping[str, Any], **kwargs: Any) -> "GenerationConfig" | tuple[
            "GenerationConfig", dict[str, Any]]:
        """v4's: a config from a mapping, the keywords naming fields set on it; with
        `return_unused_kwargs=True`, `(config, the other keywords)`."""
        return_unused = kwargs.pop("return_unused_kwargs", False)
        config = cls(**{**dict(config_dict), **{k: v for k, v in kwargs.items() if k in _V4_FIELDS}})
        unused = config.update(**{k: v for k, v in kwargs.items() if k not in _V4_FIELDS})
        return (config, unused) if return_unused else config

    def to_json_string(self, use_diff: bool = True) -> str:
        """The JSON text v4 writes (`use_diff`: the fields not at v4's defaults), keys sorted."""
        return json.dumps(self.to_diff_dict() if use_diff else self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> None:
        atomic_write_text(Path(json_file_path), self.to_json_string(use_diff))

    @classmethod
    def from_model_config(cls, config: RobertaConfig) -> "GenerationConfig":
        """What v4 builds for a causal LM without generation_config.json: the config's token ids and
        every generation field the model config holds (`max_length`, `min_length`,
        `forced_eos_token_id`, ...: v4's generic config fields), None values left out."""
        fields = {key: getattr(config, key, None) for key in (*_FROM_MODEL, *_V4_FIELDS)}
        return cls(_from_model_config=True, **{k: copy.deepcopy(v) for k, v in fields.items() if v is not None})

    @classmethod
    def from_pretrained(cls, pretrained_model_name: str | os.PathLike, config_file_name: str | None = None,
                        **kwargs: Any) -> "GenerationConfig":
        """Read `generation_config.json` (or `config_file_name`) of a checkpoint directory, a path to
        the file itself, or a Hub repo id through the cache (v4's Hub keywords: `revision`,
        `cache_dir`, `subfolder`, ...); the other keywords set fields, as v4. Errors name the file."""
        from .hub import hub_options, resolve_pretrained

        options = hub_options(kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k not in options}
        path = Path(pretrained_model_name)
        if not (path.is_file() and config_file_name is None and not options.get("subfolder")):
            name = config_file_name or GENERATION_CONFIG_NAME
            path = resolve_pretrained(pretrained_model_name, options, need=("generation",)) / name
        data = read_json_file(path)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: a generation config must be a JSON object, got {type(data).__name__}")
        try:
            return cls.from_dict(data, **kwargs)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{path}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in vars(self).items()}

    def to_diff_dict(self) -> dict[str, Any]:
        """What v4 writes: the settings that differ from the defaults (and `_from_model_config` when set)."""
        out = {k: v for k, v in self.to_dict().items() if k not in _V4_FIELDS or v != _V4_FIELDS[k]}
        if not self._from_model_config:
            out.pop("_from_model_config", None)
        return out

    def save_pretrained(self, save_directory: str | os.PathLike, config_file_name: str | None = None) -> Path:
        """Write `generation_config.json` (or `config_file_name`; v4's content, keys sorted) into
        `save_directory`, atomically."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / (config_file_name or GENERATION_CONFIG_NAME)
        self.to_json_file(target)
        return target

    def resolve(self, **call: Any) -> dict[str, Any]:
        """The settings of one `generate()` call: each argument given (not None) wins over
        `call['generation_config']` (a GenerationConfig, or any object or mapping with such
        attributes) where that differs from v4's global defaults, which wins over this config, as in v4. `max_length` is None unless one of them
        sets it to other than v4's default (`validation.new_token_count` then applies v4's default
        with its warning)."""
        given = call.pop("generation_config", None)
        values = {key: getattr(self, key, default) for key, default in _DEFAULTS.items()}
        if given is not None:  # as v4: a field it leaves at v4's global default keeps the model's value
            read = _reader(given)
            values.update({key: read(key) for key in _DEFAULTS if read(key, None) not in (None, _DEFAULTS[key])})
        if values["max_length"] == _DEFAULTS["max_length"]:
            values["max_length"] = None
        values.update({key: value for key, value in call.items() if value is not None})
        return values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenerationConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        # equal configs hash alike: an NNX model keeps it among its static attributes, as its RobertaConfig
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    def __repr__(self) -> str:
        return f"GenerationConfig {json.dumps(self.to_diff_dict(), indent=2, sort_keys=True)}"


class UnusedModelKwargsError(ValueError, TypeError):
    """A `generate()` keyword that v4's generate does not know: v4's ValueError (its words), and a
    TypeError as Python's own for an unexpected keyword."""


def generate_keywords(kwargs: Mapping[str, Any], *, taken: tuple[str, ...] = ()) -> dict[str, Any]:
    """The v4 keywords of a `generate(**kwargs)` call that a backend does not take by name. Those in
    `taken` (which the backend implements) are returned; v4's other keywords are accepted where they
    change no token (`_IGNORED`, or at v4's default or None: `_INERT`, `_UNIMPLEMENTED`) and a
    NotImplementedError naming them otherwise; a name v4's generate does not know is a TypeError."""
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in kwargs.items():
        if key in taken:
            out[key] = value
        elif key in _IGNORED:
            continue
        elif key in _INERT or key in _UNIMPLEMENTED:
            default = _INERT[key] if key in _INERT else _UNIMPLEMENTED[key]
            empty = value is None or (isinstance(value, (list, tuple, dict)) and not value)
            if not empty and value != default:
                raise NotImplementedError(
                    f"generate() setting {key}={value!r} is not implemented in this backend "
                    f"(v4's default {default!r} is accepted); it is not ignored"
                )
        else:
            unknown.append(key)
    if unknown:
        raise UnusedModelKwargsError(
            f"The following `model_kwargs` are not used by the model: {unknown} (note: typos in the generate "
            "arguments will also show up in this list)")
    return out


def repeated_ngram_bans(rows: list[list[int]], n: int) -> list[set[int]]:
    """v4's NoRepeatNGramLogitsProcessor, framework-neutral: for each row of ids so far, the tokens
    that would complete an n-gram the row already holds (a backend sets their scores to -inf)."""
    bans = []
    for seq in rows:
        tail = tuple(seq[len(seq) - n + 1:]) if n > 1 else ()
        bans.append({seq[start + n - 1] for start in range(len(seq) - n + 1)
                     if tuple(seq[start:start + n - 1]) == tail})
    return bans


def generation_settings(model_generation_config: GenerationConfig | None, config: RobertaConfig, *,
                        unsupported: tuple[str, ...] = (), implemented: tuple[str, ...] = (),
                        **call: Any) -> dict[str, Any]:
    """Every backend's `generate(**call)` settings: `GenerationConfig.resolve` over the model's
    generation config (v4's from its config when it has none). Beam search, each setting in
    `unsupported` that a backend does not implement, and v4's other token-changing settings
    (`_UNIMPLEMENTED`: no_repeat_ngram_size, num_return_sequences, min_length, ...) in the model's
    or the given generation config, set to other than v4's default, are a NotImplementedError
    naming it rather than a setting silently ignored. `implemented`: those of `_UNIMPLEMENTED` the
    backend implements; their values (a call's, else the given config's where not v4's default, else
    the model's) are in the settings."""
    model_generation_config = model_generation_config or GenerationConfig.from_model_config(config)
    chosen = {key: call.pop(key, None) for key in implemented}
    for key in implemented:
        for source in (call.get("generation_config"), model_generation_config):
            if chosen[key] is None and source is not None:
                value = _reader(source)(key, None)
                chosen[key] = None if value == _UNIMPLEMENTED[key] else value
        chosen[key] = _UNIMPLEMENTED[key] if chosen[key] is None else chosen[key]
    for source in (call.get("generation_config"), model_generation_config):
        if source is None:
            continue
        read = _reader(source)
        for key, default in _UNIMPLEMENTED.items():
            if key in implemented:
                continue
            value = read(key, default)
            if value not in (default, None) and value != [] and value != {}:
                raise NotImplementedError(
                    f"generation setting {key}={value!r} is not implemented in generate() "
                    f"(v4's default {default!r} is); it would change the tokens, so it is not ignored"
                )
    settings = model_generation_config.resolve(**call)
    settings.update(chosen)
    if settings.get("num_return_sequences", 1) != 1 and not settings["do_sample"]:  # v4's GenerationConfig.validate
        raise ValueError(
            "Greedy methods without beam search do not support `num_return_sequences` different than 1 "
            f"(got {settings['num_return_sequences']})."
        )
    if settings["num_beams"] != 1:
        raise NotImplementedError(f"beam search is not implemented: num_beams must be 1, got {settings['num_beams']!r}")
    for key in unsupported:
        if settings.get(key) not in (None, _DEFAULTS[key]):
            raise NotImplementedError(f"{key}={settings[key]!r} is not implemented in this backend's generate()")
    return settings


def checkpoint_generation_config(directory: str | os.PathLike, config: RobertaConfig) -> GenerationConfig:
    """A causal LM's generation config as v4's `from_pretrained` gives it: the checkpoint's
    `generation_config.json`, else one built from its config."""
    if (Path(directory) / GENERATION_CONFIG_NAME).is_file():
        return GenerationConfig.from_pretrained(directory)
    return GenerationConfig.from_model_config(config)
