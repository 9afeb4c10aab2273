"""Remember the span an exception escaped from, for the crash hooks.

An exception that ends a thread, or the main thread, leaves every ``with span``
block before the interpreter's hook runs: by then no span is current, and the
crash record would carry no trace context. ``EscapedExceptionSpanProcessor``
is a span processor that, when a span ends with an ``exception`` event,
remembers in which thread, with which span context, and for which exception
(type name and a hash of its message, nothing else of it). The crash reporter
asks it, when no span is current, for the context of the innermost span the
same exception escaped in the same thread, and emits the crash record in that
context (trace and span ids), so the crash links to the trace it ended.

The check in ``on_end`` is a look at the span's own list of events, on the
thread that ends the span; spans without events cost one length check.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext

from otel_processors import attributes as attrs
from otel_processors._span_views import events_of

__all__ = ["EscapedExceptionSpanProcessor"]

_EXCEPTION_EVENT: Final = "exception"


@dataclass(frozen=True)
class _Escape:
    span_context: SpanContext
    exception_type: str
    message_hash: int


class EscapedExceptionSpanProcessor(SpanProcessor):
    """Remember, per thread, the last span that ended with an exception.

    Args:
        max_threads: how many threads' last escapes are kept; the oldest is
            forgotten first.

    Raises:
        ValueError: when ``max_threads`` is not positive.
    """

    def __init__(self, *, max_threads: int = 1024) -> None:
        if max_threads < 1:
            msg = f"max_threads must be positive, got {max_threads!r}"
            raise ValueError(msg)
        self._max_threads = max_threads
        self._escapes: OrderedDict[int, _Escape] = OrderedDict()
        self._lock = threading.Lock()
        self.enabled = True

    def on_end(self, span: ReadableSpan) -> None:
        """Remember the span when it ended with an exception event."""
        events = events_of(span)
        if not self.enabled or not events:
            return
        event = next((e for e in reversed(events) if e.name == _EXCEPTION_EVENT), None)
        if event is None or event.attributes is None or span.context is None:
            return

        escape = _Escape(
            span.context,
            str(event.attributes.get(attrs.EXCEPTION_TYPE, "")),
            hash(str(event.attributes.get(attrs.EXCEPTION_MESSAGE, ""))),
        )
        thread = threading.get_ident()
        with self._lock:
            previous = self._escapes.get(thread)
            # The same exception leaving the enclosing spans keeps the
            # innermost one, where it was raised.
            if previous is not None and _same_exception_in_trace(previous, escape):
                return
            self._escapes[thread] = escape
            self._escapes.move_to_end(thread)
            while len(self._escapes) > self._max_threads:
                self._escapes.popitem(last=False)

    def context_for(self, exception_type: str, message: str) -> Context | None:
        """Return a context holding the span an exception escaped in this thread.

        Args:
            exception_type: the exception's type, named as the SDK names it on
                span events (``module.Qualname``, bare for builtins).
            message: ``str()`` of the exception, unscrubbed.

        Returns:
            A context whose current span is that span (not recording), or
            None when this thread's last escape was another exception.
        """
        with self._lock:
            escape = self._escapes.get(threading.get_ident())
        if (
            escape is None
            or escape.exception_type != exception_type
            or escape.message_hash != hash(message)
        ):
            return None
        span = NonRecordingSpan(escape.span_context)
        return trace.set_span_in_context(span, otel_context.get_current())

    def shutdown(self) -> None:
        """Forget every remembered span."""
        with self._lock:
            self._escapes.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered: always True."""
        return True


def _same_exception_in_trace(previous: _Escape, escape: _Escape) -> bool:
    return (
        previous.span_context.trace_id == escape.span_context.trace_id
        and previous.exception_type == escape.exception_type
        and previous.message_hash == escape.message_hash
    )
