"""Error taxonomy and PHI scrubbing for spans, applied on the export path.

OpenTelemetry Python freezes a span once ``end()`` begins: ``on_end`` receives a
read-only span, and even the ``_on_ending`` hook cannot add attributes. What is
only known at the end (the status, the exception events) can therefore not be
written on the span itself. The classes here wrap the *exporter* instead: they
receive the finished spans, build enriched and scrubbed copies, and hand those to
the wrapped exporter. Under a ``BatchSpanProcessor`` this runs on the batch
worker thread, off the request thread, so a request pays nothing for it; under a
``SimpleSpanProcessor`` it runs inline, as the export itself does.

Pipelines::

    BatchSpanProcessor(TaxonomySpanExporter(OTLPSpanExporter()))
    TaxonomySpanProcessor(OTLPSpanExporter())          # the same, in one call
    BatchSpanProcessor(ScrubbingSpanExporter(OTLPSpanExporter()))  # scrub only

A span is classified when its status is ERROR, it carries an ``exception``
event or it was tagged with an error code (``tag_error``); the last exception
event is taken, as it is the one that ended the operation when several were
recorded. Every span is scrubbed: its name, string attributes, status
description, and event and link attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Link, Status, StatusCode
from opentelemetry.util.types import Attributes, AttributeValue

from otel_processors import attributes as attrs
from otel_processors._guard import record_failure
from otel_processors._span_views import attributes_of, events_of, links_of
from otel_processors.classifier import Classification, Classifier
from otel_processors.error_metrics import ClassifiedErrorCounter
from otel_processors.scrubber import Scrubber

__all__ = ["ScrubbingSpanExporter", "TaxonomySpanExporter", "TaxonomySpanProcessor"]

_logger = logging.getLogger(__name__)

_EXCEPTION_EVENT = "exception"
_SCRUB_FAILED = "[REDACTED:SCRUB_FAILED]"


class ScrubbingSpanExporter(SpanExporter):
    """Hand the wrapped exporter copies of the spans with patient data removed.

    Args:
        exporter: the exporter that sends spans out of the process.
        scrubber: the scrubber to use; one configured from the environment
            when None.

    Raises:
        ValueError: when ``exporter`` is not a ``SpanExporter``.
    """

    def __init__(
        self, exporter: SpanExporter, *, scrubber: Scrubber | None = None
    ) -> None:
        if not isinstance(exporter, SpanExporter):
            msg = f"exporter must be a SpanExporter, got {type(exporter).__name__}"
            raise ValueError(msg)
        self._exporter = exporter
        self._scrubber = scrubber if scrubber is not None else Scrubber.from_env()
        self._clean = _CleanMemo()

    @property
    def exporter(self) -> SpanExporter:
        """The wrapped exporter."""
        return self._exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Rewrite each span, then export the batch with the wrapped exporter."""
        rewritten = [self._rewrite_guarded(span) for span in spans]
        return self._exporter.export(rewritten)

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self._exporter.force_flush(timeout_millis)

    def _rewrite_guarded(self, span: ReadableSpan) -> ReadableSpan:
        # A span that cannot be rewritten still leaves, but with every string
        # value withheld: losing detail is better than leaking a patient.
        try:
            return self._rewrite(span)
        except Exception as exc:
            record_failure("span.rewrite", exc)
            return _withheld_copy(span)

    def _rewrite(self, span: ReadableSpan) -> ReadableSpan:
        return self._scrubbed(span)

    def _scrubbed(self, span: ReadableSpan) -> ReadableSpan:
        # Most spans repeat the same names and attribute values; one already
        # found clean needs no copy at all.
        if self._clean.holds(span):
            return span
        copy = _scrubbed_copy(span, self._scrubber, extra_attributes=None)
        self._clean.learn(span, copy)
        return copy


class TaxonomySpanExporter(ScrubbingSpanExporter):
    """Classify error spans by the taxonomy, scrub every span, then export.

    Args:
        exporter: the exporter that sends spans out of the process.
        classifier: the classifier to use; one over the default registry
            (built-in codes plus ``HEALTHAI_ERROR_REGISTRY`` files) when None.
        scrubber: the scrubber to use; one configured from the environment
            when None.
        error_counter: where classified errors are counted; a counter on the
            global meter provider when None.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        classifier: Classifier | None = None,
        scrubber: Scrubber | None = None,
        error_counter: ClassifiedErrorCounter | None = None,
    ) -> None:
        super().__init__(exporter, scrubber=scrubber)
        self._classifier = classifier if classifier is not None else Classifier()
        self._counter = error_counter or ClassifiedErrorCounter()

    def _rewrite(self, span: ReadableSpan) -> ReadableSpan:
        # A span the memo holds has no events and no tagged code: if its
        # status is not ERROR either, there is nothing to classify or scrub.
        if span.status.status_code is not StatusCode.ERROR and self._clean.holds(span):
            return span

        classification = self._classify_guarded(span)
        if classification is None:
            return self._scrubbed(span)

        self._count(span, classification)
        extra = classification.attributes()
        if span.attributes and attrs.ERROR_TYPE in span.attributes:
            # Instrumentations set error.type themselves (an HTTP status, say);
            # theirs is kept and the code stays in healthai.error.code.
            del extra[attrs.ERROR_TYPE]
        return _scrubbed_copy(span, self._scrubber, extra_attributes=extra)

    def _classify_guarded(self, span: ReadableSpan) -> Classification | None:
        event = _last_exception_event(span)
        if event is None and not _marked_as_error(span):
            return None

        try:
            return _classify(self._classifier, span, event)
        except Exception as exc:
            record_failure("span.classify", exc)
            return Classification(
                code=self._classifier.registry.fallback(None),
                fallback=True,
                reason="classification failed; see the telemetry log",
            )

    def _count(self, span: ReadableSpan, classification: Classification) -> None:
        try:
            service = str(span.resource.attributes.get(attrs.SERVICE_NAME, ""))
            self._counter.add(classification, service=service, signal="span")
        except Exception as exc:
            record_failure("span.count", exc)


class TaxonomySpanProcessor(BatchSpanProcessor):
    """A batch span processor whose exports carry the taxonomy, scrubbed.

    The same as ``BatchSpanProcessor(TaxonomySpanExporter(span_exporter))``.

    Args:
        span_exporter: the exporter that sends spans out of the process.
        classifier: see ``TaxonomySpanExporter``.
        scrubber: see ``TaxonomySpanExporter``.
        **batch_options: passed on to ``BatchSpanProcessor`` (queue size,
            schedule delay, batch size, export timeout).
    """

    def __init__(
        self,
        span_exporter: SpanExporter,
        *,
        classifier: Classifier | None = None,
        scrubber: Scrubber | None = None,
        **batch_options: Any,
    ) -> None:
        exporter = TaxonomySpanExporter(
            span_exporter, classifier=classifier, scrubber=scrubber
        )
        super().__init__(exporter, **batch_options)


def _last_exception_event(span: ReadableSpan) -> Event | None:
    for event in reversed(events_of(span)):
        if event.name == _EXCEPTION_EVENT:
            return event
    return None


def _classify(
    classifier: Classifier, span: ReadableSpan, event: Event | None
) -> Classification:
    exception_type: str | None = None
    message: str | None = span.status.description
    if event is not None and event.attributes:
        exception_type = _as_str(event.attributes.get(attrs.EXCEPTION_TYPE))
        message = _as_str(event.attributes.get(attrs.EXCEPTION_MESSAGE)) or message

    scope = span.instrumentation_scope.name if span.instrumentation_scope else None
    return classifier.classify(
        exception_type,
        message,
        attributes=span.attributes or {},
        scope=scope,
        span_name=span.name,
    )


def _marked_as_error(span: ReadableSpan) -> bool:
    # A code tagged by hand marks an error even where the status was left unset.
    if span.status.status_code is StatusCode.ERROR:
        return True
    return attrs.ERROR_CODE in attributes_of(span)


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class _RewrittenSpan(ReadableSpan):
    """A copy of a span that keeps the original's dropped counts."""

    def __init__(self, original: ReadableSpan, **fields: Any) -> None:
        super().__init__(**fields)
        self._dropped = (
            original.dropped_attributes,
            original.dropped_events,
            original.dropped_links,
        )

    @property
    def dropped_attributes(self) -> int:
        return self._dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._dropped[2]


class _CleanMemo:
    """Remember span names and attribute pairs that scrubbing left unchanged.

    Bounded: when full it starts again empty, which costs a few re-scrubs and
    keeps memory flat whatever the cardinality of the values.
    """

    def __init__(self, max_entries: int = 16_384) -> None:
        self._max_entries = max_entries
        self._names: set[str] = set()
        self._pairs: set[tuple[str, object]] = set()

    def holds(self, span: ReadableSpan) -> bool:
        """True when nothing in ``span`` can change by scrubbing it."""
        if span.status.description or events_of(span) or links_of(span):
            return False
        if span.name not in self._names:
            return False
        attributes = attributes_of(span)
        if not attributes:
            return True
        try:
            return self._pairs.issuperset(attributes.items())
        except TypeError:  # an unhashable value
            return False

    def learn(self, span: ReadableSpan, scrubbed: ReadableSpan) -> None:
        """Remember what scrubbing ``span`` into ``scrubbed`` left unchanged."""
        if len(self._pairs) + len(self._names) > self._max_entries:
            self._pairs.clear()
            self._names.clear()

        if scrubbed.name == span.name:
            self._names.add(span.name)
        # A tagged code is never remembered: a span carrying one must reach
        # the classifier however clean its values are.
        after = scrubbed.attributes or {}
        for key, value in (span.attributes or {}).items():
            if key == attrs.ERROR_CODE:
                continue
            if after.get(key) == value and isinstance(value, _HASHABLE):
                self._pairs.add((key, value))


_HASHABLE = (str, bool, int, float, tuple)


def _scrubbed_copy(
    span: ReadableSpan,
    scrubber: Scrubber,
    *,
    extra_attributes: Mapping[str, AttributeValue] | None,
) -> ReadableSpan:
    attributes = scrubber.scrub_attributes(span.attributes or {})
    if extra_attributes:
        attributes.update(extra_attributes)

    status = span.status
    if status.description:
        status = Status(status.status_code, scrubber.scrub(status.description))

    return _RewrittenSpan(
        span,
        name=scrubber.scrub(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=tuple(_scrubbed_event(e, scrubber) for e in span.events),
        links=tuple(_scrubbed_link(link, scrubber) for link in span.links),
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrubbed_event(event: Any, scrubber: Scrubber) -> Event:
    scrubbed: Attributes = scrubber.scrub_attributes(event.attributes or {})
    return Event(event.name, scrubbed, event.timestamp)


def _scrubbed_link(link: Link, scrubber: Scrubber) -> Link:
    if not link.attributes:
        return link
    scrubbed: Attributes = scrubber.scrub_attributes(link.attributes)
    return Link(link.context, scrubbed)


def _withheld_copy(span: ReadableSpan) -> ReadableSpan:
    def withhold(attributes: Attributes) -> dict[str, AttributeValue]:
        return {
            key: value if isinstance(value, (bool, int, float)) else _SCRUB_FAILED
            for key, value in (attributes or {}).items()
        }

    return _RewrittenSpan(
        span,
        name=span.name if span.name.isidentifier() else _SCRUB_FAILED,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=withhold(span.attributes),
        events=tuple(
            Event(e.name, withhold(e.attributes), e.timestamp) for e in span.events
        ),
        links=(),
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
