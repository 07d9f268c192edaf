"""Each instrumentation's tests in an environment of its own: provtrace and the instrumentation
installed from this checkout (as wheels, not editable), plus one pinned requirement file per
supported version (instrumentation/<lib>/requirements/<name>.txt), and nothing else (but the
checkout's other instrumentations that its test extra names). `make test` runs every session;
`nox -s mcp1` runs one.

The environments live outside the checkout (``$PROVTRACE_CACHE``, default ~/.cache/provtrace,
under nox/ and a digest of the checkout's path, so that two checkouts never share one) and are
reused: requirements are installed again only when a requirement file or a pyproject.toml
changed, and provtrace and the instrumentation only when their sources changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from collections.abc import Iterable
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("PROVTRACE_CACHE") or Path.home() / ".cache" / "provtrace")
INSTRUMENTATIONS = sorted(p.parent for p in (ROOT / "instrumentation").glob("*/pyproject.toml"))
MCP = ROOT / "instrumentation" / "mcp"

nox.options.envdir = str(CACHE / "nox" / hashlib.sha256(str(ROOT).encode()).hexdigest()[:12])
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True


def digest(paths: Iterable[Path]) -> str:
    """Of the files' names and contents, in a stable order (directories: every file under them)."""
    sha = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if not any(part == "__pycache__" or part.endswith(".egg-info") for part in file.parts):
                sha.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return sha.hexdigest()


def install_once(session: nox.Session, stamp: str, inputs: Iterable[Path], *args: str) -> None:
    """``pip install *args`` unless the environment already did it for these very inputs."""
    marker = Path(session.virtualenv.location) / f".provtrace-{stamp}"
    wanted = digest(inputs)
    if marker.is_file() and marker.read_text() == wanted:
        return
    session.install(*args)
    marker.write_text(wanted)


def project_name(package: Path) -> str:
    return str(nox.project.load_toml(package / "pyproject.toml")["project"]["name"])


def siblings(package: Path, extra: str) -> list[Path]:
    """The checkout's other instrumentations that ``extra`` of ``package`` names (the hvac tests
    use botocore's): they are installed from here, never looked up in an index."""
    if not extra:
        return []
    project = nox.project.load_toml(package / "pyproject.toml")["project"]
    wanted = {
        re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()
        for requirement in project.get("optional-dependencies", {}).get(extra, [])
    }
    return [other for other in INSTRUMENTATIONS if other != package and project_name(other) in wanted]


def install(session: nox.Session, package: Path, requirements: Path | None, *, extra: str = "test") -> None:
    """provtrace and ``package`` (with ``extra``, and the checkout's instrumentations it names)
    and the requirement file: dependencies when a requirement or project file changed, the
    packages themselves when their sources did."""
    spec = f"{package}[{extra}]" if extra else str(package)
    others = siblings(package, extra)
    projects = [ROOT, package, *others]
    files = [project / "pyproject.toml" for project in projects]
    pinned = ["-r", str(requirements)] if requirements else []
    install_once(
        session,
        "requirements",
        [*files, *([requirements] if requirements else [])],
        str(ROOT),
        spec,
        *map(str, others),
        *pinned,
    )
    sources = [*(project / "src" for project in projects), *files]
    install_once(session, "sources", sources, "--no-deps", "--force-reinstall", *map(str, projects))


def run_tests(session: nox.Session, package: Path, *paths: str, env: dict[str, str] | None = None) -> None:
    """pytest on the package's tests, from the checkout's root as a developer would run them
    (the package's pyproject.toml is then the run's root, not the repository's)."""
    tests = [str(package.relative_to(ROOT) / "tests" / path) for path in paths or ("",)]
    session.run("pytest", *tests, *session.posargs, env=env or {})


@nox.session
def mcp2(session: nox.Session) -> None:
    """The MCP instrumentation on mcp 2.x, with only its [test] extra: its tests on their own."""
    install(session, MCP, MCP / "requirements" / "mcp2.txt")
    run_tests(session, MCP)


@nox.session
def mcp1(session: nox.Session) -> None:
    """The MCP instrumentation on mcp 1.x, and client and server across the two lines (the other
    side runs in the mcp2 session's environment)."""
    peer = Path(session.virtualenv.location).with_name("mcp2") / "bin" / "python"
    if not peer.is_file():
        session.error(
            f"the cross-line tests need the mcp2 session's environment ({peer}): run `nox -s mcp2` first"
        )
    install(session, MCP, MCP / "requirements" / "mcp1.txt", extra="")
    run_tests(session, MCP, env={"PROVTRACE_MCP_PEER_PYTHON": str(peer)})


@nox.session
def mcp_suite(session: nox.Session) -> None:
    """mcp's own server logging tests, from its source distribution, with provtrace on."""
    requirements = MCP / "requirements" / "mcp-suite.txt"
    install(session, MCP, requirements, extra="")
    (version,) = re.findall(r"^mcp==(\S+)$", requirements.read_text(), flags=re.MULTILINE)
    sources = unpacked_sdist(session, "mcp", version)
    run_tests(session, MCP, "test_mcp_suite.py", env={"PROVTRACE_MCP_SUITE": str(sources)})


def unpacked_sdist(session: nox.Session, name: str, version: str) -> Path:
    """The source distribution of name==version (it ships the project's tests), fetched with pip
    once and kept unpacked in the cache."""
    target = CACHE / "sdists" / f"{name}-{version}"
    if target.is_dir():
        return target
    download = Path(session.create_tmp()) / "sdist"
    session.run(
        "python", "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
        "--dest", str(download), f"{name}=={version}",
    )  # fmt: skip
    (archive,) = download.glob("*.tar.gz")
    building = target.with_name(target.name + ".building")
    with tarfile.open(archive) as sdist:
        sdist.extractall(building, filter="data")
    (unpacked,) = [p for p in building.iterdir() if p.is_dir()]
    unpacked.rename(target)
    building.rmdir()
    return target


def standalone(package: Path) -> None:
    """Every other instrumentation: its tests with its [test] extra, once per requirement file in
    its requirements/ directory (a session ``<package>-<file>`` each: ``hvac-oldest``,
    ``hvac-newest``), or once with the extra alone (a session ``<package>``) when it has none."""
    lines = sorted((package / "requirements").glob("*.txt")) or [None]
    for requirements in lines:

        def run(session: nox.Session, requirements: Path | None = requirements) -> None:
            install(session, package, requirements)
            run_tests(session, package)

        name = package.name if requirements is None else f"{package.name}-{requirements.stem}"
        run.__doc__ = f"The {package.name} instrumentation's tests" + (
            f" with {requirements.relative_to(ROOT)}" if requirements else ", [test] extra alone"
        )
        nox.session(name=name)(run)


for _package in INSTRUMENTATIONS:
    if _package != MCP:
        standalone(_package)
