"""Cheap read-only views of an ended span, for checks made on every span.

The SDK's public ``ReadableSpan`` properties copy events and links into new
tuples and wrap attributes in a proxy walked through a lock, which costs more
than the checks these views serve (is there an exception event, is every
attribute pair remembered as clean). An ended span no longer changes, so its
own containers are read directly where they are the SDK's (opentelemetry-sdk
is pinned to a minor release), and through the public properties otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link

__all__ = ["attributes_of", "events_of", "links_of"]


def events_of(span: ReadableSpan) -> Sequence[Event]:
    """The span's events, oldest first, without a copy where possible."""
    events = getattr(span, "_events", None)
    return span.events if events is None else events


def links_of(span: ReadableSpan) -> Sequence[Link]:
    """The span's links, without a copy where possible."""
    links = getattr(span, "_links", None)
    return span.links if links is None else links


def attributes_of(span: ReadableSpan) -> Mapping[str, object]:
    """The span's attributes as a plain mapping, without a proxy or a lock."""
    raw = getattr(span, "_attributes", None)
    inner = getattr(raw, "_dict", raw)
    if isinstance(inner, dict):
        return inner
    return span.attributes or {}
