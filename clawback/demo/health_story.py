"""The second half of ``clawback demo`` (docs/design.md, "Health"): 1.2.0 is promoted, the agent
ships a buggy 1.4.0 whose runs fail one in three, the health check finds the breach, rolls T01 back
to the newest stable version (1.2.0, quarantining 1.4.0) and alerts a local ``json://`` sink."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from clawback import render
from clawback.demo.narrator import Story
from clawback.sink import http_sink
from flows import runtime
from flows.health import HealthRun, run_health
from flows.promote import run_promote
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.deps import envs as deps
from tasks_lib.health import stable
from tasks_lib.runtime import process

BUG = "KeyError: 'close' in signals.score"
PILE_UP_RUNS = 15
PILE_UP_WAIT_S = 20.0

# like sample.T01_MAIN, but fast (a run every 0.15 s) and every third run fails
T01_BUGGY_MAIN = """\
import json, os, time
import clawdemo_signals

VERSION = "{version}"

def main():
    os.makedirs("logs", exist_ok=True)
    n = 0
    while True:
        n += 1
        run = {{"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ok": True,
               "version": VERSION}}
        if n % 3 == 0:
            run.update(ok=False, error={bug!r})
        with open("logs/runs.jsonl", "a") as fh:
            fh.write(json.dumps(run) + "\\n")
        time.sleep(0.15)

if __name__ == "__main__":
    main()
"""


def continue_story(story: Story, ws: Workspace) -> None:
    """After the manual rollback 1.3.0 -> 1.2.0: promote, a bad release, automatic rollback."""
    root = str(ws.root)
    r = story.step("promote T01 1.2.0: it has been healthy in production",
                   lambda: runtime.run("promote", run_promote, workspace=root, task_id="T01",
                                       version="1.2.0", reason="healthy in production"))
    story.show(r, render.promote)

    (ws.root / "tasks" / "T01" / "main.py").write_text(
        T01_BUGGY_MAIN.format(version="1.4.0", bug=BUG))
    r = story.step("snapshot 1.4.0: the agent releases a new version (with a bug)",
                   lambda: runtime.run("snapshot", run_snapshot, workspace=root, task_id="T01",
                                       version="1.4.0", message="信号评分改用收盘价"))
    story.show(r, render.snapshot)

    old = process.run_state(ws, ws.task("T01")).pid
    state = story.step("restart T01 on 1.4.0", lambda: _restart(ws))
    if not isinstance(state, Exception):
        story.say(f"   running pid {state.pid} (was {old})")

    n = story.step(f"failures pile up: waiting for {PILE_UP_RUNS} runs of 1.4.0 "
                   f"(at most {PILE_UP_WAIT_S:g}s)", lambda: _pile_up(ws))
    if not isinstance(n, Exception):
        story.say(f"   logs/runs.jsonl: {n[0]} runs of 1.4.0, {n[1]} failed ({BUG})")
    else:
        story.say(f"   {n}")

    before = process.run_state(ws, ws.task("T01")).pid
    with http_sink() as (url, got):
        os.environ["CLAWBACK_NOTIFY_URLS"] = url
        try:
            box: list[HealthRun] = []
            r = story.step("health check with automatic rollback (alerts to a local sink)",
                           lambda: _health(root, box))
            story.say(render.health(box[0]) if box else f"   error: {r}")
            if box and "T02" in box[0].unhealthy:
                story.say("   (T02 is flagged for the operator's uncommitted edit to its "
                          "config.yaml, kept on purpose since the 1.2.0 snapshot)")
            story.step(f"alert received by the local sink ({url})", lambda: _alert(story, got))
        finally:
            os.environ.pop("CLAWBACK_NOTIFY_URLS", None)
    r = story.step("T01 runs 1.2.0 again; 1.4.0 is quarantined", lambda: _back_on(ws, before))
    if not isinstance(r, Exception):
        story.say(f"   {r}")


def _restart(ws: Workspace) -> process.RunState:
    process.stop(ws, ws.task("T01"), timeout=5)
    return process.start(ws, ws.task("T01"), deps.current_python(ws.state_dir, "T01"))


def _runs(path: Path, version: str) -> tuple[int, int]:
    runs = failed = 0
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                run = json.loads(line)
            except ValueError:
                continue
            if isinstance(run, dict) and run.get("version") == version:
                runs += 1
                failed += not run.get("ok")
    return runs, failed


def _pile_up(ws: Workspace) -> tuple[int, int]:
    path = ws.root / "tasks" / "T01" / "logs" / "runs.jsonl"
    deadline = time.monotonic() + PILE_UP_WAIT_S
    while True:
        counts = _runs(path, "1.4.0")
        if counts[0] >= PILE_UP_RUNS:
            return counts
        if time.monotonic() > deadline:
            raise ClawbackError(f"only {counts[0]} runs of 1.4.0 after {PILE_UP_WAIT_S:g}s")
        time.sleep(0.25)


def _health(root: str, box: list[HealthRun]) -> HealthRun:
    # direct: the throwaway workspace is on this machine, whatever a server's deployment serves
    run = runtime.run("health", run_health, workspace=root, auto_rollback=True,
                      rollback_via="direct")
    box.append(run)
    if not any(a.task_id == "T01" and a.action == "rolled-back" and a.to_version == "1.2.0"
               for a in run.actions):
        done = "; ".join(f"{a.task_id} {a.action}: {a.detail}" for a in run.actions) or "nothing"
        raise ClawbackError(f"expected T01 rolled back to 1.2.0; the health check did {done}")
    return run


def _alert(story: Story, got: list[dict[str, Any]]) -> None:
    if not got:
        raise ClawbackError("no alert arrived")
    for alert in got:
        story.say(f"   title: {alert.get('title')}")
        story.say("\n".join(f"   | {line}" for line in str(alert.get("message")).splitlines()))


def _back_on(ws: Workspace, before: int | None) -> str:
    task = ws.task("T01")
    state = process.run_state(ws, task)
    entry = ws.load_registry().entry("T01") or {}
    problems = [f"registry says {task.version}"] if task.version != "1.2.0" else []
    if not state.running or state.pid == before:
        problems.append(f"not restarted (pid {state.pid}, was {before})")
    if "1.4.0" not in stable.quarantined(entry):
        problems.append("1.4.0 is not quarantined")
    if problems:
        raise ClawbackError("; ".join(problems))
    return (f"T01 {task.version}: new pid {state.pid} (was {before}); quarantined: "
            f"{', '.join(sorted(stable.quarantined(entry)))}")
