"""`roberta_core.pipeline("zero-shot-classification")`, v4's NLI zero-shot pipeline, on a tiny
random NLI checkpoint (labels contradiction/neutral/entailment) with the character-level
tokenizer of `test_pipelines`. Expected values are computed independently: each (sequence,
hypothesis) pair's ids written out by hand, its logits from the float64 reference forward
(`roberta_core.reference`), the softmaxes done here; the rules on crafted logits. The side-by-side
comparison with transformers' own pipeline is `tests/fixtures/compare_pipelines_v4.py`."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest

from roberta_core import checkpoint, pipeline, reference, runtime
from roberta_core.pipelines import TASKS
from roberta_core.pipelines import postprocess as pp
from roberta_core.weights import HEADS
from tests.helpers import random_state, tiny_config
from tests.roberta_core.test_pipelines import INDEX, close, ids_of, needs_pt

NLI = {0: "contradiction", 1: "neutral", 2: "entailment"}
TEMPLATE = "This example is {}."


def write(folder, id2label, seed=5, model_max_length=None):
    config = tiny_config(vocab_size=len(INDEX), architectures=[HEADS["sequence_classification"]], num_labels=3,
                         **({} if id2label is None else {"id2label": id2label,
                                                         "label2id": {v: k for k, v in id2label.items()}}))
    state = random_state(config, "sequence_classification", seed=seed, scale=0.5)
    checkpoint.save_state_dict(state, folder, format="safetensors", architecture=HEADS["sequence_classification"])
    config.save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(INDEX))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    if model_max_length is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": model_max_length}))
    return folder, config, state


@pytest.fixture(scope="module")
def nli(tmp_path_factory):
    return write(tmp_path_factory.mktemp("zero_shot") / "nli", NLI)


def pair_ids(premise: str, hypothesis: str) -> np.ndarray:
    """<s> premise </s></s> hypothesis </s>, one id per character (written out by hand)."""
    return np.concatenate([ids_of(premise), [2], ids_of(hypothesis)[1:]])


def logits_of(ckpt, premise: str, hypotheses: list[str]) -> np.ndarray:
    """(hypotheses, 3): each pair's logits from the float64 reference, one plain forward a pair."""
    _, config, state = ckpt
    return np.stack([reference.forward(config, state, "sequence_classification",
                                       input_ids=pair_ids(premise, h)[None])["logits"][0] for h in hypotheses])


def by_hand_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def expected(labels, scores):
    """{"labels", "scores"} best first from per-label scores (no ties in these cases)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    return [labels[i] for i in order], [float(scores[i]) for i in order]


def check(result, sequence, labels, scores):
    want_labels, want_scores = expected(labels, scores)
    assert set(result) == {"sequence", "labels", "scores"} and result["sequence"] == sequence
    assert result["labels"] == want_labels
    assert all(type(s) is float for s in result["scores"])  # v4's: Python floats of float32 values
    np.testing.assert_allclose(result["scores"], want_scores, atol=1e-5)


# ---------------------------------------------------------------------------- the rules, on crafted logits


def test_entailment_id_is_the_first_label_starting_with_entail():
    assert pp.entailment_id({"contradiction": 0, "neutral": 1, "entailment": 2}) == 2
    assert pp.entailment_id({"ENTAILMENT": 0, "neutral": 1, "CONTRADICTION": 2}) == 0
    assert pp.entailment_id({"not_entailment": 1, "Entails": 0}) == 0  # "not_entailment" does not start with it
    assert pp.entailment_id({"LABEL_0": 0, "LABEL_1": 1}) == -1


def test_zero_shot_scores_by_hand():
    logits = np.array([[1.0, 0.0, 3.0], [2.0, 5.0, -1.0], [0.5, 0.5, 0.5]], dtype=np.float32)
    # single label: softmax of the entailment column over the labels
    scores, order = pp.zero_shot_scores(logits, 2, multi_label=False)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, by_hand_softmax([3.0, -1.0, 0.5]), atol=1e-7)
    assert order.tolist() == [0, 2, 1]
    # multi-label: each label's softmax over [contradiction (0), entailment]
    scores, _ = pp.zero_shot_scores(logits, 2, multi_label=True)
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(1.0 - 3.0)), 1 / (1 + np.exp(2.0 + 1.0)), 0.5], atol=1e-7)
    # one candidate label reads as multi-label
    one, _ = pp.zero_shot_scores(logits[:1], 2, multi_label=False)
    np.testing.assert_allclose(one, [1 / (1 + np.exp(1.0 - 3.0))], atol=1e-7)
    # entailment 0: the contradiction is the last id (v4's -1)
    scores, _ = pp.zero_shot_scores(logits, 0, multi_label=True)
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(3.0 - 1.0)), 1 / (1 + np.exp(-1.0 - 2.0)), 0.5], atol=1e-7)
    # no entailment label (-1): v4 indexes the last column, the contradiction stays 0
    scores, _ = pp.zero_shot_scores(logits, -1, multi_label=False)
    np.testing.assert_allclose(scores, by_hand_softmax([3.0, -1.0, 0.5]), atol=1e-7)
    # equal scores: v4's reversed argsort puts the last such label first
    _, order = pp.zero_shot_scores(np.zeros((4, 3), dtype=np.float32), 2, multi_label=False)
    assert order.tolist() == [3, 2, 1, 0]
    # a logit that overflows v4's exp (nan there) still gives the softmax
    scores, order = pp.zero_shot_scores(np.array([[0, 0, 100.0], [0, 0, 99.0]], dtype=np.float32), 2, False)
    np.testing.assert_allclose(scores, by_hand_softmax([100.0, 99.0]), atol=1e-6)
    assert order.tolist() == [0, 1]


# ---------------------------------------------------------------------------- the pipeline on a checkpoint


def test_zero_shot_is_registered():
    assert TASKS["zero-shot-classification"].task == "zero-shot-classification"


@needs_pt
def test_single_label_softmaxes_the_entailment_logits_over_the_labels(nli):
    zero_shot = pipeline("zero-shot-classification", nli[0], backend="pt")
    text, labels = "Ada met Bob", ["travel", "food", "art"]
    logits = logits_of(nli, text, [TEMPLATE.format(label) for label in labels])
    check(zero_shot(text, candidate_labels=labels), text, labels, by_hand_softmax(logits[:, 2]))
    # positional labels, a comma-separated string (stripped, empty ones dropped), and a custom template
    check(zero_shot(text, " travel,food ,, art"), text, labels, by_hand_softmax(logits[:, 2]))
    logits = logits_of(nli, text, [f"About {label}" for label in labels])
    check(zero_shot(text, labels, hypothesis_template="About {}"), text, labels, by_hand_softmax(logits[:, 2]))


@needs_pt
def test_multi_label_and_one_label_softmax_entailment_against_contradiction(nli, caplog):
    zero_shot = pipeline("zero-shot-classification", nli[0], backend="pt", candidate_labels=["x", "yz"])
    text = "in Rome"
    logits = logits_of(nli, text, [TEMPLATE.format("x"), TEMPLATE.format("yz")])
    each = by_hand_softmax(logits[:, [0, 2]])[:, 1]
    check(zero_shot(text, multi_label=True), text, ["x", "yz"], each)
    # v4 logs the deprecation (logger.warning); it raises no Python warning
    with caplog.at_level(logging.WARNING, logger="roberta_core.pipelines"), warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        check(zero_shot(text, multi_class=True), text, ["x", "yz"], each)
    assert [r.getMessage() for r in caplog.records if "multi_class" in r.getMessage()] == [
        "The `multi_class` argument has been deprecated and renamed to `multi_label`. "
        "`multi_class` will be removed in a future version of Transformers."]
    assert not [w for w in raised if "multi_class" in str(w.message)]
    check(zero_shot(text, candidate_labels="x"), text, ["x"], each[:1])  # one label: as multi-label


@needs_pt
def test_a_list_of_sequences_gives_a_list_in_order_and_streams(nli):
    zero_shot = pipeline("zero-shot-classification", nli[0], backend="pt", batch_size=2)
    texts, labels = ["Ada met Bob", "x", "in Rome today"], ["a", "bc"]
    results = zero_shot(texts, candidate_labels=labels)
    assert isinstance(results, list) and len(results) == 3
    for text, result in zip(texts, results):
        logits = logits_of(nli, text, [TEMPLATE.format(label) for label in labels])
        check(result, text, labels, by_hand_softmax(logits[:, 2]))
    stream = zero_shot((t for t in texts), candidate_labels=labels)
    assert not isinstance(stream, list) and close(list(stream), results)


@needs_pt
def test_identical_hypotheses_tie_exactly_in_v4s_order(nli):
    # "Nice {:.1}" keeps the label's first character: "ab" and "ac" read the same hypothesis
    result = pipeline("zero-shot-classification", nli[0], backend="pt")(
        "Ada met Bob", ["ab", "b", "ac", "ad"], hypothesis_template="Nice {:.1}")
    scores = dict(zip(result["labels"], result["scores"]))
    assert scores["ab"] == scores["ac"] == scores["ad"]
    tied = [label for label in result["labels"] if label != "b"]
    assert tied == ["ad", "ac", "ab"]  # v4: the last label first


@needs_pt
def test_the_sequence_is_truncated_first_and_a_long_hypothesis_is_not(tmp_path):
    ckpt = write(tmp_path / "short", NLI, model_max_length=24)
    zero_shot = pipeline("zero-shot-classification", ckpt[0], backend="pt")
    text = "abcdefghijklmnopqrstuvwxyz"
    # "is x": 4 characters and 4 specials leave 16 of the sequence's 26
    # (and "is yy" 15): 24 tokens each
    logits = np.concatenate([logits_of(ckpt, text[:16], ["is x"]), logits_of(ckpt, text[:15], ["is yy"])])
    check(zero_shot(text, ["x", "yy"], hypothesis_template="is {}"), text, ["x", "yy"], by_hand_softmax(logits[:, 2]))
    # a hypothesis of 22 characters leaves no room for the sequence: v4 retries without truncating
    long = "q" * 20
    logits = logits_of(ckpt, "ab", [f"is {long}"])
    check(zero_shot("ab", [long], hypothesis_template="is {}"), "ab", [long], by_hand_softmax(logits[:, [0, 2]])[:, 1])


@needs_pt
def test_entailment_first_and_no_entailment_label(tmp_path, caplog):
    first = write(tmp_path / "first", {0: "ENTAILMENT", 1: "neutral", 2: "contradiction"})
    text, labels = "Ada met Bob", ["a", "b"]
    logits = logits_of(first, text, [TEMPLATE.format(label) for label in labels])
    zero_shot = pipeline("zero-shot-classification", first[0], backend="pt")
    assert zero_shot.entailment_id == 0
    check(zero_shot(text, labels), text, labels, by_hand_softmax(logits[:, 0]))
    check(zero_shot(text, labels, multi_label=True), text, labels, by_hand_softmax(logits[:, [2, 0]])[:, 1])
    plain = write(tmp_path / "plain", None)
    # v4 logs it (logger.warning) at construction; no Python warning
    with caplog.at_level(logging.WARNING, logger="roberta_core.pipelines"), warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        zero_shot = pipeline("zero-shot-classification", plain[0], backend="pt")
    assert [r.getMessage() for r in caplog.records if "entailment" in r.getMessage()] == [
        "Failed to determine 'entailment' label id from the label2id mapping in the model config. Setting to -1. "
        "Define a descriptive label2id mapping in the model config to ensure correct outputs."]
    assert not [w for w in raised if "entailment" in str(w.message)]
    assert zero_shot.entailment_id == -1
    logits = logits_of(plain, text, [TEMPLATE.format(label) for label in labels])
    check(zero_shot(text, labels), text, labels, by_hand_softmax(logits[:, -1]))


@needs_pt
def test_v4s_errors(nli):
    zero_shot = pipeline("zero-shot-classification", nli[0], backend="pt")
    for bad in ([], " , ,"):
        with pytest.raises(ValueError, match="^You must include at least one label and at least one sequence.$"):
            zero_shot("abc", bad)
    with pytest.raises(ValueError, match="^You must include at least one label and at least one sequence.$"):
        zero_shot("", ["a"])
    with pytest.raises(ValueError, match='The provided hypothesis_template "no label" was not able to be formatted'):
        zero_shot("abc", ["a"], hypothesis_template="no label")
    with pytest.raises(ValueError, match="Unable to understand extra arguments"):
        zero_shot("abc", ["a"], ["b"])
    with pytest.raises(ValueError, match="needs candidate_labels"):
        zero_shot("abc")
    with pytest.raises(TypeError):  # v4 fails on the missing labels with a TypeError (len(None))
        zero_shot("abc")
    # v4's zero-shot passes over options it does not know (its _sanitize_parameters takes **kwargs),
    # at the call and at construction
    assert close(zero_shot("abc", ["a", "b"], top_k=2, truncation=False), zero_shot("abc", ["a", "b"]))
    assert close(pipeline("zero-shot-classification", nli[0], backend="pt", foo=1)("abc", ["a", "b"]),
                 zero_shot("abc", ["a", "b"]))


@needs_pt
def test_every_installed_backend_gives_the_same_results(nli):
    installed = [b for b in ("pt", "tf", "flax") if runtime.available(b)]
    if len(installed) < 2:
        pytest.skip("needs two backends")
    texts = ["Ada met Bob", "x"]
    results = {b: [pipeline("zero-shot-classification", nli[0], backend=b)(texts, ["a", "bc", "def"], multi_label=m)
                   for m in (False, True)] for b in installed}
    for other in installed[1:]:
        assert close(results[installed[0]], results[other]), other


@needs_pt
def test_roberta_pipeline_command(nli, capsys):
    from roberta_core.cli import main

    assert main(["pipeline", "zero-shot-classification", str(nli[0]), "Ada met Bob", "x", "--backend", "pt",
                 "--option", "candidate_labels=a, bc", "--option", "multi_label=true"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    want = pipeline("zero-shot-classification", nli[0], backend="pt")(["Ada met Bob", "x"], ["a", "bc"], multi_label=True)
    assert close(lines, want)


def test_a_csv_row_with_a_text_column_is_that_text_for_zero_shot():
    # `roberta pipeline zero-shot-classification CKPT --input rows.csv`: a row's other columns
    # (a gold label, an id) are not the pipeline's input.
    from roberta_core.commands.pipeline import _item

    assert _item("zero-shot-classification", {"text": "a b", "label": "sports", "id": "7"}) == "a b"
