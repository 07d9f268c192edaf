"""Regenerate src/provtrace/credential_rules.py from gitleaks' default rule set.

    python scripts/update-credential-rules.py [--version v8.30.1 | --from DIR] [--output FILE]

gitleaks (MIT licence) keeps a curated set of credential shapes in ``config/gitleaks.toml`` of its
Go module. This script reads that file (fetching the module through the Go module proxy with
``go mod download`` unless ``--from`` names an unpacked module), translates each rule's RE2
regular expression into Python ``re`` syntax and writes a plain-data Python module that
provtrace's redactor loads. Rules that cannot be translated, or cannot apply to content without a
file path, are left out and listed in the generated module with the reason.

Standard library only (tomllib: Python 3.11+); the generated module itself runs on 3.10.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

MODULE = "github.com/zricethezav/gitleaks/v8"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "src" / "provtrace" / "credential_rules.py"

# RE2 POSIX classes, as Python character-class contents (the generated patterns are ASCII-only).
POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# Characters that Python may read as set operations (FutureWarning) when repeated in a class.
CLASS_ESCAPE = set("[&~|")
SUPPORTED_FLAGS = set("ims")
RE2_SPACE = "\\t\\n\\f\\r "


class Untranslatable(Exception):
    """An RE2 construct with no faithful Python ``re`` equivalent."""


@dataclass
class _Group:
    """One open group of the pattern: the inline flags set inside it, each opened as a scoped
    group in the output that must be closed before the next ``|`` and at the group's end."""

    flags: list[str]
    multiline: bool


def translate(pattern: str) -> str:
    """RE2 → Python ``re`` (to be compiled with ``re.ASCII``, as RE2's classes are ASCII).

    ``\\s`` and ``\\S`` follow RE2 (the vertical tab is not a space). Inline flags not at the start
    become scoped groups reaching to the end of the enclosing group (reopened after each ``|``,
    as RE2 keeps them for later alternatives); ``$`` outside multi-line
    mode and ``\\z`` become ``\\Z`` (RE2's ``$`` is the end of the text, Python's also matches
    before a final newline); POSIX classes are expanded; named groups become non-capturing (in
    gitleaks rules they mark variants, the secret is a numbered group or the whole match).
    """
    out: list[str] = []
    stack = [_Group([], multiline=False)]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            text, i = _escape(pattern, i)
            out.append(text)
            continue
        if char == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
            continue
        if char == "(":
            i = _open_group(pattern, i, out, stack)
            continue
        if char == ")":
            if len(stack) == 1:
                raise Untranslatable("unbalanced ')'")
            group = stack.pop()
            out.append(")" * len(group.flags) + ")")
        elif char == "|":
            flags = stack[-1].flags
            out.append(")" * len(flags) + "|" + "".join(f"(?{f}:" for f in flags))
        elif char == "$":
            out.append("$" if stack[-1].multiline else "\\Z")
        else:
            out.append(char)
        i += 1
    if len(stack) != 1:
        raise Untranslatable("unbalanced '('")
    out.append(")" * len(stack[0].flags))
    return "".join(out)


def _escape(pattern: str, i: int, *, in_class: bool = False) -> tuple[str, int]:
    if i + 1 >= len(pattern):
        raise Untranslatable("trailing backslash")
    code = pattern[i + 1]
    if code == "z":
        return "\\Z", i + 2
    if code == "s":  # RE2's \s is [\t\n\f\r ]; Python's also has \v
        return (RE2_SPACE if in_class else f"[{RE2_SPACE}]"), i + 2
    if code == "S":
        return ("\\S\\v" if in_class else f"[^{RE2_SPACE}]"), i + 2
    if code in "pPC":
        raise Untranslatable(f"\\{code} (Unicode classes) has no Python re equivalent")
    if code == "Q":
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        return re.escape(literal), len(pattern) if end < 0 else end + 2
    if code.isdigit() and code != "0":
        raise Untranslatable("backreference")
    if code == "x" and pattern.startswith("{", i + 2):
        end = pattern.index("}", i + 3)
        return f"\\U{int(pattern[i + 3 : end], 16):08x}", end + 1
    return pattern[i : i + 2], i + 2


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    out = ["["]
    j = i + 1
    if pattern.startswith("^", j):
        out.append("^")
        j += 1
    first = True
    previous = ""
    while j < len(pattern):
        char = pattern[j]
        if char == "]" and not first:
            out.append("]")
            return "".join(out), j + 1
        first = False
        if char == "\\":
            text, j = _escape(pattern, j, in_class=True)
            out.append(text)
            previous = text
            continue
        if pattern.startswith("[:", j):
            end = pattern.find(":]", j + 2)
            name = pattern[j + 2 : end] if end > 0 else ""
            negated = name.startswith("^")
            if negated or name not in POSIX_CLASSES:
                raise Untranslatable(f"POSIX class [:{name}:]")
            out.append(POSIX_CLASSES[name])
            j = end + 2
            previous = ""
            continue
        if char in CLASS_ESCAPE or (char == "-" and previous == "-"):
            out.append("\\" + char)
        else:
            out.append(char)
        previous = char
        j += 1
    raise Untranslatable("unterminated character class")


_FLAGS = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_NAMED = re.compile(r"\(\?P?<[A-Za-z_][A-Za-z0-9_]*>")


def _open_group(pattern: str, i: int, out: list[str], stack: list[_Group]) -> int:
    multiline = stack[-1].multiline
    if not pattern.startswith("(?", i):
        out.append("(")
        stack.append(_Group([], multiline))
        return i + 1
    named = _NAMED.match(pattern, i)
    if named:
        out.append("(?:")
        stack.append(_Group([], multiline))
        return named.end()
    flags = _FLAGS.match(pattern, i)
    if not flags:
        raise Untranslatable(f"group syntax {pattern[i : i + 4]!r}")
    on, off, kind = flags.group(1), flags.group(2) or "", flags.group(3)
    if not set(on + off) <= SUPPORTED_FLAGS:
        raise Untranslatable(f"inline flag(s) {on + off!r}")
    spec = on + (f"-{off}" if off else "")
    if "m" in on:
        multiline = True
    if "m" in off:
        multiline = False
    if kind == ":":
        out.append(f"(?{spec}:" if spec else "(?:")
        stack.append(_Group([], multiline))
    elif spec:
        out.append(f"(?{spec}:")
        stack[-1].flags.append(spec)
        stack[-1].multiline = multiline
    return flags.end()


def compiles(python_pattern: str) -> None:
    """Raise Untranslatable unless the pattern compiles without warnings (as provtrace compiles it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            re.compile(python_pattern, re.ASCII)
        except (re.error, FutureWarning, DeprecationWarning) as error:
            raise Untranslatable(f"Python re rejects the translation: {error}") from error


NAME_PREFIX = r"[\w.-]{0,50}?"
_OPENER = re.compile(r"\(\?[a-zA-Z-]*:")


def strip_name_prefix(pattern: str) -> tuple[str, int]:
    r"""Drop the lazy ``[\w.-]{0,50}?`` that starts gitleaks' name-anchored rules (``(?i)[\w.-]{0,50}?
    (?:adafruit)...``), returning the pattern and how many characters the prefix could span.

    The prefix only widens the reported match to the left of the name; the secret a rule finds is
    the same without it, and Python's backtracking engine (unlike RE2) pays for it at every
    position. provtrace re-attaches it when an allowlist tests the whole match.
    """
    span = 0
    while True:
        if pattern.startswith(NAME_PREFIX):
            pattern, span = pattern[len(NAME_PREFIX) :], span + 50
            continue
        opener = _OPENER.match(pattern)
        if opener and pattern.startswith(NAME_PREFIX, opener.end()):
            pattern = opener.group() + pattern[opener.end() + len(NAME_PREFIX) :]
            span += 50
            continue
        return pattern, span


def anchored(python_pattern: str, keywords: list[str]) -> bool:
    """True when every match of the pattern provably starts with one of ``keywords`` (case
    folded): provtrace then tries the rule only where the pre-filter saw a keyword, instead of
    at every position of the text. Proven on the parsed pattern by enumerating the (lower-cased)
    strings a match can start with, until each starts with a keyword; anything the enumeration
    cannot follow (a broad class, too many strings) counts as not anchored."""
    try:
        from re import _parser  # type: ignore[attr-defined]
    except ImportError:  # Python 3.10
        import sre_parse as _parser

    if not keywords:
        return False
    starts = _Starts(max(len(k) for k in keywords), tuple(keywords))
    try:
        found = starts.sequence({""}, list(_parser.parse(python_pattern, re.ASCII)))
    except _TooMany:
        return False
    return found is not None and all(s.startswith(starts.keywords) for s in found)


class _TooMany(Exception):
    pass


@dataclass
class _Starts:
    """Extends sets of match beginnings over parsed pattern items; a beginning is settled (left
    alone) once it starts with a keyword or is as long as the longest keyword."""

    need: int
    keywords: tuple[str, ...]
    cap: int = 4096

    def settled(self, text: str) -> bool:
        return len(text) >= self.need or text.startswith(self.keywords)

    def sequence(self, strings: set[str], items: list[Any]) -> set[str] | None:
        for op, av in items:
            pending = {s for s in strings if not self.settled(s)}
            if not pending:
                break
            grown = self.item(str(op), av, pending)
            if grown is None:
                return None
            strings = (strings - pending) | grown
            if len(strings) > self.cap:
                raise _TooMany
        return strings

    def item(self, op: str, av: Any, strings: set[str]) -> set[str] | None:
        if op == "LITERAL":
            return {s + chr(av).lower() for s in strings}
        if op in ("AT", "ASSERT", "ASSERT_NOT"):
            return strings
        if op == "IN":
            chars = self.chars(av)
            return None if chars is None else {s + c for s in strings for c in chars}
        if op == "SUBPATTERN":
            return self.sequence(strings, list(av[3]))
        if op == "BRANCH":
            union: set[str] = set()
            for alternative in av[1]:
                grown = self.sequence(strings, list(alternative))
                if grown is None:
                    return None
                union |= grown
            return union
        if op in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, body = av
            result: set[str] = set()
            current = strings
            for count in range(min(high, low + self.need) + 1):
                if count >= low:
                    result |= current
                pending = {s for s in current if not self.settled(s)}
                if not pending:  # settled beginnings stay as they are, however often it repeats
                    return result | current
                if count == high:
                    return result
                grown = self.sequence(pending, list(body))
                if grown is None:
                    return None
                current = (current - pending) | grown
                if len(current) + len(result) > self.cap:
                    raise _TooMany
            return result | current
        return None

    @staticmethod
    def chars(items: Any) -> set[str] | None:
        chars: set[str] = set()
        for kind, value in items:
            if str(kind) == "LITERAL":
                chars.add(chr(value).lower())
            elif str(kind) == "RANGE" and value[1] - value[0] < 64:
                chars.update(chr(c).lower() for c in range(value[0], value[1] + 1))
            else:
                return None
        return chars


@dataclass
class Translated:
    rules: list[str]
    skipped: list[tuple[str, str]]
    allowlist_notes: list[str]


def allowlist_source(rule_id: str, allowlist: dict[str, Any], notes: list[str]) -> str | None:
    """The generated ``Allowlist(...)`` for one gitleaks allowlist, or None when it cannot apply
    to content without a path or commit (noted)."""
    paths, commits = allowlist.get("paths") or [], allowlist.get("commits") or []
    regexes = [str(r) for r in allowlist.get("regexes") or []]
    stopwords = sorted({str(w).lower() for w in allowlist.get("stopwords") or []})
    match_all = allowlist.get("condition") == "AND"
    if match_all and (paths or commits):
        notes.append(f"{rule_id}: an AND allowlist that needs a file path or commit (never applies)")
        return None
    if paths or commits:
        notes.append(f"{rule_id}: path/commit entries of an allowlist dropped (content has no path)")
    translated = []
    for regex in regexes:
        try:
            python = translate(regex)
            compiles(python)
        except Untranslatable as error:
            notes.append(f"{rule_id}: allowlist regex {regex!r} dropped ({error})")
            continue
        translated.append(python)
    if not translated and not stopwords:
        return None
    target = str(allowlist.get("regexTarget") or "secret")
    lines = [
        "Allowlist(",
        f"    target={json.dumps(target)},",
        f"    regexes={_tuple(translated, indent=8, regex=True)},",
        f"    stopwords={_tuple(stopwords, indent=8)},",
        f"    match_all={match_all},",
        ")",
    ]
    return "\n".join(lines)


def translate_rules(config: dict[str, Any]) -> Translated:
    result = Translated([], [], [])
    for rule in config["rules"]:
        rule_id = rule["id"]
        if "regex" not in rule:
            result.skipped.append((rule_id, "file-name rule without a content pattern"))
            continue
        if "path" in rule:
            result.skipped.append((rule_id, f"applies only to files matching {rule['path']!r}"))
            continue
        if rule.get("required") or rule.get("skipReport"):
            result.skipped.append((rule_id, "composite rule (needs other rules' findings)"))
            continue
        try:
            python, name_prefix = strip_name_prefix(translate(rule["regex"]))
            compiles(python)
        except Untranslatable as error:
            result.skipped.append((rule_id, str(error)))
            continue
        secret_group = int(rule.get("secretGroup", 0))
        if secret_group and _NAMED.search(rule["regex"]):
            result.skipped.append((rule_id, "secretGroup numbering relies on named groups"))
            continue
        allowlists = [
            source
            for allowlist in rule.get("allowlists", [])
            if (source := allowlist_source(rule_id, allowlist, result.allowlist_notes)) is not None
        ]
        keywords = sorted({k.lower() for k in rule.get("keywords", [])})
        lines = [
            "Rule(",
            f"    id={json.dumps(rule_id)},",
            f"    regex={_literal(python)},",
            f"    keywords={_tuple(keywords, indent=8)},",
            f"    entropy={float(rule.get('entropy', 0.0))!r},",
            f"    secret_group={secret_group},",
            f"    allowlists={_nested(allowlists, indent=8)},",
            f"    name_prefix={name_prefix},",
            f"    anchored={anchored(python, keywords)},",
            ")",
        ]
        result.rules.append("\n".join(lines))
    return result


def _literal(text: str) -> str:
    """A Python literal for a regex, raw and double-quoted where that is exact."""
    trailing = len(text) - len(text.rstrip("\\"))
    if "\n" not in text and "\r" not in text and trailing % 2 == 0:
        if '"' not in text:
            return f'r"{text}"'
        if '"""' not in text and not text.endswith('"'):
            return f'r"""{text}"""'
    return json.dumps(text)


def _tuple(items: list[str], *, indent: int, regex: bool = False) -> str:
    literal = _literal if regex else json.dumps
    if not items:
        return "()"
    if len(items) == 1 and len(items[0]) < 60:
        return f"({literal(items[0])},)"
    pad = " " * indent
    return "(\n" + "".join(f"{pad}{literal(item)},\n" for item in items) + " " * (indent - 4) + ")"


def _nested(sources: list[str], *, indent: int) -> str:
    if not sources:
        return "()"
    pad = " " * indent
    body = "".join(_indent(source, pad) + ",\n" for source in sources)
    return "(\n" + body + " " * (indent - 4) + ")"


def _indent(text: str, pad: str) -> str:
    return "\n".join(pad + line if line else line for line in text.splitlines())


def global_allowlist(config: dict[str, Any], notes: list[str]) -> tuple[str, str]:
    section = config.get("allowlist") or {}
    regexes = []
    for regex in section.get("regexes", []):
        try:
            python = translate(regex)
            compiles(python)
        except Untranslatable as error:
            notes.append(f"global allowlist regex {regex!r} dropped ({error})")
            continue
        regexes.append(python)
    if section.get("paths"):
        notes.append("global allowlist: path entries dropped (content has no path)")
    stopwords = sorted({w.lower() for w in section.get("stopwords", [])})
    return _tuple(regexes, indent=4, regex=True), _tuple(stopwords, indent=4)


HEADER = '''\
"""Credential-shape rules from gitleaks {version}: generated, do not edit.

Regenerate with ``python scripts/update-credential-rules.py --version {version}`` (or a newer
version); provtrace.credentials compiles and applies these rules. Patterns are gitleaks' RE2
expressions translated to Python ``re`` syntax, to be compiled with ``re.ASCII``, less the lazy
name prefix that begins gitleaks' name-anchored rules (see ``name_prefix``).

This module is derived from gitleaks' config/gitleaks.toml, distributed under this licence:

{licence}
"""

# ruff: noqa: E501

from __future__ import annotations

from typing import Final, NamedTuple

GITLEAKS_VERSION: Final = {version_literal}


class Allowlist(NamedTuple):
    """A finding is dropped when a regex matches its target (``secret``, ``match`` or ``line``) or
    its secret contains a stopword; with ``match_all`` only when both kinds of check hold."""

    target: str
    regexes: tuple[str, ...]
    stopwords: tuple[str, ...]
    match_all: bool


class Rule(NamedTuple):
    """One gitleaks rule. ``secret_group`` 0 means the first non-empty group, else the match;
    ``name_prefix``: how far left of the match gitleaks' (removed) name prefix could reach;
    ``anchored``: every match starts with one of the keywords."""

    id: str
    regex: str
    keywords: tuple[str, ...]
    entropy: float
    secret_group: int
    allowlists: tuple[Allowlist, ...]
    name_prefix: int
    anchored: bool


'''


def render(version: str, licence: str, config: dict[str, Any]) -> str:
    result = translate_rules(config)
    regexes, stopwords = global_allowlist(config, result.allowlist_notes)
    licence_text = "\n".join(("    " + line).rstrip() for line in licence.strip().splitlines())
    parts = [HEADER.format(version=version, version_literal=json.dumps(version), licence=licence_text)]
    parts.append(f"# {len(result.rules)} rules translated, {len(result.skipped)} skipped:\n")
    parts.extend(f"#   {rule_id}: {reason}\n" for rule_id, reason in result.skipped)
    if result.allowlist_notes:
        parts.append("# Allowlist entries left out:\n")
        parts.extend(f"#   {note}\n" for note in result.allowlist_notes)
    parts.append(f"\nGLOBAL_ALLOW_REGEXES: Final[tuple[str, ...]] = {regexes}\n")
    parts.append(f"GLOBAL_STOPWORDS: Final[tuple[str, ...]] = {stopwords}\n\n")
    parts.append("RULES: Final[tuple[Rule, ...]] = (\n")
    parts.extend(_indent(rule, "    ") + ",\n" for rule in result.rules)
    parts.append(")\n")
    return "".join(parts)


def module_dir(version: str) -> tuple[Path, str]:
    """Download gitleaks' Go module (through the Go module proxy) and return its directory."""
    env = {**os.environ, "GOFLAGS": "-modcacherw"}
    completed = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{version}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    info = json.loads(completed.stdout or "{}")
    if completed.returncode or "Dir" not in info:
        raise SystemExit(f"go mod download failed: {info.get('Error') or completed.stderr.strip()}")
    return Path(info["Dir"]), str(info["Version"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--version", default="latest", help="gitleaks module version (default: latest)")
    source.add_argument("--from", dest="directory", type=Path, help="an unpacked gitleaks module")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    if args.directory:
        directory = args.directory
        version = directory.name.rpartition("@")[2] or "unknown"
    else:
        directory, version = module_dir(args.version)
    with (directory / "config" / "gitleaks.toml").open("rb") as handle:
        config = tomllib.load(handle)
    licence = (directory / "LICENSE").read_text(encoding="utf-8")
    args.output.write_text(render(version, licence, config), encoding="utf-8")
    print(f"wrote {args.output} from gitleaks {version}", file=sys.stderr)


if __name__ == "__main__":
    main()
