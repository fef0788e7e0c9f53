"""The tasks' standard evaluation metrics, in NumPy: SQuAD v1/v2 exact match and F1 (the official
scripts' normalisation), entity-level precision/recall/F1 on BIO/IOB2 (and IOBES) tags as
`conlleval` and `seqeval` count them, and sequence-classification accuracy, F1, Matthews
correlation, Pearson and Spearman."""

from __future__ import annotations

import collections
import re
import string
from typing import Iterable, Sequence

import numpy as np

__all__ = ["normalize_answer", "squad_exact", "squad_f1", "squad", "entities", "entity_scores",
           "accuracy", "f1", "matthews", "pearson", "spearman"]


# ---------------------------------------------------------------------------- SQuAD


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles (a, an, the), single spaces: the official SQuAD
    scripts' normalisation."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised texts; an empty side (no answer) scores 1 only against
    another empty side (the v2 script's rule)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad(predictions: Sequence[str], references: Sequence[Sequence[str]], *,
          no_answer_probs: Sequence[float] | None = None, threshold: float = 1.0) -> dict[str, float]:
    """{"exact_match", "f1"} in percent over the examples, each the best over its gold answers
    (`references[i]`, a list; an empty list means no answer, SQuAD v2; golds that normalise to
    nothing, such as [""] or ["the"], score as '' but count as answerable, as in the official
    script). With
    `no_answer_probs`, a prediction whose probability of no answer is above `threshold` counts as
    the empty answer (v2's threshold: right where the question has no answer, wrong where it has
    one). With unanswerable examples the split scores are added: "has_answer_exact_match"/
    "has_answer_f1" and "no_answer_exact_match"/"no_answer_f1".

    Also the keys of the official SQuAD v2 script, as v4's `squad_evaluate` and `evaluate`'s
    squad_v2 return them: "exact", "f1", "total", "HasAns_exact"/"_f1"/"_total" and
    "NoAns_..." (for the examples of each kind there are), "best_exact"/"best_exact_thresh" and
    "best_f1"/"best_f1_thresh" (the best score any threshold on the no-answer probabilities would
    give, and that threshold; the probabilities 0 when not given, as the script takes them)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references; give one per example")
    if no_answer_probs is not None and len(no_answer_probs) != len(predictions):
        raise ValueError(f"{len(no_answer_probs)} no-answer probabilities for {len(predictions)} predictions")
    if not predictions:
        raise ValueError("no examples to score")
    raw_exact, raw_f1, answerable = [], [], []
    for golds in references:
        if isinstance(golds, str):
            raise TypeError("each reference is a list of gold answers (an empty list for no answer)")
    for prediction, golds in zip(predictions, references):
        # answerable: any gold listed (the official script's `bool(answers)`); scored against the
        # golds that normalise to something, else against '' (its rule)
        answerable.append(len(golds) > 0)
        golds = [g for g in golds if normalize_answer(g)] or [""]
        raw_exact.append(max(squad_exact(prediction, g) for g in golds))
        raw_f1.append(max(squad_f1(prediction, g) for g in golds))
    mask = np.array(answerable)
    exact, f1s = np.array(raw_exact), np.array(raw_f1)
    if no_answer_probs is not None:
        said_none = np.asarray(no_answer_probs, dtype=np.float64) > threshold
        exact = np.where(said_none, (~mask).astype(float), exact)
        f1s = np.where(said_none, (~mask).astype(float), f1s)
    result = {"exact_match": 100.0 * exact.mean(), "f1": 100.0 * f1s.mean()}
    if not mask.all():
        for name, keep in (("has_answer", mask), ("no_answer", ~mask)):
            if keep.any():
                result[f"{name}_exact_match"] = 100.0 * exact[keep].mean()
                result[f"{name}_f1"] = 100.0 * f1s[keep].mean()
    result.update(exact=result["exact_match"], total=len(predictions))
    for name, keep in (("HasAns", mask), ("NoAns", ~mask)):
        if keep.any():
            result.update({f"{name}_exact": 100.0 * exact[keep].mean(), f"{name}_f1": 100.0 * f1s[keep].mean(),
                           f"{name}_total": int(keep.sum())})
    probs = [0.0] * len(predictions) if no_answer_probs is None else no_answer_probs  # the script's default
    for key, raw in (("exact", raw_exact), ("f1", raw_f1)):
        result[f"best_{key}"], result[f"best_{key}_thresh"] = _best_threshold(predictions, raw, probs, answerable)
    return {k: v if isinstance(v, int) else float(v) for k, v in result.items()}


def _best_threshold(predictions, scores, no_answer_probs, answerable) -> tuple[float, float]:
    """(best score in percent, its threshold): the official SQuAD v2 search. With the threshold
    just at or above an example's no-answer probability, that example and every one below it are
    answered by their predictions and the others by ''; walked in the order of the probabilities."""
    current = best = sum(1 for a in answerable if not a)  # every question answered '' (threshold below all)
    best_threshold = 0.0
    for n in sorted(range(len(scores)), key=lambda k: no_answer_probs[k]):
        if answerable[n]:
            current += scores[n]
        else:
            current -= 1 if predictions[n] else 0
        if current > best:
            best, best_threshold = current, no_answer_probs[n]
    return 100.0 * best / len(scores), float(best_threshold)


# ---------------------------------------------------------------------------- entities


def _split(tag: str) -> tuple[str, str]:
    """("B"|"I"|"E"|"S"|"O", type) of a tag such as "B-PER"; a bare "O" has no type."""
    if tag == "O":
        return "O", ""
    prefix, _, kind = tag.partition("-")
    if prefix not in ("B", "I", "E", "S") or not kind:
        raise ValueError(f"tag {tag!r} is not O or B-/I-/E-/S- followed by a type")
    return prefix, kind


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities (type, first, last) of one tag sequence, by conlleval's chunk rules: an
    entity starts at B-/S-, or at an I-/E- that does not continue one of its type; it ends before
    O, B-, S-, a change of type, or after E-/S-."""
    found, open_kind, begin = [], None, 0
    previous = "O"
    for i, tag in enumerate([*tags, "O"]):
        prefix, kind = _split(tag)
        continues = (open_kind is not None and kind == open_kind and prefix in ("I", "E")
                     and previous not in ("E", "S"))
        if open_kind is not None and not continues:
            found.append((open_kind, begin, i - 1))
            open_kind = None
        if prefix != "O" and open_kind is None:
            open_kind, begin = kind, i
        previous = prefix
    return found


def entity_scores(references: Iterable[Sequence[str]], predictions: Iterable[Sequence[str]]) -> dict:
    """Entity-level micro precision, recall and F1 over sentences of tags (an entity counts when
    its type and both ends match), with the same per type: {"precision", "recall", "f1",
    "per_type": {type: {"precision", "recall", "f1", "support"}}}."""
    gold, pred = set(), set()
    for n, (ref, hyp) in enumerate(zip(references, predictions, strict=True)):
        if len(ref) != len(hyp):
            raise ValueError(f"sentence {n}: {len(ref)} gold tags but {len(hyp)} predicted; give one per token")
        gold |= {(n, *e) for e in entities(ref)}
        pred |= {(n, *e) for e in entities(hyp)}

    def prf(g: set, p: set) -> dict:
        hit = len(g & p)
        precision = hit / len(p) if p else 0.0
        recall = hit / len(g) if g else 0.0
        return {"precision": precision, "recall": recall,
                "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}

    kinds = sorted({e[1] for e in gold | pred})
    per_type = {k: {**prf({e for e in gold if e[1] == k}, {e for e in pred if e[1] == k}),
                    "support": sum(e[1] == k for e in gold)} for k in kinds}
    return {**prf(gold, pred), "per_type": per_type}


# ---------------------------------------------------------------------------- sequence classification


def accuracy(labels, predictions) -> float:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.size == 0:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be the same non-empty shape")
    return float((labels == predictions).mean())


def f1(labels, predictions, *, average: str = "binary", positive=1) -> float:
    """F1 of the `positive` class (`binary`) or the unweighted mean over the classes (`macro`)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    accuracy(labels, predictions)  # the shape check

    def one(c) -> float:
        tp = np.sum((predictions == c) & (labels == c))
        fp, fn = np.sum((predictions == c) & (labels != c)), np.sum((predictions != c) & (labels == c))
        return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0
    if average == "binary":
        return one(positive)
    if average == "macro":
        return float(np.mean([one(c) for c in np.union1d(labels, predictions)]))
    raise ValueError(f"average must be binary or macro, got {average!r}")


def matthews(labels, predictions) -> float:
    """Matthews correlation for any number of classes (Gorodkin's R_K); 0 when undefined."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    accuracy(labels, predictions)
    classes = np.union1d(labels, predictions)
    c = np.array([[np.sum((labels == a) & (predictions == b)) for b in classes] for a in classes], dtype=np.float64)
    t, p, s = c.sum(axis=1), c.sum(axis=0), c.sum()
    correct = np.trace(c)
    denominator = np.sqrt((s * s - p @ p) * (s * s - t @ t))
    return float((correct * s - t @ p) / denominator) if denominator else 0.0


def pearson(x, y) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < 2:
        raise ValueError("pearson needs two sequences of the same length, at least 2")
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    # a constant sequence has no correlation: NaN, as scipy (and so v4's glue_compute_metrics) gives it
    return float((x * y).sum() / denominator) if denominator else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their mean rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation: Pearson's on the ranks (ties at their mean rank)."""
    return pearson(_ranks(np.asarray(x, dtype=np.float64)), _ranks(np.asarray(y, dtype=np.float64)))
