"""Cost of credential-shape redaction per KB of content: the old hand list against the rule set.

``python -m bench.credentials``. Both run in the same process on the same inputs, in alternating
rounds, so the ratio is what matters. Inputs: the ordinary content kept for the precision test
(prose, JSON tool results, code, a config file; no credential), redacted as whole texts and leaf
by leaf as content capture does for JSON, and the same texts with credentials planted in them.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.common import save
from provtrace.credentials import redact_credentials

ORDINARY = Path(__file__).resolve().parent.parent / "tests" / "unit" / "data" / "ordinary"

# --- baseline: the hand list provtrace used before the rule set (content.py, until i10) -------

_OLD_PATTERNS: Final = (
    (
        "private_key",
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.|\n)*?"
        r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    ),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    ("aws_access_key_id", r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai_key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    ("stripe_key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("vault_token", r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}"),
    ("azure_storage_key", r"(?i:AccountKey)=[A-Za-z0-9+/=]{20,}"),
    ("bearer_token", r"\b(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}"),
    ("basic_auth", r"\b(?i:basic)\s+[A-Za-z0-9+/]{12,}={0,2}"),
)
_OLD_CONNECTION_STRING: Final = re.compile(
    r"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.-]{1,30}://[^\s:/@'\"]*:)(?P<password>[^\s@/'\"]+)(?=@)"
)
_OLD_ASSIGNMENT: Final = re.compile(
    r"(?i)(?P<prefix>\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|access[_-]?key|"
    r"secret[_-]?key|private[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|token)"
    r"[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"',;&}]{6,})"
)
_OLD_PATTERN: Final = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in _OLD_PATTERNS))
_OLD_HINTS: Final = (
    *("private key", "eyj", "akia", "asia", "abia", "acca", "a3t", "gh", "github_pat_", "xox"),
    *("sk-", "sk_", "rk_", "aiza", "hvs.", "hvb.", "hvr.", "accountkey", "bearer", "basic"),
)
_OLD_ASSIGNMENT_HINTS: Final = ("pass", "pwd", "secret", "key", "token")


def old_redact(text: str) -> str:
    if len(text) < 6:
        return text
    low = text.lower()
    if any(hint in low for hint in _OLD_HINTS):
        text = _OLD_PATTERN.sub(lambda m: f"[REDACTED:{m.lastgroup}]", text)
    if "://" in text:
        text = _OLD_CONNECTION_STRING.sub(lambda m: f"{m.group('prefix')}[REDACTED:password]", text)
    if any(hint in low for hint in _OLD_ASSIGNMENT_HINTS):
        text = _OLD_ASSIGNMENT.sub(lambda m: f"{m.group('prefix')}[REDACTED:credential]", text)
    return text


# --- inputs ----------------------------------------------------------------------------------

PLANTED: Final = (
    "AWS_SECRET_ACCESS_KEY=" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "Q8vN3kZp1x",
    "export API_TOKEN=" + "glpat-" + "Xk9mQ2vL8pR4tY7wB3nZ",
    "curl -H 'Authorization: Bearer " + "ya29." + "a0AfH6SMBx3kJz9QwErTyUiOpAsDfGhJkL'",
    "postgres://admin:" + "pa/ss@w0rd" + "@db.internal:5432/app",
    "token ghp_" + "Vn8rL2kQ9xT4mW7pZ3bY6cJ1dF5hG0sA2eR4",
)


def with_credentials(text: str) -> str:
    """``text`` with one planted credential after every ~400 characters, at line ends."""
    lines, out, budget, index = text.splitlines(keepends=True), [], 0, 0
    for line in lines:
        out.append(line)
        budget += len(line)
        if budget >= 400:
            out.append(PLANTED[index % len(PLANTED)] + "\n")
            index, budget = index + 1, 0
    return "".join(out)


def leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in (key, *leaves(item))]
    return []


def cases() -> dict[str, list[str]]:
    """Each case: the strings one redaction pass is called on."""
    texts = {path.stem: path.read_text(encoding="utf-8") for path in sorted(ORDINARY.iterdir())}
    tool_results = json.loads(texts["tool_results"])
    prose_and_code = [texts["prose"], texts["code"], texts["config"]]
    return {
        "ordinary text (prose, code, config)": prose_and_code,
        "ordinary JSON, leaf by leaf": leaves(tool_results),
        "text with credentials": [with_credentials(t) for t in prose_and_code],
        "JSON leaves with credentials": [*leaves(tool_results), *PLANTED],
    }


def cpu_us_per_kb(redact: Callable[[str], str], strings: list[str], size_kb: float, calls: int) -> float:
    start = time.thread_time_ns()
    for _ in range(calls):
        for text in strings:
            redact(text)
    return (time.thread_time_ns() - start) / calls / 1000 / size_kb


def run(rounds: int = 15, calls: int = 40) -> dict[str, Any]:
    """Old and new alternate round by round (CPU time of this thread, so that other processes on
    the machine disturb both alike); medians of the rounds and of the per-round ratios."""
    results: dict[str, Any] = {}
    for name, strings in cases().items():
        size_kb = sum(len(s.encode("utf-8")) for s in strings) / 1024
        old, new, ratios = [], [], []
        for redact in (old_redact, redact_credentials):  # warm up: caches, lazily compiled rules
            cpu_us_per_kb(redact, strings, size_kb, 5)
        for _ in range(rounds):
            old.append(cpu_us_per_kb(old_redact, strings, size_kb, calls))
            new.append(cpu_us_per_kb(redact_credentials, strings, size_kb, calls))
            ratios.append(new[-1] / old[-1])
        results[name] = {
            "kb": size_kb,
            "old_us_per_kb": statistics.median(old),
            "new_us_per_kb": statistics.median(new),
            "ratio": statistics.median(ratios),
        }
    return results


def main() -> None:
    results = run()
    path = save("credentials", results)
    print("credential redaction, CPU µs per KB of content (medians of 15 alternating rounds)")
    print(f"  {'input':38} {'hand list':>10} {'rule set':>10} {'ratio':>7}")
    for name, row in results.items():
        print(f"  {name:38} {row['old_us_per_kb']:10.1f} {row['new_us_per_kb']:10.1f} {row['ratio']:6.2f}x")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
