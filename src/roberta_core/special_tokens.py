"""Added and special tokens: `AddedToken`, the special-token roles (<s>, </s>, <pad>, <mask>, ...)
and the methods of the tokenizer that read and change them, with RoBERTa's special-token layout
`<s> A </s>` / `<s> A </s></s> B </s>`."""

from __future__ import annotations

import dataclasses

from .batch_encoding import to_python

SPECIAL_TOKEN_ATTRIBUTES = (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
)


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

    _FIELDS = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")

    def __eq__(self, other) -> bool:
        # Equal to an AddedToken with the same content and flags: ours, or v4's (`tokenizers.AddedToken`,
        # which compares all of them too), so `v4_token in tok.added_tokens_decoder.values()` works.
        if isinstance(other, AddedToken) or (hasattr(other, "content") and hasattr(other, "single_word")):
            return all(getattr(self, f) == getattr(other, f) for f in self._FIELDS)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.content)  # as `tokenizers.AddedToken`'s

    def __repr__(self) -> str:
        # v4's (tokenizers') spelling, as its added_tokens_decoder prints
        return (f'AddedToken("{self.content}", rstrip={self.rstrip}, lstrip={self.lstrip}, '
                f'single_word={self.single_word}, normalized={self.normalized}, special={self.special})')


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


class SpecialTokensArgumentError(AssertionError, TypeError):
    """A wrong `add_special_tokens` argument: v4 fails its `assert` there (AssertionError); a
    TypeError as ours raised before."""


class SpecialTokenRoleError(AssertionError, ValueError):
    """An unknown role given to `add_special_tokens`: v4's AssertionError ("Key ... is not a special
    token"); a ValueError as ours raised before."""


class SpecialTokensMixin:
    """The vocabulary, added-token and special-token part of `RobertaTokenizerBase`.

    State (set up by the tokenizer's __init__): `_encoder` (token -> id of vocab.json), `_added`
    (id -> AddedToken), `_added_ids` (content -> id), `_special` (role -> AddedToken or None),
    `_additional` (additional special tokens), `_id_bytes` (id -> bytes, for decoding).
    """

    # How v4 holds each special token decides what special_tokens_map.json shows: a role set from a
    # string that v4's class leaves a string (XLM-R's <s>, an attribute assigned a str, additional
    # special tokens read from a config) is written as that string; an AddedToken as its flags.
    # `_special_str` (roles) and `_additional_str` (contents) name those held as strings.

    def _held_token(self, token, role: str) -> AddedToken:
        """The AddedToken behind a special token: for a string, the added token of that content if
        there is one, else the one v4 adds for it (special, normalized=False); an AddedToken (ours
        or `tokenizers`') as given, made special."""
        if isinstance(token, str) and token in self._added_ids:
            return self._added[self._added_ids[token]]
        token = as_added_token(token, special=True)
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

    # v4's `tok.additional_special_tokens = None` leaves them unset: None, not [] (see the setter)
    _additional_unset = False

    @property
    def additional_special_tokens(self) -> list[str] | None:
        if self._additional_unset:
            return None
        return [t.content for t in self._additional]

    @additional_special_tokens.setter
    def additional_special_tokens(self, value) -> None:
        # As v4: the attribute names the tokens and adds none (`add_special_tokens` adds them); a
        # string not among the added tokens then has the unk id and is not matched in text. None
        # unsets them (the attribute reads None); any other value is iterated (a str: its characters).
        self._additional_unset = value is None
        values = [] if value is None else list(value)
        self._additional = [self._held_token(str(t) if t is None else t, "additional_special_tokens") for t in values]
        self._additional_str = {t if isinstance(t, str) else str(t) for t in values if isinstance(t, str) or t is None}

    @property
    def additional_special_tokens_ids(self) -> list[int] | None:
        tokens = self.additional_special_tokens
        return None if tokens is None else [self._token_id(t) for t in tokens]

    @additional_special_tokens_ids.setter
    def additional_special_tokens_ids(self, value) -> None:
        # As v4: the tokens of those ids (an id past the vocabulary has no token: v4 keeps None, shown as "None")
        self.additional_special_tokens = None if value is None else [
            self.convert_ids_to_tokens(i) for i in to_python(list(value))]

    def get_added_vocab(self) -> dict[str, int]:
        """The added tokens (RoBERTa's specials included), content -> id: v4's fast tokenizer lists
        them by id, its slow one in the order they were added."""
        return self.added_tokens_encoder if self.is_fast else dict(self._added_ids)

    @property
    def special_tokens_map_extended(self) -> dict:
        """`special_tokens_map` as v4 holds it: an `AddedToken` where v4 has one (a role set from an
        AddedToken, by `add_special_tokens`, or by a class that wraps its defaults), else the string."""
        found = {role: (t.content if role in self._special_str else t)
                 for role, t in self._special.items() if t is not None}
        if self._additional:
            found["additional_special_tokens"] = [t.content if t.content in self._additional_str else t
                                                  for t in self._additional]
        return found

    @property
    def _special_tokens_map(self) -> dict:
        """v4's attribute behind the special-token roles: every role (None where unset) and
        "additional_special_tokens", each held as v4 holds it (see `special_tokens_map_extended`).
        A copy: roles are set through their attributes or `add_special_tokens`."""
        found = {role: (None if t is None else t.content if role in self._special_str else t)
                 for role, t in self._special.items()}
        found["additional_special_tokens"] = None if self._additional_unset else [
            t.content if t.content in self._additional_str else t for t in self._additional]
        return found

    @property
    def all_special_tokens_extended(self) -> list:
        """`all_special_tokens` with `AddedToken`s where v4 has them (see `special_tokens_map_extended`)."""
        found, seen = [], set()
        for value in self.special_tokens_map_extended.values():
            for token in value if isinstance(value, list) else [value]:
                if str(token) not in seen:
                    seen.add(str(token))
                    found.append(token)
        return found

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
        return self._convert_token(content)  # the unk id for a special token set but not added

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 4 if pair else 2

    @property
    def max_len_single_sentence(self) -> int:
        """The most tokens one text may have with its special tokens in model_max_length (v4)."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        """The most tokens a pair's two texts may have together with their special tokens (v4)."""
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens matched verbatim before BPE. Ids continue after len(self). Returns, as v4 does,
        how many ids are new (slow), or how many tokens were added or changed (fast: a token of the
        vocabulary, or one whose flags change, counts too)."""
        if isinstance(new_tokens, (str, AddedToken)) or hasattr(new_tokens, "content"):
            new_tokens = [new_tokens]
        # As v4 (both), an empty token is skipped (and not counted).
        new_tokens = [t for t in new_tokens if (t.content if hasattr(t, "content") else t) != ""]
        if not self.is_fast:  # v4's slow tokenizer skips a string that is an added token already (flags kept)
            new_tokens = [t for t in new_tokens if not (isinstance(t, str) and t in self._added_ids)]
        tokens = [as_added_token(t, special=special_tokens) for t in new_tokens]
        before = len(self)
        changed = [self._register(t) for t in tokens]
        if not self.is_fast:  # v4's slow tokenizer makes its new special tokens additional special tokens
            known = set(self.all_special_tokens)
            self._additional += [t for t in tokens if t.special and t.content not in known]
        if any(changed):
            self._added_tokens_changed()
        return sum(changed) if self.is_fast else len(self) - before

    def add_special_tokens(self, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
        """Set special-token roles ('pad_token': '<pad>', 'additional_special_tokens': [...]); returns new-token count.

        As v4: a string becomes AddedToken(content, special=True, normalized=False) with no
        lstrip/rstrip (also for <mask>), replacing the flags of an added token of that content; an
        AddedToken is used as given. With `replace_additional_special_tokens` a non-empty list replaces
        the additional special tokens, else the new ones (not yet among them) are appended. Returns
        what `add_tokens` would: how many ids are new (slow), how many tokens were added or changed
        (fast: re-setting <mask> without its lstrip counts, as in v4)."""
        roles = {*SPECIAL_TOKEN_ATTRIBUTES, "additional_special_tokens"}
        unknown = set(special_tokens_dict) - roles
        if unknown:
            raise SpecialTokenRoleError(f"unknown special token roles {sorted(unknown)}; allowed: {sorted(roles)}")

        def made(value) -> AddedToken:
            if isinstance(value, str):
                return AddedToken(value, normalized=False, special=True)
            token = as_added_token(value, special=True)
            return token if token.special else dataclasses.replace(token, special=True)

        before, changed = len(self), 0
        for role, value in special_tokens_dict.items():
            if role == "additional_special_tokens":
                if isinstance(value, (str, AddedToken)) or not isinstance(value, (list, tuple)):
                    raise SpecialTokensArgumentError("additional_special_tokens must be a list of tokens")
                self._additional_unset = False
                extra = [made(t) for t in value]
                if not replace_additional_special_tokens:
                    known = {t.content for t in self._additional}
                    extra = [t for t in extra if t.content not in known]
                if replace_additional_special_tokens and extra:
                    self._additional, self._additional_str = list(extra), set()
                else:
                    self._additional = self._additional + extra
                for token in extra:
                    self._additional_str.discard(token.content)
                    changed += self._register(token)
            else:
                if not isinstance(value, (str, AddedToken)) and not hasattr(value, "content"):
                    raise ValueError(f"{role} must be a str or an AddedToken, got {type(value).__name__}")
                self._special[role] = token = made(value)
                self._special_str.discard(role)
                changed += self._register(token)
        self._added_tokens_changed()
        return changed if self.is_fast else len(self) - before

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
            # As v4 (whose `in` compares element by element), ids may be an array or a tensor
            # (TensorFlow's are unhashable): as Python ints first, no framework imported here.
            return [int(i in special) for i in to_python(token_ids_0)]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1, 1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """All zeros: RoBERTa does not use token types."""
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))


def _special_property(role: str):
    def get_token(self):
        token = self._special.get(role)
        return None if token is None else token.content

    def set_token(self, value):
        # As v4: the attribute names the token and adds nothing (`add_special_tokens` adds); a
        # string outside the vocabulary then has the unk id and is not matched in text. v4 keeps
        # the value as given: a string is saved as a string, an AddedToken with its flags.
        self._special[role] = None if value is None else self._held_token(value, role)
        if isinstance(value, str):
            self._special_str.add(role)
        else:
            self._special_str.discard(role)

    def get_id(self):
        token = self._special.get(role)
        return None if token is None else self._token_id(token.content)

    def set_id(self, value):
        # As v4: the role becomes the token of that id (a string; None for None or for an id past the vocabulary).
        set_token(self, None if value is None else self.convert_ids_to_tokens(value))

    return property(get_token, set_token), property(get_id, set_id)




for _role in SPECIAL_TOKEN_ATTRIBUTES:
    _token_property, _id_property = _special_property(_role)
    setattr(SpecialTokensMixin, _role, _token_property)
    setattr(SpecialTokensMixin, _role + "_id", _id_property)
