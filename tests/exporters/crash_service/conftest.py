"""Fixtures for the crash service tests: running services and a scrubber."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exporters.crash_service import CrashService, CrashServiceSettings
from otel_processors.scrubber import Scrubber
from tests.exporters.crash_service.otlp_builders import TOKEN


@pytest.fixture
def scrubber() -> Scrubber:
    """The scrubber the tests' services use: the project's own, built-in rules."""
    return Scrubber()


@pytest.fixture
def start_service(
    tmp_path: Path, scrubber: Scrubber
) -> Iterator[Callable[..., tuple[CrashService, str]]]:
    """Start crash services on 127.0.0.1 (stopped at the end); give each its URL."""
    started: list[CrashService] = []

    def start(**overrides: Any) -> tuple[CrashService, str]:
        options: dict[str, Any] = {
            "db_path": str(tmp_path / "crashes.db"),
            "port": 0,
            "token": TOKEN,
        }
        options.update(overrides)
        service = CrashService(CrashServiceSettings(**options), scrubber=scrubber)
        host, port = service.start()
        started.append(service)
        return service, f"http://{host}:{port}"

    yield start
    for service in started:
        service.stop()
