"""Task id, version and tag grammar against hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks_lib.core import ids
from tasks_lib.core.errors import BadInput

HOSTILE = [
    "", "../x", "-rf", "--upload-pack=touch /tmp/pwned", "T01;rm -rf /", "T 01", "T01\n",
    "T01\x00", "Ｔ０１", "T01/..", "$(id)", "`id`", "T01|cat", "*", "T01-v1.0.0", "a" * 65,
    "T٠١",  # arabic-indic digits
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_task_ids_rejected(bad: str) -> None:
    with pytest.raises(BadInput) as err:
        ids.task_id(bad)
    assert err.value.exit_code == 2
    assert "letters, digits" in (err.value.hint or "")


@pytest.mark.parametrize("good", ["T01", "T100", "t_99", "A", "a" * 64])
def test_task_ids_accepted(good: str) -> None:
    assert ids.task_id(good) == good


@pytest.mark.parametrize("bad", ["1.2", "1.2.0.0", "01.2.0", "1.2.0-rc1", "1.2.0\n", "v", "-1.0.0",
                                 "1.2.x", "１.２.０", "1.2.0;ls", "--version", " 1.2.0"])
def test_hostile_versions_rejected(bad: str) -> None:
    with pytest.raises(BadInput):
        ids.version(bad)


def test_version_normalises_leading_v_and_orders() -> None:
    assert ids.version("v1.2.0") == "1.2.0"
    assert ids.Version.parse("1.10.0") > ids.Version.parse("1.9.9")


@pytest.mark.parametrize(("part", "want"), [("patch", "1.2.4"), ("minor", "1.3.0"), ("major", "2.0.0")])
def test_bump(part: str, want: str) -> None:
    assert str(ids.Version.parse("1.2.3").bump(part)) == want


def test_bump_rejects_unknown_part() -> None:
    with pytest.raises(BadInput):
        ids.Version.parse("1.2.3").bump("huge")


def test_tag_formats_and_parse_round_trip() -> None:
    assert ids.version_tag("T01", "1.2.0") == "T01-v1.2.0"
    rb = ids.rollback_tag("T01", "1.2.0", "1.3.0")
    assert rb == "T01-v1.2.0-rollback-from-v1.3.0"
    assert ids.rollback_tag("T01", "1.2.0", "1.3.0", repeat=2) == rb + "-2"
    assert ids.hotfix_tag("T01", "1.2.0", "20260224") == "T01-v1.2.0-hotfix-20260224"
    t = ids.parse_tag(rb + "-3")
    assert t and (t.kind, t.version, t.from_version, t.repeat) == ("rollback", "1.2.0", "1.3.0", 3)
    h = ids.parse_tag("T100-v1.0.2-hotfix-20260224")
    assert h and (h.kind, h.task, h.date) == ("hotfix", "T100", "20260224")


@pytest.mark.parametrize("name", ["T01-v1.2.0-2", "T01-v1.2", "../T01-v1.2.0", "T01-v1.2.0\n",
                                  "T01-v1.2.0-rollback-from-v1.3", "T01-v1.2.0-hotfix-2026",
                                  "T01-v1.2.0-rollback-from-v1.3.0-1", "release-1.0"])
def test_parse_tag_ignores_foreign_or_malformed(name: str) -> None:
    assert ids.parse_tag(name) is None


def test_hotfix_date_validated() -> None:
    with pytest.raises(BadInput):
        ids.hotfix_tag("T01", "1.0.0", "2026-02-24")


@pytest.mark.parametrize(("task", "ver", "date"), [
    ("../T01", "1.0.0", "20260224"), ("T01", "1.0", "20260224"), ("T01", "1.0.0", "2026022"),
    ("T01", "1.0.0", "20260224\n"), ("T01", "1.0.0", "２０２６０２２４"),
])
def test_hotfix_tag_validates_every_part(task: str, ver: str, date: str) -> None:
    with pytest.raises(BadInput):
        ids.hotfix_tag(task, ver, date)
    assert ids.hotfix_tag("T01", "1.0.0", "20260224", repeat=2) == "T01-v1.0.0-hotfix-20260224-2"
    assert ids.parse_tag(ids.hotfix_tag("T01", "1.0.0", "20260224", repeat=2)).repeat == 2


@given(st.text(max_size=30))
def test_any_accepted_id_is_safe_for_git_and_paths(text: str) -> None:
    try:
        tid = ids.task_id(text)
    except BadInput:
        return
    assert tid.isascii() and not tid.startswith("-") and "/" not in tid and "." not in tid
