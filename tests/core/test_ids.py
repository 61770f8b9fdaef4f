"""Task id, version and tag grammar against hostile input."""

from __future__ import annotations

from datetime import date

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


# -- hotfix versions (docs/design.md, "Hotfix releases") -------------------------------------
def test_hotfix_versions_order_after_their_base_and_before_the_next_patch() -> None:
    chain = ["1.1.9", "1.1.9-hotfix-20991231", "1.2.0", "1.2.0-hotfix-20260224",
             "1.2.0-hotfix-20260224-2", "1.2.0-hotfix-20260224-10", "1.2.0-hotfix-20260301",
             "1.2.1", "1.10.0"]
    assert sorted(reversed(chain), key=ids.Version.parse) == chain
    assert ids.version("v1.2.0-hotfix-20260224") == "1.2.0-hotfix-20260224"
    assert str(ids.Version.parse("1.2.0-hotfix-20260224-3").base) == "1.2.0"
    assert str(ids.Version.parse("1.2.0-hotfix-20260224").bump("patch")) == "1.2.1"
    assert str(ids.Version.parse("1.2.0-hotfix-20260224").bump("minor")) == "1.3.0"


@pytest.mark.parametrize("bad", [
    "1.2.0-hotfix-2026022", "1.2.0-hotfix-20260230", "1.2.0-hotfix-20261301",
    "1.2.0-hotfix-20260224-1", "1.2.0-hotfix-20260224-0", "1.2.0-hotfix-20260224-10000",
    "1.2.0-hotfix-20260224-02", "1.2.0-hotfix-", "1.2.0-HOTFIX-20260224", "1.2.0-hotfix-20260224\n",
    "1.2.0-hotfix-20260224;rm", "1.2-hotfix-20260224", "1.2.0-hotfix-２０２６０２２４",
])
def test_malformed_hotfix_versions_rejected(bad: str) -> None:
    with pytest.raises(BadInput):
        ids.version(bad)
    assert ids.parse_tag(f"T01-v{bad}") is None


def test_hotfix_tags_parse_with_the_full_version_and_the_base() -> None:
    h = ids.parse_tag("T01-v1.2.0-hotfix-20260224-2")
    assert h and (h.kind, h.version, h.base, h.date, h.repeat) == (
        "hotfix", "1.2.0-hotfix-20260224-2", "1.2.0", "20260224", 2)
    assert h.carries_manifest and ids.version_tag("T01", h.version) == h.name
    assert ids.hotfix_tag("T01", "1.2.0", "20260224", 2) == h.name
    plain = ids.parse_tag("T01-v1.2.0")
    assert plain and plain.carries_manifest and plain.base == "1.2.0"
    assert not ids.parse_tag("T01-v1.2.0-rollback-from-v1.3.0").carries_manifest


def test_rollback_tags_with_hotfixes_are_unambiguous() -> None:
    """``…-from-v1.2.0-hotfix-20260224-2`` could be hotfix 2, or the second rollback from
    hotfix 1: a hotfix left from is always written with its repeat, so it is hotfix 2."""
    hot1, hot2 = "1.2.0-hotfix-20260224", "1.2.0-hotfix-20260224-2"
    cases = {
        ("1.2.0", hot1, 1): "T01-v1.2.0-rollback-from-v1.2.0-hotfix-20260224-1",
        ("1.2.0", hot1, 2): "T01-v1.2.0-rollback-from-v1.2.0-hotfix-20260224-1-2",
        ("1.2.0", hot2, 1): "T01-v1.2.0-rollback-from-v1.2.0-hotfix-20260224-2",
        ("1.2.0", hot2, 3): "T01-v1.2.0-rollback-from-v1.2.0-hotfix-20260224-2-3",
        (hot2, "1.3.0", 1): "T01-v1.2.0-hotfix-20260224-2-rollback-from-v1.3.0",
        (hot1, "1.3.0", 2): "T01-v1.2.0-hotfix-20260224-rollback-from-v1.3.0-2",
        (hot1, hot2, 1): "T01-v1.2.0-hotfix-20260224-rollback-from-v1.2.0-hotfix-20260224-2",
    }
    for (to, frm, n), name in cases.items():
        assert ids.rollback_tag("T01", to, frm, n) == name
        t = ids.parse_tag(name)
        assert t and (t.kind, t.version, t.from_version, t.repeat) == ("rollback", to, frm, n), name
    # the ambiguous spelling (a hotfix left from without its repeat) is no tag of ours
    assert ids.parse_tag("T01-v1.2.0-rollback-from-v1.2.0-hotfix-20260224") is None


_bases = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
_hotfixes = st.one_of(st.none(), st.tuples(st.dates(date(2000, 1, 1)).map(lambda d: d.strftime("%Y%m%d")),
                                           st.integers(1, 9999)))


@given(_bases, _hotfixes, st.sampled_from(["T01", "t_9"]), st.integers(1, 50))
def test_any_version_round_trips_through_its_tags(base: tuple[int, int, int],
                                                 hot: tuple[str, int] | None, task: str,
                                                 n: int) -> None:
    v = ids.Version(*base)
    if hot is not None:
        v = v.hotfix(*hot)
    text = str(v)
    assert ids.Version.parse(text) == v and ids.valid_version(text)
    tag = ids.parse_tag(ids.version_tag(task, text))
    assert tag and tag.version == text and tag.base == str(v.base)
    assert tag.kind == ("hotfix" if hot else "version")
    other = str(v.bump("minor"))
    for to, frm in ((text, other), (other, text)):
        rb = ids.parse_tag(ids.rollback_tag(task, to, frm, n))
        assert rb and (rb.version, rb.from_version, rb.repeat) == (to, frm, n)


@given(st.lists(st.tuples(_bases, _hotfixes), min_size=2, max_size=8))
def test_version_order_is_base_then_date_then_repeat(items: list) -> None:
    versions = [ids.Version(*b) if h is None else ids.Version(*b).hotfix(*h) for b, h in items]

    def key(v: ids.Version) -> tuple[int, ...]:
        return (v.major, v.minor, v.patch, v.hotfix_date, v.hotfix_repeat)

    assert sorted(versions) == sorted(versions, key=key)
    for v in versions:
        assert v.base <= v < v.base.bump("patch")
