"""The RoBERTa family: XLM-RoBERTa, CamemBERT and RoBERTa-PreLayerNorm under v4's class names.

XLM-RoBERTa and CamemBERT are RoBERTa with another vocabulary and tokenizer; RoBERTa-PreLayerNorm
moves the LayerNorms (`RobertaConfig.pre_layer_norm`). Every backend builds all of them from its
own `Roberta*` classes: `config.model_type` picks the architecture and the names in files
(`RobertaConfig.base_model_prefix`), and the classes v4 names after a family member
(`XLMRobertaForMaskedLM`, `TFCamembertModel`, `FlaxRobertaPreLayerNormForQuestionAnswering`, ...)
are thin subclasses made here that set `model_type` on the config they are given.
"""

from __future__ import annotations

from typing import Iterable

from .config import BASE_MODEL_PREFIXES, RobertaConfig
from .weights import FAMILY

__all__ = ["family_aliases", "config_for_class", "FAMILY", "XLMRobertaConfig", "CamembertConfig",
           "RobertaPreLayerNormConfig", "CONFIG_CLASSES"]


class XLMRobertaConfig(RobertaConfig):
    """v4's `XLMRobertaConfig`: a RobertaConfig whose `model_type` defaults to "xlm-roberta"."""

    model_type = "xlm-roberta"


class CamembertConfig(RobertaConfig):
    """v4's `CamembertConfig`: a RobertaConfig whose `model_type` defaults to "camembert"."""

    model_type = "camembert"


class RobertaPreLayerNormConfig(RobertaConfig):
    """v4's `RobertaPreLayerNormConfig`: a RobertaConfig whose `model_type` defaults to "roberta-prelayernorm"."""

    model_type = "roberta-prelayernorm"


# model_type -> v4's config class of that family member (a model class's `config_class`)
CONFIG_CLASSES: dict[str, type[RobertaConfig]] = {
    c.model_type: c for c in (RobertaConfig, XLMRobertaConfig, CamembertConfig, RobertaPreLayerNormConfig)
}


def family_aliases(classes: Iterable[type]) -> dict[str, type]:
    """name -> class for v4's family class names of a backend's `Roberta*` classes: for every family
    member other than RoBERTa and every class in `classes` (named `Roberta…`, `TFRoberta…` or
    `FlaxRoberta…`), a subclass named as v4 names it whose `family_model_type` is the member's
    `model_type` and whose `base_model_prefix` is v4's. A backend's `__init__` puts them in its namespace."""
    aliases: dict[str, type] = {}
    for model_type, stem in FAMILY.items():
        if model_type == "roberta":
            continue
        for cls in classes:
            if "Roberta" not in cls.__name__:
                raise ValueError(f"{cls.__name__} is not a Roberta class; family aliases are made from Roberta* classes")
            name = cls.__name__.replace("Roberta", stem, 1)
            aliases[name] = type(cls)(name, (cls,), {
                "family_model_type": model_type,
                "config_class": CONFIG_CLASSES[model_type],
                # v4's class attribute: "roberta_prelayernorm" for RoBERTa-PreLayerNorm, else "roberta".
                "base_model_prefix": BASE_MODEL_PREFIXES[model_type],
                "__module__": cls.__module__,
                "__qualname__": name,
                "__doc__": f"v4's `{name}`: `{cls.__name__}` with config.model_type={model_type!r}.",
            })
    return aliases


def config_for_class(cls: type, config: RobertaConfig) -> RobertaConfig:
    """The config a model of class `cls` is built with: a family alias (`family_model_type` set)
    gets a copy whose `model_type` is its member's, as v4's `XLMRobertaConfig`/... would say; a
    `Roberta*` class keeps the config's own `model_type`, so a checkpoint of any family member
    loaded through `RobertaForMaskedLM` keeps its architecture and is saved as what it is."""
    model_type = getattr(cls, "family_model_type", None)
    if model_type is None or config.model_type == model_type:
        return config
    new = config.copy(model_type=model_type)
    new.__class__ = CONFIG_CLASSES[model_type]  # the same fields; v4's class for them
    return new
