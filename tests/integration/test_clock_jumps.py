"""Clock jumps in a real agent process: its wall clock is faked by libfaketime (Debian package
``faketime``) and stepped back or forward between commands, its monotonic clock left alone;
``provtrace verify --stream`` on its archive must name what happened, with the right exit code.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provtrace.integrity import write_key_pair
from provtrace.testing import Archive, stack_required

REPO = Path(__file__).resolve().parents[2]
LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))), "")
HOUR_NS = 3600 * 10**9


@pytest.fixture(autouse=True)
def libfaketime() -> None:
    """Skipped without libfaketime, except where the stack is required (make test, CI): a failure."""
    if not LIBFAKETIME:
        if stack_required():
            pytest.fail("libfaketime is missing: make system-packages installs it")
        pytest.skip("libfaketime is not installed (make system-packages installs it)")


class ClockAgent:
    """tests/clock_agent.py in a subprocess whose wall clock is ``offset_s`` off."""

    def __init__(self, home: Path) -> None:
        self.home = home
        write_key_pair(home / "agent.key", home / "agent.pub")
        self.offset_file = home / "faketime"
        self.produced: set[str] = set()
        self.set_offset(0)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVTRACE_", "OTEL_"))}
        env.update(
            LD_PRELOAD=LIBFAKETIME,
            FAKETIME_TIMESTAMP_FILE=str(self.offset_file),
            FAKETIME_NO_CACHE="1",  # read the offset at every call: the clock steps while it runs
            FAKETIME_DONT_FAKE_MONOTONIC="1",
            PYTHONPATH=str(REPO),
        )
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "clock_agent.py"), str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )

    def set_offset(self, seconds: int) -> None:
        self.offset_file.write_text(f"{seconds:+d}\n")

    def send(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        if command == "die":
            assert self.process.wait(timeout=60) == -9
            return ""
        answer = self.process.stdout.readline().strip()
        assert answer.startswith("ok "), (command, answer)
        for ids in answer.split(" ")[2:]:
            self.produced.update(ids.split(","))
        return answer

    def arrived(self) -> set[str]:
        """The span ids in the archive (seals and anchors aside)."""
        records = Archive(self.home / "archive").records()
        return {r.span_id for r in records if not (r.is_seal or r.is_anchor)}

    def wall_offset_ns(self, answer: str) -> int:
        """How far the agent's wall clock was from this one's when it answered."""
        return int(answer.split()[1]) - time.time_ns()

    def close(self) -> None:
        self.send("close")
        assert self.process.wait(timeout=60) == 0

    def run_verify(self, *extra: str) -> subprocess.CompletedProcess[str]:
        archive, key = str(self.home / "archive"), str(self.home / "agent.pub")
        command = ["verify", "--stream", "--archive", archive, "--public-key", key, *extra]
        return subprocess.run(
            [sys.executable, "-m", "provtrace.cli", *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def verify(self, *extra: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Exit code, finding kind -> severity, and the whole JSON report."""
        result = self.run_verify("--format", "json", *extra)
        report = json.loads(result.stdout)
        return result.returncode, {f["kind"]: f["severity"] for f in report["findings"]}, report

    def verdict(self) -> str:
        return self.run_verify().stdout.partition(":")[0]


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[ClockAgent]:
    started = ClockAgent(tmp_path)
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait(timeout=60)


def as_of(seconds_from_now: float) -> str:
    moment = time.gmtime(time.time() + seconds_from_now)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", moment)


def test_a_clock_set_back_between_seals_is_a_stepped_clock(agent: ClockAgent) -> None:
    agent.send("decision")
    agent.send("flush")
    agent.set_offset(-3600)
    assert agent.wall_offset_ns(agent.send("decision")) < -HOUR_NS + 60 * 10**9  # the fake took hold
    agent.send("flush")
    agent.close()
    code, findings, report = agent.verify()
    assert agent.produced == agent.arrived() and len(agent.produced) == 8
    assert (code, findings) == (0, {"clock_backwards": "warning"})
    assert "the monotonic clock went on" in report["findings"][0]["message"]
    assert agent.verdict() == "VERIFIED (times not trusted)"


def test_a_clock_set_back_between_approval_and_action(agent: ClockAgent) -> None:
    agent.send("begin")
    agent.set_offset(-3600)
    agent.send("act")  # not refused: the approval came first by the clock that cannot be stepped
    agent.close()
    assert agent.produced == agent.arrived() and len(agent.produced) == 4
    code, findings, _ = agent.verify()
    assert (code, findings) == (0, {"action_before_approval": "warning", "end_before_start": "warning"})


def test_a_span_the_clock_ended_before_it_started(agent: ClockAgent) -> None:
    agent.send("tool-begin")
    agent.set_offset(-3600)
    agent.send("tool-end")
    agent.close()
    assert agent.produced == agent.arrived() and len(agent.produced) == 2
    code, findings, report = agent.verify()
    assert (code, findings) == (0, {"end_before_start": "warning"})
    assert len([f for f in report["findings"] if f["kind"] == "end_before_start"]) == 2  # tool, decision


def test_a_forward_jump_raises_no_heartbeat_gap_and_expires_no_approval(agent: ClockAgent) -> None:
    agent.send("decision")
    agent.send("flush")
    agent.send("begin")
    agent.set_offset(3600)
    agent.send("act")  # the approval is 900 s valid by elapsed time, not by the wall clock
    agent.send("flush")
    agent.close()
    assert agent.produced == agent.arrived() and len(agent.produced) == 8
    code, findings, report = agent.verify(*("--as-of", as_of(3600)))  # as of the agent's (wrong) time
    assert (code, findings) == (0, {"clock_ahead": "warning"})  # no heartbeat_gap
    ahead = [f for f in report["findings"] if f["kind"] == "clock_ahead"]
    assert [bool(f["span_id"]) for f in ahead] == [False, True]  # between seals; approval to action


def test_a_forward_jump_does_not_hide_a_dead_process(agent: ClockAgent) -> None:
    agent.send("decision")
    agent.send("flush")
    agent.set_offset(3600)
    agent.send("decision")
    agent.send("flush")
    agent.send("die")
    assert agent.produced == agent.arrived() and len(agent.produced) == 8  # flushed before the kill
    assert agent.verify()[:2] == (0, {"stream_live": "info", "clock_ahead": "warning"})  # just now
    code, findings, _ = agent.verify(*("--as-of", as_of(600)))  # ten minutes later
    assert (code, findings) == (1, {"truncated_tail": "error", "clock_ahead": "warning"})
