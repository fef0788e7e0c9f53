"""Truncation and padding: the call's options, overflow windows with stride, padding to the
longest / to max_length / to a multiple, and the rows (`<s> a </s>` ...) they produce."""

from __future__ import annotations

import logging

from .batch_encoding import TENSOR_TYPES, BatchEncoding, _pad_rows, to_python

logger = logging.getLogger(__name__)

# v4's model_max_length when nothing sets one (VERY_LARGE_INTEGER), and the bound above which it
# counts as "no limit" (LARGE_INTEGER): truncation and padding to it are then dropped.
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)
# v4's output key orders: its fast tokenizer's, and its slow one's (which `prepare_for_model` of
# both uses); in a slow batch, `length` comes before `attention_mask`.
FAST_KEY_ORDER = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping", "length",
                  "overflow_to_sample_mapping")
SLOW_KEY_ORDER = ("overflowing_tokens", "num_truncated_tokens", "input_ids", "token_type_ids", "special_tokens_mask",
                  "offset_mapping", "attention_mask", "length")
PER_TOKEN_KEYS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping")

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
CALL_DEFAULTS = dict(
    add_special_tokens=True, padding=False, truncation=None, max_length=None, stride=0,
    is_split_into_words=False, pad_to_multiple_of=None, padding_side=None, return_tensors=None,
    return_token_type_ids=None, return_attention_mask=None, return_overflowing_tokens=False,
    return_special_tokens_mask=False, return_offsets_mapping=False, return_length=False,
    split_special_tokens=None, verbose=True,
    _fast_layout=False,  # private: `_call_fast_layout`'s windows from the slow tokenizer too
)


class PaddingMixin:
    """The truncation/padding part of `RobertaTokenizerBase`: `_plan` checks a call's options,
    `_finish` turns encoded (first, second) items into padded rows and a BatchEncoding, `pad` pads
    already encoded inputs."""

    def _plan(self, options: dict, has_pair: list[bool], slow_layout: bool | None = None) -> dict:
        """Check the call's options once and resolve truncation/padding lengths.

        `slow_layout` (default: for the slow tokenizer) asks for v4 slow's output (see `_finish`).
        """
        if slow_layout is None:
            slow_layout = not (self.is_fast or options["_fast_layout"])  # see _call_fast_layout
        padding, truncation, max_length = options["padding"], options["truncation"], options["max_length"]
        if padding is True:
            padding = "longest"
        elif padding is False or padding is None:
            padding = "do_not_pad"
        if padding not in PADDING_STRATEGIES:
            raise ValueError(f"padding must be True, False or one of {PADDING_STRATEGIES}, got {padding!r}")
        if truncation is None and max_length is not None and options["padding"] is False:
            truncation = True  # v4 truncates when max_length comes without truncation and padding (not 'do_not_pad')
        if truncation is True:
            truncation = "longest_first"
        elif truncation is False or truncation is None:
            truncation = "do_not_truncate"
        if truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(f"truncation must be True, False or one of {TRUNCATION_STRATEGIES}, got {truncation!r}")
        if max_length is not None:
            _check_int("max_length", max_length, 0)
        else:
            # As v4: without max_length both use model_max_length, unless that is "no limit".
            if padding == "max_length":
                if self.model_max_length > LARGE_INTEGER:
                    self._warn_once("Asking to pad to max_length but no maximum length is provided and the model "
                                    "has no predefined maximum length. Default to no padding.", options["verbose"])
                    padding = "do_not_pad"
                else:
                    max_length = self.model_max_length
            if truncation != "do_not_truncate":
                if self.model_max_length > LARGE_INTEGER:
                    self._warn_once("Asking to truncate to max_length but no maximum length is provided and the "
                                    "model has no predefined maximum length. Default to no truncation.",
                                    options["verbose"])
                    truncation = "do_not_truncate"
                else:
                    max_length = self.model_max_length
        stride = _check_int("stride", options["stride"], 0)
        multiple = options["pad_to_multiple_of"]
        if multiple is not None:
            _check_int("pad_to_multiple_of", multiple, 1)
        n_special = [self.num_special_tokens_to_add(p) if options["add_special_tokens"] else 0 for p in has_pair]
        if truncation != "do_not_truncate":
            if max_length < max(n_special, default=0):
                raise ValueError(f"max_length={max_length} is smaller than the {max(n_special)} special tokens "
                                 "each sequence needs; use max_length >= that or add_special_tokens=False")
            if slow_layout and options["return_overflowing_tokens"] and truncation == "longest_first" and any(has_pair):
                # v4's slow tokenizer refuses it (its fast one pairs the windows of both texts).
                raise ValueError("Not possible to return overflowing tokens for pair of sequences with the "
                                 "`longest_first`. Please select another truncation strategy than `longest_first`, "
                                 "for instance `only_second` or `only_first`.")
            if padding != "do_not_pad" and multiple and max_length % multiple:
                raise ValueError(f"max_length={max_length} is not a multiple of pad_to_multiple_of={multiple}; "
                                 "truncation and padding would disagree")
        _check_side("truncation_side", self.truncation_side)  # attributes may have been set since __init__
        side = options["padding_side"]
        split_special = options["split_special_tokens"]
        return_tensors = options["return_tensors"]
        if return_tensors is not None and return_tensors not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be one of {TENSOR_TYPES} or None, got {return_tensors!r}")
        return {
            **options, "padding": padding, "truncation": truncation, "max_length": max_length, "stride": stride,
            "padding_side": _check_side("padding_side", self.padding_side if side is None else side),
            "split_special_tokens": self.split_special_tokens if split_special is None else bool(split_special),
            "return_attention_mask": options["return_attention_mask"] is not False,
            "slow_layout": slow_layout, "windows": options["return_overflowing_tokens"] and not slow_layout,
        }

    def _warn_once(self, message: str, verbose: bool = True, key: str | None = None) -> None:
        """Log `message` the first time this tokenizer meets it (or `key`, for a message that
        varies, as v4 keys its warnings)."""
        key = message if key is None else key
        if verbose and key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def _finish(self, plan: dict, items: list, batched: bool, source=None, batch_axis: bool = True) -> BatchEncoding:
        """Special tokens, truncation windows, padding and tensors for encoded (first, second) items.

        An item's parts are (ids, offsets or None, word ids or None, origin or None), see `_Row`;
        `source` (a `batch_encoding.TokenSource`) lets the output's accessors re-encode the texts.
        One input (`batched` False) gives flat lists, or tensors with a batch axis unless `batch_axis` is False.

        The layout is v4's. Its fast tokenizer's: overflow windows as rows of their own (then even
        one input gives a batch) with `overflow_to_sample_mapping`, `length` counting the padding
        and a list even for one input. Its slow tokenizer's (`plan["slow_layout"]`, also what
        `prepare_for_model` gives): one row per input with the ids truncation cut off (and `stride`
        ids before them) as `overflowing_tokens` and `num_truncated_tokens` (total - max_length,
        negative when nothing was cut), `length` without the padding in a batch (v4's quirk: with it
        for one input), and its key order.
        """
        cls_id, sep_id = self.cls_token_id, self.sep_token_id
        add_special = plan["add_special_tokens"]
        if add_special and (cls_id is None or sep_id is None):
            raise ValueError("add_special_tokens=True needs cls_token and sep_token")
        slow = plan["slow_layout"]
        rows, sample_map, overflow = [], [], []
        for index, (first, second) in enumerate(items):
            for a, b in self._windows(first, second, plan, index):
                rows.append(_Row(a, b, add_special, cls_id, sep_id))
                sample_map.append(index)
            if slow and plan["return_overflowing_tokens"]:
                overflow.append(self._overflowing_tokens(first[0], None if second is None else second[0], plan))
        if plan["truncation"] == "do_not_truncate" and plan["verbose"]:
            longest = max((len(r.ids) for r in rows), default=0)
            if longest > self.model_max_length:
                self._warn_once("Token indices sequence length is longer than the specified maximum sequence "
                                f"length for this model ({longest} > {self.model_max_length}). Running this "
                                "sequence through the model will result in indexing errors",
                                key="sequence-length-is-longer-than-the-specified-maximum")
        data = {"input_ids": [r.ids for r in rows]}
        if plan["return_token_type_ids"]:
            data["token_type_ids"] = [[0] * len(r.ids) for r in rows]
        if plan["return_attention_mask"]:
            data["attention_mask"] = [[1] * len(r.ids) for r in rows]
        if plan["return_special_tokens_mask"]:
            data["special_tokens_mask"] = [r.special_mask() for r in rows]
        if plan["return_offsets_mapping"]:
            data["offset_mapping"] = [r.offsets for r in rows]
        padded = None
        if plan["padding"] != "do_not_pad":
            target = self._pad_target([len(r.ids) for r in rows], plan["padding"], plan["max_length"],
                                      plan["pad_to_multiple_of"])
            left = plan["padding_side"] == "left"
            for key in data:
                data[key] = _pad_rows(data[key], target, self._pad_value(key), left)
            padded = (target, left)
        if plan["return_length"]:
            counted = data["input_ids"] if not slow or not batched else [r.ids for r in rows]
            data["length"] = [len(ids) for ids in counted]
        if overflow:
            data["overflowing_tokens"] = [tokens for tokens, _ in overflow]
            data["num_truncated_tokens"] = [count for _, count in overflow]
        if plan["windows"]:
            data["overflow_to_sample_mapping"] = sample_map
        order = SLOW_KEY_ORDER if slow else FAST_KEY_ORDER
        if slow and batched:
            order = (*order[:-2], "length", "attention_mask")
        data = {key: data[key] for key in order if key in data}
        if not batched and not plan["windows"] and (plan["return_tensors"] is None or not batch_axis):
            # v4 fast keeps a list of per-row numbers (`length`) as it is.
            data = {key: value[0] if slow or isinstance(value[0], list) else value for key, value in data.items()}
        return BatchEncoding(data, plan["return_tensors"], rows=(rows, padded), source=source, fast=not slow)

    def _overflowing_tokens(self, ids: list[int], pair_ids: list[int] | None, plan: dict) -> tuple[list[int], int]:
        """v4 slow's (overflowing_tokens, num_truncated_tokens) of one input."""
        max_length = plan["max_length"]
        if max_length is None:
            raise TypeError("return_overflowing_tokens on the slow tokenizer needs a max_length (v4 counts the "
                            "truncated tokens from it); pass max_length or truncation=True with a model_max_length")
        special = self.num_special_tokens_to_add(pair_ids is not None) if plan["add_special_tokens"] else 0
        total = len(ids) + len(pair_ids or ()) + special
        cut = []
        if plan["truncation"] != "do_not_truncate" and total > max_length:
            cut = self.truncate_sequences(ids, pair_ids, total - max_length, plan["truncation"], plan["stride"])[2]
        return cut, total - max_length

    def truncate_sequences(self, ids: list[int], pair_ids: list[int] | None = None, num_tokens_to_remove: int = 0,
                           truncation_strategy: str = "longest_first", stride: int = 0):
        """v4's: (ids, pair_ids, overflowing_tokens) with `num_tokens_to_remove` ids cut on the
        truncation side. The overflowing tokens are the ids cut from the one truncated text plus
        `stride` ids next to them; none for a pair with 'longest_first', which cuts from the longer
        text until both are as long, then from both (the first text loses the odd one). A text too
        short to cut is left as it is, with an error logged (as v4 does)."""
        if num_tokens_to_remove <= 0:
            return ids, pair_ids, []
        strategy = truncation_strategy
        if strategy not in TRUNCATION_STRATEGIES:
            raise ValueError(f"truncation_strategy must be one of {TRUNCATION_STRATEGIES}, got {strategy!r}")
        side = _check_side("truncation_side", self.truncation_side)
        overflowing = []
        if strategy == "only_first" or (strategy == "longest_first" and pair_ids is None):
            if len(ids) > num_tokens_to_remove:
                ids, overflowing = _cut(ids, num_tokens_to_remove, stride, side)
            else:
                logger.error(f"We need to remove {num_tokens_to_remove} to truncate the input but the first sequence "
                             f"has a length {len(ids)}. ")
        elif strategy == "longest_first":
            logger.warning("Be aware, overflowing tokens are not returned for the setting you have chosen, i.e. "
                           "sequence pairs with the 'longest_first' truncation strategy. So the returned list will "
                           "always be empty even if some tokens have been removed.")
            first_remove = min(abs(len(pair_ids) - len(ids)), num_tokens_to_remove)
            second_remove = num_tokens_to_remove - first_remove
            if len(ids) > len(pair_ids):
                ids_to_move, pair_to_move = first_remove + second_remove // 2, second_remove - second_remove // 2
            else:
                ids_to_move, pair_to_move = second_remove // 2, first_remove + second_remove - second_remove // 2
            if side == "right":
                ids = ids[:-ids_to_move] if ids_to_move > 0 else ids
                pair_ids = pair_ids[:-pair_to_move] if pair_to_move > 0 else pair_ids
            else:
                ids, pair_ids = ids[ids_to_move:], pair_ids[pair_to_move:]
        elif strategy == "only_second" and pair_ids is not None:
            if len(pair_ids) > num_tokens_to_remove:
                pair_ids, overflowing = _cut(pair_ids, num_tokens_to_remove, stride, side)
            else:
                logger.error(f"We need to remove {num_tokens_to_remove} to truncate the input but the second sequence "
                             f"has a length {len(pair_ids)}. ")
        return ids, pair_ids, overflowing

    def _windows(self, first, second, plan: dict, index: int):
        """The (first, second) pieces that become rows: one, or several overlapping overflow windows.

        Follows `tokenizers`: 'longest_first' on a pair cuts the longer text first and splits the
        rest evenly (the second text gets the odd token); overflow windows advance by
        max_length - specials - stride tokens.
        """
        strategy = plan["truncation"]
        if strategy == "do_not_truncate":
            return [(first, second)]
        budget = plan["max_length"] - (self.num_special_tokens_to_add(second is not None)
                                       if plan["add_special_tokens"] else 0)
        n1, n2 = len(first[0]), (len(second[0]) if second is not None else 0)
        if n1 + n2 <= budget:
            return [(first, second)]
        if strategy == "only_second" and second is None:
            # v4 lets a single text through when it fits, and fails (fast) where it would need cutting
            raise ValueError(f"truncation='only_second' cannot shorten batch item {index}, a single text of {n1} "
                             f"tokens over max_length={plan['max_length']}: it needs a text_pair; use "
                             "'only_first' or 'longest_first' for single texts")
        side, stride = self.truncation_side, plan["stride"]
        overflow = plan["windows"]
        if second is None or strategy == "longest_first":
            if second is None:
                keep1, keep2 = budget, 0
            else:
                short, long_ = sorted((n1, n2))
                keep_long = short if short > budget else max(short, budget - short)
                keep_short = short
                if keep_short + keep_long > budget:
                    keep_short, keep_long = budget // 2, budget // 2 + budget % 2
                keep1, keep2 = (keep_short, keep_long) if n1 <= n2 else (keep_long, keep_short)
            for name, keep, n in (("first", keep1, n1), ("second", keep2, n2)):
                if keep < 1 and n > 0:
                    raise ValueError(f"max_length={plan['max_length']} leaves no token of the {name} text "
                                     f"(batch item {index}); it must leave at least one per text")
            spans1 = _window_spans(n1, keep1, stride if overflow else 0, side, index)
            if second is None:
                return [(_slice(first, *span), None) for span in (spans1 if overflow else spans1[:1])]
            spans2 = _window_spans(n2, keep2, stride if overflow else 0, side, index)
            # Windows of both texts, paired as `tokenizers`' Encoding::merge_with does: the first of
            # each, then every later window of the first text with each of the second's, then the
            # first window of the first text with each later one of the second's.
            pairs = [(spans1[0], spans2[0])]
            if overflow:
                pairs += [(w1, w2) for w1 in spans1[1:] for w2 in spans2] + [(spans1[0], w2) for w2 in spans2[1:]]
            return [(_slice(first, *w1), _slice(second, *w2)) for w1, w2 in pairs]
        target_is_first = strategy == "only_first"
        n_target = n1 if target_is_first else n2
        keep = n_target - (n1 + n2 - budget)
        if keep < 1:
            name = "first" if target_is_first else "second"
            raise ValueError(f"truncation={strategy!r} cannot fit batch item {index} into max_length="
                             f"{plan['max_length']}: the {name} text would lose all {n_target} tokens "
                             f"(the other text alone needs {n1 + n2 - n_target} plus specials)")
        spans = _window_spans(n_target, keep, stride if overflow else 0, side, index)
        if not overflow:
            spans = spans[:1]
        target = first if target_is_first else second
        pieces = [_slice(target, s, e) for s, e in spans]
        return [(p, second) for p in pieces] if target_is_first else [(first, p) for p in pieces]

    def _pad_target(self, lengths: list[int], padding: str, max_length: int | None, multiple: int | None) -> int:
        if self.pad_token_id is None:
            raise ValueError("padding needs a pad_token; set one with add_special_tokens({'pad_token': ...})")
        target = max(lengths, default=0) if padding == "longest" else max_length
        if multiple and target % multiple:
            target += multiple - target % multiple
        return target

    def _pad_value(self, key: str):
        return {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0,
                "special_tokens_mask": 1, "offset_mapping": (0, 0)}[key]

    def pad(self, encoded_inputs, padding=True, max_length: int | None = None, pad_to_multiple_of: int | None = None,
            padding_side: str | None = None, return_attention_mask: bool | None = None,
            return_tensors: str | None = None) -> BatchEncoding:
        """Pad already encoded inputs (a dict of lists, or a list of such dicts, as collators build them)."""
        if isinstance(encoded_inputs, (list, tuple)):
            if not encoded_inputs or not all(isinstance(x, dict) for x in encoded_inputs):
                raise TypeError("pad takes a dict of lists or a non-empty list of dicts")
            keys = list(encoded_inputs[0])
            encoded_inputs = {k: [x[k] for x in encoded_inputs] for k in keys}
        elif not isinstance(encoded_inputs, dict):
            raise TypeError(f"pad takes a dict of lists or a list of dicts, got {type(encoded_inputs).__name__}")
        if "input_ids" not in encoded_inputs:
            raise ValueError(f"pad needs 'input_ids' among the keys, got {sorted(encoded_inputs)}")
        if return_tensors is None:
            return_tensors = _tensor_type_of(encoded_inputs["input_ids"])
        # Arrays and tensors (TensorFlow's too: `.numpy()`) as Python lists, also a list of them.
        data = {k: to_python(v) for k, v in encoded_inputs.items()}
        data = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in data.items()}
        single = not data["input_ids"] or not isinstance(data["input_ids"][0], (list, tuple))
        if single:
            data = {k: [v] for k, v in data.items()}
        if return_attention_mask is not False and "attention_mask" not in data:
            data["attention_mask"] = [[1] * len(ids) for ids in data["input_ids"]]
        plan = self._plan({**CALL_DEFAULTS, "padding": padding, "max_length": max_length,
                           "pad_to_multiple_of": pad_to_multiple_of, "padding_side": padding_side,
                           "return_tensors": return_tensors, "truncation": False}, [])
        if plan["padding"] != "do_not_pad":
            target = self._pad_target([len(ids) for ids in data["input_ids"]], plan["padding"], plan["max_length"],
                                      plan["pad_to_multiple_of"])
            for key in data:
                if key in PER_TOKEN_KEYS and key != "offset_mapping":  # v4 leaves offsets as they are
                    data[key] = _pad_rows(data[key], target, self._pad_value(key), plan["padding_side"] == "left")
        # As v4: return_attention_mask=False makes no mask but keeps (and pads) one the inputs have,
        # and a single example stays one (tensors without a batch axis).
        if single:
            data = {k: v[0] for k, v in data.items()}
        return BatchEncoding(data, return_tensors)


class _Row:
    """One output row before padding: `<s> a </s>` or `<s> a </s></s> b </s>` and its per-token data.

    `offsets` and `words` are there when the texts were encoded with offsets or split into words;
    `origin` is ((k, start) of a, (k, start) of b or None): which encoded sequence each part was
    cut from and where, so that the accessors can re-encode it with offsets on first use (None
    for `prepare_for_model`, which has no text).
    """

    __slots__ = ("ids", "n1", "n2", "special", "offsets", "words", "origin")

    def __init__(self, a, b, special: bool, cls_id: int, sep_id: int):
        self.n1, self.n2, self.special = len(a[0]), (None if b is None else len(b[0])), special
        self.ids = self.around(a[0], None if b is None else b[0], None, cls_id, sep_id)
        self.offsets = None if a[1] is None else self.around(a[1], None if b is None else b[1], (0, 0))
        self.words = None if a[2] is None else self.around(a[2], None if b is None else b[2], None)
        self.origin = None if a[3] is None else (a[3], None if b is None else b[3])

    def around(self, a: list, b: list | None, filler, cls=None, sep=None) -> list:
        """Per-token values of the two parts with the special tokens' places (`cls`/`sep`, else `filler`) added."""
        if not self.special:
            return a if b is None else a + b
        start, end = (filler, filler) if cls is None else (cls, sep)
        if b is None:
            return [start, *a, end]
        return [start, *a, end, end, *b, end]

    def special_mask(self) -> list[int]:
        if not self.special:
            return [0] * len(self.ids)
        if self.n2 is None:
            return [1] + [0] * self.n1 + [1]
        return [1] + [0] * self.n1 + [1, 1] + [0] * self.n2 + [1]

    def sequence_ids(self) -> list[int | None]:
        s = [None] if self.special else []
        first = s + [0] * self.n1 + s
        return first if self.n2 is None else first + s + [1] * self.n2 + s


def _window_spans(n: int, keep: int, stride: int, side: str, index: int) -> list[tuple[int, int]]:
    """(start, end) of the kept part, then of each overflow window, as `tokenizers` cuts them."""
    if n <= keep:
        return [(0, n)]
    if stride >= keep:
        raise ValueError(f"stride={stride} must be smaller than the tokens a window keeps ({keep} for batch "
                         f"item {index}: max_length minus special tokens and the other text)")
    step = keep - stride
    if side == "right":
        spans, start = [], 0
        while True:
            spans.append((start, min(start + keep, n)))
            if start + keep >= n:
                return spans
            start += step
    spans, end = [], n
    while True:
        spans.append((max(end - keep, 0), end))
        if end - keep <= 0:
            return spans
        end -= step


def _slice(encoded: tuple, start: int, end: int) -> tuple:
    """Tokens [start, end) of an encoded (ids, offsets, words, origin) sequence."""
    ids, offsets, words, origin = encoded
    return (ids[start:end], None if offsets is None else offsets[start:end],
            None if words is None else words[start:end], None if origin is None else (origin[0], origin[1] + start))


def _cut(ids: list[int], count: int, stride: int, side: str) -> tuple[list[int], list[int]]:
    """`ids` without `count` ids on `side`, and those ids with `stride` more next to them (v4 slow)."""
    window = min(len(ids), stride + count)
    if side == "left":
        return ids[count:], ids[:window]
    return ids[:-count], ids[-window:]


def _tensor_type_of(input_ids) -> str | None:
    """The return_tensors of v4's `pad` for inputs given as tensors: their framework, by the type of
    the first row (or value) that is not a list; None for lists of ints."""
    first = input_ids
    if isinstance(first, (list, tuple)):
        first = next((row for row in first if not isinstance(row, (list, tuple)) or len(row)), None)
        if isinstance(first, (list, tuple)):
            first = first[0]
    module = type(first).__module__.split(".")[0]
    return {"torch": "pt", "numpy": "np", "tensorflow": "tf", "jax": "jax", "jaxlib": "jax"}.get(module)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_side(name: str, value) -> str:
    if value not in ("left", "right"):
        raise ValueError(f"{name} must be 'left' or 'right', got {value!r}")
    return value

