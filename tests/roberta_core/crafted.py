"""Hand-assembled hostile checkpoint files (issue 17), shared by test_hostile_files.py and the fuzz
suite's regression corpus. Each builder writes its file under a folder and returns the path; the
pickles are assembled opcode by opcode here, independently of the library's writer."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

P = pickle  # opcode constants


# ---------------------------------------------------------------------------- a tiny pickle assembler


def s(text: str) -> bytes:
    data = text.encode()
    return P.BINUNICODE + struct.pack("<I", len(data)) + data


def i(n: int) -> bytes:
    if 0 <= n < 256:
        return P.BININT1 + bytes([n])
    if -(2**31) <= n < 2**31:
        return P.BININT + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return P.LONG1 + bytes([len(data)]) + data


def ints(values) -> bytes:
    return P.MARK + b"".join(i(v) for v in values) + P.TUPLE


def glob(module: str, name: str) -> bytes:
    return P.GLOBAL + f"{module}\n{name}\n".encode()


def tensor(key: str, numel: int, shape, stride, offset: int = 0, storage: str = "FloatStorage") -> bytes:
    """`_rebuild_tensor_v2(('storage', torch.<storage>, key, 'cpu', numel), offset, shape, stride, False, OrderedDict())`."""
    return (glob("torch._utils", "_rebuild_tensor_v2") + P.MARK
            + P.MARK + s("storage") + glob("torch", storage) + s(key) + s("cpu") + i(numel) + P.TUPLE + P.BINPERSID
            + i(offset) + ints(shape) + ints(stride) + P.NEWFALSE
            + glob("collections", "OrderedDict") + P.EMPTY_TUPLE + P.REDUCE + P.TUPLE + P.REDUCE)


def state_dict(items: list[tuple[str, bytes]]) -> bytes:
    """A protocol-2 pickle of {name: <object ops>}."""
    body = b"".join(s(name) + ops for name, ops in items)
    return P.PROTO + b"\x02" + P.EMPTY_DICT + P.MARK + body + P.SETITEMS + P.STOP


def torch_zip(path: Path, pkl: bytes, storages: dict[str, bytes] | None = None, *, deflate: bool = False) -> Path:
    """A torch.save-style zip: `archive/data.pkl`, `archive/byteorder`, `archive/data/<key>`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", data, compress_type=kind)
        zf.writestr("archive/version", "3\n")
    return path


FOUR_FLOATS = np.arange(4, dtype="<f4").tobytes()


# ---------------------------------------------------------------------------- the crafted files


def bin_build_rewrite(folder: Path, field: str = "shape", value=(4096,)) -> Path:
    """Item 1: a valid 4-element tensor record, then a BUILD that rewrites its `field` (shape: read
    4096 elements from a 16-byte storage; stride (2**40,): far outside the process)."""
    rewrite = P.NONE + P.EMPTY_DICT + s(field) + (i(value) if isinstance(value, int) else ints(value)) \
        + P.SETITEM + P.TUPLE2 + P.BUILD
    ops = tensor("0", 4, (4,), (1,)) + rewrite
    return torch_zip(folder / "pytorch_model.bin", state_dict([("w", ops)]), {"0": FOUR_FLOATS})


def bin_stride_blowup(folder: Path) -> Path:
    """Item 1 / medium: a 4-byte storage viewed with stride 0 as 2**28 floats (1 GiB)."""
    ops = tensor("0", 1, (2**28,), (0,))
    return torch_zip(folder / "pytorch_model.bin", state_dict([("w", ops)]), {"0": FOUR_FLOATS[:4]})


def bin_huge_stride(folder: Path) -> Path:
    """Item 1: a stride far past the storage (a segfault where the view is not checked)."""
    ops = tensor("0", 4, (2, 2), (2**40, 1))
    return torch_zip(folder / "pytorch_model.bin", state_dict([("w", ops)]), {"0": FOUR_FLOATS})


def billion_laughs(folder: Path, name: str = "pytorch_model.bin") -> Path:
    """Item 2: L0 = [], L(k) = [L(k-1), L(k-1)] through the memo: 60 levels, 557 bytes of pickle,
    2**60 leaves for a walk that does not notice the sharing."""
    return torch_zip(folder / name, _laughs_pickle(60))


def legacy_file(path: Path, obj_pickle: bytes) -> Path:
    """A pre-1.6 torch.save stream: magic, protocol, system info, the object, the (empty) storage list."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    path.write_bytes(head + obj_pickle + pickle.dumps([], protocol=2))
    return path


def billion_laughs_legacy(folder: Path) -> Path:
    return legacy_file(folder / "model.pt", _laughs_pickle(60))


def _laughs_ops(levels: int) -> bytes:
    """Opcodes leaving L(levels) on the stack (memo slots 0..levels)."""
    ops = P.EMPTY_LIST + P.BINPUT + bytes([0])
    for k in range(1, levels + 1):
        ops += P.POP + P.EMPTY_LIST + P.MARK + P.BINGET + bytes([k - 1]) + P.BINGET + bytes([k - 1]) + P.APPENDS
        ops += P.BINPUT + bytes([k])
    return ops


def _laughs_pickle(levels: int) -> bytes:
    return P.PROTO + b"\x02" + P.EMPTY_DICT + s("model") + _laughs_ops(levels) + P.SETITEM + P.STOP


def laughs_in_a_tensor_record(folder: Path) -> Path:
    """Item 2 / 7: a billion-laughs list passed as a tensor record's storage: the error message
    must not print it."""
    record = glob("torch._utils", "_rebuild_tensor_v2") + P.MARK + _laughs_ops(60) + i(0) + P.EMPTY_TUPLE \
        + P.EMPTY_TUPLE + P.TUPLE + P.REDUCE
    return torch_zip(folder / "pytorch_model.bin", state_dict([("w", record)]))


def deep_nesting(folder: Path, depth: int = 100_000) -> Path:
    """Item 7: lists nested 100k deep (a RecursionError for any recursive walk)."""
    ops = P.EMPTY_LIST * depth + P.APPEND * (depth - 1)
    pkl = P.PROTO + b"\x02" + P.EMPTY_DICT + s("w") + ops + P.SETITEM + P.STOP
    return torch_zip(folder / "pytorch_model.bin", pkl)


def namespace_eq_rewrite(folder: Path) -> Path:
    """Item 5: BUILD on the argparse.Namespace class (`Namespace.__eq__ = None`), then a forbidden global."""
    pkl = (P.PROTO + b"\x02" + glob("argparse", "Namespace") + P.NONE + P.EMPTY_DICT + s("__eq__") + P.NONE
           + P.SETITEM + P.TUPLE2 + P.BUILD + P.POP + glob("os", "system") + s("true") + P.TUPLE1 + P.REDUCE + P.STOP)
    return torch_zip(folder / "model.pt", pkl)


def defaults_rewrite(folder: Path) -> Path:
    """Item 5: BUILD on the reader's own `_rebuild_parameter` replacing its defaults, then a forbidden global."""
    pkl = (P.PROTO + b"\x02" + glob("torch._utils", "_rebuild_parameter") + P.NONE + P.EMPTY_DICT
           + s("__defaults__") + ints((1, 2, 3)) + P.SETITEM + P.TUPLE2 + P.BUILD + P.POP
           + glob("os", "system") + s("true") + P.TUPLE1 + P.REDUCE + P.STOP)
    return torch_zip(folder / "pytorch_model.bin", pkl)


def zip_bomb(folder: Path, nbytes: int = 2**26) -> Path:
    """Item 6: a deflated storage entry of 64 MiB of zeros (about 64 KB in the file)."""
    ops = tensor("0", nbytes // 4, (nbytes // 4,), (1,))
    return torch_zip(folder / "pytorch_model.bin", state_dict([("w", ops)]), {"0": bytes(nbytes)}, deflate=True)


def storage_larger_than_entry(folder: Path) -> Path:
    """Item 6: the pickle declares a 2 GiB storage whose zip entry holds 16 bytes."""
    ops = tensor("0", 2**29, (4,), (1,))
    return torch_zip(folder / "pytorch_model.bin", state_dict([("w", ops)]), {"0": FOUR_FLOATS})


def h5_file(folder: Path, build) -> Path:
    """A minimal transformers-layout tf_model.h5 holding one weight, the word embeddings, made by
    `build(group, name)`; returns its path."""
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tf_model.h5"
    name = "tf_roberta_model/roberta/embeddings/word_embeddings/weight:0"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"roberta"]
        group = f.create_group("roberta")
        group.attrs["weight_names"] = [name.encode()]
        build(f, group, name)
    return path


SECRET = np.arange(16, dtype="<f4") + 1000.0  # the bytes of a file outside the checkpoint


def h5_external_storage(folder: Path) -> Path:
    secret = folder / "secret.bin"
    folder.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(SECRET.tobytes())
    return h5_file(folder, lambda f, g, n: g.create_dataset(n, shape=(4, 4), dtype="<f4", external=[(str(secret), 0, 64)]))


def h5_external_link(folder: Path) -> Path:
    import h5py

    other = folder / "other.h5"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(other, "w") as f:
        f.create_dataset("w", data=SECRET.reshape(4, 4))
    return h5_file(folder, lambda f, g, n: g.__setitem__(n, h5py.ExternalLink(str(other), "/w")))


def h5_soft_link(folder: Path) -> Path:
    import h5py

    def build(f, g, n):
        f.create_dataset("elsewhere", data=SECRET.reshape(4, 4))
        g[n] = h5py.SoftLink("/elsewhere")

    return h5_file(folder, build)


def h5_virtual(folder: Path) -> Path:
    import h5py

    other = folder / "other.h5"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(other, "w") as f:
        f.create_dataset("w", data=SECRET.reshape(4, 4))

    def build(f, g, n):
        layout = h5py.VirtualLayout(shape=(4, 4), dtype="<f4")
        layout[:] = h5py.VirtualSource(str(other), "w", shape=(4, 4))
        g.create_virtual_dataset(n, layout)

    return h5_file(folder, build)


def h5_unwritten_chunked(folder: Path, rows: int = 2**18) -> Path:
    """Medium: a chunked dataset declared (2**18, 256) float32 = 256 MiB, never written: a few KB on disk."""
    return h5_file(folder, lambda f, g, n: g.create_dataset(n, shape=(rows, 256), dtype="<f4", chunks=(64, 256)))


def bin_shared_storage(folder: Path, keys: int = 20, numel: int = 2**20) -> Path:
    """Read amplification: `keys` encoder weights over one storage of `numel` floats (4 MiB): each
    key would be materialised on its own, `keys` times the file's bytes in memory."""
    items = [(f"roberta.encoder.layer.{k}.attention.self.query.weight", tensor("0", numel, (1024, numel // 1024), (numel // 1024, 1)))
             for k in range(keys)]
    return torch_zip(folder / "pytorch_model.bin", state_dict(items), {"0": bytes(4 * numel)})


def bin_tied(folder: Path) -> Path:
    """What v4's torch.save writes for tied weights: the word embeddings and the LM decoder as two
    keys over one storage (and the two LM biases over another)."""
    rows, cols = 8, 4
    emb = tensor("0", rows * cols, (rows, cols), (cols, 1))
    bias = tensor("1", rows, (rows,), (1,))
    items = [("roberta.embeddings.word_embeddings.weight", emb), ("lm_head.decoder.weight", emb),
             ("lm_head.bias", bias), ("lm_head.decoder.bias", bias)]
    data = {"0": np.arange(rows * cols, dtype="<f4").tobytes(), "1": np.ones(rows, "<f4").tobytes()}
    return torch_zip(folder / "pytorch_model.bin", state_dict(items), data)


H5_NAME = "roberta/embeddings/word_embeddings/weight:0"


def h5_hard_linked(folder: Path, names: int = 20) -> Path:
    """Read amplification: one 4 MiB dataset hard-linked under `names` layer weights of one file."""
    def build(f, g, first):
        g.create_dataset(first, data=np.zeros((1024, 1024), "<f4"))
        listed = [first]
        for k in range(names):
            name = f"tf_roberta_model/roberta/encoder/layer_._{k}/attention/self/query/kernel:0"
            g[name] = g[first]
            listed.append(name)
        g.attrs["weight_names"] = [n.encode() for n in listed]

    return h5_file(folder, build)


def h5_shard(folder: Path, build, index_names: list[str]) -> Path:
    """A v4 sharded TF checkpoint of one shard made by `build(f)`, whose index puts `index_names`
    (unscoped) there; returns the index's path."""
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    shard = "tf_model-00001-of-00001.h5"
    with h5py.File(folder / shard, "w") as f:
        build(f)
    index = folder / "tf_model.h5.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": {f"tf_roberta_model/{n}": shard for n in index_names}}))
    return index


def h5_shard_listing_a_name_many_times(folder: Path, times: int = 3000) -> Path:
    """Read amplification: a shard whose `layer_names` lists its one 4 MiB dataset `times` times
    (in chunks, as Keras splits a long list), plus names the index does not put there."""
    def build(f):
        f.create_dataset(H5_NAME, data=np.zeros((1024, 1024), "<f4"))
        f.create_dataset("roberta/pooler/dense/bias:0", data=np.zeros(4, "<f4"))
        names = np.asarray([H5_NAME.encode()] * times + [b"roberta/pooler/dense/bias:0", b"not/a/weight:0"])
        for k, chunk in enumerate(np.array_split(names, 4)):
            f.attrs[f"layer_names{k}"] = chunk

    return h5_shard(folder, build, [H5_NAME])


def h5_shard_hard_linked(folder: Path) -> Path:
    """A shard holding one dataset under two names, both in the index."""
    other = "roberta/embeddings/position_embeddings/embeddings:0"

    def build(f):
        f.create_dataset(H5_NAME, data=np.zeros((64, 4), "<f4"))
        f[other] = f[H5_NAME]
        f.attrs["layer_names"] = [H5_NAME.encode(), other.encode()]

    return h5_shard(folder, build, [H5_NAME, other])


def bin_many_small_bombs(folder: Path, entries: int = 64, nbytes: int = 2**20) -> Path:
    """Review 2, item 1: `entries` deflated storages of `nbytes` zeros each (about 1 KB apiece in the
    file): each within the per-entry limit (32x + 1 MiB), 64 MiB of arrays from about 86 KB."""
    items = [(f"roberta.encoder.layer.{k}.attention.self.query.weight", tensor(str(k), nbytes // 4, (nbytes // 4,), (1,)))
             for k in range(entries)]
    return torch_zip(folder / "pytorch_model.bin", state_dict(items), {str(k): bytes(nbytes) for k in range(entries)},
                     deflate=True)


def h5_many_small_bombs(folder: Path, datasets: int = 64, rows: int = 1024) -> Path:
    """Review 2, item 1: `datasets` gzip-compressed (rows, 256) float32 datasets of zeros (1 MiB
    each, a few KB in the file): each within the per-dataset limit, 64 MiB from a small file."""
    def build(f, g, first):
        listed = []
        for k in range(datasets):
            name = f"tf_roberta_model/roberta/encoder/layer_._{k}/attention/self/query/kernel:0"
            g.create_dataset(name, data=np.zeros((rows, 256), "<f4"), chunks=(rows, 256), compression="gzip")
            listed.append(name)
        g.attrs["weight_names"] = [n.encode() for n in listed]

    return h5_file(folder, build)


def h5_aliased_data(folder: Path, names: int = 8, shape=(256, 256)) -> Path:
    """Review 2, item 3: `names` contiguous datasets with headers of their own, whose data
    addresses are all rewritten in the file to the first one's (one block read `names` times)."""
    import h5py

    def build(f, g, first):
        listed = []
        for k in range(names):
            name = f"tf_roberta_model/roberta/encoder/layer_._{k}/attention/self/query/kernel:0"
            g.create_dataset(name, data=np.full(shape, k, "<f4"))
            listed.append(name)
        g.attrs["weight_names"] = [n.encode() for n in listed]

    path = h5_file(folder, build)
    with h5py.File(path, "r") as f:
        group = f["roberta"]
        offsets = [group[n].id.get_offset() for n in group.attrs["weight_names"]]
    data = bytearray(path.read_bytes())
    target = offsets[0].to_bytes(8, "little")
    for offset in offsets[1:]:  # the layout message stores the data address as an 8-byte little-endian field
        at = data.find(offset.to_bytes(8, "little"))
        assert at >= 0 and data.count(offset.to_bytes(8, "little")) == 1
        data[at:at + 8] = target
    path.write_bytes(bytes(data))
    return path


def linked_shards(folder: Path, link=None) -> Path:
    """Review 2, item 2: a two-shard h5 checkpoint whose second shard is the first one (a symlink
    by default; `link=os.link` for a hard link), each shard holding both names. Returns the index."""
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    other = "roberta/embeddings/position_embeddings/embeddings:0"
    first, second = "tf_model-00001-of-00002.h5", "tf_model-00002-of-00002.h5"
    with h5py.File(folder / first, "w") as f:
        f.create_dataset(H5_NAME, data=np.zeros((64, 4), "<f4"))
        f.create_dataset(other, data=np.ones((64, 4), "<f4"))
        f.attrs["layer_names"] = [H5_NAME.encode(), other.encode()]
    (link or (lambda src, dst: Path(dst).symlink_to(Path(src).name)))(folder / first, folder / second)
    index = folder / "tf_model.h5.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": {f"tf_roberta_model/{H5_NAME}": first,
                                                               f"tf_roberta_model/{other}": second}}))
    return index


def deep_index(folder: Path, name: str, depth: int = 200_000) -> Path:
    """A shard index whose JSON nests `depth` lists (Python's json recurses once per level)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text('{"weight_map": ' + "[" * depth + "]" * depth + "}")
    return path


# ---------------------------------------------------------------------------- loading in a sandbox

_SANDBOX = r"""
import json, os, resource, sys, warnings
from roberta_core import checkpoint, fairseq
import numpy as np
def vm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
spare = int(sys.argv[2])
limit = vm_bytes() + spare
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
results = []
for path in json.loads(sys.argv[1]):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.endswith(".pt"):
                args, state = fairseq.read_checkpoint(path)
            elif path.endswith(".json") and not path.endswith(".index.json"):
                from roberta_core.config import RobertaConfig
                RobertaConfig.from_json_file(path)
                state = {}
            else:
                state = checkpoint.load_state_dict(path)
        results.append({"outcome": "loaded", "state": {k: [str(v.dtype), list(v.shape), v.tobytes().hex()[:4096]] for k, v in state.items()}})
    except Exception as e:
        results.append({"outcome": "error", "type": type(e).__name__, "library": isinstance(e, ValueError), "message": str(e)})
    except MemoryError as e:
        results.append({"outcome": "error", "type": "MemoryError", "library": False, "message": str(e)})
print(json.dumps(results))
"""


def load_isolated(paths, *, timeout: float = 60, spare_bytes: int = 768 * 2**20) -> list[dict]:
    """Load each file (`fairseq.read_checkpoint` for *.pt, else `checkpoint.load_state_dict`) in one
    fresh Python process whose address space may grow by at most `spare_bytes` after the imports.
    Returns one dict per path: {"outcome": "loaded", "state": ...} or {"outcome": "error", "type",
    "library" (a ValueError subclass), "message"}; a crash, hang or limit is an AssertionError here."""
    import json
    import subprocess
    import sys

    from tests.helpers import REPO

    paths = [str(p) for p in paths]
    try:
        out = subprocess.run([sys.executable, "-c", _SANDBOX, json.dumps(paths), str(spare_bytes)],
                             capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"loading {paths} did not finish in {timeout} s") from None
    assert out.returncode == 0, f"loader process ended with {out.returncode}: {out.stderr[-2000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])
