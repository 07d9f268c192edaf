"""Cost of tainting a fetched secret and of scrubbing content, against plain ``str.replace``.

Measured in one run on this machine, as CPU time of the calling thread (other processes on a busy
machine inflate wall time), so the ratios compare like with like:

- ``add``: registering one fetched secret in a fresh registry, including building its matcher
  (the first search after an add), next to one ``str.replace`` of 1 KB as the baseline unit; and
  ten secrets registered one by one, each followed by a search;
- ``scrub``: ``SecretRegistry.scrub`` of 1 KB of JSON text (no secret in it, and one occurrence)
  with one and with ten secrets registered, against one ``str.replace`` per secret;
- ``render``: ``CapturePolicy.render`` (redacted and full) of the same content as a structure,
  against ``json.dumps`` of it plus the ``str.replace`` calls.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from bench.common import per_call_ns, save
from provtrace import content
from provtrace.content import SECRETS, CapturePolicy, SecretRegistry

SECRETS_POOL = [f"tok-{i:02d}-Q8mZ3xL0pV7tN2wK{i * 7919:06d}" for i in range(10)]


def one_kb_structure(secret: str | None) -> dict[str, Any]:
    """About 1 KB of tool arguments shaped like agent content, optionally holding one secret."""
    rules = [{"port": 1000 + i, "cidr": f"10.{i}.0.0/16", "note": f"rule {i} for partner"} for i in range(15)]
    value: dict[str, Any] = {"sg": "sg-123", "rules": rules, "reason": "ticket CHG-42 open"}
    if secret is not None:
        value["auth"] = f"Bearer {secret}"
    return value


def text_of(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def bench_add() -> dict[str, float]:
    """A fresh secret each time: ``re`` caches compiled patterns by their text."""
    secret = SECRETS_POOL[0]
    fresh = itertools.count()

    def add() -> None:
        registry = SecretRegistry()
        registry.add(f"{secret}{next(fresh)}")
        registry.contains_secret("x")  # builds the matcher, if it is built lazily

    page = text_of(one_kb_structure(None))

    def baseline() -> None:
        page.replace(secret, "[REDACTED:secret]")

    def add_ten() -> None:
        registry = SecretRegistry()
        run = next(fresh)
        for pooled in SECRETS_POOL:
            registry.add(f"{pooled}{run}")
            registry.contains_secret("x")  # a fetch, then content recorded with it

    _, add_ns = per_call_ns(add, calls=200)
    _, ten_ns = per_call_ns(add_ten, calls=20, rounds=5)
    _, base_ns = per_call_ns(baseline, calls=20_000)
    return {
        "add_us": add_ns / 1000,
        "ten_adds_each_then_search_us": ten_ns / 1000,
        "replace_1kb_us": base_ns / 1000,
        "ratio": add_ns / base_ns,
    }


def bench_scrub(count: int) -> dict[str, float]:
    registry = SecretRegistry()
    secrets = SECRETS_POOL[:count]
    for secret in secrets:
        registry.add(secret)
    clean = text_of(one_kb_structure(None))
    dirty = text_of(one_kb_structure(secrets[-1]))

    def replace_all(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "[REDACTED:secret]")
        return text

    out: dict[str, float] = {"bytes": float(len(clean))}
    for label, text in (("clean", clean), ("one_secret", dirty)):
        _, scrub_ns = per_call_ns(lambda text=text: registry.scrub(text), calls=5_000)
        _, base_ns = per_call_ns(lambda text=text: replace_all(text), calls=20_000)
        out[f"{label}_scrub_us"] = scrub_ns / 1000
        out[f"{label}_replace_us"] = base_ns / 1000
        out[f"{label}_ratio"] = scrub_ns / base_ns
    return out


def bench_render(count: int) -> dict[str, float]:
    SECRETS.clear()
    secrets = SECRETS_POOL[:count]
    for secret in secrets:
        SECRETS.add(secret)
    value = one_kb_structure(secrets[-1])

    def baseline() -> None:
        text = text_of(value)
        for secret in secrets:
            text = text.replace(secret, "[REDACTED:secret]")

    _, base_ns = per_call_ns(baseline, calls=10_000)
    out: dict[str, float] = {"dumps_replace_us": base_ns / 1000}
    for mode in ("redacted", "full"):
        policy = CapturePolicy(mode)
        _, render_ns = per_call_ns(lambda policy=policy: policy.render(value), calls=2_000)
        out[f"{mode}_render_us"] = render_ns / 1000
        out[f"{mode}_ratio"] = render_ns / base_ns
    SECRETS.clear()
    return out


def main() -> None:
    results: dict[str, Any] = {
        "variants_per_secret": _variants_per_secret(),
        "add": bench_add(),
        "scrub_1_secret": bench_scrub(1),
        "scrub_10_secrets": bench_scrub(10),
        "render_1_secret": bench_render(1),
        "render_10_secrets": bench_render(10),
    }
    path = save("redaction", results)
    print(json.dumps(results, indent=2))
    print(f"saved to {path}")


def _variants_per_secret() -> int:
    registry = content.SecretRegistry()
    registry.add(SECRETS_POOL[0])
    return len(registry)


if __name__ == "__main__":
    main()
