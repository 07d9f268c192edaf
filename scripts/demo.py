"""`make demo` and `make demo-stack`: run the reference agent and show its decision chain, verified.

PROVTRACE_DEMO_MODE=embedded (`make demo`) records into provtrace's embedded archive: no Go build,
about a minute on a fresh machine. PROVTRACE_DEMO_MODE=stack (`make demo-stack`) starts the real
stack (collector + Jaeger, see collector-config/, built once by `make stack-build`) and sends the
evidence there; it fails when the stack cannot start. Unset: the stack when Go is available, else
the embedded archive, saying so. It prints the trace id, where the evidence is and the
reconstructed chain, then verifies the signed evidence.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack as stack_module

from provtrace.testing.openbao import OpenBao, OpenBaoError

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "var" / "demo"


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def provtrace_cli(*args: str) -> int:
    print("$ provtrace " + " ".join(args), flush=True)
    return subprocess.call([sys.executable, "-m", "provtrace.cli", *args])


class DemoError(RuntimeError):
    """The demo's evidence stack was asked for and could not start."""


def start_stack() -> stack_module.Stack | None:
    mode = os.environ.get("PROVTRACE_DEMO_MODE", "")
    if mode == "embedded":
        print("PROVTRACE_DEMO_MODE=embedded: recording into the embedded archive")
        print("(`make demo-stack` runs the same through the real collector and Jaeger)")
        return None
    required = mode == "stack"
    if not required and shutil.which("go") is None and not os.environ.get("PROVTRACE_COLLECTOR_BIN"):
        print("Go is not installed, so the collector and Jaeger cannot be built here: falling back")
        print("to provtrace's embedded archive (same OTLP JSON-lines format). Docker users: see")
        print("collector-config/docker-compose.yaml.")
        return None
    banner("evidence stack (OpenTelemetry Collector + Jaeger v2)")
    print("first run builds both from the Go module proxy (several minutes, cached afterwards)")
    stack = stack_module.Stack()
    try:
        stack.start(timeout=120)
    except stack_module.StackError as exc:
        if required:
            raise DemoError(f"the stack could not start: {exc}") from exc
        print(f"the stack could not start ({exc}); falling back to the embedded archive")
        return None
    for line in stack_module._describe(stack):
        print(line)
    return stack


def start_openbao() -> OpenBao | None:
    """A dev OpenBao holding the firewall token at kv/fw-api-token, and a token for the agent that
    may read only that secret (its identity is what the secret fetch records)."""
    banner("secret store (OpenBao dev server)")
    bao = OpenBao(DEMO / "openbao")
    try:
        bao.start()
    except OpenBaoError as exc:
        print(f"OpenBao could not start ({exc})")
        return None
    bao.request("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}})
    bao.request("POST", "kv/data/fw-api-token", {"data": {"token": "fwtok-" + secrets.token_urlsafe(18)}})
    policy = 'path "kv/data/fw-api-token" { capabilities = ["read"] }'
    bao.request("POST", "sys/policies/acl/fw-read", {"policy": policy})
    print(f"OpenBao at {bao.url}, audit log {bao.audit_log}")
    return bao


def agent_token(bao: OpenBao) -> str:
    answer = bao.request("POST", "auth/token/create", {"policies": ["fw-read"], "display_name": "svc-fw"})
    assert isinstance(answer, dict)
    token: str = answer["auth"]["client_token"]
    return token


def wait_for_trace(url: str, seconds: float = 30.0) -> bool:
    """Bounded wait until Jaeger serves the trace (the collector forwards asynchronously)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    return False


def main() -> int:
    if DEMO.exists():
        shutil.rmtree(DEMO / "home", ignore_errors=True)
        shutil.rmtree(DEMO / "archive", ignore_errors=True)
    DEMO.mkdir(parents=True, exist_ok=True)
    try:
        stack = start_stack()
    except DemoError as exc:
        print(exc)
        return 1
    bao = start_openbao()
    if bao is None:
        return 1
    try:
        return run(stack, bao)
    finally:
        bao.stop()


def run(stack: stack_module.Stack | None, bao: OpenBao) -> int:
    keys = DEMO / "keys" / "provtrace-signing"
    if not keys.with_suffix(".key").exists():
        banner("signing key")
        provtrace_cli("keygen", "--out", str(keys))
    env = {
        **os.environ,
        "PROVTRACE_HOME": str(DEMO / "home"),
        "PROVTRACE_SIGNING_KEY": str(keys.with_suffix(".key")),
        "SECOPS_RESULT_FILE": str(DEMO / "result.json"),
        "VAULT_ADDR": bao.url,
        "VAULT_TOKEN": agent_token(bao),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    if stack is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = stack.otlp_http_endpoint
    else:
        env["PROVTRACE_ARCHIVE_DIR"] = str(DEMO / "archive")
    banner("running examples/secops_agent.py (two incidents: one approved, one not)")
    code = subprocess.call([sys.executable, str(REPO / "examples" / "secops_agent.py")], env=env)
    result = json.loads((DEMO / "result.json").read_text())
    if code != 0:
        print("the agent could not deliver its evidence; see the log above")
        return code
    complete, refused = result["complete_trace_id"], result["refused_trace_id"]
    source = ["--archive", str(DEMO / "archive")]
    if stack is not None:
        v3 = f"{stack.jaeger_url}/api/v3/traces/{complete}?raw_traces=true"
        banner("where the evidence is")
        print(f"trace id          {complete}")
        print(f"Jaeger v3 API     {v3}")
        print(f"Jaeger v1 API     {stack.jaeger_url}/api/traces/{complete}")
        print(f"collector archive {stack.archive_dir}")
        if not wait_for_trace(v3):
            print("Jaeger did not show the trace within 30 s; see " + str(stack.log_path("collector")))
            return 1
        source = ["--jaeger", stack.jaeger_url]
    else:
        banner("where the evidence is")
        print(f"trace id          {complete}")
        print(f"embedded archive  {DEMO / 'archive'}")
    public = str(keys.with_suffix(".pub"))
    banner("the decision chain of INC-4711, reconstructed and verified")
    status = provtrace_cli("reconstruct", complete, *source, "--public-key", public)
    banner("INC-4712 (no approval): the guard refused the change, and the record shows it")
    status |= provtrace_cli("reconstruct", refused, *source, "--public-key", public)
    banner("verification of the signed evidence")
    status |= provtrace_cli("verify", complete, *source, "--public-key", public)
    archive = stack.archive_dir if stack is not None else DEMO / "archive"
    status |= provtrace_cli("verify", "--stream", "--archive", str(archive), "--public-key", public)
    if stack is not None:
        print("\nThe stack keeps running for you to query; `make stack-down` stops it.")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
