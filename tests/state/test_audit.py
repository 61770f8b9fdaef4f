"""The audit log: hash chain catches edits, removals and reordering; credentials are masked."""

from __future__ import annotations

import json
from pathlib import Path

from tasks_lib.secrets.values import mask_credentials
from tasks_lib.state.audit import AuditLog


def test_chain_detects_edit_removal_and_reorder(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    for i in range(4):
        log.append("snapshot", task="T01", to_version=f"1.{i}.0")
    assert log.verify().ok and log.verify().entries == 4
    lines = log.path.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["to"] = "9.9.9"
    for variant, where in (
        ([lines[0], json.dumps(edited), *lines[2:]], 2),
        ([lines[0], *lines[2:]], 2),
        ([lines[0], lines[2], lines[1], lines[3]], 2),
    ):
        log.path.write_text("\n".join(variant) + "\n")
        check = log.verify()
        assert not check.ok and check.broken_at == where


def test_credentials_never_reach_the_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("snapshot", task="T01", result="pushed-failed",
               error="git push https://bot:ghp_abcdef123456@git.example/x.git failed",
               webhook="https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-4e5f",
               url="https://hooks.example/send?access_token=deadbeefcafe&x=1")
    text = log.path.read_text()
    for leaked in ("ghp_abcdef123456", "0a1b2c3d-4e5f", "deadbeefcafe"):
        assert leaked not in text
    assert log.verify().ok


def test_mask_keeps_ordinary_urls() -> None:
    url = "https://pypi.example/simple/pandas/?page=2"
    assert mask_credentials(url) == url
