"""``clawback demo``: the story on a throwaway workspace, offline, on embedded Prefect.

A temporary git workspace with two tasks and a deleted one, tiny wheels built on the spot, and
the real commands: init adopts 1.1.0, the agent ships 1.2.0 and then 1.3.0 with new dependencies,
a plaintext secret is refused, both snapshots verify, a moved tag is caught, and the running
1.3.0 is rolled back to 1.2.0: new process, its packages, four-level verification.

Then (clawback/demo/health_story.py) 1.2.0, healthy in production, is promoted to stable; the agent
releases 1.4.0 with a bug, one run in three fails and the failures pile up in the health source;
the health check finds the breach, rolls T01 back to the newest stable version 1.2.0 on its own
(1.4.0 quarantined, a new process) and alerts a local ``json://`` sink, whose alert is shown.

Last (clawback/demo/toolbox_story.py) the toolbox: preview 1.3.0 and diff it against 1.2.0 without
touching the live task, a hotfix release on top of the stable 1.2.0, and sync-registry --check.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from clawback import render
from clawback.demo import sample
from clawback.demo.health_story import continue_story
from clawback.demo.narrator import DemoResult, Story
from clawback.demo.toolbox_story import toolbox_story
from flows import runtime
from flows.init import run_init
from flows.rollback import run_rollback
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import ClawbackError, SecretsFound
from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.runtime import process
from tasks_lib.status import task_history, workspace_status
from tasks_lib.verify_snapshot import verify_snapshot


def run_demo(keep: bool = False, out: TextIO | None = None) -> DemoResult:
    import sys

    story = Story(out or sys.stdout)
    base = Path(tempfile.mkdtemp(prefix="clawback-demo-"))
    saved_env = dict(os.environ)
    try:
        wheels = sample.make_wheelhouse(base / "wheelhouse")
        os.environ.clear()
        os.environ.update(sample.offline_env(wheels, saved_env))
        os.environ["TUSHARE_TOKEN"] = "demo-placeholder"  # the name T01 needs; a fake value
        root = sample.make_workspace(base / "workspace")
        ws = Workspace(root.resolve())
        story.result.workspace = str(root)
        story.say(f"demo workspace: {root}\nlocal wheelhouse (offline): {wheels}")
        story.say("Prefect: " + runtime.choose_mode().detail)

        r = story.step("init: adopt the workspace, tag what runs today (T01 1.1.0, T02 2.0.1)",
                       lambda: runtime.run("init", run_init, workspace=str(root)))
        if not isinstance(r, Exception):
            story.say(render.init(r))

        t01 = root / "tasks" / "T01"
        (t01 / "signals.py").write_text("def score(bars):\n    return sum(bars) / len(bars)\n")
        r = story.step("snapshot 1.2.0: the agent adds signals.py (T02 has an uncommitted edit)",
                       lambda: _edit_t02_then(root, lambda: runtime.run(
                           "snapshot", run_snapshot, workspace=str(root), task_id="T01",
                           bump="minor", message="新增竞价成交量指标")))
        story.show(r, render.snapshot)

        (t01 / "requirements.txt").write_text("clawdemo-signals>=1.1\nclawdemo-risk\n")
        (t01 / "main.py").write_text(sample.T01_MAIN.format(version="1.3.0").replace(
            "import clawdemo_signals", "import clawdemo_signals, clawdemo_risk"))
        r = story.step("snapshot 1.3.0: new dependencies (signals 1.1.0 + risk 0.1.0)",
                       lambda: runtime.run("snapshot", run_snapshot, workspace=str(root),
                                           task_id="T01", bump="minor",
                                           message="新增舆情分析模块"))
        story.show(r, render.snapshot)

        cfg = t01 / "config.yaml"
        original = cfg.read_text()
        cfg.write_text(original + "notify:\n  feishu_app_secret: s3cr3t-value\n")
        r = story.step("snapshot refused: a plaintext secret in config.yaml",
                       lambda: runtime.run("snapshot", run_snapshot, workspace=str(root),
                                           task_id="T01", message="oops"), expect_ok=False)
        if isinstance(r, SecretsFound):
            story.say(f"   refused (exit {r.exit_code}): {r.message}")
            story.say("   the value is never printed, logged or stored")
        cfg.write_text(original)

        for version in ("1.2.0", "1.3.0"):
            v = story.step(f"verify-snapshot T01 {version}",
                           lambda version=version: _verified(ws, version))
            story.show(v, render.verification)

        r = story.step("tamper check: move tag T01-v1.2.0 to another commit -> detected",
                       lambda: _tamper(ws), expect_ok=False)
        story.say(f"   {r.message}" if isinstance(r, ClawbackError) else "   NOT DETECTED")
        py = deps.current_python(ws.state_dir, "T01")
        state = story.step("start T01 1.3.0 (its own environment, a pidfile)",
                           lambda: process.start(ws, ws.task("T01"), py))
        if not isinstance(state, Exception):
            story.say(f"   running pid {state.pid} with {', '.join(deps.installed(py))}")
        r = story.step("rollback T01 1.3.0 -> 1.2.0 (stop, back up, restore, sync, verify, start)",
                       lambda: runtime.run("rollback", run_rollback, workspace=str(root),
                                           task_id="T01", to_version="1.2.0",
                                           reason="error rate 0.3 > 0.1", grace_s=1.0))
        story.show(r, render.rollback)
        if not isinstance(r, Exception):
            story.say(f"   new pid {r.pid} (was {getattr(state, 'pid', None)}); environment now: "
                      f"{', '.join(deps.installed(py))}")
        continue_story(story, ws)
        toolbox_story(story, ws)
        story.say(render.status(workspace_status(ws)))
        story.say(render.history(task_history(ws, "T01")))
    finally:
        _stop_all(base / "workspace")
        os.environ.clear()
        os.environ.update(saved_env)
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    rows = [[s["step"][:70], f"{s['seconds']:.2f}s", "ok" if s["passed"] else "UNEXPECTED"]
            for s in story.result.steps]
    verdict = "demo passed" if story.result.ok else "demo FAILED"
    where = f"workspace kept at {story.result.workspace}" if keep else "workspace removed (--keep keeps it)"
    story.result.summary = (f"\n{verdict}: {len(rows)} steps, "
                            f"{sum(s['seconds'] for s in story.result.steps):.1f}s in all; {where}\n"
                            + render.table(["step", "time", "result"], rows))
    return story.result


def _stop_all(root: Path) -> None:
    """Never leave a demo task running."""
    if not (root / "task_registry.json").exists():
        return
    ws = Workspace(root.resolve())
    for tid in ("T01", "T02"):
        try:
            process.stop(ws, ws.task(tid), timeout=3)
        except ClawbackError:
            pass  # best effort on the way out; the workspace is being removed


def _edit_t02_then(root: Path, action: Callable[[], Any]) -> Any:
    """An uncommitted edit to T02 must survive T01's snapshot, uncommitted."""
    cfg = root / "tasks" / "T02" / "config.yaml"
    cfg.write_text(cfg.read_text() + "# operator's unsaved tweak\n")
    value = action()
    status = sample.git(root, "status", "--porcelain", "--", "tasks/T02")
    if "tasks/T02/config.yaml" not in status:
        raise ClawbackError("T02's uncommitted edit was lost or committed")
    return value


def _verified(ws: Workspace, version: str) -> Any:
    v = verify_snapshot(ws, "T01", version)
    if not v.ok:
        raise ClawbackError(f"T01 {version} did not verify")
    return v


def _tamper(ws: Workspace) -> None:
    info = ws.git.tag_info("T01-v1.2.0")
    assert info is not None
    message = ws.git.tag_message("T01-v1.2.0")
    sample.git(ws.root, "tag", "-d", "T01-v1.2.0")
    ws.git.create_tag("T01-v1.2.0", "HEAD", message)
    try:
        v = verify_snapshot(ws, "T01", "1.2.0")
        if not v.ok:
            raise ClawbackError("tampering detected: " + "; ".join(c.detail for c in v.failures))
    finally:
        sample.git(ws.root, "update-ref", "refs/tags/T01-v1.2.0", info.object)
