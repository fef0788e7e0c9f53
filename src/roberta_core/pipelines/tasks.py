"""The task pipelines: v4's `fill-mask`, `text-classification`, `zero-shot-classification`,
`token-classification`, `question-answering`, `feature-extraction` and `text-generation` (same names, options,
defaults and output shapes as `transformers` 4.57.6), and ours: `multiple-choice` and
`sentence-embeddings`."""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import runtime
from . import postprocess as pp
from .base import Pipeline, Row, is_stream

logger = logging.getLogger(__name__)

__all__ = [
    "FillMaskPipeline", "TextClassificationPipeline", "ZeroShotClassificationPipeline", "TokenClassificationPipeline",
    "QuestionAnsweringPipeline", "MultipleChoicePipeline", "FeatureExtractionPipeline",
    "SentenceEmbeddingPipeline", "SquadExample", "TextGenerationPipeline", "PipelineException",
]


class ChoiceError(KeyError, ValueError):
    """A name that is none of the choices (an aggregation strategy, a function to apply) or a
    dict without a key it needs: a `KeyError`, as v4's (its enums are looked up by name), and the
    `ValueError` ours always was. Its message reads as written (not quoted, as a KeyError's is)."""

    __str__ = BaseException.__str__


class MissingOptionError(TypeError, ValueError):
    """An option a task cannot run without, not given: v4 fails on it with a `TypeError`; ours is
    also the `ValueError` it always was."""


class PipelineException(ValueError):
    """v4's `PipelineException(task, model, reason)`: an input the task cannot read (a fill-mask
    text without a mask); its message is `reason`. Also the `ValueError` ours always was."""

    def __init__(self, task: str, model: str, reason: str):
        super().__init__(reason)
        self.task, self.model = task, model


class InputTypeError(TypeError, ValueError):
    """An input of a type the task does not read: v4's text pipelines raise a `ValueError` (the
    tokenizer's), ours always was a `TypeError`."""


def _positive_int(name: str, value: Any, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be a {'positive' if least else 'non-negative'} integer, got {value!r}")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputTypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------- fill-mask


class FillMaskPipeline(Pipeline):
    """`fill-mask`: for a text with one `<mask>`, the `top_k` candidates [{"score", "token",
    "token_str", "sequence"}]; with several masks, one such list per mask (`sequence` then keeps
    the special tokens, as v4's). `targets` limits the candidates to those tokens (a target not in
    the vocabulary stands for its first token)."""

    task, head = "fill-mask", "masked_lm"
    defaults = {"top_k": 5, "targets": None, "tokenizer_kwargs": None}

    def sanitize(self, options):
        # v4: an option given as None is not given (the construction's, else the default, applies)
        return {k: v for k, v in options.items() if not (k in self.defaults and v is None)}

    def check_options(self, options):
        options = super().check_options(options)
        _positive_int("top_k", options["top_k"], least=0)  # 0: no candidates, as v4
        if self.tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token (<mask>); fill-mask needs one")
        return options

    def __call__(self, inputs, **options):
        results = super().__call__(inputs, **options)
        # v4 unwraps a list of one text.
        return results[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else results

    def target_ids(self, targets) -> np.ndarray:
        targets = [targets] if isinstance(targets, str) else list(targets)
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            i = vocab.get(_text("a target", target))
            if i is None:
                pieces = self.tokenizer(target, add_special_tokens=False)["input_ids"]
                if not pieces:
                    continue  # v4 drops a target that tokenizes to nothing
                i = pieces[0]
            ids.append(int(i))
        ids = sorted(set(ids))
        if not ids:
            raise ValueError("targets: at least one target must be given (each a token or a text that tokenizes)")
        return np.asarray(ids)

    def model_inputs(self, ids, mask):
        # The LM head at the <mask> positions only (`masked_positions_only`, labelled by their own
        # ids; the loss that comes with it is not read): its vocabulary projection is about a third
        # of a short text's work, and no (B, T, V) logits are made. The rows are rounded up to a
        # multiple of 8 (the rest zeros) so that a compiled backend sees few distinct sizes.
        inputs = super().model_inputs(ids, mask)
        masked = (ids == self.tokenizer.mask_token_id) & (mask == 1)
        inputs["labels"] = np.where(masked, ids, -100)
        inputs["masked_positions_only"] = min(-(-int(masked.sum()) // 8) * 8, ids.size)
        return inputs

    def row_outputs(self, out, inputs, b, n):
        counts = (inputs["labels"] != -100).sum(1)  # the logits' rows: the masks in row-major order
        start = int(counts[:b].sum())
        return {"logits": out["logits"][start:start + int(counts[b])]}  # (row b's masks, V)

    def preprocess(self, text, options):
        encoding = self.encode(_text("a fill-mask input", text), **(options["tokenizer_kwargs"] or {}))
        ids = list(encoding["input_ids"])
        mask = encoding.get("attention_mask")
        if mask is not None and not all(mask):
            # Padding asked of the tokenizer (`padding="max_length"`): v4 masks it out of the model
            # and drops it from `sequence`; leaving it out gives the same logits at the real tokens.
            ids = [i for i, m in zip(ids, mask) if m]
        if self.tokenizer.mask_token_id not in ids:  # v4's exception and message
            raise PipelineException("fill-mask", getattr(self.config, "_name_or_path", "") or str(self.path or ""),
                                    f"No mask_token ({self.tokenizer.mask_token}) found on the input "
                                    f"(no mask token in {text!r})")
        return [Row(input_ids=ids)]

    def postprocess(self, text, rows, outputs, options):
        ids = np.asarray(rows[0]["input_ids"])
        positions = np.flatnonzero(ids == self.tokenizer.mask_token_id)
        probs = pp.softmax(outputs[0]["logits"])  # (masks, V): the logits at `positions`, in order
        targets = None if options["targets"] is None else self.target_ids(options["targets"])
        if targets is not None:
            probs = probs[:, targets]
        top_k = min(options["top_k"], probs.shape[-1])
        single = positions.size == 1
        result = []
        for position, p in zip(positions, probs):
            row = []
            for k in pp.top_k(p, top_k):
                token = int(targets[k]) if targets is not None else int(k)
                filled = ids.copy()
                filled[position] = token
                filled = filled[filled != self.tokenizer.pad_token_id]
                row.append({"score": float(p[k]), "token": token, "token_str": self.tokenizer.decode([token]),
                            "sequence": self.tokenizer.decode(filled.tolist(), skip_special_tokens=single)})
            result.append(row)
        return result[0] if single else result


# ---------------------------------------------------------------------------- text-classification


class TextClassificationPipeline(Pipeline):
    """`text-classification` (`sentiment-analysis`): a text, or a pair as {"text", "text_pair"}.
    Without `top_k`: the best {"label", "score"} (a single text gives a list of it, as v4);
    `top_k=k` the k best, `top_k=None` every label, best first. `function_to_apply`
    softmax|sigmoid|none, by default v4's rule on `problem_type` and `num_labels`. v4's legacy
    `return_all_scores` (or the config's) gives every label in id order (True) or the best (False),
    with v4's deprecation warning. Any other option goes to the tokenizer (`truncation`,
    `max_length`, `padding`, ...), as v4's."""

    task, head = "text-classification", "sequence_classification"
    # `_legacy`: v4's "top_k not given at any place", which keeps the unsorted, uncut outputs
    defaults = {"top_k": 1, "function_to_apply": None, "_legacy": True}

    def sanitize(self, options):
        options = dict(options)
        return_all_scores = options.pop("return_all_scores", None)
        if return_all_scores is None:
            return_all_scores = getattr(self.config, "return_all_scores", None)
        if "top_k" in options and (options["top_k"] is None or isinstance(options["top_k"], int)):
            options["_legacy"] = False
        elif return_all_scores is not None:
            warnings.warn(
                "`return_all_scores` is now deprecated,  if want a similar functionality use `top_k=None` instead of"
                " `return_all_scores=True` or `top_k=1` instead of `return_all_scores=False`.", UserWarning, stacklevel=3)
            options["top_k"] = None if return_all_scores else 1
        return options

    def check_options(self, options):
        tokenizer_kwargs = {k: v for k, v in options.items() if k not in self.defaults}
        options = super().check_options({k: v for k, v in options.items() if k in self.defaults})
        top_k, function = options["top_k"], options["function_to_apply"]
        if top_k is not None:
            _positive_int("top_k", top_k, least=0)
        if function is not None:
            function = getattr(function, "value", function)  # v4's ClassificationFunction enum
            if not isinstance(function, str) or function.lower() not in pp.FUNCTIONS:
                raise ChoiceError(f"function_to_apply must be one of {', '.join(pp.FUNCTIONS)}, got {function!r}")
            options["function_to_apply"] = function.lower()
        return {**options, **tokenizer_kwargs}

    def __call__(self, inputs, **options):
        result = super().__call__(inputs, **options)
        # v4: a single text without top_k at the call comes back as a list of its result.
        return [result] if isinstance(inputs, str) and "top_k" not in options else result

    def preprocess(self, item, options):
        kwargs = {k: v for k, v in options.items() if k not in self.defaults}
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if "text" not in item or unknown:
                raise ValueError('a text pair is a dict {"text": ..., "text_pair": ...}, got keys ' + ", ".join(map(str, item)))
            encoding = self.encode(_text("text", item["text"]),
                                   None if item.get("text_pair") is None else _text("text_pair", item["text_pair"]), **kwargs)
        elif isinstance(item, str):
            encoding = self.encode(item, **kwargs)
        else:
            raise ValueError('an input is a text or a pair {"text": ..., "text_pair": ...}, got ' + type(item).__name__)
        mask = encoding.get("attention_mask") or [1] * len(encoding["input_ids"])
        # Padding asked of the tokenizer (`padding="max_length"`) is masked out in v4: leaving it out is the same.
        return [Row(input_ids=[i for i, m in zip(encoding["input_ids"], mask) if m])]

    def postprocess(self, item, rows, outputs, options):
        function = options["function_to_apply"] or pp.default_function(
            getattr(self.config, "problem_type", None), self.config.num_labels)
        scores = pp.classification_scores(outputs[0]["logits"], function)
        id2label, top_k = self.config.id2label, options["top_k"]
        if top_k == 1 and options["_legacy"]:
            return {"label": id2label[int(scores.argmax())], "score": float(scores.max())}
        labels = [{"label": id2label[i], "score": float(s)} for i, s in enumerate(scores)]
        if not options["_legacy"]:
            labels = sorted(labels, key=lambda x: x["score"], reverse=True)[:top_k]
        return labels


# ---------------------------------------------------------------------------- zero-shot-classification


def _candidate_labels(labels: Any) -> Any:
    """v4's parsing: a string is comma-separated labels (each stripped, empty ones dropped)."""
    return [label.strip() for label in labels.split(",") if label.strip()] if isinstance(labels, str) else labels


class ZeroShotClassificationPipeline(Pipeline):
    """`zero-shot-classification`: an NLI model (sequence classification, an "entail..." label in
    `config.label2id`) scores `candidate_labels` (a list, or a comma-separated string) for a text:
    each label is the hypothesis `hypothesis_template.format(label)` read as the pair (text,
    hypothesis), the text truncated first (`only_first`). {"sequence", "labels", "scores"}, best
    first: the softmax of the entailment logits over the labels, or with `multi_label` (or one
    label) each label's softmax over its [contradiction, entailment] logits (see
    `postprocess.zero_shot_scores`). Options at construction or call, the labels also as the
    second positional argument; v4's legacy `multi_class` names `multi_label` (with v4's warning)."""

    task, head = "zero-shot-classification", "sequence_classification"
    defaults = {"candidate_labels": None, "hypothesis_template": "This example is {}.", "multi_label": False}
    ignores_unknown_options = True

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        if self.entailment_id == -1:  # logged, as v4's (not a Python warning)
            logger.warning(
                "Failed to determine 'entailment' label id from the label2id mapping in the model config. Setting to "
                "-1. Define a descriptive label2id mapping in the model config to ensure correct outputs.")

    @property
    def entailment_id(self) -> int:
        """v4's: the id of the first label of `config.label2id` starting with "entail" (any case), or -1."""
        return pp.entailment_id(self.config.label2id)

    def sanitize(self, options):
        options = dict(options)
        multi_class = options.pop("multi_class", None)
        if multi_class is not None:  # logged, as v4's (not a Python warning)
            logger.warning("The `multi_class` argument has been deprecated and renamed to `multi_label`. "
                           "`multi_class` will be removed in a future version of Transformers.")
            options["multi_label"] = multi_class
        if "candidate_labels" in options:
            options["candidate_labels"] = _candidate_labels(options["candidate_labels"])
        return options

    def __call__(self, sequences, *args, **options):
        if len(args) == 1 and "candidate_labels" not in options:
            options["candidate_labels"] = args[0]
        elif args:
            raise ValueError(f"Unable to understand extra arguments {args}")
        return super().__call__(sequences, **options)

    def preprocess(self, sequence, options):
        labels, template = options["candidate_labels"], options["hypothesis_template"]
        if labels is None:
            raise MissingOptionError("zero-shot-classification needs candidate_labels: a list of labels or a "
                                     "comma-separated string, at construction or call (or as the second argument)")
        sequence = _text("a zero-shot-classification input", sequence)
        if len(labels) == 0 or len(sequence) == 0:
            raise ValueError("You must include at least one label and at least one sequence.")
        template = _text("hypothesis_template", template)
        if template.format(labels[0]) == template:
            raise ValueError(
                f'The provided hypothesis_template "{template}" was not able to be formatted with the target labels. '
                "Make sure the passed template includes formatting syntax such as {} where the label should go.")
        return [Row(input_ids=self.encode_pair(sequence, template.format(label))) for label in labels]

    def encode_pair(self, sequence: str, hypothesis: str) -> list[int]:
        """The pair's ids, the sequence truncated first to the tokenizer's `model_max_length`; when
        the sequence cannot give enough (a very long hypothesis), not truncated, as v4's retry."""
        try:
            return list(self.encode(sequence, hypothesis, truncation="only_first")["input_ids"])
        except ValueError as e:
            if "cannot fit" not in str(e) and "too short" not in str(e):  # ours, `tokenizers`' (a v4 tokenizer)
                raise
        return list(self.encode(sequence, hypothesis, truncation="do_not_truncate")["input_ids"])

    def forward(self, rows, batch_size):
        # Identical pairs (a label given twice, hypotheses that read the same) run once: a row's
        # logits move by an ulp with its place in a batch, and identical pairs must tie exactly,
        # as v4's (one pair per forward) do, for the tie order to be v4's.
        index: dict[tuple, int] = {}
        where = [index.setdefault(tuple(row["input_ids"]), len(index)) for row in rows]
        unique = {k: row for row, k in zip(rows, where)}
        outputs = super().forward([unique[k] for k in range(len(index))], batch_size)
        return [outputs[k] for k in where]

    def postprocess(self, sequence, rows, outputs, options):
        labels = list(options["candidate_labels"])
        logits = np.stack([out["logits"] for out in outputs])  # (labels, num_labels)
        scores, order = pp.zero_shot_scores(logits, self.entailment_id, bool(options["multi_label"]))
        return {"sequence": sequence, "labels": [labels[i] for i in order], "scores": scores[order].tolist()}


# ---------------------------------------------------------------------------- token-classification


class _WithOffsets:
    """A token-classification input with the `offset_mapping` its caller gave for it (not a
    tuple: that would read as a list of inputs)."""

    def __init__(self, text: Any, offsets: list):
        self.text, self.offsets = text, offsets


def _strategy(value: Any) -> str | None:
    value = getattr(value, "value", value)  # v4's AggregationStrategy enum
    if value is not None and (not isinstance(value, str) or value.lower() not in pp.AGGREGATIONS):
        raise ChoiceError(f"aggregation_strategy must be one of {', '.join(pp.AGGREGATIONS)}, got {value!r}")
    return None if value is None else value.lower()


class TokenClassificationPipeline(Pipeline):
    """`token-classification` (`ner`): entities of a text. `aggregation_strategy="none"` (the
    default) gives one {"entity", "score", "index", "word", "start", "end"} per token;
    `simple`/`first`/`average`/`max` give {"entity_group", "score", "word", "start", "end"} (see
    `postprocess.aggregate`); scores are `np.float32`, as v4's. Tokens or groups labelled in
    `ignore_labels` (default ["O"]) are left out. `start`/`end` are character offsets into the
    text; a token continues a word when no space is at its left edge (v4's rule for tokenizers
    without a continuing-subword prefix). `stride` reads a text longer than the model in
    overlapping windows (an explicit "none" strategy refuses it, as v4's). `is_split_into_words`:
    an input is a list of words, joined by `delimiter` (" ") for the offsets; `offset_mapping`
    replaces the tokenizer's offsets (one list of (start, end) per input). v4's legacy
    `grouped_entities`/`ignore_subwords` name a strategy, with v4's deprecation warnings."""

    task, head = "token-classification", "token_classification"
    defaults = {"aggregation_strategy": None, "ignore_labels": None, "stride": None, "is_split_into_words": False,
                "delimiter": None, "offset_mapping": None}
    token_fields = ("logits",)

    def sanitize(self, options):
        options = dict(options)
        grouped, ignore_subwords = options.pop("grouped_entities", None), options.pop("ignore_subwords", None)
        if grouped is not None or ignore_subwords is not None:
            strategy = "first" if grouped and ignore_subwords else "simple" if grouped else "none"
            for name, value in (("grouped_entities", grouped), ("ignore_subwords", ignore_subwords)):
                if value is not None:
                    warnings.warn(f"`{name}` is deprecated and will be removed in version v5.0.0, defaulted to"
                                  f' `aggregation_strategy="{strategy}"` instead.', UserWarning, stacklevel=3)
            options["aggregation_strategy"] = strategy
        if "aggregation_strategy" in options:
            options["aggregation_strategy"] = _strategy(options["aggregation_strategy"])
        stride = options.get("stride")
        if stride is not None and not isinstance(stride, bool) and isinstance(stride, (int, np.integer)):
            limit = self.tokenizer.model_max_length
            if limit and stride >= limit:  # v4's first check; the window's own bound is the tokenizer's
                raise ValueError("`stride` must be less than `tokenizer.model_max_length` (or even lower if the "
                                 "tokenizer adds special tokens)")
        # v4 refuses stride with "none" given at the same place only; not given, "none" applies, window by window
        if stride is not None and options.get("aggregation_strategy") == "none":
            raise ValueError('stride reads a text in windows, which needs an aggregation_strategy other than "none"')
        return options

    def check_options(self, options):
        options = super().check_options(options)
        if options["stride"] is not None:
            _positive_int("stride", options["stride"], least=0)  # 0: windows that do not overlap, as v4's
        return options

    def __call__(self, inputs, **options):
        if inputs is None or (isinstance(inputs, (list, tuple)) and len(inputs) == 0):
            raise ValueError("At least one input is required.")  # v4's
        words = options.get("is_split_into_words", self.options["is_split_into_words"])
        if words and isinstance(inputs, (list, tuple)) and not all(isinstance(i, (list, tuple)) for i in inputs):
            inputs = [inputs]  # one text's words: v4 answers as for a list of one text
        offsets = options.pop("offset_mapping", self.options["offset_mapping"])
        if offsets and not is_stream(inputs):
            many = isinstance(inputs, (list, tuple))
            offsets = [offsets] if isinstance(offsets[0], tuple) else offsets  # one input's, or one list per input
            texts = list(inputs) if many else [inputs]
            if len(offsets) != len(texts):
                raise ValueError(f"offset_mapping has {len(offsets)} lists for {len(texts)} inputs; give one per input")
            paired = [_WithOffsets(t, list(o)) for t, o in zip(texts, offsets)]
            inputs = paired if many else paired[0]
        return super().__call__(inputs, **options)

    def max_length(self) -> int:
        return min(self.tokenizer.model_max_length or self.config.max_sequence_length, self.config.max_sequence_length)

    def preprocess(self, item, options):
        given = None
        if isinstance(item, _WithOffsets):
            item, given = item.text, item.offsets
        # A tokenizer without offsets (v4's slow tokenizers; ours give them, through the fast layout)
        # is read as v4 reads it: tokens without start/end (None), none a subword.
        with_offsets = getattr(self.tokenizer, "is_fast", True) or hasattr(self.tokenizer, "_call_fast_layout")
        kwargs: dict[str, Any] = {"truncation": True, "max_length": self.max_length(), "return_offsets_mapping": with_offsets}
        if not with_offsets:
            if (options["aggregation_strategy"] or "none") in ("first", "average", "max"):
                raise ValueError('Slow tokenizers cannot handle subwords. Please set the `aggregation_strategy` option'
                                 ' to `"simple"` or use a fast tokenizer.')
            if options["stride"] is not None:
                raise ValueError("`stride` was provided to process all the text but you're using a slow tokenizer."
                                 " Please use a fast tokenizer.")
            if options["is_split_into_words"]:
                raise ValueError("is_split_into_words=True is only supported with fast tokenizers.")
        if options["stride"] is not None:
            # v4's tokenizer takes a stride up to the window (max_length less the special tokens); one
            # as long as the window is refused by the tokenizer once the text overflows
            specials = self.tokenizer.num_special_tokens_to_add(False) if hasattr(self.tokenizer, "num_special_tokens_to_add") else 2
            window = kwargs["max_length"] - specials
            if options["stride"] > window:
                raise ValueError(f"tokenizer stride set to {options['stride']}, which is greater than or equal to its "
                                 f"effective max length of {window} (= {kwargs['max_length']} original max length - "
                                 f"{specials} added special tokens)")
            kwargs.update(return_overflowing_tokens=True, stride=options["stride"])
        word_starts = None
        if options["is_split_into_words"]:
            if not isinstance(item, (list, tuple)) or not all(isinstance(w, str) for w in item):
                raise ValueError("with is_split_into_words=True an input is a list of words")
            delimiter = " " if options["delimiter"] is None else options["delimiter"]
            sentence = delimiter.join(item)  # what the offsets point into, as v4's
            word_starts = np.cumsum([0, *(len(w) + len(delimiter) for w in item)])[:-1].tolist()
            encoding = self.encode(list(item), is_split_into_words=True, **kwargs)
        else:
            sentence = _text("a token-classification input", item)
            encoding = self.encode(sentence, **kwargs)
        ids = encoding["input_ids"]
        offsets = encoding["offset_mapping"] if with_offsets else None
        if ids and isinstance(ids[0], int):
            ids, offsets = [ids], [offsets]
        if offsets is None:
            offsets = [None] * len(ids)
        specials = set(self.tokenizer.all_special_ids)
        rows = []
        for w, (window, window_offsets) in enumerate(zip(ids, offsets)):
            if given is None and window_offsets is None:
                window_offsets = [None] * len(window)
            else:
                window_offsets = [tuple(o) for o in (given if given is not None else window_offsets)]
            if word_starts is not None:  # a word's offsets are within the word: shifted to the sentence's
                window_offsets = [o if word is None else (o[0] + word_starts[word], o[1] + word_starts[word])
                                  for o, word in zip(window_offsets, encoding.word_ids(w))]
            rows.append(Row(input_ids=list(window), offsets=window_offsets, special=[i in specials for i in window],
                            sentence=sentence))
        return rows

    def postprocess(self, item, rows, outputs, options):
        strategy = options["aggregation_strategy"] or "none"
        ignore = ["O"] if options["ignore_labels"] is None else list(options["ignore_labels"])
        # v4's word rule: a tokenizer with a continuing-subword prefix ("##") marks a subword by its
        # token being longer than its text; RoBERTa's byte-level BPE has none, and a token continues
        # a word when no space is at its left edge, with v4's warning for each token when the
        # strategy works on words (first, average, max)
        prefix = getattr(getattr(getattr(self.tokenizer, "_tokenizer", None), "model", None), "continuing_subword_prefix", None)
        warn = not prefix and strategy in ("first", "average", "max")
        entities = []
        for row, out in zip(rows, outputs):
            text = row["sentence"]
            scores = pp.softmax(out["logits"])
            pre = []
            for index, (token, offset, special) in enumerate(zip(row["input_ids"], row["offsets"], row["special"])):
                if special:
                    continue
                word = self.tokenizer.convert_ids_to_tokens([token])[0]
                if offset is None:  # no offsets (v4's slow tokenizer): v4's None positions, no subwords
                    pre.append({"word": word, "scores": scores[index], "start": None, "end": None,
                                "index": index, "is_subword": False})
                    continue
                start, end = offset
                if prefix:
                    is_subword = len(word) != len(text[start:end])
                else:
                    if warn:
                        warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning)
                    is_subword = start > 0 and " " not in text[start - 1:start + 1]
                if token == self.tokenizer.unk_token_id:
                    word, is_subword = text[start:end], False
                pre.append({"word": word, "scores": scores[index], "start": int(start), "end": int(end),
                            "index": index, "is_subword": is_subword})
            grouped = pp.aggregate(pre, strategy, self.config.id2label, self.tokenizer.convert_tokens_to_string)
            entities += [e for e in grouped if e.get("entity") not in ignore and e.get("entity_group") not in ignore]
        entities = pp.aggregate_overlapping_entities(entities) if len(rows) > 1 else entities
        for entity in entities:
            entity["score"] = np.float32(entity["score"])  # v4's scores are NumPy float32 scalars
        return entities


# ---------------------------------------------------------------------------- question-answering


# SQuAD's word separators (v4's squad processors): space, tab, CR, LF and the narrow no-break space.
_SQUAD_WORD = re.compile("[^ \t\r\n\u202f]+")


class SquadExample:
    """v4's `transformers.data.processors.squad.SquadExample` (what its question-answering
    pipeline reads an example as, and `QuestionAnsweringPipeline.create_sample` makes): the
    question and context texts, plus the context's whitespace-split `doc_tokens` and
    `char_to_word_offset`, and the answer's word positions when one is given. The pipeline takes
    any object with `question_text` and `context_text` (v4's own SquadExample too)."""

    def __init__(self, qas_id, question_text, context_text, answer_text, start_position_character, title,
                 answers=None, is_impossible=False):
        self.qas_id, self.question_text, self.context_text = qas_id, question_text, context_text
        self.answer_text, self.title, self.is_impossible = answer_text, title, is_impossible
        self.answers = [] if answers is None else answers
        self.start_position, self.end_position = 0, 0
        # The context's words, and for each character the index of the word it belongs to (a
        # separator: the word before it; -1 before the first word).
        words = list(_SQUAD_WORD.finditer(context_text))
        doc_tokens = [word.group() for word in words]
        char_to_word_offset = [-1] * len(context_text)
        for k, word in enumerate(words):
            end = words[k + 1].start() if k + 1 < len(words) else len(context_text)
            char_to_word_offset[word.start():end] = [k] * (end - word.start())
        self.doc_tokens, self.char_to_word_offset = doc_tokens, char_to_word_offset
        if start_position_character is not None and not is_impossible:
            self.start_position = char_to_word_offset[start_position_character]
            self.end_position = char_to_word_offset[
                min(start_position_character + len(answer_text) - 1, len(char_to_word_offset) - 1)]

    def __repr__(self) -> str:
        return f"SquadExample(question_text={self.question_text!r}, context_text={self.context_text!r})"


def _is_squad_example(item: Any) -> bool:
    return hasattr(item, "question_text") and hasattr(item, "context_text")


class QuestionAnsweringPipeline(Pipeline):
    """`question-answering`: {"question", "context"} (or `question=`, `context=` keywords) to
    {"score", "start", "end", "answer"}, `answer` = context[start:end]; `top_k` > 1 gives the n-best
    list over every window. A context too long for `max_seq_len` tokens is read in windows that
    overlap by `doc_stride` tokens; `max_answer_len` bounds a span in tokens; `max_question_len`
    cuts the question (in tokens) with a slow tokenizer only, as v4 (whose slow path is SQuAD's
    feature conversion, not reproduced here); `handle_impossible_answer` adds the empty answer,
    scored by `<s>` as start and end (the lowest over windows). v4's other ways in are taken too:
    `qa(question, context)`, the deprecated `X=`/`data=` keywords and `topk=`, `padding=`."""

    task, head = "question-answering", "question_answering"
    defaults = {"top_k": 1, "doc_stride": None, "max_answer_len": 15, "max_seq_len": None,
                "max_question_len": 64, "handle_impossible_answer": False, "align_to_words": True}
    token_fields = ("start_logits", "end_logits")
    ignores_unknown_options = True

    def check_options(self, options):
        options = super().check_options(options)
        for name in ("top_k", "max_answer_len", "max_question_len"):
            _positive_int(name, options[name])
        if options["max_seq_len"] is not None:
            _positive_int("max_seq_len", options["max_seq_len"])
        if options["doc_stride"] is not None:
            _positive_int("doc_stride", options["doc_stride"], least=0)  # 0: windows that do not overlap, as v4's
        return options

    def sanitize(self, options):
        options = dict(options)
        topk = options.pop("topk", None)
        if topk is not None and options.get("top_k") is None:
            warnings.warn("topk parameter is deprecated, use top_k instead", UserWarning, stacklevel=3)
            options["top_k"] = topk
        # v4 pads the windows (to max_seq_len with "max_length") and masks the padding out of the
        # model and of the answers: the same answers as without it.
        options.pop("padding", None)
        return options

    def __call__(self, *args, question=None, context=None, **options):
        if args:  # v4 warns of any example given positionally (a dict, a list, (question, context))
            warnings.warn("Passing a list of SQuAD examples to the pipeline is deprecated and will be removed in v5. "
                          "Inputs should be passed using the `question` and `context` keyword arguments instead.",
                          FutureWarning, stacklevel=2)
        for legacy in ("X", "data"):  # v4's deprecated keywords for the examples
            if legacy in options and not args:
                warnings.warn(f"Passing the `{legacy}` argument to the pipeline is deprecated and will be removed in v5."
                              " Inputs should be passed using the `question` and `context` keyword arguments instead.",
                              FutureWarning, stacklevel=2)
                args = (options.pop(legacy),)
        if len(args) == 2 and all(isinstance(a, str) for a in args):
            args = ({"question": args[0], "context": args[1]},)  # v4's qa(question, context)
        if args and (question is not None or context is not None):
            raise TypeError("give the examples either as dicts or as question=/context= keywords, not both")
        if not args:
            if question is None or context is None:
                raise TypeError('question-answering needs {"question", "context"} dicts or question= and context=')
            if isinstance(question, str) and isinstance(context, str):
                examples: Any = {"question": question, "context": context}
            elif isinstance(context, str) or isinstance(question, str):
                many = [question] if isinstance(question, str) else list(question)
                contexts = [context] if isinstance(context, str) else list(context)
                examples = [{"question": q, "context": c} for q in many for c in contexts]
            else:
                if len(question) != len(context):
                    raise ValueError(f"{len(question)} questions for {len(context)} contexts; give as many of each")
                examples = [{"question": q, "context": c} for q, c in zip(question, context)]
        elif len(args) == 1:
            examples = args[0]
        else:
            raise TypeError("question-answering takes one argument: an example dict or a list of them")
        if isinstance(examples, (list, tuple)) and len(examples) == 1:
            examples = examples[0]  # v4 unwraps a list of one example
        return super().__call__(examples, **options)

    @staticmethod
    def create_sample(question: str | list[str], context: str | list[str]) -> SquadExample | list[SquadExample]:
        """v4's: a `SquadExample` of a question and its context, or a list of them for lists of
        questions and contexts (paired in order)."""
        if isinstance(question, list):
            return [SquadExample(None, q, c, None, None, None) for q, c in zip(question, context)]
        return SquadExample(None, question, context, None, None, None)

    def windows(self, options) -> tuple[int, int]:
        limit = min(self.tokenizer.model_max_length or self.config.max_sequence_length, self.config.max_sequence_length)
        # A max_seq_len above what the model reads is taken, as v4's: an input that fits is answered;
        # a window longer than the model is refused before the model (`check_lengths`).
        max_seq_len = options["max_seq_len"] or min(limit, 384)
        doc_stride = options["doc_stride"] if options["doc_stride"] is not None else min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise ValueError(f"doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len})")
        return max_seq_len, doc_stride

    def preprocess(self, example, options):
        if _is_squad_example(example):  # v4's SquadExample (or ours): its texts
            example = {"question": example.question_text, "context": example.context_text}
        if isinstance(example, dict) and ("question" not in example or "context" not in example):
            raise ChoiceError("You need to provide a dictionary with keys {question:..., context:...}")  # v4's
        if not isinstance(example, dict):
            raise ValueError('a question-answering example is a dict {"question": ..., "context": ...} or a SquadExample')
        question, context = _text("question", example["question"]), _text("context", example["context"])
        for name, text in (("question", question), ("context", context)):
            if not text:
                raise ValueError(f"`{name}` cannot be empty")  # v4's check: a context of spaces is read
        if not getattr(self.tokenizer, "is_fast", True) and not hasattr(self.tokenizer, "_call_fast_layout"):
            return self.squad_rows(question, context, options)
        if not getattr(self.tokenizer, "is_fast", True):
            cut = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            if len(cut) > options["max_question_len"]:
                question = question[: cut[options["max_question_len"] - 1][1]]
        max_seq_len, doc_stride = self.windows(options)
        encoding = self.encode(question, context, truncation="only_second", max_length=max_seq_len, stride=doc_stride,
                               return_overflowing_tokens=True, return_offsets_mapping=True)
        rows = []
        for w, ids in enumerate(encoding["input_ids"]):
            sequence = encoding.sequence_ids(w)
            # The answer is in the context, or is <s> (the null answer).
            allowed = np.array([s == 1 or t == self.tokenizer.bos_token_id for s, t in zip(sequence, ids)])
            rows.append(Row(input_ids=list(ids), allowed=allowed, encoding=encoding, window=w, context=context))
        return rows

    def squad_rows(self, question: str, context: str, options) -> list[Row]:
        """The windows of v4's slow-tokenizer path, for a tokenizer without offsets (a v4 slow
        tokenizer object): v4's own `squad_convert_examples_to_features` (transformers is there,
        the tokenizer is its), each window's padding left out (masked in v4: the same answers)."""
        try:
            from transformers.data.processors.squad import SquadExample as V4SquadExample
            from transformers.data.processors.squad import squad_convert_examples_to_features
            from transformers.tokenization_utils_base import PaddingStrategy
        except ImportError:  # transformers 5 has no SQuAD processors
            raise TypeError(
                f"question-answering needs a tokenizer that gives offsets (return_offsets_mapping): "
                f"{type(self.tokenizer).__name__} gives none, and the SQuAD preprocessing of transformers 4 "
                f"(what v4 runs for such a tokenizer) is not installed; use a fast tokenizer"
            ) from None

        max_seq_len, doc_stride = self.windows(options)
        example = V4SquadExample(None, question, context, None, None, None)
        features = squad_convert_examples_to_features(
            examples=[example], tokenizer=self.tokenizer, max_seq_length=max_seq_len, doc_stride=doc_stride,
            max_query_length=options["max_question_len"], padding_strategy=PaddingStrategy.MAX_LENGTH,
            is_training=False, tqdm_enabled=False)
        rows = []
        for feature in features:
            keep = [t for t, m in enumerate(feature.attention_mask) if m]
            allowed = np.array([feature.p_mask[t] == 0 for t in keep])
            rows.append(Row(input_ids=[feature.input_ids[t] for t in keep], allowed=allowed, example=example,
                            token_to_orig=[feature.token_to_orig_map.get(t) for t in keep], context=context))
        return rows

    def char_span(self, row: Row, s: int, e: int, align_to_words: bool) -> tuple[int, int]:
        encoding, w = row["encoding"], row["window"]
        if align_to_words:
            start_word, end_word = encoding.token_to_word(w, s), encoding.token_to_word(w, e)
            if start_word is not None and end_word is not None:
                start = encoding.word_to_chars(w, start_word, sequence_index=1)
                end = encoding.word_to_chars(w, end_word, sequence_index=1)
                if start is not None and end is not None:
                    return start[0], end[1]
        offsets = encoding["offset_mapping"][w]
        return offsets[s][0], offsets[e][1]

    def postprocess(self, example, rows, outputs, options):
        top_k = options["top_k"]
        pre_topk = top_k * 2 + 10 if options["align_to_words"] else top_k  # some spans merge once aligned to words
        min_null = 1000000.0
        answers: list[dict] = []
        for row, out in zip(rows, outputs):
            starts, ends, scores, min_null = pp.select_starts_ends(
                out["start_logits"], out["end_logits"], row["allowed"], min_null, pre_topk,
                options["handle_impossible_answer"], options["max_answer_len"])
            if "example" in row:  # v4's slow-tokenizer path: the context's whitespace-split words
                char_to_word, words = np.array(row["example"].char_to_word_offset), row["example"].doc_tokens
                for s, e, score in zip(starts, ends, scores):
                    first, last = row["token_to_orig"][int(s)], row["token_to_orig"][int(e)]
                    answers.append({"score": float(score), "start": np.where(char_to_word == first)[0][0].item(),
                                    "end": np.where(char_to_word == last)[0][-1].item(),
                                    "answer": " ".join(words[first:last + 1])})
                continue
            for s, e, score in zip(starts, ends, scores):
                start, end = self.char_span(row, int(s), int(e), options["align_to_words"])
                text = row["context"][start:end]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += float(score)  # v4 sums the scores of spans with the same text
                else:
                    answers.append({"score": float(score), "start": int(start), "end": int(end), "answer": text})
        if options["handle_impossible_answer"]:
            answers.append({"score": min_null, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


# ---------------------------------------------------------------------------- text-generation


# v4's `ReturnType` of text-generation, by value: what a record holds
_TENSORS, _NEW_TEXT, _FULL_TEXT = 0, 1, 2
# what v4's text-generation pipeline sets over the model's generation config (its
# `_default_generation_config`); the model's own non-default settings fill the fields left at v4's
# global defaults. v4's TensorFlow pipeline uses the model's generation config as it is.
_TEXT_GENERATION_DEFAULTS = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}


def _return_type(value: Any) -> int:
    value = getattr(value, "value", value)  # v4's ReturnType enum
    if isinstance(value, bool) or value not in (_TENSORS, _NEW_TEXT, _FULL_TEXT):
        raise ValueError(f"return_type must be 0 (tensors), 1 (new text) or 2 (full text), got {value!r}")
    return int(value)


class TextGenerationPipeline(Pipeline):
    """`text-generation` on a causal RoBERTa (`RobertaForCausalLM`, `is_decoder=True`): each prompt
    continued by the backend's `generate`, [{"generated_text": prompt + new text}] per prompt (a
    list of such lists for a list of prompts; `num_return_sequences` records each).
    `return_full_text=False` gives the new text only; `return_tensors=True` the ids
    ({"generated_token_ids": [...]}, prompt included). The prompt is tokenized as the tokenizer
    does by default (RoBERTa's `<s> ... </s>`, as v4), `prefix` put before it (and not returned);
    `stop_sequence` ends generation at its first token; `handle_long_generation="hole"` cuts the
    prompt's left so that the new tokens fit the model. Any other option goes to `generate`
    (`max_new_tokens`, `do_sample`, `temperature`, `top_k`, `top_p`, `num_return_sequences`,
    `generation_config`, ...). The settings start from v4's pipeline defaults (`max_new_tokens=256`,
    `do_sample=True`, `temperature=0.7`) over the model's generation config, which v4's TensorFlow
    pipeline uses as it is; `generation_config` holds them. Prompts run one at a time (v4's default)."""

    task, head = "text-generation", "causal_lm"
    defaults = {"return_type": None, "clean_up_tokenization_spaces": None, "prefix": None,
                "handle_long_generation": None, "stop_sequence": None, "truncation": None, "max_length": None,
                "continue_final_message": None, "skip_special_tokens": None, "tokenizer_encode_kwargs": None,
                "add_special_tokens": None, "padding": None}

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        from ..generation import GenerationConfig

        own = getattr(self.model, "generation_config", None) or GenerationConfig.from_model_config(self.config)
        settings = {k: v for k, v in own.to_dict().items() if not k.startswith("_")}
        if self.backend != "tf":
            # v4's PyTorch pipeline: its defaults win over the model's (they are never v4's global defaults)
            settings.update(_TEXT_GENERATION_DEFAULTS)
        # the construction's generate settings are the pipeline's (v4 updates its generation config with them)
        for key in list(self.options):
            if key not in self.defaults and key in settings:
                settings[key] = self.options.pop(key)
        if self.backend != "tf" and settings.get("max_new_tokens") == _TEXT_GENERATION_DEFAULTS["max_new_tokens"] \
                and settings.get("max_length") not in (None, 20):
            settings["max_new_tokens"] = None  # v4 honours a model's own max_length over its length default
        if settings.get("pad_token_id") is None and getattr(self.tokenizer, "pad_token_id", None) is not None:
            settings["pad_token_id"] = self.tokenizer.pad_token_id
        self.generation_config = GenerationConfig(**settings)
        self.prefix = getattr(self.config, "prefix", None)

    def sanitize(self, options):
        options = dict(options)
        full, tensors, text = (options.pop(k, None) for k in ("return_full_text", "return_tensors", "return_text"))
        return_type = options.get("return_type")
        if full is not None and return_type is None:  # v4's rules, at the place they are given together
            if text is not None:
                raise ValueError("`return_text` is mutually exclusive with `return_full_text`")
            if tensors is not None:
                raise ValueError("`return_full_text` is mutually exclusive with `return_tensors`")
            return_type = _FULL_TEXT if full else _NEW_TEXT
        if tensors is not None and return_type is None:
            if text is not None:
                raise ValueError("`return_text` is mutually exclusive with `return_tensors`")
            return_type = _TENSORS
        if return_type is not None:
            options["return_type"] = _return_type(return_type)
        if options.get("handle_long_generation") not in (None, "hole"):
            raise ValueError(f"{options['handle_long_generation']} is not a valid value for `handle_long_generation` "
                             "parameter expected [None, 'hole']")
        return {k: v for k, v in options.items() if not (k in self.defaults and v is None)}

    def check_options(self, options):
        generate = {k: v for k, v in options.items() if k not in self.defaults}  # v4 hands them to generate
        return {**super().check_options({k: v for k, v in options.items() if k in self.defaults}), **generate}

    def __call__(self, inputs, **options):
        first = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else None
        if isinstance(first, (dict, list, tuple)):  # v4's chat input: the tokenizer's chat template
            template = getattr(self.tokenizer, "chat_template", None)
            if not template:
                raise ValueError(
                    "Cannot use chat template functions because tokenizer.chat_template is not set and no template "
                    "argument was passed! For information about writing templates and setting the "
                    "tokenizer.chat_template attribute, please see the documentation at "
                    "https://huggingface.co/docs/transformers/main/en/chat_templating")
            raise NotImplementedError("text-generation of chats (a chat template) is not implemented")
        return super().__call__(inputs, **options)

    def run(self, items, options, batch_size=None):
        return [self.generate_one(_text("a text-generation prompt", item), options) for item in items]

    def encode_prompt(self, prompt: str, options) -> list[int]:
        kwargs = {k: options[k] for k in ("add_special_tokens", "truncation", "padding", "max_length") if options[k] is not None}
        kwargs.update(options["tokenizer_encode_kwargs"] or {})
        prefix = options["prefix"] if options["prefix"] is not None else (self.prefix or "")
        encoding = self.encode(prefix + prompt, **kwargs)
        ids = list(encoding["input_ids"])
        mask = encoding.get("attention_mask")
        return ids if mask is None else [i for i, m in zip(ids, mask) if m]

    def generate_settings(self, options) -> dict[str, Any]:
        """The `generate` keywords of one call: the options not the pipeline's, `max_length` (also
        the tokenizer's, as v4), `stop_sequence` as `eos_token_id`, the length that a `prefix` takes."""
        settings = {k: v for k, v in options.items() if k not in self.defaults}
        unknown = [k for k in settings if k not in self.generate_keywords()]
        if unknown:  # v4's generate refuses them so (a ValueError)
            raise ValueError(f"The following `model_kwargs` are not used by the model: {unknown} (note: typos in the "
                             "generate arguments will also show up in this list)")
        if options["max_length"] is not None:
            settings["max_length"] = options["max_length"]
        if options["stop_sequence"] is not None:
            settings["eos_token_id"] = self.tokenizer.encode(options["stop_sequence"], add_special_tokens=False)
        settings.setdefault("generation_config", self.generation_config)
        prefix = options["prefix"] if options["prefix"] is not None else self.prefix
        if prefix:
            length = len(self.tokenizer(prefix, add_special_tokens=bool(options["add_special_tokens"]))["input_ids"])
            config = settings["generation_config"]
            if "max_new_tokens" not in settings and getattr(config, "max_new_tokens", None) is None:
                settings["max_length"] = (settings.get("max_length") or getattr(config, "max_length", None) or 20) + length
            if "min_new_tokens" not in settings and "min_length" in settings:
                settings["min_length"] += length
        return settings

    def generate_keywords(self) -> set[str]:
        """The keywords `generate` takes: its own parameters and v4's generation settings."""
        import inspect

        from .. import generation

        named = {name for name, p in inspect.signature(self.model.generate).parameters.items()
                 if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        return named | set(generation._DEFAULTS) | set(generation._UNIMPLEMENTED) | set(generation._INERT) \
            | set(generation._IGNORED)

    def generate_one(self, prompt: str, options) -> list[dict]:
        ids = self.encode_prompt(prompt, options)
        settings = self.generate_settings(options)
        if options["handle_long_generation"] == "hole":
            if "max_new_tokens" in settings:
                new_tokens = settings["max_new_tokens"]
            else:
                new_tokens = settings.get("max_length", getattr(self.generation_config, "max_length", 20)) - len(ids)
                if new_tokens < 0:
                    raise ValueError("We cannot infer how many new tokens are expected")
            limit = self.tokenizer.model_max_length
            if len(ids) + new_tokens > limit:
                keep = limit - new_tokens
                if keep <= 0:
                    raise ValueError("We cannot use `hole` to handle this generation the number of desired tokens "
                                     "exceeds the models max length")
                ids = ids[-keep:]
        prompt_ids = ids
        if not ids:  # an empty prompt (no special tokens): v4's generate starts from the BOS token
            if self.generation_config.bos_token_id is None:
                raise ValueError("`bos_token_id` has to be defined when no `input_ids` are provided.")
            ids = [self.generation_config.bos_token_id]
        if len(ids) > self.config.max_sequence_length:
            raise ValueError(f"the prompt is {len(ids)} tokens long; this model reads at most "
                             f"{self.config.max_sequence_length} positions (use handle_long_generation=\"hole\")")
        array = np.asarray([ids], dtype=np.int64)
        tensors = [_framework_tensor(self.backend, a) for a in (array, np.ones_like(array))]
        if self.backend == "pt":  # on the model's device (v4's `device=`)
            tensors = [t.to(self.device) for t in tensors]
        output = self.model.generate(input_ids=tensors[0], attention_mask=tensors[1], **settings)
        sequences = getattr(output, "sequences", None)
        sequences = output if sequences is None else sequences
        sequences = np.asarray(sequences.cpu() if hasattr(sequences, "cpu") else sequences).tolist()
        return self.records(prompt, prompt_ids, sequences, options)

    def records(self, prompt: str, prompt_ids: list[int], sequences: list[list[int]], options) -> list[dict]:
        return_type = _FULL_TEXT if options["return_type"] is None else options["return_type"]
        skip = True if options["skip_special_tokens"] is None else options["skip_special_tokens"]
        clean = True if options["clean_up_tokenization_spaces"] is None else options["clean_up_tokenization_spaces"]
        if return_type == _TENSORS:
            return [{"generated_token_ids": [int(i) for i in sequence]} for sequence in sequences]
        # v4: the decoded prompt's characters are cut from the decoded sequence (prefix included)
        cut = len(self.tokenizer.decode(prompt_ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean)) \
            if prompt_ids else 0
        out = []
        for sequence in sequences:
            text = self.tokenizer.decode(sequence, skip_special_tokens=skip, clean_up_tokenization_spaces=clean)[cut:]
            out.append({"generated_text": prompt + text if return_type == _FULL_TEXT else text})
        return out


# ---------------------------------------------------------------------------- multiple-choice


class MultipleChoicePipeline(Pipeline):
    """`multiple-choice` (no v4 pipeline): {"question" (or "text"), "choices": [...]} to
    {"scores": softmax over the choices, in their order, "best": index of the best, "choice": its
    text}. Each choice is read as the pair (question, choice), all of an example in one forward
    (1, choices, T)."""

    task, head = "multiple-choice", "multiple_choice"
    defaults: dict[str, Any] = {}

    def preprocess(self, item, options):
        if not isinstance(item, dict) or "choices" not in item or ("question" in item) == ("text" in item):
            raise ValueError('a multiple-choice input is {"question" (or "text"): ..., "choices": [...]}')
        question = _text("question", item.get("question", item.get("text")))
        choices = item["choices"]
        if isinstance(choices, str) or not isinstance(choices, (list, tuple)) or len(choices) < 1:
            raise ValueError("choices must be a non-empty list of texts")
        return [Row(input_ids=self.encode(question, _text("a choice", c))["input_ids"]) for c in choices]

    def forward(self, rows, batch_size):
        raise AssertionError("multiple-choice runs each example whole (see run)")

    def run(self, items, options, batch_size=None):
        results = []
        for item in items:
            rows = self.preprocess(item, options)
            length = max(len(r["input_ids"]) for r in rows)
            if length > self.config.max_sequence_length:
                raise ValueError(f"a choice is {length} tokens long with its question; this model reads at most {self.config.max_sequence_length}")
            ids = np.full((1, len(rows), length), self.config.pad_token_id, dtype=np.int64)
            mask = np.zeros_like(ids)
            for c, r in enumerate(rows):
                ids[0, c, : len(r["input_ids"])] = r["input_ids"]
                mask[0, c, : len(r["input_ids"])] = 1
            logits = runtime.run_model(self.backend, self.model, {"input_ids": ids, "attention_mask": mask})["logits"][0]
            scores = pp.softmax(logits)
            best = int(scores.argmax())
            results.append({"scores": scores.tolist(), "best": best, "choice": item["choices"][best]})
        return results


# ---------------------------------------------------------------------------- feature-extraction


def _framework_tensor(backend: str, array: np.ndarray) -> Any:
    """`array` as the backend's framework tensor (torch, TensorFlow, JAX)."""
    if backend == "pt":
        import torch

        return torch.from_numpy(array)
    if backend == "tf":
        import tensorflow as tf

        return tf.convert_to_tensor(array)
    import jax.numpy as jnp

    return jnp.asarray(array)


class FeatureExtractionPipeline(Pipeline):
    """`feature-extraction`: the last hidden states of a text as nested lists (1, T, H), v4's shape;
    `return_tensors=True` gives them as the backend's tensor (torch, TensorFlow or JAX). With
    `batch_size` > 1 given, v4's layout: texts run in input order, `batch_size` at a time, padded
    on the tokenizer's `padding_side`, and each text's features keep its batch's padded length
    (the states of the padding positions included). With `pooling` (cls|mean|max|mean_sqrt_len)
    one vector (H,) instead, unit length if `normalize`."""

    task, head = "feature-extraction", "model"
    defaults = {"tokenize_kwargs": None, "pooling": None, "normalize": False, "truncation": None, "return_tensors": False}
    token_fields = ("last_hidden_state",)
    ignores_unknown_options = True

    def __call__(self, inputs, *args, **options):
        if args:  # v4's feature-extraction passes them to its base, which logs and ignores them
            logger.warning(f"Ignoring args : {args}")
        return super().__call__(inputs, **options)

    def sanitize(self, options):
        if options.get("truncation") is not None and "truncation" in (options.get("tokenize_kwargs") or {}):
            raise ValueError("truncation parameter defined twice (given as keyword argument as well as in tokenize_kwargs)")
        return options

    def check_options(self, options):
        options = super().check_options(options)
        if options["pooling"] is not None and options["pooling"] not in pp.POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(pp.POOLINGS)} or None, got {options['pooling']!r}")
        if options["normalize"] and options["pooling"] is None:
            raise ValueError("normalize=True needs a pooling (cls, mean, max or mean_sqrt_len)")
        return options

    def preprocess(self, text, options):
        kwargs = dict(options["tokenize_kwargs"] or {})
        if options["truncation"] is not None:
            kwargs["truncation"] = options["truncation"]
        if kwargs.get("truncation") and "max_length" not in kwargs:
            kwargs["max_length"] = min(self.tokenizer.model_max_length or self.config.max_sequence_length,
                                       self.config.max_sequence_length)
        encoding = self.encode(_text("a feature-extraction input", text), **kwargs)
        row = Row(input_ids=list(encoding["input_ids"]))
        mask = encoding.get("attention_mask")
        if mask is not None and not all(mask):
            # Padding asked of the tokenizer: masked in the model and kept in the output, as v4's
            # (its features are as long as the padded encoding).
            row["attention_mask"] = list(mask)
        return [row]

    def run(self, items, options, batch_size=None):
        if options["pooling"] is not None or not batch_size or batch_size == 1:
            return super().run(items, options, batch_size)
        results = []
        for k in range(0, len(items), batch_size):  # v4's batches: in input order, padded, padding kept
            chunk = items[k:k + batch_size]
            rows = [self.preprocess(text, options)[0] for text in chunk]
            self.check_lengths(rows)
            ids, mask = self.pad([row["input_ids"] for row in rows], side=getattr(self.tokenizer, "padding_side", "right"),
                                 masks=[row.get("attention_mask") for row in rows])
            hidden = runtime.run_model(self.backend, self.model, {"input_ids": ids, "attention_mask": mask})["last_hidden_state"]
            results += [self.postprocess(text, None, [{"last_hidden_state": h}], options) for text, h in zip(chunk, hidden)]
        return results

    def postprocess(self, text, rows, outputs, options):
        hidden = outputs[0]["last_hidden_state"]  # (T, H), the row's own tokens (or its padded batch's)
        if options["pooling"] is None:
            return _framework_tensor(self.backend, hidden[None]) if options["return_tensors"] else hidden[None].tolist()
        vector = pp.pool(hidden, np.ones(hidden.shape[0]), options["pooling"])
        if options["normalize"]:
            vector = vector / max(np.linalg.norm(vector), 1e-12)  # sentence-transformers' Normalize (F.normalize)
        return vector.astype(np.float32).tolist()


_POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                  "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len"}


def sentence_transformers_layout(path: str | os.PathLike) -> dict[str, Any]:
    """What a sentence-transformers folder says about its vectors: {"model_path" (the
    Transformer module's folder), "pooling", "normalize", "max_seq_length"}; {} without
    `modules.json`. Several pooling modes at once (concatenated vectors) are refused."""
    path = Path(path)
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return {}
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{modules_file}: not valid JSON ({e})") from None
    layout: dict[str, Any] = {"model_path": path, "normalize": False}
    for module in modules if isinstance(modules, list) else []:
        kind, folder = str(module.get("type", "")), path / str(module.get("path", ""))
        if kind.endswith(".Transformer"):
            layout["model_path"] = folder
            for name in ("sentence_bert_config.json",):
                if (folder / name).is_file():
                    layout["max_seq_length"] = json.loads((folder / name).read_text()).get("max_seq_length")
        elif kind.endswith(".Pooling"):
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            modes = [mode for key, mode in _POOLING_MODES.items() if config.get(key)]
            if len(modes) != 1:
                raise ValueError(f"{folder / 'config.json'}: one pooling mode is supported ({', '.join(_POOLING_MODES)}), found {modes or 'none'}")
            layout["pooling"] = modes[0]
        elif kind.endswith(".Normalize"):
            layout["normalize"] = True
        elif kind:
            raise ValueError(f"{modules_file}: module {kind} is not supported (Transformer, Pooling, Normalize are)")
    return layout


class SentenceEmbeddingPipeline(FeatureExtractionPipeline):
    """`sentence-embeddings`: one vector per text. Pooling and normalisation come from a
    sentence-transformers folder (`modules.json`, `1_Pooling/config.json`, a `Normalize` module)
    when the checkpoint is one, else mean pooling; either can be given as an option."""

    task = "sentence-embeddings"
    ignores_unknown_options = False  # ours: an unknown option is refused

    def __init__(self, model, **kwargs):
        self.layout = sentence_transformers_layout(model) if isinstance(model, (str, os.PathLike)) else {}
        if self.layout:
            model = self.layout["model_path"]
            kwargs.setdefault("pooling", self.layout.get("pooling", "mean"))
            kwargs.setdefault("normalize", self.layout["normalize"])
            if self.layout.get("max_seq_length"):
                kwargs.setdefault("truncation", True)
        kwargs.setdefault("pooling", "mean")
        super().__init__(model, **kwargs)

    def preprocess(self, text, options):
        if self.layout.get("max_seq_length") and options["truncation"] and not (options["tokenize_kwargs"] or {}).get("max_length"):
            options = {**options, "tokenize_kwargs": {**(options["tokenize_kwargs"] or {}),
                                                      "max_length": min(self.layout["max_seq_length"], self.config.max_sequence_length)}}
        return super().preprocess(text, options)
