"""Import a fairseq RoBERTa checkpoint (`model.pt` + `dict.txt`) into the canonical layout.

fairseq's RoBERTa is the same network as Hugging Face's under other names: a post-LayerNorm
Transformer encoder whose embeddings are word + learned positions (offset by the padding index,
so a 512-token model has 514 rows) followed by a LayerNorm, and an LM head tied to the word
embeddings. It has no token-type embeddings; the canonical form gets a zeroed one-row table,
which adds nothing. The checkpoint is a `torch.save` pickle of
`{"args": argparse.Namespace, "model": state_dict, ...}` — the zip format or, for files written
before torch 1.6 (the `sapiens` models among them), the legacy one. Both are read by
`roberta_core.checkpoint`'s restricted unpickler, which here also admits exactly
`argparse.Namespace`; nothing else in the pickle can name code.

The vocabulary is fairseq's `Dictionary`: `<s> <pad> </s> <unk>`, then the `dict.txt` symbols in
file order, then `<mask>` (added by the masked-LM task). A dictionary of GPT-2 BPE ids (the
original roberta.base/large) becomes `vocab.json` + `merges.txt` through GPT-2's
`encoder.json`/`vocab.bpe` (`gpt2_encoder`/`gpt2_merges`); any other dictionary (single amino-acid
letters for the `sapiens` models) becomes a word-level `tokenizer.json` that splits text the way
fairseq did.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from . import checkpoint
from .checkpoint import pickle_reader
from .checkpoint.torch_bin import TorchArchive
from .config import RobertaConfig
from .weights import PREFIX, parameter_shapes

__all__ = ["FairseqImport", "import_checkpoint", "read_checkpoint", "read_dictionary", "find_checkpoint_files"]

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary: bos, pad, eos, unk at 0..3
MASK = "<mask>"
_NAMESPACE = {("argparse", "Namespace"): argparse.Namespace}


# ---------------------------------------------------------------------------- reading the pickle

# torch.save before 1.6: four pickles (magic number, protocol version, system info, the object),
# a pickled list of storage keys, then each storage as an int64 element count and its raw bytes.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _LegacyArchive(TorchArchive):
    """A legacy (pre-zip) torch.save file, read through the same restricted unpickler and the same
    checked, on-demand tensor materialisation as the zip archives of `roberta_core.checkpoint`.
    Each pickle's extent is found by a bounded scan before it is unpickled, and every storage's
    bytes must lie inside the file before any is read."""

    def __init__(self, path: Path, extra_globals: Mapping[tuple[str, str], Any]):
        self.path = path
        self.file = open(path, "rb")
        try:
            self.size = os.fstat(self.file.fileno()).st_size
            self._read(extra_globals)
            self._uses = pickle_reader.storage_uses(self.obj)
        except checkpoint.CheckpointFormatError:
            self.file.close()
            raise
        except (EOFError, OSError, ValueError, TypeError, IndexError, KeyError) as e:
            self.file.close()
            raise checkpoint.CheckpointFormatError(f"{path}: truncated or corrupt legacy torch file: {e}") from None
        except BaseException:
            self.file.close()
            raise
        self._cache: dict[str, np.ndarray] = {}

    def _pickle(self, extra_globals: Mapping[tuple[str, str], Any], unpickler=pickle_reader.RestrictedUnpickler):
        """The next pickle in the file, unpickled (with its storages), the file left after it."""
        f, start = self.file, self.file.tell()
        bounded = _Bounded(f, min(self.size - start, pickle_reader.MAX_PICKLE_BYTES), self.path)
        try:
            for _ in pickle_reader.pickle_ops(bounded, self.path):  # bounded in opcodes too: a flood stops early
                pass
        except checkpoint.CheckpointFormatError:
            raise
        except (ValueError, EOFError, UnicodeDecodeError) as e:
            raise checkpoint.CheckpointFormatError(f"{self.path}: truncated or corrupt legacy torch file: {e}") from None
        end = f.tell()
        f.seek(start)
        data = _read_exactly(f, end - start)
        return pickle_reader.unpickle(data, self.path, extra_globals, unpickler)

    def _read(self, extra_globals: Mapping[tuple[str, str], Any]) -> None:
        path, f = self.path, self.file
        header = [self._pickle({})[0] for _ in range(3)]
        if header[0] != _LEGACY_MAGIC or header[1] != _LEGACY_PROTOCOL or not isinstance(header[2], dict):
            raise checkpoint.CheckpointFormatError(f"{path}: not a torch.save file (no legacy header, not a zip archive)")
        self.byteorder = "<" if header[2].get("little_endian", True) else ">"
        self.obj, storages = self._pickle(extra_globals, _LegacyUnpickler)
        keys = self._pickle({})[0]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or set(keys) != set(storages):
            raise checkpoint.CheckpointFormatError(f"{path}: the storage list does not match the pickled tensors")
        # Storages follow in list order: record where each one's bytes start, read none yet.
        self._offsets: dict[str, int] = {}
        for key in keys:
            storage = storages[key]
            if storage.dtype is None:
                raise checkpoint.CheckpointFormatError(f"{path}: storage {key} is never given a dtype")
            count = int(np.frombuffer(_read_exactly(f, 8), dtype=f"{self.byteorder}i8")[0])
            if count != storage.numel:
                raise checkpoint.CheckpointFormatError(
                    f"{path}: storage {key} holds {count} elements, the pickle says {storage.numel}"
                )
            self._offsets[key] = f.tell()
            nbytes = storage.numel * storage.dtype.itemsize
            if f.tell() + nbytes > self.size:
                raise checkpoint.CheckpointFormatError(
                    f"{path}: truncated or corrupt legacy torch file: storage {key} declares {nbytes} bytes, past the end"
                )
            f.seek(nbytes, os.SEEK_CUR)

    def close(self) -> None:
        self.file.close()

    def _storage(self, storage: checkpoint.Storage) -> np.ndarray:
        data = self._cache.get(storage.key)
        if data is None:
            dtype = storage.dtype.newbyteorder(self.byteorder) if storage.dtype.itemsize > 1 else storage.dtype
            self.file.seek(self._offsets[storage.key])
            data = np.frombuffer(_read_exactly(self.file, storage.numel * dtype.itemsize), dtype=dtype)
            data = data.astype(storage.dtype)  # owned, writable, native byte order
            self._cache[storage.key] = data
        return data


class _Bounded:
    """A read-only view of a file that refuses to read more than `left` bytes (so a scan of a
    hostile pickle never asks the OS for gigabytes)."""

    def __init__(self, f, left: int, path: Path):
        self.f, self.left, self.path = f, left, path

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            raise checkpoint.CheckpointFormatError(f"{self.path}: a pickle runs past the end of the file or its size limit")
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.f.readline(self.left)
        self.left -= len(line)
        return line


def _read_exactly(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError(f"wanted {n} bytes, the file ends after {len(data)}")
    return data


class _LegacyUnpickler(pickle_reader.RestrictedUnpickler):
    """Legacy persistent ids carry a sixth field, the view metadata (never used for parameters)."""

    def persistent_load(self, pid: Any) -> checkpoint.Storage:
        if isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage":
            if pid[5] is not None:
                raise checkpoint.CheckpointFormatError(f"{self._path}: storage views are not supported")
            pid = pid[:5]
        return super().persistent_load(pid)


def read_checkpoint(path: str | os.PathLike) -> tuple[argparse.Namespace, dict[str, np.ndarray]]:
    """The training arguments and the model state dict (NumPy arrays, fairseq names) of a fairseq
    checkpoint. Optimizer state and training metadata are never materialised."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such fairseq checkpoint file")
    archive_type = TorchArchive if zipfile.is_zipfile(path) else _LegacyArchive
    try:
        archive = archive_type(path, _NAMESPACE)
    except checkpoint.UnsafePickleError as e:
        if "omegaconf" in str(e):
            raise checkpoint.CheckpointFormatError(
                f"{path}: this checkpoint keeps its settings as an omegaconf 'cfg' (fairseq >= 0.10); only "
                "checkpoints with an argparse 'args' are read. Re-save it with fairseq installed: "
                "`state['args'] = fairseq.dataclass.utils.convert_omegaconf_to_argparse(state.pop('cfg'))`"
            ) from None
        raise
    try:
        obj = archive.obj
        if not isinstance(obj, dict) or "model" not in obj:
            raise checkpoint.CheckpointFormatError(
                f"{path}: not a fairseq checkpoint (a dict with 'args' and 'model'), got {type(obj).__name__}"
                + (f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else "")
            )
        args = obj.get("args")
        if not isinstance(args, argparse.Namespace):
            raise checkpoint.CheckpointFormatError(
                f"{path}: the checkpoint has no argparse 'args' (got {type(args).__name__}); "
                "the architecture cannot be read"
            )
        model = obj["model"]
        if not isinstance(model, dict) or not all(isinstance(k, str) for k in model):
            raise checkpoint.CheckpointFormatError(f"{path}: 'model' is not a state dict of name -> tensor")
        state = {}
        for key, value in model.items():
            if isinstance(value, checkpoint.TensorRef):
                state[key] = archive.materialize(value, name=f"model.{key}")
            else:
                raise checkpoint.CheckpointFormatError(f"{path}: model[{key!r}] is a {type(value).__name__}, not a tensor")
        return args, state
    except (MemoryError, RecursionError, OverflowError) as e:
        raise checkpoint.CheckpointFormatError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e})") from None
    finally:
        archive.close()


# ---------------------------------------------------------------------------- the dictionary


def read_dictionary(path: str | os.PathLike) -> list[str]:
    """Symbols of a fairseq `dict.txt` in id order: the four specials, the file's symbols
    (`symbol count [#fairseq:overwrite]` per line), then `<mask>`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such dictionary file (fairseq's dict.txt)") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file: {e}") from None
    symbols = list(SPECIALS)
    index = {s: i for i, s in enumerate(symbols)}
    for number, line in enumerate(lines, 1):
        fields = line.rstrip().split(" ")
        overwrite = fields[-1] == "#fairseq:overwrite"
        if overwrite:
            fields = fields[:-1]
        if len(fields) != 2 or not fields[0] or not re.fullmatch(r"-?\d+", fields[1]):
            raise ValueError(f"{path}:{number}: expected '<symbol> <count>', got {line!r}")
        symbol = fields[0]
        if symbol in index and not overwrite:
            raise ValueError(f"{path}:{number}: duplicate symbol {symbol!r} (fairseq needs '#fairseq:overwrite' for that)")
        if symbol not in index:
            index[symbol] = len(symbols)
            symbols.append(symbol)
    if MASK not in index:
        symbols.append(MASK)
    return symbols


# ---------------------------------------------------------------------------- names and config

# fairseq encoder key (after `sentence_encoder.`) -> canonical key (after `roberta.`)
_ENCODER_RULES = [
    (r"embed_tokens\.weight", "embeddings.word_embeddings.weight"),
    (r"embed_positions\.weight", "embeddings.position_embeddings.weight"),
    (r"segment_embeddings\.weight", "embeddings.token_type_embeddings.weight"),
    (r"(?:emb_layer_norm|layernorm_embedding)\.(weight|bias)", r"embeddings.LayerNorm.\1"),
    (r"layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)", r"encoder.layer.\1.attention.self.query.\2"),
    (r"layers\.(\d+)\.self_attn\.k_proj\.(weight|bias)", r"encoder.layer.\1.attention.self.key.\2"),
    (r"layers\.(\d+)\.self_attn\.v_proj\.(weight|bias)", r"encoder.layer.\1.attention.self.value.\2"),
    (r"layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)", r"encoder.layer.\1.attention.output.dense.\2"),
    (r"layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layer.\1.attention.output.LayerNorm.\2"),
    (r"layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layer.\1.intermediate.dense.\2"),
    (r"layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layer.\1.output.dense.\2"),
    (r"layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layer.\1.output.LayerNorm.\2"),
]
_HEAD_RULES = [
    (r"lm_head\.(dense|layer_norm)\.(weight|bias)", r"lm_head.\1.\2"),
    (r"lm_head\.bias", "lm_head.bias"),
    (r"lm_head\.weight", "lm_head.decoder.weight"),
]
# Bookkeeping tensors fairseq keeps beside the parameters.
_SKIP = re.compile(r".*(\.version|\._float_tensor)$")


def _rename(state: Mapping[str, np.ndarray], classification_head: str | None) -> tuple[dict[str, np.ndarray], list[str]]:
    """fairseq names -> canonical names; returns the renamed state and the keys no rule knows."""
    out: dict[str, np.ndarray] = {}
    unknown: list[str] = []
    heads = sorted({k.split(".")[1] for k in state if k.startswith("classification_heads.")})
    if classification_head is None and len(heads) > 1:
        raise ValueError(
            f"the checkpoint has {len(heads)} classification heads ({', '.join(heads)}); "
            "choose one with classification_head=NAME (--classification-head)"
        )
    if classification_head is not None and classification_head not in heads:
        raise ValueError(
            f"classification_head={classification_head!r} is not in the checkpoint; it has "
            f"{', '.join(heads) if heads else 'none'}"
        )
    chosen = classification_head or (heads[0] if heads else None)
    for key, value in state.items():
        if _SKIP.fullmatch(key):
            continue
        m = re.fullmatch(r"(?:encoder|decoder)\.sentence_encoder\.(.+)", key)
        if m:
            rest = m.group(1)
            qkv = re.fullmatch(r"layers\.(\d+)\.self_attn\.in_proj_(weight|bias)", rest)
            if qkv:  # fairseq < 0.7 kept q, k and v as one (3H, H) projection
                if value.ndim < 1 or value.shape[0] % 3:
                    raise ValueError(f"{key} has shape {tuple(value.shape)}; q, k and v need 3 equal parts")
                for part, proj in zip(np.split(value, 3), ("query", "key", "value")):
                    out[f"{PREFIX}encoder.layer.{qkv.group(1)}.attention.self.{proj}.{qkv.group(2)}"] = part
                continue
            target = _apply(_ENCODER_RULES, rest)
            if target is not None:
                out[PREFIX + target] = value
                continue
        m = re.fullmatch(r"(?:encoder|decoder)\.(lm_head\..+)", key)
        if m and (target := _apply(_HEAD_RULES, m.group(1))) is not None:
            out[target] = value
            continue
        m = re.fullmatch(r"classification_heads\.([^.]+)\.(dense|out_proj)\.(weight|bias)", key)
        if m:
            if m.group(1) == chosen:
                out[f"classifier.{m.group(2)}.{m.group(3)}"] = value
            continue
        unknown.append(key)
    return out, unknown


def _apply(rules, name: str) -> str | None:
    for pattern, target in rules:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, target, name)
    return None


def _arg(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


def _unsupported(name: str, value: Any, allowed: str) -> ValueError:
    # a bounded repr: the value comes from the file (a 16 MiB string, a list of a million items)
    return ValueError(f"fairseq argument {name}={pickle_reader._short(value)} is not supported by RoBERTa here; {allowed}")


def _probability(args: argparse.Namespace, name: str, default: float) -> float:
    """A dropout probability of the args: a real number from 0 to 1 (not a string, a list, NaN, or
    an int too large for a float, which float() would refuse with an error naming no file)."""
    value = _arg(args, name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:  # NaN fails the range
        raise _unsupported(name, value, "a dropout probability is a number from 0 to 1")
    return float(value)


def _heads(args: argparse.Namespace, hidden_size: int) -> int:
    """args.encoder_attention_heads: a whole number from 1 to the hidden size."""
    value = _arg(args, "encoder_attention_heads")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hidden_size:
        raise _unsupported("encoder_attention_heads", value, f"a whole number of heads from 1 to the hidden size ({hidden_size})")
    return value


def _matrix(state: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    """The 2-D parameter `key` the config is read from (a vector or a missing key is refused by name)."""
    value = state.get(PREFIX + key)
    if value is None:
        raise ValueError(f"the checkpoint has no {key} equivalent; it is not a complete RoBERTa")
    if value.ndim != 2:
        raise ValueError(f"{key} has shape {tuple(value.shape)}; a RoBERTa's is a matrix")
    return value


def _check_architecture(args: argparse.Namespace, state: Mapping[str, np.ndarray], unknown: list[str], has_classifier: bool) -> None:
    """Refuse what would load but compute something else, naming the fairseq argument."""
    arch = str(_arg(args, "arch", ""))
    if not re.match(r"(roberta|xlmr)", arch):
        raise _unsupported("arch", arch, "the importer reads fairseq RoBERTa models (arch roberta*, xlmr*)")
    if unknown:
        shown = ", ".join(unknown[:8]) + (f", ... ({len(unknown) - 8} more)" if len(unknown) > 8 else "")
        raise ValueError(f"arch={arch!r}: the checkpoint holds parameters a RoBERTa does not have: {shown}")
    if any(k.endswith("sentence_encoder.layer_norm.weight") for k in state) or (
        any("layernorm_embedding" in k for k in state) and _arg(args, "encoder_normalize_before", False)
    ):
        raise _unsupported(
            "encoder_normalize_before", True, "RoBERTa layers normalise after the residual (pre-LN models are another architecture)"
        )
    if _arg(args, "no_token_positional_embeddings", False):
        raise _unsupported("no_token_positional_embeddings", True, "RoBERTa needs its learned position table")
    if _arg(args, "encoder_layers_to_keep", None):
        raise _unsupported("encoder_layers_to_keep", _arg(args, "encoder_layers_to_keep"), "prune the layers first or leave it unset")
    if _arg(args, "activation_fn", "gelu") != "gelu":
        raise _unsupported("activation_fn", _arg(args, "activation_fn"), "RoBERTa and its LM head use 'gelu'")
    if has_classifier and _arg(args, "pooler_activation_fn", "tanh") != "tanh":
        raise _unsupported("pooler_activation_fn", _arg(args, "pooler_activation_fn"), "the classification head uses 'tanh'")
    if _arg(args, "spectral_norm_classification_head", False):
        raise _unsupported("spectral_norm_classification_head", True, "the classification head is a plain dense layer")
    if _arg(args, "encoder_attention_heads") is None:  # the one size the weights do not tell
        raise ValueError("the checkpoint's args lack encoder_attention_heads; the architecture cannot be rebuilt")


def _config(args: argparse.Namespace, state: Mapping[str, np.ndarray], tied: bool) -> RobertaConfig:
    """The RobertaConfig the weights and args describe. Every value read from the args is checked
    here (type and range) before it is converted: a refusal is a ValueError naming the argument."""
    words = _matrix(state, "embeddings.word_embeddings.weight")
    layers = {int(m.group(1)) for k in state if (m := re.match(re.escape(PREFIX) + r"encoder\.layer\.(\d+)\.", k))}
    if not layers or layers != set(range(len(layers))):
        shown = sorted(layers)[:8] + (["..."] if len(layers) > 8 else [])
        raise ValueError(f"the checkpoint's encoder layers are {shown}; expected 0..N-1 with N >= 1")
    declared = _arg(args, "encoder_layers", len(layers))
    if isinstance(declared, bool) or declared != len(layers):
        raise ValueError(f"args.encoder_layers={pickle_reader._short(declared)} but the weights hold {len(layers)} layers")
    values = dict(
        vocab_size=int(words.shape[0]),
        hidden_size=int(words.shape[1]),
        num_hidden_layers=len(layers),
        num_attention_heads=_heads(args, int(words.shape[1])),
        intermediate_size=int(_matrix(state, "encoder.layer.0.intermediate.dense.weight").shape[0]),
        hidden_act="gelu",
        hidden_dropout_prob=_probability(args, "dropout", 0.1),
        attention_probs_dropout_prob=_probability(args, "attention_dropout", 0.1),
        max_position_embeddings=int(_matrix(state, "embeddings.position_embeddings.weight").shape[0]),
        type_vocab_size=int(_matrix(state, "embeddings.token_type_embeddings.weight").shape[0]),
        layer_norm_eps=1e-5,  # torch.nn.LayerNorm's default, which fairseq uses
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
        tie_word_embeddings=tied,
    )
    if "classifier.out_proj.weight" in state:
        values["num_labels"] = int(state["classifier.out_proj.weight"].shape[0])
        values["classifier_dropout"] = _probability(args, "pooler_dropout", 0.0)
        values["architectures"] = ["RobertaForSequenceClassification"]
    else:
        values["architectures"] = ["RobertaForMaskedLM"]
    try:
        return RobertaConfig(**values)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"the fairseq arguments give no valid RoBERTa config: {e}") from None


# ---------------------------------------------------------------------------- tokenizer files

_BPE_ID = re.compile(r"\d+|madeupword\d+")  # GPT-2 BPE ids, and the fillers fairseq pads the dictionary with


def _word_level_json(symbols: list[str], characters: bool) -> str:
    """A `tokenizers` tokenizer.json that splits text as fairseq did without a BPE (on whitespace),
    and, for a character vocabulary, into single characters, so `QVQLV` and `Q V Q L V` read alike.
    Unknown symbols become `<unk>`; `<s> A </s>` / `<s> A </s></s> B </s>` as RoBERTa."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel({s: i for i, s in enumerate(symbols)}, unk_token="<unk>"))
    split = [pre_tokenizers.WhitespaceSplit()]
    if characters:
        split.append(pre_tokenizers.Split(Regex("."), "isolated"))
        tokenizer.decoder = decoders.Fuse()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(split)
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=False, add_prefix_space=False)
    tokenizer.add_special_tokens(
        [AddedToken(s, special=True, normalized=False) for s in SPECIALS]
        + [AddedToken(MASK, lstrip=True, special=True, normalized=False)]
    )
    return tokenizer.to_str(pretty=True) + "\n"


def tokenizer_files(
    symbols: list[str], config: RobertaConfig, *, gpt2_encoder: str | os.PathLike | None = None,
    gpt2_merges: str | os.PathLike | None = None,
) -> dict[str, str]:
    """File name -> text of the tokenizer files for the dictionary `symbols`.

    GPT-2 BPE ids (roberta.base/large) become RoBERTa's `vocab.json` + `merges.txt` when GPT-2's
    `encoder.json` and `vocab.bpe` are given (empty result otherwise: they cannot be guessed). Any
    other dictionary is what fairseq read without a BPE — whitespace-separated symbols, single
    characters for the protein models — and becomes a word-level `tokenizer.json`."""
    plain = [s for s in symbols[len(SPECIALS):] if s != MASK]
    if plain and all(_BPE_ID.fullmatch(s) for s in plain):
        if gpt2_encoder is None or gpt2_merges is None:
            return {}
        encoder = json.loads(Path(gpt2_encoder).read_text(encoding="utf-8"))
        decoder = {int(v): k for k, v in encoder.items()}
        vocab = {}
        for i, s in enumerate(symbols):
            token = decoder.get(int(s)) if s.isdigit() else s
            if token is None:
                raise ValueError(f"{gpt2_encoder} has no token for the GPT-2 BPE id {s} of the dictionary")
            vocab[token] = i
        files = {"vocab.json": json.dumps(vocab, ensure_ascii=False) + "\n",
                 "merges.txt": Path(gpt2_merges).read_text(encoding="utf-8")}
        tokenizer_class = "RobertaTokenizer"
    else:
        files = {"tokenizer.json": _word_level_json(symbols, characters=all(len(s) == 1 for s in plain))}
        tokenizer_class = "PreTrainedTokenizerFast"
    mask = {"content": MASK, "lstrip": True, "normalized": False, "rstrip": False, "single_word": False, "special": True}
    special = {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "pad_token": "<pad>", "cls_token": "<s>", "mask_token": mask,
    }
    files["special_tokens_map.json"] = json.dumps(special, indent=2) + "\n"
    files["tokenizer_config.json"] = json.dumps(
        {"tokenizer_class": tokenizer_class, "model_max_length": config.max_sequence_length,
         "add_prefix_space": False, **special}, indent=2) + "\n"
    return files


# ---------------------------------------------------------------------------- the import


@dataclass
class FairseqImport:
    """A fairseq checkpoint in canonical form: config, canonical arrays (encoder, LM head and the
    chosen classification head, if any), the dictionary and the tokenizer files (name -> text)."""

    config: RobertaConfig
    state: dict[str, np.ndarray]
    symbols: list[str]
    tokenizer_files: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Turn a refusal of the checkpoint's content (its args' values, its parameters' names and
    shapes) into a CheckpointFormatError naming the file, as the weights readers' refusals are:
    the conversions that read it raise plain ValueError / TypeError / OverflowError."""
    try:
        yield
    except checkpoint.CheckpointFormatError:
        raise
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as e:
        text = str(e) if isinstance(e, ValueError) else f"malformed checkpoint ({type(e).__name__}: {e})"
        raise checkpoint.CheckpointFormatError(f"{path}: {text}") from None


def find_checkpoint_files(src: str | os.PathLike) -> tuple[Path, Path]:
    """(`model.pt`, `dict.txt`) for a checkpoint file or a folder holding one."""
    src = Path(src)
    if src.is_dir():
        candidates = [src / "model.pt"] if (src / "model.pt").is_file() else sorted(src.glob("*.pt"))
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "none"
            raise FileNotFoundError(
                f"{src}: expected one fairseq checkpoint (model.pt) in the folder, found {found}; "
                "name the .pt file instead of the folder"
            )
        model = candidates[0]
    elif src.is_file():
        model = src
    else:
        raise FileNotFoundError(f"{src}: no such fairseq checkpoint file or folder")
    dictionary = model.parent / "dict.txt"
    if not dictionary.is_file():
        raise FileNotFoundError(f"{model.parent}: no dict.txt beside {model.name}; fairseq's dictionary is needed for the vocabulary")
    return model, dictionary


def import_checkpoint(
    src: str | os.PathLike,
    *,
    dictionary: str | os.PathLike | None = None,
    classification_head: str | None = None,
    gpt2_encoder: str | os.PathLike | None = None,
    gpt2_merges: str | os.PathLike | None = None,
) -> FairseqImport:
    """Read a fairseq RoBERTa checkpoint (`model.pt` or its folder; `dict.txt` beside it unless
    `dictionary` is given) into canonical form."""
    model_path, dict_path = find_checkpoint_files(src) if dictionary is None else (Path(src), Path(dictionary))
    args, raw = read_checkpoint(model_path)
    with _naming(model_path):
        state, unknown = _rename(raw, classification_head)
        _check_architecture(args, raw, unknown, has_classifier="classifier.dense.weight" in state)
        for required in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "embeddings.LayerNorm.weight"):
            if PREFIX + required not in state:
                raise ValueError(f"no {required} equivalent in the checkpoint; it is not a RoBERTa encoder")
        words = _matrix(state, "embeddings.word_embeddings.weight")
        token_types = PREFIX + "embeddings.token_type_embeddings.weight"
        state.setdefault(token_types, np.zeros((1, words.shape[1]), dtype=words.dtype))
        # fairseq's LM head holds the word embeddings again (the same tensor); keep one copy.
        decoder = state.pop("lm_head.decoder.weight", None)
        tied = decoder is None or (not _arg(args, "untie_weights_roberta", False) and np.array_equal(decoder, words))
        if not tied:
            state["lm_head.decoder.weight"] = decoder
        config = _config(args, state, tied)

    symbols = read_dictionary(dict_path)
    if len(symbols) != config.vocab_size:
        raise ValueError(
            f"{dict_path} gives {len(symbols)} symbols (4 specials + {len(symbols) - 5} + <mask>) but the "
            f"checkpoint's embeddings have {config.vocab_size} rows; the dictionary does not belong to {model_path.name}"
        )
    head = "sequence_classification" if "classifier.dense.weight" in state else "masked_lm"
    expected = parameter_shapes(config, head)
    if "classifier.dense.weight" in state:
        expected.update({k: v for k, v in parameter_shapes(config, "masked_lm").items() if k.startswith("lm_head.")})
    with _naming(model_path):
        for key, value in state.items():
            if key in expected and tuple(value.shape) != expected[key]:
                raise ValueError(f"{key} has shape {tuple(value.shape)}, the config needs {expected[key]}")
        missing = [k for k in expected if k not in state and not k.startswith("lm_head.")]
        if missing:
            raise ValueError(f"the checkpoint lacks {', '.join(missing[:8])}; it is not a complete RoBERTa")
    files = tokenizer_files(symbols, config, gpt2_encoder=gpt2_encoder, gpt2_merges=gpt2_merges)
    if not files:
        warnings.warn(
            f"{dict_path} holds GPT-2 BPE ids; without gpt2_encoder/gpt2_merges (GPT-2's encoder.json and "
            "vocab.bpe) no tokenizer files are written — give them, or add RoBERTa's vocab.json and merges.txt yourself",
            stacklevel=2,
        )
    return FairseqImport(config=config, state=state, symbols=symbols, tokenizer_files=files)
