"""The real output pasted into the integrity page's tamper example is what verify prints today.

The snippet test runs the example's commands and matches their output loosely; this test holds the
verbatim copy of one run (in a ``text`` block) to the output of a fresh run, ids aside."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrity.md"
VERIFY = "provtrace verify --stream --archive tampered --public-key agent.pub"
HEX_ID = re.compile(r"\b[0-9a-f]{16,64}\b")
TIMEOUT_S = 120


def pasted_run() -> list[str]:
    """The lines of the text block that shows the verify command of the example, with its exit."""
    blocks = re.findall(
        r"^```text\n(.*?)^```", PAGE.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE
    )
    (block,) = [b for b in blocks if b.startswith(f"$ {VERIFY}")]
    return block.splitlines()[1:]


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def test_the_pasted_tamper_output_is_what_verify_prints(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PROVTRACE_HOME": str(tmp_path / "home")}
    cli = [sys.executable, "-m", "provtrace.cli"]
    assert run([*cli, "keygen", "--out", "agent"], tmp_path, env).returncode == 0
    recorded = run(
        [sys.executable, "-m", "provtrace.testing.scenario"],
        tmp_path,
        {**env, "PROVTRACE_SIGNING_KEY": "agent.key"},
    )
    assert recorded.returncode == 0, recorded.stderr
    (archive,) = (tmp_path / "home" / "archive").glob("*.jsonl")
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    text = archive.read_text(encoding="utf-8")
    assert text.count("sg-123/rule-9") == 1  # the example's grep -c
    (tampered / archive.name).write_text(text.replace("sg-123/rule-9", "sg-123/rule-1"), encoding="utf-8")

    verified = run([*cli, *VERIFY.split()[1:]], tmp_path, env)

    printed = [*verified.stdout.splitlines(), f"exit {verified.returncode}"]
    assert [HEX_ID.sub("<id>", line) for line in printed] == [
        HEX_ID.sub("<id>", line) for line in pasted_run()
    ]
