"""The ``drift`` subcommand: build references, compare windows, serve metrics."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys

from exporters.commands import Subparsers
from exporters.drift.baseline import build_reference, read_columns
from exporters.drift.config import load_serve_config, parse_feature_importance
from exporters.drift.evaluation import DriftMonitor
from exporters.drift.levels import DriftPolicy
from exporters.drift.reference import Reference, load_reference, save_reference
from exporters.drift.report import Level, render_table, report_to_json
from exporters.drift.server import DriftServer
from exporters.drift.sources import load_window_file
from exporters.errors import CommandError
from otel_processors.errors import ConfigurationError
from otel_processors.yaml_files import read_yaml

_DESCRIPTION = """\
Model drift: compare the distributions a model sees in production with the
ones it was trained on, feature by feature and for its score.

  baseline   build a reference file from training data (CSV or Parquet)
  compare    compare one current window (a file) with a reference
  serve      export drift metrics for Prometheus, read from Prometheus
"""

_BASELINE_EPILOG = """\
example:
  healthai-telemetry drift baseline --data train.csv --model readmission \\
      --model-version 2.3.1 --categorical discharge_disposition \\
      --score-column score --outcome-column readmitted --output ref.json
"""

_COMPARE_EPILOG = """\
The current window is a JSON window file (counts in the reference's bins) or
raw rows in CSV or Parquet, binned here. One window has no history, so the
levels shown are the window's own (no hysteresis), and root causes are ranked
without the correlation of each feature's drift with the score's over recent
windows (taken as unknown): by drift ratio, times --importance when given.

example:
  healthai-telemetry drift compare --reference ref.json --current today.csv \
      --importance shap.yaml
"""

_SERVE_EPILOG = """\
The configuration lists the models, their reference files and Prometheus;
see docs/drift-exporter.md. Stop with Ctrl-C or SIGTERM.

example:
  healthai-telemetry drift serve --config drift.yaml --port 9466
"""


def register(subparsers: Subparsers) -> None:
    """Add the ``drift`` parser and its ``baseline``, ``compare``, ``serve``."""
    parser = subparsers.add_parser(
        "drift",
        help="build drift references, compare windows, serve drift metrics",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="drift_command", metavar="ACTION")
    actions.required = True
    _register_baseline(actions)
    _register_compare(actions)
    _register_serve(actions)


def _register_baseline(actions: Subparsers) -> None:
    parser = actions.add_parser(
        "baseline",
        help="build a reference file from training data",
        description="Build a model's reference distributions from training data.",
        epilog=_BASELINE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", required=True, help="training data: a .csv or .parquet file"
    )
    parser.add_argument(
        "--model", required=True, help="model name (the 'model' metric label)"
    )
    parser.add_argument("--model-version", default="", help="model version")
    parser.add_argument(
        "--features",
        type=_names,
        help="comma-separated feature columns (default: all but score and outcome)",
    )
    parser.add_argument(
        "--categorical",
        type=_names,
        default=[],
        help="comma-separated categorical columns (text columns are detected)",
    )
    parser.add_argument("--score-column", help="column of the model's scores")
    parser.add_argument(
        "--outcome-column", help="column of observed outcomes, 0/1 (needs a score)"
    )
    parser.add_argument(
        "--bins", type=int, default=10, help="bins per numeric feature (default 10)"
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=20,
        help="categories kept per categorical feature, the rest as other (20)",
    )
    parser.add_argument(
        "--output",
        default="reference.json",
        help="reference file to write (default reference.json)",
    )
    parser.set_defaults(func=_baseline)


def _register_compare(actions: Subparsers) -> None:
    parser = actions.add_parser(
        "compare",
        help="compare a current window with a reference",
        description="Compare one current window with a reference.",
        epilog=_COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reference", required=True, help="reference JSON file")
    parser.add_argument(
        "--current", required=True, help="current window: .json, .csv or .parquet"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of a table"
    )
    parser.add_argument(
        "--policy", help="YAML drift policy (thresholds, statistic, FDR)"
    )
    parser.add_argument(
        "--score-column", help="score column of raw rows (default: the reference's)"
    )
    parser.add_argument("--outcome-column", help="outcome column of raw rows, 0/1")
    parser.add_argument(
        "--importance",
        metavar="FILE",
        help="YAML or JSON mapping of feature to importance (e.g. mean |SHAP|), "
        "for root causes",
    )
    parser.add_argument(
        "--fail-on",
        choices=("warning", "critical"),
        help="exit with status 1 when the model reaches this level",
    )
    parser.set_defaults(func=_compare)


def _register_serve(actions: Subparsers) -> None:
    parser = actions.add_parser(
        "serve",
        help="serve drift metrics for Prometheus",
        description="Evaluate drift on an interval and serve it on /metrics.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="YAML serve configuration")
    parser.add_argument(
        "--port", type=int, default=9466, help="port of /metrics (default 9466)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="evaluate every model once, print the metrics and exit",
    )
    parser.set_defaults(func=_serve)


def _baseline(args: argparse.Namespace) -> int:
    try:
        columns = read_columns(args.data)
        reference = build_reference(
            columns,
            model=args.model,
            model_version=args.model_version,
            features=args.features,
            categorical=args.categorical,
            score_column=args.score_column,
            outcome_column=args.outcome_column,
            bins=args.bins,
            top_k=args.top_k,
        )
        save_reference(reference, args.output)
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        msg = f"{args.output}: cannot write the reference: {exc.strerror or exc}"
        raise CommandError(msg) from exc

    kinds = [feature.layout.kind for feature in reference.features.values()]
    score = "with" if reference.score is not None else "without"
    print(
        f"wrote {args.output}: model {reference.model}, {len(kinds)} features "
        f"({kinds.count('categorical')} categorical), {score} score"
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    try:
        reference = load_reference(args.reference)
        policy = _policy(args.policy)
        importance = _importance(args.importance, reference)
        window = load_window_file(
            args.current,
            reference,
            score_column=args.score_column,
            outcome_column=args.outcome_column,
        )
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc

    # One window has no history: raise on the first hit, i.e. no hysteresis.
    single = dataclasses.replace(policy, raise_after=1, raise_window=1)
    monitor = DriftMonitor(reference, single, feature_importance=importance)
    report = monitor.evaluate(window.to_window())

    if args.json:
        data = report_to_json(report)
        data["unreadable_features"] = dict(window.errors)
        print(json.dumps(data, indent=2))
    else:
        print(render_table(report))
        for name, error in window.errors.items():
            print(f"{name}: not compared: {error}")

    if args.fail_on is not None and report.level >= Level[args.fail_on.upper()]:
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        config = load_serve_config(args.config)
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc
    server = DriftServer(config)

    if args.once:
        from prometheus_client import CollectorRegistry, generate_latest

        for model in config.models:
            server.evaluate(model.model)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(server.collector())
        sys.stdout.write(generate_latest(registry).decode())
        return 0

    try:
        port = server.serve(args.host, args.port)
    except OSError as exc:
        msg = f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        raise CommandError(msg) from exc
    server.start()
    # Containers stop with SIGTERM: leave the loop as for Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: server.request_stop())
    names = ", ".join(model.model for model in config.models)
    print(f"serving drift metrics of {names} on http://{args.host}:{port}/metrics")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _policy(path: str | None) -> DriftPolicy:
    if path is None:
        return DriftPolicy()
    data = read_yaml(path, what="the policy", error=CommandError)
    return DriftPolicy.from_mapping(data or {}, source=os.fspath(path))


def _importance(path: str | None, reference: Reference) -> dict[str, float] | None:
    if path is None:
        return None
    data = read_yaml(path, what="the importance file", error=CommandError)
    return parse_feature_importance(data, reference, source=os.fspath(path))


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        msg = f"expected comma-separated names, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return names
