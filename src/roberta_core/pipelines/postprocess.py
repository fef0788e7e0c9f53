"""The pipelines' post-processing as pure NumPy functions on logits: what turns a model's output
into v4's answers (`transformers` 4.57.6 `pipelines/*.py`, rule for rule), kept apart from the
model and the tokenizer so the tests can feed crafted logits and check each rule by hand."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "softmax", "sigmoid", "top_k", "classification_scores", "AGGREGATIONS", "aggregate", "group_entities",
    "aggregate_overlapping_entities", "select_starts_ends", "decode_spans", "pool", "entailment_id",
    "zero_shot_scores",
]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along `axis` as v4 computes it: in float32 (the models' logits; float16/bfloat16
    are widened to float32 first, float64 stays float64), the max subtracted first. Ties, such as
    two probabilities that round to the same float32, break as v4's do."""
    x = _float32(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """`1 / (1 + exp(-x))` in float32, as v4's (a logit above ~17 saturates to exactly 1.0)."""
    return 1.0 / (1.0 + np.exp(-_float32(x)))


def _float32(x: Any) -> np.ndarray:
    """`x` as an array of v4's precision: float32, unless it already is float64 (crafted logits)."""
    x = np.asarray(x)
    return x if x.dtype == np.float64 else x.astype(np.float32)


FUNCTIONS = ("softmax", "sigmoid", "none")


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """The indices of the `k` largest of `values` (1-D), largest first, ties in index order:
    `np.argsort(-values, kind="stable")[:k]` without sorting all of them (a full sort of a
    50,265-token distribution took 5 ms a mask)."""
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k >= values.size:
        return np.argsort(-values, kind="stable")
    kth = np.partition(values, values.size - k)[values.size - k]  # the k-th largest value
    candidates = np.flatnonzero(values >= kth)  # in index order; ties at the k-th value included
    return candidates[np.argsort(-values[candidates], kind="stable")[:k]]


def default_function(problem_type: str | None, num_labels: int) -> str:
    """v4's `function_to_apply` when none is given: none for regression, sigmoid for multi-label
    or a single label, else softmax."""
    if problem_type == "regression":
        return "none"
    if problem_type == "multi_label_classification" or num_labels == 1:
        return "sigmoid"
    return "softmax"


def classification_scores(logits: np.ndarray, function_to_apply: str) -> np.ndarray:
    """Scores (num_labels,) from one row of logits by `function_to_apply` (softmax|sigmoid|none)."""
    if function_to_apply == "softmax":
        return softmax(logits)
    if function_to_apply == "sigmoid":
        return sigmoid(logits)
    if function_to_apply == "none":
        return _float32(logits)
    raise ValueError(f"function_to_apply must be one of {', '.join(FUNCTIONS)}, got {function_to_apply!r}")


# ---------------------------------------------------------------------------- zero-shot classification


def entailment_id(label2id: dict[str, int]) -> int:
    """The id of the first label (in `label2id`'s order) whose lowercase name starts with "entail",
    -1 when none does (v4's `ZeroShotClassificationPipeline.entailment_id`)."""
    for label, index in label2id.items():
        if label.lower().startswith("entail"):
            return index
    return -1


def _v4_softmax(x: np.ndarray) -> np.ndarray:
    """v4's zero-shot softmax, `exp(x) / exp(x).sum(-1)` in float32 without subtracting the max
    (so float32 rounding, and ties, are v4's); where an exponential overflows (a logit above
    ~88, where v4 gives nan) the max is subtracted first."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        out = e / e.sum(-1, keepdims=True)
    if not np.isfinite(out).all():
        return softmax(x)
    return out


def zero_shot_scores(logits: np.ndarray, entailment: int, multi_label: bool) -> tuple[np.ndarray, np.ndarray]:
    """One sequence's scores and order from its (candidate labels, num_labels) NLI logits, as v4's
    zero-shot postprocess: with one label or `multi_label`, each label's softmax over its
    [contradiction, entailment] logits (contradiction the id 0, or the last id when entailment is
    0; `entailment` -1 reads the last column, as v4's indexing), else the softmax of the
    entailment logits over the labels. Returns (scores in label order (float32), the labels'
    indices best first: v4's `reversed(scores.argsort())`, so equal scores come last label first)."""
    logits = _float32(logits)
    if multi_label or logits.shape[0] == 1:
        contradiction = -1 if entailment == 0 else 0
        scores = _v4_softmax(logits[:, [contradiction, entailment]])[:, 1]
    else:
        scores = _v4_softmax(logits[:, entailment])
    return scores, np.asarray(list(reversed(scores.argsort())), dtype=np.int64)


# ---------------------------------------------------------------------------- token classification

AGGREGATIONS = ("none", "simple", "first", "average", "max")


def _entity(id2label, scores: np.ndarray, **fields) -> dict:
    # the score stays a NumPy scalar of the scores' dtype (float32 from the model, as v4's), so
    # that group means and the overlap comparison round as v4's do
    i = int(scores.argmax())
    return {"entity": id2label[i], "score": scores[i], **fields}


def aggregate(pre_entities: Sequence[dict], strategy: str, id2label: dict[int, str],
              tokens_to_string: Callable[[list[str]], str]) -> list[dict]:
    """v4's `TokenClassificationPipeline.aggregate`: `pre_entities` are the non-special tokens in
    order, each {"word" (the token), "scores" (num_labels,) probabilities, "start", "end", "index",
    "is_subword"}. `none` gives one entity per token ({"entity", "score", "index", "word", "start",
    "end"}); `simple` groups adjacent tokens with the same tag; `first`/`average`/`max` first fold
    each word's tokens into one (the first token's label, the mean scores' best label, or the label
    of the token with the highest score) and then group the words."""
    if strategy not in AGGREGATIONS:
        raise ValueError(f"aggregation_strategy must be one of {', '.join(AGGREGATIONS)}, got {strategy!r}")
    if strategy in ("none", "simple"):
        entities = [_entity(id2label, p["scores"], index=p["index"], word=p["word"], start=p["start"], end=p["end"])
                    for p in pre_entities]
        return entities if strategy == "none" else group_entities(entities, tokens_to_string)
    words: list[list[dict]] = []
    for p in pre_entities:
        if words and p["is_subword"]:
            words[-1].append(p)
        else:
            words.append([p])
    entities = []
    for group in words:
        if strategy == "first":
            scores = group[0]["scores"]
        elif strategy == "max":
            scores = max(group, key=lambda p: p["scores"].max())["scores"]  # the first of equal maxima, as v4's max()
        else:
            scores = np.nanmean(np.stack([p["scores"] for p in group]), axis=0)
        tokens = [p["word"] for p in group]
        entities.append(_entity(id2label, scores, word=tokens_to_string(tokens), start=group[0]["start"],
                                end=group[-1]["end"], tokens=tokens))
    return group_entities(entities, tokens_to_string)


def _tag(label: str) -> tuple[str, str]:
    """("B" | "I", the entity type): a label without a B-/I- prefix counts as I- of itself."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def group_entities(entities: Sequence[dict], tokens_to_string: Callable[[list[str]], str]) -> list[dict]:
    """Adjacent entities of the same type join one {"entity_group", "score" (their mean), "word",
    "start", "end"}; a B- label starts a new group. "word" is the text of the group's tokens (an
    entity's "tokens" when it has them, a word of several tokens; else its "word")."""
    groups: list[list[dict]] = []
    for entity in entities:
        if groups:
            bi, tag = _tag(entity["entity"])
            if tag == _tag(groups[-1][-1]["entity"])[1] and bi != "B":
                groups[-1].append(entity)
                continue
        groups.append([entity])
    return [{
        "entity_group": group[0]["entity"].split("-", 1)[-1],
        "score": np.nanmean([e["score"] for e in group]),  # float32 for float32 scores, as v4's
        # the group's text from all its tokens at once: a SentencePiece word's leading `▁` (its space)
        # is only read as a space inside a longer run of tokens (byte-level BPE gives the same either way).
        # v4 decodes first/average/max words twice, garbling non-ASCII ("José" -> "Jos�"): we differ on purpose.
        "word": tokens_to_string([t for e in group for t in e.get("tokens", [e["word"]])]),
        "start": group[0]["start"], "end": group[-1]["end"],
    } for group in groups]


def aggregate_overlapping_entities(entities: list[dict]) -> list[dict]:
    """Entities from overlapping windows (`stride`): of those whose start falls inside the previous
    one, the longer (then the higher-scoring) is kept, as v4 does."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda x: x["start"])
    kept, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            kept.append(previous)
            previous = entity
    kept.append(previous)
    return kept


# ---------------------------------------------------------------------------- question answering


def decode_spans(start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int,
                 allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `topk` best spans (start <= end < start + max_answer_len) of one window by the product
    start probability × end probability, both ends among the `allowed` tokens (T,) bool: token
    starts, ends and scores, best first (v4's `decode_spans`, which picks the top k before
    dropping spans that touch a disallowed token, so fewer than `topk` may come back)."""
    outer = np.outer(start, end)
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.ravel()
    if topk == 1:
        order = np.array([np.argmax(flat)])
    elif flat.size < topk:
        order = np.argsort(-flat, kind="stable")
    else:
        idx = np.argpartition(-flat, topk)[:topk]
        order = idx[np.argsort(-flat[idx], kind="stable")]
    starts, ends = np.unravel_index(order, candidates.shape)
    ok = allowed[starts] & allowed[ends]
    return starts[ok], ends[ok], candidates[starts[ok], ends[ok]]


def select_starts_ends(start_logits: np.ndarray, end_logits: np.ndarray, allowed: np.ndarray,
                       min_null_score: float, top_k: int, handle_impossible_answer: bool,
                       max_answer_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One window (T,) of logits to candidate spans, as v4's `select_starts_ends`: the disallowed
    tokens (not context, not `<s>`, padding) get -10000, both ends are softmaxed over the window,
    the null answer scores start[0] × end[0] (kept as the minimum over windows when
    `handle_impossible_answer`), and then `<s>` is excluded from spans."""
    start = softmax(np.where(allowed, start_logits, -10000.0))
    end = softmax(np.where(allowed, end_logits, -10000.0))
    if handle_impossible_answer:
        min_null_score = min(min_null_score, float(start[0] * end[0]))
    start[0] = end[0] = 0.0
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, allowed)
    return starts, ends, scores, min_null_score


# ---------------------------------------------------------------------------- sentence embeddings

POOLINGS = ("cls", "mean", "max", "mean_sqrt_len")


def pool(hidden: np.ndarray, attention_mask: np.ndarray, mode: str) -> np.ndarray:
    """One vector (H,) from token states (T, H) over the real tokens (`attention_mask` (T,)):
    the first token's (`cls`), the mean, the per-feature maximum, or the sum over √length
    (sentence-transformers' `mean_sqrt_len_tokens`)."""
    hidden = np.asarray(hidden, dtype=np.float64)
    mask = np.asarray(attention_mask).astype(bool)
    if mode == "cls":
        return hidden[0]
    if mode == "max":
        return hidden[mask].max(axis=0)
    if mode == "mean":
        return hidden[mask].mean(axis=0)
    if mode == "mean_sqrt_len":
        return hidden[mask].sum(axis=0) / np.sqrt(mask.sum())
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {mode!r}")


def to_python(value: Any) -> Any:
    """NumPy scalars and arrays as Python floats, ints and nested lists (JSON-ready, as v4 gives)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
