"""The drift part of the demo: a feature shift found and explained, in process.

A reference is built from the demo's patient generator; then windows of
requests are scored by the readmission model and counted by the in-process
recorder, exactly as a service would. Midway, creatinine and prior admissions
shift. Each window is evaluated against the reference and printed as one line;
at the end the root-cause ranking is printed. Nothing outside the process is
needed (no Prometheus): the recorder source reads the recorder's counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider

from exporters.demo.model import PatientGenerator, ReadmissionModel
from exporters.drift.baseline import build_reference
from exporters.drift.evaluation import DriftMonitor
from exporters.drift.reference import Reference
from exporters.drift.report import DriftReport, FeatureDrift, Level
from exporters.drift.sources import RecorderSource
from otel_processors.histograms import ModelRecorder

__all__ = ["SHIFT", "DriftPhaseSummary", "run_drift_phase"]

SHIFT = {"creatinine_mg_dl": 1.0, "prior_admissions_12m": 0.8}
"""The shift applied mid-run, in standard deviations of each feature."""

_MODEL = "readmission"
_REFERENCE_ROWS = 5000
_WINDOWS = 8
_WINDOW_REQUESTS = 800


@dataclass(frozen=True)
class DriftPhaseSummary:
    """What the drift phase found.

    Attributes:
        levels: the model's level in each window, in order.
        shifted_from: the index of the first window with shifted features.
        shifted_features: the features that were shifted.
        root_causes: the final root-cause ranking, most likely first.
        seconds: wall time of the phase.
    """

    levels: tuple[Level, ...]
    shifted_from: int
    shifted_features: tuple[str, ...]
    root_causes: tuple[str, ...]
    seconds: float


def run_drift_phase(out: TextIO, *, seed: int = 7) -> DriftPhaseSummary:
    """Run the drift phase of the demo, printing one line per window.

    Args:
        out: where the lines go.
        seed: the seed of every random draw (reference, windows, outcomes).

    Returns:
        The levels per window and the final root causes.
    """
    began = time.perf_counter()
    model = ReadmissionModel()
    reference = _reference(model, seed)
    assert reference.score is not None  # built with a score column
    recorder = ModelRecorder(
        _MODEL,
        reference.layouts(),
        reference.score.layout,
        meter_provider=MeterProvider(),
    )
    source = RecorderSource(recorder, reference)
    monitor = DriftMonitor(reference)
    outcomes = np.random.default_rng(seed + 1)
    shifted_from = _WINDOWS // 2

    print(
        f"[drift] reference of {_REFERENCE_ROWS} discharges; {_WINDOWS} windows of "
        f"{_WINDOW_REQUESTS} requests; {', '.join(SHIFT)} shift from window "
        f"{shifted_from + 1}",
        file=out,
    )
    levels: list[Level] = []
    report: DriftReport | None = None
    for index in range(_WINDOWS):
        # Serve a window of requests as the service would: score, then record.
        shift = SHIFT if index >= shifted_from else {}
        generator = PatientGenerator(seed=seed + 100 + index, shift=dict(shift))
        for patient in generator.patients(_WINDOW_REQUESTS):
            score = model.score(patient)
            recorder.record(
                patient, score=score, outcome=int(outcomes.uniform() < score)
            )

        report = monitor.evaluate(source.fetch().to_window())
        levels.append(report.level)
        print(_window_line(index, bool(shift), report), file=out)

    assert report is not None  # at least one window
    causes = tuple(cause.feature for cause in report.root_causes)
    top = ", ".join(
        f"{cause.feature} ({cause.score:.2f})" for cause in report.root_causes[:3]
    )
    print(f"  root cause ranking: {top}", file=out)
    return DriftPhaseSummary(
        levels=tuple(levels),
        shifted_from=shifted_from,
        shifted_features=tuple(SHIFT),
        root_causes=causes,
        seconds=time.perf_counter() - began,
    )


def _reference(model: ReadmissionModel, seed: int) -> Reference:
    columns = PatientGenerator(seed=seed).columns(_REFERENCE_ROWS)
    names = list(columns)
    scores = np.array(
        [
            model.score({name: columns[name][i] for name in names})
            for i in range(_REFERENCE_ROWS)
        ]
    )
    outcomes = np.random.default_rng(seed).uniform(0, 1, _REFERENCE_ROWS) < scores
    return build_reference(
        {**columns, "score": scores, "readmitted": outcomes.astype(np.int64)},
        model=_MODEL,
        model_version=model.version,
        categorical=["discharge_disposition"],
        score_column="score",
        outcome_column="readmitted",
    )


def _window_line(index: int, shifted: bool, report: DriftReport) -> str:
    worst = sorted(
        (d for d in report.features.values() if d.error is None),
        key=lambda d: -d.statistics.get("psi", 0.0),
    )[:2]
    features = ", ".join(
        f"{d.name} psi {d.statistics.get('psi', 0.0):.2f} {_level(d)}" for d in worst
    )
    score = report.score.level.name if report.score is not None else "-"
    marker = "shifted" if shifted else "normal "
    return (
        f"  window {index + 1} {marker} model {report.level.name:<8} "
        f"score {score:<8} top: {features}"
    )


def _level(drift: FeatureDrift) -> str:
    if drift.raw_level == drift.level:
        return drift.level.name
    # Hysteresis holds the level until the drift repeats: show both.
    return f"{drift.level.name} (window {drift.raw_level.name})"
