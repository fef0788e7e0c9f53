"""`roberta_core.pipeline(task, model)`: inference by task, v4's pipelines on our models in any
backend. Pre- and post-processing are NumPy here; the forward is the backend's, reached through
`roberta_core.runtime`. The model is loaded once; options go at construction or at each call.

    ner = pipeline("ner", "ckpt", aggregation_strategy="simple")
    ner("Ada Lovelace wrote to Babbage")   # [{"entity_group", "score", "word", "start", "end"}, ...]
    ner(["text one", "text two"])          # one list per text, in input order
    ner(text for text in texts)            # a generator or dataset: an iterator of results, lazily
"""

from __future__ import annotations

from .base import Pipeline
from .tasks import (FeatureExtractionPipeline, FillMaskPipeline, MultipleChoicePipeline, QuestionAnsweringPipeline,
                    SentenceEmbeddingPipeline, TextClassificationPipeline, TextGenerationPipeline, TokenClassificationPipeline,
                    ZeroShotClassificationPipeline, sentence_transformers_layout)

__all__ = ["pipeline", "TASKS", "ALIASES", "Pipeline", "sentence_transformers_layout"]

TASKS: dict[str, type[Pipeline]] = {
    "fill-mask": FillMaskPipeline,
    "text-classification": TextClassificationPipeline,
    "zero-shot-classification": ZeroShotClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "question-answering": QuestionAnsweringPipeline,
    "multiple-choice": MultipleChoicePipeline,
    "feature-extraction": FeatureExtractionPipeline,
    "text-generation": TextGenerationPipeline,
    "sentence-embeddings": SentenceEmbeddingPipeline,
}
ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}


def pipeline(task: str, model=None, config=None, tokenizer=None, feature_extractor=None, image_processor=None,
             processor=None, framework: str | None = None, revision: str | None = None, use_fast: bool = True,
             token=None, device=None, device_map=None, dtype=None, trust_remote_code: bool | None = None,
             model_kwargs: dict | None = None, pipeline_class: type[Pipeline] | None = None, *,
             backend: str | None = None, batch_size: int | None = None, **task_options) -> Pipeline:
    """The pipeline of `task` (v4's names and aliases, plus `multiple-choice` and
    `sentence-embeddings`) on `model`: a checkpoint directory or Hub id, or a loaded model of any
    backend with its `tokenizer` (an object, a directory to load it from, or v4's `(name,
    {keywords})`). The arguments are v4's, in v4's order: `config` (a folder or a config object),
    `framework` (or `backend`: which backend runs it; the first installed by default), the Hub's
    `revision`/`token`, `use_fast`, `device` as v4's (-1 the CPU, an index a GPU), `dtype` and
    `device_map` and `model_kwargs` for `from_pretrained`; `batch_size` inputs run at once (8 when
    not given); `task_options` are the task's defaults for every call. `feature_extractor`,
    `image_processor`, `processor` and `modelcard` are kept on the pipeline; `pipeline_class` is a
    subclass of ours to build instead of the task's."""
    name = ALIASES.get(task, task)
    if name not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join([*TASKS, *ALIASES])}")
    if model is None:
        # v4 would fetch its default Hub checkpoint for the task (not a RoBERTa for most tasks)
        raise ValueError(f"pipeline({task!r}) needs a model: a checkpoint directory, a Hub repo id or a loaded model")
    cls = TASKS[name] if pipeline_class is None else pipeline_class
    if not (isinstance(cls, type) and issubclass(cls, Pipeline)):
        raise TypeError(f"pipeline_class must be a subclass of roberta_core.pipelines.Pipeline, got {pipeline_class!r}")
    given = dict(config=config, feature_extractor=feature_extractor, image_processor=image_processor,
                 processor=processor, framework=framework, revision=revision, token=token, device_map=device_map,
                 dtype=dtype, trust_remote_code=trust_remote_code, model_kwargs=model_kwargs)
    task_options.update({k: v for k, v in given.items() if v is not None})
    if not use_fast:
        task_options["use_fast"] = False
    return cls(model, tokenizer=tokenizer, backend=backend, device=device, batch_size=batch_size, **task_options)
