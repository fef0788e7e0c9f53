"""The task metrics (`roberta_core.pipelines.metrics`, issue 16) on hand-computed cases, and the
entity scores against `seqeval` (the reference library) on random tag sequences."""

from __future__ import annotations

import numpy as np
import pytest

from roberta_core.pipelines import metrics as m


def test_squad_exact_match_and_f1_by_hand():
    assert m.normalize_answer("The  Eiffel, Tower!") == "eiffel tower"
    # "eiffel tower" vs "tower in paris": 1 common token; P = 1/2, R = 1/3, F1 = 0.4.
    assert m.squad_f1("the Eiffel Tower", "tower in Paris") == pytest.approx(0.4)
    result = m.squad(["Eiffel tower", "Paris", "London"], [["the Eiffel Tower"], ["in Paris", "Paris"], ["Rome"]])
    assert (result["exact_match"], result["f1"], result["HasAns_total"]) == (pytest.approx(200 / 3),) * 2 + (3,)
    assert not any(k.startswith(("NoAns", "no_answer")) for k in result)  # no unanswerable example
    # v2, by the official SQuAD v2 script's rules: [] is unanswerable, [""] answerable (a gold is
    # listed) though scored as ''; a no-answer probability above the threshold answers '': right
    # on example 1 (unanswerable), wrong on example 2 (answerable); example 3 right.
    v2 = m.squad(["", "Paris", "Rome"], [[], [""], ["Rome"]], no_answer_probs=[0.9, 0.8, 0.1], threshold=0.5)
    assert v2["exact_match"] == v2["exact"] == pytest.approx(200 / 3) and v2["f1"] == pytest.approx(200 / 3)
    assert (v2["HasAns_exact"], v2["HasAns_total"], v2["NoAns_exact"], v2["NoAns_total"], v2["total"]) == (50, 2, 100, 1, 3)
    assert v2["no_answer_exact_match"] == 100.0 and v2["has_answer_f1"] == 50.0
    # the best threshold: raw scores (1, 0, 1) walked by probability (0.1, 0.8, 0.9) from 1 (all
    # answered ''): example 3 makes 2 at 0.1, example 2 adds 0, example 1 ('' predicted) 0
    assert (v2["best_exact"], v2["best_exact_thresh"]) == (pytest.approx(200 / 3), 0.1)
    assert (v2["best_f1"], v2["best_f1_thresh"]) == (pytest.approx(200 / 3), 0.1)
    # without probabilities the script takes them all 0: the best is the plain score at threshold 0
    plain = m.squad(["x", "Rome"], [[], ["Rome"]])
    assert (plain["exact"], plain["best_exact"], plain["best_exact_thresh"]) == (50.0, 50.0, 0.0)
    assert m.squad(["x"], [[]])["exact_match"] == 0.0
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        m.squad(["a", "b"], [["a"]])


def test_entities_by_hand():
    assert m.entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    # IOB1-style I- opens an entity; a change of type closes one; B- after I- of a type splits.
    assert m.entities(["I-PER", "I-LOC", "B-LOC", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1), ("LOC", 2, 3)]
    scores = m.entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]])
    # gold {PER 0-1, LOC 3}, predicted {PER 0, LOC 3}: 1 of 2 right each way.
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.5, 0.5, 0.5)
    assert scores["per_type"]["LOC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    # The 71% do-nothing baseline of token accuracy is 0 here.
    assert m.entity_scores([["B-PER", "O", "O"]], [["O", "O", "O"]])["f1"] == 0.0
    with pytest.raises(ValueError, match="tag 'X-PER' is not O or B-/I-/E-/S-"):
        m.entities(["X-PER"])


def test_entity_scores_agree_with_seqeval_on_random_tags():
    seqeval = pytest.importorskip("seqeval.metrics")
    from seqeval.metrics.sequence_labeling import get_entities

    rng = np.random.default_rng(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-PER"]
    gold = [[tags[i] for i in rng.integers(0, 7, rng.integers(1, 12))] for _ in range(60)]
    pred = [[t if rng.random() < 0.6 else tags[rng.integers(0, 7)] for t in s] for s in gold]
    for sentence in gold + pred:
        assert m.entities(sentence) == [tuple(e) for e in get_entities(sentence)], sentence
    ours = m.entity_scores(gold, pred)
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, pred))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, pred))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, pred))


def test_classification_metrics_by_hand():
    y, p = [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0]
    assert m.accuracy(y, p) == pytest.approx(4 / 6)
    assert m.f1(y, p) == pytest.approx(2 / 3)  # tp 2, fp 1, fn 1
    assert m.f1(y, p, average="macro") == pytest.approx(2 / 3)
    # Binary MCC = (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (4 - 1) / 9.
    assert m.matthews(y, p) == pytest.approx(3 / 9)
    assert m.matthews([0, 0, 1], [0, 0, 0]) == 0.0
    assert m.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    # constant predictions have no correlation: NaN, as scipy.stats.pearsonr/spearmanr give it
    assert np.isnan(m.pearson([1, 2, 3], [5, 5, 5])) and np.isnan(m.spearman([1, 2, 3], [5, 5, 5]))
    assert m.spearman([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(1.0)
    # Ties take their mean rank: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4).
    r = np.array([1, 2.5, 2.5, 4]) - 2.5
    assert m.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx((r @ (np.arange(1, 5) - 2.5)) / np.sqrt((r @ r) * 5))
    with pytest.raises(ValueError, match="same non-empty shape"):
        m.accuracy([1], [1, 0])
