"""Atomic file and directory writing shared by every writer in the library: readers of a target
see the old file (or folder) or the new one, never a part, and a failed write leaves nothing
behind."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_dir", "atomic_path", "atomic_write_text", "current_umask", "fsync_dir", "fsync_tree"]


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success fsync it and rename it onto `target`,
    on failure delete it. The file gets the permissions a plain `open` would give (0666 less the
    umask), whatever the code that filled it did."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes the file private (0600), and some writers (safetensors) replace the file
        # they are given with one of their own: set the usual permissions on what is there now.
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def current_umask() -> int:
    """The process umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(target: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def fsync_dir(directory: Path) -> None:
    """Persist a rename in `directory` (where the platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(directory: Path) -> None:
    """fsync every regular file under `directory`, then every folder (deepest first)."""
    folders = []
    for root, dirs, files in os.walk(directory):
        folders.append(root)
        for name in files:
            path = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
    for folder in reversed(folders):
        fsync_dir(Path(folder))


# ---------------------------------------------------------------------------- atomic directories

_STAGING_SUFFIX = ".staging"
# Linux renameat2(2) flags: install without replacing, and swap two directories in one step.
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """rename(src, dst) with renameat2 `flags`; False where the platform or file system lacks it
    (the caller then falls back to plain renames). Other failures raise OSError."""
    func = _libc_renameat2()
    if func is None:
        return False
    at_fdcwd = -100
    result = func(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), ctypes.c_uint(flags))
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


@functools.lru_cache(maxsize=None)
def _libc_renameat2():
    """libc's renameat2 (glibc >= 2.28), looked up once in the symbols the process already has."""
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):
        return None


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _remove_dead_staging(target: Path) -> None:
    """Delete staging folders of `target` left by processes of this host that no longer exist
    (a writer killed with SIGKILL cannot clean up after itself)."""
    prefix = f".{target.name}.{_host_tag()}."
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(_STAGING_SUFFIX)):
                continue
            pid = name[len(prefix):].split(".", 1)[0]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                pass  # alive (or not ours to signal): leave it


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory in a staging folder and move it to `target` in one step.

    Yields an empty staging folder beside `target` (same parent, so the same file system); the
    caller fills it. When the block ends without an exception, every file and folder in it is
    fsynced, it gets the permissions a plain `mkdir` would give (0777 less the umask), and it is
    renamed to `target`; the parent is fsynced. Readers of `target` see the old state or the
    finished new folder, never a half-written one.

    - `target` absent: it appears complete or not at all. Missing parent folders are created, and
      removed again if the write fails.
    - `target` exists and `overwrite` is False: `FileExistsError` at once, before the block runs.
      The install never replaces anything either: if another writer installed `target` while this
      one was building, this one raises `FileExistsError` and its folder is discarded (exactly one
      of two concurrent writers wins).
    - `target` exists and `overwrite` is True: it must be a real directory (not a symlink or a
      file: `FileExistsError`). The new folder is swapped in (atomically where the OS can exchange
      two names, Linux renameat2; elsewhere two renames, the old folder put back if the second
      fails) and the old folder is deleted only once the new one is in place.
    - Any exception in the block or during the install: the staging folder and everything in it
      is deleted, `target` is left as it was, the exception propagates.
    - Staging folders are named `.<target name>.<host>.<pid>.<random>.staging`; those left by a
      killed process of this host are deleted by the next `atomic_dir` on the same target.
    """
    target = Path(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise FileExistsError(f"{target} exists and is not a directory; refusing to replace it")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; refusing to replace it (overwrite=False)")
    created = []
    parent = target.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    try:
        for folder in reversed(created):
            folder.mkdir()
        _remove_dead_staging(target)
        staging = Path(tempfile.mkdtemp(
            prefix=f".{target.name}.{_host_tag()}.{os.getpid()}.", suffix=_STAGING_SUFFIX, dir=target.parent))
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield staging
        os.chmod(staging, 0o777 & ~current_umask())
        fsync_tree(staging)
        _install(staging, target, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise


def _install(staging: Path, target: Path, overwrite: bool) -> None:
    if not overwrite or not target.exists():
        if not _renameat2(staging, target, _RENAME_NOREPLACE):
            if target.exists():
                raise FileExistsError(f"{target} appeared while it was being written; refusing to replace it")
            os.rename(staging, target)  # replaces at most an empty folder created meanwhile
        fsync_dir(target.parent)
        return
    if target.is_symlink() or not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory; refusing to replace it")
    if _renameat2(staging, target, _RENAME_EXCHANGE):
        fsync_dir(target.parent)
        shutil.rmtree(staging, ignore_errors=True)  # now the old folder
        return
    # Not a staging name: if this process dies between the two renames, this is the only copy.
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".replaced", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()
