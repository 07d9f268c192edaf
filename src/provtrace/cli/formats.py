"""Output formats shared by the commands: text, markdown, json, html."""

from __future__ import annotations

import argparse
import datetime as _dt
import html
from typing import Any

from provtrace.report.basics import short, timestamp
from provtrace.report.jsonout import dumps

FORMATS = ("text", "markdown", "json", "html")
__all__ = ["FORMATS", "add_format_argument", "as_json", "html_page", "parse_time", "short", "timestamp"]


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


def as_json(data: Any) -> str:
    return dumps(data)


def html_page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;"
        "vertical-align:top}code{font-size:.9em}.error{color:#a00}.ok{color:#070}</style></head><body>"
        f"{body}</body></html>\n"
    )
