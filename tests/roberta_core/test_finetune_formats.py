"""`roberta finetune` on real data formats (issue 16): CSV/TSV with column flags, the common
layouts recognised without them (GLUE, CoNLL, SQuAD JSON, SWAG), QA windows with a document
stride and n-best EM/F1 over all windows of an example, the task metrics checked against
independent implementations (seqeval, scikit-learn) on the same predictions, and per-epoch
evaluation with its history, best checkpoint and early stopping. The checkpoint is a tiny model
pretrained once for the module, as in `test_pretrain.py`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from roberta_core.app import finetune as ft
from roberta_core.app.recipe import pretrain
from roberta_core.auto_tokenizer import load_tokenizer
from roberta_core.cli import main
from tests.helpers import tiny_config
from tests.roberta_core.test_pretrain import WORDS, settings, write_corpus

pytest.importorskip("torch")

pytestmark = pytest.mark.xdist_group("finetune-formats")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    write_corpus(path, 40)
    tiny_config().save_pretrained(path.parent)
    out = tmp_path_factory.mktemp("runs") / "pretrained"
    pretrain(settings(path, steps=2, save_every=0), out, progress=False, log=lambda *_: None)
    return out


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_table(path, rows, delimiter=",") -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def read_history(directory) -> list[dict]:
    with open(directory / "history.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


class FixedLogits:
    """A stand-in trainer whose `predict` returns logits drawn from a seeded generator, kept for
    the test to derive the predictions independently."""

    def __init__(self, num_labels: int, seed: int = 0):
        self.rng, self.num_labels, self.returned = np.random.default_rng(seed), num_labels, []

    def predict(self, batch):
        shape = batch["input_ids"].shape
        logits = self.rng.normal(size=(*shape, self.num_labels))
        self.returned.append(logits)
        return {"logits": logits}


# ------------------------------------------------------------------ layouts and column flags


def test_common_layouts_are_recognised_without_flags():
    glue_pair = ft.normalize_examples("seqcls", [{"sentence1": "a b", "sentence2": "c", "label": "1", "idx": 0}])
    assert glue_pair == [{"text": "a b", "text_pair": "c", "label": 1}]  # CSV's "1" is the id 1
    qnli = ft.normalize_examples("seqcls", [{"question": "q?", "sentence": "s.", "label": "entailment"}])
    assert qnli == [{"text": "q?", "text_pair": "s.", "label": "entailment"}]
    sst = ft.normalize_examples("seqcls", [{"sentence": "fine", "label": 0}])
    assert sst == [{"text": "fine", "label": 0}]
    conll = ft.normalize_examples("tokcls", [{"id": "0", "tokens": ["EU", "rejects"], "ner_tags": ["B-ORG", "O"]}])
    assert conll == [{"tokens": ["EU", "rejects"], "labels": ["B-ORG", "O"]}]
    swag = ft.normalize_examples("multiple-choice", [{"sent1": "He sat", "sent2": "then he", "ending0": "ran.", "ending1": "slept.",
                                                       "ending2": "ate.", "ending3": "flew.", "label": "2"}])
    assert swag == [{"question": "He sat", "choices": ["then he ran.", "then he slept.", "then he ate.", "then he flew."], "label": 2}]


def test_column_flags_map_other_names_and_csv_lists():
    rows = [{"words": "EU rejects German", "bio": '["B-ORG", "O", "B-MISC"]'}]
    assert ft.normalize_examples("tokcls", rows, {"tokens": "words", "tags": "bio"}) == [
        {"tokens": ["EU", "rejects", "German"], "labels": ["B-ORG", "O", "B-MISC"]}]
    qa = [{"q": "Who?", "passage": "Ann ran.", "gold": '{"text": ["Ann"], "answer_start": [0]}'}]
    assert ft.normalize_examples("qa", qa, {"question": "q", "context": "passage", "answers": "gold"}) == [
        {"question": "Who?", "context": "Ann ran.", "answers": {"text": ["Ann"], "answer_start": [0]}}]
    with pytest.raises(ValueError, match=r"--text-column 'review' is not a column of the data; it has \['label', 'sentence'\]"):
        ft.normalize_examples("seqcls", [{"sentence": "a", "label": 0}], {"text": "review"})
    with pytest.raises(ValueError, match="unknown column field"):
        ft.normalize_examples("seqcls", [{"sentence": "a", "label": 0}], {"sentence": "x"})


def test_squad_json_v1_and_v2_give_one_example_per_question(tmp_path):
    squad = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "Ann ran home.", "qas": [
        {"id": "1", "question": "Who ran?", "answers": [{"text": "Ann", "answer_start": 0}], "is_impossible": False},
        {"id": "2", "question": "Who flew?", "answers": [], "plausible_answers": [{"text": "Ann", "answer_start": 0}], "is_impossible": True},
    ]}]}]}
    (tmp_path / "train.json").write_text(json.dumps(squad), encoding="utf-8")
    examples = ft.read_examples(tmp_path / "train.json")
    assert [e["answers"]["text"] for e in examples] == [["Ann"], []]
    assert examples[0]["context"] == "Ann ran home." and examples[1]["question"] == "Who flew?"


# ------------------------------------------------------------------ QA windows and n-best decoding


CONTEXT = ("the cat sat on the mat and then the dog ran over the river quickly and slowly "
           "the bird flew under the old tree near the red house in the green garden")


def squad_file(path, contexts_answers) -> None:
    paragraphs = [{"context": c, "qas": [{"id": str(i), "question": "Where?", "answers": [{"text": a, "answer_start": c.index(a)}]}]}
                  for i, (c, a) in enumerate(contexts_answers)]
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}), encoding="utf-8")


def test_qa_windows_point_at_the_answer_only_where_it_lies(checkpoint, tmp_path):
    """A SQuAD JSON example whose answer lies only in the second of two windows: the first
    window's targets are the <s> (0, 0), the second's the answer's tokens; a run trains on both."""
    tokenizer = load_tokenizer(checkpoint)
    answer = "the green garden"
    squad_file(tmp_path / "train.json", [(CONTEXT, answer)] * 6)
    squad_file(tmp_path / "dev.json", [(CONTEXT, answer)] * 2)
    examples = ft.normalize_examples("qa", ft.read_examples(tmp_path / "train.json"))
    q = len(tokenizer("Where?", add_special_tokens=False)["input_ids"])
    context_ids = tokenizer(CONTEXT, add_special_tokens=False)["input_ids"]
    room, stride = len(context_ids) - 8, 4  # two windows: 0..room and len - room..len
    max_len = q + 4 + room
    windows = ft.encode_examples("qa", examples[:1], tokenizer, max_len=max_len, labels=[], doc_stride=stride)
    assert len(windows) == 2
    first, second = windows
    base = q + 3
    assert first["input_ids"][base:-1] == context_ids[:room] and second["input_ids"][base:-1] == context_ids[room - stride :]
    assert answer not in tokenizer.decode(first["input_ids"][base:-1])  # the first window cannot hold it
    assert (first["start_positions"], first["end_positions"]) == (0, 0)
    span = tokenizer.decode(second["input_ids"][second["start_positions"] : second["end_positions"] + 1])
    assert span.strip() == answer
    # a stride larger than the room is capped below it, still progressing one token a window
    capped = ft.encode_examples("qa", examples[:1], tokenizer, max_len=max_len, labels=[], doc_stride=1000)
    assert len(capped) == len(context_ids) - room + 1
    scores = ft.finetune("qa", "pt", checkpoint, str(tmp_path), max_len=max_len, doc_stride=stride, epochs=1, batch_size=4, progress=False)
    assert scores["steps"] == 3 and scores["examples"] == 2  # 6 examples × 2 windows / 4


def test_qa_decoding_uses_every_window_and_a_cut_answer_is_not_trivially_right(checkpoint):
    tokenizer = load_tokenizer(checkpoint)
    answer = "the green garden"
    example = {"question": "Where?", "context": CONTEXT, "answers": {"text": [answer], "answer_start": [CONTEXT.index(answer)]}}
    q = len(tokenizer("Where?", add_special_tokens=False)["input_ids"])
    windows = ft.encode_examples("qa", [example], tokenizer, max_len=q + 4 + 16, labels=[], doc_stride=4)

    def logits(point_at_answer: bool):
        outputs = []
        for w in windows:
            start, end = np.zeros(len(w["input_ids"])), np.zeros(len(w["input_ids"]))
            s, e = (w["start_positions"], w["end_positions"]) if point_at_answer else (0, 0)
            start[s] = end[e] = 10.0
            outputs.append({"start_logits": start, "end_logits": end})
        return outputs

    assert ft.qa_predictions(windows, logits(True), [CONTEXT]) == [answer]
    # a model answering <s> in every window matched every old exact-span target of a cut answer;
    # decoded over the windows, it answers a context span, and scores no exact match
    (wrong,) = ft.qa_predictions(windows, logits(False), [CONTEXT])
    assert wrong != answer and wrong in CONTEXT


def test_qa_decoding_compares_raw_logit_sums_across_windows_as_v4s_run_qa():
    """v4's run_qa.py scores a span by start logit + end logit and compares windows on those raw
    sums (no softmax per window), and answers '' (SQuAD v2) where the smallest null score
    (<s>'s start + end) is above the best span's. Window A: span logits 5 + 5 among others at 4.9
    (a softmax there gives it little); window B: 4 + 4 among -10s (a softmax gives it nearly 1)."""
    context = "alpha beta gamma delta"
    spans = {"alpha": (0, 5), "beta": (6, 10), "gamma": (11, 16), "delta": (17, 22)}
    # each window: <s>, then two context tokens (offsets into the context), then </s>
    windows = [{"example": 0, "input_ids": [0, 1, 1, 2], "offsets": [None, spans["alpha"], spans["beta"], None]},
               {"example": 0, "input_ids": [0, 1, 1, 2], "offsets": [None, spans["gamma"], spans["delta"], None]}]
    a_start, a_end = np.array([4.9, 5.0, 4.9, 4.9]), np.array([4.9, 5.0, 4.9, 4.9])  # 'alpha': 10
    b_start, b_end = np.array([-10.0, 4.0, -10, -10]), np.array([-10.0, 4.0, -10, -10])  # 'gamma': 8
    outputs = [{"start_logits": a_start, "end_logits": a_end}, {"start_logits": b_start, "end_logits": b_end}]
    assert ft.qa_predictions(windows, outputs, [context]) == ["alpha"]
    # null scores: 9.8 in A, -20 in B; the smallest (-20) is below 10: a span answers
    assert ft.qa_predictions(windows, outputs, [context], allow_null=True) == ["alpha"]
    # with B's null at 10.5 and A's at 11, the smallest null (10.5) beats the best span (10): ''
    b_start[0] = b_end[0] = 5.25
    a_start[0] = a_end[0] = 5.5
    assert ft.qa_predictions(windows, outputs, [context], allow_null=True) == [""]


def test_squad_json_fine_tuning_scores_exact_match_and_f1(checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    paragraphs = []
    for w in rng.choice(["cat", "dog", "bird"], size=24):
        context = f"The {w} sat on the mat."
        paragraphs.append({"context": context, "qas": [{"id": str(len(paragraphs)), "question": "Which animal?",
                                                        "answers": [{"text": w, "answer_start": 4}]}]})
    (tmp_path / "squad").mkdir()
    for name, part in (("train.json", paragraphs[:18]), ("dev.json", paragraphs[18:])):
        (tmp_path / "squad" / name).write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": part}]}))
    scores = ft.finetune("qa", "pt", checkpoint, str(tmp_path / "squad"), epochs=2, batch_size=6, lr=3e-3, progress=False)
    assert scores["examples"] == 6 and 0.0 <= scores["exact_match"] <= scores["f1"] <= 100.0
    assert scores["accuracy"] == pytest.approx(scores["exact_match"] / 100)
    assert len(scores["history"]) == 2 and scores["metric"] == "f1"


# ------------------------------------------------------------------ metrics against independent implementations


def test_entity_scores_equal_seqeval_on_the_same_predictions(checkpoint):
    seqeval = pytest.importorskip("seqeval.metrics")
    tokenizer = load_tokenizer(checkpoint)
    names = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    rng = np.random.default_rng(1)
    examples = [{"tokens": list(rng.choice(WORDS, size=6)), "labels": list(rng.choice(names, size=6))} for _ in range(12)]
    features = ft.encode_examples("tokcls", examples, tokenizer, max_len=64, labels=names)
    trainer = FixedLogits(len(names))
    scores = ft.evaluate("tokcls", trainer, features, examples, names, pad_id=tokenizer.pad_token_id, max_len=64, batch_size=5)
    logits = [row for batch in trainer.returned for row in batch]
    gold, predicted = [], []
    for f, row in zip(features, logits):
        first_pieces = [i for i, lab in enumerate(f["labels"]) if lab != -100]
        gold.append([names[f["labels"][i]] for i in first_pieces])
        predicted.append([names[int(np.argmax(row[i]))] for i in first_pieces])
    assert gold == [e["labels"] for e in examples]
    assert scores["f1"] == pytest.approx(seqeval.f1_score(gold, predicted, mode=None))
    assert scores["precision"] == pytest.approx(seqeval.precision_score(gold, predicted))
    assert scores["recall"] == pytest.approx(seqeval.recall_score(gold, predicted))
    tokens = sum(len(g) for g in gold)
    assert scores["accuracy"] == pytest.approx(sum(a == b for g, p in zip(gold, predicted) for a, b in zip(g, p)) / tokens)


@pytest.mark.parametrize("num_labels, average", [(2, "binary"), (3, "macro")])
def test_sequence_classification_metrics_equal_scikit_learn(checkpoint, num_labels, average):
    skm = pytest.importorskip("sklearn.metrics")
    tokenizer = load_tokenizer(checkpoint)
    rng = np.random.default_rng(num_labels)
    names = list(range(num_labels))
    examples = [{"text": " ".join(rng.choice(WORDS, size=4)), "label": int(rng.integers(num_labels))} for _ in range(40)]
    features = ft.encode_examples("seqcls", examples, tokenizer, max_len=64, labels=names)
    class Pooled(FixedLogits):
        def predict(self, batch):
            logits = self.rng.normal(size=(len(batch["input_ids"]), num_labels))
            self.returned.append(logits)
            return {"logits": logits}

    trainer = Pooled(num_labels)
    scores = ft.evaluate("seqcls", trainer, features, examples, names, pad_id=tokenizer.pad_token_id, max_len=64, batch_size=16)
    predicted = np.concatenate(trainer.returned).argmax(-1)
    labels = [e["label"] for e in examples]
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert scores["f1"] == pytest.approx(skm.f1_score(labels, predicted, average=average))
    assert scores["matthews"] == pytest.approx(skm.matthews_corrcoef(labels, predicted))


# ------------------------------------------------------------------ runs: CSV, CoNLL, history, early stopping


def test_csv_sequence_classification_run_keeps_the_best_and_writes_history(checkpoint, tmp_path):
    pairs = [{"sentence": "the cat sat on the mat", "label": "cat"}, {"sentence": "a big dog ran over the river", "label": "dog"}]
    (tmp_path / "glue").mkdir()
    write_table(tmp_path / "glue" / "train.csv", pairs * 16)
    write_table(tmp_path / "glue" / "dev.csv", pairs * 3)
    out = tmp_path / "ft"
    scores = ft.finetune("seqcls", "pt", checkpoint, str(tmp_path / "glue"), epochs=3, batch_size=8, lr=3e-3, out=out, progress=False)
    assert scores["examples"] == 6 and {"accuracy", "f1", "matthews"} <= set(scores)
    history = read_history(out)
    assert [int(r["step"]) for r in history] == [4, 8, 12]  # one row per epoch of 32 / 8 updates
    assert [float(r["epoch"]) for r in history] == [1.0, 2.0, 3.0]
    assert [json.loads(line)["step"] for line in (out / "history.jsonl").read_text().splitlines()] == [4, 8, 12]
    best = max(history, key=lambda r: float(r["accuracy"]))  # the first of the best
    assert scores["best_step"] == int(best["step"]) and scores["accuracy"] == pytest.approx(float(best["accuracy"]))
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "cat", "1": "dog"}
    run = json.loads((out / "run.json").read_text())
    assert run["best_step"] == scores["best_step"]


def test_tsv_with_column_flags_through_the_command(checkpoint, tmp_path, capsys):
    rows = [{"review": "the cat sat on the mat", "stars": "0"}, {"review": "a big dog ran over the river", "stars": "1"}] * 10
    write_table(tmp_path / "reviews.tsv", rows, delimiter="\t")
    out = tmp_path / "ft"
    code = main(["finetune", str(checkpoint), str(tmp_path / "reviews.tsv"), "--text-column", "review", "--label-column", "stars",
                 "--epochs", "2", "--batch-size", "6", "--eval-every", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert [int(r["step"]) for r in read_history(out)] == [2, 4, 6]  # 18 examples / 6 = 3 updates an epoch, every 2, and the end
    assert "matthews" in printed and "history.csv" in printed
    assert ("history.png" in {p.name for p in out.iterdir()}) == ("no history.png" not in printed)


def test_conll_named_entities_run_scores_entities(checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(30):
        tokens = list(rng.choice(WORDS, size=6))
        tags = ["B-ANIMAL" if w in ("cat", "dog", "bird") else "O" for w in tokens]
        rows.append({"id": str(len(rows)), "tokens": tokens, "ner_tags": tags})
    write_jsonl(tmp_path / "conll.jsonl", rows)
    scores = ft.finetune("tokcls", "pt", checkpoint, str(tmp_path / "conll.jsonl"), epochs=2, batch_size=6, lr=3e-3, progress=False)
    assert scores["metric"] == "f1" and {"precision", "recall", "f1", "accuracy"} <= set(scores)
    assert len(scores["history"]) == 2


def test_early_stopping_ends_after_evaluations_without_improvement(checkpoint, tmp_path):
    pairs = [{"text": "the cat sat on the mat", "label": 0}, {"text": "a big dog ran over the river", "label": 1}]
    write_jsonl(tmp_path / "d.jsonl", pairs * 10)
    # a learning rate too small to change any prediction: the accuracy never improves
    scores = ft.finetune("seqcls", "pt", checkpoint, str(tmp_path / "d.jsonl"), epochs=6, batch_size=6, lr=1e-12,
                         early_stopping=2, progress=False)
    assert scores["stopped_early"] and [r["step"] for r in scores["history"]] == [3, 6, 9] and scores["steps"] == 9
    assert scores["best_step"] == 3


@pytest.mark.parametrize("name, value", [("eval_every", -1), ("early_stopping", 1.5), ("doc_stride", 0)])
def test_bad_evaluation_settings_are_refused(checkpoint, name, value):
    with pytest.raises(ValueError, match=f"--{name.replace('_', '-')} must be an integer"):
        ft.finetune("seqcls", "pt", checkpoint, "builtin", **{name: value})


def test_decimal_labels_fine_tune_a_regression_scored_by_pearson_and_spearman(checkpoint, tmp_path, capsys):
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    rows = [{"sentence1": " ".join(rng.choice(WORDS, size=4)), "sentence2": " ".join(rng.choice(WORDS, size=4)),
             "score": f"{rng.uniform(0, 5):.1f}"} for _ in range(20)]
    write_table(tmp_path / "stsb.csv", rows)
    out = tmp_path / "ft"
    code = main(["finetune", str(checkpoint), str(tmp_path / "stsb.csv"), "--label-column", "score", "--epochs", "1",
                 "--batch-size", "6", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "pearson" in printed and "spearman" in printed, printed
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "regression" and len(config["id2label"]) == 1
    # the metrics on crafted predictions, against SciPy
    examples = ft.normalize_examples("seqcls", rows, {"label": "score"})
    tokenizer = load_tokenizer(checkpoint)
    features = ft.encode_examples("seqcls", examples, tokenizer, max_len=64, labels=None)
    assert [f["labels"] for f in features] == [float(r["score"]) for r in rows]
    class Pooled(FixedLogits):
        def predict(self, batch):
            logits = self.rng.normal(size=(len(batch["input_ids"]), 1))
            self.returned.append(logits)
            return {"logits": logits}

    trainer = Pooled(1)
    scores = ft.evaluate("seqcls", trainer, features, examples, None, pad_id=tokenizer.pad_token_id, max_len=64, batch_size=8)
    predicted, gold = np.concatenate(trainer.returned)[:, 0], [float(r["score"]) for r in rows]
    assert scores["pearson"] == pytest.approx(scipy_stats.pearsonr(gold, predicted)[0])
    assert scores["spearman"] == pytest.approx(scipy_stats.spearmanr(gold, predicted)[0])


def test_label_all_tokens_labels_every_piece_b_as_i_and_scores_words(checkpoint):
    tokenizer = load_tokenizer(checkpoint)
    word = "Gardenriverhouse"  # not in the tiny vocabulary as one piece
    pieces = len(tokenizer(" " + word, add_special_tokens=False)["input_ids"])
    assert pieces > 1
    names = ["B-LOC", "I-LOC", "O"]
    example = {"tokens": ["the", word, "sat"], "labels": ["O", "B-LOC", "O"]}
    (plain,) = ft.encode_examples("tokcls", [example], tokenizer, max_len=64, labels=names)
    (every,) = ft.encode_examples("tokcls", [example], tokenizer, max_len=64, labels=names, label_all_tokens=True)
    starts = plain["word_starts"]
    assert every["word_starts"] == starts and len(starts) == 3
    assert every["labels"][starts[1] : starts[2]] == [0] + [1] * (pieces - 1)  # B-LOC, then I-LOC on the rest
    assert plain["labels"][starts[1] : starts[2]] == [0] + [-100] * (pieces - 1)
    # scored on the words: the same whatever the extra pieces predict
    trainer = FixedLogits(len(names))
    scores = ft.evaluate("tokcls", trainer, [every], [example], names, pad_id=tokenizer.pad_token_id, max_len=64, batch_size=1)
    predicted = [names[int(np.argmax(trainer.returned[0][0][p]))] for p in starts]
    assert scores["accuracy"] == pytest.approx(np.mean([a == b for a, b in zip(example["labels"], predicted)]))


def test_words_are_encoded_as_v4s_run_ner_with_a_prefix_space_on_each(checkpoint):
    """v4's run_ner.py loads RoBERTa's tokenizer with add_prefix_space=True and encodes the words
    with is_split_into_words: every word, the first too, is ' ' + word; a word with no pieces ('')
    drops out and the labels stay on their words."""
    tokenizer = load_tokenizer(checkpoint)
    names = ["B-PER", "O"]
    (f,) = ft.encode_examples("tokcls", [{"tokens": ["", "the", "cat"], "labels": ["O", "B-PER", "O"]}],
                              tokenizer, max_len=64, labels=names)
    pieces = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in ("the", "cat")]
    assert f["input_ids"] == [tokenizer.bos_token_id, *pieces[0], *pieces[1], tokenizer.eos_token_id]
    assert f["word_starts"] == [1, 1 + len(pieces[0])]
    assert [f["labels"][p] for p in f["word_starts"]] == [0, 1]  # 'the' B-PER, 'cat' O
    assert f["labels"][0] == f["labels"][-1] == -100


def test_files_with_a_byte_order_mark_and_tsv_quotes_read_as_v4s_readers(tmp_path):
    """A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name; a TSV
    has no quoting (GLUE's files, v4's `_read_tsv`), so a '"' stays in the text."""
    (tmp_path / "a.csv").write_text("\ufefftext,label\nhello,1\n", encoding="utf-8")
    assert ft.read_examples(tmp_path / "a.csv") == [{"text": "hello", "label": "1"}]
    (tmp_path / "a.jsonl").write_text('\ufeff{"text": "hi", "label": 0}\n', encoding="utf-8")
    assert ft.read_examples(tmp_path / "a.jsonl") == [{"text": "hi", "label": 0}]
    (tmp_path / "a.tsv").write_text('sentence\tlabel\n"Hello," she said.\t1\n"unbalanced\t0\nlast\t1\n', encoding="utf-8")
    assert [r["sentence"] for r in ft.read_examples(tmp_path / "a.tsv")] == ['"Hello," she said.', '"unbalanced', "last"]


def test_a_questions_leading_spaces_are_dropped_as_v4s_run_qa(checkpoint):
    tokenizer = load_tokenizer(checkpoint)
    example = {"question": "  Who sat?", "context": "the cat sat", "answers": {"text": ["cat"], "answer_start": [4]}}
    (spaced,) = ft.encode_examples("qa", [example], tokenizer, max_len=64, labels=None)
    (plain,) = ft.encode_examples("qa", [{**example, "question": "Who sat?"}], tokenizer, max_len=64, labels=None)
    assert spaced == plain
