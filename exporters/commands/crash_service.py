"""The `crash-service` subcommand (being written)."""

from __future__ import annotations

import argparse

from exporters.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    """Add the `crash-service` parser."""
    parser = subparsers.add_parser("crash-service", help="(not available yet)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("not available yet")
    return 1
