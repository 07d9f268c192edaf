"""``configure()``: settings from keywords and environment, the tracer provider, and the handle.

Keywords win over environment variables, which win over defaults. Every invalid value raises
:class:`~provtrace.errors.ConfigurationError` naming the setting and what it accepts.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Tracer as SdkTracer

from provtrace import __about__, metrics, runtime
from provtrace import conventions as c
from provtrace.content import DEFAULT_MAX_CONTENT_BYTES, CapturePolicy
from provtrace.errors import ConfigurationError, KeyFileError, SigningError
from provtrace.fetch import url_problem
from provtrace.keyed import DIGEST_KEY, load_digest_key
from provtrace.pipeline import Pipeline, PipelineSettings
from provtrace.processor import ProcessorLimits
from provtrace.rules import Rule
from provtrace.runtime import Health
from provtrace.sealing import ViolationHandler
from provtrace.signing import signer_from
from provtrace.spool import SpoolError
from provtrace.tracing import AuditSampler, audit_span_limits
from provtrace.violations import ViolationLog

logger = logging.getLogger("provtrace")

DEFAULT_HEARTBEAT_S = 60.0
DEFAULT_DECISION_TIMEOUT_S = 300.0


def default_home() -> Path:
    """Where provtrace keeps its archive, spool and quarantine unless told otherwise."""
    explicit = os.environ.get("PROVTRACE_HOME")
    if explicit:
        return Path(explicit)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "provtrace"


class Provtrace:
    """The handle ``configure()`` returns: flush, shut down, and see what the pipeline did."""

    def __init__(self, pipeline: Pipeline, capture: CapturePolicy, provider: TracerProvider) -> None:
        self._pipeline = pipeline
        self.capture = capture
        self.tracer_provider = provider
        self.tracer = provider.get_tracer(
            c.INSTRUMENTATION_NAME, __about__.__version__, schema_url=c.SCHEMA_URL
        )
        self._warned_unrecorded = False

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    @property
    def stream_id(self) -> str:
        return self._pipeline.stream_id

    @property
    def key_id(self) -> str:
        return self._pipeline.sealer.key_id

    @property
    def archive_dir(self) -> Path | None:
        return self._pipeline.settings.archive_dir

    @property
    def quarantine_dir(self) -> Path:
        return self._pipeline.settings.quarantine_dir

    @property
    def endpoint(self) -> str | None:
        return self._pipeline.settings.endpoint

    @property
    def counters(self) -> dict[str, int]:
        snapshot = self._pipeline.counters.snapshot()
        processor = self._pipeline.processor
        snapshot["buffered_spans"] = processor.buffered_spans
        snapshot["buffered_traces"] = processor.buffered_traces
        snapshot["spool_pending_bytes"] = self._pipeline.pending_bytes
        return snapshot

    @property
    def recording(self) -> bool:
        """False when the tracer provider records nothing (``OTEL_SDK_DISABLED=true``): then no
        step is recorded and the action guard refuses every guarded action."""
        return isinstance(self.tracer, SdkTracer)

    def health(self) -> Health:
        health = self._pipeline.health()
        if self.recording:
            return health
        problem = "the tracer provider records nothing (OTEL_SDK_DISABLED=true?): no evidence is recorded"
        return Health(False, (*health.problems, problem), health.warnings)

    # --- the runtime interface (provtrace.runtime.Runtime) the recording API uses -------------

    def count(self, name: str, amount: int = 1) -> None:
        self._pipeline.counters.add(name, amount)

    def recording_error(self, what: str, exc: BaseException) -> None:
        self._pipeline.recording_error(what, exc)

    def seals(self, span_id: int) -> bool:
        return self._pipeline.processor.tracks(span_id)

    def note_unrecorded(self, step: str) -> None:
        """A step ran but its span is not recorded (disabled or sampling provider): counted, and
        logged once per configuration, never silent."""
        self._pipeline.counters.add("steps_unrecorded")
        if not self._warned_unrecorded:
            self._warned_unrecorded = True
            logger.warning(
                "provtrace: a %s step is not being recorded: the tracer provider does not record its "
                "span (OTEL_SDK_DISABLED, or an application sampler); guarded actions are refused",
                step,
            )

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Seal and deliver every segment whose spans have ended; True when all arrived."""
        return self._pipeline.force_flush(timeout_s)

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Flush everything (open decisions are sealed as UNFINISHED), close the stream with a
        final seal, and deliver; True when nothing was left in the spool."""
        global _current
        with _lock:
            if _current is self:
                _current = None
        runtime.uninstall(self)
        return self._pipeline.shutdown(timeout_s)


class _SlotProcessor(SpanProcessor):
    """Attached once to a tracer provider; forwards to the pipeline currently configured, so that
    ``configure()`` can be called again without a new global provider."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        handle = _current
        if handle is not None:
            try:
                handle.pipeline.processor.on_start(span, parent_context)
            except Exception as exc:  # noqa: BLE001 - recording must never break the agent
                handle.pipeline.recording_error("span start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        handle = _current or _last  # after shutdown, the closed pipeline reports the span as lost
        if handle is not None:
            try:
                handle.pipeline.processor.on_end(span)
            except Exception as exc:  # noqa: BLE001
                handle.pipeline.recording_error("span end", exc)

    def shutdown(self) -> None:
        handle = _current
        if handle is not None:
            handle.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        handle = _current
        return handle.force_flush(timeout_millis / 1000) if handle is not None else True


_lock = threading.Lock()
_current: Provtrace | None = None
_last: Provtrace | None = None
_own_provider: TracerProvider | None = None
_attached: weakref.WeakSet[TracerProvider] = weakref.WeakSet()


def current() -> Provtrace | None:
    """The handle of the active configuration, if any."""
    return _current


def _setting(value: Any, env: str, default: Any = None) -> Any:
    if value is not None:
        return value
    raw = os.environ.get(env)
    return raw if raw not in (None, "") else default


def _number(value: Any, name: str, *, integer: bool = False, minimum: float = 0.0) -> Any:
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"{name} must be {kind}, got {value!r}") from None
    if number < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum:g}, got {value!r}")
    return number


def _choice(value: str, name: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if value not in options:
        raise ConfigurationError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value


def _endpoint(endpoint: str | None) -> str | None:
    """The OTLP/HTTP traces URL, from the argument or the environment, checked to be usable."""
    source = "endpoint"
    if endpoint is None:
        traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if traces:
            endpoint, source = traces, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        else:
            base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            if not base:
                return None
            endpoint, source = base.rstrip("/") + "/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT"
    elif not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    problem = url_problem(endpoint)
    if problem:
        raise ConfigurationError(
            f"{source} must be an OTLP/HTTP URL such as http://127.0.0.1:4318, got {endpoint!r}: {problem}"
        )
    return endpoint


def _otlp_env(suffix: str) -> tuple[str, str] | None:
    """``OTEL_EXPORTER_OTLP_TRACES_<suffix>``, else ``OTEL_EXPORTER_OTLP_<suffix>``: (name, value)."""
    for name in (f"OTEL_EXPORTER_OTLP_TRACES_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"):
        value = os.environ.get(name)
        if value:
            return name, value
    return None


def _headers(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """The keyword's headers, else the environment's ``key=value,...`` list with percent-encoded
    values (the OTLP exporter specification: ``Authorization=Bearer%20...``). A malformed entry is
    refused by its position: the values are usually credentials and are never quoted."""
    if headers is not None:
        return tuple(headers.items())
    found = _otlp_env("HEADERS")
    if found is None:
        return ()
    variable, raw = found
    pairs: list[tuple[str, str]] = []
    for position, item in enumerate(raw.split(","), start=1):
        if not item.strip():
            continue
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ConfigurationError(
                f"{variable}: entry {position} is not key=value (values are not shown: they may be secret)"
            )
        pairs.append((urllib.parse.unquote(key.strip()), urllib.parse.unquote(value.strip())))
    return tuple(pairs)


def _tls_file(value: str | os.PathLike[str] | None, keyword: str, suffix: str) -> Path | None:
    """A TLS file for the OTLP exporter, from the keyword or the environment; it must exist."""
    source = keyword
    if value is None:
        found = _otlp_env(suffix)
        if found is None:
            return None
        source, value = found
    path = Path(value)
    if not path.is_file():
        raise ConfigurationError(f"{source}: {path} is not a readable file")
    return path


def _tls_files(
    endpoint: str | None,
    certificate_file: str | os.PathLike[str] | None,
    client_certificate_file: str | os.PathLike[str] | None,
    client_key_file: str | os.PathLike[str] | None,
) -> tuple[Path | None, Path | None, Path | None]:
    """CA, client certificate and client key for an https endpoint. Given with an http://
    endpoint they are refused: the user meant TLS, and the headers would travel in clear."""
    files = (
        _tls_file(certificate_file, "certificate_file", "CERTIFICATE"),
        _tls_file(client_certificate_file, "client_certificate_file", "CLIENT_CERTIFICATE"),
        _tls_file(client_key_file, "client_key_file", "CLIENT_KEY"),
    )
    if endpoint is None:
        return None, None, None
    if any(files) and not endpoint.startswith("https://"):
        raise ConfigurationError(
            f"TLS certificates are configured but the OTLP endpoint {endpoint} is not https://"
        )
    return files


def _signing_key(signing_key: Any) -> Any:
    """A signer (``provtrace.signing``): a key file, a key object, ``transit:[MOUNT/]KEY``."""
    try:
        return signer_from(_setting(signing_key, "PROVTRACE_SIGNING_KEY"))
    except (KeyFileError, SigningError) as exc:
        raise ConfigurationError(f"signing_key: {exc}") from exc


def _tsa_url(tsa_url: str | None) -> str | None:
    url = _setting(tsa_url, "PROVTRACE_TSA_URL")
    if url is not None and not str(url).startswith(("http://", "https://")):
        raise ConfigurationError(f"tsa_url must be an http:// or https:// URL, got {url!r}")
    return str(url) if url is not None else None


def build_settings(
    service_name: str | None = None,
    endpoint: str | None = None,
    archive_dir: str | os.PathLike[str] | None = None,
    completeness: str | None = None,
    profile: str | None = None,
    capture_content: str | None = None,
    signing_key: Any = None,
    spool_dir: str | os.PathLike[str] | None = None,
    *,
    quarantine_dir: str | os.PathLike[str] | None = None,
    heartbeat_interval: float | None = None,
    decision_timeout: float | None = None,
    max_buffered_spans: int | None = None,
    max_buffered_traces: int | None = None,
    content_max_bytes: int | None = None,
    rules: Iterable[Rule] = (),
    violation_handler: ViolationHandler | None = None,
    headers: Mapping[str, str] | None = None,
    spool_fsync: bool = True,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    tsa_url: str | None = None,
    certificate_file: str | os.PathLike[str] | None = None,
    client_certificate_file: str | os.PathLike[str] | None = None,
    client_key_file: str | os.PathLike[str] | None = None,
) -> tuple[PipelineSettings, CapturePolicy]:
    """Resolve keywords, environment and defaults into validated settings."""
    home = default_home()
    name = _setting(service_name, "OTEL_SERVICE_NAME", "unknown_service")
    resolved_endpoint = _endpoint(endpoint)
    archive = _setting(archive_dir, "PROVTRACE_ARCHIVE_DIR")
    if archive is None and resolved_endpoint is None:
        archive = home / "archive"
    capture = CapturePolicy(
        _choice(
            _setting(capture_content, "PROVTRACE_CAPTURE_CONTENT", c.CAPTURE_REDACTED),
            "capture_content",
            c.CAPTURE_MODES,
        ),
        _number(
            _setting(content_max_bytes, "PROVTRACE_CONTENT_MAX_BYTES", DEFAULT_MAX_CONTENT_BYTES),
            "content_max_bytes",
            integer=True,
            minimum=64,
        ),
    )
    limits = ProcessorLimits(
        max_buffered_spans=_number(
            _setting(max_buffered_spans, "PROVTRACE_MAX_BUFFERED_SPANS", 100_000),
            "max_buffered_spans",
            integer=True,
            minimum=1,
        ),
        max_buffered_traces=_number(
            _setting(max_buffered_traces, "PROVTRACE_MAX_BUFFERED_TRACES", 10_000),
            "max_buffered_traces",
            integer=True,
            minimum=1,
        ),
        decision_timeout_s=_number(
            _setting(decision_timeout, "PROVTRACE_DECISION_TIMEOUT", DEFAULT_DECISION_TIMEOUT_S),
            "decision_timeout",
            minimum=0.001,
        ),
    )
    handler: ViolationHandler = violation_handler or ViolationLog()
    if not callable(handler):
        raise ConfigurationError("violation_handler must be a callable taking a ViolationReport")
    user_rules = tuple(rules)
    for rule in user_rules:
        if not callable(rule):
            raise ConfigurationError(f"rules must be callables taking a SegmentContext, got {rule!r}")
    checkpoints = _setting(checkpoint_dir, "PROVTRACE_CHECKPOINT_DIR")
    if checkpoints is None:
        checkpoints = Path(archive) / "checkpoints" if archive is not None else home / "checkpoints"
    settings = PipelineSettings(
        service_name=str(name),
        completeness=_choice(
            _setting(completeness, "PROVTRACE_COMPLETENESS", c.MODE_ENFORCE),
            "completeness",
            c.COMPLETENESS_MODES,
        ),
        profile=_choice(
            _setting(profile, "PROVTRACE_PROFILE", c.PROFILE_BASELINE),
            "profile",
            (c.PROFILE_BASELINE, c.PROFILE_AUDIT),
        ),
        archive_dir=Path(archive) if archive is not None else None,
        endpoint=resolved_endpoint,
        spool_dir=Path(_setting(spool_dir, "PROVTRACE_SPOOL_DIR", home / "spool")),
        quarantine_dir=Path(_setting(quarantine_dir, "PROVTRACE_QUARANTINE_DIR", home / "quarantine")),
        heartbeat_interval_s=_number(
            _setting(heartbeat_interval, "PROVTRACE_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_S),
            "heartbeat_interval",
            minimum=0.01,
        ),
        limits=limits,
        signing_key=_signing_key(signing_key),
        rules=user_rules,
        violation_handler=handler,
        headers=_headers(headers),
        tls_files=_tls_files(resolved_endpoint, certificate_file, client_certificate_file, client_key_file),
        spool_fsync=spool_fsync,
        checkpoint_dir=Path(checkpoints),
        tsa_url=_tsa_url(tsa_url),
    )
    return settings, capture


def configure(
    service_name: str | None = None,
    endpoint: str | None = None,
    archive_dir: str | os.PathLike[str] | None = None,
    completeness: str | None = None,
    profile: str | None = None,
    capture_content: str | None = None,
    signing_key: Any = None,
    spool_dir: str | os.PathLike[str] | None = None,
    *,
    quarantine_dir: str | os.PathLike[str] | None = None,
    heartbeat_interval: float | None = None,
    decision_timeout: float | None = None,
    max_buffered_spans: int | None = None,
    max_buffered_traces: int | None = None,
    content_max_bytes: int | None = None,
    rules: Iterable[Rule] = (),
    violation_handler: ViolationHandler | None = None,
    headers: Mapping[str, str] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    spool_fsync: bool = True,
    digest_key: str | os.PathLike[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    tsa_url: str | None = None,
    certificate_file: str | os.PathLike[str] | None = None,
    client_certificate_file: str | os.PathLike[str] | None = None,
    client_key_file: str | os.PathLike[str] | None = None,
) -> Provtrace:
    """Start recording provenance; see DESIGN.md and docs/configuration.md for every setting.

    With no endpoint (keyword, ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), sealed segments go to the local archive directory.
    Calling ``configure()`` again shuts the previous pipeline down first.
    """
    global _current, _last
    settings, capture = build_settings(
        service_name,
        endpoint,
        archive_dir,
        completeness,
        profile,
        capture_content,
        signing_key,
        spool_dir,
        quarantine_dir=quarantine_dir,
        heartbeat_interval=heartbeat_interval,
        decision_timeout=decision_timeout,
        max_buffered_spans=max_buffered_spans,
        max_buffered_traces=max_buffered_traces,
        content_max_bytes=content_max_bytes,
        rules=rules,
        violation_handler=violation_handler,
        headers=headers,
        spool_fsync=spool_fsync,
        checkpoint_dir=checkpoint_dir,
        tsa_url=tsa_url,
        certificate_file=certificate_file,
        client_certificate_file=client_certificate_file,
        client_key_file=client_key_file,
    )
    key = _digest_key(digest_key)
    with _lock:
        previous, _current = _current, None
    if previous is not None:
        previous.shutdown()
    DIGEST_KEY.use(key)
    try:
        pipeline = Pipeline(settings)
    except SpoolError as exc:
        raise ConfigurationError(f"spool_dir: {exc.strerror} (set spool_dir or PROVTRACE_SPOOL_DIR)") from exc
    provider = _provider(settings.service_name, tracer_provider)
    handle = Provtrace(pipeline, capture, provider)
    metrics.register(meter_provider)
    if not handle.recording:
        logger.warning(
            "provtrace: the tracer provider records nothing (OTEL_SDK_DISABLED=true): no evidence "
            "will be recorded and every guarded action will be refused"
        )
    with _lock:
        _current = _last = handle
    runtime.install(handle)
    return handle


def _after_fork_in_child() -> None:
    """A forked child (gunicorn and Celery workers, multiprocessing) gets a pipeline of its own:
    a new stream, spool and threads (those of the parent did not survive the fork). Whatever the
    parent had buffered or spooled stays the parent's to deliver."""
    global _lock
    _lock = threading.Lock()
    runtime.reset_after_fork()
    handle = _current
    if handle is None:
        return
    old = handle._pipeline
    try:
        old.abandon_after_fork()
        handle._pipeline = Pipeline(old.settings, adopt_orphans=False)
        handle._warned_unrecorded = False
    except Exception as exc:  # noqa: BLE001 - the child must run even if recording cannot
        logger.error("provtrace could not start a pipeline in the forked process %d: %s", os.getpid(), exc)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _digest_key(path: str | os.PathLike[str] | None) -> bytes:
    """The evidence owner's key for digests of secret-bearing content (see provtrace.keyed):
    ``digest_key``, else ``PROVTRACE_DIGEST_KEY``, else ``$PROVTRACE_HOME/keys/digest.key``,
    created owner-only on first use."""
    target = Path(_setting(path, "PROVTRACE_DIGEST_KEY", default_home() / "keys" / "digest.key"))
    try:
        return load_digest_key(target, create=True)
    except KeyFileError as exc:
        raise ConfigurationError(f"digest_key: {exc} (set digest_key or PROVTRACE_DIGEST_KEY)") from exc
    except OSError as exc:
        raise ConfigurationError(
            f"digest_key: cannot create {target}: {exc.strerror} (set digest_key or PROVTRACE_DIGEST_KEY)"
        ) from exc


def _provider(service_name: str, explicit: TracerProvider | None) -> TracerProvider:
    """The provider provtrace records into: the user's if they have one, else its own."""
    global _own_provider
    candidate: TracerProvider | None = explicit
    if candidate is None:
        active = trace.get_tracer_provider()
        if isinstance(active, TracerProvider) and active is not _own_provider:
            candidate = active
            logger.info(
                "provtrace is attaching to the application's TracerProvider; its sampler and span "
                "limits apply (see docs/configuration.md)"
            )
    if candidate is None:
        if _own_provider is None:
            _own_provider = TracerProvider(
                sampler=AuditSampler(),
                span_limits=audit_span_limits(),
                resource=Resource.create({c.SERVICE_NAME: service_name}),
            )
            if not isinstance(trace.get_tracer_provider(), TracerProvider):
                trace.set_tracer_provider(_own_provider)
        candidate = _own_provider
    if candidate not in _attached:
        candidate.add_span_processor(_SlotProcessor())
        _attached.add(candidate)
    return candidate
