"""An agent process for the crash tests (``python -m tests.crash_agent MODE HOME``).

It records decisions into the archive, spool and quarantine under HOME and tells its parent, one
JSON line on stdout per ended step, which span ids it produced; then the parent kills it with
SIGKILL where the test wants: inside a guarded action (``mid-decision``) or while decisions run
(``burst``). ``recover`` is the next start of the agent: it adopts the spool, waits until the
adopted journals are delivered, shuts down and prints its counters. ``fork`` records decisions
in a parent and in a child forked after provtrace was configured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import provtrace
from provtrace.testing import wait_for

REQ = {"sg": "sg-123", "rule": "rule-9", "port": 443}


def say(**message: Any) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def configure(home: Path, *, endpoint: str | None, completeness: str) -> provtrace.Provtrace:
    return provtrace.configure(
        service_name="crash-agent",
        archive_dir=home / "archive",
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        signing_key=home / "agent.key",
        completeness=completeness,
        endpoint=endpoint,
        heartbeat_interval=60,
    )


def fetch_secret(url: str, token: str) -> str:
    """A real read from OpenBao's KV store (the canary value)."""
    request = urllib.request.Request(f"{url}/v1/secret/data/crash-canary", headers={"X-Vault-Token": token})
    with urllib.request.urlopen(request, timeout=10) as response:
        value: str = json.load(response)["data"]["data"]["token"]
    return value


def one_decision(index: int, secret: str = "") -> dict[str, Any]:
    """tool call, policy check, approval and a guarded action; returns the span ids it ended."""
    ended: list[str] = []
    with provtrace.decision(f"contain INC-{index}", trigger=f"alert:{index}", actor="crash-agent") as d:
        with provtrace.tool_call("lookup_rule") as tool:
            tool.record_input({"sg": "sg-123", "auth": secret} if secret else {"sg": "sg-123"})
            tool.record_output({"rules": []})
        ended.append(tool.span_id)
        with provtrace.policy_check("fw-change", version="3", engine="opa", input=REQ) as p:
            p.allow(reason="ticket CHG-42 open")
        ended.append(p.span_id)
        with provtrace.approval(approver="alice@example.com", method="slack", for_action=REQ) as a:
            a.approve(reason="matches change window")
        ended.append(a.span_id)
        with provtrace.action(
            "firewall.rule.open", target="sg-123", params=REQ, require=("policy", "approval")
        ):
            pass
    return {"trace": d.trace_id, "ended": [*ended, d.span_id]}


def mid_decision(secret_url: str, token: str) -> None:
    """Steps end (and are reported to the parent), then the process waits inside the guarded
    action until it is killed."""
    ended: list[str] = []
    secret = ""
    if secret_url:
        with provtrace.secret_fetch(store="vault", ref="kv/crash-canary", nhi="svc-crash") as s:
            secret = fetch_secret(secret_url, token)
            s.record_value(secret, version="1")
        ended.append(s.span_id)
        assert provtrace.current().force_flush(timeout_s=60)  # the stream's first seal is archived
        say(trace=s.trace_id, ended=ended)
    with provtrace.decision("contain INC-4711", trigger="alert:INC-4711", actor="crash-agent") as d:
        with provtrace.tool_call("lookup_rule") as tool:
            tool.record_input({"sg": "sg-123", "auth": secret})
            tool.record_output({"rules": [], "echo": secret})
        with provtrace.policy_check("fw-change", version="3", engine="opa", input=REQ) as p:
            p.allow(reason="ticket CHG-42 open")
        with provtrace.approval(approver="alice@example.com", method="slack", for_action=REQ) as a:
            a.approve(reason="matches change window")
        ended += [tool.span_id, p.span_id, a.span_id]
        with provtrace.action(
            f"firewall.rule.open {secret}".strip(),
            target="sg-123",
            params=REQ,
            require=("policy", "approval"),
        ) as act:
            say(trace=d.trace_id, ended=ended, inside=act.span_id, root=d.span_id)
            sys.stdin.read()  # killed here


def burst(count: int, threads: int) -> None:
    """``count`` decisions on each of ``threads`` threads, each reported as it ends."""

    def run(first: int) -> None:
        for index in range(first, first + count):
            message = one_decision(index)
            with said:
                say(**message)

    said = threading.Lock()
    workers = [threading.Thread(target=run, args=(n * count,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    sys.stdin.read()


def fork(count: int) -> None:
    say(**one_decision(0))
    pid = os.fork()
    if pid == 0:
        for index in range(count):
            say(**one_decision(1000 + index), pid=os.getpid())
        ok = provtrace.current().shutdown(timeout_s=60)
        say(child_shutdown=ok)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    say(**one_decision(1))
    say(child_exit=os.waitstatus_to_exitcode(status))


def fork_kill() -> None:
    """A forked worker stops inside a guarded action (the test kills it with SIGKILL, as an OOM
    killer would); the parent goes on and shuts down cleanly once it is gone."""
    say(**one_decision(0))
    pid = os.fork()
    if pid == 0:
        say(stream=provtrace.current().stream_id, pid=os.getpid())
        mid_decision("", "")
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    say(**one_decision(1))
    say(child_exit=os.waitstatus_to_exitcode(status))


def recover(handle: provtrace.Provtrace) -> None:
    deliverer = handle.pipeline.deliverer
    wait_for("the adopted journals to be delivered", lambda: True if not deliverer.orphans else None)
    ok = handle.shutdown(timeout_s=60)
    say(shutdown=ok, counters=handle.counters)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("mid-decision", "burst", "recover", "fork", "fork-kill"))
    parser.add_argument("home", type=Path)
    parser.add_argument("--secret-url", default="")
    parser.add_argument("--token", default="")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--endpoint", default=None)
    parser.add_argument("--completeness", default="annotate")
    args = parser.parse_args()
    handle = configure(args.home, endpoint=args.endpoint, completeness=args.completeness)
    say(stream=handle.stream_id)
    if args.mode == "mid-decision":
        mid_decision(args.secret_url, args.token)
    elif args.mode == "burst":
        burst(args.count, args.threads)
    elif args.mode in ("fork", "fork-kill"):
        fork(args.count) if args.mode == "fork" else fork_kill()
        say(shutdown=handle.shutdown(timeout_s=60))
    else:
        recover(handle)


if __name__ == "__main__":
    main()
