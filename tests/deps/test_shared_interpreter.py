"""A shared interpreter (``python`` set to a path) is changed only with --allow-shared-install,
and then the change is journaled: a failed operation puts its packages back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import flows.rollback as fr
from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import Conflict
from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.formats.registry import Registry
from tests.conftest import failing_after, git

MAIN = "import clawdemo_signals\n\nif __name__ == '__main__':\n    pass\n"


@pytest.fixture
def shared(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Workspace, Path]:
    """T01 on a shared interpreter holding clawdemo-signals 1.0.0; 1.1.0 adopted, 1.2.0 pins the
    same, 1.3.0 wants clawdemo-signals 1.1 and clawdemo-risk (installed with the flag)."""
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    env = tmp_path / "shared"
    subprocess.run([deps.uv_bin(), "venv", "--quiet", "--python", sys.executable, str(env)],
                   check=True)
    python = env / "bin" / "python"
    subprocess.run([deps.uv_bin(), "pip", "install", "--quiet", "--python", str(python),
                    "clawdemo-signals==1.0.0"], check=True)
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["clawback"] = {"python": str(python)}
    reg.set_entry("T01", entry)
    reg.save()
    t01 = ws.root / "tasks/T01"
    (t01 / "main.py").write_text(MAIN)
    (t01 / "requirements.txt").write_text("clawdemo-signals==1.0.0\n")
    git(ws, "commit", "-qam", "shared interpreter")
    run_init(str(ws.root))
    (t01 / "v12.py").write_text("X = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")                   # 1.2.0: nothing to change
    return ws, python


def test_a_change_of_a_shared_interpreter_needs_the_flag(shared: tuple[Workspace, Path]) -> None:
    ws, python = shared
    t01 = ws.root / "tasks/T01"
    (t01 / "requirements.txt").write_text("clawdemo-signals>=1.1\nclawdemo-risk\n")
    head, have = git(ws, "rev-parse", "HEAD"), deps.installed(python)
    with pytest.raises(Conflict, match="(?s)shared interpreter.*--allow-shared-install") as err:
        run_snapshot(str(ws.root), "T01", bump="minor")
    assert err.value.exit_code == 3
    assert deps.installed(python) == have and git(ws, "rev-parse", "HEAD") == head
    run_snapshot(str(ws.root), "T01", bump="minor", allow_shared_install=True)   # 1.3.0
    assert set(deps.installed(python)) == {"clawdemo-risk==0.1.0", "clawdemo-signals==1.1.0"}

    with pytest.raises(Conflict, match="clawdemo-signals==1.0.0"):
        fr.run_rollback(str(ws.root), "T01", "1.2.0")                 # refused up front
    assert ws.task("T01").version == "1.3.0"


@pytest.mark.parametrize("step_name", ["sync_dependencies", "verify", "commit_and_tag"])
def test_a_failed_rollback_puts_the_shared_packages_back(shared: tuple[Workspace, Path],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         step_name: str) -> None:
    ws, python = shared
    (ws.root / "tasks/T01/requirements.txt").write_text("clawdemo-signals>=1.1\nclawdemo-risk\n")
    run_snapshot(str(ws.root), "T01", bump="minor", allow_shared_install=True)   # 1.3.0
    have = deps.installed(python)
    with monkeypatch.context() as patched:
        patched.setattr(fr, step_name, failing_after(getattr(fr, step_name), step_name))
        with pytest.raises(Exception, match="everything was put back"):
            fr.run_rollback(str(ws.root), "T01", "1.2.0", allow_shared_install=True)
    assert deps.installed(python) == have
    done = fr.run_rollback(str(ws.root), "T01", "1.2.0", allow_shared_install=True)
    assert done.to_version == "1.2.0" and "clawdemo-signals==1.0.0" in deps.installed(python)
