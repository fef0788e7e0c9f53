"""roberta_core: the framework-neutral half of the library — config, tokenizers, canonical
weight names, checkpoint files, data pipeline and the `roberta` command. Imports no framework."""

from .config import PRESETS, RobertaConfig

__version__ = "0.1.0"

# Heavier pieces load on first use, so `import roberta_core` stays cheap.
_LAZY = {
    "RobertaTokenizer": ("tokenization", "RobertaTokenizer"),
    "RobertaTokenizerFast": ("tokenization_fast", "RobertaTokenizerFast"),
    "XLMRobertaTokenizer": ("tokenization_xlm_roberta", "XLMRobertaTokenizer"),
    "XLMRobertaTokenizerFast": ("tokenization_xlm_roberta_fast", "XLMRobertaTokenizerFast"),
    "CamembertTokenizer": ("tokenization_xlm_roberta", "CamembertTokenizer"),
    "CamembertTokenizerFast": ("tokenization_xlm_roberta_fast", "CamembertTokenizerFast"),
    "XLMRobertaConfig": ("family", "XLMRobertaConfig"),
    "CamembertConfig": ("family", "CamembertConfig"),
    "RobertaPreLayerNormConfig": ("family", "RobertaPreLayerNormConfig"),
    "GenerationConfig": ("generation", "GenerationConfig"),
    "AutoConfig": ("auto", "AutoConfig"),
    "AutoTokenizer": ("auto", "AutoTokenizer"),
    "load_tokenizer": ("auto_tokenizer", "load_tokenizer"),
    "BatchEncoding": ("tokenization_base", "BatchEncoding"),
    "AddedToken": ("tokenization_base", "AddedToken"),
    "convert": ("conversion", "convert"),
    "pipeline": ("pipelines", "pipeline"),
}

__all__ = ["RobertaConfig", "PRESETS", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'roberta_core' has no attribute {name!r}")
