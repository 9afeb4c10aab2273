"""Tests for the in-service feature and score recorder."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.drift.reference import FeatureReference, Reference, save_reference
from otel_processors._guard import failure_counts, reset_failures
from otel_processors.binning import BinLayout
from otel_processors.histograms import ModelRecorder, RecorderCollector, format_le


@pytest.fixture
def provider() -> Iterator[MeterProvider]:
    """A real SDK meter provider with an in-memory reader."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    meter_provider.reader = reader  # type: ignore[attr-defined]  # handy in tests
    yield meter_provider
    meter_provider.shutdown()


def _recorder(provider: MeterProvider) -> ModelRecorder:
    return ModelRecorder(
        "sepsis",
        {
            "lactate_delta": BinLayout.numeric([-1.0, 0.0, 1.0]),
            "ward": BinLayout.categorical(["icu", "ed"]),
        },
        BinLayout.numeric([0.25, 0.5, 0.75]),
        meter_provider=provider,
    )


def test_negative_values_are_binned_not_dropped(provider: MeterProvider) -> None:
    """Negative values land in their bins, underflow included."""
    recorder = _recorder(provider)
    for value in (-3.0, -0.5, -0.5, 0.0, 2.5):
        recorder.record({"lactate_delta": value, "ward": "icu"})

    result = recorder.snapshot().features["lactate_delta"].tolist()

    assert [1.0, 2.0, 1.0, 1.0] == result


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), "n/a", object()])
def test_unusable_values_are_counted_as_missing(
    provider: MeterProvider, value: object
) -> None:
    """None, NaN, infinity and unreadable values count as missing, not in a bin."""
    recorder = _recorder(provider)
    recorder.record({"lactate_delta": value, "ward": "icu"})

    snapshot = recorder.snapshot()

    missing = snapshot.missing["lactate_delta"]
    result = (missing, snapshot.features["lactate_delta"].sum())
    assert (1.0, 0.0) == result


def test_absent_feature_is_counted_as_missing(provider: MeterProvider) -> None:
    """A feature the request lacks is a missing value."""
    recorder = _recorder(provider)
    recorder.record({"lactate_delta": 0.5})

    result = recorder.snapshot().missing

    assert {"lactate_delta": 0.0, "ward": 1.0} == result


def test_unknown_category_goes_to_other(provider: MeterProvider) -> None:
    """A category outside the reference is counted in the last (other) bin."""
    recorder = _recorder(provider)
    for ward in ("icu", "oncology", "ed", "oncology"):
        recorder.record({"lactate_delta": 0.0, "ward": ward})

    result = recorder.snapshot().features["ward"].tolist()

    assert [1.0, 1.0, 2.0] == result


def test_integral_floats_and_integers_are_the_same_category(
    provider: MeterProvider,
) -> None:
    """1 and 1.0 both count as category "1"; 1.5 is another category."""
    recorder = ModelRecorder(
        "sepsis",
        {"code": BinLayout.categorical(["1", "2"])},
        meter_provider=provider,
    )
    for code in (1, 1.0, np.float64(2.0), 1.5, True):
        recorder.record({"code": code})

    result = recorder.snapshot().features["code"].tolist()

    assert [2.0, 1.0, 2.0] == result


def test_layout_bin_index_counts_infinities_as_missing() -> None:
    """``BinLayout.bin_index`` agrees with the recorder: infinities have no bin."""
    layout = BinLayout.numeric([0.0, 1.0])

    result = [layout.bin_index(v) for v in (-float("inf"), -1.0, 2.0, float("inf"))]

    assert [None, 0, 2, None] == result


def test_late_outcome_adds_to_labelled_scores_only(provider: MeterProvider) -> None:
    """``record_outcome`` fills the outcome split without counting the score twice."""
    recorder = _recorder(provider)
    recorder.record({"lactate_delta": 0.0, "ward": "icu"}, score=0.9, outcome=1)
    recorder.record({"lactate_delta": 0.0, "ward": "icu"}, score=0.1)
    recorder.record_outcome(0.1, "0")

    snapshot = recorder.snapshot()

    assert snapshot.score is not None
    result = (
        snapshot.score.tolist(),
        snapshot.score_by_outcome["0"].tolist(),
        snapshot.score_by_outcome["1"].tolist(),
    )
    assert ([1.0, 0, 0, 1], [1.0, 0, 0, 0], [0.0, 0, 0, 1]) == result


def test_concurrent_records_are_all_counted(provider: MeterProvider) -> None:
    """Records from several threads at once lose no count."""
    recorder = _recorder(provider)

    def work() -> None:
        for i in range(5000):
            recorder.record({"lactate_delta": i % 3 - 1.0, "ward": "ed"}, score=0.3)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    result = recorder.snapshot().features["lactate_delta"].sum()

    assert 20_000.0 == result


def test_failure_inside_record_is_counted_not_raised(provider: MeterProvider) -> None:
    """A hostile features mapping does not raise into the service."""

    class Hostile(dict[str, object]):
        def get(self, key: str, default: object = None) -> object:
            raise RuntimeError("broken mapping")

    reset_failures()
    recorder = _recorder(provider)
    recorder.record(Hostile())

    result = failure_counts()

    assert {"histograms.record": 1} == result


def test_collector_exposes_classic_cumulative_buckets(provider: MeterProvider) -> None:
    """Scraped text holds cumulative ``_bucket`` series ending at ``+Inf``."""
    recorder = _recorder(provider)
    for value in (-3.0, -0.5, 0.5, 0.5):
        recorder.record({"lactate_delta": value, "ward": "other-ward"})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecorderCollector([recorder]))

    families = {
        f.name: f
        for f in text_string_to_metric_families(generate_latest(registry).decode())
    }

    result = {
        s.labels["le"]: s.value
        for s in families["healthai_model_feature_value"].samples
        if s.labels.get("feature") == "lactate_delta"
    }
    assert {"-1.0": 1.0, "0.0": 2.0, "1.0": 4.0, "+Inf": 4.0} == result
    categories = {
        s.labels["category"]: s.value
        for s in families["healthai_model_feature_category"].samples
    }
    assert {"icu": 0.0, "ed": 0.0, "__other__": 4.0} == categories


def test_opentelemetry_instruments_report_bucket_attributes(
    provider: MeterProvider,
) -> None:
    """The OpenTelemetry bucket series carry model, feature and ``le``."""
    recorder = _recorder(provider)
    recorder.record({"lactate_delta": -0.5, "ward": "icu"})

    data = provider.reader.get_metrics_data()  # type: ignore[attr-defined]
    points = {
        metric.name: metric.data.data_points
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }

    result = sorted(
        (p.attributes["le"], p.value)
        for p in points["healthai_model_feature_value_bucket"]
        if p.attributes["feature"] == "lactate_delta"
    )
    assert [("+Inf", 1), ("-1.0", 0), ("0.0", 1), ("1.0", 1)] == result


def test_recorder_reads_layouts_from_a_reference_file(tmp_path: Path) -> None:
    """``from_reference_file`` uses the reference's model and layouts."""
    reference = Reference(
        model="sepsis",
        model_version="1",
        features={
            "age": FeatureReference(
                "age", BinLayout.numeric([40.0, 60.0]), np.array([1.0, 1, 1])
            )
        },
    )
    path = tmp_path / "ref.json"
    save_reference(reference, path)

    recorder = ModelRecorder.from_reference_file(path, meter_provider=MeterProvider())

    result = (recorder.model, recorder.layouts())
    assert ("sepsis", {"age": BinLayout.numeric([40.0, 60.0])}) == result


def test_le_labels_round_trip_through_float() -> None:
    """Rendered ``le`` values parse back to the exact edge."""
    edges = [-1e-07, 0.1, 3.0, 12345.678901, 1e21]

    result = [float(format_le(edge)) for edge in edges]

    assert edges == result


def test_recorders_sharing_a_provider_are_all_observed(
    provider: MeterProvider,
) -> None:
    """Two models recorded through one meter provider both reach its reader."""
    first = ModelRecorder("a", {"x": BinLayout.numeric([0.0])}, meter_provider=provider)
    second = ModelRecorder(
        "b", {"x": BinLayout.numeric([0.0])}, meter_provider=provider
    )
    first.record({"x": 1.0})
    second.record({"x": -1.0})

    data = provider.reader.get_metrics_data()  # type: ignore[attr-defined]

    result = sorted(
        {
            point.attributes["model"]
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == "healthai_model_feature_value_bucket"
            for point in metric.data.data_points
        }
    )
    assert ["a", "b"] == result
