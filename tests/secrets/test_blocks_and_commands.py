"""Multi-line secrets and command-line credentials (red-team findings 2 and 3): a private-key
block is masked whole in every renderer (diff text and --json, preview --show and the summary,
the rollback's diff artifact), a value found secret in one section is masked in all of them,
and the credentials command-line tools take are found by the scanner, refused by snapshot (exit
3, naming the key path or file, never the value) and masked wherever they are shown."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from typing import Any

import pytest

from flows.diffreport import render_markdown
from flows.init import run_init
from tasks_lib.core.workspace import Workspace
from tasks_lib.secrets import configs, masking
from tasks_lib.secrets.blocks import mask_blocks
from tasks_lib.secrets.commands import mask_commands
from tasks_lib.secrets.files import scan_file
from tasks_lib.versiondiff.compare import diff_task
from tests.conftest import git

BODY = "MIIEowIBAAKCAQEAq7Zr3dT3amPrivateKeyBodyLine0123456789abcdefXYZ"
BODY2 = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2g"
BODY3 = "lQOYBGXrealPgpSecretKeyBodyQ0FBQUFBQWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"
CERT_BODY = "MIIDdzCCAl+gAwIBAgIEPublicCertificateBodyStaysVisible0123456789"


def cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none"}
    return subprocess.run([sys.executable, "-m", "clawback", *args, "--workspace", str(ws.root)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def both(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture
def inited(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    run_init(str(ws.root))
    return ws


def set_smoke(ws: Workspace, command: object) -> None:
    reg = ws.root / "task_registry.json"
    doc = json.loads(reg.read_text())
    entry = next(e for e in doc["tasks"] if e["id"] == "T01")  # the sample's list form
    entry.setdefault("clawback", {})["smoke"] = command
    reg.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def unchanged(ws: Workspace) -> tuple[str, bytes]:
    return git(ws, "rev-parse", "HEAD"), (ws.root / ".git/index").read_bytes()


# --------------------------------------------------------------------------- private keys

KEY_FILES = {
    "deploy_key.pem": f"-----BEGIN RSA PRIVATE KEY-----\n{BODY}\n{BODY[::-1]}\n"
                      "-----END RSA PRIVATE KEY-----\n",
    "keys.py": f'SSH_KEY = """-----BEGIN OPENSSH PRIVATE KEY-----\n{BODY2}\n'
               '-----END OPENSSH PRIVATE KEY-----\n"""\nprint(1)\n',
    "notes.md": f"pasted, cut short:\n-----BEGIN PGP SECRET KEY BLOCK-----\n\n{BODY3}\n",
    "cert.pem": f"-----BEGIN CERTIFICATE-----\n{CERT_BODY}\n-----END CERTIFICATE-----\n",
}
BODIES = (BODY, BODY[::-1], BODY2, BODY3)


def test_mask_blocks_keeps_lines_and_masks_to_the_end_when_the_end_is_missing() -> None:
    text = KEY_FILES["deploy_key.pem"] + "after\n"
    masked = mask_blocks(text)
    assert masked.splitlines() == ["***", "***", "***", "***", "after"]
    assert mask_blocks("  -----BEGIN EC PRIVATE KEY-----\n  abc\n") == "  ***\n  ***\n"
    escaped = json.dumps(KEY_FILES["deploy_key.pem"])  # one line of JSON
    assert BODY not in mask_blocks(escaped) and mask_blocks(escaped).startswith('"***')
    assert mask_blocks(KEY_FILES["cert.pem"]) == KEY_FILES["cert.pem"]  # public: shown


def test_a_private_key_body_is_never_shown(inited: Workspace) -> None:
    ws = inited
    t01 = ws.root / "tasks/T01"
    for name, text in KEY_FILES.items():
        (t01 / name).write_text(text)
    cfg = t01 / "config.yaml"  # a key under a harmless name, as a YAML block scalar
    cfg.write_text(cfg.read_text() + "tls_material: |\n  -----BEGIN PRIVATE KEY-----\n"
                   f"  {BODY}\n  -----END PRIVATE KEY-----\n")
    outputs = {"diff": both(cli(ws, "diff", "--task", "T01")),
               "diff --json": both(cli(ws, "--json", "diff", "--task", "T01"))}
    before = unchanged(ws)
    refused = cli(ws, "snapshot", "--task", "T01", "-m", "keys")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "deploy_key.pem" in refused.stderr and "keys.py" in refused.stderr
    assert "notes.md" in refused.stderr and "tls_material" in refused.stderr
    outputs["refusal"] = both(refused)
    assert unchanged(ws) == before
    allow = [a for f in ("deploy_key.pem", "keys.py", "notes.md") for a in ("--allow-secret", f)]
    ok = cli(ws, "snapshot", "--task", "T01", "--bump", "minor", "-m", "keys", *allow, "--allow-secret", "tls_material")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    outputs["diff versions"] = both(cli(ws, "diff", "--task", "T01", "--v1", "1.1.0", "--v2", "1.2.0"))
    outputs["diff versions --json"] = both(cli(ws, "--json", "diff", "--task", "T01", "--v1",
                                                "1.1.0", "--v2", "1.2.0"))
    for name in ("deploy_key.pem", "keys.py", "notes.md"):
        shown = cli(ws, "preview", "--task", "T01", "--version", "1.2.0", "--show", name)
        assert shown.returncode == 0, shown.stderr
        outputs[f"--show {name}"] = both(shown)
    outputs["preview"] = both(cli(ws, "preview", "--task", "T01", "--version", "1.2.0"))
    outputs["preview --json"] = both(cli(ws, "--json", "preview", "--task", "T01", "--version",
                                          "1.2.0"))
    outputs["artifact"] = render_markdown(diff_task(ws, "T01", "1.2.0", "1.1.0"))
    leaks = {where: body[:12] for where, out in outputs.items() for body in BODIES if body in out}
    assert not leaks
    assert "print(1)" in outputs["--show keys.py"]  # the rest of the file is still shown
    assert CERT_BODY in outputs["diff"] and CERT_BODY in outputs["diff versions --json"]
    assert "***" in outputs["diff"] and "***" in outputs["--show deploy_key.pem"]
    doc = json.loads(outputs["diff versions --json"])  # still valid JSON
    assert doc["result"]["code"]["files"]


# --------------------------------------------------------------------------- command lines

PW = "Secr3tPw9"
FORMS = {
    "PGPASSWORD": f"PGPASSWORD={PW}1 psql -h db -c 'select 1'",
    "MYSQL_PWD": f"MYSQL_PWD={PW}2 mysql -h db -e 'select 1'",
    "mysql -p": f"mysql -u quant -p{PW}3 -h db -e 'select 1'",
    "--password=": f"mysql --password={PW}4 -h db",
    "--password V": f"mysqladmin --password {PW}5 ping",
    "curl -u": f"curl -fsS -u admin:{PW}6 http://127.0.0.1:9/health",
    "curl --user": f"curl -fsS --user admin:{PW}7 http://127.0.0.1:9/health",
    "redis-cli -a": f"redis-cli -h cache -a {PW}8 ping",
    "sshpass -p": f"sshpass -p {PW}9 ssh box true",
    "Bearer": f"curl -H 'Authorization: Bearer {PW}0abcdefXYZ' http://127.0.0.1:9/",
}
NOT_CREDENTIALS = [
    "python -m http.server -p 8080", "ssh -p 2222 box true", "mysql -u root -p quant",
    "docker run -u 1000:1000 img", "docker run --user app:app img", "uvicorn app -p 8000",
    "PGPASSWORD=$PGPASSWORD psql", "mysql -p\"$MYSQL_PW\" db", "redis-cli -a ${REDIS_PW} ping",
    "curl -u $USER:$PASS http://x", "mysql --defaults-file=/etc/my.cnf -p", "sshpass -e ssh box",
]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_form_is_found_in_a_script_a_command_string_and_an_argv(form: str) -> None:
    command = FORMS[form]
    value = re.search(rf"{PW}\w*", command).group()  # type: ignore[union-attr]
    assert scan_file("tasks/T01/db.sh", (command + "\n").encode()), form
    argv = shlex.split(command)
    assert scan_file("tasks/T01/db.py", f"subprocess.run({argv!r})\n".encode()), form
    assert [f.path for f in configs.scan({"smoke": command})] == ["smoke"]
    assert configs.scan({"run": {"start": argv}}), form
    assert value not in mask_commands(command)
    assert value not in " ".join(masking.mask_argv(argv))


@pytest.mark.parametrize("command", NOT_CREDENTIALS)
def test_ports_references_and_prompts_are_not_credentials(command: str) -> None:
    assert not scan_file("tasks/T01/db.sh", (command + "\n").encode())
    assert not configs.scan({"smoke": command})
    assert mask_commands(command) == command


@pytest.mark.parametrize("form", ["PGPASSWORD", "curl -u", "redis-cli -a", "Bearer", "mysql -p"])
def test_a_command_line_credential_is_refused_then_masked_everywhere(inited: Workspace,
                                                                      form: str) -> None:
    ws = inited
    command = FORMS[form]
    secret = re.search(rf"{PW}\w*", command).group()  # type: ignore[union-attr]
    set_smoke(ws, command)
    (ws.root / "tasks/T01/db.sh").write_text(f"#!/bin/sh\n{command}\n")
    # the same value again where no rule would find it: masked because it was found elsewhere
    (ws.root / "tasks/T01/NOTES.md").write_text(f"ops said the value is {secret} for now\n")
    outputs = {"diff": both(cli(ws, "diff", "--task", "T01")),
               "diff --json": both(cli(ws, "--json", "diff", "--task", "T01"))}
    assert "clawback.smoke" in outputs["diff"] and "runtime.smoke" in outputs["diff"]
    before = unchanged(ws)
    refused = cli(ws, "snapshot", "--task", "T01", "-m", "smoke")
    outputs["refusal"] = both(refused)
    assert refused.returncode == 3 and unchanged(ws) == before
    assert "registry.clawback.smoke" in refused.stderr and "db.sh" in refused.stderr
    ok = cli(ws, "snapshot", "--task", "T01", "--bump", "minor", "-m", "smoke", "--allow-secret",
             "registry.clawback.smoke", "--allow-secret", "db.sh")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    diff = cli(ws, "diff", "--task", "T01", "--v1", "1.1.0", "--v2", "1.2.0")
    outputs["diff versions"] = both(diff)
    assert "runtime.smoke" in diff.stdout and "NOTES.md" in diff.stdout
    outputs["diff versions --json"] = both(cli(ws, "--json", "diff", "--task", "T01", "--v1",
                                                "1.1.0", "--v2", "1.2.0"))
    outputs["preview"] = both(cli(ws, "preview", "--task", "T01", "--version", "1.2.0"))
    outputs["preview --json"] = both(cli(ws, "--json", "preview", "--task", "T01", "--version",
                                          "1.2.0"))
    for name in ("db.sh", "NOTES.md"):
        outputs[f"--show {name}"] = both(cli(ws, "preview", "--task", "T01", "--version",
                                             "1.2.0", "--show", name))
    outputs["artifact"] = render_markdown(diff_task(ws, "T01", "1.2.0", "1.1.0"))
    leaks = [where for where, out in outputs.items() if secret in out]
    assert not leaks
    assert "ops said the value is ***" in outputs["diff versions"]
    assert "***" in outputs["--show db.sh"]


def test_preview_runtime_settings_are_masked_as_data() -> None:
    """The runtime settings are masked value by value: a flagged path is ``***``, the values found
    there are masked in the other strings, and a value that starts with a token no longer turns
    the settings into YAML that does not load."""
    from tasks_lib.preview.summary import masked_settings
    from tasks_lib.versiondiff.keyed import secret_values, shown_values

    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    runtime = {"smoke": token, "run": {"start": ["redis-cli", "-a", PW + "x"]},
               "note": f"uses {PW}x"}
    shown: Any = masked_settings(runtime, list(shown_values(secret_values(runtime))))
    assert shown == {"smoke": "***", "run": {"start": ["redis-cli", "-a", "***"]},
                     "note": "uses ***"}


# --------------------------------------------------------------------------- keys as lists

KEY_LINES = ["-----BEGIN RSA PRIVATE KEY-----", BODY, BODY[::-1], "-----END RSA PRIVATE KEY-----"]


def test_a_private_key_held_as_a_list_or_mapping_of_lines_is_masked_whole() -> None:
    from tasks_lib.versiondiff.keyed import diff_data  # noqa: PLC0415
    old = {"k": KEY_LINES, "ssh": {"lines": dict(enumerate(KEY_LINES))}, "cut": ["ok", *KEY_LINES[:2]]}
    new = {"k": [*KEY_LINES[:1], BODY + "X", *KEY_LINES[2:]], "ssh": old["ssh"], "cut": old["cut"]}
    shown = diff_data(None, old) + diff_data(old, new)
    text = repr(shown)
    assert BODY not in text and BODY[::-1] not in text
    assert any(c.path == "cut[0]" and c.new == '"ok"' for c in shown)  # outside the block


def test_a_key_list_in_config_and_registry_is_masked_in_diff(inited: Workspace) -> None:
    ws = inited
    cfg = ws.root / "tasks/T01/config.yaml"
    cfg.write_text(cfg.read_text() + "deploy_key_lines:\n" + "".join(f'  - "{x}"\n' for x in KEY_LINES))
    reg = ws.root / "task_registry.json"
    doc = json.loads(reg.read_text())
    entry = next(e for e in doc["tasks"] if e["id"] == "T01")
    entry["deploy_key"] = KEY_LINES
    entry["ssh"] = {"lines": {str(i): x for i, x in enumerate(KEY_LINES)}}
    reg.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    outs = [both(cli(ws, "diff", "--task", "T01")), both(cli(ws, "--json", "diff", "--task", "T01")),
            both(cli(ws, "--json", "diff", "--task", "T01", "--stat"))]
    assert not [o for o in outs if BODY in o or BODY[::-1] in o]
    assert "deploy_key_lines[2]" in outs[0]  # the change is still listed, its value masked
