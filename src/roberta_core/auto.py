"""v4's Auto classes for the RoBERTa family: `AutoConfig` and `AutoTokenizer` here, and each
backend's `AutoModel*` / `TFAutoModel*` / `FlaxAutoModel*` made by `auto_model_classes` from its
own classes. Code written for v4 (`AutoModelForMaskedLM.from_pretrained(path)`) picks the class
of the checkpoint's family member by `config.json`'s `model_type`, as v4 does; a model type outside
the family is refused with the ones this library has."""

from __future__ import annotations

import os
from typing import Any

from .config import RobertaConfig
from .family import CONFIG_CLASSES, FAMILY

__all__ = ["AutoConfig", "AutoTokenizer", "auto_model_classes", "AUTO_HEADS"]

# v4's Auto class name (less the framework prefix) -> the class name stem of the head it loads
AUTO_HEADS = {
    "AutoModel": "Model",
    "AutoModelForCausalLM": "ForCausalLM",
    "AutoModelForMaskedLM": "ForMaskedLM",
    "AutoModelForSequenceClassification": "ForSequenceClassification",
    "AutoModelForMultipleChoice": "ForMultipleChoice",
    "AutoModelForTokenClassification": "ForTokenClassification",
    "AutoModelForQuestionAnswering": "ForQuestionAnswering",
}


def _config_class(model_type: Any) -> type[RobertaConfig]:
    if model_type not in CONFIG_CLASSES:
        raise ValueError(
            f"model_type {model_type!r} is not a member of the RoBERTa family; this library loads "
            f"{', '.join(map(repr, CONFIG_CLASSES))}"
        )
    return CONFIG_CLASSES[model_type]


class AutoConfig:
    """v4's `AutoConfig`: the family member's config class (`RobertaConfig`, `XLMRobertaConfig`,
    `CamembertConfig`, `RobertaPreLayerNormConfig`) for a checkpoint's config.json."""

    def __init__(self) -> None:
        raise EnvironmentError("AutoConfig is designed to be instantiated using `AutoConfig.from_pretrained(path)` "
                               "or `AutoConfig.for_model(model_type)`")

    @classmethod
    def for_model(cls, model_type: str, *args: Any, **kwargs: Any) -> RobertaConfig:
        return _config_class(model_type)(*args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        """The config of a checkpoint folder, config file or Hub repo id (the Hub keywords as
        `RobertaConfig.from_pretrained` takes them; the others set fields)."""
        data, _ = RobertaConfig.get_config_dict(pretrained_model_name_or_path, **kwargs)
        return _config_class(data.get("model_type", "roberta")).from_pretrained(pretrained_model_name_or_path, **kwargs)


class AutoTokenizer:
    """v4's `AutoTokenizer`: a checkpoint's tokenizer (`roberta_core.load_tokenizer`), the fast
    class by default, the slow one with `use_fast=False`."""

    def __init__(self) -> None:
        raise EnvironmentError("AutoTokenizer is designed to be instantiated using "
                               "`AutoTokenizer.from_pretrained(pretrained_model_name_or_path)`")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *inputs: Any, use_fast: bool = True,
                        **kwargs: Any) -> Any:
        from .auto_tokenizer import load_tokenizer

        if inputs:
            raise TypeError("AutoTokenizer.from_pretrained takes the checkpoint and keywords only")
        kwargs.pop("config", None)  # v4 reads the tokenizer class from it; here the files decide
        tokenizer = load_tokenizer(pretrained_model_name_or_path, **kwargs)
        if use_fast or not type(tokenizer).__name__.endswith("Fast"):
            return tokenizer
        import roberta_core

        slow = getattr(roberta_core, type(tokenizer).__name__.removesuffix("Fast"))
        return slow.from_pretrained(pretrained_model_name_or_path, **kwargs)


def auto_model_classes(namespace: dict[str, Any], prefix: str) -> dict[str, type]:
    """name -> class for v4's Auto model classes of one backend (`prefix`: "" for PyTorch, "TF",
    "Flax"), each picking from `namespace` (the backend's classes and family aliases) the class
    that v4 maps the checkpoint's `model_type` to: `{prefix}{member stem}{head}`."""

    def make(auto_name: str, head: str) -> type:
        def class_for(model_type: Any) -> type:
            _config_class(model_type)
            name = f"{prefix}{FAMILY[model_type]}{head}"
            if name not in namespace:
                raise ValueError(f"{name} is not available in this backend")
            return namespace[name]

        def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
            from .hub import HUB_OPTIONS

            config = kwargs.get("config")
            if isinstance(config, RobertaConfig):
                model_type = config.model_type
            else:  # read where the model's from_pretrained will read it (the Hub keywords alone)
                where = {k: v for k, v in kwargs.items() if k in HUB_OPTIONS}
                model_type = RobertaConfig.get_config_dict(pretrained_model_name_or_path, **where)[0].get(
                    "model_type", "roberta")
            return class_for(model_type).from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

        def from_config(cls, config: RobertaConfig, **kwargs: Any) -> Any:
            model_class = class_for(config.model_type)
            if hasattr(model_class, "from_config"):
                return model_class.from_config(config, **kwargs)
            return model_class(config, **kwargs)

        def init(self, *args: Any, **kwargs: Any) -> None:
            raise EnvironmentError(f"{auto_name} is designed to be instantiated using "
                                   f"`{auto_name}.from_pretrained(path)` or `{auto_name}.from_config(config)`")

        doc = f"v4's `{auto_name}`: the family member's `{prefix}…{head}` for a checkpoint's config."
        return type(auto_name, (), {"__init__": init, "__doc__": doc, "from_pretrained": classmethod(from_pretrained),
                                    "from_config": classmethod(from_config), "__module__": namespace.get("__name__")})

    return {f"{prefix}{auto}": make(f"{prefix}{auto}", head) for auto, head in AUTO_HEADS.items()}

