"""HTTP URLs from the user or the environment, and bounded GET requests to them.

A URL is checked before use, so a typo is a one-line error rather than an exception from deep in
the standard library. A request has a total deadline (a server that drips one byte at a time is cut
off, where a socket timeout would wait per read) and a size cap on the body, read incrementally.
Proxies from the environment are not used: the readers talk to a query service directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping

from provtrace.errors import InputError

DEFAULT_DEADLINE_S = 30.0
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable http(s) URL, or None when it is."""
    if not url.isprintable() or any(ch.isspace() for ch in url):
        return "it contains spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # e.g. "Invalid IPv6 URL", "Port could not be cast to integer value"
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "it is not an http:// or https:// URL"
    if not parts.hostname:
        return "it names no host"
    if port == 0:
        return "port 0 cannot be connected to"
    return None


class FetchError(InputError):
    """A request could not be completed: unreachable, too slow, too large or cut off."""


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def get(
    url: str,
    *,
    what: str,
    deadline_s: float = DEFAULT_DEADLINE_S,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
    headers: Mapping[str, str] | None = None,
    read_body: bool = True,
) -> Reply:
    """GET ``url`` (checked with ``url_problem`` first) within ``deadline_s`` in total, reading at
    most ``max_bytes`` of body. ``what`` names the server in messages ("Jaeger at ...")."""
    problem = url_problem(url)
    if problem:
        raise FetchError(f"{url!r} is not a usable URL for {what}: {problem}")
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=deadline_s, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=deadline_s)
    expired = threading.Event()
    # The connected socket, kept here: a response that closes the connection takes the socket
    # over, and the connection then no longer refers to it.
    sockets: list[socket.socket] = []

    def cut_off() -> None:
        expired.set()  # first: a connect still running sees it when it returns
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline_s, cut_off)
    timer.daemon = True
    timer.start()
    try:
        connection.request("GET", target, headers=dict(headers or {}))
        if connection.sock is not None:
            sockets.append(connection.sock)
        if expired.is_set():
            raise TimeoutError
        response = connection.getresponse()
        body = _read_body(response, what, max_bytes) if read_body else b""
        if expired.is_set():
            raise TimeoutError
        return Reply(response.status, body)
    except FetchError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise FetchError(f"{what} did not answer within {deadline_s:g} s") from exc
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise FetchError(f"cannot reach {what}: {reason}") from exc
    finally:
        timer.cancel()
        connection.close()


def _read_body(response: http.client.HTTPResponse, what: str, max_bytes: int) -> bytes:
    too_large = f"{what} sent more than {max_bytes} bytes; refusing to read it all"
    declared = response.getheader("Content-Length") or ""
    if declared.isascii() and declared.isdigit() and (len(declared) > 19 or int(declared) > max_bytes):
        raise FetchError(too_large)
    body = bytearray()
    while True:
        chunk = response.read1(_CHUNK_BYTES)
        if not chunk:
            break
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(too_large)
    if response.length:  # fewer bytes than Content-Length announced
        raise http.client.IncompleteRead(bytes(body), response.length)
    return bytes(body)
