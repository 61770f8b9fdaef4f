"""A rollback's work does not grow with the number of other tasks in the workspace.

Wall time is too noisy for a test; this counts what used to grow instead: registry parses,
per-task settings resolved, containers of the registry read, tag listings and whole-index
refreshes (each of those read every task). bench/bench_rollback.py measures the time.
"""

from __future__ import annotations

import pytest

import flows.rollback as fr
from clawback.demo import sample
from tasks_lib.core import settings
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats import jsonfmt
from tasks_lib.gitops import repo as gitrepo

OTHER_TASKS = 30


def _counting(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, counts: dict[str, list],
              key: str) -> None:
    real = getattr(owner, name)

    def counted(*args: object, **kw: object) -> object:
        counts[key].append(args)
        return real(*args, **kw)

    monkeypatch.setattr(owner, name, counted)


def test_rollback_reads_the_other_tasks_a_fixed_number_of_times(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.init import run_init
    from flows.snapshot import run_snapshot

    monkeypatch.setenv("TUSHARE_TOKEN", "test-value")
    sample.add_tasks(ws.root, OTHER_TASKS)
    run_init(str(ws.root))
    main = ws.root / "tasks/T01/main.py"
    main.write_text(sample.T01_MAIN.format(version="1.2.0"))
    run_snapshot(str(ws.root), "T01", bump="minor")                  # 1.2.0
    main.write_text(sample.T01_MAIN.format(version="1.3.0"))
    run_snapshot(str(ws.root), "T01", bump="minor")                  # 1.3.0
    before = ws.registry_path.read_text()

    counts: dict[str, list] = {"parse": [], "settings": [], "git": [], "expand": []}
    _counting(monkeypatch, jsonfmt, "parse", counts, "parse")
    _counting(monkeypatch, settings, "parse", counts, "settings")
    _counting(monkeypatch, gitrepo.Git, "run", counts, "git")
    real_expand = jsonfmt.Document._expand

    def expand(doc: jsonfmt.Document, node: object) -> None:
        if not node.expanded:  # type: ignore[attr-defined]
            counts["expand"].append(node)
        real_expand(doc, node)  # type: ignore[arg-type]

    monkeypatch.setattr(jsonfmt.Document, "_expand", expand)
    fr.run_rollback(str(ws.root), "T01", "1.2.0")

    # the file as found, the target commit's file, the file as saved: each parsed once
    assert len(counts["parse"]) == 3
    # T01's settings only (preflight, verify), never every task's
    assert len(counts["settings"]) <= 3
    # root, tasks, T01 and the parts of T01 that changed: no other entry is even looked into
    assert len(counts["expand"]) <= 8
    commands = [args[1:3] for args in counts["git"]]
    assert not [c for c in commands if c[0] == "for-each-ref"]  # tags are read by name
    assert ("update-index", "-q") not in commands                # no whole-index refresh

    # and the registry is byte-identical outside T01's entry
    after = ws.registry_path.read_text()
    assert after != before
    assert after[:after.index('"id": "T01"')] == before[:before.index('"id": "T01"')]
    assert after[after.index('"id": "T02"'):] == before[before.index('"id": "T02"'):]
