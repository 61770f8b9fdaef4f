"""A small workspace shaped like the operator's (two tasks, a deleted one, runtime state, Chinese
text, YAML anchors), plus a local wheelhouse, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import json
import os
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


LARGE_T03_CONFIG = """\
# T03 北向资金 (northbound flow): the token used to sit here in plaintext; it now comes from
# the environment (the plaintext stays in an old commit of the history, never in a snapshot)
version: 1.0.0
name: 北向资金监控
data_sources:
  tushare:
    token: ${TUSHARE_TOKEN}
"""

LEAKED_TOKEN_LINE = "    token: 8700" + "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2\n"


def make_large_workspace(root: Path, *, files: int = 6000) -> Path:
    """The sample workspace grown to ``files`` versioned files, shaped like a big real one.

    - three active tasks (T01 holds most files, in nested packages with Chinese names; T02 a few
      hundred; T03 a Chinese-named task with ``python: none``) and a workspace-level ``docs/``;
    - a list-form registry with two deleted tasks (T99 without a location, T98 whose old
      location still exists on disk);
    - tracked symlinks into runtime state (``tasks/T01/latest_positions.json ->
      state/positions.json``, ``tasks/T02/today -> data/today``);
    - Chinese text in configs, code and file names;
    - T03's token moved from a plaintext value (an older commit) to ``${TUSHARE_TOKEN}``.

    Committed on branch main, not adopted: callers run ``clawback init`` (which builds T01's and
    T02's environments from the wheelhouse, so run it with :func:`offline_env`)."""
    make_workspace(root)
    reg_path = root / "task_registry.json"
    reg = json.loads(reg_path.read_text(encoding="utf-8"))
    t03 = root / "tasks" / "T03"
    t03.mkdir(parents=True)
    (t03 / "config.yaml").write_text(
        LARGE_T03_CONFIG.replace("    token: ${TUSHARE_TOKEN}\n", LEAKED_TOKEN_LINE),
        encoding="utf-8")
    (t03 / "main.py").write_text('print("北向资金")\n', encoding="utf-8")
    reg["tasks"][2:2] = [{"id": "T03", "name": "北向资金", "version": "1.0.0", "status": "active",
                          "location": "tasks/T03", "configuration_file": "config.yaml",
                          "entry_point": "main.py", "clawback": {"python": "none"}}]
    reg["tasks"].append({"id": "T98", "name": "已下线", "version": "0.3.0", "status": "deleted",
                         "location": "tasks/T98"})
    old = root / "tasks" / "T98"
    old.mkdir(parents=True)
    (old / "main.py").write_text("print('retired')\n")
    reg_path.write_text(json.dumps(reg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    git(root, "add", "-A", "--", "task_registry.json", "tasks/T03", "tasks/T98")
    git(root, "commit", "-q", "-m", "T03 (token in plaintext, soon moved)")
    (t03 / "config.yaml").write_text(LARGE_T03_CONFIG, encoding="utf-8")
    git(root, "commit", "-q", "-am", "T03: the token comes from ${TUSHARE_TOKEN}")

    t01, t02 = root / "tasks" / "T01", root / "tasks" / "T02"
    os.symlink("state/positions.json", t01 / "latest_positions.json")
    (t02 / "data").mkdir()
    (t02 / "data" / "today").mkdir()
    os.symlink("data/today", t02 / "today")
    written = 4 + 1 + 2 + 4  # the sample's files, T03, T98, the links
    written += _fill(root / "docs", 100, "运维说明 (operations notes) {i}\n")
    written += _fill(t02 / "lib", 400, "LIMIT_{i} = {i}  # 风险限额\n")
    written += _fill(t01 / "因子", max(files - written, 0), "def factor_{i}(x):\n"
                     "    # 因子 {i}: momentum\n    return x * {i}\n")
    git(root, "add", "-A", "--", "docs", "tasks/T01", "tasks/T02")
    git(root, "commit", "-q", "-m", "a large workspace: factors, limits, docs")
    return root


def _fill(base: Path, n: int, text: str) -> int:
    """``n`` small files under ``base`` in packages of 250 (``pkg000/mod00000.py`` …)."""
    for i in range(n):
        d = base / f"pkg{i // 250:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod{i:05d}.py").write_text(text.format(i=i), encoding="utf-8")
    return n
