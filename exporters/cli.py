"""The ``healthai-telemetry`` command line.

Each subcommand lives in its own module under ``exporters.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed arguments and returning the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from exporters.errors import CommandError

__all__ = ["build_parser", "main"]

# Order is the order shown by --help.
_COMMAND_MODULES = ("demo", "taxonomy", "scrub", "crash", "crash_service", "drift")

_PROJECT_LOGGERS = ("exporters", "otel_processors")

_DESCRIPTION = """\
Observability for machine-learning services in healthcare: an error taxonomy on
every span and log record, patient data scrubbed before export, crash reports
grouped into tickets, and model drift as Prometheus metrics.
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="healthai-telemetry",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages to stderr"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True

    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"exporters.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(verbose=args.verbose)

    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CommandError as exc:
        print(f"healthai-telemetry {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): not an error of ours.
        sys.stderr.close()
        return 0


def _configure_logging(*, verbose: bool) -> None:
    # Only this project's loggers print to the terminal: the root logger is left
    # to the services the demo instruments, whose records go to OpenTelemetry.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in _PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
        logger.addHandler(handler)
        logger.propagate = False


if __name__ == "__main__":
    sys.exit(main())
