"""What every step shares: one object that is both a context manager and a decorator.

``provtrace.tool_call("lookup")`` returns a :class:`StepSpec`. Used in ``with`` it opens one span
and yields a handle; used as a decorator it opens one span per call, records the bound arguments
as input and the return value as output, for sync and async functions, generators and async
generators (the span covers the whole iteration).

Recording never breaks the agent: an error inside provtrace is logged and counted and the user's
code runs; the user's own exceptions propagate unchanged, with the span marked as error. The
action guard is the one deliberate exception.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import logging
import threading
import traceback
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, Union, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode

from provtrace import conventions as c
from provtrace import runtime
from provtrace.clock import Reading, now_ns, reading
from provtrace.content import (
    REDACTOR,
    Captured,
    CapturePolicy,
    StreamingDigest,
    canonical_json,
    capture,
    to_jsonable,
)
from provtrace.keyed import DIGEST_KEY
from provtrace.steps.scope import FACTS, DecisionState, Proposal, StepFact, current_decision

logger = logging.getLogger("provtrace")

H = TypeVar("H", bound="StepHandle")
F = TypeVar("F", bound=Callable[..., Any])
Ref = Union["StepHandle", SpanContext, Span]
Refs = Union[Ref, Sequence[Ref], None]  # noqa: UP007 - a runtime alias with a forward reference

_DEFAULT_CAPTURE = CapturePolicy()
_UNSET: Any = object()


def current_capture() -> CapturePolicy:
    """The capture policy of the active configuration (the default one when unconfigured)."""
    active = runtime.current()
    return active.capture if active else _DEFAULT_CAPTURE


def report_recording_error(what: str, exc: BaseException) -> None:
    active = runtime.current()
    if active is not None:
        active.recording_error(what, exc)
    else:
        logger.warning("provtrace could not record %s: %s", what, type(exc).__name__)


def context_of(ref: Ref) -> SpanContext:
    if isinstance(ref, StepHandle):
        return ref.context
    if isinstance(ref, SpanContext):
        return ref
    return ref.get_span_context()


def refs_to_list(refs: Refs) -> list[Ref]:
    if refs is None:
        return []
    if isinstance(refs, (StepHandle, SpanContext, Span)):
        return [refs]
    return list(refs)


def fact_of(ref: Ref) -> StepFact | None:
    if isinstance(ref, StepHandle):
        return ref.fact()
    return FACTS.get(context_of(ref))


class StepHandle:
    """The live step given to a ``with`` body: record content and verdicts on its span."""

    step: ClassVar[str] = ""
    input_attribute: ClassVar[str] = c.INPUT_CONTENT
    output_attribute: ClassVar[str] = c.OUTPUT_CONTENT
    # False when the span belongs to someone else (see ``provtrace.steps.interop.adopt``): the
    # step then records its facts at finish but leaves ending the span to its owner.
    owns_span: bool = True

    def __init__(
        self,
        spec: StepSpec[Any],
        span: Span,
        decision: DecisionState | None,
        capture: CapturePolicy,
    ) -> None:
        self.spec = spec
        self.span = span
        self.context = span.get_span_context()
        self.decision = decision
        self.capture = capture
        self._truncated: list[str] = []
        self._keyed: list[str] = []
        self._tokens: list[Any] = []
        self._entered: contextvars.Token[Any] | None = None
        self.links: list[Link] = []  # the span's causal links, as the step made them
        self.proposal_linked = False
        self._ended = False
        self.error: BaseException | None = None
        # Recorded as ``error.type`` instead of the exception's type when set (e.g. a JSON-RPC
        # error code, which the MCP conventions ask for).
        self.error_type: str | None = None
        self.clock: Reading | None = None  # the monotonic reading at start, for timed steps

    # --- public recording API ---------------------------------------------------------------

    @property
    def decision_id(self) -> str:
        return self.decision.decision_id if self.decision else ""

    @property
    def span_id(self) -> str:
        return trace.format_span_id(self.context.span_id)

    @property
    def trace_id(self) -> str:
        return trace.format_trace_id(self.context.trace_id)

    @property
    def start_ns(self) -> int:
        """When the span started (0 for a span that is not recorded)."""
        start = getattr(self.span, "start_time", None)
        return start if isinstance(start, int) else 0

    def set_attribute(self, key: str, value: Any) -> None:
        with self.recording("attribute"):
            self.span.set_attribute(key, value)

    def record_input(self, value: Any) -> str:
        """Record the step's input (digest always, content per capture mode); returns the digest."""
        return self._content(value, self.input_attribute, c.INPUT_SHA256)

    def record_output(self, value: Any) -> str:
        """Record the step's output (digest always, content per capture mode); returns the digest."""
        return self._content(value, self.output_attribute, c.OUTPUT_SHA256)

    # --- shared helpers ---------------------------------------------------------------------

    def recording(self, what: str) -> _Recording:
        """Run recording code; an error in it is reported and swallowed, never raised."""
        return _Recording(f"{self.step} {what}")

    def _content(self, value: Any, content_attribute: str, digest_attribute: str) -> str:
        """Digest of the original and, per capture mode, the redacted content."""
        digest = ""
        if not self.span.is_recording() or self.capture.mode == c.CAPTURE_NONE:
            return digest
        with self.recording(digest_attribute):
            captured = capture(value)
            digest = captured.digest
            self.set_digest(digest_attribute, digest, keyed=captured.keyed)
            self._store(captured.jsonable, content_attribute)
        return digest

    def set_digest(self, attribute: str, digest: str, *, keyed: bool) -> None:
        """Record a content digest; a keyed one (the content held a fetched secret) is listed in
        ``provenance.content.keyed`` with the key's id, so an investigator knows which to use."""
        self.span.set_attribute(attribute, digest)
        if keyed:
            self._keyed.append(attribute)
            self.span.set_attribute(c.CONTENT_KEYED, tuple(dict.fromkeys(self._keyed)))
            self.span.set_attribute(c.CONTENT_KEY_ID, DIGEST_KEY.key_id)

    def _store(self, jsonable: Any, content_attribute: str) -> None:
        rendered = self.capture.render(jsonable)
        if rendered is None:
            return
        text, truncated = rendered
        self.span.set_attribute(content_attribute, text)
        if truncated:
            self._truncated.append(content_attribute)
            self.span.set_attribute(c.CONTENT_TRUNCATED, tuple(self._truncated))

    def started_with(self, links: list[Link]) -> None:
        """The links the span started with (a ``triggered_by`` among them counts as linked)."""
        self.links = links
        self.proposal_linked = any(
            (link.attributes or {}).get(c.LINK_TYPE) == c.LINK_TRIGGERED_BY for link in links
        )

    def link_proposal(self, proposal: Proposal | None) -> None:
        """Add the ``triggered_by`` link to the model output that proposed this step, once."""
        if proposal is None or self.proposal_linked or not self.span.is_recording():
            return
        with self.recording("triggered_by"):
            link = proposal_link(proposal)
            self.span.add_link(link.context, link.attributes)
            self.links.append(link)
            self.proposal_linked = True
            self.span.set_attribute(c.LINKS_MIRROR, links_mirror(self.links))

    def _store_text(self, attribute: str, text: str | None) -> None:
        """Short free text (reasons, details): redacted whatever the capture mode."""
        if text is not None and self.capture.stores_content:
            self.span.set_attribute(attribute, REDACTOR.text(str(text))[: self.capture.max_bytes])

    def fact(self) -> StepFact:
        return StepFact(step=self.step, context=self.context)

    def _remember(self) -> None:
        fact = self.fact()
        FACTS.put(fact)
        if self.decision is not None:
            self.decision.add(fact)

    # --- lifecycle hooks, overridden per step -----------------------------------------------

    def _activate(self) -> None:
        self._tokens.append(otel_context.attach(trace.set_span_in_context(self.span)))

    def _deactivate(self) -> None:
        while self._tokens:
            token = self._tokens.pop()
            with contextlib.suppress(Exception):
                otel_context.detach(token)

    def activated(self) -> _Activation:
        """Make the span (and for a decision, its scope) current while user code runs."""
        return _Activation(self)

    def _on_finish(self, error: BaseException | None) -> None:
        """Set step-specific end attributes (outcome, verdict defaults)."""

    def _finish(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self.error = error
        with self.recording("finish"):
            self._on_finish(error)
        if error is not None:
            with self.recording("error"):
                record_exception(self.span, error, error_type=self.error_type)
        with self.recording("facts"):
            self._remember()
        if self.owns_span:
            with self.recording("end"):
                self.span.end(end_time=now_ns())


def bind_params(handle: StepHandle, captured: Captured, attribute: str) -> str:
    """Record the exact digest of an action's parameters (or of those an approval was given for)
    as ``attribute`` and return it. Parameters that hold something no digest identifies exactly
    (an object known only by its repr, a cycle, nesting too deep) bind nothing: the attribute is
    left out, ``provenance.params.inexact`` says why, and an approval can never match them."""
    if captured.exact:
        handle.set_digest(attribute, captured.digest, keyed=captured.keyed)
        return captured.digest
    handle.span.set_attribute(
        c.PARAMS_INEXACT,
        "parameters hold a value JSON cannot express exactly (an object known only by its repr, "
        "a cycle, or nesting too deep); pass JSON data",
    )
    return ""


_warned_unconfigured = threading.Event()
# The steps opened with ``with`` and not yet exited, innermost last: one variable for every spec,
# reset by token on exit, so nothing is left behind per step.
_open_steps: contextvars.ContextVar[tuple[tuple[StepSpec[Any], StepHandle], ...]] = contextvars.ContextVar(
    "provtrace_open_steps", default=()
)


def _note_recording(handle: runtime.Runtime | None, span: Span, step: str) -> None:
    """Steps that will not become evidence are never silent: counted and logged once."""
    if handle is not None:
        if not span.is_recording():
            handle.note_unrecorded(step)
    elif not _warned_unconfigured.is_set():
        _warned_unconfigured.set()
        logger.warning(
            "provtrace: a %s step ran but provtrace.configure() has not been called: nothing is "
            "checked, sealed or delivered as evidence, and guarded actions are refused",
            step,
        )


class _Recording:
    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        report_recording_error(self._what, exc)
        return True


class _Activation:
    __slots__ = ("_handle",)

    def __init__(self, handle: StepHandle) -> None:
        self._handle = handle

    def __enter__(self) -> None:
        self._handle._activate()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._handle._deactivate()


def record_exception(span: Span, error: BaseException, *, error_type: str | None = None) -> None:
    """Mark the span as error without letting the exception text carry a secret out.

    ``error.type`` is the exception's type unless the caller knows a better class of error.
    """
    message = REDACTOR.text(str(error))
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {message}"[:1024]))
    span.set_attribute(c.ERROR_TYPE, error_type or type(error).__qualname__)
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    span.add_event(
        "exception",
        {
            "exception.type": type(error).__qualname__,
            "exception.message": message,
            "exception.stacktrace": REDACTOR.text(stack)[-8192:],
        },
        timestamp=now_ns(),
    )


class StepSpec(Generic[H]):
    """A step's configuration; a context manager and a decorator (see module docstring)."""

    handle_type: ClassVar[type[StepHandle]] = StepHandle
    step: ClassVar[str] = ""
    # Steps whose order and age authorise an action record a monotonic reading at start.
    timed: ClassVar[bool] = False
    kind: SpanKind = SpanKind.INTERNAL  # an instance may override it (e.g. an MCP tool call)

    def __init__(
        self,
        *,
        actor: str | None = None,
        nhi: str | None = None,
        triggered_by: Refs = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.actor = actor
        self.nhi = nhi
        self.triggered_by = triggered_by
        self.attributes = dict(attributes or {})

    # --- per-step overrides -----------------------------------------------------------------

    def span_name(self) -> str:
        raise NotImplementedError

    def step_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        return {}

    def inferred_links(self, decision: DecisionState | None) -> list[Link]:
        return self._triggered_by_links(decision)

    def before_run(self, handle: H) -> None:
        """Runs after the span started and before user code; the action guard raises here."""

    def record_call_input(self, handle: H, arguments: dict[str, Any]) -> None:
        handle.record_input(arguments)

    def record_call_result(self, handle: H, result: Any) -> None:
        handle.record_output(result)

    def stream_collector(self, handle: H) -> _OutputStream | None:
        return _OutputStream(handle)

    # --- span start -------------------------------------------------------------------------

    def _common_attributes(self, decision: DecisionState | None) -> dict[str, Any]:
        actor = self.actor or (decision.actor if decision else None)
        nhi = self.nhi or (decision.nhi if decision else None)
        attributes: dict[str, Any] = {c.STEP: self.step}
        if decision is not None:
            attributes[c.DECISION_ID] = decision.decision_id
        if actor:
            attributes[c.ACTOR_ID] = actor
        if nhi:
            attributes[c.NHI_ID] = nhi
        return attributes

    def _triggered_by_links(self, decision: DecisionState | None) -> list[Link]:
        """Explicit ``triggered_by`` wins; else the model output that proposed this very step, if
        one did (see :meth:`proposal`); a step that matches no proposal is not linked."""
        if self.triggered_by is not None:
            refs = refs_to_list(self.triggered_by)
            return [_link(context_of(ref), c.LINK_TRIGGERED_BY) for ref in refs]
        proposal = self.proposal(decision) if decision is not None else None
        return [proposal_link(proposal)] if proposal is not None else []

    def proposal(self, decision: DecisionState) -> Proposal | None:
        """The proposal this step matches when it starts (none for most steps)."""
        return None

    def _initial(
        self, decision: DecisionState | None, policy: CapturePolicy
    ) -> tuple[dict[str, Any], list[Link]]:
        """The attributes and links a step's span starts with."""
        attributes: dict[str, Any] = {}
        links: list[Link] = []
        try:
            attributes = {**self._common_attributes(decision), **self.step_attributes(decision)}
            attributes[c.CAPTURE_MODE] = policy.mode
            attributes.update(self.attributes)
            links = self.inferred_links(decision)
            if links:
                attributes[c.LINKS_MIRROR] = links_mirror(links)
        except Exception as exc:  # noqa: BLE001
            report_recording_error(f"{self.step} attributes", exc)
        return attributes, links

    def _start(self) -> H:
        active = runtime.current()
        tracer = active.tracer if active else trace.get_tracer(c.INSTRUMENTATION_NAME)
        policy = current_capture()
        decision = current_decision()
        attributes, links = self._initial(decision, policy)
        clock = reading() if self.timed else None
        if clock is not None:
            attributes[c.CLOCK_RUN] = clock.run
            attributes[c.CLOCK_MONOTONIC] = clock.monotonic_ns
        span = tracer.start_span(
            self._safe_name(),
            kind=self.kind,
            attributes=attributes,
            links=links,
            start_time=now_ns(),
        )
        handle = cast(H, self.handle_type(self, span, decision, policy))
        handle.clock = clock
        handle.started_with(links)
        with handle.recording("start"):
            _note_recording(active, span, self.step)
            self._started(handle)
        return handle

    def _started(self, handle: H) -> None:
        """Hook run right after the span starts (inputs known up front are recorded here)."""

    def _safe_name(self) -> str:
        try:
            return self.span_name()
        except Exception:  # noqa: BLE001
            return self.step

    def _begin(self, arguments: Callable[[], dict[str, Any]] | None = None) -> H:
        """Start the span, record a decorated call's arguments, and run the guard; a refusal
        ends the span and raises."""
        handle = self._start()
        try:
            if arguments is not None:
                with handle.recording("arguments"):
                    self.record_call_input(handle, arguments())
            self.before_run(handle)
        except BaseException as exc:
            handle._finish(exc)
            raise
        return handle

    # --- context manager --------------------------------------------------------------------

    def __enter__(self) -> H:
        handle = self._begin()
        handle._activate()
        handle._entered = _open_steps.set((*_open_steps.get(), (self, handle)))
        return handle

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        """Ends the innermost open ``with`` of this spec (a spec may be re-entered, nested)."""
        stack = _open_steps.get()
        index = next((i for i in range(len(stack) - 1, -1, -1) if stack[i][0] is self), None)
        if index is None:
            return
        handle = stack[index][1]
        token = handle._entered
        if index == len(stack) - 1 and token is not None:
            try:
                _open_steps.reset(token)
            except ValueError:  # exited in another context (a generator finished elsewhere)
                _open_steps.set(stack[:index])
        else:
            _open_steps.set(stack[:index] + stack[index + 1 :])
        handle._deactivate()
        handle._finish(exc)

    async def __aenter__(self) -> H:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    # --- decorator --------------------------------------------------------------------------

    def __call__(self, function: F) -> F:
        import wrapt  # loaded when the first function is decorated, not with the package

        binder = _Binder(function)
        spec = self
        if inspect.isasyncgenfunction(function):
            wrapper: Callable[..., Any] = functools.partial(_async_generator_call, spec, binder)
        elif inspect.isgeneratorfunction(function):
            wrapper = functools.partial(_generator_call, spec, binder)
        elif inspect.iscoroutinefunction(function):
            wrapper = functools.partial(_coroutine_call, spec, binder)
        else:
            wrapper = functools.partial(_sync_call, spec, binder)

        @wrapt.decorator
        def traced(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            return wrapper(wrapped, args, kwargs)

        return cast(F, traced(function))

    def _begin_call(
        self,
        binder: _Binder,
        wrapped: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> H:
        return self._begin(lambda: binder.bind(wrapped, args, kwargs))

    def _returned(self, handle: H, result: Any) -> None:
        with handle.recording("result"):
            self.record_call_result(handle, result)


def _link(context: SpanContext, link_type: str) -> Link:
    return Link(context, {c.LINK_TYPE: link_type})


def proposal_link(proposal: Proposal) -> Link:
    attributes: dict[str, str] = {c.LINK_TYPE: c.LINK_TRIGGERED_BY}
    if proposal.call_id:
        attributes[c.GEN_AI_TOOL_CALL_ID] = proposal.call_id
    return Link(proposal.context, attributes)


def links_mirror(links: Sequence[Link]) -> tuple[str, ...]:
    """``type:trace_id:span_id`` per link (``:tool_call_id`` appended when the link carries one),
    as a span attribute: Jaeger's v1 API and its UI drop link attributes, and this keeps the causal
    links readable (and verifiable) there."""
    entries = []
    for link in links:
        attributes = link.attributes or {}
        entry = (
            f"{attributes.get(c.LINK_TYPE, '')}:"
            f"{trace.format_trace_id(link.context.trace_id)}:{trace.format_span_id(link.context.span_id)}"
        )
        call_id = attributes.get(c.GEN_AI_TOOL_CALL_ID)
        entries.append(f"{entry}:{call_id}" if call_id else entry)
    return tuple(entries)


class _Binder:
    """Binds call arguments to parameter names, to record a call's input by name."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = function

    @functools.cached_property
    def _signature(self) -> inspect.Signature | None:
        try:
            return inspect.signature(self._function)
        except (TypeError, ValueError):
            return None

    @functools.cached_property
    def _plain_parameters(self) -> tuple[tuple[str, ...], dict[str, Any]] | None:
        """Names and defaults when every parameter is positional-or-keyword (most tools): such
        calls bind without ``inspect``, in the signature's order, as ``bind`` + ``apply_defaults``
        would."""
        signature = self._signature
        if signature is None:
            return None
        parameters = signature.parameters.values()
        if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters):
            return None
        defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
        return tuple(signature.parameters), defaults

    def _bind_plain(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        plain = self._plain_parameters
        if plain is None:
            return None
        names, defaults = plain
        if len(args) > len(names):
            return None
        bound = dict(zip(names[: len(args)], args, strict=True))
        for name in names[len(args) :]:
            if name in kwargs:
                bound[name] = kwargs[name]
            elif name in defaults:
                bound[name] = defaults[name]
            else:
                return None  # a missing argument: the slow path decides
        if not kwargs.keys() <= bound.keys() or any(name in kwargs for name in names[: len(args)]):
            return None  # an unknown keyword, or an argument given twice: the slow path decides
        return bound

    def bind(
        self, wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if wrapped is self._function:
            plain = self._bind_plain(args, kwargs)
            if plain is not None:
                return plain
        signature = self._signature if wrapped is self._function else _signature_of(wrapped)
        if signature is not None:
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                return dict(bound.arguments)
            except TypeError:
                pass
        return {"args": list(args), "kwargs": dict(kwargs)}


def _signature_of(function: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


class _OutputStream:
    """Collects what a generator yields: a streaming digest of all items and content up to the
    cap, so the output of an iteration is recorded like a list of its items."""

    def __init__(self, handle: StepHandle) -> None:
        self._handle = handle
        self._digest = StreamingDigest()
        self._items: list[Any] = []
        self._size = 0
        self._complete = True

    def add(self, item: Any) -> None:
        with self._handle.recording("yielded item"):
            self._digest.add(item)
            if self._handle.capture.stores_content and self._complete:
                jsonable = to_jsonable(item)
                self._size += len(canonical_json(jsonable))
                if self._size > self._handle.capture.max_bytes:
                    self._complete = False
                else:
                    self._items.append(jsonable)

    def finish(self) -> None:
        handle = self._handle
        with handle.recording("output"):
            if not handle.span.is_recording():
                return
            if handle.capture.digests:
                handle.set_digest(c.OUTPUT_SHA256, self._digest.hexdigest(), keyed=self._digest.keyed)
            handle._store(self._items, handle.output_attribute)
            if not self._complete:
                handle._truncated.append(handle.output_attribute)
                handle.span.set_attribute(c.CONTENT_TRUNCATED, tuple(handle._truncated))


def _sync_call(
    spec: StepSpec[Any],
    binder: _Binder,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    handle = spec._begin_call(binder, wrapped, args, kwargs)
    try:
        with handle.activated():
            result = wrapped(*args, **kwargs)
    except BaseException as exc:
        handle._finish(exc)
        raise
    spec._returned(handle, result)
    handle._finish(None)
    return result


async def _coroutine_call(
    spec: StepSpec[Any],
    binder: _Binder,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    handle = spec._begin_call(binder, wrapped, args, kwargs)
    try:
        with handle.activated():
            result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        handle._finish(exc)
        raise
    spec._returned(handle, result)
    handle._finish(None)
    return result


def _generator_call(
    spec: StepSpec[Any],
    binder: _Binder,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Generator[Any, Any, Any]:
    handle = spec._begin_call(binder, wrapped, args, kwargs)
    stream = spec.stream_collector(handle)
    try:
        with handle.activated():
            inner = wrapped(*args, **kwargs)
            item = next(inner)
        while True:
            if stream is not None:
                stream.add(item)
            try:
                sent = yield item
            except GeneratorExit:
                with handle.activated():
                    inner.close()
                raise
            except BaseException as thrown:  # noqa: BLE001 - forwarded into the wrapped generator
                with handle.activated():
                    item = inner.throw(thrown)
            else:
                with handle.activated():
                    item = inner.send(sent)
    except StopIteration as stop:
        if stream is not None:
            stream.finish()
        handle._finish(None)
        return stop.value
    except GeneratorExit:
        if stream is not None:
            stream.finish()
        handle._finish(None)
        raise
    except BaseException as exc:
        handle._finish(exc)
        raise


async def _async_generator_call(
    spec: StepSpec[Any],
    binder: _Binder,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> AsyncGenerator[Any, Any]:
    handle = spec._begin_call(binder, wrapped, args, kwargs)
    stream = spec.stream_collector(handle)
    try:
        with handle.activated():
            inner = wrapped(*args, **kwargs)
            item = await inner.__anext__()
        while True:
            if stream is not None:
                stream.add(item)
            try:
                sent = yield item
            except GeneratorExit:
                with handle.activated():
                    await inner.aclose()
                raise
            except BaseException as thrown:  # noqa: BLE001 - forwarded into the wrapped generator
                with handle.activated():
                    item = await inner.athrow(thrown)
            else:
                with handle.activated():
                    item = await inner.asend(sent)
    except StopAsyncIteration:
        if stream is not None:
            stream.finish()
        handle._finish(None)
    except GeneratorExit:
        if stream is not None:
            stream.finish()
        handle._finish(None)
        raise
    except BaseException as exc:
        handle._finish(exc)
        raise
