"""The shape of the code: instrumentations use only the public API, the recording API sits below
the export machinery, and no module imports one that imports it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "provtrace"
PUBLIC = {"provtrace", "provtrace.conventions", "provtrace.instrumentation", "provtrace.genai"}
# What the recording API (steps, the instrumentation API) may not load: configuration, pipeline,
# sealing and export are installed behind provtrace.runtime by configure().
BEHIND_THE_RUNTIME = ("provtrace.config", "provtrace.pipeline", "provtrace.sealing", "provtrace.export")


def imported(path: Path, *, top_level_only: bool = False) -> Iterator[str]:
    """Modules a file imports; ``from pkg import sub`` counts as importing ``pkg.sub``. With
    ``top_level_only``, imports inside functions (lazy on purpose) and ``if`` blocks
    (``TYPE_CHECKING``) are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_instrumentations_import_only_the_public_api() -> None:
    sources = sorted(REPO.glob("instrumentation/*/src/**/*.py"))
    assert sources
    modules = {module_name(path) for path in SRC.rglob("*.py")}
    offenders = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in sources
        for name in imported(path)
        if name in modules and name not in PUBLIC
    )
    assert offenders == []


def test_the_recording_api_does_not_load_the_export_machinery() -> None:
    code = (
        "import sys, provtrace, provtrace.instrumentation\n"
        f"print(sorted(m for m in sys.modules if m.startswith({BEHIND_THE_RUNTIME!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_no_exporter_or_protobuf_is_loaded_by_configure_without_an_endpoint(tmp_path: Path) -> None:
    code = (
        "import sys, provtrace\n"
        f"h = provtrace.configure(archive_dir={str(tmp_path / 'a')!r}, spool_dir={str(tmp_path / 's')!r})\n"
        "h.shutdown(5)\n"
        "print(sorted(m for m in sys.modules if 'protobuf' in m or 'exporter' in m))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PROVTRACE_HOME": str(tmp_path)},
    )
    assert result.stdout.strip() == "[]"


def test_no_import_cycles_between_provtrace_modules() -> None:
    modules = {module_name(path): path for path in SRC.rglob("*.py")}
    graph = {
        name: {
            m
            for m in imported(path, top_level_only=True)
            # a submodule imports its package's __init__ implicitly; that is not a cycle
            if m in modules and m != name and not name.startswith(m + ".")
        }
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
