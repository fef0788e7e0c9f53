"""Input checks every backend runs before it computes, so bad input fails the same way,
with the same words, in PyTorch, TensorFlow and Flax.

The functions take shapes (tuples of ints) and plain numbers, never tensors: a backend reads
the shapes (static under `torch.compile`, `tf.function` and `jax.jit`) and, for value checks,
the min/max it computed itself (eagerly, or through its own assertion op under a compiler,
with the message from `range_message`).
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import numpy as np

from .config import RobertaConfig

__all__ = [
    "IGNORE_INDEX",
    "check_forward_inputs",
    "check_range",
    "range_message",
    "max_length_for",
    "resolve_problem_type",
    "check_labels",
    "check_generation_args",
    "new_token_count",
    "masked_rows",
    "token_budget",
    "check_token_budget",
]

IGNORE_INDEX = -100
Shape = Optional[Sequence[int]]


def max_length_for(config: RobertaConfig) -> int:
    """Longest sequence (cache included) the position tables serve: absolute positions start
    after padding_idx; relative distances need |i - j| < max_position_embeddings."""
    if config.position_embedding_type == "absolute":
        return config.max_sequence_length
    return config.max_position_embeddings


def _shape(s: Shape) -> tuple[int, ...] | None:
    return None if s is None else tuple(_dim(d) for d in s)


def _dim(d: Any) -> Any:
    # A symbolic dimension stays as it is and the checks below compare it symbolically, so a
    # length bound comes from the export's constraints: `jax.export`'s (shape polymorphism; int()
    # cannot read it) and torch.export's (a dynamic `Dim`, a torch.SymInt: int() would specialize
    # it to the example's size, and the export would refuse the dimension as dynamic). Dynamo
    # reads a SymInt as an int, so torch.compile takes the first branch and traces no type test.
    if isinstance(d, int) or hasattr(d, "node"):  # torch.SymInt keeps its symbol in `node`
        return d
    try:
        return int(d)
    except Exception:  # jax's InconclusiveDimensionOperation (jax is not imported here)
        return d


def check_forward_inputs(
    config: RobertaConfig,
    *,
    input_ids: Shape = None,
    inputs_embeds: Shape = None,
    attention_mask: Shape = None,
    token_type_ids: Shape = None,
    position_ids: Shape = None,
    head_mask: Shape = None,
    encoder_hidden_states: Shape = None,
    encoder_attention_mask: Shape = None,
    past_length: int = 0,
    mask_3d: bool = False,
) -> tuple[int, int]:
    """Check the shapes of an encoder call; return (batch, length). Arguments are shapes.
    `mask_3d`: an attention_mask (batch, length, past + length), one row per query, is accepted
    too (v4's PyTorch models take it)."""
    ids, embeds = _shape(input_ids), _shape(inputs_embeds)
    if ids is not None and embeds is not None:
        raise ValueError("give input_ids or inputs_embeds, not both")
    if ids is None and embeds is None:
        raise ValueError("give input_ids (batch, length) or inputs_embeds (batch, length, hidden_size)")
    if ids is not None:
        if len(ids) != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {ids}")
        batch, length = ids
    else:
        if len(embeds) != 3 or embeds[2] != config.hidden_size:
            raise ValueError(
                f"inputs_embeds must have shape (batch, length, hidden_size={config.hidden_size}), got {embeds}"
            )
        batch, length = embeds[:2]
    if batch < 1 or length < 1:
        raise ValueError(f"inputs must hold at least one sequence of at least one token, got shape {(batch, length)}")
    limit = max_length_for(config)
    if past_length + length > limit:
        where = f" ({past_length} cached + {length} new)" if past_length else ""
        raise ValueError(
            f"sequence length {past_length + length}{where} exceeds the {limit} tokens this model's position "
            f"table serves (max_position_embeddings={config.max_position_embeddings}, "
            f"pad_token_id={config.pad_token_id}); truncate the input to at most {limit} tokens"
        )
    mask = _shape(attention_mask)
    want = (batch, past_length + length)
    if mask is not None and mask != want and not (mask_3d and mask == (batch, length, want[1])):
        extra = " (cached + new tokens)" if past_length else ""
        square = f" or {(batch, length, want[1])}" if mask_3d else ""
        raise ValueError(f"attention_mask must have shape {want}{extra}{square} to match the inputs, got {mask}")
    tt = _shape(token_type_ids)
    if tt is not None and tt != (batch, length):
        raise ValueError(f"token_type_ids must have shape {(batch, length)} like the inputs, got {tt}")
    pos = _shape(position_ids)
    if pos is not None and pos not in ((batch, length), (1, length), (length,)):
        raise ValueError(f"position_ids must have shape {(batch, length)}, {(1, length)} or {(length,)}, got {pos}")
    hm = _shape(head_mask)
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    if hm is not None and hm not in ((heads,), (layers, heads)):
        raise ValueError(f"head_mask must have shape ({heads},) or ({layers}, {heads}), got {hm}")
    enc = _shape(encoder_hidden_states)
    if enc is not None:
        if not config.add_cross_attention:
            raise ValueError(
                "encoder_hidden_states were given but this model has no cross-attention; "
                "build it with add_cross_attention=True (and is_decoder=True)"
            )
        if len(enc) != 3 or enc[0] != batch or enc[2] != config.hidden_size:
            raise ValueError(
                f"encoder_hidden_states must have shape ({batch}, source_length, {config.hidden_size}), got {enc}"
            )
        enc_mask = _shape(encoder_attention_mask)
        if enc_mask is not None and enc_mask != enc[:2]:
            raise ValueError(f"encoder_attention_mask must have shape {enc[:2]}, got {enc_mask}")
    elif encoder_attention_mask is not None:
        raise ValueError("encoder_attention_mask was given without encoder_hidden_states")
    return batch, length


def range_message(name: str, upper: int, lower: int = 0, allow_ignore: bool = False) -> str:
    """The error text for values of `name` outside [lower, upper)."""
    extra = f" (or {IGNORE_INDEX} to ignore a position)" if allow_ignore else ""
    return f"{name} must be in {lower}..{upper - 1}{extra}"


def check_range(name: str, lo: int, hi: int, upper: int, *, lower: int = 0, allow_ignore: bool = False) -> None:
    """Raise if the observed min `lo` / max `hi` of `name` leave [lower, upper). With
    `allow_ignore`, -100 is allowed too (the caller computes `lo` over the other values)."""
    if lo < lower or hi >= upper:
        raise ValueError(f"{range_message(name, upper, lower, allow_ignore)}; got values from {lo} to {hi}")


def resolve_problem_type(config: RobertaConfig, labels_are_integers: bool) -> str:
    """v4's rule: the config's problem_type, else regression for one label, single-label for
    integer labels, multi-label otherwise."""
    if config.problem_type is not None:
        return config.problem_type
    if config.num_labels == 1:
        return "regression"
    return "single_label_classification" if labels_are_integers else "multi_label_classification"


def check_labels(
    head: str,
    config: RobertaConfig,
    labels: Shape,
    *,
    batch: int,
    length: int,
    labels_are_integers: bool,
    num_choices: int | None = None,
) -> str | None:
    """Check the shape and kind of `labels` for `head`; return the problem type for sequence
    classification (None for the other heads). Value ranges are checked by the backend with
    `check_range`, as they need the values."""
    shape = _shape(labels)
    if shape is None:
        return None
    if head in ("masked_lm", "causal_lm", "token_classification"):
        if shape != (batch, length):
            raise ValueError(f"labels must have shape {(batch, length)} (one per token), got {shape}")
        if not labels_are_integers:
            raise TypeError("labels must be integer token/class ids (-100 to ignore a position)")
        return None
    if head == "multiple_choice":
        if shape != (batch,):
            raise ValueError(f"labels must have shape ({batch},) (the index of the right choice), got {shape}")
        if not labels_are_integers:
            raise TypeError(f"labels must be integer choice indices in 0..{(num_choices or 1) - 1}")
        return None
    if head == "sequence_classification":
        problem = resolve_problem_type(config, labels_are_integers)
        L = config.num_labels
        if problem == "regression":
            if shape not in ((batch,), (batch, L)) and not (L == 1 and shape == (batch, 1)):
                raise ValueError(f"regression labels must have shape ({batch},) or ({batch}, {L}), got {shape}")
        elif problem == "single_label_classification":
            if shape not in ((batch,), (batch, 1)):  # (B, 1): a Keras-style y, which v4 flattens too
                raise ValueError(f"single-label classification labels must have shape ({batch},) or ({batch}, 1), "
                                 f"got {shape}")
            if not labels_are_integers:
                raise TypeError(f"single-label classification labels must be integer class ids in 0..{L - 1}")
        else:
            if shape != (batch, L):
                raise ValueError(
                    f"multi-label classification labels must have shape ({batch}, {L}) (0/1 per label), got {shape}"
                )
        return problem
    if head == "question_answering":
        if shape not in ((batch,), (batch, 1)):
            raise ValueError(f"start_positions/end_positions must have shape ({batch},), got {shape}")
        if not labels_are_integers:
            raise TypeError("start_positions/end_positions must be integer token indices")
        return None
    raise ValueError(f"head {head!r} takes no labels")


# generate()'s default length: 20 new tokens (v4 4.57 adds its default max_length of 20 to the prompt).
DEFAULT_MAX_LENGTH = 20  # v4's GenerationConfig().max_length


def new_token_count(prompt_length: int, max_new_tokens: int | None, max_length: int | None, *,
                    default_counts_prompt: bool = True, limit: int | None = None) -> int:
    """How many tokens generate() adds, as v4 reads its two limits: `max_new_tokens` (it wins,
    with v4's warning, when `max_length` is given too); else `max_length`, which counts the prompt
    (a prompt of that length or longer is an error, as in v4); else v4's default of 20, which its
    TF and Flax generate read as `max_length` (the prompt counts, with v4's warning that
    recommends `max_new_tokens`: `default_counts_prompt`) and its PyTorch generate as 20 new tokens,
    fewer where the model's `limit` (positions) ends first."""
    if max_new_tokens is not None:
        if max_length is not None:
            warnings.warn(f"both max_new_tokens (={max_new_tokens}) and max_length (={max_length}) are set: "
                          "max_new_tokens takes precedence (as in v4)", UserWarning, stacklevel=3)
        return max_new_tokens
    if max_length is None:
        if not default_counts_prompt:
            return DEFAULT_MAX_LENGTH if limit is None else max(1, min(DEFAULT_MAX_LENGTH, limit - prompt_length))
        max_length = DEFAULT_MAX_LENGTH
        warnings.warn(f"Using the model-agnostic default `max_length` (={max_length}) to control the generation "
                      "length, as v4 does: the prompt counts. We recommend setting `max_new_tokens` to control the "
                      "maximum length of the generation.", UserWarning, stacklevel=3)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
    if max_length <= prompt_length:
        raise ValueError(f"max_length={max_length} counts the prompt, which already has {prompt_length} tokens: "
                         f"give more than {prompt_length}, or max_new_tokens")
    return max_length - prompt_length


def check_generation_args(
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    do_sample: bool,
    min_new_tokens: int | None = None,
    repetition_penalty: float | None = None,
) -> None:
    """Check `generate()` settings, the same in every backend."""
    if min_new_tokens is not None and (isinstance(min_new_tokens, bool) or not isinstance(min_new_tokens, int)
                                       or min_new_tokens < 0):
        raise ValueError(f"min_new_tokens must be a non-negative integer or None, got {min_new_tokens!r}")
    if repetition_penalty is not None and not (isinstance(repetition_penalty, (int, float)) and repetition_penalty > 0):
        raise ValueError(f"repetition_penalty must be a positive number (1.0: none), got {repetition_penalty!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if do_sample and not (temperature > 0):
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"top_k must be a non-negative integer (0: no top-k filter, as v4) or None, got {top_k!r}")
    if top_p is not None and not (0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def _option(value: Any) -> Any:
    """A Python option (`unpad`, `masked_positions_only`) given as a 0-d array, as its Python
    value: TorchScript's ONNX exporter (`torch.onnx.export(..., dynamo=False)`) passes the
    defaults of `forward`'s arguments it was not given as 0-d tensors (`unpad=False` as
    tensor(False)). Options stay Python values everywhere else (a traced one is read here)."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item") and not isinstance(value, (bool, int)):
        return value.item()
    return value


def masked_rows(labels_given: bool, masked_positions_only: Any) -> bool | int | None:
    """What a `masked_positions_only` argument of a MaskedLM head asks for: None (off), True (the
    labelled rows, sized from the labels) or M, a static number of rows (an int >= 0, for
    compiled code whose shapes are static)."""
    masked_positions_only = _option(masked_positions_only)
    if isinstance(masked_positions_only, (bool, np.bool_)):
        if not masked_positions_only:
            return None
        masked_positions_only = True
    elif not isinstance(masked_positions_only, (int, np.integer)) or masked_positions_only < 0:
        raise ValueError(
            "masked_positions_only must be True, False or the number of rows (an int >= 0), "
            f"got {masked_positions_only!r}"
        )
    else:
        masked_positions_only = int(masked_positions_only)
    if not labels_given:
        raise ValueError("masked_positions_only=True computes the logits where labels != -100: give labels (B, T)")
    return masked_positions_only


def token_budget(unpad: Any) -> bool | int:
    """What an `unpad` argument asks for: False (the padded forward; None too), True (the real
    tokens, the stream sized from the mask's values) or N, a token budget: a static number of
    stream slots (an int >= 1, for compiled code whose shapes are static)."""
    unpad = _option(unpad)
    if unpad is None or isinstance(unpad, (bool, np.bool_)):
        return bool(unpad)
    if not isinstance(unpad, (int, np.integer)) or unpad < 1:
        raise ValueError(f"unpad must be True, False or the token budget (a positive int), got {unpad!r}")
    return int(unpad)


def check_token_budget(budget: int, real: int) -> None:
    """An `unpad=N` stream of `budget` slots must hold the batch's `real` tokens (eagerly; a
    compiled call cannot read the count and poisons its outputs instead)."""
    if real > budget:
        raise ValueError(f"unpad={budget} slots cannot hold the {real} real tokens of this batch")
