"""tasks_lib.formats.jsonfmt: the lazy document (C decoder, layout read on demand) renders exactly as the
exact parser's fully read document does, for any layout and any edit."""

from __future__ import annotations

import json
import random

import pytest

from tasks_lib.core.errors import MalformedFile
from tasks_lib.formats import jsonfmt
from tests.formats.test_registry import _edit


def _exact(text: str, monkeypatch: pytest.MonkeyPatch) -> jsonfmt.Document:
    """The document as the exact parser reads it (every container's layout up front)."""
    with monkeypatch.context() as m:
        m.setattr(jsonfmt, "_checked_decode", lambda _text, _start: None)
        return jsonfmt.parse(text)


def _scalar(rng: random.Random) -> object:
    return rng.choice([None, True, False, 0, -0.0, 1.5, 10**20, "a, b", 'q"\\', "中", "x\u2028"])


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(6 if depth < 3 else 2)
    if kind < 2:
        return _scalar(rng)
    if kind < 4:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{rng.randrange(6)}": _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _gap(rng: random.Random, newline: bool) -> str:
    return rng.choice(["", " ", "  ", "\t", " \r"]) + (
        rng.choice(["\n", "\r\n"]) + rng.choice(["", "  ", "    ", "\t"]) if newline else "")


def _text(value: object, rng: random.Random) -> str:
    """JSON for ``value``, every container laid out its own way (one-line, multi-line, odd)."""
    if isinstance(value, dict | list):
        multi = rng.random() < 0.5
        members = [
            (json.dumps(k, ensure_ascii=rng.random() < 0.5) + _gap(rng, False) + ":"
             + _gap(rng, False) if isinstance(value, dict) else "") + _text(v, rng)
            for k, v in (value.items() if isinstance(value, dict) else ((None, v) for v in value))
        ]
        inner = "".join(
            _gap(rng, multi) + m + _gap(rng, False) + ("," if n < len(members) - 1 else "")
            for n, m in enumerate(members))
        close = _gap(rng, multi) if members else _gap(rng, False)
        return ("{" if isinstance(value, dict) else "[") + inner + close + (
            "}" if isinstance(value, dict) else "]")
    return json.dumps(value, ensure_ascii=rng.random() < 0.5)


def test_lazy_renders_exactly_as_the_exact_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261129)
    for _ in range(600):
        text = _text(_value(rng), rng)
        text = rng.choice(["", "\ufeff", " \n"]) + text + rng.choice(["", "\n", "\r\n", "  \n\n"])
        lazy, exact = jsonfmt.parse(text), _exact(text, monkeypatch)
        assert lazy._parsed_seps is None and exact._parsed_seps is not None
        assert (lazy._key_sep, lazy._item_sep) == (exact._key_sep, exact._item_sep), text
        assert lazy.render(lazy.copy_value()) == text
        for depth in (None, 1, 2):
            edited = lazy.copy_value(depth)
            if depth is not None:  # shared containers are replaced, never edited in place
                edited = jsonfmt._copy(edited)
            for _ in range(rng.randint(1, 3)):
                edited = _edit(edited, rng)
            out = jsonfmt.parse(text).render(edited)
            assert out == exact.render(edited), (text, edited)
            assert jsonfmt.strict_equal(json.loads(out.lstrip("\ufeff")), edited)


def test_shared_subtrees_are_recognised_by_identity() -> None:
    text = '{"tasks": [{"id": "T01", "v": 1}, {"id": "T02", "v": 2.0}], "x": [1, 2]}'
    doc = jsonfmt.parse(text)
    value = doc.copy_value(2)
    assert value["tasks"][1] is doc.copy_value(2)["tasks"][1]  # shared, not copied
    value["tasks"][0] = {"id": "T01", "v": 3}
    assert doc.render(value) == text.replace('"v": 1}', '"v": 3}')
    assert doc.value == json.loads(text)  # the document itself is unchanged


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"a": NaN}', '[Infinity]', '{"a": 1} x',
                                  '{"a": [1,]}', "\ufeff"])
def test_what_the_decoder_refuses_the_exact_parser_explains(text: str) -> None:
    with pytest.raises(MalformedFile) as info:
        jsonfmt.parse(text, "reg.json")
    assert "reg.json: invalid JSON at line 1" in str(info.value)


def test_too_deep_is_malformed_not_a_crash() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(MalformedFile, match="nested too deeply"):
        jsonfmt.parse(text, "reg.json")
