"""Every reader treats its input as hostile: archive lines, Jaeger answers, quarantine entries, the
spool journal and URLs from the user or the environment. The readers raise only ``InputError``
(checked directly, so the CLI's last safety net cannot hide a bug); the CLI turns that into one
line on stderr and exit code 2."""

from __future__ import annotations

import contextlib
import copy
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import provtrace
from provtrace import attest, fetch, provjson
from provtrace import conventions as c
from provtrace import jsonshape as shape
from provtrace.cli.main import main as cli
from provtrace.config import build_settings
from provtrace.errors import ConfigurationError, InputError
from provtrace.export.quarantine import Quarantine
from provtrace.integrity import write_key_pair
from provtrace.model import EventRecord, LinkRecord, SpanRecord
from provtrace.otlpjson import dumps_line, encode_traces, loads_line
from provtrace.readers.archive import ArchiveSource
from provtrace.readers.jaeger import JaegerSource, v1_records, v3_records
from provtrace.reconstruct import reconstruct
from provtrace.report import RenderOptions, Verdicts
from provtrace.report import render as render_report
from provtrace.spool import Spool
from provtrace.verify import Keys
from tests.conftest import make_recorded
from tests.scenario import reference_scenario

CORPUS = Path(__file__).parent / "corpus"
TRACE_ID = "ab" * 16
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("provtrace: error: ")
    return lines[0]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli(list(args))
    return code, capsys.readouterr().err


def valid_span_json() -> dict[str, Any]:
    record = SpanRecord(TRACE_ID, "cd" * 8, "n", 0, 1000, attributes={"a": (1, "b"), "m": "x"})
    data: dict[str, Any] = encode_traces([record])
    return data


@st.composite
def mutated(draw: Any, base: Any) -> Any:
    """``base`` with one value somewhere inside replaced by arbitrary JSON data."""
    data = copy.deepcopy(base)
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, key])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, [*path, index])

    walk(data, [])
    path = draw(st.sampled_from(paths))
    replacement = draw(json_data)
    if not path:
        return replacement
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    return data


# --- archive lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((CORPUS / "archive").iterdir()), ids=lambda p: p.stem)
def test_each_kept_hostile_archive_line_is_an_input_error(path: Path) -> None:
    with pytest.raises(InputError):
        loads_line(path.read_bytes())


@pytest.mark.parametrize(
    "line",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"resourceSpans":' + "[" * 100_000,
        json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": TRACE_ID, "spanId": "cd" * 8,
                    "attributes": [{"key": "k", "value": {"intValue": "9" * 5000}}]}]}]}]}),
        '{"resourceSpans":[],"n":' + "9" * 5000 + "}",
    ],
    ids=["100k-nested-brackets", "100k-unclosed-brackets", "5000-digit-int-value", "5000-digit-number"],
)  # fmt: skip
def test_huge_numbers_and_deep_nesting_are_input_errors(line: str) -> None:
    with pytest.raises(InputError):
        loads_line(line)


@FUZZ
@given(data=json_data)
def test_the_line_decoder_raises_only_input_errors_on_any_json(data: Any) -> None:
    with contextlib.suppress(InputError):
        loads_line(json.dumps(data))


@FUZZ
@given(data=mutated(valid_span_json()))
def test_the_line_decoder_raises_only_input_errors_on_altered_lines(data: Any) -> None:
    try:
        records = loads_line(json.dumps(data))
    except InputError:
        return
    assert dumps_line(records)  # whatever is read can be written again


@FUZZ
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_the_line_decoder_raises_only_input_errors_on_any_bytes(raw: bytes) -> None:
    with contextlib.suppress(InputError):
        loads_line(raw)


def test_an_archive_of_hostile_lines_is_a_finding_per_line_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = make_recorded(tmp_path / "home")
    try:
        trace_id = reference_scenario()["decision"].trace_id
    finally:
        assert recorded.handle.shutdown(30)
    archive = tmp_path / "home" / "archive"
    hostile = sorted((CORPUS / "archive").iterdir())
    (archive / "zz-hostile.jsonl").write_bytes(b"".join(p.read_bytes() for p in hostile))
    source = ArchiveSource(archive)
    assert len(source.trace(trace_id)) == 9
    assert len(source.unreadable) == len(hostile)
    assert cli(["verify", "--stream", "--archive", str(archive)]) == 1
    assert capsys.readouterr().out.count("unreadable_line") >= len(hostile)
    assert cli(["reconstruct", trace_id, "--archive", str(archive), "--format", "json"]) in (0, 1)
    shown = capsys.readouterr()
    assert json.loads(shown.out)["trace_id"] == trace_id  # the rest of the archive is still read
    assert shown.err.count("warning: skipped") == len(hostile)


def test_an_archive_line_over_the_size_limit_is_skipped_without_reading_it_whole(tmp_path: Path) -> None:
    from provtrace.readers.archive import archive_lines

    good = dumps_line([SpanRecord(TRACE_ID, "cd" * 8, "n", 0, 1000)])
    (tmp_path / "a.jsonl").write_text("x" * 5000 + "\n" + good, encoding="utf-8")
    lines = list(archive_lines(tmp_path / "a.jsonl", max_line_bytes=1000))
    assert lines == [(1, None), (2, good.encode())]


# --- Jaeger answers --------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((CORPUS / "jaeger").iterdir()), ids=lambda p: p.stem)
def test_each_kept_hostile_jaeger_body_is_an_input_error_for_the_decoders(path: Path) -> None:
    decoders = [v3_records, v1_records] if path.name.startswith("any-") else [
        v3_records if path.name.startswith("v3-") else v1_records
    ]  # fmt: skip
    for decode in decoders:
        with pytest.raises(InputError):
            decode(shape.parse(path.read_bytes(), "the answer"))


@FUZZ
@given(data=json_data | mutated({"result": valid_span_json()}))
def test_the_v3_decoder_raises_only_input_errors(data: Any) -> None:
    with contextlib.suppress(InputError):
        v3_records(data)


V1_ANSWER = {
    "data": [
        {
            "traceID": TRACE_ID,
            "processes": {
                "p1": {"serviceName": "svc", "tags": [{"key": "host", "type": "string", "value": "h"}]}
            },
            "spans": [
                {
                    "traceID": TRACE_ID,
                    "spanID": "cd" * 8,
                    "operationName": "n",
                    "references": [{"refType": "FOLLOWS_FROM", "traceID": TRACE_ID, "spanID": "ef" * 8}],
                    "startTime": 5,
                    "duration": 1,
                    "processID": "p1",
                    "tags": [
                        {"key": "a", "type": "string", "value": '[1,"b"]'},
                        {"key": "b", "type": "binary", "value": "AP8="},
                        {"key": "n", "type": "int64", "value": 7},
                        {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                    ],
                    "logs": [{"timestamp": 6, "fields": [{"key": "event", "type": "string", "value": "e"}]}],
                }
            ],
        }
    ]
}


def test_the_v1_fuzz_base_is_a_valid_answer() -> None:
    (record,) = v1_records(V1_ANSWER)
    assert record.attributes == {"a": '[1,"b"]', "b": b"\x00\xff", "n": 7}
    assert record.status_code == 2 and record.service_name == "svc" and record.events[0].name == "e"
    assert [link.span_id for link in record.links] == ["ef" * 8]


@FUZZ
@given(data=json_data | mutated(V1_ANSWER))
def test_the_v1_decoder_raises_only_input_errors(data: Any) -> None:
    try:
        records = v1_records(data)
    except InputError:
        return
    from provtrace.readers.jaeger import interpretations

    for record in records:
        for _ in interpretations(record):
            pass


class HostileJaeger:
    """A tiny HTTP server on 127.0.0.1 whose answer to every GET is set by the test."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.answer: Callable[[http.server.BaseHTTPRequestHandler], None] = lambda h: None
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # The client giving up is what the slow and huge answers are for.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    owner.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def body(self, data: bytes, status: int = 200, length: int | None = None) -> None:
        def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            handler.send_header("Content-Length", str(len(data) if length is None else length))
            handler.end_headers()
            handler.wfile.write(data)

        self.answer = answer

    def drip(self, *, in_headers: bool) -> None:
        """One byte every 2 s, for as long as the client listens (or the test ends)."""

        def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
            if not in_headers:
                handler.send_response(200)
                handler.send_header("Content-Length", "1000000")
                handler.end_headers()
            handler.wfile.flush()
            payload = b"HTTP/1.1 200 OK\r\n" if in_headers else b"{" * 1000000
            for byte in payload:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                if self.stopping.wait(2):
                    return

        self.answer = answer

    def endless(self) -> None:
        """A body without a length that never ends."""

        def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Connection", "close")
            handler.end_headers()
            chunk = b" " * 65536
            while not self.stopping.is_set():
                handler.wfile.write(chunk)

        self.answer = answer

    def __enter__(self) -> HostileJaeger:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def jaeger() -> Iterator[HostileJaeger]:
    with HostileJaeger() as server:
        yield server


@pytest.mark.parametrize("api", ["v3", "v1"])
@pytest.mark.parametrize("path", sorted((CORPUS / "jaeger").iterdir()), ids=lambda p: p.stem)
def test_a_hostile_jaeger_body_is_one_line_and_exit_2(
    jaeger: HostileJaeger, capsys: pytest.CaptureFixture[str], path: Path, api: str
) -> None:
    jaeger.body(path.read_bytes())
    code, err = run_cli(capsys, "reconstruct", TRACE_ID, "--jaeger", jaeger.url, "--jaeger-api", api)
    assert code == 2
    one_error_line(err)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((b"[" * 100_000, 200), "nested too deeply"),
        ((b"", 200), "not JSON"),
        ((b"oops", 500), "answered 500"),
        ((b"{}", 200, 10), "cannot reach Jaeger"),  # the connection closes before the body ends
        ((b"", 200, 2 * 1024**3), "sent more than"),  # a 2 GiB body is refused before reading it
    ],
    ids=["deep", "empty", "status-500", "cut-off", "2-GiB"],
)
@pytest.mark.parametrize(
    "command",
    [
        ["verify", TRACE_ID],
        ["reconstruct", TRACE_ID],
        ["export", TRACE_ID, "--format", "prov"],
        ["find", "--service", "s", "--target", "t"],
    ],
    ids=lambda a: a[0],
)
def test_broken_jaeger_answers_are_one_line_and_exit_2(
    jaeger: HostileJaeger,
    capsys: pytest.CaptureFixture[str],
    answer: tuple[Any, ...],
    message: str,
    command: list[str],
) -> None:
    jaeger.body(*answer)
    code, err = run_cli(capsys, *command, "--jaeger", jaeger.url)
    assert code == 2
    assert message in one_error_line(err)


def test_a_well_formed_answer_is_read_through_the_same_bounded_request(
    jaeger: HostileJaeger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = make_recorded(tmp_path)
    try:
        trace_id = reference_scenario()["decision"].trace_id
    finally:
        assert recorded.handle.shutdown(30)
    records = ArchiveSource(tmp_path / "archive").trace(trace_id)
    jaeger.body(json.dumps({"result": encode_traces(records)}).encode())
    assert cli(["reconstruct", trace_id, "--jaeger", jaeger.url, "--format", "json"]) in (0, 1)
    shown = json.loads(capsys.readouterr().out)
    assert shown["trace_id"] == trace_id and len(shown["steps"]) == 7  # the decision heads the chain
    assert JaegerSource(jaeger.url, max_body_bytes=1000).timeout_s == fetch.DEFAULT_DEADLINE_S
    with pytest.raises(fetch.FetchError, match="sent more than 1000 bytes"):
        JaegerSource(jaeger.url, max_body_bytes=1000).trace(trace_id)


def test_a_jaeger_body_beyond_the_size_cap_is_refused_while_reading(jaeger: HostileJaeger) -> None:
    jaeger.endless()
    source = JaegerSource(jaeger.url, max_body_bytes=1024 * 1024)
    with pytest.raises(fetch.FetchError, match="sent more than 1048576 bytes"):
        source.trace(TRACE_ID)


@pytest.mark.parametrize("in_headers", [True, False], ids=["drip-headers", "drip-body"])
@pytest.mark.parametrize(
    "command", [["reconstruct", TRACE_ID], ["find", "--service", "s"]], ids=lambda a: a[0]
)
def test_a_dripping_jaeger_is_cut_off_at_the_total_deadline(
    jaeger: HostileJaeger, in_headers: bool, command: list[str]
) -> None:
    jaeger.drip(in_headers=in_headers)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "provtrace.cli",
            *command,
            "--jaeger",
            jaeger.url,
            "--jaeger-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,  # the bound on the test; the command returns long before it
        check=False,
    )
    assert result.returncode == 2
    assert f"Jaeger at {jaeger.url} did not answer within 1 s" in one_error_line(result.stderr)


# --- URLs from the user and the environment --------------------------------------------------

BAD_URLS = [
    "http://[::1",
    "http://127.0.0.1:abc",
    "http://127.0.0.1:99999",
    "http:///api",
    "http://a b",
    "ftp://x",
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize(
    "command",
    [
        ["reconstruct", TRACE_ID, "--jaeger"],
        ["verify", TRACE_ID, "--jaeger"],
        ["find", "--service", "s", "--jaeger"],
        ["doctor", "--jaeger"],
    ],
    ids=lambda a: a[0],
)
def test_a_malformed_jaeger_url_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROVTRACE_HOME", str(tmp_path))
    code, err = run_cli(capsys, *command, url)
    assert code == 2
    assert "--jaeger needs an http(s) URL" in one_error_line(err)


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_a_malformed_endpoint_in_the_environment_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv(variable, url)
    monkeypatch.setenv("PROVTRACE_HOME", str(tmp_path))
    with pytest.raises(ConfigurationError, match=f"{variable} must be an OTLP/HTTP URL"):
        build_settings()
    with pytest.raises(ConfigurationError):
        provtrace.configure(service_name="s")
    assert cli(["doctor"]) == 1  # doctor reports the setting that is wrong
    out = capsys.readouterr()
    assert f"FAIL  settings: {variable} must be an OTLP/HTTP URL" in out.out
    assert out.err == ""


@FUZZ
@given(url=st.text(max_size=30) | st.text(max_size=20).map(lambda t: "http://" + t))
def test_url_checks_raise_only_their_own_errors(url: str) -> None:
    problem = fetch.url_problem(url)
    if problem is None:
        assert fetch.urllib.parse.urlsplit(url).hostname
    try:
        JaegerSource(url)
    except InputError:
        assert problem is not None
    with contextlib.suppress(ConfigurationError):
        build_settings(endpoint=url, archive_dir="unused")


def test_release_to_a_malformed_endpoint_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = make_recorded(tmp_path)
    try:
        reference_scenario(approve=False)
    finally:
        assert recorded.handle.shutdown(30)
    quarantine = str(tmp_path / "quarantine")
    (entry,) = Quarantine(tmp_path / "quarantine").list()
    write_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    key = ("--signing-key", str(tmp_path / "k.key"))
    for url in ("http://[::1", "http://127.0.0.1:abc"):
        code, err = run_cli(
            capsys,
            "quarantine",
            "--dir",
            quarantine,
            "release",
            entry.id,
            "--reason",
            "r",
            "--endpoint",
            url,
            *key,
        )
        assert code == 2
        assert "endpoint must be an OTLP/HTTP URL" in one_error_line(err)
    assert Quarantine(tmp_path / "quarantine").get(entry.id).released is None


# --- quarantine entries ----------------------------------------------------------------------

ENTRY_ID = "q-00000000-" + TRACE_ID + "-00000000"


@pytest.mark.parametrize("path", sorted((CORPUS / "quarantine").iterdir()), ids=lambda p: p.stem)
def test_a_hostile_quarantine_entry_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: Path
) -> None:
    shutil.copy(path, tmp_path / f"{ENTRY_ID}.json")
    with pytest.raises(InputError):
        Quarantine(tmp_path).get(ENTRY_ID)
    for args in (
        ["list"],
        ["list", "--format", "json"],
        ["show", ENTRY_ID],
        ["release", ENTRY_ID, "--reason", "r"],
    ):
        code, err = run_cli(capsys, "quarantine", "--dir", str(tmp_path), *args)
        assert code == 2, args
        assert "cannot read quarantine entry" in one_error_line(err)


VALID_ENTRY = json.loads((CORPUS / "valid-quarantine-entry.json").read_text())


def test_the_kept_valid_quarantine_entry_reads(tmp_path: Path) -> None:
    shutil.copy(CORPUS / "valid-quarantine-entry.json", tmp_path / f"{ENTRY_ID}.json")
    entry = Quarantine(tmp_path).get(ENTRY_ID)
    assert entry.codes == ["LINK-APPROVAL"] and entry.altered() == []


@FUZZ
@given(body=json_data | mutated(VALID_ENTRY))
def test_the_quarantine_loader_raises_only_input_errors(
    tmp_path_factory: pytest.TempPathFactory, body: Any
) -> None:
    directory = tmp_path_factory.mktemp("q")
    (directory / f"{ENTRY_ID}.json").write_text(json.dumps(body))
    try:
        entries = Quarantine(directory).list(include_released=True)
    except InputError:
        return
    for entry in entries:  # what loaded is usable by the commands
        assert isinstance(entry.codes, list)
        assert entry.released is None or all(isinstance(v, str) for v in entry.released.values())


@pytest.mark.parametrize("kind", ["missing", "a-file"])
def test_a_named_quarantine_directory_that_does_not_exist_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    target = tmp_path / "nonexistent"
    if kind == "a-file":
        target.write_text("")
    code, err = run_cli(capsys, "quarantine", "--dir", str(target), "list")
    assert code == 2
    assert f"quarantine directory {target} does not exist" in one_error_line(err)
    monkeypatch.setenv("PROVTRACE_QUARANTINE_DIR", str(target))
    code, err = run_cli(capsys, "quarantine", "list")
    assert code == 2
    one_error_line(err)


def test_the_default_quarantine_directory_before_anything_was_held_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVTRACE_QUARANTINE_DIR", raising=False)
    monkeypatch.setenv("PROVTRACE_HOME", str(tmp_path))
    assert cli(["quarantine", "list"]) == 0
    assert capsys.readouterr().out == ""


# --- the spool journal, keygen and the CLI's safety net --------------------------------------


def test_a_corrupted_spool_journal_is_read_without_raising(tmp_path: Path) -> None:
    good = dumps_line([SpanRecord(TRACE_ID, "cd" * 8, "n", 0, 1000)])
    (tmp_path / "stream").mkdir()
    (tmp_path / "stream" / "journal-00000001.jsonl").write_bytes(b"\xff\xfe\x00 torn\n" + good.encode())
    spool = Spool(tmp_path, "stream", ["archive"], fsync=False)
    try:
        lines, _ = spool.read("archive")
    finally:
        spool.close()
    assert lines[1] == good
    assert lines[0].startswith("\ufffd")


@pytest.mark.parametrize("prefix", ["", "   ", "keys/", "."])
def test_keygen_refuses_an_empty_or_directory_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "keygen", "--out", prefix)
    assert code == 2
    assert "--out needs a path prefix" in one_error_line(err)
    assert list(tmp_path.rglob("*")) == []


def test_any_other_failure_while_reading_is_still_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: ArchiveSource, trace_id: str) -> list[SpanRecord]:
        raise RuntimeError("unexpected\nsecond line \x1b[31m")

    monkeypatch.setattr(ArchiveSource, "trace", broken)
    code, err = run_cli(capsys, "reconstruct", TRACE_ID, "--archive", str(tmp_path))
    assert code == 2
    line = one_error_line(err)
    assert "RuntimeError" in line and "\x1b" not in line


# --- the investigator's reports and exports ---------------------------------------------------

_IDS = [f"{n:016x}" for n in range(1, 7)]
_HOSTILE_TEXT = st.sampled_from(
    [
        "\x1b[2J\x1b[31mFORGED\x1b[0m",
        "line\nEVIDENCE   COMPLETE",
        "[bold]markup[/bold] <script>alert(1)</script> `code` **md**",
        '{"role":"user"}',
        '[{"role":"assistant","parts":[{"type":"tool_call","id":7,"name":null,"arguments":[[[]]]}]}]',
        '{"content":[{"type":"text","text":5}],"isError":true}',
        "[" * 200 + "]" * 200,
        '{"rules":[1,2,3]}…[truncated 9000 bytes]',
        "\u2028\u0085\x00",
    ]
)
_VALUES = _HOSTILE_TEXT | json_data.map(json.dumps) | st.integers() | st.booleans() | st.floats()
_KEYS = st.sampled_from(
    [
        c.STEP, c.ACTOR_ID, c.NHI_ID, c.DECISION_NAME, c.DECISION_TRIGGER, c.DECISION_ID, c.OUTCOME,
        c.ACTION_TYPE, c.ACTION_TARGET, c.ACTION_PRIVILEGED, c.ACTION_PARAMS_SHA256, c.ACTION_PARAMS_CONTENT,
        c.CHANGE_BEFORE_CONTENT, c.CHANGE_AFTER_CONTENT, c.CHANGE_BEFORE_SHA256, c.CHANGE_AFTER_SHA256,
        c.GEN_AI_INPUT_MESSAGES, c.GEN_AI_OUTPUT_MESSAGES, c.GEN_AI_TOOL_CALL_ARGUMENTS,
        c.GEN_AI_TOOL_CALL_RESULT, c.INPUT_CONTENT, c.OUTPUT_CONTENT, c.INPUT_SHA256, c.OUTPUT_SHA256,
        c.APPROVAL_EXPIRES_AT, c.APPROVAL_PARAMS_SHA256, c.APPROVAL_APPROVER_ID, c.POLICY_REASON,
        c.CONTENT_TRUNCATED, c.CONTENT_KEYED, c.GUARD_VIOLATIONS, c.SECRET_REF, c.VERIFICATION_DETAIL,
        c.CLAIM_ACTOR_ID, c.SEAL_STREAM, c.SEAL_SPANS, c.SEAL_DIGEST, c.VIOLATION_DETAILS,
    ]
)  # fmt: skip


@st.composite
def hostile_trace(draw: Any) -> list[SpanRecord]:
    """Spans of one trace with parents in cycles or missing, kinds mixed, every provenance
    attribute holding anything (control sequences, markup, JSON of any shape, text cut short)."""
    records = []
    for span_id in draw(st.lists(st.sampled_from(_IDS), min_size=1, max_size=6, unique=True)):
        attributes: dict[str, Any] = {c.STEP: draw(st.sampled_from([*c.STEPS, "junk"]))}
        for key in draw(st.lists(_KEYS, max_size=8, unique=True)):
            value = draw(_VALUES | st.lists(_HOSTILE_TEXT, max_size=3).map(tuple))
            attributes[key] = value
        links = tuple(
            LinkRecord(
                TRACE_ID,
                draw(st.sampled_from(_IDS)),
                {c.LINK_TYPE: draw(st.sampled_from([*c.LINK_TYPES, "?"]))},
            )
            for _ in range(draw(st.integers(0, 3)))
        )
        events = (EventRecord("exception", 1, {"exception.message": draw(_HOSTILE_TEXT)}),)
        records.append(
            SpanRecord(
                TRACE_ID,
                span_id,
                draw(st.sampled_from(["decision x", c.SEAL_SPAN_NAME, c.VIOLATION_SPAN_NAME, "\x1b[1mname"])),
                draw(st.integers(0, 2**63 - 1)),
                draw(st.integers(0, 2**63 - 1)),
                parent_span_id=draw(st.sampled_from(["", *_IDS])),
                kind=draw(st.integers(0, 5)),
                status_code=draw(st.integers(0, 2)),
                attributes=attributes,
                links=links,
                events=events,
            )
        )
    return records


@FUZZ
@given(records=hostile_trace())
def test_every_report_and_export_of_any_trace_is_rendered_without_raising(records: list[SpanRecord]) -> None:
    chain = reconstruct(TRACE_ID, records)
    verdicts = Verdicts.of(chain, None, "", "fuzz")
    for fmt in ("text", "markdown", "json", "html"):
        for options in (RenderOptions(), RenderOptions(full=True, width=40), RenderOptions(step=1)):
            out = render_report(chain, fmt, verdicts, options)
            assert "\x1b" not in out and "\x00" not in out
            if fmt == "html":
                assert "<script" not in out
            if fmt == "text":
                assert all(len(line) <= options.width for line in out.splitlines())
    json.loads(render_report(chain, "json", verdicts))
    json.dumps(provjson.document(chain))
    json.dumps(attest.statement(chain, verdicts))
    assert sorted(s.index for s in chain.steps) == list(range(1, len(chain.steps) + 1))


@pytest.mark.parametrize("path", sorted((CORPUS / "in-toto").iterdir()), ids=lambda p: p.stem)
def test_each_kept_hostile_attestation_is_one_line_and_exit_2(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    code, err = run_cli(capsys, "verify", "--in-toto", str(path), "--public-key", str(tmp_path / "k.pub"))
    assert code == 2
    one_error_line(err)


@FUZZ
@given(
    data=json_data
    | mutated(
        {"payloadType": attest.PAYLOAD_TYPE, "payload": "e30=", "signatures": [{"keyid": "k", "sig": "AA=="}]}
    )
)
def test_the_attestation_check_raises_only_input_errors(data: Any) -> None:
    with contextlib.suppress(InputError):
        attest.check_envelope(json.dumps(data).encode(), Keys({}, given=False))


def test_a_truncated_archive_file_or_an_unknown_trace_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = make_recorded(tmp_path / "home")
    try:
        trace_id = reference_scenario()["decision"].trace_id
    finally:
        assert recorded.handle.shutdown(30)
    (path,) = (tmp_path / "home" / "archive").glob("*.jsonl")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 3])  # cut inside the first line: nothing is readable
    for command in (["reconstruct", trace_id], ["export", trace_id, "--format", "prov"]):
        code, err = run_cli(capsys, *command, "--archive", str(tmp_path / "home" / "archive"))
        assert code == 2
        assert f"trace {trace_id} not found" in one_error_line(err) and "1 unreadable line(s) skipped" in err
    code, err = run_cli(capsys, "reconstruct", "0" * 32, "--archive", str(tmp_path / "home" / "archive"))
    assert code == 2
    assert "not found" in one_error_line(err)
