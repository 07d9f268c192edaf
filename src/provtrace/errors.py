"""Exception types provtrace raises; each message says what to do about it."""

from __future__ import annotations

from collections.abc import Sequence


class ProvtraceError(Exception):
    """Base class of every error provtrace raises on purpose."""


class ConfigurationError(ProvtraceError, ValueError):
    """An argument or environment variable given to ``configure()`` is invalid."""


class KeyFileError(ProvtraceError, ValueError):
    """A key file is missing, unreadable or not an Ed25519 key."""


class InputError(ProvtraceError, ValueError):
    """Evidence given to a reader or the CLI cannot be read (bad file, bad trace id, bad reply)."""


class ProvenanceViolation(ProvtraceError):
    """The action guard refused to run an action: the evidence it requires is missing.

    Raised before the guarded code runs. ``codes`` holds the completeness rule codes that name
    what is missing (``LINK-AUTHZ``, ``LINK-APPROVAL``, ``APPROVAL-BINDING``, ``SOD``, or
    ``PIPELINE`` when evidence cannot be persisted).
    """

    def __init__(self, message: str, codes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.codes = tuple(codes)


class SigningError(ProvtraceError):
    """A seal could not be signed (the key service refused or could not be reached)."""
