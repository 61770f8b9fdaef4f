"""A small workspace shaped like the operator's (two tasks, a deleted one, runtime state, Chinese
text, YAML anchors), plus a local wheelhouse, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from clawback.demo.wheelhouse import build_wheelhouse

WHEELS: list[tuple[str, str, list[str]]] = [
    ("clawdemo-signals", "1.0.0", []),
    ("clawdemo-signals", "1.1.0", []),
    ("clawdemo-risk", "0.1.0", ["clawdemo-signals>=1.1"]),
]

T01_CONFIG = """\
# T01 涨停策略 (limit-up strategy) — edited by people and by the agent
version: {version}   # managed by clawback
name: limit_up_strategy

defaults: &defaults
  lookback_days: 20
  threshold: 0.05

strategy:
  <<: *defaults
  universe: CSI300

data_sources:
  tushare:
    token: ${{TUSHARE_TOKEN}}   # a reference, never the value
"""

T01_MAIN = """\
import json, os, time
import clawdemo_signals

VERSION = "{version}"

def main():
    os.makedirs("logs", exist_ok=True)
    while True:
        with open("logs/runs.jsonl", "a") as fh:
            fh.write(json.dumps({{"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 "ok": True, "version": VERSION}}) + "\\n")
        time.sleep(5)

if __name__ == "__main__":
    main()
"""


def registry_doc(t01: str = "1.1.0", t02: str = "2.0.1") -> dict:
    return {
        "schema_version": "1.0",
        "description": "OpenClaw 任务注册表 (demo)",
        "tasks": [
            {"id": "T01", "name": "涨停策略", "version": t01, "status": "active",
             "location": "tasks/T01", "configuration_file": "config.yaml", "entry_point": "main.py",
             "dependencies": ["clawdemo-signals", "python>=3.8"], "snapshots": [],
             "rollback_history": []},
            {"id": "T02", "name": "risk monitor", "version": t02, "status": "active",
             "location": "tasks/T02", "configuration_file": "config.yaml", "entry_point": "main.py",
             "owner": "ops"},
            {"id": "T99", "name": "retired", "version": "0.0.0", "status": "deleted", "location": None},
        ],
    }


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


def write_task(root: Path, task: str, version: str, main: str, requirements: str,
               config: str | None = None) -> None:
    d = root / "tasks" / task
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(config or T01_CONFIG.format(version=version), encoding="utf-8")
    (d / "main.py").write_text(main, encoding="utf-8")
    (d / "requirements.txt").write_text(requirements, encoding="utf-8")


def make_workspace(root: Path, *, commit: bool = True) -> Path:
    """Create the sample workspace at ``root`` (a new git repository on branch main)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Demo Operator")
    git(root, "config", "user.email", "operator@example.invalid")
    (root / "task_registry.json").write_text(
        json.dumps(registry_doc(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_task(root, "T01", "1.1.0", T01_MAIN.format(version="1.1.0"),
               "clawdemo-signals>=1.0,<1.1\n")
    write_task(root, "T02", "2.0.1", T01_MAIN.format(version="2.0.1"),
               "clawdemo-signals==1.0.0\n",
               config="version: 2.0.1\nname: risk_monitor\nlimits:\n  max_drawdown: 0.1\n")
    state = root / "tasks" / "T01" / "state"
    state.mkdir()
    (state / "positions.json").write_text('{"600000.SH": 1000}\n')
    if commit:
        git(root, "add", "--", "task_registry.json", "tasks/T01/config.yaml", "tasks/T01/main.py",
            "tasks/T01/requirements.txt", "tasks/T02")
        git(root, "commit", "-q", "-m", "initial workspace")
    return root


def make_wheelhouse(dest: Path) -> Path:
    return build_wheelhouse(dest, WHEELS)


def offline_env(wheelhouse: Path, base: dict[str, str]) -> dict[str, str]:
    """An environment in which uv installs only from ``wheelhouse`` (no network)."""
    env = {k: v for k, v in base.items() if not k.startswith(("PIP_", "UV_"))}
    env.update({"UV_FIND_LINKS": str(wheelhouse), "UV_NO_INDEX": "1", "PIP_NO_INDEX": "1",
                "PIP_CONFIG_FILE": "/dev/null"})
    return env


def add_tasks(root: Path, n: int) -> None:
    """``n`` more small tasks X000, X001, ... (no dependencies), committed: a crowded workspace."""
    reg_path = root / "task_registry.json"
    reg = json.loads(reg_path.read_text(encoding="utf-8"))
    for i in range(n):
        tid = f"X{i:03d}"
        d = root / "tasks" / tid
        d.mkdir(parents=True)
        (d / "config.yaml").write_text("version: 1.0.0\n")
        (d / "main.py").write_text("print(1)\n")
        reg["tasks"].append({"id": tid, "version": "1.0.0", "status": "active",
                             "location": f"tasks/{tid}", "entry_point": "main.py",
                             "clawback": {"python": "none"}})
    reg_path.write_text(json.dumps(reg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "more tasks")
