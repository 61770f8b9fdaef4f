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

from tasks_lib.errors import SecretsFound

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
_PEM = r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
_TOKEN = re.compile(rf"(?<![A-Za-z0-9_\-])(?:{_PREFIXED})|{_PEM}")
_TOKEN_BYTES = re.compile(_TOKEN.pattern.encode("ascii"))
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{24,}={0,2}(?![A-Za-z0-9+/=_\-])")
_DIGIT = re.compile(r"\d")
_ALPHA = re.compile(r"[A-Za-z]")


def _real(token: str) -> bool:
    """Not a documentation placeholder (``ghp_xxxxxxxx…``, ``AKIA…EXAMPLE``, ``sk-…``/``sk-learn``)."""
    if token.startswith("-----BEGIN"):
        return True
    body = re.sub(r"^[A-Za-z]+[_\-.]", "", token)
    if "EXAMPLE" in token.upper() or len(set(body.lower())) < 6:
        return False
    if token.startswith("sk-"):  # sk-learn-compatible-wrapper: words, not a key
        return len(_DIGIT.findall(body)) >= 2 and len(_ALPHA.findall(body)) >= 2
    return True


def token_spans(text: str) -> Iterator[tuple[int, int]]:
    """Start and end offsets of the tokens and private-key blocks in ``text``."""
    for m in _TOKEN.finditer(text):
        if _real(m.group(0)):
            yield m.span()


def has_token(text: str) -> bool:
    return next(token_spans(text), None) is not None


def token_offsets_in_bytes(data: bytes) -> Iterator[int]:
    """Offsets of tokens in binary content (pickles, archives, compiled files)."""
    for m in _TOKEN_BYTES.finditer(data):
        if _real(m.group(0).decode("ascii")):
            yield m.start()


def token_in_base64(text: str) -> bool:
    """Does a base64 (or base64url) run in ``text`` decode to a token or a private key?"""
    for m in _BASE64.finditer(text):
        run = m.group(0)
        if len(run) > 20_000:
            continue
        try:
            alt = b"-_" if "-" in run or "_" in run else None
            raw = base64.b64decode(run + "=" * (-len(run) % 4), altchars=alt)
        except (binascii.Error, ValueError):
            continue
        decoded = raw.decode("latin-1")
        if has_token(decoded) or (len(decoded) > 24 and token_in_base64(decoded[:20_000])):
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
