"""The bookkeeping of materialised previews (docs/design.md, "Preview (the time machine)"):
``.clawback/previews/index.json``, the marker inside each preview, and ``clawback preview
--cleanup``.

Each preview gets a random id, recorded first in the index (under the ``previews`` lock), with
what it writes (``preview/written.py``), then in the marker ``.clawback-preview.json`` inside it.
``cleanup`` touches a directory only when both agree: listed in the index *and* holding a marker
with that id, reached from ``/`` one component at a time without following a link
(``safefs.open_parent``). It then removes exactly the files the preview wrote that are still as
written, the marker, and the directories left empty (the directory itself only when clawback
created it); what the operator added or edited stays, reported with why. A temporary tree a
smoke run made and ran in (under ``.clawback/previews/``, removed when the run ends) goes as a
whole, by ``shutil.rmtree`` on a descriptor. Anything else is reported and left alone: a foreign
directory under ``.clawback/previews/``, one whose marker was replaced or removed, a path that
passes through a link now, a preview with no record of what it wrote. A preview a smoke run is
still working in (its process alive) is left for a later cleanup.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from tasks_lib.core import safefs
from tasks_lib.core.errors import Conflict
from tasks_lib.core.workspace import Workspace
from tasks_lib.preview import written
from tasks_lib.preview.written import DIR_FLAGS, READ_FLAGS
from tasks_lib.state.oplocks import previews_lock

MARKER = ".clawback-preview.json"
INDEX = "index.json"
NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
__all__ = ["DIR_FLAGS", "MARKER", "NEW_FLAGS", "READ_FLAGS", "cleanup", "put_marker", "record",
           "remove"]


def inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class Cleanup:
    removed: tuple[str, ...]
    left: tuple[tuple[str, str], ...]    # (path, why it was left alone)
    dry_run: bool = False


def previews_dir(ws: Workspace) -> Path:
    """``.clawback/previews``, a real directory (refused, exit 3, when it is a link)."""
    folder = ws.ensure_state_dir() / "previews"
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        folder.mkdir(exist_ok=True)
        st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise Conflict(f"{folder} is not a real directory (a link or a file)",
                       f"remove {folder} (previews are disposable), then retry")
    return folder


def _index_path(ws: Workspace) -> Path:
    return previews_dir(ws) / INDEX


def _load_index(ws: Workspace) -> list[dict]:
    try:
        doc = json.loads(safefs.read_state(_index_path(ws)).decode("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, Conflict) as exc:
        raise Conflict(f"{_index_path(ws)} cannot be read ({exc})",
                       "move it aside; previews it listed are then left for you to remove") from None
    items = doc.get("previews") if isinstance(doc, dict) else None
    return [i for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)
            and isinstance(i.get("path"), str)] if isinstance(items, list) else []


def _save_index(ws: Workspace, items: list[dict]) -> None:
    safefs.replace_file(_index_path(ws), (json.dumps({"previews": items}, indent=1,
                                                     ensure_ascii=False) + "\n").encode())


def record(ws: Workspace, item: dict, files: written.Files) -> None:
    """List preview ``item`` in the index, with ``files`` (rel -> mode, sha256) as what it
    writes: before anything is written, so a failure halfway can still be cleaned up."""
    with previews_lock(ws.state_dir):
        written.save(previews_dir(ws), item["id"], files)
        _save_index(ws, [*_load_index(ws), item])


def put_marker(top: int, item: dict) -> None:
    fd = os.open(MARKER, NEW_FLAGS, 0o600, dir_fd=top)
    try:
        os.write(fd, (json.dumps(item, ensure_ascii=False) + "\n").encode())
    finally:
        os.close(fd)


# -- cleanup -------------------------------------------------------------------------------
def _marker_id(top: int) -> str | None:
    try:
        mfd = os.open(MARKER, READ_FLAGS, dir_fd=top)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(mfd).st_mode):
            return None
        doc = json.loads(os.read(mfd, 1 << 16).decode("utf-8"))
        return doc.get("id") if isinstance(doc, dict) else None
    except ValueError:
        return None
    finally:
        os.close(mfd)


def _remove_one(ws: Workspace, item: dict, dry_run: bool) -> tuple[str | None, list[tuple[str, str]]]:
    """Remove what the preview ``item`` wrote: (None when it was removed as a preview, else why
    it was left alone; what was left in it, as (absolute path, why))."""
    path = Path(item["path"])
    if not path.is_absolute() or len(path.parts) < 2:
        return "not an absolute path", []
    try:
        with safefs.open_parent(path) as (pfd, name):
            return _remove_at(ws, item, path, pfd, name, dry_run)
    except FileNotFoundError:
        return "gone", []
    except safefs.Unsafe:
        return "its path passes through a symlink now", []
    except OSError as exc:
        return f"cannot be reached ({exc.strerror})", []


def _remove_at(ws: Workspace, item: dict, path: Path, pfd: int, name: str,
               dry_run: bool) -> tuple[str | None, list[tuple[str, str]]]:
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return "gone", []
    if not stat.S_ISDIR(st.st_mode):
        return "no longer a directory (a link or a file stands there)", []
    top = os.open(name, DIR_FLAGS, dir_fd=pfd)
    try:
        if _marker_id(top) != item["id"]:
            return f"no {MARKER} of this preview in it", []
        made = item.get("made", True)
        if made and item.get("purpose") == "smoke":  # clawback's own temporary tree, as a whole
            if not dry_run:
                shutil.rmtree(name, dir_fd=pfd)  # fd-based: never follows a link
            return None, []
        files = written.load(ws.state_dir / "previews", item["id"])
        if files is None:
            return ("no record of the files it wrote (made by an older clawback): remove what "
                    "is not yours by hand"), []
        left = [(f"{path}/{rel}", why) for rel, why in
                written.sweep(top, files, MARKER, dry_run=dry_run)]
    finally:
        os.close(top)
    if not made:
        left.append((str(path), "existed before the preview: kept"))
    elif left:
        left.append((str(path), "kept: it holds what the preview did not write (listed)"))
    elif not dry_run:
        try:
            os.rmdir(name, dir_fd=pfd)
        except OSError as exc:  # (something appeared meanwhile: not ours)
            left.append((str(path), f"kept: {exc.strerror}"))
    return None, left


def _busy(item: dict) -> bool:
    """A smoke run still working in this preview (its process is alive)."""
    if item.get("purpose") != "smoke" or not isinstance(item.get("pid"), int):
        return False
    try:
        os.kill(item["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return item["pid"] != os.getpid()


def cleanup(ws: Workspace, *, dry_run: bool = False, only: str | None = None,
            under_state: bool = False) -> Cleanup:
    """Remove the recorded previews (``only``: the one with that id; ``under_state``: only
    those under .clawback/previews/, as ``gc`` does) as the module docstring says."""
    removed: list[str] = []
    left: list[tuple[str, str]] = []
    if not (ws.state_dir / "previews").is_dir():  # (and no lock taken: it would make .clawback/)
        return Cleanup((), (), dry_run)
    base = ws.state_dir / "previews"
    with previews_lock(ws.state_dir):
        items = _load_index(ws) if (base / INDEX).exists() else []
        kept: list[dict] = []
        for item in items:
            chosen = (only is None or item["id"] == only) and not (
                under_state and not inside(Path(item["path"]), base.resolve()))
            if not chosen or (only is None and _busy(item)):
                kept.append(item)
                continue
            why, inside_left = _remove_one(ws, item, dry_run)
            left += inside_left
            if dry_run:
                kept.append(item)
                if why is None:
                    removed.append(item["path"])
                elif why != "gone":
                    left.append((item["path"], why))
                continue
            if why is None:
                removed.append(item["path"])
            elif why != "gone":
                left.append((item["path"], why))
                if why.startswith("cannot be reached"):
                    kept.append(item)  # try again next time
                    continue
            written.drop(base, item["id"])
        if not dry_run and kept != items:
            _save_index(ws, kept)
    if only is None:
        listed = {i["path"] for i in items}
        for child in sorted(base.iterdir()) if base.is_dir() else []:
            if child.name not in (INDEX, written.RECORDS) and str(child) not in listed:
                left.append((str(child), "not a preview clawback recorded"))
    return Cleanup(tuple(removed), tuple(left), dry_run)


def remove(ws: Workspace, preview_id: str) -> None:
    """Remove one preview this process made (a smoke run's, a failed materialisation)."""
    cleanup(ws, only=preview_id)
