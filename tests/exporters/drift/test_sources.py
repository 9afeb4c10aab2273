"""Tests for the window sources that need no Prometheus server."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from exporters.drift.reference import FeatureReference, Reference
from exporters.drift.report import SCORE_FEATURE
from exporters.drift.sources import (
    PrometheusSource,
    RecorderSource,
    SourceError,
    WindowCounts,
    WindowFileError,
    counts_from_buckets,
    load_window_file,
    save_window,
)
from otel_processors.binning import BinLayout
from otel_processors.histograms import ModelRecorder

_DELTA = BinLayout.numeric([-1e-05, 0.0, 2.5])
_WARD = BinLayout.categorical(["icu", "ed"])


def _reference() -> Reference:
    return Reference(
        model="sepsis",
        model_version="1",
        features={
            "delta": FeatureReference("delta", _DELTA, np.ones(4)),
            "ward": FeatureReference("ward", _WARD, np.ones(3)),
        },
        score=FeatureReference("risk", BinLayout.numeric([0.5]), np.ones(2)),
    )


def test_buckets_in_scientific_notation_become_per_bin_counts() -> None:
    """Cumulative buckets, in any order and notation, give per-bin differences."""
    buckets = {"+Inf": 10.0, "2.5": 9.0, "-1e-05": 2.0, "0": 5.0}

    result = counts_from_buckets(_DELTA, buckets)

    assert ([2.0, 3.0, 4.0, 1.0], 0) == (result[0].tolist(), result[1])


def test_negative_bin_differences_are_clamped_and_counted() -> None:
    """A dip in cumulative counts is clamped to zero and reported."""
    buckets = {"-1e-05": 2.0, "0.0": 1.5, "2.5": 4.0, "+Inf": 4.0}

    result = counts_from_buckets(_DELTA, buckets)

    assert ([2.0, 0.0, 2.5, 0.0], 1) == (result[0].tolist(), result[1])


@pytest.mark.parametrize(
    ("buckets", "message"),
    [
        ({"-1e-05": 1.0, "0": 1.0, "2.5": 1.0}, "no +Inf bucket"),
        ({"0": 1.0, "2.5": 1.0, "+Inf": 1.0}, "do not match the reference edges"),
        ({"-1e-05": 1, "0": 1, "3": 1, "+Inf": 1}, "do not match the reference edges"),
        ({"small": 1.0, "+Inf": 1.0}, "le label 'small' is not a number"),
    ],
)
def test_buckets_not_matching_the_layout_are_rejected(
    buckets: dict[str, float], message: str
) -> None:
    """Missing ``+Inf``, other bounds or unreadable ``le`` labels are errors."""
    with pytest.raises(ValueError) as caught:
        counts_from_buckets(_DELTA, buckets)

    result = str(caught.value)
    assert message in result


def test_recorder_source_returns_counts_since_last_fetch() -> None:
    """Each fetch holds only what was recorded after the previous one."""
    reference = _reference()
    recorder = ModelRecorder(
        "sepsis",
        reference.layouts(),
        BinLayout.numeric([0.5]),
        meter_provider=MeterProvider(),
    )
    source = RecorderSource(recorder, reference)
    recorder.record({"delta": -3.0, "ward": "icu"}, score=0.9, outcome=1)
    source.fetch()
    recorder.record({"delta": 1.0, "ward": None}, score=0.2, outcome=0)

    window = source.fetch()

    result = (
        window.features["delta"].tolist(),
        window.missing,
        window.score_by_outcome["0"].tolist(),
    )
    assert ([0.0, 0.0, 1.0, 0.0], {"delta": 0.0, "ward": 1.0}, [1.0, 0.0]) == result


def test_recorder_with_other_bins_is_reported_per_feature() -> None:
    """A feature whose recorder layout differs is an error, the others are read."""
    reference = _reference()
    layouts = {"delta": BinLayout.numeric([0.0]), "ward": _WARD}
    recorder = ModelRecorder("sepsis", layouts, meter_provider=MeterProvider())
    recorder.record({"delta": 1.0, "ward": "ed"})

    window = RecorderSource(recorder, reference).fetch()

    result = (sorted(window.features), sorted(window.errors))
    assert (["ward"], ["delta"]) == result


def test_recorder_with_other_score_bins_reports_the_score() -> None:
    """A score recorded in other bins is an error of ``SCORE_FEATURE``, not read."""
    reference = _reference()
    recorder = ModelRecorder(
        "sepsis",
        reference.layouts(),
        BinLayout.numeric([0.25, 0.75]),
        meter_provider=MeterProvider(),
    )
    recorder.record({"delta": 1.0, "ward": "ed"}, score=0.9, outcome=1)

    window = RecorderSource(recorder, reference).fetch()

    result = (sorted(window.features), sorted(window.errors), window.score)
    expected = (["delta", "ward"], [SCORE_FEATURE], None)
    assert expected == result
    assert {} == window.score_by_outcome


def test_json_window_file_round_trips(tmp_path: Path) -> None:
    """A saved JSON window reads back with the same counts."""
    window = WindowCounts(
        features={"delta": np.array([1.0, 2, 3, 4]), "ward": np.array([5.0, 6, 7])},
        missing={"delta": 2.0, "ward": 0.0},
        score=np.array([3.0, 1.0]),
        score_by_outcome={"0": np.array([3.0, 0]), "1": np.array([0.0, 1])},
    )
    path = tmp_path / "window.json"
    save_window(window, path)

    loaded = load_window_file(path, _reference())

    result = (
        {name: counts.tolist() for name, counts in loaded.features.items()},
        loaded.missing,
        loaded.score_by_outcome["1"].tolist(),
    )
    expected = (
        {"delta": [1.0, 2, 3, 4], "ward": [5.0, 6, 7]},
        {"delta": 2.0, "ward": 0.0},
        [0.0, 1.0],
    )
    assert expected == result


def test_json_window_with_wrong_bin_count_is_a_feature_error(tmp_path: Path) -> None:
    """Counts of another length are reported for that feature only."""
    path = tmp_path / "window.json"
    path.write_text(
        '{"format": "healthai-drift-window", "format_version": 1, "features": '
        '{"delta": {"counts": [1, 2]}, "ward": {"counts": [1, 2, 3]}}}',
        encoding="utf-8",
    )

    window = load_window_file(path, _reference())

    result = (sorted(window.features), window.errors["delta"])
    assert (["ward"], f"2 counts in {path}, the reference has 4 bins") == result


def test_score_counts_of_another_length_are_an_error_of_the_score_feature(
    tmp_path: Path,
) -> None:
    """A score that does not fit is reported under ``SCORE_FEATURE``."""
    path = tmp_path / "window.json"
    path.write_text(
        '{"format": "healthai-drift-window", "format_version": 1, "features": '
        '{"delta": {"counts": [1, 2, 3, 4]}}, "score": [1, 2, 3]}',
        encoding="utf-8",
    )

    window = load_window_file(path, _reference())

    result = (sorted(window.errors), window.score)
    expected = ([SCORE_FEATURE, "ward"], None)
    assert expected == result


def test_json_window_with_negative_counts_names_the_key(tmp_path: Path) -> None:
    """Negative counts fail, naming the file and the key."""
    path = tmp_path / "window.json"
    path.write_text(
        '{"format": "healthai-drift-window", "format_version": 1, "features": '
        '{"delta": {"counts": [1, -2, 3, 4]}}}',
        encoding="utf-8",
    )

    with pytest.raises(WindowFileError) as caught:
        load_window_file(path, _reference())

    result = str(caught.value)
    assert f"{path}: key 'features.delta.counts'" in result


def test_raw_csv_rows_are_binned_with_the_reference(tmp_path: Path) -> None:
    """Raw rows are counted into the reference bins, score by outcome included."""
    path = tmp_path / "current.csv"
    path.write_text(
        "delta,ward,risk,readmitted\n"
        "-2,icu,0.9,1\n0.1,ed,0.1,0\n3,oncology,0.7,0\n,icu,0.2,1\n",
        encoding="utf-8",
    )

    window = load_window_file(path, _reference(), outcome_column="readmitted")

    result = (
        window.features["delta"].tolist(),
        window.features["ward"].tolist(),
        window.missing["delta"],
        window.score_by_outcome["1"].tolist(),
    )
    assert ([1.0, 0, 1, 1], [2.0, 1, 1], 1.0, [1.0, 1.0]) == result


def test_unreachable_prometheus_raises_after_bounded_retries() -> None:
    """A closed port gives a SourceError with reason ``unavailable``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = PrometheusSource(
        f"http://127.0.0.1:{port}",
        _reference(),
        timeout_seconds=0.5,
        retries=2,
        backoff_seconds=0.01,
    )

    with pytest.raises(SourceError) as caught:
        source.fetch()

    result = (caught.value.reason, "after 3 attempts" in str(caught.value))
    assert ("unavailable", True) == result


def test_prometheus_that_never_answers_times_out_within_the_bound() -> None:
    """A server that accepts but stays silent fails each attempt at the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        source = PrometheusSource(
            f"http://127.0.0.1:{silent.getsockname()[1]}",
            _reference(),
            timeout_seconds=0.3,
            retries=1,
            backoff_seconds=0.01,
        )
        started = time.monotonic()

        with pytest.raises(SourceError) as caught:
            source.fetch()

        seconds = time.monotonic() - started
    result = (caught.value.reason, "ReadTimeout" in str(caught.value))
    assert ("unavailable", True) == result
    assert seconds < 3
