"""Is a task running, and start or stop it (docs/design.md, "What a rollback guarantees"), as a
rollback uses it.

``process`` tasks run in their own session (``start_new_session``: the pid is the process group
id), output appended to ``.clawback/run/<TASK>.out``. The pidfile ``.clawback/run/<TASK>.json``
records pid, create time, argv, start time and version; a pid whose create time differs by more
than a second is somebody else's (PID reuse) and is never signalled. ``stop`` TERMs the group,
waits, then KILLs what remains (both in tasks_lib/runtime/pidfiles.py).

Zombies: ``start`` does not wait for the long-lived child; a daemon thread blocks in
``Popen.wait`` to reap it whenever it exits, for as long as this (possibly long-lived) Python
process runs. When this process exits first, the child is re-parented and reaped by init. Until
reaped, a zombie counts as not running.

One module because start, stop and "is it running" share the run types' rules (process,
command, external) and the pidfile discipline above; the pidfile itself is in pidfiles.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from tasks_lib.core import safefs
from tasks_lib.core import time as clock
from tasks_lib.core.errors import BadInput, ClawbackError, Conflict, OperationFailed
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.deps import interpreter
from tasks_lib.runtime import pidfiles
from tasks_lib.runtime.pidfiles import (
    POLL_S,
    RunState,
    StopResult,
    pidfile_state,
    stop_pidfile,
)
from tasks_lib.secrets import masking

COMMAND_TIMEOUT_S = 60.0
SYSTEMCTL_TIMEOUT_S = 120.0
_TAIL_LINES = 10


def pidfile(ws: Workspace, task: Task) -> Path:
    custom = task.settings.run.pidfile
    return (ws.root / task.location / custom) if custom and task.location else \
        ws.state_dir / "run" / f"{task.id}.json"


def unusable_pidfile(ws: Workspace, task: Task) -> str | None:
    """Why the task's own ``run.pidfile`` (a file of its directory) is not read, signalled by or
    removed: it is a link, behind a symlink or a mount point, or not a file. Through a link it
    could name another task's process (``tasks/T01/run -> ../T02/run``). None when usable."""
    run = task.settings.run
    if not (run.pidfile and task.location):
        return None
    rel = f"{task.location}/{run.pidfile}"
    kind = safefs.entry(ws.root, rel, read=False).kind
    what = {"link": "a symlink", "behind-link": "behind a symlink", "dir": "a directory",
            "behind-mount": "behind a mount point", "mount": "a mount point",
            "other": "not a regular file"}.get(kind)
    if what is None and kind == "file" and os.lstat(ws.root / rel).st_nlink > 1:
        what = "a hard link (another file's name too)"
    return None if what is None else (
        f"run.pidfile {rel} is {what}: clawback never reads, signals or removes a pidfile there "
        "(it could name another task's process)")


def _guard(ws: Workspace, task: Task) -> pidfiles.Guard:
    """Why a process a pidfile names is not ``task``'s: it runs in another active task's
    directory (a pidfile copied from, or linked to, that task's)."""
    others: list[tuple[Path, Task]] = []

    def foreign(proc: psutil.Process) -> str | None:
        try:
            cwd = Path(os.path.realpath(proc.cwd()))
        except (psutil.Error, OSError):
            return None  # another user's, or gone: stopping it fails loudly, not silently
        mine = Path(os.path.realpath(ws.root / task.location)) if task.location else None
        if mine is not None and cwd.is_relative_to(mine):
            return None
        if not others:
            others.extend((Path(os.path.realpath(ws.root / o.location)), o) for o in ws.tasks()
                          if o.id != task.id and o.active and o.location)
        for where, other in others:
            if cwd.is_relative_to(where):
                return f"runs in {other.location} (task {other.id})"
        return None

    return foreign


def _usable_pidfile(ws: Workspace, task: Task) -> Path:
    bad = unusable_pidfile(ws, task)
    if bad:
        raise Conflict(bad, "make the pidfile's directory a real directory of the task (or name "
                            "a pidfile that is), then retry; nothing was stopped")
    return pidfile(ws, task)


def output_log(ws: Workspace, task: Task) -> Path:
    """Where a started task's stdout/stderr (and its start/stop commands' output) are appended."""
    return ws.state_dir / "run" / f"{task.id}.out"


def run_state(ws: Workspace, task: Task) -> RunState:
    run = task.settings.run
    if run.type == "none":
        return RunState(None, detail="run by the operator")
    if run.type == "systemd":
        if not shutil.which("systemctl"):
            return RunState(None, detail="systemctl not available")
        proc = subprocess.run(["systemctl", "is-active", "--", run.unit or ""],
                              capture_output=True, text=True, check=False)
        state = proc.stdout.strip() or "unknown"
        return RunState(state == "active", detail=f"{run.unit}: {state}")
    if run.type == "command" and not run.pidfile:
        return RunState(None, detail="no run.pidfile: state unknown")
    bad = unusable_pidfile(ws, task)
    if bad:
        return RunState(None, detail=bad)
    return pidfile_state(pidfile(ws, task), _guard(ws, task))


def wait_alive(ws: Workspace, task: Task, grace_s: float) -> RunState:
    """Poll for ``grace_s`` seconds; the state at the end, or as soon as the task is seen dead
    (systemd and command tasks only once seen running: a unit may still be activating, a
    command's own pidfile may appear late)."""
    deadline = time.monotonic() + grace_s
    seen = task.settings.run.type == "process"
    while True:
        state = run_state(ws, task)
        if state.running is None:
            return state
        if state.running is False and seen:
            return RunState(False, state.pid,
                            f"{state.detail}: not alive within {grace_s:g} s{_log_tail(ws, task)}")
        seen = seen or bool(state.running)
        if time.monotonic() >= deadline:
            return state
        time.sleep(min(POLL_S * 2, max(0.0, deadline - time.monotonic())))


# --- start -------------------------------------------------------------------------------------


def start(ws: Workspace, task: Task, python: Path | None = None, *,
          environ: Mapping[str, str] | None = None) -> RunState:
    """Start ``task`` per its run type with its interpreter (``python``, or the one its settings
    name: tasks_lib/deps/interpreter.py), never clawback's own and never a file of the task."""
    run = task.settings.run
    if run.type == "none":
        return RunState(None, detail="run by the operator; not started")
    before = run_state(ws, task)
    if before.running:
        raise Conflict(f"task {task.id} is already running"
                       + (f" (pid {before.pid})" if before.pid else ""),
                       "stop it first; a rollback stops and restarts it for you")
    if run.type == "systemd":
        _systemctl("start", task)
        return run_state(ws, task)
    cwd = _task_dir(ws, task)
    if python is None and run.type == "process" and not run.command:
        _argv(task, Path("python"))                  # no entry point: that is the problem
        python = interpreter.task_python(ws, task)  # the default argv needs it: say why not
    env = _env(environ, python or _optional_python(ws, task), ws.root)
    if run.type == "command":
        if run.start is None:  # settings.parse already requires it
            raise BadInput(f"task {task.id}: run.type command needs run.start",
                           'e.g. "start": ["./run.sh"]')
        _run_command(ws, task, run.start, "run.start", cwd, env)
        return run_state(ws, task)
    return _spawn(ws, task, _argv(task, python), cwd, env)


def _argv(task: Task, python: Path | None) -> list[str]:
    if task.settings.run.command:
        return list(task.settings.run.command)
    if not task.entry_point:
        raise BadInput(f"task {task.id} has no entry_point and no clawback.run.command",
                       'add "entry_point": "main.py" or clawback.run.command to task_registry.json')
    assert python is not None  # start() resolved it
    return [str(python), task.entry_point]


def _optional_python(ws: Workspace, task: Task) -> Path | None:
    """The task's interpreter to lead the PATH of an explicit command (which names its own
    program), or None when there is none to use."""
    try:
        return interpreter.task_python(ws, task)
    except ClawbackError:
        return None


def _task_dir(ws: Workspace, task: Task) -> Path:
    cwd = ws.root / task.location if task.location else None
    if cwd is None or not cwd.is_dir():
        raise BadInput(f"task {task.id} has no task directory ({task.location or 'no location'})",
                       "restore the task directory or fix its location in task_registry.json")
    mount = safefs.mount_over(ws.root, task.location)
    if mount is not None:
        raise BadInput(f"task {task.id}'s directory {task.location} is {'' if mount == task.location else 'inside '}"
                       f"a mount point ({mount}): it may show another directory", "move the "
                       "mount out of the workspace; clawback runs a task only from its own directory")
    return cwd


def _env(environ: Mapping[str, str] | None, python: Path | None, workspace: Path) -> dict[str, str]:
    """The task's environment: the operator's, with a PATH cleaned of relative entries and of
    the workspace (tasks_lib/deps/interpreter.py) and led by the task's interpreter."""
    env = dict(os.environ if environ is None else environ)
    path = interpreter.clean_path(env.get("PATH"), workspace)
    if python is not None:
        bindir = Path(os.path.abspath(python)).parent
        path = os.pathsep.join(p for p in (str(bindir), path) if p)
        if (bindir.parent / "pyvenv.cfg").is_file():
            env["VIRTUAL_ENV"] = str(bindir.parent)
            env.pop("PYTHONHOME", None)
    env["PATH"] = path
    return env


def _shown(ws: Workspace, argv: Sequence[str]) -> list[str]:
    """An argv as written to the task's log, pidfile and reports: secret values and credentials
    (a ``--token <value>`` flag, a URL's password) masked."""
    return masking.mask_argv(argv, masking.for_workspace(ws.root))


def _spawn(ws: Workspace, task: Task, argv: list[str], cwd: Path, env: dict[str, str]) -> RunState:
    ws.ensure_state_dir()
    stamp = clock.format()
    shown = _shown(ws, argv)  # (the workspace's secret values read once)
    with os.fdopen(safefs.open_append(output_log(ws, task)), "ab") as log:
        log.write(f"--- clawback start {stamp} version {task.version}: {shown}\n".encode())
        log.flush()
        try:
            child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        except OSError as exc:
            raise OperationFailed(f"cannot start task {task.id}: {argv[0]}: {exc.strerror}",
                                  step="start",
                                  hint="check clawback.run.command / the task's environment "
                                       "(argv is run without a shell)") from exc
    # Even if it already exited, the child stays a zombie until reaped below, so its create
    # time is readable.
    try:
        created = psutil.Process(child.pid).create_time()
    except psutil.NoSuchProcess as exc:
        raise OperationFailed(f"task {task.id} exited at once", step="start",
                              hint=f"see {output_log(ws, task)}") from exc
    threading.Thread(target=child.wait, name=f"clawback-reap-{task.id}-{child.pid}",
                     daemon=True).start()
    record = {"pid": child.pid, "create_time": created, "argv": shown, "started_at": stamp,
              "version": task.version}
    try:
        _write_pidfile(ws, task, json.dumps(record, indent=2) + "\n")
    except (OSError, ClawbackError) as exc:
        _kill_group(child.pid)
        raise OperationFailed(f"task {task.id} started but its pidfile could not be written "
                              f"({exc}); stopped it again", step="start",
                              hint=f"check that {pidfile(ws, task).parent} is writable") from exc
    return RunState(True, child.pid, f"started: {shown}")


def _write_pidfile(ws: Workspace, task: Task, text: str) -> None:
    """The pidfile: tool state, or (``run.pidfile``) a file of the task directory, written
    without following a symlink (tasks_lib/core/safefs.py)."""
    if task.settings.run.pidfile and task.location:
        safefs.write_file(ws.root, f"{task.location}/{task.settings.run.pidfile}",
                          text.encode("utf-8"))
        return
    _write_atomic(pidfile(ws, task), text)


def _write_atomic(path: Path, text: str) -> None:
    safefs.replace_file(path, text.encode("utf-8"))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


# --- stop --------------------------------------------------------------------------------------


def stop(ws: Workspace, task: Task, *, timeout: float = 10.0) -> StopResult:
    """Stop ``task`` per its run type; say whether it was running and how it ended."""
    run = task.settings.run
    if run.type == "none":
        return StopResult(False, None, "unmanaged", "run by the operator; not stopped")
    if run.type == "systemd":
        was = run_state(ws, task) if shutil.which("systemctl") else None
        _systemctl("stop", task)
        return StopResult(bool(was and was.running), None, "systemd", was.detail if was else "")
    if run.type == "command":
        return _stop_command(ws, task, timeout)
    return stop_pidfile(_usable_pidfile(ws, task), timeout, _guard(ws, task))


def _stop_command(ws: Workspace, task: Task, timeout: float) -> StopResult:
    run = task.settings.run
    if run.stop is None:
        if run.pidfile:
            return stop_pidfile(_usable_pidfile(ws, task), timeout, _guard(ws, task))
        raise BadInput(f"task {task.id}: run.type command has neither run.stop nor run.pidfile",
                       "add clawback.run.stop (an argv) or run.pidfile to task_registry.json")
    before = run_state(ws, task)
    if before.running is False:
        return StopResult(False, before.pid, "not-running", before.detail)
    cwd = _task_dir(ws, task)
    _run_command(ws, task, run.stop, "run.stop", cwd,
                 _env(None, _optional_python(ws, task), ws.root))
    if before.running is None:
        return StopResult(True, None, "command", "state unknown (no run.pidfile); run.stop succeeded")
    deadline = time.monotonic() + timeout
    while run_state(ws, task).running:
        if time.monotonic() >= deadline:
            raise OperationFailed(f"task {task.id}: run.stop succeeded but pid {before.pid} is "
                                  f"still running after {timeout:g} s", step="stop",
                                  hint="fix the stop command, or stop the process by hand")
        time.sleep(POLL_S)
    return StopResult(True, before.pid, "command")


# --- commands ----------------------------------------------------------------------------------


def _systemctl(verb: str, task: Task) -> None:
    unit = task.settings.run.unit or ""
    exe = shutil.which("systemctl")
    if exe is None:
        raise OperationFailed(f"cannot {verb} task {task.id}: systemctl not found on PATH",
                              step=verb, hint="run.type systemd needs systemd on this host; "
                              "otherwise use run.type process or command")
    what = f"systemctl {verb} {unit}"
    try:
        proc = subprocess.run([exe, verb, "--", unit], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=SYSTEMCTL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OperationFailed(f"{what} did not finish within {SYSTEMCTL_TIMEOUT_S:g} s",
                              step=verb, hint=f"see `systemctl status {unit}`") from exc
    if proc.returncode != 0:
        raise OperationFailed(f"{what}: systemctl exited {proc.returncode}"
                              f"{masking.mask(_tail(proc.stderr))}",
                              step=verb, hint=f"see `systemctl status {unit}` and "
                              f"`journalctl -u {unit}`")


def _run_command(ws: Workspace, task: Task, argv: Sequence[str], what: str, cwd: Path,
                 env: dict[str, str]) -> None:
    """Run a start/stop argv in the task directory. Its output is appended to the task's log
    (a file, not a pipe: a daemon it leaves behind must not hold us up); on a non-zero exit,
    OperationFailed with the last lines of that output."""
    ws.ensure_state_dir()
    log = output_log(ws, task)
    where = f"task {task.id} {what}"
    hint = f"fix clawback.{what} in task_registry.json; full output in {log}"
    with os.fdopen(safefs.open_append(log), "ab") as sink:
        sink.write(f"--- clawback {what} {_shown(ws, argv)}\n".encode())
        sink.flush()
        offset = sink.tell()
        try:
            proc = subprocess.run(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  stdout=sink, stderr=sink, timeout=COMMAND_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise OperationFailed(f"{where}: {argv[0]} did not finish within "
                                  f"{COMMAND_TIMEOUT_S:g} s", step=what, hint=hint) from exc
        except OSError as exc:
            raise OperationFailed(f"{where}: cannot run {argv[0]}: {exc.strerror}", step=what,
                                  hint=hint + " (argv is run without a shell)") from exc
    if proc.returncode != 0:
        with open(log, "rb") as fh:
            fh.seek(offset)
            output = fh.read()
        shown = masking.mask(_tail(output), values=masking.for_workspace(ws.root, env))
        raise OperationFailed(f"{where}: {argv[0]} exited {proc.returncode}{shown}",
                              step=what, hint=hint)


def _tail(output: bytes) -> str:
    lines = [ln.rstrip()[:300] for ln in output.decode("utf-8", "replace").splitlines()
             if ln.strip()][-_TAIL_LINES:]
    return "".join("\n  " + ln for ln in lines)


def _log_tail(ws: Workspace, task: Task) -> str:
    try:
        with open(output_log(ws, task), "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            data = fh.read()
    except OSError:
        return ""
    tail = _tail(data.split(b"--- clawback start")[-1].partition(b"\n")[2])
    tail = masking.mask(tail, values=masking.for_workspace(ws.root))
    return f"; last output:{tail}" if tail else ""
