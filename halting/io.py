"""Atomic file writes: a reader of `path` sees the old file or the complete new one, never a part.

Every writer goes through `atomic_path`: a fresh temporary file in the target's folder (same
file system, so `os.replace` is atomic), given the permissions a plain `open(path, "w")` would
give (0o666 & ~umask; `mkstemp` alone makes 0600 files), its data and the folder entry synced
to disk, and removed on any exception (an existing target is then left untouched). A folder
written as a whole (a dataset) goes through `atomic_dir` on the same terms.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask sets it)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the file system allows."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems refuse to open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `path` for a writer that wants a file name (matplotlib,
    pandas, PdfPages); on a normal exit it replaces `path`, on an exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if fsync:
        fsync_dir(path.parent)


def _fsync_tree(root: Path) -> None:
    """Flush every file under `root`, then every folder's entries, deepest first."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            _fsync_file(Path(folder) / name)
        fsync_dir(folder)


@contextmanager
def atomic_dir(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a fresh hidden folder next to `path` to fill; on a normal exit its contents are
    synced and it is renamed to `path` (an existing `path` is moved aside first, then deleted),
    on an exception it is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp, old = path.parent / f".{path.name}.partial-{tag}", path.parent / f".{path.name}.old-{tag}"
    tmp.mkdir()
    try:
        yield tmp
        if fsync:
            _fsync_tree(tmp)
        if path.exists():
            path.rename(old)
            try:
                tmp.rename(path)
            except BaseException:
                old.rename(path)
                raise
        else:
            tmp.rename(path)
        if fsync:
            fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if old.exists():
        shutil.rmtree(old)


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[IO[Any]], None],
    mode: str = "wb",
    *,
    fsync: bool = True,
) -> None:
    """Call `write(handle)` on a temporary file opened with `mode` ("wb" or "w", UTF-8), then
    rename it over `path`."""
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, mode, encoding=encoding) as handle:
        write(handle)


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write(path, lambda handle: handle.write(text), mode="w", fsync=fsync)


def atomic_copy(
    src: str | os.PathLike, dst: str | os.PathLike, *, link: bool = False, fsync: bool = True
) -> None:
    """Make `dst` a complete copy of `src` atomically. With `link`, a hard link where the file
    system allows one (then `dst` shares `src`'s data and permissions), else a copy."""
    with atomic_path(dst, fsync=fsync) as tmp:
        if link:
            tmp.unlink()
            try:
                os.link(src, tmp)
                return
            except OSError:
                pass
        shutil.copyfile(src, tmp)
