"""The scaled-out stack on loopback: provtrace -> load-balancing collector
(collector-config/otelcol-loadbalancer.yaml, routing by trace id, persistent queue) -> two gateway
collectors (otelcol.yaml: archive + persistent queue) -> one Jaeger. One gateway is SIGKILLed in
the middle of a burst and restarted: every span id produced arrives in the union of the gateway
archives, each trace (its segments and the seals inside them) at one gateway only, and the
stream's seal chain, spread over both gateways, verifies from their union. Run twice: in
plaintext, and with TLS, mutual TLS and bearer tokens on every hop (otelcol-secure.yaml on the
gateways and the load balancer, otelcol-loadbalancer-secure.yaml towards the gateways), where
neither token may appear in any file or log."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provtrace
from provtrace.integrity import write_key_pair
from provtrace.testing import Archive, CanaryScan, in_jaeger, wait_for, wait_for_spans
from provtrace.testing.stack import Checkout, Ports, Stack
from provtrace.testing.tls import TestCA
from tests.integration.stack import REPO

DECISIONS = 400  # half before the kill, half while the gateway is down
TOOL_CALLS = 2


CONFIG = REPO / "collector-config"
AGENT_TOKEN = "pt-tier-agent-token-51c2"  # canaries: accepted, never written anywhere
GATEWAY_TOKEN = "pt-tier-gateway-token-9ad0"


@dataclasses.dataclass(frozen=True)
class Tier:
    jaeger: Stack
    gateways: tuple[Stack, Stack]
    balancer: Stack
    agent_settings: dict[str, Any]  # endpoint, and with TLS: CA, client certificate, token


def secured(root: Path) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """Environments of the gateways and the load balancer, and the agent's settings, for a tier
    with TLS and tokens on every hop and mutual TLS (one test CA issues every certificate)."""
    ca = TestCA.create(root / "pki")
    server = ca.issue("collector", server=True)
    balancer_client = ca.issue("load-balancer", server=False)
    agent_client = ca.issue("agent", server=False)
    (root / "gateway-tokens").write_text(f"{GATEWAY_TOKEN}\n")
    (root / "agent-tokens").write_text(f"{AGENT_TOKEN}\n")
    receivers = {
        "PROVTRACE_OTLP_TLS_CERT_FILE": str(server.certificate),
        "PROVTRACE_OTLP_TLS_KEY_FILE": str(server.key),
        "PROVTRACE_OTLP_CLIENT_CA_FILE": str(ca.certificate),
    }
    gateway = {**receivers, "PROVTRACE_OTLP_TOKEN_FILE": str(root / "gateway-tokens")}
    balancer = {
        **receivers,
        "PROVTRACE_OTLP_TOKEN_FILE": str(root / "agent-tokens"),
        "PROVTRACE_GATEWAY_CA_FILE": str(ca.certificate),
        "PROVTRACE_GATEWAY_TOKEN_FILE": str(root / "gateway-tokens"),
        "PROVTRACE_GATEWAY_CLIENT_CERT_FILE": str(balancer_client.certificate),
        "PROVTRACE_GATEWAY_CLIENT_KEY_FILE": str(balancer_client.key),
    }
    agent = {
        "certificate_file": ca.certificate,
        "client_certificate_file": agent_client.certificate,
        "client_key_file": agent_client.key,
        "headers": {"Authorization": f"Bearer {AGENT_TOKEN}"},
    }
    return gateway, balancer, agent


@pytest.fixture(params=["plaintext", "tls"])
def tier(request: pytest.FixtureRequest, stack_checkout: Checkout, tmp_path: Path) -> Iterator[Tier]:
    tls = request.param == "tls"
    gateway_env, balancer_env, agent = secured(tmp_path / "secrets") if tls else ({}, {}, {})
    jaeger = Stack(tmp_path / "jaeger", Ports.free(), checkout=stack_checkout, build=False)
    jaeger.start_jaeger(timeout=120)
    started: list[Stack] = [jaeger]
    try:
        gateways = tuple(
            Stack(
                tmp_path / f"gateway-{n}",
                dataclasses.replace(Ports.free(), jaeger_otlp_grpc=jaeger.ports.jaeger_otlp_grpc),
                checkout=stack_checkout,
                collector_overlays=[CONFIG / "otelcol-secure.yaml"] if tls else [],
                environment=gateway_env,
                build=False,
            )
            for n in (1, 2)
        )
        for gateway in gateways:
            gateway.start_collector(timeout=120)
            started.append(gateway)
        balancer = Stack(
            tmp_path / "balancer",
            Ports.free(),
            checkout=stack_checkout,
            collector_config=CONFIG / "otelcol-loadbalancer.yaml",
            collector_overlays=(
                [CONFIG / "otelcol-secure.yaml", CONFIG / "otelcol-loadbalancer-secure.yaml"] if tls else []
            ),
            environment={
                **balancer_env,
                **{f"PROVTRACE_GATEWAY_{n}": g.otlp_grpc_endpoint for n, g in enumerate(gateways, 1)},
            },
            build=False,
        )
        balancer.start_collector(timeout=120)
        started.append(balancer)
        scheme = "https" if tls else "http"
        settings = {"endpoint": f"{scheme}://127.0.0.1:{balancer.ports.otlp_http}", **agent}
        yield Tier(jaeger, (gateways[0], gateways[1]), balancer, settings)
    finally:
        for stack in reversed(started):
            stack.stop()


def spans_by_trace(directory: Path) -> tuple[Counter[str], dict[str, str]]:
    """Every span id in a collector archive (counted, so duplicates show) and its trace id: read
    raw, because the investigator's readers drop exact duplicates."""
    counts: Counter[str] = Counter()
    traces: dict[str, str] = {}
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            for resource in json.loads(line).get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    for span in scope.get("spans", []):
                        counts[span["spanId"]] += 1
                        traces[span["spanId"]] = span["traceId"]
    return counts, traces


def seals(home: Path) -> set[str]:
    """Span ids of the seals the agent produced."""
    return {record.span_id for record in Archive(home / "sent").seals()}


def burst(count: int) -> None:
    for n in range(count):
        with provtrace.decision(f"burst {n}", trigger=f"alert:{n}", actor="lb-agent", nhi="svc-lb@prod"):
            for call in range(TOOL_CALLS):
                with provtrace.tool_call(f"lookup_{call}") as tool:
                    tool.record_input({"call": call})
                    tool.record_output({"n": n})


def test_a_gateway_killed_mid_burst_loses_nothing_and_traces_stay_whole(
    tier: Tier, tmp_path: Path, canaries: CanaryScan
) -> None:
    first, second = tier.gateways
    home = tmp_path / "agent"
    write_key_pair(home / "keys" / "agent.key", home / "keys" / "agent.pub")
    handle = provtrace.configure(
        **tier.agent_settings,
        service_name="lb-agent",
        archive_dir=home / "sent",  # what was produced, to compare with what arrived
        spool_dir=home / "spool",
        quarantine_dir=home / "quarantine",
        signing_key=home / "keys" / "agent.key",
        heartbeat_interval=3600,
    )
    burst(DECISIONS // 2)
    wait_for("the first gateway to archive spans", lambda: spans_by_trace(first.archive_dir)[0] or None)
    first.kill_collector()
    at_kill = sum(spans_by_trace(second.archive_dir)[0].values())
    burst(DECISIONS - DECISIONS // 2)
    assert handle.force_flush(timeout_s=120)  # the load balancer holds the dead gateway's share
    wait_for(
        "the second gateway to keep receiving while the first is down",
        lambda: sum(spans_by_trace(second.archive_dir)[0].values()) > at_kill or None,
    )
    first.start_collector(timeout=120)
    assert handle.shutdown(timeout_s=120)

    produced_counts, produced_traces = spans_by_trace(home / "sent")
    produced = set(produced_counts)

    def all_arrived() -> tuple[Counter[str], Counter[str]] | None:
        one, two = spans_by_trace(first.archive_dir)[0], spans_by_trace(second.archive_dir)[0]
        return (one, two) if produced <= set(one) | set(two) else None

    one, two = wait_for("every produced span in the gateway archives", all_arrived, timeout_s=180)
    arrived = set(one) | set(two)
    assert arrived == produced
    duplicates = sum(one.values()) + sum(two.values()) - len(arrived)
    traces_one = {produced_traces[s] for s in one}
    traces_two = {produced_traces[s] for s in two}
    split = traces_one & traces_two
    traces = set(produced_traces.values())
    mode = "tls" if "headers" in tier.agent_settings else "plaintext"
    print(
        f"\ngateway tier ({mode}): produced {len(produced)} spans in {len(traces)} traces; "
        f"gateway-1 (killed) {len(one)} spans / {len(traces_one)} traces, "
        f"gateway-2 {len(two)} spans / {len(traces_two)} traces; arrived {len(arrived)}, "
        f"missing {len(produced - arrived)}, duplicate records {duplicates}"
    )
    assert split == set(), f"{len(split)} traces split across the gateways, e.g. {sorted(split)[:3]}"
    assert traces_one and traces_two  # both gateways got a share
    for share in (traces_one, traces_two):  # and each forwarded its share to Jaeger
        trace = min(share)
        expected = sum(1 for t in produced_traces.values() if t == trace)
        wait_for_spans(lambda t=trace: in_jaeger(tier.jaeger, t), expected, f"trace {trace} in Jaeger")

    union = tmp_path / "union"
    union.mkdir()
    for gateway in tier.gateways:
        for path in gateway.archive_files():
            shutil.copy(path, union / f"{gateway.dir.name}-{path.name}")
    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "provtrace.cli",
            "verify",
            "--stream",
            "--archive",
            str(union),
            "--public-key",
            str(home / "keys" / "agent.pub"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(verified.stdout)
    errors = Counter(f["kind"] for f in report["findings"] if f["severity"] == "error")
    print(f"verify --stream over the union: {report['seals_checked']} seals, errors {dict(errors)}")
    # The chain (sequence numbers and each seal's digest of the one before) proves the stream's
    # order; the order in which two gateways happened to store seals does not, so the union's
    # storage order is the only thing allowed to differ from it.
    assert set(errors) <= {"reordered"}, verified.stdout[-3000:] + verified.stderr[-2000:]
    assert report["streams_checked"] == 1
    assert report["seals_checked"] == len(seals(home))
    canaries.watch(home, tier.balancer.dir, *(gateway.dir for gateway in tier.gateways))
    assert canaries.leaks(AGENT_TOKEN, GATEWAY_TOKEN) == []
