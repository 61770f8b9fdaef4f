"""Run control against real processes: start, stop (TERM, then KILL), PID-reuse guard, process
groups, wait_alive, and the systemd / command / none run types."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tasks_lib.core.errors import BadInput, Conflict, OperationFailed
from tasks_lib.core.workspace import Task, Workspace
from tasks_lib.runtime import process

PY = sys.executable


@pytest.fixture
def track() -> Iterator[Callable[[int], None]]:
    """Record pids this test started; the finalizer SIGKILLs the ones still alive (same create
    time only, so a reused pid is never touched) and their process groups if they lead one."""
    started: list[psutil.Process] = []

    def add(pid: int) -> None:
        try:
            started.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass

    yield add
    for proc in started:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                if os.getpgid(proc.pid) == proc.pid:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass


def configure(ws: Workspace, run: dict[str, Any] | None = None, **entry: Any) -> Task:
    """T01 with ``clawback.run`` set (and other registry keys replaced; None deletes)."""
    path = ws.registry_path
    doc = json.loads(path.read_text(encoding="utf-8"))
    t01 = doc["tasks"][0]
    if run is not None:
        t01["clawback"] = {"run": run}
    for key, value in entry.items():
        if value is None:
            t01.pop(key, None)
        else:
            t01[key] = value
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return ws.task("T01")


def script(code: str) -> list[str]:
    return [PY, "-c", code]


SLEEPER = script("import time; time.sleep(60)")


def wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} not written within {timeout} s")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_start_writes_pidfile_and_runs_in_task_dir_with_given_python(
    ws: Workspace, tmp_path: Path, track: Callable[[int], None]
) -> None:
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    task_dir = ws.root / "tasks" / "T01"
    (task_dir / "main.py").write_text(
        "import json, os, sys, time\n"
        "with open('seen.json', 'w') as fh:\n"
        "    fh.write(json.dumps({'cwd': os.getcwd(), 'exe': sys.executable, 'prefix': sys.prefix,\n"
        "                         'venv': os.environ.get('VIRTUAL_ENV'),\n"
        "                         'path0': os.environ['PATH'].split(os.pathsep)[0]}) + '\\n')\n"
        "time.sleep(60)\n")
    task = ws.task("T01")

    state = process.start(ws, task, python)
    assert state.pid is not None
    track(state.pid)
    assert state.running is True

    record = json.loads(process.pidfile(ws, task).read_text())
    assert process.pidfile(ws, task) == ws.state_dir / "run" / "T01.json"
    assert record["pid"] == state.pid
    assert abs(record["create_time"] - psutil.Process(state.pid).create_time()) < 0.01
    assert record["argv"] == [str(python), "main.py"]
    assert record["version"] == "1.1.0" and record["started_at"].endswith("Z")

    seen = json.loads(wait_for(task_dir / "seen.json"))
    assert Path(seen["cwd"]).resolve() == task_dir.resolve()
    assert Path(seen["prefix"]).resolve() == env_dir.resolve()
    assert seen["venv"] == str(env_dir) and seen["path0"] == str(env_dir / "bin")
    assert os.getpgid(state.pid) == state.pid  # its own session and process group
    assert process.run_state(ws, task).running is True


def test_start_refuses_when_already_running(ws: Workspace, track: Callable[[int], None]) -> None:
    task = configure(ws, {"command": SLEEPER})
    first = process.start(ws, task, None)
    assert first.pid is not None
    track(first.pid)
    with pytest.raises(Conflict) as err:
        process.start(ws, task, None)
    assert err.value.exit_code == 3 and str(first.pid) in str(err.value)
    assert json.loads(process.pidfile(ws, task).read_text())["pid"] == first.pid


def test_start_without_entry_point_is_bad_input(ws: Workspace) -> None:
    task = configure(ws, entry_point=None)
    with pytest.raises(BadInput) as err:
        process.start(ws, task, None)
    assert err.value.exit_code == 2 and "entry_point" in str(err.value)


def test_start_missing_executable_fails_with_hint(ws: Workspace) -> None:
    task = configure(ws, {"command": ["no-such-program-xyz", "x"]})
    with pytest.raises(OperationFailed) as err:
        process.start(ws, task, None)
    assert "no-such-program-xyz" in str(err.value) and err.value.hint
    assert not process.pidfile(ws, task).exists()


def test_stop_terms_and_removes_pidfile(ws: Workspace, track: Callable[[int], None]) -> None:
    task = configure(ws, {"command": SLEEPER})
    state = process.start(ws, task, None)
    assert state.pid is not None
    track(state.pid)

    result = process.stop(ws, task, timeout=5)
    assert result == process.StopResult(True, state.pid, "term", result.detail)
    assert gone(state.pid)
    assert not process.pidfile(ws, task).exists()
    assert process.run_state(ws, task).running is False
    again = process.stop(ws, task)
    assert (again.was_running, again.how) == (False, "not-running")


def test_process_ignoring_sigterm_is_killed_after_timeout(
    ws: Workspace, track: Callable[[int], None]
) -> None:
    task = configure(ws, {"command": script(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open('ready', 'w').write('ok\\n')\n"
        "time.sleep(60)\n")})
    state = process.start(ws, task, None)
    assert state.pid is not None
    track(state.pid)
    wait_for(ws.root / "tasks" / "T01" / "ready")

    began = time.monotonic()
    result = process.stop(ws, task, timeout=1.0)
    took = time.monotonic() - began
    assert (result.was_running, result.how) == (True, "kill")
    assert 0.9 <= took < 5
    assert gone(state.pid)
    assert not process.pidfile(ws, task).exists()


def test_children_in_the_process_group_are_stopped(
    ws: Workspace, track: Callable[[int], None]
) -> None:
    task = configure(ws, {"command": script(
        "import subprocess, sys, time\n"
        "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "        for _ in range(2)]\n"
        "open('kids', 'w').write(' '.join(str(k.pid) for k in kids) + '\\n')\n"
        "time.sleep(60)\n")})
    state = process.start(ws, task, None)
    assert state.pid is not None
    track(state.pid)
    kids = [int(p) for p in wait_for(ws.root / "tasks" / "T01" / "kids").split()]
    for kid in kids:
        track(kid)
        assert os.getpgid(kid) == state.pid

    result = process.stop(ws, task, timeout=5)
    assert (result.was_running, result.how) == (True, "term")
    assert "3 process(es)" in result.detail
    assert gone(state.pid) and all(gone(k) for k in kids)


def test_pid_reuse_guard_never_signals_an_unrelated_process(ws: Workspace) -> None:
    task = ws.task("T01")
    path = process.pidfile(ws, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = psutil.Process(os.getpid())
    # our own pid, but a create time an hour off: the task's pid was reused by this test run
    path.write_text(json.dumps({"pid": me.pid, "create_time": me.create_time() - 3600}))
    got: list[int] = []
    old = signal.signal(signal.SIGTERM, lambda signo, frame: got.append(signo))
    try:
        assert process.run_state(ws, task).running is False
        result = process.stop(ws, task, timeout=1)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert result == process.StopResult(False, me.pid, "not-running", result.detail)
    assert "another process" in result.detail
    assert got == [] and not path.exists()


def test_plain_pidfile_written_before_the_process_started_is_not_trusted(
    ws: Workspace, track: Callable[[int], None]
) -> None:
    task = configure(ws, {"type": "command", "start": ["true"], "pidfile": "app.pid"})
    proc = subprocess.Popen(SLEEPER, start_new_session=True)
    track(proc.pid)
    path = process.pidfile(ws, task)
    path.write_text(f"{proc.pid}\n")
    assert process.run_state(ws, task).running is True
    old = time.time() - 3600  # the file predates the process: its pid was reused
    os.utime(path, (old, old))
    assert process.run_state(ws, task).running is False
    proc.kill()
    proc.wait()


def test_stale_pidfile_of_a_dead_pid_is_removed(ws: Workspace) -> None:
    task = ws.task("T01")
    dead = subprocess.Popen([PY, "-c", "pass"])
    created = psutil.Process(dead.pid).create_time()
    dead.wait()
    path = process.pidfile(ws, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": dead.pid, "create_time": created}))

    assert process.run_state(ws, task).running is False
    result = process.stop(ws, task)
    assert (result.was_running, result.pid, result.how) == (False, dead.pid, "not-running")
    assert not path.exists()
    # and start goes ahead over a stale pidfile
    path.write_text(json.dumps({"pid": dead.pid, "create_time": created}))
    task = configure(ws, {"command": script("pass")})
    assert process.start(ws, task, None).pid != dead.pid


def test_wait_alive_reports_a_crash_within_the_grace_period(
    ws: Workspace, track: Callable[[int], None]
) -> None:
    task = configure(ws, {"command": script(
        "import sys, time; time.sleep(0.2); print('boom: bad config', flush=True); sys.exit(3)")})
    state = process.start(ws, task, None)
    assert state.pid is not None
    track(state.pid)
    began = time.monotonic()
    after = process.wait_alive(ws, task, 3.0)
    assert after.running is False and after.pid == state.pid
    assert "boom: bad config" in after.detail
    assert time.monotonic() - began < 2.5  # reported as soon as it died


def test_wait_alive_reports_a_healthy_process_running(
    ws: Workspace, track: Callable[[int], None]
) -> None:
    task = configure(ws, {"command": SLEEPER})
    state = process.start(ws, task, None)
    assert state.pid is not None
    track(state.pid)
    after = process.wait_alive(ws, task, 0.3)
    assert after == process.RunState(True, state.pid, after.detail)


def test_run_type_none_is_unmanaged(ws: Workspace) -> None:
    task = configure(ws, {"type": "none"})
    assert process.start(ws, task, None).running is None
    result = process.stop(ws, task)
    assert (result.was_running, result.pid, result.how) == (False, None, "unmanaged")
    assert process.wait_alive(ws, task, 5).running is None
    assert not process.pidfile(ws, task).exists()


def test_command_type_runs_start_and_stop_in_the_task_dir(ws: Workspace) -> None:
    write = "import sys; open(sys.argv[1], 'w').write('done\\n')"
    task = configure(ws, {"type": "command", "start": [PY, "-c", write, "started.marker"],
                          "stop": [PY, "-c", write, "stopped.marker"]})
    task_dir = ws.root / "tasks" / "T01"
    state = process.start(ws, task, None)
    assert state.running is None  # no run.pidfile: unknown
    assert (task_dir / "started.marker").read_text() == "done\n"
    result = process.stop(ws, task)
    assert (result.was_running, result.how) == (True, "command")
    assert (task_dir / "stopped.marker").read_text() == "done\n"


def test_command_type_failing_stop_raises_with_exit_code_and_stderr(ws: Workspace) -> None:
    task = configure(ws, {"type": "command", "start": ["true"], "stop": script(
        "import sys; print('stopping'); sys.stderr.write('cannot reach the broker\\n'); "
        "sys.exit(1)")})
    with pytest.raises(OperationFailed) as err:
        process.stop(ws, task)
    text = str(err.value)
    assert err.value.exit_code == 1
    assert f"{PY} exited 1" in text and "cannot reach the broker" in text
    assert "run.stop" in text and err.value.hint


def test_command_type_with_pidfile_tracks_a_daemon(
    ws: Workspace, track: Callable[[int], None]
) -> None:
    # the start command leaves a daemon behind (holding our stdout) and exits at once
    daemonize = ("import subprocess, sys\n"
                 "d = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
                 " start_new_session=True)\n"
                 "open('app.pid', 'w').write(f'{d.pid}\\n')\n")
    task = configure(ws, {"type": "command", "start": script(daemonize), "pidfile": "app.pid"})
    began = time.monotonic()
    state = process.start(ws, task, None)
    assert time.monotonic() - began < 10
    assert state.running is True and state.pid is not None
    track(state.pid)
    assert process.wait_alive(ws, task, 0.2).running is True
    with pytest.raises(Conflict):
        process.start(ws, task, None)
    result = process.stop(ws, task, timeout=5)  # no run.stop: signalled via its pidfile
    assert (result.was_running, result.pid, result.how) == (True, state.pid, "term")
    assert gone(state.pid)


def test_systemd_without_systemctl_fails_with_a_hint(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = configure(ws, {"type": "systemd", "unit": "t01.service"})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for call in (lambda: process.stop(ws, task), lambda: process.start(ws, task, None)):
        with pytest.raises(OperationFailed) as err:
            call()
        assert "systemctl not found" in str(err.value) and "systemd" in (err.value.hint or "")
