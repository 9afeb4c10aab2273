"""Crash storms: repeats are rate-limited, counted, and memory stays bounded."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)

from otel_processors.crash import CrashReporter, FingerprintRateLimiter


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_burst_then_suppresses_and_counts() -> None:
    """After the burst, repeats are suppressed and reported on the next admission."""
    clock = _Clock()
    limiter = FingerprintRateLimiter(per_minute=3, clock=clock)
    decisions = [limiter.admit("fp").allowed for _ in range(5)]
    clock.now = 20.0  # one token back at 3 per minute

    result = (decisions, limiter.admit("fp"))

    assert ([True, True, True, False, False], (True, 2)) == (
        result[0],
        (result[1].allowed, result[1].repeats),
    )


def test_limiter_table_is_bounded_and_keeps_evicted_counts() -> None:
    """100k distinct fingerprints keep at most max_fingerprints buckets."""
    limiter = FingerprintRateLimiter(
        per_minute=1, max_fingerprints=256, total_per_minute=10**9, clock=_Clock()
    )
    for index in range(100_000):
        limiter.admit(f"fp-{index % 1000}")
        limiter.admit(f"fp-{index % 1000}")

    result = (len(limiter), limiter.suppressed_total)

    # 1000 fingerprints cycle through 256 buckets: each comes back to a fresh
    # bucket, so its first report passes and the immediate repeat is suppressed.
    expected = (256, 100_000)
    assert expected == result


def _reporter(provider: LoggerProvider) -> CrashReporter:
    return CrashReporter(
        logger_provider=provider,
        scrubber=lambda text: text,
        classifier=lambda kind: {},
        rate_limiter=FingerprintRateLimiter(
            5, max_fingerprints=128, total_per_minute=100, clock=_Clock()
        ),
    )


def _raise_one_bug(value: int) -> BaseException:
    try:
        raise ValueError(f"value {value}")
    except ValueError as exc:
        return exc


def _one_of_many_bugs(value: int) -> BaseException:
    # Unraised, so grouped by message; letters survive normalisation.
    return ValueError("bug " + "".join(chr(97 + int(d)) for d in str(value % 1000)))


def _growth_bytes(reporter: CrashReporter, make: Callable[[int], BaseException]) -> int:
    """Memory kept by 2,000 more crashes once the tables are full."""
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for value in range(200_000, 202_000):
        reporter.report(make(value), kind="thread")
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return after - before


def test_storm_of_one_bug_emits_the_burst_and_counts_the_rest() -> None:
    """100k crashes of one bug emit 5 records; the repeats are counted and reported."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    reporter = _reporter(provider)
    for value in range(100_000):
        reporter.report(_raise_one_bug(value), kind="thread")
    emitted = len(exporter.get_finished_logs())
    exporter.clear()
    pending = reporter.report_suppressed()
    shutdown_repeats = [
        record.log_record.attributes["healthai.crash.repeats"]
        for record in exporter.get_finished_logs()
    ]
    growth = _growth_bytes(reporter, _raise_one_bug)
    provider.shutdown()

    result = (
        emitted,
        reporter.stats().reported,
        list(pending.values()),
        shutdown_repeats,
        growth < 50_000,
    )

    expected = (5, {"thread": 5}, [99_995], [99_995], True)

    assert expected == result


def test_storm_of_many_bugs_keeps_memory_and_output_bounded() -> None:
    """100k crashes of 1000 bugs: a bounded table, bounded memory, bounded output."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    reporter = _reporter(provider)
    for value in range(100_000):
        reporter.report(_one_of_many_bugs(value), kind="thread")
    emitted = len(exporter.get_finished_logs())
    growth = _growth_bytes(reporter, _one_of_many_bugs)
    provider.shutdown()

    result = (
        emitted,
        reporter.stats().suppressed,
        reporter.stats().fingerprints_tracked,
        growth < 50_000,
    )

    expected = (100, 99_900 + 2_000, 128, True)
    assert expected == result
