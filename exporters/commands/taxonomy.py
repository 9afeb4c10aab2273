"""The ``taxonomy`` subcommand: list, validate and explain error codes.

::

    healthai-telemetry taxonomy list [--registry FILE ...] [--category C] [--json]
    healthai-telemetry taxonomy validate FILE ...
    healthai-telemetry taxonomy explain --type T [--message M] [--attribute K=V ...]
    healthai-telemetry taxonomy --explain T [--message M] [--registry FILE] [--json]
    healthai-telemetry taxonomy categories
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from exporters.commands import Subparsers
from exporters.errors import CommandError
from otel_processors import taxonomy
from otel_processors.classifier import Classification, Classifier
from otel_processors.errors import ConfigurationError, RegistryError
from otel_processors.registry import ENV_VAR, ErrorCode, Registry, load_file
from otel_processors.taxonomy import SUBCATEGORIES, Category

__all__ = ["register"]

_logger = logging.getLogger(__name__)

_DESCRIPTION = f"""\
Show the error taxonomy and its error codes, check registry files, and explain
how an error would be classified.

Codes come from the built-in catalogue, then the files named by {ENV_VAR}
(separated by the OS path separator), then the --registry files; a later file's
code replaces an earlier one with the same id. See docs/taxonomy.md.
"""

_EXPLAIN_EPILOG = """\
examples:
  healthai-telemetry taxonomy explain --type requests.exceptions.ConnectionError
  healthai-telemetry taxonomy explain --type ValueError --message "age 212 out of range"
  healthai-telemetry taxonomy explain --type HTTPError \\
      --attribute http.response.status_code=503 --span-name "GET /labs"
"""

_DESCRIPTION_WIDTH = 60


def register(subparsers: Subparsers) -> None:
    """Add the ``taxonomy`` parser and its subcommands."""
    parser = subparsers.add_parser(
        "taxonomy",
        help="list, validate and explain error codes",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--explain",
        metavar="TYPE",
        dest="explain_type",
        help="shorthand for `taxonomy explain --type TYPE`",
    )
    parser.add_argument(
        "--message",
        dest="explain_message",
        help="with --explain: the exception message",
    )
    parser.add_argument(
        "--registry",
        dest="explain_registry",
        action="append",
        default=[],
        metavar="FILE",
        help="with --explain: a registry file to load as well (repeatable)",
    )
    parser.add_argument(
        "--json",
        dest="explain_json",
        action="store_true",
        help="with --explain: print JSON",
    )
    parser.set_defaults(func=_run_top)
    commands = parser.add_subparsers(dest="taxonomy_command", metavar="SUBCOMMAND")

    listing = commands.add_parser(
        "list",
        help="list the error codes as a table",
        description="List the error codes of the catalogue and registry files.",
    )
    _add_registry_options(listing)
    listing.add_argument(
        "--category",
        type=_category,
        help="only this category (" + ", ".join(c.value for c in Category) + ")",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_run_list)

    validate = commands.add_parser(
        "validate",
        help="check registry files; exit 2 on any error",
        description="Check registry files: exit 0 when all are valid, 2 otherwise.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="YAML file")
    validate.set_defaults(func=_run_validate)

    explain = commands.add_parser(
        "explain",
        help="show how an error would be classified and why",
        description=(
            "Classify an error described by its exception type, message and "
            "context, and show the code, the rule that matched and why."
        ),
        epilog=_EXPLAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument(
        "--type",
        dest="exception_type",
        metavar="TYPE",
        help="exception type, module-qualified or bare (omit for no exception)",
    )
    explain.add_argument("--message", help="exception message")
    explain.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="span or log attribute (repeatable)",
    )
    explain.add_argument("--scope", help="instrumentation scope name")
    explain.add_argument("--span-name", help="span name")
    explain.add_argument(
        "--import",
        dest="import_module",
        action="store_true",
        help=(
            "import the type's module first, so that rules on its base classes "
            "apply (runs that module's code; a service never imports)"
        ),
    )
    explain.add_argument("--json", action="store_true", help="print JSON")
    _add_registry_options(explain)
    explain.set_defaults(func=_run_explain)

    categories = commands.add_parser(
        "categories",
        help="list the categories and subcategories with their meaning",
        description="List the taxonomy's categories and subcategories.",
    )
    categories.set_defaults(func=_run_categories)


def _add_registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        action="append",
        default=[],
        metavar="FILE",
        help="registry file to load after the built-in and environment ones "
        "(repeatable)",
    )
    parser.add_argument(
        "--no-env", action="store_true", help=f"ignore the files named by {ENV_VAR}"
    )


def _category(value: str) -> Category:
    for category in Category:
        if value.upper() == category.value:
            return category
    msg = f"unknown category {value!r}"
    raise argparse.ArgumentTypeError(msg)


# Subcommands.


def _run_top(args: argparse.Namespace) -> int:
    if args.explain_type is None:
        msg = "choose a subcommand (list, validate, explain, categories) or --explain"
        raise CommandError(msg)
    explain_args = argparse.Namespace(
        exception_type=args.explain_type,
        message=args.explain_message,
        attribute=[],
        scope=None,
        span_name=None,
        import_module=False,
        json=args.explain_json,
        registry=args.explain_registry,
        no_env=False,
    )
    return _run_explain(explain_args)


def _run_list(args: argparse.Namespace) -> int:
    registry = _load(args)
    codes = [
        code
        for code in registry.codes.values()
        if args.category is None or code.category is args.category
    ]

    if args.json:
        print(json.dumps([_code_json(code) for code in codes], indent=2))
        return 0
    rows = [
        (
            code.id,
            code.subcategory.value,
            code.severity.value,
            "yes" if code.retryable else "no",
            str(len(code.rules)),
            code.source,
            _shorten(code.description, _DESCRIPTION_WIDTH),
        )
        for code in codes
    ]
    header = (
        "ID",
        "SUBCATEGORY",
        "SEVERITY",
        "RETRY",
        "RULES",
        "SOURCE",
        "DESCRIPTION",
    )
    print(_table(header, rows))
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    failures = 0
    builtin = tuple(Registry.builtin().codes.values())
    for name in args.files:
        try:
            codes = load_file(name)
            Registry([builtin, codes])
        except RegistryError as exc:
            failures += 1
            print(f"invalid: {exc}", file=sys.stderr)
            continue
        print(f"ok: {name} ({len(codes)} codes)")

    if failures:
        msg = f"{failures} of {len(args.files)} registry files are invalid"
        raise CommandError(msg)
    return 0


def _run_explain(args: argparse.Namespace) -> int:
    registry = _load(args)
    attributes = _parse_attributes(args.attribute)
    if args.import_module and args.exception_type:
        _import_module_of(args.exception_type)

    classifier = Classifier(registry, cache_size=0)
    result = classifier.classify(
        args.exception_type,
        args.message,
        attributes=attributes,
        scope=args.scope,
        span_name=args.span_name,
    )

    if args.json:
        print(json.dumps(_classification_json(result), indent=2))
    else:
        print(_explanation(result))
    return 0


def _run_categories(args: argparse.Namespace) -> int:
    docs = _member_docs(Path(taxonomy.__file__))
    for category in Category:
        print(f"{category.value}: {docs.get(('Category', category.name), '')}")
        for subcategory in SUBCATEGORIES[category]:
            doc = docs.get(("Subcategory", subcategory.name), "")
            print(f"  {subcategory.value}: {doc}")
    return 0


# Helpers.


def _load(args: argparse.Namespace) -> Registry:
    try:
        return Registry.load(args.registry, use_env=not args.no_env)
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc


def _parse_attributes(pairs: Sequence[str]) -> dict[str, object]:
    attributes: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            msg = f"--attribute expects KEY=VALUE, got {pair!r}"
            raise CommandError(msg)
        attributes[key] = value
    return attributes


def _import_module_of(type_name: str) -> None:
    module, _, _ = type_name.rpartition(".")
    if not module:
        return
    try:
        importlib.import_module(module)
    except ImportError as exc:
        msg = f"cannot import {module!r} for --import: {exc}"
        raise CommandError(msg) from exc


def _explanation(result: Classification) -> str:
    code = result.code
    retry = "retryable" if code.retryable else "not retryable"
    lines = [
        ("code", code.id),
        ("category", f"{code.category.value} / {code.subcategory.value}"),
        ("severity", f"{code.severity.value}, {retry}"),
        ("fallback", "yes (no rule matched)" if result.fallback else "no"),
        ("why", result.reason),
        ("source", code.source),
        ("description", code.description),
        ("remediation", code.remediation),
        ("runbook", code.runbook_url or "-"),
    ]
    return "\n".join(f"{label:<12} {value}" for label, value in lines)


def _classification_json(result: Classification) -> dict[str, Any]:
    return {
        "code": _code_json(result.code),
        "fallback": result.fallback,
        "reason": result.reason,
        "rule": result.rule.describe() if result.rule is not None else None,
        "attributes": result.attributes(),
    }


def _code_json(code: ErrorCode) -> dict[str, Any]:
    return {
        "id": code.id,
        "category": code.category.value,
        "subcategory": code.subcategory.value,
        "severity": code.severity.value,
        "retryable": code.retryable,
        "description": code.description,
        "remediation": code.remediation,
        "runbook_url": code.runbook_url,
        "source": code.source,
        "rules": [rule.describe() for rule in code.rules],
    }


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(row[column]) for row in [header, *rows])
        for column in range(len(header))
    ]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _member_docs(path: Path) -> dict[tuple[str, str], str]:
    """Read the docstrings written under enum members, which Python discards."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as exc:
        _logger.warning("Cannot read the taxonomy's docstrings from %s: %s", path, exc)
        return {}

    docs: dict[tuple[str, str], str] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement, following in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                text = " ".join(following.value.value.split())
                docs[(node.name, statement.targets[0].id)] = text
    return docs
