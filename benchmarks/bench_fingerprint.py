"""Crash fingerprinting throughput, against rendering the same traceback as text.

Run: ``.venv/bin/python -m benchmarks.bench_fingerprint``

Three realistic crashes are raised in a small service module written to a
temporary directory (so its frames are in-app and have source lines):

- ``chained``: a request handler, 6 application frames deep, fails in
  ``json.loads`` (4 standard-library frames) and is re-raised as a domain
  error ``from`` the decode error (2 exceptions in the chain);
- ``recursive``: a recursive tree walk 60 frames deep fails with a KeyError;
- ``flat``: a 3-frame ValueError, the common case.

For each it prints the median over repeats of fingerprints per second for
``fingerprint_exception`` (in the service, on the exception object) and
``fingerprint_text`` (in the crash service, on the stack text), and the
baseline measured in the same run: ``traceback.format_exception``, which
every crash reporter already pays to write ``exception.stacktrace``. The
``cost`` columns are the time of one fingerprint over the time of one
baseline rendering. Times are the thread's CPU time, steadier than the wall
clock on a shared machine.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from otel_processors.crash.fingerprint import fingerprint_exception, fingerprint_text

_REPEATS = 7
_CALLS = 500

_SERVICE = """\
import json


class ScoringError(Exception):
    pass


def handle(request):
    return route(request)


def route(request):
    return validate(request)


def validate(request):
    return parse_body(request)


def parse_body(request):
    try:
        return decode(request["body"])
    except ValueError as exc:
        raise ScoringError("cannot score patient " + request["id"]) from exc


def decode(body):
    return load(body)


def load(body):
    return json.loads(body)


def walk(tree, depth):
    if depth == 0:
        return tree["missing"]
    return walk(tree, depth - 1)


def flat(value):
    return check(value)


def check(value):
    raise ValueError("value out of range: " + str(value))
"""


def _capture(call: Callable[[], object]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    msg = "the scenario did not raise"
    raise AssertionError(msg)


def _crashes(directory: Path) -> dict[str, BaseException]:
    (directory / "bench_service.py").write_text(_SERVICE, encoding="utf-8")
    sys.path.insert(0, str(directory))
    service = importlib.import_module("bench_service")
    return {
        "chained": _capture(
            lambda: service.handle({"id": "MRN-4711", "body": "{not json"})
        ),
        "recursive": _capture(lambda: service.walk({}, 60)),
        "flat": _capture(lambda: service.flat(212)),
    }


def _median_per_second(call: Callable[[], object]) -> float:
    samples = []
    for _ in range(_REPEATS):
        start = time.thread_time()
        for _ in range(_CALLS):
            call()
        samples.append(_CALLS / (time.thread_time() - start))
    return statistics.median(samples)


def main() -> None:
    """Measure and print one table row per crash."""
    with tempfile.TemporaryDirectory() as directory:
        crashes = _crashes(Path(directory))
        print(
            f"{'crash':<10} {'format_exception/s':>19} {'fp_exception/s':>15} "
            f"{'cost':>6} {'fp_text/s':>10} {'cost':>6}"
        )
        for name, exc in crashes.items():
            text = "".join(traceback.format_exception(exc))
            assert fingerprint_text(text) == fingerprint_exception(exc)

            baseline = _median_per_second(lambda e=exc: traceback.format_exception(e))
            from_exception = _median_per_second(lambda e=exc: fingerprint_exception(e))
            from_text = _median_per_second(lambda t=text: fingerprint_text(t))
            print(
                f"{name:<10} {baseline:>19,.0f} {from_exception:>15,.0f} "
                f"{baseline / from_exception:>6.2f} {from_text:>10,.0f} "
                f"{baseline / from_text:>6.2f}"
            )


if __name__ == "__main__":
    main()
