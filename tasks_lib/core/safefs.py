"""Reading and writing the workspace's files without ever following a symlink on the way.

Every path is relative to the workspace root and walked one component at a time from a
descriptor of the root, each directory opened with ``O_NOFOLLOW | O_DIRECTORY``: a component that
is a symlink (to another task, outside the workspace, a chain of links), not a directory, or a
mount point (a bind mount can show any directory there) stops the walk (:class:`Unsafe`), before
anything is read or written. The last component is handled
as what it is: a symlink is read as a link (``readlink``) and replaced as a link, never written
through; a file is replaced by an atomic rename of a sibling temp file (fsynced) created with
``O_EXCL | O_NOFOLLOW``. Special files (FIFOs, devices, sockets) are never opened for reading
without ``O_NONBLOCK`` and are reported as ``other``.

This is the one place that writes the task files a restore, an undo, a snapshot's version bump
or a pidfile puts in the working tree (docs/design.md, "Symlinks"), and clawback's one atomic
write: :func:`write_file` (a task file, reached by the no-symlink walk), :func:`replace_file`
(tool state, the registry, a hook, a wheel) and :func:`replace_link` all end in the same temp
file, fsync, rename and directory fsync (``_put_bytes``/``_put_link``). One module because of
that: the walk, the reads and the writes share their descriptors and
their temp-file rules, and split apart they would drift.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from tasks_lib.core.errors import Conflict

Kind = Literal["file", "link", "dir", "mount", "other", "missing", "behind-link", "behind-mount"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Unsafe(Conflict):
    """A path's parent component is a symlink or not a directory: nothing was written (exit 3)."""

    def __init__(self, path: str, where: str, why: str) -> None:
        super().__init__(
            f"{where} is {why}: clawback never writes through it ({path} would land elsewhere, "
            "maybe in another task or outside the workspace)",
            f"if {where} should be a directory of the task, replace the link by a real directory "
            "(or remove it) and retry; the versioned files are restored into real directories only")
        self.path = path
        self.where = where
        self.why = why


@dataclass(frozen=True)
class Entry:
    kind: Kind
    data: bytes | None = None       # a file's bytes, a link's target
    executable: bool = False
    size: int = 0


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"not a relative path inside the workspace: {rel!r}")
    return parts


def _why(fd: int, name: str) -> str:
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return "not a directory"
    return "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"


@contextmanager
def _parent(root: Path, rel: str, *, create: bool,
            cross_mounts: bool = False) -> Iterator[tuple[int, str]]:
    """(descriptor of ``rel``'s parent directory, its last component). Unsafe when a component
    on the way is a symlink or not a directory (or a mount point, unless ``cross_mounts``);
    FileNotFoundError when one is missing and ``create`` is false."""
    parts = _parts(rel)
    fd = os.open(root, _DIR_FLAGS)
    device = os.fstat(fd).st_dev
    try:
        for i, name in enumerate(parts[:-1]):
            try:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile: opened (and checked) below
                try:
                    nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise Unsafe(rel, "/".join(parts[:i + 1]), _why(fd, name)) from None
                    raise
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Unsafe(rel, "/".join(parts[:i + 1]), _why(fd, name)) from None
                raise
            os.close(fd)
            fd = nfd
            if not cross_mounts and os.fstat(fd).st_dev != device:  # a bind mount of anything
                raise Unsafe(rel, "/".join(parts[:i + 1]), "a mount point")
        yield fd, parts[-1]
    finally:
        os.close(fd)


def entry(root: Path, rel: str, *, read: bool = True) -> Entry:
    """What ``rel`` is, never following a symlink: ``behind-link`` when a parent component is a
    symlink or not a directory, ``missing`` when it does not exist. ``read``: a file's bytes and
    a link's target are included."""
    try:
        with _parent(root, rel, create=False) as (fd, name):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return Entry("missing")
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(name, dir_fd=fd) if read else None
                return Entry("link", os.fsencode(target) if target is not None else None,
                             size=st.st_size)
            if stat.S_ISDIR(st.st_mode):
                return Entry("dir" if st.st_dev == os.fstat(fd).st_dev else "mount")
            if not stat.S_ISREG(st.st_mode) or st.st_dev != os.fstat(fd).st_dev:
                return Entry("other")  # special, or a file mounted over this name
            executable = bool(st.st_mode & 0o111)
            if not read:
                return Entry("file", None, executable, st.st_size)
            return Entry("file", _read_file(fd, name), executable, st.st_size)
    except Unsafe as exc:
        return Entry("behind-mount" if exc.why == "a mount point" else "behind-link")
    except (FileNotFoundError, NotADirectoryError):
        return Entry("missing")


def _read_file(fd: int, name: str) -> bytes:
    ffd = os.open(name, _READ_FLAGS, dir_fd=fd)
    try:
        if not stat.S_ISREG(os.fstat(ffd).st_mode):  # swapped for something else meanwhile
            raise OSError(errno.EINVAL, "not a regular file", name)
        chunks = []
        while True:
            chunk = os.read(ffd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(ffd)


@contextmanager
def open_parent(path: Path) -> Iterator[tuple[int, str]]:
    """(descriptor of the absolute ``path``'s parent, its last component), reached from ``/``
    one component at a time like the walk above (Unsafe at a symlink or a non-directory,
    FileNotFoundError at a missing one), across mount points: for a directory outside the
    workspace the operator names (a preview's DIR may be on any disk), to be created and opened
    relative to the descriptor, so a parent swapped for a link meanwhile is never written through."""
    absolute = Path(os.path.abspath(path))
    with _parent(Path("/"), str(absolute.relative_to("/")), create=False,
                 cross_mounts=True) as found:
        yield found


def read_bytes(root: Path, rel: str) -> bytes | None:
    """A regular file's bytes; None when it is missing, a link, a directory or special."""
    found = entry(root, rel)
    return found.data if found.kind == "file" else None


def mount_points_under(folder: Path) -> list[str]:
    """The mount points at or inside ``folder`` (absolute paths), from the kernel's mount
    table: a bind mount of a directory on the same file system has the same device number, so
    only this table tells it apart. Empty where the table cannot be read."""
    try:
        with open("/proc/self/mountinfo", "rb") as fh:
            table = fh.read()
    except OSError:
        return []
    base = os.path.realpath(folder)
    found = []
    for line in table.splitlines():
        fields = line.split(b" ")
        if len(fields) > 4:
            point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), fields[4])
            path = os.fsdecode(point)
            if Path(path).is_relative_to(base):
                found.append(path)
    return found


def mount_over(root: Path, location: str) -> str | None:
    """The mount point (repo-relative) at ``location`` or above it inside ``root``, if any: the
    directory there may show any other directory (another task's)."""
    real = os.path.realpath(root)
    for mount in mount_points_under(root):
        rel = os.path.relpath(mount, real)
        if rel != "." and (location == rel or location.startswith(rel + "/")):
            return rel
    return None


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes | None:
    """The bytes (at most ``limit``) of ``path`` if it is a regular file, else None: opened
    without blocking, so a FIFO, a device or a socket there never hangs the reader. For files
    outside the task trees (a pidfile, a config read only to learn names); it follows links."""
    try:
        fd = os.open(path, _READ_FLAGS & ~os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], limit
        while left is None or left > 0:
            chunk = os.read(fd, 1 << 20 if left is None else min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            if left is not None:
                left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


# -- tool state and top-level files ---------------------------------------------------------
# (``.clawback/...``, the registry, a git hook: written by full path, never through a link that
# stands at the path or a hard link to another file, and under ``.clawback/`` never into the rest
# of the workspace)

def _state_parent_ok(path: Path) -> None:
    parts = Path(os.path.abspath(path)).parts
    if ".clawback" not in parts:
        return
    at = len(parts) - 1 - parts[::-1].index(".clawback")
    root = Path(*parts[:at])
    real_root, real_state = os.path.realpath(root), os.path.realpath(root / ".clawback")
    real = os.path.realpath(Path(*parts[:-1]))
    if Path(real).is_relative_to(real_root) and not Path(real).is_relative_to(real_state):
        raise Conflict(f"{Path(*parts[:-1])} leads into the workspace ({real}): clawback's "
                       "state would land among the versioned files",
                       "remove the link (or point it outside the workspace), then retry")


def open_state(path: Path) -> BinaryIO:
    """A tool-state file (``.clawback/...``) opened for reading: never through a symlink standing
    at it, never blocking on a FIFO or a device planted there (both Conflict, with what to do);
    FileNotFoundError when it is missing."""
    path = Path(path)
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Conflict(f"{path} is a symlink: clawback never reads its state through one",
                           f"remove {path}, then retry") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Conflict(f"{path} is not a regular file (a FIFO, a device or a socket)",
                       f"remove {path}, then retry")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_state(path: Path) -> bytes:
    """The bytes of a tool-state file, as :func:`open_state` opens it."""
    with open_state(path) as fh:
        return fh.read()


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` by the atomic rename of a fresh sibling (a unique name, created with
    ``O_EXCL | O_NOFOLLOW``, fsynced, then the directory fsynced): a symlink or a hard link
    standing at ``path`` is replaced, never written through. The one atomic write for files
    outside the task trees (tool state, the registry, a hook, a wheel); :func:`write_file` is
    the same write reached by the no-symlink walk."""
    path = Path(path)
    _state_parent_ok(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _directory(path.parent) as fd:
        _put_bytes(fd, path.name, data, mode)


def replace_link(path: Path, target: str) -> None:
    """Make ``path`` a symlink to ``target``, atomically (as :func:`replace_file` writes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _directory(path.parent) as fd:
        _put_link(fd, path.name, os.fsencode(target))


@contextmanager
def _directory(folder: Path) -> Iterator[int]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def own_file(path: Path) -> Path:
    """``path`` as a file clawback may open the usual way (a lock file: filelock opens it with
    O_TRUNC): a symlink, a hard link to another file or a special file standing there is
    removed first (tool state; whatever it pointed at is left alone)."""
    path = Path(path)
    _state_parent_ok(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        if stat.S_ISDIR(st.st_mode):
            raise Conflict(f"{path} is a directory", "remove it, then retry")
        os.unlink(path)
    return path


def open_append(path: Path, mode: int = 0o644) -> int:
    """A descriptor appending to ``path`` (created if missing): never through a symlink, and
    refused (Conflict) when it is not a regular file of its own (a hard link to another file)."""
    path = Path(path)
    _state_parent_ok(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Conflict(f"{path} is a symlink: clawback never appends through one",
                           f"remove {path}, then retry") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EISDIR):
            raise Conflict(f"{path} is not a regular file (a FIFO, a device or a directory)",
                           f"remove {path}, then retry") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        raise Conflict(f"{path} is not a file of its own (a hard link or a special file)",
                       f"remove {path}, then retry")
    return fd


def write_file(root: Path, rel: str, data: bytes, *, executable: bool | None = False) -> None:
    """Put ``data`` at ``rel`` atomically (mode 0755 or 0644; ``executable=None`` keeps the mode
    of the file replaced), creating real parent directories as needed. A symlink at ``rel`` is
    replaced, never written through; a directory there is a Conflict."""
    with _parent(root, rel, create=True) as (fd, name):
        mode = _mode_to_keep(fd, name) if executable is None else (0o755 if executable else 0o644)
        _put_bytes(fd, name, data, mode, rel)


def write_link(root: Path, rel: str, target: bytes) -> None:
    """Make ``rel`` a symlink to ``target`` (bytes, as git stores it), atomically."""
    with _parent(root, rel, create=True) as (fd, name):
        _put_link(fd, name, target, rel)


def remove(root: Path, rel: str) -> bool:
    """Remove the file or symlink ``rel`` (never what a link points at, never a directory).
    False when there was nothing to remove (missing, or behind a link: not this path)."""
    try:
        with _parent(root, rel, create=False) as (fd, name):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if stat.S_ISDIR(st.st_mode):
                return False
            os.unlink(name, dir_fd=fd)
            return True
    except (Unsafe, FileNotFoundError, NotADirectoryError):
        return False


def prune_empty_dirs(root: Path, rel: str, stop: str) -> None:
    """Remove the now empty directories above ``rel`` up to (not including) ``stop``."""
    parts = _parts(rel)[:-1]
    floor = len(_parts(stop)) if stop else 0
    while len(parts) > floor:
        try:
            with _parent(root, "/".join(parts), create=False) as (fd, name):
                os.rmdir(name, dir_fd=fd)  # only succeeds when empty, and never on a link
        except (OSError, Unsafe):
            return
        parts.pop()


def check_dir(root: Path, rel: str) -> Kind:
    """What ``rel`` is as a directory on the way from the root: ``dir`` only when every
    component, itself included, is a real directory."""
    found = entry(root, rel, read=False)
    return found.kind


def _fill(fd: int, data: bytes, mode: int) -> None:
    """Write all of ``data`` to a fresh temp file's descriptor, give it ``mode``, fsync, close."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _mode_to_keep(fd: int, name: str) -> int:
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return 0o644
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else 0o644


def _temp_name(name: str) -> str:
    """A sibling temp name that fits the 255-byte limit whatever ``name``'s length in bytes."""
    suffix = f".clawback-{os.getpid()}-{os.urandom(4).hex()}"
    raw = os.fsencode(name)
    if len(raw) + len(suffix) + 1 <= 255:
        return f".{name}{suffix}"
    return f".{hashlib.sha256(raw).hexdigest()[:16]}{suffix}"


def _put_bytes(fd: int, name: str, data: bytes, mode: int, rel: str | None = None) -> None:
    """The atomic write, in the directory ``fd``: a fresh temp sibling (``O_EXCL |
    O_NOFOLLOW``) filled and fsynced, renamed over ``name``, the directory fsynced. ``rel``
    (a task file's path): a directory standing at ``name`` is a Conflict saying so."""
    tmp = _temp_name(name)
    tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o600, dir_fd=fd)
    try:
        _fill(tfd, data, mode)
        _commit(fd, tmp, name, rel)
    except BaseException:
        _unlink_quietly(fd, tmp)
        raise


def _put_link(fd: int, name: str, target: bytes, rel: str | None = None) -> None:
    """:func:`_put_bytes` for a symlink to ``target``."""
    tmp = _temp_name(name)
    os.symlink(os.fsdecode(target), tmp, dir_fd=fd)
    try:
        _commit(fd, tmp, name, rel)
    except BaseException:
        _unlink_quietly(fd, tmp)
        raise


def _commit(fd: int, tmp: str, name: str, rel: str | None) -> None:
    if rel is not None:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise Conflict(f"{rel} is a directory where the version has a file",
                           "move the directory aside (it holds files that are not versioned, "
                           "such as runtime state), then retry")
    os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    try:
        os.fsync(fd)
    except OSError:
        pass  # best effort: not every filesystem syncs a directory


def _unlink_quietly(fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=fd)
    except OSError:
        pass
