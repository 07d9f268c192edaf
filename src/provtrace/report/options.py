"""How a report is rendered: folded or whole, one step or all, how wide, in colour or not."""

from __future__ import annotations

import dataclasses

DEFAULT_WIDTH = 100


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    full: bool = False  # long content shown whole instead of folded
    step: int | None = None  # only this step, whole, with every recorded attribute
    width: int = DEFAULT_WIDTH
    color: bool = False
