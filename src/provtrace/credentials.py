"""Credential shapes: secrets provtrace never fetched but recognises by their form.

Two rule sets, applied together:

- gitleaks' default rules (``credential_rules``, generated from gitleaks' config by
  ``scripts/update-credential-rules.py``), with their entropy thresholds, allowlists and
  stopwords: a maintained catalogue of provider token formats and generic ``key = value`` secrets;
- provtrace's own rules below, for what a redactor needs and a repository scanner leaves out on
  purpose: shapes without a distinctive prefix (a bare AWS secret access key, URL passwords, short
  values after a strong secret name), files gitleaks matches by path (PuTTY keys), and looser
  forms of well-known prefixes (``ghp_``, ``sk-``, ``hvs.``, ...) that gitleaks' exact lengths or
  entropy thresholds would let through. A false positive costs one unreadable token; a miss
  leaks a credential.

Only the secret is replaced (``password=[REDACTED:credential]``), so the record stays readable.
A keyword pre-filter (one pass over the lower-cased text) selects the rules to run, and rules
whose matches start with a keyword are tried only where the pass saw one: text without any rule
keyword costs that pass and the one rule that has no keyword (bare AWS secret keys).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from provtrace import credential_rules as gitleaks

_FLAGS: Final = re.ASCII  # gitleaks' RE2 patterns have ASCII classes and word boundaries

Span = tuple[int, int]


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``'s own character distribution (as gitleaks computes it)."""
    if not text:
        return 0.0
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in Counter(text).values())


# --- rules -----------------------------------------------------------------------------------

_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_NAME_REACH: Final = 50


def _name_start(match: re.Match[str], reach: int) -> int:
    """Where the name before a match begins (gitleaks' lazy ``[\\w.-]`` prefix, up to ``reach``)."""
    text, start = match.string, match.start()
    limit = max(0, start - reach)
    while start > limit and text[start - 1] in _NAME_CHARS:
        start -= 1
    return start


def _line(match: re.Match[str]) -> str:
    text = match.string
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start : end if end >= 0 else len(text)]


def _joined(patterns: Iterable[str], flags: int) -> re.Pattern[str] | None:
    alternatives = [f"(?:{p})" for p in patterns]
    return re.compile("|".join(alternatives), flags) if alternatives else None


@dataclasses.dataclass(frozen=True)
class _Allowlist:
    """gitleaks' allowlist semantics: a finding is dropped when a regex matches the chosen target
    (the secret, the whole match with the name before it, or its line) or the secret contains a
    stopword; with ``match_all``, only when every kind of check present holds. Compiled when
    first used: most rules never run."""

    target: str
    regexes: tuple[str, ...]
    stopwords: tuple[str, ...]
    match_all: bool

    @functools.cached_property
    def _regex(self) -> re.Pattern[str] | None:
        return _joined(self.regexes, _FLAGS)

    @functools.cached_property
    def _stopword(self) -> re.Pattern[str] | None:
        return re.compile(_trie_pattern(self.stopwords)) if self.stopwords else None

    def allows(self, secret: str, match: re.Match[str], name_reach: int) -> bool:
        checks = []
        if self._regex is not None:
            if self.target == "secret":
                subject = secret
            elif self.target == "match":
                subject = match.string[_name_start(match, name_reach) : match.end()]
            else:
                subject = _line(match)
            checks.append(self._regex.search(subject) is not None)
        if self._stopword is not None:
            checks.append(self._stopword.search(secret.lower()) is not None)
        return all(checks) if self.match_all else any(checks)


_GLOBAL_ALLOWLIST: Final = _Allowlist(
    "secret", gitleaks.GLOBAL_ALLOW_REGEXES, gitleaks.GLOBAL_STOPWORDS, match_all=False
)

_MARKERS: Final = re.compile(r"(?:\[REDACTED:[^\]\s]*\])+")

# Given a match and the secret's span in the text, the span to redact, or None to drop the match.
Refine = Callable[[re.Match[str], Span], "Span | None"]


@dataclasses.dataclass(frozen=True)
class CredentialRule:
    """A credential shape: where to look (``keywords``, lower case; none: every text at least
    ``min_length`` long), the pattern, and which part of a match is the secret (``secret_group``;
    0: the first non-empty group, or the whole match without groups). A match is kept when
    ``refine`` (if any) accepts it, the secret's entropy exceeds ``entropy`` and no allowlist
    drops it. An ``anchored`` rule's matches all start with a keyword, so it is tried only where
    one occurs; ``name_prefix`` is how far left of a match its allowlists look for the name."""

    id: str
    regex: str
    keywords: tuple[str, ...]
    entropy: float = 0.0
    secret_group: int = 0
    allowlists: tuple[_Allowlist, ...] = ()
    refine: Refine | None = None
    anchored: bool = False
    name_prefix: int = 0
    min_length: int = 0
    flags: int = _FLAGS

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """Compiled when first needed: most of gitleaks' rules never see their keyword."""
        return re.compile(self.regex, self.flags)

    def find(self, text: str, starts: Iterable[int] | None = None) -> Iterator[Span]:
        """Secrets in ``text``; with ``starts`` (ascending), only matches beginning there."""
        for match in self._matches(text, starts):
            span: Span | None = self._secret_span(match)
            if self.refine is not None and span is not None:
                span = self.refine(match, span)
            if span is None or span[0] >= span[1]:
                continue
            secret = text[span[0] : span[1]]
            if _MARKERS.fullmatch(secret.strip()):
                continue  # already redacted (a later pass, or content redacted before)
            if self.entropy and shannon_entropy(secret) <= self.entropy:
                continue
            if any(allowlist.allows(secret, match, self.name_prefix) for allowlist in self.allowlists):
                continue
            yield span

    def _matches(self, text: str, starts: Iterable[int] | None) -> Iterator[re.Match[str]]:
        if starts is None:
            yield from self.pattern.finditer(text)
            return
        end = 0  # as finditer: leftmost matches that do not overlap
        for start in starts:
            if start >= end and (match := self.pattern.match(text, start)) is not None:
                end = max(match.end(), start + 1)
                yield match

    def _secret_span(self, match: re.Match[str]) -> Span | None:
        if self.secret_group:
            start, end = match.span(self.secret_group)
            return (start, end) if start >= 0 else None
        for group in range(1, match.re.groups + 1):
            start, end = match.span(group)
            if end > start:
                return start, end
        text, start, end = match.string, match.start(), match.end()
        while start < end and text[start] == "\n":
            start += 1
        while end > start and text[end - 1] == "\n":
            end -= 1
        return start, end


def _rule(
    rule_id: str,
    pattern: str,
    keywords: Iterable[str],
    *,
    refine: Refine | None = None,
    flags: int = 0,
    anchored: bool = True,
    min_length: int = 0,
) -> CredentialRule:
    return CredentialRule(
        rule_id,
        pattern,
        tuple(keywords),
        refine=refine,
        anchored=anchored,
        min_length=min_length,
        flags=_FLAGS | flags,
    )


def _from_gitleaks(spec: gitleaks.Rule) -> CredentialRule:
    return CredentialRule(
        spec.id,
        spec.regex,
        spec.keywords,
        spec.entropy,
        spec.secret_group,
        (_GLOBAL_ALLOWLIST, *(_Allowlist(*allowlist) for allowlist in spec.allowlists)),
        _generic_precision if spec.id == "generic-api-key" else None,
        spec.anchored,
        spec.name_prefix,
    )


# --- secret names ------------------------------------------------------------------------------

# A name is a secret's name when its last word is one of these, ends with one of the suffixes
# (``PGPASSWORD``, ``apiToken``), or is ``key`` after one of the qualifiers (``ACCESS_KEY``).
_SECRET_WORDS: Final = frozenset({"pass", "pwd", "authorization", "cookie", "credential", "credentials"})
_SECRET_SUFFIXES: Final = ("password", "passwd", "passphrase", "secret", "token", "apikey")
_KEY_QUALIFIERS: Final = frozenset(
    {"api", "access", "secret", "private", "signing", "master", "encryption", "account", "auth"}
    | {"client", "session", "shared", "ssh", "app", "license", "storage", "subscription"}
)
_SECRET_COMPOUNDS: Final = tuple(f"{q}key" for q in sorted(_KEY_QUALIFIERS))
_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NAME_SEPARATORS: Final = re.compile(r"[^A-Za-z0-9]+")


@functools.lru_cache(maxsize=4096)  # the same few field names come back on every call
def is_secret_key_name(name: str) -> bool:
    """True when ``name`` (a field, variable, header or parameter name) names a secret:
    ``password``, ``AWS_SECRET_ACCESS_KEY``, ``x-api-key``, ``dbPassword``, ``PGPASSWORD``; not
    ``token_count``, ``max_tokens``, ``secret_name`` or ``public_key``."""
    if len(name) > 100:
        return False
    words = [w for w in _NAME_SEPARATORS.split(_CAMEL_BOUNDARY.sub("_", name).lower()) if w]
    if not words:
        return False
    last = words[-1]
    if last in _SECRET_WORDS or last.endswith(_SECRET_SUFFIXES):
        return True
    if last == "key":
        return len(words) > 1 and words[-2] in _KEY_QUALIFIERS
    return last.endswith(_SECRET_COMPOUNDS)


# --- provtrace's own rules -------------------------------------------------------------------

_HEX: Final = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _has(text: str, *, digit: bool = False, lower: bool = False, upper: bool = False) -> bool:
    return (
        (not digit or any(c.isdigit() for c in text))
        and (not lower or any(c.islower() for c in text))
        and (not upper or any(c.isupper() for c in text))
    )


_WORDS: Final = re.compile(r"[A-Z]?[a-z]{2,}")


def _aws_secret_key(match: re.Match[str], span: Span) -> Span | None:
    """40 characters of base64's alphabet are a key only if random-looking: not a git SHA-1
    (hex), with both letter cases and a digit or ``+``/``/``, not of low entropy and not mostly
    words (``AbstractSingletonProxyFactoryBean2Helper``). About 1 random key in 1,000 fails
    these checks (measured): the price of not scrubbing identifiers; named keys
    (``aws_secret_access_key = ...``) are caught by the name whatever they look like."""
    secret = match.string[span[0] : span[1]]
    if _HEX.fullmatch(secret) or not _has(secret, lower=True, upper=True):
        return None
    if not (_has(secret, digit=True) or "+" in secret or "/" in secret):
        return None
    if shannon_entropy(secret) <= 4.3 or sum(map(len, _WORDS.findall(secret))) >= 30:
        return None
    return span


def _random_token(match: re.Match[str], span: Span) -> Span | None:
    """A header credential, not a word: ``Bearer authentication`` is prose."""
    token = match.string[span[0] : span[1]].split()[-1]
    if _has(token, digit=True) or (
        _has(token, lower=True, upper=True) and any(c in "._~+/=-" for c in token)
    ):
        return span
    return None


def _basic_credentials(match: re.Match[str], span: Span) -> Span | None:
    """``Basic`` and the base64 of ``user:password`` (or another random-looking token)."""
    token = match.string[span[0] : span[1]].split()[-1]
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if b":" in decoded and decoded.isascii() and decoded.decode("ascii").isprintable():
        return span
    return _random_token(match, span)


def _generic_precision(match: re.Match[str], span: Span) -> Span | None:
    """gitleaks' generic rule fires on every name containing ``key``, ``token``, ``auth``...: a UUID
    or hex digest under a name that is not a secret's is an ordinary id (``idempotency_key``,
    ``cache_key``); under ``api_key`` or ``secret`` it is still redacted."""
    secret = match.string[span[0] : span[1]]
    if not (_UUID.fullmatch(secret) or _HEX.fullmatch(secret)):
        return span
    names = re.findall(r"[\w.-]+", match.string[_name_start(match, _NAME_REACH) : span[0]])
    return span if names and is_secret_key_name(names[-1]) else None


# Values that are placeholders, not secrets: references, templates, masks, booleans, markers,
# and the type names of annotated code (``password: str``).
_PLACEHOLDER: Final = re.compile(
    r"(?i:true|false|null|none|nil|undefined|str|string|bytes|int|bool|secretstr|any)"
    r"|\$\w+|\$\{[^}]*\}|\{\{.*\}\}|%\w+%|<[^>]*>|[*xX.•]+|\[REDACTED[^\]]*\]?"
)
# Code that computes the value: ``config.db_password``, ``os.environ[...``, ``getpass()``,
# ``Optional[str]``.
_CODE_REFERENCE: Final = re.compile(
    r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:[(\[].*)?|[a-z_][a-z0-9_]{2,}\(.*|[A-Z][A-Za-z]*\[.*"
)
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LINE_START: Final = re.compile(r"[ \t]*(?:export[ \t]+)?[\"']?")
_INLINE_COMMENT: Final = re.compile(r"[ \t]+#")
_MIN_VALUE: Final = 3


def _not_a_value(token: str) -> bool:
    """An unquoted token that is code, not a secret: a reference (``config.db_password``,
    ``getpass()``), a type (``str``, ``Optional[str]``) or a variable named for a secret
    (``password=password``)."""
    if _PLACEHOLDER.fullmatch(token) or _CODE_REFERENCE.fullmatch(token):
        return True
    return _IDENTIFIER.fullmatch(token) is not None and is_secret_key_name(token)


def _assigned_value(match: re.Match[str], span: Span) -> Span | None:
    """``NAME=value``, ``"name": "value"``, ``export NAME=value``, ``name: value``: the name must be
    a secret's, the value not a placeholder, a type name or a code reference. An unquoted value
    on a line that starts with the name (``.env`` files, YAML) runs to the end of the line."""
    text = match.string
    name_end = match.start("sep")
    name_start = name_end
    while name_start > 0 and (text[name_start - 1].isalnum() or text[name_start - 1] in "_.-"):
        name_start -= 1
    if not is_secret_key_name(text[name_start:name_end]):
        return None
    quoted = match.lastgroup in ("dq", "sq")
    start, end = match.span(match.lastgroup or 0)
    if not quoted and _not_a_value(match.group("bare")):
        return None
    line_start = text.rfind("\n", 0, name_start) + 1
    if not quoted and _LINE_START.fullmatch(text, line_start, name_start):
        line_end = text.find("\n", start)
        rest = text[start : line_end if line_end >= 0 else len(text)]
        comment = _INLINE_COMMENT.search(rest)
        end = start + len((rest[: comment.start()] if comment else rest).rstrip())
    value = text[start:end]
    if len(value) < _MIN_VALUE or _PLACEHOLDER.fullmatch(value):
        return None
    separator = match.group("sep")
    if not quoted and ":" in separator and "=" not in separator and len(value) < 6 and value.isalpha():
        return None  # `name: word` is also prose ("token: the one we rotated")
    return start, end


def _assignment_rule() -> CredentialRule:
    name_end = r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|credentials?|authorization|cookie|key)"
    separator = r"(?P<sep>\\?[\"']?[ \t]*(?::=|=>|==|[:=])[ \t]*)"
    value = (
        r"(?:\\?\"(?P<dq>(?:[^\"\\\n]|\\[^\"\n])+)\\?\""
        r"|'(?P<sq>[^'\n]+)'"
        r"|(?P<bare>[^\s\"'`,;&]+))"
    )
    return _rule(
        "credential",
        f"(?i:{name_end}){separator}{value}",
        ["pass", "pwd", "secret", "token", "credential", "authorization", "cookie", "key"],
        refine=_assigned_value,
    )


_SCHEME: Final = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,30}\Z")


def _url_password(match: re.Match[str], span: Span) -> Span | None:
    """Only in a URL: a scheme must precede the ``://``."""
    start = match.start()
    return span if _SCHEME.search(match.string, max(0, start - 31), start) else None


_LOCAL_SPECIFIC: Final = (
    _rule(
        "private-key",
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        ["private key"],
        anchored=False,
    ),
    _rule(
        "putty-private-key",
        r"PuTTY-User-Key-File-\d+:[^\n]*\n([\s\S]*?(?:Private-MAC:[ \t]*[0-9a-fA-F]+|\Z))",
        ["putty-user-key-file-"],
        flags=re.IGNORECASE,
    ),
    _rule("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}", ["eyj"]),
    _rule(
        "aws-access-token",
        r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
        ["a3t", "akia", "asia", "abia", "acca"],
    ),
    _rule(
        "aws-secret-access-key",
        # not the base64 of bytes content, stored as {"\u0000bytes": "..."} (content.TAGS)
        r"(?<![A-Za-z0-9/+])(?<!\"\\u0000bytes\":\")[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
        [],
        refine=_aws_secret_key,
        anchored=False,
        min_length=40,
    ),
    _rule(
        "github-token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
        ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    ),
    _rule(
        "gitlab-token",
        r"\bgl(?:pat|dt|ft|rt|cbt|ptt|soat|imt|ffct|agent|oas)-[A-Za-z0-9_-]{20,}",
        [
            f"gl{kind}-"
            for kind in ("pat", "dt", "ft", "rt", "cbt", "ptt", "soat", "imt", "ffct", "agent", "oas")
        ],
    ),
    _rule("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", ["xox"]),
    _rule("anthropic-api-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", ["sk-ant-"]),
    _rule("openai-api-key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", ["sk-"]),
    _rule(
        "stripe-access-token",
        r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
        ["sk_live", "sk_test", "rk_live", "rk_test"],
    ),
    _rule("gcp-api-key", r"\bAIza[0-9A-Za-z_-]{35}", ["aiza"]),
    _rule("gcp-oauth-access-token", r"\bya29\.[0-9A-Za-z_-]{20,}", ["ya29."]),
    _rule("vault-token", r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}", ["hvs.", "hvb.", "hvr."]),
    _rule("azure-storage-key", r"AccountKey=([A-Za-z0-9+/=]{20,})", ["accountkey"], flags=re.IGNORECASE),
    _rule(
        "azure-sas-signature",
        r"(?<![^?&;\s\"'])sig=([A-Za-z0-9%+/=_-]{16,})",
        ["sig="],
        flags=re.IGNORECASE,
    ),
    _rule("bearer-token", r"\b(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}", ["bearer"], refine=_random_token),
    _rule("basic-auth", r"\b(?i:basic)\s+[A-Za-z0-9+/]{12,}={0,2}", ["basic"], refine=_basic_credentials),
)

# user:password@host in any URL-shaped string. The password runs to the last "@" before a host
# name, so one containing "/" or "@" is removed whole (an "@" later in the path or query is
# removed with it: safer than leaving part of a password); in "host:8080/@scope" 8080 is a port.
_URL_PASSWORD: Final = _rule(
    "password",
    r"://[^\s:/@'\"]*:(?!\d{1,5}(?:[/?#\s'\"]|\Z))((?:(?!://)[^\s'\"])+)@(?=[^\s@/?#'\"]*(?:[/?#\s'\"]|\Z))",
    ["://"],
    refine=_url_password,
)

_GITLEAKS: Final = tuple(_from_gitleaks(spec) for spec in gitleaks.RULES)

# Priority order, for naming a secret several rules find: provider formats first, then the
# shapes that only a name or a context makes a secret (gitleaks too prefers specific rules).
RULES: Final[tuple[CredentialRule, ...]] = (
    *(rule for rule in _GITLEAKS if "generic" not in rule.id),
    *_LOCAL_SPECIFIC,
    *(rule for rule in _GITLEAKS if "generic" in rule.id),
    _assignment_rule(),
    _URL_PASSWORD,
)


# --- the pre-filter and the redaction ----------------------------------------------------------


_Trie = dict[str, "_Trie"]


def _trie_pattern(words: Iterable[str]) -> str:
    """One regular expression for a set of literal words, factored into a trie (longest first),
    so that trying it at a position costs one branch per character rather than one per word."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


class _Prefilter:
    """Where the rules' keywords occur in a text: one search pass over its lower-cased form.

    At each position the trie finds the longest keyword starting there; the keywords that are
    prefixes of it start there too, and keywords starting inside it are found by the next search
    (which resumes one character later). So every occurrence of every keyword is seen.
    """

    def __init__(self, rules: tuple[CredentialRule, ...]) -> None:
        self.rules_of: dict[str, list[int]] = {}
        for index, rule in enumerate(rules):
            for keyword in rule.keywords:
                self.rules_of.setdefault(keyword, []).append(index)
        keywords = self.rules_of.keys()
        self.pattern = re.compile(_trie_pattern(keywords))
        self.prefixes = {k: tuple(k[:n] for n in range(1, len(k) + 1) if k[:n] in keywords) for k in keywords}
        self.always = [i for i, rule in enumerate(rules) if not rule.keywords]

    def plan(self, text: str) -> list[tuple[CredentialRule, list[int] | None]]:
        """The rules to run on ``text``, in priority order, each with the positions to try it at
        (anchored rules, when lower-casing kept the text's length) or None (everywhere)."""
        low = text.lower()
        search = self.pattern.search
        match = search(low)
        if match is None:
            return [(RULES[i], None) for i in self.always if len(text) >= RULES[i].min_length]
        found: dict[str, list[int]] = {}
        while match is not None:
            start = match.start()
            for keyword in self.prefixes[match.group()]:
                found.setdefault(keyword, []).append(start)
            match = search(low, start + 1)
        starts_of: dict[int, list[int]] = {index: [] for index in self.always}
        for keyword, starts in found.items():
            for index in self.rules_of[keyword]:
                starts_of[index] = [*starts_of[index], *starts] if index in starts_of else starts
        aligned = len(low) == len(text)
        plan: list[tuple[CredentialRule, list[int] | None]] = []
        for index in sorted(starts_of):
            rule = RULES[index]
            if len(text) < rule.min_length:
                continue
            if rule.anchored and aligned:
                starts = starts_of[index]
                plan.append((rule, sorted(set(starts)) if len(rule.keywords) > 1 else starts))
            else:
                plan.append((rule, None))
        return plan


_PREFILTER: Final = _Prefilter(RULES)
_MIN_LENGTH: Final = 6
_MAX_PASSES: Final = 4
_TOKEN_TAIL: Final = re.compile(r"(?:[A-Za-z0-9_+/=-]|\.(?=[A-Za-z0-9_-]))*")


_ALWAYS_MIN_LENGTH: Final = min((RULES[i].min_length for i in _PREFILTER.always), default=2**31)


def may_hold_credentials(texts: Sequence[str]) -> bool:
    """False only when :func:`redact_credentials` would return each of ``texts`` unchanged: no
    rule keyword occurs in any of them (one search over them all, lower-cased) and none is as
    long as the rules without keywords need. A leaf's lower-cased text is a part of the joined
    one, so a keyword in a leaf is found; one found across two leaves only costs the slow path."""
    if any(len(text) >= _ALWAYS_MIN_LENGTH for text in texts):
        return True
    return _PREFILTER.pattern.search("\x00".join(texts).lower()) is not None


def redact_credentials(text: str) -> str:
    """``text`` with every recognised credential replaced by ``[REDACTED:<rule id>]``."""
    redacted = _redact_once(text)
    return redacted if redacted is text else until_stable(redacted, _redact_once)


def _redact_once(text: str) -> str:
    if len(text) < _MIN_LENGTH:
        return text
    plan = _PREFILTER.plan(text)
    return _redact(text, plan) if plan else text


def until_stable(text: str, redact: Callable[[str], str]) -> str:
    """Redact again while a pass changes the text: a credential glued to another one
    (``AKIA...glpat-...``) only shows its boundary once the other is replaced."""
    for _ in range(_MAX_PASSES):
        redacted = redact(text)
        if redacted == text:
            break
        text = redacted
    return text


def _redact(text: str, plan: Iterable[tuple[CredentialRule, Iterable[int] | None]]) -> str:
    """Replace what the rules find; overlapping findings are removed as one, named after the
    first rule in priority order, and a finding is widened to the end of its token."""
    found = [
        (start, -end, order, rule.id)
        for order, (rule, starts) in enumerate(plan)
        for start, end in rule.find(text, starts)
    ]
    if not found:
        return text
    found.sort()
    merged: list[tuple[int, int, str]] = []
    for start, negative_end, _order, rule_id in found:
        tail = _TOKEN_TAIL.match(text, -negative_end)
        end = tail.end() if tail else -negative_end
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end), merged[-1][2])
        else:
            merged.append((start, end, rule_id))
    out: list[str] = []
    position = 0
    for start, end, rule_id in merged:
        out.append(text[position:start])
        out.append(f"[REDACTED:{rule_id}]")
        position = end
    out.append(text[position:])
    return "".join(out)
