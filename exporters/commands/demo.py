"""The `demo` subcommand (being written)."""

from __future__ import annotations

import argparse

from exporters.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    """Add the `demo` parser."""
    parser = subparsers.add_parser("demo", help="(not available yet)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("not available yet")
    return 1
