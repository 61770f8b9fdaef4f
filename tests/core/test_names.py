"""File names of any bytes: snapshotted, verified and restored exactly, shown
escaped, or refused with a clear message (docs/design.md, "File names").

Real temporary workspaces, the real flows and the real CLI on a strict UTF-8 stdout (pytest's
capture is one); every name compared as bytes, as ``os.listdir(bytes)`` gives it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from clawback.cli import main
from flows.init import run_init
from flows.rollback import run_rollback
from flows.snapshot import run_snapshot
from tasks_lib.core import filenames
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.manifest import FileEntry, Snapshot, parse_tag_message, parse_yaml
from tasks_lib.rollback import verify_live
from tasks_lib.state.audit import AuditLog
from tasks_lib.verify_snapshot import verify_snapshot
from tests.conftest import git

# valid UTF-8, but every kind of character a shell, a terminal or a line-oriented format trips on
UTF8_NAMES = [b"new\nline.py", b"tab\t.py", b"-rf.py", b"--help", b" lead.py", b"trail.py ",
              b"q'\"uote.py", b"back\\slash.py", b"star*?[.py", "caf\u00e9.py".encode(),
              "cafe\u0301.py".encode(), "\u6da8\u505c.py".encode(), b"L" * 255,
              b"new\ndir/-x.py", b"D" * 200 + b"/" + b"F" * 255]
RAW_NAMES = [b"caf\xe9.py", b"\xff\xfe.txt", b"d\xe9ir/x\xff.py", b"\xc3(/\x80.py"]
NOT_RUNTIME = (b"state", b"logs", b"__pycache__")


def write(task_dir: bytes, rel: bytes, data: bytes | None = None) -> None:
    path = os.path.join(task_dir, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data if data is not None else b"X = %r\n" % rel)


def tree(task_dir: bytes) -> dict[bytes, bytes]:
    """Every file under the task directory (runtime state aside): name bytes -> content (a
    symlink: its target), read through bytes-level listings only."""
    found: dict[bytes, bytes] = {}
    for top, dirs, files in os.walk(task_dir):
        dirs[:] = [d for d in dirs if d not in NOT_RUNTIME]
        for name in files:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, task_dir)
            if os.path.islink(path):
                found[rel] = b"-> " + os.readlink(path)
            else:
                with open(path, "rb") as fh:
                    found[rel] = fh.read()
    return found


def at_tag(ws: Workspace, tag: str) -> set[bytes]:
    raw = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", tag, "--", "tasks/T01"],
                         cwd=ws.root, capture_output=True, check=True).stdout
    return {p[len(b"tasks/T01/"):] for p in raw.split(b"\0") if p}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The real CLI in this process; pytest's capture is a strict UTF-8 stream."""
    code = main(list(argv))
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and "internal error" not in out.err, out.err
    return code, out.out, out.err


def fs_names(paths: list[str]) -> set[bytes]:
    """Names from a --json document back to bytes (the \\udcXX escapes are surrogateescape)."""
    return {os.fsencode(p)[len(b"tasks/T01/"):] for p in paths}


def test_odd_names_snapshot_verify_roll_back_and_forward_exactly(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    root, t01 = str(ws.root), os.fsencode(ws.root / "tasks/T01")
    # tracked by a plain git commit before clawback adopts the workspace
    write(t01, b"tracked\xe9.py")
    write(t01, b"tracked \n.py")
    git(ws, "add", "--", "tasks/T01/tracked\udce9.py", "tasks/T01/tracked \n.py")
    git(ws, "commit", "-q", "-m", "odd names, committed by hand")
    run_init(root)
    # untracked when 1.2.0 is snapshotted (the snapshot commits them)
    for name in UTF8_NAMES + RAW_NAMES:
        write(t01, name)
    os.symlink(b"caf\xe9.py", os.path.join(t01, b"link\xe9"))
    write(t01, b"state/\xff\xfe.json", b"{}\n")   # runtime state: never snapshotted or touched
    assert run_snapshot(root, "T01", bump="minor").tag == "T01-v1.2.0"
    v12 = tree(t01)
    assert set(v12) == at_tag(ws, "T01-v1.2.0")

    # 1.3.0: some changed, some removed (a whole odd directory), some added
    write(t01, b"\xff\xfe.txt", b"changed\n")
    write(t01, b"L" * 255, b"changed\n")
    for gone in (b"caf\xe9.py", b"d\xe9ir/x\xff.py", b"new\ndir/-x.py", b"D" * 200 + b"/" + b"F" * 255):
        os.unlink(os.path.join(t01, gone))
        os.rmdir(os.path.dirname(os.path.join(t01, gone))) if b"/" in gone else None
    write(t01, b"added\xe0.py")
    write(t01, b"sp ace/\t")
    assert run_snapshot(root, "T01", bump="minor").tag == "T01-v1.3.0"
    v13 = tree(t01)
    assert set(v13) == at_tag(ws, "T01-v1.3.0") and b"d\xe9ir" not in os.listdir(t01)
    write(t01, b"untracked\xfa.py", b"uncommitted work\n")   # added since: the rollback removes it

    for version in ("1.2.0", "1.3.0"):
        assert verify_snapshot(ws, "T01", version).ok
        code, out, _ = cli(capsys, "verify-snapshot", "--task", "T01", "--version", version,
                        "--workspace", root)
        assert code == 0 and "verified" in out
    exported = parse_yaml((ws.state_dir / "snapshots/snapshot-T01-v1.2.0.yaml").read_text("utf-8"))
    assert exported.intact and exported.snapshot == verify_snapshot(ws, "T01", "1.2.0").snapshot

    code, out, _ = cli(capsys, "status", "--json", "--workspace", root)
    t01_row = next(t for t in json.loads(out)["result"]["tasks"] if t["id"] == "T01")
    assert code == 0 and fs_names(t01_row["drift"]) == {b"untracked\xfa.py"}
    code, out, _ = cli(capsys, "status", "--workspace", root)
    assert code == 0 and "1 file(s)" in out
    code, out, _ = cli(capsys, "history", "--task", "T01", "--workspace", root)
    assert code == 0 and "T01-v1.3.0" in out
    code, out, _ = cli(capsys, "verify-rollback", "--task", "T01", "--expected", "1.3.0", "--workspace", root)
    assert code == 1 and 'extra "tasks/T01/untracked\\xfa.py"' in out   # escaped, on one line

    code, out, _ = cli(capsys, "rollback", "--task", "T01", "--to", "1.2.0", "--dry-run", "--json",
                    "--workspace", root)
    plan = json.loads(out)["result"]["files"]
    assert code == 0 and "\\udce9" in out
    assert fs_names(plan["added"]) == {b"caf\xe9.py", b"d\xe9ir/x\xff.py", b"new\ndir/-x.py",
                                       b"D" * 200 + b"/" + b"F" * 255}
    assert fs_names(plan["removed"]) == {b"added\xe0.py", b"sp ace/\t", b"untracked\xfa.py"}
    assert fs_names(plan["changed"]) == {b"config.yaml", b"\xff\xfe.txt", b"L" * 255}
    code, out, _ = cli(capsys, "rollback", "--task", "T01", "--to", "1.2.0", "--dry-run", "--workspace", root)
    assert code == 0 and '"tasks/T01/caf\\xe9.py"' in out and '"tasks/T01/new\\ndir/-x.py"' in out
    assert tree(t01) == {**v13, b"untracked\xfa.py": b"uncommitted work\n"}   # nothing changed

    back = run_rollback(root, "T01", "1.2.0", reason="odd names")
    assert tree(t01) == v12
    kept = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", back.backup_ref, "--",
                           "tasks/T01"], cwd=ws.root, capture_output=True, check=True).stdout
    assert b"tasks/T01/untracked\xfa.py" in kept.split(b"\0")
    assert sorted(os.listdir(os.path.join(t01, b"state"))) == [b"positions.json", b"\xff\xfe.json"]
    levels = verify_live(ws, "T01", "1.2.0")
    assert [lv.level for lv in levels] == [1, 2, 3, 4] and all(lv.ok for lv in levels), levels
    code, out, _ = cli(capsys, "verify-rollback", "--task", "T01", "--expected", "1.2.0", "--workspace", root)
    assert code == 0 and "verified" in out

    code, out, _ = cli(capsys, "rollback", "--task", "T01", "--to", "1.3.0", "--json", "--workspace", root)
    assert code == 0 and json.loads(out)["result"]["tag"] == "T01-v1.3.0-rollback-from-v1.2.0"
    assert tree(t01) == v13 and b"d\xe9ir" not in os.listdir(t01)   # emptied directories go
    assert all(lv.ok for lv in verify_live(ws, "T01", "1.3.0"))
    code, out, _ = cli(capsys, "verify-rollback", "--task", "T01", "--expected", "1.3.0", "--json",
                    "--workspace", root)
    assert code == 0 and [lv["ok"] for lv in json.loads(out)["result"]["levels"]] == [True] * 4
    assert AuditLog(ws.state_dir).verify().ok

    # a real process on a strict UTF-8 stdout, with an odd name in the output
    write(t01, b"again\xe9\n.py")
    proc = subprocess.run([sys.executable, "-m", "clawback", "verify-rollback", "--task", "T01",
                           "--expected", "1.3.0", "--workspace", root], capture_output=True,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"}, check=False)
    assert proc.returncode == 1 and b'extra "tasks/T01/again\\xe9\\n.py"' in proc.stdout, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "clawback", "status", "--json", "--workspace", root],
                          capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
                          check=False)
    assert proc.returncode == 0 and b"tasks/T01/again\\udce9\\n.py" in proc.stdout, proc.stderr
    code, out, _ = cli(capsys, "health", "--task", "T01", "--workspace", root)
    assert code == 1 and 'files differ from the snapshot: "tasks/T01/again\\xe9\\n.py"' in out


@pytest.mark.parametrize(("name", "symlink"), [
    (b".GIT", False), (b"sub/git~1", False), (b".git.", False), (b".Git ", False),
    (b"sub/.gitmodules", True),
])
def test_a_name_git_will_not_store_is_refused_naming_it(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: bytes, symlink: bool) -> None:
    """git add skips such a file with a warning only: the snapshot would lack it while saying
    it has every file, and a rollback would delete it with no backup (its backup skips it too)."""
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    root, t01 = str(ws.root), os.fsencode(ws.root / "tasks/T01")
    run_init(root)
    assert run_snapshot(root, "T01", bump="minor").tag == "T01-v1.2.0"
    if symlink:
        os.makedirs(os.path.dirname(os.path.join(t01, name)), exist_ok=True)
        os.symlink(b"../main.py", os.path.join(t01, name))
    else:
        write(t01, name, b"precious\n")
    head = git(ws, "rev-parse", "HEAD")

    code, out, _ = cli(capsys, "snapshot", "--task", "T01", "--json", "--workspace", root)
    error = json.loads(out)["error"]
    assert code == 2 and error["type"] == "UnstorableName"
    assert fs_names(error["paths"]) == {name} and "leave it out" in error["message"]
    assert "rename it" in error["hint"] and "state_paths" in error["hint"]
    assert git(ws, "rev-parse", "HEAD") == head and ws.git.tag_info("T01-v1.2.1") is None

    code, _, err = cli(capsys, "rollback", "--task", "T01", "--to", "1.1.0", "--workspace", root)
    assert code == 2
    assert f"git cannot store the file name {filenames.shown(os.fsdecode(b'tasks/T01/' + name))}" in err
    assert "backup could not keep it" in err and "next: rename it" in err
    assert git(ws, "rev-parse", "HEAD") == head and ws.task("T01").version == "1.2.0"
    if symlink:
        assert os.readlink(os.path.join(t01, name)) == b"../main.py"
    else:
        with open(os.path.join(t01, name), "rb") as fh:
            assert fh.read() == b"precious\n"


def test_a_file_that_became_a_directory_is_no_false_refusal(ws: Workspace,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The deleted file's index entry and the new directory's files never meet in the check."""
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    root, t01 = str(ws.root), os.fsencode(ws.root / "tasks/T01")
    run_init(root)
    write(t01, b"x\xe9", b"a file\n")
    assert run_snapshot(root, "T01", bump="minor").tag == "T01-v1.2.0"
    os.unlink(os.path.join(t01, b"x\xe9"))
    write(t01, b"x\xe9/y", b"in a directory\n")
    assert run_snapshot(root, "T01", bump="minor").tag == "T01-v1.3.0"
    assert at_tag(ws, "T01-v1.3.0") >= {b"x\xe9/y"} and b"x\xe9" not in at_tag(ws, "T01-v1.3.0")
    assert verify_snapshot(ws, "T01", "1.3.0").ok


# -- the manifest and its export -------------------------------------------------------------
def _snap(paths: list[str]) -> Snapshot:
    return Snapshot(
        task_id="T01", version="1.2.0", created_at="2026-01-02T03:04:05Z", git_commit="a" * 40,
        git_tag="T01-v1.2.0", message="\u6da8\u505c strategy\nsecond line", creator="tester@ci",
        location="tasks/T01",
        files=tuple(FileEntry(p, "sha256:" + "0" * 64, 1, "100644") for p in paths),
        registry_entry={"id": "T01", "name": "\u6da8\u505c\u7b56\u7565"},
        registry_checksum="sha256:" + "1" * 64, python_packages=("a==1",), python_lock="a==1\n",
        python_lock_digest="sha256:" + "2" * 64, python_mode="venv",
        environment_variables=("TUSHARE_TOKEN",), runtime={"entry_point": "main.py"},
        state_paths=("state/",))


def test_a_manifest_of_utf8_names_keeps_its_bytes_and_digest() -> None:
    """Backward compatible: the tag message, digest and export of UTF-8 names (odd ones
    included) are byte for byte what clawback wrote before raw-byte names were supported."""
    snap = _snap([os.fsdecode(b"tasks/T01/" + n) for n in UTF8_NAMES[:12]] + ["tasks/T01/main.py"])
    # the values clawback's code before this change computes for the same snapshot
    assert snap.digest == "sha256:bc58ec3be2b5e8f1ea39c65df524fbd1e62b3edce555f50030314a38c16096e6"
    assert hashlib.sha256(snap.tag_message().encode()).hexdigest() == \
        "090043d9c9f885adcb695f6ead3f445ea134648eeb999d70411089688c9cbebe"
    assert hashlib.sha256(snap.to_yaml().encode()).hexdigest() == \
        "eb7b45d689f36f3499e8ccda43915762104d095aee2332a2c906093acaaf2860"


def test_raw_byte_names_round_trip_through_the_tag_message_and_the_export() -> None:
    paths = [os.fsdecode(b"tasks/T01/" + n) for n in RAW_NAMES + UTF8_NAMES]
    snap = _snap(paths)
    message = snap.tag_message()
    message.encode("utf-8")                       # valid UTF-8: git and every reader take it
    assert '"tasks/T01/caf\\udce9.py"' in message  # the byte as its JSON escape
    parsed = parse_tag_message(message)
    assert parsed.intact and parsed.snapshot == snap
    assert [os.fsencode(f.path) for f in parsed.snapshot.files] == [os.fsencode(p) for p in paths]
    tampered = parse_tag_message(message.replace("caf\\udce9", "caf\\udce8"))
    assert not tampered.intact

    exported = snap.to_yaml()
    exported.encode("utf-8")
    assert parse_yaml(exported).intact and parse_yaml(exported).snapshot == snap
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml reads it as well
    first = yaml.load(exported, Loader=loader)["files"][0]["path"]
    assert first == b"tasks/T01/caf\xe9.py"                   # !!binary: the exact bytes


@pytest.mark.parametrize(("name", "shown"), [
    ("tasks/T01/main.py", "tasks/T01/main.py"),
    ("tasks/T01/caf\u00e9 \u6da8\u505c.py", "tasks/T01/caf\u00e9 \u6da8\u505c.py"),
    ("tasks/T01/-rf.py", "tasks/T01/-rf.py"),
    (os.fsdecode(b"caf\xe9.py"), '"caf\\xe9.py"'),
    ("new\nline\t.py", '"new\\nline\\t.py"'),
    ("q\"uote\\.py", '"q\\"uote\\\\.py"'),
    (" lead.py", '" lead.py"'),
    ("evil\u202eyp.exe", '"evil\\u202eyp.exe"'),
])
def test_shown_names_stay_on_one_line_and_say_which_bytes(name: str, shown: str) -> None:
    assert filenames.shown(name) == shown
    assert filenames.printable(f"x {name}").encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b and b"/" not in b),
                min_size=1, max_size=4))
def test_any_name_survives_json_yaml_and_display(parts: list[bytes]) -> None:
    name = os.fsdecode(b"/".join(parts))
    assert filenames.to_bytes(name) == b"/".join(parts)
    text = filenames.json_text(json.dumps({"path": name}, ensure_ascii=False))
    assert json.loads(text.encode("utf-8"))["path"] == name
    exported = yaml.dump(filenames.yaml_safe({"path": name}), Dumper=yaml.SafeDumper, allow_unicode=True)
    assert filenames.from_yaml_safe(yaml.safe_load(exported.encode("utf-8")))["path"] == name
    display = filenames.shown(name)
    assert "\n" not in display and "\r" not in display and display.encode("utf-8")
    assert display == name or display.startswith('"')


def test_non_utf8_message_or_reason_is_refused_not_a_crash(ws: Workspace, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")
    run_init(str(ws.root))
    code, _, err = cli(capsys, "snapshot", "--task", "T02", "-m", os.fsdecode(b"caf\xe9"),
                  "--workspace", str(ws.root))
    assert code == 2 and "--message is not valid UTF-8" in err
    assert ws.git.tag_info("T02-v2.0.2") is None
    run_snapshot(str(ws.root), "T02", bump="patch")
    code, _, err = cli(capsys, "rollback", "--task", "T02", "--to", "2.0.1", "--reason",
                       os.fsdecode(b"caf\xe9"), "--workspace", str(ws.root))
    assert code == 2 and "--reason is not valid UTF-8" in err
    assert ws.task("T02").version == "2.0.2"


def test_audit_entries_with_raw_bytes_stay_valid_utf8_and_chained(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("rollback", task="T01", result="failed", error=os.fsdecode(b"no such file caf\xe9.py"))
    log.append("snapshot", task="T01")
    assert log.path.read_bytes().decode("utf-8") and log.verify().ok
    assert next(log.entries("T01"))["details"]["error"] == os.fsdecode(b"no such file caf\xe9.py")


@pytest.mark.prefect
def test_odd_names_through_flow_runs_on_a_prefect_server(
        prefect_server: str, ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside flow runs every step is a task run whose state (and a failure's message) goes to
    the server as JSON: a raw-byte name must not reach it unescaped."""
    from flows.prefect_flows import init_flow, rollback_flow, snapshot_flow

    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    root, t01 = str(ws.root), os.fsencode(ws.root / "tasks/T01")
    init_flow(root)
    for name in RAW_NAMES + [b"new\nline.py", b"-rf.py"]:
        write(t01, name)
    snapshot_flow(root, "T01", bump="minor")                      # 1.2.0
    v12 = tree(t01)
    write(t01, b"caf\xe9.py", b"changed\n")
    write(t01, b"added\xe0.py")
    snapshot_flow(root, "T01", bump="minor")                      # 1.3.0
    result = rollback_flow(root, "T01", "1.2.0", reason="odd names")
    assert result.tag == "T01-v1.2.0-rollback-from-v1.3.0" and tree(t01) == v12
    entry = list(AuditLog(ws.state_dir).entries("T01"))[-1]
    assert entry["action"] == "rollback" and entry["details"]["orchestrator"] == "prefect"
    assert all(lv.ok for lv in verify_live(ws, "T01", "1.2.0"))
