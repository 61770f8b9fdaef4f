"""The child processes of ``clawback serve``: started, watched and stopped by the pids it holds.

Design:

- Every child (the Prefect server, the worker, ``prefect deploy``) starts in a session of its
  own, so a Ctrl-C in the terminal (SIGINT to the foreground process group) reaches only
  ``clawback serve``, which then stops its children in order (deployments/local.py).
- On Linux each child also gets ``PR_SET_PDEATHSIG``: when ``clawback serve`` itself dies without
  cleaning up (SIGKILL, OOM killer), the kernel sends its children SIGTERM, so no orphaned worker
  keeps taking runs for a workspace nobody serves. A flow run the worker started is in a session
  of its own (Prefect isolates it) and is left to finish.
- Stopping is by the pid we started, then by its process group (its session): never by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """A function for the child (between fork and exec) asking the kernel for SIGTERM when its
    parent dies; Linux only. libc is looked up here, in the parent: after a fork only the call
    itself is safe."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def spawn(argv: Sequence[str], env: Mapping[str, str], *, cwd: Path | None = None,
          log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own; its output goes to ``log`` (appended) or to ours."""
    out: IO[bytes] | None = log.open("ab") if log is not None else None
    try:
        return subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT if out else None,
                                start_new_session=True, preexec_fn=_parent_death_signal())
    finally:
        if out is not None:
            out.close()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop(proc: subprocess.Popen[Any], *, first: int = signal.SIGTERM, grace_s: float = 15,
         also: Sequence[psutil.Process] = ()) -> bool:
    """Send ``first`` to ``proc`` (the pid only: it may want to wind down its own children), wait
    up to ``grace_s``, then SIGKILL its process group and the processes in ``also`` that still
    run. True if it ended within the grace period."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(first)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    clean = proc.poll() is not None
    _signal_group(proc.pid, signal.SIGKILL)     # anything left in its session
    for child in also:
        with contextlib.suppress(psutil.Error):
            child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    return clean


def children(proc: subprocess.Popen[Any]) -> list[psutil.Process]:
    """The direct children of ``proc`` (for the worker: the flow runs it started)."""
    try:
        return psutil.Process(proc.pid).children()
    except psutil.Error:
        return []


def run_logged(argv: Sequence[str], env: Mapping[str, str], *, cwd: Path, log: Path,
               timeout_s: float, stopping: Callable[[], bool]) -> int:
    """Run ``argv`` to its end (its output appended to ``log``) and return its exit code;
    -1 when ``stopping()`` turned true or ``timeout_s`` ran out first (it is then stopped)."""
    proc = spawn(argv, env, cwd=cwd, log=log)
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if stopping() or time.monotonic() > deadline:
            stop(proc, grace_s=5)
            return -1
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.2)
    return proc.returncode


def tail(path: Path, chars: int = 1500) -> str:
    """The end of a log, for an error message."""
    try:
        return path.read_text(errors="replace")[-chars:].strip()
    except OSError:
        return ""


class Signals:
    """SIGTERM, SIGINT and SIGHUP turned into a flag the main loop reads (nothing is raised mid-call, so
    a child is never started without its handle being kept). The first signal asks for an
    orderly stop; a second one asks to stop at once (no waiting for flow runs in flight)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signum)     # no locks here: the handler runs in the main thread

    @property
    def stopping(self) -> bool:
        return bool(self.received)

    @property
    def hurry(self) -> bool:
        return len(self.received) > 1

    def name(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else ""

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early on a (further) signal."""
        seen, deadline = len(self.received), time.monotonic() + seconds
        while len(self.received) == seen and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
