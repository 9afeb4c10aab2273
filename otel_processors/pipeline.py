"""The pieces every entry point assembles: classifier, scrubber and settings.

``opentelemetry-instrument`` (through the configurator) and ``enable()`` both
build the same pipeline from the same environment variables:

``HEALTHAI_ERROR_REGISTRY``
    Paths of user registry files, separated by ``os.pathsep``.
``HEALTHAI_SCRUB_PATTERNS``
    Path of a YAML file of extra scrubbing patterns and keys.
``HEALTHAI_CRASH_REPORTING``
    ``false`` turns the crash hooks off (default on).
``HEALTHAI_LOGGING_HANDLER``
    ``false`` keeps the project's logging handler off the root logger
    (default on; ``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=false``
    turns it off too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from otel_processors.classifier import Classifier
from otel_processors.errors import ConfigurationError
from otel_processors.registry import Registry
from otel_processors.scrubber import Scrubber

__all__ = ["PipelineSettings"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class PipelineSettings:
    """What the processors need, built once per process."""

    classifier: Classifier
    scrubber: Scrubber
    crash_reporting: bool
    logging_handler: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Read the settings from the environment.

        Raises:
            ConfigurationError: when a file or a variable is invalid; the
                message names the variable (or file), the key and the value.
        """
        env = os.environ if environ is None else environ
        registry = Registry.load(use_env=True)
        logging_handler = _flag(env, "HEALTHAI_LOGGING_HANDLER", default=True)
        if env.get("OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED", "") in _FALSE:
            logging_handler = False

        return cls(
            classifier=Classifier(registry),
            scrubber=Scrubber.from_env(),
            crash_reporting=_flag(env, "HEALTHAI_CRASH_REPORTING", default=True),
            logging_handler=logging_handler,
        )


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default

    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    msg = f"environment variable {name}: expected true or false, got {raw!r}"
    raise ConfigurationError(msg)
