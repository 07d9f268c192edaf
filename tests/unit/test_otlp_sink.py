"""The OTLP/HTTP sink against a tiny stdlib HTTP server on loopback: what goes on the wire, and
how each kind of answer is judged."""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provtrace.counters import Counters
from provtrace.errors import ConfigurationError
from provtrace.export.delivery import MAX_BACKOFF_S, Deliverer, retry_delay
from provtrace.export.otlp import OtlpSink, retry_after_seconds
from provtrace.export.otlp_body import request_bodies
from provtrace.export.refused import RefusedSegments
from provtrace.export.sink import PermanentSinkError, SinkAuthError, SinkError
from provtrace.model import SpanRecord
from provtrace.otlpjson import decode_traces, dumps_line
from provtrace.spool import Spool
from provtrace.testing import wait_for


def records(trace: str, count: int, pad: int = 10) -> list[SpanRecord]:
    return [
        SpanRecord(
            trace_id=(trace.encode().hex() * 32)[:32],  # a distinct valid trace id per label
            span_id=f"{i + 1:016x}",
            name=f"span {i}",
            start_ns=1_700_000_000_000_000_000 + i,
            end_ns=1_700_000_000_000_001_000 + i,
            attributes={"pad": "é" * pad, "n": i},
            resource={"service.name": "unit-agent"},
            scope_name="provtrace",
        )
        for i in range(count)
    ]


def inner(line: str) -> bytes:
    """The content of a line's resourceSpans array, as the line holds it."""
    raw = line.encode("utf-8").rstrip(b"\n")
    assert raw.startswith(b'{"resourceSpans":[') and raw.endswith(b"]}")
    return raw[len(b'{"resourceSpans":[') : -2]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Collector:
    """A stand-in OTLP/HTTP receiver: records each request and gives the next scripted answer
    (default: 200 with an empty ExportTraceServiceResponse)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    hang: bool = False
    drip: bool = False
    drop_after_answer: bool = False
    received: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector does

    def do_POST(self) -> None:
        collector: Collector = self.server.collector  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        collector.requests.append(Received(self.path, dict(self.headers.items()), body))
        collector.received.set()
        if collector.hang:
            collector.release.wait(timeout=120)
            self.close_connection = True
            return
        if collector.drip:  # a header byte at a time: no single read ever waits long
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(2400):
                if collector.release.wait(timeout=0.05):
                    break
                self.wfile.write(b"z")
                self.wfile.flush()
            self.close_connection = True
            return
        status, headers, answer = (
            collector.answers.pop(0) if collector.answers else (200, {}, b'{"partialSuccess":{}}')
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer)
        if collector.drop_after_answer:
            self.close_connection = True  # without saying so: the client's kept connection goes stale

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    state = Collector()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.collector = state  # type: ignore[attr-defined]
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)


def test_lines_are_spliced_byte_for_byte_with_the_configured_headers(collector: Collector) -> None:
    first, second = dumps_line(records("a", 2)), dumps_line(records("b", 3))
    sink = OtlpSink(collector.url, headers={"Authorization": "Bearer t0k", "X-Tenant": "blue"})
    sink.send([first, second])
    sink.close()
    [request] = collector.requests
    assert request.path == "/v1/traces"
    assert request.headers["Authorization"] == "Bearer t0k"
    assert request.headers["X-Tenant"] == "blue"
    assert request.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in request.headers  # small: sent as is
    assert request.body == b'{"resourceSpans":[' + inner(first) + b"," + inner(second) + b"]}"
    assert list(decode_traces(json.loads(request.body))) == records("a", 2) + records("b", 3)


def test_a_body_above_the_threshold_is_gzipped(collector: Collector) -> None:
    line = dumps_line(records("c", 20, pad=1000))
    assert len(line.encode()) > 8 * 1024
    sink = OtlpSink(collector.url)
    sink.send([line])
    sink.close()
    [request] = collector.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert len(request.body) < len(line.encode())
    assert gzip.decompress(request.body) == line.encode().rstrip(b"\n")


def test_a_partial_success_with_rejected_spans_is_a_failure(collector: Collector) -> None:
    answer = b'{"partialSuccess":{"rejectedSpans":"3","errorMessage":"span too old"}}'
    collector.answers.append((200, {}, answer))
    sink = OtlpSink(collector.url)
    with pytest.raises(PermanentSinkError, match=r"rejected 3 span\(s\): span too old"):
        sink.send([dumps_line(records("d", 4))])
    sink.close()


def test_a_partial_success_that_rejected_nothing_is_a_success(collector: Collector) -> None:
    collector.answers.append((200, {}, b'{"partialSuccess":{"errorMessage":"slow down"}}'))
    collector.answers.append((200, {}, b""))
    sink = OtlpSink(collector.url)
    sink.send([dumps_line(records("d", 1))])
    sink.send([dumps_line(records("e", 1))])
    sink.close()
    assert len(collector.requests) == 2


def test_an_answer_that_is_not_otlp_cannot_confirm_delivery(collector: Collector) -> None:
    collector.answers.append((200, {}, b"<html>welcome</html>"))
    sink = OtlpSink(collector.url)
    with pytest.raises(SinkError, match="delivery cannot be confirmed") as caught:
        sink.send([dumps_line(records("f", 1))])
    sink.close()
    assert not isinstance(caught.value, PermanentSinkError)  # the endpoint, not the segment


def test_429_is_retryable_and_carries_retry_after(collector: Collector) -> None:
    collector.answers.append((429, {"Retry-After": "7"}, b'{"code":8,"message":"queue full"}'))
    sink = OtlpSink(collector.url)
    with pytest.raises(SinkError, match="HTTP 429: queue full") as caught:
        sink.send([dumps_line(records("g", 1))])
    sink.close()
    assert not isinstance(caught.value, PermanentSinkError)
    assert caught.value.retry_after_s == 7.0


@pytest.mark.parametrize("status", [408, 500, 503])
def test_overload_and_server_errors_are_retryable(collector: Collector, status: int) -> None:
    collector.answers.append((status, {}, b""))
    sink = OtlpSink(collector.url)
    with pytest.raises(SinkError, match=f"HTTP {status}") as caught:
        sink.send([dumps_line(records("h", 1))])
    sink.close()
    assert not isinstance(caught.value, PermanentSinkError)
    assert caught.value.retry_after_s is None


def test_400_is_a_permanent_error(collector: Collector) -> None:
    collector.answers.append((400, {}, b'{"code":3,"message":"cannot unmarshal"}'))
    sink = OtlpSink(collector.url)
    with pytest.raises(PermanentSinkError, match="HTTP 400: cannot unmarshal"):
        sink.send([dumps_line(records("i", 1))])
    sink.close()


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_an_auth_error_not_a_refused_batch(collector: Collector, status: int) -> None:
    collector.answers.append((status, {}, b'{"code":16,"message":"Unauthenticated"}'))
    sink = OtlpSink(collector.url, headers={"Authorization": "Bearer s3cr3t-t0k"})
    with pytest.raises(SinkAuthError, match=f"HTTP {status}: Unauthenticated .*credentials") as caught:
        sink.send([dumps_line(records("a", 1))])
    sink.close()
    assert not isinstance(caught.value, PermanentSinkError)
    assert "s3cr3t-t0k" not in str(caught.value)


def test_retry_after_as_an_http_date_in_the_past_means_now() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_server_that_never_answers_fails_the_request_within_its_total_timeout(
    collector: Collector,
) -> None:
    collector.hang = True
    sink = OtlpSink(collector.url, timeout_s=0.5)
    with pytest.raises(SinkError, match=r"did not answer within 0.5s"):
        sink.send([dumps_line(records("j", 1))])
    sink.close()
    assert collector.received.is_set()


def test_a_server_that_answers_a_byte_at_a_time_is_cut_off_at_the_total_timeout(
    collector: Collector,
) -> None:
    collector.drip = True
    sink = OtlpSink(collector.url, timeout_s=0.5)
    with pytest.raises(SinkError, match=r"did not answer within 0.5s"):
        sink.send([dumps_line(records("j", 1))])
    sink.close()


def test_close_interrupts_a_request_in_flight(collector: Collector) -> None:
    collector.hang = True
    sink = OtlpSink(collector.url, timeout_s=600)
    outcome: list[BaseException] = []

    def deliver() -> None:
        try:
            sink.send([dumps_line(records("k", 1))])
        except SinkError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=deliver)
    worker.start()
    assert collector.received.wait(timeout=30)
    sink.close()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert "closed during a request" in str(outcome[0])


def test_a_kept_connection_the_collector_dropped_is_reopened(collector: Collector) -> None:
    collector.drop_after_answer = True
    sink = OtlpSink(collector.url)
    sink.send([dumps_line(records("l", 1))])
    sink.send([dumps_line(records("m", 1))])
    sink.close()
    assert len(collector.requests) == 2
    assert list(decode_traces(json.loads(collector.requests[1].body))) == records("m", 1)


def test_an_unreachable_collector_is_a_retryable_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = OtlpSink(f"http://127.0.0.1:{port}/v1/traces")
    with pytest.raises(SinkError, match="cannot deliver") as caught:
        sink.send([dumps_line(records("n", 1))])
    sink.close()
    assert not isinstance(caught.value, PermanentSinkError)


def test_headers_that_would_corrupt_the_request_are_refused_without_echoing_the_value() -> None:
    with pytest.raises(ConfigurationError, match="Authorization") as caught:
        OtlpSink("http://127.0.0.1:4318/v1/traces", headers={"Authorization": "Bearer s3cr3t\r\nX: y"})
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="set by provtrace"):
        OtlpSink("http://127.0.0.1:4318/v1/traces", headers={"content-type": "application/x-protobuf"})


def test_a_line_that_is_not_provtrace_otlp_json_is_refused() -> None:
    with pytest.raises(PermanentSinkError, match="not an OTLP/JSON TracesData"):
        list(request_bodies(['{"resourceLogs":[]}\n'], max_bytes=1000))


def test_lines_are_grouped_into_requests_within_the_budget() -> None:
    lines = [dumps_line(records(t, 3, pad=200)) for t in "abcdef"]
    size = len(lines[0].encode())
    bodies = list(request_bodies(lines, max_bytes=2 * size + 50))
    assert len(bodies) == 3
    assert all(len(body) <= 2 * size + 50 for body in bodies)
    assert b"".join(bodies) == b"".join(
        b'{"resourceSpans":[' + inner(a) + b"," + inner(b) + b"]}"
        for a, b in zip(lines[::2], lines[1::2], strict=True)
    )


def test_a_huge_segment_is_split_between_spans_keeping_each_spans_bytes() -> None:
    spans = records("1", 40, pad=1000)
    line = dumps_line(spans)
    bodies = list(request_bodies([line], max_bytes=5000))
    assert len(bodies) > 5
    assert all(len(body) <= 5000 for body in bodies)
    decoded = [r for body in bodies for r in decode_traces(json.loads(body))]
    assert decoded == spans
    for body in bodies:
        for span in json.loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            encoded = json.dumps(span, ensure_ascii=False, separators=(",", ":")).encode()
            assert encoded in line.encode(), "a span's bytes changed when its segment was split"


def test_retry_waits_double_honour_retry_after_and_are_capped() -> None:
    assert [retry_delay(None, None), retry_delay(0.5, None), retry_delay(16.0, None)] == [0.5, 1.0, 30.0]
    assert retry_delay(0.5, 7.0) == 7.0  # the collector's Retry-After wins over a shorter backoff
    assert retry_delay(0.5, 3600.0) == MAX_BACKOFF_S  # but a huge one is capped


def test_a_refused_segment_in_a_batch_is_moved_aside_and_the_others_delivered(
    collector: Collector, tmp_path: Path
) -> None:
    lines = [dumps_line(records(label, 2)) for label in ("x", "y", "z")]
    collector.answers += [
        (400, {}, b'{"code":3,"message":"the batch"}'),  # the batch of three is refused ...
        (200, {}, b"{}"),
        (400, {}, b'{"code":3,"message":"span y is too large"}'),  # ... because of its second line
        (200, {}, b"{}"),
    ]
    spool = Spool(tmp_path / "spool", "stream", ["otlp"], fsync=False)
    spool.append(lines)
    counters = Counters()
    deliverer = Deliverer(spool, [OtlpSink(collector.url)], counters, threading.Condition())
    deliverer.start()
    try:
        wait_for("the spool to be delivered", lambda: True if not spool.pending() else None, timeout_s=30)
    finally:
        assert deliverer.stop()
    sent = [inner(line) for line in lines]
    assert [r.body for r in collector.requests[1:]] == [b'{"resourceSpans":[' + s + b"]}" for s in sent]
    (refusal,) = RefusedSegments(tmp_path / "spool").list()
    assert refusal.segment.read_text() == lines[1] and "span y is too large" in refusal.reason
    assert refusal.spans == 2 and refusal.sink == "otlp"
    snapshot = counters.snapshot()
    assert (snapshot["segments_refused"], snapshot["segments_delivered"]) == (1, 2)
    assert any("1 segment(s) refused" in problem for problem in deliverer.problems())
