"""Plaintext secrets in source code and text, found line by line (by regular expressions, so a
file that does not parse is scanned all the same).

What counts (each ``Hit`` names a line and, where there is one, the variable or key; never the
value):

- a string literal assigned to a credential name: ``TUSHARE_TOKEN = "8700…"``,
  ``self.api_key: str = ("ab" "cd")``, ``api_key="…"`` (a keyword argument),
  ``{"password": "…"}``, ``os.environ["X_TOKEN"] = "…"``, ``os.environ.setdefault("X_TOKEN",
  "…")``, ``os.getenv("X_TOKEN", "…")`` (a default leaks), also through ``\\`` continuations,
  parentheses and ``base64.b64decode("…")``;
- in shell, ``.env``-like and documentation text, ``NAME=value`` / ``NAME: value`` lines;
- anywhere (comments, docstrings, notebooks' outputs): an issuer's token shape or private-key
  block (``secret_shapes``), base64 that decodes to one, and URLs carrying credentials
  (``https://user:pass@…``, bot webhooks).

References are not secrets: ``os.environ["X"]``, ``${X}``, ``{password}`` format fields,
placeholders (``<your-token>``, ``xxx``), a value that is itself a variable or key name
(``"TUSHARE_TOKEN"``, ``"api_key"``), a flag (``"--token"``), prose with spaces.

One module because most of it is the rule table itself (one regular expression per construct,
each with the false positives it must not raise beside it); split, a rule and its exceptions
would be read apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tasks_lib.secrets.commands import credential_spans
from tasks_lib.secrets.names import name_class, name_words, printable
from tasks_lib.secrets.shapes import credential_shaped_name, has_token, token_in_base64, token_spans
from tasks_lib.secrets.values import (
    credential_url_spans,
    has_credential_url,
    is_file_path,
    is_plaintext,
    looks_like_credential,
    secret_by_name,
)

__all__ = ["Hit", "scan_code", "scan_shapes", "scan_text"]

SECRET_KEY, TOKEN, CREDENTIAL_URL = "secret-key", "token", "credential-url"


@dataclass(frozen=True)
class Hit:
    """A secret on ``line`` (1-based) under ``name`` (None when nothing names it)."""

    line: int
    kind: str
    name: str | None = None


# --------------------------------------------------------------------------- patterns

_STR = (
    r"(?P<pre>[rRbBuUfF]{0,2})(?:"
    r'"""(?P<t1>(?:[^"\\]|\\.|"(?!""))*)"""'
    r"|'''(?P<t2>(?:[^'\\]|\\.|'(?!''))*)'''"
    r'|"(?P<d>(?:[^"\\\r\n]|\\.)*)"'
    r"|'(?P<s>(?:[^'\\\r\n]|\\.)*)'"
    r"|`(?P<b>(?:[^`\\]|\\.)*)`"
    r")"
)
# what may stand between `=` and the literal: parentheses, a line continuation, a decoder call
_WRAP = (
    r"(?:\(\s*|\\\r?\n\s*|(?:[A-Za-z_][\w]*\.)*(?:b64decode|urlsafe_b64decode|b32decode"
    r"|b16decode|unhexlify|fromhex|decode|str|bytes|SecretStr|Secret)\(\s*){0,4}"
)
_KEY = r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*"
# NAME = "…", NAME: T = "…", f(name="…")
_ASSIGN = re.compile(
    rf"(?<![\w.])(?P<key>{_KEY})[ \t]*(?::[ \t]*[A-Za-z_][\w\[\], .|]*?)?[ \t]*"
    rf"(?<![=!<>])(?::=|=)(?!=)[ \t]*{_WRAP}{_STR}"
)
# {"key": "…"}, ["key"] = "…", key => "…"
_QUOTED = re.compile(
    rf"(?P<kq>[\"'])(?P<key>[^\"'\\\r\n]{{1,100}})(?P=kq)[ \t]*(?:\][ \t]*)?(?:=>|:|=(?!=))[ \t]*"
    rf"{_WRAP}{_STR}"
)
# os.environ.setdefault("X", "…"), os.getenv("X", "…"), d.get("token", "…"): the quoted name,
# then `,` and the literal; the function is checked before the quote
_CALL_AT = re.compile(
    rf"(?P<kq>[\"'])(?P<key>[^\"'\\\r\n]{{1,100}})(?P=kq)\s*,\s*{_WRAP}{_STR}"
)
_CALL_BEFORE = re.compile(r"\b(?:setdefault|putenv|setenv|getenv|get|pop)\s*\(\s*\Z")
# ts.set_token("…"), client.set_api_key("…"), ts.pro_api("…"): a setter taking the credential
_SETTER = re.compile(rf"(?P<key>{_KEY})[ \t]*\([ \t]*{_WRAP}{_STR}")
_SETTER_WORDS = frozenset({"set", "use", "with", "configure", "save", "store", "put", "write",
                           "add", "update", "init", "register", "login", "auth", "authenticate"})
_CREDENTIAL_CALLS = frozenset({"pro_api", "pro_bar"})  # tushare: pro_api(token)
# NAME: value / NAME=value without quotes (documentation, comments, shell, .env-like)
_LINE = re.compile(
    r"(?m)^[ \t]*(?:[-*>#;/]+[ \t]*)?(?:export[ \t]+|set[ \t]+|ENV[ \t]+)?"
    r"(?P<key>[A-Za-z_][\w.\-]*)[ \t]*(?::|=)[ \t]*(?P<q>[\"']?)(?P<val>[^\s\"'#;,]+)(?P=q)"
    r"[ \t]*(?:[#;].*)?\r?$"
)
# ... token=VALUE / --password VALUE inside a line (a command in a comment or a README)
_INLINE = re.compile(
    r"(?<![\w.\-])(?:--?)?(?P<key>[A-Za-z_][\w\-]*)(?:=|[ \t]*:[ \t]*)(?P<val>[^\s\"'`,;(){}\[\]<>]{8,})"
)
# --token VALUE in a command line (shell, docs): a flag, blanks, a value that is no flag
_FLAG_VALUE = re.compile(
    r"(?<![\w\-])--?(?P<key>[A-Za-z][\w\-]{0,63})[ \t]+(?P<val>[^\s\"'`;|&\-][^\s\"'`;|&]{5,})")
# ["--token", "8700…"] / ("-p", "…"): an argv written as a list of literals in code
_QUOTED_FLAG = re.compile(
    rf"(?P<kq>[\"'])--?(?P<key>[A-Za-z][\w\-]{{0,63}})(?P=kq)\s*,\s*{_STR}")
# Dockerfile `ENV NAME value` (the old form, without `=`)
_DOCKER_ENV = re.compile(
    r"(?m)^[ \t]*ENV[ \t]+(?P<key>[A-Za-z_][\w.\-]*)[ \t]+(?P<q>[\"']?)(?P<val>[^\s\"'#=]+)(?P=q)"
    r"[ \t]*\r?$")
# <password>…</password> (XML settings)
_XML_ELEM = re.compile(r"<(?P<key>[A-Za-z_][\w.\-]*)(?:[ \t][^<>\n]*)?>[ \t]*(?P<val>[^<>\s]{4,})"
                       r"[ \t]*</(?P=key)[ \t]*>")
# <add key="ApiKey" value="…"/> (.NET app.config and the like)
_XML_KEY_VALUE = re.compile(r"<[A-Za-z_][\w.\-]*[ \t]+(?:name|key)[ \t]*=[ \t]*[\"'](?P<key>[^\"'<>\n]{1,100})"
                            r"[\"'][ \t]+value[ \t]*=[ \t]*[\"'](?P<val>[^\"'<>\n]*)[\"']")
# auth=("user", "…") / auth=["user", "…"] (requests and the like)
_AUTH_PAIR = re.compile(r"(?<![\w.])auth[ \t]*=[ \t]*[(\[][ \t]*(?:\"[^\"\n]*\"|'[^'\n]*')[ \t]*,"
                        r"[ \t]*(?P<q>[\"'])(?P<val>[^\"'\n]*)(?P=q)")
# user, password = "u", "…" (several names, as many literals)
_TUPLE_ASSIGN = re.compile(r"(?m)^[ \t]*(?P<keys>[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)+)"
                           r"[ \t]*=[ \t]*(?P<vals>[^\n]+)$")
_TUPLE_BEFORE = re.compile(r"[ \t]*(?:[A-Za-z_][\w.]*[ \t]*,[ \t]*)+\Z")
_PLAIN_STR = re.compile(r"[ \t]*(?:\"(?P<d>[^\"\\\n]*)\"|'(?P<s>[^'\\\n]*)')[ \t]*(?:,|\Z)")
_ENVNAME_VALUE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\Z")
_PATTERNISH = re.compile(r"\\[wdsWDSbBnt]|\[\^|\(\?|\?\Z|\.\*|\.\+|\*\*\*|\.\.\.|…")
_PLACEHOLDERISH = re.compile(r"(?i)placeholder|dummy|fake|example|changeme|change_me|your[_\-]")
_PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "passcode", "secret",
                             "密码", "口令"})
_TEMPLATE = re.compile(r"\{[^{}]*\}|%[sdr]|%\(|\$\{|\$[A-Za-z_]")
_AUTH_SCHEME = re.compile(r"(?i:bearer|basic|token|bot)[ \t]+")
_CODE_WORDS = frozenset(
    {"default", "value", "string", "str", "text", "bytes", "int", "bool", "none", "null",
     "required", "optional", "hidden", "secret", "password", "token", "key", "test", "example",
     "sample", "demo", "unknown", "missing", "invalid", "header", "query", "body", "cookie",
     "bearer", "basic", "oauth", "oauth2", "jwt", "hmac", "sha256", "md5", "utf-8", "utf8",
     "ascii", "base64", "hex", "env", "environ", "file", "path"}
)  # fmt: skip
_ENCODING_SUFFIX = frozenset(
    {"b64", "base64", "encoded", "enc", "hex", "raw", "bytes", "str", "value", "val", "plain",
     "plaintext", "literal"}
)  # fmt: skip


# a credential name contains one of these (name_class's words), so only lines holding one are
# examined closely: the cost of a scan follows the number of such lines, not the file's size
_CANDIDATE = re.compile("token|secret|pass|pwd|key|auth|cred|hook|dsn|cookie|bearer|pro_api"
                        "|密码|密钥|口令|令牌|秘钥")  # searched in the lower-cased text
_WINDOW_AFTER = 400  # characters after a line left open (`=`, `(`, `\\` …): a value below it
_OPEN_END = ("(", "[", "{", "=", ",", ":", "\\", "+")


def _windows(text: str, lower: str, everything: bool) -> list[tuple[int, int]]:
    """Spans (line start .. line end, or a little past it when the line is left open) around
    the lines naming a credential (``lower`` is ``text.lower()``)."""
    if everything:
        return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = _CANDIDATE.search(lower, pos)
        if m is None:
            break
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        if end < 0:
            end = len(text)
        pos = end + 1
        if text[start:end].rstrip().endswith(_OPEN_END):
            end = min(len(text), end + _WINDOW_AFTER)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
        pos = max(pos, spans[-1][1] if end > pos else pos)
    return spans


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _lower(text: str) -> str:
    """``text`` lower-cased with every offset kept (``"İ".lower()`` is two characters)."""
    lower = text.lower()
    return lower if len(lower) == len(text) else text.translate(_ASCII_LOWER)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _body(m: re.Match[str]) -> tuple[str, str]:
    for group in ("t1", "t2", "d", "s", "b"):
        if m.group(group) is not None:
            return m.group(group), m.group("pre") or ""
    return "", ""


def _key_class(key: str) -> str:
    """name_class of the last part of a (dotted) key; ``TOKEN_B64`` counts as ``TOKEN``."""
    last = key.rsplit(".", 1)[-1]
    cls = name_class(last)
    words = name_words(last)
    if not cls and len(words) >= 2 and words[-1] in _ENCODING_SUFFIX:
        cls = name_class("_".join(words[:-1]))
    return cls


def _shown_name(key: str) -> str | None:
    """The key as a finding may show it: None when the key itself is credential-shaped."""
    return None if credential_shaped_name(key) or has_token(key) else printable(key)


def _code_value_is_secret(key: str, raw: str, prefix: str, *, everything: bool) -> bool:
    if "f" in prefix.lower() and "{" in raw:
        return False  # an f-string fills its value in at run time (token shapes: scan_shapes)
    value = _AUTH_SCHEME.sub("", raw.strip(), count=1)
    cls = _key_class(key)
    if cls == "maybe" and not everything:
        return looks_like_credential(value)
    if cls not in ("secret", "container") and not everything:
        return False
    if len(value) < 4 or not is_plaintext(value) or is_file_path(value):
        return False  # "", "i", "rc": a marker, not a credential
    if any(c.isspace() for c in value) or value.startswith("-") or _TEMPLATE.search(value):
        return False  # prose or a prompt, a flag, a template
    if name_class(value) or _ENVNAME_VALUE.match(value) or value.lower() in _CODE_WORDS:
        return False  # the value names a variable or a key: a reference, not a secret
    if _PATTERNISH.search(value) or _PLACEHOLDERISH.search(value):
        return False  # a regular expression, a type description ("string?"), a placeholder
    if everything and cls not in ("secret", "container"):
        return looks_like_credential(value) or (len(value) >= 8 and any(c.isdigit() for c in value))
    words = name_words(key.rsplit(".", 1)[-1])
    if words[-1:] == ["dsn"]:
        return has_credential_url(value)  # a DSN only with a credential in it
    if value.isalpha() and value.islower() and not set(words) & _PASSWORD_WORDS:
        return False  # `upgrade_token = "upgrades"`: a word; a token never is, a password may be
    return True


def _prose_value_is_secret(key: str, value: str, *, strict: bool) -> bool:
    """``NAME: value`` outside code: ``strict`` (shell, .env-like) takes any plaintext under a
    credential name; prose needs a value that looks like one."""
    cls = _key_class(key)
    if cls not in ("secret", "container", "maybe"):
        return False
    if not is_plaintext(value) or is_file_path(value) or _TEMPLATE.search(value):
        return False
    if name_class(value) or _ENVNAME_VALUE.match(value) or value.startswith("-"):
        return False
    if looks_like_credential(value):
        return True
    if cls == "maybe":
        return False
    if strict:
        return secret_by_name(key.rsplit(".", 1)[-1], value)
    return len(value) >= 6 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


# --------------------------------------------------------------------------- scanners


def scan_shapes(text: str, *, examples: bool = True) -> list[Hit]:
    """Token shapes, private-key blocks, base64-wrapped tokens and credential URLs, anywhere,
    and credentials passed on a command line (``curl -u user:password``, ``PGPASSWORD=… psql``,
    ``redis-cli -a …``: tasks_lib/secrets/commands.py), which need no credential-named key."""
    hits = [Hit(_line_of(text, start), TOKEN) for start, _ in token_spans(text)]
    # a credential-named flag's finding is on the flag's line, where the code rules name it too
    hits += [Hit(_line_of(text, s.start if s.name in _COMMAND_FLAGS or s.at < 0 else s.at),
                 SECRET_KEY, _command_name(s.name)) for s in credential_spans(text)]
    hits += [Hit(_line_of(text, start), CREDENTIAL_URL)
             for start, _ in credential_url_spans(text, examples=examples)]
    if token_in_base64(text):  # rare: find the line
        for i, line in enumerate(text.splitlines(), 1):
            if token_in_base64(line):
                hits.append(Hit(i, TOKEN))
    return hits


_COMMAND_FLAGS = frozenset({"-p", "-a", "-w", "-P", "api key", "Authorization", "Bearer", "user:password"})


def _command_name(flag: str) -> str:
    """A command-line finding's name as the line rules spell it (``--password`` -> ``password``)."""
    return flag.lstrip("-") if flag.startswith("--") else flag


def scan_code(text: str, *, everything: bool = False) -> list[Hit]:
    """Source code (Python and the like): literals under credential names, plus shapes.
    ``everything``: the file's name says secret (``secrets.py``), so a literal under any name
    that looks like a credential counts."""
    lower = _lower(text)
    windows = _windows(text, lower, everything)
    return _merge(_code_hits(text, lower, windows, everything) + scan_shapes(text))


def _code_hits(text: str, lower: str, windows: list[tuple[int, int]],
               everything: bool) -> list[Hit]:
    """Literals under credential names. Each match is tried where a candidate word's identifier
    (or quoted key) starts, not at every character: the patterns cost little per try."""
    hits: list[Hit] = []
    seen: set[int] = set()
    for start, end in windows:
        for anchor in _anchors(text, lower, start, end, everything):
            if anchor in seen:
                continue
            seen.add(anchor)
            quoted = text[anchor] in "\"'"
            for pattern in (_QUOTED, _CALL_AT) if quoted else (_ASSIGN, _SETTER):
                m = pattern.match(text, anchor, end)
                if m is None:
                    continue
                if pattern is _ASSIGN and _TUPLE_BEFORE.match(
                        text, text.rfind("\n", 0, anchor) + 1, anchor):
                    break  # `host, password = "db", …`: the names pair up (_TUPLE_ASSIGN)
                if pattern is _CALL_AT and not _CALL_BEFORE.search(text, max(0, anchor - 40), anchor):
                    continue
                raw, prefix = _body(m)
                raw += _continued(text, m.end(), "(" in text[m.end("key"):m.start("pre")])
                key = m.group("key")
                if pattern is _SETTER:
                    fn = key.rsplit(".", 1)[-1]
                    words = name_words(fn)
                    if fn.lower() in _CREDENTIAL_CALLS:
                        key = "token"
                    elif not (words and words[0] in _SETTER_WORDS and len(words) > 1):
                        break
                    else:
                        key = "_".join(words[1:])
                if _code_value_is_secret(key, raw, prefix, everything=everything):
                    hits.append(Hit(_line_of(text, anchor), SECRET_KEY, _shown_name(m.group("key"))))
                break
            m = _INLINE.match(text, anchor, end)  # comments, docstrings: `token: 8700abcd…`
            if m and looks_like_credential(m.group("val")) and _key_class(m.group("key")):
                hits.append(Hit(_line_of(text, anchor), SECRET_KEY, _shown_name(m.group("key"))))
        for m in _TUPLE_ASSIGN.finditer(text, start, end):  # user, password = "u", "…"
            keys = [k.strip() for k in m.group("keys").split(",")]
            vals, rest, pos = [], m.group("vals").rstrip(), 0
            while pos < len(rest) and (v := _PLAIN_STR.match(rest, pos)):  # literals only
                vals.append(v.group("d") if v.group("d") is not None else v.group("s"))
                pos = v.end()
            if pos < len(rest):
                continue
            for key, value in zip(keys, vals if len(vals) == len(keys) else [], strict=False):
                if _code_value_is_secret(key, value, "", everything=everything):
                    hits.append(Hit(_line_of(text, m.start("keys")), SECRET_KEY, _shown_name(key)))
        for m in _AUTH_PAIR.finditer(text, start, end):  # auth=("user", "…")
            if _code_value_is_secret("password", m.group("val"), "", everything=False):
                hits.append(Hit(_line_of(text, m.start()), SECRET_KEY, "auth"))
        for m in _QUOTED_FLAG.finditer(text, start, end):  # ["--token", "8700…"]
            raw, prefix = _body(m)
            if _key_class(m.group("key")) == "secret" and \
                    _code_value_is_secret(m.group("key"), raw, prefix, everything=False):
                hits.append(Hit(_line_of(text, m.start()), SECRET_KEY, _shown_name(m.group("key"))))
    return hits


_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
_ANY_KEY = re.compile(r"[A-Za-z_]|[\"'][^\"'\r\n]{1,100}[\"']")


_JOIN_PAREN = re.compile(rf"(?:\s|\\\r?\n|\+)*{_STR}")  # inside ( … ): across lines
_JOIN_LINE = re.compile(rf"[ \t]*(?:\\\r?\n[ \t]*|\+\s*)*{_STR}")  # on the line, or after \\ or +


def _continued(text: str, pos: int, in_paren: bool) -> str:
    """The literals that continue the one ending at ``pos``: ``"87" "00…"``, ``"87" + "00…"``,
    after ``\\`` and, inside parentheses, across lines (a short first piece must not hide the
    rest; a docstring on the next line is not part of it)."""
    join = _JOIN_PAREN if in_paren else _JOIN_LINE
    parts: list[str] = []
    while len(parts) < 64:
        m = join.match(text, pos)
        if m is None or m.end() - pos > 4096:
            break
        body, _ = _body(m)
        parts.append(body)
        pos = m.end()
    return "".join(parts)


def _anchors(text: str, lower: str, start: int, end: int, everything: bool) -> list[int]:
    """Where an identifier or a quoted key holding a candidate word starts, in ``start..end``
    (every identifier and quoted key when ``everything``)."""
    if everything:
        return [m.start() for m in _ANY_KEY.finditer(text, start, end)
                if m.start() == 0 or text[m.start() - 1] not in _IDENT_CHARS]
    out: list[int] = []
    for m in _CANDIDATE.finditer(lower, start, end):
        i = m.start()
        while i > start and text[i - 1] in _IDENT_CHARS:
            i -= 1
        while i < m.start() and text[i] == ".":
            i += 1
        if i > start and text[i - 1] in "\"'":
            out.append(i - 1)  # a quoted key: "api_key": …
        if i > start and text[i - 1] == "-":
            out.append(i - (2 if i - 1 > start and text[i - 2] == "-" else 1))  # --token=…
        out.append(i)
    return out


def scan_text(text: str, *, strict: bool = False) -> list[Hit]:
    """Shell scripts, documentation and other text: ``NAME=value`` lines (``strict``: any
    plaintext under a credential name, as in shell), quoted literals as in code, shapes."""
    lower = _lower(text)
    windows = _windows(text, lower, False)
    hits: list[Hit] = []
    for start, end in windows:
        for m in _LINE.finditer(text, start, end):
            if _prose_value_is_secret(m.group("key"), m.group("val"), strict=strict):
                hits.append(Hit(_line_of(text, m.start("key")), SECRET_KEY, _shown_name(m.group("key"))))
        for anchor in _anchors(text, lower, start, end, False):
            m = _INLINE.match(text, anchor, end)
            if m and _prose_value_is_secret(m.group("key"), m.group("val"), strict=False):
                hits.append(Hit(_line_of(text, anchor), SECRET_KEY, _shown_name(m.group("key"))))
        # <add key="ApiKey" value="…"/>, <password>…</password>, `ENV TUSHARE_TOKEN 8700…`
        for pattern in (_XML_KEY_VALUE, _XML_ELEM, _DOCKER_ENV):
            for m in pattern.finditer(text, start, end):
                if _prose_value_is_secret(m.group("key"), m.group("val"), strict=True):
                    hits.append(Hit(_line_of(text, m.start("key")), SECRET_KEY,
                                    _shown_name(m.group("key"))))
        for m in _FLAG_VALUE.finditer(text, start, end):  # `python main.py --token 8700…`
            if _key_class(m.group("key")) == "secret" and \
                    _prose_value_is_secret(m.group("key"), m.group("val"), strict=True):
                hits.append(Hit(_line_of(text, m.start("key")), SECRET_KEY,
                                _shown_name(m.group("key"))))
    return _merge(hits + _code_hits(text, lower, windows, False) + scan_shapes(text))


def _merge(hits: list[Hit]) -> list[Hit]:
    """One hit per line and name, in line order; an unnamed hit, or a command line's flag
    (``-p``, ``Bearer``), only where no named one is."""
    named = {(h.line, h.name) for h in hits if h.name and h.name not in _COMMAND_FLAGS}
    lines_named = {line for line, _ in named}
    out: dict[tuple[int, str | None], Hit] = {}
    flagged: set[int] = set()  # lines holding a command line's flag already
    for h in sorted(hits, key=lambda h: (h.line, h.name is None, h.name or "")):
        if (h.name is None or h.name in _COMMAND_FLAGS) and h.line in lines_named:
            continue
        if h.name in _COMMAND_FLAGS:
            if h.line in flagged:
                continue
            flagged.add(h.line)
        out.setdefault((h.line, h.name), h)
    return list(out.values())
