"""Tests for exporters.crash_service.settings: refusing bad settings at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporters.crash_service import CrashService, CrashServiceSettings
from otel_processors.errors import ConfigurationError


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "--no-auth"),
        ({"token": "x" * 16, "port": 70000}, "port: 70000"),
        ({"token": "x" * 16, "max_body_bytes": 10}, "max_body_bytes: 10"),
        ({"allow_no_auth": True, "max_service_labels": 0}, "max_service_labels: 0"),
        ({"allow_no_auth": True, "title_max_chars": 3}, "title_max_chars: 3"),
    ],
    ids=["no-token", "port", "body-limit", "label-cap", "title"],
)
def test_invalid_setting_fails_naming_key_and_value(
    options: dict[str, object], match: str
) -> None:
    """Each invalid setting raises a ConfigurationError naming it and its value."""
    with pytest.raises(ConfigurationError, match=match):
        # The table mixes value types; each case passes the right one.
        CrashServiceSettings(db_path="crashes.db", **options)  # type: ignore[arg-type]


def test_unusable_symbol_source_leaves_nothing_open(tmp_path: Path) -> None:
    """A bad symbol source fails start() before the store or socket is opened."""
    service = CrashService(
        CrashServiceSettings(
            db_path=str(tmp_path / "crashes.db"),
            allow_no_auth=True,
            port=0,
            symbol_sources=(str(tmp_path / "missing"),),
        )
    )

    with pytest.raises(ValueError, match="neither a folder nor an HTTP URL"):
        service.start()

    with pytest.raises(RuntimeError, match="not been started"):
        _ = service.store
