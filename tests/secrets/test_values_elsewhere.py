"""A secret value found in a version is masked wherever else an output prints it: file names
(diff, preview), another file in ``preview --show``, the snapshot message (preview, history)."""

from __future__ import annotations

import json

from tasks_lib.core.workspace import Workspace
from tests.secrets.test_blocks_and_commands import both, cli, inited  # noqa: F401 (fixture)

V = "ZqElsewhere7Kw3xP"


def test_a_config_secret_is_masked_in_names_other_files_and_messages(inited: Workspace) -> None:  # noqa: F811
    ws = inited
    t01 = ws.root / "tasks/T01"
    cfg = t01 / "config.yaml"
    cfg.write_text(cfg.read_text() + f'db:\n  password: "{V}"\n')
    (t01 / f"cache-{V}.txt").write_text("cached\n")
    (t01 / "notes.txt").write_text(f"the old one was {V}\n")
    outs = {"diff": both(cli(ws, "diff", "--task", "T01")),
            "diff --json --stat": both(cli(ws, "--json", "diff", "--task", "T01", "--stat"))}
    ok = cli(ws, "snapshot", "--task", "T01", "--bump", "minor", "-m", f"rotated {V}",
             "--allow-secret", "db.password")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    outs["preview"] = both(cli(ws, "preview", "--task", "T01", "--version", "1.2.0"))
    outs["preview --json"] = both(cli(ws, "--json", "preview", "--task", "T01", "--version", "1.2.0"))
    shown = cli(ws, "preview", "--task", "T01", "--version", "1.2.0", "--show", "notes.txt")
    assert shown.returncode == 0, shown.stderr
    outs["--show notes.txt"] = both(shown)
    outs["history"] = both(cli(ws, "history", "--task", "T01"))
    outs["history --json"] = both(cli(ws, "--json", "history", "--task", "T01"))
    assert [where for where, out in outs.items() if V in out] == []
    assert "cache-***.txt" in outs["diff"] and "cache-***.txt" in outs["preview"]  # recognisable
    assert "the old one was ***" in outs["--show notes.txt"]
    assert "rotated ***" in outs["history"]
    assert json.loads(outs["preview --json"])["result"]["files"]
