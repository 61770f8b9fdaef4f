"""verify-snapshot catches a moved tag, an edited manifest, a consistent forgery and a
lightweight tag, and names what mismatched."""

from __future__ import annotations

import json

import pytest

from flows.init import run_init
from flows.snapshot import run_snapshot
from tasks_lib.core.errors import NotFound
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats.manifest import END_MARKER, MARKER, digest_of
from tasks_lib.verify_snapshot import verify_snapshot
from tests.conftest import git


@pytest.fixture
def two_versions(ws: Workspace) -> Workspace:
    run_init(str(ws.root))
    (ws.root / "tasks/T01/signals.py").write_text("x = 1\n")
    run_snapshot(str(ws.root), "T01", bump="minor")
    return ws


def failed(ws: Workspace, version: str) -> dict[str, str]:
    v = verify_snapshot(ws, "T01", version)
    assert not v.ok
    return {c.name: c.detail for c in v.failures}


def retag(ws: Workspace, name: str, target: str, message: str) -> None:
    git(ws, "tag", "-d", name)
    ws.git.create_tag(name, target, message)


def test_both_versions_verify(two_versions: Workspace) -> None:
    for version in ("1.1.0", "1.2.0"):
        v = verify_snapshot(two_versions, "T01", version)
        assert v.ok, v.failures
        assert {c.name for c in v.checks} >= {"manifest intact", "files match git content",
                                             "tag points at recorded commit"}


def test_moved_tag_detected(two_versions: Workspace) -> None:
    ws = two_versions
    message = ws.git.tag_message("T01-v1.1.0")
    retag(ws, "T01-v1.1.0", "HEAD", message)
    fails = failed(ws, "1.1.0")
    assert "tag points at recorded commit" in fails
    assert "files match git content" not in fails  # the recorded commit itself is still intact


def _edit_manifest(message: str, edit, fix_digest: bool) -> str:
    start, end = message.index(MARKER) + len(MARKER), message.index(END_MARKER)
    doc = json.loads(message[start:end])
    edit(doc)
    if fix_digest:
        doc.pop("digest")
        doc["digest"] = digest_of(doc)
    return message[:start] + "\n" + json.dumps(doc, indent=1, ensure_ascii=False) + "\n" + message[end:]


def _flip_checksum(doc: dict) -> None:
    doc["files"][0]["checksum"] = "sha256:" + "0" * 64


def test_edited_manifest_detected(two_versions: Workspace) -> None:
    ws = two_versions
    info = ws.git.tag_info("T01-v1.2.0")
    assert info
    retag(ws, "T01-v1.2.0", info.commit or "", _edit_manifest(ws.git.tag_message("T01-v1.2.0"),
                                                              _flip_checksum, fix_digest=False))
    fails = failed(ws, "1.2.0")
    assert "manifest intact" in fails and "files match git content" in fails
    assert "changed tasks/T01/config.yaml" in fails["files match git content"]


def test_consistent_forgery_detected_by_content_and_audit(two_versions: Workspace) -> None:
    ws = two_versions
    info = ws.git.tag_info("T01-v1.2.0")
    assert info
    retag(ws, "T01-v1.2.0", info.commit or "", _edit_manifest(ws.git.tag_message("T01-v1.2.0"),
                                                              _flip_checksum, fix_digest=True))
    fails = failed(ws, "1.2.0")
    assert "manifest intact" not in fails  # recomputed digest...
    assert "files match git content" in fails and "audit log agrees" in fails  # ...still caught


def test_extra_file_in_commit_detected(two_versions: Workspace) -> None:
    ws = two_versions

    def drop_file(doc: dict) -> None:
        doc["files"] = [f for f in doc["files"] if not f["path"].endswith("signals.py")]

    info = ws.git.tag_info("T01-v1.2.0")
    assert info
    retag(ws, "T01-v1.2.0", info.commit or "", _edit_manifest(ws.git.tag_message("T01-v1.2.0"),
                                                              drop_file, fix_digest=True))
    assert "extra tasks/T01/signals.py" in failed(ws, "1.2.0")["files match git content"]


def test_lightweight_tag_fails(two_versions: Workspace) -> None:
    ws = two_versions
    git(ws, "tag", "-d", "T01-v1.2.0")
    git(ws, "tag", "T01-v1.2.0", "HEAD")
    assert "tag annotated" in failed(ws, "1.2.0")


def test_unknown_version_is_not_found_with_known_versions(two_versions: Workspace) -> None:
    with pytest.raises(NotFound) as err:
        verify_snapshot(two_versions, "T01", "9.9.9")
    assert err.value.exit_code == 2 and "1.1.0, 1.2.0" in (err.value.hint or "")


def test_cached_full_verification_is_trusted_only_for_the_same_tag_object(two_versions: Workspace) -> None:
    ws = two_versions
    full = verify_snapshot(ws, "T01", "1.2.0")              # full check, recorded
    assert full.ok and "verified in full" not in str(full.checks)
    fast = verify_snapshot(ws, "T01", "1.2.0", trust_cache=True)
    files = next(c for c in fast.checks if c.name == "files match git content")
    assert fast.ok and files.detail.startswith("verified in full at")
    # a re-made tag (new tag object) with an edited manifest is never taken from the cache
    info = ws.git.tag_info("T01-v1.2.0")
    assert info
    retag(ws, "T01-v1.2.0", info.commit or "", _edit_manifest(ws.git.tag_message("T01-v1.2.0"),
                                                              _flip_checksum, fix_digest=True))
    forged = verify_snapshot(ws, "T01", "1.2.0", trust_cache=True)
    assert not forged.ok and "files match git content" in {c.name for c in forged.failures}
