"""Cost of classifying an error, against the cost of one SDK span.

Run: ``.venv/bin/python -m benchmarks.bench_classifier``

Prints the median time per call over several repeats for the classifier's
steady state (cache hits), for the same calls with the cache disabled, and for
the baseline: starting and ending one span with the OpenTelemetry SDK (no
processor), which every classified error already costs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import requests
from opentelemetry.sdk.trace import TracerProvider

from otel_processors.classifier import Classifier
from otel_processors.registry import Registry

_REPEATS = 7
_CALLS = 20_000


def _median_ns(call: Callable[[], object], calls: int = _CALLS) -> float:
    """Return the median over repeats of the mean time per call, in ns."""
    samples = []
    for _ in range(_REPEATS):
        start = time.perf_counter_ns()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(samples)


def main() -> None:
    """Measure and print the table."""
    tracer = TracerProvider().get_tracer("bench")

    def span() -> None:
        tracer.start_span("predict").end()

    registry = Registry.builtin()
    cached = Classifier(registry)
    uncached = Classifier(registry, cache_size=0)
    connection = requests.exceptions.ConnectionError("refused")
    counter = iter(range(10**9))

    cases: list[tuple[str, Callable[[Classifier], object], int]] = [
        (
            "exception, type decides (requests ConnectionError)",
            lambda c: c.classify_exception(connection),
            _CALLS,
        ),
        (
            "name from a log record, bare (TimeoutError)",
            lambda c: c.classify("TimeoutError", "read timed out"),
            _CALLS,
        ),
        (
            "message rules, numbers vary (ValueError ... out of range)",
            lambda c: c.classify(
                "ValueError", f"heart rate {next(counter) % 1000} out of range"
            ),
            _CALLS,
        ),
        (
            "no exception, attribute rule (HTTP 503)",
            lambda c: c.classify(
                None, None, attributes={"http.response.status_code": 503}
            ),
            _CALLS,
        ),
        (
            "unmatched (KeyError, no context)",
            lambda c: c.classify_exception(KeyError("x")),
            _CALLS,
        ),
    ]

    baseline = _median_ns(span)
    print(f"baseline: SDK span start+end      {baseline / 1000:8.2f} µs")
    print()
    print(
        f"{'case':58} {'cached µs':>10} {'ratio':>7} {'uncached µs':>12} {'ratio':>7}"
    )
    for name, call, calls in cases:
        hit = _median_ns(lambda call=call: call(cached), calls)
        miss = _median_ns(lambda call=call: call(uncached), max(calls // 20, 200))
        print(
            f"{name:58} {hit / 1000:10.3f} {hit / baseline:7.3f} "
            f"{miss / 1000:12.1f} {miss / baseline:7.2f}"
        )


if __name__ == "__main__":
    main()
