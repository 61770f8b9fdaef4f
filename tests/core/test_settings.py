"""Per-task settings defaults and validation; state-path matching."""

from __future__ import annotations

import pytest

from tasks_lib.core import settings
from tasks_lib.core.errors import BadInput, SecretsFound
from tasks_lib.runtime.statepaths import StatePaths


def test_defaults() -> None:
    s = settings.parse("T01", None)
    assert s.run.type == "process" and s.python == "venv" and s.health.threshold == 0.1
    assert s.health.min_samples == 10 and s.smoke_timeout_s == 60


@pytest.mark.parametrize("rel", ["state/pos.json", "logs/runs.jsonl", "sub/data/x.bin", "a.db",
                                 "deep/er/t.csv", "output/report.txt", "backups/old.tar", "x.log"])
def test_default_state_paths_match(rel: str) -> None:
    assert settings.TaskSettings().is_state(rel)


@pytest.mark.parametrize("rel", ["main.py", "config.yaml", "state.py", "lib/logs.py", "data.py",
                                 "requirements.txt", "dbtools/x.py"])
def test_code_is_not_state(rel: str) -> None:
    assert not settings.TaskSettings().is_state(rel)


def test_anchored_patterns() -> None:
    state = StatePaths.of(["cache/x.bin", "models/w/"])
    assert state.matches("cache/x.bin") and not state.matches("sub/cache/x.bin")
    assert state.matches("models/w/a.pt")


@pytest.mark.parametrize(("patterns", "rel", "expected"), [
    (["**/tmp/**"], "a/b/tmp/c/d.txt", True),           # ** at any depth
    (["/cache/"], "cache/x.bin", True),                  # anchored at the task directory
    (["/cache/"], "lib/cache/x.bin", False),
    (["*.parquet", "!keep.parquet"], "keep.parquet", False),  # negation, within one version
    (["*.parquet", "!keep.parquet"], "other.parquet", True),
    (["!universe.csv"], "universe.csv", False),          # an explicit ! may version a default
    (["\\#literal"], "#literal", True),                  # escapes
    (["a[bc].bin"], "ab.bin", True),
    (["models/"], "models", True),                       # a symlink named like a state dir
])
def test_gitignore_semantics(patterns: list[str], rel: str, expected: bool) -> None:
    assert StatePaths.of(patterns).matches(rel) is expected


def test_files_the_settings_name_are_state_and_cannot_be_negated() -> None:
    s = settings.parse("T01", {"run": {"pidfile": "run.pid"}, "state_paths": ["!run.pid"],
                               "health": {"source": "metrics/[odd] name*.txt"}})
    assert s.is_state("run.pid") and s.is_state("metrics/[odd] name*.txt")
    assert not s.is_state("metrics/x name1.txt") and not s.is_state("sub/run.pid")


def test_the_union_of_two_versions_keeps_what_either_treats_as_state() -> None:
    old = StatePaths.of(["cache/"])
    new = StatePaths.of(["!universe.csv"])
    both = new.union(old)
    assert not new.matches("universe.csv") and not new.matches("cache/positions.bin")
    assert both.matches("cache/positions.bin")         # the other version's state
    assert both.matches("universe.csv")                # versioned by one, state for the other
    assert both.matches("logs/runs.jsonl")             # the defaults always apply


@pytest.mark.parametrize("raw", [
    {"run": {"type": "docker"}},
    {"run": {"type": "systemd"}},
    {"run": {"type": "systemd", "unit": "x; rm -rf /"}},
    {"run": {"type": "command", "start": "./run.sh"}},
    {"health": {"threshold": 2}},
    {"health": {"min_samples": 0}},
    {"environment_variables": ["OK", "not ok"]},
    {"state_paths": ["../outside"]},
    {"state_paths": [""]},
    {"state_paths": ["a\0b"]},
    {"smoke_timeout_s": True},
    {"run": {"pidfile": "../../etc/passwd"}},
    {"health": {"source": "/var/log/syslog"}},
    {"health": {"source": "-rf"}},
    {"frobnicate": 1},
    [],
])
def test_bad_settings_are_bad_input(raw: object) -> None:
    with pytest.raises(BadInput) as err:
        settings.parse("T01", raw)
    assert "T01" in err.value.message


def test_full_settings_parse() -> None:
    s = settings.parse("T01", {
        "run": {"type": "command", "start": ["./run.sh"], "stop": ["./stop.sh"]},
        "python": "none", "smoke": ["python", "-c", "pass"], "environment_variables": ["TOKEN"],
        "health": {"source": "logs/out.log", "threshold": 0.2}, "state_paths": ["cache/"],
    })
    assert s.run.start == ("./run.sh",) and s.python == "none" and s.smoke == ("python", "-c", "pass")
    assert s.is_state("cache/a") and s.is_state("logs/a.log")  # the defaults always apply
    assert s.as_dict()["run"]["start"] == ["./run.sh"]


# a credential where a variable name belongs (docs/design.md, "Secrets"); built by concatenation
# so that no scanner mistakes this file for a leak
GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
AKIA = "AKIA" + "Z7QW3ERT5YUI8OPA"
HEX = "a94a8fe5ccb19ba6" + "1c4c0873d391e987982fbbd3"


@pytest.mark.parametrize("names", [[GHP], ["TUSHARE_TOKEN", AKIA], ["A", "B", HEX]])
def test_a_credential_listed_as_a_name_is_refused_by_position(names: list[str]) -> None:
    with pytest.raises(SecretsFound) as err:
        settings.parse("T01", {"environment_variables": names})
    exc = err.value
    where = f"clawback.environment_variables[{len(names) - 1}]"
    assert exc.exit_code == 3 and where in exc.message and exc.paths[0].endswith(where)
    assert names[-1] not in f"{exc} {exc!r} {exc.args} {exc.paths} {exc.hint}"


def test_real_variable_names_stay_accepted() -> None:
    names = ["TUSHARE_TOKEN", "FEISHU_APP_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
             "OPENAI_API_KEY", "HF_TOKEN", "PYTHONDONTWRITEBYTECODE", "X509_CERT_DIR",
             "DINGTALK_ROBOT_TOKEN_V2", "GITHUB_TOKEN", "CUDA_VISIBLE_DEVICES", "ghp_token"]
    assert settings.parse("T01", {"environment_variables": names}).environment_variables == tuple(names)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", [3]])
def test_stable_after_must_be_a_whole_number_of_checks(bad: object) -> None:
    with pytest.raises(BadInput) as info:
        settings.parse("T01", {"stable_after": bad})
    assert "clawback.stable_after must be an integer" in info.value.message


def test_stable_after_is_read_and_kept_out_of_the_manifest_runtime() -> None:
    parsed = settings.parse("T01", {"stable_after": 3})
    assert parsed.stable_after == 3 and settings.parse("T01", {}).stable_after is None
    assert "stable_after" not in parsed.as_dict()  # a policy: manifests stay as they were
