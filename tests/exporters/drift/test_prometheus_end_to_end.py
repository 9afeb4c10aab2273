"""End to end against a real Prometheus scraping the in-process recorder.

Prometheus (Debian's 2.42) runs on 127.0.0.1 on a free port with a 1 s scrape
interval and its storage in the test's temporary directory; each test stops it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client.parser import text_string_to_metric_families

from exporters.demo.model import PatientGenerator, ReadmissionModel
from exporters.drift.baseline import build_reference
from exporters.drift.config import load_serve_config
from exporters.drift.reference import Reference, save_reference
from exporters.drift.root_cause import MIN_HISTORY
from exporters.drift.server import DriftServer
from exporters.drift.sources import PrometheusSource
from otel_processors.binning import BinLayout
from otel_processors.histograms import ModelRecorder, serve_recorders

pytestmark = pytest.mark.slow


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class PrometheusServer:
    """A real Prometheus process scraping the given targets every second."""

    def __init__(self, executable: str, directory: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        quoted = ", ".join(f"'{target}'" for target in targets)
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: model\n"
            f"    static_configs:\n      - targets: [{quoted}]\n",
            encoding="utf-8",
        )
        self._command = [
            executable,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self._log = (directory / "prometheus.log").open("wb")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start Prometheus and wait until it is ready."""
        self._process = subprocess.Popen(
            self._command, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail("Prometheus did not become ready within 20 s")

    def stop(self) -> None:
        """Stop Prometheus (if running) and wait for it to exit."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def close(self) -> None:
        """Stop Prometheus and close its log."""
        self.stop()
        self._log.close()

    def wait_for_series(self, metric: str, timeout_seconds: float = 15) -> None:
        """Wait until at least one sample of ``metric`` has been scraped."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            response = requests.get(
                f"{self.url}/api/v1/query", params={"query": metric}, timeout=2
            )
            if response.json()["data"]["result"]:
                return
            time.sleep(0.3)
        pytest.fail(f"Prometheus scraped no {metric} within {timeout_seconds} s")

    def wait_for_scrapes(self, count: int = 2) -> None:
        """Let ``count`` more scrape intervals pass (plus a margin)."""
        time.sleep(count * 1.0 + 0.5)


@pytest.fixture
def recorder_endpoint() -> Iterator[Callable[[list[ModelRecorder]], str]]:
    """Serve recorders on a free port; yields a function returning host:port."""
    servers = []

    def serve(recorders: list[ModelRecorder]) -> str:
        server, _ = serve_recorders(recorders, 0)
        servers.append(server)
        return f"127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prometheus(
    binary: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[[list[str]], PrometheusServer]]:
    """Start a real Prometheus scraping the given targets; stopped at teardown."""
    started: list[PrometheusServer] = []

    def start(targets: list[str]) -> PrometheusServer:
        server = PrometheusServer(binary("prometheus"), tmp_path, targets)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.close()


def demo_reference(seed: int = 7, n: int = 4000) -> Reference:
    """Build the demo model's reference, scores and outcomes included."""
    generator = PatientGenerator(seed=seed)
    columns = generator.columns(n)
    model = ReadmissionModel()
    names = list(columns)
    scores = np.array(
        [model.score({name: columns[name][i] for name in names}) for i in range(n)]
    )
    outcomes = (np.random.default_rng(seed).uniform(0, 1, n) < scores).astype(int)
    return build_reference(
        {**columns, "score": scores, "readmitted": outcomes},
        model="readmission",
        model_version=model.version,
        categorical=["discharge_disposition"],
        score_column="score",
        outcome_column="readmitted",
    )


def record_patients(
    recorder: ModelRecorder, n: int, *, seed: int, shift: dict[str, float]
) -> None:
    """Record ``n`` generated patients, their scores and outcomes."""
    model = ReadmissionModel()
    rng = np.random.default_rng(seed)
    for patient in PatientGenerator(seed=seed, shift=shift).patients(n):
        score = model.score(patient)
        recorder.record(patient, score=score, outcome=int(rng.uniform() < score))


def test_prometheus_window_recovers_recorded_counts(
    prometheus: Callable[[list[str]], PrometheusServer],
    recorder_endpoint: Callable[[list[ModelRecorder]], str],
) -> None:
    """Scraped counts come back per bin; a feature with other bins is flagged."""
    reference = demo_reference()
    layouts = reference.layouts()
    layouts["age_years"] = BinLayout.numeric([50.0, 70.0])
    assert reference.score is not None
    recorder = ModelRecorder(
        "readmission", layouts, reference.score.layout, meter_provider=MeterProvider()
    )
    server = prometheus([recorder_endpoint([recorder])])
    server.wait_for_series("healthai_model_feature_value_bucket")
    record_patients(recorder, 600, seed=1, shift={})
    server.wait_for_scrapes(3)

    window = PrometheusSource(server.url, reference, window_seconds=60).fetch()

    expected = recorder.snapshot().features["creatinine_mg_dl"]
    result = window.features["creatinine_mg_dl"]
    assert np.allclose(expected, result, rtol=0.35, atol=3)
    assert ["age_years"] == sorted(window.errors)
    assert "do not match the reference edges" in window.errors["age_years"]
    assert window.score is not None


def _scrape(port: int) -> dict[tuple[str, str], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, sample.labels.get("feature", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_serve_finds_shifted_feature_and_survives_prometheus_stop(
    binary: Callable[[str], str],
    tmp_path: Path,
    prometheus: Callable[[list[str]], PrometheusServer],
    recorder_endpoint: Callable[[list[ModelRecorder]], str],
) -> None:
    """Creatinine shifted more each window is the root cause, correlation used;
    values stay, going stale, when Prometheus stops.

    Five evaluations over a 60 s window that keeps every row recorded so far:
    an unshifted batch, then batches shifted 0.75, 1.5, 2.25 and 3 sd, so the
    feature's drift and the score's rise together over at least
    ``MIN_HISTORY`` windows.
    """
    reference = demo_reference()
    save_reference(reference, tmp_path / "readmission.json")
    assert reference.score is not None
    recorder = ModelRecorder(
        "readmission",
        reference.layouts(),
        reference.score.layout,
        meter_provider=MeterProvider(),
    )
    server = prometheus([recorder_endpoint([recorder])])
    config = tmp_path / "drift.yaml"
    config.write_text(
        f"defaults:\n  prometheus: {server.url}\n  window: 60s\n"
        "  timeout: 1s\n  retries: 0\n"
        "models:\n  - reference: readmission.json\n",
        encoding="utf-8",
    )
    exporter = DriftServer(load_serve_config(config))
    port = exporter.serve("127.0.0.1", 0)
    try:
        server.wait_for_series("healthai_model_feature_value_bucket")
        reports = []
        for stage in range(5):
            shift = {"creatinine_mg_dl": 0.75 * stage}
            record_patients(recorder, 600, seed=3 + stage, shift=shift)
            server.wait_for_scrapes(2)
            reports.append(exporter.evaluate("readmission").report)
        report = reports[-1]
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        checked = subprocess.run(
            [binary("promtool"), "check", "metrics"],
            input=text.encode(),
            capture_output=True,
            check=False,
        )
        server.stop()
        time.sleep(1.5)
        failed = exporter.evaluate("readmission")
        metrics = _scrape(port)
    finally:
        exporter.stop()

    assert report is not None
    assert len(reports) >= MIN_HISTORY
    top = report.root_causes[0]
    result = (top.feature, top.correlation is not None and top.correlation > 0.5)
    assert ("creatinine_mg_dl", True) == result
    assert (0, b"") == (checked.returncode, checked.stdout + checked.stderr)
    assert failed.report is report
    assert {"unavailable": 1} == failed.errors
    assert metrics[("healthai_drift_staleness_seconds", "")] >= 1.5
    assert metrics[("healthai_drift_statistic", "creatinine_mg_dl")] > 0


def test_service_restart_inside_the_window_keeps_counts(
    prometheus: Callable[[list[str]], PrometheusServer],
) -> None:
    """A recorder restarted from zero on the same port (a counter reset) adds to
    the window instead of making it negative."""
    reference = demo_reference()
    layouts = reference.layouts()
    first = ModelRecorder("readmission", layouts, meter_provider=MeterProvider())
    http, _ = serve_recorders([first], 0)
    port = http.server_port
    server = prometheus([f"127.0.0.1:{port}"])
    server.wait_for_series("healthai_model_feature_value_bucket")
    record_patients(first, 500, seed=4, shift={})
    server.wait_for_scrapes(3)
    http.shutdown()
    http.server_close()

    second = ModelRecorder("readmission", layouts, meter_provider=MeterProvider())
    http, _ = serve_recorders([second], port)
    try:
        server.wait_for_scrapes(2)
        record_patients(second, 300, seed=5, shift={})
        server.wait_for_scrapes(3)
        window = PrometheusSource(server.url, reference, window_seconds=60).fetch()
    finally:
        http.shutdown()
        http.server_close()

    result = window.features["age_years"].sum()
    assert 800 * 0.8 <= result <= 800 * 1.35
    assert window.features["age_years"].min() >= 0
