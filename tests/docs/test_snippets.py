"""Every fenced ``python`` and ``console`` block of README.md and docs/ runs as written.

The blocks of one page run in order in one fresh directory (what an earlier block writes, a later
one finds), with this virtualenv first on PATH, ``PROVTRACE_HOME`` inside that directory and no
collector configured (the embedded archive). A ``python`` block is run as a program and must exit
0. A ``console`` block is one bash session (shell variables carry from line to line): each line
starting with ``$ `` is a command (continued by a trailing backslash) that must exit 0; the lines
under it are expected output, each found in order in what the command printed, ``...`` standing
for anything. An HTML comment on the line before a
fence changes that (the convention is described in docs/testing.md):

- ``<!-- snippet: skip reason="..." -->``: not run; the reason is reported as the test's skip;
- ``<!-- snippet: file="agent.py" -->``: written to that file of the page's directory, not run
  (a later block runs it);
- ``<!-- snippet: exit=1 -->``: the block's last command must exit 1 (the others 0);
- ``<!-- snippet: in-checkout -->``: a console block run in the repository's root instead (the
  README's ``make demo``).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 180
MARKER = re.compile(r"^<!--\s*snippet:(?P<options>.*?)-->\s*$")
OPTION = re.compile(r'(?P<key>[a-z-]+)(?:=(?:"(?P<quoted>[^"]*)"|(?P<bare>\S+)))?')
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>[\w+-]*)\s*$")
RUN_LANGUAGES = ("python", "console")
# Commands a reader would type: written as console blocks (`$ ` lines), which run or say why not.
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "zsh", "shell-session"})
MARKER_OPTIONS = frozenset({"skip", "reason", "file", "exit", "in-checkout"})


class SnippetSyntaxError(ValueError):
    """A page's snippet marker or fence cannot be read."""


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def parse_marker(line: str) -> dict[str, str] | None:
    match = MARKER.match(line.strip())
    if match is None:
        return None
    options = {}
    for option in OPTION.finditer(match["options"]):
        options[option["key"]] = option["quoted"] if option["quoted"] is not None else (option["bare"] or "")
    unknown = sorted(set(options) - MARKER_OPTIONS)
    if unknown:
        raise SnippetSyntaxError(f"{line.strip()}: unknown option {', '.join(unknown)}")
    if "skip" in options and not options.get("reason"):
        raise SnippetSyntaxError(f'{line.strip()}: a skip needs reason="..."')
    return options


def snippets_of(page: Path) -> list[Snippet]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        indent = len(fence["indent"])
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index][indent:])
            index += 1
        if index == len(lines):
            raise SnippetSyntaxError(f"{page.relative_to(REPO)}:{start + 1}: unclosed fence")
        index += 1
        previous = lines[start - 1] if start > 0 else ""
        options = parse_marker(previous) or {}
        language = fence["language"]
        if language in RUN_LANGUAGES or "file" in options:
            found.append(Snippet(page, start + 1, language, "\n".join(body) + "\n", options))
    return found


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def all_snippets() -> list[Snippet]:
    return [snippet for page in pages() for snippet in snippets_of(page)]


@dataclass
class Command:
    line: str
    expected: list[str]


def commands_of(snippet: Snippet) -> list[Command]:
    commands: list[Command] = []
    continued = False
    for line in snippet.text.splitlines():
        if continued:
            commands[-1].line += "\n" + line
        elif line.startswith("$ "):
            commands.append(Command(line[2:], []))
        elif commands and line.strip():
            commands[-1].expected.append(line.strip())
        elif line.strip():
            raise SnippetSyntaxError(f"{snippet.where}: output before any `$ ` command: {line!r}")
        continued = line.endswith("\\")
    if not commands:
        raise SnippetSyntaxError(f"{snippet.where}: a console block without a `$ ` command")
    return commands


def loosely_found(expected: list[str], output: str) -> str | None:
    """The first expected line not found (in order, whitespace-insensitive, ``...`` = anything)."""
    printed = [" ".join(line.split()) for line in output.splitlines()]
    position = 0
    for wanted in expected:
        pattern = ".*".join(re.escape(" ".join(piece.split())) for piece in re.split(r"\.\.\.|…", wanted))
        matcher = re.compile(pattern)
        while position < len(printed) and not matcher.search(printed[position]):
            position += 1
        if position == len(printed):
            return wanted
        position += 1
    return None


class Workspace:
    """One page's directory and environment; runs its snippets in order, each once."""

    def __init__(self, page: Path, directory: Path) -> None:
        self.directory = directory
        self.snippets = snippets_of(page)
        self.results: dict[int, str | None] = {}  # line -> failure text, None when it passed
        venv_bin = str(Path(sys.executable).parent)
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("PROVTRACE_", "OTEL_", "VAULT_", "AWS_"))
        }
        self.env.update(
            PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""),
            PROVTRACE_HOME=str(directory / "home"),
            PYTHONDONTWRITEBYTECODE="1",
        )

    def result_of(self, snippet: Snippet) -> str | None:
        for earlier in self.snippets:
            if earlier.line not in self.results:
                self.results[earlier.line] = self._run(earlier)
            if earlier.line == snippet.line:
                break
        return self.results[snippet.line]

    def _run(self, snippet: Snippet) -> str | None:
        if "skip" in snippet.options:
            return None
        if "file" in snippet.options:
            target = self.directory / snippet.options["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(snippet.text, encoding="utf-8")
            return None
        if snippet.language == "python":
            program = self.directory / f"snippet_{snippet.line}.py"
            program.write_text(snippet.text, encoding="utf-8")
            done = self._call([sys.executable, program.name], self.directory)
            if done.returncode != 0:
                return f"exit {done.returncode}\n{done.stdout}"
            return None
        commands = commands_of(snippet)
        wanted_exits = [0] * len(commands)
        wanted_exits[-1] = int(snippet.options.get("exit", "0"))
        tag = f"snippet-{secrets.token_hex(8)}"
        report = f'__status=$?; printf "\\n{tag} %s\\n" "$__status"'
        script = [
            f'{command.line}\n{report}; [ "$__status" = {wanted} ] || exit 0'
            for command, wanted in zip(commands, wanted_exits, strict=True)
        ]
        cwd = REPO if "in-checkout" in snippet.options else self.directory
        done = self._call(["bash", "-c", "\n".join(script)], cwd)
        outputs = re.split(rf"\n?{tag} (-?\d+)\n", done.stdout)
        for number, (command, wanted) in enumerate(zip(commands, wanted_exits, strict=True)):
            if 2 * number + 1 >= len(outputs):
                return f"$ {command.line}\ndid not finish (shell exit {done.returncode})\n{outputs[-1]}"
            printed, status = outputs[2 * number], int(outputs[2 * number + 1])
            if status != wanted:
                return f"$ {command.line}\nexit {status}, expected {wanted}\n{printed}"
            missing = loosely_found(command.expected, printed)
            if missing is not None:
                return f"$ {command.line}\nexpected output line not found: {missing!r}\n{printed}"
        return None

    def _call(self, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                argv,
                cwd=cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout if isinstance(exc.stdout, str) else ""
            message = f"timed out after {RUN_TIMEOUT_S} s: {shlex.join(argv)}\n{output}"
            return subprocess.CompletedProcess(argv, -1, message)


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Workspace]:
    made: dict[Path, Workspace] = {}
    for page in pages():
        made[page] = Workspace(page, tmp_path_factory.mktemp(page.stem))
    return made


SNIPPETS = all_snippets()


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[snippet.where for snippet in SNIPPETS])
def test_snippet_runs_as_written(snippet: Snippet, workspaces: dict[Path, Workspace]) -> None:
    if "skip" in snippet.options:
        pytest.skip(f"{snippet.where}: {snippet.options['reason']}")
    failure = workspaces[snippet.page].result_of(snippet)
    assert failure is None, f"{snippet.where} ({snippet.language}) failed:\n{failure}"


def test_snippets_are_found_in_the_readme_and_the_docs() -> None:
    covered = {snippet.page for snippet in SNIPPETS}
    assert REPO / "README.md" in covered
    assert len(SNIPPETS) > 20


def test_commands_are_console_blocks_that_run_or_say_why_not() -> None:
    """A shell fence would be a command no test runs and no marker explains."""
    unchecked = []
    for page in pages():
        for number, text in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            fence = FENCE.match(text)
            if fence is not None and fence["language"] in SHELL_LANGUAGES:
                unchecked.append(f"{page.relative_to(REPO)}:{number}: ```{fence['language']}")
    assert unchecked == []


def test_every_written_file_is_used_by_a_later_block() -> None:
    """A ``file=`` block no later block runs would be documentation that nothing checks."""
    unused = []
    for page in pages():
        snippets = snippets_of(page)
        for index, snippet in enumerate(snippets):
            name = snippet.options.get("file")
            later = [s.text for s in snippets[index + 1 :] if "skip" not in s.options]
            if name and not any(name in text for text in later):
                unused.append(f"{snippet.where}: {name}")
    assert unused == []


def test_a_marker_is_read_as_written() -> None:
    assert parse_marker('<!-- snippet: skip reason="needs a Kubernetes cluster" -->') == {
        "skip": "",
        "reason": "needs a Kubernetes cluster",
    }
    assert parse_marker('<!-- snippet: file="agent.py" -->') == {"file": "agent.py"}
    assert parse_marker("<!-- an ordinary comment -->") is None
    with pytest.raises(SnippetSyntaxError):
        parse_marker("<!-- snippet: skip -->")
    with pytest.raises(SnippetSyntaxError, match="skp"):
        parse_marker('<!-- snippet: skp reason="typo" -->')


def test_expected_output_is_compared_loosely_but_in_order() -> None:
    output = "trace id  4bf92f35\nVERIFIED: 12 spans, 1 seal\n"
    assert loosely_found(["trace id ...", "VERIFIED: ... spans"], output) is None
    assert loosely_found(["VERIFIED", "trace id"], output) == "trace id"
    assert loosely_found(["NOT VERIFIED"], output) == "NOT VERIFIED"
