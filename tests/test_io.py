"""halting.io: atomic writes leave the complete new file or the untouched old one, no temporaries,
and the permissions a plain open() would give."""

from __future__ import annotations

import os
import stat

import pytest

from halting import io


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def restore_umask():
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def test_atomic_write_binary_and_text(tmp_path):
    io.atomic_write(tmp_path / "a.bin", lambda h: h.write(b"\x00\x01"))
    io.atomic_write(tmp_path / "b.txt", lambda h: h.write("päth\n"), mode="w")
    io.atomic_write_text(tmp_path / "c.txt", "one\ntwo\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "päth\n".encode()
    assert (tmp_path / "c.txt").read_text() == "one\ntwo\n"
    assert _names(tmp_path) == ["a.bin", "b.txt", "c.txt"]


def test_atomic_write_replaces_and_creates_missing_folders(tmp_path):
    target = tmp_path / "sub" / "deeper" / "x.txt"
    io.atomic_write_text(target, "old")
    io.atomic_write_text(target, "new", fsync=False)
    assert target.read_text() == "new" and _names(target.parent) == ["x.txt"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")

    def fail(handle):
        handle.write("new, partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        io.atomic_write(target, fail, mode="w")
    assert target.read_text() == "old" and _names(tmp_path) == ["x.json"]


def test_a_failing_writer_creates_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_path(tmp_path / "x.pdf") as tmp:
            tmp.write_bytes(b"%PDF half")
            raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_atomic_path_is_a_fresh_file_next_to_the_target(tmp_path):
    with io.atomic_path(tmp_path / "x.pdf") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".x.pdf.") and tmp.exists()
        tmp.write_bytes(b"%PDF whole")
    assert (tmp_path / "x.pdf").read_bytes() == b"%PDF whole" and _names(tmp_path) == ["x.pdf"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_permissions_follow_the_umask(tmp_path, restore_umask, mask):
    os.umask(mask)
    io.atomic_write_text(tmp_path / "a.txt", "a")
    with io.atomic_path(tmp_path / "b.pdf") as tmp:
        tmp.write_bytes(b"b")
    io.atomic_copy(tmp_path / "a.txt", tmp_path / "c.txt")
    plain = tmp_path / "plain.txt"
    plain.write_text("p")
    assert _mode(plain) == 0o666 & ~mask
    for name in ("a.txt", "b.pdf", "c.txt"):
        assert _mode(tmp_path / name) == 0o666 & ~mask, name


@pytest.mark.parametrize("link", [False, True])
def test_atomic_copy(tmp_path, link):
    src = tmp_path / "src.ckpt"
    src.write_bytes(b"weights")
    dst = tmp_path / "out" / "dst.ckpt"
    dst.parent.mkdir()
    dst.write_bytes(b"stale")
    io.atomic_copy(src, dst, link=link)
    assert dst.read_bytes() == b"weights" and _names(dst.parent) == ["dst.ckpt"]
    assert os.path.samefile(src, dst) == link


def test_atomic_copy_falls_back_to_a_copy_where_links_are_refused(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError("links not supported")

    monkeypatch.setattr(os, "link", refuse)
    (tmp_path / "src").write_bytes(b"data")
    io.atomic_copy(tmp_path / "src", tmp_path / "dst", link=True)
    assert (tmp_path / "dst").read_bytes() == b"data" and not os.path.samefile(
        tmp_path / "src", tmp_path / "dst"
    )
    assert _names(tmp_path) == ["dst", "src"]


def test_a_missing_source_leaves_the_old_copy(tmp_path):
    (tmp_path / "dst").write_text("old")
    with pytest.raises(FileNotFoundError):
        io.atomic_copy(tmp_path / "missing", tmp_path / "dst")
    assert (tmp_path / "dst").read_text() == "old" and _names(tmp_path) == ["dst"]


def test_atomic_dir_creates_then_replaces_a_folder_synced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd)
    )
    target = tmp_path / "data"
    with io.atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".data.") and _names(tmp) == []
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.npy").write_bytes(b"a")
        (tmp / "b.json").write_text("b")
    assert _names(tmp_path) == ["data"] and _names(target) == ["b.json", "sub"]
    assert (target / "sub" / "a.npy").read_bytes() == b"a"
    assert {os.path.basename(p) for p in synced} >= {
        "a.npy",
        "b.json",
        "sub",
        tmp.name,
        tmp_path.name,
    }
    with io.atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("new")
    assert _names(tmp_path) == ["data"] and _names(target) == ["c.txt"]  # the old folder is gone


@pytest.mark.parametrize("existing", [False, True])
def test_a_failing_atomic_dir_leaves_no_half_written_target(tmp_path, existing):
    target = tmp_path / "data"
    if existing:
        target.mkdir()
        (target / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert _names(tmp_path) == (["data"] if existing else [])
    if existing:
        assert _names(target) == ["old.txt"] and (target / "old.txt").read_text() == "old"


def test_atomic_dir_restores_the_old_folder_when_the_swap_fails(tmp_path, monkeypatch):
    target = tmp_path / "data"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_rename = type(target).rename

    def refuse_the_new(self, dst):
        if self.name.startswith(".data.partial-"):
            raise OSError("rename refused")
        return real_rename(self, dst)

    monkeypatch.setattr(type(target), "rename", refuse_the_new)
    with pytest.raises(OSError, match="rename refused"):
        with io.atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
    assert _names(tmp_path) == ["data"] and _names(target) == ["old.txt"]
