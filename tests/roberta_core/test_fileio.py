"""roberta_core.fileio.atomic_dir: what its docstring promises, checked on a real file system."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from roberta_core import fileio
from roberta_core.fileio import atomic_dir


class Boom(RuntimeError):
    pass


def entries(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_new_target_appears_complete_with_mkdir_permissions(tmp_path):
    target = tmp_path / "a" / "b" / "ckpt"
    old_umask = os.umask(0o022)
    try:
        with atomic_dir(target) as staging:
            assert staging.parent == target.parent and not target.exists()
            (staging / "x.txt").write_text("x")
    finally:
        os.umask(old_umask)
    assert entries(target) == ["x.txt"] and (target / "x.txt").read_text() == "x"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert entries(target.parent) == ["ckpt"]  # no staging folder left


def test_existing_target_is_refused_without_overwrite(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old").write_text("old")
    ran = []
    with pytest.raises(FileExistsError, match="ckpt exists"):
        with atomic_dir(target):
            ran.append(1)
    assert not ran and entries(tmp_path) == ["ckpt"] and entries(target) == ["old"]


def test_a_target_installed_meanwhile_is_not_replaced(tmp_path):
    # Two writers without overwrite: the second to finish gets FileExistsError, the first's files stay.
    target = tmp_path / "ckpt"
    with pytest.raises(FileExistsError):
        with atomic_dir(target) as staging:
            (staging / "mine").write_text("second")
            with atomic_dir(target) as other:
                (other / "theirs").write_text("first")
    assert entries(target) == ["theirs"] and entries(tmp_path) == ["ckpt"]


def test_overwrite_swaps_and_failure_keeps_the_old(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_dir(target) as staging:
        (staging / "v1").write_text("1")
    with pytest.raises(Boom):
        with atomic_dir(target, overwrite=True) as staging:
            (staging / "v2").write_text("2")
            raise Boom
    assert entries(target) == ["v1"] and entries(tmp_path) == ["ckpt"]
    with atomic_dir(target, overwrite=True) as staging:
        (staging / "v2").write_text("2")
    assert entries(target) == ["v2"] and entries(tmp_path) == ["ckpt"]


def test_overwrite_refuses_files_and_symlinks(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for name in ("file", "link"):
        with pytest.raises(FileExistsError, match="not a directory"):
            with atomic_dir(tmp_path / name, overwrite=True):
                pass


def test_failure_removes_created_parents(tmp_path):
    with pytest.raises(Boom):
        with atomic_dir(tmp_path / "new" / "deeper" / "ckpt") as staging:
            (staging / "x").write_text("x")
            raise Boom
    assert entries(tmp_path) == []


def test_staging_of_a_killed_writer_is_removed_by_the_next_one(tmp_path):
    target = tmp_path / "ckpt"
    code = (
        "import os, sys\n"
        "from roberta_core.fileio import atomic_dir\n"
        f"with atomic_dir({str(target)!r}) as s:\n"
        "    open(os.path.join(s, 'half'), 'w').write('x')\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert out.returncode == -9
    leftovers = entries(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(".ckpt.") and leftovers[0].endswith(".staging")
    with atomic_dir(target) as staging:
        (staging / "whole").write_text("y")
    assert entries(tmp_path) == ["ckpt"] and entries(target) == ["whole"]


def test_atomic_path_gives_usual_permissions_even_if_the_writer_replaces_the_file(tmp_path):
    old_umask = os.umask(0o022)
    try:
        with fileio.atomic_path(tmp_path / "f") as tmp:
            tmp.unlink()
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)  # as safetensors' writer does
            os.close(fd)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "plain-rename"])
def test_both_install_paths_keep_the_promises(tmp_path, monkeypatch, renameat2):
    if not renameat2:  # a platform without renameat2: the two-rename fallback
        monkeypatch.setattr(fileio, "_libc_renameat2", lambda: None)
    target = tmp_path / "ckpt"
    with atomic_dir(target) as staging:
        (staging / "v1").write_text("1")
    with atomic_dir(target, overwrite=True) as staging:
        (staging / "v2").write_text("2")
    assert entries(target) == ["v2"] and entries(tmp_path) == ["ckpt"]
    with pytest.raises(FileExistsError):
        with atomic_dir(tmp_path / "other") as staging:
            (tmp_path / "other").mkdir()
            (tmp_path / "other" / "theirs").write_text("x")
    assert entries(tmp_path / "other") == ["theirs"] and entries(tmp_path) == ["ckpt", "other"]
