"""The third part of ``clawback demo``: the operator's toolbox on the same workspace (docs/design.md,
"Preview (the time machine)", "Diff", "Hotfix releases", "Registry sync").

T01 runs 1.2.0 again after the automatic rollback. The operator looks at 1.3.0 without touching
the live task (preview), sees what 1.3.0 changed against 1.2.0 (diff), ships a fix on top of the
stable 1.2.0 as a hotfix release, and checks that the registry, the configs and the tags agree
(sync-registry --check, what the post-merge hook runs).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from clawback import diffview, preview_render, render, sync_render
from clawback.demo.narrator import Story
from flows import runtime
from flows.snapshot import run_snapshot
from tasks_lib import registry_sync
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.preview import resolve
from tasks_lib.preview.summary import summarize
from tasks_lib.versiondiff.compare import diff_task

FIX = "def score(bars):\n    return sum(bars) / len(bars) if bars else 0.0  # 空行情不再除零\n"


def toolbox_story(story: Story, ws: Workspace) -> None:
    root = str(ws.root)
    r = story.step("preview T01 1.3.0 (the time machine): the live task is not touched",
                   lambda: _untouched(ws, lambda: summarize(ws, resolve.resolve(ws, "T01", "1.3.0"))))
    if not isinstance(r, Exception):
        story.say(_head(preview_render.summary(r), 12))
    r = story.step("diff T01 1.2.0 -> 1.3.0: code, config key by key, dependencies, registry",
                   lambda: _untouched(ws, lambda: diff_task(ws, "T01", "1.2.0", "1.3.0").stat()))
    story.show(r, lambda d: diffview.text(d, stat=True))

    (ws.root / "tasks" / "T01" / "signals.py").write_text(FIX, encoding="utf-8")
    r = story.step("hotfix on top of the stable 1.2.0: snapshot --hotfix",
                   lambda: runtime.run("snapshot", run_snapshot, workspace=root, task_id="T01",
                                       hotfix=True, message="修复: 空行情时除零"))
    story.show(r, render.snapshot)
    r = story.step("sync-registry --check: the registry, configs and tags agree",
                   lambda: _agrees(ws))
    story.show(r, sync_render.report)


def _fingerprint(ws: Workspace) -> str:
    """HEAD, the index, the registry and every file of T01 but the log its process appends to
    while the demo runs (its other runtime state included)."""
    h = hashlib.sha256(ws.git.out("rev-parse", "HEAD").encode())
    h.update((Path(ws.git.git_dir()) / "index").read_bytes() + ws.registry_path.read_bytes())
    t01 = ws.root / "tasks" / "T01"
    for path in sorted(t01.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.parent != t01 / "logs":
            h.update(str(path).encode() + path.read_bytes())
    return h.hexdigest()


def _untouched(ws: Workspace, look):  # type: ignore[no-untyped-def]
    before = _fingerprint(ws)
    value = look()
    if _fingerprint(ws) != before:
        raise ClawbackError("the live workspace changed during a read-only look")
    return value


def _agrees(ws: Workspace) -> registry_sync.SyncReport:
    report = registry_sync.check(ws)
    if not report.ok:
        raise ClawbackError(sync_render.report(report))
    return report


def _head(text: str, n: int) -> str:
    lines = text.splitlines()
    return "\n".join(lines[:n] + ([f"   … ({len(lines) - n} more lines)"] if len(lines) > n else []))
