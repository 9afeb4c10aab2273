"""Bin layouts fixed by a reference distribution.

Drift is only comparable when the reference and every current window count into
the same bins, so the layout is decided once, from the reference, and then kept.

A numeric layout with inner edges ``e0 < e1 < ... < e(k-1)`` has ``k + 1`` bins::

    bin 0      (-inf, e0)        underflow
    bin i      [e(i-1), e(i))    for 1 <= i <= k-1
    bin k      [e(k-1), +inf)    overflow

A categorical layout with categories ``c0 ... c(m-1)`` has ``m + 1`` bins, the
last one, ``other``, taking every value outside the set. Missing values (None,
NaN, and infinities for numeric layouts) fall in no bin: they are counted
apart, as a data-quality signal.

Categories are compared as text, through ``category_key``: an integral float
reads as the integer it is (``1.0`` -> ``"1"``), because an integer column
with nulls comes out of Parquet (and pandas) as floats while the service
records the integers.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["OTHER_CATEGORY", "BinLayout", "category_key"]

OTHER_CATEGORY = "__other__"


def category_key(value: object) -> str:
    """The text a categorical value is compared by.

    Integral finite floats lose their ``.0`` (``1.0`` -> ``"1"``); booleans and
    everything else are ``str(value)``.

    Args:
        value: a value that is not missing.

    Returns:
        The category text.
    """
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class BinLayout:
    """The bins of one feature (or of the score).

    Raises:
        ValueError: when edges are not finite and strictly increasing, or
            categories are empty or repeated.
    """

    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "numeric":
            _check_edges(self.edges)
        elif self.kind == "categorical":
            _check_categories(self.categories)
        else:
            msg = f"kind must be 'numeric' or 'categorical', got {self.kind!r}"
            raise ValueError(msg)

    @classmethod
    def numeric(cls, edges: Sequence[float]) -> BinLayout:
        """Build a numeric layout from its inner edges."""
        return cls("numeric", edges=tuple(float(e) for e in edges))

    @classmethod
    def categorical(cls, categories: Sequence[str]) -> BinLayout:
        """Build a categorical layout; values outside ``categories`` go to other."""
        return cls("categorical", categories=tuple(str(c) for c in categories))

    @property
    def n_bins(self) -> int:
        """Number of bins, underflow/overflow or ``other`` included."""
        if self.kind == "numeric":
            return len(self.edges) + 1
        return len(self.categories) + 1

    def bin_labels(self) -> tuple[str, ...]:
        """Human-readable bin names, e.g. ``(-inf, 3)``, ``[3, 5)``, ``other``."""
        if self.kind == "categorical":
            return (*self.categories, OTHER_CATEGORY)

        bounds = (-math.inf, *self.edges, math.inf)
        return tuple(
            f"{'(' if lo == -math.inf else '['}{lo:g}, {hi:g})"
            for lo, hi in itertools.pairwise(bounds)
        )

    def bin_index(self, value: object) -> int | None:
        """Return the bin of ``value``, or None when it is missing.

        Numeric layouts treat None, NaN and infinities as missing; a value that
        cannot be read as a number is missing too. Categorical layouts treat
        None and NaN as missing and anything outside the categories (compared
        by ``category_key``) as ``other``.
        """
        if value is None:
            return None

        if self.kind == "categorical":
            if isinstance(value, float) and math.isnan(value):
                return None
            try:
                return self.categories.index(category_key(value))
            except ValueError:
                return len(self.categories)

        try:
            number = float(value)  # type: ignore[arg-type]  # anything float() takes
        except (TypeError, ValueError):
            return None
        if not math.isfinite(number):
            return None
        return bisect.bisect_right(self.edges, number)


def _check_edges(edges: tuple[float, ...]) -> None:
    if not edges:
        msg = "a numeric layout needs at least one edge"
        raise ValueError(msg)
    if not all(math.isfinite(e) for e in edges):
        msg = f"edges must be finite, got {list(edges)}"
        raise ValueError(msg)
    if any(b <= a for a, b in itertools.pairwise(edges)):
        msg = f"edges must be strictly increasing, got {list(edges)}"
        raise ValueError(msg)


def _check_categories(categories: tuple[str, ...]) -> None:
    if not categories:
        msg = "a categorical layout needs at least one category"
        raise ValueError(msg)
    if len(set(categories)) != len(categories):
        msg = f"categories must be distinct, got {list(categories)}"
        raise ValueError(msg)
    if OTHER_CATEGORY in categories:
        msg = f"{OTHER_CATEGORY!r} is reserved for values outside the categories"
        raise ValueError(msg)
