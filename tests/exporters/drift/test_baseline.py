"""Tests for building references from training data."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from exporters.drift.baseline import (
    BaselineDataError,
    build_reference,
    numeric_layout,
    read_columns,
)
from otel_processors.binning import BinLayout
from otel_processors.histograms import ModelRecorder


def _training_columns(n: int = 2000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    score = rng.uniform(0, 1, n)
    return {
        "temperature_delta": rng.normal(-2.0, 1.0, n),
        "visits": rng.poisson(1.0, n).astype(np.float64),
        "ward": rng.choice(["icu", "ed", "med"], size=n, p=(0.2, 0.3, 0.5)),
        "score": score,
        "readmitted": (rng.uniform(0, 1, n) < score).astype(np.int64),
    }


def test_quantile_edges_put_equal_counts_in_each_bin() -> None:
    """A continuous feature gets ``bins`` bins of about equal reference counts."""
    values = np.random.default_rng(3).normal(-5.0, 2.0, 10_000)

    layout = numeric_layout(values, bins=10)

    result = np.bincount(
        np.searchsorted(layout.edges, values, side="right"), minlength=10
    ).tolist()
    assert [1000] * 10 == result


def test_discrete_feature_gets_one_bin_per_value() -> None:
    """A count feature gets edges halfway between its values and beyond them."""
    values = np.array([0.0, 1, 1, 2, 3, 3, 3])

    result = numeric_layout(values, bins=10)

    assert BinLayout.numeric([-0.5, 0.5, 1.5, 2.5, 3.5]) == result


def test_constant_feature_gets_a_bin_around_its_value() -> None:
    """A feature with one distinct value is centred in a bin of its own."""
    values = np.full(50, 4.0)

    result = numeric_layout(values, bins=10)

    assert BinLayout.numeric([2.0, 6.0]) == result


def test_categorical_keeps_top_k_and_counts_the_rest_as_other() -> None:
    """Only the ``top_k`` most frequent categories are kept; others count as other."""
    columns = {"ward": np.array(["med"] * 5 + ["ed"] * 3 + ["icu"] * 2 + [None])}

    reference = build_reference(columns, model="m", top_k=2)

    ward = reference.features["ward"]
    result = (ward.layout.categories, ward.counts.tolist(), ward.missing)
    assert (("med", "ed"), [5.0, 3.0, 2.0], 1) == result


def test_reference_counts_scores_by_outcome() -> None:
    """The score is split by outcome, the two splits adding up to the score."""
    reference = build_reference(
        _training_columns(),
        model="m",
        score_column="score",
        outcome_column="readmitted",
    )

    assert reference.score is not None
    result = reference.score_by_outcome["0"] + reference.score_by_outcome["1"]
    assert reference.score.counts.tolist() == result.tolist()


def test_csv_and_parquet_files_give_the_same_reference(tmp_path: Path) -> None:
    """The same data read from CSV and Parquet yields identical counts."""
    columns = _training_columns(500)
    csv_path = tmp_path / "train.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(
            zip(*(values.tolist() for values in columns.values()), strict=True)
        )
    parquet_path = tmp_path / "train.parquet"
    pq.write_table(pa.table(columns), parquet_path)

    def build(path: Path) -> dict[str, list[float]]:
        reference = build_reference(read_columns(path), model="m", score_column="score")
        return {name: f.counts.tolist() for name, f in reference.features.items()}

    result = build(csv_path)

    assert build(parquet_path) == result
    assert ["temperature_delta", "visits", "ward", "readmitted"] == list(result)


def _recorded(layout: BinLayout, values: list[object]) -> tuple[list[float], float]:
    """Counts and missing count of ``values`` recorded by the service's recorder."""
    recorder = ModelRecorder("m", {"x": layout}, meter_provider=MeterProvider())
    for value in values:
        recorder.record({"x": value})
    snapshot = recorder.snapshot()
    return snapshot.features["x"].tolist(), snapshot.missing["x"]


def test_infinities_count_as_missing_as_the_service_counts_them() -> None:
    """Reference counts of values with +-inf equal the recorder's, inf missing."""
    values = [-math.inf, -3.0, 0.5, 1.5, math.inf, math.nan, 7.0]

    reference = build_reference({"x": np.array(values)}, model="m", bins=3)
    feature = reference.features["x"]
    result = (feature.counts.tolist(), float(feature.missing))

    expected = _recorded(feature.layout, values)
    assert expected == result
    assert 3.0 == result[1]


def test_integer_categories_with_nulls_from_parquet_match_the_service(
    tmp_path: Path,
) -> None:
    """An int column with nulls (floats in Parquet) keeps the categories "1", "2"."""
    codes = [1, 2, None, 2, 3, 1, 1, None]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"code": pa.array(codes, type=pa.int64())}), path)

    reference = build_reference(read_columns(path), model="m", categorical=["code"])
    feature = reference.features["code"]
    recorded = _recorded(feature.layout, list(codes))
    result = (
        feature.layout.categories,
        feature.counts.tolist(),
        float(feature.missing),
    )

    expected = (("1", "2", "3"), *recorded)
    assert expected == result


def test_unparseable_csv_cells_count_as_missing(tmp_path: Path) -> None:
    """Empty and unreadable cells of a numeric column are counted as missing."""
    path = tmp_path / "train.csv"
    path.write_text("x,y\n1.5,a\n,b\nNaN,a\n-3,a\n", encoding="utf-8")

    reference = build_reference(read_columns(path), model="m", features=["x"])

    result = reference.features["x"].missing
    assert 2 == result


def test_text_column_is_treated_as_categorical(tmp_path: Path) -> None:
    """A CSV column holding words becomes a categorical feature by itself."""
    path = tmp_path / "train.csv"
    path.write_text("x,y\n1.5,a\n2,b\n3,a\n", encoding="utf-8")

    reference = build_reference(read_columns(path), model="m")

    result = reference.features["y"].layout.kind
    assert "categorical" == result


def test_absent_column_is_named() -> None:
    """Asking for a column the data lacks names the column."""
    with pytest.raises(BaselineDataError) as caught:
        build_reference(_training_columns(10), model="m", score_column="risk")

    result = str(caught.value)
    assert "no column named 'risk'" in result


def test_unknown_file_type_is_rejected(tmp_path: Path) -> None:
    """A data file that is neither CSV nor Parquet names its suffix."""
    path = tmp_path / "train.xlsx"
    path.write_bytes(b"")

    with pytest.raises(BaselineDataError) as caught:
        read_columns(path)

    result = str(caught.value)
    assert "unknown data file type '.xlsx'" in result
