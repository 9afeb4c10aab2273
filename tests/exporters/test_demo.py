"""Tests for the demo: it runs by itself and exports scrubbed, classified telemetry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from exporters.demo.service import Patient
from tests.otlp_receiver import OTLPReceiver, attributes_of

REPOSITORY = Path(__file__).parents[2]


def _run_demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporters.cli", "demo", *args],
        env={**os.environ, "PYTHONPATH": str(REPOSITORY), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPOSITORY,
    )


def test_demo_exports_every_category_over_otlp_without_patient_data() -> None:
    """With an OTLP endpoint set, every category arrives and no identifier does."""
    with OTLPReceiver() as receiver:
        completed = _run_demo(
            "--requests", "240", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint
        )
    received = receiver.received
    categories = {
        attributes_of(record).get("healthai.error.category")
        for record in received.log_records()
    }
    identifiers = [
        value
        for index in range(240)
        for value in (
            Patient.synthetic(index).ssn,
            Patient.synthetic(index).email,
            Patient.synthetic(index).name,
        )
    ]

    result = [i for i in identifiers if i.encode() in received.all_raw()]

    assert 0 == completed.returncode, completed.stderr
    assert [] == result
    assert {
        "PREDICTION_ERROR",
        "DATA_ERROR",
        "MODEL_ERROR",
        "SYSTEM_ERROR",
        "UNCLASSIFIED",
    } <= categories


def test_demo_prints_a_summary_by_category_and_code() -> None:
    """The demo ends by itself with a summary naming codes."""
    completed = _run_demo("--requests", "160", "--phases", "errors")

    result = completed.stdout

    assert 0 == completed.returncode, completed.stderr
    assert "Summary" in result
    assert "DATA_ERROR / OUT_OF_RANGE / HAI-DATA-301" in result
    for subcategory in ("FEATURE_EXTRACTION", "SCORE_CALCULATION", "POST_PROCESSING"):
        assert f"PREDICTION_ERROR / {subcategory} /" in result


def test_demo_finds_the_drifted_features_and_groups_the_crashes() -> None:
    """Drift names a shifted feature first; five thread crashes form two groups."""
    completed = _run_demo("--requests", "80")
    summary = completed.stdout.split("Summary", 1)[-1]

    result = [line.strip() for line in summary.splitlines() if ":" in line]

    assert 0 == completed.returncode, completed.stderr
    drift = next(line for line in result if line.startswith("drift:"))
    first_cause = drift.split("root cause found:")[1].split(",")[0].strip()
    assert first_cause in {"creatinine_mg_dl", "prior_admissions_12m"}
    assert "highest level CRITICAL" in drift
    assert "crashes: 5 worker threads crashed, 2 crash groups formed" in result
    groups = sorted(
        (line.split()[2], line.split(maxsplit=4)[4])
        for line in completed.stdout.splitlines()
        if line.strip().startswith("group ")
    )
    assert [("x1", "KeyError: 'pager'"), ("x4", "KeyError: 'creatinine_mg_dl'")] == (
        groups
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_with_an_unreachable_endpoint_says_so_and_ends() -> None:
    """Nothing listening at the endpoint: a clear line, in-memory export, exit 0."""
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()

    completed = _run_demo(
        "--phases", "errors", "--requests", "80", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint
    )

    seconds = time.monotonic() - started
    assert 0 == completed.returncode, completed.stderr
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT={endpoint} is unreachable" in completed.stdout
    assert "Summary" in completed.stdout
    assert seconds < 30


def test_demo_with_an_endpoint_that_never_answers_ends_within_a_minute() -> None:
    """A Collector that accepts connections but never replies cannot hold the demo."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()

        completed = _run_demo(
            "--phases",
            "errors",
            "--requests",
            "80",
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        )

        seconds = time.monotonic() - started
    assert 0 == completed.returncode, completed.stderr
    assert "exporting over OTLP/HTTP" in completed.stdout
    assert "Summary" in completed.stdout
    assert seconds < 60
