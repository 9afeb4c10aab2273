"""Tests for the drift exporter's serve loop, with windows given in process."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporters.drift.config import ModelConfig, ServeConfig
from exporters.drift.reference import FeatureReference, Reference
from exporters.drift.report import Level
from exporters.drift.server import DriftServer
from exporters.drift.sources import SourceError, WindowCounts
from otel_processors.binning import BinLayout

_LAYOUT = BinLayout.numeric([1.0, 2.0, 3.0])


class ScriptedSource:
    """Returns the given windows in turn; ``None`` entries raise SourceError."""

    def __init__(self, windows: list[WindowCounts | None]) -> None:
        self.windows = windows
        self.calls = 0

    def fetch(self) -> WindowCounts:
        window = self.windows[min(self.calls, len(self.windows) - 1)]
        self.calls += 1
        if window is None:
            raise SourceError("Prometheus at http://x unavailable", "unavailable")
        return window


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _config(interval_seconds: float = 60.0) -> ServeConfig:
    reference = Reference(
        model="sepsis",
        model_version="1",
        features={
            name: FeatureReference(name, _LAYOUT, np.array([250.0, 250, 250, 250]))
            for name in ("lactate", "heart_rate")
        },
    )
    model = ModelConfig(
        reference=reference,
        reference_path="sepsis.json",
        prometheus_url="http://127.0.0.1:1",
        window_seconds=300.0,
        interval_seconds=interval_seconds,
        timeout_seconds=1.0,
        retries=0,
    )
    return ServeConfig(models=(model,), source="drift.yaml")


def _window(lactate: list[float]) -> WindowCounts:
    return WindowCounts(
        features={
            "lactate": np.array(lactate),
            "heart_rate": np.array([250.0, 250, 250, 250]),
        }
    )


_SHIFTED = _window([0.0, 50, 150, 800])


def test_outage_keeps_last_report_and_grows_staleness() -> None:
    """After a failure the last good report stays and staleness keeps growing."""
    clock = Clock()
    source = ScriptedSource([_SHIFTED, None])
    server = DriftServer(_config(), sources={"sepsis": source}, clock=clock)
    server.evaluate("sepsis")
    good = server.statuses()[0].report
    clock.now += 120.0

    status = server.evaluate("sepsis")

    result = (status.report is good, status.last_success_seconds, status.errors)
    assert (True, 1000.0, {"unavailable": 1}) == result


def test_hysteresis_spans_evaluations() -> None:
    """The same monitor evaluates every window, so drift raises after a streak."""
    server = DriftServer(_config(), sources={"sepsis": ScriptedSource([_SHIFTED])})

    levels = []
    for _ in range(3):
        report = server.evaluate("sepsis").report
        assert report is not None
        levels.append(report.features["lactate"].level)

    result = levels
    assert [Level.OK, Level.CRITICAL, Level.CRITICAL] == result


def test_window_without_features_counts_as_no_data() -> None:
    """A window in which no feature could be read is a failure, not a report."""
    empty = WindowCounts(features={}, errors={"lactate": "no series in the window"})
    server = DriftServer(_config(), sources={"sepsis": ScriptedSource([empty])})

    status = server.evaluate("sepsis")

    result = (status.report, status.errors)
    assert (None, {"no_data": 1}) == result


def test_unknown_model_in_sources_is_rejected() -> None:
    """Sources for a model the configuration lacks are a mistake."""
    with pytest.raises(ValueError) as caught:
        DriftServer(_config(), sources={"other": ScriptedSource([_SHIFTED])})

    result = str(caught.value)
    assert "['other']" in result


@pytest.fixture
def running_server() -> Iterator[tuple[DriftServer, ScriptedSource, int]]:
    """A server evaluating every 0.1 s and serving /metrics on a free port."""
    source = ScriptedSource([_SHIFTED])
    server = DriftServer(_config(interval_seconds=0.1), sources={"sepsis": source})
    port = server.serve("127.0.0.1", 0)
    server.start()
    yield server, source, port
    server.stop()


def test_background_loop_publishes_metrics_over_http(
    running_server: tuple[DriftServer, ScriptedSource, int],
) -> None:
    """The loop evaluates on its interval and /metrics shows the model level."""
    _, source, port = running_server
    deadline = time.monotonic() + 5
    while source.calls < 3 and time.monotonic() < deadline:
        time.sleep(0.05)

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

    result = {
        sample.labels["feature"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "healthai_drift_level"
    }
    assert {"lactate", "heart_rate"} == result
    assert source.calls >= 3
