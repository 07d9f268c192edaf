"""Credential shapes: the forms agents produce, gitleaks' rules and allowlists, the pre-filter,
and precision on ordinary content that must come through untouched."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provtrace import conventions as c
from provtrace import credential_rules
from provtrace.content import REDACTOR, CapturePolicy, to_jsonable
from provtrace.credentials import RULES, _redact, is_secret_key_name, redact_credentials, until_stable

ORDINARY = Path(__file__).parent / "data" / "ordinary"
_RANDOM = random.Random(4711)


def _random_token(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_RANDOM.choice(alphabet) for _ in range(length))


AWS_SECRET = _random_token(40, string.ascii_letters + string.digits + "+/")


def _leaks(secret: str, redacted: str) -> bool:
    """Whether any 4-character piece of ``secret`` survived redaction."""
    return any(secret[i : i + 4] in redacted for i in range(len(secret) - 3))


# --- the forms that leaked (issue 10) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-access-key]"),
        ("DB_PASSWORD=hunter2", "DB_PASSWORD=[REDACTED:credential]"),
        ("export API_TOKEN=tok_3f9a71", "export API_TOKEN=[REDACTED:credential]"),
        (f"aws_secret_access_key = {AWS_SECRET}", "aws_secret_access_key = [REDACTED:aws-secret-access-key]"),
        ("MYSQL_ROOT_PASSWORD: 'hunter2!'", "MYSQL_ROOT_PASSWORD: '[REDACTED:credential]'"),
        ("$ PGPASSWORD=s3cr3t psql -h db", "$ PGPASSWORD=[REDACTED:credential] psql -h db"),
    ],
)
def test_prefixed_secret_names_in_plain_text(text: str, expected: str) -> None:
    assert redact_credentials(text) == expected


def test_env_file_read_through_a_tool_keeps_names_and_drops_values() -> None:
    env = (
        "# production\n"
        "DB_HOST=db.internal\n"
        "DB_PASSWORD=correct horse, battery; staple\n"
        "export API_TOKEN='tok 51c2 d9'\n"
        f"aws_secret_access_key = {AWS_SECRET}  # rotated monthly\n"
        "STRIPE_SECRET=sk_live_" + _random_token(24) + "\n"
        "LOG_LEVEL=info\n"
    )
    redacted = redact_credentials(env)
    assert redacted.splitlines() == [
        "# production",
        "DB_HOST=db.internal",
        "DB_PASSWORD=[REDACTED:credential]",
        "export API_TOKEN='[REDACTED:credential]'",
        "aws_secret_access_key = [REDACTED:aws-secret-access-key]  # rotated monthly",
        "STRIPE_SECRET=[REDACTED:stripe-access-token]",
        "LOG_LEVEL=info",
    ]


def test_bare_aws_secret_access_key_is_redacted() -> None:
    assert (
        redact_credentials(f"the key {AWS_SECRET} leaked")
        == "the key [REDACTED:aws-secret-access-key] leaked"
    )


@pytest.mark.parametrize(
    "ordinary",
    [
        hashlib.sha1(b"provtrace").hexdigest(),  # a git commit id
        hashlib.sha1(b"provtrace").hexdigest().upper(),
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmn",  # one letter case, no digit
        "AbstractSingletonProxyFactoryBean2Helper",  # mostly words
        "ThisIsNotASecretJustALongCamelCaseName12",
        "src/main/java/com/Example/App/Main1Test2",  # a path
        AWS_SECRET + "A",  # 41 characters: part of a longer blob
    ],
)
def test_forty_character_ordinary_strings_are_not_aws_keys(ordinary: str) -> None:
    assert redact_credentials(f"value {ordinary} end") == f"value {ordinary} end"


def test_gitlab_personal_access_token() -> None:
    token = "glpat-" + _random_token(20)
    assert redact_credentials(f"git clone https://oauth2:{token}@gitlab.com/x/y.git") == (
        "git clone https://oauth2:[REDACTED:gitlab-pat]@gitlab.com/x/y.git"
    )
    assert redact_credentials(f"PRIVATE-TOKEN: {token}") == "PRIVATE-TOKEN: [REDACTED:gitlab-pat]"


@pytest.mark.parametrize("version", [2, 3])
def test_putty_private_key_file(version: int) -> None:
    private_lines = [_random_token(64, string.ascii_letters + string.digits + "+/") for _ in range(3)]
    mac = hashlib.sha256(b"mac").hexdigest()
    key_file = (
        f"PuTTY-User-Key-File-{version}: ssh-rsa\n"
        "Encryption: none\n"
        "Comment: svc-fw@prod\n"
        "Public-Lines: 1\n"
        "AAAAB3NzaC1yc2EAAAADAQABAAABAQC7\n"
        "Private-Lines: 3\n" + "\n".join(private_lines) + f"\nPrivate-MAC: {mac}\n"
    )
    redacted = redact_credentials(key_file)
    assert redacted == f"PuTTY-User-Key-File-{version}: ssh-rsa\n[REDACTED:putty-private-key]\n"
    assert not any(_leaks(line, redacted) for line in [*private_lines, mac])


def test_google_oauth_access_token() -> None:
    token = "ya29." + _random_token(60, string.ascii_letters + string.digits + "_-")
    assert redact_credentials(f"Authorization: Bearer {token}") == "Authorization: [REDACTED:bearer-token]"
    assert (
        redact_credentials(f"GET /userinfo?access_token={token}&x=1")
        == "GET /userinfo?access_token=[REDACTED:gcp-oauth-access-token]&x=1"
    )
    assert redact_credentials(f"cached {token}") == "cached [REDACTED:gcp-oauth-access-token]"


def test_azure_sas_signature_is_removed_and_the_rest_of_the_url_kept() -> None:
    signature = base64.b64encode(_random_token(32).encode()).decode().replace("+", "%2B").replace("=", "%3D")
    url = f"https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2026-03-15&sr=b&sp=r&sig={signature}"
    assert redact_credentials(url) == (
        "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2026-03-15&sr=b&sp=r"
        "&sig=[REDACTED:azure-sas-signature]"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=abc12", "password=[REDACTED:credential]"),
        ("login with pwd=Qx9 now", "login with pwd=[REDACTED:credential] now"),
        ('{"token": "abc"}', '{"token": "[REDACTED:credential]"}'),
    ],
)
def test_short_values_after_a_strong_secret_name(text: str, expected: str) -> None:
    assert redact_credentials(text) == expected


@pytest.mark.parametrize(
    ("password", "url"),
    [
        ("pa/ss@w0rd", "postgres://admin:pa/ss@w0rd@db.internal:5432/app"),
        ("a@b/c", "mysql://root:a@b/c@10.0.0.5/db"),
        ("s3cr3t", "redis://:s3cr3t@cache:6379/0"),
        ("p@ss:w/rd?#x", "amqp://svc:p@ss:w/rd?#x@mq.internal/vhost"),
    ],
)
def test_url_passwords_containing_slash_or_at_are_removed_whole(password: str, url: str) -> None:
    redacted = redact_credentials(f"connect to {url} now")
    assert "[REDACTED:password]@" in redacted
    assert password not in redacted
    assert redacted.endswith(url[url.rindex("@") :] + " now")


# --- gitleaks' rules, as a redactor applies them ---------------------------------------------


def test_only_the_secret_is_replaced_so_the_record_stays_readable() -> None:
    value = _random_token(24)
    assert redact_credentials(f"password={value}") == "password=[REDACTED:generic-api-key]"
    assert redact_credentials(f'client.connect(api_key="{value}")') == (
        'client.connect(api_key="[REDACTED:generic-api-key]")'
    )


def test_gitleaks_allowlists_and_stopwords_apply() -> None:
    value = _random_token(20)
    assert redact_credentials(f"primary_key = '{value}'") == f"primary_key = '{value}'"  # rule allowlist
    assert redact_credentials(f"api_key = '{value}'") == "api_key = '[REDACTED:generic-api-key]'"
    assert redact_credentials("api_key = '${API_KEY}'") == "api_key = '${API_KEY}'"  # global allowlist
    aws_example = "AKIAIOSFODNN7EXAMPLE"  # gitleaks allows AWS's documentation key; provtrace does not
    assert redact_credentials(aws_example) == "[REDACTED:aws-access-token]"


def test_identifiers_under_ordinary_names_are_kept_and_under_secret_names_removed() -> None:
    identifier = str(uuid.UUID(int=_RANDOM.getrandbits(128), version=4))
    digest = hashlib.sha256(b"x").hexdigest()
    assert redact_credentials(f'"idempotency_key": "{identifier}"') == f'"idempotency_key": "{identifier}"'
    assert redact_credentials(f"cache_key={digest}") == f"cache_key={digest}"
    assert redact_credentials(f'"api_key": "{identifier}"') == '"api_key": "[REDACTED:generic-api-key]"'
    assert redact_credentials(f"secret={digest}") == "secret=[REDACTED:generic-api-key]"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("ghp_" + _random_token(36), "github-pat"),
        ("xoxb-1234567890-1234567890123-" + _random_token(24), "slack-bot-token"),
        (
            "sk-ant-api03-" + _random_token(93, string.ascii_letters + string.digits + "_-") + "AA",
            "anthropic-api-key",
        ),
        ("AIza" + _random_token(35), "gcp-api-key"),
        ("hvs." + _random_token(95), "vault-service-token"),
        ("npm_" + _random_token(36), "npm-access-token"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\n"
            + _random_token(70)
            + "\n-----END OPENSSH PRIVATE KEY-----",
            "private-key",
        ),
    ],
)
def test_provider_formats_are_named_by_their_gitleaks_rule(text: str, rule: str) -> None:
    assert redact_credentials(f"x {text} y") == f"x [REDACTED:{rule}] y"


def test_generated_rules_record_their_source_and_licence() -> None:
    assert credential_rules.GITLEAKS_VERSION.startswith("v8.")
    assert "MIT License" in (credential_rules.__doc__ or "")
    assert "Copyright (c) 2019 Zachary Rice" in (credential_rules.__doc__ or "")
    assert len(credential_rules.RULES) > 200
    assert {r.id for r in credential_rules.RULES} <= {r.id for r in RULES}


# --- secret names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "DB_PASSWORD",
        "PGPASSWORD",
        "dbPassword",
        "passphrase",
        "pwd",
        "db_pass",
        "AWS_SECRET_ACCESS_KEY",
        "aws_secret_access_key",
        "secretKey",
        "x-api-key",
        "apiKey",
        "APIKEY",
        "api_token",
        "GITHUB_TOKEN",
        "id_token",
        "client_secret",
        "Authorization",
        "set-cookie",
        "credentials",
        "private_key",
        "AccountKey",
        "ssh-key",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_key_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "token_count",
        "max_tokens",
        "tokens",
        "token_type",
        "secret_name",
        "secrets",
        "public_key",
        "primary_key",
        "sort_key",
        "key",
        "key_id",
        "keyboard",
        "monkey",
        "bypass",
        "password_policy",
        "password_length",
        "credentials_id",
        "author",
        "passed",
        "",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not is_secret_key_name(name)


# --- the pre-filter --------------------------------------------------------------------------

fragments = st.sampled_from(
    [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1" * 18,
        "sk-proj-" + "A1b2" * 8,
        "password=hunter2-long",
        "Bearer abcdef0123456789xyz",
        "postgres://u:pw-123456@h/db",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-abcdefgh",
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",
        AWS_SECRET,
        "glpat-" + "Ab3dE6gH9jK2mN5pQ8sT",
        "ya29.a0AfH6SMBx3kJz9QwErTyUiOpAsDf",
        "&sig=Qm9vZ2xlX3NpZ25hdHVyZQ%3D",
        "api_key = ",
        "AWS_SECRET_ACCESS_KEY=",
        "export ",
        "\n",
        " ",
        "token: ",
        "@",
        "://",
        "Key",
        "plain words",
    ]
)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.one_of(fragments, st.text(max_size=12)), max_size=8))
def test_redaction_prefilter_never_skips_a_match(parts: list[str]) -> None:
    """The keyword pass and the anchored rules find what running every rule everywhere finds."""
    text = "".join(parts)
    everywhere = [(rule, None) for rule in RULES]
    expected = until_stable(text, lambda t: _redact(t, everywhere) if len(t) >= 6 else t)
    assert redact_credentials(text) == expected


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(fragments, st.text(max_size=12)), max_size=8))
def test_redaction_is_stable(parts: list[str]) -> None:
    """Redacting redacted text changes nothing: no credential is left for a second look (one
    glued to another is found once the other is replaced) and markers are not matched again."""
    once = redact_credentials("".join(parts))
    assert redact_credentials(once) == once


def test_credentials_glued_together_are_all_removed() -> None:
    glued = "AKIAIOSFODNN7EXAMPLE" + "glpat-" + _random_token(20)
    assert redact_credentials(glued) == "[REDACTED:aws-access-token][REDACTED:gitlab-pat]"


def test_anchored_rules_are_proven_anchored() -> None:
    """Every rule tried only where its keywords occur provably starts with one of them (the same
    proof the generator runs on gitleaks' rules, applied here to provtrace's own rules too)."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "scripts" / "update-credential-rules.py"
    spec = importlib.util.spec_from_file_location("update_credential_rules", path)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generator
    spec.loader.exec_module(generator)
    anchored = [rule for rule in RULES if rule.anchored]
    assert len(anchored) > 200
    unproven = [
        rule.id for rule in anchored if not generator.anchored(rule.pattern.pattern, list(rule.keywords))
    ]
    assert unproven == []


# --- precision: ordinary content is not redacted ----------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in ORDINARY.iterdir()))
def test_ordinary_content_is_not_redacted(name: str) -> None:
    text = (ORDINARY / name).read_text(encoding="utf-8")
    assert redact_credentials(text) == text
    for line in text.splitlines():
        assert redact_credentials(line) == line


def test_ordinary_tool_results_are_stored_unchanged() -> None:
    results = json.loads((ORDINARY / "tool_results.json").read_text(encoding="utf-8"))
    assert REDACTOR.value(results) == results
    rendered = CapturePolicy(c.CAPTURE_REDACTED, max_bytes=1 << 20).render(to_jsonable(results))
    assert rendered is not None
    assert "[REDACTED" not in rendered[0]


@settings(max_examples=200, deadline=None)
@given(
    blob=st.binary(min_size=1, max_size=96),
    identifier=st.uuids(),
    moment=st.datetimes(),
)
def test_ids_digests_times_and_bytes_are_not_redacted(
    blob: bytes, identifier: uuid.UUID, moment: object
) -> None:
    record = {
        "id": str(identifier),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "sha1": hashlib.sha1(blob).hexdigest(),
        "at": str(moment),
        "content": blob,
        "url": f"https://example.com/objects/{identifier}?version=2",
    }
    jsonable = to_jsonable(record)
    assert REDACTOR.value(jsonable) == jsonable
