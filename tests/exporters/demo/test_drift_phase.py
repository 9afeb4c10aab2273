"""Tests for the drift phase of the demo."""

from __future__ import annotations

import io

from exporters.demo.drift_phase import run_drift_phase
from exporters.drift.report import Level


def test_drift_phase_raises_after_the_shift_and_names_shifted_features() -> None:
    """Windows before the shift are OK, the last is critical, and the two
    shifted features lead the root-cause ranking."""
    out = io.StringIO()

    summary = run_drift_phase(out, seed=7)

    before = set(summary.levels[: summary.shifted_from])
    result = (before, summary.levels[-1], set(summary.root_causes[:2]))
    assert ({Level.OK}, Level.CRITICAL, set(summary.shifted_features)) == result
    assert summary.seconds < 15
    assert "root cause ranking: " in out.getvalue()
