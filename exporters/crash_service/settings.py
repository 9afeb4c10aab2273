"""Settings of the crash service, checked once at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from otel_processors.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "CrashServiceSettings", "read_token_file"]

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
_MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class CrashServiceSettings:
    """How the crash service listens, stores and authenticates.

    Args:
        db_path: the SQLite file holding the crash groups (created if missing).
        host: the address to bind; loopback unless told otherwise.
        port: the TCP port; 0 picks a free one (see ``CrashService.start``).
        token: the bearer token clients must send; ``None`` only with
            ``allow_no_auth``.
        allow_no_auth: accept requests without a token; must be asked for.
        max_body_bytes: the largest request body, before and after gzip.
        symbol_sources: Breakpad symbol stores (folders or HTTP URLs) used to
            symbolicate native frames.
        symbol_cache_dir: where downloaded symbol files are kept; ``None`` keeps
            them in memory only.
        symbol_miss_ttl_seconds: how long a symbol file found in no source is
            not looked for again.
        max_service_labels: distinct ``service`` label values in the metrics
            before further services are reported as ``other``.
        title_max_chars: the longest group title kept.

    Raises:
        ConfigurationError: a value is out of range, or no token was given
            without ``allow_no_auth``.
    """

    db_path: str
    host: str = "127.0.0.1"
    port: int = 4319
    token: str | None = None
    allow_no_auth: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    symbol_sources: tuple[str, ...] = field(default_factory=tuple)
    symbol_cache_dir: str | None = None
    symbol_miss_ttl_seconds: float = 300.0
    max_service_labels: int = 50
    title_max_chars: int = 200

    def __post_init__(self) -> None:
        if self.token is None and not self.allow_no_auth:
            msg = (
                "crash service: no bearer token configured; pass a token file, or "
                "run without authentication explicitly (--no-auth)"
            )
            raise ConfigurationError(msg)
        if self.token is not None and len(self.token) < _MIN_TOKEN_CHARS:
            msg = (
                f"crash service: token: a bearer token must have at least "
                f"{_MIN_TOKEN_CHARS} characters, got {len(self.token)}"
            )
            raise ConfigurationError(msg)
        if not 0 <= self.port <= 65535:
            msg = f"crash service: port: {self.port!r} is not a TCP port (0-65535)"
            raise ConfigurationError(msg)
        if self.max_body_bytes < 1024:
            msg = (
                f"crash service: max_body_bytes: {self.max_body_bytes!r} is below "
                "the minimum of 1024"
            )
            raise ConfigurationError(msg)
        if self.symbol_miss_ttl_seconds < 0:
            msg = (
                "crash service: symbol_miss_ttl_seconds: "
                f"{self.symbol_miss_ttl_seconds!r} must not be negative"
            )
            raise ConfigurationError(msg)
        if self.max_service_labels < 1:
            msg = (
                f"crash service: max_service_labels: {self.max_service_labels!r} "
                "must be at least 1"
            )
            raise ConfigurationError(msg)
        if self.title_max_chars < 16:
            msg = (
                f"crash service: title_max_chars: {self.title_max_chars!r} must be "
                "at least 16"
            )
            raise ConfigurationError(msg)


def read_token_file(path: str | os.PathLike[str]) -> str:
    """Read a bearer token from the first line of ``path``.

    Args:
        path: a file holding the token; surrounding whitespace is ignored.

    Returns:
        The token.

    Raises:
        ConfigurationError: the file cannot be read or holds no token.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"crash service: token file {os.fspath(path)!r} cannot be read: {exc}"
        raise ConfigurationError(msg) from exc

    if not token:
        msg = f"crash service: token file {os.fspath(path)!r} is empty"
        raise ConfigurationError(msg)
    return token
