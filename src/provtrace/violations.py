"""The default violation handler: one line per incomplete segment on provtrace's own logger.

Rate-limited, so that a burst of incomplete evidence (an uninstrumented caller hammering a
server, say) cannot flood the host application's logs: beyond the burst, reports are counted
and summarised once the window ends. Reports carry ids and codes only, never content.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from provtrace.sealing import ViolationReport

logger = logging.getLogger("provtrace.violations")

BURST: Final = 10
WINDOW_S: Final = 60.0


class ViolationLog:
    """The default handler: one ERROR line per report, at most ``BURST`` per ``WINDOW_S`` per
    configuration; what is held back is counted and summarised when the window ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window_start = -WINDOW_S
        self._logged = 0
        self._suppressed = 0

    def _admit(self, now: float) -> tuple[bool, int]:
        """Whether to log now, and how many reports were held back in the window that ended."""
        with self._lock:
            ended = 0
            if now - self._window_start >= WINDOW_S:
                ended, self._suppressed = self._suppressed, 0
                self._window_start, self._logged = now, 0
            if self._logged < BURST:
                self._logged += 1
                return True, ended
            self._suppressed += 1
            return False, ended

    def __call__(self, report: ViolationReport) -> None:
        admitted, suppressed = self._admit(time.monotonic())
        if suppressed:
            logger.error("provtrace: %d more incomplete segment(s) were not logged (rate limit)", suppressed)
        if not admitted:
            return
        where = f"quarantined as {report.quarantine_id}" if report.quarantine_id else "forwarded"
        logger.error(
            "provtrace: incomplete evidence in trace %s (%s): %s",
            report.trace_id,
            where,
            ", ".join(report.codes),
        )
