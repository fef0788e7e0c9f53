"""XLMRobertaTokenizer and CamembertTokenizer: the SentencePiece Unigram tokenizers of XLM-RoBERTa
and CamemBERT, run by the `sentencepiece` package (the `roberta3[sentencepiece]` extra, imported
when a slow tokenizer is made), with the API of the byte-level BPE pair.

What the slow and fast SentencePiece tokenizers share is here, in `SentencePieceTokenizerBase`:

- the vocabulary in fairseq's order, made from `sentencepiece.bpe.model` or read from a Unigram
  `tokenizer.json`. XLM-R: `<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3, then SentencePiece's pieces from
  its id 3 on (SentencePiece id + 1), `<mask>` last. CamemBERT: `<s>NOTUSED`=0 `<pad>`=1
  `</s>NOTUSED`=2 `<unk>`=3 `<unk>NOTUSED`=4, then SentencePiece's pieces from its id 1 on
  (SentencePiece id + 4, so its `<s>` is 5 and `</s>` 6), `<mask>` last;
- our converter from `sentencepiece.bpe.model` to a `tokenizers` Unigram pipeline: the model's
  precompiled character map as normalizer, trailing spaces dropped and runs of spaces made one
  `▁`, then the Metaspace pre-tokenizer that puts `▁` before every word and splits there;
- decoding: tokens joined, `▁` read as a space, none kept at the start of the first token (the
  Metaspace decoder's rule, which both tokenizers follow);
- the files: `sentencepiece.bpe.model`, `tokenizer.json`, and `tokenizer_config.json` naming
  v4's `tokenizer_class`.

Special tokens (`<s> A </s>`, `<s> A </s></s> B </s>`, no token type ids), truncation, padding,
added tokens and the output are the shared base's (`tokenization_base`). The files are read
without `protobuf`: `sentencepiece.bpe.model` is a small protocol-buffer message, parsed here.
"""

from __future__ import annotations

import base64
import json
import logging
import struct
from pathlib import Path

from .special_tokens import AddedToken, as_added_token
from .tokenization import RobertaTokenizer
from .tokenization_base import RobertaTokenizerBase, _by_sequence
from .tokenizer_files import TOKENIZER_FILE, load_json

logger = logging.getLogger(__name__)

__all__ = [
    "XLMRobertaTokenizer", "CamembertTokenizer", "SentencePieceTokenizerBase", "SENTENCEPIECE_FILE",
    "read_sentencepiece_model", "FAMILIES",
]

SENTENCEPIECE_FILE = "sentencepiece.bpe.model"
SPIECE_UNDERLINE = "▁"
# Bounds on an untrusted model file (XLM-R's has 250,000 pieces in 5 MB).
MAX_MODEL_BYTES = 1 << 30
MAX_PIECES = 5_000_000

# SentencePiece's piece types (sentencepiece_model.proto).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Per family: the tokens before SentencePiece's pieces (with their Unigram scores), the first
# SentencePiece id kept, and v4's class names. `<mask>` (score 0) follows the pieces.
FAMILIES = {
    "xlm-roberta": {
        "head": [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)],
        "first_piece": 3,  # SentencePiece's <unk>, <s>, </s> (ids 0-2) give way to fairseq's four
        "additional_special_tokens": (),
        "tokenizer_class": "XLMRobertaTokenizer",
    },
    "camembert": {
        # v4's CamembertConverter: fairseq's <s>, </s> and <unk> kept as unused tokens, the real
        # <unk> at 3, SentencePiece's <unk> demoted (score -100) so that the Unigram never picks it
        "head": [("<s>NOTUSED", 0.0), ("<pad>", 0.0), ("</s>NOTUSED", 0.0), ("<unk>", 0.0), ("<unk>NOTUSED", -100.0)],
        "first_piece": 1,
        "additional_special_tokens": ("<s>NOTUSED", "</s>NOTUSED", "<unk>NOTUSED"),
        "tokenizer_class": "CamembertTokenizer",
    },
}
UNK_ID = 3  # in both families


# ----------------------------------------------------------------------------- sentencepiece.bpe.model


def _varint(data: bytes, position: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError(f"{where}: truncated or corrupt protocol buffer (a varint runs past the data)")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: bytes, where: str):
    """(field number, value) of each field of a protocol-buffer message: an int for varints,
    bytes for length-delimited fields and for fixed 32/64-bit ones."""
    position, size = 0, len(data)
    while position < size:
        key, position = _varint(data, position, where)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position, where)
        elif wire == 2:
            length, position = _varint(data, position, where)
            value, position = data[position:position + length], position + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, position = data[position:position + width], position + width
        else:
            raise ValueError(f"{where}: not a SentencePiece model (protocol-buffer wire type {wire} in field {number})")
        if position > size:
            raise ValueError(f"{where}: truncated protocol buffer (field {number} runs past the end)")
        yield number, value


def _text(value, where: str) -> str:
    if not isinstance(value, bytes):
        raise ValueError(f"{where}: not a SentencePiece model (a string field holds a number)")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not a SentencePiece model (a piece is not UTF-8)") from None


def read_sentencepiece_model(source, where: str | None = None) -> dict:
    """What a `sentencepiece.bpe.model` (a path or its bytes) holds for us: `pieces` [(piece,
    score, type)] by SentencePiece id, `model_type` (1 Unigram, 2 BPE, ...), `byte_fallback`,
    `unk_id`, `precompiled_charsmap` (bytes) and `proto` (the file's bytes). Errors name the file."""
    if isinstance(source, (bytes, bytearray)):
        data, where = bytes(source), where or "the SentencePiece model"
    else:
        path = Path(source)
        where = where or str(path)
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ValueError(f"{where}: {size} bytes, more than a SentencePiece model can be ({MAX_MODEL_BYTES})")
        data = path.read_bytes()
    pieces, trainer, normalizer = [], {}, {}
    for number, value in _fields(data, where):
        if number == 1:  # ModelProto.pieces
            piece, score, kind = None, 0.0, NORMAL
            for field, item in _fields(_checked_bytes(value, where), where):
                if field == 1:
                    piece = _text(item, where)
                elif field == 2:
                    score = struct.unpack("<f", _checked_bytes(item, where, 4))[0]
                elif field == 3:
                    kind = item
            if piece is None:
                raise ValueError(f"{where}: piece {len(pieces)} has no text")
            pieces.append((piece, score, kind))
            if len(pieces) > MAX_PIECES:
                raise ValueError(f"{where}: more than {MAX_PIECES} pieces")
        elif number == 2:  # TrainerSpec
            trainer = {field: item for field, item in _fields(_checked_bytes(value, where), where)}
        elif number == 3:  # NormalizerSpec
            normalizer = {field: item for field, item in _fields(_checked_bytes(value, where), where)}
    if not pieces:
        raise ValueError(f"{where}: not a SentencePiece model (no pieces)")
    unk_id = trainer.get(40, 0)
    charsmap = normalizer.get(2, b"")
    return {
        "pieces": pieces,
        "model_type": trainer.get(3, 1),
        "byte_fallback": bool(trainer.get(35, 0)),
        "unk_id": unk_id if isinstance(unk_id, int) else 0,
        "precompiled_charsmap": charsmap if isinstance(charsmap, bytes) else b"",
        "proto": data,
    }


def _checked_bytes(value, where: str, width: int | None = None) -> bytes:
    if not isinstance(value, bytes) or (width is not None and len(value) != width):
        raise ValueError(f"{where}: not a SentencePiece model (a field has the wrong type)")
    return value


def family_vocabulary(model: dict, family: str, where: str) -> list[tuple[str, float]]:
    """The (token, score) vocabulary in fairseq's order for `family`, from a read SentencePiece model."""
    pieces = model["pieces"]
    layout = FAMILIES[family]
    if model["model_type"] != 1:
        raise ValueError(f"{where}: a SentencePiece model of type {model['model_type']} (XLM-R and CamemBERT use "
                         "Unigram, type 1)")
    if model["unk_id"] != 0 or pieces[0][2] != UNKNOWN:
        raise ValueError(f"{where}: SentencePiece's <unk> must be piece 0, as in XLM-R's and CamemBERT's models "
                         f"(unk_id is {model['unk_id']})")
    if family == "xlm-roberta" and (len(pieces) < 3 or [p[2] for p in pieces[1:3]] != [CONTROL, CONTROL]):
        raise ValueError(f"{where}: XLM-R's layout needs SentencePiece's <s> and </s> as pieces 1 and 2 "
                         f"(got {[p[0] for p in pieces[1:3]]})")
    if model["byte_fallback"]:
        logger.warning(f"{where}: the model falls back to bytes for unknown characters; like transformers v4, these "
                       "tokenizers give <unk> there instead")
    return [*layout["head"], *((piece, score) for piece, score, _ in pieces[layout["first_piece"]:]), ("<mask>", 0.0)]


def converted_pipeline(charsmap: bytes) -> dict:
    """The `tokenizers` normalizer, pre-tokenizer and decoder (tokenizer.json's parts) that read
    text as SentencePiece does for these models: its character map (NFKC with its own rules),
    trailing whitespace dropped and a run of spaces read as one `▁`, then a `▁` in front of
    every word and a split before each `▁`."""
    steps = [{"type": "Strip", "strip_left": False, "strip_right": True},
             {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": SPIECE_UNDERLINE}]
    if charsmap:
        steps.insert(0, {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")})
    metaspace = {"type": "Metaspace", "replacement": SPIECE_UNDERLINE, "prepend_scheme": "always", "split": True}
    return {"normalizer": {"type": "Sequence", "normalizers": steps}, "pre_tokenizer": metaspace, "decoder": dict(metaspace)}


def read_unigram_tokenizer_json(path) -> dict:
    """vocabulary (token, score), unk id, pipeline parts and added tokens of a Unigram tokenizer.json."""
    spec = load_json(path)
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        raise ValueError(f"{path}: expected a tokenizers JSON object with a model")
    model = spec["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"{path} is not a SentencePiece Unigram tokenizer: model type {model.get('type')!r} "
                         "(need 'Unigram')")
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not vocab:
        raise ValueError(f"{path}: model.vocab must be a non-empty list of [token, score]")
    pieces = []
    for index, entry in enumerate(vocab):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], (int, float)) and not isinstance(entry[1], bool)):
            raise ValueError(f"{path}: model.vocab[{index}] must be [token, score], got {entry!r:.60}")
        pieces.append((entry[0], float(entry[1])))
    unk_id = model.get("unk_id")
    if unk_id is not None and (type(unk_id) is not int or not 0 <= unk_id < len(pieces)):
        raise ValueError(f"{path}: model.unk_id must be an id of the vocabulary, got {unk_id!r}")
    if model.get("byte_fallback"):
        raise ValueError(f"{path}: model.byte_fallback=true is not XLM-R's or CamemBERT's tokenizer")
    for key in ("normalizer", "pre_tokenizer", "decoder"):
        if not isinstance(spec.get(key), (dict, type(None))):
            raise ValueError(f"{path}: {key} must be a JSON object or null")
    added = spec.get("added_tokens") or []
    if not isinstance(added, list):
        raise ValueError(f"{path}: added_tokens must be a JSON list")
    tokens = {}
    for index, token in enumerate(added):
        if not (isinstance(token, dict) and type(token.get("id")) is int and isinstance(token.get("content"), str)):
            raise ValueError(f"{path}: added_tokens[{index}] needs an int 'id' and a str 'content', got {token!r:.80}")
        tokens[token["id"]] = as_added_token(token, special=bool(token.get("special", False)))
    return {"pieces": pieces, "unk_id": unk_id, "added_tokens": tokens,
            "pipeline": {key: spec.get(key) for key in ("normalizer", "pre_tokenizer", "decoder")}}


# ----------------------------------------------------------------------------- the shared base


class SentencePieceTokenizerBase(RobertaTokenizerBase):
    """XLM-R's and CamemBERT's tokenizer minus the Unigram engine: the vocabulary in fairseq's
    order, decoding, files. Subclasses implement `_encode_texts` (see `RobertaTokenizerBase`)."""

    family = "xlm-roberta"
    # tokens() shows an unknown piece's text ('ÅÅ', not '<unk>'), as v4's slow (SentencePiece's
    # pieces) and fast (`tokenizers`' Encoding.tokens) ones do; convert_ids_to_tokens keeps '<unk>'.
    _unknown_shows_text = True

    def __init__(self, vocab_file=None, tokenizer_file=None, sp_model_kwargs=None, **kwargs):
        if sp_model_kwargs:
            raise ValueError(f"sp_model_kwargs {sorted(sp_model_kwargs)} are not supported: these tokenizers encode "
                             "deterministically (no subword sampling)")
        for name in ("merges_file", "vocab", "merges"):
            if kwargs.get(name) is not None:
                raise TypeError(f"{type(self).__name__} reads {SENTENCEPIECE_FILE} (vocab_file) or a Unigram "
                                f"tokenizer.json (tokenizer_file); {name} is for the byte-level BPE tokenizers")
            kwargs.pop(name, None)
        if "additional_special_tokens" not in kwargs and FAMILIES[self.family]["additional_special_tokens"]:
            kwargs["additional_special_tokens"] = list(FAMILIES[self.family]["additional_special_tokens"])
            self._given_kwargs["additional_special_tokens"] = kwargs["additional_special_tokens"]  # v4's default
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        self.vocab_file = None if vocab_file is None else str(vocab_file)
        super().__init__(vocab_file=vocab_file, tokenizer_file=tokenizer_file, **kwargs)

    def _read_vocabulary_source(self, vocab_file, merges_file, tokenizer_file, vocab, merges) -> dict:
        if tokenizer_file is not None:
            spec = read_unigram_tokenizer_json(tokenizer_file)
            spec["proto"] = None
            if vocab_file is not None:  # kept for save_pretrained (v4 saves it beside tokenizer.json)
                spec["proto"] = read_sentencepiece_model(vocab_file)["proto"]
            return spec
        if vocab_file is None:
            raise ValueError(f"{type(self).__name__} needs vocab_file ({SENTENCEPIECE_FILE})"
                             + ("" if not self.is_fast else " or tokenizer_file (a Unigram tokenizer.json)"))
        model = read_sentencepiece_model(vocab_file)
        return {"pieces": family_vocabulary(model, self.family, str(vocab_file)), "unk_id": UNK_ID,
                "added_tokens": self._model_added_tokens(model),
                "pipeline": converted_pipeline(model["precompiled_charsmap"]), "proto": model["proto"]}

    def _model_added_tokens(self, model: dict) -> dict:
        """User-defined pieces of the model become added tokens (matched verbatim), as v4's converter makes them."""
        first = FAMILIES[self.family]["first_piece"]
        offset = len(FAMILIES[self.family]["head"]) - first
        return {i + offset: as_added_token({"content": piece, "normalized": False}, special=False)
                for i, (piece, _, kind) in enumerate(model["pieces"]) if kind == USER_DEFINED and i >= first}

    def _set_vocabulary(self, spec: dict) -> None:
        pieces = spec["pieces"]
        self._pieces: list[tuple[str, float]] = list(pieces)
        self._encoder = {}
        for token_id, (token, _) in enumerate(pieces):
            if token in self._encoder:
                raise ValueError(f"the vocabulary has {token!r} twice (ids {self._encoder[token]} and {token_id})")
            self._encoder[token] = token_id
        self._decoder = [token for token, _ in pieces]
        self._id_bytes = [token.encode() for token in self._decoder]
        self._merges = []
        self._unk_id = spec["unk_id"]
        self._pipeline = spec["pipeline"]
        self._proto = spec["proto"]

    @classmethod
    def _vocabulary_sources(cls, directory: Path) -> dict:
        model, unigram = directory / SENTENCEPIECE_FILE, directory / TOKENIZER_FILE
        if cls.is_fast and unigram.is_file():
            return {"tokenizer_file": unigram, **({"vocab_file": model} if model.is_file() else {})}
        if model.is_file():
            return {"vocab_file": model}
        needs = f"{TOKENIZER_FILE} or {SENTENCEPIECE_FILE}" if cls.is_fast else SENTENCEPIECE_FILE
        raise FileNotFoundError(f"{directory} has no {needs} for {cls.__name__}")

    # ------------------------------------------------------------------ encoding details

    @staticmethod
    def _takes_prefix_space(text: str) -> bool:
        return False  # SentencePiece puts `▁` before every text and word itself

    def _final_offsets(self, text, ids, offsets, shifted, prefix_space=False):
        return list(offsets)  # the engines' spans as they are (v4's fast tokenizer trims nothing here)

    # ------------------------------------------------------------------ decoding

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """The text of token strings: `▁` is a space, none kept in the first token (as the Metaspace decoder)."""
        return "".join(t.replace(SPIECE_UNDERLINE, "" if k == 0 else " ") for k, t in enumerate(tokens))

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               **kwargs) -> str:
        """The text of ids: their tokens joined by `convert_tokens_to_string` (special tokens skipped first,
        when asked). Not lossless: SentencePiece normalises the text and unknown characters are <unk>.
        Other keywords are accepted and ignored, and ids outside the vocabulary handled, as
        `RobertaTokenizerBase.decode` does (fast: skipped; slow: a ValueError)."""
        text = self.convert_tokens_to_string(self.convert_ids_to_tokens(self._decoded_ids(token_ids),
                                                                        skip_special_tokens=skip_special_tokens))
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean else text

    # ------------------------------------------------------------------ files

    @property
    def can_save_slow_tokenizer(self) -> bool:
        """Whether `sentencepiece.bpe.model` can be written (the tokenizer was made from one)."""
        return self._proto is not None

    def _vocabulary_files(self, prefix: str) -> dict:
        return {prefix + SENTENCEPIECE_FILE: self._proto} if self._proto is not None else {}

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str]:
        """Write sentencepiece.bpe.model ('<prefix>-sentencepiece.bpe.model' with a prefix); returns its path."""
        if self._proto is None:
            raise ValueError(f"{type(self).__name__} was made from a tokenizer.json without {SENTENCEPIECE_FILE}; "
                             "there is no SentencePiece model to save (save_pretrained writes tokenizer.json)")
        return super().save_vocabulary(save_directory, filename_prefix)

    @property
    def vocab_files_names(self) -> dict[str, str]:
        return {"vocab_file": SENTENCEPIECE_FILE, **({"tokenizer_file": TOKENIZER_FILE} if self.is_fast else {})}

    @property
    def _v4_attributes(self) -> frozenset:
        # v4's XLM-R tokenizers have no `errors`; its slow one keeps `sp_model_kwargs`, and only its fast
        # one has `add_prefix_space` (every v4 fast tokenizer has).
        names = RobertaTokenizerBase._v4_attributes - {"errors"} | {"vocab_file"}
        return names | {"add_prefix_space"} if self.is_fast else names - {"add_prefix_space"} | {"sp_model_kwargs"}

    @property
    def sp_model_kwargs(self) -> dict:
        return {}  # no subword sampling (see __init__)

    def _wrapped_default(self, role, content, built_from_slow):
        # v4 keeps XLM-R's special tokens as the strings given, but for <mask> (lstrip). (v4's fast
        # tokenizer made directly from a sentencepiece.bpe.model, without from_pretrained, ends up with
        # a normalized=True <mask>, unlike its slow one; ours keeps the two alike: normalized=False.)
        if role != "mask_token":
            return None
        return AddedToken(content, lstrip=True, normalized=False, special=True)

    def _v4_init_kwargs(self, roles, *, errors, built_from_slow):
        return {**roles, **({"sp_model_kwargs": {}} if not self.is_fast or built_from_slow else {})}

    def _backend_tokenizer(self, pretokenizer=None):
        """A `tokenizers.Tokenizer`: this Unigram vocabulary, the pipeline, the added tokens and v4's
        `<s> $A </s> </s> $B </s>` template (what tokenizer.json stores)."""
        from tokenizers import AddedToken as RustAddedToken
        from tokenizers import Tokenizer, models, processors

        # The pipeline parts go through JSON; the model is made from Python floats, because JSON
        # parsing in Rust may round a score's last bit (and SentencePiece's float32 scores are exact).
        spec = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], **self._pipeline,
                "post_processor": None, "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]]}}
        backend = Tokenizer.from_str(json.dumps(spec))
        backend.model = models.Unigram(self._pieces, self._unk_id, False)
        for token_id, token in sorted(self._added.items()):
            rust = RustAddedToken(token.content, single_word=token.single_word, lstrip=token.lstrip,
                                  rstrip=token.rstrip, normalized=token.normalized, special=token.special)
            (backend.add_special_tokens if token.special else backend.add_tokens)([rust])
            if backend.token_to_id(token.content) != token_id:
                raise RuntimeError(f"tokenizers gave {token.content!r} id {backend.token_to_id(token.content)}, "
                                   f"expected {token_id}")
        if self.cls_token_id is not None and self.sep_token_id is not None:
            cls, sep = self.cls_token, self.sep_token
            backend.post_processor = processors.TemplateProcessing(
                single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}",
                special_tokens=[(cls, self.cls_token_id), (sep, self.sep_token_id)])
        backend.encode_special_tokens = self.split_special_tokens
        return backend

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"len={len(self)}, model_max_length={self.model_max_length}, special_tokens={self.special_tokens_map})")


# ----------------------------------------------------------------------------- the slow tokenizers


def _sentencepiece():
    try:
        import sentencepiece
    except ImportError:
        raise ImportError("the slow XLM-R / CamemBERT tokenizers need the sentencepiece package: "
                          "pip install 'roberta3[sentencepiece]' (or use XLMRobertaTokenizerFast / "
                          "CamembertTokenizerFast, which need only tokenizers)") from None
    return sentencepiece


class XLMRobertaTokenizer(SentencePieceTokenizerBase):
    """XLM-RoBERTa's tokenizer run by `sentencepiece`; same API and same ids as XLMRobertaTokenizerFast.

    >>> tok = XLMRobertaTokenizer.from_pretrained("path/to/xlm-roberta-base")
    >>> tok("Hello world!")["input_ids"]
    [0, 35378, 8999, 38, 2]
    """

    def __init__(self, vocab_file=None, tokenizer_file=None, sp_model_kwargs=None, **kwargs):
        spm = _sentencepiece()
        super().__init__(vocab_file, tokenizer_file, sp_model_kwargs, **kwargs)
        if self._proto is None:
            raise ValueError(f"{type(self).__name__} needs vocab_file ({SENTENCEPIECE_FILE}); "
                             f"for a tokenizer.json alone use {type(self).__name__}Fast")
        self.sp_model = spm.SentencePieceProcessor(model_proto=self._proto)
        # SentencePiece id -> ours: its <unk> (0) is ours (3), the rest moves by the family's offset
        offset = len(FAMILIES[self.family]["head"]) - FAMILIES[self.family]["first_piece"]
        self._spm_to_id = [self._unk_id] + [i + offset for i in range(1, self.sp_model.get_piece_size())]
        self._space_id = self._encoder.get(SPIECE_UNDERLINE, self._unk_id)

    def __getstate__(self):
        return {**self.__dict__, "sp_model": None}  # the model is rebuilt from its bytes

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.sp_model = _sentencepiece().SentencePieceProcessor(model_proto=self._proto)

    # Added tokens are cut out of the text exactly as the byte-level slow tokenizer does it (the
    # same functions), then SentencePiece reads each piece between them on its own, as v4 does.
    _added_tokens_changed = RobertaTokenizer._added_tokens_changed
    _split_added = RobertaTokenizer._split_added
    _match_added = RobertaTokenizer._match_added

    def _encode_texts(self, texts, with_offsets, split_special, prefix_space=False):
        return [self._encode_text(text, with_offsets, split_special) for text in texts]

    def _sequence_tokens(self, seqs, split, split_special, add_prefix_space=None):
        # v4 slow's tokenize(): the ids' tokens, but SentencePiece's own piece where it is unknown
        # (`encode(out_type=str)`: the normalised text, 'ÅÅ', where convert_ids_to_tokens gives '<unk>').
        _, inputs, _, _ = self._engine_inputs(seqs, split, add_prefix_space)
        tokens = []
        for text in inputs:
            unknown = {}
            strings = self.convert_ids_to_tokens(self._encode_text(text, False, split_special, unknown)[0])
            for position, piece in unknown.items():
                strings[position] = piece
            tokens.append(strings)
        return _by_sequence(tokens, seqs) if split else tokens

    def _encode_text(self, text: str, with_offsets: bool, split_special: bool, unknown: dict | None = None):
        """(ids, offsets, words) of one text; `unknown`, when given, gets {position: SentencePiece's
        piece} for each unknown piece (ids without offsets only)."""
        spm_to_id = self._spm_to_id
        pieces = self._split_added(text, split_special)
        ids, offsets, words = [], [], []
        for k, (start, end, token_id) in enumerate(pieces):
            if token_id is not None:
                token = self._added[token_id]
                if token.lstrip and token.normalized:
                    # tokenizers matches it in the normalised text, where a run of spaces is one `▁`
                    # already, which lstrip does not take: the run stays, as a `▁` token
                    lead = len(text[start:end]) - len(text[start:end].lstrip())
                    if lead > 1:
                        ids.append(self._space_id)
                        start += lead
                        if with_offsets:
                            offsets.append((start - 1, start))
                            words.append(words[-1] + 1 if words else 0)
                following = pieces[k + 1][2] if k + 1 < len(pieces) else None
                trail = len(text[start:end]) - len(text[start:end].rstrip())
                ids.append(token_id)
                if with_offsets:
                    offsets.append((start, end))
                    words.append(words[-1] + 1 if words else 0)  # an added token is a word of its own
                if token.rstrip and token.normalized and trail > 1 and following is not None \
                        and self._added[following].normalized:
                    ids.append(self._space_id)  # the same on its right, before another such token
                    if with_offsets:
                        offsets.append((end - 1, end))
                        words.append(words[-1] + 1)
                continue
            segment = text[start:end]
            if not with_offsets:
                if segment:
                    spm_ids = self.sp_model.encode(segment)
                    if unknown is not None and 0 in spm_ids:
                        strings = self.sp_model.encode(segment, out_type=str)  # the same pieces, as text
                        unknown.update((len(ids) + k, piece) for k, (spm_id, piece) in enumerate(zip(spm_ids, strings))
                                       if spm_id == 0)
                    ids += [spm_to_id[i] for i in spm_ids]
            else:
                for spm_id, piece, begin, stop in self._pieces_with_spans(segment):
                    if piece.startswith(SPIECE_UNDERLINE):
                        # a word starts at each `▁` (where the Metaspace pre-tokenizer splits), and the
                        # `▁` stands where tokenizers puts it: on the last whitespace character before
                        # the word, else (the `▁` added in front) on the word's first character
                        words.append(words[-1] + 1 if words else 0)
                        surface = segment[begin:stop]
                        lead = len(surface) - len(surface.lstrip())
                        if lead:
                            begin += lead - 1
                        elif begin > 0 and segment[begin - 1].isspace():  # SentencePiece dropped it
                            begin -= 1
                    else:
                        words.append(words[-1] if words else 0)
                    if begin == stop < len(segment):
                        # a piece of no text of its own (the `▁` added in front, the first part of a
                        # character the normaliser expands, as 'ﬁ' -> 'f' 'i'): that character's span
                        stop += 1
                    ids.append(spm_to_id[spm_id])
                    offsets.append((start + begin, start + stop))
            # v4's fast tokenizer (tokenizers) matches a normalized added token in the normalised text,
            # so the whitespace before it stays in the piece before: one more `▁` there, which
            # SentencePiece, stripping each piece's ends, does not give. We follow the fast one.
            following = pieces[k + 1][2] if k + 1 < len(pieces) else None
            if following is not None and self._added[following].normalized and segment[-1:].isspace():
                ids.append(self._space_id)
                if with_offsets:
                    offsets.append((end - 1, end))
                    words.append(words[-1] + 1 if words else 0)
        return ids, (offsets if with_offsets else None), (words if with_offsets else None)

    def _pieces_with_spans(self, text: str) -> list[tuple[int, str, int, int]]:
        """(SentencePiece id, piece, start, end) of each piece of `text`, the span in characters of
        `text` that the piece came from (SentencePiece's `surface`; empty for the `▁` it adds)."""
        if not text:
            return []
        proto = self.sp_model.encode(text, out_type="serialized_proto")
        char_of_byte = [k for k, ch in enumerate(text) for _ in range(len(ch.encode("utf-8")))] + [len(text)]
        result = []
        for number, value in _fields(proto, "sentencepiece's output"):
            if number != 2:  # SentencePieceText.pieces
                continue
            piece, spm_id, begin, end = "", 0, 0, 0
            for field, item in _fields(value, "sentencepiece's output"):
                if field == 1:
                    piece = item.decode("utf-8")
                elif field == 2:
                    spm_id = item
                elif field == 4:
                    begin = item
                elif field == 5:
                    end = item
            result.append((spm_id, piece, char_of_byte[begin], char_of_byte[end]))
        return result


class CamembertTokenizer(XLMRobertaTokenizer):
    """CamemBERT's tokenizer run by `sentencepiece`: XLM-R's, with CamemBERT's special-token table
    (`<s>NOTUSED`=0 `<pad>`=1 `</s>NOTUSED`=2 `<unk>`=3 `<unk>NOTUSED`=4, its `<s>`=5 and `</s>`=6)."""

    family = "camembert"

    @property
    def vocab_size(self) -> int:
        """SentencePiece's piece count, as v4's slow CamemBERT gives it (its `len(self.sp_model)`): the
        ids run past it (fairseq's 4 extra tokens in front, `<mask>` last; `len(tokenizer)` counts
        them all). (The fast one, as v4's, counts the whole vocabulary.) Also where save_pretrained
        starts added_tokens.json, as in v4."""
        sp_model = getattr(self, "sp_model", None)
        if sp_model is None:  # while __init__ runs: the same count, from our vocabulary's layout
            layout = FAMILIES[self.family]
            return len(self._encoder) - len(layout["head"]) + layout["first_piece"] - 1
        return sp_model.get_piece_size()
