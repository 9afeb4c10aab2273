"""Tests for remembering the span an exception escaped from."""

from __future__ import annotations

import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from otel_processors import crash
from otel_processors.crash.escaped import EscapedExceptionSpanProcessor


def _escape_in_thread(provider: TracerProvider, message: str) -> int:
    """Raise out of a span in a new thread; return the span's id."""
    span_ids: list[int] = []

    def work() -> None:
        try:
            with provider.get_tracer("test").start_as_current_span("score") as span:
                span_ids.append(span.get_span_context().span_id)
                raise KeyError(message)
        except KeyError:
            pass

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return span_ids[0]


def _span_id_for(processor: EscapedExceptionSpanProcessor, exc: BaseException) -> int:
    context = processor.context_for(type(exc).__qualname__, str(exc))
    if context is None:
        return 0
    return trace.get_current_span(context).get_span_context().span_id


def test_an_exception_is_matched_by_type_and_message_in_its_thread() -> None:
    """The same exception finds its span; another message, or thread, finds none."""
    processor = EscapedExceptionSpanProcessor()
    provider = TracerProvider()
    provider.add_span_processor(processor)
    span_ids: list[int] = []
    results: list[tuple[int, int]] = []

    def work() -> None:
        try:
            with provider.get_tracer("test").start_as_current_span("score") as span:
                span_ids.append(span.get_span_context().span_id)
                raise KeyError("bed 12")
        except KeyError:
            pass
        results.append(
            (
                _span_id_for(processor, KeyError("bed 12")),
                _span_id_for(processor, KeyError("bed 13")),
            )
        )

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()

    result = (results[0], _span_id_for(processor, KeyError("bed 12")))

    expected = ((span_ids[0], 0), 0)
    assert expected == result


def test_memory_is_bounded_by_threads() -> None:
    """With room for two threads, the third escape forgets the first thread."""
    processor = EscapedExceptionSpanProcessor(max_threads=2)
    provider = TracerProvider()
    provider.add_span_processor(processor)

    # The threads stay alive together, so that no thread id is reused.
    done = threading.Event()
    escaped = threading.Barrier(4)

    def work(message: str) -> None:
        try:
            with provider.get_tracer("test").start_as_current_span("score"):
                raise KeyError(message)
        except KeyError:
            pass
        escaped.wait()
        done.wait()

    workers = [threading.Thread(target=work, args=(m,)) for m in ("a", "b", "c")]
    for worker in workers:
        worker.start()
    escaped.wait()
    result = len(processor._escapes)
    done.set()
    for worker in workers:
        worker.join()

    expected = 2
    assert expected == result


def test_a_disabled_processor_remembers_nothing() -> None:
    """After the crash hooks are removed the processor stops recording."""
    processor = EscapedExceptionSpanProcessor()
    processor.enabled = False
    provider = TracerProvider()
    provider.add_span_processor(processor)

    _escape_in_thread(provider, "x")

    result = len(processor._escapes)
    expected = 0
    assert expected == result


def test_max_threads_must_be_positive() -> None:
    """A bound of zero is refused when the processor is made."""
    with pytest.raises(ValueError, match="max_threads must be positive, got 0"):
        EscapedExceptionSpanProcessor(max_threads=0)


def test_reinstalling_crash_reporting_reuses_the_span_processor() -> None:
    """A second install on the same provider wakes the processor added before."""
    provider = TracerProvider()
    first = crash.install(tracer_provider=provider, capture_fatal_signals=False)
    first_escapes = first.escapes
    crash.uninstall()
    asleep = first_escapes is not None and not first_escapes.enabled
    second = crash.install(tracer_provider=provider, capture_fatal_signals=False)
    crash.uninstall()

    result = (asleep, second.escapes is first_escapes)

    expected = (True, True)
    assert expected == result
