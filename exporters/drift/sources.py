"""Where current windows come from: Prometheus, the in-process recorder, files.

Every source returns a ``WindowCounts``: per-feature bin counts in the
reference's layout, missing counts, the score and the score by outcome, plus
the features it could not count (``errors``), e.g. because the recorder uses
bins that do not match the reference. A bad feature never fails the window:
the others are still evaluated.

The Prometheus source reads the series ``otel_processors.histograms`` writes,
one query per metric, summed over instances::

    sum by (feature, le) (
      increase(healthai_model_feature_value_bucket{model="m"}[300s]))

``increase`` handles counter resets (a restarted service) and extrapolates to
the window's edges, so per-bin counts are not integers, and the extrapolation
of neighbouring buckets can make the cumulative counts dip. Such negative
per-bin differences are clamped to zero and counted in ``clamped``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import requests

from exporters.drift.baseline import bin_counts, outcome_label, read_columns
from exporters.drift.reference import Reference
from exporters.drift.report import SCORE_FEATURE
from exporters.errors import ExportersError
from otel_processors.binning import OTHER_CATEGORY, BinLayout
from otel_processors.errors import ConfigurationError
from otel_processors.histograms import (
    FEATURE_BUCKET_METRIC,
    FEATURE_CATEGORY_METRIC,
    FEATURE_MISSING_METRIC,
    LABELLED_SCORE_BUCKET_METRIC,
    OUTCOMES,
    SCORE_BUCKET_METRIC,
    ModelRecorder,
    RecorderSnapshot,
)

if TYPE_CHECKING:
    from exporters.drift.evaluation import Window

__all__ = [
    "WINDOW_FORMAT",
    "PrometheusSource",
    "RecorderSource",
    "SourceError",
    "WindowCounts",
    "WindowFileError",
    "counts_from_buckets",
    "load_window_file",
    "save_window",
]

_logger = logging.getLogger(__name__)

WINDOW_FORMAT = "healthai-drift-window"


class SourceError(ExportersError):
    """A window could not be read at all (e.g. Prometheus is unreachable).

    Attributes:
        reason: a short, bounded reason for metrics labels, e.g. ``unavailable``.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class WindowFileError(ConfigurationError):
    """A window file is invalid; the message names the file, key and value."""


@dataclass(frozen=True)
class WindowCounts:
    """A current window counted into the reference's bins.

    Attributes:
        features: counts per bin (float64) of the features that could be read.
        missing: missing values by feature.
        score: counts per score bin, or None.
        score_by_outcome: score counts by outcome label ("0", "1").
        errors: why a feature (or the score, as ``SCORE_FEATURE``) could not
            be read, by name.
        clamped: negative per-bin differences that were clamped to zero.
    """

    features: Mapping[str, npt.NDArray[np.float64]]
    missing: Mapping[str, float] = field(default_factory=dict)
    score: npt.NDArray[np.float64] | None = None
    score_by_outcome: Mapping[str, npt.NDArray[np.float64]] = field(
        default_factory=dict
    )
    errors: Mapping[str, str] = field(default_factory=dict)
    clamped: int = 0

    def to_window(self) -> Window:
        """Return the window the drift monitor evaluates."""
        from exporters.drift.evaluation import Window

        return Window(
            features=dict(self.features),
            missing=dict(self.missing),
            score=self.score,
            score_by_outcome=dict(self.score_by_outcome),
        )


def counts_from_buckets(
    layout: BinLayout, buckets: Mapping[str, float]
) -> tuple[npt.NDArray[np.float64], int]:
    """Turn cumulative ``le`` buckets into per-bin counts of ``layout``.

    Args:
        layout: the numeric reference layout.
        buckets: cumulative counts by ``le`` label value (``"+Inf"``,
            ``"0.5"``, ``"1e-05"`` ...).

    Returns:
        The per-bin counts and the number of negative differences clamped.

    Raises:
        ValueError: when an ``le`` is not a number, ``+Inf`` is absent, or the
            finite bounds differ from the layout's edges.
    """
    bounds: list[tuple[float, float]] = []
    for le, value in buckets.items():
        try:
            bounds.append((float(le), float(value)))
        except ValueError:
            msg = f"le label {le!r} is not a number"
            raise ValueError(msg) from None
    bounds.sort()
    if not bounds or bounds[-1][0] != math.inf:
        msg = "no +Inf bucket"
        raise ValueError(msg)

    edges = np.array([bound for bound, _ in bounds[:-1]])
    expected = np.asarray(layout.edges)
    if edges.shape != expected.shape or not np.allclose(
        edges, expected, rtol=1e-9, atol=0.0
    ):
        msg = (
            f"bucket bounds {_preview(edges.tolist())} do not match the "
            f"reference edges {_preview(list(layout.edges))}"
        )
        raise ValueError(msg)

    cumulative = np.array([value for _, value in bounds], dtype=np.float64)
    counts = np.diff(cumulative, prepend=0.0)
    negative = int(np.sum(counts < 0))
    return np.clip(counts, 0.0, None), negative


class PrometheusSource:
    """Read a model's current window from Prometheus's HTTP API.

    Args:
        url: the Prometheus base URL, e.g. ``http://prometheus:9090``.
        reference: the model's reference (model name and layouts).
        window_seconds: the window length (the range of ``increase``).
        timeout_seconds: the timeout of each HTTP request.
        retries: further attempts after a failed request (connection errors,
            timeouts, 5xx); each waits ``backoff_seconds`` times its number.
        backoff_seconds: the base wait between attempts.
        session: a ``requests`` session to reuse (one is created otherwise).

    Raises:
        ValueError: when a duration is not positive or ``retries`` negative.
    """

    def __init__(
        self,
        url: str,
        reference: Reference,
        *,
        window_seconds: float = 300.0,
        timeout_seconds: float = 5.0,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        if window_seconds <= 0 or timeout_seconds <= 0:
            msg = (
                f"window_seconds and timeout_seconds must be positive, got "
                f"{window_seconds} and {timeout_seconds}"
            )
            raise ValueError(msg)
        if retries < 0:
            msg = f"retries must be >= 0, got {retries}"
            raise ValueError(msg)
        self.url = url.rstrip("/")
        self.reference = reference
        self.window_seconds = window_seconds
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._session = session or requests.Session()

    def fetch(self, at: float | None = None) -> WindowCounts:
        """Query the window ending at ``at`` (a Unix time; now by default).

        Returns:
            The window; features whose series are absent or do not match the
            reference are in ``errors``.

        Raises:
            SourceError: when Prometheus cannot be reached or rejects a query.
        """
        reference = self.reference
        features: dict[str, npt.NDArray[np.float64]] = {}
        errors: dict[str, str] = {}
        clamped = 0

        # Numeric features: cumulative buckets by feature.
        buckets: defaultdict[str, dict[str, float]] = defaultdict(dict)
        for labels, value in self._query(FEATURE_BUCKET_METRIC, ("feature", "le"), at):
            buckets[labels["feature"]][labels["le"]] = value
        # Categorical features: one counter per category.
        categories: defaultdict[str, dict[str, float]] = defaultdict(dict)
        for labels, value in self._query(
            FEATURE_CATEGORY_METRIC, ("feature", "category"), at
        ):
            categories[labels["feature"]][labels["category"]] = value

        for name, ref in reference.features.items():
            try:
                if ref.layout.kind == "numeric":
                    if name not in buckets:
                        raise ValueError("no series in the window")
                    counts, negative = counts_from_buckets(ref.layout, buckets[name])
                    clamped += negative
                else:
                    if name not in categories:
                        raise ValueError("no series in the window")
                    counts = _category_counts(ref.layout, categories[name])
                features[name] = counts
            except ValueError as exc:
                errors[name] = str(exc)

        missing = {
            labels["feature"]: value
            for labels, value in self._query(FEATURE_MISSING_METRIC, ("feature",), at)
            if labels["feature"] in reference.features
        }

        score, score_by_outcome, score_clamped = self._scores(at, errors)
        if clamped or score_clamped:
            _logger.warning(
                "Clamped %s negative bin differences for model %s",
                clamped + score_clamped,
                reference.model,
            )
        return WindowCounts(
            features=features,
            missing=missing,
            score=score,
            score_by_outcome=score_by_outcome,
            errors=errors,
            clamped=clamped + score_clamped,
        )

    def _scores(
        self, at: float | None, errors: dict[str, str]
    ) -> tuple[npt.NDArray[np.float64] | None, dict[str, npt.NDArray[np.float64]], int]:
        score_reference = self.reference.score
        if score_reference is None:
            return None, {}, 0

        buckets = {
            labels["le"]: value
            for labels, value in self._query(SCORE_BUCKET_METRIC, ("le",), at)
        }
        by_outcome: defaultdict[str, dict[str, float]] = defaultdict(dict)
        for labels, value in self._query(
            LABELLED_SCORE_BUCKET_METRIC, ("outcome", "le"), at
        ):
            by_outcome[labels["outcome"]][labels["le"]] = value

        if not buckets:
            errors[SCORE_FEATURE] = "no series in the window"
            return None, {}, 0
        try:
            score, clamped = counts_from_buckets(score_reference.layout, buckets)
            split: dict[str, npt.NDArray[np.float64]] = {}
            for outcome in OUTCOMES:
                if outcome in by_outcome:
                    counts, negative = counts_from_buckets(
                        score_reference.layout, by_outcome[outcome]
                    )
                    split[outcome] = counts
                    clamped += negative
        except ValueError as exc:
            errors[SCORE_FEATURE] = str(exc)
            return None, {}, 0
        return score, split, clamped

    def _query(
        self, metric: str, by: tuple[str, ...], at: float | None
    ) -> list[tuple[dict[str, str], float]]:
        selector = f"{metric}{{model={_quote(self.reference.model)}}}"
        window = f"{self.window_seconds:g}s"
        query = f"sum by ({', '.join(by)}) (increase({selector}[{window}]))"
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"

        data = self._get("/api/v1/query", params)
        result = data.get("data", {}).get("result", [])
        samples: list[tuple[dict[str, str], float]] = []
        for series in result:
            labels = series.get("metric", {})
            if not all(label in labels for label in by):
                continue
            value = float(series["value"][1])
            if math.isfinite(value):
                samples.append((labels, value))
        return samples

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}"
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_seconds * attempt)
            try:
                response = self._session.get(
                    url, params=params, timeout=self.timeout_seconds
                )
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            return self._decode(response, params)

        attempts = self.retries + 1
        msg = f"Prometheus at {self.url} unavailable after {attempts} attempts: {last}"
        raise SourceError(msg, "unavailable")

    def _decode(
        self, response: requests.Response, params: Mapping[str, str]
    ) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("status") != "success":
            error = data.get("error") if isinstance(data, dict) else response.text[:200]
            msg = f"Prometheus rejected {params['query']!r}: {error}"
            raise SourceError(msg, "query_error")
        return data


class RecorderSource:
    """Windows from an in-process ``ModelRecorder``: counts since the last fetch.

    Args:
        recorder: the recorder to read.
        reference: the reference; features whose layout differs from the
            recorder's are reported in ``errors``, and so is the score (as
            ``SCORE_FEATURE``, its counts then left out).
    """

    def __init__(self, recorder: ModelRecorder, reference: Reference) -> None:
        self.recorder = recorder
        self.reference = reference
        self._previous: RecorderSnapshot | None = None
        layouts = recorder.layouts()
        self._errors = {
            name: "the recorder's layout differs from the reference"
            for name, ref in reference.features.items()
            if layouts.get(name) != ref.layout
        }
        score_layout = recorder.score_layout
        if (
            reference.score is not None
            and score_layout is not None
            and score_layout != reference.score.layout
        ):
            self._errors[SCORE_FEATURE] = (
                "the recorder's score layout differs from the reference"
            )

    def fetch(self) -> WindowCounts:
        """Return the counts recorded since the previous call (or creation)."""
        current = self.recorder.snapshot()
        previous = self._previous
        self._previous = current

        def delta(
            now: npt.NDArray[np.float64], before: npt.NDArray[np.float64] | None
        ) -> npt.NDArray[np.float64]:
            return now if before is None else now - before

        features = {
            name: delta(counts, previous.features[name] if previous else None)
            for name, counts in current.features.items()
            if name in self.reference.features and name not in self._errors
        }
        missing = {
            name: value - (previous.missing[name] if previous else 0.0)
            for name, value in current.missing.items()
            if name in self.reference.features
        }
        score = None
        if (
            current.score is not None
            and self.reference.score is not None
            and SCORE_FEATURE not in self._errors
        ):
            score = delta(current.score, previous.score if previous else None)
        by_outcome = {
            outcome: delta(
                counts, previous.score_by_outcome[outcome] if previous else None
            )
            for outcome, counts in current.score_by_outcome.items()
        }
        return WindowCounts(
            features=features,
            missing=missing,
            score=score,
            score_by_outcome=by_outcome if score is not None else {},
            errors=dict(self._errors),
        )


def load_window_file(
    path: str | os.PathLike[str],
    reference: Reference,
    *,
    score_column: str | None = None,
    outcome_column: str | None = None,
) -> WindowCounts:
    """Read a current window from a file.

    A ``.json`` file holds counts already binned in the reference layout (see
    ``save_window``). A ``.csv`` or ``.parquet`` file holds raw rows, binned
    here with the reference's layouts.

    Args:
        path: the window file.
        reference: the reference the window is compared with.
        score_column: for raw rows, the score column; the reference's score
            name by default (used when present).
        outcome_column: for raw rows, the observed outcome column, if any.

    Returns:
        The window.

    Raises:
        WindowFileError: when the file is invalid; the message names the
            file, the key and the value.
        BaselineDataError: when raw rows cannot be read.
    """
    source = os.fspath(path)
    if source.lower().endswith(".json"):
        return _load_json_window(source, reference)

    columns = read_columns(source)
    features: dict[str, npt.NDArray[np.float64]] = {}
    missing: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, ref in reference.features.items():
        if name not in columns:
            errors[name] = f"no column {name!r} in {source}"
            continue
        counts, absent = bin_counts(ref.layout, columns[name])
        features[name] = counts
        missing[name] = float(absent)

    score = None
    split: dict[str, npt.NDArray[np.float64]] = {}
    score_name = score_column or (reference.score.name if reference.score else None)
    if reference.score is not None and score_name in columns:
        assert score_name is not None  # narrows for mypy
        scores = columns[score_name]
        score, _ = bin_counts(reference.score.layout, scores)
        if outcome_column is not None:
            if outcome_column not in columns:
                msg = f"{source}: no outcome column {outcome_column!r}"
                raise WindowFileError(msg)
            labels = np.array([outcome_label(v) for v in columns[outcome_column]])
            for outcome in OUTCOMES:
                split[outcome], _ = bin_counts(
                    reference.score.layout, scores[labels == outcome]
                )
    return WindowCounts(features, missing, score, split, errors)


def save_window(window: WindowCounts, path: str | os.PathLike[str]) -> None:
    """Write ``window`` as a JSON window file.

    Args:
        window: the window to write.
        path: the destination file.
    """
    data = {
        "format": WINDOW_FORMAT,
        "format_version": 1,
        "features": {
            name: {"counts": counts.tolist(), "missing": window.missing.get(name, 0.0)}
            for name, counts in window.features.items()
        },
        "score": None if window.score is None else window.score.tolist(),
        "score_by_outcome": {
            outcome: counts.tolist()
            for outcome, counts in window.score_by_outcome.items()
        },
    }
    with open(os.fspath(path), "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=1)


def _load_json_window(source: str, reference: Reference) -> WindowCounts:
    try:
        with open(source, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError) as exc:
        msg = f"{source}: cannot read the window: {exc}"
        raise WindowFileError(msg) from exc
    if not isinstance(data, dict) or data.get("format") != WINDOW_FORMAT:
        value = data.get("format") if isinstance(data, dict) else data
        msg = f"{source}: key 'format' has value {value!r}: expected {WINDOW_FORMAT!r}"
        raise WindowFileError(msg)
    if data.get("format_version") != 1:
        msg = (
            f"{source}: key 'format_version' has value "
            f"{data.get('format_version')!r}: this version reads 1 only"
        )
        raise WindowFileError(msg)

    features: dict[str, npt.NDArray[np.float64]] = {}
    missing: dict[str, float] = {}
    errors: dict[str, str] = {}
    given = data.get("features")
    if not isinstance(given, dict):
        msg = f"{source}: key 'features' has value {given!r}: expected an object"
        raise WindowFileError(msg)
    for name, ref in reference.features.items():
        entry = given.get(name)
        if not isinstance(entry, dict):
            errors[name] = f"absent from {source}"
            continue
        counts = _counts(source, f"features.{name}.counts", entry.get("counts"))
        if counts.shape != (ref.layout.n_bins,):
            errors[name] = (
                f"{counts.shape[0]} counts in {source}, the reference has "
                f"{ref.layout.n_bins} bins"
            )
            continue
        features[name] = counts
        missing[name] = float(entry.get("missing", 0.0))

    score = None
    split: dict[str, npt.NDArray[np.float64]] = {}
    if data.get("score") is not None and reference.score is not None:
        score = _counts(source, "score", data["score"])
        if score.shape != (reference.score.layout.n_bins,):
            errors[SCORE_FEATURE] = "the score counts do not match the reference's bins"
            score = None
        else:
            for outcome, counts in (data.get("score_by_outcome") or {}).items():
                split[str(outcome)] = _counts(
                    source, f"score_by_outcome.{outcome}", counts
                )
    return WindowCounts(features, missing, score, split, errors)


def _counts(source: str, key: str, value: object) -> npt.NDArray[np.float64]:
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        for v in value
    ):
        msg = f"{source}: key {key!r} has value {value!r}: expected counts >= 0"
        raise WindowFileError(msg)
    return np.array(value, dtype=np.float64)


def _category_counts(
    layout: BinLayout, values: Mapping[str, float]
) -> npt.NDArray[np.float64]:
    positions = {category: i for i, category in enumerate(layout.categories)}
    positions[OTHER_CATEGORY] = len(layout.categories)
    unknown = sorted(set(values) - set(positions))
    if unknown:
        msg = f"categories {_preview(unknown)} are not in the reference"
        raise ValueError(msg)
    counts = np.zeros(layout.n_bins, dtype=np.float64)
    for category, value in values.items():
        counts[positions[category]] = max(value, 0.0)
    return counts


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _preview(values: list[Any], limit: int = 6) -> str:
    shown = ", ".join(
        f"{v:g}" if isinstance(v, float) else str(v) for v in values[:limit]
    )
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"
