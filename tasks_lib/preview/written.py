"""What a materialised preview wrote, and removing exactly that (docs/design.md, "Preview (the
time machine)", ``--cleanup``).

Before a preview's first file is written, the list of what it will write (each path relative to
the tree's top with the manifest's mode and sha256) is saved under ``.clawback/previews/written/
<id>.json``: tool state, not the marker inside the tree, which whoever works in the tree can
edit. ``--cleanup`` then unlinks a file or link only when it is recorded there and still has the
recorded kind and digest, the marker, and the directories the recorded paths lie in once they
are empty. Anything else (a file the operator added or edited, a directory of their own, a mount
point) is left and reported with why; nothing is followed through a link, every step is relative
to a descriptor of the tree opened without following one.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from tasks_lib.core import safefs
from tasks_lib.core.errors import Conflict
from tasks_lib.formats.manifest import sha256_hex

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
RECORDS = "written"                      # .clawback/previews/written/<id>.json

Files = dict[str, tuple[str, str]]       # rel -> (mode, "sha256:...")


def _record_path(base: Path, preview_id: str) -> Path:
    return base / RECORDS / f"{preview_id}.json"


def save(base: Path, preview_id: str, files: Files) -> None:
    """Record ``files`` as what preview ``preview_id`` writes (``base``: .clawback/previews).
    ASCII JSON: a name that is not UTF-8 keeps its ``\\udcXX`` escapes exactly."""
    doc = {"id": preview_id, "files": {rel: list(v) for rel, v in sorted(files.items())}}
    safefs.replace_file(_record_path(base, preview_id), (json.dumps(doc) + "\n").encode())


def load(base: Path, preview_id: str) -> Files | None:
    """The recorded files of ``preview_id``; None when there is no readable record."""
    try:
        doc = json.loads(safefs.read_state(_record_path(base, preview_id)).decode("ascii"))
    except (OSError, ValueError, Conflict):
        return None
    files = doc.get("files") if isinstance(doc, dict) and doc.get("id") == preview_id else None
    if not isinstance(files, dict):
        return None
    return {rel: (v[0], v[1]) for rel, v in files.items()
            if isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)}


def drop(base: Path, preview_id: str) -> None:
    try:
        os.unlink(_record_path(base, preview_id))
    except FileNotFoundError:
        pass


def sweep(top: int, files: Files, marker: str, *, dry_run: bool) -> list[tuple[str, str]]:
    """Remove from the tree ``top`` what ``files`` records as still written, then the marker;
    (path relative to the top, why) of everything left. The top itself is the caller's."""
    dirs = {rel.rsplit("/", 1)[0] + "/" for rel in files if "/" in rel}
    dirs |= {d[:i + 1] for d in list(dirs) for i, c in enumerate(d) if c == "/"}
    left: list[tuple[str, str]] = []
    _sweep_dir(top, "", files, dirs, left, dry_run)
    if not dry_run:
        try:
            os.unlink(marker, dir_fd=top)
        except FileNotFoundError:
            pass
    return [(rel, why) for rel, why in left if rel != marker]


def _sweep_dir(fd: int, prefix: str, files: Files, dirs: set[str],
               left: list[tuple[str, str]], dry_run: bool) -> None:
    device = os.fstat(fd).st_dev
    for name in sorted(os.listdir(fd)):
        rel = prefix + name
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode) and rel + "/" in dirs:
            if st.st_dev != device:
                left.append((rel + "/", "a mount point: never entered"))
                continue
            sub = os.open(name, DIR_FLAGS, dir_fd=fd)
            try:
                _sweep_dir(sub, rel + "/", files, dirs, left, dry_run)
            finally:
                os.close(sub)
            if not dry_run:
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError:
                    pass  # not empty: what is left in it was reported
        elif rel in files:
            if _as_recorded(fd, name, st, files[rel]):
                if not dry_run:
                    os.unlink(name, dir_fd=fd)
            else:
                left.append((rel, "changed since the preview wrote it"))
        else:
            left.append((rel + "/" if stat.S_ISDIR(st.st_mode) else rel,
                         "not written by the preview"))


def _as_recorded(fd: int, name: str, st: os.stat_result, recorded: tuple[str, str]) -> bool:
    mode, digest = recorded
    if stat.S_ISLNK(st.st_mode):
        return mode == "120000" and sha256_hex(os.fsencode(os.readlink(name, dir_fd=fd))) == digest
    if not stat.S_ISREG(st.st_mode) or mode != ("100755" if st.st_mode & 0o100 else "100644"):
        return False
    ffd = os.open(name, READ_FLAGS, dir_fd=fd)
    try:
        if not stat.S_ISREG(os.fstat(ffd).st_mode):
            return False
        h = hashlib.sha256()
        while chunk := os.read(ffd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(ffd)
    return "sha256:" + h.hexdigest() == digest
