"""Reading the YAML files users write: one place for the errors they see.

Every configuration file of the project (scrubbing patterns, drift exporter
settings, drift policies) is read here, so that an unreadable file or a YAML
syntax error reads the same everywhere: the file, the line, the problem.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from otel_processors.errors import ConfigurationError

__all__ = ["read_yaml"]


def read_yaml(
    path: str | os.PathLike[str],
    *,
    what: str,
    error: type[Exception] = ConfigurationError,
) -> Any:
    """Parse a YAML file; an empty file gives None.

    Args:
        path: the file.
        what: what the file is, for messages ("the scrub patterns file").
        error: the exception class to raise.

    Returns:
        The parsed document.

    Raises:
        error: the file cannot be read or is not valid YAML; the message names
            the file and, for syntax errors, the line.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as stream:
            return yaml.safe_load(stream)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        msg = f"{name}: cannot read {what}: {reason}"
        raise error(msg) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        msg = f"{name}: {what} is not valid YAML{where}: {problem}"
        raise error(msg) from exc
