"""The reference (baseline) distribution a model's drift is measured against.

A reference holds, per feature and for the model score, the bin layout fixed at
training time and the counts of the training data in those bins. Current windows
are counted into the same layouts (see ``otel_processors.binning``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from otel_processors.binning import BinLayout

__all__ = ["FeatureReference", "Reference"]

REFERENCE_FORMAT = "healthai-drift-reference"
REFERENCE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureReference:
    """Reference counts of one feature (or of the score).

    Attributes:
        name: the feature name as recorded by the service.
        layout: the bins, fixed by the reference.
        counts: float64 array of length ``layout.n_bins``.
        missing: how many reference rows had no value.
    """

    name: str
    layout: BinLayout
    counts: npt.NDArray[np.float64]
    missing: int = 0

    def __post_init__(self) -> None:
        if self.counts.shape != (self.layout.n_bins,):
            msg = (
                f"feature {self.name!r}: {self.counts.shape[0]} counts for "
                f"{self.layout.n_bins} bins"
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class Reference:
    """A model's reference distributions.

    Attributes:
        model: the model name, as in the metrics' ``model`` label.
        model_version: the version the reference was built for.
        features: references by feature name.
        score: the reference of the model score, when known.
        score_by_outcome: score counts split by observed outcome label ("0", "1"),
            used to compute reference performance; empty when labels are unknown.
        created: ISO 8601 timestamp of creation.
    """

    model: str
    model_version: str
    features: Mapping[str, FeatureReference]
    score: FeatureReference | None = None
    score_by_outcome: Mapping[str, npt.NDArray[np.float64]] = field(
        default_factory=dict
    )
    created: str = ""
