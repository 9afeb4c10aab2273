"""Record a model's feature and score distributions inside the service.

``ModelRecorder`` counts each request's feature values into the bins fixed by
the model's reference (``otel_processors.binning``). The counts are cumulative
and never reset while the process lives, like Prometheus counters.

Why not an OpenTelemetry ``Histogram``: ``Histogram.record`` drops negative and
non-finite values, and the OpenTelemetry Prometheus exporters do not expose
exponential histograms. Features are often negative and a missing value is a
data error worth counting, so the recorder bins values itself and publishes the
bin counts, in the shape of a Prometheus classic histogram::

    healthai_model_feature_value_bucket{model, feature, le}   numeric features
    healthai_model_feature_category_total{model, feature, category}
    healthai_model_feature_missing_total{model, feature}
    healthai_model_score_bucket{model, le}
    healthai_model_labelled_score_bucket{model, outcome, le}  outcome "0" / "1"
    healthai_model_score_missing_total{model}

``le`` takes the reference's inner edges (shortest round-trip repr, e.g.
``-0.5``, ``1e-05``) and ``+Inf``; ``category`` takes the reference's
categories and ``__other__``. Labels are bounded by the reference. One detail
differs from a Prometheus histogram: a value equal to an edge is counted in
the bin above it, as the reference counted it (bins are ``[lo, hi)``).

Two ways to publish, with the same series names in Prometheus:

- OpenTelemetry: observable instruments on ``meter_provider`` (the global one
  by default). Bucket series are observable up-down counters (exported as
  gauges, so no ``_total`` is appended); missing and category series are
  observable counters (``_total`` is appended by the Prometheus exporters).
- prometheus-client: ``RecorderCollector`` yields the same families from a
  process's ``/metrics``, e.g. through ``serve_recorders``. Use one way or the
  other for a given recorder, not both, or Prometheus counts twice: pass
  ``meter_provider=NoOpMeterProvider()`` to publish through prometheus-client
  only.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from otel_processors._guard import record_failure
from otel_processors.binning import OTHER_CATEGORY, BinLayout, category_key
from otel_processors.errors import ConfigurationError

__all__ = [
    "FEATURE_BUCKET_METRIC",
    "FEATURE_CATEGORY_METRIC",
    "FEATURE_MISSING_METRIC",
    "LABELLED_SCORE_BUCKET_METRIC",
    "OUTCOMES",
    "SCORE_BUCKET_METRIC",
    "SCORE_MISSING_METRIC",
    "ModelRecorder",
    "RecorderCollector",
    "RecorderSnapshot",
    "format_le",
    "serve_recorders",
]

_logger = logging.getLogger(__name__)

# Series names as stored by Prometheus (family name + suffix).
FEATURE_BUCKET_METRIC = "healthai_model_feature_value_bucket"
FEATURE_CATEGORY_METRIC = "healthai_model_feature_category_total"
FEATURE_MISSING_METRIC = "healthai_model_feature_missing_total"
SCORE_BUCKET_METRIC = "healthai_model_score_bucket"
LABELLED_SCORE_BUCKET_METRIC = "healthai_model_labelled_score_bucket"
SCORE_MISSING_METRIC = "healthai_model_score_missing_total"

OUTCOMES = ("0", "1")
_OUTCOME_TEXT = {"0": "0", "1": "1", "false": "0", "true": "1", "0.0": "0", "1.0": "1"}
_INSTRUMENTATION_SCOPE = "healthai_telemetry.histograms"


def format_le(edge: float) -> str:
    """Render a bucket bound as an ``le`` label value (``+Inf`` for infinity)."""
    if edge == math.inf:
        return "+Inf"
    if edge == -math.inf:
        return "-Inf"
    return repr(float(edge))


@dataclass(frozen=True)
class RecorderSnapshot:
    """The recorder's cumulative counts at one moment.

    Attributes:
        model: the model name.
        features: counts per bin (float64, reference layout) by feature.
        missing: missing values by feature.
        score: counts per score bin, or None without a score layout.
        score_by_outcome: score counts by outcome label, for labelled requests.
        score_missing: requests whose score was missing or not finite.
    """

    model: str
    features: Mapping[str, npt.NDArray[np.float64]]
    missing: Mapping[str, float]
    score: npt.NDArray[np.float64] | None
    score_by_outcome: Mapping[str, npt.NDArray[np.float64]]
    score_missing: float


class _Feature:
    """One feature's layout and running counts (guarded by the recorder's lock)."""

    __slots__ = ("categories", "counts", "edges", "layout", "missing", "name", "other")

    def __init__(self, name: str, layout: BinLayout) -> None:
        self.name = name
        self.layout = layout
        self.edges = list(layout.edges)
        self.categories = {category: i for i, category in enumerate(layout.categories)}
        self.other = len(layout.categories)
        self.counts = [0] * layout.n_bins
        self.missing = 0

    def index(self, value: object) -> int | None:
        """Return the bin of ``value``; None when missing, NaN or infinite."""
        if value is None:
            return None
        if self.layout.kind == "categorical":
            if isinstance(value, float) and math.isnan(value):
                return None
            return self.categories.get(category_key(value), self.other)
        try:
            number = float(value)  # type: ignore[arg-type]  # anything float() takes
        except (TypeError, ValueError):
            return None
        if not math.isfinite(number):
            return None
        return bisect.bisect_right(self.edges, number)


class ModelRecorder:
    """Count one model's feature values and scores into its reference bins.

    Thread-safe; ``record`` takes a lock once per call and never raises into
    the service: a failure is logged once and counted
    (``otel_processors._guard``).

    Args:
        model: the model name (the ``model`` label).
        layouts: the bin layout of each feature, from the reference.
        score_layout: the bin layout of the score, or None to not record it.
        meter_provider: where to register the OpenTelemetry instruments; the
            global provider by default.

    Raises:
        ValueError: when ``model`` is empty or ``layouts`` is empty.
    """

    def __init__(
        self,
        model: str,
        layouts: Mapping[str, BinLayout],
        score_layout: BinLayout | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if not model:
            msg = "model must be a non-empty name"
            raise ValueError(msg)
        if not layouts:
            msg = f"model {model!r}: at least one feature layout is needed"
            raise ValueError(msg)
        if score_layout is not None and score_layout.kind != "numeric":
            msg = f"model {model!r}: the score layout must be numeric"
            raise ValueError(msg)

        self.model = model
        self._lock = threading.Lock()
        self._features = tuple(_Feature(name, lay) for name, lay in layouts.items())
        self._score = None if score_layout is None else _Feature("score", score_layout)
        self._by_outcome = {
            outcome: [0] * score_layout.n_bins if score_layout else []
            for outcome in OUTCOMES
        }
        self._invalid_outcomes = 0
        _publish(self, meter_provider or metrics.get_meter_provider())

    @classmethod
    def from_reference_file(
        cls,
        path: str | os.PathLike[str],
        *,
        meter_provider: MeterProvider | None = None,
    ) -> ModelRecorder:
        """Build a recorder with the layouts of a reference file.

        Args:
            path: a reference JSON file (``healthai-telemetry drift baseline``).
            meter_provider: as for the constructor.

        Returns:
            A recorder for the reference's model, features and score.

        Raises:
            ConfigurationError: when the file cannot be read or a layout is
                invalid; the message names the file, key and value.
        """
        source = os.fspath(path)
        try:
            with open(source, encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError) as exc:
            msg = f"{source}: cannot read the reference: {exc}"
            raise ConfigurationError(msg) from exc
        if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
            msg = f"{source}: key 'features' is missing or not an object"
            raise ConfigurationError(msg)

        layouts = {
            str(name): _layout_from(source, f"features.{name}", value)
            for name, value in data["features"].items()
        }
        score = data.get("score")
        score_layout = None if score is None else _layout_from(source, "score", score)
        return cls(
            str(data.get("model", "")),
            layouts,
            score_layout,
            meter_provider=meter_provider,
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The recorded features, in layout order."""
        return tuple(feature.name for feature in self._features)

    def layouts(self) -> dict[str, BinLayout]:
        """The layout of each feature."""
        return {feature.name: feature.layout for feature in self._features}

    @property
    def score_layout(self) -> BinLayout | None:
        """The layout of the score, None when the score is not recorded."""
        return None if self._score is None else self._score.layout

    def record(
        self,
        features: Mapping[str, object],
        score: float | None = None,
        outcome: str | int | bool | None = None,
    ) -> None:
        """Count one request's features, and its score when given.

        A feature absent from ``features``, None, NaN, infinite or not a number
        (for numeric features) is counted as missing.

        Args:
            features: the request's feature values by name; extra keys ignored.
            score: the model's score for the request.
            outcome: the observed outcome (0/1) when already known; labels that
                arrive later go through ``record_outcome``.
        """
        try:
            indices = [
                feature.index(features.get(feature.name)) for feature in self._features
            ]
            score_index = (
                None
                if self._score is None or score is None
                else self._score.index(score)
            )
            label = None if outcome is None else _outcome(outcome)

            with self._lock:
                for feature, index in zip(self._features, indices, strict=True):
                    if index is None:
                        feature.missing += 1
                    else:
                        feature.counts[index] += 1
                self._count_score(score, score_index, outcome, label)
        except Exception as exc:  # never raise into the service
            record_failure("histograms.record", exc)

    def record_outcome(self, score: float, outcome: str | int | bool) -> None:
        """Count the score of a request whose outcome became known later.

        The service keeps each request's score (e.g. with its encounter id)
        and calls this when the label arrives; the score is added to the
        labelled split only, as ``record`` already counted it once.

        Args:
            score: the score the model gave the request.
            outcome: the observed outcome, 0/1 (or "0"/"1", False/True).
        """
        try:
            if self._score is None:
                return
            index = self._score.index(score)
            label = _outcome(outcome)
            with self._lock:
                if index is None or label is None:
                    self._invalid_outcomes += 1
                else:
                    self._by_outcome[label][index] += 1
        except Exception as exc:  # never raise into the service
            record_failure("histograms.record_outcome", exc)

    def snapshot(self) -> RecorderSnapshot:
        """Return a copy of the cumulative counts."""
        with self._lock:
            features = {
                f.name: np.array(f.counts, dtype=np.float64) for f in self._features
            }
            missing = {f.name: float(f.missing) for f in self._features}
            score = (
                None
                if self._score is None
                else np.array(self._score.counts, dtype=np.float64)
            )
            by_outcome = {
                outcome: np.array(counts, dtype=np.float64)
                for outcome, counts in self._by_outcome.items()
                if self._score is not None
            }
            score_missing = float(self._score.missing) if self._score else 0.0
        return RecorderSnapshot(
            self.model, features, missing, score, by_outcome, score_missing
        )

    def metric_families(self) -> list[Metric]:
        """Return this recorder's counts as prometheus-client metric families."""
        return list(_families([self.snapshot()], self))

    def _count_score(
        self,
        score: float | None,
        index: int | None,
        outcome: object,
        label: str | None,
    ) -> None:
        if self._score is None or score is None:
            return
        if index is None:
            self._score.missing += 1
            return
        self._score.counts[index] += 1
        if outcome is None:
            return
        if label is None:
            self._invalid_outcomes += 1
        else:
            self._by_outcome[label][index] += 1

    def _feature_bucket_observations(self) -> list[Observation]:
        snapshot = self.snapshot()
        observations = []
        for feature in self._features:
            if feature.layout.kind != "numeric":
                continue
            counts = snapshot.features[feature.name]
            for le, value in _cumulative(feature.layout, counts):
                attributes = {"model": self.model, "feature": feature.name, "le": le}
                observations.append(Observation(value, attributes))
        return observations

    def _category_observations(self) -> list[Observation]:
        snapshot = self.snapshot()
        observations = []
        for feature in self._features:
            if feature.layout.kind != "categorical":
                continue
            labels = (*feature.layout.categories, OTHER_CATEGORY)
            counts = snapshot.features[feature.name]
            for category, value in zip(labels, counts, strict=True):
                attributes = {
                    "model": self.model,
                    "feature": feature.name,
                    "category": category,
                }
                observations.append(Observation(float(value), attributes))
        return observations

    def _missing_observations(self) -> list[Observation]:
        snapshot = self.snapshot()
        return [
            Observation(value, {"model": self.model, "feature": name})
            for name, value in snapshot.missing.items()
        ]

    def _score_bucket_observations(self) -> list[Observation]:
        snapshot = self.snapshot()
        if self._score is None or snapshot.score is None:
            return []
        return [
            Observation(value, {"model": self.model, "le": le})
            for le, value in _cumulative(self._score.layout, snapshot.score)
        ]

    def _labelled_bucket_observations(self) -> list[Observation]:
        snapshot = self.snapshot()
        if self._score is None:
            return []
        return [
            Observation(value, {"model": self.model, "outcome": outcome, "le": le})
            for outcome, counts in snapshot.score_by_outcome.items()
            for le, value in _cumulative(self._score.layout, counts)
        ]

    def _score_missing_observations(self) -> list[Observation]:
        if self._score is None:
            return []
        return [Observation(self.snapshot().score_missing, {"model": self.model})]


class _OpenTelemetryPublisher:
    """The observable instruments of one meter provider, shared by its recorders.

    The SDK keeps the first instrument registered under a name and ignores
    later registrations (with their callbacks), so each provider gets one set
    of instruments whose callbacks observe every live recorder.
    """

    def __init__(self, provider: MeterProvider) -> None:
        self._lock = threading.Lock()
        self._recorders: dict[str, weakref.ref[ModelRecorder]] = {}
        meter = provider.get_meter(_INSTRUMENTATION_SCOPE)
        meter.create_observable_up_down_counter(
            FEATURE_BUCKET_METRIC,
            callbacks=[self._callback(ModelRecorder._feature_bucket_observations)],
            description="Cumulative count of feature values below le",
        )
        meter.create_observable_counter(
            FEATURE_CATEGORY_METRIC.removesuffix("_total"),
            callbacks=[self._callback(ModelRecorder._category_observations)],
            description="Count of categorical feature values by category",
        )
        meter.create_observable_counter(
            FEATURE_MISSING_METRIC.removesuffix("_total"),
            callbacks=[self._callback(ModelRecorder._missing_observations)],
            description="Count of missing, NaN or unreadable feature values",
        )
        meter.create_observable_up_down_counter(
            SCORE_BUCKET_METRIC,
            callbacks=[self._callback(ModelRecorder._score_bucket_observations)],
            description="Cumulative count of model scores below le",
        )
        meter.create_observable_up_down_counter(
            LABELLED_SCORE_BUCKET_METRIC,
            callbacks=[self._callback(ModelRecorder._labelled_bucket_observations)],
            description="Cumulative count of labelled scores by outcome",
        )
        meter.create_observable_counter(
            SCORE_MISSING_METRIC.removesuffix("_total"),
            callbacks=[self._callback(ModelRecorder._score_missing_observations)],
            description="Count of missing or non-finite model scores",
        )

    def add(self, recorder: ModelRecorder) -> None:
        """Observe ``recorder``; it replaces a live recorder of the same model."""
        with self._lock:
            previous = self._recorders.get(recorder.model)
            if previous is not None and previous() is not None:
                _logger.warning(
                    "A new recorder for model %s replaces the previous one",
                    recorder.model,
                )
            self._recorders[recorder.model] = weakref.ref(recorder)

    def _callback(
        self, observe: Callable[[ModelRecorder], list[Observation]]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                live = [ref() for ref in self._recorders.values()]
            observations: list[Observation] = []
            for recorder in live:
                if recorder is not None:
                    observations.extend(observe(recorder))
            return observations

        return callback


_publishers_lock = threading.Lock()
_publishers: weakref.WeakKeyDictionary[MeterProvider, _OpenTelemetryPublisher] = (
    weakref.WeakKeyDictionary()
)


def _publish(recorder: ModelRecorder, provider: MeterProvider) -> None:
    with _publishers_lock:
        publisher = _publishers.get(provider)
        if publisher is None:
            publisher = _OpenTelemetryPublisher(provider)
            _publishers[provider] = publisher
    publisher.add(recorder)


class RecorderCollector:
    """A prometheus-client collector publishing the counts of recorders.

    Register it on a ``CollectorRegistry`` (or use ``serve_recorders``); each
    scrape takes a snapshot of every recorder.

    Args:
        recorders: the recorders to publish; their model names must differ.

    Raises:
        ValueError: when two recorders share a model name.
    """

    def __init__(self, recorders: Sequence[ModelRecorder]) -> None:
        names = [recorder.model for recorder in recorders]
        if len(set(names)) != len(names):
            msg = f"recorders must have distinct model names, got {names}"
            raise ValueError(msg)
        self._recorders = tuple(recorders)

    def collect(self) -> Iterator[Metric]:
        """Yield one family per metric name, with every recorder's series."""
        snapshots = [recorder.snapshot() for recorder in self._recorders]
        yield from _families(snapshots, *self._recorders)


def serve_recorders(
    recorders: Sequence[ModelRecorder], port: int, addr: str = "127.0.0.1"
) -> tuple[Any, threading.Thread]:
    """Serve the recorders' metrics on ``http://addr:port/metrics``.

    Uses prometheus-client's HTTP server with a registry of its own, so the
    process's default registry is not published with them.

    Args:
        recorders: the recorders to publish.
        port: the TCP port (0 picks a free one: read it from
            ``server.server_port``).
        addr: the address to bind.

    Returns:
        The server (call ``shutdown()`` then ``server_close()`` to stop it) and
        its thread.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecorderCollector(recorders))
    server, thread = start_http_server(port, addr=addr, registry=registry)
    _logger.info("Serving model histograms on %s:%s", addr, server.server_port)
    return server, thread


def _families(
    snapshots: Sequence[RecorderSnapshot], *recorders: ModelRecorder
) -> Iterator[Metric]:
    values = HistogramMetricFamily(
        FEATURE_BUCKET_METRIC.removesuffix("_bucket"),
        "Feature values counted into the reference bins (le is the upper edge)",
        labels=["model", "feature"],
    )
    categories = CounterMetricFamily(
        FEATURE_CATEGORY_METRIC.removesuffix("_total"),
        "Categorical feature values by reference category (other included)",
        labels=["model", "feature", "category"],
    )
    missing = CounterMetricFamily(
        FEATURE_MISSING_METRIC.removesuffix("_total"),
        "Feature values that were absent, NaN, infinite or not a number",
        labels=["model", "feature"],
    )
    scores = HistogramMetricFamily(
        SCORE_BUCKET_METRIC.removesuffix("_bucket"),
        "Model scores counted into the reference score bins",
        labels=["model"],
    )
    labelled = HistogramMetricFamily(
        LABELLED_SCORE_BUCKET_METRIC.removesuffix("_bucket"),
        "Scores of requests whose outcome is known, by outcome",
        labels=["model", "outcome"],
    )
    score_missing = CounterMetricFamily(
        SCORE_MISSING_METRIC.removesuffix("_total"),
        "Model scores that were absent or not finite",
        labels=["model"],
    )

    for recorder, snapshot in zip(recorders, snapshots, strict=True):
        layouts = recorder.layouts()
        for name, counts in snapshot.features.items():
            layout = layouts[name]
            missing.add_metric([snapshot.model, name], snapshot.missing[name])
            if layout.kind == "numeric":
                values.add_metric(
                    [snapshot.model, name], _cumulative(layout, counts), None
                )
                continue
            for category, value in zip(
                (*layout.categories, OTHER_CATEGORY), counts, strict=True
            ):
                categories.add_metric([snapshot.model, name, category], float(value))

        score_layout = recorder._score.layout if recorder._score else None
        if score_layout is None or snapshot.score is None:
            continue
        scores.add_metric(
            [snapshot.model], _cumulative(score_layout, snapshot.score), None
        )
        score_missing.add_metric([snapshot.model], snapshot.score_missing)
        for outcome, counts in snapshot.score_by_outcome.items():
            labelled.add_metric(
                [snapshot.model, outcome], _cumulative(score_layout, counts), None
            )

    yield from (values, categories, missing, scores, labelled, score_missing)


def _cumulative(
    layout: BinLayout, counts: npt.NDArray[np.float64]
) -> list[tuple[str, float]]:
    totals = np.cumsum(counts)
    bounds = [*layout.edges, math.inf]
    return [
        (format_le(bound), float(total))
        for bound, total in zip(bounds, totals, strict=True)
    ]


def _outcome(outcome: object) -> str | None:
    return _OUTCOME_TEXT.get(str(outcome).strip().lower())


def _layout_from(source: str, key: str, value: object) -> BinLayout:
    if not isinstance(value, dict):
        msg = f"{source}: key {key!r} has value {value!r}: expected an object"
        raise ConfigurationError(msg)
    try:
        if value.get("kind") == "categorical":
            return BinLayout.categorical(value.get("categories") or [])
        return BinLayout.numeric(value.get("edges") or [])
    except (TypeError, ValueError) as exc:
        msg = f"{source}: key {key!r} has an invalid layout: {exc}"
        raise ConfigurationError(msg) from exc
