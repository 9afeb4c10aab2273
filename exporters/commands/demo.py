"""The ``demo`` subcommand: the example model service, instrumented, end to end."""

from __future__ import annotations

import argparse
import sys

from exporters.commands import Subparsers

_DESCRIPTION = """\
Run an example readmission-risk model service, instrumented with the error
taxonomy and PHI scrubbing, and send it requests that fail in every category.
Ends by itself within a minute and prints what was exported, by category and
code. Needs nothing outside the process; with OTEL_EXPORTER_OTLP_ENDPOINT set,
the telemetry is also sent there over OTLP/HTTP.
"""


def register(subparsers: Subparsers) -> None:
    """Add the ``demo`` parser."""
    parser = subparsers.add_parser(
        "demo",
        help="run the example model service, instrumented, and summarise",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=400,
        help="requests sent in the error phase (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the synthetic patients"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from exporters.demo.runner import run_demo

    if args.requests < 1:
        print("demo: --requests must be at least 1", file=sys.stderr)
        return 2
    run_demo(sys.stdout, requests=args.requests, seed=args.seed)
    return 0
