"""`roberta_core.pipeline` (issue 16): v4's task pipelines on tiny random checkpoints written by our
own code. Logits are checked against the float64 reference (`roberta_core.reference`); the
post-processing rules (aggregation, span decoding, pooling) against hand-computed cases on crafted
logits. The comparison with transformers' own `pipeline()` is the dev-only
`tests/fixtures/compare_pipelines_v4.py`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from roberta_core import checkpoint, pipeline, reference, runtime
from roberta_core.pipelines.postprocess import to_python
from roberta_core.pipelines import postprocess as pp
from roberta_core.tokenization_base import bytes_to_unicode
from roberta_core.weights import HEADS
from tests.helpers import random_state, tiny_config

needs_pt = pytest.mark.skipif(not runtime.available("pt"), reason="needs the pt backend")

# 4 specials, the 256 byte symbols, <mask>: a byte-level BPE without merges reads characters, so
# every character is one token with the offsets (i, i + 1) (a space is a token of its own).
SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>", *bytes_to_unicode().values(), "<mask>"]
INDEX = {s: i for i, s in enumerate(SYMBOLS)}
NER = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def sm(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ids_of(text: str) -> np.ndarray:
    """The char-level tokenizer's ids, written out by hand: <s>, one id per character (`<mask>`
    one id), </s>."""
    pieces = []
    for n, part in enumerate(text.split("<mask>")):
        if n:
            pieces.append(INDEX["<mask>"])
        pieces += [INDEX[bytes_to_unicode()[b]] for b in part.encode()]
    return np.array([0, *pieces, 2])


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """head -> (folder, config, state): one tiny random checkpoint per head."""
    root = tmp_path_factory.mktemp("pipelines")
    made = {}
    extra = {"sequence_classification": {"num_labels": 3},
             "token_classification": {"id2label": NER, "label2id": {v: k for k, v in NER.items()}},
             "question_answering": {}, "masked_lm": {}, "multiple_choice": {}, "model": {}}
    for head, overrides in extra.items():
        config = tiny_config(vocab_size=len(SYMBOLS), architectures=[HEADS[head]], **overrides)
        state = random_state(config, head, seed=3, scale=0.5)
        folder = root / head
        checkpoint.save_state_dict(state, folder, format="safetensors", architecture=HEADS[head])
        config.save_pretrained(folder)
        (folder / "vocab.json").write_text(json.dumps(INDEX))
        (folder / "merges.txt").write_text("#version: 0.2\n")
        made[head] = (folder, config, state)
    return made


def close(a, b, tol=1e-5) -> bool:
    """Equal results, scores of the same type within `tol` (batches sum float32 in other orders)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, (float, np.floating)):
        return type(a) is type(b) and abs(a - b) <= tol
    return a == b


def ref(ckpts, head, text, pair=None, **kw):
    folder, config, state = ckpts[head]
    ids = ids_of(text) if pair is None else np.concatenate([ids_of(text), [2], ids_of(pair)[1:]])
    return reference.forward(config, state, head, input_ids=ids[None], **kw)


# ---------------------------------------------------------------------------- post-processing rules, by hand


def test_default_function_to_apply_follows_v4s_rule():
    assert pp.default_function("regression", 1) == "none"
    assert pp.default_function(None, 1) == "sigmoid"
    assert pp.default_function("multi_label_classification", 4) == "sigmoid"
    assert pp.default_function(None, 3) == pp.default_function("single_label_classification", 2) == "softmax"
    np.testing.assert_allclose(pp.classification_scores([0.0, np.log(3)], "softmax"), [0.25, 0.75])
    np.testing.assert_allclose(pp.classification_scores([0.0, np.log(3)], "sigmoid"), [0.5, 0.75])
    with pytest.raises(ValueError, match="function_to_apply must be one of softmax, sigmoid, none"):
        pp.classification_scores([0.0], "relu")


LABELS3 = {0: "O", 1: "B-ORG", 2: "I-ORG"}


def crafted_tokens():
    """'Micro|soft| com|pany| now': two words of two tokens, then one; probabilities by hand."""
    rows = [("Micro", [0.1, 0.7, 0.2], 0, 5, False), ("soft", [0.1, 0.1, 0.8], 5, 9, True),
            ("Ġcom", [0.6, 0.1, 0.3], 10, 13, False), ("pany", [0.2, 0.1, 0.7], 13, 17, True),
            ("Ġnow", [0.9, 0.05, 0.05], 18, 21, False)]
    return [{"word": w, "scores": np.array(s), "start": a, "end": b, "index": i + 1, "is_subword": sub}
            for i, (w, s, a, b, sub) in enumerate(rows)]


def join(tokens):
    return "".join(tokens).replace("Ġ", " ")


def test_aggregation_strategies_follow_v4s_documented_rules():
    pre = crafted_tokens()
    none = pp.aggregate(pre, "none", LABELS3, join)
    assert [(e["entity"], e["score"], e["index"], e["word"]) for e in none] == [
        ("B-ORG", 0.7, 1, "Micro"), ("I-ORG", 0.8, 2, "soft"), ("O", 0.6, 3, "Ġcom"), ("I-ORG", 0.7, 4, "pany"), ("O", 0.9, 5, "Ġnow")]
    # simple: adjacent tokens of one type join (B- opens a group), score = their mean.
    simple = pp.aggregate(pre, "simple", LABELS3, join)
    assert [(g["entity_group"], g["word"], g["start"], g["end"]) for g in simple] == [
        ("ORG", "Microsoft", 0, 9), ("O", " com", 10, 13), ("ORG", "pany", 13, 17), ("O", " now", 18, 21)]
    assert simple[0]["score"] == pytest.approx(0.75)
    # first: a word takes its first token's label: Microsoft B-ORG (0.7), company O (0.6), now O.
    first = pp.aggregate(pre, "first", LABELS3, join)
    assert [(g["entity_group"], g["word"], round(g["score"], 6)) for g in first] == [("ORG", "Microsoft", 0.7), ("O", " company now", 0.75)]
    # max: the token with the highest score decides: Microsoft -> soft I-ORG 0.8, company -> pany I-ORG 0.7.
    best = pp.aggregate(pre, "max", LABELS3, join)
    assert [(g["entity_group"], g["word"], g["start"], g["end"]) for g in best] == [
        ("ORG", "Microsoft company", 0, 17), ("O", " now", 18, 21)]
    assert best[0]["score"] == pytest.approx((0.8 + 0.7) / 2)
    # average: mean scores per word: Microsoft (0.1, 0.4, 0.5) -> I-ORG 0.5; company (0.4, 0.1, 0.5) -> I-ORG 0.5.
    avg = pp.aggregate(pre, "average", LABELS3, join)
    assert [(g["entity_group"], g["word"]) for g in avg] == [("ORG", "Microsoft company"), ("O", " now")]
    assert avg[0]["score"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="aggregation_strategy must be one of none, simple, first, average, max"):
        pp.aggregate(pre, "mean", LABELS3, join)


def test_overlapping_window_entities_keep_the_longer_then_the_better():
    a = {"start": 0, "end": 5, "score": 0.5}
    b = {"start": 2, "end": 9, "score": 0.4}  # overlaps a, longer: replaces it
    c = {"start": 2, "end": 9, "score": 0.3}  # same length as b, lower: dropped
    d = {"start": 10, "end": 12, "score": 0.9}
    assert pp.aggregate_overlapping_entities([a, b, c, d]) == [b, d]


def test_span_decoding_by_hand():
    # Window: <s> q </s> </s> c1 c2 c3 </s>; only c1..c3 and <s> are allowed.
    allowed = np.array([1, 0, 0, 0, 1, 1, 1, 0], bool)
    start = np.array([2.0, 9, 9, 9, 0.0, 1.0, 0.3, 9])
    end = np.array([2.0, 9, 9, 9, 0.5, 0.0, 1.3, 9])  # no two spans tie
    starts, ends, scores, null = pp.select_starts_ends(start, end, allowed, 1e6, 3, True, 15)
    s_p, e_p = sm(np.where(allowed, start, -10000.0)), sm(np.where(allowed, end, -10000.0))
    assert null == pytest.approx(s_p[0] * e_p[0])
    pairs = sorted(((s_p[i] * e_p[j], i, j) for i in range(1, 8) for j in range(i, 8) if allowed[i] and allowed[j]), reverse=True)[:3]
    assert list(zip(starts, ends)) == [(i, j) for _, i, j in pairs]
    np.testing.assert_allclose(scores, [p for p, _, _ in pairs], rtol=1e-12)
    # max_answer_len=1: single-token spans only.
    starts, ends, _, _ = pp.select_starts_ends(start, end, allowed, 1e6, 3, False, 1)
    assert sorted(zip(starts, ends)) == [(4, 4), (5, 5), (6, 6)]


def test_top_k_is_the_stable_full_sorts_first_k():
    rng = np.random.default_rng(0)
    for size, k in [(50265, 5), (10, 3), (7, 7), (7, 9), (1, 1)]:
        for values in (rng.random(size), rng.integers(0, 4, size).astype(float)):  # the second full of ties
            assert np.array_equal(pp.top_k(values, k), np.argsort(-values, kind="stable")[:k]), (size, k)


def test_pooling_by_hand():
    h = np.array([[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]])
    mask = np.array([1, 1, 0])
    np.testing.assert_allclose(pp.pool(h, mask, "cls"), [1, 2])
    np.testing.assert_allclose(pp.pool(h, mask, "mean"), [2, -1])
    np.testing.assert_allclose(pp.pool(h, mask, "max"), [3, 2])
    np.testing.assert_allclose(pp.pool(h, mask, "mean_sqrt_len"), np.array([4, -2]) / np.sqrt(2))


# ---------------------------------------------------------------------------- each task on a checkpoint (pt)


@needs_pt
def test_fill_mask_matches_the_reference_with_one_and_several_masks_and_targets(ckpts):
    folder = ckpts["masked_lm"][0]
    fill = pipeline("fill-mask", folder, backend="pt", top_k=3)
    p = sm(ref(ckpts, "masked_lm", "ab<mask>c")["logits"][0, 3])
    one = fill("ab<mask>c")
    assert [c["token"] for c in one] == list(np.argsort(-p)[:3])
    np.testing.assert_allclose([c["score"] for c in one], np.sort(p)[::-1][:3], atol=1e-5)
    assert all(c["sequence"] == "ab" + c["token_str"] + "c" for c in one if c["token_str"].isalnum())
    assert fill(["ab<mask>c"]) == one == fill("ab<mask>c", top_k=3)  # v4 unwraps a list of one
    assert len(fill("ab<mask>c", top_k=1)) == 1  # an option at the call wins over the one at construction
    # Several masks: one list per mask, each mask's own distribution; sequences keep the specials.
    two = fill("<mask>x<mask>")
    logits = ref(ckpts, "masked_lm", "<mask>x<mask>")["logits"][0]
    assert len(two) == 2
    for row, position in zip(two, (1, 3)):
        assert row[0]["token"] == int(np.argmax(logits[position]))
        assert row[0]["sequence"].startswith("<s>") and row[0]["sequence"].endswith("</s>")
    # Targets: the probabilities are the full softmax's, restricted to the targets.
    got = fill("ab<mask>c", targets=["x", "y"])
    assert sorted(c["token_str"] for c in got) == ["x", "y"]
    for c in got:
        assert c["score"] == pytest.approx(p[INDEX[c["token_str"]]], abs=1e-6)
    with pytest.raises(ValueError, match="no mask token"):
        fill("abc")
    # v4 (recorded from 4.57.6): top_k=0 gives no candidates, per mask; a negative one is refused.
    assert fill("a<mask>", top_k=0) == [] and fill("a<mask>b<mask>", top_k=0) == [[], []]
    with pytest.raises(ValueError, match="top_k must be a non-negative integer, got -1"):
        fill("a<mask>", top_k=-1)


@needs_pt
def test_fill_mask_projects_the_masks_only_and_batches_give_each_texts_reference(ckpts, monkeypatch):
    # The LM head runs at the <mask> positions only (masked_positions_only; rows rounded up to 8,
    # zeros after); a batch of ragged texts with 1, 2 and 1 masks gives each text the reference's
    # distribution at each of its masks.
    texts = ["ab<mask>c", "<mask>x<mask>", "q<mask>", "long text<mask> here"]  # (<mask> takes a space before it)
    fill = pipeline("fill-mask", ckpts["masked_lm"][0], backend="pt", top_k=2)
    shapes = []
    real = runtime.run_model

    def spy(backend, model, inputs):
        out = real(backend, model, inputs)
        shapes.append((inputs["masked_positions_only"], out["logits"].shape))
        return out
    monkeypatch.setattr(runtime, "run_model", spy)
    got = fill(texts)
    assert shapes == [(8, (8, len(SYMBOLS)))]  # 5 masks in one batch of 4: 8 rows, not 4 x 22
    for text, result in zip(texts, got):
        positions = np.flatnonzero(ids_of(text) == INDEX["<mask>"])
        logits = ref(ckpts, "masked_lm", text)["logits"][0]
        for row, position in zip(result if len(positions) > 1 else [result], positions):
            p = sm(logits[position])
            assert [c["token"] for c in row] == list(np.argsort(-p, kind="stable")[:2]), text
            np.testing.assert_allclose([c["score"] for c in row], np.sort(p)[::-1][:2], atol=1e-5)


@needs_pt
def test_text_classification_shapes_pairs_and_functions_as_v4(ckpts):
    classify = pipeline("sentiment-analysis", ckpts["sequence_classification"][0], backend="pt")
    p = sm(ref(ckpts, "sequence_classification", "hello")["logits"][0])
    single = classify("hello")  # v4: a list of one dict for one text
    assert single == [{"label": f"LABEL_{int(p.argmax())}", "score": pytest.approx(p.max(), abs=1e-5)}]
    batch = classify(["hello", "x"])  # a list gives one dict per text (batched: equal within float32)
    assert batch[0]["label"] == single[0]["label"] and batch[0]["score"] == pytest.approx(single[0]["score"], abs=1e-6)
    every = classify("hello", top_k=None)
    assert [d["label"] for d in every] == [f"LABEL_{i}" for i in np.argsort(-p)]
    np.testing.assert_allclose([d["score"] for d in every], np.sort(p)[::-1], atol=1e-5)
    assert len(classify("hello", top_k=2)) == 2
    pair = classify({"text": "ab", "text_pair": "cd"}, top_k=None, function_to_apply="sigmoid")
    logits = ref(ckpts, "sequence_classification", "ab", "cd")["logits"][0]
    assert {d["label"]: d["score"] for d in pair} == {f"LABEL_{i}": pytest.approx(1 / (1 + np.exp(-z)), abs=1e-5)
                                                     for i, z in enumerate(logits)}
    raw = classify("hello", function_to_apply="none", top_k=1)
    assert raw[0]["score"] == pytest.approx(ref(ckpts, "sequence_classification", "hello")["logits"][0].max(), abs=1e-5)
    with pytest.raises(ValueError, match="function_to_apply must be one of softmax, sigmoid, none"):
        classify("x", function_to_apply="tanh")
    with pytest.raises(ValueError, match='"text_pair"'):
        classify({"txt": "a"})


@needs_pt
def test_token_classification_entities_offsets_and_aggregation(ckpts):
    ner = pipeline("ner", ckpts["token_classification"][0], backend="pt", ignore_labels=[])
    text = "Ada met Bob"
    probs = sm(ref(ckpts, "token_classification", text)["logits"][0])  # (T, 5), <s> .. </s>
    tokens = ner(text)
    assert len(tokens) == len(text)  # one per character; <s> and </s> left out
    for k, entity in enumerate(tokens):
        # A space is a token of its own, its offsets trimmed to nothing before the next character.
        assert (entity["index"], entity["start"], entity["end"]) == ((k + 1, k + 1, k + 1) if text[k] == " " else (k + 1, k, k + 1))
        assert entity["entity"] == NER[int(probs[k + 1].argmax())]
        assert entity["score"] == pytest.approx(probs[k + 1].max(), abs=1e-5)
    # Default ignore_labels drops O; "first" puts one label on each space-separated word.
    first = pipeline("ner", ckpts["token_classification"][0], backend="pt", aggregation_strategy="first")(text)
    # Words (first token index, start, end) by v4's rule, a token continues a word when no space
    # is at its left edge: the space token (offsets (4, 4)) and "m" (a space at its left) each open
    # one, so "Ada", "Ġ", "met", "Ġ", "Bob".
    words = [(1, 0, 3), (4, 4, 4), (5, 4, 7), (8, 8, 8), (9, 8, 11)]
    expected = []
    for t, a, b in words:
        label = NER[int(probs[t].argmax())]
        expected.append((label.split("-", 1)[-1], a, b, probs[t].max(), label))
    merged = []
    for kind, a, b, score, label in expected:  # adjacent words of one type join unless the next is B-
        if merged and merged[-1][0] == kind and not label.startswith("B-"):
            merged[-1] = (kind, merged[-1][1], b, merged[-1][3] + [score])
        else:
            merged.append((kind, a, b, [score]))
    merged = [m for m in merged if m[0] != "O"]
    assert [(g["entity_group"], g["start"], g["end"]) for g in first] == [(k, a, b) for k, a, b, _ in merged]
    for g, m in zip(first, merged):
        assert g["score"] == pytest.approx(np.mean(m[3]), abs=1e-5)
        assert g["word"].strip() == text[g["start"]:g["end"]]
    with pytest.raises(ValueError, match="stride reads a text in windows"):
        ner(text, stride=4, aggregation_strategy="none")


def fake_qa_model(monkeypatch, target_id: int):
    """A forward whose start and end logits are 10 on `target_id` and 0 elsewhere: the answer is
    that token wherever it is (a crafted model whose right answer is known)."""
    def run_model(backend, model, inputs):
        hot = (inputs["input_ids"] == target_id).astype(np.float32) * 10
        return {"start_logits": hot, "end_logits": hot}
    monkeypatch.setattr(runtime, "run_model", run_model)


@needs_pt
def test_question_answering_finds_an_answer_only_in_the_second_window(ckpts, monkeypatch):
    qa = pipeline("question-answering", ckpts["question_answering"][0], backend="pt")
    context = "a " * 20 + "Z b b"  # Z (char 40) a word of its own
    windows = qa.tokenizer("q?", context, truncation="only_second", max_length=32, stride=8,
                           return_overflowing_tokens=True)["input_ids"]
    assert len(windows) >= 2 and INDEX["Z"] not in windows[0] and INDEX["Z"] in windows[1]
    fake_qa_model(monkeypatch, INDEX["Z"])
    got = qa(question="q?", context=context, max_seq_len=32, doc_stride=8)
    assert (got["start"], got["end"], got["answer"]) == (40, 41, "Z")
    assert got["score"] > 0.9
    # n-best over every window: Z first, then spans that touch it.
    best = qa({"question": "q?", "context": context}, max_seq_len=32, doc_stride=8, top_k=3)
    assert isinstance(best, list) and len(best) == 3 and best[0]["answer"] == "Z"
    assert all(a["score"] < best[0]["score"] for a in best[1:])
    # Lists in, lists out, input order kept; a list of one example gives one dict (v4).
    many = qa([{"question": "q?", "context": "x Z"}, {"question": "q?", "context": context}], max_seq_len=32, doc_stride=8)
    assert [a["start"] for a in many] == [2, 40]
    assert isinstance(qa([{"question": "q?", "context": "x Z"}]), dict)
    # A model that points at <s> in every window: with handle_impossible_answer the empty answer wins.
    fake_qa_model(monkeypatch, INDEX["<s>"])
    null = qa(question="q?", context=context, max_seq_len=32, doc_stride=8, handle_impossible_answer=True)
    assert (null["answer"], null["start"], null["end"]) == ("", 0, 0) and null["score"] > 0.9
    with pytest.raises(ValueError, match=r"doc_stride \(40\) is larger than max_seq_len \(32\)"):
        qa(question="q?", context=context, max_seq_len=32, doc_stride=40)


@needs_pt
def test_batched_feature_extraction_refuses_a_text_longer_than_the_model(ckpts):
    folder, config, _ = ckpts["model"]
    extract = pipeline("feature-extraction", folder, backend="pt")
    for batch_size in (None, 2):
        with pytest.raises(ValueError, match=f"this model reads at most {config.max_sequence_length}"):
            extract(["a b", "a " * (config.max_sequence_length + 5)], batch_size=batch_size)


def test_windows_of_a_slow_tokenizer_are_read_as_the_fast_ones(ckpts, monkeypatch):
    """v4's slow tokenizer returns flat `overflowing_tokens` for a call with overflow (so does ours);
    the pipelines still read a long text in windows with it, the same as with the fast one."""
    from roberta_core import RobertaTokenizer

    folder = ckpts["question_answering"][0]
    slow = RobertaTokenizer.from_pretrained(folder)
    context = "a " * 20 + "Z b b"
    assert "overflowing_tokens" in slow("q?", context, truncation="only_second", max_length=32, stride=8,
                                        return_overflowing_tokens=True)
    fake_qa_model(monkeypatch, INDEX["Z"])
    got = pipeline("question-answering", folder, tokenizer=slow, backend="pt")(
        question="q?", context=context, max_seq_len=32, doc_stride=8)
    assert (got["start"], got["end"], got["answer"]) == (40, 41, "Z")
    monkeypatch.undo()
    folder = ckpts["token_classification"][0]
    runs = [pipeline("ner", folder, tokenizer=tok, backend="pt", ignore_labels=[])
            for tok in (RobertaTokenizer.from_pretrained(folder), None)]
    for ner in runs:
        ner.tokenizer.model_max_length = 8
    assert close(runs[0]("Ada met Bob", stride=2, aggregation_strategy="simple"),
                 runs[1]("Ada met Bob", stride=2, aggregation_strategy="simple"))


@needs_pt
def test_question_answering_scores_are_the_reference_logits_softmaxed(ckpts):
    qa = pipeline("question-answering", ckpts["question_answering"][0], backend="pt")
    context = "ab cd"
    got = qa(question="who", context=context, top_k=3, align_to_words=False)
    out = ref(ckpts, "question_answering", "who", context)
    # <s> w h o </s> </s> | a b Ġ c d | </s>: the context is tokens 6..10, offsets by hand (the
    # space token's trimmed to nothing before "c").
    offsets = {6: (0, 1), 7: (1, 2), 8: (3, 3), 9: (3, 4), 10: (4, 5)}
    allowed = [0, *offsets]
    start = sm(np.where(np.isin(np.arange(12), allowed), out["start_logits"][0], -10000.0))
    end = sm(np.where(np.isin(np.arange(12), allowed), out["end_logits"][0], -10000.0))
    start[0] = end[0] = 0.0  # <s> only scores the null answer
    spans = sorted(((start[i] * end[j], i, j) for i in allowed for j in allowed if i <= j < i + 15), reverse=True)
    answers: dict[str, float] = {}
    for score, i, j in spans[:3]:  # v4 decodes top_k spans (2 top_k + 10 when aligning to words), sums those with the same text
        a, b = (0, 0) if i == 0 else (offsets[i][0], offsets[j][1] if j else 0)
        answers[context[a:b]] = answers.get(context[a:b], 0.0) + score
    want = sorted(answers.items(), key=lambda x: -x[1])[:3]
    assert [a["answer"] for a in got] == [text for text, _ in want]
    np.testing.assert_allclose([a["score"] for a in got], [score for _, score in want], atol=1e-5)
    assert all(context[a["start"]:a["end"]] == a["answer"] for a in got)


@needs_pt
def test_multiple_choice_scores_each_choice(ckpts):
    folder, config, state = ckpts["multiple_choice"]
    choose = pipeline("multiple-choice", folder, backend="pt")
    got = choose({"question": "q", "choices": ["ab", "c", "def"]})
    rows = [np.concatenate([ids_of("q"), [2], ids_of(c)[1:]]) for c in ("ab", "c", "def")]
    T = max(map(len, rows))
    ids = np.full((1, 3, T), config.pad_token_id)
    mask = np.zeros((1, 3, T), int)
    for c, r in enumerate(rows):
        ids[0, c, :len(r)], mask[0, c, :len(r)] = r, 1
    p = sm(reference.forward(config, state, "multiple_choice", input_ids=ids, attention_mask=mask)["logits"][0])
    np.testing.assert_allclose(got["scores"], p, atol=1e-5)
    assert (got["best"], got["choice"]) == (int(p.argmax()), ["ab", "c", "def"][int(p.argmax())])
    with pytest.raises(ValueError, match="choices"):
        choose({"question": "q", "choices": "ab"})


@needs_pt
def test_feature_extraction_and_batches_sorted_by_length_keep_input_order(ckpts):
    folder, config, state = ckpts["model"]
    features = pipeline("feature-extraction", folder, backend="pt")  # batch_size not given: 8 rows at once, unpadded
    texts = ["a", "hello there", "abc", "x y z w v", "hi"]
    got = features(texts)
    for text, out in zip(texts, got):
        want = reference.forward(config, state, "model", input_ids=ids_of(text)[None])["last_hidden_state"]
        assert np.asarray(out).shape == (1, len(text) + 2, config.hidden_size)
        np.testing.assert_allclose(np.asarray(out), want, atol=1e-5)
    # alone or in a batch: the same vectors, up to float32 rounding (a batch's matmuls block and sum
    # in another order: one value of 0.109 was 1.04e-6 apart on an AVX2-only host)
    np.testing.assert_allclose(features("abc"), got[2], rtol=1e-5, atol=1e-6)
    pooled = features("abc", pooling="mean", normalize=True)
    np.testing.assert_allclose(pooled, np.mean(got[2][0], axis=0) / np.linalg.norm(np.mean(got[2][0], axis=0)), atol=1e-6)


@needs_pt
def test_sentence_transformers_folder_gives_its_pooling_and_normalisation(ckpts, tmp_path):
    import shutil

    folder, config, state = ckpts["masked_lm"]
    st = tmp_path / "st"
    shutil.copytree(folder, st / "0_Transformer")
    (st / "1_Pooling").mkdir()
    (st / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": config.hidden_size,
                                                             "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
                                                             "pooling_mode_max_tokens": True}))
    (st / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    embed = pipeline("sentence-embeddings", st, backend="pt")
    hidden = np.asarray(pipeline("feature-extraction", folder, backend="pt")("abc"))[0]
    want = hidden.max(axis=0) / np.linalg.norm(hidden.max(axis=0))
    np.testing.assert_allclose(embed("abc"), want, atol=1e-6)
    assert np.allclose(embed(["abc", "de"])[0], want, atol=1e-6)


@needs_pt
def test_a_loaded_model_with_its_tokenizer_and_bad_arguments(ckpts):
    from roberta_core.auto_tokenizer import load_tokenizer

    folder = ckpts["sequence_classification"][0]
    model = runtime.load_model("pt", "sequence_classification", folder)
    classify = pipeline("text-classification", model, tokenizer=load_tokenizer(folder))
    assert classify.backend == "pt"
    assert classify("hello") == pipeline("text-classification", folder, backend="pt")("hello")
    with pytest.raises(TypeError, match="needs its tokenizer"):
        pipeline("text-classification", model)
    with pytest.raises(ValueError, match="unknown task 'summarization'; choose one of fill-mask"):
        pipeline("summarization", folder)
    with pytest.raises(TypeError, match="fill-mask takes no option top_n"):
        pipeline("fill-mask", ckpts["masked_lm"][0], backend="pt")("x<mask>", top_n=2)
    with pytest.raises(TypeError, match="top_n"):  # text-classification hands other options to the tokenizer, as v4
        classify("x", top_n=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        pipeline("text-classification", folder, batch_size=0)


def test_every_installed_backend_gives_the_same_results(ckpts):
    installed = [b for b in ("pt", "tf", "flax") if runtime.available(b)]
    if len(installed) < 2:
        pytest.skip("needs two backends")
    texts = ["Ada met Bob", "in Rome", "x"]
    results = {}
    for backend in installed:
        ner = pipeline("ner", ckpts["token_classification"][0], backend=backend, aggregation_strategy="simple")
        fill = pipeline("fill-mask", ckpts["masked_lm"][0], backend=backend)
        results[backend] = (ner(texts), fill(["a<mask>", "<mask>b<mask>"]))
    first, *others = installed

    for other in others:
        assert close(results[first], results[other]), other


@needs_pt
def test_roberta_pipeline_command_reads_arguments_csv_and_json_lines(ckpts, tmp_path, capsys):
    from roberta_core.cli import main

    folder = ckpts["token_classification"][0]
    want = pipeline("ner", folder, backend="pt", aggregation_strategy="simple")(["Ada met Bob", "in Rome"])
    table = tmp_path / "in.csv"
    table.write_text("text,id\nin Rome,7\n")
    assert main(["pipeline", "ner", str(folder), "Ada met Bob", "--input", str(table), "--backend", "pt",
                 "--option", "aggregation_strategy=simple"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == json.loads(json.dumps(want, default=to_python))  # v4's np.float32 scores, written as numbers
    questions = tmp_path / "qa.jsonl"
    questions.write_text(json.dumps({"question": "q?", "context": "a b"}) + "\n")
    assert main(["pipeline", "question-answering", str(ckpts["question_answering"][0]), "--input", str(questions),
                 "--backend", "pt", "--option", "top_k=1"]) == 0
    (answer,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert set(answer) == {"score", "start", "end", "answer"} and answer["answer"] == "a b"[answer["start"]:answer["end"]]
    assert main(["pipeline", "ner", str(folder), "--backend", "pt"]) == 2
    assert "no inputs: give TEXT arguments or --input FILE" in capsys.readouterr().err
    assert main(["pipeline", "ner", str(folder), "x", "--option", "top_k"]) == 2
    assert "--option takes NAME=VALUE" in capsys.readouterr().err


@needs_pt
def test_rows_run_longest_first_with_unpad_and_questions_read_whole(ckpts, monkeypatch):
    classify = pipeline("text-classification", ckpts["sequence_classification"][0], backend="pt", batch_size=2)
    calls = []
    real = runtime.run_model

    def spy(backend, model, inputs):
        calls.append((inputs["input_ids"].shape, inputs.get("unpad", False)))
        return real(backend, model, inputs)
    monkeypatch.setattr(runtime, "run_model", spy)
    classify(["a", "hello there", "abc", "x y z w v", "hi"])  # 3, 13, 5, 11, 4 tokens
    # Longest first, two at a time; a batch with padding runs unpadded, a lone row needs no unpad.
    assert calls == [((2, 13), True), ((2, 5), True), ((1, 3), False)]
    calls.clear()
    classify(["a", "hello there", "abc"], batch_size=3)  # batch_size at the call, as v4
    assert calls == [((3, 13), True)]
    # v4 cuts the question to max_question_len on its slow-tokenizer path only (SQuAD's features);
    # with a fast tokenizer it reads the whole question, and answers as without the option.
    folder = ckpts["question_answering"][0]
    qa = pipeline("question-answering", folder, backend="pt", max_question_len=3)
    (row,) = qa.preprocess({"question": "abcdef", "context": "x y"}, qa.options)
    assert row["encoding"].sequence_ids(0).count(0) == 6
    example = {"question": "abcdef", "context": "xy zw"}
    assert qa(example) == pipeline("question-answering", folder, backend="pt")(example)


# ---------------------------------------------------------------------------- v4's calling conventions


@needs_pt
def test_text_classification_hands_other_options_to_the_tokenizer(ckpts):
    folder = ckpts["sequence_classification"][0]
    p = sm(ref(ckpts, "sequence_classification", "ab")["logits"][0])
    best = [{"label": f"LABEL_{int(p.argmax())}", "score": pytest.approx(p.max(), abs=1e-5)}]
    classify = pipeline("text-classification", folder, backend="pt")
    assert classify("abcdefgh", truncation=True, max_length=4) == best  # <s> a b </s>
    assert pipeline("text-classification", folder, backend="pt", truncation=True, max_length=4)("abcdefgh") == best
    # v4 masks the padding it asks for out of the model: the same scores as without it
    assert close(classify(["ab", "c"], padding="max_length", max_length=12, top_k=None), classify(["ab", "c"], top_k=None))
    bare = sm(reference.forward(*ckpts["sequence_classification"][1:], "sequence_classification",
                                input_ids=ids_of("ab")[None, 1:-1])["logits"][0])
    assert classify("ab", add_special_tokens=False, top_k=1)[0]["score"] == pytest.approx(bare.max(), abs=1e-5)
    assert classify("ab", top_k=0) == [] and classify(["ab"], top_k=0) == [[]]  # v4: top_k=0 keeps no label


@needs_pt
def test_text_classification_legacy_return_all_scores(ckpts):
    folder = ckpts["sequence_classification"][0]
    p = sm(ref(ckpts, "sequence_classification", "hello")["logits"][0])
    in_id_order = [{"label": f"LABEL_{i}", "score": pytest.approx(s, abs=1e-5)} for i, s in enumerate(p)]
    best = {"label": f"LABEL_{int(p.argmax())}", "score": pytest.approx(p.max(), abs=1e-5)}
    classify = pipeline("text-classification", folder, backend="pt")
    deprecated = "`return_all_scores` is now deprecated"
    with pytest.warns(UserWarning, match=deprecated):  # every label in id order; one text's list in a list
        assert classify("hello", return_all_scores=True) == [in_id_order]
    with pytest.warns(UserWarning, match=deprecated):
        assert classify("hello", return_all_scores=False) == [best]
    assert classify("hello", return_all_scores=True, top_k=1) == [best]  # top_k wins, without a warning
    with pytest.warns(UserWarning, match=deprecated):
        every = pipeline("text-classification", folder, backend="pt", return_all_scores=True)
    assert every(["hello", "hello"]) == [in_id_order, in_id_order]
    # recorded from transformers 4.57.6: top_k=2 at construction, return_all_scores=False at the
    # call gives the best label as a sorted list of one, wrapped: [[best]]
    with pytest.warns(UserWarning, match=deprecated):
        assert pipeline("text-classification", folder, backend="pt", top_k=2)("hello", return_all_scores=False) == [[best]]
    classify.config.return_all_scores = True  # v4 reads the config's when the call gives neither
    with pytest.warns(UserWarning, match=deprecated):
        assert classify("hello") == [in_id_order]


@needs_pt
def test_feature_extraction_batches_keep_v4s_padding(ckpts):
    import torch

    folder, config, state = ckpts["model"]
    texts = ["hello there", "a", "abc"]  # v4's batches of 2: [hello there, a] padded to 13 tokens, [abc] alone
    for side in ("right", "left"):
        features = pipeline("feature-extraction", folder, backend="pt", batch_size=2)
        features.tokenizer.padding_side = side
        got = features(texts)
        ids, mask = np.full((2, 13), config.pad_token_id), np.zeros((2, 13), int)
        for b, row in enumerate(ids_of(t) for t in texts[:2]):
            where = slice(0, len(row)) if side == "right" else slice(13 - len(row), 13)
            ids[b, where], mask[b, where] = row, 1
        want = reference.forward(config, state, "model", input_ids=ids, attention_mask=mask)["last_hidden_state"]
        for b in range(2):
            np.testing.assert_allclose(got[b], want[b:b + 1], atol=1e-5)  # the padding positions' states too
        alone = reference.forward(config, state, "model", input_ids=ids_of("abc")[None])["last_hidden_state"]
        np.testing.assert_allclose(got[2], alone, atol=1e-5)
    # batch_size at the call, and return_tensors=True: the backend's tensor (1, T, H)
    tensors = pipeline("feature-extraction", folder, backend="pt")(texts[:2], batch_size=2, return_tensors=True)
    assert all(isinstance(t, torch.Tensor) and tuple(t.shape) == (1, 13, config.hidden_size) for t in tensors)
    one = pipeline("feature-extraction", folder, backend="pt")("abc", return_tensors=True)
    np.testing.assert_allclose(one.numpy(), alone, atol=1e-5)
    with pytest.raises(ValueError, match="truncation parameter defined twice"):
        features("abc", truncation=True, tokenize_kwargs={"truncation": True})


TASK_INPUTS = {
    "fill-mask": ("masked_lm", ["a<mask>", "<mask>bc", "xyz<mask>"]),
    "text-classification": ("sequence_classification", ["hello", {"text": "ab", "text_pair": "cd"}, "x"]),
    "token-classification": ("token_classification", ["Ada met Bob", "in Rome", "x"]),
    "question-answering": ("question_answering", [{"question": "who", "context": "ab cd"},
                                                  {"question": "q", "context": "x y z"}, {"question": "a", "context": "b"}]),
    "feature-extraction": ("model", ["hello there", "a", "abc"]),
    "multiple-choice": ("multiple_choice", [{"question": "q", "choices": ["ab", "c"]}, {"text": "x", "choices": ["y", "z"]},
                                            {"question": "r", "choices": ["s"]}]),
}


@needs_pt
@pytest.mark.parametrize("task", list(TASK_INPUTS))
def test_every_task_takes_batch_size_at_the_call_and_streams_lazily(ckpts, task):
    head, inputs = TASK_INPUTS[task]
    run = pipeline(task, ckpts[head][0], backend="pt")
    listed = run(inputs, batch_size=2, num_workers=0)
    assert isinstance(listed, list) and len(listed) == 3
    if task != "feature-extraction":  # whose batches keep their padding (v4's layout)
        assert close(listed, run(inputs))
    read = []

    def generator():
        for item in inputs:
            read.append(item)
            yield item
    stream = run(generator(), batch_size=2)
    assert not isinstance(stream, list) and read == []  # v4: an iterator, nothing read before it is
    first = next(stream)
    assert len(read) == 2  # one batch read
    assert close([first, *stream], listed)

    class MapStyle:  # v4's KeyDataset, a torch map-style Dataset: __len__ and __getitem__ only
        def __len__(self):
            return len(inputs)

        def __getitem__(self, i):
            return inputs[i]
    assert close(list(run(MapStyle(), batch_size=2)), listed)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        run(inputs, batch_size=0)


@needs_pt
def test_output_types_are_v4s(ckpts):
    # recorded from transformers 4.57.6: token-classification scores are np.float32 (every strategy),
    # index/start/end int; the other tasks' scores are Python floats, their positions int
    ner = pipeline("ner", ckpts["token_classification"][0], backend="pt", ignore_labels=[])
    for strategy in pp.AGGREGATIONS:
        for entity in ner("Ada met Bob", aggregation_strategy=strategy):
            assert type(entity["score"]) is np.float32, strategy
            assert all(type(entity[k]) is int for k in ("index", "start", "end") if k in entity), strategy
    (candidate, *_) = pipeline("fill-mask", ckpts["masked_lm"][0], backend="pt")("a<mask>")
    assert (type(candidate["score"]), type(candidate["token"]), type(candidate["token_str"])) == (float, int, str)
    (label,) = pipeline("text-classification", ckpts["sequence_classification"][0], backend="pt")("a")
    assert type(label["score"]) is float
    answer = pipeline("question-answering", ckpts["question_answering"][0], backend="pt")(question="q", context="a b")
    assert [type(answer[k]) for k in ("score", "start", "end", "answer")] == [float, int, int, str]


@needs_pt
def test_token_classification_stride_without_a_strategy_merges_the_windows_tokens(ckpts):
    folder, config, state = ckpts["token_classification"]
    ner = pipeline("ner", folder, backend="pt", ignore_labels=[], aggregation_strategy="none")
    ner.tokenizer.model_max_length = 8  # windows of 6 characters
    text = "Ada met Bob"
    got = ner(text, stride=2)  # "none" given at construction, stride at the call: accepted, as v4
    windows = ner.tokenizer(text, truncation=True, max_length=8, stride=2, return_overflowing_tokens=True,
                            return_offsets_mapping=True)
    entities = []
    for ids, offsets in zip(windows["input_ids"], windows["offset_mapping"]):
        probs = sm(reference.forward(config, state, "token_classification", input_ids=np.array([ids]))["logits"][0])
        entities += [{"start": offsets[k][0], "end": offsets[k][1], "entity": NER[int(probs[k].argmax())],
                      "score": probs[k].max()} for k in range(1, len(ids) - 1)]
    # v4's merge, by start: of entities starting inside the one kept, the longer, then the better
    entities.sort(key=lambda e: e["start"])
    kept = [entities[0]]
    for e in entities[1:]:
        last = kept[-1]
        if last["start"] <= e["start"] < last["end"]:
            longer = e["end"] - e["start"] - (last["end"] - last["start"])
            if longer > 0 or (longer == 0 and e["score"] > last["score"]):
                kept[-1] = e
        else:
            kept.append(e)
    assert len(windows["input_ids"]) > 1
    assert [(e["entity"], e["start"], e["end"]) for e in got] == [(e["entity"], e["start"], e["end"]) for e in kept]
    np.testing.assert_allclose([e["score"] for e in got], [e["score"] for e in kept], atol=1e-5)
    with pytest.raises(ValueError, match="stride reads a text in windows"):
        pipeline("ner", folder, backend="pt", aggregation_strategy="none", stride=2)


@needs_pt
def test_token_classification_legacy_options_split_words_and_given_offsets(ckpts):
    folder, config, state = ckpts["token_classification"]
    ner = pipeline("ner", folder, backend="pt", ignore_labels=[])
    text = "Ada met Bob"
    for (grouped, ignore_subwords), strategy in {(True, True): "first", (True, False): "simple", (False, None): "none"}.items():
        with pytest.warns(UserWarning, match="is deprecated and will be removed in version v5.0.0"):
            got = ner(text, grouped_entities=grouped, ignore_subwords=ignore_subwords)
        assert close(got, ner(text, aggregation_strategy=strategy)), strategy
    # Pre-split words: the offsets point into the words joined by the delimiter; one text's words
    # give a list of one result, as v4's.
    words = ["Ada", "met", "Bob"]
    ids = ner.tokenizer(words, is_split_into_words=True)["input_ids"]
    probs = sm(reference.forward(config, state, "token_classification", input_ids=np.array([ids]))["logits"][0])
    for delimiter in (None, "--"):
        sentence = (delimiter or " ").join(words)
        (split,) = ner(words, is_split_into_words=True, delimiter=delimiter)
        letters = [e for e in split if e["word"] != "Ġ"]
        assert "".join(sentence[e["start"]:e["end"]] for e in letters) == "".join(words)
        assert [e["start"] for e in letters] == [i for i, c in enumerate(sentence) if c.isalpha()]
        for e in split:
            assert e["entity"] == NER[int(probs[e["index"]].argmax())] and e["score"] == pytest.approx(probs[e["index"]].max(), abs=1e-5)
    assert len(ner([words, words[:1]], is_split_into_words=True)) == 2
    # offset_mapping replaces the tokenizer's offsets: one list per input
    mine = [(0, 0)] + [(0, 1)] * len(text) + [(0, 0)]
    assert {(e["start"], e["end"]) for e in ner(text, offset_mapping=mine)} == {(0, 1)}
    both = ner([text, "ab"], offset_mapping=[mine, [(0, 0), (5, 6), (6, 7), (0, 0)]])
    assert [(e["start"], e["end"]) for e in both[1]] == [(5, 6), (6, 7)]


@needs_pt
def test_question_answering_takes_v4s_other_ways_in(ckpts):
    qa = pipeline("question-answering", ckpts["question_answering"][0], backend="pt")
    example = {"question": "who", "context": "ab cd ef"}
    want = qa(example, top_k=2)
    assert qa("who", "ab cd ef", top_k=2) == want  # qa(question, context)
    with pytest.warns(FutureWarning, match="`X` argument"):
        assert qa(X=example, top_k=2) == want
    with pytest.warns(FutureWarning, match="`data` argument"):
        assert close(qa(data=[example, example], top_k=2), [want, want])
    with pytest.warns(UserWarning, match="topk parameter is deprecated"):
        assert qa(example, topk=2) == want
    assert close(qa(example, top_k=2, padding="max_length"), want)  # v4 masks its padding out
    # A context of spaces is read (v4 answers from it), an empty one refused.
    spaces = qa(question="who", context="   ")
    assert spaces["answer"] == "   "[spaces["start"]:spaces["end"]]
    with pytest.raises(ValueError, match="`context` cannot be empty"):
        qa(question="who", context="")


@needs_pt
def test_construction_takes_v4s_arguments(ckpts):
    import torch

    folder = ckpts["masked_lm"][0]
    fill = pipeline("fill-mask", folder, tokenizer=str(folder), framework="pt", device=-1,
                    model_kwargs={"attn_implementation": "eager"})
    assert fill.framework == fill.backend == "pt" and fill.device == torch.device("cpu")
    assert type(fill.model).__name__ == "RobertaForMaskedLM" and fill.model.attn_implementation == "eager"
    assert fill.tokenizer.mask_token == "<mask>" and fill("a<mask>", top_k=1)[0]["token_str"]
    with pytest.raises(ValueError, match="disagree"):
        pipeline("fill-mask", folder, framework="pt", backend="tf")
    with pytest.raises(ValueError, match="framework must be one of"):
        pipeline("fill-mask", folder, framework="jax")
