"""An option given an empty value is bad input (exit 2, nothing run, nothing changed), never taken
as its default: ``diff --v2 ''`` is not the working tree, ``preview --materialize ''`` not a new
directory, ``gc --task ''`` not every task, ``--workspace ''`` not the current directory. Every
value-taking option of every command is tried, so a new option is covered when it is added."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from clawback import cli
from clawback.cli import EMPTY_ALLOWED, build_parser, main
from clawback.commands.interface import Outcome
from tasks_lib.core.workspace import Workspace
from tests.conftest import git, tree


def _commands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _commands() -> dict[str, argparse.ArgumentParser]:
    return _commands_of(build_parser())


def _cases() -> list[tuple[str, str]]:
    return [(name, a.option_strings[-1]) for name, p in sorted(_commands().items())
            for a in p._actions
            if a.option_strings and a.nargs != 0 and a.dest not in EMPTY_ALLOWED]


def _argv(command: str, option: str) -> list[str]:
    """``command`` with its required arguments given valid values and ``option`` given ''."""
    argv = [command]
    for a in _commands()[command]._actions:
        if not a.option_strings and a.dest != "hook_args" and a.choices:
            argv.append(sorted(a.choices)[0])                       # hook NAME
        elif a.required and a.option_strings and option not in a.option_strings:
            argv += [a.option_strings[-1], "T01" if a.dest == "task" else "1.1.0"]
    return [*argv, option, ""]


CASES = _cases()


def test_the_cases_include_the_ones_found_by_the_red_team() -> None:
    for case in (("diff", "--v1"), ("diff", "--v2"), ("preview", "--materialize"),
                 ("preview", "--show"), ("gc", "--task"), ("status", "--workspace"),
                 ("snapshot", "--allow-secret"), ("snapshot", "--base")):
        assert case in CASES
    assert ("rollback", "--reason") not in CASES and ("snapshot", "--message") not in CASES


@pytest.fixture
def adopted(ws: Workspace) -> Workspace:
    from flows.init import run_init

    run_init(str(ws.root))
    return ws


def test_every_option_given_an_empty_value_is_exit_2_and_changes_nothing(
        adopted: Workspace, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, every command's handler replaced by one that only says it ran: a case the
    check misses fails here instead of running (``serve`` would start a server)."""
    def guarded() -> argparse.ArgumentParser:
        parser = real()
        for p in _commands_of(parser).values():
            p.set_defaults(handler=lambda args: Outcome(0, None, "ran"))
        return parser

    real = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", guarded)
    monkeypatch.setenv("CLAWBACK_ORCHESTRATOR", "none")
    monkeypatch.chdir(adopted.root)
    before = (tree(adopted.root / "tasks"), git(adopted, "log", "--all", "--oneline"),
              (adopted.root / "task_registry.json").read_bytes(), git(adopted, "status", "-s"))
    wrong = []
    for command, option in CASES:
        argv = _argv(command, option)
        if option != "--workspace":
            argv += ["--workspace", str(adopted.root)]
        try:
            code = main(argv)
        except SystemExit as exc:    # argparse's own refusal (a typed option): also exit 2
            code = exc.code
        err = capsys.readouterr().err
        if code != 2 or "Traceback" in err or (
                "was given an empty value" not in err and "error: argument" not in err):
            wrong.append((argv, code, err[-300:]))
    assert wrong == []
    assert before == (tree(adopted.root / "tasks"), git(adopted, "log", "--all", "--oneline"),
                      (adopted.root / "task_registry.json").read_bytes(),
                      git(adopted, "status", "-s"))


@pytest.mark.parametrize("argv", [
    ["diff", "--task", "T01", "--v1", ""],
    ["diff", "--task", "T01", "--v2", ""],
    ["preview", "--task", "T01", "--version", "1.1.0", "--materialize", ""],
    ["preview", "--task", "", "--version", "1.1.0"],
    ["gc", "--task", "", "--dry-run"],
])
def test_empty_values_from_a_real_process(adopted: Workspace, argv: list[str]) -> None:
    env = {**os.environ, "CLAWBACK_ORCHESTRATOR": "none"}
    proc = subprocess.run([sys.executable, "-m", "clawback", *argv, "--workspace",
                           str(adopted.root)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    option = argv[argv.index("") - 1]
    assert f"{option} was given an empty value" in proc.stderr
    assert "leave it out for its default" in proc.stderr
    assert not (adopted.state_dir / "previews").exists()
