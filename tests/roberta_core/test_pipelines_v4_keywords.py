"""`roberta_core.pipeline` against v4's (transformers 4.57.6) behaviours found by a side-by-side
review: v4's common `pipeline()` keywords, padding asked through the tokenizer options, float32
scores (ties break as v4's), QA's `max_seq_len` and SquadExamples, v4's Pipeline methods, and a
tokenizer without offsets (v4's slow tokenizers). Expected values are computed by hand, recorded
from v4's documented rules, or come from a second run of the pipeline without the feature under
test; the side-by-side comparison itself is `tests/fixtures/compare_pipelines_v4.py`."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from roberta_core import RobertaConfig, pipeline, runtime
from roberta_core.pipelines import postprocess as pp
from roberta_core.pipelines.tasks import QuestionAnsweringPipeline, SquadExample
from tests.roberta_core.test_pipelines import INDEX, ckpts, close, fake_qa_model, needs_pt  # noqa: F401 (fixture)


# ---------------------------------------------------------------------------- float32 scores


def test_sigmoid_and_softmax_are_float32_as_v4s():
    # float32: 1 / (1 + e^-20) = 1 / (1 + 2.06e-9) rounds to exactly 1.0 (float32's step below 1 is 6e-8)
    scores = pp.classification_scores(np.array([20.0, 19.0, 0.0], dtype=np.float32), "sigmoid")
    assert scores.dtype == np.float32 and scores[0] == 1.0 and scores[1] == 1.0 and scores[2] == 0.5
    probs = pp.softmax(np.array([[1.0, 1.0]], dtype=np.float32))
    assert probs.dtype == np.float32 and probs.tolist() == [[0.5, 0.5]]
    # float16 logits are widened to float32 (v4: `.float()` first)
    assert pp.softmax(np.array([0.0, 0.0], dtype=np.float16)).dtype == np.float32


def test_saturated_multi_label_scores_tie_in_label_order(ckpts, monkeypatch):
    """Two logits of 20 and 25 both saturate to 1.0 in float32: v4's stable sort keeps label order
    (in float64, label 1 would come first)."""
    folder = ckpts["sequence_classification"][0]
    clf = pipeline("text-classification", folder, backend="pt", function_to_apply="sigmoid")
    monkeypatch.setattr(runtime, "run_model", lambda backend, model, inputs: {
        "logits": np.tile(np.array([20.0, 25.0, -30.0], dtype=np.float32), (inputs["input_ids"].shape[0], 1))})
    got = clf("abc", top_k=None)
    assert [g["label"] for g in got] == [clf.config.id2label[0], clf.config.id2label[1], clf.config.id2label[2]]
    assert got[0]["score"] == got[1]["score"] == 1.0


def test_overlapping_entities_compare_float32_means():
    """Window 2's word averages [0.5, 0.5 + 2^-24]: in float32 the sum 1 + 2^-24 rounds to 1.0, so
    the mean is 0.5, not above window 1's 0.5, and (v4's strict `>`) window 1's entity stays; the
    float64 mean 0.5 + 2^-25 would replace it."""
    half, above = np.float32(0.5), np.nextafter(np.float32(0.5), np.float32(1))
    assert float(above) == 0.5 + 2 ** -24
    join = "".join
    first = pp.group_entities([{"entity": "B-PER", "score": half, "word": "a", "start": 0, "end": 3}], join)
    second = pp.group_entities([{"entity": "B-PER", "score": half, "word": "b", "start": 0, "end": 1},
                                {"entity": "I-PER", "score": above, "word": "c", "start": 1, "end": 3}], join)
    assert second[0]["score"] == 0.5 and second[0]["score"].dtype == np.float32
    kept = pp.aggregate_overlapping_entities(first + second)
    assert [e["word"] for e in kept] == ["a"]


# ---------------------------------------------------------------------------- v4's pipeline() keywords


@needs_pt
def test_v4s_common_keywords_are_taken(ckpts, tmp_path):
    import torch

    folder = ckpts["masked_lm"][0]
    plain = pipeline("fill-mask", folder, backend="pt")("ab<mask>", top_k=2)
    for kwargs in (dict(torch_dtype=torch.float32), dict(dtype="float32"), dict(device_map="cpu"),
                   dict(trust_remote_code=False), dict(revision="main"), dict(token=None), dict(use_fast=True),
                   dict(config=str(folder)), dict(config=RobertaConfig.from_pretrained(folder)),
                   dict(device=torch.device("cpu")), dict(binary_output=True)):
        fill = pipeline("fill-mask", folder, backend="pt", **kwargs)
        assert close(fill("ab<mask>", top_k=2), plain), kwargs
    half = pipeline("fill-mask", folder, backend="pt", torch_dtype=torch.float16)
    assert half.dtype == half.torch_dtype == torch.float16 and half.model.dtype == torch.float16
    assert pipeline("fill-mask", folder, backend="pt", binary_output=True).binary_output is True
    assert pipeline("fill-mask", folder, backend="pt").binary_output is False
    slow = pipeline("fill-mask", folder, backend="pt", use_fast=False)
    assert slow.tokenizer.is_fast is False
    with pytest.raises(ValueError, match="You cannot use both"):
        pipeline("fill-mask", folder, backend="pt", torch_dtype=torch.float32, model_kwargs={"torch_dtype": torch.float32})


@pytest.mark.parametrize("backend", [b for b in ("tf", "flax") if runtime.available(b)])
def test_torch_keywords_in_the_other_backends(ckpts, backend):
    torch = pytest.importorskip("torch")
    folder = ckpts["masked_lm"][0]
    plain = pipeline("fill-mask", folder, backend=backend)("ab<mask>", top_k=2)
    for kwargs in (dict(device=torch.device("cpu")), dict(torch_dtype=torch.float32), dict(device_map=torch.device("cpu"))):
        assert close(pipeline("fill-mask", folder, backend=backend, **kwargs)("ab<mask>", top_k=2), plain), kwargs


# ---------------------------------------------------------------------------- padding through tokenizer options


@needs_pt
def test_padding_asked_of_the_tokenizer_is_masked(ckpts):
    fill = pipeline("fill-mask", ckpts["masked_lm"][0], backend="pt")
    # v4 masks the padding: the same candidates and sequences as without it
    assert close(fill(["ab<mask>", "a<mask>c d"], tokenizer_kwargs={"padding": "max_length", "max_length": 20}),
                 fill(["ab<mask>", "a<mask>c d"]))
    extract = pipeline("feature-extraction", ckpts["model"][0], backend="pt")
    padded = np.array(extract("abc", tokenize_kwargs={"padding": "max_length", "max_length": 10}))
    plain = np.array(extract("abc"))
    assert padded.shape[:2] == (1, 10) and plain.shape[1] == 5  # v4 returns the padded length's 10 positions
    np.testing.assert_allclose(padded[0, :5], plain[0], atol=1e-5)  # the real tokens do not see the padding
    many = extract(["abc", "ab"], tokenize_kwargs={"padding": "max_length", "max_length": 10}, batch_size=2)
    assert [np.array(m).shape[1] for m in many] == [10, 10]
    np.testing.assert_allclose(np.array(many[0])[0, :5], plain[0], atol=1e-5)


# ---------------------------------------------------------------------------- question answering


@needs_pt
def test_question_answering_max_seq_len_above_the_model_and_squad_examples(ckpts, monkeypatch):
    folder, config, _ = ckpts["question_answering"]
    fake_qa_model(monkeypatch, INDEX["Z"])
    qa = pipeline("question-answering", folder, backend="pt")
    want = {"score": pytest.approx(1.0, abs=1e-3), "start": 4, "end": 5, "answer": "Z"}
    # a max_seq_len above what the model reads: v4 answers an input that fits
    assert qa(question="q?", context="a b Z c", max_seq_len=config.max_sequence_length + 100) == want
    with pytest.raises(ValueError, match="this model reads at most"):  # a window that cannot fit
        qa(question="q?", context="a " * config.max_sequence_length + "Z", max_seq_len=config.max_sequence_length + 100)
    # v4's create_sample: SquadExample(s) with the context's whitespace-split words
    one = QuestionAnsweringPipeline.create_sample("q?", "a b Z c")
    assert isinstance(one, SquadExample) and (one.question_text, one.context_text) == ("q?", "a b Z c")
    two = QuestionAnsweringPipeline.create_sample(["q?", "r?"], ["a b Z c", "Z  d"])
    assert [t.doc_tokens for t in two] == [["a", "b", "Z", "c"], ["Z", "d"]]
    assert two[1].char_to_word_offset == [0, 0, 0, 1]
    assert (two[0].qas_id, two[0].answer_text, two[0].answers, two[0].is_impossible) == (None, None, [], False)
    got = qa(two)
    assert got == [want, {"score": pytest.approx(1.0, abs=1e-3), "start": 0, "end": 1, "answer": "Z"}]


# ---------------------------------------------------------------------------- Pipeline methods


@needs_pt
def test_save_pretrained_predict_and_transform(ckpts, tmp_path):
    fill = pipeline("fill-mask", ckpts["masked_lm"][0], backend="pt")
    want = fill("ab<mask>")
    assert fill.predict("ab<mask>") == want and fill.transform("ab<mask>") == want
    fill.save_pretrained(tmp_path / "saved")
    assert {"config.json", "vocab.json"} <= {p.name for p in (tmp_path / "saved").iterdir()}
    assert close(pipeline("fill-mask", tmp_path / "saved", backend="pt")("ab<mask>"), want)
    assert fill.feature_extractor is None and fill.image_processor is None


# ---------------------------------------------------------------------------- a tokenizer without offsets


class NoOffsets:
    """A tokenizer as v4's slow ones are: no offsets (`return_offsets_mapping=True` is refused),
    `is_fast` False; the rest is the wrapped tokenizer's."""

    is_fast = False

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __call__(self, *args, return_offsets_mapping=False, **kwargs):
        if return_offsets_mapping:
            raise NotImplementedError("return_offset_mapping is not available when using Python tokenizers.")
        return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name):
        if name == "_call_fast_layout":
            raise AttributeError(name)
        return getattr(self._tokenizer, name)


@needs_pt
def test_token_classification_without_offsets_gives_none_positions(ckpts):
    from roberta_core import RobertaTokenizer

    folder = ckpts["token_classification"][0]
    slow = NoOffsets(RobertaTokenizer.from_pretrained(folder))
    plain = pipeline("ner", folder, backend="pt", ignore_labels=[])("Ada met", aggregation_strategy="none")
    got = pipeline("ner", folder, tokenizer=slow, backend="pt", ignore_labels=[])("Ada met", aggregation_strategy="none")
    # v4 (gather_pre_entities without offsets): start and end None, the rest as with offsets
    assert [(e["start"], e["end"]) for e in got] == [(None, None)] * len(plain)
    assert close([{k: v for k, v in e.items() if k not in ("start", "end")} for e in got],
                 [{k: v for k, v in e.items() if k not in ("start", "end")} for e in plain])
    ner = pipeline("ner", folder, tokenizer=slow, backend="pt")
    with pytest.raises(ValueError, match="Slow tokenizers cannot handle subwords"):
        ner("Ada met", aggregation_strategy="first")
    with pytest.raises(ValueError, match="slow tokenizer"):
        ner("Ada met", aggregation_strategy="simple", stride=2)


@needs_pt
def test_question_answering_without_offsets_or_v4s_squad_code_is_a_clear_error(ckpts, monkeypatch):
    # v4 answers for a slow tokenizer through its SQuAD preprocessing; without transformers 4's
    # module (transformers 5 has none) the pipeline says what to use instead.
    from roberta_core import RobertaTokenizer

    folder = ckpts["question_answering"][0]
    monkeypatch.setitem(sys.modules, "transformers.data.processors.squad", None)  # its import fails
    qa = pipeline("question-answering", folder, tokenizer=NoOffsets(RobertaTokenizer.from_pretrained(folder)),
                  backend="pt")
    with pytest.raises(TypeError, match="gives none.*use a fast tokenizer"):
        qa(question="Who met Bob?", context="Ada met Bob.")
