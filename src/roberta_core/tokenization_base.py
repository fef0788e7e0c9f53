"""What the two RoBERTa tokenizers share: everything except turning a string into BPE ids.

`RobertaTokenizer` (pure Python) and `RobertaTokenizerFast` (the `tokenizers` library) differ only
in `_encode_texts`, which maps strings to (ids, character offsets, word ids) without special tokens. Special
tokens, truncation with overflow windows, padding, masks, offsets trimming, decoding, added
tokens and the files on disk live once in the base class, so the two cannot drift apart. It is
assembled from one module per role:

- `pretokenization`: GPT-2's pre-token pattern, the byte <-> symbol table, safe cut points;
- `special_tokens`: `AddedToken` and the special-token roles (`SpecialTokensMixin`);
- `padding`: call options, truncation windows, padding (`PaddingMixin`);
- `batch_encoding`: `BatchEncoding`, the output;
- `tokenizer_files`: reading, checking and writing the files (`TokenizerFilesMixin`);
- here: construction, the encoding entry points, offsets and decoding.

The API is that of Hugging Face `transformers` v4 (`__call__`, `encode`, `decode`, `pad`,
`from_pretrained`, `save_pretrained`, ...). Where v4's slow and fast tokenizers disagreed,
both of ours follow one rule, written down where it applies. Every name these modules define
that code imported from here before the split is still importable from here.
"""

from __future__ import annotations

import codecs

from .batch_encoding import TENSOR_TYPES, BatchEncoding, CharSpan, TokenSource, TokenSpan, to_python
from .padding import (
    CALL_DEFAULTS,
    PADDING_STRATEGIES,
    TRUNCATION_STRATEGIES,
    VERY_LARGE_INTEGER,
    PaddingMixin,
    _check_int,
    _check_side,
)
from .pretokenization import (
    PRETOKENIZE_TEMPLATE,
    SLOW_CLASSES,
    WHITESPACE,
    bytes_to_unicode,
    surrogate_error,
    symbols_to_bytes,
)
from .special_tokens import SPECIAL_TOKEN_ATTRIBUTES, AddedToken, SpecialTokensMixin, as_added_token
from .tokenizer_files import (
    ADDED_TOKENS_FILE,
    IGNORED_CONFIG_KEYS,
    MERGES_FILE,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    VOCAB_FILE,
    TokenizerFilesMixin,
    read_merges,
    read_tokenizer_json,
    read_vocab,
    validate_vocabulary,
)

__all__ = [
    "RobertaTokenizerBase", "BatchEncoding", "CharSpan", "TokenSpan", "AddedToken", "as_added_token", "bytes_to_unicode", "symbols_to_bytes",
    "PRETOKENIZE_TEMPLATE", "SLOW_CLASSES", "WHITESPACE", "SPECIAL_TOKEN_ATTRIBUTES", "TENSOR_TYPES",
    "TRUNCATION_STRATEGIES", "PADDING_STRATEGIES", "CALL_DEFAULTS", "IGNORED_CONFIG_KEYS", "VOCAB_FILE",
    "MERGES_FILE", "TOKENIZER_FILE", "TOKENIZER_CONFIG_FILE", "SPECIAL_TOKENS_MAP_FILE", "ADDED_TOKENS_FILE",
    "read_vocab", "read_merges", "read_tokenizer_json", "validate_vocabulary",
]

# v4's decoding keywords beyond those `decode` names; it changes nothing here. (`decode` takes any
# other keyword too and ignores it, as v4 does.)
DECODE_KEYWORDS = frozenset({"use_source_tokenizer"})


class TokenIdOutOfRangeError(OverflowError, ValueError):
    """A negative token id given to a fast tokenizer's `decode` / `convert_ids_to_tokens`: v4's raises
    an OverflowError there (`tokenizers` takes ids as unsigned ints); a ValueError as ours raised before."""


class RobertaTokenizerBase(SpecialTokensMixin, PaddingMixin, TokenizerFilesMixin):
    """RoBERTa's tokenizer minus the BPE engine: `<s> A </s>` and `<s> A </s></s> B </s>` sequences.

    Subclasses implement `_encode_texts(texts, with_offsets, split_special)` and may react to new added tokens in
    `_added_tokens_changed()`.
    """

    is_fast = False
    verbose = False  # v4's default; its warnings are given once per tokenizer here
    init_inputs = ()  # v4's positional arguments of from_pretrained (none: the files are keywords)
    model_input_names = ["input_ids", "attention_mask"]
    pad_token_type_id = 0  # RoBERTa has one token type

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
        model_max_length: int | float | None = VERY_LARGE_INTEGER,
        model_input_names: list[str] | None = None,
        padding_side: str = "right",
        truncation_side: str = "right",
        clean_up_tokenization_spaces: bool = False,
        split_special_tokens: bool = False,
        name_or_path: str = "",
        **kwargs,
    ):
        # Other keywords are taken and kept in init_kwargs (so tokenizer_config.json keeps them), as
        # v4 takes them (its tests pass do_lower_case=... to every tokenizer); `verbose` is v4's attribute.
        self._check_conflicting_keywords(kwargs)
        if "verbose" in kwargs:
            self.verbose = bool(kwargs["verbose"])
        given = getattr(self, "_given_kwargs", {})
        spec = self._read_vocabulary_source(vocab_file, merges_file, tokenizer_file, vocab, merges)
        self._set_vocabulary(spec)

        try:
            codecs.lookup_error(errors)
        except LookupError:
            raise ValueError(f"errors must name a codecs error handler ('replace', 'strict', 'ignore', ...), "
                             f"got {errors!r}") from None
        self.errors = errors
        self.add_prefix_space = spec.get("add_prefix_space", False) if add_prefix_space is None else add_prefix_space
        self.trim_offsets = spec.get("trim_offsets", True) if trim_offsets is None else trim_offsets
        self.model_max_length = _model_max_length(model_max_length)
        if model_input_names is not None:
            # As v4: the inputs a call returns by default (["input_ids"]: no attention_mask).
            if isinstance(model_input_names, str) or not isinstance(model_input_names, (list, tuple)) or not all(
                    isinstance(name, str) for name in model_input_names):
                raise TypeError(f"model_input_names must be a list of str, got {model_input_names!r:.80}")
            self.model_input_names = model_input_names  # kept as given (a tuple stays one), as v4 keeps it
        self.padding_side = _check_side("padding_side", padding_side)
        self.truncation_side = _check_side("truncation_side", truncation_side)
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.split_special_tokens = split_special_tokens
        self.name_or_path = str(name_or_path)
        self._warned: set[str] = set()  # warnings given once per tokenizer, as v4's deprecation_warnings

        # Added tokens by id (RoBERTa's specials live inside the vocab), then the special-token roles.
        self._added: dict[int, AddedToken] = {}
        self._added_ids: dict[str, int] = {}  # content -> id of the same tokens
        known = {**spec.get("added_tokens", {}), **{int(i): as_added_token(t, special=False)
                                                    for i, t in (added_tokens_decoder or {}).items()}}
        for token_id in sorted(known):
            self._register(known[token_id], token_id)
        self._special: dict[str, AddedToken | None] = {}
        self._special_str: set[str] = set()  # roles v4 holds as strings (see SpecialTokensMixin)
        self._additional_str: set[str] = set()
        roles = dict(bos_token=bos_token, eos_token=eos_token, unk_token=unk_token, sep_token=sep_token,
                     pad_token=pad_token, cls_token=cls_token, mask_token=mask_token)
        built_from_slow = tokenizer_file is None  # what v4's fast tokenizer does without a tokenizer.json
        for role, token in roles.items():
            if token is None:
                self._special[role] = None
                continue
            wrapped = self._wrapped_default(role, token, built_from_slow) if isinstance(token, str) else None
            if wrapped is not None:
                self._special[role] = wrapped
            else:
                self._special[role] = self._held_token(token, role)
                if isinstance(token, str):
                    self._special_str.add(role)
        self._additional: list[AddedToken] = []
        for token in additional_special_tokens or []:
            self._additional.append(self._held_token(token, "additional_special_tokens"))
            if isinstance(token, str):
                self._additional_str.add(token)
        for token in [*self._special.values(), *self._additional]:
            if token is not None:
                self._register(token)
        self._added_tokens_changed()
        # The options it was made with, as v4 keeps them in `init_kwargs` (what `from_pretrained`
        # read, or was given): save_pretrained writes them back into tokenizer_config.json.
        held = {role: (None if t is None else t.content if role in self._special_str else t)
                for role, t in self._special.items()}
        explicit = self._v4_init_kwargs(held, errors=errors, built_from_slow=built_from_slow)
        ignored = {"vocab_file", "merges_file", "tokenizer_file", "vocab", "merges", "added_tokens_decoder",
                   "sp_model_kwargs"}
        self.init_kwargs = {**explicit, **{k: v for k, v in given.items() if k not in ignored and k not in explicit}}
        if "additional_special_tokens" in self.init_kwargs:
            self.init_kwargs["additional_special_tokens"] = [
                t.content if t.content in self._additional_str else t for t in self._additional]

    @classmethod
    def _check_conflicting_keywords(cls, keywords) -> None:
        """As v4: a keyword named like a method of the tokenizer (`add_special_tokens=True`) is an
        AttributeError, not an option kept in init_kwargs."""
        for key in keywords:
            if callable(getattr(cls, key, None)):
                raise AttributeError(f"{key} conflicts with the method {key} in {cls.__name__}")

    @property
    def deprecation_warnings(self) -> dict:
        """v4's record of the warnings given once; `tok.deprecation_warnings = {}` gives them again."""
        return dict.fromkeys(self._warned, True)

    @deprecation_warnings.setter
    def deprecation_warnings(self, value) -> None:
        self._warned = set(value or ())

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        # The keywords the caller named, which v4 keeps in `init_kwargs` (and so in tokenizer_config.json).
        # Not the vocabulary itself (`vocab=`, `merges=`: v4 leaves them out of init_kwargs too),
        # which would stay alive, and be pickled, with every tokenizer built from it.
        self._given_kwargs = {k: v for k, v in kwargs.items() if k not in ("vocab", "merges")}
        return self

    def _wrapped_default(self, role: str, content: str, built_from_slow: bool):
        """Hook: the AddedToken v4's class makes of a special token given as a string, or None where
        v4 keeps the string. RoBERTa's (slow, and fast when built from its slow one) wraps each:
        `<mask>` with lstrip (normalized=False), the others with normalized=True."""
        if self.is_fast and not built_from_slow:  # v4's fast one, from a tokenizer.json: only <mask>
            return AddedToken(content, lstrip=True, normalized=False, special=True) if role == "mask_token" else None
        if role == "mask_token":
            return AddedToken(content, lstrip=True, normalized=False, special=True)
        return AddedToken(content, normalized=True, special=True)

    def _v4_init_kwargs(self, roles: dict, *, errors, built_from_slow: bool) -> dict:
        """Hook: the `init_kwargs` v4's class records from its own parameters (RoBERTa's)."""
        return {"errors": errors, **roles, "add_prefix_space": self.add_prefix_space,
                **({"trim_offsets": self.trim_offsets} if self.is_fast else {})}

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


    def _set_vocabulary(self, spec: dict) -> None:
        """Hook: the vocabulary state from `_read_vocabulary_source`'s spec (here byte-level BPE:
        `_encoder`, `_merges`, `_decoder`, `_id_bytes`; the SentencePiece tokenizers set their own)."""
        self._encoder: dict[str, int] = dict(spec["vocab"])
        self._merges: list[tuple[str, ...]] = [tuple(m) for m in spec["merges"]]
        validate_vocabulary(self._encoder, self._merges)
        self._decoder: list[str] = sorted(self._encoder, key=self._encoder.__getitem__)  # id -> token
        self._id_bytes: list[bytes] = [symbols_to_bytes(token) for token in self._decoder]
        self._space_counts = None  # leading/trailing 'Ġ' per id, built on the first offsets request

    def _added_tokens_changed(self) -> None:
        """Hook: the set of added tokens or their flags changed."""

    def _encode_texts(self, texts: list[str], with_offsets: bool, split_special: bool,
                      prefix_space: bool = False) -> list[tuple]:
        """(ids, offsets, words) of each text without special tokens: BPE ids, and when `with_offsets`
        the (start, end) character span and the word index of each token (else None, None).
        `prefix_space`: the engine adds the prefix spaces (only where `_engine_adds_prefix_space`).

        A word is what v4's fast tokenizer counts as one: a pre-token of GPT-2's pattern (a word
        with its leading space, a digit run, a symbol run, a whitespace run) or an added token.

        Added tokens are matched first, as `tokenizers` does: tokens with normalized=False over the
        whole text, then the others inside the gaps; split_special leaves special tokens as text.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ encoding

    def _call_fast_layout(self, *args, **kwargs) -> BatchEncoding:
        """`self(*args, **kwargs)` in the fast tokenizer's layout whatever the class: overflow as
        windows with `overflow_to_sample_mapping` (what the pipelines read; v4 slow's own call gives
        flat `overflowing_tokens` instead)."""
        return self(*args, _fast_layout=True, **kwargs)  # an option of this call: a shared tokenizer is not changed

    def __call__(self, text=None, text_pair=None, text_target=None, text_pair_target=None, **kwargs) -> BatchEncoding:
        """Encode a text, a pair, a batch of texts or pairs, or pre-split words (`is_split_into_words`).

        Returns a BatchEncoding with input_ids and attention_mask, plus what the return_* flags ask
        for. A single input gives flat lists unless `return_tensors` or overflow windows are asked for.
        `text_target` / `text_pair_target` (as v4, for sequence-to-sequence labels) are encoded
        with the same options and their input_ids come back as `labels` (padded with the pad id);
        with targets only, the result is the targets' encoding.
        """
        options = self._call_options(kwargs)
        if text is None and text_target is None:
            raise TypeError("text is required (or text_target): a str, a list of str, a list of (str, str) pairs or, "
                            "with is_split_into_words=True, a list of words or a batch of such lists")
        if text is None and text_pair is not None:
            raise ValueError("text_pair was given without text; pass the first texts as text")
        if text_target is None and text_pair_target is not None:
            raise ValueError("text_pair_target was given without text_target; pass the first targets as text_target")
        split = options["is_split_into_words"]
        encoding = None
        if text is not None:
            batch, pairs, batched = self._parse_inputs(text, text_pair, split)
            encoding = self._encode_batch(batch, pairs, batched, options)
        if text_target is None:
            return encoding
        targets_batch, target_pairs, targets_batched = self._parse_inputs(text_target, text_pair_target, split)
        targets = self._encode_batch(targets_batch, target_pairs, targets_batched, options)
        if encoding is None:
            return targets
        if batched != targets_batched or (batched and len(encoding._rows[0]) != len(targets._rows[0])):
            raise ValueError(f"text and text_target must both be one input or batches that give the same number "
                             f"of rows; got {len(encoding._rows[0])} row(s) and {len(targets._rows[0])}")
        encoding["labels"] = targets["input_ids"]
        return encoding

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """One text (or words with is_split_into_words) and an optional pair; v4's name for a single call.

        As v4's slow tokenizer (its `_encode_plus`), the slow one also takes, for either text, a
        non-empty list of ids (used as they are) or, without is_split_into_words, a non-empty list
        of token strings (their ids, unknown ones the unk id): v4's question-answering preprocessing
        (`squad_convert_examples_to_features`) passes the question's ids and the context's tokens.
        As v4's fast tokenizer (`tokenizers`), the fast one refuses those, except a list of two
        strings without a pair and without is_split_into_words, which is a (text, pair)."""
        options = self._call_options(kwargs)
        split = options["is_split_into_words"]
        if self.is_fast:
            if (text_pair is None and not split and isinstance(text, (list, tuple)) and len(text) == 2
                    and all(isinstance(t, str) for t in text)):
                text, text_pair = text
            elif not split and any(isinstance(t, (list, tuple)) for t in (text, text_pair)):
                raise TypeError("the fast tokenizer's encode_plus/encode take a str (and a str pair), as v4's does: "
                                "token ids or token strings are read by the slow tokenizer only (or use "
                                "prepare_for_model); for batches use __call__ or batch_encode_plus")
        elif "ids" in (self._v4_slow_input_kind(text, split), self._v4_slow_input_kind(text_pair, split)):
            return self._encode_plus_ids(text, text_pair, options)
        batch, pairs, batched = self._parse_inputs(text, text_pair, split)
        if batched:
            raise TypeError("encode_plus takes one text (or pair); use __call__ or batch_encode_plus for batches")
        return self._encode_batch(batch, pairs, batched, options)

    @staticmethod
    def _v4_slow_input_kind(value, split: bool) -> str:
        """How v4 slow's `_encode_plus` reads one text: 'ids' for a non-empty list or tuple of ints,
        or (without is_split_into_words) of token strings; else 'text' (a str, words, or an error
        left to `_parse_inputs`)."""
        if isinstance(value, (list, tuple)) and value:
            first = value[0]
            if isinstance(first, int) or (isinstance(first, str) and not split):
                return "ids"
        return "text"

    def _encode_plus_ids(self, text, text_pair, options: dict) -> BatchEncoding:
        """v4 slow's `encode_plus` where a text is given as ids or token strings: each text to ids
        (a str, or words with is_split_into_words, tokenized without special tokens), then as
        `prepare_for_model` (one row with a batch axis for tensors, v4's slow layout)."""
        if options["return_offsets_mapping"]:
            raise ValueError("return_offsets_mapping needs text: it is not available for a text given as "
                             "token ids or token strings")
        split = options["is_split_into_words"]
        plan = self._plan(options, [text_pair is not None])

        def ids_of(value, name: str) -> list[int]:
            if self._v4_slow_input_kind(value, split) == "ids":
                if isinstance(value[0], int):
                    return self._check_ids(value, name)
                return self.convert_tokens_to_ids(list(value))  # token strings
            seqs, _, batched = self._parse_inputs(value, None, split)
            if batched:
                raise TypeError(f"{name} must be one text, got a batch")
            return self._encode_sequences(seqs, split, False, plan["split_special_tokens"],
                                          options["add_prefix_space"])[0][0]

        first = (ids_of(text, "text"), None, None, None)
        second = None if text_pair is None else (ids_of(text_pair, "text_pair"), None, None, None)
        return self._finish(plan, [(first, second)], False, TokenSource(self, None, False, False, None))

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

    def prepare_seq2seq_batch(self, src_texts, tgt_texts=None, max_length: int | None = None,
                              max_target_length: int | None = None, padding="longest", return_tensors=None,
                              truncation=True, **kwargs) -> BatchEncoding:
        """v4's deprecated helper (it warns as v4 does): the sources encoded with special tokens, padded
        and truncated to `max_length` (default model_max_length), and the targets' input_ids as
        `labels` (truncated to `max_target_length`, default `max_length`). `src_lang`/`tgt_lang`
        are ignored, as v4 ignores them outside mBART."""
        import warnings

        warnings.warn("`prepare_seq2seq_batch` is deprecated and will be removed in version 5 of HuggingFace "
                      "Transformers. Use the regular `__call__` method to prepare your inputs and targets: "
                      "`tokenizer(src_texts, text_target=tgt_texts, ...)`.", FutureWarning, stacklevel=2)
        kwargs.pop("src_lang", None)
        kwargs.pop("tgt_lang", None)
        if max_length is None:
            max_length = self.model_max_length
        options = dict(add_special_tokens=True, return_tensors=return_tensors, padding=padding,
                       truncation=truncation, **kwargs)
        model_inputs = self(src_texts, max_length=max_length, **options)
        if tgt_texts is None:
            return model_inputs
        labels = self(tgt_texts, max_length=max_length if max_target_length is None else max_target_length, **options)
        model_inputs["labels"] = labels["input_ids"]
        return model_inputs

    def tokenize(self, text, pair=None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """The token strings of one text (byte-level symbols, e.g. 'ĠHello'), as the call's `tokens()`
        shows them; no special tokens by default (never for the slow tokenizer, as in v4)."""
        return self.encode_plus(text, pair, add_special_tokens=add_special_tokens and self.is_fast, **kwargs).tokens()

    def prepare_for_model(self, ids: list[int], pair_ids: list[int] | None = None, *,
                          prepend_batch_axis: bool = False, **kwargs) -> BatchEncoding:
        """Add special tokens, truncate and pad already tokenized ids, like a call on text would.
        Tensors have no batch axis unless `prepend_batch_axis` (as v4)."""
        options = self._call_options(kwargs)
        if options["return_offsets_mapping"] or options["is_split_into_words"]:
            raise ValueError("prepare_for_model works on ids: offsets and words are not available")
        first = (self._check_ids(ids, "ids"), None, None, None)
        second = None if pair_ids is None else (self._check_ids(pair_ids, "pair_ids"), None, None, None)
        # v4's prepare_for_model is its slow tokenizer's for both, with tensors of one row (no batch axis).
        return self._finish(self._plan(options, [pair_ids is not None], slow_layout=True), [(first, second)], False,
                            TokenSource(self, None, False, False, None), batch_axis=bool(prepend_batch_axis))

    def _call_options(self, kwargs) -> dict:
        kwargs = dict(kwargs)
        # v4's slow tokenizer takes add_prefix_space per call too (its QA pipeline passes it);
        # the fast one refuses it, as v4's does.
        prefix = None if self.is_fast else kwargs.pop("add_prefix_space", None)
        unknown = set(kwargs) - set(CALL_DEFAULTS)
        if unknown:
            raise TypeError(f"unexpected keyword arguments {sorted(unknown)}; allowed: {sorted(k for k in CALL_DEFAULTS if not k.startswith('_'))}")
        prefix = self.add_prefix_space if prefix is None else bool(prefix)
        options = {**CALL_DEFAULTS, **kwargs, "add_prefix_space": prefix}
        # As v4: what is not asked for either way follows `model_input_names`.
        names = self.model_input_names
        if options["return_attention_mask"] is None and "attention_mask" not in names:
            options["return_attention_mask"] = False
        if options["return_token_type_ids"] is None and "token_type_ids" in names:
            options["return_token_type_ids"] = True
        return options

    def pad(self, encoded_inputs, *args, **kwargs) -> BatchEncoding:
        """`PaddingMixin.pad`, with v4's default for return_attention_mask: whether `model_input_names`
        has an attention_mask."""
        if "attention_mask" not in self.model_input_names:
            if len(args) > 4:  # (padding, max_length, pad_to_multiple_of, padding_side, return_attention_mask, ...)
                if args[4] is None:
                    args = (*args[:4], False, *args[5:])
            elif kwargs.get("return_attention_mask") is None:
                kwargs["return_attention_mask"] = False
        if self.is_fast:  # v4's advice, given once per tokenizer (data collators pad encoded rows)
            self._warn_once(f"You're using a {type(self).__name__} tokenizer. Please note that with a fast tokenizer, "
                            "using the `__call__` method is faster than using a method to encode the text followed "
                            "by a call to the `pad` method to get a padded encoding.",
                            key="Asking-to-pad-a-fast-tokenizer")
        # As v4: the ids to pad are those named first in model_input_names (padded with the pad id).
        main = self.model_input_names[0] if self.model_input_names else "input_ids"
        if main == "input_ids" or not _has_key(encoded_inputs, main) or _has_key(encoded_inputs, "input_ids"):
            return super().pad(encoded_inputs, *args, **kwargs)
        padded = super().pad(_renamed_key(encoded_inputs, main, "input_ids"), *args, **kwargs)
        return BatchEncoding({main if k == "input_ids" else k: v for k, v in padded.items()})

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
            if self.is_fast and isinstance(text_pair, (str, list, tuple)) and not text_pair:
                text_pair = None  # v4 fast encodes one text with an empty pair ('' or []) as a single text
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
        seqs = firsts + [s for s in seconds if s is not None]
        prefix = options["add_prefix_space"]
        encoded = self._encode_sequences(seqs, split, with_offsets, plan["split_special_tokens"], prefix)
        second_iter = iter(encoded[len(firsts):])
        items = [(first, next(second_iter) if pair else None) for first, pair in zip(encoded, has_pair)]
        source = TokenSource(self, seqs, split, plan["split_special_tokens"], prefix)
        return self._finish(plan, items, batched, source)

    def _encode_sequences(self, seqs: list, split: bool, with_offsets: bool, split_special: bool,
                          add_prefix_space: bool | None = None) -> list[tuple]:
        """(ids, offsets or None, word ids or None, origin) per text or word list, without special tokens.

        Word ids count pre-split words, or else the tokenizer's words (see `_encode_texts`); they
        come with the offsets for plain text. `origin` is (k, 0): sequence k of `seqs`, from its
        first token (`padding._slice` moves it along with truncation windows).

        A space goes in front of a text when add_prefix_space is set (the call's, else the
        tokenizer's), and in front of every pre-split word (as in v4), unless it starts with whitespace. Offsets index
        the original text (each word for pre-split input); with trim_offsets they leave out the spaces a token carries.
        """
        texts, inputs, shifted, engine_prefix = self._engine_inputs(seqs, split, add_prefix_space)
        prefix = engine_prefix or shifted is not None  # the texts get prefix spaces, by either rule
        try:
            encoded = self._encode_texts(inputs, with_offsets, split_special, engine_prefix)
        except (TypeError, UnicodeEncodeError):
            # Both engines fail on a lone surrogate, each in its own words (tokenizers with a TypeError
            # about its input types): the same clear error for both, looked for only once one failed.
            error = surrogate_error(texts)
            if error is None:
                raise
            raise error from None
        if with_offsets:
            encoded = [(ids, self._final_offsets(text, ids, offsets, bool(shifted and shifted[k]), prefix), words)
                       for k, (text, (ids, offsets, words)) in enumerate(zip(inputs, encoded))]
        if not split:
            return [(ids, offsets, words, (k, 0)) for k, (ids, offsets, words) in enumerate(encoded)]
        grouped, position = [], 0
        for k, words in enumerate(seqs):
            ids, offsets, word_ids = [], [] if with_offsets else None, []
            for w in range(len(words)):
                word_ids_, word_offsets, _ = encoded[position + w]
                ids += word_ids_
                word_ids += [w] * len(word_ids_)
                if with_offsets:
                    offsets += word_offsets
            position += len(words)
            grouped.append((ids, offsets, word_ids, (k, 0)))
        return grouped

    # Whether tokens() (and tokenize()) show an unknown piece's own text rather than the unk token, as
    # v4's SentencePiece tokenizers do (`_sequence_tokens` gives those strings); byte-level BPE has no
    # unknown pieces, so the RoBERTa tokenizers keep False.
    _unknown_shows_text = False

    # Whether the engine puts the prefix spaces in itself (`_encode_texts`' `prefix_space`), by its
    # own rule, rather than `_engine_inputs` before the whole text by the slow tokenizer's rule.
    _engine_adds_prefix_space = False

    def _wants_prefix_space(self, split: bool, add_prefix_space: bool | None) -> bool:
        """Whether the texts get a prefix space: pre-split words always, else the call's or the tokenizer's choice."""
        return split or bool(self.add_prefix_space if add_prefix_space is None else add_prefix_space)

    def _engine_inputs(self, seqs: list, split: bool, add_prefix_space: bool | None):
        """(texts, what the engine encodes, which got a prefix space here or None, whether the engine
        adds the prefix spaces): one text per sequence, or per word for pre-split input (see
        `_encode_sequences`)."""
        texts = [w for words in seqs for w in words] if split else seqs
        wanted = self._wants_prefix_space(split, add_prefix_space)
        engine_prefix = wanted and self._engine_adds_prefix_space
        prefix = wanted and not engine_prefix
        shifted = [self._takes_prefix_space(t) for t in texts] if prefix else None
        inputs = [" " + t if s else t for t, s in zip(texts, shifted)] if prefix else texts
        return texts, inputs, shifted, engine_prefix

    def _sequence_tokens(self, seqs: list, split: bool, split_special: bool,
                         add_prefix_space: bool | None = None) -> list[list[str]]:
        """The token strings of each sequence without special tokens, as v4's `tokens()` shows them
        (`FastEngineMixin` overrides it): here those of the ids."""
        encoded = self._encode_sequences(seqs, split, False, split_special, add_prefix_space)
        return [self.convert_ids_to_tokens(ids) for ids, *_ in encoded]

    @staticmethod
    def _takes_prefix_space(text: str) -> bool:
        return bool(text) and not text[0].isspace()

    def _final_offsets(self, text: str, ids: list[int], offsets, shifted: bool,
                       prefix_space: bool = False) -> list[tuple[int, int]]:
        """Trim the spaces each token's string holds (trim_offsets), as `tokenizers`' RoBERTa
        post-processor trims them: 'Ġ' and whitespace at either end, an added token's matched text
        (with the whitespace it took) included; but not one leading space of the first token, or of
        one starting the text or word, when the texts get prefix spaces (`prefix_space`: it may be
        the one added). Then undo the prefix space `_engine_inputs` put in front (shifted)."""
        if self.trim_offsets and self._space_counts is None:
            lead = [len(t) - len(t.lstrip("Ġ")) for t in self._decoder]
            trail = [len(t) - len(t.rstrip("Ġ")) for t in self._decoder]
            self._space_counts = (lead, trail)
        result = []
        for i, (token_id, (start, end)) in enumerate(zip(ids, offsets)):
            if self.trim_offsets:
                if token_id in self._added:
                    piece = text[start:end]
                    lead, trail = len(piece) - len(piece.lstrip(WHITESPACE)), len(piece) - len(piece.rstrip(WHITESPACE))
                else:  # a BPE token: its leading/trailing 'Ġ' are spaces of the text
                    lead, trail = self._space_counts[0][token_id], self._space_counts[1][token_id]
                if lead == 1 and prefix_space and (i == 0 or start == 0):
                    lead = 0
                if lead:
                    start = min(start + lead, end)
                if trail and end >= trail:
                    end = max(end - trail, start)
            if shifted:
                # the prefix space counts as part of the first character, as in `tokenizers`: a span
                # ending just after it ends after that character
                start, end = max(start - 1, 0), max(end - 1, min(end, 1))
            result.append((start, end))
        return result

    # ------------------------------------------------------------------ decoding

    def _check_ids(self, ids, what: str = "token ids", *, past_end: bool = True, negative: bool = True) -> list[int]:
        """`ids` as a list of Python ints: an array or tensor (also 0-d), an int, or a list of ints,
        NumPy scalars or 0-d tensors (as v4's `to_py_obj` reads them). An id outside [0, len(self))
        is an error (ValueError naming it) unless `past_end` / `negative` say not to check that side."""
        ids = to_python(ids)  # no framework imported: `.tolist()` / `.numpy()`, also inside lists
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = [ids]
        if not isinstance(ids, (list, tuple)):
            raise TypeError(f"{what} must be a list of int, got {type(ids).__name__}")
        size = len(self)
        for position, i in enumerate(ids):
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"{what} must be ints; position {position} is {_describe(i)}")
            if (i < 0 and negative) or (i >= size and past_end):
                error = TokenIdOutOfRangeError if i < 0 and self.is_fast else ValueError
                raise error(f"token id {i} at position {position} is outside the vocabulary [0, {size})")
        return list(ids)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Token strings for ids (an int, or a 0-d array or tensor, gives a str). As v4: None for an id
        past the vocabulary (and, slow, for a negative one; fast, a negative id is an error, v4's
        OverflowError); `skip_special_tokens` is ignored for a single id."""
        ids = to_python(ids)
        single = isinstance(ids, int) and not isinstance(ids, bool)
        checked = self._check_ids(ids, past_end=False, negative=self.is_fast)
        if single:
            return self._convert_id_to_token(checked[0])
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._convert_id_to_token(i) for i in checked if i not in skip]

    def _decoded_ids(self, token_ids) -> list[int]:
        """The ids `decode` reads. Fast, as `tokenizers`: ids past the vocabulary are left out (v4's
        fast decode skips them silently), a negative one is an error (v4: OverflowError). Slow: an
        id outside the vocabulary is a ValueError naming it (v4's slow decode fails with a TypeError
        about joining None)."""
        if not self.is_fast:
            return self._check_ids(token_ids)
        ids = self._check_ids(token_ids, past_end=False)
        size = len(self)
        return ids if max(ids, default=-1) < size else [i for i in ids if i < size]

    def convert_tokens_to_ids(self, tokens):
        """Ids for token strings (a str gives an int); unknown tokens map to the unk id, as in v4."""
        if isinstance(tokens, str):
            return self._convert_token(tokens)
        return [self._convert_token(t) for t in tokens]

    # v4's per-item converters, which its data collators call (DataCollatorForWholeWordMask):
    # None for an id outside the vocabulary, as v4 gives.
    def _convert_id_to_token(self, index: int) -> str | None:
        index = int(index)
        if not 0 <= index < len(self):
            return None
        return self._added[index].content if index in self._added else self._decoder[index]

    def _convert_token_to_id(self, token: str) -> int:
        return self._convert_token(token)

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

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               spaces_between_special_tokens: bool = True, **kwargs) -> str:
        """The text of ids. Byte-level BPE is lossless: decode(encode(text)) == text, minus specials
        and the whitespace that <mask> absorbs. `skip_special_tokens` drops the special tokens (and,
        fast, the added tokens marked special). As in v4, the slow tokenizer puts a space on each side of
        an added token that is not a special one with `spaces_between_special_tokens` (the fast one
        ignores it); other keywords (`use_source_tokenizer`, ...) are accepted and ignored, as v4 does.
        Ids outside the vocabulary: see `_decoded_ids`."""
        ids = self._decoded_ids(token_ids)
        if skip_special_tokens:
            special = set(self.all_special_ids)
            if self.is_fast:  # `tokenizers` also skips every added token marked special, v4's slow one does not
                special |= {i for i, t in self._added.items() if t.special}
            ids = [i for i in ids if i not in special]
        if spaces_between_special_tokens and not self.is_fast:
            text = self._spaced_text(ids)
        else:
            text = self._text(ids)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean else text

    def _text(self, ids: list[int]) -> str:
        id_bytes = self._id_bytes
        return b"".join([id_bytes[i] for i in ids]).decode("utf-8", self.errors)

    def _spaced_text(self, ids: list[int]) -> str:
        """v4 slow's decoding: the text of the runs of ids between added tokens that are not special
        ones (or additional special tokens past the vocabulary), joined to those by spaces."""
        special = set(self.all_special_tokens)
        apart = {i for i, t in self._added.items() if t.content not in special}
        apart |= {i for i in map(self._token_id, (t.content for t in self._additional)) if i >= self.vocab_size}
        if not apart.intersection(ids):
            return self._text(ids)
        pieces, run = [], []
        for i in ids:
            if i not in apart:
                run.append(i)
                continue
            if run and self._text(run):
                pieces.append(self._text(run))
            pieces.append(self._added[i].content)
            run = []
        if run:
            pieces.append(self._text(run))
        return " ".join(pieces)

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None, **kwargs) -> list[str]:
        if not isinstance(sequences, (list, tuple)):
            sequences = list(sequences)  # rows of an array or tensor
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces, **kwargs) for s in sequences]

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """v4's English clean-up: no space before punctuation and contractions."""
        for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                              (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            text = text.replace(before, after)
        return text

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"len={len(self)}, model_max_length={self.model_max_length}, add_prefix_space={self.add_prefix_space}, "
                f"trim_offsets={self.trim_offsets}, special_tokens={self.special_tokens_map})")


def _has_key(encoded_inputs, key: str) -> bool:
    """Whether `pad`'s input (a dict, or a list of dicts) has `key`."""
    if isinstance(encoded_inputs, (list, tuple)):
        return bool(encoded_inputs) and isinstance(encoded_inputs[0], dict) and key in encoded_inputs[0]
    return isinstance(encoded_inputs, dict) and key in encoded_inputs


def _renamed_key(encoded_inputs, old: str, new: str):
    """`pad`'s input with `old` renamed `new`, in its place (each dict of a list)."""
    def renamed(d):
        return {new if k == old else k: v for k, v in d.items()}

    if isinstance(encoded_inputs, (list, tuple)):
        return [renamed(d) if isinstance(d, dict) else d for d in encoded_inputs]
    return renamed(encoded_inputs)


def _model_max_length(value) -> int | float:
    """v4's model_max_length: None is its "no limit" (VERY_LARGE_INTEGER); a number is kept as given
    (a float too, as v4 keeps it)."""
    if value is None:
        return VERY_LARGE_INTEGER
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
        raise ValueError(f"model_max_length must be a number >= 1, or None for no limit; got {value!r}")
    return value


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


class FastEngineMixin:
    """What a fast tokenizer shares whatever its model: the `tokenizers.Tokenizer` it encodes with,
    built from `_backend_tokenizer` (what tokenizer.json stores) on first use, dropped when the
    added tokens change (it carries them) and when pickled (rebuilt after). `_build_engine` says how
    to build it (byte-level BPE adds its own pre-tokenizer)."""

    _engine = _prefix_engine = None
    # Texts longer than this many characters are encoded in pieces (`_chunk_spans`).
    max_chunk_chars = 16_384

    def _added_tokens_changed(self) -> None:
        self._engine = self._prefix_engine = None  # rebuilt on next use

    def __getstate__(self):
        return {**self.__dict__, "_engine": None, "_prefix_engine": None}

    @property
    def backend_tokenizer(self):
        """The `tokenizers.Tokenizer` that tokenizer.json stores."""
        return self._backend_tokenizer()

    @property
    def _tokenizer(self):
        """v4 fast's name for `backend_tokenizer`."""
        return self.backend_tokenizer

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

    def _sequence_tokens(self, seqs, split, split_special, add_prefix_space=None):
        # `tokenizers`' token strings: an added token that strips whitespace shows what it took
        # (' <mask>'), as v4 fast's tokens() and tokenize() do.
        _, inputs, _, prefix = self._engine_inputs(seqs, split, add_prefix_space)
        encodings = self._engine_for(split_special, prefix).encode_batch(inputs, add_special_tokens=False)
        tokens = [e.tokens for e in encodings]
        return _by_sequence(tokens, seqs) if split else tokens

    def _build_engine(self, prefix_space: bool = False):
        """The Rust engine; `prefix_space`: one that adds the prefix spaces (`_engine_adds_prefix_space`)."""
        return self._backend_tokenizer()

    def _chunk_spans(self, text: str, size: int, prefix_space: bool = False) -> list[tuple[int, int]]:
        """Where a long text may be cut so that its pieces tokenize as the whole does (no cut: one span)."""
        return [(0, len(text))]

    @staticmethod
    def _encode_pieces(engine, texts, with_offsets):
        """(ids, offsets, word ids) of each text from the Rust engine, without special tokens (the last
        two None unless `with_offsets`); a word is one split of the pre-tokenizer or an added token."""
        if with_offsets:
            return [(e.ids, e.offsets, e.word_ids) for e in engine.encode_batch(texts, add_special_tokens=False)]
        return [(e.ids, None, None) for e in engine.encode_batch_fast(texts, add_special_tokens=False)]

    def _encode_texts(self, texts, with_offsets, split_special, prefix_space=False):
        engine = self._engine_for(split_special, prefix_space)
        size = self.max_chunk_chars
        if all(len(text) <= size for text in texts):
            return self._encode_pieces(engine, texts, with_offsets)
        # A long text goes to Rust in pieces cut where they tokenize as the whole does: `tokenizers`
        # holds per-byte alignment tables and per-token strings for the whole input at once (1.9 GB
        # for 10 MB of CJK/emoji text, 3.5 GB with offsets). Pieces go in groups of about
        # CHUNK_GROUP pieces' worth of text, still in parallel.
        pieces = [(k, start, end) for k, text in enumerate(texts)
                  for start, end in (self._chunk_spans(text, size, prefix_space) if len(text) > size
                                     else [(0, len(text))])]
        results = [([], [] if with_offsets else None, [] if with_offsets else None) for _ in texts]
        # The ids as one shared int object per vocabulary id (as the slow tokenizer's cache has them),
        # not one new object per token: 8 million tokens would otherwise hold 250 MB of ints.
        shared = list(range(len(self)))
        group, group_chars = [], 0
        for index, piece in enumerate(pieces):
            group.append(piece)
            group_chars += piece[2] - piece[1]
            if group_chars < CHUNK_GROUP * size and index + 1 < len(pieces):
                continue
            encoded = self._encode_pieces(engine, [texts[k][start:end] for k, start, end in group], with_offsets)
            for (k, start, _), (ids, offsets, words) in zip(group, encoded):
                results[k][0].extend(map(shared.__getitem__, ids))
                if with_offsets:
                    results[k][1].extend([(a + start, b + start) for a, b in offsets] if start else offsets)
                    # Pieces are cut between pre-tokens: a piece's words follow the words before it.
                    before = results[k][2][-1] + 1 if results[k][2] else 0
                    results[k][2].extend([w + before for w in words] if before else words)
            group, group_chars = [], 0
        return results

    def _engine_for(self, split_special: bool, prefix_space: bool = False):
        """The engine (the one adding prefix spaces, with `prefix_space`), told whether added special
        tokens spelt in the text split as text."""
        engine = self._prefix_engine if prefix_space else self._engine
        if engine is None:
            engine = self._build_engine(prefix_space=True) if prefix_space else self._build_engine()
            setattr(self, "_prefix_engine" if prefix_space else "_engine", engine)
        if engine.encode_special_tokens != split_special:
            engine.encode_special_tokens = split_special
        return engine


CHUNK_GROUP = 8  # pieces of a long text encoded per call: parallel, with Rust's memory bounded


def _by_sequence(tokens: list[list[str]], seqs: list[list[str]]) -> list[list[str]]:
    """The tokens of pre-split words (one list per word, all sequences' words in a row) joined
    back into one list per sequence of `seqs`."""
    grouped, position = [], 0
    for words in seqs:
        grouped.append([t for w in range(len(words)) for t in tokens[position + w]])
        position += len(words)
    return grouped
