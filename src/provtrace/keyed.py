"""Keyed digests for content that held a secret, so that a digest never reveals one.

A plain SHA-256 of content that contains a low-entropy secret (a 4-digit PIN, a dictionary word)
gives the secret back to anyone who tries every candidate. When content that provtrace digests
contains a value a ``secret_fetch`` returned, its digest is HMAC-SHA256 under the evidence
owner's digest key instead, and the span lists that attribute in ``provenance.content.keyed``
with the key's id in ``provenance.content.key_id``. An investigator who holds the original content
and the key proves it with ``provtrace digest FILE --digest-key KEY``; without the key the digest
tells nothing.

The key is a file of 32 random bytes (hex), created owner-only on first use; it never leaves the
process in any record.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import Final

from provtrace.errors import KeyFileError

logger = logging.getLogger("provtrace")

KEY_BYTES: Final = 32


def key_id_of(key: bytes) -> str:
    return "hmac-sha256:" + hashlib.sha256(b"provtrace digest key id\x00" + key).hexdigest()[:16]


def load_digest_key(path: str | os.PathLike[str], *, create: bool = False) -> bytes:
    """The key in ``path`` (hex); with ``create``, a new one is written there (0600) if absent."""
    target = Path(path)
    if create and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(target, flags, stat.S_IRUSR | stat.S_IWUSR)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            try:
                os.write(fd, secrets.token_hex(KEY_BYTES).encode("ascii") + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            logger.info("provtrace created the digest key %s (keep it: it proves keyed digests)", target)
    try:
        text = target.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except OSError as exc:
        raise KeyFileError(f"cannot read digest key {target}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeyFileError(f"{target} is not a digest key (hex of {KEY_BYTES} random bytes)") from exc
    if len(key) < 16:
        raise KeyFileError(f"{target} holds {len(key)} bytes; a digest key needs at least 16")
    return key


class DigestKey:
    """The process's digest key: the configured one, or until configure() a random one that no
    one holds (digests of secret-bearing content are then unprovable, never revealing)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(KEY_BYTES)
        self.key_id = key_id_of(self._key)

    def use(self, key: bytes) -> None:
        with self._lock:
            self._key = key
            self.key_id = key_id_of(key)

    def hexdigest(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def hasher(self) -> hmac.HMAC:
        return hmac.new(self._key, digestmod=hashlib.sha256)


DIGEST_KEY: Final = DigestKey()
