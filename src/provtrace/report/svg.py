"""The causal graph as inline SVG: one node per step in causal order (indented by nesting under
the decision), parent edges on the left, causal links routed in lanes on the right, every edge
labelled by its type. Deterministic and self-contained (no script, no font, no fetch)."""

from __future__ import annotations

import dataclasses
import html

from provtrace import conventions as c
from provtrace.reconstruct import ChainStep, DecisionChain
from provtrace.report import words
from provtrace.report.basics import printable

ROW = 54
NODE_W = 380
NODE_H = 40
INDENT = 46
LEFT = 16
TOP = 16
LANE_W = 96
MAX_DEPTH_SHOWN = 8
_CHARS = 58  # characters of description that fit a node
LINK_COLOURS = {
    c.LINK_AUTHORIZED_BY: "#1f6f3f",
    c.LINK_APPROVED_BY: "#1d4f91",
    c.LINK_USED_SECRET: "#8a5a00",
    c.LINK_TRIGGERED_BY: "#6b2f8f",
    c.LINK_VERIFIES: "#0f6b6b",
}
OTHER_LINK = "#555555"
STEP_FILLS = {
    c.STEP_DECISION: "#eeeeee",
    c.STEP_LLM_CALL: "#f3e8fb",
    c.STEP_TOOL_CALL: "#e8f0fb",
    c.STEP_SECRET_FETCH: "#fbf3e0",
    c.STEP_POLICY_CHECK: "#e6f5ea",
    c.STEP_APPROVAL: "#e3ecf9",
    c.STEP_ACTION: "#fde8e3",
    c.STEP_VERIFICATION: "#e2f4f4",
}


@dataclasses.dataclass(frozen=True)
class _Node:
    row: int
    x: int
    step: ChainStep
    flagged: bool

    @property
    def y(self) -> int:
        return TOP + self.row * ROW

    @property
    def right(self) -> int:
        return self.x + NODE_W


@dataclasses.dataclass(frozen=True)
class _Edge:
    link_type: str
    source: int  # rows
    target: int


def _esc(text: str) -> str:
    return html.escape(printable(text), quote=True)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lanes(edges: list[_Edge]) -> list[int]:
    """A lane per edge: edges whose row ranges overlap never share one (greedy, shortest first)."""
    order = sorted(range(len(edges)), key=lambda i: (abs(edges[i].source - edges[i].target), i))
    taken: list[list[tuple[int, int]]] = []
    lanes = [0] * len(edges)
    for i in order:
        low, high = sorted((edges[i].source, edges[i].target))
        for lane, spans in enumerate(taken):
            if all(high < a or low > b for a, b in spans):
                spans.append((low, high))
                lanes[i] = lane
                break
        else:
            taken.append([(low, high)])
            lanes[i] = len(taken) - 1
    return lanes


def _node_svg(node: _Node) -> str:
    step = node.step
    fill = STEP_FILLS.get(step.step, "#ffffff")
    stroke, width = ("#b00020", 3) if node.flagged else ("#666666", 1)
    label = f"#{step.index} {step.step}" if step.index else step.name
    first = _cut(printable(label), _CHARS)
    second = _cut(words.describe(step), _CHARS) if step.index else _cut(printable(step.actor), _CHARS)
    anchor = f"#step-{step.index}" if step.index else "#summary"
    return (
        f'<a href="{anchor}"><g class="node step-{_esc(step.step)}{" flagged" if node.flagged else ""}">'
        f"<title>{_esc(step.name)}</title>"
        f'<rect x="{node.x}" y="{node.y}" width="{NODE_W}" height="{NODE_H}" rx="5" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{width}"/>'
        f'<text x="{node.x + 8}" y="{node.y + 16}" font-size="12" font-weight="bold">{_esc(first)}</text>'
        f'<text x="{node.x + 8}" y="{node.y + 32}" font-size="11">{_esc(second)}</text></g></a>'
    )


def _parent_svg(parent: _Node, child: _Node) -> str:
    trunk = parent.x + 14
    mid = child.y + NODE_H // 2
    return (
        f'<path class="edge parent" d="M{trunk},{parent.y + NODE_H} V{mid} H{child.x}" fill="none" '
        f'stroke="#999999" stroke-width="1.2" marker-end="url(#arrow-parent)"/>'
        f'<text class="edge-label" x="{trunk + 3}" y="{mid - 3}" font-size="8.5" fill="#777777">parent</text>'
    )


def _link_svg(edge: _Edge, lane: int, nodes: list[_Node], lane_x0: int, slot: tuple[int, int]) -> str:
    source, target = nodes[edge.source], nodes[edge.target]
    colour = LINK_COLOURS.get(edge.link_type, OTHER_LINK)
    x = lane_x0 + lane * LANE_W
    spread = NODE_H - 12
    count, position = slot
    dy = 6 + (spread * (position + 1)) // (count + 1)
    y1, y2 = source.y + dy, target.y + NODE_H - dy
    mid = (y1 + y2) // 2
    marker = f"arrow-{edge.link_type}" if edge.link_type in LINK_COLOURS else "arrow-other"
    text = _esc(edge.link_type)
    return (
        f'<path class="edge link {text}" d="M{source.right},{y1} H{x} V{y2} H{target.right}" fill="none" '
        f'stroke="{colour}" stroke-width="1.6" marker-end="url(#{marker})"/>'
        f'<rect x="{x + 2}" y="{mid - 9}" width="{len(edge.link_type) * 6 + 6}" height="13" fill="#ffffff" '
        f'opacity="0.9"/>'
        f'<text class="edge-label" x="{x + 5}" y="{mid + 1}" font-size="10" fill="{colour}">{text}</text>'
    )


def _markers() -> str:
    colours = {**LINK_COLOURS, "other": OTHER_LINK, "parent": "#999999"}
    return (
        "<defs>"
        + "".join(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for name, colour in colours.items()
        )
        + "</defs>"
    )


def render(chain: DecisionChain, flagged: set[int]) -> str:
    """The graph; ``flagged`` holds the indexes of steps to highlight (integrity findings)."""
    decision = chain.decisions[0] if chain.decisions else None
    nodes: list[_Node] = []
    row_of: dict[int, int] = {}
    if decision is not None:
        nodes.append(_Node(0, LEFT, decision, False))
    for step in chain.steps:
        row_of[step.index] = len(nodes)
        depth = min(step.depth, MAX_DEPTH_SHOWN) + (1 if decision else 0)
        nodes.append(_Node(len(nodes), LEFT + depth * INDENT, step, step.index in flagged))
    edges: list[_Edge] = []
    for step in chain.steps:
        for link in step.links:
            target = chain.step_of_span(link.target_span_id)
            if target is not None and target.index in row_of:
                edges.append(_Edge(link.link_type, row_of[step.index], row_of[target.index]))
    lanes = _lanes(edges)
    lane_x0 = max((n.right for n in nodes), default=LEFT + NODE_W) + 26
    width = lane_x0 + max(lanes, default=-1) * LANE_W + LANE_W + 10
    height = TOP * 2 + max(1, len(nodes)) * ROW
    parts = [_markers()]
    for step in chain.steps:
        parent_row = row_of.get(step.parent_index) if step.parent_index else (0 if decision else None)
        if parent_row is not None:
            parts.append(_parent_svg(nodes[parent_row], nodes[row_of[step.index]]))
    out_count: dict[int, int] = {}
    for edge in edges:
        out_count[edge.source] = out_count.get(edge.source, 0) + 1
    seen: dict[int, int] = {}
    for edge, lane in zip(edges, lanes, strict=True):
        position = seen.get(edge.source, 0)
        seen[edge.source] = position + 1
        parts.append(_link_svg(edge, lane, nodes, lane_x0, (out_count[edge.source], position)))
    parts += [_node_svg(node) for node in nodes]
    return (
        f'<svg class="causal-graph" role="img" aria-label="causal graph" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif">' + "".join(parts) + "</svg>"
    )
