"""The two verdicts at the top of every report: is the evidence complete, and is it intact."""

from __future__ import annotations

import dataclasses

from provtrace import conventions as c
from provtrace.reconstruct import DecisionChain
from provtrace.report.basics import printable
from provtrace.verify import ERROR, INFO, Finding, Report

NOT_CHECKED = "NOT CHECKED"


@dataclasses.dataclass(frozen=True)
class Verdicts:
    """``integrity`` is the verdict of ``provtrace verify`` (VERIFIED, NOT VERIFIED, FAILED) or
    NOT CHECKED when the check was skipped; ``source`` names where the evidence was read."""

    completeness: str
    integrity: str
    report: Report | None
    source: str
    unchecked_because: str = "the integrity check was skipped (--no-verify)"

    @classmethod
    def of(
        cls, chain: DecisionChain, report: Report | None, integrity: str, source: str, **why: str
    ) -> Verdicts:
        return cls(
            chain.completeness, integrity if report is not None else NOT_CHECKED, report, source, **why
        )

    @property
    def ok(self) -> bool:
        return self.completeness == c.COMPLETENESS_COMPLETE and self.report is not None and self.report.ok

    @property
    def complete(self) -> bool:
        return self.completeness == c.COMPLETENESS_COMPLETE

    @property
    def intact(self) -> bool:
        return self.report is not None and self.report.ok

    @property
    def findings(self) -> list[Finding]:
        """Errors and warnings (the informational notes are in the json output only)."""
        return [f for f in self.report.findings if f.severity != INFO] if self.report else []

    def integrity_detail(self) -> str:
        if self.report is None:
            return f"{self.unchecked_because}: the chain below is unproven"
        counts = f"{self.report.spans_checked} span(s), {self.report.seals_checked} seal(s)"
        problems = [f for f in self.report.findings if f.severity == ERROR]
        if not problems:
            return f"{counts}, signatures checked against a trusted key"
        kinds = list(dict.fromkeys(f.kind for f in problems))
        return f"{counts}: " + ", ".join(kinds)

    def finding_lines(self) -> list[tuple[str, bool]]:
        """One line per error or warning, with whether it is an error."""
        out = []
        for finding in self.findings:
            named = finding.span_id and finding.span_id not in finding.message
            where = f" (span {finding.span_id})" if named else ""
            out.append(
                (
                    f"{finding.severity.upper()} {finding.kind}: {printable(finding.message)}{where}",
                    finding.severity == ERROR,
                )
            )
        return out

    def marks(self, span_ids: tuple[str, ...]) -> list[str]:
        """The integrity finding kinds that name one of these spans (to flag the step)."""
        if self.report is None:
            return []
        return list(
            dict.fromkeys(
                f.kind for f in self.report.findings if f.severity == ERROR and f.span_id in span_ids
            )
        )
