"""The reconstruction report in every format: text (rich), markdown, json (documented by
docs/reconstruct.schema.json) and a self-contained html page with the causal graph."""

from __future__ import annotations

from provtrace.reconstruct import DecisionChain
from provtrace.report.options import RenderOptions
from provtrace.report.verdicts import Verdicts

__all__ = ["RenderOptions", "Verdicts", "render"]


def render(chain: DecisionChain, fmt: str, verdicts: Verdicts, options: RenderOptions | None = None) -> str:
    options = options or RenderOptions()
    if fmt == "json":
        from provtrace.report import jsonout

        return jsonout.render(chain, verdicts, options)
    if fmt == "html":
        from provtrace.report import html

        return html.render(chain, verdicts, options)
    if fmt == "markdown":
        from provtrace.report import markdown

        return markdown.render(chain, verdicts, options)
    from provtrace.report import text

    return text.render(chain, verdicts, options)
