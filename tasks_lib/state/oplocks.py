"""Locks under .clawback/locks/: one per task (refuse at once) and one for the workspace's git
and registry writes (wait briefly). A held lock is a Conflict (exit 3) naming the holder."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from tasks_lib.core import ids, safefs
from tasks_lib.core import time as clock
from tasks_lib.core.errors import Conflict


@contextmanager
def _held(state_dir: Path, name: str, what: str, timeout: float, purpose: str) -> Iterator[None]:
    lock_dir = state_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    info = lock_dir / f"{name}.owner"
    lock = FileLock(str(safefs.own_file(lock_dir / f"{name}.lock")))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        holder = "another clawback process"
        try:
            data = json.loads(safefs.read_state(info).decode("utf-8"))
            holder = f"pid {data['pid']} on {data['host']} ({data['purpose']}, since {data['since']})"
        except (OSError, ValueError, KeyError, TypeError, Conflict):
            pass
        raise Conflict(f"{what} is locked by {holder}",
                       "wait for it to finish, then run the command again") from None
    try:
        safefs.replace_file(info, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                              "purpose": purpose, "since": clock.format()}).encode())
        yield
    finally:
        info.unlink(missing_ok=True)
        lock.release()


@contextmanager
def task_lock(state_dir: Path, task_id: str, purpose: str) -> Iterator[None]:
    ids.task_id(task_id)  # a flow parameter from the UI reaches here unchecked: never a path
    with _held(state_dir, f"task-{task_id}", f"task {task_id}", 0, purpose):
        yield


@contextmanager
def workspace_lock(state_dir: Path, purpose: str, timeout: float = 60) -> Iterator[None]:
    with _held(state_dir, "workspace", "the workspace", timeout, purpose):
        yield


@contextmanager
def previews_lock(state_dir: Path, timeout: float = 30) -> Iterator[None]:
    """The index of materialised previews (tasks_lib/preview/trees.py): held only while it is
    read and rewritten."""
    with _held(state_dir, "previews", "the index of previews", timeout, "preview"):
        yield
