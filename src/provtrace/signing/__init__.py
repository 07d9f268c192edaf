"""Who signs seals: a key file held by the agent, or a key service the agent can only ask.

A :class:`Signer` names the key its next signature will be made with (``current_key_id``) and
signs with exactly that key, so the key id written into a seal is always the one that signed
it, even while the service rotates keys. ``signer_from`` turns a configured value (a key object,
a PEM path, or ``transit:[MOUNT/]KEY`` for the OpenBao/Vault transit engine) into a signer.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provtrace.checkpoint import raw_public_key
from provtrace.errors import SigningError

TRANSIT_PREFIX = "transit:"


def key_id_of(public_key: Ed25519PublicKey) -> str:
    return "ed25519:" + hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


class Signer(Protocol):
    def current_key_id(self) -> str:
        """The id of the key the next :meth:`sign` should use (may refresh from the service)."""

    def public_key(self, key_id: str) -> Ed25519PublicKey:
        """The public half of a key this signer has used or will use."""

    def sign(self, message: bytes, key_id: str) -> bytes:
        """An Ed25519 signature by ``key_id``; raises :class:`SigningError` when it cannot."""


class FileSigner:
    """An Ed25519 private key in the agent's memory (loaded from a PEM file)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key()
        self._id = key_id_of(self._public)

    def current_key_id(self) -> str:
        return self._id

    def public_key(self, key_id: str) -> Ed25519PublicKey:
        if key_id != self._id:
            raise SigningError(f"this signer holds key {self._id}, not {key_id}")
        return self._public

    def sign(self, message: bytes, key_id: str) -> bytes:
        if key_id != self._id:
            raise SigningError(f"this signer holds key {self._id}, not {key_id}")
        return self._key.sign(message)


def signer_from(value: object) -> Signer | None:
    """A signer for a configured ``signing_key``: None, a :class:`Signer`, an
    ``Ed25519PrivateKey``, a PEM path, or ``transit:[MOUNT/]KEY`` (address and token from
    ``PROVTRACE_TRANSIT_ADDR``/``BAO_ADDR``/``VAULT_ADDR`` and
    ``PROVTRACE_TRANSIT_TOKEN``/``BAO_TOKEN``/``VAULT_TOKEN``)."""
    from provtrace.integrity import load_private_key

    if value is None:
        return None
    if isinstance(value, Ed25519PrivateKey):
        return FileSigner(value)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if text.startswith(TRANSIT_PREFIX):
            from provtrace.signing.transit import TransitSigner

            return TransitSigner.from_environment(text[len(TRANSIT_PREFIX) :])
        return FileSigner(load_private_key(Path(text)))
    if all(callable(getattr(value, name, None)) for name in ("current_key_id", "public_key", "sign")):
        return value  # type: ignore[return-value]
    raise SigningError(
        f"signing_key must be a PEM file, an Ed25519PrivateKey, transit:KEY or a Signer, got {value!r}"
    )
