"""Trusted time: RFC 3161 time-stamp tokens over signed checkpoints.

A token from a time-stamping authority proves the checkpoint note it covers existed at the TSA's
``genTime``, by the TSA's clock and key, whatever the agent's clock said. The agent asks for one
per checkpoint (``request_timestamp``: SHA-256 imprint, a nonce, the TSA certificate included);
``check_timestamp`` verifies a stored token against the TSA roots an investigator trusts: PKI
status, the signature and certificate chain (valid at ``genTime``), the time-stamping key usage,
and the message imprint, using ``rfc3161-client``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from provtrace.errors import InputError, ProvtraceError

MAX_REPLY_BYTES = 256 * 1024


class TimestampError(ProvtraceError):
    """A time-stamp could not be obtained, or a token does not verify."""


@dataclasses.dataclass(frozen=True)
class Stamp:
    """What a verified token says: when, by whom, under which serial number."""

    gen_time_ns: int
    accuracy_ns: int
    tsa: str
    serial: int


def request_timestamp(url: str, message: bytes, *, timeout_s: float = 10.0) -> bytes:
    """A DER TimeStampResp for ``message`` from the TSA at ``url`` (HTTP POST, RFC 3161 §3.4),
    checked for status, imprint and nonce before it is kept."""
    if not url.startswith(("http://", "https://")):
        raise TimestampError(f"the TSA URL must be http:// or https://, got {url!r}")
    request = (
        TimestampRequestBuilder()
        .data(message)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    post = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=request.as_bytes(),
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(post, timeout=timeout_s) as reply:  # noqa: S310
            body = reply.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampError(f"the TSA answered HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise TimestampError(f"the TSA could not be reached: {type(exc).__name__}") from None
    if len(body) > MAX_REPLY_BYTES:
        raise TimestampError("the TSA reply is larger than 256 KiB")
    try:
        response = decode_timestamp_response(body)
    except ValueError as exc:
        raise TimestampError(f"the TSA reply is not a time-stamp response: {exc}") from None
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"the TSA refused the request (status {response.status})")
    if response.tst_info.message_imprint.message != hashlib.sha256(message).digest():
        raise TimestampError("the TSA stamped a different message")
    if response.tst_info.nonce != request.nonce:
        raise TimestampError("the TSA reply does not echo our nonce (a replayed reply?)")
    return bytes(body)


def check_timestamp(token: bytes, message: bytes, roots: Sequence[x509.Certificate]) -> Stamp:
    """The verified content of a stored token over ``message``, or :class:`TimestampError`."""
    if not roots:
        raise TimestampError("no trusted TSA certificate was given")
    try:
        response = decode_timestamp_response(token)
    except ValueError as exc:
        raise TimestampError(f"not a time-stamp response: {exc}") from None
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify_message(response, message)
    except (VerificationError, ValueError) as exc:
        raise TimestampError(f"the time-stamp does not verify: {exc}") from None
    info = response.tst_info
    accuracy = info.accuracy
    accuracy_ns = 0
    if accuracy is not None:
        accuracy_ns = (accuracy.seconds or 0) * 10**9
        accuracy_ns += (accuracy.millis or 0) * 10**6 + (accuracy.micros or 0) * 10**3
    signer = next(iter(response.signed_data.signer_infos), None)
    return Stamp(
        gen_time_ns=int(info.gen_time.timestamp() * 1_000_000) * 1000,
        accuracy_ns=accuracy_ns,
        tsa=signer.issuer.rfc4514_string() if signer is not None else "",
        serial=info.serial_number,
    )


def load_tsa_roots(paths: Sequence[str | os.PathLike[str]]) -> list[x509.Certificate]:
    """Trusted TSA root certificates from PEM files (each may hold several)."""
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read TSA certificate {path}: {exc.strerror}") from None
        try:
            roots.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            raise InputError(f"{path} is not a PEM certificate") from None
    return roots
