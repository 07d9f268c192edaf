"""The clock evidence is stamped with."""

from __future__ import annotations

import time


def now_ns() -> int:
    """Wall-clock time in whole microseconds: the precision every Jaeger API returns, so a time
    recorded here reads back unchanged (see ``records.to_micros``)."""
    ns = time.time_ns()
    return ns - ns % 1000
