"""Turn exception log records into crash reports that know their group.

A record is an exception record when its event name is ``exception`` or it
carries ``exception.type``. A repeats summary (event name
``healthai.crash.repeats``, written by the reporter at shutdown) carries the
fingerprint and the number of suppressed repeats that no later record carried;
it adds that count to its group and keeps no sample. Anything else is ignored
by the crash service. An exception record stands for ``1 + repeats``
occurrences: ``healthai.crash.repeats`` counts the repeats suppressed before it.
The release is the record's ``service.version``, else the resource's. The group
of a report is, in order of preference:

1. the ``healthai.crash.fingerprint`` (and ``..._version``) the process wrote,
   computed in-process from the exception object;
2. ``fingerprint_text`` of ``exception.stacktrace``;
3. the symbolicated native frames (``healthai.crash.native_frames``);
4. the exception type and normalised message.

Options 3 and 4 hash the same way as ``otel_processors.crash.fingerprint``
(SHA-256 of the version and one component per line), so a message-only crash
groups identically whether the process or the service fingerprinted it.

Everything kept for display (title, sample attributes, body, resource) is
scrubbed again here: defence in depth against a service whose scrubbing is
missing or older. Only the first record of a group is kept for display, so the
caller says through ``needs_details`` which records need that work; the others
carry no title or sample at all.

Native frames travel as the attribute ``healthai.crash.native_frames``: a JSON
list of objects ``{"module": "libdemo.so", "debug_id": "<id>", "offset":
"0x1a2b"}`` (offset an integer or a ``0x`` hex string), innermost first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from exporters.crash_service.otlp import LogEvent
from exporters.symbolication import NativeFrame, SymbolicatedFrame, Symbolicator
from otel_processors import attributes as attrs
from otel_processors.crash.fingerprint import (
    FINGERPRINT_VERSION,
    fingerprint_text,
    normalise_message,
)

__all__ = [
    "NATIVE_FRAMES_ATTRIBUTE",
    "REPEATS_EVENT_NAME",
    "CrashGrouper",
    "CrashReport",
    "InvalidRecordError",
    "Scrubbing",
    "group_id_for",
    "is_exception_record",
    "unattributed_repeats",
]

NATIVE_FRAMES_ATTRIBUTE: Final = attrs.CRASH_NATIVE_FRAMES
REPEATS_EVENT_NAME: Final = "healthai.crash.repeats"

_EXCEPTION_EVENT_NAME: Final = "exception"
_UNKNOWN_SERVICE: Final = "unknown_service"
_SAFE_FINGERPRINT = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_MAX_REPEATS: Final = 1_000_000
_MAX_NATIVE_FRAMES: Final = 256
_HASH_HEX_DIGITS: Final = 32


class Scrubbing(Protocol):
    """What the crash service needs of ``otel_processors.scrubber.Scrubber``."""

    def scrub(self, text: str) -> str:
        """Return ``text`` with patient identifiers removed."""
        ...

    def scrub_attributes(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return a scrubbed copy of an attribute mapping."""
        ...


class InvalidRecordError(ValueError):
    """An exception record that cannot be grouped; the message says why."""


@dataclass(frozen=True)
class CrashReport:
    """One exception record, scrubbed, with its group.

    Attributes:
        group_id: 32 hex digits naming the group (fingerprint and version).
        fingerprint: the fingerprint value.
        fingerprint_version: the fingerprint algorithm's version.
        basis: how the group was found: ``"reported"``, ``"frames"``,
            ``"native"`` or ``"message"``.
        title: ``type: message``, scrubbed, truncated; ``None`` when the
            caller did not need details, and for a repeats summary.
        exception_type: the exception's type; empty for a repeats summary.
        service: ``service.name`` of the resource.
        release: ``service.version`` of the record, else of the resource.
        category: ``healthai.error.category``, if any.
        code: ``healthai.error.code``, if any.
        seen_at: when it happened, in seconds since the epoch.
        occurrences: crashes the record stands for: one plus the repeats
            suppressed before it, or a summary's repeats.
        sample: the scrubbed event, JSON-ready; ``None`` without details and
            for a repeats summary.
        summary: whether the record is a repeats summary (no crash of its own).
    """

    group_id: str
    fingerprint: str
    fingerprint_version: int
    basis: str
    title: str | None
    exception_type: str
    service: str
    release: str | None
    category: str | None
    code: str | None
    seen_at: float
    occurrences: int
    sample: dict[str, Any] | None
    summary: bool = False


def is_exception_record(event: LogEvent) -> bool:
    """Whether a log record reports an exception or a summary of its repeats."""
    return (
        event.event_name in (_EXCEPTION_EVENT_NAME, REPEATS_EVENT_NAME)
        or attrs.EXCEPTION_TYPE in event.attributes
    )


def _is_repeats_summary(event: LogEvent) -> bool:
    return (
        event.event_name == REPEATS_EVENT_NAME
        and attrs.EXCEPTION_TYPE not in event.attributes
    )


def unattributed_repeats(event: LogEvent) -> int:
    """Return the repeats of a summary that names no fingerprint, else 0.

    The reporter writes such a summary for repeats whose fingerprint left its
    rate limiter's table; they belong to no group.

    Raises:
        InvalidRecordError: the summary's repeat count is malformed.
    """
    if not _is_repeats_summary(event):
        return 0
    if event.attributes.get(attrs.CRASH_FINGERPRINT) is not None:
        return 0
    return _count(event.attributes.get(attrs.CRASH_REPEATS), default=None)


def group_id_for(fingerprint: str, version: int) -> str:
    """Return the group id of a fingerprint at a version (32 hex digits)."""
    digest = hashlib.sha256(f"{version}\n{fingerprint}".encode())
    return digest.hexdigest()[:_HASH_HEX_DIGITS]


class CrashGrouper:
    """Build ``CrashReport`` values from exception log records.

    Args:
        scrubber: removes patient identifiers from texts and attributes.
        symbolicator: resolves native frames; ``None`` leaves them unresolved.
        title_max_chars: the longest title kept.
    """

    def __init__(
        self,
        scrubber: Scrubbing,
        *,
        symbolicator: Symbolicator | None = None,
        title_max_chars: int = 200,
    ) -> None:
        self._scrubber = scrubber
        self._symbolicator = symbolicator
        self._title_max_chars = title_max_chars

    def report(
        self,
        event: LogEvent,
        *,
        now: float,
        needs_details: Callable[[str], bool] | None = None,
    ) -> CrashReport:
        """Group one exception record, with its scrubbed title and sample if needed.

        Args:
            event: an exception record (see ``is_exception_record``).
            now: the time to use when the record has no timestamp.
            needs_details: told the group id, says whether the title and sample
                are wanted (they are scrubbed, which costs most); always when
                ``None``.

        Returns:
            The report.

        Raises:
            InvalidRecordError: the record lacks type and message, or carries a
                malformed fingerprint, repeat count or native frame list.
        """
        if _is_repeats_summary(event):
            return self._summary(event, now)

        attributes = event.attributes
        exc_type = _text(attributes.get(attrs.EXCEPTION_TYPE))
        message = _text(attributes.get(attrs.EXCEPTION_MESSAGE))
        stacktrace = _text(attributes.get(attrs.EXCEPTION_STACKTRACE))
        if not exc_type and not message and not stacktrace:
            msg = "exception record has no exception.type, message or stacktrace"
            raise InvalidRecordError(msg)

        repeats = _count(attributes.get(attrs.CRASH_REPEATS), default=0)
        native = self._native_frames(attributes.get(NATIVE_FRAMES_ATTRIBUTE))
        fingerprint, version, basis, derived_type = self._group(
            attributes, exc_type, message, stacktrace, native
        )
        exc_type = exc_type or derived_type or "Exception"
        group_id = group_id_for(fingerprint, version)
        details = needs_details is None or needs_details(group_id)

        return CrashReport(
            group_id=group_id,
            fingerprint=fingerprint,
            fingerprint_version=version,
            basis=basis,
            title=self._title(exc_type, message) if details else None,
            exception_type=exc_type,
            service=_service(event),
            release=_release(event),
            category=_text(attributes.get(attrs.ERROR_CATEGORY)) or None,
            code=_text(attributes.get(attrs.ERROR_CODE)) or None,
            seen_at=_seconds(event, now),
            occurrences=min(1 + repeats, _MAX_REPEATS),
            sample=self._sample(event, native) if details else None,
        )

    def _summary(self, event: LogEvent, now: float) -> CrashReport:
        attributes = event.attributes
        if attributes.get(attrs.CRASH_FINGERPRINT) is None:
            msg = f"repeats summary has no {attrs.CRASH_FINGERPRINT}"
            raise InvalidRecordError(msg)
        fingerprint, version = _reported_fingerprint(attributes)
        return CrashReport(
            group_id=group_id_for(fingerprint, version),
            fingerprint=fingerprint,
            fingerprint_version=version,
            basis="reported",
            title=None,
            exception_type="",
            service=_service(event),
            release=_release(event),
            category=_text(attributes.get(attrs.ERROR_CATEGORY)) or None,
            code=_text(attributes.get(attrs.ERROR_CODE)) or None,
            seen_at=_seconds(event, now),
            occurrences=_count(attributes.get(attrs.CRASH_REPEATS), default=None),
            sample=None,
            summary=True,
        )

    def _group(
        self,
        attributes: Mapping[str, Any],
        exc_type: str,
        message: str,
        stacktrace: str,
        native: list[SymbolicatedFrame],
    ) -> tuple[str, int, str, str]:
        if attributes.get(attrs.CRASH_FINGERPRINT) is not None:
            fingerprint, version = _reported_fingerprint(attributes)
            return fingerprint, version, "reported", ""

        if stacktrace:
            try:
                found = fingerprint_text(stacktrace)
            except ValueError:
                found = None
            if found is not None:
                last_type = found.exception_types[-1] if found.exception_types else ""
                return found.value, found.version, found.basis, last_type

        components = [f"version:{FINGERPRINT_VERSION}", f"type:{exc_type}"]
        if native:
            components.extend(f"native:{_native_component(frame)}" for frame in native)
            basis = "native"
        else:
            components.append(f"message:{normalise_message(message)}")
            basis = "message"
        digest = hashlib.sha256("\n".join(components).encode("utf-8")).hexdigest()
        return digest[:_HASH_HEX_DIGITS], FINGERPRINT_VERSION, basis, ""

    def _native_frames(self, value: object) -> list[SymbolicatedFrame]:
        if value is None:
            return []
        frames = _parse_native_frames(value)
        if self._symbolicator is None:
            return [SymbolicatedFrame(f.module, f.debug_id, f.offset) for f in frames]
        return self._symbolicator.symbolicate(frames)

    def _title(self, exc_type: str, message: str) -> str:
        first_line = message.strip().splitlines()[0] if message.strip() else ""
        title = f"{exc_type}: {first_line}" if first_line else exc_type
        title = self._scrubber.scrub(title)
        if len(title) > self._title_max_chars:
            title = title[: self._title_max_chars - 1] + "…"
        return title

    def _sample(
        self, event: LogEvent, native: Sequence[SymbolicatedFrame]
    ) -> dict[str, Any]:
        sample: dict[str, Any] = {
            "attributes": self._scrub_mapping(event.attributes),
            "body": self._scrub_body(event.body),
            "resource": self._scrub_mapping(event.resource),
            "trace_id": event.trace_id or None,
            "span_id": event.span_id or None,
            "severity_text": event.severity_text or None,
            "severity_number": event.severity_number,
            "time_unix_nano": event.time_unix_nano or event.observed_time_unix_nano,
        }
        if native:
            sample["native_frames"] = [frame.to_json() for frame in native]
        return sample

    def _scrub_mapping(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._scrubber.scrub_attributes(mapping))

    def _scrub_body(self, body: Any) -> Any:
        if body is None:
            return None
        if isinstance(body, str):
            return self._scrubber.scrub(body)
        return self._scrub_mapping({"body": body}).get("body")


def _reported_fingerprint(attributes: Mapping[str, Any]) -> tuple[str, int]:
    reported = attributes.get(attrs.CRASH_FINGERPRINT)
    version = _version(attributes.get(attrs.CRASH_FINGERPRINT_VERSION))
    if not isinstance(reported, str) or not _SAFE_FINGERPRINT.match(reported):
        msg = f"{attrs.CRASH_FINGERPRINT} is not 1-128 of [A-Za-z0-9_.:-]"
        raise InvalidRecordError(msg)
    return reported, version


def _service(event: LogEvent) -> str:
    return _text(event.resource.get(attrs.SERVICE_NAME)) or _UNKNOWN_SERVICE


def _release(event: LogEvent) -> str | None:
    # The reporter writes its release on the record; it overrides the resource's.
    on_record = _text(event.attributes.get(attrs.SERVICE_VERSION))
    return on_record or _text(event.resource.get(attrs.SERVICE_VERSION)) or None


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _version(value: object) -> int:
    if value is None:
        return FINGERPRINT_VERSION
    try:
        version = int(str(value))
    except ValueError:
        version = -1
    if version < 0:
        msg = f"{attrs.CRASH_FINGERPRINT_VERSION} {value!r} is not a version number"
        raise InvalidRecordError(msg)
    return version


def _count(value: object, *, default: int | None) -> int:
    """Parse ``healthai.crash.repeats``: a positive integer, ``default`` if absent."""
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        repeats = 0
    else:
        try:
            repeats = int(value)
        except ValueError:
            repeats = 0
    if repeats < 1:
        msg = f"{attrs.CRASH_REPEATS} {value!r} is not a positive integer"
        raise InvalidRecordError(msg)
    return min(repeats, _MAX_REPEATS)


def _seconds(event: LogEvent, now: float) -> float:
    nanos = event.time_unix_nano or event.observed_time_unix_nano
    return nanos / 1e9 if nanos else now


def _parse_native_frames(value: object) -> list[NativeFrame]:
    try:
        items = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        items = None
    if not isinstance(items, list) or len(items) > _MAX_NATIVE_FRAMES:
        msg = (
            f"{NATIVE_FRAMES_ATTRIBUTE} must be a JSON list of at most "
            f"{_MAX_NATIVE_FRAMES} frames"
        )
        raise InvalidRecordError(msg)
    return [_native_frame(index, item) for index, item in enumerate(items)]


def _native_frame(index: int, item: object) -> NativeFrame:
    if isinstance(item, dict):
        module, debug_id = item.get("module"), item.get("debug_id")
        offset = _offset(item.get("offset"))
        if isinstance(module, str) and isinstance(debug_id, str) and offset is not None:
            return NativeFrame(module, debug_id, offset)
    msg = (
        f"{NATIVE_FRAMES_ATTRIBUTE}[{index}] needs string module and debug_id "
        "and an integer offset"
    )
    raise InvalidRecordError(msg)


def _offset(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


def _native_component(frame: SymbolicatedFrame) -> str:
    if frame.function is not None:
        return f"{frame.module}|{frame.function}"
    return f"{frame.module}|0x{frame.offset:x}"
