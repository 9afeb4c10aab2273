"""The ``crash`` subcommand: work with crash reports.

::

    healthai-telemetry crash fingerprint [--in-app PREFIX ...] [--exclude PREFIX ...]
                                         [--app-root DIR ...] [--json] < traceback.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from exporters.commands import Subparsers
from exporters.errors import CommandError
from otel_processors.crash.fingerprint import (
    Fingerprint,
    InAppPolicy,
    TracebackNotFoundError,
    fingerprint_text,
)

__all__ = ["register"]

_DESCRIPTION = """\
Work with crash reports: the grouping of crashes into fingerprints that the
service's crash hooks write on every crash record (healthai.crash.fingerprint).
See docs/crashes.md.
"""

_FINGERPRINT_DESCRIPTION = """\
Read a Python traceback, or a faulthandler crash file, on standard input and
print its fingerprint: the group it belongs to, the algorithm version, whether
frames or (without frames) the normalised message made it, and the frames that
were hashed. Lines may carry a log prefix (a timestamp, a level, a logger
name): the prefix found before "Traceback (most recent call last):" is removed
from every line, digits allowed to differ.

Module names come from the file names in the text. Give the in-app prefixes
the service used (--in-app), or the directories on the service's sys.path
(--app-root), to get the fingerprint the service computed; otherwise the
directories on this command's own sys.path are stripped.
"""

_FINGERPRINT_EPILOG = """\
examples:
  healthai-telemetry crash fingerprint < traceback.txt
  grep -A40 Traceback service.log | healthai-telemetry crash fingerprint --json
  healthai-telemetry crash fingerprint --in-app readmit --in-app shared.scoring < t
  healthai-telemetry crash fingerprint --app-root /srv/app < traceback.txt
"""


def register(subparsers: Subparsers) -> None:
    """Add the ``crash`` parser and its subcommands."""
    parser = subparsers.add_parser(
        "crash",
        help="fingerprint crash tracebacks",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=_run_without_subcommand, crash_parser=parser)
    commands = parser.add_subparsers(dest="crash_command", metavar="SUBCOMMAND")

    fingerprint = commands.add_parser(
        "fingerprint",
        help="print the fingerprint of a traceback read on stdin",
        description=_FINGERPRINT_DESCRIPTION,
        epilog=_FINGERPRINT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fingerprint.add_argument(
        "--in-app",
        metavar="PREFIX",
        action="append",
        default=[],
        help=(
            "module prefix of the application (repeatable); default: every "
            "module outside the standard library and site-packages"
        ),
    )
    fingerprint.add_argument(
        "--exclude",
        metavar="PREFIX",
        action="append",
        default=[],
        help="module prefix never counted as in-app (repeatable)",
    )
    fingerprint.add_argument(
        "--app-root",
        metavar="DIR",
        action="append",
        default=None,
        help=(
            "directory stripped from file names to name their module, as on "
            "the service's sys.path (repeatable); default: this command's "
            "sys.path"
        ),
    )
    fingerprint.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    fingerprint.set_defaults(func=_run_fingerprint)


def _run_without_subcommand(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.crash_parser
    parser.print_help(sys.stderr)
    msg = "choose a subcommand: fingerprint"
    raise CommandError(msg)


def _run_fingerprint(args: argparse.Namespace) -> int:
    source = sys.stdin
    if source.isatty():
        msg = "paste a traceback on standard input, or pipe a file into it"
        raise CommandError(msg)
    text = source.read()

    policy = InAppPolicy(
        include=args.in_app, exclude=args.exclude, app_roots=args.app_root
    )
    try:
        fingerprint = fingerprint_text(text, in_app=policy)
    except TracebackNotFoundError as exc:
        msg = (
            'standard input holds no Python traceback ("Traceback (most recent '
            'call last):") nor faulthandler output ("Fatal Python error: ...")'
        )
        raise CommandError(msg) from exc

    if args.json:
        print(json.dumps(_as_json(fingerprint), indent=2))
    else:
        print(_as_text(fingerprint))
    return 0


def _as_json(fingerprint: Fingerprint) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint.value,
        "version": fingerprint.version,
        "basis": fingerprint.basis,
        "exception_types": list(fingerprint.exception_types),
        "frames": [
            {
                "module": frame.module,
                "function": frame.function,
                "context_line": frame.context_line,
                "filename": frame.filename,
                "lineno": frame.lineno,
                "in_app": frame.in_app,
            }
            for frame in fingerprint.frames
        ],
    }


def _as_text(fingerprint: Fingerprint) -> str:
    lines = [
        f"fingerprint: {fingerprint.value}",
        f"version:     {fingerprint.version}",
        f"basis:       {fingerprint.basis}",
        f"exceptions:  {' <- '.join(reversed(fingerprint.exception_types))}",
    ]
    if fingerprint.frames:
        lines.append("frames (oldest call first; * in-app):")
    for frame in fingerprint.frames:
        marker = "*" if frame.in_app else " "
        line = f"  {marker} {frame.module}.{frame.function}"
        if frame.context_line:
            line += f"    {frame.context_line}"
        lines.append(line)
    return "\n".join(lines)
