"""tasks_lib.secrets.files / secret_lines / secret_shapes: one scanner for every committed file.

Each case is a hostile or careless file; the scanner must find the secret (naming the file and a
key path or a line, never the value), or must leave a reference, a placeholder or ordinary
strategy code alone. Token-shaped test values are built by concatenation so that this file is
not itself a leak to other scanners."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tasks_lib.secrets.files import FileFinding, scan_file, secret_named
from tasks_lib.secrets.lines import scan_code
from tasks_lib.secrets.shapes import credential_shaped_name, has_token, token_in_base64

GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
TOK = "8700" + "deadbeefcafe0123456789"          # a tushare-like hex token
SK = "sk-proj-" + "Ab3dE5fG7hJ9kL1mN3pQ5rS7"
AKIA = "AKIA" + "Z7QW3ERT5YUI8OPA"
XOXB = "xoxb-" + "123456789012-abcdefABCDEF"
PW = "hunter2" + "-Pw9"
VALUES = (GHP, TOK, SK, AKIA, XOXB, PW, "s3cr3tPW")
T = "tasks/T01/"


def found(path: str, data: str | bytes, **kw: object) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    findings = scan_file(T + path, raw, **kw)  # type: ignore[arg-type]
    shown = repr(findings) + " ".join(str(f) for f in findings) + repr([vars(f) for f in findings])
    for value in VALUES:
        assert value not in shown, f"{path}: a value leaked into a finding"
    return [f.where for f in findings]


@pytest.mark.parametrize("path, text, expected", [
    # code: assignments, keyword arguments, dicts, environment writes
    ("fetch.py", f'import tushare as ts\nTUSHARE_TOKEN = "{TOK}"\n', ["line 2 (TUSHARE_TOKEN)"]),
    ("fetch.py", f'pro = ts.pro_api(token="{TOK}")\n', ["line 1 (token)"]),
    ("fetch.py", f'ts.set_token("{TOK}")\npro = ts.pro_api("{TOK}")\n',
     ["line 1 (ts.set_token)", "line 2 (ts.pro_api)"]),
    ("fetch.py", f'headers = {{"Authorization": "Bearer {TOK}"}}\n', ["line 1 (Authorization)"]),
    ("fetch.py", f'os.environ.setdefault("TUSHARE_TOKEN", "{TOK}")\n', ["line 1 (TUSHARE_TOKEN)"]),
    ("fetch.py", f'os.environ["FEISHU_APP_SECRET"] = "{TOK}"\n', ["line 1 (FEISHU_APP_SECRET)"]),
    ("fetch.py", f'tok = os.getenv("TUSHARE_TOKEN", "{TOK}")  # a default leaks\n',
     ["line 1 (TUSHARE_TOKEN)"]),
    ("fetch.py", f'class C:\n    def __init__(self):\n        self.api_key: str = "{TOK}"\n',
     ["line 3 (self.api_key)"]),
    ("db.py", f'def connect(password="{PW}"):\n    pass\n', ["line 1 (password)"]),
    # split across a continuation, parentheses, implicit concatenation, base64
    ("fetch.py", f'TUSHARE_TOKEN = "{TOK[:8]}" \\\n    "{TOK[8:]}"\n', ["line 1 (TUSHARE_TOKEN)"]),
    ("fetch.py", f'TUSHARE_TOKEN = \\\n    "{TOK}"\n', ["line 1 (TUSHARE_TOKEN)"]),
    ("fetch.py", f'TUSHARE_TOKEN = (\n    "{TOK[:8]}"\n    "{TOK[8:]}"\n)\n', ["line 1 (TUSHARE_TOKEN)"]),
    ("fetch.py", f'TOKEN = "8" "{TOK[1:]}"\n', ["line 1 (TOKEN)"]),  # a short first piece
    ("fetch.py", f'TOKEN = ("8"\n         "{TOK[1:]}")\n', ["line 1 (TOKEN)"]),
    ("fetch.py", f'TOKEN = "8" + \\\n    "{TOK[1:]}"\n', ["line 1 (TOKEN)"]),
    ("fetch.py", f'API_KEY = "{TOK}"\n"""The next docstring."""\n', ["line 1 (API_KEY)"]),
    ("fetch.py", f'TOKEN = base64.b64decode("{base64.b64encode(TOK.encode()).decode()}")\n',
     ["line 1 (TOKEN)"]),
    ("fetch.py", f'TOKEN_B64 = "{base64.b64encode(TOK.encode()).decode()}"\n', ["line 1 (TOKEN_B64)"]),
    ("fetch.py", f'BLOB = "{base64.b64encode(GHP.encode()).decode()}"\n', ["line 1"]),
    # comments, docstrings, CRLF, undecodable bytes
    ("fetch.py", f'x = 1  # tushare token: {TOK}\n', ["line 1 (token)"]),
    ("fetch.py", f'"""Clone with\n{GHP}\n"""\n', ["line 2"]),
    ("fetch.py", f'import os\r\nTUSHARE_TOKEN = "{TOK}"\r\nX = 1\r\n', ["line 2 (TUSHARE_TOKEN)"]),
    ("fetch.py", b'\xff\xfe\nTOKEN = "' + TOK.encode() + b'"\n\xc3\x28\n', ["line 2 (TOKEN)"]),
    # token shapes and credential URLs anywhere
    ("x.py", f"a = '{SK}'\nb = '{AKIA}'\nc = '{XOXB}'\n", ["line 1", "line 2", "line 3"]),
    ("x.py", 'K = """-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"""\n',
     ["line 1"]),
    ("x.py", 'DB = "postgresql://app:s3cr3tPW@db:5432/app"\n', ["line 1"]),
    ("x.py", 'HOOK = "https://open.feishu.cn/open-apis/bot/v2/hook/0f1e2d3c-aaaa-4bbb"\n',
     ["line 1"]),
    ("requirements.txt", "--index-url https://ci:s3cr3tPW@idx.example/simple\npandas>=1.5\n"
     "pkg @ https://ci:s3cr3tPW@idx.example/p-1.0-py3-none-any.whl\n", ["line 1", "line 3"]),
    ("run.sh", f"#!/bin/sh\nexport TUSHARE_TOKEN={TOK}\nexec python main.py\n",
     ["line 2 (TUSHARE_TOKEN)"]),
    ("README.md", f"Set it first, e.g. TUSHARE_TOKEN={TOK}\n", ["line 1 (TUSHARE_TOKEN)"]),
    ("my fetch script.py", f'TUSHARE_TOKEN = "{TOK}"\n', ["line 1 (TUSHARE_TOKEN)"]),
    # an argv as a list of literals, a Dockerfile's old ENV form
    ("launch.py", f'subprocess.run(["python", "main.py", "--token", "{TOK}"])\n',
     ["line 1 (token)"]),
    ("launch.py", f'ARGS = ("--api-key",\n        "{TOK}")\n', ["line 1 (api-key)"]),
    ("Dockerfile", f"FROM python:3.11\nENV TUSHARE_TOKEN {TOK}\nENV MODE paper\n",
     ["line 2 (TUSHARE_TOKEN)"]),
    # several names at once, an auth pair, XML, curl's user:password
    ("fetch.py", f"user, password = 'u', '{PW}'\n", ["line 1 (password)"]),
    ("fetch.py", f"requests.get('https://x', auth=('user', '{PW}'))\n", ["line 1 (auth)"]),
    ("conf.xml", f"<conf><password>{PW}</password></conf>\n", ["line 1 (password)"]),
    ("run.sh", f"#!/bin/sh\ncurl -u user:{PW} https://x\n", ["line 2 (user:password)"]),
    ("backup.sh", f"mysqldump -u quant -p{PW} prices\nsshpass -p {PW} ssh box\n",
     ["line 1 (-p)", "line 2 (-p)"]),
    ("app.config", f'<appSettings><add key="ApiKey" value="{TOK}"/></appSettings>\n',
     ["line 1 (ApiKey)"]),
])
def test_code_and_text_secrets_are_found(path: str, text: str | bytes, expected: list[str]) -> None:
    assert found(path, text) == expected


@pytest.mark.parametrize("text", [
    'TUSHARE_TOKEN = os.environ["TUSHARE_TOKEN"]\n',
    'TUSHARE_TOKEN = os.getenv("TUSHARE_TOKEN", "")\n',
    'token = "${TUSHARE_TOKEN}"\npw = "{password}"\n',
    'TOKEN = "<your-token>"\nAPI_KEY = "xxx"\nSECRET = "REPLACE_ME"\nPW = "***"\n',
    'PASSWORD_FIELD = "password"\nAPI_KEY_HEADER = "X-Api-Key"\nTOKEN_ENV = "TUSHARE_TOKEN"\n',
    'token_var = "TUSHARE_TOKEN"\nkey = "close"\nsort_key = "trade_date"\n',
    'password = input("Enter password: ")\nmsg = "token expired, rotate it"\n',
    'parser.add_argument("--token", "-t", help="the API token")\n',
    'argv = ["--token", TOKEN, "--password", "", "--token", "--verbose"]\n',
    'user, password = os.environ["U"], os.environ["PW"]\nauth = (user, password)\n',
    'a, b = "x", "y"\nrun(["curl", "-u", "user:$PW"])\nos.system("curl -u $USER:$PW x")\n',
    'host, password = "db.internal", os.environ["PGPASSWORD"]\n',
    'os.system("docker run -u 1000:1000 --user www-data:www-data img")\n'
    'os.system("mysql -u root -p prices; mysql -P 3306 -p$PW")\n',
    'if token == "abc123": pass\n',
    'def f(token: "Optional[str]" = None): pass\n',
    'url = f"https://{user}:{password}@{host}/db"\nu2 = "https://user:password@host/simple"\n',
    '# pip install --index-url https://user:password@mirror/simple pkg\n',
    'import sklearn  # sk-learn-compatible estimator wrapper\n',
    'aws_example = "AKIAIOSFODNN7EXAMPLE"\n',
    'max_tokens = 4096\nnum_tokens = "12345678"\neos_token = "</s>"\n',
    'DSN = "postgresql://localhost/prices"\ndb_dsn = "sqlite:///state/app.db"\n',
    'x = d.get("token", "default")\ntok = get_secret("prod/tushare")\n',
    'os.environ["TUSHARE_TOKEN"] = "demo-placeholder"\n',
    'jsonnet_token = r"[^\\W\\d]\\w*"\nupgrade_token = "upgrades"\n',
    # ordinary strategy code
    'import pandas as pd\n\ndef score(df):\n    key = ("600000.SH", "2024-01-02")\n'
    '    return df.groupby("ts_code")["close"].pct_change().rolling(20).mean()\n',
])
def test_references_placeholders_and_strategy_code_are_not_secrets(text: str) -> None:
    assert found("strategy.py", text) == []


def test_notebook_cells_and_outputs() -> None:
    nb = {"cells": [
        {"cell_type": "code", "source": ["import tushare as ts\n", f'ts.set_token("{TOK}")\n'],
         "outputs": [{"output_type": "stream", "text": [f"cloned with {GHP}\n"]}]},
        {"cell_type": "markdown", "source": [f"export TUSHARE_TOKEN={TOK}"]},
        {"cell_type": "code", "source": "x = 1\n", "outputs": [
            {"output_type": "execute_result", "data": {"text/plain": [f"'{SK}'"]}}]},
    ], "metadata": {"kernelspec": {"name": "python3"}}}
    assert found("explore.ipynb", json.dumps(nb)) == [
        "cell 1 line 2 (ts.set_token)", "cell 1 output line 1",
        "cell 2 line 1 (TUSHARE_TOKEN)", "cell 3 output line 1"]
    assert found("broken.ipynb", "{not json " + GHP) == ["line 1"]  # read as text instead


@pytest.mark.parametrize("path, text, expected", [
    ("settings.yaml", f"base: &b\n  token: {TOK}\nprod:\n  <<: *b\nstage: *b\n",
     ["at base.token", "at prod.token"]),
    # a duplicate key: the loaded data keeps the reference, the committed file the value
    ("settings.yaml", f"token: {TOK}\ntoken: ${{TUSHARE_TOKEN}}\n", ["at token"]),
    ("settings.json", '{"token": "' + TOK + '", "token": "${X}"}', ["at token"]),
    ("settings.yaml", f"# clone with {GHP}\nx: 1\n", ["line 1"]),
    ("k8s.yaml", f"a: 1\n---\npassword: {PW}\n", ["at [doc 2].password"]),
    ("broken.yaml", f"token: {TOK}\n  bad: [\n", ["line 1 (token)"]),
    ("pyproject.toml", f'[tool.x]\napi_key = "{TOK}"\n', ["at tool.x.api_key"]),
    ("notes.yaml", f"note: {GHP}\n", ["at note"]),
    ("app.ini", f"[database]\nhost = db\npassword = {PW}\n[credentials]\nfeishu = {TOK}\n",
     ["line 3 (database.password)", "line 5 (credentials.feishu)"]),
    (".npmrc", f"//registry.npmjs.org/:_authToken={TOK}\n", ["line 1 (//registry.npmjs.org/:_authToken)"]),
    ("deploy.yaml", f"env:\n- name: TUSHARE_TOKEN\n  value: {TOK}\n- name: MODE\n  value: paper\n"
     "- name: API_KEY\n  valueFrom: {secretKeyRef: {name: s, key: k}}\n"
     "- name: DB_PASSWORD\n  value: ${DB_PASSWORD}\n", ["at env[0].value"]),
])
def test_data_and_kv_files(path: str, text: str, expected: list[str]) -> None:
    assert found(path, text) == expected


@pytest.mark.parametrize("path, text, expected", [
    ("secrets.yaml", f"tushare: {TOK}\nregion: cn\nport: 5432\nenabled: true\n", ["at tushare"]),
    ("credentials.json", json.dumps({"client_id": "abc", "refresh": TOK, "type": "user"}),
     ["at refresh"]),
    (".env.production", f"TUSHARE_TOKEN={TOK}\nLOG_LEVEL=info\nPORT=8000\n# old: {GHP}\n",
     ["line 1 (TUSHARE_TOKEN)", "line 2 (LOG_LEVEL)", "line 4"]),
    (".env", f"FEISHU_APP_SECRET='{TOK}'\n", ["line 1 (FEISHU_APP_SECRET)"]),
    (".env.example", "TUSHARE_TOKEN=<your token>\nLOG_LEVEL=info\n", []),
    (".env.example", f"TUSHARE_TOKEN={TOK}\n", ["line 1 (TUSHARE_TOKEN)"]),
    ("secrets.py", f'TUSHARE = "{TOK}"\nREGION = "cn"\n', ["line 1 (TUSHARE)"]),
    # a module merely named after secrets is ordinary code
    ("2022_07_06_e2dae764a603_migrate_new_secrets_.py", 'revision = "e2dae764a603"\n', []),
])
def test_a_file_whose_name_says_secret_treats_every_plaintext_value_as_one(
    path: str, text: str, expected: list[str]
) -> None:
    assert found(path, text) == expected


@pytest.mark.parametrize("path, data, expected", [
    ("id_rsa", b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n", ["whole file"]),
    ("store.p12", b"\x30\x82\x01\x00binary", ["whole file"]),
    (".netrc", b"machine h login u password p\n", ["whole file"]),
    ("app.key", b"a94a8fe5ccb19ba61c4c0873d391e987\n", ["whole file"]),
    ("cert.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", []),
    ("pub.key", b"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", []),
    ("key.pem", b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", ["line 1"]),
    ("model.pkl", b"\x80\x04\x95\x00\x00" + GHP.encode() + b"\x00\x00", ["binary content"]),
    ("model.pkl", bytes(range(256)) * 64, []),
    ("empty.p12", b"", []),
])
def test_key_files_and_binaries(path: str, data: bytes, expected: list[str]) -> None:
    assert [w.split(":")[0].strip("()") for w in found(path, data)] == expected


def test_symlinks_are_judged_by_their_target_as_git_stores_it() -> None:
    assert found("creds", GHP.encode(), symlink=True) == ["(symlink target)"]
    assert found("creds", b"/home/op/.aws/credentials", symlink=True) == []
    assert found("secrets.yaml", b"../shared/secrets.yaml", symlink=True) == []


def test_a_token_in_a_file_name_is_masked() -> None:
    findings = scan_file(f"{T}notes-{GHP}.txt", b"hello\n")
    assert findings == [FileFinding(f"{T}notes-<token>.txt", "token", note="file name")]


def test_large_and_long_inputs_stay_bounded() -> None:
    line = "x = [" + "1, " * 2_000_000 + f'"{GHP}"]\n'  # one 6 MB line
    started = time.perf_counter()
    assert found("wide.py", line) == ["line 1"]
    big = "# data\n" + "a,b,c\n" * (50 * 1024 * 1024 // 6) + GHP + "\n"  # 50 MB: shapes only
    assert found("dump.txt", big) == [f"line {big.count(chr(10))}"]
    rows = '{"rows": [' + '{"a": 1, "b": "xyz"},' * (3 * 1024 * 1024 // 21) + f'{{"token": "{TOK}"}}]}}'
    assert found("rows.json", rows) == ["line 1 (token)"]  # over 2 MiB: read as text
    assert time.perf_counter() - started < 30


def test_secret_named_and_shapes() -> None:
    assert all(secret_named(n) for n in ["secrets.yaml", "credentials.json", "client_secret.json",
                                         ".env", ".env.production", "prod.env", "api_keys.toml",
                                         "secrets.prod.yaml", "token.json"])
    assert not any(secret_named(n) for n in [".env.example", "config.yaml", "tokenizer.json",
                                             "password_rules.yaml", "secrets.yaml.example",
                                             "keys.py", "signals.py"])
    assert has_token(GHP) and has_token(SK) and has_token(AKIA) and has_token(XOXB)
    assert not has_token("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")  # a placeholder
    assert not has_token("AKIAIOSFODNN7EXAMPLE") and not has_token("sk-learn-compatible-wrapper")
    assert token_in_base64(base64.b64encode(GHP.encode()).decode())
    assert token_in_base64(base64.urlsafe_b64encode(b"-----BEGIN PRIVATE KEY-----\n").decode())
    assert not token_in_base64(base64.b64encode(b"just some words here, nothing else").decode())
    assert credential_shaped_name(GHP) and not credential_shaped_name("TUSHARE_TOKEN")


def test_scan_cost_on_strategy_sized_files() -> None:
    module = ('"""A strategy module."""\nimport os\nimport pandas as pd\n\n'
              'TOKEN = os.environ["TUSHARE_TOKEN"]\n\n'
              + "".join(f"def signal_{i}(df, key='close', window={i}):\n"
                        f"    return df[key].rolling(window).mean()  # {i}\n\n" for i in range(60)))
    started = time.perf_counter()
    for _ in range(500):
        assert scan_code(module) == []
    assert time.perf_counter() - started < 5  # ~2.4 MB of code


def test_utf16_deep_nesting_and_long_key_paths() -> None:
    for codec in ("utf-16", "utf-16-le"):
        assert found("notes.txt", f"TUSHARE_TOKEN={GHP}\n".encode(codec)) == ["line 1 (TUSHARE_TOKEN)"]
    assert found("deep.json", "[" * 5000 + "]" * 5000) == []  # too deep to parse: read as text
    deep = '{"a":' * 600 + f'{{"token": "{TOK}"}}' + "}" * 600
    (where,) = found("deep.json", deep)
    assert where.startswith("at …") and where.endswith("a.a.token") and len(where) < 110
    nb = {"cells": [{"cell_type": "code", "source": "plot()\n", "outputs": [{"data": {
        "image/png": base64.b64encode(bytes(range(256)) * 400).decode(),
        "text/plain": [f"token={TOK}"]}}]}], "metadata": {}}
    assert found("plots.ipynb", json.dumps(nb)) == ["cell 1 output line 1 (token)"]


def test_a_file_too_big_to_read_whole_is_streamed_in_blocks() -> None:
    import io

    from tasks_lib.secrets.files import scan_stream

    block = 1024 * 1024
    for offset in (10, 8191, 8192, 20000):  # a token cut by a block boundary is still found
        data = b"x" * (block - offset) + f" {GHP}\n".encode() + b"y\n" * 10
        assert [str(f) for f in scan_stream(T + "dump.txt", io.BytesIO(data), block)] == [
            f"{T}dump.txt line 1"]
    data = b"a\n" * 3 + b"x" * (3 * block) + f" https://ci:{PW}@idx.example/ \n".encode()
    assert [f.kind for f in scan_stream(T + "dump.txt", io.BytesIO(data), block)] == ["credential-url"]
    data = b"\0" * 100 + b"x" * block + f" {GHP}".encode()
    assert [f.note for f in scan_stream(T + "blob.bin", io.BytesIO(data), block)] == ["binary content"]
    assert scan_stream(T + "clean.txt", io.BytesIO(b"z" * (3 * block)), block) == []


@pytest.mark.parametrize("name, text, secret", [
    ("tushare_token.txt", f"{TOK}\n", True),
    ("api_key", f"{TOK}", True),
    ("tushare_token.txt", "put the token in TUSHARE_TOKEN, never here\n", False),
    ("tushare_token.txt", "${TUSHARE_TOKEN}\n", False),
    ("token_notes.md", f"{TOK}\n", False),
])
def test_a_file_named_for_a_credential_holding_one_value(name: str, text: str,
                                                          secret: bool) -> None:
    assert bool(found(name, text)) is secret
