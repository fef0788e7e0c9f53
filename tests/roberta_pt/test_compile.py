"""torch.compile (no graph breaks on the fixed-shape forward of every head), torch.export and
torch.inference_mode.

Graph breaks are a property of the Dynamo trace, whatever compiles the graph afterwards, so the
seven `fullgraph=True` checks use the 'eager' backend (about a second each); one head goes
through Inductor for the numbers (the slow one: ~20 s of compiling on two cores)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import ALL_HEADS, padded_batch, tiny_config
from tests.roberta_pt.common import build, t

# Dynamo imports torch.jit internals that warn about their own deprecation.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.jit._script")


def _case(head):
    config = tiny_config(num_labels=2 if head == "question_answering" else 3, is_decoder=head == "causal_lm")
    model, _ = build(head, config)
    ids, mask = padded_batch(config, lengths=(7, 5, 2))
    inputs = dict(input_ids=t(ids), attention_mask=t(mask))
    if head == "multiple_choice":
        inputs = {k: v[None].expand(2, -1, -1) for k, v in inputs.items()}
        inputs["labels"] = torch.tensor([1, 0])
    elif head == "question_answering":
        inputs.update(start_positions=torch.tensor([1, 2, 0]), end_positions=torch.tensor([3, 4, 1]))
    elif head == "sequence_classification":
        inputs["labels"] = torch.tensor([0, 2, 1])
    elif head != "model":
        inputs["labels"] = t(np.where(mask == 1, ids % 3, -100))
    return model, inputs


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch.compiler.reset()
    yield
    torch.compiler.reset()


@pytest.mark.parametrize("head", ALL_HEADS)
def test_every_head_compiles_without_graph_breaks(head):
    model, inputs = _case(head)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        got, want = compiled(**inputs), model(**inputs)
    assert type(got) is type(want) and list(got.keys()) == list(want.keys())
    for name in want.keys():
        if isinstance(want[name], tuple):  # the decoder's cache
            continue
        assert torch.equal(got[name], want[name]), name


def test_compiled_forward_still_rejects_bad_ids():
    model, inputs = _case("masked_lm")
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    bad = inputs["input_ids"].clone()
    bad[0, 1] = 100
    with pytest.raises(RuntimeError, match=r"input_ids must be in 0\.\.99"):
        compiled(input_ids=bad, attention_mask=inputs["attention_mask"])


@pytest.mark.slow
def test_inductor_compiled_forward_raises_for_bad_ids():
    # Inductor compiles an in-graph assertion into a C++ `throw` that aborts the whole process
    # (SIGABRT) on CPU: the compiled check must raise a ValueError the caller can catch. Run in a
    # subprocess, so that an abort fails this test instead of killing pytest.
    code = textwrap.dedent("""
        import torch
        from tests.helpers import tiny_config
        from tests.roberta_pt.common import build

        model = build("model", tiny_config(num_hidden_layers=1))[0]
        compiled = torch.compile(model, fullgraph=True)
        ids = torch.tensor([[0, 5, 9, 2]])
        with torch.no_grad():
            print("good ids:", tuple(compiled(input_ids=ids).last_hidden_state.shape))
            ids[0, 1] = 100
            try:
                compiled(input_ids=ids)
            except ValueError as error:
                print("ValueError:", error)
    """)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert "good ids: (1, 4, 32)" in done.stdout
    assert "ValueError: input_ids must be in 0..99; got values from 0 to 100" in done.stdout


@pytest.mark.slow
def test_inductor_compiled_head_matches_eager():
    model, inputs = _case("sequence_classification")
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        got, want = compiled(**inputs), model(**inputs)
    assert (got.logits - want.logits).abs().max() <= 1e-5
    assert abs(float(got.loss) - float(want.loss)) <= 1e-5


def test_export_one_head():
    model, inputs = _case("masked_lm")
    del inputs["labels"]
    program = torch.export.export(model, (), inputs)
    with torch.no_grad():
        got, want = program.module()(**inputs), model(**inputs)
    assert type(got).__name__ == "MaskedLMOutput"
    assert (got.logits - want.logits).abs().max() <= 1e-6


def test_inference_mode():
    model, inputs = _case("token_classification")
    with torch.no_grad():
        want = model(**inputs)
    with torch.inference_mode():
        got = model(**inputs)
    assert got.logits.is_inference() and torch.equal(got.logits, want.logits) and torch.equal(got.loss, want.loss)
