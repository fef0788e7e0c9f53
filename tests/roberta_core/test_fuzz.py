"""Fuzzing the checkpoint readers (issue 17): random byte mutations and truncations of small valid
files in all four weight formats (written by our own writers from a tiny config), of the four
sharded layouts (an index or one of its shards mutated), a fairseq legacy file and of config.json, each read in a separate process under an
address-space limit and a timeout. Every case must end in the library's own error (a ValueError,
`CheckpointFormatError` for weights) naming the file, or load — never a crash, a hang, a
MemoryError or another exception type. Plus the crafted files of `crafted.py` as a fixed corpus.

Bounded: a fixed number of hypothesis examples, each a batch of mutated files read by one process,
so the file runs in well under two minutes on one core."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roberta_core import checkpoint
from tests.helpers import random_state, tiny_config
from tests.roberta_core import crafted

BATCH = 60  # mutated files per process
FUZZ = settings(max_examples=2, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    """One small valid file per kind, written by the library itself."""
    root = tmp_path_factory.mktemp("seeds")
    config = tiny_config(num_hidden_layers=1, hidden_size=8, num_attention_heads=2, intermediate_size=16,
                         vocab_size=40, max_position_embeddings=20)
    state = random_state(config, "masked_lm")
    files = {}
    for fmt in ("safetensors", "bin", "h5", "msgpack"):
        [files[fmt]] = checkpoint.save_state_dict(state, root / fmt, format=fmt)
    for fmt in ("safetensors", "bin", "h5", "msgpack"):  # v4's four sharded layouts, a few shards each
        written = checkpoint.save_state_dict(state, root / f"sharded-{fmt}", format=fmt, max_shard_size=2000)
        assert len(written) > 2 and written[-1].name.endswith(".index.json"), written  # really sharded
        files[f"index-{fmt}"] = written[-1]
    config.save_pretrained(root / "config")
    files["config"] = root / "config" / "config.json"
    return files


def mutate(data: bytes, edits: list[tuple[str, float, int]]) -> bytes:
    """Apply `edits`: (kind, where as a fraction of the length, a byte or a length)."""
    out = bytearray(data)
    for kind, where, value in edits:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "set" and out:
            out[at] = value
        elif kind == "flip" and out:
            out[at] ^= 1 << (value % 8)
        elif kind == "truncate":
            del out[at:]
        elif kind == "delete":
            del out[at:at + value]
        elif kind == "insert":
            out[at:at] = bytes([value]) * (value % 9 + 1)
        elif kind == "duplicate":
            out[at:at] = out[at:at + value]
        elif kind == "big" and len(out) >= at + 4:  # a size field turned huge
            out[at:at + 4] = (0xFFFFFFF0 - value).to_bytes(4, "little")
    return bytes(out)


EDIT = st.tuples(st.sampled_from(["set", "flip", "truncate", "delete", "insert", "duplicate", "big"]),
                 st.floats(0, 1), st.integers(0, 255))
CASES = st.lists(st.lists(EDIT, min_size=1, max_size=4), min_size=BATCH, max_size=BATCH)


def check_outcomes(paths: list[Path], results: list[dict]) -> None:
    for path, result in zip(paths, results):
        if result["outcome"] == "loaded":
            continue
        assert result["library"], f"{path.name}: raw {result['type']}: {result['message']}"
        # A weights error names the file; a sharded checkpoint's may name the shard it read.
        assert str(path.parent) in result["message"], f"{path.name}: error without the file: {result['message']}"


def run_batch(seeds: list[Path], tmp_path: Path, cases: list[list[tuple[str, float, int]]]) -> None:
    """Case n mutates a copy of seed n % len(seeds) (the index kind: one batch over the four layouts)."""
    paths = []
    for n, edits in enumerate(cases):
        folder = tmp_path / f"case{n}"
        seed = seeds[n % len(seeds)]
        data = seed.read_bytes()
        if seed.name.endswith(".index.json"):  # mutate one file of the set: the index or a shard
            shutil.copytree(seed.parent, folder, dirs_exist_ok=True)
            files = sorted(folder.iterdir())
            target = files[int(edits[0][1] * len(files)) % len(files)]
            target.write_bytes(mutate(target.read_bytes(), edits))
            paths.append(folder / seed.name)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / seed.name
        path.write_bytes(mutate(data, edits))
        paths.append(path)
    check_outcomes(paths, crafted.load_isolated(paths, timeout=90, spare_bytes=512 * 2**20))


@pytest.mark.parametrize("kind", ["safetensors", "bin", "h5", "msgpack", "index", "config"])
def test_mutated_files_end_in_a_clear_error_or_load(seeds, tmp_path_factory, kind):
    @FUZZ
    @given(cases=CASES)
    def run(cases):
        kinds = [k for k in seeds if k.startswith("index-")] if kind == "index" else [kind]
        run_batch([seeds[k] for k in kinds], tmp_path_factory.mktemp(kind), cases)

    run()


def test_mutated_fairseq_legacy_files(tmp_path_factory):
    """The legacy torch.save stream, built by hand (torch may be absent): header pickles, the
    object with one tensor, the storage list, the storage bytes."""
    P = crafted.P
    obj = crafted.P.PROTO + b"\x02" + P.EMPTY_DICT + P.MARK + crafted.s("args") + crafted.glob("argparse", "Namespace") \
        + P.EMPTY_TUPLE + P.NEWOBJ + P.EMPTY_DICT + crafted.s("arch") + crafted.s("roberta_base") + P.SETITEM + P.BUILD \
        + crafted.s("model") + P.EMPTY_DICT + crafted.s("w") \
        + crafted.tensor("0", 4, (2, 2), (2, 1)).replace(P.BINPERSID, P.BINPERSID, 1) + P.SETITEM + P.SETITEMS + P.STOP
    # legacy persistent ids carry a sixth field (the view): rebuild the record with one
    obj = obj.replace(crafted.i(4) + P.TUPLE + P.BINPERSID, crafted.i(4) + P.NONE + P.TUPLE + P.BINPERSID)
    root = tmp_path_factory.mktemp("legacy")
    seed = root / "model.pt"
    head = b"".join(__import__("pickle").dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    seed.write_bytes(head + obj + __import__("pickle").dumps(["0"], protocol=2)
                     + np.array([4], "<i8").tobytes() + crafted.FOUR_FLOATS)
    [result] = crafted.load_isolated([seed])
    assert result["outcome"] == "loaded", result  # the seed itself is valid
    assert result["state"]["w"][:2] == ["float32", [2, 2]]

    @FUZZ
    @given(cases=CASES)
    def run(cases):
        run_batch([seed], tmp_path_factory.mktemp("legacy-case"), cases)

    run()


CORPUS = {
    "build-shape": lambda d: crafted.bin_build_rewrite(d, "shape", (4096,)),
    "build-stride": lambda d: crafted.bin_build_rewrite(d, "stride", (2**40,)),
    "build-offset": lambda d: crafted.bin_build_rewrite(d, "offset", 2**40),
    "stride-zero-blowup": crafted.bin_stride_blowup,
    "billion-laughs-bin": crafted.billion_laughs,
    "billion-laughs-fairseq": lambda d: crafted.billion_laughs(d, "model.pt"),
    "billion-laughs-legacy": crafted.billion_laughs_legacy,
    "laughs-in-a-record": crafted.laughs_in_a_tensor_record,
    "deep-nesting": crafted.deep_nesting,
    "namespace-eq": crafted.namespace_eq_rewrite,
    "defaults": crafted.defaults_rewrite,
    "zip-bomb": crafted.zip_bomb,
    "storage-vs-entry": crafted.storage_larger_than_entry,
    "h5-external-storage": crafted.h5_external_storage,
    "h5-external-link": crafted.h5_external_link,
    "h5-soft-link": crafted.h5_soft_link,
    "h5-virtual": crafted.h5_virtual,
    "h5-unwritten": crafted.h5_unwritten_chunked,
    "bin-shared-storage": crafted.bin_shared_storage,
    "h5-hard-linked": crafted.h5_hard_linked,
    "h5-shard-hard-linked": crafted.h5_shard_hard_linked,
    "deep-index-safetensors": lambda d: crafted.deep_index(d, "model.safetensors.index.json"),
    "deep-index-bin": lambda d: crafted.deep_index(d, "pytorch_model.bin.index.json"),
    "deep-index-h5": lambda d: crafted.deep_index(d, "tf_model.h5.index.json"),
    "deep-index-msgpack": lambda d: crafted.deep_index(d, "flax_model.msgpack.index.json"),
}


def test_crafted_corpus_is_refused(tmp_path):
    """All crafted files of issue 17 in one process with 192 MiB to spare: each refused by the library, naming it."""
    paths = [build(tmp_path / name) for name, build in CORPUS.items()]
    results = crafted.load_isolated(paths, timeout=90, spare_bytes=192 * 2**20)
    for name, path, result in zip(CORPUS, paths, results):
        assert result["outcome"] == "error", f"{name}: loaded"
        named = path.parent if path.name.endswith(".index.json") else path  # a sharded checkpoint's error may name its shard
        assert result["library"] and str(named) in result["message"], f"{name}: {result}"
        assert "1000.0" not in json.dumps(result)  # nothing of the secret file
