"""Tests for the serve configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exporters.drift.config import DriftConfigError, load_serve_config, parse_duration
from exporters.drift.reference import (
    FeatureReference,
    Reference,
    ReferenceFileError,
    save_reference,
)
from otel_processors.binning import BinLayout
from otel_processors.errors import ConfigurationError


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A directory holding the reference ``refs/sepsis.json``."""
    (tmp_path / "refs").mkdir()
    reference = Reference(
        model="sepsis",
        model_version="1",
        features={
            "lactate": FeatureReference(
                "lactate", BinLayout.numeric([1.0, 2.0]), np.array([5.0, 5, 5])
            )
        },
    )
    save_reference(reference, tmp_path / "refs" / "sepsis.json")
    return tmp_path


def _write(directory: Path, text: str) -> Path:
    path = directory / "drift.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_apply_and_models_override_them(config_dir: Path) -> None:
    """A model takes the defaults it does not override; durations are parsed."""
    path = _write(
        config_dir,
        "defaults:\n  window: 1h\n  interval: 30s\n"
        "models:\n  - reference: refs/sepsis.json\n    interval: 2m\n"
        "    feature_importance: {lactate: 2}\n",
    )

    model = load_serve_config(path).models[0]

    result = (
        model.model,
        model.window_seconds,
        model.interval_seconds,
        model.timeout_seconds,
        model.feature_importance,
    )
    assert ("sepsis", 3600.0, 120.0, 5.0, {"lactate": 2.0}) == result


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("models: []\n", "models", "[]"),
        ("models:\n  - reference: refs/sepsis.json\n    window: soon\n",
         "models[0].window", "'soon'"),
        ("models:\n  - reference: refs/sepsis.json\n    windw: 5m\n",
         "models[0].windw", "'5m'"),
        ("models:\n  - reference: refs/sepsis.json\n    name: other\n",
         "models[0].name", "'other'"),
        ("models:\n  - reference: refs/sepsis.json\n"
         "    feature_importance: {age: 1}\n",
         "models[0].feature_importance.age", "1"),
        ("defaults:\n  prometheus: localhost:9090\n"
         "models:\n  - reference: refs/sepsis.json\n",
         "defaults.prometheus", "'localhost:9090'"),
        ("models:\n  - reference: refs/sepsis.json\n  - reference: refs/sepsis.json\n",
         "models[1].reference", "'sepsis'"),
    ],
)  # fmt: skip
def test_invalid_key_is_named_with_file_and_value(
    config_dir: Path, text: str, key: str, value: str
) -> None:
    """Each invalid setting fails naming the file, the key and the value."""
    path = _write(config_dir, text)

    with pytest.raises(DriftConfigError) as caught:
        load_serve_config(path)

    result = str(caught.value)
    assert result.startswith(f"{path}: key {key!r} has value {value}")


def test_bad_reference_file_fails_at_load(config_dir: Path) -> None:
    """A reference that is not JSON fails when the configuration is read."""
    (config_dir / "refs" / "broken.json").write_text("[", encoding="utf-8")
    path = _write(config_dir, "models:\n  - reference: refs/broken.json\n")

    with pytest.raises(ReferenceFileError) as caught:
        load_serve_config(path)

    result = str(caught.value)
    assert "broken.json: not JSON" in result


def test_bad_policy_is_reported_with_the_model_key(config_dir: Path) -> None:
    """A policy rejected by DriftPolicy names the configuration and model key."""
    path = _write(
        config_dir,
        "models:\n  - reference: refs/sepsis.json\n    policy: {alpah: 0.1}\n",
    )

    with pytest.raises(ConfigurationError) as caught:
        load_serve_config(path)

    result = str(caught.value)
    assert f"{path} models[0].policy" in result


def test_invalid_yaml_names_the_file(config_dir: Path) -> None:
    """Text that is not YAML fails naming the file."""
    path = _write(config_dir, "models: [\n")

    with pytest.raises(DriftConfigError) as caught:
        load_serve_config(path)

    result = str(caught.value)
    assert result.startswith(f"{path}: the configuration is not valid YAML at line")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), ("30s", 30.0), ("5m", 300.0), ("1.5h", 5400.0), ("250ms", 0.25)],
)
def test_durations_read_as_seconds(value: object, seconds: float) -> None:
    """Numbers are seconds; text takes a unit."""
    result = parse_duration(value)

    assert seconds == result


@pytest.mark.parametrize("value", [0, -5, "0s", "5 weeks", True, None])
def test_invalid_durations_are_rejected(value: object) -> None:
    """Zero, negative, unknown units and non-numbers are not durations."""
    with pytest.raises(ValueError):
        parse_duration(value)
