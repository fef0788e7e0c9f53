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
                    SentenceEmbeddingPipeline, TextClassificationPipeline, TokenClassificationPipeline,
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
    "sentence-embeddings": SentenceEmbeddingPipeline,
}
ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}


def pipeline(task: str, model, *, tokenizer=None, backend: str | None = None, device=None,
             batch_size: int | None = None, pipeline_class: type[Pipeline] | None = None, **task_options) -> Pipeline:
    """The pipeline of `task` (v4's names and aliases, plus `multiple-choice` and
    `sentence-embeddings`) on `model`: a checkpoint directory, or a loaded model of any backend
    with its `tokenizer` (an object, or a directory to load it from). `backend` defaults to the
    first installed (v4's `framework=` names it too); `device` as v4's (-1 the CPU, an index a
    GPU); `model_kwargs` go to `from_pretrained`; `batch_size` inputs run at once (8 when not
    given); `task_options` are the task's defaults for every call. v4's other construction
    arguments are taken: `feature_extractor`, `image_processor`, `processor`, `modelcard` (kept on
    the pipeline), `pipeline_class` (a subclass of ours to build instead of the task's)."""
    name = ALIASES.get(task, task)
    if name not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join([*TASKS, *ALIASES])}")
    cls = TASKS[name] if pipeline_class is None else pipeline_class
    if not (isinstance(cls, type) and issubclass(cls, Pipeline)):
        raise TypeError(f"pipeline_class must be a subclass of roberta_core.pipelines.Pipeline, got {pipeline_class!r}")
    return cls(model, tokenizer=tokenizer, backend=backend, device=device, batch_size=batch_size, **task_options)
