"""Command-line credentials of tools outside the first list (red-team round 2, finding 5):
``docker login -p``, ``ldapsearch -w``, ``smbclient -U user%pw``, ``zip -P`` and API-key
headers are found in a script and an argv and masked; ports, prompts, references and prose are
not credentials."""

from __future__ import annotations

import shlex

import pytest

from tasks_lib.secrets import configs, masking
from tasks_lib.secrets.commands import mask_commands
from tasks_lib.secrets.files import scan_file

V = "Zq9tOols7Kw"
FORMS = [
    f"docker login -u bot -p {V} registry.example",
    f"podman login --username bot --password {V} quay.io",
    f"ldapsearch -x -D cn=admin,dc=ex -w {V} -b dc=ex",
    f"ldapmodify -x -w {V} -f change.ldif",
    f"smbclient //srv/share -U admin%{V}",
    f"zip -P {V} out.zip f",
    f"unzip -P {V} out.zip",
    f'curl -H "X-Api-Key: {V}" https://api.example',
    f"curl -H 'api-key: {V}' https://api.example",
    f"curl --header 'Private-Token: {V}' https://gitlab.example/api",
]
NOT_CREDENTIALS = [
    "docker run -p 8080:80 img", "docker run -p 8080 img login", 'docker login -p "$PW" reg',
    "docker login -u bot --password-stdin reg", "ldapsearch -W -x -b dc=ex",
    "ldapsearch -x -w $LDAP_PW", "smbclient //srv/share -U admin", "smbclient -U admin%$PW //x",
    "zip -r out.zip dir", "unzip -P $ZIPPW x.zip", "grep -w pattern file",
    "api-key: see the docs", "X-Api-Key: ${API_KEY}", "the api_key: required",
    'curl -H "X-Api-Key: <your key>" https://api.example',
]


@pytest.mark.parametrize("command", FORMS)
def test_each_tool_form_is_found_in_a_script_and_an_argv_and_masked(command: str) -> None:
    assert scan_file("tasks/T01/ops.sh", (command + "\n").encode()), command
    argv = shlex.split(command)
    assert scan_file("tasks/T01/ops.py", f"subprocess.run({argv!r})\n".encode()), command
    assert configs.scan({"run": {"start": argv}}), command
    assert V not in mask_commands(command)
    assert V not in " ".join(masking.mask_argv(argv))


@pytest.mark.parametrize("command", NOT_CREDENTIALS)
def test_ports_prompts_references_and_prose_are_not_tool_credentials(command: str) -> None:
    assert not scan_file("tasks/T01/ops.sh", (command + "\n").encode())
    assert not configs.scan({"smoke": command})
    assert mask_commands(command) == command
