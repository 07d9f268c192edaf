"""Crash evidence: an agent killed with SIGKILL inside a guarded action or in the middle of a burst,
and a forked child, against the real archive sink, a real signing key and a real OpenBao secret.

Each test compares what the agent produced (span ids it reported as ended) with what arrived in
the archive after the next start of the agent (``tests.crash_agent recover``) by span id, counts
exact duplicates, asks ``provtrace verify --stream`` about the dead stream, and prints the counts.
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provtrace import conventions as c
from provtrace.integrity import write_key_pair
from provtrace.otlpjson import decode_traces, loads_line
from provtrace.testing import Stack, wait_for
from provtrace.testing.canary import CanaryScan
from provtrace.testing.evidence import jaeger_v3
from provtrace.testing.openbao import OpenBao

ROOT = Path(__file__).resolve().parents[2]
READ_TIMEOUT_S = 60.0


class AgentProcess:
    """``python -m tests.crash_agent`` with its stdout read line by line within a deadline."""

    def __init__(self, mode: str, home: Path, *args: str) -> None:
        self.log = home / f"agent-{mode}-{time.monotonic_ns()}.log"
        self._stderr = open(self.log, "wb")  # noqa: SIM115 - closed in finish()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_agent", mode, str(home), *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.messages: list[dict[str, Any]] = []
        self._buffer = b""

    def read_until(self, done: Any, timeout_s: float = READ_TIMEOUT_S) -> dict[str, Any]:
        """Messages until one satisfies ``done``; fails on timeout or on the agent's exit."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    message = json.loads(line)
                    self.messages.append(message)
                    if done(message):
                        return message  # type: ignore[no-any-return]
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"agent said nothing decisive in {timeout_s:.0f}s: {self.logged()}"
                if selector.select(timeout=remaining):
                    chunk = os.read(self.process.stdout.fileno(), 65536)
                    assert chunk, f"agent exited ({self.process.wait()}): {self.logged()}"
                    self._buffer += chunk

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL
        self._stderr.close()

    def finish(self) -> int:
        code = self.process.wait(timeout=120)
        self._stderr.close()
        return code

    def logged(self) -> str:
        return self.log.read_text(errors="replace")

    def produced(self) -> set[str]:
        return {span_id for m in self.messages for span_id in m.get("ended", ())}


def arrived(archive: Path) -> tuple[collections.Counter[str], list[Any]]:
    """Every span id in the archive's raw lines (seals and checkpoints apart), with how often it
    occurs, and the seals."""
    counts: collections.Counter[str] = collections.Counter()
    seals = []
    for path in sorted(archive.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            for record in loads_line(line):
                if record.is_seal:
                    seals.append(record)
                elif record.name != c.CHECKPOINT_SPAN_NAME:
                    counts[record.span_id] += 1
    return counts, seals


def verify_stream(home: Path, *more: str) -> tuple[int, dict[str, Any]]:
    return verify_args(home, "--stream", "--archive", str(home / "archive"), *more)


def verify_args(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "provtrace.cli",
            "verify",
            *args,
            "--public-key",
            str(home / "agent.pub"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def kinds(report: dict[str, Any]) -> list[str]:
    return [finding["kind"] for finding in report["findings"]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_key_pair(tmp_path / "agent.key", tmp_path / "agent.pub")
    return tmp_path


def recover(home: Path, *args: str) -> dict[str, Any]:
    agent = AgentProcess("recover", home, *args)
    result = agent.read_until(lambda m: "shutdown" in m)
    assert agent.finish() == 0, agent.logged()
    assert result["shutdown"] is True, agent.logged()
    result["log"] = agent.logged()
    return result


def test_kill_inside_a_guarded_action_recovers_the_steps_and_reports_the_decision(
    home: Path, openbao: OpenBao
) -> None:
    secret = "canary-" + os.urandom(12).hex()
    openbao.request("POST", "secret/data/crash-canary", {"data": {"token": secret}})
    agent = AgentProcess("mid-decision", home, "--secret-url", openbao.url, "--token", openbao.root_token)
    dead_stream = agent.read_until(lambda m: "stream" in m)["stream"]
    inside = agent.read_until(lambda m: "inside" in m)
    agent.kill9()
    produced = agent.produced()
    before, _ = arrived(home / "archive")
    # Before the restart and within a heartbeat interval, the archive alone cannot tell a dead
    # stream from a live one; on the agent's host, its progress log can.
    code, report = verify_stream(home)
    print(f"\nverify --stream before the restart, archive only: exit {code}, {sorted(set(kinds(report)))}")
    code, report = verify_stream(home, "--spool", str(home / "spool"))  # its progress log can
    died = [f for f in report["findings"] if f["kind"] == "stream_died"]
    print(f"\nverify --stream --spool before the restart: exit {code}, findings {sorted(set(kinds(report)))}")
    assert code == 1 and [f["stream"] for f in died] == [dead_stream]
    assert not any(f["kind"] == "stream_live" and f["stream"] == dead_stream for f in report["findings"])
    (early,) = [f for f in report["findings"] if f["kind"] == "unfinished_decision"]
    assert early["trace_id"] == inside["trace"] and inside["ended"][-1] in early["message"]
    result = recover(home)
    counts, seals = arrived(home / "archive")
    missing = produced - set(counts)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    print(
        f"\nkill -9 inside a guarded action: produced={len(produced)} arrived={len(produced & set(counts))} "
        f"(before restart {len(produced & set(before))}) missing={len(missing)} duplicates={duplicates}"
    )
    assert missing == set()
    assert duplicates == 0
    assert result["counters"]["decisions_unfinished"] == 1
    assert result["counters"]["streams_died"] == 1
    steps = set(inside["ended"]) - {agent.messages[1]["ended"][0]}  # tool call, policy, approval
    assert len(steps) == 3 and steps <= set(counts)
    assert result["counters"]["spans_recovered"] == len(steps - set(before))  # the rest was spooled
    assert f"unfinished decision {inside['trace']} of stream {dead_stream}" in result["log"]
    unfinished = [s for s in seals if s.attr_str(c.SEAL_REASON) == c.SEAL_REASON_UNFINISHED]
    assert [s.trace_id for s in unfinished] == [inside["trace"]]
    assert unfinished[0].attr_str(c.SEAL_RECOVERED_FROM) == dead_stream
    assert inside["inside"] in unfinished[0].attr_strings(c.SEAL_OPEN_SPANS)
    assert inside["ended"][-1] in (unfinished[0].attr_str(c.SEAL_LAST_STEP) or "")

    code, report = verify_stream(home)
    found = kinds(report)
    print(f"verify --stream after recovery: exit {code}, findings {sorted(set(found))}")
    assert code == 1 and report["ok"] is False
    assert "stream_died" in found and "unfinished_decision" in found
    assert not any(f["kind"] == "stream_live" and f["stream"] == dead_stream for f in report["findings"])
    decision = next(f for f in report["findings"] if f["kind"] == "unfinished_decision")
    assert decision["trace_id"] == inside["trace"] and inside["ended"][-1] in decision["message"]

    state = [p for d in ("archive", "spool", "quarantine") for p in [home / d, *(home / d).rglob("*")]]
    modes = {oct(stat.S_IMODE(p.stat().st_mode)) for p in state if p.exists()}
    print(f"modes under the state directories after the crash and recovery: {sorted(modes)}")
    assert modes <= {"0o600", "0o700"}
    scan = CanaryScan().watch(home / "archive", home / "spool", home / "quarantine")
    scan.add_text(agent.logged()).add_text(result["log"])
    scan.assert_absent(secret)
    print(f"canary scan: {len(scan.written())} bytes under the state directories, 0 occurrences")


@pytest.mark.parametrize("threads", [1, 4])
def test_kill_mid_burst_loses_nothing_and_replays_once(home: Path, threads: int) -> None:
    agent = AgentProcess("burst", home, "--count", "400", "--threads", str(threads))
    agent.read_until(lambda m: "stream" in m)
    agent.read_until(lambda m: len(agent.messages) > 60)
    agent.kill9()
    produced = agent.produced()
    result = recover(home)
    counts, seals = arrived(home / "archive")
    missing = produced - set(counts)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    recovered = sum(len(s.attr_strings(c.SEAL_SPANS)) for s in seals if s.attr_str(c.SEAL_RECOVERED_FROM))
    print(
        f"\nkill -9 mid-burst ({threads} thread(s)): produced={len(produced)} "
        f"arrived={len(produced & set(counts))} missing={len(missing)} duplicates={duplicates} "
        f"arrived_total={len(counts)} "
        f"recovered_from_progress_log={recovered} unfinished={result['counters']['decisions_unfinished']}"
    )
    assert missing == set()
    assert duplicates == 0
    assert result["counters"]["streams_died"] == 1
    code, report = verify_stream(home)
    assert code == 1 and "stream_died" in kinds(report)
    assert kinds(report).count("unfinished_decision") == result["counters"]["decisions_unfinished"]
    assert result["counters"]["decisions_unfinished"] <= threads


def test_forked_child_records_decisions_that_arrive(home: Path) -> None:
    agent = AgentProcess("fork", home, "--count", "5")
    agent.read_until(lambda m: "shutdown" in m and "child_shutdown" not in m)
    assert agent.finish() == 0, agent.logged()
    assert {"child_exit": 0} in agent.messages and {"child_shutdown": True} in agent.messages
    produced = agent.produced()
    counts, seals = arrived(home / "archive")
    child = {s for m in agent.messages if "pid" in m for s in m["ended"]}
    streams = {s.attr_str(c.SEAL_STREAM) for s in seals}
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    print(
        f"\nfork: produced={len(produced)} (child {len(child)}) arrived={len(produced & set(counts))} "
        f"duplicates={duplicates} streams={len(streams)}"
    )
    assert len(child) == 5 * 4
    assert produced - set(counts) == set()
    assert duplicates == 0
    assert len(streams) == 2
    code, report = verify_stream(home)
    assert code == 0 and report["ok"] is True, kinds(report)


def jaeger_copies(stack: Stack, trace_id: str) -> dict[str, list[Any]]:
    """Every copy of every span of a trace as Jaeger stores it (raw: no adjuster merges copies)."""
    data = jaeger_v3(stack, trace_id)
    copies: dict[str, list[Any]] = collections.defaultdict(list)
    for record in decode_traces(data["result"]) if data else []:
        if not record.is_seal and record.name != c.CHECKPOINT_SPAN_NAME:
            copies[record.span_id].append(record)
    return copies


def test_kill_mid_burst_through_the_collector_into_jaeger(home: Path, evidence_stack: Stack) -> None:
    """Jaeger cannot be asked whether it has a batch already: one the dead process sent but did
    not live to acknowledge is sent again. Such copies must be exact (so every reader drops
    them) and counted; nothing may be missing."""
    endpoint = evidence_stack.otlp_http_endpoint
    agent = AgentProcess("burst", home, "--count", "400", "--endpoint", endpoint)
    agent.read_until(lambda m: "stream" in m)
    agent.read_until(lambda m: len(agent.messages) > 30)
    agent.kill9()
    restarted = AgentProcess("recover", home, "--endpoint", endpoint)
    result = restarted.read_until(lambda m: "shutdown" in m)
    assert restarted.finish() == 0 and result["shutdown"] is True, restarted.logged()
    produced = agent.produced()
    stored: dict[str, list[Any]] = {}
    for decision in [m for m in agent.messages if "ended" in m]:
        wanted = set(decision["ended"])
        stored.update(
            wait_for(
                f"trace {decision['trace']} in Jaeger",
                lambda t=decision["trace"], w=wanted: (
                    found if w <= set(found := jaeger_copies(evidence_stack, t)) else None
                ),
            )
        )
    duplicates = sum(len(copies) - 1 for copies in stored.values())
    inexact = [span_id for span_id, copies in stored.items() if any(c != copies[0] for c in copies)]
    print(
        f"\nkill -9 mid-burst via the collector into Jaeger: produced={len(produced)} "
        f"arrived={len(produced & set(stored))} exact_duplicates={duplicates} inexact={len(inexact)} "
        f"recovered_from_progress_log={result['counters']['spans_recovered']}"
    )
    assert produced <= set(stored)
    assert inexact == []
    copied = sorted({copies[0].trace_id for copies in stored.values() if len(copies) > 1})
    for trace_id in copied[:3]:  # a reader drops the copies, and verify says how many
        raw = list(decode_traces(jaeger_v3(evidence_stack, trace_id)["result"]))
        extra = len(raw) - len({r.span_id for r in raw})  # spans, seals and checkpoints
        code, report = verify_args(home, trace_id, "--jaeger", evidence_stack.jaeger_url)
        (counted,) = [f for f in report["findings"] if f["kind"] == "duplicate_copies"]
        assert counted["message"].startswith(f"{extra} exact duplicate cop")
        assert "missing_span" not in kinds(report) and "conflicting_copy" not in kinds(report)
    code, report = verify_stream(home)  # the local archive: same evidence, copies counted
    assert "stream_died" in kinds(report) and code == 1


def test_in_enforce_mode_the_unfinished_decision_is_quarantined_with_its_reason(home: Path) -> None:
    """The default mode keeps an incomplete segment out of the stream: the recovered steps are
    withheld (listed by span id and digest in the seal) and held in the quarantine as UNFINISHED."""
    agent = AgentProcess("mid-decision", home, "--completeness", "enforce")
    inside = agent.read_until(lambda m: "inside" in m)
    agent.kill9()
    result = recover(home, "--completeness", "enforce")
    counts, seals = arrived(home / "archive")
    (seal,) = [s for s in seals if s.attr_str(c.SEAL_REASON) == c.SEAL_REASON_UNFINISHED]
    withheld = {entry.partition(":")[0] for entry in seal.attr_strings(c.SEAL_WITHHELD)}
    quarantined = [json.loads(p.read_text()) for p in (home / "quarantine").glob("q-*.json")]
    held = [q for q in quarantined if q["trace_id"] == inside["trace"]]
    steps = set(inside["ended"])
    print(
        f"\nkill -9 inside a guarded action (enforce): produced={len(steps)} "
        f"arrived={len(steps & set(counts))} withheld={len(steps & withheld)} quarantined_entries={len(held)}"
    )
    assert steps <= set(counts) | withheld
    assert steps & withheld and len(held) == 1
    assert "UNFINISHED" in {v["code"] for v in held[0]["violations"]}
    assert result["counters"]["decisions_unfinished"] == 1


def test_a_forked_worker_killed_inside_a_guarded_action_is_recovered_at_the_next_start(home: Path) -> None:
    agent = AgentProcess("fork-kill", home)
    parent_stream = agent.read_until(lambda m: "stream" in m)["stream"]
    child = agent.read_until(lambda m: "pid" in m)
    inside = agent.read_until(lambda m: "inside" in m)
    os.kill(child["pid"], signal.SIGKILL)
    agent.read_until(lambda m: "shutdown" in m)
    assert agent.finish() == 0, agent.logged()
    assert {"child_exit": -signal.SIGKILL} in agent.messages
    result = recover(home)
    produced = agent.produced()
    counts, _ = arrived(home / "archive")
    code, report = verify_stream(home)
    assert code == 1
    died = {f["stream"] for f in report["findings"] if f["kind"] == "stream_died"}
    print(
        f"\nfork, worker killed inside a guarded action: produced={len(produced)} "
        f"arrived={len(produced & set(counts))} unfinished={result['counters']['decisions_unfinished']} "
        f"streams_died={sorted(died)}"
    )
    assert produced <= set(counts)
    assert died == {child["stream"]} and parent_stream not in died
    (decision,) = [f for f in report["findings"] if f["kind"] == "unfinished_decision"]
    assert decision["trace_id"] == inside["trace"] and inside["ended"][-1] in decision["message"]
