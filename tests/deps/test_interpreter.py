"""A task always runs with its own interpreter: start, the undo's restart and the
smoke test use the venv, the configured path, or (python: none) the python3 on the operator's
PATH; never a file inside the task directory and never clawback's own Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flows.rollback as fr
from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import BadInput
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.registry import Registry
from tasks_lib.runtime import process
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.recovery import undo_interrupted
from tasks_lib.verify_live import smoke_level
from tests.state.test_crash import ROLLBACK_CHILD, kill_child_at

MAIN = "import time\n\nif __name__ == '__main__':\n    while True:\n        time.sleep(1)\n"
TRAP = "#!/bin/sh\necho trapped >> {marker}\nexec {real} \"$@\"\n"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")


@pytest.fixture
def shared_python(tmp_path: Path) -> Path:
    """An interpreter of the operator's (a venv standing for /usr/bin/python3), not clawback's."""
    from tasks_lib.deps import envs as deps

    env = tmp_path / "shared"
    subprocess.run([deps.uv_bin(), "venv", "--quiet", "--python", sys.executable, str(env)],
                   check=True)
    return env / "bin" / "python"


def use(ws: Workspace, python: str) -> None:
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["clawback"] = {"python": python}
    reg.set_entry("T01", entry)
    reg.save()
    (ws.root / "tasks/T01/main.py").write_text(MAIN)
    (ws.root / "tasks/T01/requirements.txt").write_text("")


def plant_traps(ws: Workspace, tmp_path: Path, *dirs: str) -> Path:
    """Executable python3 / python files inside the task directory (and ``dirs`` of the
    workspace) that leave a mark; an outside directory ``linked/`` holds links to them."""
    marker = tmp_path / "trapped"
    linked = tmp_path / "linked"
    linked.mkdir(exist_ok=True)
    for folder in ("tasks/T01", *dirs):
        (ws.root / folder).mkdir(parents=True, exist_ok=True)
        for name in ("python3", "python"):
            trap = ws.root / folder / name
            trap.write_text(TRAP.format(marker=marker, real=sys.executable))
            trap.chmod(0o755)
            if folder == "tasks/T01" and not (linked / name).exists():
                (linked / name).symlink_to(trap)
    return marker


def argv_of(ws: Workspace) -> list[str]:
    return json.loads((ws.state_dir / "run" / "T01.json").read_text())["argv"]


def test_start_uses_the_configured_interpreter_path(ws: Workspace, shared_python: Path) -> None:
    run_init(str(ws.root))
    use(ws, str(shared_python))
    process.start(ws, ws.task("T01"))
    try:
        assert argv_of(ws)[0] == str(shared_python) != sys.executable
    finally:
        process.stop(ws, ws.task("T01"), timeout=2)


@pytest.mark.parametrize("path_entries", [["."], [""], ["tasks/T01"], ["{task_dir}"],
                                          ["{ws}/tasks/T02"], ["{ws}/bin"], ["{tmp}/linked"]])
def test_python_none_never_runs_a_file_of_the_task(ws: Workspace, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   path_entries: list[str]) -> None:
    from tasks_lib.deps import interpreter

    run_init(str(ws.root))
    use(ws, "none")
    marker = plant_traps(ws, tmp_path, "tasks/T02", "bin")
    task_dir = str(ws.root / "tasks/T01")
    hostile = [p.format(task_dir=task_dir, ws=ws.root, tmp=tmp_path) for p in path_entries]
    monkeypatch.setenv("PATH", os.pathsep.join([*hostile, os.environ["PATH"]]))
    monkeypatch.chdir(ws.root)
    task = ws.task("T01")
    chosen = interpreter.task_python(ws, task)
    assert not chosen.resolve().is_relative_to(ws.root.resolve())
    assert smoke_level(ws, task, chosen).ok
    process.start(ws, task)
    try:
        assert not Path(argv_of(ws)[0]).resolve().is_relative_to(ws.root.resolve())
        time.sleep(0.3)
    finally:
        process.stop(ws, ws.task("T01"), timeout=2)
    assert not marker.exists()


def test_a_custom_smoke_command_never_finds_a_python_of_the_task(ws: Workspace, tmp_path: Path,
                                                                 monkeypatch) -> None:
    from tasks_lib.rollback import verify_live

    run_init(str(ws.root))
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["clawback"] = {"python": "none", "smoke": ["python3", "-c", "pass"]}
    reg.set_entry("T01", entry)
    reg.save()
    (ws.root / "tasks/T01/requirements.txt").write_text("")
    run_snapshot(str(ws.root), "T01", bump="minor")
    marker = plant_traps(ws, tmp_path)
    monkeypatch.setenv("PATH", os.pathsep.join([".", os.environ["PATH"]]))
    levels = verify_live(ws, "T01", "1.2.0")            # level 3 runs the smoke command
    assert levels[2].ok, levels[2]
    assert not marker.exists()


@pytest.mark.parametrize("python", ["python3", "tasks/T01/python3", "{task_dir}/python3"])
def test_an_interpreter_inside_the_task_or_relative_is_refused(ws: Workspace, tmp_path: Path,
                                                               python: str) -> None:
    from tasks_lib.deps import interpreter

    run_init(str(ws.root))
    plant_traps(ws, tmp_path)
    use(ws, python.format(task_dir=ws.root / "tasks/T01"))
    with pytest.raises(BadInput, match="absolute|inside the workspace"):
        interpreter.task_python(ws, ws.task("T01"))
    with pytest.raises(BadInput):
        process.start(ws, ws.task("T01"))
    assert not (ws.state_dir / "run" / "T01.json").exists()


def test_the_undo_restarts_the_task_with_its_configured_interpreter(
        ws: Workspace, tmp_path: Path, shared_python: Path) -> None:
    run_init(str(ws.root))
    use(ws, str(shared_python))
    run_snapshot(str(ws.root), "T01", bump="minor")          # 1.2.0
    (ws.root / "tasks/T01/extra.py").write_text("X = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")          # 1.3.0
    process.start(ws, ws.task("T01"))
    try:
        kill_child_at(ROLLBACK_CHILD, "restore_files", ws, tmp_path)
        assert not process.run_state(ws, ws.task("T01")).running
        undo_interrupted(ws.root, ws.state_dir, "T01", AuditLog(ws.state_dir))
        assert process.run_state(ws, ws.task("T01")).running
        assert argv_of(ws)[0] == str(shared_python)
    finally:
        process.stop(ws, ws.task("T01"), timeout=2)


def test_a_rollback_restarts_a_path_task_with_its_interpreter(ws: Workspace,
                                                              shared_python: Path) -> None:
    run_init(str(ws.root))
    use(ws, str(shared_python))
    run_snapshot(str(ws.root), "T01", bump="minor")
    (ws.root / "tasks/T01/extra.py").write_text("X = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")
    process.start(ws, ws.task("T01"))
    try:
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
        assert argv_of(ws)[0] == str(shared_python)
    finally:
        process.stop(ws, ws.task("T01"), timeout=2)


def test_a_venv_link_pointing_into_the_workspace_is_refused(ws: Workspace, tmp_path: Path) -> None:
    """.clawback/envs/T01/current re-pointed at a "venv" the agent made in the task directory."""
    from tasks_lib.core.errors import OperationFailed
    from tasks_lib.deps import envs as deps
    from tasks_lib.deps import interpreter

    run_init(str(ws.root))
    fake = ws.root / "tasks/T01/venvx"
    (fake / "bin").mkdir(parents=True)
    (fake / "pyvenv.cfg").write_text("home = /usr/bin\n")
    marker = tmp_path / "trapped"
    (fake / "bin/python").write_text(TRAP.format(marker=marker, real=sys.executable))
    (fake / "bin/python").chmod(0o755)
    link = deps.env_root(ws.state_dir, "T01") / "current"
    link.unlink()
    link.symlink_to(fake)
    with pytest.raises(OperationFailed, match="points at"):
        interpreter.task_python(ws, ws.task("T01"))
    with pytest.raises(OperationFailed):
        process.start(ws, ws.task("T01"))
    assert not marker.exists()
