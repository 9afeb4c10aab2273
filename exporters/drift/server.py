"""The serve loop of the drift exporter.

``DriftServer`` watches the models of a ``ServeConfig``: a background thread
reads each model's current window from Prometheus every ``interval``,
evaluates it with the model's ``DriftMonitor`` (which keeps hysteresis and
history across windows), and keeps the result. ``/metrics`` is served by
prometheus-client's HTTP server from a registry of its own holding one
``DriftCollector``, so a scrape never waits for an evaluation.

When Prometheus is down or slow, the last good values keep being served and
``healthai_drift_staleness_seconds`` grows; each failure is counted in
``healthai_drift_evaluation_errors_total{reason}`` (``unavailable``,
``query_error``, ``no_data``, ``feature_unreadable``, ``evaluation``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, start_http_server

from exporters.drift.collector import DriftCollector, ModelStatus
from exporters.drift.config import ModelConfig, ServeConfig
from exporters.drift.evaluation import DriftMonitor
from exporters.drift.sources import PrometheusSource, SourceError, WindowCounts

__all__ = ["DriftServer", "WindowSource"]

_logger = logging.getLogger(__name__)


class WindowSource(Protocol):
    """Anything that returns the current window of one model."""

    def fetch(self) -> WindowCounts:
        """Return the current window; raise ``SourceError`` when unreadable."""
        ...


class _Watch:
    """One model's source, monitor and status (status guarded by the lock)."""

    def __init__(
        self, config: ModelConfig, source: WindowSource, started_seconds: float
    ) -> None:
        self.config = config
        self.source = source
        self.monitor = DriftMonitor(
            config.reference,
            config.policy,
            feature_importance=config.feature_importance,
            history_windows=config.history_windows,
        )
        self.status = ModelStatus(model=config.model, started_seconds=started_seconds)
        self.errors: Counter[str] = Counter()
        self.failing = False


class DriftServer:
    """Evaluate every configured model on its interval and publish the results.

    Args:
        config: the serve configuration.
        sources: window sources by model name, replacing the Prometheus ones
            (for tests and embedding).
        clock: the wall clock (Unix seconds).

    Raises:
        ValueError: when ``sources`` names a model that is not configured.
    """

    def __init__(
        self,
        config: ServeConfig,
        *,
        sources: Mapping[str, WindowSource] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        sources = sources or {}
        unknown = set(sources) - {model.model for model in config.models}
        if unknown:
            msg = f"sources given for models that are not configured: {sorted(unknown)}"
            raise ValueError(msg)

        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        started = clock()
        self._watches = {
            model.model: _Watch(
                model, sources.get(model.model) or _prometheus_source(model), started
            )
            for model in config.models
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http: Any = None

    def statuses(self) -> list[ModelStatus]:
        """Return the current status of every model, in configuration order."""
        with self._lock:
            return [watch.status for watch in self._watches.values()]

    def collector(self) -> DriftCollector:
        """Return a collector publishing this server's statuses."""
        return DriftCollector(
            self.statuses,
            root_cause_top_k=self.config.root_cause_top_k,
            clock=self._clock,
        )

    def evaluate(self, model: str) -> ModelStatus:
        """Read and evaluate one window of ``model`` now; never raises.

        Args:
            model: a configured model name.

        Returns:
            The model's new status.
        """
        watch = self._watches[model]
        began = time.monotonic()
        reason = None
        try:
            counts = watch.source.fetch()
            if not counts.features:
                reason = "no_data"
            else:
                report = watch.monitor.evaluate(counts.to_window())
        except SourceError as exc:
            reason = exc.reason
            if not watch.failing:
                _logger.warning("Drift window of %s unavailable: %s", model, exc)
        except Exception:
            reason = "evaluation"
            if not watch.failing:
                _logger.exception("Drift evaluation of %s failed", model)
        duration = time.monotonic() - began

        with self._lock:
            if reason is not None:
                watch.errors[reason] += 1
                watch.failing = True
                watch.status = dataclasses.replace(
                    watch.status, errors=dict(watch.errors), duration_seconds=duration
                )
                return watch.status

            if watch.failing:
                _logger.info("Drift evaluation of %s recovered", model)
            watch.failing = False
            if counts.errors:
                watch.errors["feature_unreadable"] += 1
            watch.status = dataclasses.replace(
                watch.status,
                report=report,
                feature_errors=dict(counts.errors),
                last_success_seconds=self._clock(),
                duration_seconds=duration,
                errors=dict(watch.errors),
                clamped_bins=watch.status.clamped_bins + counts.clamped,
            )
            return watch.status

    def start(self) -> None:
        """Start evaluating in a background thread (the first round at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="healthai-drift-evaluator", daemon=True
        )
        self._thread.start()

    def serve(self, host: str = "127.0.0.1", port: int = 9466) -> int:
        """Serve ``/metrics`` on ``host:port`` (0 picks a free port).

        Returns:
            The port actually bound.
        """
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector())
        self._http, _ = start_http_server(port, addr=host, registry=registry)
        bound: int = self._http.server_port
        _logger.info("Serving drift metrics on %s:%s", host, bound)
        return bound

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop the evaluator thread and the HTTP server."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            self._thread = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def request_stop(self) -> None:
        """Ask ``wait`` to return; safe from a signal handler."""
        self._stop.set()

    def wait(self) -> None:
        """Block until ``stop`` or ``request_stop`` is called."""
        while not self._stop.wait(1.0):
            pass

    def _run(self) -> None:
        due = dict.fromkeys(self._watches, time.monotonic())
        while not self._stop.is_set():
            now = time.monotonic()
            for model, when in due.items():
                if when <= now and not self._stop.is_set():
                    self.evaluate(model)
                    interval = self._watches[model].config.interval_seconds
                    due[model] = now + interval
            self._stop.wait(max(min(due.values()) - time.monotonic(), 0.0))


def _prometheus_source(model: ModelConfig) -> PrometheusSource:
    return PrometheusSource(
        model.prometheus_url,
        model.reference,
        window_seconds=model.window_seconds,
        timeout_seconds=model.timeout_seconds,
        retries=model.retries,
    )
