"""`roberta_core.pipeline` against v4's (transformers 4.57.6) behaviours found by a side-by-side
review: v4's common `pipeline()` keywords, padding asked through the tokenizer options, float32
scores (ties break as v4's), QA's `max_seq_len` and SquadExamples, v4's Pipeline methods, and a
tokenizer without offsets (v4's slow tokenizers). Expected values are computed by hand, recorded
from v4's documented rules, or come from a second run of the pipeline without the feature under
test; the side-by-side comparison itself is `tests/fixtures/compare_pipelines_v4.py`."""

from __future__ import annotations

import sys
import warnings

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


def test_v4s_positional_order_and_tokenizer_tuple(ckpts):
    # v4's signature: pipeline(task, model, config, tokenizer, feature_extractor, image_processor, processor,
    # framework, ...); a tokenizer may be v4's (name, {from_pretrained keywords})
    folder = ckpts["masked_lm"][0]
    plain = pipeline("fill-mask", folder, backend="pt")("ab<mask>", top_k=2)
    by_position = pipeline("fill-mask", folder, str(folder), str(folder), None, None, None, "pt")
    assert by_position.backend == "pt" and close(by_position("ab<mask>", top_k=2), plain)
    as_tuple = pipeline(task="fill-mask", model=folder, tokenizer=(str(folder), {"model_max_length": 7}), framework="pt")
    assert as_tuple.tokenizer.model_max_length == 7 and close(as_tuple("ab<mask>", top_k=2), plain)
    with pytest.raises(TypeError, match=r"\(name or path, \{keywords\}\)"):
        pipeline("fill-mask", folder, tokenizer=(str(folder),), framework="pt")
    with pytest.raises(ValueError, match="needs a model"):
        pipeline("fill-mask")


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


# ---------------------------------------------------------------------------- second review: v4's warnings, defaults, bounds

SQUAD_LIST_DEPRECATED = ("Passing a list of SQuAD examples to the pipeline is deprecated and will be removed in v5. "
                         "Inputs should be passed using the `question` and `context` keyword arguments instead.")


def _raised(category, text):
    """A `warnings.catch_warnings(record=True)` list's warnings of `category` whose message is `text`."""
    return lambda record: [w for w in record if w.category is category and str(w.message) == text]


@needs_pt
def test_question_answering_warns_of_positional_examples_as_v4(ckpts):
    # v4's __call__ warns (FutureWarning) whenever an example is given positionally; keywords do not
    qa = pipeline("question-answering", ckpts["question_answering"][0], backend="pt")
    example = {"question": "who", "context": "ab cd ef"}
    squad = _raised(FutureWarning, SQUAD_LIST_DEPRECATED)
    for args in ((example,), ("who", "ab cd ef"), ([example, example],)):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            qa(*args)
        assert len(squad(record)) == 1, args
    for kwargs in (dict(question="who", context="ab cd ef"), dict(X=example), dict(data=example)):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            qa(**kwargs)
        assert squad(record) == [], kwargs  # X=/data= give their own deprecation only


@needs_pt
def test_word_strategies_warn_of_the_fallback_heuristic_for_each_token(ckpts):
    # RoBERTa's BPE has no continuing-subword prefix: v4 warns for every (non-special) token when
    # the strategy works on words (first, average, max), never for none/simple
    ner = pipeline("ner", ckpts["token_classification"][0], backend="pt")
    fallback = _raised(UserWarning, "Tokenizer does not support real words, using fallback heuristic")
    text = "Ada met Bob"  # one token a character, <s> and </s> not counted
    for strategy, expected in (("first", len(text)), ("average", len(text)), ("max", len(text)), ("simple", 0), ("none", 0)):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            ner(text, aggregation_strategy=strategy)
        assert len(fallback(record)) == expected, strategy


@needs_pt
def test_fill_mask_top_k_none_is_not_given(ckpts):
    # v4: an option given as None is not given: the construction's top_k, else 5
    folder = ckpts["masked_lm"][0]
    fill = pipeline("fill-mask", folder, backend="pt")
    assert len(fill("ab<mask>", top_k=None)) == 5
    assert len(pipeline("fill-mask", folder, backend="pt", top_k=None)("ab<mask>")) == 5
    two = pipeline("fill-mask", folder, backend="pt", top_k=2, targets=["a", "b", "c"])
    assert close(two("ab<mask>", top_k=None, targets=None), two("ab<mask>"))
    assert len(two("ab<mask>", top_k=None)) == 2


@needs_pt
def test_unknown_options_are_passed_over_where_v4s_are(ckpts):
    qa = pipeline("question-answering", ckpts["question_answering"][0], backend="pt", foo=1)
    answer = qa(question="who", context="ab cd ef")
    assert qa(question="who", context="ab cd ef", foo=1, bar=None) == answer
    features = pipeline("feature-extraction", ckpts["model"][0], backend="pt")
    assert close(features("abc", padding=True, foo=1), features("abc"))
    # v4's generic construction arguments (pipeline()'s and Pipeline's) are taken
    folder = ckpts["masked_lm"][0]
    plain = pipeline("fill-mask", folder, backend="pt")("ab<mask>", top_k=2)
    fill = pipeline("fill-mask", folder, backend="pt", feature_extractor=None, image_processor=None, processor=None,
                    modelcard=None, args_parser=None, pipeline_class=None)
    assert close(fill("ab<mask>", top_k=2), plain)
    assert fill.feature_extractor is fill.image_processor is fill.processor is fill.modelcard is None
    assert type(pipeline("fill-mask", folder, backend="pt", pipeline_class=type(fill))) is type(fill)
    # where v4 refuses an unknown option (fill-mask, token-classification), so do we
    with pytest.raises(TypeError, match="takes no option foo"):
        fill("ab<mask>", foo=1)
    with pytest.raises(TypeError, match="takes no option foo"):
        pipeline("ner", ckpts["token_classification"][0], backend="pt")("abc", foo=1)


@needs_pt
def test_token_classification_of_no_input_is_v4s_error(ckpts):
    ner = pipeline("ner", ckpts["token_classification"][0], backend="pt")
    for empty in ([], ()):
        with pytest.raises(ValueError, match=r"^At least one input is required\.$"):
            ner(empty)


@needs_pt
def test_a_dataset_gives_an_iterator_with_v4s_len(ckpts):
    inputs = ["a<mask>", "<mask>bc", "xyz<mask>", "q<mask>", "<mask>"]
    read = []

    class MapStyle:  # a torch map-style Dataset / v4's KeyDataset: __len__ and __getitem__
        def __len__(self):
            return len(inputs)

        def __getitem__(self, i):
            read.append(i)
            return inputs[i]
    fill = pipeline("fill-mask", ckpts["masked_lm"][0], backend="pt")
    want = fill(inputs, top_k=1)
    # v4's len() is its loader's: the batches of `batch_size` inputs (1 when not given)
    for batch_size, batches in ((None, 5), (2, 3), (4, 2), (8, 1)):
        read.clear()
        results = fill(MapStyle(), top_k=1, batch_size=batch_size)
        assert len(results) == batches and read == []  # nothing read before it is asked for
        assert iter(results) is results and close(list(results), want)
    assert len(pipeline("fill-mask", ckpts["masked_lm"][0], backend="pt", batch_size=2)(MapStyle())) == 3
    with pytest.raises(TypeError):
        len(fill(text for text in inputs))  # a generator's results have no length, as v4's


@needs_pt
def test_stride_bounds_are_v4s(ckpts):
    folder = ckpts["token_classification"][0]
    ner = pipeline("ner", folder, backend="pt", ignore_labels=[], aggregation_strategy="simple")
    ner.tokenizer.model_max_length = 8  # windows of 6 characters between <s> and </s>
    text = "Ada met Bob and Eve"
    # stride 0: windows side by side, accepted as v4; each character read once
    none = pipeline("ner", folder, backend="pt", ignore_labels=[])
    none.tokenizer.model_max_length = 8
    letters = [e for e in none(text, stride=0) if e["word"] != "Ġ"]  # a space's offsets are trimmed
    assert sorted(e["start"] for e in letters) == [i for i, c in enumerate(text) if c != " "]
    assert ner(text, stride=0) and ner(text, stride=5)
    assert ner("Ada", stride=6)  # as long as the window: taken while the text fits one window (v4's tokenizer)
    with pytest.raises(ValueError, match=r"^tokenizer stride set to 7, which is greater than or equal to its effective "
                                         r"max length of 6 \(= 8 original max length - 2 added special tokens\)"):
        ner("Ada", stride=7)
    for stride in (8, 9):
        with pytest.raises(ValueError, match=r"^`stride` must be less than `tokenizer.model_max_length` \(or even lower "
                                             r"if the tokenizer adds special tokens\)$"):
            ner(text, stride=stride)
    # QA's doc_stride 0 is taken too (windows that do not overlap)
    qa = pipeline("question-answering", ckpts["question_answering"][0], backend="pt", max_seq_len=12)
    context = "ab cd ef gh ij kl mn"
    answer = qa(question="q", context=context, doc_stride=0)
    assert answer["answer"] == context[answer["start"]:answer["end"]]
    with pytest.raises(ValueError, match="doc_stride must be a non-negative integer"):
        qa(question="q", context=context, doc_stride=-1)


@needs_pt
def test_error_classes_are_v4s_too(ckpts):
    # v4 looks names up in its enums (KeyError) and wants dict keys (KeyError); ours stay ValueErrors
    clf = pipeline("text-classification", ckpts["sequence_classification"][0], backend="pt")
    with pytest.raises(KeyError) as raised:
        clf("abc", function_to_apply="bad")
    assert isinstance(raised.value, ValueError) and str(raised.value).startswith("function_to_apply must be one of")
    with pytest.raises(KeyError) as raised:
        pipeline("ner", ckpts["token_classification"][0], backend="pt", aggregation_strategy="bogus")
    assert isinstance(raised.value, ValueError)
    qa = pipeline("question-answering", ckpts["question_answering"][0], backend="pt")
    with pytest.raises(KeyError) as raised:
        qa({"question": "who"})
    assert isinstance(raised.value, ValueError)
    assert str(raised.value) == "You need to provide a dictionary with keys {question:..., context:...}"
