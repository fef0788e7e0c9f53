"""What the two RoBERTa tokenizers share: everything except turning a string into BPE ids.

`RobertaTokenizer` (pure Python) and `RobertaTokenizerFast` (the `tokenizers` library) differ only
in `_encode_texts`, which maps strings to (ids, character offsets) without special tokens. Special
tokens, truncation with overflow windows, padding, masks, offsets trimming, decoding, added
tokens and the files on disk live here once, so the two cannot drift apart.

The API is that of Hugging Face `transformers` v4 (`__call__`, `encode`, `decode`, `pad`,
`from_pretrained`, `save_pretrained`, ...). Where v4's slow and fast tokenizers disagreed,
both of ours follow one rule, written down where it applies.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import logging
import os
import uuid
from functools import lru_cache
from pathlib import Path

import regex

logger = logging.getLogger(__name__)

VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"

# GPT-2's pre-tokenization: contractions, letters, digits, other symbols, whitespace runs (the run
# before a word leaves its last space to the word). {L}, {N}, {S} are letter, digit and whitespace
# classes: `regex`'s \p{L}, \p{N}, \s in the slow tokenizer, the same sets spelled out as code
# point ranges for the Oniguruma engine inside `tokenizers` (see tokenization_fast.py).
PRETOKENIZE_TEMPLATE = (
    r"'(?:[sdmt]|ll|ve|re)| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+"
)
SLOW_CLASSES = {"L": r"\p{L}", "N": r"\p{N}", "S": r"\s"}

SPECIAL_TOKEN_ATTRIBUTES = (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
)
# Keys of transformers' tokenizer_config.json that carry nothing for us.
IGNORED_CONFIG_KEYS = {
    "tokenizer_class", "name_or_path", "auto_map", "processor_class", "model_input_names",
    "extra_special_tokens", "tokenizer_file", "vocab_file", "merges_file", "special_tokens_map_file",
    "do_lower_case", "use_fast", "legacy", "max_len",
}
TENSOR_TYPES = ("np", "pt", "tf", "jax")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
CALL_DEFAULTS = dict(
    add_special_tokens=True, padding=False, truncation=None, max_length=None, stride=0,
    is_split_into_words=False, pad_to_multiple_of=None, padding_side=None, return_tensors=None,
    return_token_type_ids=None, return_attention_mask=None, return_overflowing_tokens=False,
    return_special_tokens_mask=False, return_offsets_mapping=False, return_length=False,
    split_special_tokens=None, verbose=True,
)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table: a token string is a string of these characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)  # control bytes and spaces move past Latin-1
            shift += 1
    return table


# Byte-level symbol -> its byte; other Latin-1 characters -> U+FFFF so that encoding them fails.
_SYMBOL_TO_BYTE = {**{b: 0xFFFF for b in range(256)}, **{ord(c): b for b, c in bytes_to_unicode().items()}}


def symbols_to_bytes(token: str) -> bytes:
    """The bytes a byte-level token string stands for; a string with other characters is taken as
    UTF-8 text, as the `tokenizers` ByteLevel decoder does."""
    try:
        return token.translate(_SYMBOL_TO_BYTE).encode("latin-1")
    except UnicodeEncodeError:
        return token.encode()


# Unicode White_Space, which is both `regex`'s \s and Rust's char::is_whitespace (tokenizers strips
# it around lstrip/rstrip added tokens). str.isspace would add U+001C..U+001F.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if regex.match(r"\s", c))


@dataclasses.dataclass(frozen=True)
class AddedToken:
    """A token matched verbatim in the text before BPE, like `tokenizers.AddedToken`.

    lstrip/rstrip: the token absorbs the whitespace on that side (RoBERTa's <mask> has lstrip).
    single_word: only matches where no word character touches it. normalized: matched in a second
    pass (RoBERTa has no normalizer, so this only orders the matching). special: skipped by
    `decode(skip_special_tokens=True)`. `normalized=None` means "not special".
    """

    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool | None = None
    special: bool = False

    def __post_init__(self):
        if not isinstance(self.content, str) or not self.content:
            raise ValueError(f"an added token's content must be a non-empty str, got {self.content!r}")
        if self.normalized is None:
            object.__setattr__(self, "normalized", not self.special)

    def __str__(self) -> str:
        return self.content


def as_added_token(token, *, special: bool, lstrip: bool = False) -> AddedToken:
    """AddedToken from a str, one of ours, a `tokenizers.AddedToken` or a dict from a json file."""
    if isinstance(token, AddedToken):
        return token
    if isinstance(token, str):
        return AddedToken(token, lstrip=lstrip, special=special, normalized=False if special else None)
    if isinstance(token, dict):
        fields = {k: token[k] for k in ("content", "single_word", "lstrip", "rstrip", "normalized", "special") if k in token}
        return AddedToken(**{"special": special, **fields})
    if hasattr(token, "content"):  # tokenizers.AddedToken
        return AddedToken(token.content, token.single_word, token.lstrip, token.rstrip, token.normalized, token.special)
    raise TypeError(f"a token must be a str or an AddedToken, got {type(token).__name__}")


class BatchEncoding(dict):
    """The tokenizers' output: a dict of lists (or tensors) that also reads as attributes.

    Keys: input_ids (B, T), attention_mask (B, T) and, when asked, token_type_ids,
    special_tokens_mask, offset_mapping (B, T, 2), length (B,), overflow_to_sample_mapping (B,).
    A single text gives flat lists (T,) unless tensors or overflow windows were asked for.
    """

    def __init__(self, data=None, tensor_type: str | None = None, *, rows=None):
        super().__init__(data or {})
        self._rows = rows  # (the tokenizer's rows, (padded length, left?) or None): word and sequence ids
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getattr__(self, name):
        if name.startswith("_") or name not in self:
            raise AttributeError(f"BatchEncoding has no attribute or key {name!r}")
        return self[name]

    def __getstate__(self):
        return {"data": dict(self), "rows": self._rows}

    def __setstate__(self, state):
        self.update(state["data"])
        self._rows = state["rows"]

    @property
    def data(self) -> dict:
        return dict(self)

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Which word of the pre-split input each token of row `batch_index` came from (None for
        special tokens, pads, and for input that was not split into words)."""
        row = self._row(batch_index, "word_ids")
        return self._padded(row.words if row.words is not None else [None] * len(row.ids))

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0 for tokens of the first text, 1 for the second, None for special tokens and pads."""
        return self._padded(self._row(batch_index, "sequence_ids").sequence_ids())

    def _row(self, batch_index: int, what: str):
        if self._rows is None:
            raise ValueError(f"{what}() is only available on the output of a tokenizer call")
        rows = self._rows[0]
        if not 0 <= batch_index < len(rows):
            raise ValueError(f"batch_index must be in [0, {len(rows)}), got {batch_index}")
        return rows[batch_index]

    def _padded(self, values: list) -> list:
        if self._rows[1] is None:
            return list(values)
        target, left = self._rows[1]
        return _pad_rows([list(values)], target, None, left)[0]

    def convert_to_tensors(self, tensor_type: str) -> BatchEncoding:
        """Turn every value into a tensor of `tensor_type` ('np', 'pt', 'tf', 'jax'), importing it only now."""
        if tensor_type not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be one of {TENSOR_TYPES} or None, got {tensor_type!r}")
        import numpy as np

        convert = _tensor_converter(tensor_type)
        for key, value in self.items():
            if len(value) and isinstance(value[0], list) and len({len(row) for row in value}) > 1:
                raise ValueError(
                    f"cannot make a tensor of {key!r}: its rows have different lengths "
                    f"({sorted({len(row) for row in value})[:5]}...); pass padding=True or padding='max_length'")
            self[key] = convert(np.asarray(value, dtype=np.int64))
        return self

    def to(self, device) -> BatchEncoding:
        """Move PyTorch tensors to `device` (as v4 does); other values are left as they are."""
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self


def _tensor_converter(tensor_type: str):
    if tensor_type == "np":
        return lambda array: array
    if tensor_type == "pt":
        import torch

        return torch.from_numpy
    if tensor_type == "tf":
        import tensorflow as tf

        return tf.convert_to_tensor
    import jax.numpy as jnp

    return jnp.asarray


def _write_files_atomically(directory: Path, files: dict[str, str]) -> list[str]:
    """Write every file to a temp name in `directory` first, then rename them all into place.

    A failure while writing leaves the directory as it was (no partial file, nothing overwritten,
    no new empty directory).
    """
    created = [d for d in (directory, *directory.parents) if not d.exists()]  # deepest first
    directory.mkdir(parents=True, exist_ok=True)
    temps = []
    try:
        for name in files:
            temps.append(directory / f".{name}.{uuid.uuid4().hex}.tmp")
            with open(temps[-1], "x", encoding="utf-8", newline="\n") as f:  # the umask's permissions
                f.write(files[name])
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        for temp in temps:
            temp.unlink(missing_ok=True)
        for new_directory in created:
            new_directory.rmdir()
        raise
    paths = []
    for name, temp in zip(files, temps):
        os.replace(temp, directory / name)
        paths.append(str(directory / name))
    return paths


# ----------------------------------------------------------------------------- vocabulary files


def read_vocab(path) -> dict[str, int]:
    with open(path, encoding="utf-8") as f:
        vocab = json.load(f)
    if not isinstance(vocab, dict):
        raise ValueError(f"{path}: expected a JSON object {{token: id}}, got {type(vocab).__name__}")
    return vocab


def read_merges(path) -> list[tuple[str, str]]:
    """merges.txt: an optional '#version' line, then one 'left right' pair per line, by rank."""
    merges = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line or (number == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"{path} line {number}: expected two symbols separated by one space, got {line!r}")
            merges.append((parts[0], parts[1]))
    return merges


def read_tokenizer_json(path) -> dict:
    """vocab, merges, added tokens and options from a `tokenizers` tokenizer.json of a byte-level BPE."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    model = spec.get("model") or {}
    problems = []
    if model.get("type") != "BPE":
        problems.append(f"model type {model.get('type')!r} (need 'BPE')")
    for key, neutral in (("dropout", None), ("continuing_subword_prefix", ""), ("end_of_word_suffix", ""),
                         ("byte_fallback", False), ("ignore_merges", False)):
        if model.get(key) not in (neutral, None):
            problems.append(f"model.{key}={model.get(key)!r}")
    if spec.get("normalizer") is not None:
        problems.append(f"a normalizer ({spec['normalizer'].get('type')})")
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True):
        problems.append(f"pre_tokenizer {pre.get('type')!r} (need ByteLevel with use_regex)")
    if problems:
        raise ValueError(f"{path} is not a RoBERTa byte-level BPE tokenizer: " + "; ".join(problems))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
    post = spec.get("post_processor") or {}
    return {
        "vocab": model.get("vocab", {}),
        "merges": merges,
        "added_tokens": {t["id"]: as_added_token(t, special=t.get("special", False)) for t in spec.get("added_tokens", [])},
        "add_prefix_space": pre.get("add_prefix_space", False),
        "trim_offsets": post.get("trim_offsets", True),
    }


def validate_vocabulary(vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """A byte-level BPE vocabulary must have ids 0..n-1, the 256 byte symbols and merges of known symbols."""
    if not vocab:
        raise ValueError("the vocabulary is empty")
    bad = [(t, i) for t, i in vocab.items() if not isinstance(t, str) or type(i) is not int]
    if bad:
        raise ValueError(f"vocab entries must be str -> int, got {bad[:3]}")
    ids = sorted(vocab.values())
    if ids != list(range(len(vocab))):
        seen, duplicates = set(), []
        for i in ids:
            if i in seen:
                duplicates.append(i)
            seen.add(i)
        missing = sorted(set(range(len(vocab))) - seen)[:5]
        raise ValueError(
            f"vocab ids must be a permutation of 0..{len(vocab) - 1}: duplicated ids {duplicates[:5]}, "
            f"missing ids {missing}, out of range {[i for i in ids if not 0 <= i < len(vocab)][:5]}")
    missing_bytes = [c for c in bytes_to_unicode().values() if c not in vocab]
    if missing_bytes:
        raise ValueError(f"a byte-level BPE vocab needs all 256 byte symbols; {len(missing_bytes)} are missing, "
                         f"e.g. {missing_bytes[:5]}")
    seen = {}
    for rank, pair in enumerate(merges):
        if len(pair) != 2:
            raise ValueError(f"merge {rank} must be a pair of symbols, got {pair!r}")
        left, right = pair
        for symbol in (left, right, left + right):
            if symbol not in vocab:
                raise ValueError(f"merge {rank} ({left!r} {right!r}) references {symbol!r}, which is not in the vocab")
        if pair in seen:
            raise ValueError(f"merge {rank} ({left!r} {right!r}) repeats merge {seen[pair]}")
        seen[pair] = rank


# ----------------------------------------------------------------------------- the tokenizer


class RobertaTokenizerBase:
    """RoBERTa's tokenizer minus the BPE engine: `<s> A </s>` and `<s> A </s></s> B </s>` sequences.

    Subclasses implement `_encode_texts(texts, with_offsets, split_special)` and may react to new added tokens in
    `_added_tokens_changed()`.
    """

    is_fast = False
    model_input_names = ["input_ids", "attention_mask"]
    tokenizer_class_name = "RobertaTokenizer"

    def __init__(
        self,
        vocab_file=None,
        merges_file=None,
        tokenizer_file=None,
        *,
        vocab: dict[str, int] | None = None,
        merges: list[tuple[str, str]] | None = None,
        errors: str = "replace",
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        additional_special_tokens=None,
        added_tokens_decoder: dict | None = None,
        add_prefix_space: bool | None = None,
        trim_offsets: bool | None = None,
        model_max_length: int = 512,
        padding_side: str = "right",
        truncation_side: str = "right",
        clean_up_tokenization_spaces: bool = False,
        split_special_tokens: bool = False,
        name_or_path: str = "",
    ):
        spec = self._read_vocabulary_source(vocab_file, merges_file, tokenizer_file, vocab, merges)
        self._encoder: dict[str, int] = dict(spec["vocab"])
        self._merges: list[tuple[str, ...]] = [tuple(m) for m in spec["merges"]]
        validate_vocabulary(self._encoder, self._merges)
        self._decoder: list[str] = sorted(self._encoder, key=self._encoder.__getitem__)  # id -> token
        self._id_bytes: list[bytes] = [symbols_to_bytes(token) for token in self._decoder]
        self._space_counts = None  # leading/trailing 'Ġ' per id, built on the first offsets request

        try:
            codecs.lookup_error(errors)
        except LookupError:
            raise ValueError(f"errors must name a codecs error handler ('replace', 'strict', 'ignore', ...), "
                             f"got {errors!r}") from None
        self.errors = errors
        self.add_prefix_space = spec.get("add_prefix_space", False) if add_prefix_space is None else add_prefix_space
        self.trim_offsets = spec.get("trim_offsets", True) if trim_offsets is None else trim_offsets
        self.model_max_length = _check_int("model_max_length", model_max_length, 1)
        self.padding_side = _check_side("padding_side", padding_side)
        self.truncation_side = _check_side("truncation_side", truncation_side)
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.split_special_tokens = split_special_tokens
        self.name_or_path = str(name_or_path)
        self._warned_long = False

        # Added tokens by id (RoBERTa's specials live inside the vocab), then the special-token roles.
        self._added: dict[int, AddedToken] = {}
        self._added_ids: dict[str, int] = {}  # content -> id of the same tokens
        known = {**spec.get("added_tokens", {}), **{int(i): as_added_token(t, special=False)
                                                    for i, t in (added_tokens_decoder or {}).items()}}
        for token_id in sorted(known):
            self._register(known[token_id], token_id)
        self._special: dict[str, AddedToken | None] = {}
        roles = dict(bos_token=bos_token, eos_token=eos_token, unk_token=unk_token, sep_token=sep_token,
                     pad_token=pad_token, cls_token=cls_token, mask_token=mask_token)
        for role, token in roles.items():
            self._special[role] = None if token is None else self._special_token(token, role)
        self._additional: list[AddedToken] = [self._special_token(t, "additional_special_tokens")
                                              for t in (additional_special_tokens or [])]
        for token in [*self._special.values(), *self._additional]:
            if token is not None:
                self._register(token)
        self._added_tokens_changed()

    @staticmethod
    def _read_vocabulary_source(vocab_file, merges_file, tokenizer_file, vocab, merges) -> dict:
        given = [name for name, v in (("vocab_file/merges_file", vocab_file or merges_file),
                                      ("tokenizer_file", tokenizer_file), ("vocab/merges", vocab or merges)) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of vocab_file+merges_file, tokenizer_file or vocab+merges; "
                             f"got {given or 'none'}")
        if tokenizer_file:
            return read_tokenizer_json(tokenizer_file)
        if vocab_file or merges_file:
            if not (vocab_file and merges_file):
                raise ValueError("vocab_file and merges_file go together; one of them is missing")
            return {"vocab": read_vocab(vocab_file), "merges": read_merges(merges_file)}
        if vocab is None or merges is None:
            raise ValueError("vocab and merges go together; one of them is missing")
        return {"vocab": vocab, "merges": list(merges)}

    def _special_token(self, token, role: str) -> AddedToken:
        """The AddedToken for a special role: a known added token keeps its flags; <mask> absorbs the space before it."""
        if isinstance(token, str) and token in self._added_ids:
            existing = self._added[self._added_ids[token]]
            if existing.special:
                return existing
        token = as_added_token(token, special=True, lstrip=role == "mask_token")
        return token if token.special else dataclasses.replace(token, special=True)

    def _register(self, token: AddedToken, token_id: int | None = None) -> bool:
        """Add or update `token`; returns whether the tokenizer changed. New ids continue after the largest one."""
        old_id = self._added_ids.get(token.content)
        expected = self._encoder.get(token.content, old_id)
        if expected is None:
            expected = max(len(self._encoder), max(self._added, default=-1) + 1)
        if token_id is not None and token_id != expected:
            raise ValueError(f"added token {token.content!r} has id {token_id}, but it must be {expected} "
                             f"(vocab ids, then added tokens numbered on from {len(self._encoder)} without gaps)")
        if self._added.get(expected) == token:
            return False
        self._added[expected] = token
        self._added_ids[token.content] = expected
        if expected >= len(self._id_bytes):
            self._id_bytes.append(token.content.encode())
        return True

    def _added_tokens_changed(self) -> None:
        """Hook: the set of added tokens or their flags changed."""

    def _encode_texts(self, texts: list[str], with_offsets: bool, split_special: bool) -> list[tuple[list[int], list | None]]:
        """BPE ids of each text without special tokens, and (start, end) character spans when asked.

        Added tokens are matched first, as `tokenizers` does: tokens with normalized=False over the
        whole text, then the others inside the gaps; split_special leaves special tokens as text.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ vocabulary and special tokens

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (vocab.json), without added tokens."""
        return len(self._encoder)

    def __len__(self) -> int:
        return max(len(self._encoder), max(self._added, default=-1) + 1)

    def get_vocab(self) -> dict[str, int]:
        return {**self._encoder, **self._added_ids}

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return dict(sorted(self._added_ids.items(), key=lambda kv: kv[1]))

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._added.items()))

    @property
    def additional_special_tokens(self) -> list[str]:
        return [t.content for t in self._additional]

    @property
    def special_tokens_map(self) -> dict[str, str | list[str]]:
        found = {role: t.content for role, t in self._special.items() if t is not None}
        if self._additional:
            found["additional_special_tokens"] = self.additional_special_tokens
        return found

    @property
    def all_special_tokens(self) -> list[str]:
        tokens = [t.content for t in [*self._special.values(), *self._additional] if t is not None]
        return list(dict.fromkeys(tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return [self._token_id(t) for t in self.all_special_tokens]

    def _token_id(self, content: str) -> int:
        found = self._encoder.get(content)
        return self._added_ids[content] if found is None else found

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 4 if pair else 2

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens matched verbatim before BPE; returns how many are new. Ids continue after len(self)."""
        if isinstance(new_tokens, (str, AddedToken)) or hasattr(new_tokens, "content"):
            new_tokens = [new_tokens]
        tokens = [as_added_token(t, special=special_tokens) for t in new_tokens]
        before = len(self)
        changed = [self._register(t) for t in tokens]
        if any(changed):
            self._added_tokens_changed()
        return len(self) - before

    def add_special_tokens(self, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
        """Set special-token roles ('pad_token': '<pad>', 'additional_special_tokens': [...]); returns new-token count."""
        roles = {*SPECIAL_TOKEN_ATTRIBUTES, "additional_special_tokens"}
        unknown = set(special_tokens_dict) - roles
        if unknown:
            raise ValueError(f"unknown special token roles {sorted(unknown)}; allowed: {sorted(roles)}")
        before = len(self)
        for role, value in special_tokens_dict.items():
            if role == "additional_special_tokens":
                if isinstance(value, (str, AddedToken)):
                    raise TypeError("additional_special_tokens must be a list of tokens")
                extra = [self._special_token(t, role) for t in value]
                kept = [] if replace_additional_special_tokens else self._additional
                self._additional = kept + [t for t in extra if t not in kept]
                for token in extra:
                    self._register(token)
            else:
                self._special[role] = token = self._special_token(value, role)
                self._register(token)
        self._added_tokens_changed()
        return len(self) - before

    # ------------------------------------------------------------------ encoding

    def __call__(self, text=None, text_pair=None, **kwargs) -> BatchEncoding:
        """Encode a text, a pair, a batch of texts or pairs, or pre-split words (`is_split_into_words`).

        Returns a BatchEncoding with input_ids and attention_mask, plus what the return_* flags ask
        for. A single input gives flat lists unless `return_tensors` or overflow windows are asked for.
        """
        options = self._call_options(kwargs)
        if text is None:
            raise TypeError("text is required: a str, a list of str, a list of (str, str) pairs or, with "
                            "is_split_into_words=True, a list of words or a batch of such lists")
        batch, pairs, batched = self._parse_inputs(text, text_pair, options["is_split_into_words"])
        return self._encode_batch(batch, pairs, batched, options)

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """One text (or words with is_split_into_words) and an optional pair; v4's name for a single call."""
        options = self._call_options(kwargs)
        batch, pairs, batched = self._parse_inputs(text, text_pair, options["is_split_into_words"])
        if batched:
            raise TypeError("encode_plus takes one text (or pair); use __call__ or batch_encode_plus for batches")
        return self._encode_batch(batch, pairs, batched, options)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        """A batch of texts, of (text, pair) tuples, or (is_split_into_words) of word lists."""
        options = self._call_options(kwargs)
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError(f"batch_encode_plus takes a list or tuple, got {type(batch_text_or_text_pairs).__name__}")
        split = options["is_split_into_words"]
        if split and batch_text_or_text_pairs and all(isinstance(x, str) for x in batch_text_or_text_pairs):
            raise TypeError("with is_split_into_words=True, batch_encode_plus takes a list of word lists")
        batch, pairs, _ = self._parse_inputs(list(batch_text_or_text_pairs), None, split, force_batch=True)
        return self._encode_batch(batch, pairs, True, options)

    def encode(self, text, text_pair=None, **kwargs) -> list[int]:
        """The input ids of one text (or pair) with special tokens: `<s> ... </s>`."""
        return self.encode_plus(text, text_pair, **kwargs)["input_ids"]

    def tokenize(self, text, pair=None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """The token strings of one text (byte-level symbols, e.g. 'ĠHello'); no special tokens by default."""
        ids = self.encode(text, pair, add_special_tokens=add_special_tokens, **kwargs)
        return self.convert_ids_to_tokens(ids)

    def prepare_for_model(self, ids: list[int], pair_ids: list[int] | None = None, **kwargs) -> BatchEncoding:
        """Add special tokens, truncate and pad already tokenized ids, like a call on text would."""
        options = self._call_options(kwargs)
        if options["return_offsets_mapping"] or options["is_split_into_words"]:
            raise ValueError("prepare_for_model works on ids: offsets and words are not available")
        first = (self._check_ids(ids, "ids"), None, None)
        second = None if pair_ids is None else (self._check_ids(pair_ids, "pair_ids"), None, None)
        return self._finish(self._plan(options, [pair_ids is not None]), [(first, second)], False)

    def _call_options(self, kwargs) -> dict:
        unknown = set(kwargs) - set(CALL_DEFAULTS)
        if unknown:
            raise TypeError(f"unexpected keyword arguments {sorted(unknown)}; allowed: {sorted(CALL_DEFAULTS)}")
        return {**CALL_DEFAULTS, **kwargs}

    def _parse_inputs(self, text, text_pair, split: bool, force_batch: bool = False):
        """Normalise inputs to (list of firsts, list of seconds or None per item, batched?)."""
        if split:
            def is_one(x):
                return isinstance(x, (list, tuple)) and all(isinstance(w, str) for w in x)
            batched = force_batch or (isinstance(text, (list, tuple)) and len(text) > 0
                                      and isinstance(text[0], (list, tuple)))
        else:
            def is_one(x):
                return isinstance(x, str)
            batched = force_batch or isinstance(text, (list, tuple))
        what = "a list of words (str)" if split else "a str"
        if not batched:
            firsts, seconds = [text], [text_pair]
        else:
            if not isinstance(text, (list, tuple)):
                raise TypeError(f"a batch must be a list or tuple, got {type(text).__name__}")
            if text_pair is not None:
                if not isinstance(text_pair, (list, tuple)):
                    raise TypeError(f"with a batch of texts, text_pair must be a list too, got {_describe(text_pair)}")
                if len(text_pair) != len(text):
                    raise ValueError(f"text_pair has {len(text_pair)} items, text has {len(text)}; they must match")
                firsts, seconds = list(text), list(text_pair)
            else:
                firsts, seconds = [], []
                for item in text:
                    # A 2-tuple / 2-list of inputs is a (text, pair) item, as in batch_encode_plus.
                    if isinstance(item, (list, tuple)) and len(item) == 2 and not is_one(item) and all(map(is_one, item)):
                        firsts.append(item[0])
                        seconds.append(item[1])
                    else:
                        firsts.append(item)
                        seconds.append(None)
        for i, (first, second) in enumerate(zip(firsts, seconds)):
            where = f" (batch item {i})" if batched else ""
            if not is_one(first):
                raise TypeError(f"text must be {what}{where}, got {_describe(first)}")
            if second is not None and not is_one(second):
                raise TypeError(f"text_pair must be {what}{where}, got {_describe(second)}")
        return firsts, seconds, batched

    def _encode_batch(self, firsts, seconds, batched: bool, options: dict) -> BatchEncoding:
        has_pair = [s is not None for s in seconds]
        plan = self._plan(options, has_pair)
        split, with_offsets = options["is_split_into_words"], options["return_offsets_mapping"]
        encoded = self._encode_sequences(firsts + [s for s in seconds if s is not None], split, with_offsets,
                                         plan["split_special_tokens"])
        second_iter = iter(encoded[len(firsts):])
        items = [(first, next(second_iter) if pair else None) for first, pair in zip(encoded, has_pair)]
        return self._finish(plan, items, batched or options["return_overflowing_tokens"], split)

    def _plan(self, options: dict, has_pair: list[bool]) -> dict:
        """Check the call's options once and resolve truncation/padding lengths."""
        padding, truncation, max_length = options["padding"], options["truncation"], options["max_length"]
        if padding is True:
            padding = "longest"
        elif padding is False or padding is None:
            padding = "do_not_pad"
        if padding not in PADDING_STRATEGIES:
            raise ValueError(f"padding must be True, False or one of {PADDING_STRATEGIES}, got {padding!r}")
        if truncation is None and max_length is not None and padding == "do_not_pad":
            truncation = True  # v4 truncates when only max_length is given
        if truncation is True:
            truncation = "longest_first"
        elif truncation is False or truncation is None:
            truncation = "do_not_truncate"
        if truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(f"truncation must be True, False or one of {TRUNCATION_STRATEGIES}, got {truncation!r}")
        if max_length is not None:
            _check_int("max_length", max_length, 0)
        elif truncation != "do_not_truncate" or padding == "max_length":
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
            if truncation == "only_second" and not all(has_pair):
                raise ValueError("truncation='only_second' needs a text_pair for every input; "
                                 "use 'only_first' or 'longest_first' for single texts")
            if options["return_overflowing_tokens"] and truncation == "longest_first" and any(has_pair):
                raise ValueError("return_overflowing_tokens with pairs needs truncation='only_first' or 'only_second' "
                                 "(which text to split into windows); 'longest_first' is ambiguous")
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
        }

    def _encode_sequences(self, seqs: list, split: bool, with_offsets: bool, split_special: bool) -> list[tuple]:
        """(ids, offsets or None, word ids or None) per text or word list, without special tokens.

        A space goes in front of a text when add_prefix_space is set, and in front of every pre-split
        word (as in v4), unless it starts with whitespace. Offsets index the original text (each
        word for pre-split input); with trim_offsets they leave out the spaces a token carries.
        """
        if split:
            texts = [w for words in seqs for w in words]
            prefix = True
        else:
            texts, prefix = seqs, self.add_prefix_space
        shifted = [self._takes_prefix_space(t) for t in texts] if prefix else None
        inputs = [" " + t if s else t for t, s in zip(texts, shifted)] if prefix else texts
        encoded = self._encode_texts(inputs, with_offsets, split_special)
        if with_offsets:
            encoded = [(ids, self._final_offsets(text, ids, offsets, bool(shifted and shifted[k])))
                       for k, (text, (ids, offsets)) in enumerate(zip(inputs, encoded))]
        if not split:
            return [(ids, offsets, None) for ids, offsets in encoded]
        grouped, position = [], 0
        for words in seqs:
            ids, offsets, word_ids = [], [] if with_offsets else None, []
            for w in range(len(words)):
                word_ids_, word_offsets = encoded[position + w]
                ids += word_ids_
                word_ids += [w] * len(word_ids_)
                if with_offsets:
                    offsets += word_offsets
            position += len(words)
            grouped.append((ids, offsets, word_ids))
        return grouped

    @staticmethod
    def _takes_prefix_space(text: str) -> bool:
        return bool(text) and not text[0].isspace()

    def _final_offsets(self, text: str, ids: list[int], offsets, shifted: bool) -> list[tuple[int, int]]:
        """Trim the spaces a token carries (trim_offsets), then undo the prefix space (shifted)."""
        if self.trim_offsets and self._space_counts is None:
            lead = [len(t) - len(t.lstrip("Ġ")) for t in self._decoder]
            trail = [len(t) - len(t.rstrip("Ġ")) for t in self._decoder]
            self._space_counts = (lead, trail)
        result = []
        for token_id, (start, end) in zip(ids, offsets):
            if self.trim_offsets:
                added = self._added.get(token_id)
                if added is None:  # a BPE token: its leading/trailing 'Ġ' are spaces of the text
                    lead, trail = self._space_counts
                    start = min(start + lead[token_id], end)
                    end = max(end - trail[token_id], start)
                else:  # an added token: drop the whitespace it absorbed (lstrip/rstrip)
                    piece, content = text[start:end], added.content
                    start += max(0, _lead_ws(piece) - _lead_ws(content))
                    end -= max(0, _trail_ws(piece) - _trail_ws(content))
                    end = max(end, start)
            if shifted:
                start, end = max(start - 1, 0), max(end - 1, 0)
            result.append((start, end))
        return result

    def _finish(self, plan: dict, items: list, batched: bool, split: bool = False) -> BatchEncoding:
        """Special tokens, truncation windows, padding and tensors for encoded (first, second) items."""
        cls_id, sep_id = self.cls_token_id, self.sep_token_id
        add_special = plan["add_special_tokens"]
        if add_special and (cls_id is None or sep_id is None):
            raise ValueError("add_special_tokens=True needs cls_token and sep_token")
        want_offsets, want_words = plan["return_offsets_mapping"], split
        rows, sample_map = [], []
        for index, (first, second) in enumerate(items):
            for a, b in self._windows(first, second, plan, index):
                rows.append(_Row(a, b, add_special, cls_id, sep_id, want_offsets, want_words))
                sample_map.append(index)
        if plan["truncation"] == "do_not_truncate" and plan["verbose"] and not self._warned_long:
            longest = max((len(r.ids) for r in rows), default=0)
            if longest > self.model_max_length:
                self._warned_long = True
                logger.warning("Token indices sequence length is longer than the specified maximum sequence "
                               f"length for this model ({longest} > {self.model_max_length}). Running this "
                               "sequence through the model will result in indexing errors")
        data = {"input_ids": [r.ids for r in rows]}
        if plan["return_token_type_ids"]:
            data["token_type_ids"] = [[0] * len(r.ids) for r in rows]
        if plan["return_attention_mask"]:
            data["attention_mask"] = [[1] * len(r.ids) for r in rows]
        if plan["return_special_tokens_mask"]:
            data["special_tokens_mask"] = [r.special_mask() for r in rows]
        if want_offsets:
            data["offset_mapping"] = [r.offsets for r in rows]
        if plan["return_length"]:
            data["length"] = [len(r.ids) for r in rows]
        padded = None
        if plan["padding"] != "do_not_pad":
            target = self._pad_target([len(r.ids) for r in rows], plan["padding"], plan["max_length"],
                                      plan["pad_to_multiple_of"])
            left = plan["padding_side"] == "left"
            for key in data:
                if key != "length":
                    data[key] = _pad_rows(data[key], target, self._pad_value(key), left)
            padded = (target, left)
        if plan["return_overflowing_tokens"]:
            data["overflow_to_sample_mapping"] = sample_map
        if not batched and plan["return_tensors"] is None:
            data = {key: value[0] for key, value in data.items()}
        return BatchEncoding(data, plan["return_tensors"], rows=(rows, padded))

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
        side, stride = self.truncation_side, plan["stride"]
        overflow = plan["return_overflowing_tokens"]
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
            piece1 = [_slice(first, s, e) for s, e in (spans1 if overflow else spans1[:1])]
            if second is None:
                return [(p, None) for p in piece1]
            s2, e2 = _window_spans(n2, keep2, 0, side, index)[0]
            return [(piece1[0], _slice(second, s2, e2))]
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
            encoded_inputs = {k: [_as_list(x[k]) for x in encoded_inputs] for k in keys}
        elif not isinstance(encoded_inputs, dict):
            raise TypeError(f"pad takes a dict of lists or a list of dicts, got {type(encoded_inputs).__name__}")
        if "input_ids" not in encoded_inputs:
            raise ValueError(f"pad needs 'input_ids' among the keys, got {sorted(encoded_inputs)}")
        data = {k: _as_list(v) for k, v in encoded_inputs.items()}
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
                if key in ("input_ids", "attention_mask", "token_type_ids", "special_tokens_mask", "offset_mapping"):
                    data[key] = _pad_rows(data[key], target, self._pad_value(key), plan["padding_side"] == "left")
        if return_attention_mask is False:
            data.pop("attention_mask", None)
        if single and return_tensors is None:
            data = {k: v[0] for k, v in data.items()}
        return BatchEncoding(data, return_tensors)

    # ------------------------------------------------------------------ special-token layout

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """`<s> A </s>` or `<s> A </s></s> B </s>`."""
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + sep + list(token_ids_1) + sep

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 where build_inputs_with_special_tokens puts a special token (or, for ids that already have them, where a special id is)."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when the ids already have special tokens")
            special = set(self.all_special_ids)
            return [int(i in special) for i in token_ids_0]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """All zeros: RoBERTa does not use token types."""
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    # ------------------------------------------------------------------ decoding

    def _check_ids(self, ids, what: str = "token ids") -> list[int]:
        if not hasattr(ids, "tolist") and hasattr(ids, "numpy"):  # TensorFlow tensors
            ids = ids.numpy()
        if hasattr(ids, "tolist"):  # NumPy arrays, PyTorch and JAX tensors
            ids = ids.tolist()
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = [ids]
        if not isinstance(ids, (list, tuple)):
            raise TypeError(f"{what} must be a list of int, got {type(ids).__name__}")
        size = len(self)
        for position, i in enumerate(ids):
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"{what} must be ints; position {position} is {_describe(i)}")
            if not 0 <= i < size:
                raise ValueError(f"token id {i} at position {position} is outside the vocabulary [0, {size})")
        return list(ids)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Token strings for ids (an int gives a str); ids outside [0, len(self)) are an error."""
        single = isinstance(ids, int) and not isinstance(ids, bool)
        checked = self._check_ids(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        tokens = [self._added[i].content if i in self._added else self._decoder[i] for i in checked if i not in skip]
        return tokens[0] if single else tokens

    def convert_tokens_to_ids(self, tokens):
        """Ids for token strings (a str gives an int); unknown tokens map to the unk id, as in v4."""
        if isinstance(tokens, str):
            return self._convert_token(tokens)
        return [self._convert_token(t) for t in tokens]

    def _convert_token(self, token: str) -> int:
        if not isinstance(token, str):
            raise TypeError(f"tokens must be str, got {_describe(token)}")
        found = self._encoder.get(token)
        if found is None:
            found = self._added_ids.get(token, self.unk_token_id)
        return found

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """The text of token strings: byte-level symbols back to bytes, added tokens as written."""
        added = self._added_ids
        chunks = [t.encode() if t in added else symbols_to_bytes(t) for t in tokens]
        return b"".join(chunks).decode("utf-8", self.errors)

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None) -> str:
        """The text of ids. Byte-level BPE is lossless: decode(encode(text)) == text, minus specials
        and the whitespace that <mask> absorbs."""
        ids = self._check_ids(token_ids)
        if skip_special_tokens:
            special = set(self.all_special_ids)
            ids = [i for i in ids if i not in special]
        id_bytes = self._id_bytes
        text = b"".join([id_bytes[i] for i in ids]).decode("utf-8", self.errors)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        if not isinstance(sequences, (list, tuple)):
            sequences = list(sequences)  # rows of an array or tensor
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """v4's English clean-up: no space before punctuation and contractions."""
        for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                              (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            text = text.replace(before, after)
        return text

    # ------------------------------------------------------------------ files

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load from a directory: tokenizer.json or vocab.json + merges.txt, with tokenizer_config.json,
        special_tokens_map.json and added_tokens.json honoured. Keyword arguments win over the files."""
        directory = Path(pretrained_model_name_or_path)
        if not directory.is_dir():
            raise ValueError(f"{pretrained_model_name_or_path} is not a directory; from_pretrained reads a local "
                             "folder with tokenizer.json or vocab.json + merges.txt (no Hub download)")
        config = _read_json(directory / TOKENIZER_CONFIG_FILE)
        config.update(_read_json(directory / SPECIAL_TOKENS_MAP_FILE))
        unknown = set(config) - set(_init_keywords()) - IGNORED_CONFIG_KEYS
        if unknown:
            logger.warning(f"{directory}: ignoring unknown tokenizer settings {sorted(unknown)}")
        options = {k: v for k, v in config.items() if k in _init_keywords() and k != "name_or_path"}
        if "max_len" in config and "model_max_length" not in config:
            options["model_max_length"] = config["max_len"]
        legacy_added = _read_json(directory / ADDED_TOKENS_FILE)
        if legacy_added:
            decoder = dict(options.get("added_tokens_decoder") or {})
            for content, token_id in legacy_added.items():
                decoder.setdefault(str(token_id), {"content": content, "special": False})
            options["added_tokens_decoder"] = decoder
        if (directory / TOKENIZER_FILE).is_file():
            files = {"tokenizer_file": directory / TOKENIZER_FILE}
        elif (directory / VOCAB_FILE).is_file() and (directory / MERGES_FILE).is_file():
            files = {"vocab_file": directory / VOCAB_FILE, "merges_file": directory / MERGES_FILE}
        else:
            raise FileNotFoundError(f"{directory} has neither {TOKENIZER_FILE} nor {VOCAB_FILE} + {MERGES_FILE}")
        if options.get("model_max_length", 0) > 1e18:
            options.pop("model_max_length")  # v4 writes 1e30 for "unknown"; RoBERTa's is 512
        return cls(**files, **{"name_or_path": str(pretrained_model_name_or_path), **options, **kwargs})

    def save_pretrained(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write vocab.json, merges.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json.

        The files are the ones `transformers` v4 reads; all of them are written or none.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{save_directory} exists and is not a directory")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        config = self._config()
        special_map = {role: _token_dict(t) for role, t in self._special.items() if t is not None}
        if self._additional:
            special_map["additional_special_tokens"] = [_token_dict(t) for t in self._additional]
        files = {
            **self._vocabulary_files(prefix),
            prefix + TOKENIZER_FILE: self._backend_tokenizer().to_str(pretty=True),
            prefix + TOKENIZER_CONFIG_FILE: json.dumps(config, indent=2, ensure_ascii=False) + "\n",
            prefix + SPECIAL_TOKENS_MAP_FILE: json.dumps(special_map, indent=2, ensure_ascii=False) + "\n",
        }
        return tuple(_write_files_atomically(directory, files))

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, str]:
        """Write vocab.json and merges.txt (named '<prefix>-vocab.json' with a prefix); returns their paths."""
        directory = Path(save_directory)
        if not directory.is_dir():
            raise ValueError(f"{save_directory} is not a directory")
        paths = _write_files_atomically(directory, self._vocabulary_files(f"{filename_prefix}-" if filename_prefix else ""))
        return paths[0], paths[1]

    def _vocabulary_files(self, prefix: str) -> dict[str, str]:
        merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self._merges)
        return {prefix + VOCAB_FILE: json.dumps(self._encoder, ensure_ascii=False) + "\n", prefix + MERGES_FILE: merges}

    def _config(self) -> dict:
        """tokenizer_config.json in transformers v4's layout (so its AutoTokenizer can read ours)."""
        return {
            "add_prefix_space": self.add_prefix_space,
            "added_tokens_decoder": {str(i): _token_dict(t, with_special=True) for i, t in sorted(self._added.items())},
            **{role: t.content for role, t in self._special.items() if t is not None},
            "additional_special_tokens": self.additional_special_tokens,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "errors": self.errors,
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "split_special_tokens": self.split_special_tokens,
            "tokenizer_class": self.tokenizer_class_name,
            "trim_offsets": self.trim_offsets,
        }

    def _backend_tokenizer(self, pretokenizer=None):
        """A `tokenizers.Tokenizer` with this vocabulary and added tokens (imported only when needed).

        Without `pretokenizer` it is transformers' RoBERTa pipeline (ByteLevel pre-tokenizer and
        decoder, RobertaProcessing), which tokenizer.json stores; the fast tokenizer passes its own.
        """
        from tokenizers import AddedToken as RustAddedToken
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

        backend = Tokenizer(models.BPE(self._encoder, self._merges, dropout=None, continuing_subword_prefix="",
                                       end_of_word_suffix="", fuse_unk=False))
        backend.decoder = decoders.ByteLevel()
        if pretokenizer is None:
            backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=self.add_prefix_space)
            if self.cls_token_id is not None and self.sep_token_id is not None:
                backend.post_processor = processors.RobertaProcessing(
                    (self.sep_token, self.sep_token_id), (self.cls_token, self.cls_token_id),
                    trim_offsets=self.trim_offsets, add_prefix_space=self.add_prefix_space)
        else:
            backend.pre_tokenizer = pretokenizer
        for token_id, token in sorted(self._added.items()):
            rust = RustAddedToken(token.content, single_word=token.single_word, lstrip=token.lstrip,
                                  rstrip=token.rstrip, normalized=token.normalized, special=token.special)
            (backend.add_special_tokens if token.special else backend.add_tokens)([rust])
            if backend.token_to_id(token.content) != token_id:
                raise RuntimeError(f"tokenizers gave {token.content!r} id {backend.token_to_id(token.content)}, "
                                   f"expected {token_id}")
        backend.encode_special_tokens = self.split_special_tokens
        return backend

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"len={len(self)}, model_max_length={self.model_max_length}, add_prefix_space={self.add_prefix_space}, "
                f"trim_offsets={self.trim_offsets}, special_tokens={self.special_tokens_map})")


def _special_property(role: str):
    def get_token(self):
        token = self._special.get(role)
        return None if token is None else token.content

    def set_token(self, value):
        if value is None:
            self._special[role] = None
        else:
            self.add_special_tokens({role: value})

    def get_id(self):
        token = self._special.get(role)
        return None if token is None else self._token_id(token.content)

    return property(get_token, set_token), property(get_id)


for _role in SPECIAL_TOKEN_ATTRIBUTES:
    _token_property, _id_property = _special_property(_role)
    setattr(RobertaTokenizerBase, _role, _token_property)
    setattr(RobertaTokenizerBase, _role + "_id", _id_property)


class _Row:
    """One output row before padding: `<s> a </s>` or `<s> a </s></s> b </s>` and its per-token data."""

    __slots__ = ("ids", "n1", "n2", "special", "offsets", "words")

    def __init__(self, a, b, special: bool, cls_id: int, sep_id: int, want_offsets: bool, want_words: bool):
        self.n1, self.n2, self.special = len(a[0]), (None if b is None else len(b[0])), special
        self.offsets = self.words = None
        if not special:
            self.ids = a[0] if b is None else a[0] + b[0]
            if want_offsets:
                self.offsets = a[1] if b is None else a[1] + b[1]
            if want_words:
                self.words = a[2] if b is None else a[2] + b[2]
            return
        if b is None:
            self.ids = [cls_id, *a[0], sep_id]
        else:
            self.ids = [cls_id, *a[0], sep_id, sep_id, *b[0], sep_id]
        if want_offsets:
            none = [(0, 0)]
            self.offsets = none + a[1] + none if b is None else none + a[1] + none + none + b[1] + none
        if want_words:
            self.words = [None, *a[2], None] if b is None else [None, *a[2], None, None, *b[2], None]

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
    ids, offsets, words = encoded
    return (ids[start:end], None if offsets is None else offsets[start:end], None if words is None else words[start:end])


def _pad_rows(rows: list[list], target: int, value, left: bool) -> list[list]:
    if left:
        return [[value] * (target - len(r)) + r if len(r) < target else r for r in rows]
    return [r + [value] * (target - len(r)) if len(r) < target else r for r in rows]


def _lead_ws(text: str) -> int:
    return len(text) - len(text.lstrip(WHITESPACE))


def _trail_ws(text: str) -> int:
    return len(text) - len(text.rstrip(WHITESPACE))


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_side(name: str, value) -> str:
    if value not in ("left", "right"):
        raise ValueError(f"{name} must be 'left' or 'right', got {value!r}")
    return value


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _as_list(value):
    return value.tolist() if hasattr(value, "tolist") else value


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _token_dict(token: AddedToken, with_special: bool = False) -> dict:
    fields = dataclasses.asdict(token)
    if not with_special:
        fields.pop("special")
    return fields


@lru_cache(maxsize=1)
def _init_keywords() -> tuple[str, ...]:
    import inspect

    parameters = inspect.signature(RobertaTokenizerBase.__init__).parameters
    return tuple(name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY)
