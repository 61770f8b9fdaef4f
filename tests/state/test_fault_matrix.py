"""The fault-injection matrix: every step boundary of snapshot, rollback,
recover and promote × {an exception raised there, a SIGKILL there}. An exception is undone by the
operation itself; a SIGKILL leaves the journal, which the next operation undoes. Either way the
world is then exactly as before (or, past the point of no return, exactly as after), nothing is
lost, the old version runs again. Kills during the stop and during an undo are included.

One story workspace is built per session and copied for each case (its environments included),
so the matrix costs seconds per case, not an environment build each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clawback.demo import sample
from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.runtime import process
from tasks_lib.state.audit import AuditLog
from tasks_lib.state.recovery import interrupted, undo_interrupted
from tests.conftest import T01_13, git, runs_again

REPO = Path(__file__).resolve().parent.parent.parent

# -- the story, once ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path,
             uv_cache: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """T01 1.2.0 and 1.3.0 (new dependencies, own environments) snapshotted, nothing running."""
    env = sample.offline_env(wheelhouse, dict(os.environ))
    env.update(UV_CACHE_DIR=str(uv_cache), CLAWBACK_ACTOR="tester@ci", TUSHARE_TOKEN="test-value",
               CLAWBACK_ORCHESTRATOR="none")
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        from flows.init import run_init
        from flows.snapshot import run_snapshot

        root = sample.make_workspace(tmp_path_factory.mktemp("matrix") / "ws").resolve()
        run_init(str(root))
        t01 = root / "tasks/T01"
        (t01 / "signals.py").write_text("def score():\n    return 1\n")
        (t01 / "main.py").write_text(sample.T01_MAIN.format(version="1.2.0"))
        run_snapshot(str(root), "T01", bump="minor")                   # 1.2.0
        (t01 / "requirements.txt").write_text("clawdemo-signals>=1.1\nclawdemo-risk\n")
        (t01 / "main.py").write_text(T01_13)
        (t01 / "added_in_13.py").write_text("NEW = True\n")
        run_snapshot(str(root), "T01", bump="minor")                   # 1.3.0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield root, env


@pytest.fixture
def live(template: tuple[Path, dict[str, str]], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A copy of the story with 1.3.0 running, and an uncommitted edit of T02 and runtime state
    that must survive everything."""
    src, env = template
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "ws"
    shutil.copytree(src, root, symlinks=True)
    ws = Workspace(root.resolve())
    (root / "tasks/T02/config.yaml").write_text("version: 2.0.1\n# the operator's unsaved edit\n")
    (root / "tasks/T01/state/positions.json").write_text('{"live": 42}\n')
    process.start(ws, ws.task("T01"), deps.current_python(ws.state_dir, "T01"))
    assert runs_again(ws, "1.3.0")  # running its code (a case may edit main.py next)
    yield ws
    for tid in ("T01", "T02"):
        try:
            process.stop(ws, ws.task(tid), timeout=2)
        except Exception:  # noqa: BLE001 - cleanup: the assertion already said what broke
            pass


# -- what must be as it was ----------------------------------------------------------------
def world(ws: Workspace) -> dict[str, Any]:
    t01 = ws.root / "tasks/T01"
    link = deps.env_root(ws.state_dir, "T01") / "current"
    return {
        "t01 files": {p.name: p.read_bytes() for p in t01.iterdir() if p.is_file()},
        "registry": ws.registry_path.read_bytes(),
        "head": git(ws, "rev-parse", "HEAD"),
        "tags": git(ws, "tag", "-l"),
        "index": git(ws, "ls-files", "-s"),
        "t02": (ws.root / "tasks/T02/config.yaml").read_bytes(),
        "state": (t01 / "state/positions.json").read_bytes(),
        "env": os.readlink(link),
        "packages": deps.installed(link / "bin" / "python"),
        "running": process.run_state(ws, ws.task("T01")).running,
        "running version": _pid_version(ws),
    }


def _pid_version(ws: Workspace) -> str | None:
    try:
        return json.loads((ws.state_dir / "run" / "T01.json").read_text()).get("version")
    except OSError:
        return None


# -- the operations and their step boundaries ----------------------------------------------
@dataclass(frozen=True)
class Op:
    name: str
    call: str                                   # Python run in-process / in the child
    points: tuple[tuple[str, str], ...]          # (name, "module:attribute") boundaries
    done_after: frozenset[str] = frozenset()     # points past the point of no return
    prepare: str = ""                            # code run before (in the parent)


ROLLBACK_POINTS = (
    ("before-term", "tasks_lib.runtime.pidfiles:group_members"),    # inside the stop, nothing sent yet
    ("during-stop", "tasks_lib.runtime.pidfiles:wait_gone"),         # TERM sent, pidfile still there
    ("stop", "flows.rollback:stop_task"),
    ("back-up", "flows.rollback:back_up"),
    ("restore-files", "flows.rollback:restore_files"),
    ("restore-registry", "flows.rollback:restore_registry"),
    ("sync-dependencies", "flows.rollback:sync_dependencies"),
    ("verify", "flows.rollback:verify"),
    ("inside-commit", "tasks_lib.gitops.repo:Git.commit_paths"),  # HEAD moved, not yet journaled
    ("commit-and-tag", "flows.rollback:commit_and_tag"),
    ("start", "flows.rollback:start_task"),
    ("report", "flows.rollback:write_report"),
)

OPS = {
    "snapshot": Op("snapshot", 'run_snapshot(ROOT, "T01", bump="minor", message="matrix")', (
        ("scan-secrets", "flows.snapshot:scan_secrets"),
        ("bump-version", "flows.snapshot:bump_version"),
        ("lock-dependencies", "flows.snapshot:lock_dependencies"),
        ("sync-environment", "flows.snapshot:sync_environment"),
        ("inside-commit", "tasks_lib.gitops.repo:Git.commit_paths"),
        ("commit", "flows.snapshot:commit_task"),
        ("checksum", "flows.snapshot:checksum_files"),
        ("tag", "flows.snapshot:tag_snapshot"),
        ("export", "flows.snapshot:export_manifest"),
    ), frozenset({"export"}), prepare="(ROOT / 'tasks/T01/new.py').write_text('N = 1\\n')\n"
        "(ROOT / 'tasks/T01/requirements.txt').write_text('clawdemo-signals>=1.1\\n')\n"),
    "rollback": Op("rollback", 'run_rollback(ROOT, "T01", "1.2.0", reason="matrix")',
                   ROLLBACK_POINTS),
    "recover": Op("recover", 'run_recover(ROOT, "T01", "1.3.0", reason="matrix")',
                  (*ROLLBACK_POINTS, ("verify-live", "flows.recover:verify_live")),
                  frozenset({"verify-live"}),
                  prepare="(ROOT / 'tasks/T01/added_in_13.py').write_text('NEW = (\\n')\n"
                          "(ROOT / 'tasks/T01/stray.py').write_text('S = 1\\n')\n"),
    "promote": Op("promote", 'run_promote(ROOT, "T01", "1.3.0", reason="matrix")', (
        ("registry-saved", "tasks_lib.formats.registry:Registry.save"),
        ("inside-commit", "tasks_lib.gitops.repo:Git.commit_paths"),
        ("committed", "flows.promote:commit_journaled"),
    )),
}

HEADER = '''
import json, pathlib, sys, time, importlib
from flows.snapshot import run_snapshot
from flows.rollback import run_rollback
from flows.recover import run_recover
from flows.promote import run_promote
ROOT = {root!r}
'''

CHILD = HEADER + '''
def patch(spec, wrap):
    module, attr = spec.split(":")
    owner = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, name, wrap(getattr(owner, name)))

def stall_after(real):
    def wrapped(*args, **kwargs):
        result = real(*args, **kwargs)
        pathlib.Path({marker!r}).write_text("ready")
        time.sleep(600)
        return result
    return wrapped

def fail_after(real):
    def wrapped(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("injected failure")
    return wrapped

{setup}
{call}
'''


def run_child(ws: Workspace, tmp_path: Path, call: str, setup: str) -> None:
    """Run ``call`` in a child process until it writes the marker, then SIGKILL it."""
    marker = tmp_path / "ready"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ws.root), marker=str(marker), setup=setup, call=call))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError("child ended before the kill point: "
                                 + child.communicate()[1].decode()[-3000:])
        assert time.monotonic() < deadline, "child never reached the kill point"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def in_process(spec: str, wrap: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    module, attr = spec.split(":")
    owner: Any = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    monkeypatch.setattr(owner, name, wrap(getattr(owner, name)))


def failing_after(real: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kw: Any) -> Any:
        real(*args, **kw)
        raise RuntimeError("injected failure")
    return wrapped


def settle(ws: Workspace) -> None:
    """What the next operation does first: undo the killed one (its writer is gone)."""
    undo_interrupted(ws.root, ws.state_dir, "T01", AuditLog(ws.state_dir))
    assert not interrupted(ws.state_dir, "T01-")


def wait_running(ws: Workspace, version: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.run_state(ws, ws.task("T01")).running and _pid_version(ws) == version:
            return True
        time.sleep(0.1)
    return False


CASES = [(op.name, point, spec, fault) for op in OPS.values() for point, spec in op.points
         for fault in ("exception", "sigkill")]


@pytest.mark.parametrize(("operation", "point", "spec", "fault"), CASES,
                         ids=[f"{o}-{p}-{f}" for o, p, _, f in CASES])
def test_fault_matrix(live: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      operation: str, point: str, spec: str, fault: str) -> None:
    ws = live
    op = OPS[operation]
    if op.prepare:
        exec(op.prepare, {"ROOT": ws.root})  # noqa: S102 - test code: the case's own edit
    before = world(ws)
    past_no_return = point in op.done_after
    if fault == "sigkill":
        run_child(ws, tmp_path, op.call, f"patch({spec!r}, stall_after)")
        settle(ws)
    else:
        namespace: dict[str, Any] = {}
        exec(HEADER.format(root=str(ws.root)), namespace)  # noqa: S102
        with monkeypatch.context() as patched:
            in_process(spec, failing_after, patched)
            with pytest.raises(Exception, match="injected") as err:
                exec(op.call, namespace)  # noqa: S102
        if not past_no_return:  # (a failure before any change is reported as it is)
            assert "COULD NOT UNDO" not in str(err.value), str(err.value)
    after = world(ws)
    if past_no_return:
        assert after["head"] != before["head"] and after["state"] == before["state"]
        assert after["t02"] == before["t02"]
        return
    if before["running"]:
        assert wait_running(ws, "1.3.0"), "the old version does not run again"
        after = world(ws)
    assert after == before
    entry = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    assert entry["result"] in ("failed", "ok") and entry["action"] in (
        operation if operation != "recover" else "rollback", "recover-interrupted")
    assert not (entry["details"].get("not_undone") or [])


def test_a_kill_during_the_undo_is_finished_by_the_next_undo(live: Workspace,
                                                               tmp_path: Path) -> None:
    """A rollback fails after restoring the registry; its undo is killed right after putting the
    files back; the next operation finishes the undo."""
    ws = live
    before = world(ws)
    setup = ('patch("flows.rollback:restore_registry", fail_after)\n'
             'import tasks_lib.state.journal as j\n'
             'j.UNDO["restore_tree"] = stall_after(j.UNDO["restore_tree"])\n')
    run_child(ws, tmp_path, OPS["rollback"].call, setup)
    assert interrupted(ws.state_dir, "T01-")                 # the undo was cut short
    settle(ws)
    assert wait_running(ws, "1.3.0")
    assert world(ws) == before


def test_newer_work_met_by_an_undo_is_backed_up_first(live: Workspace, tmp_path: Path) -> None:
    """A rollback is killed after restoring the files; before anyone undoes it, the operator
    edits a file and T01's registry entry. The undo keeps both edits in a backup ref, names it
    in the audit log, and only then restores."""
    from tasks_lib.formats.registry import Registry
    from tasks_lib.status import workspace_status

    ws = live
    main_before = (ws.root / "tasks/T01/main.py").read_bytes()
    run_child(ws, tmp_path, OPS["rollback"].call,
              'patch("flows.rollback:restore_registry", stall_after)')
    (ws.root / "tasks/T01/main.py").write_text("# the operator's fix, made after the crash\n")
    reg = Registry.load(ws.registry_path)
    entry = reg.entry("T01")
    entry["note"] = "edited after the crash"
    reg.set_entry("T01", entry)
    reg.save()
    row = next(r for r in workspace_status(ws, repair=True) if r.id == "T01")  # status undoes it
    assert row.interrupted and row.interrupted[0].outcome == "undone"
    assert (ws.root / "tasks/T01/main.py").read_bytes() == main_before
    audit = [e for e in AuditLog(ws.state_dir).entries("T01") if e["action"] == "recover-interrupted"]
    refs = audit[-1]["details"]["newer_work_backed_up"]
    assert len(refs) == 2
    kept = [git(ws, "show", f"{ref}:tasks/T01/main.py") for ref in refs]
    assert "# the operator's fix, made after the crash\n" in kept
    registries = [json.loads(git(ws, "show", f"{ref}:task_registry.json")) for ref in refs]
    assert any(t.get("note") == "edited after the crash" for r in registries for t in r["tasks"])


def test_one_failing_undo_action_does_not_stop_the_others(live: Workspace,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry cannot be written back (EIO) during the undo of a failed rollback: every
    other change is still put back, the task runs again, the failure is reported exactly, the
    audit entry is written and the journal is kept for a person."""
    import errno

    import flows.rollback as fr
    import tasks_lib.state.journal as journal
    from tasks_lib.status import workspace_status

    ws = live
    before = world(ws)

    def eio(root: Path, action: dict[str, Any]) -> None:
        raise OSError(errno.EIO, "Input/output error", str(root / action["path"]))

    monkeypatch.setitem(journal.UNDO, "restore_entry", eio)
    monkeypatch.setattr(fr, "verify", failing_after(fr.verify))
    with pytest.raises(Exception, match="COULD NOT UNDO") as err:
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
    message = str(err.value)
    assert "restore T01's entry in task_registry.json: Input/output error" in message
    monkeypatch.undo()
    assert runs_again(ws, "1.3.0")           # the old code runs again (the registry says 1.2.0)
    after = world(ws)
    assert after["registry"] != before["registry"]               # the one thing not put back
    skip = ("registry", "running version")
    assert {k: v for k, v in after.items() if k not in skip} == \
        {k: v for k, v in before.items() if k not in skip}
    entry = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    assert entry["result"] == "failed" and len(entry["details"]["not_undone"]) == 1
    assert "restore the git index entries of the committed paths" not in entry["details"]["not_undone"]
    kept = list((ws.state_dir / "journal").glob("T01-rollback.failed.json"))
    assert kept and [a["kind"] for a in json.loads(kept[0].read_text())["actions"]]
    row = next(r for r in workspace_status(ws, repair=True) if r.id == "T01")
    assert row.interrupted and row.interrupted[0].outcome == "undo-failed-earlier"


def test_a_journal_that_cannot_be_written_during_the_undo_does_not_stop_it(
        live: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import flows.rollback as fr
    from tasks_lib.state.journal import Journal

    ws = live
    before = world(ws)
    real = Journal._persist
    undoing = {"on": False}

    def persist(self: Journal) -> None:
        if undoing["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self)

    real_undo = Journal.undo

    def undo(self: Journal) -> list[str]:
        undoing["on"] = True
        return real_undo(self)

    monkeypatch.setattr(Journal, "_persist", persist)
    monkeypatch.setattr(Journal, "undo", undo)
    monkeypatch.setattr(fr, "commit_and_tag", failing_after(fr.commit_and_tag))
    with pytest.raises(Exception, match="No space left on device") as err:
        fr.run_rollback(str(ws.root), "T01", "1.2.0")
    assert "could not be updated during the undo" in str(err.value)
    monkeypatch.undo()
    assert wait_running(ws, "1.3.0")
    assert world(ws) == before                                   # everything else was undone
