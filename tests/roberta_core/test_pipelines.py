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
    with pytest.raises(ValueError, match="top_k must be a positive integer, got 0"):
        fill("a<mask>", top_k=0)


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
        ner(text, stride=4)


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
    features = pipeline("feature-extraction", folder, backend="pt", batch_size=2)
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
    with pytest.raises(TypeError, match="text-classification takes no option top_n"):
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

    def same(a, b):
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, float):
            return abs(a - b) <= 1e-5
        return a == b
    for other in others:
        assert same(results[first], results[other]), other


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
    assert lines == json.loads(json.dumps(want))
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
def test_rows_run_longest_first_with_unpad_and_questions_cut_to_max_question_len(ckpts, monkeypatch):
    folder = ckpts["model"][0]
    features = pipeline("feature-extraction", folder, backend="pt", batch_size=2)
    calls = []
    real = runtime.run_model

    def spy(backend, model, inputs):
        calls.append((inputs["input_ids"].shape, inputs.get("unpad", False)))
        return real(backend, model, inputs)
    monkeypatch.setattr(runtime, "run_model", spy)
    features(["a", "hello there", "abc", "x y z w v", "hi"])  # 3, 13, 5, 11, 4 tokens
    # Longest first, two at a time; a batch with padding runs unpadded, a lone row needs no unpad.
    assert calls == [((2, 13), True), ((2, 5), True), ((1, 3), False)]
    qa = pipeline("question-answering", ckpts["question_answering"][0], backend="pt", max_question_len=3)
    (row,) = qa.preprocess({"question": "abcdef", "context": "x y"}, qa.options)
    assert row["encoding"].sequence_ids(0).count(0) == 3  # "abc"
