"""Which values are plaintext secrets: not references, not placeholders, not file paths.

``is_plaintext`` is the test for a value under a secret-named key: ``${NAME}``, ``$NAME``,
``%NAME%``, ``env:NAME``, templates and secret-manager URLs are references, ``<your-token>``,
``***`` or ``TODO`` are placeholders, and ``${NAME:-abc123}`` counts as plaintext because its
default leaks. ``looks_like_credential`` decides ambiguous names by the value's shape, and
``has_credential_url`` finds credentials inside URLs (``user:password@``, bot webhooks, apprise
URLs, secret-named query parameters).

One module because the reference, placeholder, path and URL tests are one decision (is this
value plaintext?) whose rules refer to each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, unquote, urlsplit

from tasks_lib.secrets.names import name_class, name_words

__all__ = [
    "VAR_NAME",
    "credential_url_spans",
    "has_credential_url",
    "is_file_path",
    "is_plaintext",
    "looks_like_credential",
    "secret_assignment",
    "secret_by_name",
    "string_has_secret",
]

VAR_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BRACED_REF = re.compile(
    rf"\$\{{\s*(?:env:)?{VAR_NAME}\s*(?:(:?[-=+?])((?:[^{{}}]|\{{[^{{}}]*\}})*))?\}}", re.ASCII
)
_WHOLE_REFS = [
    re.compile(rf"\$(?:env:)?{VAR_NAME}\Z", re.ASCII),  # $NAME, $env:NAME
    re.compile(rf"%{VAR_NAME}%\Z", re.ASCII),  # %NAME%
    re.compile(rf"(?i:env)\s*[:.]\s*{VAR_NAME}\Z", re.ASCII),  # env:NAME, ENV.NAME
    re.compile(rf"(?i:env)\s*[\[(]\s*['\"]?{VAR_NAME}['\"]?\s*[\])]\Z", re.ASCII),  # ENV[NAME]
    re.compile(rf"os\.environ(?:\.get)?\s*[\[(]\s*['\"]?{VAR_NAME}['\"]?.*[\])]\Z", re.ASCII),
    re.compile(rf"%\(\s*{VAR_NAME}\s*\)s\Z", re.ASCII),  # %(NAME)s
    # a format field filled in by code: {password}, {cfg.token}, {creds['pw']!s}, {}, %s
    re.compile(rf"\{{\s*(?:{VAR_NAME}(?:\.{VAR_NAME}|\[[^\[\]{{}}]*\])*)?\s*(?:![rsa])?(?::[^{{}}]*)?\}}\Z"
               r"|%[sdr]\Z", re.ASCII),
    re.compile(r"\{\{.*\}\}\Z|\$\{\{.*\}\}\Z|<%=?.*%>\Z", re.DOTALL),  # templates
    re.compile(r"(?:op|vault|keyring|ssm|secretsmanager|awssm|gcpsm|sops)://?\S+\Z", re.I),
]
_PLACEHOLDER_WORDS = frozenset(
    {
        "null", "none", "nil", "n/a", "na", "-", "--", "todo", "tbd", "fixme", "replace_me",
        "replace-me", "replaceme", "replace me", "placeholder", "redacted", "[redacted]",
        "<redacted>", "unset", "empty", "true", "false", "yes", "no", "on", "off", "masked",
        "hidden", "fill_me", "fill-me", "fillme", "to_be_filled", "set_me", "setme", "dummy",
        "example", "your_token_here", "your-token-here",
    }
)  # fmt: skip
_PLACEHOLDER_RES = [
    re.compile(r"<[^<>]*>\Z"),  # <your-token>
    re.compile(r"\[[^\[\]]*\]\Z"),  # [your token]
    re.compile(r"[*xX.#_\-•]+\Z"),  # ***, xxx, XXXX, ...
    re.compile(r"(?i:your)(?:[\s_\-].*)?\Z"),  # your_token, YOUR API KEY
    re.compile(r"(?i:.*[_\-\s]here)\Z"),  # token_here, put-key-here
    re.compile(
        r"(?i:(?:replace|fill|insert|put|paste|enter)[\s_\-](?:me|with|in|your|this|here).*)\Z"
    ),
    re.compile(r"(?:你的|您的|请填|请输入|填写|填入|替换).*\Z"),
]


def _is_placeholder(s: str) -> bool:
    if s.lower() in _PLACEHOLDER_WORDS:
        return True
    return any(p.match(s) for p in _PLACEHOLDER_RES)


def _is_reference(s: str) -> bool | None:
    """True: an env/secret-manager reference; False: not a reference; None: a reference whose
    default is itself plaintext (``${TOKEN:-abc123}``), which leaks the default."""
    refs = list(_BRACED_REF.finditer(s))
    if refs:
        for m in refs:
            op, default = m.group(1), m.group(2)
            if op and op.lstrip(":") in "-=+" and default and _plain_string(default.strip()):
                return None
        return True
    return any(p.match(s) for p in _WHOLE_REFS)


def _plain_string(s: str) -> bool:
    if not s or _is_placeholder(s):
        return False
    ref = _is_reference(s)
    return ref is None or ref is False


def is_plaintext(value: object) -> bool:
    """A non-empty scalar that is neither a reference, a placeholder, nor a boolean."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, (bytes, bytearray)):
        return len(value) > 0
    if isinstance(value, str):
        return _plain_string(value.strip())
    return False  # dates, timestamps


_PATHISH = re.compile(
    r"(?:~|\.{1,2})?/[^\s]*\Z|[A-Za-z]:\\\S*\Z"
    r"|[\w.\-/\\]+\.(?:pem|key|json|p12|pfx|crt|cer|der|jks|keystore|txt|gpg|asc|pub|env|ini|yaml|yml)\Z",
)


def is_file_path(value: object) -> bool:
    """``private_key: /etc/ssl/app.key`` names a file holding a secret, not the secret."""
    return (
        isinstance(value, str) and "-----BEGIN" not in value and bool(_PATHISH.match(value.strip()))
    )


_KNOWN_TOKEN = re.compile(
    r"(?:sk-|sk_live_|sk_test_|rk_live_|pk_live_|ghp_|gho_|ghs_|ghu_|ghr_|github_pat_|glpat-"
    r"|xox[abposr]-|AKIA|ASIA|AIza|hf_|ya29\.|eyJ)[A-Za-z0-9_\-./+=]{8,}\Z"
)
_TOKENISH = re.compile(r"[A-Za-z0-9+/=_\-]{20,}\Z")
_IDENTIFIER = re.compile(r"[A-Za-z]+(?:[_\-.][A-Za-z]+)*(?:[_\-.]?v?[0-9]{1,4})?\Z")


def looks_like_credential(value: object) -> bool:
    """For ambiguous names (``key``, ``foo_key``): does the value look like a random token?"""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return False
    s = str(value).strip()
    if len(s) < 11:
        return False  # shorter than the shortest shape below (`sk-` + 8, 20 for a random run)
    if not is_plaintext(s):
        return False
    if _KNOWN_TOKEN.match(s) or "-----BEGIN" in s:
        return True
    if not _TOKENISH.match(s) or _IDENTIFIER.match(s):
        return False
    if "/" in s and any(
        seg.isdigit() or (seg.isalpha() and seg.islower() and len(seg) >= 3) for seg in s.split("/")
    ):
        return False  # an object path such as raw/2024/01/prices
    letters = sum(c.isalpha() for c in s)
    digits = sum(c.isdigit() for c in s)
    return letters >= 2 and digits >= 2


# --------------------------------------------------------------------------- URLs

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s'\"<>`]+")
_APPRISE_SECRET_SCHEMES = frozenset(
    {"feishu", "lark", "dingtalk", "wecombot", "wxteams", "tgram", "slack", "discord", "msteams",
     "pover", "pushover", "gotify", "gotifys", "bark", "barks", "serverchan", "schan", "pushplus",
     "qq", "wxpusher", "line", "signal", "signals", "mailto", "mailtos"}
)  # fmt: skip


def _tail_plain(part: str) -> bool:
    part = unquote(part).strip().strip("/")
    return bool(part) and _plain_string(part)


def _credential_in_url(url: str) -> bool:
    url = url.rstrip(".,;:")
    for opener, closer in ("()", "[]", "{}"):  # prose around a URL: "(see https://...)"
        while url.endswith(closer) and url.count(closer) > url.count(opener):
            url = url[:-1].rstrip(".,;:")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if "@" in netloc:
        userinfo = netloc.rsplit("@", 1)[0]
        user, sep, password = userinfo.partition(":")
        if sep and _tail_plain(password):
            return True
        if not sep and looks_like_credential(unquote(user)):
            return True  # https://ghp_xxx@github.com/...
    path = parts.path
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if host in ("open.feishu.cn", "open.larksuite.com") and "/hook/" in path:
        return _tail_plain(path.split("/hook/", 1)[1])
    if host == "hooks.slack.com":
        return _tail_plain(path.split("/", 2)[2] if path.count("/") >= 2 else "")
    if host == "oapi.dingtalk.com" and path.startswith("/robot/send"):
        return _tail_plain(query.get("access_token", ""))
    if host == "qyapi.weixin.qq.com" and "webhook/send" in path:
        return _tail_plain(query.get("key", ""))
    if host in ("discord.com", "discordapp.com") and "/api/webhooks/" in path:
        return _tail_plain(path.split("/api/webhooks/", 1)[1])
    if host == "api.telegram.org" and re.match(r"/bot[^/]+", path):
        return _tail_plain(path[4:].split("/", 1)[0])
    if host.endswith(".webhook.office.com") or (
        host == "outlook.office.com" and path.startswith("/webhook")
    ):
        return _tail_plain(path)
    if scheme in _APPRISE_SECRET_SCHEMES and scheme not in ("mailto", "mailtos"):
        return _tail_plain(netloc + path)
    for name, value in query.items():
        cls = name_class(name)
        if (cls == "secret" and _tail_plain(value)) or (
            cls == "maybe" and looks_like_credential(value)
        ):
            return True
        if name.lower() in ("sign", "signature", "sig", "key") and looks_like_credential(value):
            return True
    return False


def has_credential_url(s: str) -> bool:
    return "://" in s and any(_credential_in_url(m.group(0)) for m in _URL.finditer(s))


_USERINFO = re.compile(r"(?<=://)([^/\s@'\"<>`]*)@")
_EXAMPLE_WORDS = frozenset(
    {"user", "username", "login", "name", "password", "passwd", "pass", "pwd", "secret", "token",
     "key", "apikey", "api_key", "pat", "xxx", "changeme", "tiger", "${x}"}
)  # fmt: skip


def credential_url_spans(text: str, *, examples: bool = False) -> Iterator[tuple[int, int]]:
    """Offsets of the URLs in ``text`` that carry a credential (see ``has_credential_url``).
    With ``examples`` (code and documentation), ``user:password@`` spelled with such words is an
    example, not a credential."""
    i = text.find("://")
    while i >= 0:
        j = i  # back to the start of the scheme
        while j > 0 and i - j < 32 and (text[j - 1].isalnum() or text[j - 1] in "+.-"):
            j -= 1
        while j < i and not ("a" <= text[j].lower() <= "z"):
            j += 1
        m = _URL.match(text, j) if j < i else None
        i = text.find("://", i + 3)
        if m is None:
            continue
        url = m.group(0)
        if examples:
            url = _example_free(url)
        if _credential_in_url(url):
            yield m.span()


_UPPER_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Z_]{2,}(?![A-Za-z0-9])")
_FIELD = re.compile(r"\{[^{}]*\}")


def _example_free(url: str) -> str:
    """A URL from code or documentation with its spelled-out examples taken for references:
    ``{token}`` fields, ``WEBHOOK_TOKEN`` words, ``user:password@`` / ``u:p@`` userinfo."""
    url = _UPPER_WORD.sub("${X}", _FIELD.sub("${X}", url))
    if "..." in url or "…" in url:
        return url.split("://", 1)[0] + "://example"  # elided: an example, not a real URL
    info = _USERINFO.search(url)
    if info:
        user, _, password = info.group(1).partition(":")
        pw = re.sub(r"^(?:my|your|the)[-_]?", "", unquote(password).lower().strip("<>[]"))
        if (pw in _EXAMPLE_WORDS or len(pw) < 3 or " " in pw or
                (not password and user.lower() in _EXAMPLE_WORDS)):
            url = url[: info.start(1)] + url[info.end(0):]
    return url


# --------------------------------------------------------------------------- assignments

# `NAME=value` / `--name=value` inside a command string or an env list (`TUSHARE_TOKEN=abc`)
_INLINE_ASSIGN = re.compile(r"(?:^|(?<=\s))(?:--?)?([A-Za-z_][A-Za-z0-9_\-]*)=(\S+)")


def secret_assignment(name: str, value: str) -> bool:
    cls = name_class(name)
    value = value.strip().strip("'\"")
    if cls == "secret":
        return is_plaintext(value) and not is_file_path(value)
    if cls == "maybe":
        return looks_like_credential(value)
    return False


# `--token abc` inside a command string (a flag with a credential name, then its value)
_FLAG_VALUE = re.compile(r"(?:^|(?<=\s))--?([A-Za-z][A-Za-z0-9_\-]{0,63})[ \t]+([^\s'\"`;|&-][^\s'\"`;|&]*)")


def string_has_secret(s: str) -> bool:
    """``--token=abc``, ``TOKEN=abc`` or ``--token abc`` inside a command string."""
    if "=" in s and any(secret_assignment(m.group(1), m.group(2))
                        for m in _INLINE_ASSIGN.finditer(s)):
        return True
    return "-" in s and any(name_class(m.group(1)) == "secret" and _flag_value(m.group(2))
                            for m in _FLAG_VALUE.finditer(s))


def _flag_value(value: str) -> bool:
    """A flag's value that is a credential, not prose (``--token to pass``) or a path."""
    if len(value) < 8 or not is_plaintext(value) or is_file_path(value):
        return False
    return looks_like_credential(value) or (any(c.isdigit() for c in value)
                                            and any(c.isalpha() for c in value))


def secret_by_name(key: object, value: object) -> bool:
    """``value`` under ``key`` is a secret because of the key's name (a DSN only with a
    credential in it)."""
    cls = name_class(key)
    if cls in ("secret", "container"):
        if isinstance(value, str) and name_words(str(key))[-1:] == ["dsn"]:
            if not has_credential_url(value) and "://" in value:
                return False  # sqlite:///state/app.db, postgresql://host/db: no credential
        return is_plaintext(value) and not is_file_path(value)
    if cls == "maybe":
        return looks_like_credential(value)
    return False


# bounded runs, anchored on a non-word before them: linear time on a long line (an unbounded
# scheme run tried at every letter of a long word is quadratic)
_URL_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,31}://)[^/\s@]{1,2000}@")
_SECRET_QUERY = re.compile(
    r"([?&](?:access_token|token|key|secret|password|sign|signature|api_key|apikey)=)[^&\s]+",
    re.IGNORECASE)
_HOOK_ID = re.compile(r"(/hook/)[A-Za-z0-9_-]{6,}")


def mask_credentials(text: str) -> str:
    """Mask what would leak a credential in a message: URL user:password, secret query
    parameters, bot webhook ids (Feishu/Lark/Slack-style ``/hook/<id>``)."""
    text = _URL_USERINFO.sub(r"\1****@", text)
    text = _SECRET_QUERY.sub(r"\1****", text)
    return _HOOK_ID.sub(r"\1****", text)
