"""Small formatting rules every report format shares: safe text, times, short digests."""

from __future__ import annotations

import datetime as _dt


def printable(text: str) -> str:
    """``text`` on one line without control characters (shown escaped, ``\\x1b``): evidence may
    hold terminal control sequences or line breaks meant to forge a line of the report."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)


def timestamp(ns: int) -> str:
    try:
        moment = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns"
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def offset(ns: int, origin: int) -> str:
    """Time since the decision started, e.g. ``+0.168s``."""
    return f"+{max(0, ns - origin) / 1e9:.3f}s"


def short(digest: object) -> str:
    text = printable(str(digest))
    return text[:12] + "…" if len(text) > 16 else text
