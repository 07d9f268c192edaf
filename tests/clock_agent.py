"""An agent driven line by line on stdin, for tests that step its wall clock between commands
(libfaketime reads the offset file anew at every call). Each command answers ``ok <wall_ns>
<span ids>``: the wall time the agent sees and the span ids of the steps the command started (so
a test can tell what was produced from what arrived); or ``refused <message>`` when the guard
refused an action.

Commands: ``decision`` (a guarded decision), ``begin`` / ``act`` (the same, split after the
approval), ``tool-begin`` / ``tool-end`` (a tool call left open), ``flush``, ``die`` (SIGKILL
itself) and ``close`` (shut down and exit).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import provtrace
from tests.scenario import REQ


def main(home: Path) -> int:
    handle = provtrace.configure(
        service_name="clock-agent",
        archive_dir=home / "archive",
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        signing_key=home / "agent.key",
        heartbeat_interval=60,
    )
    open_steps = contextlib.ExitStack()
    tool: Any = None
    for line in sys.stdin:
        command = line.strip()
        started: list[Any] = []  # the steps this command started, whose span ids it answers
        try:
            if command in ("decision", "begin"):
                started.append(
                    open_steps.enter_context(provtrace.decision("d", trigger="t", actor="agent", nhi="svc"))
                )
                with provtrace.policy_check("fw", version="1", input=REQ) as policy:
                    policy.allow()
                with provtrace.approval(approver="alice", for_action=REQ) as approval:
                    approval.approve()
                started += [policy, approval]
            if command in ("decision", "act"):
                with open_steps:
                    with provtrace.action(
                        "fw.open", target="sg", params=REQ, require=("policy", "approval")
                    ) as act:
                        started.append(act)
            elif command == "tool-begin":
                started.append(
                    open_steps.enter_context(provtrace.decision("d", trigger="t", actor="agent", nhi="svc"))
                )
                tool = open_steps.enter_context(provtrace.tool_call("lookup"))
                tool.record_input({"q": 1})
                started.append(tool)
            elif command == "tool-end":
                tool.record_output({"r": 2})
                open_steps.close()
            elif command == "flush":
                assert handle.force_flush(30)
            elif command == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            elif command == "close":
                print(f"ok {time.time_ns()}" if handle.shutdown(30) else "shutdown failed", flush=True)
                return 0
        except provtrace.ProvenanceViolation as refusal:
            print(f"refused {refusal}", flush=True)
            continue
        print(f"ok {time.time_ns()} {','.join(step.span_id for step in started)}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
