"""Fixtures for the crash capture tests: run the crashing service in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

APP = Path(__file__).with_name("crash_app.py")


@dataclass
class AppRun:
    """The outcome of one run of crash_app.py."""

    returncode: int
    stderr: str
    records: list[dict[str, Any]]


@pytest.fixture
def run_app(tmp_path: Path) -> Callable[..., AppRun]:
    """Return a function running crash_app.py with a scenario over one spool."""
    spool = tmp_path / "spool"

    def run(
        scenario: str,
        *,
        output: str = "out.jsonl",
        env: dict[str, str] | None = None,
    ) -> AppRun:
        output_path = tmp_path / output
        output_path.unlink(missing_ok=True)
        completed = subprocess.run(
            [sys.executable, str(APP), scenario],
            env={
                **os.environ,
                "CRASH_APP_OUTPUT": str(output_path),
                "CRASH_APP_SPOOL": str(spool),
                **(env or {}),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return AppRun(completed.returncode, completed.stderr, read_records(output_path))

    return run


def read_records(path: Path) -> list[dict[str, Any]]:
    """Read the JSON-lines records crash_app.py wrote (none if no file)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """The spool directory ``run_app`` uses."""
    return tmp_path / "spool"
