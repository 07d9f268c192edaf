"""The table of a ``make bench`` run: every figure of the other benchmarks' results, each target
marked met or not, the machine it ran on, and a chart (docs/performance.png).

    python -m bench report      # after the others; ``make bench`` runs it last
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from bench.common import RESULTS, save

CHART = Path(__file__).resolve().parents[1] / "docs" / "performance.png"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores ({model or platform.machine()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, load average {load_average:.1f} "
        "when the report was made"
    )


def mark(met: bool) -> str:
    return "met" if met else "NOT met"


def overhead_rows(overhead: dict[str, Any]) -> list[str]:
    rows = ["| case | x plain OTel span (wall) | calling-thread CPU | process CPU |", "|---|---:|---:|---:|"]
    for figures in overhead["cases"].values():
        ratio = figures["ratio"]
        rows.append(
            f"| {figures['label']} | {ratio['wall_ns']:.2f} | {ratio['thread_cpu_ns']:.2f} | "
            f"{ratio['process_cpu_ns']:.2f} |"
        )
    return rows


def targets(results: dict[str, Any]) -> list[str]:
    rows = ["| target | measured | |", "|---|---|---|"]
    overhead = results.get("overhead")
    if overhead:
        cases = overhead["cases"]
        ours = cases["provtrace_redacted"]["ratio"]
        traceloop = cases.get("traceloop_task", {}).get("ratio", {}).get("wall_ns")
        below = traceloop is None or ours["wall_ns"] < traceloop
        rows.append(
            f"| redacted `tool_call` wall <= 1.5x plain span, below Traceloop's | x{ours['wall_ns']:.2f} "
            f"(Traceloop x{traceloop or float('nan'):.2f}) | {mark(ours['wall_ns'] <= 1.5 and below)} |"
        )
        cpu = ours["thread_cpu_ns"]
        rows.append(f"| calling-thread CPU <= 1.5x | x{cpu:.2f} | {mark(cpu <= 1.5)} |")
    burst = results.get("burst")
    if burst:
        ours, otel = burst["provtrace"], burst["otel"]
        met = burst["delivered_per_s_ratio"] >= 1.5 and ours["delivered_fraction"] == 1.0
        rows.append(
            f"| end to end >= 1.5x stock OTel, 100% delivered | {ours['delivered_per_s']:.0f} vs "
            f"{otel['delivered_per_s']:.0f} delivered spans/s (x{burst['delivered_per_s_ratio']:.2f}; "
            f"produced x{burst['spans_per_s_ratio']:.2f}), delivered {ours['delivered_fraction']:.1%} "
            f"vs {otel['delivered_fraction']:.1%}; client CPU {ours['client_cpu_us_per_span']:.0f} vs "
            f"{otel['client_cpu_us_per_span']:.0f} µs/span | {mark(met)} |"
        )
    verify = results.get("verify")
    if verify:
        rows.append(
            f"| `verify --stream` of 10k spans < 1 s | {verify['verify_s']:.2f} s in process, "
            f"{verify['cli_s']:.2f} s command line (floor {verify['floor_s']:.2f} s); CPU "
            f"{verify['verify_cpu_s']:.2f} s (floor {verify['floor_cpu_s']:.2f} s) | "
            f"{mark(verify['verify_s'] < 1.0)} in wall time, {mark(verify['verify_cpu_s'] < 1.0)} in CPU |"
        )
    imports = results.get("imports")
    if imports:
        ours_ms = imports["import provtrace"]["median_ms"]
        otel_ms = imports["import opentelemetry.sdk.trace"]["median_ms"]
        configure_ms = imports["import provtrace + configure()"]["median_ms"]
        rows.append(
            f"| `import provtrace` <= 1.5x OTel SDK import | {ours_ms:.0f} vs {otel_ms:.0f} ms "
            f"(x{ours_ms / otel_ms:.2f}; + configure() {configure_ms:.0f} ms) | "
            f"{mark(ours_ms <= 1.5 * otel_ms)} |"
        )
    memory = results.get("memory")
    if memory:
        ours_b, otel_b, ratio = (
            memory["provtrace_buffered_bytes_per_span"],
            memory["otel_queued_bytes_per_span"],
            memory["ratio"],
        )
        rows.append(
            f"| memory per buffered span <= 1.2x OTel's | {ours_b:.0f} vs {otel_b:.0f} B (x{ratio:.2f}) | "
            f"{mark(ratio <= 1.2)} |"
        )
    load_results = results.get("load")
    if load_results:
        for name, figures in load_results.items():
            if name.startswith("otel_"):
                continue  # the floor, shown beside the provtrace row of the same load
            floor = load_results.get(f"otel_{name}", {}).get("step_added_us", {}).get("p99_over_p50")
            added = figures["step_added_us"]
            first, second = (
                figures["queued_segments_first_half_max"],
                figures["queued_segments_second_half_max"],
            )
            growing = second > max(64, first)
            spread = added["p99_over_p50"]
            rows.append(
                f"| {figures['producers']}: no growing backlog, p99 <= 2x p50 added per step | "
                f"{figures['spans_per_s']:.0f} spans/s, queued max {first} then {second}, drained "
                f"{figures['drain_s_after_load']:.1f} s after; p50 {added['p50']:.0f} µs, p99 "
                f"{added['p99']:.0f} µs (x{spread:.1f}; plain OTel under the same load x{floor or 0:.1f}); "
                f"{figures['process_cpu_cores']:.2f} cores | {mark(not growing and spread <= 2.0)} |"
            )
    return rows


def chart(results: dict[str, Any]) -> Path | None:
    overhead = results.get("overhead")
    if not overhead:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (no matplotlib here: the chart is made in the bench environment, `make bench`)")
        return None
    cases = list(overhead["cases"].values())
    labels = [c["label"].replace("`", "") for c in cases]
    wall = [c["ratio"]["wall_ns"] for c in cases]
    cpu = [c["ratio"]["thread_cpu_ns"] for c in cases]
    figure, axes = plt.subplots(figsize=(9, 4.8))
    positions = range(len(cases))
    axes.barh([p + 0.2 for p in positions], wall, height=0.4, label="wall, background work included")
    axes.barh([p - 0.2 for p in positions], cpu, height=0.4, label="CPU of the calling thread")
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.axvline(1.5, color="grey", linestyle="--", linewidth=0.8, label="target 1.5x")
    axes.set_yticks(list(positions), labels)
    axes.invert_yaxis()
    axes.set_xlabel("x a plain OpenTelemetry span (BatchSpanProcessor), same run")
    axes.set_title("Per tool call, 10 string attributes, medians of interleaved rounds")
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    CHART.parent.mkdir(exist_ok=True)
    figure.savefig(CHART, dpi=110)
    plt.close(figure)
    return CHART


def main() -> None:
    results = {name: load(name) for name in ("overhead", "burst", "verify", "imports", "memory", "load")}
    lines = [f"Machine: {machine()}.", ""]
    if results["overhead"] and "cases" not in results["overhead"]:
        results["overhead"] = None  # written by an older version of bench/overhead.py
    if results["overhead"]:
        lines += [*overhead_rows(results["overhead"]), ""]
    lines += targets(results)
    text = "\n".join(lines)
    print(text)
    (RESULTS / "table.md").write_text(text + "\n")
    path = chart(results)
    if path:
        print(f"  chart written to {path}")
    save("report", {"machine": machine(), "markdown": text})


if __name__ == "__main__":
    main()
