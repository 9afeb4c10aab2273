"""The ``crash-service`` subcommand: receive, group and serve crash reports."""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from types import FrameType

from exporters.commands import Subparsers
from exporters.crash_service import (
    DEFAULT_MAX_BODY_BYTES,
    CrashService,
    CrashServiceSettings,
    read_token_file,
)
from exporters.errors import CommandError
from otel_processors.errors import ConfigurationError

_DESCRIPTION = """\
Receive OTLP/HTTP log records at POST /v1/logs (protobuf or JSON, optionally
gzip), keep the exception records, scrub them, group them by fingerprint in a
SQLite file, and serve:

  GET   /api/groups?status=open&service=NAME&limit=N   list groups
  GET   /api/groups/ID                                 one group with a sample
  PATCH /api/groups/ID  {"status": "resolved"}         change its status
  GET   /metrics                                       Prometheus metrics
  GET   /healthz                                       liveness

Clients send "Authorization: Bearer TOKEN" (the token file's first line);
running without a token must be asked for with --no-auth. Point the Collector's
otlphttp exporter (or an SDK's OTLP log exporter) at http://HOST:PORT.
See docs/crash-service.md.
"""


def register(subparsers: Subparsers) -> None:
    """Add the ``crash-service`` parser."""
    parser = subparsers.add_parser(
        "crash-service",
        help="receive OTLP exception logs and group them into crash groups",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=4319, help="TCP port (default: %(default)s)"
    )
    parser.add_argument(
        "--db", required=True, metavar="PATH", help="SQLite file of the crash groups"
    )
    auth = parser.add_mutually_exclusive_group(required=True)
    auth.add_argument(
        "--token-file",
        metavar="FILE",
        help="file whose first line is the bearer token clients must send",
    )
    auth.add_argument(
        "--no-auth",
        action="store_true",
        help="accept requests without a token (only on a trusted network)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="largest request body, before and after gzip (default: %(default)s)",
    )
    parser.add_argument(
        "--symbols",
        nargs="+",
        default=[],
        metavar="DIR_OR_URL",
        help="Breakpad symbol stores (folders or http(s) URLs) for native frames",
    )
    parser.add_argument(
        "--symbol-cache",
        metavar="DIR",
        help="where downloaded symbol files are kept (default: beside the database)",
    )
    parser.add_argument(
        "--symbol-miss-ttl",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help=(
            "how long a symbol file found in no store is not asked for again "
            "(default: %(default)s)"
        ),
    )
    parser.set_defaults(func=_run)


def settings_from_args(args: argparse.Namespace) -> CrashServiceSettings:
    """Build the settings from parsed arguments.

    Raises:
        CommandError: a setting is invalid.
    """
    try:
        token = read_token_file(args.token_file) if args.token_file else None
        cache = args.symbol_cache
        if args.symbols and cache is None:
            cache = str(Path(args.db).resolve().parent / "symbol-cache")
        return CrashServiceSettings(
            db_path=args.db,
            host=args.host,
            port=args.port,
            token=token,
            allow_no_auth=args.no_auth,
            max_body_bytes=args.max_body_bytes,
            symbol_sources=tuple(args.symbols),
            symbol_cache_dir=cache,
            symbol_miss_ttl_seconds=args.symbol_miss_ttl,
        )
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc


def _run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    service = CrashService(settings)
    try:
        host, port = service.start()
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc
    except ValueError as exc:
        msg = f"--symbols: {exc}"
        raise CommandError(msg) from exc
    except OSError as exc:
        msg = f"cannot listen on {settings.host}:{settings.port}: {exc}"
        raise CommandError(msg) from exc
    except sqlite3.DatabaseError as exc:
        msg = f"--db {settings.db_path!r}: {exc}"
        raise CommandError(msg) from exc

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGTERM, request_stop)
    print(f"crash service listening on http://{host}:{port}", file=sys.stderr)
    try:
        while not stopping.wait(timeout=1.0):
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.stop()
    return 0
