"""Output formats shared by the commands: text, markdown, json, html."""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import json
from collections.abc import Mapping
from typing import Any

FORMATS = ("text", "markdown", "json", "html")


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")


def parse_time(text: str) -> int:
    """An ISO 8601 time (UTC unless it says otherwise) as Unix nanoseconds, for argparse."""
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return int(moment.timestamp() * 1_000_000) * 1000


def timestamp(ns: int) -> str:
    moment = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def short(digest: object) -> str:
    text = str(digest)
    return text[:12] + "…" if len(text) > 16 else text


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=_jsonable)


def _jsonable(value: object) -> object:
    """Attribute values JSON has no type for: a kvlist as an object, bytes as base64 text."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def html_page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;"
        "vertical-align:top}code{font-size:.9em}.error{color:#a00}.ok{color:#070}</style></head><body>"
        f"{body}</body></html>\n"
    )
