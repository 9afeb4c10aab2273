"""The ``demo`` subcommand: the example model service, instrumented, end to end."""

from __future__ import annotations

import argparse
import sys

from exporters.commands import Subparsers
from exporters.errors import CommandError

_DESCRIPTION = """\
Run an example readmission-risk model service, instrumented with the error
taxonomy and PHI scrubbing, in three phases:

  errors  requests that fail in every category of the taxonomy
  drift   windows of requests; two features drift half-way, the levels rise
          and the root cause is named
  crash   worker threads crash; a crash service on loopback groups them

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
        default=440,
        help="requests sent in the error phase (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the synthetic patients"
    )
    parser.add_argument(
        "--phases",
        default="errors,drift,crash",
        help="comma-separated phases to run, in order (default: %(default)s)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from exporters.demo.runner import PHASES, run_demo

    if args.requests < 1:
        msg = f"--requests must be at least 1, got {args.requests}"
        raise CommandError(msg)
    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not phases:
        msg = f"--phases: unknown phase {unknown}; choose from {', '.join(PHASES)}"
        raise CommandError(msg)

    run_demo(sys.stdout, requests=args.requests, seed=args.seed, phases=phases)
    return 0
