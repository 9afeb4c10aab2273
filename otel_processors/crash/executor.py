"""Opt-in reporting of exceptions raised in ``concurrent.futures`` executors.

An exception raised by a task submitted to an executor is stored in its future
and reaches no interpreter hook, so it is lost when nobody calls ``result()``.
``report_future`` reports it when the future completes;
``ReportingThreadPoolExecutor`` does that for every task it runs. Every
exception is reported, whether or not the caller later handles it: that is
what opting in means.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from otel_processors.crash.report import CrashReporter

__all__ = ["ReportingThreadPoolExecutor", "report_future"]

_T = TypeVar("_T")


def report_future(
    future: Future[_T],
    reporter: CrashReporter | None = None,
    *,
    kind: str = "executor",
) -> Future[_T]:
    """Report the exception of ``future`` when it completes with one.

    Args:
        future: a future from a ``concurrent.futures`` executor.
        reporter: where to report; default: the installed reporter (nothing is
            reported when none is installed).
        kind: the crash kind recorded.

    Returns:
        ``future`` itself, for chaining.
    """

    def done(completed: Future[_T]) -> None:
        if completed.cancelled():
            return
        exc = completed.exception()
        if exc is None:
            return
        target = reporter or _installed_reporter()
        if target is not None:
            target.report(exc, kind=kind)

    future.add_done_callback(done)
    return future


def _installed_reporter() -> CrashReporter | None:
    from otel_processors.crash import lifecycle  # avoids a cycle

    return lifecycle.installed_reporter()


class ReportingThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks' exceptions are reported.

    Args:
        *args: as for ``ThreadPoolExecutor``.
        reporter: where to report; default: the installed reporter.
        **kwargs: as for ``ThreadPoolExecutor``.
    """

    def __init__(
        self, *args: Any, reporter: CrashReporter | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._crash_reporter = reporter

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Submit ``fn(*args, **kwargs)``; its exception, if any, is reported."""
        future = super().submit(fn, *args, **kwargs)
        return report_future(future, self._crash_reporter)
