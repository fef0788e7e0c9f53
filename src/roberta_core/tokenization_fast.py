"""RobertaTokenizerFast: RoBERTa's byte-level BPE run by the `tokenizers` library (Rust).

Rust does the work that costs: cutting out added tokens, pre-tokenizing and BPE, over a whole
batch in parallel. Special tokens, truncation, padding and decoding are the Python code in
tokenization_base that RobertaTokenizer uses too, so both tokenizers give the same output (but for
v4's own differences between them: the prefix spaces with add_prefix_space, an empty pair).

One difference from transformers' fast tokenizer: the pre-tokenizer spells out GPT-2's letter,
digit and whitespace classes as code point ranges taken from the `regex` module, because the
Oniguruma engine inside `tokenizers` carries older Unicode tables (about 17,000 code points
assigned since then would otherwise be split differently by the two tokenizers).

A text longer than `max_chunk_chars` is encoded in pieces, cut only where GPT-2's pattern and the
added tokens give the same ids and offsets as the whole (`pretokenization.chunk_spans`), so that
the memory Rust needs stays bounded.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache

import regex

from .pretokenization import PRETOKENIZE_TEMPLATE, SLOW_CLASSES, bytes_to_unicode, chunk_spans
from .tokenization import RobertaTokenizer
from .special_tokens import AddedToken
from .tokenization_base import FastEngineMixin, RobertaTokenizerBase



@lru_cache(maxsize=1)
def rust_pretokenize_pattern() -> str:
    """PRETOKENIZE_TEMPLATE with `regex`'s \\p{L}, \\p{N} and \\s as explicit code point ranges."""
    code_points = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]  # surrogates cannot be in a str
    every_character = "".join(map(chr, code_points))

    def ranges(symbolic_class: str) -> str:
        parts = []
        for match in regex.finditer(f"[{symbolic_class}]+", every_character):
            first, last = code_points[match.start()], code_points[match.end() - 1]
            parts.append(f"\\x{{{first:X}}}" if first == last else f"\\x{{{first:X}}}-\\x{{{last:X}}}")
        return "".join(parts)

    return PRETOKENIZE_TEMPLATE.format(**{name: ranges(cls) for name, cls in SLOW_CLASSES.items()})


def rust_pretokenizer(prefix_space: bool = False):
    """GPT-2's split with our classes, then bytes to symbols; with `prefix_space`, first a space in front
    of each piece of text between added tokens that does not start with one (v4 fast's rule)."""
    from tokenizers import Regex, pre_tokenizers

    steps = [
        pre_tokenizers.Split(Regex(rust_pretokenize_pattern()), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ]
    if prefix_space:
        # ByteLevel(add_prefix_space=True) would put it before every piece of the split above. Metaspace
        # with a space for its replacement does only the prepending (its replacing ' ' by ' ' changes
        # nothing): before a piece that does not start with ' ', never before an empty one.
        steps.insert(0, pre_tokenizers.Metaspace(replacement=" ", prepend_scheme="always", split=False))
    return pre_tokenizers.Sequence(steps)


# Where a long text may be cut for the engine that adds prefix spaces: before a single ' ' (so no
# piece after the first gets a space it would not have had in the whole).
_SPACE_CUT = r"(?<=\S)(?= )"
_SPACE_CUTS = (regex.compile(_SPACE_CUT), regex.compile(_SPACE_CUT, flags=regex.REVERSE))


class RobertaTokenizerFast(FastEngineMixin, RobertaTokenizerBase):
    """RoBERTa's tokenizer backed by `tokenizers`; same API and same output as RobertaTokenizer, except
    where v4's two differ: with add_prefix_space (see `_engine_adds_prefix_space`) and for an empty pair.

    >>> tok = RobertaTokenizerFast.from_pretrained("path/to/roberta-base")
    >>> tok(["Hello world!", "Question?"], padding=True, return_tensors="np")["input_ids"].shape
    (2, 5)
    """

    is_fast = True
    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}
    can_save_slow_tokenizer = True  # save_pretrained writes vocab.json and merges.txt
    slow_tokenizer_class = RobertaTokenizer

    # As v4's fast tokenizer (`tokenizers`' ByteLevel), the prefix space goes before every piece of
    # text between added tokens that does not start with ' ' (and before every pre-split word), not
    # only before a text that does not start with whitespace, as the slow tokenizer does it.
    _engine_adds_prefix_space = True

    def __init__(self, vocab_file=None, merges_file=None, tokenizer_file=None, **kwargs):
        # v4's positional files, then RobertaTokenizerBase's keywords (all kept in init_kwargs)
        super().__init__(vocab_file, merges_file, tokenizer_file, **kwargs)

    def _build_engine(self, prefix_space: bool = False):
        return self._backend_tokenizer(rust_pretokenizer(prefix_space))  # transformers' RoBERTa pipeline

    def _chunk_spans(self, text: str, size: int, prefix_space: bool = False) -> list[tuple[int, int]]:
        return chunk_spans(text, size, [t.content for t in self._added.values()],
                           cuts=_SPACE_CUTS if prefix_space else None)

    def train_new_from_iterator(self, text_iterator, vocab_size: int, length: int | None = None,
                                new_special_tokens=None, special_tokens_map: dict | None = None, *,
                                min_frequency: int = 0, show_progress: bool = False) -> RobertaTokenizerFast:
        """A new tokenizer with the same settings and a byte-level BPE vocabulary learnt from texts
        (an iterable of str, or of lists of str as v4 takes it).

        The added and special tokens come first, in their current order (so <s>=0, <pad>=1,
        </s>=2, <unk>=3, <mask>=4 for RoBERTa), then the 256 byte symbols, then one token per
        merge, up to `vocab_size` in all (as v4, a smaller `vocab_size` still keeps the added tokens
        and the 256 symbols). Pairs seen fewer than `min_frequency` times are not merged (0 by default, as
        v4's trainer).
        `special_tokens_map` ({old content: new content}, v4's) renames special tokens, keeping
        their flags and roles; `new_special_tokens` are added as additional special tokens.
        """
        from tokenizers import AddedToken as RustAddedToken
        from tokenizers import Tokenizer, models, trainers

        rename = dict(special_tokens_map or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in rename.items()):
            raise TypeError(f"special_tokens_map must map str to str (old content -> new), got {rename!r:.80}")

        def renamed(token: AddedToken) -> AddedToken:
            return dataclasses.replace(token, content=rename[token.content]) if token.content in rename else token

        keep = [renamed(t) for _, t in sorted(self._added.items())]
        extra = [t for t in (new_special_tokens or []) if (t.content if hasattr(t, "content") else t)
                 not in {k.content for k in keep}]
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 0:
            raise ValueError(f"vocab_size must be an int >= 0, got {vocab_size!r}")
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 0:
            raise ValueError(f"min_frequency must be an int >= 0, got {min_frequency!r}")
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, show_progress=show_progress,
            special_tokens=[RustAddedToken(t.content, special=True) for t in keep]
            + [RustAddedToken(t if isinstance(t, str) else t.content, special=True) for t in extra],
            initial_alphabet=sorted(bytes_to_unicode().values()))
        learner = Tokenizer(models.BPE())
        learner.pre_tokenizer = rust_pretokenizer(self.add_prefix_space)
        learner.train_from_iterator(self._checked_texts(text_iterator), trainer=trainer, length=length)
        model = json.loads(learner.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        roles = {role: None if t is None else renamed(t) for role, t in self._special.items()}
        additional = [rename.get(t.content, t.content) if t.content in self._additional_str else renamed(t)
                      for t in self._additional]
        trained = type(self)(
            vocab=model["vocab"], merges=merges, errors=self.errors, **roles,
            additional_special_tokens=additional + list(extra),
            added_tokens_decoder={learner.token_to_id(t.content): t for t in keep},
            add_prefix_space=self.add_prefix_space, trim_offsets=self.trim_offsets,
            model_max_length=self.model_max_length, padding_side=self.padding_side,
            truncation_side=self.truncation_side, clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
            split_special_tokens=self.split_special_tokens)
        # v4 makes the new tokenizer from this one's init_kwargs (what save_pretrained writes), with the
        # special tokens and additional special tokens updated
        roles = {k: v for k, v in trained.init_kwargs.items() if k in self._special}
        extra = {k: trained.init_kwargs[k] for k in ("additional_special_tokens",) if trained._additional}
        trained.init_kwargs = {**dict(self.init_kwargs), **roles, **extra}
        return trained

    def _checked_texts(self, texts):
        """The training texts, checked to be str (the learner's pre-tokenizer adds the prefix spaces)."""
        for index, item in enumerate(texts):
            for text in item if isinstance(item, (list, tuple)) else [item]:
                if not isinstance(text, str):
                    raise TypeError(f"training texts must be str (or lists of str); item {index} is "
                                    f"{type(text).__name__}")
                yield text
