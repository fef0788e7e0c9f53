"""Checkpoints by name: a local directory, or a Hugging Face Hub repo id resolved through the
Hugging Face cache, as `transformers` v4 resolves `from_pretrained("FacebookAI/roberta-base")`.

    resolve_pretrained("ckpt")                                   # a local directory: as it is
    resolve_pretrained("FacebookAI/roberta-base", {"revision": "main"})
        # -> $HF_HUB_CACHE/models--FacebookAI--roberta-base/snapshots/<commit>/  (a local directory)

A repo id is fetched with `huggingface_hub` (the optional `[hub]` extra, imported only when a
name is not a local directory), one file at a time and only the files asked for: `config.json`,
the weights (the caller's preferred format first, then the others we read; a sharded index with
its shards), the tokenizer files, a peft adapter's two files (`resolve_adapter`). Files already
in the cache are not downloaded again; offline (`HF_HUB_OFFLINE=1`, `local_files_only=True`)
only the cache is read, and a name it lacks is one `FileNotFoundError` naming the repo id, the
revision and the cache folder looked in.

The environment keeps its v4 meaning and is read at each call (so a process that sets it after
import is honoured): `HF_HUB_CACHE` (else `HF_HOME/hub`) is the cache, `HF_HUB_OFFLINE` (or v4's
`TRANSFORMERS_OFFLINE`) turns downloads off, `HF_TOKEN` is the default token.

`push_to_hub(directory, repo_id)` uploads a saved checkpoint (`HfApi.create_repo` + `upload_folder`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = [
    "HUB_OPTIONS", "TOKENIZER_FILES", "resolve_pretrained", "hub_options", "is_hub_id", "cache_folder", "offline",
    "push_to_hub", "upload_token", "snapshot_commit", "ADAPTER_CONFIG_FILE", "ADAPTER_WEIGHTS_FILES", "resolve_adapter",
]

# The `from_pretrained` keywords that say where a name is fetched from (v4's names;
# `use_auth_token` is v4's older spelling of `token`).
HUB_OPTIONS = ("revision", "cache_dir", "local_files_only", "token", "use_auth_token", "subfolder", "force_download")

# Every file a tokenizer may read, in no particular order; a tokenizer needs tokenizer.json,
# vocab.json + merges.txt, or (XLM-R, CamemBERT) the SentencePiece model; the others are optional settings.
TOKENIZER_FILES = (
    "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "sentencepiece.bpe.model",
)

CONFIG_FILE = "config.json"
_KINDS = ("config", "weights", "tokenizer", "generation")
_TRUE = {"1", "ON", "YES", "TRUE"}


def _import_hub():
    try:
        import huggingface_hub
        import huggingface_hub.errors  # a submodule huggingface_hub does not load by itself
    except ImportError:
        raise ImportError(
            "loading a checkpoint by Hub repo id needs huggingface_hub: pip install 'roberta3[hub]' "
            "(or pass the path of a local checkpoint directory)"
        ) from None
    return huggingface_hub


def hub_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The Hub keywords among `kwargs` (`HUB_OPTIONS`), without the others."""
    return {k: kwargs[k] for k in HUB_OPTIONS if k in kwargs}


# transformers v4's own cache variables, deprecated there but still read before huggingface_hub's.
LEGACY_CACHE_VARIABLES = ("TRANSFORMERS_CACHE", "PYTORCH_TRANSFORMERS_CACHE", "PYTORCH_PRETRAINED_BERT_CACHE")


def cache_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hugging Face hub cache read and written: `cache_dir`, else v4's older variables
    (`TRANSFORMERS_CACHE`, `PYTORCH_TRANSFORMERS_CACHE`, `PYTORCH_PRETRAINED_BERT_CACHE`: v4 still
    honours them, first), else `HF_HUB_CACHE`, else `HF_HOME/hub`, else huggingface_hub's default
    (`~/.cache/huggingface/hub`)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    for name in LEGACY_CACHE_VARIABLES + ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path("~/.cache").expanduser()) / "huggingface" / "hub"


def offline(local_files_only: bool = False) -> bool:
    """Whether only the cache may be read: `local_files_only`, `HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE`."""
    return bool(local_files_only) or any(
        os.environ.get(name, "").strip().upper() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def is_hub_id(name: str) -> bool:
    """Whether `name` can be a Hub repo id (`name` or `org/name`; letters, digits, `-_.`), the
    check huggingface_hub makes, written here so a path is told apart without importing it."""
    parts = name.split("/")
    if not 1 <= len(parts) <= 2 or not all(parts) or len(name) > 96:
        return False
    if "--" in name or ".." in name or name.endswith(".git") or name.startswith(("-", ".")) or name.endswith(("-", ".")):
        return False
    return all(c.isascii() and (c.isalnum() or c in "-_.") for part in parts for c in part)


def _check_subfolder(name: str, subfolder: str | None) -> str | None:
    if not subfolder:
        return None
    if Path(subfolder).is_absolute() or ".." in Path(subfolder).parts:
        raise ValueError(f"subfolder must be a relative path inside {name}, got {subfolder!r}")
    return Path(subfolder).as_posix()


def resolve_pretrained(
    name: str | os.PathLike,
    options: Mapping[str, Any] | None = None,
    *,
    need: Iterable[str] = ("config", "weights"),
    want: Iterable[str] = (),
    prefer: str = "safetensors",
    order: Iterable[str] | None = None,
) -> Path:
    """The local directory that holds checkpoint `name` (with `options["subfolder"]` applied).

    `name` is a local directory (returned as it is, `subfolder` joined), or a Hub repo id
    fetched into the cache: the kinds of files in `need` must exist (`config`: config.json;
    `weights`: one weights file, the format `prefer` first, then safetensors, a sharded index
    with its shards, pytorch_model.bin, tf_model.h5, flax_model.msgpack, each format's sharded index
    with its shards; `order`, when given, is the exact list of weights file names tried, in order
    (`checkpoint.weights_files`: a backend's own order, v4's `variant` names); `tokenizer`:
    tokenizer.json, vocab.json + merges.txt or sentencepiece.bpe.model, with the settings files),
    those in `want` are
    fetched when the repo has them. `options` are `from_pretrained`'s keywords (`HUB_OPTIONS`
    are read, the others ignored). A path that is neither a directory nor a repo id, a repo id
    offline and not cached, a repo or file that does not exist: `FileNotFoundError` naming it.
    """
    options = dict(options or {})
    need, want = tuple(need), tuple(want)
    for kind in (*need, *want):
        if kind not in _KINDS:
            raise ValueError(f"unknown kind of checkpoint file {kind!r}; choose among {', '.join(_KINDS)}")
    from .checkpoint import REGISTRY, weights_files  # the one list of weights file names and their order

    if prefer not in REGISTRY:
        raise ValueError(f"unknown weights format {prefer!r}; choose one of {', '.join(REGISTRY)}")
    if order is None:
        order = weights_files((prefer,))
    text = os.fspath(name)
    subfolder = _check_subfolder(text, options.get("subfolder"))
    local = Path(text)
    if local.is_dir():
        return local / subfolder if subfolder else local
    if not isinstance(name, str) or not is_hub_id(text):
        raise CheckpointNotFoundError(
            f"{text}: no such checkpoint directory (not a checkpoint directory on disk, nor a Hub repo id: "
            "'name' or 'org/name')"
        )
    return _Fetch(text, options, subfolder).run(need, want, tuple(order))


class CheckpointNotFoundError(FileNotFoundError, ValueError):
    """A name that is neither a folder on disk nor a Hub repo id: v4 raises huggingface_hub's
    validation error (a ValueError) or an OSError, depending on the name; this is both."""


class _Fetch:
    """One repo id's files fetched through huggingface_hub (see `resolve_pretrained`)."""

    def __init__(self, repo_id: str, options: Mapping[str, Any], subfolder: str | None):
        self.hub = _import_hub()
        self.repo_id = repo_id
        self.subfolder = subfolder
        self.revision = options.get("revision")
        self.cache = cache_folder(options.get("cache_dir"))
        self.offline = offline(options.get("local_files_only", False))
        token = options.get("token", options.get("use_auth_token"))
        self.token = token
        self.force = bool(options.get("force_download", False))
        self.unreachable = False  # a download failed for want of a connection

    def _where(self) -> str:
        where = f"{self.repo_id!r} (revision {self.revision or 'main'!r}"
        return where + (f", subfolder {self.subfolder!r})" if self.subfolder else ")")

    def _not_cached(self, files: str) -> FileNotFoundError:
        return FileNotFoundError(
            f"{self.repo_id}: not a local directory, and the Hub repo {self._where()} is not in the Hugging Face cache "
            f"{self.cache} ({files} looked for) and "
            + ("the Hub could not be reached" if self.unreachable else "downloads are off (HF_HUB_OFFLINE / local_files_only)")
            + ": "
            "download it once online, or pass the path of a local checkpoint directory"
        )

    def get(self, filename: str) -> Path | None:
        """The cached path of `filename`, downloading it when allowed; None when the repo has no
        such file (or, offline, when the cache does not hold it)."""
        errors = self.hub.errors
        try:
            path = self.hub.hf_hub_download(
                self.repo_id, filename, subfolder=self.subfolder, revision=self.revision, cache_dir=self.cache,
                local_files_only=self.offline, token=self.token, force_download=self.force,
            )
        except errors.RepositoryNotFoundError:
            raise FileNotFoundError(
                f"{self.repo_id}: not a local directory, and no Hub repo {self._where()} exists or is visible "
                "with this token (a private repo needs token= or HF_TOKEN)"
            ) from None
        except errors.RevisionNotFoundError:
            raise FileNotFoundError(f"{self.repo_id}: the Hub repo has no revision {self.revision!r}") from None
        except errors.LocalEntryNotFoundError:
            # Not in the cache, and offline or the Hub unreachable (huggingface_hub reads the
            # cache alone then): for an optional file, as if absent; a needed one says so.
            self.unreachable = not self.offline
            return None
        except errors.EntryNotFoundError:  # the repo has no such file
            return None
        except errors.HfHubHTTPError as e:
            raise OSError(f"{self.repo_id}: fetching {filename} from the Hub failed: {e}") from None
        return Path(path)

    def run(self, need: tuple[str, ...], want: tuple[str, ...], order: tuple[str, ...]) -> Path:
        found: list[Path] = []
        for kind in (*need, *want):
            files = getattr(self, f"_{kind}")(order) if kind == "weights" else getattr(self, f"_{kind}")()
            if files is None and kind in need:
                self._missing(kind, found, order)
            found.extend(files or ())
        if not found:  # nothing asked for: the snapshot folder of config.json
            config = self.get(CONFIG_FILE)
            if config is None:
                self._missing("config", found, order)
            found.append(config)
        # Every file sits in snapshots/<commit>/<subfolder>/ (shards too: they name no folder).
        return found[0].parent

    def _missing(self, kind: str, found: list[Path], order: tuple[str, ...]) -> None:
        what = {
            "config": CONFIG_FILE,
            "weights": ", ".join(order),
            "tokenizer": "tokenizer.json, vocab.json + merges.txt or sentencepiece.bpe.model",
            "generation": "generation_config.json",
        }[kind]
        if self.offline or self.unreachable:
            raise self._not_cached(what)
        raise FileNotFoundError(f"{self.repo_id}: the Hub repo {self._where()} has no {what}")

    def _config(self) -> list[Path] | None:
        path = self.get(CONFIG_FILE)
        return None if path is None else [path]

    def _generation(self) -> list[Path] | None:
        path = self.get("generation_config.json")  # a causal LM's (roberta_core.generation)
        return None if path is None else [path]

    def _weights(self, order: tuple[str, ...]) -> list[Path] | None:
        for filename in order:
            path = self.get(filename)
            if path is None:
                continue
            if filename.endswith(".json"):  # a sharded checkpoint's index (`<file>.index[.<variant>].json`)
                return [path, *self._shards(path)]
            return [path]
        return None

    def _shards(self, index: Path) -> list[Path]:
        """The shards an index names, fetched beside it. The index comes from the network: it is
        held to the checks every index reader makes (`checkpoint._sharded.shard_files`: plain
        file names in its own folder, a bounded size) before any shard is asked for."""
        from .checkpoint import CheckpointFormatError
        from .checkpoint._sharded import shard_files

        try:
            shards = shard_files(index)
        except CheckpointFormatError:
            raise
        except (ValueError, RecursionError, MemoryError) as e:  # shard_files wraps its own; never a raw error
            raise CheckpointFormatError(f"{index}: cannot read the shard index: {type(e).__name__}: {e}") from None
        paths = []
        for shard in sorted(shards):
            path = self.get(shard)
            if path is None:
                if self.offline or self.unreachable:
                    raise self._not_cached(shard)
                raise FileNotFoundError(f"{self.repo_id}: the Hub repo {self._where()} has no shard {shard} its index names")
            paths.append(path)
        return paths

    def _tokenizer(self) -> list[Path] | None:
        got = {f: self.get(f) for f in TOKENIZER_FILES}
        if (got["tokenizer.json"] is None and got["sentencepiece.bpe.model"] is None
                and (got["vocab.json"] is None or got["merges.txt"] is None)):
            return None
        return [p for p in got.values() if p is not None]


# ---------------------------------------------------------------------------- peft adapters

# The files of a peft adapter (v4's ADAPTER_CONFIG_NAME, ADAPTER_SAFE_WEIGHTS_NAME, ADAPTER_WEIGHTS_NAME);
# the weights in the order read, safetensors first as peft reads them.
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def resolve_adapter(
    name: str | os.PathLike, options: Mapping[str, Any] | None = None, *, weights: bool = True, required: bool = False
) -> Path | None:
    """The local folder of the peft adapter `name` (`options["subfolder"]` applied): a directory
    holding adapter_config.json, or a Hub repo id whose adapter_config.json and, with `weights`, its
    weights (adapter_model.safetensors, else adapter_model.bin) are fetched into the cache, those
    files and no others (`options`: the Hub keywords, as `resolve_pretrained` reads them).

    None when `name` holds no adapter_config.json or is neither a directory nor a repo id, which is
    how v4's `from_pretrained` tells an adapter from a model (`find_adapter_config_file`); a repo id
    the cache lacks while offline is None too, unless `required` (then the not-cached error). An
    adapter_config.json without a weights file is a FileNotFoundError naming the files looked for."""
    options = dict(options or {})
    text = os.fspath(name)
    subfolder = _check_subfolder(text, options.get("subfolder"))
    local = Path(text)
    if local.is_dir():
        folder = local / subfolder if subfolder else local
        if not (folder / ADAPTER_CONFIG_FILE).is_file():
            return None
        if weights and not any((folder / f).is_file() for f in ADAPTER_WEIGHTS_FILES):
            raise FileNotFoundError(
                f"{folder}: a peft adapter (adapter_config.json) without weights; looked for {', '.join(ADAPTER_WEIGHTS_FILES)}"
            )
        return folder
    if not isinstance(name, str) or not is_hub_id(text):
        return None
    fetch = _Fetch(text, options, subfolder)
    config = fetch.get(ADAPTER_CONFIG_FILE)
    if config is None:
        if required and (fetch.offline or fetch.unreachable):
            raise fetch._not_cached(ADAPTER_CONFIG_FILE)
        return None
    # any() stops at the first file found: the .bin is asked for only when the repo has no safetensors.
    if weights and not any(fetch.get(f) is not None for f in ADAPTER_WEIGHTS_FILES):
        if fetch.offline or fetch.unreachable:
            raise fetch._not_cached(", ".join(ADAPTER_WEIGHTS_FILES))
        raise FileNotFoundError(
            f"{text}: the Hub repo {fetch._where()} holds adapter_config.json but no {', '.join(ADAPTER_WEIGHTS_FILES)}"
        )
    return config.parent


# ---------------------------------------------------------------------------- upload


def upload_token(repo_id: str, token: str | None = None) -> str:
    """The token an upload to `repo_id` uses: `token`, else `HF_TOKEN`, else the one `hf auth
    login` stored; none is a ValueError saying how to give one."""
    token = token or os.environ.get("HF_TOKEN") or _import_hub().get_token()
    if not token:
        raise ValueError(
            f"push_to_hub({repo_id!r}) needs a Hugging Face token with write access: pass token=, "
            "set HF_TOKEN, or run `hf auth login`"
        )
    return token


def push_to_hub(
    directory: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
) -> Any:
    """Upload the saved checkpoint `directory` to the Hub repo `repo_id` (created if it does not
    exist) in one commit, through `huggingface_hub.HfApi` (`create_repo`, `upload_folder`).
    Needs a token: `token`, else `HF_TOKEN` or the one `hf auth login` stored. Returns the
    commit info huggingface_hub gives."""
    if not isinstance(repo_id, str) or not is_hub_id(repo_id):
        raise ValueError(f"repo_id must be a Hub repo id ('name' or 'org/name'), got {repo_id!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory to upload")
    hub = _import_hub()
    token = upload_token(repo_id, token)
    api = hub.HfApi(token=token)
    api.create_repo(repo_id, token=token, private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id, folder_path=directory, token=token, revision=revision, create_pr=create_pr,
        commit_message=commit_message or "Upload model (roberta3)",
    )


def snapshot_commit(path: str | os.PathLike) -> str | None:
    """The commit of a file or folder inside a Hugging Face cache snapshot
    (`.../snapshots/<40 hex digits>/...`), else None."""
    parts = Path(path).parts
    for i, part in enumerate(parts[:-1]):
        if part == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", parts[i + 1]):
            return parts[i + 1]
    return None
