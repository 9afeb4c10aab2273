"""Tests for the log record processors and the logging handler."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)

from otel_processors import enable
from otel_processors.classifier import Classifier
from otel_processors.error_metrics import ClassifiedErrorCounter
from otel_processors.exceptions import OutOfRangeError
from otel_processors.logs import (
    HealthAILoggingHandler,
    ScrubbingLogRecordProcessor,
    TaxonomyLogRecordProcessor,
)
from otel_processors.registry import Registry
from otel_processors.scrubber import Scrubber


class _ListCounter(ClassifiedErrorCounter):
    def __init__(self) -> None:
        super().__init__()
        self.codes: list[str] = []

    def add(self, classification: object, *, service: str, signal: str) -> None:
        self.codes.append(classification.code.id)  # type: ignore[attr-defined]


@pytest.fixture
def memory() -> InMemoryLogRecordExporter:
    return InMemoryLogRecordExporter()


@pytest.fixture
def provider(memory: InMemoryLogRecordExporter) -> Iterator[LoggerProvider]:
    provider = LoggerProvider()
    provider.add_log_record_processor(
        TaxonomyLogRecordProcessor(
            classifier=Classifier(Registry.builtin()),
            scrubber=Scrubber(),
            error_counter=_ListCounter(),
        )
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    yield provider
    provider.shutdown()


@pytest.fixture
def logger(provider: LoggerProvider) -> Iterator[logging.Logger]:
    handler = HealthAILoggingHandler(logger_provider=provider)
    logger = logging.getLogger("test_logs")
    logger.propagate = False
    logger.addHandler(handler)
    yield logger
    logger.removeHandler(handler)


def _attributes(memory: InMemoryLogRecordExporter) -> dict[str, object]:
    return dict(memory.get_finished_logs()[-1].log_record.attributes or {})


def test_logged_exception_is_classified_through_its_class(
    logger: logging.Logger, memory: InMemoryLogRecordExporter
) -> None:
    """A taxonomy exception logged with exc_info carries its category and code."""
    try:
        raise OutOfRangeError("age 212")
    except OutOfRangeError:
        logger.exception("Scoring failed")

    result = _attributes(memory)

    assert "DATA_ERROR" == result["healthai.error.category"]
    assert "OUT_OF_RANGE" == result["healthai.error.subcategory"]


def test_handler_writes_the_module_qualified_exception_type(
    logger: logging.Logger, memory: InMemoryLogRecordExporter
) -> None:
    """exception.type is module-qualified, as on spans."""
    try:
        raise OutOfRangeError("age 212")
    except OutOfRangeError:
        logger.exception("Scoring failed")

    result = _attributes(memory)["exception.type"]

    assert "otel_processors.exceptions.OutOfRangeError" == result


def test_record_without_exception_is_scrubbed_not_classified(
    logger: logging.Logger, memory: InMemoryLogRecordExporter
) -> None:
    """A plain error log is scrubbed but carries no classification."""
    logger.error("Patient email jane.doe@example.org not found")

    record = memory.get_finished_logs()[-1].log_record
    result = str(record.body)

    assert "jane.doe@example.org" not in result
    assert "healthai.error.code" not in (record.attributes or {})


def test_bare_exception_type_from_sdk_handler_is_classified(
    provider: LoggerProvider, memory: InMemoryLogRecordExporter
) -> None:
    """A record with only an exception.type attribute (bare name) is classified."""
    provider.get_logger("test").emit(
        body="failed",
        attributes={"exception.type": "MemoryError", "exception.message": "oom"},
    )

    result = _attributes(memory)["healthai.error.subcategory"]

    assert "RESOURCE_EXHAUSTION" == result


def test_exception_message_and_stack_are_scrubbed(
    logger: logging.Logger, memory: InMemoryLogRecordExporter
) -> None:
    """The SSN in the exception message leaves neither message nor stacktrace."""
    try:
        raise ValueError("ssn 123-45-6789 rejected")
    except ValueError:
        logger.exception("Lookup failed")

    attributes = _attributes(memory)
    result = [
        key
        for key in ("exception.message", "exception.stacktrace")
        if "123-45-6789" in str(attributes[key])
    ]

    assert [] == result


def test_processor_must_come_first_to_take_effect(
    memory: InMemoryLogRecordExporter,
) -> None:
    """Registered after the exporting processor, scrubbing cannot reach the export.

    This documents the ordering rule in the module docstring: the batch
    processor copies the record when it queues it, before later processors run.
    """
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(memory))
    provider.add_log_record_processor(ScrubbingLogRecordProcessor(scrubber=Scrubber()))
    provider.get_logger("test").emit(body="ssn 123-45-6789")
    provider.force_flush()

    result = str(memory.get_finished_logs()[-1].log_record.body)

    assert "123-45-6789" in result
    provider.shutdown()


class _HostileStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no string for you")


class _HostileRepr(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("no repr either")

    def __str__(self) -> str:
        raise RuntimeError("no string for you")


def _cyclic() -> BaseException:
    first = ValueError("first")
    second = KeyError("second")
    first.__cause__ = second
    second.__cause__ = first
    return first


def _from_c_extension() -> BaseException:
    # zlib.error is a type defined in C, raised from C code.
    import zlib

    try:
        zlib.decompress(b"not a zlib stream")
    except zlib.error as exc:
        return exc
    raise AssertionError("zlib accepted a bad stream")


def _c_defined_with_state() -> BaseException:
    # An OSError subclass built in C, with errno and filename set.
    try:
        open("/nonexistent/healthai/patient-0001.csv")  # noqa: SIM115
    except OSError as exc:
        return exc
    raise AssertionError("opened a file that cannot exist")


_hostile_exceptions = st.one_of(
    st.just(_HostileStr()),
    st.just(_HostileRepr()),
    st.builds(_cyclic),
    st.builds(_from_c_extension),
    st.builds(_c_defined_with_state),
    st.text().map(ValueError),
    st.binary().map(lambda b: UnicodeDecodeError("utf-8", b, 0, 1, "bad")),
    st.integers(min_value=1, max_value=2_000_000).map(lambda n: KeyError("x" * n)),
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1).map(RuntimeError),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exception=_hostile_exceptions)
def test_hostile_exceptions_never_reach_the_caller(exception: BaseException) -> None:
    """Logging any exception returns and still exports one classified record."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(
        TaxonomyLogRecordProcessor(
            classifier=Classifier(Registry.builtin()),
            scrubber=Scrubber(),
            error_counter=_ListCounter(),
        )
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    handler = HealthAILoggingHandler(logger_provider=provider)
    logger = logging.getLogger("test_logs.hostile")
    logger.propagate = False
    logger.addHandler(handler)

    logger.error("failure", exc_info=exception)

    result = memory.get_finished_logs()
    logger.removeHandler(handler)
    provider.shutdown()
    assert 1 == len(result)
    assert "healthai.error.code" in (result[0].log_record.attributes or {})


def test_record_emitted_with_an_exception_through_the_logs_api_is_classified(
    provider: LoggerProvider, memory: InMemoryLogRecordExporter
) -> None:
    """``Logger.emit(exception=...)`` without Python logging gets the taxonomy."""
    otel_logger = provider.get_logger("tests.logs_api")
    try:
        raise OutOfRangeError("age 212 for patient MRN 00123456")
    except OutOfRangeError as exc:
        otel_logger.emit(
            severity_number=SeverityNumber.ERROR, body="scoring failed", exception=exc
        )
    attributes = _attributes(memory)

    result = (
        attributes.get("healthai.error.code"),
        "00123456" in str(attributes.get("exception.message")),
    )

    expected = ("HAI-DATA-301", False)
    assert expected == result


async def _fail() -> None:
    raise KeyError("bed 12")


async def _leave_a_failed_task() -> None:
    task = asyncio.get_running_loop().create_task(_fail())
    await asyncio.sleep(0.01)
    # Never awaited: the loop handler hears of it when the task is collected.
    del task
    gc.collect()
    await asyncio.sleep(0)


def test_asyncio_crash_logged_by_asyncio_is_one_exception_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash record and asyncio's own log of it make one exception record."""
    monkeypatch.setenv("HEALTHAI_CRASH_DIR", str(tmp_path))
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    pipeline = enable(
        logger_provider=provider,
        log_exporters=[exporter],
        logging_handler=True,
        crash_reporting=True,
    )
    try:
        asyncio.run(_leave_a_failed_task())
        provider.force_flush()
    finally:
        pipeline.disable()
        provider.shutdown()
    records = [
        (item.instrumentation_scope.name, dict(item.log_record.attributes or {}))
        for item in exporter.get_finished_logs()
    ]

    result = (
        [
            (scope, attributes["exception.type"], attributes.get("healthai.crash.kind"))
            for scope, attributes in records
            if "exception.type" in attributes
        ],
        [
            (scope, sorted(k for k in attributes if k.startswith("exception.")))
            for scope, attributes in records
            if scope == "asyncio"
        ],
    )

    expected = (
        [("otel_processors.crash", "KeyError", "asyncio_task")],
        [("asyncio", [])],
    )
    assert expected == result
