"""Tests for reading and writing reference files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from exporters.drift.reference import (
    FeatureReference,
    Reference,
    ReferenceFileError,
    load_reference,
    reference_to_mapping,
    save_reference,
)
from otel_processors.binning import BinLayout


def _reference() -> Reference:
    age = FeatureReference(
        "age", BinLayout.numeric([-1.5, 0.0, 2e-05]), np.array([1.0, 2, 3, 4]), 5
    )
    ward = FeatureReference(
        "ward", BinLayout.categorical(["icu", "ed"]), np.array([7.0, 8, 9])
    )
    score = FeatureReference("score", BinLayout.numeric([0.5]), np.array([3.0, 4]))
    return Reference(
        model="readmission",
        model_version="2.3.1",
        features={"age": age, "ward": ward},
        score=score,
        score_by_outcome={"0": np.array([2.0, 1]), "1": np.array([1.0, 3])},
        created="2026-12-03T00:00:00+00:00",
    )


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_saved_reference_loads_back_equal(tmp_path: Path) -> None:
    """A reference written to disk reads back with the same content."""
    path = tmp_path / "ref.json"
    save_reference(_reference(), path)

    result = reference_to_mapping(load_reference(path))

    assert reference_to_mapping(_reference()) == result


def test_unknown_format_version_is_rejected_by_name(tmp_path: Path) -> None:
    """A newer format version fails with the file, key and value in the message."""
    data = reference_to_mapping(_reference())
    data["format_version"] = 99
    path = _write(tmp_path / "ref.json", data)

    with pytest.raises(ReferenceFileError) as caught:
        load_reference(path)

    result = str(caught.value)
    assert f"{path}: key 'format_version' has value 99" in result


def test_counts_not_matching_layout_name_the_feature_key(tmp_path: Path) -> None:
    """Counts of the wrong length are reported at ``features.<name>.counts``."""
    data = reference_to_mapping(_reference())
    data["features"]["age"]["counts"] = [1, 2]
    path = _write(tmp_path / "ref.json", data)

    with pytest.raises(ReferenceFileError) as caught:
        load_reference(path)

    result = str(caught.value)
    assert "key 'features.age.counts'" in result


def test_unsorted_edges_are_rejected_as_invalid_layout(tmp_path: Path) -> None:
    """Edges that do not increase are an invalid layout of that feature."""
    data = reference_to_mapping(_reference())
    data["features"]["age"]["edges"] = [2.0, 1.0, 3.0]
    path = _write(tmp_path / "ref.json", data)

    with pytest.raises(ReferenceFileError) as caught:
        load_reference(path)

    result = str(caught.value)
    assert "features.age: invalid layout" in result


def test_file_that_is_not_json_is_reported(tmp_path: Path) -> None:
    """A file that is not JSON names the file."""
    path = tmp_path / "ref.json"
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(ReferenceFileError) as caught:
        load_reference(path)

    result = str(caught.value)
    assert result.startswith(f"{path}: not JSON")


def test_missing_file_is_reported(tmp_path: Path) -> None:
    """A file that does not exist names the file."""
    path = tmp_path / "absent.json"

    with pytest.raises(ReferenceFileError) as caught:
        load_reference(path)

    result = str(caught.value)
    assert result.startswith(f"{path}: cannot read")


@pytest.mark.parametrize(
    ("key", "value"),
    [("format", "something-else"), ("model", ""), ("features", [])],
)
def test_invalid_top_level_keys_are_named(
    tmp_path: Path, key: str, value: object
) -> None:
    """Each invalid top-level key is named in the error."""
    data = reference_to_mapping(_reference())
    data[key] = value
    path = _write(tmp_path / "ref.json", data)

    with pytest.raises(ReferenceFileError) as caught:
        load_reference(path)

    result = str(caught.value)
    assert f"key {key!r}" in result
