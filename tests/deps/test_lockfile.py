"""Lock lines read through ``packaging`` (PEP 508), pip's file format handled around it."""

from __future__ import annotations

import pytest

from tasks_lib.core.errors import MalformedFile, exit_code_for
from tasks_lib.deps.lockfile import Lock, entry_name, freeze_entry, normalize


def test_entries_are_canonical_names_with_packagings_specifier():
    lk = Lock.from_text("Foo_Bar[extra] >= 1.0, < 2 ; python_version >= '3'\n"
                        "Zope.Interface==5.0 \\\n    --hash=sha256:ab \\\n    --hash sha256:cd\n"
                        "pkg @ https://h.example/pkg-1.whl --hash=sha256:ef\n")
    assert lk.packages == ("foo-bar<2,>=1.0", "pkg @ https://h.example/pkg-1.whl",
                           "zope-interface==5.0")
    assert not lk.hashed  # foo-bar has none
    assert Lock.from_text("a==1 --hash=sha256:00\n").hashed


@pytest.mark.parametrize(("text", "line", "what"), [
    ("# header\n\nx==1\n!!bad\n", 4, "unreadable lock line 4"),
    ("x==1\ny==1 \\\n  --pre\n", 2, "unexpected option in lock line 2: '--pre'"),
    ("x==1\n-r other.txt\n", 2, "unexpected option in lock line 2: '-r'"),
    ("x==1\n\ny==\n", 3, "unreadable lock line 3"),
    ("-e\n", 1, "lock line 1 has no target"),
])
def test_a_bad_line_is_named_by_its_number_with_a_hint(text: str, line: int, what: str):
    with pytest.raises(MalformedFile) as info:
        Lock.from_text(text)
    assert what in info.value.message and f"line {line}" in info.value.message
    assert "name==version" in str(info.value.hint)
    assert exit_code_for(info.value) == 2


def test_the_reason_packaging_gives_is_shown_without_credentials():
    with pytest.raises(MalformedFile) as info:
        Lock.from_text("ok==1\nbad name @ https://user:t0ps3cret@idx.example/x.whl\n")
    text = info.value.message
    assert "line 2" in text and "Expected" in text and "t0ps3cret" not in text


def test_freeze_lines_and_names_compare_as_the_lock_does():
    assert freeze_entry("Foo.Bar==1.0") == "foo-bar==1.0"
    assert freeze_entry("x @ file:///w/x-1.whl") == "x @ file:///w/x-1.whl"
    assert freeze_entry("-e git+https://h/r.git#egg=r") == "-e git+https://h/r.git#egg=r"
    assert freeze_entry("# not a requirement") == "# not a requirement"
    assert entry_name("foo-bar<2,>=1.0") == entry_name("Foo_Bar==3") == "foo-bar"
    assert entry_name("x @ file:///w/x-1.whl") == "x"
    assert entry_name("-e ./local") == "-e ./local"
    assert normalize("Clawdemo__Signals.x") == "clawdemo-signals-x"
