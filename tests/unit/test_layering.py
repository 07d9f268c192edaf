"""The shape of the code: instrumentations use only the public API, their tests stand on their
own, the recording API sits below the export machinery, and no module imports one that imports
it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "provtrace"
PUBLIC = {
    "provtrace",
    "provtrace.conventions",
    "provtrace.instrumentation",
    "provtrace.genai",
    "provtrace.testing",
}
# Public for tests only: an instrumentation's tests may use the test tooling, its code may not.
TEST_TOOLING = "provtrace.testing"
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
        if name in modules and (name not in PUBLIC or in_package(name, TEST_TOOLING))
    )
    assert offenders == []


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_every_instrumentation_has_its_own_pytest_settings() -> None:
    """So that its tests run on their own (`pytest instrumentation/<lib>/tests`, the nox
    sessions), never in the repository's run."""
    packages = sorted(p.parent for p in REPO.glob("instrumentation/*/pyproject.toml"))
    assert packages
    without = [
        p.name
        for p in packages
        if "[tool.pytest.ini_options]" not in (p / "pyproject.toml").read_text(encoding="utf-8")
    ]
    assert without == []


def test_instrumentation_tests_stand_on_their_own() -> None:
    """No imports of the repository's tests/ package and no sys.path edits: they run from an
    environment holding only provtrace and the instrumentation (see the nox sessions)."""
    files = sorted(REPO.glob("instrumentation/*/tests/**/*.py"))
    assert files
    offenders = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in files
        for name in imported(path)
        if in_package(name, "tests")
    )
    edits = sorted(
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )
    assert offenders == []
    assert edits == []


def test_the_sdk_imports_nothing_of_the_repository() -> None:
    """provtrace (its test tooling included) is installed as a wheel: the repository's tests/,
    scripts/ and examples/ are not there."""
    top_level = {"tests", "scripts", "examples", "bench"}
    offenders = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in SRC.rglob("*.py")
        for name in imported(path)
        if name.split(".")[0] in top_level
    )
    assert offenders == []


def test_nothing_in_the_sdk_depends_on_its_test_tooling() -> None:
    tooling = SRC / "testing"
    offenders = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in SRC.rglob("*.py")
        if tooling not in path.parents
        for name in imported(path)
        if in_package(name, TEST_TOOLING)
    )
    assert offenders == []


@pytest.mark.parametrize("module", ["stack.py", "openbao.py"])
def test_the_test_servers_control_needs_the_standard_library_only(module: str) -> None:
    """scripts/stack.py runs the stack control before any virtualenv exists, and the OpenBao
    control must not go through hvac, which the instrumentation under test wraps."""
    path = SRC / "testing" / module
    outside = sorted(
        {name.split(".")[0] for name in imported(path)} - set(sys.stdlib_module_names) - {"__future__"}
    )
    assert outside == []


def test_the_stack_control_runs_on_the_standard_library_alone() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(REPO / "scripts" / "stack.py"),
            "status",
            "--dir",
            str(REPO / "var" / "none"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # nothing runs there: not healthy, but it ran
    assert result.stdout.startswith("jaeger "), result.stdout + result.stderr


# What the fixtures' servers need besides provtrace: imported by those fixtures only, so that the
# plugin loads in any environment holding provtrace (the SDK's own tests have none of them).
SERVER_LIBRARIES = ("moto", "boto3", "botocore", "starlette", "uvicorn", "hvac", "openai", "anthropic")


def test_loading_the_test_plugin_imports_none_of_the_servers_libraries() -> None:
    code = (
        "import sys, provtrace.testing, provtrace.testing.fixtures\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_LIBRARIES!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


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
