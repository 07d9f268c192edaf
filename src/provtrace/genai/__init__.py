"""The shared layer of provtrace's LLM client instrumentations (public, like
``provtrace.instrumentation``): what ``provtrace-instrumentation-openai`` and
``provtrace-instrumentation-anthropic`` have in common, so that neither repeats the other.

An instrumentation supplies only what is particular to its client:

- how to describe a call before it is sent: a :class:`Request` (provider, model, request
  parameters, the messages in the GenAI shape: see :func:`chat_messages` and the part builders);
- how to read an answer: an :class:`Answers` object turning a full response into a
  :class:`Response` and giving an :class:`Assembler` for a streamed one (which builds the same
  response object, so a streamed answer digests like the same answer unstreamed);
- which methods to wrap: a table of :class:`Target` built with :func:`method`,
  :func:`async_method` and :func:`stream_manager`, applied and removed by :class:`Targets`.

Everything else happens here, once: the ``llm_call`` step around each call (input and output
digests, content per capture mode, redaction, the tool calls the model proposed), the request and
response attributes of the GenAI conventions, streams and raw responses handed back with the step
covering them, one span per call when another instrumentation or the client's own tracing also
traces it (:func:`lending_tracer`, and adoption of an outer GenAI span), and never breaking the
call. See docs/llm.md.
"""

from __future__ import annotations

from provtrace.genai.calls import ModelCall, Request, Response, outer_span, start
from provtrace.genai.clients import argument, given, server_of
from provtrace.genai.lending import LentSpan, guard, lending_tracer, lent
from provtrace.genai.streams import (
    Answers,
    Assembler,
    AsyncTracedStream,
    TracedRawResponse,
    TracedStream,
    TracedStreamManager,
    areturned,
    is_raw,
    returned,
)
from provtrace.genai.wrapping import (
    Describe,
    Target,
    Targets,
    async_method,
    method,
    stream_manager,
    unwrap_applied,
    wrap_innermost,
)
from provtrace.messages import (
    FINISH_CONTENT_FILTER,
    FINISH_ERROR,
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_TOOL_CALL,
    ROLE_ASSISTANT,
    ROLE_SYSTEM,
    ROLE_TOOL,
    ROLE_USER,
    Message,
    Part,
    arguments_of,
    block_part,
    chat_message,
    chat_messages,
    content_parts,
    finish_reason,
    is_chat_messages,
    is_genai_messages,
    message,
    reasoning,
    system_message,
    text,
    tool_call,
    tool_call_response,
)

__all__ = [
    "FINISH_CONTENT_FILTER",
    "FINISH_ERROR",
    "FINISH_LENGTH",
    "FINISH_STOP",
    "FINISH_TOOL_CALL",
    "ROLE_ASSISTANT",
    "ROLE_SYSTEM",
    "ROLE_TOOL",
    "ROLE_USER",
    "Answers",
    "Assembler",
    "AsyncTracedStream",
    "Describe",
    "LentSpan",
    "Message",
    "ModelCall",
    "Part",
    "Request",
    "Response",
    "Target",
    "Targets",
    "TracedRawResponse",
    "TracedStream",
    "TracedStreamManager",
    "areturned",
    "argument",
    "arguments_of",
    "async_method",
    "block_part",
    "chat_message",
    "chat_messages",
    "content_parts",
    "finish_reason",
    "given",
    "guard",
    "is_chat_messages",
    "is_genai_messages",
    "is_raw",
    "lending_tracer",
    "lent",
    "message",
    "method",
    "outer_span",
    "reasoning",
    "returned",
    "server_of",
    "start",
    "stream_manager",
    "system_message",
    "text",
    "tool_call",
    "tool_call_response",
    "unwrap_applied",
    "wrap_innermost",
]
