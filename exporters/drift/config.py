"""The configuration of ``healthai-telemetry drift serve``.

A YAML file lists the models to watch; ``defaults`` apply to every model and
each model may override them::

    defaults:
      prometheus: http://127.0.0.1:9090
      window: 1h          # range of increase(); seconds or 30s, 5m, 1h, 1d
      interval: 1m        # how often to recompute
      timeout: 5s         # per HTTP request to Prometheus
      retries: 2          # further attempts per request
    root_cause_top_k: 5   # root causes published per model
    models:
      - reference: refs/readmission.json   # relative to this file
        policy:                            # DriftPolicy.from_mapping
          statistic: psi
          features:
            creatinine_mg_dl: {warning: 0.05, critical: 0.2}
        feature_importance:
          creatinine_mg_dl: 0.4
        history_windows: 24

The model name is the reference's; a ``name`` key, when given, must match it.
Every error names the file, the key (e.g. ``models[0].window``) and the value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from exporters.drift.levels import DriftPolicy
from exporters.drift.reference import Reference, load_reference
from otel_processors.errors import ConfigurationError
from otel_processors.yaml_files import read_yaml

__all__ = [
    "DriftConfigError",
    "ModelConfig",
    "ServeConfig",
    "load_serve_config",
    "parse_duration",
    "parse_feature_importance",
    "parse_serve_config",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DEFAULT_KEYS = {"prometheus", "window", "interval", "timeout", "retries"}
_MODEL_KEYS = _DEFAULT_KEYS | {
    "name",
    "reference",
    "policy",
    "feature_importance",
    "history_windows",
}
_TOP_KEYS = {"defaults", "models", "root_cause_top_k"}
_BUILT_IN = {
    "prometheus": "http://127.0.0.1:9090",
    "window": 3600.0,
    "interval": 60.0,
    "timeout": 5.0,
    "retries": 2,
}


class DriftConfigError(ConfigurationError):
    """The serve configuration is invalid; the message names file, key, value."""


@dataclass(frozen=True)
class ModelConfig:
    """How one model is watched.

    Attributes:
        reference: the model's reference (its ``model`` is the model name).
        reference_path: the file the reference was read from.
        prometheus_url: the Prometheus base URL.
        window_seconds: the window length.
        interval_seconds: time between evaluations.
        timeout_seconds: timeout of each request to Prometheus.
        retries: further attempts per request.
        policy: the drift policy; None for the defaults.
        feature_importance: optional importance per feature, for root causes.
        history_windows: windows kept for hysteresis and root cause history.
    """

    reference: Reference
    reference_path: str
    prometheus_url: str
    window_seconds: float
    interval_seconds: float
    timeout_seconds: float
    retries: int
    policy: DriftPolicy | None = None
    feature_importance: Mapping[str, float] | None = None
    history_windows: int = 24

    @property
    def model(self) -> str:
        """The model name."""
        return self.reference.model


@dataclass(frozen=True)
class ServeConfig:
    """The whole serve configuration.

    Attributes:
        models: the watched models, in file order.
        source: the configuration file.
        root_cause_top_k: how many root causes are published per model.
    """

    models: tuple[ModelConfig, ...]
    source: str
    root_cause_top_k: int = 5


def parse_duration(value: object) -> float:
    """Read a duration: a number of seconds or text such as ``30s``, ``5m``.

    Args:
        value: an int, a float or a string with a unit (ms, s, m, h, d).

    Returns:
        Seconds, strictly positive and finite.

    Raises:
        ValueError: when the value is not a positive duration.
    """
    if isinstance(value, bool):
        msg = f"expected a duration, got {value!r}"
        raise ValueError(msg)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        msg = f"expected a duration such as 30, '30s', '5m' or '1h', got {value!r}"
        raise ValueError(msg)
    if not math.isfinite(seconds) or seconds <= 0:
        msg = f"a duration must be positive, got {value!r}"
        raise ValueError(msg)
    return seconds


def load_serve_config(path: str | os.PathLike[str]) -> ServeConfig:
    """Read and validate a serve configuration file, loading its references.

    Args:
        path: the YAML file.

    Returns:
        The configuration.

    Raises:
        DriftConfigError: when the file is unreadable or a key is invalid.
        ReferenceFileError: when a reference file is invalid.
        ConfigurationError: when a policy is invalid (from ``DriftPolicy``).
    """
    source = os.fspath(path)
    data = read_yaml(source, what="the configuration", error=DriftConfigError)
    return parse_serve_config(
        data, source=source, base_dir=os.path.dirname(os.path.abspath(source))
    )


def parse_serve_config(data: object, *, source: str, base_dir: str) -> ServeConfig:
    """Validate a decoded configuration (see the module docstring).

    Args:
        data: the decoded YAML.
        source: the file name used in error messages.
        base_dir: the directory relative reference paths start from.

    Returns:
        The configuration.

    Raises:
        DriftConfigError: naming ``source``, the key and the value.
    """
    if not isinstance(data, dict):
        _fail(source, "<document>", data, "expected a mapping with 'models'")
    _reject_unknown(data, _TOP_KEYS, source, "")

    defaults_data = data.get("defaults") or {}
    if not isinstance(defaults_data, dict):
        _fail(source, "defaults", defaults_data, "expected a mapping")
    _reject_unknown(defaults_data, _DEFAULT_KEYS, source, "defaults.")
    defaults = {**_BUILT_IN, **_settings(defaults_data, source, "defaults")}

    models_data = data.get("models")
    if not isinstance(models_data, list) or not models_data:
        _fail(source, "models", models_data, "expected a non-empty list of models")
    models = tuple(
        _model(entry, defaults, source, f"models[{i}]", base_dir)
        for i, entry in enumerate(models_data)
    )

    names = [model.model for model in models]
    for i, name in enumerate(names):
        if name in names[:i]:
            _fail(source, f"models[{i}].reference", name, "model listed twice")

    top_k = data.get("root_cause_top_k", 5)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 50:
        _fail(source, "root_cause_top_k", top_k, "expected an integer from 1 to 50")
    return ServeConfig(models=models, source=source, root_cause_top_k=top_k)


def _model(
    entry: object,
    defaults: Mapping[str, Any],
    source: str,
    key: str,
    base_dir: str,
) -> ModelConfig:
    if not isinstance(entry, dict):
        _fail(source, key, entry, "expected a mapping")
    _reject_unknown(entry, _MODEL_KEYS, source, f"{key}.")
    settings = {**defaults, **_settings(entry, source, key)}

    # The reference: its model name is the model's name.
    path = entry.get("reference")
    if not isinstance(path, str) or not path:
        _fail(source, f"{key}.reference", path, "expected the path of a reference")
    reference_path = path if os.path.isabs(path) else os.path.join(base_dir, path)
    reference = load_reference(reference_path)
    name = entry.get("name")
    if name is not None and name != reference.model:
        why = f"the reference {reference_path} is for model {reference.model!r}"
        _fail(source, f"{key}.name", name, why)

    policy = None
    if entry.get("policy") is not None:
        policy = DriftPolicy.from_mapping(
            entry["policy"], source=f"{source} {key}.policy"
        )

    importance = _importance(entry.get("feature_importance"), reference, source, key)
    history = entry.get("history_windows", 24)
    if isinstance(history, bool) or not isinstance(history, int) or history < 2:
        _fail(source, f"{key}.history_windows", history, "expected an integer >= 2")

    return ModelConfig(
        reference=reference,
        reference_path=reference_path,
        prometheus_url=settings["prometheus"],
        window_seconds=settings["window"],
        interval_seconds=settings["interval"],
        timeout_seconds=settings["timeout"],
        retries=settings["retries"],
        policy=policy,
        feature_importance=importance,
        history_windows=history,
    )


def _settings(data: Mapping[str, Any], source: str, key: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for name in ("window", "interval", "timeout"):
        if name in data:
            try:
                settings[name] = parse_duration(data[name])
            except ValueError as exc:
                _fail(source, f"{key}.{name}", data[name], str(exc))
    if "retries" in data:
        retries = data["retries"]
        if (
            isinstance(retries, bool)
            or not isinstance(retries, int)
            or not 0 <= retries <= 10
        ):
            _fail(source, f"{key}.retries", retries, "expected an integer from 0 to 10")
        settings["retries"] = retries
    if "prometheus" in data:
        url = data["prometheus"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            _fail(source, f"{key}.prometheus", url, "expected an http(s) URL")
        settings["prometheus"] = url
    return settings


def _importance(
    value: object, reference: Reference, source: str, key: str
) -> dict[str, float] | None:
    if value is None:
        return None
    return parse_feature_importance(
        value, reference, source=source, key=f"{key}.feature_importance"
    )


def parse_feature_importance(
    value: object, reference: Reference, *, source: str, key: str = ""
) -> dict[str, float]:
    """Validate a mapping of feature name to importance (a number >= 0).

    Args:
        value: the parsed mapping, e.g. from YAML or JSON.
        reference: the reference whose features may be named.
        source: where the mapping came from, named in errors.
        key: the mapping's key in its file; empty for a whole file.

    Returns:
        The importance by feature.

    Raises:
        DriftConfigError: naming ``source``, the key and the value, for a
            value that is not a mapping, an unknown feature or a weight that
            is not a finite number >= 0.
    """
    if not isinstance(value, dict):
        _fail(source, key or "(document)", value, "expected a mapping")
    importance: dict[str, float] = {}
    for name, weight in value.items():
        entry = f"{key}.{name}" if key else str(name)
        if name not in reference.features:
            _fail(source, entry, weight, "not a feature of the reference")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            _fail(source, entry, weight, "expected a number >= 0")
        if not math.isfinite(weight) or weight < 0:
            _fail(source, entry, weight, "expected a number >= 0")
        importance[str(name)] = float(weight)
    return importance


def _reject_unknown(
    data: Mapping[str, Any], allowed: set[str], source: str, prefix: str
) -> None:
    for name in data:
        if name not in allowed:
            why = f"unknown key; expected one of {', '.join(sorted(allowed))}"
            _fail(source, f"{prefix}{name}", data[name], why)


def _fail(source: str, key: str, value: object, why: str) -> NoReturn:
    msg = f"{source}: key {key!r} has value {value!r}: {why}"
    raise DriftConfigError(msg)
