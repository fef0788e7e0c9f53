"""The restricted unpickler shared by `pytorch_model.bin` (torch_bin) and fairseq `model.pt`
(roberta_core.fairseq): it rebuilds a torch.save pickle into plain containers and inert tensor
records (`TensorRef`: a storage, offset, shape and stride), never importing torch.

`unpickle` is the one entry point, and what it promises for any bytes at all:
- the opcodes are scanned first (`pickletools.genops`): a pickle naming a global outside the
  allowed tensor-rebuild functions (`UnsafePickleError`), or using an opcode torch.save never
  writes, is refused before a single object is built or called, and so is one of more than
  `MAX_PICKLE_OPS` opcodes or `MAX_PICKLE_VALUES` values built or memoised (a flood of cheap
  opcodes that would build millions of objects before the graph check below could see them);
- while unpickling, calls (REDUCE), instantiation (NEWOBJ) and attribute updates (BUILD) apply
  only to the allowed functions and to fresh instances of the allowed classes; a BUILD on a
  class, a function or a tensor record is refused before it acts (records are frozen anyway);
- the object graph is then walked once, counting each shared object once but sizing the tree as
  every later consumer sees it: more than `MAX_OBJECTS` objects (a "billion laughs" of shared
  lists), nesting deeper than `MAX_DEPTH`, or a cycle is refused;
- the pickle's own size is bounded (`MAX_PICKLE_BYTES`; callers check it before reading).
Tensor records are validated when built and again, against the bytes really read, when copied
(`check_view`)."""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import reprlib
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ._common import CheckpointFormatError, DTYPES as _DTYPES, UnsafePickleError

# torch's typed storage classes (pickled as `torch.FloatStorage`) -> element dtype. Tensors of
# the other dtypes (uint16/32/64, float8) are pickled with an untyped byte storage and the dtype
# (`torch.uint16`) through `_rebuild_tensor_v3`.
TORCH_STORAGES: dict[str, np.dtype] = {
    "FloatStorage": _DTYPES["float32"], "DoubleStorage": _DTYPES["float64"],
    "HalfStorage": _DTYPES["float16"], "BFloat16Storage": _DTYPES["bfloat16"],
    "LongStorage": _DTYPES["int64"], "IntStorage": _DTYPES["int32"], "ShortStorage": _DTYPES["int16"],
    "CharStorage": _DTYPES["int8"], "ByteStorage": _DTYPES["uint8"], "BoolStorage": _DTYPES["bool"],
    "ComplexFloatStorage": _DTYPES["complex64"], "ComplexDoubleStorage": _DTYPES["complex128"],
}
STORAGE_FOR_DTYPE = {dt.name: name for name, dt in TORCH_STORAGES.items()}


# Bounds on what a pickle may describe. A transformers state dict is a few hundred objects and a
# fairseq checkpoint with optimizer state a few ten thousand; these leave a wide margin.
# torch.save writes about 100 bytes, 32 opcodes and 27 values built or memoised per tensor: the
# data.pkl of a 7B model's state dict (about 300 tensors) is about 30 KB, roberta-large's with
# its Adam state (about 1,200 tensors) about 150 KB. 16 MiB, 2 million opcodes and 1 million
# values each allow over 35,000 tensors, ten times more than any single-file checkpoint holds,
# and bound the work to seconds: a pickle goes through a pure-Python scan and unpickler (one to
# three microseconds per opcode), and a flood of 1-byte opcodes (EMPTY_DICT) would otherwise
# build a 64-byte object per byte of the file before the graph check could count them.
MAX_PICKLE_BYTES = 16 * 2**20
MAX_PICKLE_OPS = 2_000_000
MAX_PICKLE_VALUES = 1_000_000
MAX_OBJECTS = 2_000_000
MAX_DEPTH = 100
# A view larger than its storage (stride 0, overlapping) is refused above this many bytes: torch's
# expanded tensors in real checkpoints are tiny (position_ids), a 4-byte storage viewed as 1 GiB is an attack.
MAX_OVERLAPPING_VIEW_BYTES = 2**20


class _Frozen:
    """Records a pickle may not change: attributes are set once, in __init__, by our own code."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} records are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} records are read-only")


class Storage(_Frozen):
    """A storage a pickle refers to by key: its bytes are `<prefix>/data/<key>` in the zip.
    An untyped storage has dtype None and `numel` bytes until a tensor gives it its dtype."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: np.dtype | None, numel: int):
        _set(self, key=key, dtype=dtype, numel=numel)


class TensorRef(_Frozen):
    """A tensor the pickle described: a strided view of a storage, read on demand."""

    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage: Storage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]):
        _set(self, storage=storage, offset=offset, shape=shape, stride=stride)


def _set(record: _Frozen, **values: Any) -> None:
    for name, value in values.items():
        object.__setattr__(record, name, value)


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise CheckpointFormatError(f"tensor {what} must be a tuple of non-negative ints, got {_short(value)}")
    if len(value) > 64:
        raise CheckpointFormatError(f"tensor {what} has {len(value)} dimensions (at most 64)")
    return tuple(value)


def check_view(offset: int, shape: tuple[int, ...], stride: tuple[int, ...], numel: int, itemsize: int) -> None:
    """Refuse a strided view that reads outside a storage of `numel` elements of `itemsize` bytes,
    has negative or mismatched strides, or overlaps itself into more than
    `MAX_OVERLAPPING_VIEW_BYTES` beyond the storage's own size. Raises CheckpointFormatError
    without the file name (the caller adds it)."""
    if type(offset) is not int or offset < 0:
        raise CheckpointFormatError(f"tensor offset must be a non-negative int, got {_short(offset)}")
    shape, stride = _int_tuple(shape, "size"), _int_tuple(stride, "stride")
    if len(shape) != len(stride):
        raise CheckpointFormatError(f"tensor size {shape} and stride {stride} differ in rank")
    count = 1
    for n in shape:
        count *= n
    if count == 0:
        return
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if last >= numel:
        raise CheckpointFormatError(
            f"tensor view (offset {offset}, size {shape}, stride {stride}) needs elements up to {last} "
            f"of a storage of {numel} elements"
        )
    if count > numel and count * itemsize > MAX_OVERLAPPING_VIEW_BYTES:
        raise CheckpointFormatError(
            f"tensor view (size {shape}, stride {stride}) is an overlapping view of {count * itemsize} bytes "
            f"over a storage of {numel * itemsize} bytes (at most {MAX_OVERLAPPING_VIEW_BYTES} bytes allowed)"
        )


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> TensorRef:
    """Stands in for torch._utils._rebuild_tensor(_v2): records the view, reads nothing yet.
    The trailing requires_grad / backward hooks / metadata do not matter for weights."""
    if not isinstance(storage, Storage):
        raise CheckpointFormatError(f"malformed tensor record: storage {_short(storage)}")
    if storage.dtype is None:
        raise CheckpointFormatError(f"storage {storage.key} is untyped bytes, but the tensor record gives no dtype")
    shape, strides = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    check_view(storage_offset, shape, strides, storage.numel, storage.dtype.itemsize)
    return TensorRef(storage, storage_offset, shape, strides)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, *_ignored) -> TensorRef:
    """Stands in for torch._utils._rebuild_tensor_v3: a view of an untyped byte storage with the
    dtype given separately (offset and strides count elements of that dtype)."""
    if not (isinstance(dtype, tuple) and len(dtype) == 2 and dtype[0] is _DTYPE_MARK):
        raise CheckpointFormatError(f"malformed tensor record: dtype {_short(dtype)}")
    dtype = dtype[1]
    if isinstance(storage, Storage) and storage.dtype is None:  # first use types the bytes
        if storage.numel % dtype.itemsize:
            raise CheckpointFormatError(f"storage {storage.key} of {storage.numel} bytes does not hold whole {dtype} elements")
        _set(storage, dtype=dtype, numel=storage.numel // dtype.itemsize)
    elif isinstance(storage, Storage) and storage.dtype != dtype:
        raise CheckpointFormatError(f"storage {storage.key} is used as {storage.dtype} and {dtype}")
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    """Stands in for torch._utils._rebuild_parameter(_with_state): a Parameter is its data."""
    if not isinstance(data, TensorRef):
        raise CheckpointFormatError(f"malformed parameter record: {_short(data)}")
    return data


# find_class returns (mark, dtype) for `torch.<X>Storage` and for `torch.<dtype>`; the rebuild
# functions check the mark, so a pickle cannot pass anything else in their place.
_STORAGE_MARK = object()
_DTYPE_MARK = object()

# (module, name) -> what the unpickler binds it to. Nothing here can run code of the file's choosing.
_TORCH_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): (_STORAGE_MARK, dtype) for name, dtype in TORCH_STORAGES.items()},
    ("torch.storage", "UntypedStorage"): (_STORAGE_MARK, None),
    **{("torch", name): (_DTYPE_MARK, dtype) for name, dtype in _DTYPES.items()},
}


# ---------------------------------------------------------------------------- the opcode scan

# Opcodes torch.save (protocol 2) and plain pickles of containers never need: instantiation by
# name (INST, OBJ), the copyreg extension registry, out-of-band buffers.
_FORBIDDEN_OPS = {"INST", "OBJ", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER", "NEWOBJ_EX"}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_NO_PUSH_OPS = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}
# Opcodes that build no new value and add no memo entry (they fetch, fill or drop what exists);
# every other opcode counts against MAX_PICKLE_VALUES.
_NOT_BUILDING_OPS = {"GET", "BINGET", "LONG_BINGET", "SETITEM", "SETITEMS", "APPEND", "APPENDS", "ADDITEMS",
                     "BUILD", "POP", "POP_MARK", "STOP", "PROTO", "FRAME"}


def pickle_ops(source: Any, path: Path) -> Iterator[tuple[Any, Any, int | None]]:
    """`pickletools.genops(source)`, refused (CheckpointFormatError naming `path`) as soon as it
    passes `MAX_PICKLE_OPS` opcodes or `MAX_PICKLE_VALUES` values built or memoised: the scan of
    a flood stops within seconds, having built nothing. Decoding errors propagate as genops
    raises them."""
    max_ops, max_values = MAX_PICKLE_OPS, MAX_PICKLE_VALUES  # read per call (tests lower them)
    ops = values = 0
    for op, arg, pos in pickletools.genops(source):
        ops += 1
        if op.name not in _NOT_BUILDING_OPS:
            values += 1
        if ops > max_ops or values > max_values:
            what = f"{max_ops} opcodes" if ops > max_ops else f"{max_values} values built or memoised"
            raise CheckpointFormatError(
                f"{path}: the pickle has more than {what} (torch.save writes about 32 opcodes and 27 values "
                "per tensor); refusing it before unpickling"
            )
        yield op, arg, pos


def _unsafe(path: Path, module: str, name: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"{path}: the pickle references {module}.{name}, which is not a tensor-rebuild function; "
        "refusing to load it (only tensors, storages and OrderedDict are allowed)"
    )


def scan(data: bytes, path: Path, allowed: Mapping[tuple[str, str], Any]) -> None:
    """Refuse `data` before anything is unpickled if it names a global outside `allowed`, uses an
    opcode outside what torch.save writes, or hides a STACK_GLOBAL's name where a scan cannot
    read it, or has more opcodes or values than `pickle_ops` allows. Raises UnsafePickleError /
    CheckpointFormatError naming `path`."""
    memo: dict[int, Any] = {}
    recent: list[Any] = []  # the last two values pushed, where they are strings
    try:
        for op, arg, _pos in pickle_ops(data, path):
            name = op.name
            if name in _FORBIDDEN_OPS:
                raise UnsafePickleError(f"{path}: the pickle uses the {name} opcode, which torch.save never writes; refusing it")
            if name == "GLOBAL":
                module, _, qualname = arg.partition(" ")
                if (module, qualname) not in allowed:
                    raise _unsafe(path, module, qualname)
                pushed = None
            elif name == "STACK_GLOBAL":
                if len(recent) < 2 or not all(isinstance(v, str) for v in recent[-2:]):
                    raise UnsafePickleError(f"{path}: the pickle computes the name of a global; refusing it")
                if (recent[-2], recent[-1]) not in allowed:
                    raise _unsafe(path, recent[-2], recent[-1])
                del recent[-2:]
                pushed = None
            elif name in _STRING_OPS:
                pushed = arg
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = recent[-1] if recent else None
                continue
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
                continue
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                pushed = memo.get(arg)
            elif name in _NO_PUSH_OPS:
                continue
            else:
                pushed = None
            recent = (recent + [pushed])[-2:]
    except CheckpointFormatError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError) as e:
        raise CheckpointFormatError(f"{path}: corrupt pickle: {e}") from None


# ---------------------------------------------------------------------------- the unpickler


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles a torch.save pickle into plain containers and `TensorRef`s. Any global outside
    `_TORCH_GLOBALS` (+ `extra_globals`) raises `UnsafePickleError` before it could be called.

    The pure-Python unpickler (pickle._Unpickler), so that the opcodes that call, instantiate or
    mutate can be checked before they act: REDUCE calls only the allowed functions, NEWOBJ
    instantiates only the allowed classes, BUILD updates only instances of allowed classes with a
    dict, and the container opcodes only apply to containers. Use `unpickle`, which scans first."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, path: Path, extra_globals: Mapping[tuple[str, str], Any]):
        super().__init__(file)
        self._path = path
        self._globals = {**_TORCH_GLOBALS, **extra_globals}
        self._classes = tuple({v for v in self._globals.values() if isinstance(v, type)})
        self._functions = {id(v) for v in self._globals.values() if callable(v)}
        self._storages: dict[str, Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise _unsafe(self._path, module, name) from None

    def persistent_load(self, pid: Any) -> Storage:
        # ('storage', <storage class>, key, location, numel), as torch.save writes it
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], tuple) and pid[1][:1] == (_STORAGE_MARK,)
                and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0):
            raise CheckpointFormatError(f"{self._path}: unexpected persistent id in the pickle: {_short(pid)}")
        dtype, key, numel = pid[1][1], pid[2], pid[4]
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = Storage(key, dtype, numel)
        elif dtype is not None and storage.dtype != dtype:  # an untyped one is checked by _rebuild_tensor_v3
            raise CheckpointFormatError(f"{self._path}: storage {key} is used with two dtypes")
        elif storage.numel != (numel if dtype is not None or storage.dtype is None else numel // storage.dtype.itemsize):
            raise CheckpointFormatError(f"{self._path}: storage {key} is given two sizes")
        return storage

    def _refuse(self, what: str) -> None:
        raise UnsafePickleError(f"{self._path}: the pickle {what}; refusing it (only tensor records and containers are built)")

    def _guard_reduce(self) -> None:
        func = self.stack[-2] if len(self.stack) >= 2 else None
        if id(func) not in self._functions:
            self._refuse(f"calls a {type(func).__name__} that is not an allowed tensor-rebuild function")
        RestrictedUnpickler._base[pickle.REDUCE[0]](self)

    def _guard_newobj(self) -> None:
        cls = self.stack[-2] if len(self.stack) >= 2 else None
        if not (isinstance(cls, type) and cls in self._classes):
            self._refuse(f"instantiates {_short(cls)}")
        RestrictedUnpickler._base[pickle.NEWOBJ[0]](self)

    def _guard_build(self) -> None:
        inst, state = (self.stack[-2], self.stack[-1]) if len(self.stack) >= 2 else (None, None)
        if isinstance(inst, type) or type(inst) not in self._classes:
            self._refuse(f"sets attributes of {_short(inst)}")
        if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
            self._refuse(f"sets attributes from a {type(state).__name__}, not a dict of names")
        RestrictedUnpickler._base[pickle.BUILD[0]](self)

    def _guard_container(op: bytes, kinds: tuple[type, ...], mark: bool):
        def guard(self) -> None:
            if mark:  # MARK moved the stack below the mark to metastack; the container is its top
                below, depth = (self.metastack[-1] if self.metastack else []), 1
            else:  # [..., container, value] or [..., container, key, value]
                below, depth = self.stack, (3 if op == pickle.SETITEM else 2)
            target = below[-depth] if len(below) >= depth else None
            if not isinstance(target, kinds):
                self._refuse(f"adds items to a {type(target).__name__}")
            RestrictedUnpickler._base[op[0]](self)
        return guard

    _base = pickle._Unpickler.dispatch
    dispatch[pickle.REDUCE[0]] = _guard_reduce
    dispatch[pickle.NEWOBJ[0]] = _guard_newobj
    dispatch[pickle.BUILD[0]] = _guard_build
    dispatch[pickle.SETITEM[0]] = _guard_container(pickle.SETITEM, (dict,), mark=False)
    dispatch[pickle.SETITEMS[0]] = _guard_container(pickle.SETITEMS, (dict,), mark=True)
    dispatch[pickle.APPEND[0]] = _guard_container(pickle.APPEND, (list,), mark=False)
    dispatch[pickle.APPENDS[0]] = _guard_container(pickle.APPENDS, (list,), mark=True)
    dispatch[pickle.ADDITEMS[0]] = _guard_container(pickle.ADDITEMS, (set,), mark=True)
    for _op in _FORBIDDEN_OPS:
        dispatch.pop(getattr(pickle, _op)[0], None)
    del _op, _guard_container


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def _short(obj: Any) -> str:
    """A bounded description of an object from the pickle for an error message: a plain repr of a
    hostile object (a 'billion laughs' list, a 100 MB string) could take forever."""
    if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")):
        text = obj.__qualname__
    else:
        text = _REPR.repr(obj)
    return text if len(text) < 120 else text[:117] + "..."


def unpickle(data: bytes, path: Path, extra_globals: Mapping[tuple[str, str], Any] | None = None,
             unpickler: type[RestrictedUnpickler] = RestrictedUnpickler) -> tuple[Any, dict[str, Storage]]:
    """The object `data` (one pickle) describes, with tensors as `TensorRef`s, and the storages
    it refers to by key; see the module docstring for what is refused. Errors name `path`."""
    if len(data) > MAX_PICKLE_BYTES:
        raise CheckpointFormatError(f"{path}: the pickle is {len(data)} bytes; at most {MAX_PICKLE_BYTES} are read")
    extra_globals = extra_globals or {}
    scan(data, path, {**_TORCH_GLOBALS, **extra_globals})
    reader = unpickler(io.BytesIO(data), path, extra_globals)
    try:
        obj = reader.load()
    except CheckpointFormatError as e:
        raise e if str(path) in str(e) else CheckpointFormatError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, KeyError, ValueError,
            UnicodeDecodeError, OverflowError, RecursionError, MemoryError) as e:
        raise CheckpointFormatError(f"{path}: malformed pickle: {type(e).__name__}: {e}") from None
    check_graph(obj, path)
    return obj, reader._storages


# ---------------------------------------------------------------------------- the object graph


def _children(obj: Any) -> list | None:
    """What a walk of the unpickled object descends into; None for a leaf."""
    if isinstance(obj, dict):
        items = [*obj.keys(), *obj.values()]
        extra = getattr(obj, "__dict__", None)  # OrderedDict's _metadata
        return items + list(extra.values()) if extra else items
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, (TensorRef, Storage, str, bytes, bytearray, int, float, complex, bool, type(None), type)):
        return None
    if hasattr(obj, "__dict__") and not callable(obj):
        return list(vars(obj).values())
    return None


def check_graph(obj: Any, path: Path, max_objects: int = MAX_OBJECTS, max_depth: int = MAX_DEPTH) -> None:
    """Refuse an object graph that, walked as a tree (shared objects counted each time they are
    reached), holds more than `max_objects` objects, nests deeper than `max_depth`, or contains a
    cycle. Each distinct object is visited once, so the check itself is linear in the pickle."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, int, list | None]] = [(obj, 0, None)]
    while stack:
        node, depth, children = stack.pop()
        key = id(node)
        if children is not None:  # all children done
            on_path.discard(key)
            total = 1 + sum(size.get(id(c), 1) for c in children)
            if total > max_objects:
                raise CheckpointFormatError(
                    f"{path}: the pickle describes more than {max_objects} objects when its shared parts are "
                    "expanded (a 'billion laughs' structure?); refusing it"
                )
            size[key] = total
            continue
        if key in size:
            continue
        kids = _children(node)
        if kids is None:
            continue
        if key in on_path:
            raise CheckpointFormatError(f"{path}: the pickle nests too deeply or refers to itself (a cycle)")
        if depth >= max_depth:
            raise CheckpointFormatError(f"{path}: the pickle nests too deeply (more than {max_depth} levels)")
        on_path.add(key)
        stack.append((node, depth, kids))
        stack.extend((c, depth + 1, None) for c in kids)


def _reach_counts(obj: Any) -> dict[int, tuple[Any, int]]:
    """id -> (object, how many times a walk of the tree from `obj` reaches it), for every distinct
    object: each is visited once, without recursion, and a shared part's count is the sum of its
    parents' (linear in the pickle however often the tree repeats a part; `check_graph` has
    refused cycles). A recursive walk of the tree instead costs its expanded size times its depth."""
    order: list[tuple[int, list]] = []  # containers in post-order: each after everything below it
    seen: dict[int, Any] = {}
    stack: list[tuple[Any, list | None]] = [(obj, None)]
    while stack:
        node, kids = stack.pop()
        if kids is not None:  # all its children are done
            order.append((id(node), kids))
            continue
        if id(node) in seen:  # reached again: expanded once only
            continue
        seen[id(node)] = node
        kids = _children(node)
        if kids is None:
            continue
        stack.append((node, kids))
        stack.extend((child, None) for child in kids if id(child) not in seen)
    counts = {id(obj): 1}
    for key, kids in reversed(order):  # a container's count is final before its children get it
        for child in kids:
            counts[id(child)] = counts.get(id(child), 0) + counts[key]
    return {key: (seen[key], n) for key, n in counts.items()}


def tensor_refs(obj: Any) -> Iterator[TensorRef]:
    """Every tensor record in `obj`, as often as a walk of the tree meets it (bounded by
    check_graph), found in time linear in the pickle (`_reach_counts`)."""
    for node, times in _reach_counts(obj).values():
        if isinstance(node, TensorRef):
            for _ in range(times):
                yield node


def storage_uses(obj: Any) -> collections.Counter:
    """storage key -> how many tensor records of `obj` a walk of the tree meets that view it (how
    many times each storage will be materialised), in time linear in the pickle."""
    uses: collections.Counter = collections.Counter()
    for node, times in _reach_counts(obj).values():
        if isinstance(node, TensorRef):
            uses[node.storage.key] += times
    return uses


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))
