"""Credentials recognisable by their shape alone, wherever they appear.

Issuers give their tokens fixed prefixes (``ghp_``, ``github_pat_``, ``sk-``, ``AKIA``, ``xoxb-``,
``hf_``, ``glpat-`` ...) and private keys come in PEM blocks, so these are found in comments,
docstrings, notebooks, binary files and base64 literals without knowing the name they sit under.
``token_spans`` returns where they are (offsets only, never the text); ``credential_shaped_name``
says whether a string offered as an environment variable *name* is a token instead.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator

from tasks_lib.core.errors import SecretsFound

__all__ = [
    "credential_name_error",
    "credential_shaped_name",
    "has_token",
    "refuse_credentials_as_names",
    "token_in_base64",
    "token_offsets_in_bytes",
    "token_spans",
]

_PREFIXED = (
    r"gh[pousr]_[A-Za-z0-9]{30,255}"                   # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{30,255}"
    r"|glpat-[A-Za-z0-9_\-]{20,}"                       # GitLab
    r"|sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"   # OpenAI, Anthropic
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"     # Stripe
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"  # AWS
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"                   # Slack
    r"|xapp-\d-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}"                          # Google API key
    r"|ya29\.[0-9A-Za-z_\-]{20,}"                       # Google OAuth
    r"|hf_[A-Za-z0-9]{30,}"                             # Hugging Face
    r"|npm_[A-Za-z0-9]{36}"                             # npm
    r"|pypi-AgE[A-Za-z0-9_\-]{50,}"                     # PyPI
    r"|SG\.[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,}"    # SendGrid
    r"|eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"  # a JWT
    r"|\d{8,10}:AA[A-Za-z0-9_\-]{33}"                   # Telegram bot
)  # fmt: skip
# any PEM label saying private or secret key (blocks.py masks the whole block), and PuTTY/SSH2's
_PEM = (r"-----BEGIN [A-Z0-9 ]{0,40}(?:PRIVATE|SECRET) KEY(?: BLOCK)?-----"
        r"|---- BEGIN SSH2 [A-Z0-9 ]{0,40}PRIVATE KEY ----")
_TOKEN = re.compile(rf"(?<![A-Za-z0-9])(?:{_PREFIXED})|{_PEM}")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{24,}={0,2}(?![A-Za-z0-9+/=_\-])")
_DIGIT = re.compile(r"\d")
_ALPHA = re.compile(r"[A-Za-z]")


def _real(token: str) -> bool:
    """Not a documentation placeholder (``ghp_xxxxxxxx…``, ``AKIA…EXAMPLE``, ``sk-…``/``sk-learn``)."""
    if token.startswith(("-----BEGIN", "---- BEGIN")):
        return True
    body = re.sub(r"^[A-Za-z]+[_\-.]", "", token)
    if "EXAMPLE" in token.upper() or len(set(body.lower())) < 6:
        return False
    if token.startswith("sk-"):  # sk-learn-compatible-wrapper: words, not a key
        return len(_DIGIT.findall(body)) >= 2 and len(_ALPHA.findall(body)) >= 2
    return True


# literal parts every shape holds near its start (offset back to the match's start): a fast
# substring search finds the few places the regular expression is tried at
_PREFIXES = (("ghp_", 0), ("gho_", 0), ("ghu_", 0), ("ghs_", 0), ("ghr_", 0), ("github_pat_", 0),
             ("glpat-", 0), ("sk-", 0), ("k_live_", 1), ("k_test_", 1), ("AKIA", 0), ("ASIA", 0),
             ("AGPA", 0), ("AIDA", 0), ("AROA", 0), ("AIPA", 0), ("ANPA", 0), ("ANVA", 0),
             ("ABIA", 0), ("ACCA", 0), ("xox", 0), ("xapp-", 0), ("AIza", 0), ("ya29.", 0),
             ("hf_", 0), ("npm_", 0), ("pypi-", 0), ("SG.", 0), ("eyJ", 0), (":AA", 10),
             ("-----BEGIN", 0), ("---- BEGIN", 0))  # fmt: skip
_REACH = 400  # how far past a prefix a shape may extend (the longest are ~300 characters)


def _candidates(text: str) -> list[int]:
    starts: set[int] = set()
    for prefix, back in _PREFIXES:
        i = text.find(prefix)
        while i >= 0:
            starts.add(max(0, i - back))
            i = text.find(prefix, i + 1)
    return sorted(starts)


def token_spans(text: str) -> Iterator[tuple[int, int]]:
    """Start and end offsets of the tokens and private-key blocks in ``text``."""
    done = 0
    for start in _candidates(text):
        if start < done:
            continue
        m = _TOKEN.search(text, start, start + _REACH)
        if m and m.start() <= start + 10 and _real(m.group(0)):
            done = m.end()
            yield m.span()


def token_offsets_in_bytes(data: bytes) -> Iterator[int]:
    """Offsets of tokens in binary content (pickles, archives, compiled files)."""
    text = data.decode("latin-1")  # one character per byte: offsets stay byte offsets
    for start, _ in token_spans(text):
        yield start


def has_token(text: str) -> bool:
    return next(token_spans(text), None) is not None


def _encoded_markers() -> tuple[str, ...]:
    """The base64 text a run starts with when it encodes a token (``b64encode(token)``; a token
    deeper inside the encoded text, at another alignment, is not looked for)."""
    markers: set[str] = set()
    for prefix in ("ghp_", "gho_", "ghs_", "github_pat_", "glpat-", "sk-proj-", "sk-ant-", "sk_live_",
                   "AKIA", "ASIA", "xoxb-", "xoxp-", "hf_", "AIza", "-----BEGIN", "eyJhbGci"):
        stable = base64.b64encode(prefix.encode()).decode()[: 4 * len(prefix) // 3]
        markers.add(stable)
        markers.add(stable.replace("+", "-").replace("/", "_"))  # base64url
    return tuple(sorted(markers))


_MARKERS = _encoded_markers()


def token_in_base64(text: str) -> bool:
    """Does a base64 (or base64url) run in ``text`` decode to a token or a private key?"""
    if not any(mark in text for mark in _MARKERS):
        return False
    for m in _BASE64.finditer(text):
        run = m.group(0)
        if len(run) > 20_000 or not any(mark in run for mark in _MARKERS):
            continue
        url = "-" in run or "_" in run
        for skip in range(4):  # the run may start mid-group
            part = run[skip:]
            try:
                raw = base64.b64decode(part + "=" * (-len(part) % 4),
                                       altchars=b"-_" if url else None)
            except (binascii.Error, ValueError):
                continue
            if has_token(raw.decode("latin-1")):
                return True
    return False


# --------------------------------------------------------------------------- names

_NAME_SEGMENT = re.compile(r"[A-Za-z0-9]+")


def credential_shaped_name(name: str) -> bool:
    """A string in a list of variable *names* that is a credential instead: an issuer's token
    (``ghp_…``, ``AKIA…``, ``hf_…``) or a random-looking run (16+ characters mixing at least three
    letters and three digits in one ``_``-separated part). ``TUSHARE_TOKEN``,
    ``FEISHU_APP_SECRET``, ``AWS_ACCESS_KEY_ID``, ``PYTHONDONTWRITEBYTECODE`` are names."""
    if has_token(name):
        return True
    for seg in _NAME_SEGMENT.findall(name):
        if len(seg) >= 16 and len(_DIGIT.findall(seg)) >= 3 and len(_ALPHA.findall(seg)) >= 3:
            return True
    return False


_NAME_HINT = (
    "list the variable's name there (e.g. TUSHARE_TOKEN), never its value, and set the value in "
    "the task's environment where it is started; the value was written into a file: rotate it"
)


def credential_name_error(label: str) -> SecretsFound:
    """The refusal for a credential at ``label`` (a position) where a variable name belongs."""
    return SecretsFound(f"{label} looks like a credential, not a variable name", paths=[label],
                        hint=_NAME_HINT)


def refuse_credentials_as_names(names: Iterable[object], where: str) -> None:
    """SecretsFound (exit 3) naming the position (``where[2]``), never the entry, when one of
    ``names`` is a credential rather than a variable name."""
    for i, name in enumerate(names):
        if isinstance(name, str) and credential_shaped_name(name):
            raise credential_name_error(f"{where}[{i}]")
