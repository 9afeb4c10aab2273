"""Drift detection: statistics, levels, root cause, and the Prometheus exporter.

A ``Reference`` (built from training data by ``build_reference`` or read by
``load_reference``) fixes the bins; a ``DriftMonitor`` evaluates each current
``Window`` against it into a ``DriftReport``; ``DriftServer`` does that on an
interval for the models of a ``ServeConfig`` and serves the results through
``DriftCollector``. See docs/drift.md and docs/drift-exporter.md.
"""

from __future__ import annotations

from exporters.drift.baseline import build_reference, read_columns
from exporters.drift.collector import DriftCollector
from exporters.drift.config import DriftConfigError, ServeConfig, load_serve_config
from exporters.drift.evaluation import DriftMonitor, Window
from exporters.drift.levels import DriftPolicy, FeaturePolicy, PerformancePolicy
from exporters.drift.reference import (
    FeatureReference,
    Reference,
    ReferenceFileError,
    load_reference,
    save_reference,
)
from exporters.drift.report import (
    DriftReport,
    FeatureDrift,
    Level,
    PerformanceReport,
    RootCause,
    render_table,
    report_to_json,
)
from exporters.drift.server import DriftServer
from exporters.drift.sources import PrometheusSource, RecorderSource, SourceError

__all__ = [
    "DriftCollector",
    "DriftConfigError",
    "DriftMonitor",
    "DriftPolicy",
    "DriftReport",
    "DriftServer",
    "FeatureDrift",
    "FeaturePolicy",
    "FeatureReference",
    "Level",
    "PerformancePolicy",
    "PerformanceReport",
    "PrometheusSource",
    "RecorderSource",
    "Reference",
    "ReferenceFileError",
    "RootCause",
    "ServeConfig",
    "SourceError",
    "Window",
    "build_reference",
    "load_reference",
    "load_serve_config",
    "read_columns",
    "render_table",
    "report_to_json",
    "save_reference",
]
