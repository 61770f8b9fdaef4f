"""`clawback health`: the error-rate verdict of each task's current version and the live checks,
against the seed story (T01 1.3.0 running, writing its own runs), through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tasks_lib.deps import envs as deps
from tests.conftest import py


def clawback(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clawback", *args], capture_output=True, text=True,
                          env={**os.environ, "CLAWBACK_ORCHESTRATOR": "none"}, timeout=300, check=False)


def runs(path: Path, ok: int, failed: int, version: str, error: str = "timeout talking to the broker") -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [{"ts": now, "ok": True, "version": version}] * ok
    lines += [{"ts": now, "ok": False, "version": version, "error": error}] * failed
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.writelines(json.dumps(line) + "\n" for line in lines)


def by_task(proc: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    return {r["task"]: r for r in json.loads(proc.stdout)["result"]["results"]}


def test_breach_of_the_current_version_exits_1_and_names_the_errors(story) -> None:
    ws, _ = story
    log = ws.root / "tasks/T01/logs/runs.jsonl"
    runs(log, ok=0, failed=40, version="1.2.0")                    # an older version: not counted
    runs(log, ok=15, failed=5, version="1.3.0",
         error="POST https://bot:s3cr3t@hooks.example.com/x failed")
    proc = clawback("health", "--json", "--workspace", str(ws.root))
    assert proc.returncode == 1, proc.stderr
    t01 = by_task(proc)["T01"]
    assert t01["verdict"] == "breach" and t01["failures"] == 5 and t01["samples"] >= 20
    assert "s3cr3t" not in proc.stdout and t01["top_errors"][0]["count"] == 5
    assert by_task(proc)["T02"]["verdict"] == "inconclusive"          # no runs yet: no action
    text = clawback("health", "--workspace", str(ws.root))
    assert text.returncode == 1 and "unhealthy: T01" in text.stdout and "s3cr3t" not in text.stdout


def test_healthy_at_exactly_the_threshold_and_one_task_only(story) -> None:
    ws, _ = story
    log = ws.root / "tasks/T01/logs/runs.jsonl"
    own = log.read_text().splitlines() if log.exists() else []
    have = sum(1 for line in own if '"1.3.0"' in line)             # the task's own runs so far
    runs(log, ok=90 - have, failed=10, version="1.3.0")             # 10 of 100: exactly 0.1
    proc = clawback("health", "--task", "T01", "--json", "--workspace", str(ws.root))
    found = by_task(proc)
    assert list(found) == ["T01"] and found["T01"]["failures"] == 10
    # the running task may append ok runs meanwhile, which only lowers the rate
    assert found["T01"]["verdict"] == "healthy" and proc.returncode == 0, proc.stdout
    runs(log, ok=0, failed=2, version="1.3.0")                      # 12 of 102: a breach
    assert clawback("health", "--task", "T01", "--workspace", str(ws.root)).returncode == 1


def test_live_checks_find_a_dead_process_drift_and_an_extra_package(story) -> None:
    ws, pid = story
    runs(ws.root / "tasks/T01/logs/runs.jsonl", ok=20, failed=0, version="1.3.0")
    os.kill(pid, 9)
    (ws.root / "tasks/T01/main.py").write_text("print('edited by hand')\n")
    subprocess.run([deps.uv_bin(), "pip", "uninstall", "-q", "--python", str(py(ws)), "clawdemo-risk"],
                   check=True)
    proc = clawback("health", "--task", "T01", "--json", "--workspace", str(ws.root))
    assert proc.returncode == 1
    t01 = by_task(proc)["T01"]
    assert t01["verdict"] == "unhealthy"
    problems = " | ".join(t01["problems"])
    assert "process not running" in problems
    assert "files differ from the snapshot: tasks/T01/main.py" in problems
    assert "missing clawdemo-risk" in problems


def test_bad_task_id_exits_2_before_anything_runs(story) -> None:
    ws, _ = story
    for bad in ("../x", "T99"):
        proc = clawback("health", "--task", bad, "--workspace", str(ws.root))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
