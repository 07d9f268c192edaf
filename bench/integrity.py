"""What integrity adds: the digest per span, and the seal (chain + Ed25519 signature) per segment.

Measured on the spans of reference-shaped decisions (eight steps each), against the cost of
turning the same spans into records, which every export pays anyway.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.throughput import recorded_spans
from provtrace.integrity import Sealer, signed_message, span_digest
from provtrace.records import to_record

ROUNDS = 5


def timed(function: Any, count: int) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        function()
        samples.append((time.perf_counter_ns() - start) / count)
    return statistics.median(samples)


def run() -> dict[str, Any]:
    spans = recorded_spans()
    records = [to_record(span, {"service.name": "bench"})[0] for span in spans]
    segments: dict[str, list[Any]] = {}
    for record in records:
        segments.setdefault(record.trace_id, []).append(record)
    key = Ed25519PrivateKey.generate()
    signed = Sealer("bench", key, heartbeat_interval_s=60, resource={})
    unsigned = Sealer("bench", None, heartbeat_interval_s=60, resource={})
    body = signed_message(
        signed.seal(
            trace_id=records[0].trace_id,
            parent_span_id="",
            spans=next(iter(segments.values())),
            completeness="complete",
            violations=(),
            reason="root_ended",
            now_ns=0,
        )
    )

    def seal_all(sealer: Sealer) -> None:
        for trace_id, segment in segments.items():
            sealer.seal(
                trace_id=trace_id,
                parent_span_id="",
                spans=segment,
                completeness="complete",
                violations=(),
                reason="root_ended",
                now_ns=0,
            )

    results: dict[str, Any] = {
        "spans": len(records),
        "segments": len(segments),
        "to_record_ns_per_span": timed(
            lambda: [to_record(s, {"service.name": "bench"}) for s in spans], len(spans)
        ),
        "digest_ns_per_span": timed(lambda: [span_digest(r) for r in records], len(records)),
        "seal_unsigned_ns_per_segment": timed(lambda: seal_all(unsigned), len(segments)),
        "seal_signed_ns_per_segment": timed(lambda: seal_all(signed), len(segments)),
    }
    per_segment = len(records) / len(segments)
    results["signature_ns_per_segment"] = timed(lambda: [key.sign(body) for _ in range(1000)], 1000)
    results["signed_seal_ns_per_span"] = results["seal_signed_ns_per_segment"] / per_segment
    return results


def main() -> None:
    from bench.common import save

    results = run()
    path = save("integrity", results)
    print(
        f"integrity cost over {results['spans']} spans in {results['segments']} segments (median of {ROUNDS})"
    )
    rows = [
        ("record conversion (paid by any export)", "to_record_ns_per_span", "span"),
        ("span digest", "digest_ns_per_span", "span"),
        ("seal, unsigned (includes span digests)", "seal_unsigned_ns_per_segment", "segment"),
        ("seal, Ed25519-signed", "seal_signed_ns_per_segment", "segment"),
        ("Ed25519 signature of one seal", "signature_ns_per_segment", "segment"),
        ("  signed seal per span", "signed_seal_ns_per_span", "span"),
    ]
    for label, key, unit in rows:
        print(f"  {label:42} {results[key] / 1000:7.1f} µs/{unit}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
