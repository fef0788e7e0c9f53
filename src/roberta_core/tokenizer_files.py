"""The tokenizer's files: reading vocab.json, merges.txt, tokenizer.json and the config files
(with errors that name the file), checking a vocabulary, and writing them all atomically."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import json
import logging
import os
from functools import lru_cache
from pathlib import Path

from . import fileio
from .special_tokens import SPECIAL_TOKEN_ATTRIBUTES, AddedToken, as_added_token

logger = logging.getLogger(__name__)

VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
# Keys of transformers' tokenizer_config.json that carry nothing for us.
IGNORED_CONFIG_KEYS = {
    "tokenizer_class", "name_or_path", "auto_map", "processor_class",
    "extra_special_tokens", "tokenizer_file", "vocab_file", "merges_file", "special_tokens_map_file",
    "do_lower_case", "use_fast", "legacy", "max_len", "sp_model_kwargs",
}


def _write_files_atomically(directory: Path, files: dict[str, str | bytes]) -> list[str]:
    """Write every file to a temp name in `directory` and fsync them all, then rename them into place.

    A failure while writing leaves the directory as it was (no partial file, nothing overwritten,
    no new empty directory): every temp is written and synced before the first rename.
    """
    created = [d for d in (directory, *directory.parents) if not d.exists()]  # deepest first
    try:
        with contextlib.ExitStack() as stack:
            for name, text in files.items():
                temp = stack.enter_context(fileio.atomic_path(directory / name))
                # bytes as they are (a SentencePiece model), str as UTF-8 text with "\n" line ends
                binary = isinstance(text, bytes)
                with open(temp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": "\n"})) as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())  # now, so that a full disk fails before any file is replaced
    except BaseException:
        for new_directory in created:
            if new_directory.is_dir():
                new_directory.rmdir()
        raise
    return [str(directory / name) for name in files]


# ----------------------------------------------------------------------------- vocabulary files


def load_json(path):
    """The JSON value in `path`; a file that is not UTF-8 or not JSON is a ValueError naming it."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8-sig")  # a BOM (some editors write one) is not part of the JSON
        return json.loads(text)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 4]!r}); "
                         "tokenizer files are UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                         "is the file truncated or corrupt?") from None


def read_vocab(path) -> dict[str, int]:
    vocab = load_json(path)
    if not isinstance(vocab, dict):
        raise ValueError(f"{path}: expected a JSON object {{token: id}}, got {type(vocab).__name__}")
    return vocab


def read_merges(path) -> list[tuple[str, str]]:
    """merges.txt: an optional '#version' line, then one 'left right' pair per line, by rank."""
    merges = []
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # as text-mode reading splits
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}: not UTF-8 text (line {line}, byte {e.start}: {data[e.start:e.start + 4]!r})") from None
    for number, line in enumerate(lines, 1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path} line {number}: expected two symbols separated by one space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def read_tokenizer_json(path) -> dict:
    """vocab, merges, added tokens and options from a `tokenizers` tokenizer.json of a byte-level BPE."""
    spec = load_json(path)
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(spec).__name__}")
    for key in ("model", "normalizer", "pre_tokenizer", "post_processor"):
        if not isinstance(spec.get(key), (dict, type(None))):
            raise ValueError(f"{path}: {key} must be a JSON object or null, got {spec[key]!r:.60}")
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
    vocab, merges, added = model.get("vocab", {}), model.get("merges", []), spec.get("added_tokens", [])
    if not isinstance(vocab, dict):
        raise ValueError(f"{path}: model.vocab must be a JSON object {{token: id}}, got {type(vocab).__name__}")
    if not isinstance(merges, list) or not isinstance(added, list):
        raise ValueError(f"{path}: model.merges and added_tokens must be JSON lists")
    pairs = []
    for rank, merge in enumerate(merges):
        pair = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
            raise ValueError(f"{path}: model.merges[{rank}] must be 'left right' or [left, right], got {merge!r:.60}")
        pairs.append(tuple(pair))
    tokens = {}
    for index, token in enumerate(added):
        if not (isinstance(token, dict) and type(token.get("id")) is int and isinstance(token.get("content"), str)):
            raise ValueError(f"{path}: added_tokens[{index}] needs an int 'id' and a str 'content', got {token!r:.80}")
        tokens[token["id"]] = as_added_token(token, special=bool(token.get("special", False)))
    post = spec.get("post_processor") or {}
    return {
        "vocab": vocab,
        "merges": pairs,
        "added_tokens": tokens,
        "add_prefix_space": pre.get("add_prefix_space", False),
        "trim_offsets": post.get("trim_offsets", True),
    }


def validate_vocabulary(vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """A byte-level BPE vocabulary must have ids 0..n-1 and merges of known symbols."""
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
    # The 256 byte symbols are not required, as v4 does not require them (its tests' toy vocabularies
    # have a dozen): a byte without its symbol is the unk token to the slow tokenizer and is
    # dropped by the fast one (`tokenizers`' BPE without an unk token), as in v4.
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


# v4's `from_pretrained` keywords (AutoTokenizer's and the Hub's) that say how to load, not what the
# tokenizer is: accepted and not kept, as v4 does.
V4_LOADING_KEYWORDS = frozenset({
    "trust_remote_code", "use_fast", "from_slow", "legacy", "proxies", "resume_download", "_commit_hash",
    "user_agent", "_from_auto", "_from_pipeline", "tokenizer_type", "gguf_file", "mirror",
})


class TokenizerNotFoundError(OSError, ValueError):
    """`from_pretrained` of a name that is neither a directory nor a Hub repo id: v4's OSError
    ("Can't load tokenizer for ..."), and a ValueError as this library raised before."""


class TokenizerFilesMixin:
    """The file part of `RobertaTokenizerBase`: `from_pretrained`, `save_pretrained`,
    `save_vocabulary`, and the `tokenizers.Tokenizer` that tokenizer.json stores."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load from a directory, or a Hub repo id through the Hugging Face cache (`roberta_core.hub`;
        v4's `revision`, `cache_dir`, `local_files_only`, `token`, `subfolder`): tokenizer.json or
        vocab.json + merges.txt, with tokenizer_config.json, special_tokens_map.json and
        added_tokens.json honoured. The other keyword arguments win over the files."""
        from .hub import hub_options, is_hub_id, resolve_pretrained

        options = hub_options(kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k not in options and k not in V4_LOADING_KEYWORDS}
        name = pretrained_model_name_or_path
        if not Path(name).is_dir() and not (isinstance(name, str) and is_hub_id(name)):
            raise TokenizerNotFoundError(
                f"Can't load tokenizer for '{name}'. If you were trying to load it from 'https://huggingface.co/models', "
                f"make sure you don't have a local directory with the same name. Otherwise, make sure '{name}' is the "
                f"correct path to a directory containing all relevant files for a {cls.__name__} tokenizer. "
                f"({name} is not a directory or a Hub repo id; from_pretrained reads a local folder with "
                "tokenizer.json or vocab.json + merges.txt, or a repo id ('org/name'))")
        directory = resolve_pretrained(name, options, need=("tokenizer",))
        files = cls._vocabulary_sources(directory)
        config = _read_json(directory / TOKENIZER_CONFIG_FILE)
        # What v4's `_from_pretrained` makes of the files: tokenizer_config.json, then the keyword
        # arguments; without `added_tokens_decoder` there, the legacy files (special_tokens_map.json,
        # added_tokens.json, tokenizer.json's added tokens). Special tokens named by a string that is
        # an added token become that AddedToken (its flags).
        settings = {k: v for k, v in config.items() if k not in ("tokenizer_class", "init_inputs")}
        has_tokenizer_file = (directory / TOKENIZER_FILE).is_file()
        if not has_tokenizer_file:
            settings.pop("tokenizer_file", None)
        settings.update(kwargs)
        added, by_content = {}, {}
        if "added_tokens_decoder" in settings:
            decoder = settings["added_tokens_decoder"]
            if not isinstance(decoder, dict):
                raise ValueError(f"{directory / TOKENIZER_CONFIG_FILE}: added_tokens_decoder must be a JSON object "
                                 f"{{id: token}}, got {type(decoder).__name__}")
            for index, token in decoder.items():
                if not (isinstance(token, dict) or hasattr(token, "content")):
                    raise ValueError(f"{directory / TOKENIZER_CONFIG_FILE}: added_tokens_decoder[{index!r}] must be a "
                                     f"JSON object with a 'content', got {token!r:.60}")
                added[int(index)] = by_content_token = as_added_token(token, special=False)
                by_content[by_content_token.content] = by_content_token
        else:
            for key, value in _read_json(directory / SPECIAL_TOKENS_MAP_FILE).items():
                if kwargs.get(key):
                    continue  # a keyword argument wins over the file
                if isinstance(value, dict):
                    value = as_added_token(value, special=True)
                elif key == "additional_special_tokens" and isinstance(value, list):
                    merged = list(settings.pop("additional_special_tokens", None) or [])
                    for token in value:
                        token = as_added_token(token, special=True) if isinstance(token, dict) else token
                        if str(token) not in map(str, merged):
                            merged.append(token)
                    value = merged
                settings[key] = value
            legacy_added = _read_json(directory / ADDED_TOKENS_FILE)
            if legacy_added:
                special = {str(t) for key in (*SPECIAL_TOKEN_ATTRIBUTES, "additional_special_tokens")
                           if settings.get(key) is not None
                           for t in (settings[key] if key == "additional_special_tokens" else [settings[key]])}
                for content, token_id in legacy_added.items():
                    if type(token_id) is not int:
                        raise ValueError(f"{directory / ADDED_TOKENS_FILE}: expected {{token: id}} with int ids, "
                                         f"got {content!r}: {token_id!r}")
                    added[token_id] = AddedToken(content, normalized=content not in special,
                                                 special=content in special)
            if has_tokenizer_file:
                for token_id, token in read_added_tokens(directory / TOKENIZER_FILE).items():
                    added[token_id] = by_content[token.content] = token
        if by_content:
            for key in SPECIAL_TOKEN_ATTRIBUTES:
                if isinstance(settings.get(key), str):
                    settings[key] = by_content.get(settings[key], settings[key])
        settings["added_tokens_decoder"] = added
        if "max_len" in settings and "model_max_length" not in settings:
            settings["model_max_length"] = settings["max_len"]
        limit = settings.get("model_max_length")
        if isinstance(limit, float) and limit.is_integer():
            settings["model_max_length"] = int(limit)  # a file may spell v4's "no limit" 1e30
        keywords = set(_init_keywords(cls)) - {"name_or_path"}
        cls._check_conflicting_keywords(kwargs)
        # A keyword the tokenizer does not use is kept in init_kwargs (below), not refused: v4 takes
        # any (its tests pass do_lower_case=... to every tokenizer class) and saves it back.
        options = {k: v for k, v in settings.items() if k in keywords}
        unknown = set(settings) - keywords - {"name_or_path"}
        if unknown - IGNORED_CONFIG_KEYS:
            logger.info(f"{directory}: keeping tokenizer settings this tokenizer does not use, for save_pretrained: "
                        f"{sorted(unknown - IGNORED_CONFIG_KEYS)}")
        tokenizer = cls(**files, **options, name_or_path=str(pretrained_model_name_or_path))
        if "verbose" in settings:
            tokenizer.verbose = bool(settings["verbose"])  # v4's attribute (and an init_kwargs key, below)
        # The rest is kept as v4 keeps it (in init_kwargs, so save_pretrained writes it back).
        recorded = {k: v for k, v in settings.items() if k in unknown and k != "added_tokens_decoder"}
        if not (cls.is_fast and has_tokenizer_file):  # v4's slow tokenizer (or the one a fast is built from)
            recorded["tokenizer_file"] = str(directory / TOKENIZER_FILE) if has_tokenizer_file else None
        tokenizer.init_kwargs = {**recorded, **tokenizer.init_kwargs}
        return tokenizer

    @classmethod
    def _vocabulary_sources(cls, directory: Path) -> dict:
        """Hook: the vocabulary files of `directory` as keyword arguments of the tokenizer's __init__."""
        if (directory / TOKENIZER_FILE).is_file():
            return {"tokenizer_file": directory / TOKENIZER_FILE}
        if (directory / VOCAB_FILE).is_file() and (directory / MERGES_FILE).is_file():
            return {"vocab_file": directory / VOCAB_FILE, "merges_file": directory / MERGES_FILE}
        raise FileNotFoundError(f"{directory} has neither {TOKENIZER_FILE} nor {VOCAB_FILE} + {MERGES_FILE}")

    def save_pretrained(self, save_directory, legacy_format: bool | None = None, filename_prefix: str | None = None,
                        push_to_hub: bool = False, **hub_kwargs) -> tuple[str, ...]:
        """Write the tokenizer as transformers v4 (4.57.6) does, all files or none; returns their paths.

        The files, in the order of the tuple returned (each '<filename_prefix>-<name>' with a prefix):
        tokenizer_config.json, special_tokens_map.json, then v4's "legacy" files: the vocabulary
        (vocab.json + merges.txt, or sentencepiece.bpe.model) and added_tokens.json (the added tokens
        past the vocabulary, {content: id}; its path is in the tuple even when there are none and it
        is not written, as in v4); then, for a fast tokenizer, tokenizer.json. `legacy_format`
        (fast tokenizers): None writes both kinds, False only tokenizer.json, True only the legacy
        files; a slow tokenizer refuses False. `push_to_hub=True` then uploads the folder
        (`roberta_core.hub.push_to_hub`; `hub_kwargs`: `repo_id` (default: the folder's name),
        `token`, `private`, `commit_message`, `revision`, `create_pr`).
        """
        if push_to_hub:
            from . import hub

            written = self.save_pretrained(save_directory, legacy_format, filename_prefix)
            repo_id = hub_kwargs.pop("repo_id", None) or Path(save_directory).resolve().name
            hub.push_to_hub(save_directory, repo_id, **hub_kwargs)
            return written
        hub_kwargs.pop("save_jinja_files", None)  # v4's option for chat templates, which these tokenizers lack
        if hub_kwargs:
            raise TypeError(f"save_pretrained() got unexpected keyword argument(s) {', '.join(sorted(hub_kwargs))} "
                            "(the Hub's repo_id, token, ... apply with push_to_hub=True)")
        if legacy_format not in (None, True, False):
            raise TypeError(f"legacy_format must be None, True or False, got {legacy_format!r}")
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{save_directory} exists and is not a directory")
        if not self.is_fast and legacy_format is False:
            raise ValueError("Only fast tokenizers (instances of PreTrainedTokenizerFast) can be saved in non legacy "
                             "format.")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        files = {
            prefix + TOKENIZER_CONFIG_FILE: _dump(self._config()),
            prefix + SPECIAL_TOKENS_MAP_FILE: _dump(_saved_token(self.special_tokens_map_extended, type_field=False)),
        }
        names = list(files)
        save_slow = legacy_format is not False and (not self.is_fast or self.can_save_slow_tokenizer)
        save_fast = self.is_fast and legacy_format is not True
        if save_slow:
            vocabulary = self._vocabulary_files(prefix)
            added = {content: i for content, i in self.added_tokens_encoder.items() if i >= self._v4_vocab_size}
            files.update(vocabulary)
            if added:
                files[prefix + ADDED_TOKENS_FILE] = _dump(added)
            names += [*vocabulary, prefix + ADDED_TOKENS_FILE]
        if save_fast:
            files[prefix + TOKENIZER_FILE] = self._backend_tokenizer().to_str(pretty=True)
            names.append(prefix + TOKENIZER_FILE)
        _write_files_atomically(directory, files)
        return tuple(os.path.join(str(save_directory), name) for name in names)

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write vocab.json and merges.txt (named '<prefix>-vocab.json' with a prefix); returns their paths."""
        directory = Path(save_directory)
        if not directory.is_dir():
            raise ValueError(f"{save_directory} is not a directory")
        files = self._vocabulary_files(f"{filename_prefix}-" if filename_prefix else "")
        _write_files_atomically(directory, files)
        return tuple(os.path.join(str(save_directory), name) for name in files)

    @property
    def _v4_vocab_size(self) -> int:
        """v4's `vocab_size`, past which added tokens go to added_tokens.json."""
        return self.vocab_size

    def _vocabulary_files(self, prefix: str) -> dict[str, str]:
        """vocab.json and merges.txt as v4 writes them: its slow tokenizer's vocab.json is indented
        and sorted by token, its fast one's (`tokenizers`) compact and by id, without a final newline."""
        merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self._merges)
        if self.is_fast:
            vocab = json.dumps(dict(sorted(self._encoder.items(), key=lambda kv: kv[1])), ensure_ascii=False,
                               separators=(",", ":"))
        else:
            vocab = json.dumps(self._encoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        return {prefix + VOCAB_FILE: vocab, prefix + MERGES_FILE: merges}

    # The attributes of v4's tokenizer that its save_pretrained reads for the keys of init_kwargs
    # (other keys are written as they were given).
    _v4_attributes = frozenset({
        "model_max_length", "clean_up_tokenization_spaces", "padding_side", "truncation_side", "split_special_tokens",
        "model_input_names", "verbose", "name_or_path", *SPECIAL_TOKEN_ATTRIBUTES, "additional_special_tokens",
        "errors", "add_prefix_space",
    })

    def _config(self) -> dict:
        """tokenizer_config.json as v4's save_pretrained makes it: init_kwargs with the current value
        of each that v4 keeps as an attribute (model_max_length and clean_up_tokenization_spaces
        always), the special tokens as strings, extra_special_tokens, added_tokens_decoder with each
        token's flags, tokenizer_class; without the file names and name_or_path."""
        config = copy.deepcopy(self.init_kwargs)
        for key in {*self.init_kwargs, "model_max_length", "clean_up_tokenization_spaces"}:
            if key in self._v4_attributes:
                config[key] = copy.deepcopy(getattr(self, key))
        config.update(self.special_tokens_map)
        if "extra_special_tokens" not in config:
            config["extra_special_tokens"] = {}
        for key in self.vocab_files_names:
            config.pop(key, None)
        config = _saved_token(config, type_field=True)
        config["added_tokens_decoder"] = {i: dataclasses.asdict(t) for i, t in sorted(self._added.items())}
        name = type(self).__name__
        config["tokenizer_class"] = name[:-4] if name.endswith("Fast") and self.can_save_slow_tokenizer else name
        if "name_or_path" in config:
            for key in ("name_or_path", "special_tokens_map_file", "tokenizer_file"):
                config.pop(key, None)
        return config

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


def _dump(value) -> str:
    """JSON as v4 writes its tokenizer files: indented by 2, keys sorted, UTF-8, a final newline."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _saved_token(value, type_field: bool):
    """`value` with each AddedToken as the JSON object v4 saves: all its flags with a "__type" field
    (tokenizer_config.json), or without "special" (special_tokens_map.json)."""
    if isinstance(value, AddedToken):
        fields = dataclasses.asdict(value)
        if type_field:
            fields["__type"] = "AddedToken"
        else:
            fields.pop("special")
        return fields
    if isinstance(value, (list, tuple)):
        return [_saved_token(v, type_field) for v in value]
    if isinstance(value, dict):
        return {k: _saved_token(v, type_field) for k, v in value.items()}
    return value


def read_added_tokens(path) -> dict[int, AddedToken]:
    """The added tokens of a tokenizer.json, by id (what v4 reads from it for a tokenizer without
    added_tokens_decoder in its config)."""
    spec = load_json(path)
    added = spec.get("added_tokens") if isinstance(spec, dict) else None
    tokens = {}
    for index, token in enumerate(added or []):
        if not (isinstance(token, dict) and type(token.get("id")) is int and isinstance(token.get("content"), str)):
            raise ValueError(f"{path}: added_tokens[{index}] needs an int 'id' and a str 'content', got {token!r:.80}")
        tokens[token["id"]] = as_added_token(token, special=bool(token.get("special", False)))
    return tokens


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


@lru_cache(maxsize=8)
def _init_keywords(cls) -> tuple[str, ...]:
    """The keyword-only options of the tokenizer's __init__ (RobertaTokenizerBase's: subclasses pass them on)."""
    for klass in cls.__mro__:
        parameters = inspect.signature(klass.__init__).parameters
        keywords = tuple(name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY)
        if keywords:
            return keywords
    return ()
