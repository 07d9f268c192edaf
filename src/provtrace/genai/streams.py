"""What a client call returns, handed back to the caller with the step still covering it.

- a full answer is recorded at once and returned as it is;
- a stream is returned behind a proxy that passes every chunk through unchanged and gives it to the
  instrumentation's :class:`Assembler`; the step ends when the stream does: read to its end (the
  whole answer), closed, left by a ``with`` block, or dropped by the caller (what arrived so far,
  marked ``provenance.output.partial``), or broken by an error (the step ends with it). An
  assembler builds the same response object the unstreamed call returns, so the output digest of
  an answer is the same streamed or not;
- a raw response (``with_raw_response``) of a streamed call is returned behind a proxy whose
  ``parse()`` gives the stream behind that proxy; one of a full answer is parsed (the clients
  cache the parse) and recorded at once;
- a stream manager (``client.messages.stream(...)``) opens the step when it is entered and ends it
  when it is left, with the answer the stream assembled.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import wrapt

from provtrace.genai.calls import ModelCall, Request, Response, start
from provtrace.steps.base import report_recording_error


class Assembler(Protocol):
    """Builds a streamed answer chunk by chunk."""

    def add(self, chunk: Any) -> None: ...

    def response(self) -> Response:
        """The answer so far (``partial`` is set by the stream, from how it ended)."""
        ...


class Answers(Protocol):
    """How an instrumentation reads its client's answers."""

    def response(self, result: Any) -> Response:
        """The full answer a non-streamed call returned (parsed, for a raw response)."""
        ...

    def assembler(self) -> Assembler:
        """A fresh assembler for a streamed answer."""
        ...


def is_raw(result: object) -> bool:
    """A ``with_raw_response`` result: the HTTP response, with the answer behind ``parse()``."""
    return callable(getattr(result, "parse", None)) and hasattr(result, "http_response")


def returned(call: ModelCall, request: Request, result: Any, answers: Answers) -> Any:
    """What a synchronous client call returned, for the caller (see the module docstring)."""
    try:
        if request.stream:
            return _streamed(call, result, answers)
        parsed = result.parse() if is_raw(result) else result
        call.finish(answers.response(parsed))
    except Exception as exc:  # noqa: BLE001 - recording never breaks the call
        report_recording_error("llm_call output", exc)
        call.finish(None)
    return result


async def areturned(call: ModelCall, request: Request, result: Any, answers: Answers) -> Any:
    """:func:`returned` for an async client, whose raw responses may parse asynchronously."""
    try:
        if request.stream:
            return _streamed(call, result, answers)
        parsed = result.parse() if is_raw(result) else result
        if inspect.isawaitable(parsed):
            parsed = await parsed
        call.finish(answers.response(parsed))
    except Exception as exc:  # noqa: BLE001 - recording never breaks the call
        report_recording_error("llm_call output", exc)
        call.finish(None)
    return result


def _streamed(call: ModelCall, result: Any, answers: Answers) -> Any:
    if is_raw(result):
        return TracedRawResponse(result, _StreamState(call, answers.assembler()))
    return traced_stream(result, _StreamState(call, answers.assembler()))


class _StreamState:
    """A stream's step, ended once, whichever way the stream ends first."""

    def __init__(self, call: ModelCall, assembler: Assembler) -> None:
        self.call = call
        self.assembler = assembler
        self._lock = threading.Lock()
        self._ended = False
        self.parsed = False  # a raw response's stream was handed out

    def add(self, chunk: Any) -> None:
        try:
            self.assembler.add(chunk)
        except Exception as exc:  # noqa: BLE001 - recording never breaks the stream
            report_recording_error("llm_call stream chunk", exc)

    def _take(self) -> bool:
        with self._lock:
            if self._ended:
                return False
            self._ended = True
            return True

    def _answer(self, *, complete: bool) -> Response | None:
        try:
            response = self.assembler.response()
        except Exception as exc:  # noqa: BLE001
            report_recording_error("llm_call stream output", exc)
            return None
        response.partial = not complete
        return response

    def end(self, *, complete: bool) -> None:
        if self._take():
            self.call.finish(self._answer(complete=complete))

    def error(self, error: BaseException) -> None:
        if self._take():
            self.call.fail(error, self._answer(complete=False))

    def abandoned(self) -> None:
        """The caller dropped the stream without reading it to its end or closing it."""
        self.end(complete=False)

    def unparsed(self) -> None:
        """The caller dropped a raw response without parsing its stream: nothing was seen."""
        if not self.parsed and self._take():
            self.call.finish(None)


def traced_stream(stream: Any, state: _StreamState) -> Any:
    state.parsed = True
    traced = AsyncTracedStream(stream, state) if hasattr(stream, "__anext__") else TracedStream(stream, state)
    finalizer = weakref.finalize(traced, state.abandoned)
    finalizer.atexit = False
    return traced


class TracedStream(wrapt.ObjectProxy[Any]):
    """A client's stream with its step (see the module docstring); the chunks are the client's."""

    def __init__(self, stream: Any, state: _StreamState) -> None:
        super().__init__(stream)
        self._self_state = state

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self.__wrapped__)
        except StopIteration:
            self._self_state.end(complete=True)
            raise
        except BaseException as exc:
            self._self_state.error(exc)
            raise
        self._self_state.add(chunk)
        return chunk

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.end(complete=False)

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncTracedStream(wrapt.ObjectProxy[Any]):
    """:class:`TracedStream` for an async client."""

    def __init__(self, stream: Any, state: _StreamState) -> None:
        super().__init__(stream)
        self._self_state = state

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_state.end(complete=True)
            raise
        except BaseException as exc:
            self._self_state.error(exc)
            raise
        self._self_state.add(chunk)
        return chunk

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_state.end(complete=False)

    async def __aenter__(self) -> AsyncTracedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class TracedRawResponse(wrapt.ObjectProxy[Any]):
    """The raw response of a streamed call: ``parse()`` returns the stream behind a proxy (once;
    later calls return the same proxy). A response dropped without being parsed ends the step
    without an answer: provtrace never saw what was read from it."""

    def __init__(self, raw: Any, state: _StreamState) -> None:
        super().__init__(raw)
        self._self_state = state
        self._self_stream: Any = None
        finalizer = weakref.finalize(self, state.unparsed)
        finalizer.atexit = False

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        if self._self_stream is not None:
            return self._self_stream
        parsed = self.__wrapped__.parse(*args, **kwargs)
        if inspect.isawaitable(parsed):
            return self._parsed_later(parsed)
        self._self_stream = traced_stream(parsed, self._self_state)
        return self._self_stream

    async def _parsed_later(self, pending: Awaitable[Any]) -> Any:
        stream = await pending
        if self._self_stream is None:
            self._self_stream = traced_stream(stream, self._self_state)
        return self._self_stream


class TracedStreamManager(wrapt.ObjectProxy[Any]):
    """A stream manager whose ``with`` block is one step: opened on entry, ended on exit with the
    answer ``final(stream)`` reads from what the manager's stream assembled (None: nothing)."""

    def __init__(self, manager: Any, request: Request, final: Callable[[Any], Response | None]) -> None:
        super().__init__(manager)
        self._self_request = request
        self._self_final = final
        self._self_call: ModelCall | None = None
        self._self_stream: Any = None

    def _entered(self, enter: Callable[[], Any]) -> Any:
        call = start(self._self_request)
        if call is None:
            return enter()
        try:
            with call.running():
                stream = enter()
        except BaseException as exc:
            call.fail(exc)
            raise
        self._self_call, self._self_stream = call, stream
        return stream

    def _left(self, error: BaseException | None) -> None:
        call, self._self_call = self._self_call, None
        if call is None:
            return
        answer: Response | None = None
        try:
            answer = self._self_final(self._self_stream)
        except Exception as exc:  # noqa: BLE001 - recording never breaks the call
            report_recording_error("llm_call stream output", exc)
        if error is not None:
            call.fail(error, answer)
        else:
            call.finish(answer)

    def __enter__(self) -> Any:
        return self._entered(self.__wrapped__.__enter__)

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._left(exc)

    async def __aenter__(self) -> Any:
        call = start(self._self_request)
        if call is None:
            return await self.__wrapped__.__aenter__()
        try:
            with call.running():
                stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            call.fail(exc)
            raise
        self._self_call, self._self_stream = call, stream
        return stream

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._left(exc)
