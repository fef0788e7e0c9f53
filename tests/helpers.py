"""The shared test helper every model test calls: tiny configs, random canonical weights,
padded inputs, golden fixtures and the comparison used across the suite. NumPy only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from roberta_core.parity import suite
from roberta_core.config import RobertaConfig
from roberta_core.weights import HEADS, tied_keys

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = FIXTURES / "golden"

ALL_HEADS = tuple(HEADS)


def tiny_config(**overrides) -> RobertaConfig:
    """The `tiny` preset with dropout off (tests compare numbers), plus overrides."""
    return suite.tiny(overrides)


def random_state(config: RobertaConfig, head: str, seed: int = 0, scale: float = 0.2) -> dict[str, np.ndarray]:
    """Random float32 canonical weights for `head` (the conformance suite's draw): LayerNorm
    weights near 1, everything else N(0, scale) — large enough that a wrong transposition or a
    missing term shows in the output."""
    return suite.random_state(config, head, seed, scale)


def with_tied(config: RobertaConfig, head: str, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`state` plus the tied aliases (lm_head.decoder.*) as the arrays they are views of."""
    out = dict(state)
    for alias, source in tied_keys(config, head).items():
        out[alias] = state[source]
    return out


def padded_batch(
    config: RobertaConfig, lengths=(7, 5, 2), seed: int = 0, pad_to: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random ids (B, T) with ragged real lengths, right-padded with pad_token_id, and the
    attention mask. Real tokens avoid the special ids 0..3, and start with <s>."""
    rng = np.random.default_rng(seed)
    T = pad_to or max(lengths)
    ids = np.full((len(lengths), T), config.pad_token_id, dtype=np.int64)
    mask = np.zeros((len(lengths), T), dtype=np.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(4, config.vocab_size, size=n)
        ids[b, 0] = config.bos_token_id
        mask[b, :n] = 1
    return ids, mask


def multiple_choice_case(config: RobertaConfig, state: dict[str, np.ndarray]) -> dict:
    """A (B, 2, T) multiple-choice batch with explicit position ids, and the float64 reference's
    logits for it and loss for `labels`: what the backends' positional-argument tests call."""
    from roberta_core.reference import forward

    ids, mask = padded_batch(config)
    ids3, mask3 = np.stack([ids, ids[::-1]], 1), np.stack([mask, mask[::-1]], 1)
    positions = np.broadcast_to(np.arange(ids.shape[1]) + 2, ids3.shape).copy()
    labels = np.array([0, 1, 1])
    return dict(
        ids=ids3, mask=mask3, positions=positions, labels=labels,
        logits=forward(config, state, "multiple_choice", input_ids=ids3, attention_mask=mask3,
                       position_ids=positions)["logits"],
        loss=forward(config, state, "multiple_choice", input_ids=ids3, attention_mask=mask3, labels=labels)["loss"],
    )


def rel_err(got, ref) -> float:
    """‖got − ref‖ / ‖ref‖ (ARCHITECTURE §5), in float64."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"shape {got.shape} != reference {ref.shape}"
    denom = np.linalg.norm(ref)
    return float(np.linalg.norm(got - ref) / (denom if denom > 0 else 1.0))


def assert_close(got, ref, *, atol: float = 1e-5, what: str = "") -> None:
    """Max abs difference ≤ atol, with a message that says where."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    diff = np.abs(got - ref)
    worst = float(diff.max()) if diff.size else 0.0
    assert worst <= atol, f"{what}: max abs diff {worst:.3g} > {atol:g} at {np.unravel_index(diff.argmax(), diff.shape)}"


def golden(head: str) -> Path:
    """Directory of the golden fixture for `head` (written by transformers 4.57.6)."""
    path = GOLDEN / head
    if not path.is_dir():
        pytest.skip(f"golden fixture {path} is absent (generate with tests/fixtures/make_golden.py)")
    return path


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skips the test where that folder is absent (a fresh clone)."""
    path = SHARED.joinpath("data", *parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder exists only in the team's workspace)")
    return path
