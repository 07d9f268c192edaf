"""``opentelemetry-instrument`` configures provtrace from the environment alone, through its distro
and configurator entry points, and a bad setting never stops the program."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from provtrace import distro
from provtrace.readers.archive import ArchiveSource

LAUNCHER = Path(sys.executable).parent / "opentelemetry-instrument"
# What the program run under opentelemetry-instrument reports of provtrace's configuration.
REPORT = (
    "import json, provtrace\n"
    "h = provtrace.current()\n"
    "print(json.dumps(h and {'archive': str(h.archive_dir), 'stream': h.stream_id, 'mode': "
    "h.pipeline.settings.completeness}))\n"
)


def instrumented(code: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``opentelemetry-instrument python -c code`` with only these settings in its environment."""
    return subprocess.run(
        [str(LAUNCHER), sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "PROVTRACE_HOME": str(home), **env},
    )


def test_both_entry_points_are_registered_under_the_name_provtrace() -> None:
    for group, target in (
        ("opentelemetry_distro", distro.ProvtraceDistro),
        ("opentelemetry_configurator", distro.ProvtraceConfigurator),
    ):
        (entry,) = [e for e in entry_points(group=group) if e.name == distro.ENTRY_POINT_NAME]
        assert entry.load() is target


def test_the_environment_alone_configures_provtrace_and_exit_shuts_it_down(tmp_path: Path) -> None:
    result = instrumented(REPORT, tmp_path, OTEL_SERVICE_NAME="env-only", PROVTRACE_COMPLETENESS="annotate")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["archive"] == str(tmp_path / "archive")
    assert report["stream"].startswith("env-only@")
    assert report["mode"] == "annotate"
    (close,) = list(ArchiveSource(tmp_path / "archive").all_spans())  # the stream's final seal
    assert close.attributes["provenance.seal.reason"] == "close"
    assert "provtrace" not in result.stderr


def test_an_invalid_setting_is_one_clear_error_and_the_program_runs_on(tmp_path: Path) -> None:
    code = REPORT + "with provtrace.tool_call('t'): pass\nprint('ran')\n"
    result = instrumented(code, tmp_path, PROVTRACE_COMPLETENESS="bogus")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["null", "ran"]
    lines = [line for line in result.stderr.splitlines() if "provtrace" in line]
    assert len(lines) == 2, result.stderr  # the configuration error, then the first step's warning
    assert "is not recording" in lines[0]
    assert "completeness must be one of enforce, annotate, off; got 'bogus'" in lines[0]
    assert "configure() has not been called" in lines[1]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("settings", "configured"),
    [
        ({}, True),  # provtrace's distro and configurator (the only ones installed here)
        ({"OTEL_PYTHON_CONFIGURATOR": "another"}, True),  # the distro configures it after that one
        ({"OTEL_PYTHON_DISTRO": "another"}, True),  # the configurator is enough
        ({"OTEL_PYTHON_DISTRO": "another", "OTEL_PYTHON_CONFIGURATOR": "another"}, False),
    ],
)
def test_either_entry_point_is_enough(tmp_path: Path, settings: dict[str, str], configured: bool) -> None:
    result = instrumented(REPORT, tmp_path, **settings)
    assert result.returncode == 0, result.stderr
    assert (json.loads(result.stdout) is not None) is configured


def test_the_distro_makes_provtraces_configurator_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_CONFIGURATOR", "")  # so that teardown restores it, set or not
    monkeypatch.delenv("OTEL_PYTHON_CONFIGURATOR")
    distro.ProvtraceDistro().configure()
    assert distro.os.environ["OTEL_PYTHON_CONFIGURATOR"] == "provtrace"
    monkeypatch.setenv("OTEL_PYTHON_CONFIGURATOR", "configurator")
    distro.ProvtraceDistro().configure()
    assert distro.os.environ["OTEL_PYTHON_CONFIGURATOR"] == "configurator"  # a choice made stays
