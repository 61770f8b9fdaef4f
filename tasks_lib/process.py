"""Is a task running? (SPEC §5 run types). Pidfiles live under .clawback/run/<TASK>.json and
record pid and create time, so a reused PID is never mistaken for the task."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from tasks_lib.workspace import Task, Workspace


@dataclass(frozen=True)
class RunState:
    running: bool | None   # None: not managed by clawback (run.type none) or unknown
    pid: int | None = None
    detail: str = ""


def pidfile(ws: Workspace, task: Task) -> Path:
    custom = task.settings.run.pidfile
    return (ws.root / task.location / custom) if custom and task.location else \
        ws.state_dir / "run" / f"{task.id}.json"


def read_pidfile(path: Path) -> tuple[int, float | None] | None:
    try:
        raw = path.read_text().strip()
    except OSError:
        return None
    try:
        data = json.loads(raw)
        if isinstance(data, dict):
            return int(data["pid"]), float(data["create_time"])
        return int(data), None
    except (ValueError, KeyError, TypeError):
        return None


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
    rec = read_pidfile(pidfile(ws, task))
    if rec is None:
        return RunState(False, detail="no pidfile")
    pid, created = rec
    try:
        proc = psutil.Process(pid)
        if created is not None and abs(proc.create_time() - created) > 1.0:
            return RunState(False, pid, "pid reused by another process")
        if proc.status() == psutil.STATUS_ZOMBIE:
            return RunState(False, pid, "exited (zombie)")
        return RunState(True, pid)
    except psutil.NoSuchProcess:
        return RunState(False, pid, "process gone")
    except psutil.AccessDenied:
        return RunState(True, pid, "running (other user)")
