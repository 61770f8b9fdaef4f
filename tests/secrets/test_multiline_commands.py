"""Command-line credentials written over several lines (red-team round 2, finding 2): a shell
``\\`` continuation, a multi-line argv list (Python, JSON) and adjacent string literals are judged
as the one command they make, found on the line the value is on, refused by snapshot and masked
by diff and preview --show, and by the pre-commit hook."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flows.init import run_init
from tasks_lib.core.workspace import Workspace
from tasks_lib.secrets.commands import credential_spans, mask_commands, values_in
from tasks_lib.secrets.files import scan_file
from tasks_lib.secrets.logical import logical
from tests.conftest import git

V = "Zq9mUltiLine7Kw"
# (file name, text, 1-based line of the value or None)
FORMS = {
    "mysql continuation": ("run.sh", f"mysql -u root \\\n  -p{V} \\\n  -h db -e 'select 1'\n", 2),
    "sshpass continuation": ("run.sh", f"sshpass \\\n  -p {V} ssh host true\n", 2),
    "crlf continuation": ("run.sh", f"redis-cli -h cache \\\r\n  -a {V} ping\r\n", 2),
    "python argv": ("db.py", f'subprocess.run([\n    "mysql",\n    "-uroot",\n    "-p{V}",\n])\n',
                    4),
    "python redis argv": ("db.py", f'run(["redis-cli",\n     "-a",\n     "{V}", "ping"])\n', 3),
    # a parsed config names the item by its key path instead (docs/design.md "Secrets")
    "json argv": ("cfg.json", f'{{"start": [\n  "sshpass",\n  "-p",\n  "{V}",\n  "ssh"\n]}}\n',
                  None),
    "json argv in a text file": ("notes.txt", f'[\n  "sshpass",\n  "-p",\n  "{V}"\n]\n', 4),
    "implicit concatenation": ("db.py", f'CMD = ("mysql -u root "\n       "-p{V} db")\n', 2),
    "single quotes": ("db.py", f"CMD = ('curl -u '\n       'admin:{V} http://x')\n", 2),
}
NOT_CREDENTIALS = [
    "ssh \\\n  -p 2222 box true\n",
    "python -m http.server \\\n  -p 8080\n",
    'run([\n    "mysql",\n    "-u", "root",\n    "-p",\n    "quant",\n])\n',
    'ports = [\n    "-p",\n    "8080",\n]\n',
    'CMD = ("mysql -u root "\n       "-p\\"$MYSQL_PW\\" db")\n',
    'run([\n    "redis-cli",\n    "-a",\n    "${REDIS_PW}",\n])\n',
    "mysql -u root \\\n  -p quant\n",
]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_command_over_several_lines_is_found_on_the_value_line_and_masked(form: str) -> None:
    name, text, line = FORMS[form]
    findings = scan_file(f"tasks/T01/{name}", text.encode())
    assert findings, form
    if line is None:
        assert {f.key for f in findings} == {"start[2]"}, findings
    else:
        assert line in {f.line for f in findings}, (form, findings)
    masked = mask_commands(text)
    assert V not in masked and "***" in masked
    assert masked.count("\n") == text.count("\n")  # lines kept: only the value is replaced
    assert V in values_in([text])


@pytest.mark.parametrize("text", NOT_CREDENTIALS)
def test_ports_prompts_and_references_over_several_lines_are_not_credentials(text: str) -> None:
    assert not scan_file("tasks/T01/x.sh", text.encode())
    assert not scan_file("tasks/T01/x.py", text.encode())
    assert mask_commands(text) == text


def test_a_value_split_by_a_line_break_is_masked_on_both_lines() -> None:
    text = 'CMD = ("mysql -u root -pZq9mUl"\n       "tiLine7Kw db")\n'
    spans = credential_spans(text)
    assert [text[s.start:s.end] for s in spans] == ["Zq9mUl", "tiLine7Kw"]
    assert mask_commands(text) == 'CMD = ("mysql -u root -p***"\n       "*** db")\n'


def test_a_text_without_joints_is_its_own_logical_text() -> None:
    text = 'mysql -u root -pX1 db\nrun(["a", "b"])\n'
    joined = logical(text)
    assert joined.text == text and not joined.pieces
    joined = logical("a \\\n  b")
    assert joined.text == "a  b" and list(joined.physical(0, 4)) == [(0, 2), (6, 7)]


def cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none"}
    proc = subprocess.run([sys.executable, "-m", "clawback", *args, "--workspace", str(ws.root)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_snapshot_refuses_and_diff_and_preview_mask(ws: Workspace,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    run_init(str(ws.root))
    task = ws.root / "tasks/T01"
    (task / "run.sh").write_text(FORMS["mysql continuation"][1])
    (task / "db.py").write_text(FORMS["python argv"][1] + FORMS["implicit concatenation"][1])
    refused = cli(ws, "snapshot", "--task", "T01", "-m", "x")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "run.sh" in refused.stderr and "db.py" in refused.stderr
    assert V not in refused.stdout + refused.stderr
    ok = cli(ws, "snapshot", "--task", "T01", "--bump", "minor", "-m", "x",
             "--allow-secret", "run.sh", "--allow-secret", "db.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    outputs = [cli(ws, "diff", "--task", "T01", "--v1", "1.1.0", "--v2", "1.2.0"),
               cli(ws, "--json", "diff", "--task", "T01", "--v1", "1.1.0", "--v2", "1.2.0")]
    outputs += [cli(ws, "preview", "--task", "T01", "--version", "1.2.0", "--show", name)
                for name in ("run.sh", "db.py")]
    for proc in outputs:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert V not in proc.stdout + proc.stderr
    assert "run.sh" in outputs[0].stdout and "***" in outputs[2].stdout


def test_the_pre_commit_hook_refuses_a_command_over_several_lines(ws: Workspace) -> None:
    run_init(str(ws.root))
    (ws.root / "tasks/T02/run.sh").write_text(FORMS["sshpass continuation"][1])
    (ws.root / "tasks/T02/db.py").write_text(FORMS["python argv"][1])
    head = git(ws, "rev-parse", "HEAD")
    subprocess.run(["git", "add", "--", "tasks/T02/run.sh", "tasks/T02/db.py"], cwd=ws.root,
                   check=True)
    proc = subprocess.run(["git", "commit", "-m", "agent edit"], cwd=ws.root,
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "tasks/T02/run.sh" in proc.stderr and "tasks/T02/db.py" in proc.stderr, proc.stderr
    assert V not in proc.stderr + proc.stdout
    assert git(ws, "rev-parse", "HEAD") == head
