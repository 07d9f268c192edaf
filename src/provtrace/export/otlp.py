"""Delivery to an OpenTelemetry Collector over OTLP/HTTP: the spooled OTLP/JSON, sent as it is.

OTLP/HTTP accepts ``Content-Type: application/json``; the bodies are the spooled bytes, spliced
(:mod:`provtrace.export.otlp_body`), gzipped when large. Each answer is judged so that nothing
counts as delivered unless the collector said so. Standard library only: no protobuf, no requests.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import http.client
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from provtrace.__about__ import __version__
from provtrace.errors import ConfigurationError
from provtrace.export.otlp_body import request_bodies
from provtrace.export.sink import PermanentSinkError, SinkAuthError, SinkError

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # uncompressed; well under the collector's default 20 MiB
GZIP_ABOVE_BYTES = 8 * 1024
GZIP_LEVEL = 1  # JSON shrinks about fivefold even so, at half the CPU of level 6
MAX_ANSWER_BYTES = 64 * 1024  # an ExportTraceServiceResponse or a google.rpc.Status is small
RETRYABLE_STATUS = frozenset({408, 429})  # and every 5xx
AUTH_STATUS = frozenset({401, 403})  # provtrace's credentials refused, not the batch
EMPTY_REQUEST = b'{"resourceSpans":[]}'
# Refusals of the endpoint, not of the request: every segment would get the same answer, so they
# are retried (and reported) rather than moving each segment aside as refused.
ENDPOINT_STATUS = frozenset({404, 405, 407})

_MANAGED_HEADERS = frozenset({"content-type", "content-encoding", "content-length", "host"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Header names whose values are credentials: never sent in clear beyond this host.
_CREDENTIAL_HEADER = re.compile(r"authorization|token|key|secret|password|cookie|credential", re.IGNORECASE)
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def displayed(endpoint: str) -> str:
    """The endpoint as messages show it: without any user:password part."""
    url = urlsplit(endpoint)
    return f"{url.scheme}://{url.netloc.rpartition('@')[2]}{url.path}" if url.netloc else "(not a URL)"


# --- answers -----------------------------------------------------------------------------------


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP ``Retry-After`` (delay in seconds or an HTTP date) as seconds from now."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo else None


def judge(status: int, retry_after: str | None, answer: bytes, where: str) -> None:
    """Raise unless the collector's answer says every span was accepted."""
    if 200 <= status < 300:
        _check_partial_success(answer, where)
        return
    detail = _message(answer)
    message = f"the collector at {where} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in RETRYABLE_STATUS or 500 <= status < 600:
        raise SinkError(message, retry_after_s=retry_after_seconds(retry_after))
    if status in AUTH_STATUS:
        raise SinkAuthError(
            message + " (the collector refused provtrace's credentials: check the Authorization "
            "header in headers= or OTEL_EXPORTER_OTLP_HEADERS; the segments stay in the spool)"
        )
    if status in ENDPOINT_STATUS:
        raise SinkError(message + " (the endpoint refuses every request)")
    raise PermanentSinkError(message + " (retrying the same request will not help)")


def _check_partial_success(answer: bytes, where: str) -> None:
    """An OTLP ``partial_success`` with rejected spans is a failure: evidence the collector
    dropped was not delivered. An answer that cannot be read cannot confirm delivery either."""
    if not answer.strip():
        return
    try:
        data = json.loads(answer)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SinkError(
            f"{where} answered 2xx with a body that is not an OTLP/JSON ExportTraceServiceResponse; "
            "delivery cannot be confirmed (is the endpoint an OTLP/HTTP traces receiver?)"
        )
    partial = data.get("partialSuccess", data.get("partial_success"))
    if not isinstance(partial, dict):
        return
    count: Any = partial.get("rejectedSpans", partial.get("rejected_spans", 0))
    try:
        rejected = int(count)
    except (TypeError, ValueError):
        rejected = -1
    if rejected != 0:
        text = _clean(str(partial.get("errorMessage", partial.get("error_message", ""))))
        shown = str(rejected) if rejected > 0 else "an unreadable number of"
        raise PermanentSinkError(
            f"the collector at {where} rejected {shown} span(s): {text or 'no reason given'}"
        )


def _message(answer: bytes) -> str:
    """The message of a ``google.rpc.Status`` answer, or the start of whatever was sent."""
    try:
        data = json.loads(answer)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return _clean(data["message"])
    return _clean(answer.decode("utf-8", "replace"))


def _clean(text: str, limit: int = 200) -> str:
    """One printable line of bounded length: a collector's words go into provtrace's logs."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return flat if len(flat) <= limit else flat[:limit] + "..."


# --- transport ---------------------------------------------------------------------------------


class _Watchdog:
    """Shuts the socket of an exchange that outlives its total time, or of one in flight when
    the sink closes: a socket timeout bounds each read, not a server that answers a byte at a
    time. One thread per sink, started by the first request; it sleeps until the deadline of the
    exchange in flight and is not woken per request while requests follow each other."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watched: http.client.HTTPConnection | None = None
        self._deadline = 0.0
        self._cut = False
        self._idle = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    def watch(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        with self._cond:
            self._watched, self._deadline, self._cut = connection, time.monotonic() + seconds, False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="provtrace-otlp-watchdog", daemon=True)
                self._thread.start()
            elif self._idle:
                self._cond.notify()

    @property
    def cut(self) -> bool:
        return self._cut

    def release(self) -> bool:
        """End the watch; True when the exchange was cut off."""
        with self._cond:
            self._watched = None
            return self._cut

    def stop(self) -> bool:
        """Cut the exchange in flight, if any (True then) and end the thread."""
        with self._cond:
            self._stopped = True
            watched = self._watched is not None
            self._cut_locked()
            self._cond.notify()
            return watched

    def _cut_locked(self) -> None:
        if self._watched is None:
            return
        self._cut = True
        sock = self._watched.sock
        self._watched = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._watched is None:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                else:
                    self._cut_locked()


class _EncryptedKey(Exception):
    """Raised in place of OpenSSL's passphrase prompt (which would block on the terminal)."""


def _no_passphrase() -> bytes:
    raise _EncryptedKey


def tls_context(
    certificate_file: str | None = None,
    client_certificate_file: str | None = None,
    client_key_file: str | None = None,
) -> ssl.SSLContext:
    """The client side of TLS to the collector: the system's trust store, or only the CA in
    ``certificate_file`` (a private CA); a client certificate and key for mutual TLS. Hostnames
    are always checked. Unreadable or invalid files are a :class:`ConfigurationError` now, not a
    delivery failure later."""
    if client_key_file and not client_certificate_file:
        raise ConfigurationError("an OTLP client key is set without a client certificate")
    try:
        context = ssl.create_default_context(cafile=certificate_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"the OTLP CA certificate {certificate_file} cannot be used: {exc}") from exc
    if client_certificate_file:
        try:
            context.load_cert_chain(client_certificate_file, client_key_file or None, password=_no_passphrase)
        except _EncryptedKey as exc:
            raise ConfigurationError(
                f"the OTLP client key {client_key_file or client_certificate_file} is encrypted: "
                "provtrace cannot ask for a passphrase; give it an unencrypted key (owner-only)"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"the OTLP client certificate {client_certificate_file} (key "
                f"{client_key_file or 'in the same file'}) cannot be used: {exc}"
            ) from exc
    return context


def _transport_error(exc: BaseException, where: str) -> SinkError:
    """A failed exchange as a sink error: a TLS handshake that fails on trust or identity is a
    configuration error (every batch fails the same way); a dropped connection is not."""
    name = type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SinkAuthError(
            f"cannot deliver to {where}: the collector's TLS certificate is not trusted "
            f"({exc.verify_message}); set certificate_file= or OTEL_EXPORTER_OTLP_CERTIFICATE to "
            "the CA that issued it; the segments stay in the spool"
        )
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        reason = str(exc.reason or name)
        hint = (
            "the collector wants a client certificate it accepts (client_certificate_file= or "
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)"
            if "CERTIFICATE" in reason.upper() or "UNKNOWN_CA" in reason.upper()
            else "check that the endpoint speaks TLS and accepts provtrace's TLS settings"
        )
        return SinkAuthError(
            f"cannot deliver to {where}: TLS failed ({reason}): {hint}; the segments stay in the spool"
        )
    return SinkError(f"cannot deliver to {where}: {name}: {exc}")


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The configured headers, refused here rather than on the wire. Values are never quoted in
    a message: they are usually credentials."""
    checked: dict[str, str] = {}
    for position, (name, value) in enumerate(headers.items(), start=1):
        if not _TOKEN.fullmatch(name):
            raise ConfigurationError(
                f"OTLP header {position} has a name that is not a valid HTTP header name (not shown: "
                "a misplaced separator can put a credential in it); write name=value"
            )
        if name.lower() in _MANAGED_HEADERS:
            raise ConfigurationError(f"OTLP header {name} is set by provtrace; remove it from the headers")
        if any(ch in value for ch in "\r\n\0") or not value.isascii():
            raise ConfigurationError(
                f"the value of OTLP header {name} holds a line break, NUL or non-ASCII character"
            )
        checked[name] = value
    return checked


class OtlpSink:
    """POSTs spooled segments to an OTLP/HTTP traces endpoint over one kept-alive connection.

    ``timeout_s`` bounds each request in total (connect, send, answer). ``ssl_context`` is used
    for https (default: the system's trust store, hostname checked; see :func:`tls_context`).
    Header values (a bearer token) go on the wire only, never into a message or a log.
    """

    name = "otlp"

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        gzip_above_bytes: int = GZIP_ABOVE_BYTES,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urlsplit(endpoint)
        try:
            port = url.port
        except ValueError as exc:
            raise ConfigurationError(f"the OTLP endpoint has an invalid port: {exc}") from exc
        if url.scheme not in ("http", "https") or not url.hostname or not endpoint.isascii():
            raise ConfigurationError(
                "the OTLP endpoint must be an http:// or https:// URL (ASCII, percent-encoded), "
                f"got {displayed(endpoint)!r}"
            )
        try:
            url.hostname.encode("idna")
        except UnicodeError as exc:
            raise ConfigurationError(
                f"the OTLP endpoint's host name has an empty or over-long label: {displayed(endpoint)}"
            ) from exc
        if url.scheme == "http" and url.hostname not in _LOOPBACK:
            secret = [name for name in (headers or {}) if _CREDENTIAL_HEADER.search(name)]
            if secret:
                raise ConfigurationError(
                    f"OTLP header {secret[0]} would travel in clear to {displayed(endpoint)}: use https://"
                )
        self.endpoint = endpoint
        self._where = displayed(endpoint)
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._headers = {
            **_checked_headers(headers or {}),
            "User-Agent": f"provtrace/{__version__}",
            "Content-Type": "application/json",
        }
        self._timeout_s = timeout_s
        self._max_request_bytes = max_request_bytes
        self._gzip_above_bytes = gzip_above_bytes
        self._tls: tuple[str, int, ssl.SSLContext] | None = None
        if url.scheme == "https":
            context = ssl_context or ssl.create_default_context()
            self._tls = (url.hostname, port or 443, context)
            self._connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                url.hostname, port, timeout=timeout_s, context=context
            )
        else:
            self._connection = http.client.HTTPConnection(url.hostname, port, timeout=timeout_s)
        self._lock = threading.Lock()
        self._closed = False
        self._watchdog = _Watchdog()

    def send(self, lines: Sequence[str]) -> None:
        """Deliver in requests the collector accepts; a huge segment is split across requests
        (its seal still covers every span). A failure fails the whole batch, which is then
        retried: delivery is at least once."""
        for body in request_bodies(lines, self._max_request_bytes):
            self._post(body)

    def probe(self) -> None:
        """POST an empty request: raises as a delivery would (unreachable, TLS not trusted,
        credentials refused, not an OTLP receiver); used by ``provtrace doctor``."""
        self._post(EMPTY_REQUEST)

    def _post(self, body: bytes) -> None:
        headers = dict(self._headers)
        if len(body) > self._gzip_above_bytes:
            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
        status, retry_after, answer = self._exchange(body, headers)
        judge(status, retry_after, answer, self._where)

    def _exchange(
        self, body: bytes, headers: Mapping[str, str], *, may_repeat: bool = True
    ) -> tuple[int, str | None, bytes]:
        """One request and its answer. A kept-alive connection the collector has since closed
        fails before any answer; such a request is repeated once on a fresh connection."""
        connection = self._connection
        reused = connection.sock is not None
        with self._lock:
            if self._closed:
                raise SinkError(f"the OTLP sink for {self._where} is closed")
            self._watchdog.watch(connection, self._timeout_s)
        try:
            if connection.sock is None:
                connection.connect()
            if self._watchdog.cut:
                raise TimeoutError
            connection.request("POST", self._path, body=body, headers=dict(headers))
            response = connection.getresponse()
            answer = response.read(MAX_ANSWER_BYTES)
            complete = response.isclosed()
        except (OSError, http.client.HTTPException) as exc:
            interrupted = self._watchdog.release()
            connection.close()
            if interrupted:
                raise self._interrupted() from exc
            stale = isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected))
            if reused and stale and may_repeat:
                return self._exchange(body, headers, may_repeat=False)
            refusal = None if reused else self._tls_refusal(exc)
            raise _transport_error(refusal or exc, self._where) from exc
        if self._watchdog.release():
            # What was read may have been cut short by the shutdown itself: nothing is confirmed.
            connection.close()
            raise self._interrupted()
        if not complete:
            connection.close()  # an answer left unread: the connection cannot be reused
        return response.status, response.getheader("Retry-After"), answer

    def _tls_refusal(self, failure: BaseException) -> ssl.SSLError | None:
        """Why a fresh TLS connection was closed without an answer, when the collector says so.

        With TLS 1.3 the collector judges the client certificate after the handshake; its alert
        ("certificate required", "unknown CA") then races the request already sent, and usually
        loses to the connection reset. A second handshake that sends nothing reads the alert
        (bounded wait); a collector that accepts the client just waits, and the first failure
        stands."""
        if self._tls is None or not isinstance(failure, (ssl.SSLEOFError, ConnectionResetError)):
            return None
        host, port, context = self._tls
        wait_s = min(2.0, self._timeout_s)
        try:
            with socket.create_connection((host, port), timeout=wait_s) as raw:
                with context.wrap_socket(raw, server_hostname=host) as tls:
                    tls.recv(1)
        except ssl.SSLError as exc:
            return None if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) else exc
        except OSError:
            return None
        return None

    def _interrupted(self) -> SinkError:
        if self._closed:
            return SinkError(f"the OTLP sink for {self._where} was closed during a request")
        return SinkError(f"{self._where} did not answer within {self._timeout_s:g}s")

    def close(self) -> None:
        """Interrupt a request in flight (shutdown must not wait for a hung collector) and close."""
        with self._lock:
            self._closed = True
            interrupted = self._watchdog.stop()
        if not interrupted:
            self._connection.close()


def otlp_sink(
    endpoint: str,
    headers: Mapping[str, str],
    tls_files: tuple[Path | None, Path | None, Path | None] = (None, None, None),
) -> OtlpSink:
    """The sink of configure()'s settings: for https, a TLS context of the configured CA and
    client certificate (:func:`tls_context`)."""
    context = None
    if endpoint.startswith("https://"):
        context = tls_context(*(str(path) if path else None for path in tls_files))
    return OtlpSink(endpoint, headers=headers, ssl_context=context)
