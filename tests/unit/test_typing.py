"""The public API is typed for users' own ``mypy --strict``: decorated functions keep their exact
signatures, each step gives its handle type, and a misspelled keyword is a type error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "typing"


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--show-error-codes", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_user_code_reveals_the_types_it_expects() -> None:
    source = HERE / "user_code.py"
    expected = {
        number: line.split("# expect: ", 1)[1].strip()
        for number, line in enumerate(source.read_text().splitlines(), 1)
        if "# expect: " in line
    }
    result = mypy(source)
    revealed = {
        int(match.group(1)): match.group(2)
        for match in re.finditer(r'user_code\.py:(\d+): note: Revealed type is "(.*)"', result.stdout)
    }
    assert revealed == expected, result.stdout
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert errors == []


def test_a_misspelled_keyword_is_a_type_error() -> None:
    result = mypy(HERE / "misspelled.py")
    assert result.returncode == 1
    assert (
        'Unexpected keyword argument "verison" for "PolicyCheckSpec"; did you mean "version"?'
        in result.stdout
    )
