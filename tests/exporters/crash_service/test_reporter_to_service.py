"""A CrashReporter exporting through a real OTLP/HTTP log exporter to the service."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from exporters.crash_service import CrashService
from otel_processors.crash import CrashReporter, FingerprintRateLimiter
from tests.exporters.crash_service.otlp_builders import TOKEN

StartService = Callable[..., tuple[CrashService, str]]

_FAULTHANDLER_TEXT = """\
Fatal Python error: Segmentation fault

Current thread 0x00007f0000000001 (most recent call first):
  File "/srv/app/risk/native.py", line 3 in score
"""


class ManualClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider_to(
    start_service: StartService,
) -> Iterator[Callable[[dict[str, str]], tuple[CrashService, LoggerProvider]]]:
    """Give a service and a logger provider exporting to it over OTLP/HTTP."""
    providers: list[LoggerProvider] = []

    def make(resource: dict[str, str]) -> tuple[CrashService, LoggerProvider]:
        service, url = start_service()
        provider = LoggerProvider(resource=Resource.create(resource))
        exporter = OTLPLogExporter(
            endpoint=f"{url}/v1/logs", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        providers.append(provider)
        return service, provider

    yield make
    for provider in providers:
        provider.shutdown()


def _crash_on_missing_key(reporter: CrashReporter) -> None:
    try:
        {}["patient"]
    except KeyError as exc:
        reporter.report(exc, kind="thread")


def test_release_of_the_reporter_overrides_the_resource(
    provider_to: Callable[[dict[str, str]], tuple[CrashService, LoggerProvider]],
) -> None:
    """The release written on the record, live or spooled, is the group's release."""
    service, provider = provider_to({"service.name": "risk", "service.version": "1.0"})
    reporter = CrashReporter(
        logger_provider=provider, release="2026.12.1", scrubber=lambda text: text
    )

    _crash_on_missing_key(reporter)
    reporter.report_text(_FAULTHANDLER_TEXT, extra={"service.version": "2026.11.0"})
    result = sorted(group.releases for group in service.store.list_groups())

    expected = [("2026.11.0",), ("2026.12.1",)]
    assert expected == result


def test_release_falls_back_to_the_resource(
    provider_to: Callable[[dict[str, str]], tuple[CrashService, LoggerProvider]],
) -> None:
    """Without a release on the record, the resource's service.version is used."""
    service, provider = provider_to({"service.name": "risk", "service.version": "1.0"})
    reporter = CrashReporter(logger_provider=provider, scrubber=lambda text: text)

    _crash_on_missing_key(reporter)
    result = [group.releases for group in service.store.list_groups()]

    expected = [("1.0",)]
    assert expected == result


def _crash_on_bad_value(reporter: CrashReporter) -> None:
    try:
        int("not a number")
    except ValueError as exc:
        reporter.report(exc, kind="thread")


def test_storm_through_the_rate_limiter_counts_every_crash(
    provider_to: Callable[[dict[str, str]], tuple[CrashService, LoggerProvider]],
) -> None:
    """Seventeen crashes of one bug, most suppressed, make a group count of 17."""
    service, provider = provider_to({"service.name": "risk"})
    clock = ManualClock()
    reporter = CrashReporter(
        logger_provider=provider,
        scrubber=lambda text: text,
        rate_limiter=FingerprintRateLimiter(2, clock=clock),
    )

    for _ in range(10):
        _crash_on_missing_key(reporter)
    clock.now = 60.0
    for _ in range(7):
        _crash_on_missing_key(reporter)
    reporter.report_suppressed()
    result = [(g.count, g.records) for g in service.store.list_groups()]

    expected = [(17, 5)]
    assert expected == result


def test_repeats_of_evicted_fingerprints_are_counted_apart(
    provider_to: Callable[[dict[str, str]], tuple[CrashService, LoggerProvider]],
) -> None:
    """Repeats whose fingerprint the limiter evicted reach a metric of their own."""
    service, provider = provider_to({"service.name": "risk"})
    reporter = CrashReporter(
        logger_provider=provider,
        scrubber=lambda text: text,
        rate_limiter=FingerprintRateLimiter(1, max_fingerprints=1),
    )

    for _ in range(3):
        _crash_on_missing_key(reporter)
    _crash_on_bad_value(reporter)
    reporter.report_suppressed()
    result = (
        sorted(g.count for g in service.store.list_groups()),
        service.metrics.registry.get_sample_value(
            "healthai_crash_unattributed_repeats_total"
        ),
    )

    expected = ([1, 1], 2.0)
    assert expected == result
