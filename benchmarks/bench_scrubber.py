"""Throughput of the PHI scrubber, against a one-regex scrubber on the same text.

Run: ``.venv/bin/python -m benchmarks.bench_scrubber``

Prints the median over repeats of the CPU time of this thread (steadier than
the wall clock on a shared machine), as MB/s of text, for:

- (a) clean log-like lines, (b) the same with about 2 % of lines carrying
  patient data, (c) Python stack traces, each scrubbed as one large text and,
  for (a) and (b), one line per call as a log processor does;
- the baseline: one regular expression (the SSN shape) substituted over the
  same text, the least any scrubber by value can cost; and, for scale, every
  pattern of the catalogue substituted without the gates;
- ``scrub_attributes`` on a typical span attribute set, in µs per call.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable

from opentelemetry.util.types import AnyValue

from otel_processors.phi_patterns import CATALOGUE
from otel_processors.scrubber import Scrubber

_REPEATS = 5
_SEED = 20261203
_TARGET_BYTES = 1_000_000

_LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARNING", "ERROR")
_LOGGERS = ("healthai.score", "uvicorn.access", "feature_store", "model.loader")
_PATHS = ("/api/v1/score", "/api/v1/explain", "/healthz", "/metrics")
_PHI_LINES = (
    "ERROR lookup failed for patient John Smith, MRN: A1234567",
    "WARNING callback number 555-123-4567 rejected for member id XK992211",
    "ERROR KeyError: 'SSN 123-45-6789 not in index'",
    "INFO notify jane.doe@example.org, DOB 03/14/1962",
    "ERROR card 4111 1111 1111 1111 declined at 1600 Pennsylvania Ave",
)


def _clean_line(rng: random.Random) -> str:
    seconds = rng.randrange(86_400)
    hours, minutes = seconds // 3600, seconds // 60 % 60
    status = rng.choice((200, 200, 404, 503))
    return (
        f"2026-12-03T{hours:02d}:{minutes:02d}:{seconds % 60:02d}."
        f"{rng.randrange(1000):03d}Z {rng.choice(_LEVELS)} {rng.choice(_LOGGERS)} "
        f"method=POST path={rng.choice(_PATHS)} status={status} "
        f"latency_ms={rng.randrange(1, 900)} model=readmission-v3 version=1.45.2 "
        f"trace_id={rng.getrandbits(128):032x}"
    )


def _log_lines(rng: random.Random, phi_share: float) -> list[str]:
    lines: list[str] = []
    size = 0
    while size < _TARGET_BYTES:
        line = _clean_line(rng)
        if rng.random() < phi_share:
            line = line[:25] + rng.choice(_PHI_LINES)
        lines.append(line)
        size += len(line) + 1
    return lines


def _traceback(rng: random.Random) -> str:
    frames = "".join(
        f'  File "/srv/app/{rng.choice(("model", "store", "api", "features"))}.py", '
        f"line {rng.randrange(1, 2000)}, in {rng.choice(('score', 'load', 'handle'))}\n"
        f"    result = step_{rng.randrange(100)}(batch, timeout=30)\n"
        for _ in range(rng.randrange(4, 12))
    )
    message = rng.choice(
        (
            "ValueError: could not convert string to float: 'n/a'",
            "TimeoutError: read timed out after 30.0 s (127.0.0.1:6379)",
            "KeyError: 'feature hba1c_7d missing for batch 2026-12-03/part-00017'",
        )
    )
    return f"Traceback (most recent call last):\n{frames}{message}"


def _tracebacks(rng: random.Random) -> list[str]:
    traces: list[str] = []
    size = 0
    while size < _TARGET_BYTES:
        trace = _traceback(rng)
        traces.append(trace)
        size += len(trace)
    return traces


def _median_seconds(work: Callable[[], object]) -> float:
    samples = []
    for _ in range(_REPEATS):
        start = time.thread_time()
        work()
        samples.append(time.thread_time() - start)
    return statistics.median(samples)


def _throughput(name: str, texts: list[str], scrub: Callable[[str], str]) -> float:
    size = sum(len(text.encode()) for text in texts) / 1e6
    seconds = _median_seconds(lambda: [scrub(text) for text in texts])
    rate = size / seconds
    print(f"  {name:<44} {rate:8.1f} MB/s")
    return rate


def _attributes_micros(
    scrubber: Scrubber, attributes: dict[str, AnyValue], calls: int
) -> float:
    seconds = _median_seconds(
        lambda: [scrubber.scrub_attributes(attributes) for _ in range(calls)]
    )
    return seconds / calls * 1e6


def main() -> None:
    """Measure and print the tables."""
    rng = random.Random(_SEED)
    scrubber = Scrubber()
    baseline_re = re.compile(r"(?<![\w.:/-])\d{3}-\d{2}-\d{4}(?![\w-])")

    def baseline(text: str) -> str:
        return baseline_re.sub("[REDACTED:SSN]", text)

    def ungated(text: str) -> str:
        # What the catalogue costs without gates: every pattern over all text.
        for pattern in CATALOGUE:
            text = pattern.regex.sub("[REDACTED]", text)
        return text

    corpora = {
        "(a) clean log lines": _log_lines(rng, 0.0),
        "(b) log lines, 2 % with PHI": _log_lines(rng, 0.02),
    }
    traces = _tracebacks(rng)

    print(f"CPU time of one thread, median of {_REPEATS} runs, ~1 MB per corpus")
    results: list[tuple[str, float, float]] = []
    for name, lines in corpora.items():
        text = "\n".join(lines)
        print(name)
        base = _throughput("baseline: one SSN regex, whole text", [text], baseline)
        _throughput("every catalogue pattern, no gates", [text], ungated)
        whole = _throughput("scrub(), whole text in one call", [text], scrubber.scrub)
        per_line = _throughput("scrub(), one call per line", lines, scrubber.scrub)
        results.append((f"{name}, whole text", whole, whole / base))
        results.append((f"{name}, one call per line", per_line, per_line / base))
    print("(c) stack traces, one call per traceback")
    base = _throughput("baseline: one SSN regex", traces, baseline)
    rate = _throughput("scrub()", traces, scrubber.scrub)
    results.append(("(c) stack traces, one call per traceback", rate, rate / base))

    attributes: dict[str, AnyValue] = {
        "http.request.method": "POST",
        "url.full": "https://scorer.internal:8443/api/v1/score?model=readmission-v3",
        "http.route": "/api/v1/score",
        "http.response.status_code": 200,
        "server.address": "scorer.internal",
        "server.port": 8443,
        "user_agent.original": "python-requests/2.32.3",
        "code.function": "score",
        "code.lineno": 123,
        "healthai.model.name": "readmission-v3",
    }
    with_phi: dict[str, AnyValue] = {
        **attributes,
        "exception.message": "lookup failed for patient John Smith",
    }
    calls = 2_000
    for name, attribute_set in (
        ("clean span", attributes),
        ("span with a PHI exception message", with_phi),
    ):
        micros = _attributes_micros(scrubber, attribute_set, calls)
        print(
            f"scrub_attributes, {name} ({len(attribute_set)} attributes): "
            f"{micros:.1f} µs per call"
        )

    print("\nsummary (ratio = scrubber throughput / baseline throughput)")
    for name, rate, ratio in results:
        print(f"  {name:<52} {rate:6.1f} MB/s  ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
