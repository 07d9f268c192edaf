"""Ed25519 signature checks in bulk, on a second core when asked.

cryptography holds the interpreter lock while it verifies, so threads do not help. With
``parallel=True`` (the CLI's ``verify --stream``) a child process is forked before the archive is
read; each check is streamed to it as soon as its seal is decoded, so signatures are verified on
one core while the other recomputes span digests, and at the end the child answers which failed.
Any problem with the child (no fork on this platform, a crash, a garbled or late answer) means
the checks run here instead: the verdict never depends on how it was computed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import pickle
import select
import struct
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BATCH = 64
CHILD_TIMEOUT_S = 300.0

Job = tuple[bytes, str, str]  # message, base64 signature, key id


def valid(message: bytes, signature_b64: str, key: Ed25519PublicKey | None) -> bool:
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


class SignatureChecks:
    """Signature checks gathered while verifying, each with what to do when it fails."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], *, parallel: bool = False) -> None:
        self._keys = keys
        self._jobs: list[Job] = []
        self._on_failure: list[Callable[[], None]] = []
        self._unsent: list[Job] = []
        self._child: tuple[int, int, int] | None = None  # pid, job pipe, answer pipe
        if parallel and hasattr(os, "fork") and (os.cpu_count() or 1) > 1:
            self._fork()

    def add(self, message: bytes, signature_b64: str, key_id: str, on_failure: Callable[[], None]) -> None:
        job = (message, signature_b64, key_id)
        self._jobs.append(job)
        self._on_failure.append(on_failure)
        if self._child is not None:
            self._unsent.append(job)
            if len(self._unsent) >= BATCH:
                self._send()

    def finish(self) -> None:
        """Every check done; the failure callbacks of signatures that did not verify have run."""
        failed = self._answer()
        if failed is None:
            failed = [i for i, (m, s, k) in enumerate(self._jobs) if not valid(m, s, self._keys.get(k))]
        for index in failed:
            self._on_failure[index]()
        self._jobs, self._on_failure = [], []

    # --- the child --------------------------------------------------------------------------

    def _fork(self) -> None:
        try:
            jobs_read, jobs_write = os.pipe()
            answer_read, answer_write = os.pipe()
            pid = os.fork()
        except OSError:
            return
        if pid == 0:
            os.close(jobs_write)
            os.close(answer_read)
            try:
                self._serve(jobs_read, answer_write)
            finally:
                os._exit(0)  # leave without running the parent's cleanup
        os.close(jobs_read)
        os.close(answer_write)
        self._child = (pid, jobs_write, answer_read)

    def _serve(self, jobs: int, answer: int) -> None:
        failed, index, buffer = [], 0, b""
        while True:
            chunk = os.read(jobs, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            while len(buffer) >= 4:
                (size,) = struct.unpack(">I", buffer[:4])
                if len(buffer) < 4 + size:
                    break
                batch, buffer = pickle.loads(buffer[4 : 4 + size]), buffer[4 + size :]  # noqa: S301
                for message, signature, key_id in batch:
                    if not valid(message, signature, self._keys.get(key_id)):
                        failed.append(index)
                    index += 1
        view = memoryview(pickle.dumps((index, failed)))
        while view:
            view = view[os.write(answer, view) :]

    def _send(self) -> None:
        assert self._child is not None
        data = pickle.dumps(self._unsent)
        self._unsent = []
        view = memoryview(struct.pack(">I", len(data)) + data)
        try:
            while view:
                view = view[os.write(self._child[1], view) :]
        except OSError:
            self._abandon()

    def _abandon(self) -> None:
        if self._child is not None:
            pid, jobs, answer = self._child
            self._child = None
            for fd in (jobs, answer):
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
                os.waitpid(pid, 0)

    def _answer(self) -> list[int] | None:
        """The child's failed indices, or None if it let us down (then we check here)."""
        if self._unsent and self._child is not None:
            self._send()  # may give up on the child
        child = self._child
        if child is None:
            return None
        pid, jobs, answer = child
        self._child = None
        os.close(jobs)
        chunks = []
        try:
            while True:
                ready, _, _ = select.select([answer], [], [], CHILD_TIMEOUT_S)
                if not ready:
                    os.kill(pid, 9)
                    return None
                chunk = os.read(answer, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(answer)
            os.waitpid(pid, 0)
        try:
            checked, failed = pickle.loads(b"".join(chunks))  # noqa: S301 - our own child's answer
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError):
            return None
        if checked != len(self._jobs) or not all(isinstance(i, int) and 0 <= i < checked for i in failed):
            return None
        return list(failed)
