"""The reference (baseline) distribution a model's drift is measured against.

A reference holds, per feature and for the model score, the bin layout fixed at
training time and the counts of the training data in those bins. Current windows
are counted into the same layouts (see ``otel_processors.binning``).

On disk a reference is one JSON document::

    {
      "format": "healthai-drift-reference",
      "format_version": 1,
      "model": "readmission", "model_version": "2.3.1",
      "created": "2026-12-03T18:00:00+00:00",
      "features": {
        "age_years": {"kind": "numeric", "edges": [41.2, 55.0],
                      "counts": [96, 410, 494], "missing": 0},
        "discharge_disposition": {"kind": "categorical",
                      "categories": ["home", "rehab"],
                      "counts": [550, 70, 380], "missing": 2}
      },
      "score": {"kind": "numeric", "edges": [...], "counts": [...], "missing": 0},
      "score_by_outcome": {"0": [...], "1": [...]}
    }

``counts`` has one entry per bin of the layout: underflow, inner bins and
overflow for numeric features, the categories then ``other`` for categorical ones.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from otel_processors.binning import BinLayout
from otel_processors.errors import ConfigurationError

__all__ = [
    "REFERENCE_FORMAT",
    "REFERENCE_FORMAT_VERSION",
    "FeatureReference",
    "Reference",
    "ReferenceFileError",
    "load_reference",
    "reference_from_mapping",
    "reference_to_mapping",
    "save_reference",
]

REFERENCE_FORMAT = "healthai-drift-reference"
REFERENCE_FORMAT_VERSION = 1


class ReferenceFileError(ConfigurationError):
    """A reference file is unreadable or invalid; the message names file and key."""


@dataclass(frozen=True)
class FeatureReference:
    """Reference counts of one feature (or of the score).

    Attributes:
        name: the feature name as recorded by the service.
        layout: the bins, fixed by the reference.
        counts: float64 array of length ``layout.n_bins``.
        missing: how many reference rows had no value.
    """

    name: str
    layout: BinLayout
    counts: npt.NDArray[np.float64]
    missing: int = 0

    def __post_init__(self) -> None:
        if self.counts.shape != (self.layout.n_bins,):
            msg = (
                f"feature {self.name!r}: {self.counts.shape[0]} counts for "
                f"{self.layout.n_bins} bins"
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class Reference:
    """A model's reference distributions.

    Attributes:
        model: the model name, as in the metrics' ``model`` label.
        model_version: the version the reference was built for.
        features: references by feature name.
        score: the reference of the model score, when known.
        score_by_outcome: score counts split by observed outcome label ("0", "1"),
            used to compute reference performance; empty when labels are unknown.
        created: ISO 8601 timestamp of creation.
    """

    model: str
    model_version: str
    features: Mapping[str, FeatureReference]
    score: FeatureReference | None = None
    score_by_outcome: Mapping[str, npt.NDArray[np.float64]] = field(
        default_factory=dict
    )
    created: str = ""

    def layouts(self) -> dict[str, BinLayout]:
        """Return the bin layout of every feature, by name."""
        return {name: ref.layout for name, ref in self.features.items()}


def reference_to_mapping(reference: Reference) -> dict[str, Any]:
    """Return the JSON-ready form of ``reference`` (see the module docstring)."""
    data: dict[str, Any] = {
        "format": REFERENCE_FORMAT,
        "format_version": REFERENCE_FORMAT_VERSION,
        "model": reference.model,
        "model_version": reference.model_version,
        "created": reference.created,
        "features": {
            name: _feature_to_mapping(ref) for name, ref in reference.features.items()
        },
        "score": None
        if reference.score is None
        else _feature_to_mapping(reference.score),
        "score_by_outcome": {
            outcome: [float(c) for c in counts]
            for outcome, counts in reference.score_by_outcome.items()
        },
    }
    return data


def save_reference(reference: Reference, path: str | os.PathLike[str]) -> None:
    """Write ``reference`` as JSON to ``path`` (atomically, via a temporary file).

    Args:
        reference: the reference to write.
        path: destination file.
    """
    target = os.fspath(path)
    temporary = f"{target}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(reference_to_mapping(reference), stream, indent=1)
        stream.write("\n")
    os.replace(temporary, target)


def load_reference(path: str | os.PathLike[str]) -> Reference:
    """Read and validate a reference file.

    Args:
        path: a JSON file written by ``save_reference`` or ``drift baseline``.

    Returns:
        The reference.

    Raises:
        ReferenceFileError: when the file cannot be read, is not JSON, has
            another format or an unknown format version, or a key is invalid;
            the message names the file, the key and the value.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as stream:
            data = json.load(stream)
    except OSError as exc:
        msg = f"{source}: cannot read the reference: {exc.strerror or exc}"
        raise ReferenceFileError(msg) from exc
    except json.JSONDecodeError as exc:
        msg = f"{source}: not JSON: {exc}"
        raise ReferenceFileError(msg) from exc
    return reference_from_mapping(data, source=source)


def reference_from_mapping(data: object, *, source: str = "<reference>") -> Reference:
    """Validate the JSON form of a reference and build it.

    Args:
        data: the decoded JSON document.
        source: the file name used in error messages.

    Returns:
        The reference.

    Raises:
        ReferenceFileError: naming ``source``, the key and the offending value.
    """
    document = _mapping(data, source, "<document>")
    if document.get("format") != REFERENCE_FORMAT:
        _fail(
            source, "format", document.get("format"), f"expected {REFERENCE_FORMAT!r}"
        )
    version = document.get("format_version")
    if version != REFERENCE_FORMAT_VERSION:
        _fail(
            source,
            "format_version",
            version,
            f"this version reads format version {REFERENCE_FORMAT_VERSION} only",
        )

    model = _string(document, "model", source)
    model_version = str(document.get("model_version", ""))
    created = str(document.get("created", ""))

    features_data = _mapping(document.get("features"), source, "features")
    if not features_data:
        _fail(source, "features", features_data, "at least one feature is needed")
    features = {
        str(name): _feature_from_mapping(str(name), value, source, f"features.{name}")
        for name, value in features_data.items()
    }

    score = None
    if document.get("score") is not None:
        score = _feature_from_mapping("score", document["score"], source, "score")

    score_by_outcome = _score_by_outcome(document, score, source)
    return Reference(
        model=model,
        model_version=model_version,
        features=features,
        score=score,
        score_by_outcome=score_by_outcome,
        created=created,
    )


def _feature_to_mapping(ref: FeatureReference) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": ref.layout.kind}
    if ref.layout.kind == "numeric":
        data["edges"] = list(ref.layout.edges)
    else:
        data["categories"] = list(ref.layout.categories)
    data["counts"] = [float(c) for c in ref.counts]
    data["missing"] = int(ref.missing)
    return data


def _feature_from_mapping(
    name: str, value: object, source: str, key: str
) -> FeatureReference:
    data = _mapping(value, source, key)
    kind = data.get("kind")
    try:
        if kind == "numeric":
            layout = BinLayout.numeric(
                _numbers(data.get("edges"), source, f"{key}.edges")
            )
        elif kind == "categorical":
            categories = data.get("categories")
            if not isinstance(categories, list):
                _fail(source, f"{key}.categories", categories, "expected a list")
            layout = BinLayout.categorical([str(c) for c in categories])
        else:
            _fail(source, f"{key}.kind", kind, "expected 'numeric' or 'categorical'")
    except ValueError as exc:
        if isinstance(exc, ReferenceFileError):
            raise
        msg = f"{source}: {key}: invalid layout: {exc}"
        raise ReferenceFileError(msg) from exc

    counts = np.asarray(_numbers(data.get("counts"), source, f"{key}.counts"))
    if counts.shape != (layout.n_bins,):
        _fail(
            source,
            f"{key}.counts",
            f"{counts.shape[0]} values",
            f"the layout has {layout.n_bins} bins",
        )
    if np.any(counts < 0):
        _fail(source, f"{key}.counts", counts.tolist(), "counts cannot be negative")

    missing = data.get("missing", 0)
    if isinstance(missing, bool) or not isinstance(missing, int) or missing < 0:
        _fail(source, f"{key}.missing", missing, "expected a count (integer >= 0)")
    return FeatureReference(name=name, layout=layout, counts=counts, missing=missing)


def _score_by_outcome(
    document: Mapping[str, object], score: FeatureReference | None, source: str
) -> dict[str, npt.NDArray[np.float64]]:
    data = _mapping(document.get("score_by_outcome", {}), source, "score_by_outcome")
    if data and score is None:
        _fail(source, "score_by_outcome", list(data), "needs a 'score' layout")
    result: dict[str, npt.NDArray[np.float64]] = {}
    for outcome, value in data.items():
        key = f"score_by_outcome.{outcome}"
        counts = np.asarray(_numbers(value, source, key))
        assert score is not None  # checked above; narrows for mypy
        if counts.shape != (score.layout.n_bins,):
            _fail(source, key, f"{counts.shape[0]} values", "must match the score bins")
        result[str(outcome)] = counts
    return result


def _mapping(value: object, source: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(source, key, _short(value), "expected a JSON object")
    return value


def _string(data: Mapping[str, object], key: str, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        _fail(source, key, value, "expected a non-empty string")
    return value


def _numbers(value: object, source: str, key: str) -> list[float]:
    if not isinstance(value, list) or not value:
        _fail(source, key, _short(value), "expected a non-empty list of numbers")
    numbers: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            _fail(source, key, item, "expected numbers only")
        if not math.isfinite(item):
            _fail(source, key, item, "expected finite numbers")
        numbers.append(float(item))
    return numbers


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _fail(source: str, key: str, value: object, why: str) -> NoReturn:
    msg = f"{source}: key {key!r} has value {value!r}: {why}"
    raise ReferenceFileError(msg)
