"""Interpreter hooks that report unhandled exceptions and chain the previous ones.

Covered:

- the main thread (``sys.excepthook``): FATAL, flushed before the interpreter
  exits; in an interactive shell (known at install or only later, when the
  prompt appears) errors typed at the prompt are only passed on;
- other threads (``threading.excepthook``): ERROR;
- unraisable exceptions (``sys.unraisablehook``), e.g. in ``__del__``: ERROR;
- asyncio (the loop's exception handler): installed on the running loop and on
  every loop the current event loop policy creates afterwards. A failed task
  that is never awaited reaches the handler only when it is garbage-collected.
  An application that sets its own handler replaces this one.

``KeyboardInterrupt`` (and ``SystemExit`` in a thread) is not a crash and is
passed on unreported. Exceptions in
a ``concurrent.futures`` executor reach no hook: see
``otel_processors.crash.executor``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from otel_processors._guard import record_failure
from otel_processors.crash.report import CrashReporter

__all__ = ["CrashHooks", "is_interactive"]

_logger = logging.getLogger(__name__)

_ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], Any]
_LoopHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def is_interactive() -> bool:
    """Return whether the interpreter runs an interactive shell."""
    return hasattr(sys, "ps1") or bool(sys.flags.interactive)


class CrashHooks:
    """Install and remove the hooks for one reporter.

    Args:
        reporter: where crashes are reported.
    """

    def __init__(self, reporter: CrashReporter) -> None:
        self._reporter = reporter
        self._installed = False
        self._previous_excepthook: _ExceptHook | None = None
        self._previous_threading_hook: Callable[[threading.ExceptHookArgs], Any] | None
        self._previous_threading_hook = None
        self._previous_unraisable: Callable[[Any], Any] | None = None
        self._policy: asyncio.AbstractEventLoopPolicy | None = None
        self._policy_had_own_factory = False
        self._patched_loops: list[tuple[asyncio.AbstractEventLoop, Any, Any]] = []
        self._original_factory: Callable[[], asyncio.AbstractEventLoop] | None = None

    def install(self) -> None:
        """Install every hook; the previous ones are kept and chained."""
        if self._installed:
            return
        self._installed = True

        if is_interactive():
            _logger.debug("Interactive shell: sys.excepthook left alone")
        else:
            self._previous_excepthook = sys.excepthook
            sys.excepthook = self._excepthook

        self._previous_threading_hook = threading.excepthook
        threading.excepthook = self._threading_hook

        self._previous_unraisable = sys.unraisablehook
        sys.unraisablehook = self._unraisable_hook

        self._install_asyncio()

    def uninstall(self) -> None:
        """Restore the hooks that were in place before ``install``.

        A hook replaced since by someone else is left in place (it may chain to
        ours, which then only passes calls on, reporting nothing).
        """
        if not self._installed:
            return
        self._installed = False

        if sys.excepthook == self._excepthook and self._previous_excepthook:
            sys.excepthook = self._previous_excepthook
        if (
            threading.excepthook == self._threading_hook
            and self._previous_threading_hook
        ):
            threading.excepthook = self._previous_threading_hook
        if sys.unraisablehook == self._unraisable_hook and self._previous_unraisable:
            sys.unraisablehook = self._previous_unraisable
        self._uninstall_asyncio()

    # sys.excepthook
    def _excepthook(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        # Checked per call: a shell started after install (``python`` reading
        # a terminal under opentelemetry-instrument) sets sys.ps1 only later.
        if (
            self._installed
            and not issubclass(exc_type, KeyboardInterrupt)
            and not is_interactive()
        ):
            if exc.__traceback__ is None and tb is not None:
                exc = exc.with_traceback(tb)
            self._reporter.report(exc, kind="main_thread", fatal=True)
        previous = self._previous_excepthook or sys.__excepthook__
        previous(exc_type, exc, tb)

    # threading.excepthook
    def _threading_hook(self, args: threading.ExceptHookArgs) -> None:
        # SystemExit ends a thread on purpose; it is not a crash.
        if (
            self._installed
            and args.exc_value is not None
            and not isinstance(args.exc_value, (KeyboardInterrupt, SystemExit))
        ):
            self._reporter.report(args.exc_value, kind="thread")
        previous = self._previous_threading_hook or threading.__excepthook__
        previous(args)

    # sys.unraisablehook
    def _unraisable_hook(self, unraisable: Any) -> None:
        exc = getattr(unraisable, "exc_value", None)
        if self._installed and isinstance(exc, BaseException):
            self._reporter.report(exc, kind="unraisable")
        previous = self._previous_unraisable or sys.__unraisablehook__
        previous(unraisable)

    # asyncio
    def _install_asyncio(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._attach(loop)

        # Loops created later (asyncio.run, new_event_loop) come from the policy.
        try:
            policy = asyncio.get_event_loop_policy()
            self._policy = policy
            self._policy_had_own_factory = "new_event_loop" in vars(policy)
            original = policy.new_event_loop

            def new_event_loop() -> asyncio.AbstractEventLoop:
                created = original()
                self._attach(created)
                return created

            policy.new_event_loop = new_event_loop  # type: ignore[method-assign]  # instance-level wrap, undone by uninstall
            self._original_factory = original
        except Exception as failure:  # never raise into the host
            record_failure("crash.install_asyncio", failure)

    def _uninstall_asyncio(self) -> None:
        policy, self._policy = self._policy, None
        if policy is not None:
            if self._policy_had_own_factory and self._original_factory:
                policy.new_event_loop = self._original_factory  # type: ignore[method-assign]  # restores the saved attribute
            else:
                vars(policy).pop("new_event_loop", None)
        for loop, ours, previous in self._patched_loops:
            if not loop.is_closed() and loop.get_exception_handler() is ours:
                loop.set_exception_handler(previous)
        self._patched_loops.clear()

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        previous: _LoopHandler | None = loop.get_exception_handler()

        def handler(
            failing_loop: asyncio.AbstractEventLoop, context: dict[str, Any]
        ) -> None:
            exc = context.get("exception")
            if (
                self._installed
                and isinstance(exc, BaseException)
                and not isinstance(exc, KeyboardInterrupt)
            ):
                self._reporter.report(exc, kind="asyncio_task")
            if previous is not None:
                previous(failing_loop, context)
            else:
                failing_loop.default_exception_handler(context)

        loop.set_exception_handler(handler)
        self._patched_loops = [
            entry for entry in self._patched_loops if not entry[0].is_closed()
        ]
        self._patched_loops.append((loop, handler, previous))
