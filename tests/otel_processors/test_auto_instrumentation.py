"""End to end: a service under opentelemetry-instrument, exporting OTLP to loopback."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.otlp_receiver import OTLPReceiver, Received, attributes_of, iter_strings

SAMPLE_SERVICE = Path(__file__).with_name("sample_service.py")
PLANTED = (
    "John Smith",
    "123-45-6789",
    "00451234",
    "jane.doe@example.org",
    "555-0123",
)


INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")


def _instrumented_env(receiver: OTLPReceiver, **extra_env: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "HEALTHAI_"))
    }
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="200",
        PYTHONPATH=str(SAMPLE_SERVICE.parents[2]),
        **extra_env,
    )
    return env


def _run_instrumented(
    script: Path, *args: str, receiver: OTLPReceiver, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` under opentelemetry-instrument, exporting to ``receiver``."""
    return subprocess.run(
        [str(INSTRUMENT), sys.executable, str(script), *args],
        env=_instrumented_env(receiver, **extra_env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _wait_for(received: Received, *, spans: int, logs: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(received.spans()) >= spans and len(received.log_records()) >= logs:
            return
        time.sleep(0.05)


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> Received:
    """What the sample service exported, run once for the module's tests."""
    crash_dir = tmp_path_factory.mktemp("crashes")
    with OTLPReceiver() as receiver:
        completed = _run_instrumented(
            SAMPLE_SERVICE,
            receiver=receiver,
            OTEL_SERVICE_NAME="readmission-risk",
            HEALTHAI_CRASH_DIR=str(crash_dir),
        )
        assert 0 == completed.returncode, completed.stderr
        _wait_for(receiver.received, spans=5, logs=2)
    return receiver.received


def _spans_by_name(received: Received) -> dict[str, dict[str, object]]:
    return {span.name: attributes_of(span) for span in received.spans()}


def test_error_span_from_taxonomy_exception_carries_its_code(
    received: Received,
) -> None:
    """A FeatureExtractionError raised in a span is classified by its own code."""
    spans = _spans_by_name(received)

    result = spans["extract_features"]

    assert "PREDICTION_ERROR" == result["healthai.error.category"]
    assert "FEATURE_EXTRACTION" == result["healthai.error.subcategory"]
    assert "HAI-PRED-101" == result["healthai.error.code"]
    assert "HAI-PRED-101" == result["error.type"]
    assert result["healthai.error.remediation"]


def test_builtin_exception_is_classified_by_the_catalogue(received: Received) -> None:
    """A MemoryError logged with exc_info is classified as resource exhaustion."""
    records = [attributes_of(r) for r in received.log_records()]
    memory = [r for r in records if r.get("exception.type") == "MemoryError"]

    result = memory[0]["healthai.error.subcategory"]

    assert "RESOURCE_EXHAUSTION" == result


def test_explicit_tag_wins(received: Received) -> None:
    """A span tagged by hand keeps the tagged code."""
    spans = _spans_by_name(received)

    result = spans["explicit"]["healthai.error.code"]

    assert "HAI-SYS-101" == result


def test_unmatched_error_gets_a_fallback_not_dropped(received: Received) -> None:
    """An exception no rule knows still gets a code, marked as a fallback."""
    spans = _spans_by_name(received)

    result = spans["unknown_failure"]

    expected = (True, "HAI-UNCL-000")
    assert expected == (
        result["healthai.error.fallback"],
        result["healthai.error.code"],
    )


def test_healthy_span_is_not_classified(received: Received) -> None:
    """A span without error carries no taxonomy attributes."""
    spans = _spans_by_name(received)

    result = {k for k in spans["healthy_request"] if k.startswith("healthai.error")}

    assert set() == result


def test_log_record_carries_qualified_type_and_taxonomy(received: Received) -> None:
    """Logged exceptions carry the module-qualified type and the classification."""
    records = [attributes_of(r) for r in received.log_records()]
    feature = [r for r in records if str(r.get("exception.type", "")).endswith("Error")]

    result = {(r["exception.type"], r.get("healthai.error.code")) for r in feature}

    assert ("otel_processors.exceptions.FeatureExtractionError", "HAI-PRED-101") in (
        result
    )


def test_no_planted_identifier_leaves_the_process(received: Received) -> None:
    """No planted identifier appears anywhere in the exported bytes."""
    raw = received.all_raw()
    decoded = "\n".join(iter_strings(received))

    result = [p for p in PLANTED if p.encode() in raw or p in decoded]

    assert [] == result
    assert "[REDACTED:SSN]" in decoded


def test_classified_errors_are_counted_as_a_metric(received: Received) -> None:
    """The classified-error counter reaches the metrics endpoint."""
    result = received.metric_names()

    assert "healthai.errors.classified" in result


def test_crash_of_an_instrumented_service_is_reported_fatal_and_scrubbed(
    tmp_path: Path,
) -> None:
    """An unhandled exception becomes one FATAL, fingerprinted, scrubbed record."""
    crashing = SAMPLE_SERVICE.with_name("crashing_service.py")
    with OTLPReceiver() as receiver:
        completed = _run_instrumented(
            crashing,
            "00451234",
            receiver=receiver,
            OTEL_SERVICE_NAME="admissions",
            HEALTHAI_CRASH_DIR=str(tmp_path),
        )
        _wait_for(receiver.received, spans=0, logs=1)
    crashes = [
        r
        for r in receiver.received.log_records()
        if "healthai.crash.fingerprint" in attributes_of(r)
    ]

    result = [
        (r.severity_text, attributes_of(r)["healthai.crash.kind"]) for r in crashes
    ]

    assert 1 == completed.returncode
    assert [("FATAL", "main_thread")] == result
    assert b"00451234" not in receiver.received.all_raw()


def test_bad_registry_file_is_reported_by_name_and_the_service_still_runs(
    tmp_path: Path,
) -> None:
    """An invalid registry file names itself on stderr; the service is unharmed."""
    registry = tmp_path / "codes.yaml"
    registry.write_text(
        "codes:\n"
        "  - id: ACME-1\n"
        "    category: NOT_A_CATEGORY\n"
        "    subcategory: MISSING_VALUE\n"
        "    severity: error\n"
    )
    with OTLPReceiver() as receiver:
        completed = _run_instrumented(
            SAMPLE_SERVICE,
            receiver=receiver,
            OTEL_SERVICE_NAME="readmission-risk",
            HEALTHAI_ERROR_REGISTRY=str(registry),
            HEALTHAI_CRASH_DIR=str(tmp_path),
        )

    result = completed.stderr

    assert 0 == completed.returncode
    assert str(registry) in result
    assert "NOT_A_CATEGORY" in result


def _signal_records(received: Received) -> list[dict[str, object]]:
    return [
        attributes_of(record)
        for record in received.log_records()
        if attributes_of(record).get("healthai.crash.kind") == "signal"
    ]


def test_segfault_report_waits_for_the_endpoint_then_is_sent_once(
    tmp_path: Path,
) -> None:
    """A segfault's report stays pending while OTLP is down and is sent once later."""
    service = SAMPLE_SERVICE.with_name("segfaulting_service.py")
    spool = tmp_path / "spool"
    env = {
        "OTEL_SERVICE_NAME": "admissions",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        "HEALTHAI_CRASH_DIR": str(spool),
    }
    with OTLPReceiver() as closed:
        crashed = _run_instrumented(service, "segv", receiver=closed, **env)
    # The receiver is closed: its port now refuses connections.
    _run_instrumented(service, receiver=closed, **env)
    pending_while_down = sorted(path.name for path in (spool / "pending").iterdir())

    with OTLPReceiver() as receiver:
        _run_instrumented(service, receiver=receiver, **env)
        _wait_for(receiver.received, spans=0, logs=1)
        sent = [
            (record["exception.type"], record["healthai.crash.fingerprint"] != "")
            for record in _signal_records(receiver.received)
        ]

    result = (
        crashed.returncode,
        len(pending_while_down),
        sent,
        sorted(path.name for path in (spool / "pending").iterdir()),
        sorted(path.name for path in (spool / "completed").iterdir()),
    )

    expected = (-11, 1, [("SIGSEGV", True)], [], pending_while_down)
    assert expected == result


def _read_until(terminal: int, wanted: bytes, seen: bytearray) -> bool:
    deadline = time.monotonic() + 20
    while wanted not in seen and time.monotonic() < deadline:
        readable, _, _ = select.select([terminal], [], [], 0.1)
        if readable:
            try:
                seen.extend(os.read(terminal, 4096))
            except OSError:  # the shell closed the terminal
                break
    return wanted in seen


def _crash_kinds(received: Received) -> list[str]:
    return [
        str(attributes_of(record)["healthai.crash.kind"])
        for record in received.log_records()
        if "healthai.crash.kind" in attributes_of(record)
    ]


def test_error_typed_at_the_interactive_prompt_is_not_a_crash(
    tmp_path: Path,
) -> None:
    """A NameError typed into the shell on a terminal exports no crash record."""
    primary, secondary = pty.openpty()
    seen = bytearray()
    with OTLPReceiver() as receiver:
        shell = subprocess.Popen(
            [str(INSTRUMENT), sys.executable, "-q"],
            env=_instrumented_env(
                receiver, OTEL_SERVICE_NAME="console", HEALTHAI_CRASH_DIR=str(tmp_path)
            ),
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            start_new_session=True,
        )
        os.close(secondary)
        try:
            prompted = _read_until(primary, b">>> ", seen)
            os.write(primary, b"undefined_name\n")
            failed = _read_until(primary, b"NameError", seen)
            os.write(primary, b"exit()\n")
            _read_until(primary, b"\0", seen)
            returncode = shell.wait(timeout=20)
        finally:
            shell.kill()
            shell.wait()
            os.close(primary)
        # The shell has exited: whatever it exported has been received.

    result = (prompted, failed, returncode, _crash_kinds(receiver.received))

    expected = (True, True, 0, [])
    assert expected == result, seen.decode(errors="replace")


def test_same_input_without_a_terminal_is_a_crash(tmp_path: Path) -> None:
    """Read from a pipe, the same line is a script that crashes: one FATAL record."""
    with OTLPReceiver() as receiver:
        completed = subprocess.run(
            [str(INSTRUMENT), sys.executable, "-q"],
            input="undefined_name\n",
            env=_instrumented_env(
                receiver, OTEL_SERVICE_NAME="console", HEALTHAI_CRASH_DIR=str(tmp_path)
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        _wait_for(receiver.received, spans=0, logs=1)

    result = (completed.returncode, _crash_kinds(receiver.received))

    expected = (1, ["main_thread"])
    assert expected == result
