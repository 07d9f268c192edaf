"""A real RFC 3161 time-stamping authority on loopback: OpenSSL's ``openssl ts -reply`` behind a
small stdlib HTTP server, with a CA and a TSA certificate made by ``openssl`` for the session."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")

TSA_CONFIG = """\
[ tsa ]
default_tsa = provtrace_test_tsa

[ provtrace_test_tsa ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
"""


@dataclasses.dataclass
class Tsa:
    url: str
    root_cert: Path  # what an investigator trusts (--tsa-cert)
    directory: Path
    requests: int = 0


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_authority(directory: Path) -> None:
    """A root CA and a TSA certificate it issued (critical id-kp-timeStamping, RFC 3161 2.3)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=provtrace test TSA root",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
             "-subj", "/CN=provtrace test TSA", cwd=directory)  # fmt: skip
    (directory / "tsa.ext").write_text(EXTENSIONS)
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tsa.crt", "-days", "2", "-extfile", "tsa.ext", cwd=directory)  # fmt: skip
    (directory / "serial").write_text("01\n")
    (directory / "tsa.cnf").write_text(TSA_CONFIG.format(dir=directory))


@pytest.fixture(scope="session")
def tsa() -> Iterator[Tsa]:
    if OPENSSL is None:
        pytest.fail("the openssl command is needed for the TSA tests (Debian package openssl)")
    directory = Path(tempfile.mkdtemp(prefix="provtrace-tsa-"))
    make_authority(directory)
    lock = threading.Lock()
    authority = Tsa("", directory / "ca.crt", directory)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            query = self.rfile.read(min(length, 1 << 20))
            with lock:  # openssl updates its serial file: one reply at a time
                authority.requests += 1
                (directory / "query.tsq").write_bytes(query)
                result = subprocess.run(
                    [OPENSSL, "ts", "-reply", "-config", str(directory / "tsa.cnf"), "-queryfile",
                     str(directory / "query.tsq"), "-out", str(directory / "reply.tsr")],
                    capture_output=True, timeout=30, check=False,
                )  # fmt: skip
                reply = (directory / "reply.tsr").read_bytes() if result.returncode == 0 else b""
            self.send_response(200 if reply else 400)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    authority.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
    thread = threading.Thread(target=server.serve_forever, name="test-tsa", daemon=True)
    thread.start()
    try:
        yield authority
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
