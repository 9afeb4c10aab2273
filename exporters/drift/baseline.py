"""Build a model's reference distribution from its training data.

The reference fixes each feature's bins once, so that every later window is
counted into the same bins:

- numeric features get quantile edges (``bins`` bins, the outer two being the
  underflow and overflow bins of ``BinLayout``), rounded to six significant
  digits; duplicate edges are merged. A feature with at most ``bins - 2``
  distinct values is treated as
  discrete: one bin per value, with edges halfway between values and half a
  gap beyond the extremes, so that unseen values land in underflow or overflow.
  A feature with a single distinct value ``x`` gets the edges
  ``x -/+ max(|x|, 1) / 2``.
- categorical features keep their ``top_k`` most frequent categories; the rest
  are counted in ``other``.
- missing values (empty cells, NaN, infinities and text that is not a number
  in a numeric column) are counted apart, as the service's recorder counts
  them.
- categories are compared by ``binning.category_key``, so an integer column
  with nulls, which Parquet gives as floats, keeps the categories ``"1"``,
  ``"2"`` the service records, not ``"1.0"``, ``"2.0"``.

Training data comes as columns (numpy arrays) through ``build_reference``, or
from a CSV or Parquet file through ``read_columns``.
"""

from __future__ import annotations

import csv
import datetime
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from exporters.drift.reference import FeatureReference, Reference
from otel_processors.binning import OTHER_CATEGORY, BinLayout, category_key
from otel_processors.errors import ConfigurationError

__all__ = [
    "BaselineDataError",
    "bin_counts",
    "build_reference",
    "categorical_layout",
    "numeric_layout",
    "outcome_label",
    "read_columns",
]

_logger = logging.getLogger(__name__)

_MISSING_TEXT = frozenset({"", "na", "nan", "null", "none"})


class BaselineDataError(ConfigurationError):
    """Training data cannot be turned into a reference; the message says why."""


def read_columns(path: str | os.PathLike[str]) -> dict[str, npt.NDArray[np.generic]]:
    """Read a CSV (with a header row) or Parquet file into columns.

    CSV cells stay text (``numpy`` object arrays); ``build_reference`` converts
    them. Parquet columns keep their type; nulls become None or NaN.

    Args:
        path: a ``.csv`` or ``.parquet`` (``.pq``) file.

    Returns:
        Columns by name, all of the same length.

    Raises:
        BaselineDataError: when the file cannot be read, has no rows or no
            header, or is Parquet and pyarrow is not installed.
    """
    source = os.fspath(path)
    suffix = os.path.splitext(source)[1].lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(source)
    if suffix == ".csv":
        return _read_csv(source)
    msg = f"{source}: unknown data file type {suffix!r}; expected .csv or .parquet"
    raise BaselineDataError(msg)


def build_reference(
    columns: Mapping[str, npt.NDArray[np.generic] | Sequence[object]],
    *,
    model: str,
    model_version: str = "",
    features: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    score_column: str | None = None,
    outcome_column: str | None = None,
    bins: int = 10,
    top_k: int = 20,
    created: str | None = None,
) -> Reference:
    """Build a reference from training data columns.

    Args:
        columns: training data by column name.
        model: the model name (the ``model`` label of the metrics).
        model_version: the model's version.
        features: the feature columns; by default every column except the score
            and outcome columns.
        categorical: columns to treat as categorical. Columns holding text that
            is not a number are categorical too.
        score_column: the column of model scores, if any.
        outcome_column: the column of observed outcomes (0/1), if any; needs
            ``score_column``.
        bins: the number of bins of numeric features and of the score.
        top_k: the number of categories kept per categorical feature.
        created: the creation timestamp; now (UTC) by default.

    Returns:
        The reference.

    Raises:
        BaselineDataError: when a named column is absent, columns differ in
            length, there is no feature, or ``bins``/``top_k`` is below 2/1.
    """
    _check_arguments(columns, features, score_column, outcome_column, bins, top_k)
    names = (
        list(features)
        if features is not None
        else [name for name in columns if name not in (score_column, outcome_column)]
    )
    if not names:
        msg = "no feature column: name them, or give a file with more columns"
        raise BaselineDataError(msg)
    categorical_names = set(categorical)

    # One reference per feature, in the layout chosen for its kind.
    references: dict[str, FeatureReference] = {}
    for name in names:
        values = np.asarray(columns[name])
        if name in categorical_names or _is_text(values):
            layout = categorical_layout(values, top_k=top_k)
        else:
            values = _as_float(values)
            layout = numeric_layout(values, bins=bins)
        counts, missing = bin_counts(layout, values)
        references[name] = FeatureReference(name, layout, counts, missing)

    # The score, and the score split by outcome for reference performance.
    score = None
    score_by_outcome: dict[str, npt.NDArray[np.float64]] = {}
    if score_column is not None:
        scores = _as_float(np.asarray(columns[score_column]))
        layout = numeric_layout(scores, bins=bins)
        counts, missing = bin_counts(layout, scores)
        score = FeatureReference(score_column, layout, counts, missing)
        if outcome_column is not None:
            outcomes = np.asarray(columns[outcome_column])
            score_by_outcome = _split_by_outcome(layout, scores, outcomes)

    return Reference(
        model=model,
        model_version=model_version,
        features=references,
        score=score,
        score_by_outcome=score_by_outcome,
        created=created or datetime.datetime.now(datetime.timezone.utc).isoformat(),
    )


def numeric_layout(values: npt.NDArray[np.float64], *, bins: int = 10) -> BinLayout:
    """Choose the bins of a numeric feature from its reference values.

    Args:
        values: the reference values; NaN values are ignored.
        bins: the wanted number of bins (underflow and overflow included).

    Returns:
        Quantile edges, or one bin per value for discrete features (see the
        module docstring). A feature with no value at all gets the edge 0.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return BinLayout.numeric([0.0])

    distinct = np.unique(finite)
    if distinct.size == 1:
        half = max(abs(float(distinct[0])), 1.0) / 2
        return BinLayout.numeric([float(distinct[0]) - half, float(distinct[0]) + half])
    if distinct.size <= bins - 2:
        gaps = np.diff(distinct)
        middles = distinct[:-1] + gaps / 2
        low = distinct[0] - gaps[0] / 2
        high = distinct[-1] + gaps[-1] / 2
        return BinLayout.numeric([float(low), *middles.tolist(), float(high)])

    # Six significant digits keep the ``le`` labels readable; rounding may
    # merge close quantiles, hence unique() afterwards.
    quantiles = np.quantile(finite, np.arange(1, bins) / bins)
    edges = np.unique([float(f"{q:.6g}") for q in quantiles])
    return BinLayout.numeric(edges.tolist())


def categorical_layout(
    values: npt.NDArray[np.generic], *, top_k: int = 20
) -> BinLayout:
    """Keep the ``top_k`` most frequent categories (ties broken by name).

    Args:
        values: the reference values; None and NaN are ignored.
        top_k: how many categories to keep; the rest are counted in ``other``.

    Returns:
        A categorical layout; ``[OTHER_CATEGORY]``-free, at least one category.
    """
    counter = Counter(
        category_key(value) for value in values.tolist() if not _is_missing(value)
    )
    counter.pop(OTHER_CATEGORY, None)
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    categories = [name for name, _ in ranked[:top_k]]
    if not categories:
        categories = ["unknown"]
    return BinLayout.categorical(categories)


def bin_counts(
    layout: BinLayout, values: npt.NDArray[np.generic]
) -> tuple[npt.NDArray[np.float64], int]:
    """Count ``values`` into the bins of ``layout``.

    Args:
        layout: the bins.
        values: the values; numeric layouts expect float64 (NaN and
            infinities are missing), categorical ones any values (None and
            NaN are missing).

    Returns:
        The counts per bin (float64) and the number of missing values.
    """
    if layout.kind == "numeric":
        numbers = _as_float(values)
        present = numbers[np.isfinite(numbers)]
        indices = np.searchsorted(np.asarray(layout.edges), present, side="right")
        counts = np.bincount(indices, minlength=layout.n_bins).astype(np.float64)
        return counts, int(numbers.size - present.size)

    counts = np.zeros(layout.n_bins, dtype=np.float64)
    positions = {category: i for i, category in enumerate(layout.categories)}
    other = len(layout.categories)
    missing = 0
    for value in values.tolist():
        if _is_missing(value):
            missing += 1
            continue
        counts[positions.get(category_key(value), other)] += 1
    return counts, missing


def outcome_label(value: object) -> str | None:
    """Normalise an observed outcome to ``"0"`` or ``"1"``; None when unusable.

    Accepts 0/1 numbers (1.0 too), booleans and the texts true/false/yes/no.
    """
    if _is_missing(value):
        return None
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true", "yes"):
        return "1"
    if text in ("0", "0.0", "false", "no"):
        return "0"
    return None


def _split_by_outcome(
    layout: BinLayout,
    scores: npt.NDArray[np.float64],
    outcomes: npt.NDArray[np.generic],
) -> dict[str, npt.NDArray[np.float64]]:
    labels = np.array(
        [outcome_label(value) for value in outcomes.tolist()], dtype=object
    )
    unusable = int(np.sum(labels == None))  # noqa: E711  # element-wise comparison
    if unusable:
        _logger.warning("Ignored %s outcome values that are not 0 or 1", unusable)
    split: dict[str, npt.NDArray[np.float64]] = {}
    for label in ("0", "1"):
        counts, _ = bin_counts(layout, scores[labels == label])
        split[label] = counts
    return split


def _check_arguments(
    columns: Mapping[str, object],
    features: Sequence[str] | None,
    score_column: str | None,
    outcome_column: str | None,
    bins: int,
    top_k: int,
) -> None:
    if bins < 2:
        msg = f"bins must be at least 2, got {bins}"
        raise BaselineDataError(msg)
    if top_k < 1:
        msg = f"top_k must be at least 1, got {top_k}"
        raise BaselineDataError(msg)
    if outcome_column is not None and score_column is None:
        msg = f"the outcome column {outcome_column!r} needs a score column"
        raise BaselineDataError(msg)

    wanted = [*(features or ()), score_column, outcome_column]
    absent = [name for name in wanted if name is not None and name not in columns]
    if absent:
        msg = f"no column named {', '.join(map(repr, absent))}; have {sorted(columns)}"
        raise BaselineDataError(msg)

    lengths = {name: len(values) for name, values in columns.items()}  # type: ignore[arg-type]  # arrays and sequences have a length
    if len(set(lengths.values())) > 1:
        msg = f"columns differ in length: {lengths}"
        raise BaselineDataError(msg)


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip().lower() in _MISSING_TEXT
    return False


def _is_text(values: npt.NDArray[np.generic]) -> bool:
    if values.dtype.kind in "biuf":
        return False
    for value in values.tolist():
        if _is_missing(value) or isinstance(value, (int, float)):
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            return True
    return False


def _as_float(values: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    numbers = np.empty(values.size, dtype=np.float64)
    for i, value in enumerate(values.tolist()):
        numbers[i] = _to_float(value)
    return numbers


def _to_float(value: object) -> float:
    if _is_missing(value):
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]  # anything float() takes
    except (TypeError, ValueError):
        return math.nan


def _read_csv(source: str) -> dict[str, npt.NDArray[np.generic]]:
    try:
        with open(source, newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            rows = list(reader)
    except OSError as exc:
        msg = f"{source}: cannot read: {exc.strerror or exc}"
        raise BaselineDataError(msg) from exc
    if not header:
        msg = f"{source}: empty file; expected a header row"
        raise BaselineDataError(msg)
    if not rows:
        msg = f"{source}: no data rows after the header"
        raise BaselineDataError(msg)

    width = len(header)
    for number, row in enumerate(rows, start=2):
        if len(row) != width:
            msg = f"{source}: line {number} has {len(row)} cells, the header {width}"
            raise BaselineDataError(msg)
    return {
        name: np.array([row[i] for row in rows], dtype=object)
        for i, name in enumerate(header)
    }


def _read_parquet(source: str) -> dict[str, npt.NDArray[np.generic]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        msg = (
            f"{source}: reading Parquet needs pyarrow: "
            "pip install 'healthai-telemetry[parquet]'"
        )
        raise BaselineDataError(msg) from exc

    try:
        table = pq.read_table(source)
    except (OSError, ValueError) as exc:
        msg = f"{source}: cannot read Parquet: {exc}"
        raise BaselineDataError(msg) from exc
    if table.num_rows == 0:
        msg = f"{source}: no rows"
        raise BaselineDataError(msg)
    return {
        name: np.asarray(table.column(name).to_numpy(zero_copy_only=False))
        for name in table.column_names
    }
