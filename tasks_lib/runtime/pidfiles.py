"""A task process named by a pidfile: is it the one we started (the create time guards against
PID reuse), and ending it with its process group (TERM → wait → KILL).

A pidfile holds JSON ``{"pid", "create_time", ...}`` (ours) or a bare pid (the operator's); a pid
whose create time differs by more than a second is somebody else's and is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from tasks_lib.core.errors import Conflict, OperationFailed
from tasks_lib.core.safefs import read_regular

CREATE_TIME_TOLERANCE_S = 1.0
KILL_WAIT_S = 5.0
POLL_S = 0.05


@dataclass(frozen=True)
class RunState:
    running: bool | None   # None: not managed by clawback (run.type none) or unknown
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class StopResult:
    was_running: bool
    pid: int | None
    how: str          # "term" | "kill" | "systemd" | "command" | "not-running" | "unmanaged"
    detail: str = ""


def read_pidfile(path: Path) -> tuple[int, float | None] | None:
    data = read_regular(path, 1 << 16)  # a FIFO or device named as pidfile never hangs
    if data is None:
        return None
    raw = data.decode("utf-8", "replace").strip()
    try:
        data = json.loads(raw)
        if isinstance(data, dict):
            return int(data["pid"]), float(data["create_time"])
        return int(data), None
    except (ValueError, KeyError, TypeError):
        return None


def owned(path: Path) -> tuple[int | None, psutil.Process | None, str]:
    """(pid, the live process the pidfile names or None, why not). A plain-pid pidfile has no
    create time; then the process must not have started after the pidfile was written."""
    rec = read_pidfile(path)
    if rec is None:
        return None, None, "no pidfile"
    pid, created = rec
    if pid <= 1:
        return pid, None, f"pidfile names pid {pid}; ignored"
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return pid, None, "process gone"
    try:
        started = proc.create_time()
        if created is None:
            created = path.stat().st_mtime
            reused = started > created + CREATE_TIME_TOLERANCE_S
        else:
            reused = abs(started - created) > CREATE_TIME_TOLERANCE_S
        if reused:
            return pid, None, f"pid {pid} now belongs to another process (not signalled)"
        if not is_alive(proc):
            return pid, None, "exited (zombie)"
        return pid, proc, ""
    except psutil.NoSuchProcess:
        return pid, None, "process gone"
    except psutil.AccessDenied:  # cannot verify; stopping it will fail loudly, not silently
        return pid, proc, "running (other user)"
    except OSError:
        return pid, None, "pidfile vanished"


def is_alive(proc: psutil.Process) -> bool:
    """Running and not a zombie; a zombie child of ours is reaped on the way."""
    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return proc.is_running()
        if proc.ppid() == os.getpid():
            os.waitpid(proc.pid, os.WNOHANG)
    except (psutil.NoSuchProcess, ChildProcessError):
        pass
    except psutil.AccessDenied:
        return True
    return False


Guard = Callable[[psutil.Process], "str | None"]  # why the process is not this task's


def pidfile_state(path: Path, guard: Guard | None = None) -> RunState:
    pid, proc, why = owned(path)
    if proc is not None and guard is not None:
        foreign = guard(proc)
        if foreign:
            return RunState(None, pid, f"pid {pid} {foreign}: not this task's")
    return RunState(proc is not None, pid, why)


def stop_pidfile(path: Path, timeout: float, guard: Guard | None = None) -> StopResult:
    """End the process the pidfile names, with its group. ``guard``: why that process is not
    the task's (it runs in another task's directory): then nothing is signalled (Conflict)."""
    pid, proc, why = owned(path)
    if proc is None or pid is None:
        path.unlink(missing_ok=True)
        return StopResult(False, pid, "not-running", why)

    if pid == os.getpid():
        raise OperationFailed(f"pidfile {path} names this clawback process ({pid})",
                              step="stop", hint=f"remove {path}; it is not a task's pidfile")
    group = pid if pgid(pid) == pid and os.getpgrp() != pid else None
    members = group_members(proc, group)
    for member in members if guard is not None else ():  # (it, its children, its group)
        foreign = guard(member)
        if foreign:
            which = "which" if member.pid == pid else f"and pid {member.pid} of its group or children"
            raise Conflict(f"pidfile {path} names pid {pid}, {which} {foreign}: not signalled",
                           f"check which task pid {pid} belongs to; if {path} is stale or copied, "
                           "remove it, then retry")
    signal_all(members, group, signal.SIGTERM)
    alive = wait_gone(members, timeout)
    how = "term"
    if alive:
        how = "kill"
        signal_all(alive, group, signal.SIGKILL)
        alive = wait_gone(alive, KILL_WAIT_S)
        if alive:
            pids = ", ".join(str(p.pid) for p in alive)
            raise OperationFailed(f"pid(s) {pids} survived SIGKILL for {KILL_WAIT_S:g} s",
                                  step="stop", hint="a process stuck in the kernel (state D); "
                                  "check `ps -o pid,stat,cmd -p " + pids + "`")
    path.unlink(missing_ok=True)
    detail = f"{len(members)} process(es) ended" + (
        f"; SIGKILL after {timeout:g} s" if how == "kill" else "")
    return StopResult(True, pid, how, detail)


def pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def group_members(proc: psutil.Process, group: int | None) -> list[psutil.Process]:
    """The process, its descendants, and (if it leads its group) every process in the group."""
    found = {proc.pid: proc}
    try:
        found.update((c.pid, c) for c in proc.children(recursive=True))
    except psutil.Error:
        pass
    if group is not None:
        for other in psutil.process_iter():
            if other.pid not in found and pgid(other.pid) == group:
                found[other.pid] = other
    return list(found.values())


def signal_all(procs: Sequence[psutil.Process], group: int | None, sig: int) -> None:
    """Signal the group (if we lead it) and every listed process outside it."""
    try:
        if group is not None:
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                pass
        for p in procs:
            if group is None or pgid(p.pid) != group:
                try:
                    p.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
    except (PermissionError, psutil.AccessDenied) as exc:
        raise OperationFailed(f"not allowed to signal the task's processes: {exc}", step="stop",
                              hint="stop it as the user that runs it") from exc


def wait_gone(procs: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for every process to exit (zombies count as exited: their
    parent may not reap them promptly); the ones still alive."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while True:
        alive = [p for p in alive if is_alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(POLL_S)
