"""tasks_lib.formats.config (version line edits, env var names) and tasks_lib.secrets.configs (plaintext secrets)."""

from __future__ import annotations

import difflib
import random
import sys

import pytest
import yaml

from tasks_lib.core.errors import (
    EXIT_CONFLICT,
    BadInput,
    MalformedFile,
    SecretsFound,
    exit_code_for,
)
from tasks_lib.formats import config
from tasks_lib.secrets import configs as secrets
from tasks_lib.secrets.configs import Finding

# --------------------------------------------------------------------------- helpers


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines between two texts, line endings kept."""
    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(keepends=True), new.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def assert_one_line_replaced(old: str, new: str) -> tuple[str, str]:
    removed, added = changed_lines(old, new)
    assert len(removed) == 1 and len(added) == 1, (removed, added)
    return removed[0], added[0]


def assert_one_line_inserted(old: str, new: str) -> str:
    removed, added = changed_lines(old, new)
    assert removed == [] and len(added) == 1, (removed, added)
    return added[0]


def loaded_without_version(text: str) -> dict:
    data = yaml.safe_load(text) or {}
    data.pop("version", None)
    return data


REALISTIC = """\
# T01 daily stock screener
# maintained by ops; edited by the agent too

version: 1.3.0   # bumped by clawback
name: "选股 daily"
defaults: &defaults
  retries: 3
  timeout: 30
data_sources:
  tushare:
    <<: *defaults
    token: ${TUSHARE_TOKEN}
    version: "2"          # the API version, not ours
  cache:
    path: data/cache.db
schedule: {cron: "30 9 * * 1-5", tz: Asia/Shanghai}
plugins:
  - name: screener
    version: 0.4.1
notes: |
  version: 9.9.9 inside a block scalar is text
"""


# --------------------------------------------------------------------------- read_version


@pytest.mark.parametrize(
    "text, expected",
    [
        ("version: 1.3.0\n", "1.3.0"),
        ("version: '1.3.0'\n", "1.3.0"),
        ('version: "1.3.0"\n', "1.3.0"),
        ("version: 1.3.0  # inline comment\n", "1.3.0"),
        ("version: 1.3\n", "1.3"),  # loads as a float; the raw text is what counts
        ("version: 1.30\n", "1.30"),
        ("version: 2\n", "2"),
        ("version: 1.3.0\r\nname: x\r\n", "1.3.0"),
        ("name: x\nnested:\n  version: 9.9.9\n", None),
        ("", None),
        ("# only a comment\n", None),
        ("version:\n", None),
        ("version: ~\n", None),
        ("---\nversion: 1.0.0\n...\n---\nversion: 2.0.0\n", "1.0.0"),  # first document only
        ("{version: 1.2.3, a: 1}\n", "1.2.3"),
        ("'version': 1.2.3\n", "1.2.3"),
        ("v: &v 1.0.0\nversion: *v\n", "1.0.0"),
        ("- version: 1.0.0\n", None),
        (REALISTIC, "1.3.0"),
    ],
)
def test_read_version(text: str, expected: str | None) -> None:
    assert config.read_version(text) == expected


def test_read_version_tolerates_broken_yaml() -> None:
    # PyYAML cannot scan this file; a line-based reading still finds the version
    text = "version: 1.2.0\nname: x\n\tbad: tab\n"
    with pytest.raises(MalformedFile):
        config.load(text)
    assert config.read_version(text) == "1.2.0"


# --------------------------------------------------------------------------- set_version


@pytest.mark.parametrize(
    "text, old_line, new_line",
    [
        ("version: 1.3.0\n", "version: 1.3.0\n", "version: 1.4.0\n"),
        ("version: '1.3.0'\n", "version: '1.3.0'\n", "version: '1.4.0'\n"),
        ('version: "1.3.0"\n', 'version: "1.3.0"\n', 'version: "1.4.0"\n'),
        (
            "a: 1\nversion:    1.3.0    # keep me\nb: 2\n",
            "version:    1.3.0    # keep me\n",
            "version:    1.4.0    # keep me\n",
        ),
        ("version: 1.3\n", "version: 1.3\n", "version: 1.4.0\n"),
        ("version: !!str 1.3\n", "version: !!str 1.3\n", "version: !!str 1.4.0\n"),
        ("version:\nname: x\n", "version:\n", "version: 1.4.0\n"),
        ("version: 1.3.0", "version: 1.3.0", "version: 1.4.0"),  # no final newline
        (
            REALISTIC,
            "version: 1.3.0   # bumped by clawback\n",
            "version: 1.4.0   # bumped by clawback\n",
        ),
    ],
)
def test_set_version_changes_exactly_one_line(text: str, old_line: str, new_line: str) -> None:
    result = config.set_version(text, "1.4.0")
    assert assert_one_line_replaced(text, result) == (old_line, new_line)
    assert config.read_version(result) == "1.4.0"
    assert str(yaml.safe_load(result)["version"]) == "1.4.0"
    assert loaded_without_version(result) == loaded_without_version(text)


def test_set_version_keeps_crlf_bytes() -> None:
    text = "# c\r\nversion: '1.3.0' # x\r\nlist:\r\n  - a\r\n"
    result = config.set_version(text, "2.0.0")
    assert result == "# c\r\nversion: '2.0.0' # x\r\nlist:\r\n  - a\r\n"
    assert result.encode().count(b"\r\n") == text.encode().count(b"\r\n")


def test_set_version_keeps_anchors_aliases_and_nested_versions() -> None:
    result = config.set_version(REALISTIC, "1.3.1")
    before, after = yaml.safe_load(REALISTIC), yaml.safe_load(result)
    assert after["data_sources"]["tushare"]["version"] == "2"
    assert after["data_sources"]["tushare"]["retries"] == 3  # merge key still works
    assert after["plugins"][0]["version"] == "0.4.1"
    assert after["notes"] == before["notes"]
    assert "&defaults" in result and "<<: *defaults" in result
    assert "version: 9.9.9 inside a block scalar" in result


def test_set_version_accepts_leading_v() -> None:
    assert config.set_version("version: 1.0.0\n", "v1.0.1") == "version: 1.0.1\n"


def test_set_version_replaces_an_alias_value() -> None:
    text = "base: &v 1.0.0\nversion: *v\n"
    result = config.set_version(text, "1.1.0")
    assert assert_one_line_replaced(text, result) == ("version: *v\n", "version: 1.1.0\n")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: x\n", "version: 1.4.0\nname: x\n"),
        ("# header\n# more\n\nname: x\n", "# header\n# more\n\nversion: 1.4.0\nname: x\n"),
        ("# header\r\n\r\nname: x\r\n", "# header\r\n\r\nversion: 1.4.0\r\nname: x\r\n"),
        ("---\nname: x\n", "---\nversion: 1.4.0\nname: x\n"),
        ("%YAML 1.1\n--- # doc\nname: x\n", "%YAML 1.1\n--- # doc\nversion: 1.4.0\nname: x\n"),
        ("", "version: 1.4.0\n"),
        ("# only comments", "# only comments\nversion: 1.4.0\n"),
        ("\ufeffname: x\n", "\ufeffversion: 1.4.0\nname: x\n"),
        ("nested:\n  version: 1.0.0\n", "version: 1.4.0\nnested:\n  version: 1.0.0\n"),
    ],
)
def test_set_version_inserts_missing_line(text: str, expected: str) -> None:
    result = config.set_version(text, "1.4.0")
    assert result == expected
    if text.endswith("\n"):  # the BOM stays first, so compare without it
        added = assert_one_line_inserted(text.lstrip("\ufeff"), result.lstrip("\ufeff"))
        assert added.startswith("version: 1.4.0")
    assert yaml.safe_load(result)["version"] == "1.4.0"


def test_set_version_inserted_line_overrides_a_merged_version() -> None:
    text = "base: &b\n  version: 1.0.0\n<<: *b\nname: x\n"
    assert config.read_version(text) == "1.0.0"
    result = config.set_version(text, "1.1.0")
    assert assert_one_line_inserted(text, result) == "version: 1.1.0\n"
    assert yaml.safe_load(result)["version"] == "1.1.0"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("{version: 1.0.0, name: x}\n", "flow mapping"),
        ("version: |\n  1.0.0\nname: x\n", "block scalar"),
        ("version: >-\n  1.0.0\n", "block scalar"),
        ("version: &v 1.0.0\nsame_as_version: *v\n", "also change same_as_version"),
        ("version: 1.0.0\nname: x\nversion: 1.1.0\n", "more than once"),
        ("version: [1, 0, 0]\n", "not a plain value"),
        ("version: 1.0.0\n  continued\n", "spans several lines"),
        ("? version\n: 1.0.0\n", "spans several lines"),
        ("- version: 1.0.0\n", "not a mapping"),
        ("just a string\n", "not a mapping"),
    ],
)
def test_set_version_refuses_what_it_cannot_edit_in_place(text: str, needle: str) -> None:
    with pytest.raises(MalformedFile) as info:
        config.set_version(text, "2.0.0")
    assert needle in info.value.message
    assert info.value.hint


def test_set_version_flow_hint_says_what_to_do() -> None:
    with pytest.raises(MalformedFile) as info:
        config.set_version("{version: 1}\n", "2.0.0")
    assert "plain `version: X.Y.Z` line" in info.value.hint


@pytest.mark.parametrize("bad", ["1.2", "01.2.3", "1.2.3\n", "latest", "", "1.2.3-rc1", "../1.2.3"])
def test_set_version_rejects_invalid_new_version(bad: str) -> None:
    with pytest.raises(BadInput) as info:
        config.set_version("version: 1.0.0\n", bad)
    assert not isinstance(info.value, MalformedFile)


@pytest.mark.parametrize(
    "text, line",
    [
        ('name: x\ntoken: "sk-live-SECRETVALUE123\n', 3),  # unterminated quote
        ("a: 1\nb: [1, 2\nc: SECRETVALUE123\n", 3),
        ("a: 1\n  b: SECRETVALUE123: 2\n", 2),
        ("a: 1\n\tpassword: SECRETVALUE123\n", 2),
        ("a: *SECRETVALUE123\n", 1),
    ],
)
def test_invalid_yaml_is_malformed_with_line_and_no_content(text: str, line: int) -> None:
    for call in (
        lambda: config.set_version(text, "1.0.0"),
        lambda: config.load(text),
        lambda: secrets.scan_text(text),
    ):
        with pytest.raises(MalformedFile) as info:
            call()
        rendered = f"{info.value} {info.value!r} {info.value.args}"
        assert f"line {line}" in info.value.message
        assert "SECRETVALUE" not in rendered
        assert "sk-live" not in rendered
        assert info.value.hint


# --------------------------------------------------------------------------- load


def test_load_empty_and_comment_only() -> None:
    assert config.load("") == {}
    assert config.load("# nothing\n---\n") == {}


@pytest.mark.parametrize(
    "text, needle",
    [
        ("- a\n- b\n", "list"),
        ("hello\n", "single string"),
        ("a: 1\n---\nb: 2\n", "line 2"),
        ("when: 2026-13-45\n", "cannot be read"),
        ("x: !!python/object/apply:os.system ['echo hi']\n", "line 1"),
    ],
)
def test_load_refuses(text: str, needle: str) -> None:
    with pytest.raises(MalformedFile) as info:
        config.load(text, source="tasks/T01/config.yaml")
    assert needle in str(info.value)
    assert info.value.message.startswith("tasks/T01/config.yaml:")


def test_load_reads_local_tags_as_plain_values() -> None:
    assert config.load("token: !ENV ${TOKEN}\nx: !include other.yaml\n") == {
        "token": "${TOKEN}",
        "x": "other.yaml",
    }


# --------------------------------------------------------------------------- env var names


def test_env_var_names_from_all_sources() -> None:
    text = (
        "version: 1.0.0\n"
        "environment_variables: [TUSHARE_TOKEN, LOG_LEVEL]\n"
        "db:\n  url: postgres://app:${DB_PASSWORD}@${DB_HOST:-localhost}/app\n"
        "cache: ${CACHE_DIR:-${HOME}/.cache}\n"
        "opt: '${OPT-x} ${REQ:?set REQ} ${ALT:+y} ${_UNDER}'\n"
        "# old: ${COMMENTED_OUT}\n"
        "not_refs: '$PLAIN ${1BAD} ${} $${'\n"
        "notes: |\n  uses ${IN_BLOCK}\n"
    )
    names = config.env_var_names(config.load(text), text, declared=["FEISHU_WEBHOOK", "LOG_LEVEL"])
    assert names == sorted(
        {
            "TUSHARE_TOKEN", "LOG_LEVEL", "DB_PASSWORD", "DB_HOST", "CACHE_DIR", "HOME", "OPT",
            "REQ", "ALT", "_UNDER", "IN_BLOCK", "FEISHU_WEBHOOK",
        }
    )  # fmt: skip


def test_env_var_names_accepts_mapping_and_name_objects() -> None:
    cfg = {"environment_variables": [{"name": "A", "required": True}, "B"]}
    assert config.env_var_names(cfg, "") == ["A", "B"]
    cfg = {"environment_variables": {"C": "the api token", "D": None}}
    assert config.env_var_names(cfg, "") == ["C", "D"]
    assert config.env_var_names({}, "", declared=()) == []
    assert config.env_var_names({"environment_variables": None}, "a: 1\n") == []


@pytest.mark.parametrize(
    "cfg, declared, label",
    [
        (
            {"environment_variables": ["OK", "TUSHARE_TOKEN=8700SECRET"]},
            [],
            "config environment_variables[1]",
        ),
        ({"environment_variables": ["1ABC"]}, [], "config environment_variables[0]"),
        ({"environment_variables": ["HAS-DASH"]}, [], "config environment_variables[0]"),
        ({"environment_variables": [42]}, [], "config environment_variables[0]"),
        ({"environment_variables": 42}, [], "config environment_variables"),
        ({}, ["GOOD", "bad name"], "registry environment_variables[1]"),
        ({}, ["ÄRGER"], "registry environment_variables[0]"),
    ],
)
def test_env_var_names_rejects_invalid_names(cfg: dict, declared: list, label: str) -> None:
    with pytest.raises(BadInput) as info:
        config.env_var_names(cfg, "", declared=declared)
    assert info.value.message.startswith(label)
    assert "8700SECRET" not in str(info.value)


# --------------------------------------------------------------------------- properties

_SEMVER = [f"{a}.{b}.{c}" for a in (0, 1, 10) for b in (0, 3, 12) for c in (0, 7, 100)]
_WORDS = ["name", "data", "token_env", "retries", "path", "x", "选股", "version_note"]


def _random_config(rng: random.Random) -> tuple[str, str | None]:
    """A hand-written-looking config; returns (text, the version as written or None)."""
    nl = rng.choice(["\n", "\r\n"])
    lines: list[str] = []
    for _ in range(rng.randint(0, 2)):
        lines.append(rng.choice(["# comment", "", "# version: 0.0.1 (old)"]))
    if rng.random() < 0.3:
        lines.append("---")
    version = rng.choice(_SEMVER) if rng.random() < 0.85 else None
    blocks: list[list[str]] = []  # top-level entries; the version goes between two of them
    for i in range(rng.randint(0, 5)):
        key = f"{rng.choice(_WORDS)}_{i}"
        kind = rng.randint(0, 5)
        if kind == 0:
            blocks.append([f"{key}: {rng.choice(['1', 'true', 'hello world', '~', '1.5'])}"])
        elif kind == 1:
            blocks.append(
                [f"{key}:", f"  version: {rng.choice(_SEMVER)}", "  deep:", "    version: '2'"]
            )
        elif kind == 2:
            blocks.append([f"{key}: &a{i}", "  k: v", f"{key}_alias: *a{i}"])
        elif kind == 3:
            blocks.append([f"{key}:", "  - version: 3.0.0", "  - plain item  # comment"])
        elif kind == 4:
            blocks.append([f"{key}: |", "  version: 7.7.7", "  text"])
        else:
            blocks.append([f"{key}: {{version: 5.5.5, b: [1, 2]}}"])
    if version is not None:
        quote = rng.choice(["", "'", '"'])
        comment = rng.choice(["", "  # current", " #x"])
        spacing = rng.choice([" ", "   "])  # PyYAML refuses a tab before a quote
        line = f"version:{spacing}{quote}{version}{quote}{comment}"
        blocks.insert(rng.randint(0, len(blocks)), [line])
    body = [line for block in blocks for line in block]
    text = nl.join(lines + body) + (nl if rng.random() < 0.9 else "")
    return text, version


def _check_config_roundtrip(text: str, version: str | None, new: str) -> None:
    data = yaml.safe_load(text) or {}
    assert config.read_version(text) == (None if "version" not in data else str(data["version"]))
    assert config.read_version(text) == version
    result = config.set_version(text, new)
    if version is None:
        if text.endswith(("\n", "\r\n")) or not text:
            assert assert_one_line_inserted(text, result).startswith(f"version: {new}")
    elif version == new:
        assert result == text
    else:
        old_line, new_line = assert_one_line_replaced(text, result)
        assert old_line.replace(version, new, 1) == new_line
    assert config.read_version(result) == new
    assert loaded_without_version(result) == loaded_without_version(text)


def test_property_read_and_set_version_agree_with_yaml_seeded() -> None:
    rng = random.Random(20260224)
    for _ in range(400):
        text, version = _random_config(rng)
        _check_config_roundtrip(text, version, rng.choice(_SEMVER))


def test_property_read_and_set_version_agree_with_yaml_hypothesis() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=150, deadline=None)
    @hypothesis.given(seed=st.integers(0, 2**32), new=st.sampled_from(_SEMVER))
    def run(seed: int, new: str) -> None:
        text, version = _random_config(random.Random(seed))
        _check_config_roundtrip(text, version, new)

    @hypothesis.settings(max_examples=150, deadline=None)
    @hypothesis.given(
        data=st.dictionaries(
            st.text("abcxyz_", min_size=1, max_size=6),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["version", "a", "b"]), inner, max_size=3)
                ),
                max_leaves=6,
            ),
            max_size=4,
        ),
        version=st.sampled_from(_SEMVER),
        flow=st.booleans(),
    )
    def dumped(data: dict, version: str, flow: bool) -> None:
        data = {**data, "version": version}
        text = yaml.safe_dump(data, default_flow_style=None if flow else False, allow_unicode=True)
        hypothesis.assume(yaml.safe_load(text) == data)  # PyYAML's own round-trip quirks (\x85)
        assert config.read_version(text) == version
        if text.startswith("{"):  # safe_dump wrote a flow mapping: refused, not mangled
            with pytest.raises(MalformedFile):
                config.set_version(text, "9.9.9")
            return
        result = config.set_version(text, "9.9.9")
        assert_one_line_replaced(text, result)
        assert yaml.safe_load(result) == {**data, "version": "9.9.9"}

    run()
    dumped()


# --------------------------------------------------------------------------- secrets: scan


def paths(text: str) -> list[tuple[str, str]]:
    return [(f.path, f.kind) for f in secrets.scan_text(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("token: 8700abcdef0123456789\n", [("token", "secret-key")]),
        ("token: 8700123456\n", [("token", "secret-key")]),  # a number is plaintext too
        ("api_key: sk-proj-abcdef\n", [("api_key", "secret-key")]),
        ("password: changeme\n", [("password", "secret-key")]),
        ("apiKey: abc\n", [("apiKey", "secret-key")]),
        ("APIKey: abc\n", [("APIKey", "secret-key")]),
        ("X-Api-Key: abc\n", [("X-Api-Key", "secret-key")]),
        ("feishuAppSecret: abc\n", [("feishuAppSecret", "secret-key")]),
        ("tushare_token: abc\n", [("tushare_token", "secret-key")]),
        ("DB_PASSWORD: abc\n", [("DB_PASSWORD", "secret-key")]),
        ("client-secret: abc\n", [("client-secret", "secret-key")]),
        ("smtp.passwd: abc\n", [('["smtp.passwd"]', "secret-key")]),
        ("openai_key: sk-abcdefghijklmnopqrstuvwx\n", [("openai_key", "secret-key")]),
        ("key: 0123456789abcdef0123456789abcdef\n", [("key", "secret-key")]),
        ("数据库密码: abc\n", [("数据库密码", "secret-key")]),
        (
            "data_sources:\n  tushare:\n    token: '8700abc'\n",
            [("data_sources.tushare.token", "secret-key")],
        ),
        (
            "accounts:\n  - user: bob\n    password: hunter2\n  - user: eve\n    pwd: x1\n",
            [("accounts[0].password", "secret-key"), ("accounts[1].pwd", "secret-key")],
        ),
        (
            "notify:\n  channel: https://open.feishu.cn/open-apis/bot/v2/hook/0f1e2d3c-aaaa\n",
            [("notify.channel", "credential-url")],
        ),
        (
            "notify: [https://open.larksuite.com/open-apis/bot/v2/hook/abcd1234]\n",
            [("notify[0]", "credential-url")],
        ),
        (
            "db:\n  url: postgresql://app:s3cr3t@db.internal:5432/app\n",
            [("db.url", "credential-url")],
        ),
        ("redis: redis://:pw123@localhost:6379/0\n", [("redis", "credential-url")]),
        (
            "alert: https://hooks.slack.com/services/T000/B000/XXXXabc123\n",
            [("alert", "credential-url")],
        ),
        (
            "ding: https://oapi.dingtalk.com/robot/send?access_token=abc123def\n",
            [("ding", "credential-url")],
        ),
        (
            "wecom: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4\n",
            [("wecom", "credential-url")],
        ),
        ("api: https://api.example.com/v1?apikey=abc123&x=1\n", [("api", "credential-url")]),
        (
            "repo: https://ghp_abcdefghijklmnopqrstuvwxyz012345@github.com/o/r.git\n",
            [("repo", "credential-url")],
        ),
        ("urls: 'see feishu://abcdef123/ and more'\n", [("urls", "credential-url")]),
        ("dsn: postgresql://u:p@h/db\n", [("dsn", "secret-key")]),
        ("webhook: https://example.com/hook\n", [("webhook", "secret-key")]),
        ("secrets:\n  tushare: 8700abc\n  region: cn-north\n", [("secrets.tushare", "secret-key")]),
        ("api_keys: [k1, '${K2}']\n", [("api_keys[0]", "secret-key")]),
        ("token: ${TOKEN:-8700abc}\n", [("token", "secret-key")]),  # the default leaks
        ("private_key: '-----BEGIN PRIVATE KEY-----\\nMIIE'\n", [("private_key", "secret-key")]),
        (
            "cmd: [python, main.py, --token, abc123, --api-key=xyz, -v]\n",
            [("cmd[3]", "secret-key"), ("cmd[4]", "secret-key")],
        ),
        ("env: ['TUSHARE_TOKEN=abc', 'LOG_LEVEL=info']\n", [("env[0]", "secret-key")]),
        ("smoke: 'TUSHARE_TOKEN=abc python main.py'\n", [("smoke", "secret-key")]),
        ("run:\n  command: python main.py --password=hunter2\n", [("run.command", "secret-key")]),
        ("a: &t {token: zzz}\nb: *t\n", [("a.token", "secret-key")]),  # reported once
        (
            "secret: abc\ncredentials: def\n",
            [("secret", "secret-key"), ("credentials", "secret-key")],
        ),
        ("m: [[x, {password: pw}]]\n", [("m[0][1].password", "secret-key")]),
        (
            "bot_tokens: [abc, def]\n",
            [("bot_tokens[0]", "secret-key"), ("bot_tokens[1]", "secret-key")],
        ),
        ("db_passwords: {prod: pw1}\n", [("db_passwords.prod", "secret-key")]),
        (
            "password:\n  min_length: 8\n  policy: strict\n  prod: 9f8e7d6c5b4a39281706f5e4\n",
            [("password.prod", "secret-key")],
        ),
    ],
)
def test_scan_true_positives(text: str, expected: list[tuple[str, str]]) -> None:
    assert paths(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "token: ${TUSHARE_TOKEN}\n",
        "token: '${TUSHARE_TOKEN:-}'\n",
        "token: $TUSHARE_TOKEN\n",
        "token: env:TUSHARE_TOKEN\n",
        "token: ENV[TUSHARE_TOKEN]\n",
        "token: \"ENV['TUSHARE_TOKEN']\"\n",
        "token: '%TUSHARE_TOKEN%'\n",
        "token: '{{ vault_tushare_token }}'\n",
        "token: op://vault/tushare/token\n",
        "token: !ENV ${TUSHARE_TOKEN}\n",
        "auth: 'Bearer ${API_TOKEN}'\n",
        "db:\n  url: postgresql://app:${DB_PASSWORD}@db/app\n",
        "token:\n",
        "token: ~\n",
        "token: null\n",
        "token: ''\n",
        "token: '<your-token>'\n",
        "token: '***'\n",
        "token: xxx\n",
        "api_key: XXXXXXXX\n",
        "token: REPLACE_ME\n",
        "token: TODO\n",
        "token: your_token_here\n",
        "token: 你的tushare token\n",
        "password: true\n",
        "use_token: false\n",
        "max_tokens: 4096\n",
        "special_tokens: [abc, def]\n",
        "stop_tokens: [abc]\n",
        "max_keys: 100\n",
        "max_new_tokens: 512\n",
        "token_limit: 1000\n",
        "tokenizer: cl100k_base\n",
        "eos_token: '</s>'\n",
        "pad_token: '<pad>'\n",
        "next_page_token: abcdef123456\n",
        "primary_key: id\n",
        "sort_key: trade_date\n",
        "partition_key: abcdef0123456789abcdef01\n",
        "cache_key: user_profile_v2\n",
        "key_column: ts_code\n",
        "key: close\n",
        "s3_key: raw/2024/01/02/prices.parquet\n",
        "routing_key: orders.created\n",
        "token_env: TUSHARE_TOKEN\n",
        "password_file: /run/secrets/db\n",
        "private_key: /etc/ssl/private/app.key\n",
        "credentials: service-account.json\n",
        "secret_name: prod/tushare\n",
        "access_key_id: AKIDEXAMPLE\n",
        "dsn: sqlite:///state/app.db\n",
        "homepage: https://open.feishu.cn/document/home\n",
        "hook: https://open.feishu.cn/open-apis/bot/v2/hook/${FEISHU_HOOK}\n",
        "repo: https://github.com/o/r.git\n",
        "mail: mailto://user@example.com\n",
        "description: 'use --token to pass the token'\n",
        "secrets:\n  region: cn\n  enabled: true\n  path: /run/secrets\n",
        "environment_variables: [TUSHARE_TOKEN, FEISHU_APP_SECRET]\n",
        "created: 2026-02-24\n",
        "i18n:\n  sk: Slovenčina\n",
        "version: 1.3.0\n",
        "",
    ],
)
def test_scan_true_negatives(text: str) -> None:
    assert paths(text) == []


def test_scan_handles_cycles_and_odd_keys() -> None:
    data: dict = {"a": [], 1: {"password": "pw1"}, None: {"token": "t1"}, "a.b": {"token": "t2"}}
    data["a"].append(data)
    assert [f.path for f in secrets.scan(data)] == ["1.password", "None.token", '["a.b"].token']
    assert paths("a: &a [*a]\n") == []


def test_scan_top_level_list_and_scalar() -> None:
    assert [f.path for f in secrets.scan([{"token": "abc"}, ["--password", "pw"]])] == [
        "[0].token",
        "[1][1]",
    ]
    assert secrets.scan("https://u:pw@host/") == [Finding("(top level)", "credential-url")]
    assert secrets.scan(None) == [] and secrets.scan(42) == []


def test_scan_entry_registry_entry() -> None:
    entry = {
        "id": "T01",
        "name": "选股",
        "version": "1.3.0",
        "entry_point": "main.py",
        "dependencies": ["pandas", "python>=3.8"],
        "snapshots": [{"version": "1.2.0", "snapshot_file": "snapshot-T01-v1.2.0.yaml"}],
        "rollback_history": [{"reason": "token expired, rotated"}],
        "clawback": {
            "run": {"type": "command", "start": ["python", "main.py", "--token", "8700abc"]},
            "environment_variables": ["TUSHARE_TOKEN"],
            "notify": "https://open.feishu.cn/open-apis/bot/v2/hook/abc-123",
        },
    }
    assert [(f.path, f.kind) for f in secrets.scan_entry(entry)] == [
        ("clawback.run.start[3]", "secret-key"),
        ("clawback.notify", "credential-url"),
    ]


# --------------------------------------------------------------------------- secrets: never the value

SECRET_VALUES = ["8700deadbeefcafe", "hunter2-SECRET", "0f1e2d3c-aaaa-hook", "s3cr3t-pw"]
LEAKY = f"""\
version: 1.0.0
data_sources:
  tushare:
    token: {SECRET_VALUES[0]}
db:
  password: "{SECRET_VALUES[1]}"
  url: postgresql://app:{SECRET_VALUES[3]}@db/app
notify:
  - https://open.feishu.cn/open-apis/bot/v2/hook/{SECRET_VALUES[2]}
"""


def _assert_no_values(rendered: str) -> None:
    for value in SECRET_VALUES:
        assert value not in rendered
    assert "8700" not in rendered and "hunter2" not in rendered and "s3cr3t" not in rendered


def test_findings_and_refusal_never_contain_values() -> None:
    findings = secrets.scan_text(LEAKY)
    assert [f.path for f in findings] == [
        "data_sources.tushare.token",
        "db.password",
        "db.url",
        "notify[0]",
    ]
    for f in findings:
        assert set(vars(f)) == {"path", "kind"}  # the dataclass holds no value at all
        _assert_no_values(f"{f} {f!r} {vars(f)}")
    _assert_no_values(repr(findings))

    with pytest.raises(SecretsFound) as info:
        secrets.refuse_if_found(findings, "tasks/T01/config.yaml")
    exc = info.value
    _assert_no_values(f"{exc} {exc!r} {exc.args} {exc.message} {exc.hint} {exc.paths}")
    assert exc.message == (
        "tasks/T01/config.yaml: plaintext secrets at "
        "data_sources.tushare.token, db.password, db.url, notify[0]"
    )
    assert exc.paths == [f.path for f in findings]
    assert exit_code_for(exc) == EXIT_CONFLICT == 3
    assert "`token: ${TUSHARE_TOKEN}` at data_sources.tushare.token" in exc.hint
    assert "environment_variables" in exc.hint
    assert "--allow-secret" in exc.hint


def test_refuse_if_found_allowed_and_empty() -> None:
    findings = [Finding("token", "secret-key"), Finding("db.password", "secret-key")]
    secrets.refuse_if_found([], "config.yaml")
    secrets.refuse_if_found(findings, "config.yaml", allowed=["token", "db.password"])
    with pytest.raises(SecretsFound) as info:
        secrets.refuse_if_found(findings, "config.yaml", allowed=["token"])
    assert info.value.paths == ["db.password"]
    assert info.value.message == "config.yaml: plaintext secret at db.password"
    assert "`password: ${DB_PASSWORD}`" in info.value.hint


def test_redact_masks_values_and_keeps_the_rest() -> None:
    text = LEAKY.replace("\n", "\r\n") + "# trailing comment\r\nkept: value  # c\r\n"
    findings = secrets.scan_text(text)
    redacted = secrets.redact(text, findings)
    _assert_no_values(redacted)
    assert "kept: value  # c\r\n" in redacted and "# trailing comment\r\n" in redacted
    assert redacted.count("\r\n") == text.count("\r\n")
    assert secrets.scan_text(redacted) == []  # still YAML, nothing left to find
    data = yaml.safe_load(redacted)
    assert data["data_sources"]["tushare"]["token"] == "***"
    assert data["notify"] == ["***"]
    assert secrets.redact(text, []) == text


def test_redact_keeps_anchors_and_block_scalars() -> None:
    text = "a: &t abc123\ntoken: *t\nkey_pem: 'x'\nprivate_key: |\n  -----BEGIN KEY-----\n  MIIE\nnext: 1\n"
    findings = secrets.scan_text(text)
    assert [f.path for f in findings] == ["token", "private_key"]
    redacted = secrets.redact(text, findings)
    assert "abc123" not in redacted and "MIIE" not in redacted
    assert yaml.safe_load(redacted) == {
        "a": "***",
        "token": "***",
        "key_pem": "x",
        "private_key": "***",
        "next": 1,
    }


def test_redact_falls_back_to_lines_for_broken_yaml() -> None:
    text = "token: abc123\nbroken: [\n  password: 'pw'  # c\n"
    redacted = secrets.redact(text, [Finding("token", "secret-key")])
    assert redacted == 'token: "***"\nbroken: [\n  password: "***"  # c\n'


# --------------------------------------------------------------------------- credentials as names

_GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
_HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345"


@pytest.mark.parametrize(
    "cfg, declared, label",
    [
        ({"environment_variables": ["TUSHARE_TOKEN", _GHP]}, [], "config environment_variables[1]"),
        ({"environment_variables": {_HF: "the hub"}}, [], "config environment_variables key #1"),
        ({"environment_variables": f"A, {_GHP}"}, [], "config environment_variables[1]"),
        ({}, ["FEISHU_APP_SECRET", _HF], "registry environment_variables[1]"),
    ],
)
def test_env_var_names_refuses_a_credential_by_position(cfg: dict, declared: list, label: str) -> None:
    with pytest.raises(SecretsFound) as info:
        config.env_var_names(cfg, "", declared=declared)
    exc = info.value
    assert exit_code_for(exc) == 3 and exc.message.startswith(label) and exc.paths == [label]
    assert _GHP not in f"{exc} {exc!r} {exc.hint}" and _HF not in f"{exc} {exc!r} {exc.hint}"


def test_scan_flags_a_credential_where_a_name_belongs_and_masks_token_keys() -> None:
    text = f"environment_variables: [TUSHARE_TOKEN, {_GHP}]\napi_tokens:\n  {_HF}: prod\nnote: {_GHP}\n"
    found = [(f.path, f.kind) for f in secrets.scan_text(text)]
    assert found == [("environment_variables[1]", "credential-as-name"),
                     ("api_tokens[<credential-shaped key>]", "secret-key"),
                     ("note", "token")]
    assert all(_GHP not in p and _HF not in p for p, _ in found)


@pytest.mark.parametrize("limit", [None, 20_000])
def test_a_deep_config_is_malformed_whatever_the_recursion_limit(limit: int | None) -> None:
    """Judged by depth (formats/nesting.py): with a raised limit PyYAML builds 5,000 levels that
    later recursive walks (the secret scan, the equality check) cannot follow."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit or before)
    try:
        for depth in (5000, 70):
            with pytest.raises(MalformedFile, match="nested too deeply"):
                config.load("version: 1.0.0\nx: " + "[" * depth + "]" * depth + "\n")
        looped = config.load("version: 1.0.0\nx: &a [1, *a]\n")  # contains itself: not deep
        assert looped["x"][1] is looped["x"]
    finally:
        sys.setrecursionlimit(before)
