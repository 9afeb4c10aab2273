"""Tests for reading the users' YAML files."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_processors.errors import ConfigurationError
from otel_processors.yaml_files import read_yaml


def test_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    """A YAML syntax error is reported with the file and its line."""
    path = tmp_path / "patterns.yaml"
    path.write_text("patterns:\n  MRN: [unclosed\nallow_keys: []\n", encoding="utf-8")

    with pytest.raises(ConfigurationError) as raised:
        read_yaml(path, what="the scrub patterns file")

    result = str(raised.value)

    assert result.startswith(f"{path}: the scrub patterns file is not valid YAML at")
    assert "line 3" in result


def test_missing_file_names_the_file_and_what_it_is(tmp_path: Path) -> None:
    """A missing file is reported with its path and role."""
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigurationError) as raised:
        read_yaml(path, what="the drift configuration")

    result = str(raised.value)

    assert f"{path}: cannot read the drift configuration: " in result


def test_error_class_is_the_callers(tmp_path: Path) -> None:
    """Callers choose the exception raised."""

    class PolicyError(Exception):
        pass

    with pytest.raises(PolicyError):
        read_yaml(tmp_path / "absent.yaml", what="the policy", error=PolicyError)


def test_empty_file_gives_none(tmp_path: Path) -> None:
    """An empty file parses to None, for the caller to treat as empty."""
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")

    result = read_yaml(path, what="the policy")

    assert result is None
