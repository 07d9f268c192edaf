"""A decision chain as W3C PROV-JSON (https://www.w3.org/submissions/prov-json/), for provenance
tools and graph stores.

The mapping: every step (and the decision, and the server half of a cross-service call) is an
activity; the actor, the NHI and an approver are agents; recorded content is an entity named by
its digest (never the content itself), a secret by its reference (never its value), a change
target by its name. ``used`` and ``wasGeneratedBy`` tie content to steps (an action uses its
parameters, its before state and the secrets it was linked to, and generates its after state);
``wasAssociatedWith`` ties a step to its actor, its identity and an approval to its approver;
``actedOnBehalfOf`` says the identity acted on behalf of the actor in that step; every causal link
is a ``wasInformedBy`` carrying its type; nesting is ``wasStartedBy`` (the child started by its
parent); ``wasDerivedFrom`` and ``specializationOf`` relate an after state to the before state
and to the target.
"""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from typing import Any

from provtrace import conventions as c
from provtrace.reconstruct import CallSide, ChainStep, DecisionChain

NAMESPACE = "https://provtrace.dev/ns/prov#"
_TYPES = {"agent": "prov:SoftwareAgent", "nhi": "provtrace:NonHumanIdentity", "approver": "prov:Person"}
_DIGEST_ROLES = {
    c.INPUT_SHA256: "used",
    c.APPROVAL_PARAMS_SHA256: "used",
    c.ACTION_PARAMS_SHA256: "used",
    c.CHANGE_BEFORE_SHA256: "used",
    c.OUTPUT_SHA256: "generated",
    c.CHANGE_AFTER_SHA256: "generated",
}


def _qname(name: str) -> dict[str, str]:
    """A value that is a qualified name (PROV-JSON types it; plain strings are literals)."""
    return {"$": name, "type": "prov:QUALIFIED_NAME"}


_ACTOR, _IDENTITY, _APPROVER, _SECRET = (
    _qname(f"provtrace:{role}") for role in ("actor", "identity", "approver", "secret")
)


def _local(text: str) -> str:
    """Any text as the local part of a qualified name (percent-encoded, PROV-N's PERCENT)."""
    return urllib.parse.quote(text, safe="-_.")


def _time(ns: int) -> str:
    try:
        moment = _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        moment = _dt.datetime.fromtimestamp(0, tz=_dt.timezone.utc)
    return moment.isoformat(timespec="microseconds")


class _Document:
    def __init__(self, trace_id: str) -> None:
        self.doc: dict[str, Any] = {
            "prefix": {
                "provtrace": NAMESPACE,
                "step": f"urn:provtrace:trace:{trace_id}:span:",
                "agent": "urn:provtrace:agent:",
                "nhi": "urn:provtrace:nhi:",
                "sha256": "urn:provtrace:sha256:",
                "secret": "urn:provtrace:secret:",
                "target": "urn:provtrace:target:",
            }
        }
        self._count = 0

    def record(self, kind: str, key: str, attributes: dict[str, Any]) -> None:
        self.doc.setdefault(kind, {}).setdefault(key, {}).update(attributes)

    def relation(self, kind: str, attributes: dict[str, Any]) -> None:
        self._count += 1
        self.doc.setdefault(kind, {})[f"_:r{self._count}"] = attributes

    def agent(self, kind: str, name: str) -> str:
        key = f"{'nhi' if kind == 'nhi' else 'agent'}:{_local(name)}"
        self.record("agent", key, {"prov:type": _qname(_TYPES[kind]), "prov:label": name})
        return key

    def activity(self, key: str, name: str, step: str, start_ns: int, end_ns: int, **extra: Any) -> None:
        attributes = {
            "prov:startTime": _time(start_ns),
            "prov:endTime": _time(end_ns),
            "prov:type": _qname(f"provtrace:{_local(step)}"),
            "prov:label": name,
            **extra,
        }
        self.record("activity", key, attributes)

    def content(self, activity: str, digest_attribute: str, digest: str, label: str) -> None:
        entity = f"sha256:{_local(digest)}"
        self.record("entity", entity, {"prov:type": _qname("provtrace:Content"), "provtrace:digest": digest})
        role = _qname(f"provtrace:{_local(label.replace(' ', '_'))}")
        if _DIGEST_ROLES.get(digest_attribute) == "generated":
            self.relation(
                "wasGeneratedBy", {"prov:entity": entity, "prov:activity": activity, "prov:role": role}
            )
        else:
            self.relation("used", {"prov:activity": activity, "prov:entity": entity, "prov:role": role})


def _digests(step: ChainStep | CallSide) -> list[tuple[str, str, str]]:
    return [(part.digest_attribute, part.sha256, part.label) for part in step.contents if part.sha256]


def _step(doc: _Document, step: ChainStep, key: str) -> None:
    f = step.facts
    doc.activity(key, step.name, step.step, step.start_ns, step.end_ns, **{"provtrace:service": step.service})
    actor = doc.agent("agent", step.actor) if step.actor else None
    nhi = doc.agent("nhi", step.nhi) if step.nhi else None
    if actor:
        doc.relation("wasAssociatedWith", {"prov:activity": key, "prov:agent": actor, "prov:role": _ACTOR})
    if nhi:
        doc.relation("wasAssociatedWith", {"prov:activity": key, "prov:agent": nhi, "prov:role": _IDENTITY})
    if actor and nhi:
        doc.relation(
            "actedOnBehalfOf", {"prov:delegate": nhi, "prov:responsible": actor, "prov:activity": key}
        )
    for digest_attribute, digest, label in _digests(step):
        doc.content(key, digest_attribute, digest, label)
    if step.step == c.STEP_APPROVAL and isinstance(f.get(c.APPROVAL_APPROVER_ID), str):
        approver = doc.agent("approver", f[c.APPROVAL_APPROVER_ID])
        doc.relation(
            "wasAssociatedWith",
            {"prov:activity": key, "prov:agent": approver, "prov:role": _APPROVER},
        )
    if step.step == c.STEP_SECRET_FETCH and isinstance(f.get(c.SECRET_REF), str):
        secret = f"secret:{_local(f[c.SECRET_REF])}"
        doc.record(
            "entity",
            secret,
            {"prov:type": _qname("provtrace:SecretReference"), "prov:label": f[c.SECRET_REF]},
        )
        doc.relation("used", {"prov:activity": key, "prov:entity": secret, "prov:role": _SECRET})
    if step.step == c.STEP_ACTION:
        _change(doc, step, key)


def _change(doc: _Document, step: ChainStep, key: str) -> None:
    target_name = step.facts.get(c.ACTION_TARGET)
    before, after = step.content("before"), step.content("after")
    target = f"target:{_local(target_name)}" if isinstance(target_name, str) else None
    if target:
        doc.record(
            "entity", target, {"prov:type": _qname("provtrace:ChangeTarget"), "prov:label": target_name}
        )
    states = [part for part in (before, after) if part is not None and part.sha256]
    for part in states:
        if target:
            doc.relation(
                "specializationOf",
                {"prov:specificEntity": f"sha256:{_local(part.sha256 or '')}", "prov:generalEntity": target},
            )
    if before and after and before.sha256 and after.sha256:
        doc.relation(
            "wasDerivedFrom",
            {
                "prov:generatedEntity": f"sha256:{_local(after.sha256)}",
                "prov:usedEntity": f"sha256:{_local(before.sha256)}",
                "prov:activity": key,
            },
        )


def _server(doc: _Document, side: CallSide, client_key: str) -> None:
    key = f"step:{side.span_id}"
    doc.activity(
        key, side.name, "tool_call_server", side.start_ns, side.end_ns, **{"provtrace:service": side.service}
    )
    if side.actor:
        agent = doc.agent("agent", side.actor)
        doc.relation("wasAssociatedWith", {"prov:activity": key, "prov:agent": agent, "prov:role": _ACTOR})
    for digest_attribute, digest, label in _digests(side):
        doc.content(key, digest_attribute, digest, label)
    doc.relation(
        "wasInformedBy",
        {"prov:informed": key, "prov:informant": client_key, "provtrace:linkType": "serves_call"},
    )


def document(chain: DecisionChain) -> dict[str, Any]:
    doc = _Document(chain.trace_id)
    keys = {s.index: f"step:{s.span_id}" for s in chain.steps}
    for decision in chain.decisions:
        _step(doc, decision, f"step:{decision.span_id}")
    for step in chain.steps:
        key = keys[step.index]
        _step(doc, step, key)
        if step.server is not None:
            _server(doc, step.server, key)
        starter = keys.get(step.parent_index) if step.parent_index else None
        if starter is None and chain.decisions:
            starter = f"step:{chain.decisions[0].span_id}"
        if starter:
            doc.relation("wasStartedBy", {"prov:activity": key, "prov:starter": starter})
    for step in chain.steps:
        for link in step.links:
            target = chain.step_of_span(link.target_span_id)
            if target is None:
                continue
            doc.relation(
                "wasInformedBy",
                {
                    "prov:informed": keys[step.index],
                    "prov:informant": keys[target.index],
                    "provtrace:linkType": link.link_type,
                },
            )
            if link.link_type == c.LINK_USED_SECRET and isinstance(target.facts.get(c.SECRET_REF), str):
                secret = f"secret:{_local(target.facts[c.SECRET_REF])}"
                doc.relation(
                    "used",
                    {
                        "prov:activity": keys[step.index],
                        "prov:entity": secret,
                        "prov:role": _SECRET,
                    },
                )
    return doc.doc
